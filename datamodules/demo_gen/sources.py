"""The demo's identities: ten real faces from photos that ship inside installed packages.

Photos (the sample images of the project's own dependencies, paths in ``_PHOTOS``): scikit-image
``skimage/data/astronaut.png`` and ``camera.png``, matplotlib ``mpl-data/sample_data/grace_hopper.jpg``,
insightface ``data/images/t1.jpg`` (six faces) and ``Tom_Hanks_54745.png``.
Files are read by path (no heavy package import). Faces are found with
:func:`datamodules.media.faces.detect_faces` (MTCNN) and given 68 landmarks with
:func:`datamodules.media.faces.landmarks68` (dlib); each becomes a square ``PORTRAIT`` x ``PORTRAIT`` portrait
centred on its landmarks, with the landmarks in portrait pixels.

Identity splits (fixed, the same in every domain, so no test face was seen in training anywhere):
``SPLIT_OF``.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from datamodules.optional import EXTRAS

PORTRAIT = 256
"""Side of the square portrait every identity is resampled to."""

# (identity name, pip package, path inside the package, face index among the photo's faces by x order)
_PHOTOS: tuple[tuple[str, str, str, int | None], ...] = (
    ("astronaut", "scikit-image", "skimage/data/astronaut.png", None),
    ("cameraman", "scikit-image", "skimage/data/camera.png", None),
    ("grace_hopper", "matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg", None),
    ("t1_a", "insightface", "insightface/data/images/t1.jpg", 0),
    ("t1_b", "insightface", "insightface/data/images/t1.jpg", 1),
    ("t1_c", "insightface", "insightface/data/images/t1.jpg", 2),
    ("t1_d", "insightface", "insightface/data/images/t1.jpg", 3),
    ("t1_e", "insightface", "insightface/data/images/t1.jpg", 4),
    ("t1_f", "insightface", "insightface/data/images/t1.jpg", 5),
    ("tom_hanks", "insightface", "insightface/data/images/Tom_Hanks_54745.png", None),
)

IDENTITIES: tuple[str, ...] = tuple(p[0] for p in _PHOTOS)

SPLIT_OF: dict[str, str] = {
    "astronaut": "train",
    "cameraman": "train",
    "t1_a": "train",
    "t1_b": "train",
    "t1_d": "train",
    "t1_e": "train",
    "tom_hanks": "val",
    "t1_f": "val",
    "grace_hopper": "test",
    "t1_c": "test",
}
"""Identity -> split, shared by every domain. Train 6, val 2, test 2 identities."""


class DemoSourceError(RuntimeError):
    """A source photo is missing or its face could not be found."""


@dataclass(frozen=True)
class Identity:
    """One real face: a ``[PORTRAIT, PORTRAIT, 3]`` uint8 RGB portrait and its 68 landmarks ``[68, 2]``."""

    name: str
    portrait: np.ndarray
    landmarks: np.ndarray

    @property
    def split(self) -> str:
        """The split this identity belongs to."""
        return SPLIT_OF[self.name]


def photo_path(package: str, relpath: str) -> Path:
    """Locate a file shipped inside an installed package without importing it."""
    top = relpath.split("/", 1)[0]
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is None:
        raise DemoSourceError(
            f"the demo's face photo {relpath!r} ships in the package {package!r}, which is not installed: "
            + f"pip install {package}"
            + (
                f" (the extra: pip install 'forgery-bench[{EXTRAS[package][0]}]')"
                if package in EXTRAS
                else ""
            )
        )
    path = Path(spec.origin).parent.parent / relpath
    if not path.is_file():
        raise DemoSourceError(
            f"the package {package!r} is installed but has no {relpath!r} ({path}); "
            f"reinstall it: pip install --force-reinstall {package}"
        )
    return path


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DemoSourceError(f"cannot decode the photo {path}")
    return np.ascontiguousarray(img[:, :, ::-1])


def _faces_by_x(rgb: np.ndarray) -> list[np.ndarray]:
    """MTCNN boxes of one photo ordered left to right (detection on a <= 640 px copy for speed)."""
    from datamodules.media.faces import detect_faces

    scale = min(1.0, 640.0 / max(rgb.shape[:2]))
    small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    boxes = [f.box / scale for f in detect_faces(small)]
    return sorted(boxes, key=lambda b: float(b[0] + b[2]))


def portrait_transform(landmarks: np.ndarray, side: int = PORTRAIT) -> np.ndarray:
    """2x3 similarity (no rotation) mapping photo pixels to a portrait centred on the landmarks.

    The face's landmark box takes about 45 % of the portrait side, its centre slightly below the middle
    so the forehead and some hair stay in view.
    """
    lo, hi = landmarks.min(0), landmarks.max(0)
    size = float(max(hi - lo))
    cx, cy = (lo + hi) / 2
    s = 0.45 * side / size
    return np.array([[s, 0, side / 2 - s * cx], [0, s, side * 0.55 - s * cy]], dtype=np.float64)


def _identity(name: str, rgb: np.ndarray, box: np.ndarray) -> Identity:
    from datamodules.media.faces import landmarks68

    lm = landmarks68(rgb, box).astype(np.float64)
    m = portrait_transform(lm)
    portrait = cv2.warpAffine(
        rgb, m, (PORTRAIT, PORTRAIT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    lm_p = (lm @ m[:, :2].T + m[:, 2]).astype(np.float32)
    portrait.setflags(write=False)
    lm_p.setflags(write=False)
    return Identity(name=name, portrait=portrait, landmarks=lm_p)


@lru_cache(maxsize=1)
def load_identities() -> tuple[Identity, ...]:
    """The ten identities in ``IDENTITIES`` order (cached for the process: detection takes seconds)."""
    from datamodules.media.faces import to_rgb

    photos: dict[str, np.ndarray] = {}
    boxes: dict[str, list[np.ndarray]] = {}
    out = []
    for name, package, rel, index in _PHOTOS:
        if rel not in photos:
            photos[rel] = to_rgb(_read_rgb(photo_path(package, rel)))
            boxes[rel] = _faces_by_x(photos[rel])
        found = boxes[rel]
        want = 0 if index is None else index
        if index is None and found:  # single-face photo: the largest face
            found = sorted(found, key=lambda b: -float((b[2] - b[0]) * (b[3] - b[1])))
        if len(found) <= want:
            raise DemoSourceError(
                f"expected at least {want + 1} face(s) in {rel} (package {package}), MTCNN found {len(found)}"
            )
        out.append(_identity(name, photos[rel], found[want]))
    return tuple(out)


def identities_fingerprint(identities: tuple[Identity, ...]) -> str:
    """sha256 over every portrait and landmark array: a changed photo or detector changes it."""
    h = hashlib.sha256()
    for ident in identities:
        h.update(ident.name.encode())
        h.update(np.ascontiguousarray(ident.portrait).tobytes())
        h.update(np.ascontiguousarray(ident.landmarks).tobytes())
    return h.hexdigest()

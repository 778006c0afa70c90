"""Short synthetic videos made from the real face photos that ship inside installed packages.

Sources (sample images of installed dependencies): ``skimage.data.astronaut()`` (1 face), matplotlib's
``mpl-data/sample_data/grace_hopper.jpg`` (1 face), insightface's ``data/images/t1.jpg`` (6 faces). Videos are a few small frames with a slow drift, written with
OpenCV (``mp4v`` in ``.mp4`` or ``MJPG`` in ``.avi``).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import cv2
import numpy as np


@cache
def photo(name: str, width: int | None = None) -> np.ndarray:
    """RGB uint8 photo: ``astronaut``, ``grace_hopper`` or ``t1``, optionally resized to ``width``."""
    if name == "astronaut":
        import skimage.data

        img = skimage.data.astronaut()
    elif name == "grace_hopper":
        import matplotlib

        img = cv2.cvtColor(
            cv2.imread(str(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")),
            cv2.COLOR_BGR2RGB,
        )
    elif name == "t1":
        import importlib.util

        spec = importlib.util.find_spec("insightface")
        p = Path(spec.origin).parent / "data" / "images" / "t1.jpg"
        img = cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)
    else:
        raise KeyError(name)
    if width:
        img = cv2.resize(
            img, (width, round(img.shape[0] * width / img.shape[1])), interpolation=cv2.INTER_AREA
        )
    img.setflags(write=False)
    return img


def frames_of(img: np.ndarray, n: int, drift: int = 2) -> list[np.ndarray]:
    """``n`` frames of ``img`` shifted by ``drift`` pixels per frame (a slow pan)."""
    out = []
    for i in range(n):
        m = np.float32([[1, 0, i * drift], [0, 1, i * drift // 2]])
        out.append(cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT))
    return out


def write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """Write RGB frames; ``.avi`` uses MJPG, anything else mp4v."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix == ".avi" else "mp4v"))
    wr = cv2.VideoWriter(str(path), fourcc, fps, (w, h))
    assert wr.isOpened(), path
    for f in frames:
        wr.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    wr.release()
    return path


def face_video(path: Path, name: str = "astronaut", n: int = 6, width: int = 256) -> Path:
    return write_video(path, frames_of(photo(name, width), n))


def mask_video(
    path: Path, like: np.ndarray, box: tuple[int, int, int, int], n: int = 6, drift: int = 2
) -> Path:
    """A binary mask video (white box on black) that drifts like :func:`frames_of`."""
    m = np.zeros(like.shape[:2] + (3,), np.uint8)
    x1, y1, x2, y2 = box
    m[y1:y2, x1:x2] = 255
    return write_video(path, frames_of(m, n, drift))


def make_ffpp(root: Path, n_frames: int = 6, methods=("Deepfakes", "FaceSwap"), comp: str = "c23") -> Path:
    """A tiny FF++ download: reals 000-003, fakes 000_001, 001_000, 002_003, 003_002, masks, splits."""
    names = ["astronaut", "grace_hopper", "astronaut", "grace_hopper"]
    for i, nm in enumerate(names):
        face_video(root / f"original_sequences/youtube/{comp}/videos/{i:03d}.mp4", nm, n_frames)
    for m in methods:
        for a, b in ((0, 1), (1, 0), (2, 3), (3, 2)):
            face_video(
                root / f"manipulated_sequences/{m}/{comp}/videos/{a:03d}_{b:03d}.mp4", names[a], n_frames
            )
            if m != "FaceShifter":
                mask_video(
                    root / f"manipulated_sequences/{m}/masks/videos/{a:03d}_{b:03d}.mp4",
                    photo(names[a], 256),
                    (80, 40, 180, 150),
                    n_frames,
                )
    (root / "splits").mkdir(parents=True, exist_ok=True)
    (root / "splits/train.json").write_text(json.dumps([["000", "001"]]))
    (root / "splits/val.json").write_text(json.dumps([["002", "003"]]))
    (root / "splits/test.json").write_text(json.dumps([]))
    return root

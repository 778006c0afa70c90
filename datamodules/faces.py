"""Offline face detection and landmarks: the detector backends preprocessing and the demo share.

Backends (all ship their weights inside installed packages, so they work offline):

* ``mtcnn``: facenet-pytorch MTCNN, boxes + 5 points (left eye, right eye, nose, left mouth, right mouth).
* ``dlib``: dlib's 68-point shape predictor from ``face_recognition_models`` (the .dat file is read by
  path: importing that package needs ``pkg_resources``, which recent setuptools dropped).
* ``insightface``: SCRFD + landmarks when an insightface model pack exists locally (never downloaded).

Images are RGB ``uint8`` arrays ``[H, W, 3]``; grayscale and RGBA inputs are converted by
:func:`to_rgb`. Points are ``float32`` ``(x, y)`` in image pixels.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

# 68-point index groups (iBUG 300-W convention).
JAW, BROWS, NOSE, EYES, MOUTH = range(0, 17), range(17, 27), range(27, 36), range(36, 48), range(48, 68)
LEFT_EYE, RIGHT_EYE = range(36, 42), range(42, 48)  # image-left / image-right


@dataclass
class Face:
    """One detected face: box ``(x1, y1, x2, y2)``, detector confidence, 5 points ``[5, 2]``."""

    box: np.ndarray
    score: float
    points5: np.ndarray

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return float(max(0.0, x2 - x1) * max(0.0, y2 - y1))


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Return a contiguous RGB uint8 array from gray ``[H, W]``, ``[H, W, 1]``, RGB or RGBA input."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.dtype.kind == "f" and img.max() <= 1.0 else 1.0), 0, 255).astype(
            np.uint8
        )
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an image [H, W(, C)], got shape {np.asarray(image).shape}")
    return np.ascontiguousarray(img)


def dlib_model_path(name: str = "shape_predictor_68_face_landmarks.dat") -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "face_recognition_models is not installed: pip install face_recognition_models"
        )
    path = Path(spec.submodule_search_locations[0]) / "models" / name
    if not path.is_file():
        raise FileNotFoundError(f"dlib model file missing: {path}")
    return path


@lru_cache(maxsize=1)
def _mtcnn():
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, device="cpu", post_process=False)


@lru_cache(maxsize=1)
def _dlib_predictor():
    import dlib

    return dlib.shape_predictor(str(dlib_model_path()))


def detect_faces(image: np.ndarray, min_score: float = 0.9) -> list[Face]:
    """All faces MTCNN finds with confidence >= ``min_score``, largest first."""
    img = to_rgb(image)
    boxes, probs, points = _mtcnn().detect(img, landmarks=True)
    if boxes is None:
        return []
    faces = [
        Face(box=b.astype(np.float32), score=float(p), points5=pt.astype(np.float32))
        for b, p, pt in zip(boxes, probs, points, strict=True)
        if p is not None and p >= min_score
    ]
    return sorted(faces, key=lambda f: -f.area)


def landmarks68(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """dlib 68 landmarks ``[68, 2]`` float32 inside ``box`` (any detector's box)."""
    import dlib

    img = to_rgb(image)
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    shape = _dlib_predictor()(img, dlib.rectangle(x1, y1, x2, y2))
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def points5_from_68(lm: np.ndarray) -> np.ndarray:
    """The 5 alignment points (eye centres, nose tip, mouth corners) from 68 landmarks."""
    lm = np.asarray(lm, dtype=np.float32)
    return np.stack([lm[list(LEFT_EYE)].mean(0), lm[list(RIGHT_EYE)].mean(0), lm[30], lm[48], lm[54]]).astype(
        np.float32
    )

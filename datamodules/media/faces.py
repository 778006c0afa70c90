"""Offline face detection and landmarks: the detector backends preprocessing and the demo share.

Backends (all ship their weights inside installed packages, so they work offline):

* ``mtcnn``: facenet-pytorch MTCNN, boxes + 5 points (left eye, right eye, nose, left mouth, right mouth).
* ``dlib``: dlib's 68-point shape predictor from ``face_recognition_models`` (the .dat file is read by
  path: importing that package needs ``pkg_resources``, which recent setuptools dropped).
* ``insightface``: SCRFD boxes + 5 points when an insightface model pack exists locally (never
  downloaded): ``$INSIGHTFACE_HOME/models/<pack>`` or ``~/.insightface/models/<pack>`` holding a
  ``det_*.onnx`` (``buffalo_l`` preferred). Its 106-point model is not used: the manifest stores dlib's
  68 points, computed on the aligned crop whatever the detector.
* ``auto``: ``insightface`` when a local pack exists, else ``mtcnn``.

Images are RGB ``uint8`` arrays ``[H, W, 3]``; grayscale and RGBA inputs are converted by
:func:`to_rgb`. Points are ``float32`` ``(x, y)`` in image pixels.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from datamodules.errors import UserError

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
        """Area of the face box in pixels."""
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
    """Path of a dlib model file shipped by ``face_recognition_models`` (a clear error when missing)."""
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


def detect_faces(image: np.ndarray, min_score: float = 0.9, min_size: int = 20) -> list[Face]:
    """All faces MTCNN finds with confidence >= ``min_score`` and side >= ``min_size``, largest first.

    A larger ``min_size`` skips the finest scales of MTCNN's image pyramid (much faster when the face
    size is known, e.g. while tracking).
    """
    import torch

    img = to_rgb(image)
    net = _mtcnn()
    net.min_face_size = max(12, int(min_size))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # MTCNN runs many tiny ops: one thread is several times faster on a busy CPU
    try:
        boxes, probs, points = net.detect(img, landmarks=True)
    finally:
        torch.set_num_threads(threads)
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


BACKENDS = ("auto", "mtcnn", "dlib", "insightface")


class FaceBackendError(UserError, RuntimeError):
    """A face backend is unknown or unusable offline (the message says why and what to do)."""

    hint = "--backend mtcnn always works offline (facenet-pytorch ships its weights)"


def insightface_pack() -> Path | None:
    """A local insightface model-pack folder with a detector (``det_*.onnx``), or None."""
    import os

    roots = [Path(os.environ["INSIGHTFACE_HOME"]).expanduser()] if os.environ.get("INSIGHTFACE_HOME") else []
    roots.append(Path("~/.insightface").expanduser())
    for r in roots:
        models = r / "models"
        if not models.is_dir():
            continue
        packs = sorted(models.iterdir(), key=lambda p: (p.name != "buffalo_l", p.name))
        for pack in packs:
            if pack.is_dir() and any(pack.glob("det_*.onnx")):
                return pack
    return None


@lru_cache(maxsize=1)
def _insightface_app(pack: str):
    from datamodules.optional import require

    FaceAnalysis = require("insightface.app", "the insightface face backend").FaceAnalysis  # noqa: N806

    app = FaceAnalysis(name=pack, allowed_modules=["detection"], providers=["CPUExecutionProvider"])
    app.prepare(ctx_id=-1, det_size=(640, 640))
    return app


def detect_faces_insightface(image: np.ndarray, min_score: float = 0.5, min_size: int = 0) -> list[Face]:
    """SCRFD faces (box + 5 points) from the local insightface pack, largest first."""
    pack = insightface_pack()
    if pack is None:
        raise FaceBackendError(
            "insightface backend: no local model pack (det_*.onnx under $INSIGHTFACE_HOME/models/<pack> or "
            "~/.insightface/models/<pack>); models are never downloaded. Use --backend mtcnn or dlib."
        )
    bgr = np.ascontiguousarray(to_rgb(image)[:, :, ::-1])
    faces = [
        Face(box=f.bbox.astype(np.float32), score=float(f.det_score), points5=f.kps.astype(np.float32))
        for f in _insightface_app(str(pack)).get(bgr)
        if float(f.det_score) >= min_score
    ]
    return sorted(faces, key=lambda f: -f.area)


@lru_cache(maxsize=1)
def _dlib_detector():
    import dlib

    return dlib.get_frontal_face_detector()


def detect_faces_dlib(image: np.ndarray, min_score: float = 0.0, min_size: int = 0) -> list[Face]:
    """dlib HOG faces (1 upsample); 5 points from the 68 landmarks, largest first."""
    img = to_rgb(image)
    rects, scores, _ = _dlib_detector().run(img, 1, 0.0)
    faces = []
    for r, sc in zip(rects, scores, strict=True):
        if sc < min_score:
            continue
        box = np.array([r.left(), r.top(), r.right(), r.bottom()], dtype=np.float32)
        faces.append(Face(box=box, score=float(sc), points5=points5_from_68(landmarks68(img, box))))
    return sorted(faces, key=lambda f: -f.area)


def resolve_backend(name: str = "auto") -> str:
    """``auto`` -> ``insightface`` if a local pack exists else ``mtcnn``; unknown names raise."""
    if name not in BACKENDS:
        raise FaceBackendError(f"unknown face backend {name!r}; known: {', '.join(BACKENDS)}")
    if name == "auto":
        return "insightface" if insightface_pack() is not None else "mtcnn"
    if name == "insightface" and insightface_pack() is None:
        detect_faces_insightface(np.zeros((8, 8, 3), np.uint8))  # raises the explanatory error
    return name


def get_detector(name: str = "auto"):
    """A function ``(rgb, min_size=...) -> list[Face]`` (largest first) for backend ``name``."""
    return {"mtcnn": detect_faces, "dlib": detect_faces_dlib, "insightface": detect_faces_insightface}[
        resolve_backend(name)
    ]

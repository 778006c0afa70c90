"""Per-frame nuisance features ("confounds") a referee would name, as plain functions of the crop.

What a detector may read instead of the forgery: how large the face was in the source and how much the
crop was resized, how sharp, bright and contrasted the crop is, how compressed its source was, and where
the head points. Preprocessing (``datamodules.preprocess``) records them per frame in the manifest
(:data:`FEATURES`, columns of ``datamodules.manifest``); ``benchmark.metrics.confounds`` matches on them and
``benchmark.runner.shortcut`` fits a detector on them alone.

* ``face_px``: the face detector's box in SOURCE pixels, ``sqrt(width * height)``;
  ``resize``: the crop's side over that box side (> 1: the face was enlarged).
* ``sharpness``: the variance of the Laplacian of the grey crop (Pech-Pacheco et al., ICPR 2000), OpenCV's
  4-neighbour kernel, reflected borders.
* ``brightness``: mean grey level; ``contrast``: RMS contrast, the population std of the grey levels
  (0-255 scale; grey = ITU-R BT.601 luma, as OpenCV's ``RGB2GRAY``).
* ``jpeg_quality``: for a JPEG source, the IJG quality (1-100) whose scaled standard luminance table
  (ITU-T T.81 Annex K, Table K.1, scaled as libjpeg's ``jpeg_quality_scaling``) is nearest to the file's
  first quantisation table; NaN for any other source.
* ``blockiness``: for a decoded frame, the mean absolute grey difference across the 8 x 8 block
  boundaries of the SOURCE frame's grid over that inside the blocks, in the face box (1: no blocking;
  a measure in the manner of Wang, Sheikh and Bovik, ICIP 2002).
* ``yaw``, ``pitch``, ``roll`` (degrees): head pose from six of the 68 landmarks (nose tip, chin, outer
  eye corners, mouth corners: iBUG 300-W indices 30, 8, 36, 45, 48, 54) and a generic 3-D face with
  ``cv2.solvePnP`` (the generic model of S. Mallick, "Head Pose Estimation using OpenCV and Dlib",
  LearnOpenCV 2016, y and z turned to OpenCV's camera axes), on the CROP's landmarks with a pinhole
  camera of focal length = crop side at its centre. The crop is aligned by a 5-point similarity, so
  ``roll`` is what is left after alignment (near 0); yaw and pitch are the head's.
  Angles: ``R = Rz(roll) Ry(yaw) Rx(pitch)`` (rotations about the camera's x, then y, then z axis).

A value that cannot be computed from what is at hand is NaN and its reason is named in
:func:`missing_note`: never guessed.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

#: every feature, in manifest order
FEATURES: tuple[str, ...] = (
    "face_px",
    "resize",
    "sharpness",
    "brightness",
    "contrast",
    "jpeg_quality",
    "blockiness",
    "yaw",
    "pitch",
    "roll",
)
#: what the stored crop and its landmarks give (a manifest written before these features existed)
FROM_CROP: tuple[str, ...] = ("sharpness", "brightness", "contrast", "yaw", "pitch", "roll")

#: ITU-T T.81 Annex K, Table K.1: the standard luminance quantisation table (natural order)
STD_LUMINANCE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int64,
)

#: iBUG 300-W indices of the landmarks the generic model has: nose tip, chin, left eye outer corner,
#: right eye outer corner, left mouth corner, right mouth corner
POSE_LANDMARKS = (30, 8, 36, 45, 48, 54)
#: the generic 3-D face (Mallick 2016), x right, y DOWN, z AWAY from the camera (OpenCV's camera axes):
#: the published model has y up and z toward the viewer, so y and z change sign
GENERIC_FACE = np.array(
    [
        [0.0, 0.0, 0.0],
        [0.0, 330.0, 65.0],
        [-225.0, -170.0, 135.0],
        [225.0, -170.0, 135.0],
        [-150.0, 150.0, 125.0],
        [150.0, 150.0, 125.0],
    ],
    dtype=np.float64,
)


def grey(rgb: np.ndarray) -> np.ndarray:
    """The BT.601 grey image (float64, 0-255) of an RGB uint8 image (a grey image is returned as float)."""
    if rgb.ndim == 2:
        return rgb.astype(np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3] or a grey one [H, W]; got shape {rgb.shape}")
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float64)


def sharpness(g: np.ndarray) -> float:
    """Variance of the Laplacian (4-neighbour kernel, reflected borders) of a grey image."""
    return float(cv2.Laplacian(np.asarray(g, np.float64), cv2.CV_64F, ksize=1).var())


def brightness(g: np.ndarray) -> float:
    """Mean grey level."""
    return float(np.mean(g))


def contrast(g: np.ndarray) -> float:
    """RMS contrast: the population standard deviation of the grey levels."""
    return float(np.std(g))


def ijg_table(quality: int) -> np.ndarray:
    """The standard luminance table scaled to IJG ``quality`` (libjpeg's ``jpeg_quality_scaling``, baseline)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality {quality} is not in 1..100")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((STD_LUMINANCE * scale + 50) // 100, 1, 255)


def quality_from_table(table: np.ndarray | list[int]) -> float:
    """The IJG quality whose scaled luminance table is nearest (L1, entries sorted: the order the table is
    stored in does not matter) to ``table`` (64 values)."""
    t = np.sort(np.asarray(table, dtype=np.int64).ravel())
    if t.size != 64:
        raise ValueError(f"a JPEG quantisation table has 64 entries; got {t.size}")
    dist = [np.abs(np.sort(ijg_table(q).ravel()) - t).sum() for q in range(1, 101)]
    return float(1 + int(np.argmin(dist)))


def jpeg_quality(path: str | Path | bytes) -> float:
    """The estimated IJG quality of a JPEG file (or its bytes); NaN when it is not a JPEG."""
    from PIL import Image

    src = io.BytesIO(path) if isinstance(path, bytes) else path
    try:
        with Image.open(src) as im:
            tables = getattr(im, "quantization", None) if im.format == "JPEG" else None
    except (OSError, ValueError):
        return math.nan
    if not tables:
        return math.nan
    return quality_from_table(tables[min(tables)])


def blockiness(g: np.ndarray, origin: tuple[int, int] = (0, 0)) -> float:
    """Mean |difference| across 8 x 8 block boundaries over that inside the blocks (horizontal and vertical
    neighbours pooled); ``origin`` = ``(x0, y0)`` of ``g`` in the source frame, whose grid is the codec's.

    NaN when ``g`` has no boundary or no interior pair, or is flat inside the blocks."""
    g = np.asarray(g, np.float64)
    x0, y0 = origin
    dx = np.abs(np.diff(g, axis=1))  # between columns c and c + 1
    dy = np.abs(np.diff(g, axis=0))
    bx = (x0 + np.arange(g.shape[1] - 1) + 1) % 8 == 0  # a boundary lies left of column x0 + c + 1
    by = (y0 + np.arange(g.shape[0] - 1) + 1) % 8 == 0
    across = np.concatenate([dx[:, bx].ravel(), dy[by, :].ravel()])
    inside = np.concatenate([dx[:, ~bx].ravel(), dy[~by, :].ravel()])
    if not len(across) or not len(inside) or inside.mean() == 0:
        return math.nan
    return float(across.mean() / inside.mean())


def box_features(box: np.ndarray, crop_size: int) -> dict[str, float]:
    """``face_px`` (sqrt of the box's area in source pixels) and ``resize`` (crop side / that side)."""
    w, h = float(box[2] - box[0]), float(box[3] - box[1])
    if w <= 0 or h <= 0:
        raise ValueError(f"face box {list(map(float, box))} has no area")
    side = math.sqrt(w * h)
    return {"face_px": side, "resize": crop_size / side}


def source_blockiness(rgb: np.ndarray, box: np.ndarray) -> float:
    """:func:`blockiness` of the face box in the decoded SOURCE frame (the codec's grid is the frame's)."""
    h, w = rgb.shape[:2]
    x1, y1 = max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1])))
    x2, y2 = min(w, int(math.ceil(box[2]))), min(h, int(math.ceil(box[3])))
    if x2 - x1 < 9 or y2 - y1 < 9:
        return math.nan
    return blockiness(grey(rgb[y1:y2, x1:x2]), (x1, y1))


def angles(r: np.ndarray) -> tuple[float, float, float]:
    """``(yaw, pitch, roll)`` in degrees of a rotation matrix ``R = Rz(roll) Ry(yaw) Rx(pitch)``."""
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, -float(r[2, 0])))))
    pitch = math.degrees(math.atan2(float(r[2, 1]), float(r[2, 2])))
    roll = math.degrees(math.atan2(float(r[1, 0]), float(r[0, 0])))
    return yaw, pitch, roll


def camera(side: float) -> np.ndarray:
    """The pinhole camera of a ``side`` x ``side`` crop: focal length ``side``, principal point at its centre."""
    return np.array([[side, 0, side / 2], [0, side, side / 2], [0, 0, 1]], dtype=np.float64)


def head_pose(landmarks: np.ndarray, side: float) -> tuple[float, float, float]:
    """``(yaw, pitch, roll)`` degrees from 68 landmarks (pixels of a ``side``-pixel square crop).

    NaN for landmarks that are not finite or a pose ``solvePnP`` cannot find."""
    lm = np.asarray(landmarks, np.float64).reshape(-1, 2)
    if lm.shape[0] != 68:
        raise ValueError(f"head pose needs the 68 iBUG landmarks; got {lm.shape[0]} points")
    pts = lm[list(POSE_LANDMARKS)]
    if not np.isfinite(pts).all():
        return (math.nan,) * 3
    ok, rvec, _ = cv2.solvePnP(GENERIC_FACE, pts, camera(side), np.zeros(4), flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return (math.nan,) * 3
    return angles(cv2.Rodrigues(rvec)[0])


def crop_features(crop: np.ndarray, landmarks: np.ndarray | None) -> dict[str, float]:
    """The features of :data:`FROM_CROP` (pose NaN without landmarks)."""
    g = grey(crop)
    yaw, pitch, roll = (
        head_pose(landmarks, float(crop.shape[1])) if landmarks is not None else (math.nan,) * 3
    )
    return {
        "sharpness": sharpness(g),
        "brightness": brightness(g),
        "contrast": contrast(g),
        "yaw": yaw,
        "pitch": pitch,
        "roll": roll,
    }


def frame_features(
    crop: np.ndarray,
    landmarks: np.ndarray | None,
    box: np.ndarray | None = None,
    block: float | None = None,
    source_file: str | Path | None = None,
    reasons: Mapping[str, str] | None = None,
) -> dict[str, object]:
    """Every feature of one frame plus its ``confounds_note`` (what is missing, and why).

    Args:
        crop: the stored crop (RGB uint8).
        landmarks: its 68 landmarks in crop pixels (None: pose missing).
        box: the face box in source pixels (``face_px``, ``resize``).
        block: the :func:`source_blockiness` of that box in the decoded source frame.
        source_file: the image file the frame was decoded from (``jpeg_quality`` when it is a JPEG).
        reasons: why a feature is missing when it is, by feature (the default reasons name the input).
    """
    out: dict[str, object] = dict.fromkeys(FEATURES, math.nan)
    out.update(crop_features(crop, landmarks))
    if box is not None:
        out.update(box_features(box, int(crop.shape[1])))
    if block is not None:
        out["blockiness"] = float(block)
    if source_file is not None:
        out["jpeg_quality"] = jpeg_quality(source_file)
    default = {
        "face_px": "no source face box",
        "resize": "no source face box",
        "blockiness": "no face box in a decoded source frame",
        "jpeg_quality": "source is not a JPEG file"
        if source_file is not None
        else "source is not an image file",
        "yaw": "no landmarks",
        "pitch": "no landmarks",
        "roll": "no landmarks",
    }
    out["confounds_note"] = missing_note(out, {**default, **(reasons or {})})
    return out


def missing_note(values: Mapping[str, object], reasons: Mapping[str, str]) -> str:
    """``"face_px, resize: no source face box; jpeg_quality: ..."``: the NaN features grouped by reason."""
    by_reason: dict[str, list[str]] = {}
    for f in FEATURES:
        v = values.get(f, math.nan)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            by_reason.setdefault(reasons.get(f, "not computable"), []).append(f)
    return "; ".join(f"{', '.join(fs)}: {why}" for why, fs in by_reason.items())

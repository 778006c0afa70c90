"""5-point similarity alignment of faces (the ArcFace template, scaled with a margin).

The template is the standard 5-point ArcFace layout in a 112x112 crop (eye centres, nose tip, mouth
corners; Deng et al., CVPR 2019). ``margin`` shrinks it about the crop centre, so ``margin=1.3`` leaves
30% more context than the tight 112-px ArcFace crop (the DeepfakeBench setting, which also scales the
same template by 1.3). The similarity (rotation, uniform scale, translation) is the least-squares fit
of Umeyama (TPAMI 1991).
"""

from __future__ import annotations

import cv2
import numpy as np

ARCFACE_5 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float64,
)


def template(size: int = 256, margin: float = 1.3) -> np.ndarray:
    """The 5 target points ``[5, 2]`` in a ``size`` x ``size`` crop."""
    if margin <= 0 or size <= 0:
        raise ValueError(f"size and margin must be positive, got size={size}, margin={margin}")
    return ((ARCFACE_5 / 112.0 - 0.5) / margin + 0.5) * size


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``[2, 3]`` mapping ``src`` points onto ``dst`` (Umeyama, no reflection)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    var = (s**2).sum() / len(src)
    scale = (sig * sign).sum() / var if var > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def alignment_matrix(points5: np.ndarray, size: int = 256, margin: float = 1.3) -> np.ndarray:
    """The ``[2, 3]`` affine matrix taking image pixels to aligned-crop pixels."""
    return similarity(points5, template(size, margin))


def warp(image: np.ndarray, matrix: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    """Warp ``image`` (or a mask) into a ``size`` x ``size`` crop; outside the frame is black."""
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.warpAffine(
        image, matrix, (size, size), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``points`` ``[N, 2]`` mapped by the 2x3 affine ``matrix``, as float32."""
    pts = np.asarray(points, np.float64)
    return (pts @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def box_in_crop(box: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The axis-aligned bounds ``(x1, y1, x2, y2)`` of a box's four corners after ``matrix``."""
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    c = transform_points(np.array([[x1, y1], [x2, y1], [x1, y2], [x2, y2]]), matrix)
    return np.array([c[:, 0].min(), c[:, 1].min(), c[:, 0].max(), c[:, 1].max()], dtype=np.float32)

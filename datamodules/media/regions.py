"""Facial regions: the fixed order of region masks, landmarks -> masks, and masks -> patch grids.

``REGIONS`` is the one order used by every ``Batch.region_masks`` tensor and every region-aware model
(SFAM's facial-region experts; the six regions from landmarks are our reading of SFAM's abstract, see
``sfam/README.md``, "What follows the abstract, what is our reading").

Masks come from 68-point landmarks (iBUG 300-W order, ``[68, 2]`` ``(x, y)`` pixels of the crop):

* ``eyes``: each eye with its brow (points 17-21 + 36-41, 22-26 + 42-47), hulls padded a little;
* ``nose``: bridge and nostrils (27-35), padded;
* ``mouth``: outer lips (48-59), padded;
* ``forehead``: not covered by 68 points, so estimated (:func:`forehead_points`): the brow line lifted
  along the face's up axis by ``forehead_ratio`` times the brow-to-nose-base distance (the classic
  "facial thirds": hairline-brow ~ brow-nose base), lifted less at the temples so the top is rounded;
* ``skin``: the rest of the face polygon (jaw line closed by the forehead top): cheeks, jaw, chin;
* ``outside``: hair, neck, background, padding.

Overlaps are resolved by priority eyes > mouth > nose > forehead > skin > outside, so the hard masks
are a partition (one region per pixel). Soft masks blur that partition with a Gaussian whose width
scales with the inter-ocular distance and renormalise, so every pixel's masks still sum to 1.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

REGIONS: tuple[str, ...] = ("eyes", "nose", "mouth", "forehead", "skin", "outside")
"""eyes = eyes + brows; skin = cheeks and jaw skin; outside = hair, neck, background."""

_EYE_L = list(range(17, 22)) + list(range(36, 42))
_EYE_R = list(range(22, 27)) + list(range(42, 48))
_NOSE = list(range(27, 36))
_MOUTH = list(range(48, 60))
_JAW = list(range(0, 17))
_BROWS = list(range(17, 27))
_PAINT_ORDER = ("skin", "forehead", "nose", "mouth", "eyes")  # lowest priority first: later wins
_SHIFT = 4  # cv2.fillPoly sub-pixel bits


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"region masks need 68 landmarks of shape [68, 2], got {lm.shape}")
    if not np.isfinite(lm).all():
        raise ValueError("landmarks contain NaN or infinite values")
    return lm


def _size2(size: int | tuple[int, int]) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int | np.integer) else (int(size[0]), int(size[1]))
    if h <= 0 or w <= 0:
        raise ValueError(f"mask size must be positive, got {size}")
    return int(h), int(w)


def face_axes(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Unit ``right`` axis (eye to eye), unit ``up`` axis (away from the chin) and inter-ocular distance."""
    lm = _check_landmarks(landmarks)
    el, er = lm[36:42].mean(0), lm[42:48].mean(0)
    iod = float(np.linalg.norm(er - el))
    right = (er - el) / max(iod, 1e-6)
    up = np.array([right[1], -right[0]])
    if np.dot(lm[8] - (el + er) / 2, up) > 0:  # the chin must lie "down"
        up = -up
    return right, up, max(iod, 1e-6)


def forehead_points(landmarks: np.ndarray, forehead_ratio: float = 0.8) -> np.ndarray:
    """Estimated forehead top contour ``[10, 2]``, one point above each brow point (17..26, same order).

    The height is ``forehead_ratio`` x the distance, along the face's up axis, from the brow line to the
    nose base (point 33); points towards the temples are lifted less (a rounded forehead).
    """
    lm = _check_landmarks(landmarks)
    right, up, _ = face_axes(lm)
    return _forehead(lm, right, up, forehead_ratio)


def _forehead(lm: np.ndarray, right: np.ndarray, up: np.ndarray, forehead_ratio: float) -> np.ndarray:
    brows = lm[_BROWS]
    centre = brows.mean(0)
    height = forehead_ratio * max(float(np.dot(centre - lm[33], up)), 1e-6)
    along = (brows - centre) @ right
    t = along / max(float(np.abs(along).max()), 1e-6)
    return brows + up[None] * (height * (1.0 - 0.35 * t**2))[:, None]


def _padded_hull(points: np.ndarray, pad: float) -> np.ndarray:
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    c = hull.mean(0)
    d = hull - c
    n = np.linalg.norm(d, axis=1, keepdims=True)
    return hull + pad * d / np.maximum(n, 1e-6)


def region_polygons(landmarks: np.ndarray, forehead_ratio: float = 0.8) -> dict[str, list[np.ndarray]]:
    """The polygons (landmark pixel coordinates) painted for each region except ``outside``."""
    lm = _check_landmarks(landmarks)
    right, up, iod = face_axes(lm)
    top = _forehead(lm, right, up, forehead_ratio)
    return {
        "skin": [np.concatenate([lm[_JAW], top[::-1]])],
        "forehead": [np.concatenate([lm[_BROWS], top[::-1]])],
        "nose": [_padded_hull(lm[_NOSE], 0.08 * iod)],
        "mouth": [_padded_hull(lm[_MOUTH], 0.10 * iod)],
        "eyes": [_padded_hull(lm[_EYE_L], 0.10 * iod), _padded_hull(lm[_EYE_R], 0.10 * iod)],
    }


def label_map(
    landmarks: np.ndarray,
    size: int | tuple[int, int],
    src_size: int | tuple[int, int] | None = None,
    forehead_ratio: float = 0.8,
) -> np.ndarray:
    """Region index per pixel, ``uint8 [H, W]`` (indices into ``REGIONS``).

    Args:
        landmarks: ``[68, 2]`` ``(x, y)`` in the pixel frame of an image of ``src_size``.
        size: output ``H`` (= ``W``) or ``(H, W)``.
        src_size: size of the image the landmarks refer to (default: ``size``); coordinates are scaled.
        forehead_ratio: how far the estimated forehead reaches above the brows, in brow-to-nose-base
            distances (:func:`forehead_points`).
    """
    h, w = _size2(size)
    sh, sw = _size2(src_size) if src_size is not None else (h, w)
    lm = _check_landmarks(landmarks)
    # pixel centres: x_out + 0.5 = (x_src + 0.5) * w / sw
    scale = np.array([w / sw, h / sh])
    lm = (lm + 0.5) * scale - 0.5
    out = np.full((h, w), REGIONS.index("outside"), dtype=np.uint8)
    polys = region_polygons(lm, forehead_ratio)
    for name in _PAINT_ORDER:
        pts = [np.round(p * (1 << _SHIFT)).astype(np.int32) for p in polys[name]]
        cv2.fillPoly(out, pts, REGIONS.index(name), lineType=cv2.LINE_8, shift=_SHIFT)
    return out


def region_masks(
    landmarks: np.ndarray,
    size: int | tuple[int, int],
    src_size: int | tuple[int, int] | None = None,
    soft: bool = True,
    sigma: float = 0.08,
    forehead_ratio: float = 0.8,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Region masks ``float32 [R, H, W]`` in the order of ``REGIONS``; every pixel's masks sum to 1.

    Args:
        landmarks: ``[68, 2]`` in the pixel frame of an image of ``src_size`` (default: ``size``).
        size: output ``H`` (= ``W``) or ``(H, W)``.
        src_size: size of the image the landmarks refer to (default: ``size``); coordinates are scaled.
        soft: blur the hard partition (Gaussian, ``sigma`` x the inter-ocular distance at the output
            resolution) and renormalise; ``False`` gives one-hot masks.
        sigma: the blur's standard deviation, as a fraction of the inter-ocular distance.
        forehead_ratio: as :func:`label_map`.
        out: a C-contiguous float32 ``[R, H, W]`` array to write the masks into (returned).
    """
    h, w = _size2(size)
    if out is None:
        out = np.empty((len(REGIONS), h, w), np.float32)
    elif out.shape != (len(REGIONS), h, w) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(len(REGIONS), h, w)}")
    if not soft:
        out[...] = _onehot(label_map(landmarks, (h, w), src_size, forehead_ratio))
        return out
    sh, sw = _size2(src_size) if src_size is not None else (h, w)
    _, _, iod = face_axes(landmarks)
    s = sigma * iod * (w / sw + h / sh) / 2
    # A wide blur is smooth at a coarser grid: paint and blur at 1/d resolution, then interpolate back
    # (bilinear interpolation is a convex combination, so the masks still sum to 1). 4x fewer pixels per
    # halving keeps this ~1 ms at 256 px.
    d = int(min(4, max(1, s // 1.5)))
    lh, lw = max(1, round(h / d)), max(1, round(w / d))
    onehot = _onehot(label_map(landmarks, (lh, lw), (sh, sw), forehead_ratio))
    s_low = s * lw / w
    if s_low >= 0.3:  # below a third of a pixel a blur changes nothing
        k = int(2 * round(3 * s_low) + 1)
        hwc = cv2.GaussianBlur(onehot.transpose(1, 2, 0), (k, k), s_low, borderType=cv2.BORDER_REPLICATE)
    else:
        hwc = onehot.transpose(1, 2, 0)
    hwc = hwc.reshape(lh, lw, -1)
    # Renormalise at the low resolution: bilinear upsampling is a convex combination of pixels that
    # each sum to 1, so the output sums to 1 up to float rounding, at 1/d^2 of the cost.
    hwc = hwc / hwc.sum(2, keepdims=True)
    if (lh, lw) == (h, w):
        out[...] = hwc.transpose(2, 0, 1)
        return out
    for r, plane in enumerate(cv2.split(np.ascontiguousarray(hwc, dtype=np.float32))):
        cv2.resize(plane, (w, h), dst=out[r], interpolation=cv2.INTER_LINEAR)  # straight into CHW
    return out


def _onehot(labels: np.ndarray) -> np.ndarray:
    return (labels[None] == np.arange(len(REGIONS), dtype=np.uint8)[:, None, None]).astype(np.float32)


def pool_to_grid(masks: Tensor | np.ndarray, grid: int) -> Tensor:
    """Area-pool region masks ``[R, H, W]`` or ``[B, R, H, W]`` to a ``grid x grid`` patch grid.

    Returns the soft patch-to-region assignment ``[G*G, R]`` (or ``[B, G*G, R]``), patches in row-major
    order (as ViT patch tokens), each row summing to 1.
    """
    m = torch.as_tensor(masks, dtype=torch.float32)
    squeeze = m.dim() == 3
    if squeeze:
        m = m[None]
    if m.dim() != 4:
        raise ValueError(f"pool_to_grid expects [R, H, W] or [B, R, H, W] masks, got {tuple(m.shape)}")
    if grid <= 0:
        raise ValueError(f"grid must be positive, got {grid}")
    pooled = F.adaptive_avg_pool2d(m, grid)  # exact area average when H, W are multiples of grid
    pooled = pooled / pooled.sum(1, keepdim=True).clamp_min(1e-8)
    out = pooled.flatten(2).transpose(1, 2).contiguous()
    return out[0] if squeeze else out

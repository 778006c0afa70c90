"""Self-blended fakes with their exact soft forgery mask, in the manner of SBI.

Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022. A real face is blended
with a slightly altered copy of itself, ``I = m * source + (1 - m) * target``, which reproduces the
generic traces of face swapping (blending boundary, colour and frequency mismatch, small landmark
misalignment) without any generator. Because we make the blend, the soft mask ``m`` is exact: detectors
that need pixel or patch supervision (Forensics Adapter, SFAM) get it for every pseudo-fake.

Recipe, written from the paper's description (Sec. 3) and the released code's parameters
(mapooon/SelfBlendedImages ``src/utils/sbi.py``: ``get_source_transforms``, ``randaffine``,
``self_blending``; ``src/utils/blend.py``: ``get_blend_mask``, ``dynamic_blend``):

1. Mask: a landmark hull, its type drawn uniformly from four (:data:`HULL_TYPES`).
2. Source-target augmentation: on either the source or the target (p = 0.5 each) RGB shift +-20,
   hue/saturation/value shift +-0.3, brightness/contrast +-0.1, then x2/x4 down-and-up scaling or a
   sharpen (alpha 0.2-0.5, lightness 0.5-1).
3. Source and mask warped by the same random affine (translate x +-3 %, y +-1.5 %, scale 0.95-1/0.95);
   the mask alone then warped by an elastic field (alpha 50, sigma 7).
4. Mask resized to a random 192-256 px side, blurred (odd kernel 5-25), kept where fully inside
   (an erosion), blurred again (odd kernel 5-25, random sigma 5-45), renormalised, resized back, then
   scaled by a blend ratio from {0.25, 0.5, 0.75, 1, 1, 1}.

Deviations, deliberate:
* The hull types are our own four (SBI reuses Face X-ray's ``dfl_full / extended / components /
  facehull``): ``facehull`` (all 68 points), ``extended`` (jaw + the estimated forehead of
  :mod:`datamodules.media.regions`), ``inner`` (brows, eyes, nose, mouth; no jaw) and ``components`` (union of
  two hulls: brows+eyes+nose bridge, and lower cheeks+nose+mouth+chin). The 81-point forehead landmarks SBI optionally uses do not exist
  in 68-point manifests; ``extended`` plays their role.
* SBI's hue/saturation/value limits (+-0.3) are in OpenCV uint8 units, so they barely move a pixel;
  we keep those magnitudes but apply them in float before rounding, so they are not rounded away.
* SBI also crops with a random margin and mirrors landmarks; the crop is the preprocessing's job here.
* The blended image is rounded to uint8; ``image - target = round(m * (source - target))`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from datamodules.media.regions import forehead_points

HULL_TYPES: tuple[str, ...] = ("facehull", "extended", "inner", "components")
BLEND_RATIOS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


@dataclass
class Blend:
    """A self-blended fake.

    Attributes:
        image: ``uint8 [H, W, 3]`` blended image.
        mask: ``float32 [H, W]`` in [0, 1], the exact weight of the source in every pixel.
        source: ``uint8 [H, W, 3]`` the altered, warped copy that was blended in.
        target: ``uint8 [H, W, 3]`` the background image (the input, possibly colour-altered).
        hull: which hull type made the mask.
    """

    image: np.ndarray
    mask: np.ndarray
    source: np.ndarray
    target: np.ndarray
    hull: str


def hull_mask(landmarks: np.ndarray, size: tuple[int, int], hull: str) -> np.ndarray:
    """Binary ``float32 [H, W]`` face mask of the given hull type from 68 landmarks (pixels of ``size``)."""
    lm = np.asarray(landmarks, dtype=np.float32)
    if lm.shape != (68, 2):
        raise ValueError(f"blending needs 68 landmarks of shape [68, 2], got {lm.shape}")
    if hull == "facehull":
        groups = [lm]
    elif hull == "extended":
        groups = [np.concatenate([lm[:17], forehead_points(lm).astype(np.float32)])]
    elif hull == "inner":
        groups = [lm[17:]]
    elif hull == "components":  # upper band (brows, eyes, bridge) and lower face (cheeks, nose, mouth)
        groups = [lm[np.r_[17:27, 36:48, 27:31]], lm[np.r_[2:15, 29:36, 48:68]]]
    else:
        raise ValueError(f"unknown hull type {hull!r}; known: {', '.join(HULL_TYPES)}")
    out = np.zeros(size, dtype=np.uint8)
    for g in groups:
        pts = cv2.convexHull(np.round(g * 16).astype(np.int32))
        cv2.fillConvexPoly(out, pts, 1, lineType=cv2.LINE_8, shift=4)
    return out.astype(np.float32)


def _color_frequency(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SBI's source-target augmentation on a float32 RGB image in [0, 255]."""
    out = img + rng.uniform(-20, 20, size=3).astype(np.float32)  # RGB shift
    hsv = cv2.cvtColor(np.clip(out, 0, 255) / 255.0, cv2.COLOR_RGB2HSV)  # H in degrees, S and V in [0, 1]
    dh, ds, dv = rng.uniform(-0.3, 0.3, size=3)
    hsv[..., 0] = (hsv[..., 0] + 2.0 * dh) % 360.0  # OpenCV uint8 hue unit = 2 degrees
    hsv[..., 1] = np.clip(hsv[..., 1] + ds / 255.0, 0, 1)
    hsv[..., 2] = np.clip(hsv[..., 2] + dv / 255.0, 0, 1)
    out = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0
    alpha, beta = 1.0 + rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1) * 255.0  # contrast, brightness
    out = np.clip(out * alpha + beta, 0, 255)
    h, w = out.shape[:2]
    if rng.random() < 0.5:  # frequency: lose detail by down-and-up scaling
        r = int(rng.choice([2, 4]))
        small = cv2.resize(out, (max(1, w // r), max(1, h // r)), interpolation=cv2.INTER_NEAREST)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    else:  # frequency: sharpen
        a, light = rng.uniform(0.2, 0.5), rng.uniform(0.5, 1.0)
        k = -np.ones((3, 3), np.float32)
        k[1, 1] = 8 + light
        kernel = (1 - a) * np.pad([[1.0]], 1).astype(np.float32) + a * k
        out = cv2.filter2D(out, -1, kernel, borderType=cv2.BORDER_REFLECT)
    return np.clip(out, 0, 255).astype(np.float32)


def _affine(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    s = rng.uniform(0.95, 1 / 0.95)
    tx, ty = rng.uniform(-0.03, 0.03) * w, rng.uniform(-0.015, 0.015) * h
    cx, cy = (w - 1) / 2, (h - 1) / 2
    return np.array([[s, 0, (1 - s) * cx + tx], [0, s, (1 - s) * cy + ty]], dtype=np.float32)


def _elastic(
    mask: np.ndarray, rng: np.random.Generator, alpha: float = 50.0, sigma: float = 7.0
) -> np.ndarray:
    h, w = mask.shape
    k = int(2 * round(3 * sigma) + 1)
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (k, k), sigma) * alpha
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (k, k), sigma) * alpha
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(mask, gx + dx, gy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _odd(rng: np.random.Generator, lo: int = 5, hi: int = 25) -> int:
    return int(rng.choice(np.arange(lo, hi + 1, 2)))


def _soften(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = mask.shape
    sh, sw = int(rng.integers(192, 257)), int(rng.integers(192, 257))
    m = cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_LINEAR)
    k1 = _odd(rng)
    m = cv2.GaussianBlur(m, (k1, k1), 0)
    m = m / max(float(m.max()), 1e-6)
    m[m < 1] = 0  # keep what is fully inside: shrinks the hull so the next blur stays within it
    if m.max() <= 0:  # a hull thinner than the kernel: fall back to the un-eroded mask
        m = (cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_LINEAR) > 0.5).astype(np.float32)
    k2 = _odd(rng)
    m = cv2.GaussianBlur(m, (k2, k2), float(rng.integers(5, 46)))
    m = m / max(float(m.max()), 1e-6)
    return np.clip(cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)


def self_blend(
    image: np.ndarray,
    landmarks: np.ndarray,
    rng: np.random.Generator,
    hull: str | None = None,
    ratio: float | None = None,
) -> Blend:
    """Blend ``image`` with an altered copy of itself inside a landmark hull (SBI).

    Args:
        image: ``uint8 [H, W, 3]`` RGB real face crop.
        landmarks: ``[68, 2]`` ``(x, y)`` in the crop's pixels.
        rng: the only source of randomness (seed it for reproducible fakes).
        hull: force a hull type (default: uniform over :data:`HULL_TYPES`).
        ratio: force the blend ratio (default: drawn from :data:`BLEND_RATIOS`).
    """
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"self_blend needs a uint8 RGB image [H, W, 3], got {img.dtype} {img.shape}")
    h, w = img.shape[:2]
    hull = hull or HULL_TYPES[int(rng.integers(len(HULL_TYPES)))]
    mask = hull_mask(landmarks, (h, w), hull)
    if mask.sum() == 0:
        raise ValueError("the landmark hull is empty inside the image: landmarks outside the crop?")
    source = img.astype(np.float32)
    target = img.astype(np.float32)
    if rng.random() < 0.5:
        source = _color_frequency(source, rng)
    else:
        target = _color_frequency(target, rng)
    matrix = _affine(h, w, rng)
    source = cv2.warpAffine(source, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    mask = cv2.warpAffine(mask, matrix, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    mask = _elastic(mask, rng)
    mask = _soften(mask, rng)
    mask *= float(ratio if ratio is not None else rng.choice(BLEND_RATIOS))
    source_u8 = np.clip(np.round(source), 0, 255).astype(np.uint8)
    target_u8 = np.clip(np.round(target), 0, 255).astype(np.uint8)
    m3 = mask[..., None]
    blended = m3 * source_u8.astype(np.float32) + (1 - m3) * target_u8.astype(np.float32)
    return Blend(
        image=np.clip(np.round(blended), 0, 255).astype(np.uint8),
        mask=mask.astype(np.float32),
        source=source_u8,
        target=target_u8,
        hull=hull,
    )

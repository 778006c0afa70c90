"""The seven DeeperForensics-1.0 distortions (Jiang et al., CVPR 2020), each at its five published levels.

Source of every definition and level below: the authors' released perturbation code,
``EndlessSora/DeeperForensics-1.0``, files ``perturbation/distortions.py`` (the functions) and
``perturbation/add_distortion_to_video.py`` (``get_distortion_parameter``: the level table; type codes
CS, CC, BW, GNC, GB, JPEG, VC). The paper names the seven types; the code fixes what they compute. The
released code reads BGR frames with OpenCV; every function here takes and returns RGB ``uint8 [H, W, 3]``
and reproduces the released computation in that order of channels. The released code truncates
(``astype(np.uint8)``) rather than rounding; so do we.

======================  ====  =====================================  ==================================
distortion (name)       code  levels 1..5 (released parameter)       published definition
======================  ====  =====================================  ==================================
color_saturation        CS    0.4, 0.3, 0.2, 0.1, 0.0 (factor)       chroma of Y'CbCr scaled by factor
color_contrast          CC    0.85, 0.725, 0.6, 0.475, 0.35          every value multiplied by factor
block_wise              BW    16, 32, 48, 64, 80 (blocks)            8x8 grey (128) blocks at random places
gaussian_noise_color    GNC   0.001, 0.002, 0.005, 0.01, 0.05 (var)  white noise in Y', Cb, Cr
gaussian_blur           GB    7, 9, 13, 17, 21 (kernel side)         Gaussian, sigma = side / 6
jpeg_compression        JPEG  2, 3, 4, 5, 6 (factor)                 down- then up-sampling (see below)
video_compression       VC    30, 32, 35, 38, 40 (x264 CRF)          H.264 re-encode (:mod:`.video`)
======================  ====  =====================================  ==================================

Each definition as the released code computes it:

* **CS** (``color_saturation``). The frame goes to OpenCV's float YCrCb (``Y = 0.299 R + 0.587 G +
  0.114 B``, ``Cr = 0.713 (R - Y) + 0.5``, ``Cb = 0.564 (B - Y) + 0.5``: OpenCV's float offset is 0.5
  although the values are on the 0-255 scale), each channel is rescaled to studio range
  (``(x * 219 + 16) / 255`` for Y, ``224`` for Cb/Cr), Cb and Cr become ``0.5 + (c - 0.5) * factor``,
  and the way back inverts each step (OpenCV's inverse ``R = Y + 1.403 Cr'``, ``G = Y - 0.714 Cr' -
  0.344 Cb'``, ``B = Y + 1.773 Cb'``). Net effect, derived from those equations: chroma scaled by
  ``factor`` plus a constant chroma shift of ``-(1 - factor) / 448`` (the studio offsets do not cancel
  around 0.5), so a grey pixel ``(v, v, v)`` comes out ``(v-1, v, v-1)``. We apply that net affine map
  (one ``cv2.transform``) and truncate: on the astronaut photo it differs from running the released
  function in 1 value of 786,432 (float32 rounding order).
* **CC** (``color_contrast``): ``uint8(float32(x) * factor)`` on every channel (a darkening towards 0,
  not a stretch about the mean). albumentations' ``MultiplicativeNoise`` with a fixed multiplier computes
  exactly this (a float32 lookup table, clipped and truncated): bit-identical to the released function.
* **BW** (``block_wise``): ``min(H, W) // 256 * blocks`` blocks of 8x8 pixels set to 128 in all channels,
  top-left corner uniform in ``[0, W - 9] x [0, H - 9]`` (``random.randint(0, W - 1 - 8)``), overlaps
  allowed. Deviation: the count is ``max(1, min(H, W) // 256) * blocks``, because the released formula
  gives no block at all on a crop under 256 px. albumentations' ``CoarseDropout`` draws corners in
  ``[0, W - 8]`` (one more position), so it is not used.
* **GNC** (``gaussian_noise_color``): the Y'CbCr image above (studio range), divided by 255, gets i.i.d.
  ``N(0, var)`` on each of its three channels, and goes back to RGB, clipped to [0, 255] and truncated.
  On the 0-255 scale that is noise of standard deviation ``sqrt(var) * 255^2 / 219`` on Y and
  ``sqrt(var) * 255^2 / 224`` on Cb/Cr (9.4 and 9.2 at level 1, 66 and 65 at level 5), carried into
  RGB by OpenCV's inverse matrix, so R, G and B get correlated noise of different spread. We add
  ``M @ noise`` to the RGB image directly (``M`` = that inverse matrix times the two scales), which leaves
  out the released float round trip's own error (under 0.1 level, far below the noise). albumentations'
  ``GaussNoise`` adds noise in RGB, so it is not used. Speed: fresh normals cost 1.8 ms per 256 px crop,
  more than the rest of a test sample; instead a fixed bank of 2^20 pixels of such RGB noise (unit
  variance in Y'CbCr, carried into RGB) is drawn once per process and each sample takes a window at a
  pixel offset drawn from its own seed, scaled by ``sqrt(var)``: one image's noise is exactly i.i.d. in
  Y'CbCr (windows of different samples may overlap; that changes no image's noise distribution).
* **GB** (``gaussian_blur``): ``cv2.GaussianBlur(img, (k, k), k / 6)``: a separable Gaussian of side
  ``k`` (``exp(-x^2 / (2 sigma^2))``, ``x = -(k//2) .. k//2``, normalised), border reflect-101.
  albumentations' ``GaussianBlur`` with ``blur_limit=(k, k)`` and ``sigma_limit=(k/6, k/6)`` builds the
  same kernel and border (``cv2.sepFilter2D`` in float): values differ from OpenCV's fixed-point
  ``GaussianBlur`` by one level at 2-5 % of pixels (rounding), never more; it is twice as fast at k=21,
  and faster still with its kernel built once per level instead of at every call.
* **JPEG** (``jpeg_compression``): despite its name the released function does not run a JPEG codec:
  it resizes the frame to ``(W // f, H // f)`` and back to ``(W, H)``, both with ``cv2.resize``'s default
  bilinear interpolation (half-pixel centres, no anti-aliasing), i.e. a loss of resolution by ``f``.
  Reproduced exactly (same calls). albumentations' ``Downscale`` rounds ``W / f`` and maps with ``1/f``
  instead of ``W // f``, so it differs at f = 6 on 256 px.
* **VC** (``video_compression``): ``ffmpeg -i in.mp4 -crf c out.mp4``, i.e. libx264 with ffmpeg's
  defaults (preset medium) at constant rate factor ``c``. See :mod:`datamodules.media.perturb.video`.

In DeeperForensics-1.0 itself, the frames of the six image distortions are then written to a video again
(XVID, then ffmpeg's default H.264, ``--via_xvid``); here each distortion acts alone on the stored face
crop, so it can be measured without a second, uncontrolled compression.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import cv2
import numpy as np

# Level tables: perturbation/add_distortion_to_video.py, get_distortion_parameter (level 1 first).
LEVELS: dict[str, tuple[Any, ...]] = {
    "color_saturation": (0.4, 0.3, 0.2, 0.1, 0.0),
    "color_contrast": (0.85, 0.725, 0.6, 0.475, 0.35),
    "block_wise": (16, 32, 48, 64, 80),
    "gaussian_noise_color": (0.001, 0.002, 0.005, 0.01, 0.05),
    "gaussian_blur": (7, 9, 13, 17, 21),
    "jpeg_compression": (2, 3, 4, 5, 6),
    "video_compression": (30, 32, 35, 38, 40),
}
CODES = {
    "color_saturation": "CS",
    "color_contrast": "CC",
    "block_wise": "BW",
    "gaussian_noise_color": "GNC",
    "gaussian_blur": "GB",
    "jpeg_compression": "JPEG",
    "video_compression": "VC",
}

# OpenCV's documented float YCrCb coefficients (cvtColor, COLOR_RGB2YCrCb / COLOR_YCrCb2RGB).
LUMA = np.array([0.299, 0.587, 0.114])
_CR, _CB = 0.713, 0.564  # forward chroma scales
_INV = np.array([[1.0, 1.403, 0.0], [1.0, -0.714, -0.344], [1.0, 0.0, 1.773]])  # RGB from (Y, Cr', Cb')
# Studio-range rescaling of the released bgr2ycbcr / ycbcr2bgr: Y spans 219 levels, Cb/Cr 224.
_Y_RANGE, _C_RANGE = 219.0, 224.0
_FLOAT_OFFSET = 0.5  # OpenCV's chroma offset for float images

BLOCK, BLOCK_VALUE = 8, 128


def _check(rgb: np.ndarray) -> None:
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected a uint8 RGB image [H, W, 3], got {rgb.dtype} {rgb.shape}")


def _truncate(x: np.ndarray) -> np.ndarray:
    """The released ``np.clip(x, 0, 255).astype(np.uint8)`` (truncation towards zero)."""
    np.clip(x, 0, 255, out=x)
    return x.astype(np.uint8)


@lru_cache(maxsize=16)
def saturation_matrix(factor: float) -> np.ndarray:
    """The ``[3, 4]`` affine map (RGB, 1) -> RGB that the released colour_saturation computes."""
    eye = np.eye(3)
    d_cr, d_cb = _CR * (eye[0] - LUMA), _CB * (eye[2] - LUMA)  # Cr - 0.5 and Cb - 0.5 as rows over RGB
    # c -> (c 224 + 16) / 255 -> 0.5 + (. - 0.5) factor -> (. 255 - 16) / 224 gives factor c + (1 - factor)
    # (0.5 255 - 16) / 224; with OpenCV's float offset c = d + 0.5 that is d factor - (1 - factor) / 448.
    shift = (1.0 - factor) * ((0.5 * 255.0 - 16.0) / _C_RANGE - _FLOAT_OFFSET)
    chroma = np.stack([factor * d_cr, factor * d_cb])  # [2, 3]
    m = np.zeros((3, 4))
    m[:, :3] = LUMA + _INV[:, 1:] @ chroma
    m[:, 3] = _INV[:, 1:] @ np.array([shift, shift])
    return m.astype(np.float32)


def color_saturation(rgb: np.ndarray, rng: np.random.Generator | None, factor: float) -> np.ndarray:
    """DeeperForensics-1.0's colour saturation change (Jiang et al., CVPR 2020): saturation scaled by
    ``factor``."""
    _check(rgb)
    out = cv2.transform(rgb.astype(np.float32), saturation_matrix(float(factor)))
    return _truncate(out)


@lru_cache(maxsize=16)
def _multiply(factor: float):
    import albumentations as A

    return A.MultiplicativeNoise(multiplier=(factor, factor), per_channel=False, elementwise=False, p=1.0)


def color_contrast(rgb: np.ndarray, rng: np.random.Generator | None, factor: float) -> np.ndarray:
    """DeeperForensics-1.0's colour contrast change: pixel values multiplied by ``factor``."""
    _check(rgb)
    # The transform's own parameter draw would give this same constant (a range of one value); passing
    # it to ``apply`` skips that per-call overhead. A scalar multiplier uses one lookup table.
    return _multiply(float(factor)).apply(rgb, multiplier=float(factor))


def block_count(shape: tuple[int, ...], blocks: int) -> int:
    """Blocks on an image of ``shape``: ``blocks`` per 256 px of the short side, at least ``blocks``."""
    return max(1, min(shape[0], shape[1]) // 256) * int(blocks)


def block_corners(shape: tuple[int, ...], blocks: int, rng: np.random.Generator) -> np.ndarray:
    """``[n, 2]`` top-left corners ``(x, y)``, each uniform in ``[0, W - 9] x [0, H - 9]``."""
    h, w = shape[:2]
    if min(h, w) <= BLOCK:
        raise ValueError(f"block_wise needs an image larger than {BLOCK} px, got {h}x{w}")
    return rng.integers(0, (w - BLOCK, h - BLOCK), size=(block_count(shape, blocks), 2))


def block_wise(rgb: np.ndarray, rng: np.random.Generator, blocks: int) -> np.ndarray:
    """DeeperForensics-1.0's block-wise distortion: ``blocks`` gray blocks at positions drawn from ``rng``."""
    _check(rgb)
    out = rgb.copy()
    for x, y in block_corners(rgb.shape, blocks, rng).tolist():  # Python ints: slicing is 2x faster
        out[y : y + BLOCK, x : x + BLOCK] = BLOCK_VALUE
    return out


def noise_scales(variance: float) -> np.ndarray:
    """Standard deviation of the released noise on (Y, Cr, Cb), on the 0-255 scale."""
    sigma = float(np.sqrt(variance))
    return sigma * 255.0**2 / np.array([_Y_RANGE, _C_RANGE, _C_RANGE])


def rgb_noise_matrix() -> np.ndarray:
    """``[3, 3]``: RGB noise per unit ``sqrt(var)`` from unit normals on (Y, Cr, Cb)."""
    return (_INV * noise_scales(1.0)).astype(np.float32)


_BANK_PIXELS = 1 << 20  # 12 MB of float32 RGB noise
_BANK_SEED = 20200113  # arbitrary and fixed: the bank is part of the definition of a sample's noise


@lru_cache(maxsize=1)
def _rgb_noise_bank() -> np.ndarray:
    """``[P, 3]`` float32: i.i.d. unit normals on (Y, Cr, Cb), carried into RGB once."""
    z = np.random.default_rng(_BANK_SEED).standard_normal((_BANK_PIXELS, 1, 3), dtype=np.float32)
    return cv2.transform(z, rgb_noise_matrix()).reshape(-1, 3)


def rgb_noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """float32 ``[H, W, 3]`` RGB noise per unit ``sqrt(var)``: a bank window at a pixel offset from ``rng``
    (fresh draws for an image larger than the bank)."""
    h, w = shape[:2]
    bank = _rgb_noise_bank()
    if h * w > len(bank):
        z = rng.standard_normal((h, w, 3), dtype=np.float32)
        return cv2.transform(z, rgb_noise_matrix())
    start = int(rng.integers(0, len(bank) - h * w + 1))
    return bank[start : start + h * w].reshape(h, w, 3)


def gaussian_noise_color(rgb: np.ndarray, rng: np.random.Generator, variance: float) -> np.ndarray:
    """The released ``uint8(clip(x + noise, 0, 255))`` (truncation) as OpenCV's rounding, saturating
    ``x + sqrt(var) noise - 0.5`` in one pass: ``round(v - 0.5) = floor(v)`` for every ``v`` that is not
    an integer, which a float noise added to an integer almost never is."""
    _check(rgb)
    noise = rgb_noise(rgb.shape, rng)
    return cv2.addWeighted(rgb, 1.0, noise, float(np.sqrt(variance)), -0.5, dtype=cv2.CV_8U)


def blur_sigma(kernel: int) -> float:
    """The Gaussian sigma DeeperForensics-1.0 uses for a blur of ``kernel`` pixels."""
    return kernel / 6.0


@lru_cache(maxsize=16)
def _blur(kernel: int):
    """albumentations' GaussianBlur at the level's (side, sigma) and its 1-D kernel, built once.

    The transform would rebuild the kernel at every call (its parameter draw, here of a one-value
    range): a fifth of the blur's cost. float32 taps: the same output as float64 ones, faster.
    """
    import albumentations as A
    from albumentations.augmentations.blur.functional import create_gaussian_kernel_1d

    s = blur_sigma(kernel)
    transform = A.GaussianBlur(blur_limit=(kernel, kernel), sigma_limit=(s, s), p=1.0)
    return transform, create_gaussian_kernel_1d(s, kernel).astype(np.float32)


def gaussian_blur(rgb: np.ndarray, rng: np.random.Generator | None, kernel: int) -> np.ndarray:
    """DeeperForensics-1.0's Gaussian blur with a ``kernel``-pixel kernel."""
    _check(rgb)
    transform, taps = _blur(int(kernel))
    return transform.apply(rgb, kernel=taps)


def jpeg_compression(rgb: np.ndarray, rng: np.random.Generator | None, factor: int) -> np.ndarray:
    """DeeperForensics-1.0's "JPEG compression": down-scale by ``factor`` and back (linear interpolation)."""
    _check(rgb)
    h, w = rgb.shape[:2]
    f = int(factor)
    if h // f < 1 or w // f < 1:
        raise ValueError(f"jpeg_compression factor {f} leaves no pixel of a {h}x{w} image")
    small = cv2.resize(rgb, (w // f, h // f), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)

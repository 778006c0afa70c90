"""Device forms of the deterministic DeeperForensics-1.0 distortions, and OpenCV's evaluation resize, in torch.

With ``ForgeryDataModule(perturb_on_device=True)`` a test worker only reads the stored crops (and paints
the region masks, which a photometric distortion does not move); the distortion, the evaluation resize
and the normalisation then run on the batch's device (:mod:`datamodules.loading.device_perturb`).

Images are float ``[B, 3, H, W]`` holding the uint8 values 0..255; every form ends with the uint8
quantisation of its CPU twin in :mod:`datamodules.media.perturb.deeperforensics`, so it returns what the
CPU function returns, up to float rounding order:

* ``color_saturation``: the same ``[3, 4]`` float32 affine map, truncated;
* ``color_contrast``: ``x * factor`` in float32, truncated (the CPU lookup table's values);
* ``gaussian_blur``: the same separable Gaussian taps and reflect-101 border in float32, rounded;
* ``jpeg_compression``: OpenCV's ``INTER_LINEAR`` down- and up-sampling in its own fixed-point
  arithmetic (:func:`resize_linear_u8`; 11-bit weights, the 8-bit path's intermediate shifts).

The random distortions (block-wise, Gaussian noise), video compression and user (albumentations)
perturbations have no device form: they stay in the worker. Device forms are per sample identical on
CPU and GPU up to float rounding (the GPU may fuse multiply-adds), which the tests bound on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from datamodules.media.perturb import deeperforensics as df
from datamodules.media.perturb.registry import Perturbation
from datamodules.media.perturb.view import CropView

_COEF_BITS = 11  # OpenCV's INTER_RESIZE_COEF_BITS
_COEF_SCALE = 1 << _COEF_BITS


def color_saturation(x: Tensor, factor: float) -> Tensor:
    """:func:`~datamodules.media.perturb.deeperforensics.color_saturation` on a batch."""
    m = torch.as_tensor(df.saturation_matrix(float(factor)), device=x.device)
    out = torch.einsum("ij,bjhw->bihw", m[:, :3], x.float()) + m[:, 3, None, None]
    return out.clamp(0, 255).floor()


def color_contrast(x: Tensor, factor: float) -> Tensor:
    """:func:`~datamodules.media.perturb.deeperforensics.color_contrast` on a batch."""
    lut = torch.as_tensor(_contrast_lut(float(factor)), device=x.device)
    return lut[x.long()]


@lru_cache(maxsize=16)
def _contrast_lut(factor: float) -> np.ndarray:
    """The CPU path's table (albumentations' ``MultiplicativeNoise``), read off its own output."""
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    return df.color_contrast(ramp, None, factor)[..., 0].reshape(256).astype(np.float32)


def gaussian_blur(x: Tensor, kernel: int) -> Tensor:
    """:func:`~datamodules.media.perturb.deeperforensics.gaussian_blur` on a batch (separable, float32)."""
    k = int(kernel)
    _, taps = df._blur(k)
    w = torch.as_tensor(taps, dtype=torch.float32, device=x.device)
    b, c, h, wd = x.shape
    r = k // 2
    if min(h, wd) <= r:
        raise ValueError(f"gaussian_blur kernel {k} is larger than a {h}x{wd} image")
    y = F.pad(x.float().reshape(b * c, 1, h, wd), (r, r, r, r), mode="reflect")  # reflect-101
    y = F.conv2d(y, w.view(1, 1, 1, k))
    y = F.conv2d(y, w.view(1, 1, k, 1))
    return y.reshape(b, c, h, wd).round().clamp(0, 255)


def jpeg_compression(x: Tensor, factor: int) -> Tensor:
    """:func:`~datamodules.media.perturb.deeperforensics.jpeg_compression` on a batch: OpenCV's bilinear
    down to ``(W // f, H // f)`` and back, in its fixed-point arithmetic."""
    f = int(factor)
    h, w = x.shape[2:]
    if h // f < 1 or w // f < 1:
        raise ValueError(f"jpeg_compression factor {f} leaves no pixel of a {h}x{w} image")
    return resize_linear_u8(resize_linear_u8(x, (h // f, w // f)), (h, w))


#: distortion name -> its device form (called with the level's parameters as keywords)
DEVICE_FORMS: dict[str, Callable[..., Tensor]] = {
    "color_saturation": color_saturation,
    "color_contrast": color_contrast,
    "gaussian_blur": gaussian_blur,
    "jpeg_compression": jpeg_compression,
}


def device_form(p: Perturbation | None) -> Callable[[Tensor], Tensor] | None:
    """``x -> perturbed x`` for a perturbation with a device form; None for the identity and the others."""
    if p is None or p.is_identity or p.kind != "image" or "albumentations" in p.params:
        return None
    fn = DEVICE_FORMS.get(p.name)
    if fn is None:
        return None
    params: dict[str, Any] = dict(p.params)
    return lambda x: fn(x, **params)


def moves_to_device(perturbation: Perturbation | None, view: CropView | None) -> bool:
    """Whether ``perturb_on_device`` moves this test condition's image work to the device: a distortion
    with a device form and no re-cropping view."""
    return device_form(perturbation) is not None and (view is None or view.is_identity)


# ---------------------------------------------------------------- OpenCV's resizes of uint8 images
def _linear_taps(n_src: int, n_dst: int, clamp_weights: bool) -> tuple[np.ndarray, np.ndarray]:
    """``INTER_LINEAR``'s source index pairs and 11-bit weights per output pixel (half-pixel centres), as
    ``cv::resize`` computes them: positions in float32; outside the image the columns' weight moves to the
    edge pixel (``clamp_weights``) while the rows keep their weights on a clamped index pair."""
    scale = n_src / n_dst
    fx = ((np.arange(n_dst) + 0.5) * scale - 0.5).astype(np.float32)
    sx = np.floor(fx).astype(np.int64)
    fx = fx - sx.astype(np.float32)
    if clamp_weights:
        left, right = sx < 0, sx >= n_src - 1
        fx[left], sx[left] = 0.0, 0
        fx[right], sx[right] = 0.0, n_src - 1
    idx = np.clip(np.stack([sx, sx + 1], 1), 0, n_src - 1)
    # saturate_cast<short>(w * 2048) of each weight: rounds to nearest
    w = np.rint(np.stack([1.0 - fx, fx], 1).astype(np.float32) * np.float32(_COEF_SCALE)).astype(np.int64)
    return idx, w


def resize_linear_u8(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``cv2.resize(img, (W', H'), interpolation=INTER_LINEAR)`` of uint8 images held in float.

    The horizontal pass sums ``src * w`` in integers; the vertical pass is OpenCV's 8-bit path
    (``VResizeLinearVec_32s8u``): each row sum shifted right by 4, multiplied by its weight with a 16-bit
    high product, summed, then ``(s + 2) >> 2``. A 2x down-scaling in both directions is OpenCV's
    ``INTER_AREA`` (it switches there): the 2x2 mean, rounded half up.
    """
    (h, w), (oh, ow) = x.shape[2:], size
    if (h, w) == (oh, ow):
        return x
    xi = x.round().to(torch.int64)
    if h == 2 * oh and w == 2 * ow:
        s = xi[..., 0::2, 0::2] + xi[..., 1::2, 0::2] + xi[..., 0::2, 1::2] + xi[..., 1::2, 1::2]
        return ((s + 2) >> 2).to(x.dtype)
    ix, wx = (torch.as_tensor(a, device=x.device) for a in _linear_taps(w, ow, True))
    iy, wy = (torch.as_tensor(a, device=x.device) for a in _linear_taps(h, oh, False))
    rows = xi[..., ix[:, 0]] * wx[:, 0] + xi[..., ix[:, 1]] * wx[:, 1]  # [B, C, H, W'] (src * 2048)
    r0, r1 = rows[..., iy[:, 0], :] >> 4, rows[..., iy[:, 1], :] >> 4
    b0, b1 = wy[:, 0, None], wy[:, 1, None]
    s = ((r0 * b0) >> 16) + ((r1 * b1) >> 16)
    return ((s + 2) >> 2).clamp(0, 255).to(x.dtype)


@lru_cache(maxsize=16)
def area_matrix(n_src: int, n_dst: int) -> np.ndarray:
    """``[n_dst, n_src]`` weights of ``INTER_AREA`` down-scaling (each output pixel the mean of the source
    interval it covers, partial pixels weighted by their overlap), as OpenCV's ``computeResizeAreaTab``."""
    scale = n_src / n_dst
    m = np.zeros((n_dst, n_src), np.float64)
    for dx in range(n_dst):
        f1 = dx * scale
        f2 = f1 + scale
        cell = min(scale, n_src - f1)
        s1, s2 = int(np.ceil(f1)), int(np.floor(f2))
        s2 = min(s2, n_src - 1)
        s1 = min(s1, s2)
        if s1 - f1 > 1e-3:
            m[dx, s1 - 1] = (s1 - f1) / cell
        for sx in range(s1, s2):
            m[dx, sx] = 1.0 / cell
        if f2 - s2 > 1e-3:
            m[dx, s2] = min(min(f2 - s2, 1.0), cell) / cell
    return m.astype(np.float32)


def resize_u8(x: Tensor, side: int) -> Tensor:
    """The evaluation resize of ``datamodules.loading.transforms`` (``cv2.resize`` to ``side x side``:
    ``INTER_AREA`` when it shrinks, ``INTER_LINEAR`` when it grows) of uint8 images held in float."""
    h, w = x.shape[2:]
    if (h, w) == (side, side):
        return x
    if side >= max(h, w):
        return resize_linear_u8(x, (side, side))
    if side > min(h, w):  # OpenCV's area path has a zoom rule for the growing side: not written here
        raise ValueError(f"resize_u8: a {h}x{w} crop to {side} px shrinks one side and grows the other")
    if h % side == 0 and w % side == 0:  # OpenCV's integer-factor area path (resizeAreaFast)
        fy, fx = h // side, w // side
        s = x.round().to(torch.int64).reshape(*x.shape[:2], side, fy, side, fx).sum((3, 5))
        if fy == fx == 2:  # its SIMD 2x2 mean: (s + 2) >> 2
            return ((s + 2) >> 2).to(x.dtype)
        scale = torch.tensor(1.0 / (fy * fx), dtype=torch.float32)  # saturate_cast(s * (1.f / n)): half-even
        return (s.float() * scale.to(x.device)).round().clamp(0, 255).to(x.dtype)
    # OpenCV's order of float32 sums (each row's taps left to right, then the rows top to bottom): a
    # matrix product sums in another order and moves ~0.3 % of values of a noisy image by one level
    ix, wx = (torch.as_tensor(a, device=x.device) for a in _area_taps(w, side))
    iy, wy = (torch.as_tensor(a, device=x.device) for a in _area_taps(h, side))
    xf = x.float()
    rows = xf[..., ix[:, 0]] * wx[:, 0]
    for k in range(1, ix.shape[1]):
        rows = rows + xf[..., ix[:, k]] * wx[:, k]
    out = rows[..., iy[:, 0], :] * wy[:, 0, None]
    for k in range(1, iy.shape[1]):
        out = out + rows[..., iy[:, k], :] * wy[:, k, None]
    return out.round().clamp(0, 255)  # saturate_cast<uchar>(float): half to even


@lru_cache(maxsize=16)
def _area_taps(n_src: int, n_dst: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`area_matrix` as ``[n_dst, K]`` source indices and weights in ascending source order (a
    short row is padded with weight 0, which adds an exact 0)."""
    m = area_matrix(n_src, n_dst)
    cols = [np.flatnonzero(row) for row in m]
    k = max(len(c) for c in cols)
    idx, w = np.zeros((n_dst, k), np.int64), np.zeros((n_dst, k), np.float32)
    for d, c in enumerate(cols):
        idx[d, : len(c)], w[d, : len(c)] = c, m[d, c]
    return idx, w


__all__ = [
    "DEVICE_FORMS",
    "area_matrix",
    "device_form",
    "moves_to_device",
    "resize_linear_u8",
    "resize_u8",
]

"""The photometric augmentation ops of :mod:`datamodules.loading.augment` on a batch of device tensors.

Images are float ``[n, 3, H, W]`` holding integers 0..255 (the uint8 values of the CPU path, kept in
float on the device); every op ends by quantising as the CPU op's uint8 result does (rounding under
``"suite"`` semantics, truncation under ``"albumentations-1.1.0"``), so the steps compose as there.
Each op takes the per-sample parameters of :func:`datamodules.loading.augment.draw`.

Where the device result can differ from the CPU op's (never in the parameters, only in the pixels):

* blur: the same Gaussian kernels (``cv2.getGaussianKernel``) and reflect-101 border in float; OpenCV
  blurs uint8 images in fixed point, so a pixel may differ by 1;
* brightness/contrast and FancyPCA: the same float32 / float64 formulas as the CPU lookup tables, so the
  values agree exactly for the same input; FancyPCA's 3 x 3 covariance is computed on the device and
  decomposed by numpy on the host, as the CPU op does (``torch.linalg.eigh`` returns other eigenvector
  signs, which would flip the albumentations-1.1.0 offset);
* HSV: OpenCV's 8-bit RGB -> HSV in integer arithmetic (its fixed-point division tables: identical),
  the shift as the CPU's lookup table, HSV -> RGB in float32 as OpenCV's ``HSV2RGB`` computes it, rounded:
  about a quarter of the pixels differ by 1 (OpenCV vectorises that step with other float rounding);
* JPEG: ``torchvision.io.encode_jpeg`` / ``decode_jpeg`` instead of OpenCV's codec: on the CPU both are
  libjpeg-turbo with 4:2:0 subsampling and the same quality (identical bytes on the test image); for
  CUDA tensors torchvision uses nvJPEG, whose encoder and decoder may round otherwise; quality 0
  (OpenCV treats it as 1) is sent as 1.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from datamodules.loading.augment import ALBU
from datamodules.loading.device_regions import blur_separable


def quantise(x: Tensor, semantics: str) -> Tensor:
    """Clip to [0, 255] and round (suite) or truncate (albumentations 1.1.0), as the CPU LUTs do."""
    x = x.clamp(0, 255)
    return torch.floor(x) if semantics == ALBU else torch.round(x)


def gaussian_blur(x: Tensor, blur: list[tuple[int, float]]) -> Tensor:
    """``cv2.GaussianBlur(img, (k, k), sigma, BORDER_REFLECT_101)`` per sample, ``blur[i] = (k, sigma)``."""
    k_max = max(k for k, _ in blur)
    rows = np.zeros((len(blur), k_max), np.float64)
    for i, (k, sigma) in enumerate(blur):
        o = (k_max - k) // 2
        rows[i, o : o + k] = cv2.getGaussianKernel(k, sigma, cv2.CV_64F)[:, 0]
    kernels = torch.as_tensor(rows, dtype=torch.float32, device=x.device)
    return torch.round(blur_separable(x, kernels, "reflect")).clamp(0, 255)


def brightness_contrast(x: Tensor, alpha: list[float], beta: list[float], semantics: str) -> Tensor:
    """``x * alpha + beta * 255`` in float32, as :func:`~datamodules.loading.augment.brightness_contrast_lut`."""
    a = torch.tensor(alpha, dtype=torch.float32, device=x.device)[:, None, None, None]
    b = torch.tensor([v * 255 for v in beta], dtype=torch.float32, device=x.device)[:, None, None, None]
    return quantise(x * a + b, semantics)


def fancy_pca(x: Tensor, alpha: list[float], semantics: str) -> Tensor:
    """FancyPCA per sample, as :func:`~datamodules.loading.augment.fancy_pca` (exact integer covariance)."""
    n = x.shape[2] * x.shape[3]
    p = x.double().reshape(x.shape[0], 3, n)
    s = p.sum(2)
    cov = (p @ p.transpose(1, 2) - s[:, :, None] * s[:, None, :] / n) / (n - 1) / 255.0**2
    # numpy's eigh on the host, as the CPU op: an eigenvector's sign is the solver's choice, and torch's
    # differs from numpy's (which flips the albumentations-1.1.0 offset, V^T (alpha lambda), entirely)
    vals, vecs = np.linalg.eigh(cov.cpu().numpy())
    vals, vecs = vals[:, ::-1], vecs[:, :, ::-1]  # descending, pairs kept
    basis = vecs.transpose(0, 2, 1) if semantics == ALBU else vecs
    offset = np.einsum("nij,nj->ni", basis, np.asarray(alpha, np.float64)[:, None] * vals)
    offset = torch.as_tensor(offset, device=x.device)  # [n, 3]
    return quantise(x.double() + offset[:, :, None, None] * 255, semantics).float()


def _hsv_tables(device: torch.device) -> tuple[Tensor, Tensor]:
    """OpenCV's RGB2HSV_b division tables (``hsv_shift = 12``; hue range 180)."""
    i = np.arange(256, dtype=np.float64)
    with np.errstate(divide="ignore"):
        sdiv = np.where(i > 0, np.round((255 << 12) / i), 0)
        hdiv = np.where(i > 0, np.round((180 << 12) / (6.0 * i)), 0)
    return (torch.as_tensor(sdiv, dtype=torch.int64, device=device),
            torch.as_tensor(hdiv, dtype=torch.int64, device=device))  # fmt: skip


def rgb_to_hsv8(x: Tensor) -> Tensor:
    """OpenCV's 8-bit RGB -> HSV (H 0..179, S and V 0..255) in its integer arithmetic; int64 ``[n, 3, H, W]``."""
    sdiv, hdiv = _hsv_tables(x.device)
    r, g, b = x.long().unbind(1)
    v = torch.maximum(torch.maximum(r, g), b)
    diff = v - torch.minimum(torch.minimum(r, g), b)
    s = torch.div(diff * sdiv[v] + (1 << 11), 1 << 12, rounding_mode="floor")
    h = torch.where(v == r, g - b, torch.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
    h = torch.div(h * hdiv[diff] + (1 << 11), 1 << 12, rounding_mode="floor")
    h = torch.where(h < 0, h + 180, h)
    return torch.stack([h, s, v], 1)


def hsv8_to_rgb(hsv: Tensor) -> Tensor:
    """OpenCV's 8-bit HSV -> RGB (``HSV2RGB_b``: float32 sector formula, then rounded); float ``[n, 3, H, W]``."""
    h = hsv[:, 0].float() * np.float32(6.0 / 180.0)
    s = hsv[:, 1].float() * np.float32(1.0 / 255.0)
    v = hsv[:, 2].float() * np.float32(1.0 / 255.0)
    h = torch.where(h < 0, h + 6, h)
    h = torch.where(h >= 6, h - 6, h)
    sector = torch.floor(h)
    f = h - sector
    sector = sector.long().clamp(0, 5)
    tab = torch.stack([v, v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))], 1)  # [n, 4, H, W]
    # OpenCV's sector_data rows give (b, g, r) indices into tab
    order = torch.tensor(
        [[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]], device=hsv.device
    )
    idx = order[sector].permute(0, 3, 1, 2)  # [n, 3 (b, g, r), H, W]
    bgr = torch.gather(tab, 1, idx)
    bgr = torch.where((hsv[:, 1] == 0)[:, None], v[:, None].expand_as(bgr), bgr)
    return torch.round(bgr.flip(1) * 255).clamp(0, 255)


def hsv_shift(x: Tensor, shifts: list[tuple[float, float, float]], semantics: str) -> Tensor:
    """Hue (mod 180), saturation and value shifts, as :func:`~datamodules.loading.augment.hsv_shift`'s tables."""
    hsv = rgb_to_hsv8(x).double()
    sh = torch.tensor(shifts, dtype=torch.float64, device=x.device)[:, :, None, None]  # [n, 3, 1, 1]
    t = hsv + sh
    if semantics != ALBU:
        t = torch.round(t)
    hue = torch.remainder(t[:, 0], 180)
    sv = t[:, 1:].clamp(0, 255)
    shifted = torch.floor(torch.cat([hue[:, None], sv], 1))  # the tables' astype(uint8)
    zero = (sh == 0)[:, :, 0, 0]  # a zero shift leaves its channel as it is (the CPU's ramp)
    shifted = torch.where(zero[:, :, None, None], hsv, shifted)
    out = hsv8_to_rgb(shifted.long())
    untouched = zero.all(1)  # all three shifts zero: the CPU op returns the image
    return torch.where(untouched[:, None, None, None], x, out)


def jpeg(x: Tensor, quality: list[int], semantics: str) -> Tensor:
    """JPEG round trip per sample at ``quality[i]`` (torchvision's codec, on the tensors' device)."""
    from torchvision.io import decode_jpeg, encode_jpeg

    u8 = x.to(torch.uint8)
    if semantics == ALBU:  # the RGB array handed to the encoder as if it were BGR
        u8 = u8.flip(1)
    out = torch.empty_like(x)
    for q in sorted(set(quality)):
        idx = [i for i, v in enumerate(quality) if v == q]
        enc = encode_jpeg([u8[i].contiguous() for i in idx], quality=max(1, int(q)))
        dec = decode_jpeg(enc, device=x.device)
        for i, d in zip(idx, dec, strict=True):
            out[i] = d.float()
    return out.flip(1) if semantics == ALBU else out

"""The augmentation ops of :class:`datamodules.augmentation.Augmentation`: one seeded draw, then OpenCV work.

:func:`draw` takes every random value of one sample from a ``numpy.random.Generator`` (all of them,
used or not, so one step's draw never shifts another's); :func:`photometric` applies the blur, colour
and JPEG steps to a uint8 RGB image; :func:`geometry` gives the flip + rotation/scale matrix that
:mod:`datamodules.loading.transforms` folds into its one ``warpAffine``.

Distributions (``Augmentation.semantics`` switches only where albumentations 1.1.0 computes otherwise;
the parameters are the record's):

============================  ==================================================  =============================
step                          distribution                                        albumentations 1.1.0 semantics
============================  ==================================================  =============================
flip                          Bernoulli(flip_prob)                                same (``HorizontalFlip``)
rotation                      Bernoulli(rotate_prob); angle U(rotate_limit),       centre ``(w/2, h/2)``
                              scale U(scale_limit), centre ``((w-1)/2, (h-1)/2)``
blur                          Bernoulli(blur_prob); kernel uniform over the odd    ``randint(lo, hi)``, even
                              sizes in blur_limit; sigma U(blur_sigma)             ``k -> (k + 1) % (hi + 1)``
colour                        Bernoulli(colour_prob); one of colour_ops uniformly  same (``OneOf``)
brightness/contrast           ``x (1 + U(contrast)) + 255 U(brightness)``, LUT     LUT truncated
                              rounded
FancyPCA                      alpha ~ N(0, fancy_pca_alpha) (one draw, as          offset ``V^T (alpha lambda)``,
                              albumentations); offset ``V (alpha lambda) 255``     truncated
                              over the image's RGB covariance, rounded
HSV                           shifts U(hue), U(sat), U(val); hue mod 180; LUT      LUTs truncated
                              rounded
JPEG                          Bernoulli(jpeg_prob); quality uniform over the       RGB array encoded as if BGR
                              integers [quality_lower, quality_upper]
translation                   with the rotation: U(-tx, tx) w, U(-ty, ty) h        same
RGB shift                     one U(rgb_shift_limit) per channel; LUT rounded      LUT truncated
============================  ==================================================  =============================

``colour_mode="each"`` replaces the colour step's one Bernoulli and uniform choice by one Bernoulli(colour_prob)
per member of ``colour_ops``, applied in that order.

With ``"torchvision"`` semantics (torchvision.transforms.v2 on PIL images, as GenD's released pipeline runs
it) the draws are the table's, and: the angle turns clockwise (torchvision's ``affine``) and the translation
is rounded to whole pixels of the augmented image (``RandomAffine``: ``int(round(U(-t w, t w)))``); the blur
is :func:`torchvision_blur`; ``brightness_contrast`` is ``ColorJitter``: a brightness factor ``1 + beta``
and a contrast factor ``alpha`` applied in a random order (one more Bernoulli(1/2)), each as PIL's
``ImageEnhance`` computes it (:func:`pil_brightness_lut`, :func:`pil_contrast_lut`); JPEG is the suite's
(true RGB order: libjpeg gives PIL's bytes). Draws that only these settings use (translation, the per-op
Bernoullis of ``"each"``, the RGB shifts, the ColorJitter order) are taken after all the others and only
when the record uses them, so a record without them draws exactly as before.

The ops are written from albumentations 1.1.0's ``augmentations/functional.py`` and
``augmentations/transforms.py`` (MIT licence; read, not imported: the installed albumentations 2.x
computes several of them differently, e.g. its kernel draw and ``ImageCompression`` arguments), in
OpenCV and numpy: albumentations' per-call overhead (parameter checks, seeding) cost more than the pixel
work at 256 px. ``tests/test_augmentation.py`` checks each op against an independent transcription of
those equations; ``tests/test_augmentation_torchvision.py`` checks the torchvision ops against torchvision
itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from datamodules.augmentation import Augmentation

ALBU = "albumentations-1.1.0"
TORCHVISION = "torchvision"
_RAMP = np.arange(256, dtype=np.float32)


@dataclass
class AugmentDraw:
    """One sample's augmentation draw (``None`` / ``False`` = step not applied)."""

    flip: bool
    angle: float | None  # degrees; None = no rotation step
    scale: float
    blur: tuple[int, float] | None  # (odd kernel size, sigma; 0 = from the kernel size)
    colour: str | None  # the chosen member of colour_ops
    alpha: float  # contrast factor (brightness_contrast)
    beta: float  # brightness offset as a fraction of 255 (brightness_contrast)
    pca_alpha: float  # FancyPCA scale
    hsv: tuple[float, float, float]  # hue, saturation, value shifts
    jpeg_quality: int | None
    translate: tuple[float, float] = (0.0, 0.0)  # shift as fractions of (width, height), with the rotation
    chain: tuple[str, ...] = ()  # colour_mode "each": the colour ops applied, in order
    rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)  # rgb_shift: per-channel offsets (0..255 units)
    brightness_first: bool = True  # torchvision's ColorJitter: brightness before contrast

    def colours(self) -> tuple[str, ...]:
        """The colour ops this draw applies, in order."""
        return (self.colour,) if self.colour is not None else self.chain


def blur_kernel(rng: np.random.Generator, limit: tuple[int, int], semantics: str) -> int:
    """A Gaussian kernel size from ``limit`` (see the module table)."""
    lo, hi = limit
    if semantics == ALBU:
        k = int(rng.integers(lo, hi + 1))
        return (k + 1) % (hi + 1) if k % 2 == 0 else k
    return int(rng.choice(np.arange(lo, hi + 1, 2)))


def draw(aug: Augmentation, rng: np.random.Generator) -> AugmentDraw:
    """Every parameter of one sample, drawn whether used or not."""
    u = rng.random(5)
    angle = float(rng.uniform(*aug.rotate_limit))
    scale = float(rng.uniform(*aug.scale_limit))
    ksize = blur_kernel(rng, aug.blur_limit, aug.semantics)
    sigma = float(rng.uniform(*aug.blur_sigma))
    op = aug.colour_ops[int(rng.integers(len(aug.colour_ops)))]
    alpha = 1.0 + float(rng.uniform(*aug.contrast_limit))
    beta = float(rng.uniform(*aug.brightness_limit))
    pca_alpha = float(rng.normal(0.0, aug.fancy_pca_alpha))
    hsv = (
        float(rng.uniform(*aug.hue_shift_limit)),
        float(rng.uniform(*aug.sat_shift_limit)),
        float(rng.uniform(*aug.val_shift_limit)),
    )
    quality = int(rng.integers(aug.quality_lower, aug.quality_upper + 1))
    d = AugmentDraw(
        flip=bool(u[0] < aug.flip_prob),
        angle=angle if u[1] < aug.rotate_prob else None,
        scale=scale,
        blur=(ksize, sigma) if u[2] < aug.blur_prob else None,
        colour=op if u[3] < aug.colour_prob else None,
        alpha=alpha,
        beta=beta,
        pca_alpha=pca_alpha,
        hsv=hsv,
        jpeg_quality=quality if u[4] < aug.jpeg_prob else None,
    )
    return _draw_added(aug, rng, d)


def _draw_added(aug: Augmentation, rng: np.random.Generator, d: AugmentDraw) -> AugmentDraw:
    """The draws of the settings added after DeepfakeBench's structure, taken only when the record uses
    them (so every other record's draws, and the generator's state after them, are unchanged)."""
    tx, ty = aug.translate_limit
    if tx or ty:
        d.translate = (float(rng.uniform(-tx, tx)), float(rng.uniform(-ty, ty)))
    if aug.colour_mode == "each":
        flags = rng.random(len(aug.colour_ops))
        d.colour = None
        d.chain = tuple(op for op, f in zip(aug.colour_ops, flags, strict=True) if f < aug.colour_prob)
    if "rgb_shift" in aug.colour_ops:
        r, g, b = (float(x) for x in rng.uniform(*aug.rgb_shift_limit, size=3))
        d.rgb = (r, g, b)
    if aug.semantics == TORCHVISION:
        d.brightness_first = bool(rng.random() < 0.5)
    return d


def flip_matrix(width: int) -> np.ndarray:
    """3x3 matrix of the horizontal flip ``x -> w - 1 - x`` (``cv2.flip(img, 1)``)."""
    return np.array([[-1.0, 0, width - 1], [0, 1, 0], [0, 0, 1]])


def geometry(hw: tuple[int, int], d: AugmentDraw, semantics: str) -> np.ndarray:
    """3x3 matrix of the flip then the rotation/scale about the centre and the translation, in the pixels of
    an ``hw`` image."""
    h, w = hw
    m = np.eye(3)
    if d.flip:
        m = flip_matrix(w) @ m
    if d.angle is not None:
        centre = (w / 2, h / 2) if semantics == ALBU else ((w - 1) / 2, (h - 1) / 2)
        angle = -d.angle if semantics == TORCHVISION else d.angle  # torchvision's affine turns clockwise
        r = np.vstack([cv2.getRotationMatrix2D(centre, angle, d.scale), [0, 0, 1]])
        dx, dy = d.translate[0] * w, d.translate[1] * h
        if semantics == TORCHVISION:
            dx, dy = round(dx), round(dy)  # RandomAffine: int(round(U(-t w, t w)))
        r[:2, 2] += (dx, dy)
        m = r @ m
    return m


def _to_uint8(lut: np.ndarray, semantics: str) -> np.ndarray:
    """Clip to [0, 255] and cast: truncation as ``astype`` (albumentations) or rounding (suite)."""
    lut = np.clip(lut, 0, 255)
    return (lut if semantics == ALBU else np.round(lut)).astype(np.uint8)


def brightness_contrast_lut(alpha: float, beta: float, semantics: str) -> np.ndarray:
    """The uint8 table of ``x * alpha + beta * 255`` (float32, as albumentations' ``brightness_by_max``)."""
    lut = _RAMP.copy()
    if alpha != 1:
        lut *= alpha
    if beta != 0:
        lut += beta * 255
    return _to_uint8(lut, semantics)


def fancy_pca(img: np.ndarray, alpha: float, semantics: str) -> np.ndarray:
    """FancyPCA (Krizhevsky et al., NeurIPS 2012) with one scale ``alpha`` for the three components.

    The offset ``o`` is one constant per channel, so ``x -> clip(x + o)`` is a per-channel lookup table
    (computed in float64 as albumentations computes the image). The RGB covariance comes from exact
    integer sums (deterministic on any BLAS); albumentations' ``np.cov`` equals it up to float rounding.
    """
    x = img.reshape(-1, 3).T.astype(np.float64)  # [3, N], contiguous
    n = x.shape[1]
    s = np.array(cv2.sumElems(img)[:3])
    cov = (x @ x.T - np.outer(s, s) / n) / (n - 1) / 255.0**2
    vals, vecs = np.linalg.eigh(cov)
    vals, vecs = vals[::-1], vecs[:, ::-1]  # descending, pairs kept
    basis = vecs.T if semantics == ALBU else vecs
    offset = basis @ (alpha * vals)
    lut = np.arange(256, dtype=np.float64)[:, None] + offset[None, :] * 255
    return cv2.LUT(img, _to_uint8(lut, semantics)[None])


def hsv_shift(img: np.ndarray, shifts: tuple[float, float, float], semantics: str) -> np.ndarray:
    """Shift hue (mod 180), saturation and value of a uint8 RGB image in OpenCV's 8-bit HSV."""
    dh, ds, dv = shifts
    if dh == 0 and ds == 0 and dv == 0:
        return img
    ramp = np.arange(256, dtype=np.int16)
    cast = (lambda x: x) if semantics == ALBU else np.round
    lut = np.stack(
        [
            ramp if dh == 0 else np.mod(cast(ramp + dh), 180),
            ramp if ds == 0 else np.clip(cast(ramp + ds), 0, 255),
            ramp if dv == 0 else np.clip(cast(ramp + dv), 0, 255),
        ],
        axis=1,
    ).astype(np.uint8)
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    return cv2.cvtColor(cv2.LUT(hsv, lut[None]), cv2.COLOR_HSV2RGB)


def rgb_shift(img: np.ndarray, shifts: tuple[float, float, float], semantics: str) -> np.ndarray:
    """albumentations' ``RGBShift``: ``x + shift`` per channel (0..255 units) as one lookup table per channel."""
    lut = np.arange(256, dtype=np.float32)[:, None] + np.asarray(shifts, dtype=np.float32)[None, :]
    return cv2.LUT(img, _to_uint8(lut, semantics)[None])


def torchvision_kernel(ksize: int, sigma: float) -> np.ndarray:
    """torchvision's 1-D Gaussian kernel (float32): ``softmax(-(x / sigma)^2)`` over
    ``x = linspace(-(k-1) / (2 sqrt 2), (k-1) / (2 sqrt 2), k)``, i.e. ``exp(-i^2 / (2 sigma^2))`` normalised."""
    lim = (ksize - 1) / (2.0 * np.sqrt(2.0))
    v = -((np.linspace(-lim, lim, ksize, dtype=np.float32) / np.float32(sigma)) ** 2)
    e = np.exp(v - v.max())
    return e / e.sum()


def torchvision_blur(img: np.ndarray, ksize: int, sigma: float) -> np.ndarray:
    """torchvision's ``gaussian_blur`` of a uint8 image: float32, reflect padding (reflect-101), the
    separable kernel of :func:`torchvision_kernel`, rounded half to even."""
    k = torchvision_kernel(ksize, sigma)
    out = cv2.sepFilter2D(img.astype(np.float32), cv2.CV_32F, k, k, borderType=cv2.BORDER_REFLECT_101)
    return np.rint(out).astype(np.uint8)


def _pil_blend_lut(mean: int, factor: float) -> np.ndarray:
    """PIL's ``Image.blend(degenerate, image, factor)`` of a constant ``mean`` with every uint8 value:
    ``mean + factor (x - mean)`` in float32, clipped to [0, 255] and truncated (Pillow's ``ImagingBlend``)."""
    v = np.float32(mean) + np.float32(factor) * (np.arange(256, dtype=np.float32) - np.float32(mean))
    return np.clip(v, 0, 255).astype(np.uint8)


def pil_brightness_lut(factor: float) -> np.ndarray:
    """torchvision's ``adjust_brightness`` on a PIL image (``ImageEnhance.Brightness``): a blend with black."""
    return _pil_blend_lut(0, factor)


_PIL_L24 = np.array([[19595, 38470, 7471]], np.float32)  # Pillow's Convert.c L24 weights (sum 2^16)


def pil_grey_mean(img: np.ndarray) -> int:
    """The rounded mean of PIL's ``convert("L")`` of a uint8 RGB image (``ImageEnhance.Contrast``'s grey):
    ``L = (299 R + 587 G + 114 B) / 1000`` as Pillow's fixed point ``(19595 R + 38470 G + 7471 B + 2^15) >> 16``."""
    # float32 is exact here: every product and sum is an integer below 2^24, and / 2^16 only moves the exponent
    grey = cv2.transform(img.astype(np.float32), _PIL_L24)
    grey += 0x8000
    grey *= 1.0 / 65536
    np.floor(grey, out=grey)
    return int(cv2.sumElems(grey)[0] / grey.size + 0.5)


def pil_contrast_lut(img: np.ndarray, factor: float) -> np.ndarray:
    """torchvision's ``adjust_contrast`` on a PIL image (``ImageEnhance.Contrast``): a blend with the image's
    rounded grey mean."""
    return _pil_blend_lut(pil_grey_mean(img), factor)


def colour_jitter(img: np.ndarray, brightness: float, contrast: float, brightness_first: bool) -> np.ndarray:
    """torchvision's ``ColorJitter(brightness, contrast)`` with drawn factors and order, on a uint8 RGB image."""
    for op in ("brightness", "contrast") if brightness_first else ("contrast", "brightness"):
        if op == "brightness":
            img = cv2.LUT(img, pil_brightness_lut(brightness))
        else:
            img = cv2.LUT(img, pil_contrast_lut(img, contrast))
    return img


def jpeg(img: np.ndarray, quality: int, semantics: str) -> np.ndarray:
    """JPEG round trip at ``quality``."""
    src = img if semantics == ALBU else img[:, :, ::-1]
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(src), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("cv2.imencode failed on a training crop")
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED if semantics == ALBU else cv2.IMREAD_COLOR_RGB)


def colour(img: np.ndarray, op: str, d: AugmentDraw, semantics: str) -> np.ndarray:
    """One colour op of the draw on a uint8 RGB image."""
    if op == "brightness_contrast":
        if semantics == TORCHVISION:
            return colour_jitter(img, 1.0 + d.beta, d.alpha, d.brightness_first)
        return cv2.LUT(img, brightness_contrast_lut(d.alpha, d.beta, semantics))
    if op == "fancy_pca":
        return fancy_pca(img, d.pca_alpha, semantics)
    if op == "hsv":
        return hsv_shift(img, d.hsv, semantics)
    if op == "rgb_shift":
        return rgb_shift(img, d.rgb, semantics)
    raise ValueError(f"unknown colour op {op!r}")


def photometric(img: np.ndarray, d: AugmentDraw, semantics: str) -> np.ndarray:
    """Blur, colour and JPEG steps on a uint8 RGB image, in DeepfakeBench's order."""
    if d.blur is not None:
        if semantics == TORCHVISION:
            img = torchvision_blur(img, d.blur[0], d.blur[1])
        else:
            img = cv2.GaussianBlur(img, (d.blur[0], d.blur[0]), d.blur[1], borderType=cv2.BORDER_REFLECT_101)
    for op in d.colours():
        img = colour(img, op, d, semantics)
    if d.jpeg_quality is not None:
        img = jpeg(img, d.jpeg_quality, semantics)
    return img

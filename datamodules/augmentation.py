"""What a training pipeline augments, and how: the :class:`Augmentation` record (a data-side contract).

Detectors declare it in their recipe (``Recipe.augmentation``, :mod:`detectors.recipe`); the datamodule
hands it to :class:`datamodules.loading.transforms.FaceTransform`, which draws and applies it
(:mod:`datamodules.loading.augment`). It lives on the data side, like ``DataSpec``, so ``datamodules``
never imports a detector.

The pipeline has the structure of DeepfakeBench's ``init_data_aug_method``
(``training/dataset/abstract_dataset.py``; Forensics Adapter's ``dataset/abstract_dataset.py`` is the
same), in this order:

1. ``HorizontalFlip(p=flip_prob)``;
2. ``Rotate(limit=rotate_limit, p=rotate_prob)`` (albumentations' default border: reflect-101), with an
   optional scale jitter (``scale_limit``) and translation (``translate_limit``), neither in DeepfakeBench;
3. ``GaussianBlur(blur_limit, p=blur_prob)`` (sigma from ``blur_sigma``; 0 = OpenCV's sigma from the
   kernel size, albumentations' default ``sigma_limit=0``);
4. ``OneOf(IsotropicResize x 3, p=1)``: a no-op there (``load_rgb`` already resized the frame to the
   configured resolution, and the resize keeps a square image at that side), so it has no field here;
5. ``OneOf([RandomBrightnessContrast(brightness_limit, contrast_limit), FancyPCA(), HueSaturationValue()],
   p=0.5)``: ``colour_prob`` with the members of ``colour_ops`` chosen uniformly (each has the default
   ``p=0.5``, which ``OneOf`` normalises to equal weights), ``FancyPCA(alpha=0.1)`` and
   ``HueSaturationValue(20, 30, 20)`` at albumentations' defaults (``colour_mode="each"``: every member
   in order, each with probability ``colour_prob``);
6. ``ImageCompression(quality_lower, quality_upper, p=0.5)``: JPEG quality uniform over the integers.

``semantics`` says how the ops compute (the parameters are the same either way):

* ``"suite"``: each op as its parameters describe it: rotation about the pixel centre
  ``((w-1)/2, (h-1)/2)``, blur kernels uniform over the odd sizes in ``blur_limit``, lookup tables
  rounded, JPEG encoded in true BGR order, FancyPCA's offset ``V (alpha * lambda)`` (Krizhevsky et al.).
* ``"albumentations-1.1.0"``: what the version both released code bases pin (``install.sh``) computes:
  rotation about ``(w/2, h/2)``; kernel ``randint(lo, hi)`` with even draws moved up
  (``(k + 1) % (hi + 1)``: 3, 5, 7 with probabilities 1/5, 2/5, 2/5 for ``(3, 7)``); lookup tables
  truncated by ``astype(uint8)``; the RGB array handed to ``cv2.imencode`` as if it were BGR (so the
  chroma subsampling sees swapped channels); FancyPCA's offset ``V^T (alpha * lambda)`` (its
  ``np.column_stack`` of the eigenvector matrix transposes it); before augmenting, the crop is resized
  to the input side with ``INTER_CUBIC`` as ``load_rgb`` does.
* ``"torchvision"``: what ``torchvision.transforms.v2`` computes on PIL images (GenD's released pipeline,
  yermandy/GenD ``src/dataset/augmentations.py``): ``RandomAffine``'s angle is clockwise and its
  translation is rounded to whole pixels (``int(round(U(-t w, t w)))``); ``GaussianBlur``'s kernel is
  ``softmax(-(x / sigma)^2)`` over ``x = linspace(-(k-1)/(2 sqrt 2), (k-1)/(2 sqrt 2), k)`` applied in
  float32 with reflect padding, rounded half to even; ``brightness_contrast`` is ``ColorJitter(brightness,
  contrast)``: the factors ``1 + U(brightness_limit)`` and ``1 + U(contrast_limit)``, the two ops in a
  random order, each as PIL's ``ImageEnhance`` computes it (brightness ``x f``; contrast
  ``m + f (x - m)`` with ``m`` the image's rounded mean in PIL's ``L`` grey; float32, clipped, truncated);
  JPEG through libjpeg in true RGB order (PIL's encoder gives the same bytes as OpenCV's here). Only
  ``brightness_contrast`` is a torchvision colour op; ``blur_sigma`` must be positive.

Settings beyond DeepfakeBench's structure (their defaults leave a pipeline as it was):

* ``translate_limit`` ``(tx, ty)``: the rotation step also shifts the image by ``U(-tx, tx)`` of its width
  and ``U(-ty, ty)`` of its height (torchvision's ``RandomAffine(translate=(tx, ty))``); the shift
  follows the rotation and scale, as torchvision composes them.
* ``colour_mode``: ``"one_of"`` (DeepfakeBench's ``OneOf``) or ``"each"``: every op of ``colour_ops`` in
  order, each with probability ``colour_prob`` (an albumentations ``Compose`` of ops with ``p =
  colour_prob``, e.g. SelfBlendedImages' post-blend ``RGBShift``, ``HueSaturationValue``,
  ``RandomBrightnessContrast`` at ``p=0.3``).
* ``"rgb_shift"`` (a colour op, ``rgb_shift_limit``): albumentations' ``RGBShift``: ``x + U(limit)`` with
  one draw per channel, as a lookup table (rounded; truncated under ``"albumentations-1.1.0"``).

These settings (:data:`ADDED_SETTINGS`) are left out of :meth:`Augmentation.experiment_dict` (what a cell
id hashes) while they hold their defaults, so every cell id planned before they existed is unchanged.

``brightness_prob`` is a key of DeepfakeBench's ``data_aug`` blocks that ``init_data_aug_method`` never
reads (the brightness/contrast op is one member of the ``OneOf`` whose probability is ``colour_prob``);
it is carried so the transcription of a config is complete, and it changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

#: DeepfakeBench's ``OneOf`` members (the default ``colour_ops``)
COLOUR_OPS = ("brightness_contrast", "fancy_pca", "hsv")
#: every colour op the pipeline knows
KNOWN_COLOUR_OPS = (*COLOUR_OPS, "rgb_shift")
#: the colour ops torchvision semantics define (``ColorJitter``'s brightness and contrast)
TORCHVISION_COLOUR_OPS = ("brightness_contrast",)
COLOUR_MODES = ("one_of", "each")
BORDERS = ("reflect101", "constant")
SEMANTICS = ("suite", "albumentations-1.1.0", "torchvision")
_PAIRS = (
    "rotate_limit",
    "scale_limit",
    "blur_limit",
    "blur_sigma",
    "brightness_limit",
    "contrast_limit",
    "hue_shift_limit",
    "sat_shift_limit",
    "val_shift_limit",
    "rgb_shift_limit",
)
_PROBS = ("flip_prob", "rotate_prob", "blur_prob", "colour_prob", "brightness_prob", "jpeg_prob")


@dataclass(frozen=True)
class Augmentation:
    """One training pipeline's augmentation (see the module docstring for the structure).

    Defaults are DeepfakeBench's shared ``data_aug`` block (e.g. ``efficientnetb4.yaml``) with the
    constants of ``init_data_aug_method`` and albumentations' defaults, computed with ``"suite"``
    semantics.
    """

    flip_prob: float = 0.5
    rotate_prob: float = 0.5
    rotate_limit: tuple[float, float] = (-10.0, 10.0)  # degrees
    scale_limit: tuple[float, float] = (1.0, 1.0)  # scale jitter drawn with the rotation (1, 1) = none
    border: str = (
        "reflect101"  # fill of the rotated border: reflect101 (albumentations' Rotate) or constant 0
    )
    blur_prob: float = 0.5
    blur_limit: tuple[int, int] = (3, 7)  # odd Gaussian kernel sizes
    blur_sigma: tuple[float, float] = (0.0, 0.0)  # 0 = OpenCV's sigma from the kernel size
    colour_prob: float = 0.5  # probability of the OneOf over ``colour_ops``
    colour_ops: tuple[str, ...] = COLOUR_OPS  # members of the OneOf, chosen uniformly
    brightness_prob: float = 0.5  # DeepfakeBench config key, unused by its pipeline (and by ours)
    brightness_limit: tuple[float, float] = (-0.1, 0.1)  # beta: + beta * 255
    contrast_limit: tuple[float, float] = (-0.1, 0.1)  # alpha = 1 + draw
    fancy_pca_alpha: float = 0.1  # std of FancyPCA's scale
    hue_shift_limit: tuple[float, float] = (-20.0, 20.0)  # OpenCV 8-bit HSV units (hue 0..179)
    sat_shift_limit: tuple[float, float] = (-30.0, 30.0)
    val_shift_limit: tuple[float, float] = (-20.0, 20.0)
    jpeg_prob: float = 0.5
    quality_lower: int = 40
    quality_upper: int = 100
    semantics: str = "suite"  # "suite", "albumentations-1.1.0" or "torchvision" (see the module docstring)
    # settings added after DeepfakeBench's structure (ADDED_SETTINGS; their defaults change nothing)
    translate_limit: tuple[float, float] = (0.0, 0.0)  # max shift (x, y) as a fraction of (width, height)
    colour_mode: str = (
        "one_of"  # "one_of" (DeepfakeBench's OneOf) or "each" (every op, each w.p. colour_prob)
    )
    rgb_shift_limit: tuple[float, float] = (-20.0, 20.0)  # rgb_shift op: + U(limit) per channel (0..255)

    def __post_init__(self) -> None:
        for name in _PAIRS:
            v = getattr(self, name)
            if not isinstance(v, (tuple, list)) or len(v) != 2:
                raise ValueError(f"Augmentation.{name} must be a pair (low, high), got {v!r}")
            object.__setattr__(self, name, tuple(float(x) for x in v))
            if self.__dict__[name][0] > self.__dict__[name][1]:
                raise ValueError(f"Augmentation.{name} must have low <= high, got {v!r}")
        lo, hi = self.blur_limit
        if lo != int(lo) or hi != int(hi) or int(lo) % 2 == 0 or int(hi) % 2 == 0 or lo < 3:
            raise ValueError(f"Augmentation.blur_limit must be odd kernel sizes >= 3, got {self.blur_limit}")
        object.__setattr__(self, "blur_limit", (int(lo), int(hi)))
        for name in _PROBS:
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"Augmentation.{name} must be a probability in [0, 1], got {p!r}")
        object.__setattr__(self, "colour_ops", tuple(self.colour_ops))
        bad = [op for op in self.colour_ops if op not in KNOWN_COLOUR_OPS]
        if bad or not self.colour_ops:
            raise ValueError(
                f"Augmentation.colour_ops {list(self.colour_ops)}: known ops are {list(KNOWN_COLOUR_OPS)}"
            )
        if self.colour_mode not in COLOUR_MODES:
            raise ValueError(
                f"Augmentation.colour_mode must be one of {list(COLOUR_MODES)}, got {self.colour_mode!r}"
            )
        t = self.translate_limit
        if not isinstance(t, (tuple, list)) or len(t) != 2 or not all(0.0 <= float(x) <= 1.0 for x in t):
            raise ValueError(
                f"Augmentation.translate_limit must be (x, y) fractions of the image in [0, 1], got {t!r}"
            )
        object.__setattr__(self, "translate_limit", tuple(float(x) for x in t))
        if self.border not in BORDERS:
            raise ValueError(f"Augmentation.border must be one of {list(BORDERS)}, got {self.border!r}")
        if self.semantics not in SEMANTICS:
            raise ValueError(
                f"Augmentation.semantics must be one of {list(SEMANTICS)}, got {self.semantics!r}"
            )
        if not 0 <= self.quality_lower <= self.quality_upper <= 100:
            raise ValueError(
                f"Augmentation quality must satisfy 0 <= quality_lower <= quality_upper <= 100, got "
                f"{self.quality_lower}, {self.quality_upper}"
            )
        if self.scale_limit[0] <= 0 or self.fancy_pca_alpha < 0:
            raise ValueError(f"Augmentation needs scale_limit > 0 and fancy_pca_alpha >= 0: {self}")
        if self.semantics == "torchvision":
            self._check_torchvision()

    def _check_torchvision(self) -> None:
        """The settings torchvision's transforms can express (see the module docstring)."""
        other = [op for op in self.colour_ops if op not in TORCHVISION_COLOUR_OPS]
        if other:
            raise ValueError(
                f"Augmentation.colour_ops {other} have no torchvision semantics (only "
                f"{list(TORCHVISION_COLOUR_OPS)}: ColorJitter's brightness and contrast)"
            )
        if self.blur_prob > 0 and self.blur_sigma[0] <= 0:
            raise ValueError(
                f"Augmentation.blur_sigma {self.blur_sigma}: torchvision's GaussianBlur needs sigma > 0"
            )
        if self.brightness_limit[0] < -1 or self.contrast_limit[0] < -1:
            raise ValueError(
                "Augmentation brightness_limit / contrast_limit: torchvision's factors 1 + limit must be >= 0, "
                f"got {self.brightness_limit}, {self.contrast_limit}"
            )

    def with_overrides(self, **overrides: Any) -> Augmentation:
        """A copy with ``overrides`` applied; a TypeError naming unknown settings."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown augmentation setting(s) {unknown}; known: {sorted(known)}")
        return replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a dict (recorded with each cell)."""
        return asdict(self)

    def experiment_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without the :data:`ADDED_SETTINGS` that hold their defaults: what a cell id hashes
        (so the ids of pipelines planned before those settings existed stay the same)."""
        d = asdict(self)
        for name, default in ADDED_SETTINGS.items():
            if d[name] == default:
                del d[name]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Augmentation:
        """The record :meth:`to_dict` (or its JSON) describes; unknown keys raise, missing keys default."""
        if not isinstance(d, dict):
            raise TypeError(f"an augmentation must be a mapping of its settings, got {type(d).__name__}")
        return cls().with_overrides(**d)


#: settings added after cell-config version 2, with the defaults that leave a pipeline as it was; left out of
#: :meth:`Augmentation.experiment_dict` at these values
ADDED_SETTINGS: dict[str, Any] = {
    name: asdict(Augmentation())[name] for name in ("translate_limit", "colour_mode", "rgb_shift_limit")
}

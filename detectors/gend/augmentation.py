"""GenD's training augmentation as released, in the suite's :class:`~datamodules.augmentation.Augmentation` record.

yermandy/GenD (MIT) at commit e03532d: ``src/config.py`` ``Augmentations`` holds the settings and
``src/dataset/augmentations.py`` ``init_augmentations`` builds them as ``torchvision.transforms.v2`` (torchvision
0.23 in ``requirements.txt``), which the dataset applies to the PIL image of the stored crop before the
model's preprocessing (``src/dataset/dataset.py``). Every run behind the paper's tables keeps the defaults:
the experiments of ``src/exp/wacv_rebuttal.py`` (``wacv-*``, the runs ``src/exp/wacv.sh`` launches) set no
``augmentations``, except the ``-noaug`` ablations (``augmentations=None``).

``init_augmentations`` composes, in this order (each only when its settings are not "off"):

======================================================================  ========================================
torchvision (defaults)                                                  Augmentation
======================================================================  ========================================
``RandomHorizontalFlip(p=0.5)``                                         ``flip_prob=0.5``
``RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))``    ``rotate_prob=1`` (no ``p``: always),
(fill 0)                                                                ``rotate_limit=(-10, 10)``,
                                                                        ``translate_limit=(0.1, 0.1)``,
                                                                        ``scale_limit=(0.9, 1.1)``,
                                                                        ``border="constant"``
``RandomApply([GaussianBlur(7, sigma=(0.1, 2.0))], p=0.1)``             ``blur_prob=0.1``, ``blur_limit=(7, 7)``,
                                                                        ``blur_sigma=(0.1, 2.0)``
``ColorJitter(brightness=0.1, contrast=0.1)`` (always)                  ``colour_prob=1``, ``colour_ops=
                                                                        ("brightness_contrast",)``, limits
                                                                        ``(-0.1, 0.1)`` (factors U[0.9, 1.1])
``JPEG((40, 100))`` (always)                                            ``jpeg_prob=1``, quality 40-100
``Resize`` (``resize=None``: not built), ``GaussianNoise`` (sigma 0)    none (refused when set)
======================================================================  ========================================

with ``semantics="torchvision"`` (how each op computes: :mod:`datamodules.augmentation`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from datamodules.augmentation import Augmentation

#: yermandy/GenD src/config.py ``class Augmentations`` defaults, commit e03532d (field: default)
GEND_AUGMENTATIONS: dict[str, Any] = {
    "random_horizontal_flip": 0.5,
    "random_affine_degrees": 10,
    "random_affine_translate": [0.1, 0.1],
    "random_affine_scale": [0.9, 1.1],
    "gaussian_blur_prob": 0.1,
    "gaussian_blur_kernel_size": 7,
    "gaussian_blur_sigma": [0.1, 2.0],
    "color_jitter_brightness": 0.1,
    "color_jitter_contrast": 0.1,
    "jpeg_quality": [40, 100],
    "resize": None,
    "resize_interpolation": 2,
    "gaussian_noise_sigma": 0.0,
}


def _pair(v: float | Sequence[float], name: str) -> tuple[float, float]:
    if isinstance(v, (int, float)):
        return float(v), float(v)
    if len(v) != 2:
        raise ValueError(f"GenD Augmentations.{name}: expected a number or a pair, got {v!r}")
    return float(v[0]), float(v[1])


def gend_augmentation(augs: Mapping[str, Any]) -> Augmentation:
    """The pipeline ``init_augmentations`` builds from GenD's ``Augmentations`` settings (all the keys of
    :data:`GEND_AUGMENTATIONS`), with the same "off" rules; settings the record cannot express (a resize,
    Gaussian noise, a non-square blur kernel) raise ``ValueError`` naming them."""
    if set(augs) != set(GEND_AUGMENTATIONS):
        raise ValueError(
            f"GenD Augmentations has the fields {sorted(GEND_AUGMENTATIONS)}; got {sorted(augs)} (missing "
            f"{sorted(set(GEND_AUGMENTATIONS) - set(augs))}, unexpected {sorted(set(augs) - set(GEND_AUGMENTATIONS))})"
        )
    if augs["resize"] is not None or augs["gaussian_noise_sigma"] != 0:
        raise ValueError(
            "GenD Augmentations.resize / gaussian_noise_sigma have no Augmentation setting; only their defaults "
            f"(None, 0.0) transcribe, got {augs['resize']!r}, {augs['gaussian_noise_sigma']!r}"
        )
    s: dict[str, Any] = {"semantics": "torchvision", "flip_prob": float(augs["random_horizontal_flip"])}
    degrees, translate, scale = (augs[f"random_affine_{k}"] for k in ("degrees", "translate", "scale"))
    affine = degrees != 0 or translate is not None or scale is not None
    s["rotate_prob"] = 1.0 if affine else 0.0  # RandomAffine has no probability
    s["rotate_limit"] = (-float(degrees), float(degrees)) if isinstance(degrees, (int, float)) else degrees
    s["translate_limit"] = (0.0, 0.0) if translate is None else _pair(translate, "random_affine_translate")
    s["scale_limit"] = (1.0, 1.0) if scale is None else _pair(scale, "random_affine_scale")
    s["border"] = "constant"  # RandomAffine's fill 0
    ks = augs["gaussian_blur_kernel_size"]
    blur = augs["gaussian_blur_prob"] != 0 and (ks if isinstance(ks, int) else sum(ks)) != 0
    if blur:
        kx, ky = (ks, ks) if isinstance(ks, int) else ks
        if kx != ky:
            raise ValueError(
                f"GenD Augmentations.gaussian_blur_kernel_size {ks!r}: only square kernels transcribe"
            )
        s.update(blur_prob=float(augs["gaussian_blur_prob"]), blur_limit=(int(kx), int(kx)))
        s["blur_sigma"] = _pair(augs["gaussian_blur_sigma"], "gaussian_blur_sigma")
    else:
        s["blur_prob"] = 0.0
    b, c = float(augs["color_jitter_brightness"]), float(augs["color_jitter_contrast"])
    if b or c:  # ColorJitter: factors U[max(0, 1 - x), 1 + x]
        s.update(colour_prob=1.0, colour_ops=("brightness_contrast",), colour_mode="one_of")
        s.update(brightness_limit=(max(-1.0, -b), b), contrast_limit=(max(-1.0, -c), c))
    else:
        s["colour_prob"] = 0.0
        s["colour_ops"] = ("brightness_contrast",)
    q = augs["jpeg_quality"]
    lo, hi = (q, q) if isinstance(q, int) else (int(q[0]), int(q[1]))
    if lo != 100:
        s.update(jpeg_prob=1.0, quality_lower=lo, quality_upper=hi)
    else:
        s["jpeg_prob"] = 0.0
    return Augmentation().with_overrides(**s)


#: GenD's released training augmentation (every run behind the paper's tables)
GEND_AUGMENTATION = gend_augmentation(GEND_AUGMENTATIONS)

"""Forgery mask -> per-patch labels: the one patch-label rule of the detectors that supervise patches.

A :class:`PatchRule` says when a mask pixel is fake (``mask > pixel_threshold``, masks in [0, 1]), when a
patch is fake (MORE than ``fake_fraction`` of its pixels fake) and how pixels are counted per patch
(``pooling``). A *boundary patch* is a fake patch that is not entirely fake. :func:`patch_labels` applies
a rule to a mask batch ``[B, 1, H, W]`` on a ``grid x grid`` layout (row-major, ``[B, grid*grid]``).

Rules:

* :data:`FORENSICS_ADAPTER`: Cui et al., "Forensics Adapter: Adapting CLIP for Generalizable Face
  Forgery Detection", CVPR 2025, the rule as stated (the paper, and the released
  ``split_images_by_patch`` as its code reads: white pixels over white + black pixels): 0-255 masks
  binarised at ``> 40``, a patch fake above 10 % fake pixels, boundary patches more than 10 % but not
  100 % fake. Patches are the ViT's: the mask side must be a multiple of the grid (``pooling="patches"``).
* :data:`FORENSICS_ADAPTER_RELEASED`: what that released code effectively computes
  (``dataset/abstract_dataset.py``, OUC-VAS/ForensicsAdapter). Its loader returns the mask as float32
  0-255, ``cv2.threshold`` keeps it float32 ({0, 255}), and ``cv2.bitwise_not`` of a float32 patch
  flips the bits of every float (0.0 becomes a NaN pattern, 255.0 a negative number): no pixel is zero
  afterwards, so ``findNonZero`` counts EVERY pixel as black. The fraction is then
  ``fake / (n + fake)`` for an ``n``-pixel patch (``counting="released"``): a 16x16 patch is fake from
  29 fake pixels (not 26), a 14x14 CLIP patch from 22 (not 20), and since the fraction never reaches 1
  every fake patch is a boundary patch, fully fake ones included.
* :data:`SFAM`: the same thresholds (SFAM's abstract gives none; ``sfam/alignment.py``), counted over
  adaptive bins so any mask side works (``pooling="adaptive"``). On a side that is a multiple of the
  grid the two poolings give the same fractions up to float rounding (``sum / k / k`` against
  ``sum / k**2``), so SFAM keeps its own to stay bitwise what it was.

A further rule is one more :class:`PatchRule` value, with a new field if it counts differently -- never a
copy of these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class PatchRule:
    """When a mask pixel, and a patch, count as fake.

    Attributes:
        name: what the rule is called in docs and errors.
        pixel_threshold: a pixel is fake when the mask exceeds this (masks in [0, 1]).
        fake_fraction: a patch is fake when MORE than this fraction of its pixels is fake.
        pooling: ``"patches"``: non-overlapping ``side / grid`` pixel patches (the side must be a
            multiple of the grid); ``"adaptive"``: ``adaptive_avg_pool2d`` bins (any side).
        counting: ``"stated"``: fraction = fake pixels / pixels; ``"released"``: fake / (pixels + fake),
            what Forensics Adapter's released code computes (see the module docstring).
    """

    name: str
    pixel_threshold: float
    fake_fraction: float
    pooling: Literal["patches", "adaptive"] = "patches"
    counting: Literal["stated", "released"] = "stated"

    def fake_pixels(self, mask: Tensor) -> Tensor:
        """Float 0/1 map of the fake pixels of ``mask`` (same shape)."""
        return (mask.float() > self.pixel_threshold).float()

    def fake(self, fractions: Tensor) -> Tensor:
        """Bool: patches (or regions) whose fraction of fake pixels makes them fake."""
        return fractions > self.fake_fraction

    def boundary(self, fractions: Tensor) -> Tensor:
        """Bool: fake patches that are not entirely fake."""
        return (fractions > self.fake_fraction) & (fractions < 1.0)


FORENSICS_ADAPTER = PatchRule("forensics_adapter", pixel_threshold=40.0 / 255.0, fake_fraction=0.10)
FORENSICS_ADAPTER_RELEASED = PatchRule(
    "forensics_adapter_released", pixel_threshold=40.0 / 255.0, fake_fraction=0.10, counting="released"
)
SFAM = PatchRule("sfam", pixel_threshold=40.0 / 255.0, fake_fraction=0.10, pooling="adaptive")


@dataclass
class PatchLabels:
    """Per-patch statistics of a mask batch, ``[B, grid*grid]`` each (row-major)."""

    fraction: Tensor  # float: fraction of fake pixels
    fake: Tensor  # bool: fake patches
    boundary: Tensor  # bool: fake patches that are not entirely fake


def patch_fractions(mask: Tensor, grid: int, rule: PatchRule, size: int | None = None) -> Tensor:
    """Fraction of fake pixels per patch, ``[B, grid*grid]`` (row-major).

    ``size``: resize the mask (bilinear) to ``size x size`` first, e.g. to the CLIP input side when
    the mask is at the adapter's (256 -> 224, as the released Forensics Adapter code does).
    """
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"forgery mask must be [B,1,H,W], got {tuple(mask.shape)}")
    m = mask.float()
    if size is not None and m.shape[-1] != size:
        m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False)
    fake = rule.fake_pixels(m)
    if rule.pooling == "adaptive":
        share = F.adaptive_avg_pool2d(fake, grid).flatten(1)
    else:
        side = m.shape[-1]
        if m.shape[-2] != side or side % grid:
            raise ValueError(f"mask of side {tuple(m.shape[-2:])} does not split into a {grid}x{grid} grid")
        share = F.avg_pool2d(fake, side // grid).flatten(1)
    # released: every pixel also counts as "black", so fake / (n + fake) = share / (1 + share)
    return share / (1.0 + share) if rule.counting == "released" else share


def patch_labels(
    mask: Tensor, grid: int, rule: PatchRule, label: Tensor | None = None, size: int | None = None
) -> PatchLabels:
    """``rule`` applied to a mask batch ``[B, 1, H, W]`` on a ``grid x grid`` layout.

    ``label`` (``[B]``, 0 real / 1 fake): when given, every patch of a real image is real and no patch of
    it is a boundary patch (whatever its mask says). ``size``: see :func:`patch_fractions`.
    """
    fraction = patch_fractions(mask, grid, rule, size)
    fake, boundary = rule.fake(fraction), rule.boundary(fraction)
    if label is not None:
        is_fake = (label.view(-1, 1) != 0).to(fake.device)
        fake, boundary = fake & is_fake, boundary & is_fake
    return PatchLabels(fraction, fake, boundary)

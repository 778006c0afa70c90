"""Forgery mask -> per-patch labels: the one patch-label rule of the detectors that supervise patches.

A :class:`PatchRule` says when a mask pixel is fake (``mask > pixel_threshold``, masks in [0, 1]), when a
patch is fake (MORE than ``fake_fraction`` of its pixels fake) and how pixels are counted per patch
(``pooling``). A *boundary patch* is a fake patch that is not entirely fake. :func:`patch_labels` applies
a rule to a mask batch ``[B, 1, H, W]`` on a ``grid x grid`` layout (row-major, ``[B, grid*grid]``).

Rules:

* :data:`FORENSICS_ADAPTER`: Cui et al., "Forensics Adapter: Adapting CLIP for Generalizable Face
  Forgery Detection", CVPR 2025, as its released data pipeline states it: 0-255 masks binarised at
  ``> 40``, a patch fake above 10 % fake pixels, boundary patches more than 10 % but not 100 % fake.
  Patches are the ViT's: the mask side must be a multiple of the grid (``pooling="patches"``).
* :data:`SFAM`: the same thresholds (SFAM's abstract gives none; ``sfam/alignment.py``), counted over
  adaptive bins so any mask side works (``pooling="adaptive"``). On a side that is a multiple of the
  grid the two poolings give the same fractions up to float rounding (``sum / k / k`` against
  ``sum / k**2``), so SFAM keeps its own to stay bitwise what it was.

A further rule (e.g. another reading of the released Forensics Adapter code) is one more
:class:`PatchRule` value, with a new field if it counts differently -- never a copy of these functions.
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
    """

    name: str
    pixel_threshold: float
    fake_fraction: float
    pooling: Literal["patches", "adaptive"] = "patches"

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
        return F.adaptive_avg_pool2d(fake, grid).flatten(1)
    side = m.shape[-1]
    if m.shape[-2] != side or side % grid:
        raise ValueError(f"mask of side {tuple(m.shape[-2:])} does not split into a {grid}x{grid} grid")
    return F.avg_pool2d(fake, side // grid).flatten(1)


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

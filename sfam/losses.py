"""SFAM's training objective: CE + patch alignment + per-region real/fake + image-text contrastive + balance.

Default weights (:class:`LossWeights`) are our design (``sfam/README.md``, "What follows the abstract, what
is our reading": the loss row), not the paper's, whose values are not public:
``L = 1.0 CE + 1.0 L_patch + 0.5 L_region + 0.1 L_itc + 0.01 L_balance``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from sfam.alignment import PATCH_RULE


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (a zero weight drops the term).

    Attributes:
        ce: binary cross-entropy on the image fake-logit (2-way CE up to reparametrisation).
        patch: patch alignment loss (balanced CE + ``dice`` x Dice) against the mask's patch labels.
        region: BCE of the per-region fake scores against region labels from the forgery mask.
        itc: image-text contrastive loss between the head's image feature and the global prompts.
        balance: MoE load balance (prior-relative; see :func:`sfam.moe.balance_loss`).
        dice: weight of Dice inside the patch loss.
    """

    ce: float = 1.0
    patch: float = 1.0
    region: float = 0.5
    itc: float = 0.1
    balance: float = 0.01
    dice: float = 1.0

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.__dict__.items() if v < 0}
        if bad:
            raise ValueError(f"loss weights must be >= 0, got {bad}")


def region_labels(forgery_mask: Tensor, region_masks: Tensor, label: Tensor) -> Tensor:
    """Region labels ``[B,R]`` (0/1): a region is fake when more than 10% of its area is fake.

    Pixels are fake above the same threshold as the patch labels; reals are all real.
    """
    if forgery_mask.shape[-2:] != region_masks.shape[-2:]:
        forgery_mask = F.interpolate(forgery_mask.float(), size=region_masks.shape[-2:], mode="nearest")
    fake = PATCH_RULE.fake_pixels(forgery_mask)  # [B,1,H,W]
    m = region_masks.float()
    area = m.sum((-2, -1)).clamp_min(1e-6)
    fraction = (m * fake).sum((-2, -1)) / area
    return PATCH_RULE.fake(fraction).float() * (label.view(-1, 1) == 1).float()


def contrastive_loss(feature: Tensor, text: Tensor, label: Tensor, scale: Tensor) -> Tensor:
    """Symmetric image-text loss with two class prompts ``text`` ``[2,D]`` and unit-norm features ``[B,D]``.

    Image -> text: cross-entropy over the two prompts. Text -> image: for each class present in the
    batch, InfoNCE over the batch images with every image of that class as a positive (multi-positive,
    Khosla et al. NeurIPS 2020). The result is the mean of the two directions.
    """
    logits = scale * feature.float() @ text.float().t()  # [B,2]
    i2t = F.cross_entropy(logits, label)
    log_p = logits.t().log_softmax(-1)  # [2,B]: each prompt over the batch
    t2i = [-log_p[c][label == c].mean() for c in (0, 1) if (label == c).any()]
    return 0.5 * (i2t + torch.stack(t2i).mean())

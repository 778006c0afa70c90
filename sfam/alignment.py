"""Patch-level image-text alignment (SFAM module (a)).

The abstract of SFAM (Luo, Chen, Liu, arXiv 2604.21478) describes "a patch-level image-text alignment
module that makes CLIP sensitive to manipulation artifacts". Our reading (the body is not public):

* patch tokens of a few CLIP blocks, each through CLIP's own ``ln_post`` and frozen ``visual.proj`` into the
  joint image-text space (open_clip returns tokens unprojected), fused by learned softmax weights;
* a light residual bottleneck adapter ``P' = P + MLP(LN(P))`` (output layer zero-initialised, so training
  starts from CLIP's own tokens);
* cosine similarity of every patch to the real/fake prompts of every region, scaled by CLIP's logit
  scale, mixed by the patch's soft region assignment: each patch is judged by its own region's prompts;
* a patch loss against patch labels from the forgery mask (Forensics Adapter's rule, Cui et al. CVPR
  2025: a pixel is fake above 40/255, a patch is fake when more than 10% of its pixels are; reals are all
  real): class-balanced cross-entropy plus soft Dice on the fakeness map;
* text-enhanced tokens ``X = P'/|P'| + alpha * sum_r,c A_ir p_ic T_rc`` passed to the MoE (alpha learnable,
  0.1 at start): each token carries the text embedding its own alignment voted for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from datamodules.media import masks

#: the patch-label rule (Forensics Adapter's thresholds over adaptive bins; ``datamodules.media.masks``)
PATCH_RULE = masks.SFAM
#: Forensics Adapter's binarisation threshold for mask pixels (40 on a 0-255 scale).
PIXEL_THRESHOLD = PATCH_RULE.pixel_threshold
#: a patch is fake when more than this fraction of its pixels is fake.
PATCH_THRESHOLD = PATCH_RULE.fake_fraction


@torch.no_grad()
def clip_patch_tokens(visual: nn.Module, image: Tensor, layers: Sequence[int]) -> tuple[Tensor, Tensor]:
    """One frozen pass of an open_clip visual tower: CLS embedding ``[B,D]`` and patch tokens ``[L,B,N,D]``.

    The tokens of blocks ``layers`` (0-based) go through the tower's ``ln_post`` and its frozen projection
    ``visual.proj`` into the joint image-text space (open_clip returns them unprojected).
    """
    out = visual.forward_intermediates(
        image, indices=list(layers), normalize_intermediates=True, output_fmt="NLC"
    )
    proj = visual.proj
    tokens = torch.stack([t @ proj.to(t.dtype) for t in out["image_intermediates"]])
    return out["image_features"], tokens


def region_assignment(region_masks: Tensor, grid: int) -> Tensor:
    """Area-pool soft region masks ``[B, R, H, W]`` to the patch grid -> ``A`` ``[B, G*G, R]``, rows sum to 1.

    A patch whose masks sum to zero (no region at all) gets the uniform assignment.
    """
    pooled = F.adaptive_avg_pool2d(region_masks.float(), grid)  # [B,R,G,G]
    a = pooled.flatten(2).transpose(1, 2)  # [B,N,R]
    total = a.sum(-1, keepdim=True)
    uniform = torch.full_like(a, 1.0 / a.shape[-1])
    return torch.where(total > 1e-6, a / total.clamp_min(1e-6), uniform)


def patch_labels(forgery_mask: Tensor, label: Tensor, grid: int) -> Tensor:
    """Patch labels ``[B, G*G]`` (float 0/1) from a soft forgery mask ``[B, 1, H, W]`` and image labels ``[B]``.

    A pixel is fake when the mask exceeds :data:`PIXEL_THRESHOLD`; a patch is fake when more than
    :data:`PATCH_THRESHOLD` of its area is fake. Real images are all real whatever their mask says.
    """
    return masks.patch_labels(forgery_mask, grid, PATCH_RULE, label=label).fake.float()


class LayerFusion(nn.Module):
    """Softmax-weighted sum of per-layer token maps ``[L, B, N, D] -> [B, N, D]`` (equal weights at start)."""

    def __init__(self, num_layers: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(num_layers))

    def forward(self, per_layer: Tensor) -> Tensor:
        """Per-layer tokens ``[L, B, N, D]`` mixed with softmax-normalised layer weights into ``[B, N,
        D]``."""
        w = self.weight.softmax(0).to(per_layer.dtype)
        return torch.einsum("l,lbnd->bnd", w, per_layer)


class ResidualAdapter(nn.Module):
    """``x + W2 GELU(W1 LN(x))`` with ``W2`` zero-initialised (identity at start)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.down = nn.Linear(dim, hidden)
        self.up = nn.Linear(hidden, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` plus the bottleneck adapter's output on normalised ``x``."""
        return x + self.up(F.gelu(self.down(self.norm(x))))


@dataclass
class AlignmentOutput:
    """``patch_logits`` ``[B, N, 2]`` (real, fake) and the text-enhanced tokens ``[B, N, D]``."""

    patch_logits: Tensor
    tokens: Tensor


class PatchTextAlignment(nn.Module):
    """Adapter + region-prompt scoring + text enhancement on projected patch tokens.

    Args:
        dim: joint-space width ``D`` (512 for ViT-B/16).
        hidden: adapter bottleneck width (128 for ViT-B/16: ``dim // 4``).
        alpha_init: initial weight of the text enhancement.
    """

    def __init__(self, dim: int, hidden: int, alpha_init: float = 0.1) -> None:
        super().__init__()
        self.adapter = ResidualAdapter(dim, hidden)
        self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))

    def forward(self, tokens: Tensor, assign: Tensor, region_text: Tensor, scale: Tensor) -> AlignmentOutput:
        """``tokens`` ``[B,N,D]``, ``assign`` ``[B,N,R]``, ``region_text`` ``[R,2,D]`` unit-norm, ``scale`` scalar."""
        p = F.normalize(self.adapter(tokens), dim=-1)
        text = region_text.to(p.dtype)
        sim = torch.einsum("bnd,rcd->bnrc", p, text)  # cosine similarity to every region's prompts
        assign = assign.to(p.dtype)
        logits = scale * torch.einsum("bnr,bnrc->bnc", assign, sim)
        vote = logits.softmax(-1)
        enhancement = torch.einsum("bnr,bnc,rcd->bnd", assign, vote, text)
        return AlignmentOutput(patch_logits=logits, tokens=p + self.alpha * enhancement)


def patch_alignment_loss(patch_logits: Tensor, labels: Tensor, dice_weight: float = 1.0) -> Tensor:
    """Class-balanced cross-entropy over patches plus ``dice_weight`` x soft Dice on the fakeness map.

    The two CE halves (real patches, fake patches) are averaged separately and then together, so the
    few fake patches of a batch are not drowned by the many real ones; a batch without fake patches
    uses the real half only. Dice (smoothing 1) is computed per image and averaged.
    """
    logits = patch_logits.float()
    ce = F.cross_entropy(logits.flatten(0, 1), labels.long().flatten(), reduction="none").view_as(labels)
    fake = labels > 0.5
    parts = [ce[m].mean() for m in (~fake, fake) if m.any()]
    loss = torch.stack(parts).mean()
    if dice_weight:
        p = logits.softmax(-1)[..., 1]
        inter = (p * labels).sum(1)
        dice = 1 - (2 * inter + 1) / (p.sum(1) + labels.sum(1) + 1)
        loss = loss + dice_weight * dice.mean()
    return loss

"""Forensics Adapter supervision: targets from the forgery mask and the patch contrastive losses.

Cui et al., "Forensics Adapter: Adapting CLIP for Generalizable Face Forgery Detection", CVPR 2025
(arXiv 2411.19715). The rules below follow the paper and our reading of its released code
(``dataset/abstract_dataset.py``: ``get_boundary``, ``split_images_by_patch``; ``model/adapters/adapter.py``
and ``model/attn.py``: ``intra_contra``); the code is ours.

* Boundary target: the mask blurred with OpenCV's 3x3 Gaussian (``sigma=0`` gives the fixed kernel
  ``[1/4, 1/2, 1/4]``, reflect-101 border), then ``4 m (1 - m)``; all zero for real images.
* Patch statistics: binarise the mask at ``m * 255 > 40``; a patch is *fake* when more than 10 % of its
  pixels are fake, a *boundary patch* when it is more than 10 % but not 100 % fake: the stated rule,
  ``datamodules.media.masks.FORENSICS_ADAPTER`` (which SFAM shares). ``rule=masks.FORENSICS_ADAPTER_RELEASED``
  counts as the released code effectively does (fake from 29 of 256 pixels, every fake patch a boundary
  patch; see :mod:`datamodules.media.masks`).
* Contrast (temperature 0.5): within each fake image, real-real patch pairs are the positives and
  fake-real pairs the negatives, ``-log(P / (P + N))`` with ``P``, ``N`` sums of ``exp(cos / t)`` over
  the whole batch of fake images. As released, the sums run over all ``L x L`` pairs, and a pair with a
  masked-out patch contributes ``exp(0) = 1``. The CLIP side adds an inter-image term: each real image's
  patches against themselves (positives) and against a random fake image's patches (negatives).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from datamodules.media import masks


def _check_mask(mask: Tensor) -> None:
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"forgery mask must be [B,1,H,W], got {tuple(mask.shape)}")


def blur3x3(mask: Tensor) -> Tensor:
    """OpenCV ``GaussianBlur(m, (3, 3), 0)``: separable ``[1/4, 1/2, 1/4]``, reflect-101 border."""
    _check_mask(mask)
    k = mask.new_tensor([0.25, 0.5, 0.25])
    x = F.pad(mask, (1, 1, 1, 1), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, 3))
    return F.conv2d(x, k.view(1, 1, 3, 1))


def boundary_target(mask: Tensor, label: Tensor) -> Tensor:
    """``4 m (1 - m)`` of the 3x3-blurred mask ``[B,1,H,W]`` (values in [0, 1]); zero for reals."""
    m = blur3x3(mask.float()).clamp(0.0, 1.0)
    b = 4.0 * m * (1.0 - m)
    return b * (label != 0).view(-1, 1, 1, 1).to(b.dtype)


def patch_fractions(
    mask: Tensor, grid: int, size: int | None = None, rule: masks.PatchRule = masks.FORENSICS_ADAPTER
) -> Tensor:
    """Fraction of fake pixels per patch, ``[B, grid*grid]``, by ``rule`` (the stated rule by default;
    ``size``: resize the mask to the CLIP side first)."""
    return masks.patch_fractions(mask, grid, rule, size)


def patch_labels(fractions: Tensor, rule: masks.PatchRule = masks.FORENSICS_ADAPTER) -> Tensor:
    """Fake patches: more than 10 % fake pixels (as ``rule`` counts them). Bool ``[B, L]``."""
    return rule.fake(fractions)


def boundary_patches(fractions: Tensor, rule: masks.PatchRule = masks.FORENSICS_ADAPTER) -> Tensor:
    """Boundary patches: more than 10 % but not 100 % fake pixels (as ``rule`` counts them). Bool ``[B, L]``."""
    return rule.boundary(fractions)


def _log_ratio(pos: Tensor, neg: Tensor) -> Tensor:
    """``-log(sum exp(pos) / (sum exp(pos) + sum exp(neg)))``, computed with log-sum-exp."""
    lp, ln = pos.flatten().logsumexp(0), neg.flatten().logsumexp(0)
    return torch.logaddexp(lp, ln) - lp


def intra_contrast(emb: Tensor, patch_label: Tensor, label: Tensor, temperature: float = 0.5) -> Tensor:
    """Real-vs-fake patch contrast inside the fake images of the batch.

    Args:
        emb: patch embeddings ``[B, L, D]`` (normalised here).
        patch_label: bool ``[B, L]``, True for fake patches.
        label: ``[B]`` image labels (1 fake).
        temperature: the similarities are divided by it before the softmax.
    """
    fake = label == 1
    if not bool(fake.any()):
        return emb.sum() * 0.0  # keeps the graph (and gradients) alive; nothing to contrast
    e = F.normalize(emb[fake].float(), dim=-1)
    fl = patch_label[fake].unsqueeze(-1).to(e.dtype)
    fake_part, real_part = e * fl, e * (1.0 - fl)
    neg = fake_part @ real_part.transpose(1, 2) / temperature
    pos = real_part @ real_part.transpose(1, 2) / temperature
    return _log_ratio(pos, neg)


def inter_contrast(emb: Tensor, label: Tensor, temperature: float = 0.5) -> Tensor | None:
    """Real images against fake images (CLIP side); ``None`` when the batch lacks either class.

    As released: the larger class is subsampled at random to the size of the smaller one; positives are
    each real image's patches against its own patches, negatives against one fake image's patches.
    """
    real_idx = (label == 0).nonzero(as_tuple=True)[0]
    fake_idx = (label == 1).nonzero(as_tuple=True)[0]
    n = min(len(real_idx), len(fake_idx))
    if n == 0:
        return None
    dev = emb.device
    real_idx = real_idx[torch.randperm(len(real_idx), device=dev)[:n]] if len(real_idx) > n else real_idx
    fake_idx = fake_idx[torch.randperm(len(fake_idx), device=dev)[:n]] if len(fake_idx) > n else fake_idx
    e = F.normalize(emb.float(), dim=-1)
    r, f = e[real_idx], e[fake_idx]
    pos = r @ r.transpose(1, 2) / temperature
    neg = r @ f.transpose(1, 2) / temperature
    return _log_ratio(pos, neg)


def clip_contrast(emb: Tensor, patch_label: Tensor, label: Tensor, temperature: float = 0.5) -> Tensor:
    """CLIP-side loss: intra contrast plus the inter-image term when both classes are present."""
    loss = intra_contrast(emb, patch_label, label, temperature)
    inter = inter_contrast(emb, label, temperature)
    return loss if inter is None else loss + inter

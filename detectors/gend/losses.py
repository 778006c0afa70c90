"""GenD's metric-learning terms on the unit hypersphere (Wang & Isola, ICML 2020, arXiv 2005.10242).

As the released ``src/losses/unifalign.py`` of yermandy/GenD defines them (MIT; our own code), for
L2-normalised embeddings ``z [N, D]`` and labels ``y [N]``:

* ``alignment(z, y) = mean over pairs i < j with y_i = y_j of ||z_i - z_j||^alpha`` (alpha 2; 0 when the
  batch has no such pair or fewer than two samples);
* ``uniformity(z) = log(max(mean over pairs i < j of exp(-t ||z_i - z_j||^2), 1e-6))`` (t 2).

Squared distances come from the Gram matrix (``|z_i|^2 + |z_j|^2 - 2 z_i.z_j``, clamped at 0) where the
released code squares ``torch.pdist``: the same values up to rounding, memory ``N^2`` instead of ``N^2 D``
for the pairwise differences, and no square root whose gradient is undefined for identical embeddings.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _pair_sq_dists(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Squared distances of all pairs ``i < j`` and their indices."""
    i, j = torch.triu_indices(z.shape[0], z.shape[0], offset=1, device=z.device)
    sq = z.pow(2).sum(dim=1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * z @ z.T).clamp_min(0.0)
    return d2[i, j], i, j


def alignment(z: Tensor, labels: Tensor, alpha: float = 2.0) -> Tensor:
    """Label-aware alignment: mean ``||z_i - z_j||^alpha`` over same-label pairs."""
    if z.shape[0] != labels.shape[0]:
        raise ValueError(f"alignment: {z.shape[0]} embeddings but {labels.shape[0]} labels")
    if z.shape[0] < 2:
        return z.new_zeros(())
    d2, i, j = _pair_sq_dists(z)
    same = labels[i] == labels[j]
    if not bool(same.any()):
        return z.new_zeros(())
    return d2[same].pow(alpha / 2).mean()


def uniformity(z: Tensor, t: float = 2.0, clip_value: float = 1e-6) -> Tensor:
    """Uniformity: ``log`` of the mean Gaussian potential ``exp(-t ||z_i - z_j||^2)`` over pairs."""
    if z.shape[0] < 2:
        return z.new_zeros(())
    d2, _, _ = _pair_sq_dists(z)
    return d2.mul(-t).exp().mean().clamp(min=clip_value).log()

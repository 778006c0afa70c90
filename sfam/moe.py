"""Facial-region mixture-of-experts (SFAM module (b)).

The abstract of SFAM (Luo, Chen, Liu, arXiv 2604.21478) describes "a facial-region mixture-of-experts
module that routes features from different facial regions to specialized experts". Our reading:

* one FFN expert per region (``D -> D*expert_ratio -> D``, GELU) plus one always-on shared expert, all on the
  same pre-norm tokens, output layers zero-initialised (identity at start);
* a router whose logits are a learned linear term plus ``beta * log(A + eps)``, the log of the patch's
  soft region assignment: routing follows the face, and the learned term lets border patches cross over.
  ``beta = inf`` routes every patch to the region with the largest share (one-hot); ``eps = 0`` (the
  "hard" prior) gives exactly zero weight to every region the patch does not touch; ``beta = 0`` is the
  region-prior-off ablation;
* optional top-k: only the k largest gates stay (renormalised);
* region pooling ``h_r = sum_i A_ir Z_i / sum_i A_ir`` into per-region features;
* a load-balance loss. Switch Transformer's ``E * sum_e f_e p_e`` (Fedus et al., JMLR 2022) pushes every
  expert towards 1/E of the tokens, which fights the region prior (the outside region covers many more
  patches than the nose). We divide by the prior's expected share ``q_e`` instead:
  ``sum_e f_e p_e / q_e`` is minimal (1) when no expert takes more than its regions' share; with the prior
  off, ``q_e = 1/E`` and it is Switch's loss.

Experts are evaluated densely (all experts on all tokens, as one ``D x E*H`` matmul and one ``E*H x D``
matmul); a zero gate contributes exactly nothing to the output or the gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class FFN(nn.Module):
    """``W2 GELU(W1 x)`` with ``W2`` zero-initialised."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x: Tensor) -> Tensor:
        """The two-layer GELU feed-forward network."""
        return self.fc2(F.gelu(self.fc1(x)))


class RegionExperts(nn.Module):
    """``E`` FFN experts stored stacked; ``forward(x, gates)`` returns ``sum_e gates_e * expert_e(x)``."""

    def __init__(self, num_experts: int, dim: int, hidden: int) -> None:
        super().__init__()
        self.num_experts, self.hidden = num_experts, hidden
        bound = 1 / math.sqrt(dim)  # nn.Linear's default init for the first layer
        self.w1 = nn.Parameter(torch.empty(dim, num_experts * hidden).uniform_(-bound, bound))
        self.b1 = nn.Parameter(torch.empty(num_experts * hidden).uniform_(-bound, bound))
        self.w2 = nn.Parameter(torch.zeros(num_experts * hidden, dim))
        self.b2 = nn.Parameter(torch.zeros(num_experts, dim))

    def expert(self, e: int, x: Tensor) -> Tensor:
        """Expert ``e`` alone on ``x`` (for tests and inspection)."""
        s = slice(e * self.hidden, (e + 1) * self.hidden)
        return F.gelu(x @ self.w1[:, s] + self.b1[s]) @ self.w2[s] + self.b2[e]

    def forward(self, x: Tensor, gates: Tensor) -> Tensor:
        """Every expert's FFN on ``x`` at once, each scaled by its gate, summed."""
        h = F.gelu(x @ self.w1 + self.b1)  # [..., E*H]
        h = h.unflatten(-1, (self.num_experts, self.hidden)) * gates.unsqueeze(-1).to(h.dtype)
        return h.flatten(-2) @ self.w2 + gates.to(h.dtype) @ self.b2


@dataclass
class MoEOutput:
    """``tokens`` ``[B,N,D]`` after the MoE and the router's ``gates`` ``[B,N,E]`` (rows sum to 1)."""

    tokens: Tensor
    gates: Tensor


class RegionMoE(nn.Module):
    """Region experts + shared expert with a region-prior router.

    Args:
        dim: token width ``D``.
        num_regions: number of region experts ``E`` (= number of regions).
        hidden: expert hidden width.
        prior_strength: ``beta``; ``math.inf`` routes one-hot by region, ``0`` ignores the prior.
        prior_eps: ``eps`` in ``log(A + eps)``; ``0`` makes the prior hard (untouched regions get gate 0).
        top_k: keep only the ``k`` largest gates per token (``None``: dense).
    """

    def __init__(
        self,
        dim: int,
        num_regions: int,
        hidden: int,
        prior_strength: float = 1.0,
        prior_eps: float = 1e-6,
        top_k: int | None = None,
    ) -> None:
        super().__init__()
        if prior_strength < 0 or prior_eps < 0:
            raise ValueError(f"prior_strength and prior_eps must be >= 0, got {prior_strength}, {prior_eps}")
        if top_k is not None and not 1 <= top_k <= num_regions:
            raise ValueError(f"top_k must be in 1..{num_regions} or None, got {top_k}")
        self.prior_strength, self.prior_eps, self.top_k = float(prior_strength), float(prior_eps), top_k
        self.norm = nn.LayerNorm(dim)
        # With an infinite prior the learned term cannot change the routing: no router at all.
        self.router = nn.Linear(dim, num_regions) if math.isfinite(self.prior_strength) else None
        self.experts = RegionExperts(num_regions, dim, hidden)
        self.shared = FFN(dim, hidden)

    def route(self, x: Tensor, assign: Tensor) -> Tensor:
        """Gates ``[B,N,E]`` from normalised tokens ``x`` and region assignment ``assign`` ``[B,N,E]``."""
        if self.router is None:
            return F.one_hot(assign.argmax(-1), assign.shape[-1]).to(x.dtype)
        logits = self.router(x).float()
        if self.prior_strength > 0:
            logits = logits + self.prior_strength * torch.log(assign.float() + self.prior_eps)
        if self.top_k is not None:
            kth = logits.topk(self.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        return logits.softmax(-1)

    def forward(self, x: Tensor, assign: Tensor) -> MoEOutput:
        """Route the normalised tokens to the region experts; residual plus expert and shared outputs, with
        the gates."""
        h = self.norm(x)
        gates = self.route(h, assign)
        return MoEOutput(tokens=x + self.experts(h, gates) + self.shared(h), gates=gates)


class SingleExpert(nn.Module):
    """The MoE-off ablation: one region-agnostic pre-norm FFN with a residual, ``x + FFN(LN(x))``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.expert = FFN(dim, hidden)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` plus the single expert's output on normalised ``x`` (the MoE ablation)."""
        return x + self.expert(self.norm(x))


def region_pool(tokens: Tensor, assign: Tensor) -> Tensor:
    """Per-region features ``[B,R,D]``: assignment-weighted means of ``tokens`` ``[B,N,D]``."""
    a = assign.to(tokens.dtype)
    total = a.sum(1).clamp_min(1e-6).unsqueeze(-1)  # [B,R,1]
    return torch.einsum("bnr,bnd->brd", a, tokens) / total


def balance_loss(gates: Tensor, assign: Tensor | None) -> Tensor:
    """Load balance ``sum_e f_e p_e / q_e`` (1 when balanced; see the module docstring).

    ``f_e``: share of tokens whose largest gate is ``e``; ``p_e``: mean gate; ``q_e``: mean of ``assign``
    (the prior's expected share, floored at 1e-3 and renormalised) or ``1/E`` when ``assign`` is None.
    """
    g = gates.float().flatten(0, -2)
    e = g.shape[-1]
    f = F.one_hot(g.argmax(-1), e).float().mean(0)
    p = g.mean(0)
    if assign is None:
        q = torch.full_like(p, 1.0 / e)
    else:
        q = assign.float().flatten(0, -2).mean(0).clamp_min(1e-3)
        q = q / q.sum()
    return (f * p / q).sum()

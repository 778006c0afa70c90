"""Effort's SVD split of a linear layer and an attention that runs on four split projections.

From the paper (Yan et al., "Orthogonal Subspace Decomposition for Generalizable AI-Generated Image
Detection", ICML 2025) and our reading of the released ``SVDResidualLinear`` /
``apply_svd_residual_to_self_attn`` (``DeepfakeBench/training/detectors/effort_detector.py`` of
YZY-stack/Effort-AIGI-Detection; non-commercial licence, not copied):

* ``W = U diag(S) V^T`` (thin SVD, singular values descending). With ``r = n - k`` (``n = min(out, in)``,
  ``k`` the residual rank; released: ``r = 1023`` for ViT-L/14's 1024-wide projections, so ``k = 1``):
  ``weight_main = U[:, :r] diag(S[:r]) V^T[:r]`` is frozen, and ``U_residual = U[:, r:]``,
  ``S_residual = S[r:]``, ``V_residual = V^T[r:]`` are trainable, initialised from the SVD.
* forward: ``y = x (weight_main + U_residual diag(S_residual) V_residual)^T + bias``; the bias is frozen.

Parameter names are the released ones, so checkpoints map one to one. open_clip fuses q/k/v into
``attn.in_proj_weight [3W, W]``; :func:`decompose_attention` splits it into the three ``W x W`` slices HF
CLIP keeps apart (rows ``[0:W]`` q, ``[W:2W]`` k, ``[2W:3W]`` v) and decomposes each, as the released code
decomposes HF's separate ``q_proj``, ``k_proj``, ``v_proj`` and ``out_proj``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def svd_split(weight: Tensor, residual_rank: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(weight_main, U_residual, S_residual, V_residual)`` of ``weight`` (the released split, float32 SVD)."""
    n = min(weight.shape)
    if not 1 <= residual_rank < n:
        raise ValueError(
            f"residual_rank must be in 1..{n - 1} for a {tuple(weight.shape)} weight, got {residual_rank}"
        )
    r = n - residual_rank
    u, s, vh = torch.linalg.svd(weight.detach().float(), full_matrices=False)
    main = (u[:, :r] * s[:r]) @ vh[:r]
    return main.to(weight.dtype), u[:, r:].clone(), s[r:].clone(), vh[r:].clone()


class SVDResidualLinear(nn.Module):
    """A linear layer ``weight_main + U_residual diag(S_residual) V_residual`` (Effort's split).

    ``weight_main`` and ``bias`` are frozen parameters; ``U_residual [out, k]``, ``S_residual [k]`` and
    ``V_residual [k, in]`` are the trainable ones.
    """

    def __init__(self, in_features: int, out_features: int, residual_rank: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features, self.residual_rank = in_features, out_features, residual_rank
        self.weight_main = nn.Parameter(torch.zeros(out_features, in_features), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(out_features), requires_grad=False) if bias else None
        self.U_residual = nn.Parameter(torch.zeros(out_features, residual_rank))
        self.S_residual = nn.Parameter(torch.zeros(residual_rank))
        self.V_residual = nn.Parameter(torch.zeros(residual_rank, in_features))

    @classmethod
    def from_weight(cls, weight: Tensor, bias: Tensor | None, residual_rank: int) -> SVDResidualLinear:
        """Split ``weight`` by SVD (see :func:`svd_split`) and copy ``bias``."""
        out_f, in_f = weight.shape
        layer = cls(in_f, out_f, residual_rank, bias=bias is not None)
        main, u, s, v = svd_split(weight, residual_rank)
        with torch.no_grad():
            layer.weight_main.copy_(main)
            layer.U_residual.copy_(u)
            layer.S_residual.copy_(s)
            layer.V_residual.copy_(v)
            if bias is not None:
                layer.bias.copy_(bias.detach())
        return layer

    def current_weight(self) -> Tensor:
        """``weight_main + U_residual diag(S_residual) V_residual`` (the weight the layer applies)."""
        return self.weight_main + (self.U_residual * self.S_residual) @ self.V_residual

    def forward(self, x: Tensor) -> Tensor:
        """The linear map with the current weight: frozen principal part plus trainable residual."""
        return F.linear(x, self.current_weight(), self.bias)

    def extra_repr(self) -> str:
        """The layer's sizes and residual rank, for ``print(model)``."""
        return f"in={self.in_features}, out={self.out_features}, residual_rank={self.residual_rank}"


class SVDResidualAttention(nn.Module):
    """Multi-head self-attention with separate split q/k/v/out projections (HF CLIP's ``CLIPAttention``).

    Drop-in for open_clip's ``nn.MultiheadAttention`` inside a ``ResidualAttentionBlock``: called as
    ``attn(x, x, x, need_weights=False, attn_mask=None)``, returns ``(output, None)``. Self-attention only
    and no mask (CLIP's vision tower uses none); anything else raises.
    """

    def __init__(
        self,
        heads: int,
        q_proj: SVDResidualLinear,
        k_proj: SVDResidualLinear,
        v_proj: SVDResidualLinear,
        out_proj: SVDResidualLinear,
        batch_first: bool = True,
    ) -> None:
        super().__init__()
        width = q_proj.out_features
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.num_heads, self.batch_first = heads, batch_first
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = q_proj, k_proj, v_proj, out_proj

    def forward(
        self,
        query: Tensor,
        key: Tensor | None = None,
        value: Tensor | None = None,
        need_weights: bool = False,
        attn_mask: Tensor | None = None,
    ) -> tuple[Tensor, None]:
        """Self-attention with the SVD-residual projections (the ``nn.MultiheadAttention`` call it
        replaces)."""
        if (key is not None and key is not query) or (value is not None and value is not query):
            raise NotImplementedError("SVDResidualAttention is self-attention only (key = value = query)")
        if attn_mask is not None or need_weights:
            raise NotImplementedError(
                "SVDResidualAttention supports neither attention masks nor need_weights"
            )
        x = query if self.batch_first else query.transpose(0, 1)
        b, n, w = x.shape
        h = self.num_heads

        def heads(t: Tensor) -> Tensor:
            return t.view(b, n, h, w // h).transpose(1, 2)

        o = F.scaled_dot_product_attention(
            heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        )
        o = self.out_proj(o.transpose(1, 2).reshape(b, n, w))
        return (o if self.batch_first else o.transpose(0, 1)), None


def decompose_attention(attn: nn.MultiheadAttention, residual_rank: int) -> SVDResidualAttention:
    """open_clip's attention (fused ``in_proj``) -> :class:`SVDResidualAttention` with each projection split."""
    if attn.in_proj_weight is None or attn.in_proj_bias is None or attn.out_proj.bias is None:
        raise ValueError("expected a self-attention with a fused in_proj_weight and biases (CLIP's)")
    w = attn.embed_dim
    weights = attn.in_proj_weight.detach().split(w, dim=0)
    biases = attn.in_proj_bias.detach().split(w, dim=0)
    q, k, v = (
        SVDResidualLinear.from_weight(wt, bs, residual_rank) for wt, bs in zip(weights, biases, strict=True)
    )
    out = SVDResidualLinear.from_weight(attn.out_proj.weight, attn.out_proj.bias, residual_rank)
    return SVDResidualAttention(attn.num_heads, q, k, v, out, batch_first=attn.batch_first)


def apply_svd_residual(visual: nn.Module, residual_rank: int) -> list[SVDResidualAttention]:
    """Replace the attention of every block of an open_clip vision transformer; return the new modules."""
    done = []
    for block in visual.transformer.resblocks:
        block.attn = decompose_attention(block.attn, residual_rank)
        done.append(block.attn)
    return done


def residual_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The trainable residual factors (``U_residual``, ``S_residual``, ``V_residual``) under ``module``."""
    return [
        p
        for m in module.modules()
        if isinstance(m, SVDResidualLinear)
        for p in (m.U_residual, m.S_residual, m.V_residual)
    ]

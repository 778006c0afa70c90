"""SFAM's read-out: attention pooling of the image tokens and prompt-initialised linear heads.

Both heads read unit-norm features scaled by CLIP's logit scale and start from the CLIP zero-shot
classifier ``w = t_fake - t_real`` (the LP-FT / WiSE-FT practice: Kumar et al. ICLR 2022, Wortsman et al.
CVPR 2022); the function class is that of an ordinary linear layer. With OpenAI weights an untrained
``clip_linear`` therefore scores exactly like zero-shot CLIP with the global prompts (its image head reads
CLIP's normalised image embedding). An untrained SFAM does not: its image head reads an attention pool of
``[CLS; region features]``, and the region features come from the adapter and the experts, so it starts
near, not at, the zero-shot classifier (``sfam/README.md``, "Heads start at zero-shot CLIP").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class AttentionPool(nn.Module):
    """Single learned query over tokens ``[B,T,D]``: keys are ``LN(tokens)``, values the tokens themselves.

    ``valid`` ``[B,T]`` (bool) excludes tokens, e.g. regions absent from the image.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.query = nn.Parameter(torch.randn(dim) * 0.02)
        self.scale = dim**-0.5

    def forward(self, tokens: Tensor, valid: Tensor | None = None) -> Tensor:
        """Attention pooling of ``tokens`` ``[B, T, D]`` with one learned query; ``valid`` masks out
        tokens."""
        scores = (self.norm(tokens) @ self.query.to(tokens.dtype)).float() * self.scale
        if valid is not None:
            scores = scores.masked_fill(~valid, float("-inf"))
        w = scores.softmax(-1).to(tokens.dtype)
        return torch.einsum("bt,btd->bd", w, tokens)


class PromptInitLinear(nn.Module):
    """``K`` linear scores of unit-norm features: ``scale * <x_k/|x_k|, w_k> + b_k``, ``w_k`` from prompts.

    Args:
        text: ``[K, 2, D]`` unit-norm (real, fake) prompt embeddings; ``w_k`` starts at ``t_fake - t_real``.
    """

    def __init__(self, text: Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter((text[:, 1] - text[:, 0]).detach().clone().float())
        self.bias = nn.Parameter(torch.zeros(text.shape[0]))

    def forward(self, x: Tensor, scale: Tensor) -> Tensor:
        """``x`` ``[B, K, D]`` -> scores ``[B, K]``."""
        x = F.normalize(x, dim=-1)
        return scale * (x * self.weight.to(x.dtype)).sum(-1) + self.bias.to(x.dtype)

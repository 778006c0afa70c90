"""Trainable blocks of the Forensics Adapter (Cui et al., CVPR 2025, arXiv 2411.19715).

Written from the paper and our reading of the released code (OUC-VAS/ForensicsAdapter ``model/ds.py``,
``model/adapters/adapter.py``, ``model/attn.py``, ``model/layer.py``; CC BY-NC 4.0, not copied); every
size is an argument so the same blocks serve CLIP ViT-L/14, ViT-B/16 and the tiny test CLIPs.

* :class:`SideAdapter`: the ViT-Tiny-shaped side network (own patch embedding, query tokens, the blocks
  that are used, learned CLIP->adapter fusion projections).
* :class:`MaskDecoder`: queries x patch features -> per-query boundary features and per-head attention
  biases for the second CLIP pass.
* :class:`BoundaryDecoder`: per-query boundary features -> the full-resolution boundary map.
* :class:`ClipBottleneck`: the trainable bottleneck inserted between frozen CLIP blocks (its 192-d
  activations carry the CLIP-side contrastive loss).
* :class:`QueryClassifier`: the 2-way head over the projected query tokens.
* :func:`query_attention_mask`: the additive mask of the second CLIP pass.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import Tensor, nn


class MLP(nn.Module):
    """``num_layers`` affine maps with ReLU between them (none after the last)."""

    def __init__(self, dims: list[int], conv: bool = False) -> None:
        super().__init__()
        make = partial(nn.Conv2d, kernel_size=1) if conv else nn.Linear
        self.layers = nn.ModuleList(make(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, x: Tensor) -> Tensor:
        """The MLP: linear layers with ReLU between them."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class Fusion(nn.Module):
    """CLIP patch tokens -> adapter width: channel LayerNorm then a 1x1 projection (on tokens).

    The released ``model/layer.py`` ``Fusion`` (a channel ``LayerNorm`` with eps 1e-6, then
    ``Conv2d(clip_dim, adapter_dim, 1)``) as a token-wise ``LayerNorm`` + ``Linear``: the same function,
    the same initialisation (ones/zeros; PyTorch's default uniform(+-1/sqrt(fan_in)) for the projection).
    Trained with ``reference="paper"``; frozen at its initialisation with ``reference="released"``
    (the released ``Adapter.fuse`` builds a new one at every forward, see the detector's docstring).
    """

    def __init__(self, clip_width: int, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(clip_width, eps=1e-6)
        self.proj = nn.Linear(clip_width, width)

    def forward(self, clip_tokens: Tensor) -> Tensor:
        """Normalise and project the CLIP tokens into the adapter's width."""
        return self.proj(self.norm(clip_tokens))


class SideAdapter(nn.Module):
    """The adapter: ViT-Tiny-shaped blocks over ``[queries; patches]`` with CLIP features injected.

    Args:
        width, heads, depth: block shape (ViT-Tiny: 192, 3; the paper uses 8 blocks).
        patch: the adapter's own patch size (16 px); the input side is ``patch * grid``.
        grid: patches per side, equal to CLIP's grid so patch tokens align one to one.
        pos_grid: side of the learned positional-embedding table, bilinearly resized to ``grid``
            (ViT-Tiny/16 at 224 has 14).
        num_queries: query tokens.
        fusion: ``{adapter block (1-based): CLIP layer (1-based)}``.
        clip_width: CLIP transformer width.
        fusion_scale: scale of the injected CLIP features (0.01 as released).
    """

    def __init__(
        self,
        width: int,
        heads: int,
        depth: int,
        patch: int,
        grid: int,
        pos_grid: int,
        num_queries: int,
        fusion: dict[int, int],
        clip_width: int,
        fusion_scale: float = 0.01,
    ) -> None:
        super().__init__()
        bad = [k for k in fusion if not 1 <= k <= depth]
        if bad:
            raise ValueError(f"fusion blocks {bad} outside the adapter's blocks 1..{depth}")
        self.grid, self.num_queries, self.fusion_scale = grid, num_queries, fusion_scale
        self.patch_conv = nn.Conv2d(3, width, kernel_size=patch, stride=patch)
        self.pos_embed = nn.Parameter(torch.zeros(1, pos_grid * pos_grid, width))
        self.query_embed = nn.Parameter(torch.zeros(1, num_queries, width))
        self.query_pos_embed = nn.Parameter(torch.zeros(1, num_queries, width))
        self.ln_pre = nn.LayerNorm(width)
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.blocks = nn.ModuleList(
            Block(width, heads, mlp_ratio=4.0, qkv_bias=True, norm_layer=norm) for _ in range(depth)
        )
        self.fusion_map = {int(k): int(v) for k, v in fusion.items()}
        self.fusions = nn.ModuleDict({str(k): Fusion(clip_width, width) for k in self.fusion_map})
        trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.query_embed, std=0.02)
        nn.init.normal_(self.query_pos_embed, std=0.02)
        for m in self.blocks.modules():  # timm's ViT init for the blocks
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def _pos(self) -> Tensor:
        pe = self.pos_embed
        side = int(round(pe.shape[1] ** 0.5))
        if side != self.grid:
            pe = pe.transpose(1, 2).reshape(1, -1, side, side)
            pe = F.interpolate(pe, size=(self.grid, self.grid), mode="bilinear", align_corners=False)
            pe = pe.flatten(2).transpose(1, 2)
        return torch.cat([self.query_pos_embed, pe], dim=1)

    def forward(
        self, image: Tensor, clip_layers: dict[int, Tensor], keep: tuple[int, ...] = ()
    ) -> tuple[Tensor, Tensor, list[Tensor]]:
        """Run the adapter.

        Args:
            image: ``[N,3,S,S]`` with ``S = patch * grid``.
            clip_layers: CLIP patch tokens ``[N,L,W]`` after the layers named in the fusion map.
            keep: blocks (1-based) whose patch tokens are returned for the contrastive loss.

        Returns:
            ``(queries [N,Q,D], patch map [N,D,grid,grid], kept patch tokens)`` after the last block.
        """
        n = image.shape[0]
        x = self.patch_conv(image).flatten(2).transpose(1, 2)
        if x.shape[1] != self.grid * self.grid:
            raise ValueError(
                f"adapter expected a {self.grid}x{self.grid} patch grid, got {x.shape[1]} patches "
                f"from an input of {tuple(image.shape[-2:])}"
            )
        pos = self._pos()
        q = self.num_queries
        x = torch.cat([self.query_embed.expand(n, -1, -1), x], dim=1) + pos
        x = self.ln_pre(x)
        kept: list[Tensor] = []
        last = len(self.blocks)
        for i, block in enumerate(self.blocks, start=1):
            x = block(x)
            if i in self.fusion_map:
                inj = self.fusions[str(i)](clip_layers[self.fusion_map[i]])
                x = torch.cat([x[:, :q], x[:, q:] + self.fusion_scale * inj.to(x.dtype)], dim=1)
            if i in keep:
                kept.append(x[:, q:])
            if i == last:
                break
            x = x + pos  # re-added after every block, as released
        patch_map = x[:, q:].transpose(1, 2).reshape(n, -1, self.grid, self.grid)
        return x[:, :q], patch_map, kept


class MaskDecoder(nn.Module):
    """Queries and patch features -> boundary features ``[N,Q,h,w]`` and attention biases ``[N,H,Q,h*w]``."""

    def __init__(self, width: int, hidden: int, out: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query_mlp = MLP([width, hidden, hidden, out])
        self.boundary_mlp = MLP([width, hidden, hidden, out], conv=True)
        self.attn_mlp = MLP([width, hidden, hidden, out * heads], conv=True)
        self.bias_scaling = nn.Linear(1, 1)  # a learned scalar affine on the biases, as released

    def forward(self, queries: Tensor, patch_map: Tensor) -> tuple[Tensor, Tensor]:
        """Boundary feature maps per query and the attention bias the queries get in CLIP's second pass."""
        q = self.query_mlp(queries)
        feats = self.boundary_mlp(patch_map)
        n, c, h, w = feats.shape
        attn = self.attn_mlp(patch_map).reshape(n, self.heads, c, h * w)
        boundary = torch.einsum("nqc,nchw->nqhw", q, feats)
        bias = torch.einsum("nqc,nkcl->nkql", q, attn)
        bias = self.bias_scaling(bias.unsqueeze(-1)).squeeze(-1)
        return boundary, bias


class BoundaryDecoder(nn.Module):
    """``[N,Q,g,g]`` -> ``[N,1,g*p,g*p]`` boundary map (convs, then a ``p x p`` stride-``p`` deconvolution).

    With ``flags`` (boundary patches, ``[N,g*g]``) the input is zeroed outside boundary patches as
    released, and, with ``mask_output`` (the paper reference), so is the output: the deconvolution maps
    each patch to its own pixels, so every non-boundary patch, and every real image, then predicts
    exactly zero. The released ``MaskPostXrayProcess`` zeroes only the input, so its biases and batch
    norms predict a constant there, which the boundary loss also trains (``mask_output=False``).
    """

    def __init__(self, queries: int, patch: int, mask_output: bool = True) -> None:
        super().__init__()
        c = queries
        self.patch, self.mask_output = patch, mask_output
        self.body = nn.Sequential(
            nn.Conv2d(c, c // 2, 3, padding=1),
            nn.BatchNorm2d(c // 2),
            nn.ReLU(),
            nn.Conv2d(c // 2, c // 4, 3, padding=1),
            nn.BatchNorm2d(c // 4),
            nn.ReLU(),
            nn.Conv2d(c // 4, 1, 1),
            nn.ConvTranspose2d(1, 1, kernel_size=patch, stride=patch),
        )

    def forward(self, x: Tensor, flags: Tensor | None = None) -> Tensor:
        """Decode the boundary map; with ``flags`` only the flagged patches are read (and, if set,
        written)."""
        if flags is None:
            return self.body(x)
        g = x.shape[-1]
        keep = flags.to(x.dtype).view(-1, 1, g, g)
        y = self.body(x * keep)
        if not self.mask_output:
            return y
        return y * keep.repeat_interleave(self.patch, -1).repeat_interleave(self.patch, -2).to(y.dtype)


class ClipBottleneck(nn.Module):
    """Width -> ``bottleneck`` -> ReLU -> width on CLIP patch tokens; returns (delta, bottleneck features)."""

    def __init__(self, width: int, bottleneck: int) -> None:
        super().__init__()
        self.down = nn.Linear(width, bottleneck)  # = Conv1d(k=1) over tokens
        self.up = nn.Linear(bottleneck, width)

    def forward(self, patches: Tensor) -> tuple[Tensor, Tensor]:
        """The bottleneck's output and its hidden activation."""
        h = F.relu(self.down(patches))
        return self.up(h), h


class QueryClassifier(nn.Module):
    """Conv1d over the query axis (Q -> Q/2 -> Q/4 -> 1, BN+ReLU), then an MLP E -> E/2 -> E/4 -> 2."""

    def __init__(self, queries: int, embed: int) -> None:
        super().__init__()
        q = queries
        self.reduce = nn.Sequential(
            nn.Conv1d(q, q // 2, 3, padding=1),
            nn.BatchNorm1d(q // 2),
            nn.ReLU(),
            nn.Conv1d(q // 2, q // 4, 3, padding=1),
            nn.BatchNorm1d(q // 4),
            nn.ReLU(),
            nn.Conv1d(q // 4, 1, 3, padding=1),
        )
        self.head = MLP([embed, embed // 2, embed // 4, 2])

    def forward(self, tokens: Tensor) -> Tensor:
        """Logits from the query tokens."""
        return self.head(self.reduce(tokens).squeeze(1))


def query_attention_mask(bias: Tensor) -> Tensor:
    """The additive attention mask of the second CLIP pass, ``[N*H, Q+1+L, Q+1+L]``.

    Token order is ``[Q queries; CLS; L patches]``. Nothing attends to a query except that query itself;
    queries do not attend to CLS; queries attend to patches with the adapter's per-head ``bias``
    (``[N,H,Q,L]``); CLS and patches attend to CLS and patches as in plain CLIP. Blocked entries are
    ``-inf`` (the released code uses -100), so blocking is exact.
    """
    n, h, q, npatch = bias.shape
    t = q + 1 + npatch
    base = bias.new_zeros(t, t)
    base[:, :q] = float("-inf")
    base[:q, q] = float("-inf")
    idx = torch.arange(q, device=bias.device)
    base[idx, idx] = 0.0
    mask = base.expand(n * h, t, t).clone()
    mask[:, :q, q + 1 :] = bias.reshape(n * h, q, npatch)
    return mask

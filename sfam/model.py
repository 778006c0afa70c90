"""SFAM as a plain ``nn.Module``: frozen CLIP -> patch-text alignment -> region MoE -> heads.

Shapes for CLIP ViT-B/16 at 224 px (G = 14, N = 196, W = 768, D = 512, R = 6)::

    image [B,3,224,224] --CLIP (frozen, no grad)--> CLS [B,D]; tokens of blocks `layers`, ln_post, @proj: [L,B,N,D]
    region masks [B,R,224,224] --area pool--> A [B,N,R]
    LayerFusion -> P [B,N,D]
    alignment:  P' = P + MLP(LN P); logits = tau * sum_r A_ir cos(P'_i, T_r,c) [B,N,2]; X = P'/|P'| + alpha*text
    MoE:        gates [B,N,R] = softmax(router(LN X) + beta log(A + eps)); Z = X + sum_e g_e E_e + E_shared
    pooling:    h_r = sum_i A_ir Z_i / sum_i A_ir [B,R,D] -> region scores [B,R]
    head:       f = AttentionPool([CLS; h_1..h_R]) -> logit = tau <f/|f|, w> + b   (w starts at t_fake - t_real)

Switches: ``alignment=False`` skips the adapter and the prompt scoring (X = P/|P|); ``moe=False`` uses one
region-agnostic expert (Z = X + FFN(LN X)) and attention-pools ``[CLS; Z_1..Z_N]``; with both off the
model is a linear probe on CLIP's normalised image embedding (``clip_linear``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from datamodules.media.regions import REGIONS
from detectors.clip_backbone import ClipGeometry, clip_geometry
from sfam.alignment import LayerFusion, PatchTextAlignment, clip_patch_tokens, region_assignment
from sfam.heads import AttentionPool, PromptInitLinear
from sfam.moe import RegionMoE, SingleExpert, region_pool
from sfam.prompts import PromptBank

#: CLIP clamps its learned temperature at 100 (Radford et al. 2021).
MAX_LOGIT_SCALE = 100.0


def default_layers(num_blocks: int) -> tuple[int, ...]:
    """0-based blocks whose patch tokens SFAM reads: two thirds of the depth and the last (7, 11 for 12)."""
    return tuple(sorted({round(2 * num_blocks / 3) - 1, num_blocks - 1}))


@dataclass
class SFAMOutput:
    """Everything the detector and the losses need (absent parts are None)."""

    logits: Tensor  # [B] fake-logit
    feature: Tensor  # [B,D] unit-norm image feature the head reads
    patch_logits: Tensor | None = None  # [B,N,2]
    region_logits: Tensor | None = None  # [B,R]
    gates: Tensor | None = None  # [B,N,R]
    assign: Tensor | None = None  # [B,N,R]
    global_text: Tensor | None = None  # [2,D] prompts used by this forward (learnable with n_ctx > 0)
    extras: dict[str, Tensor] = field(default_factory=dict)


class SFAMModel(nn.Module):
    """SFAM on an open_clip CLIP model (see the module docstring for shapes).

    The caller freezes ``frozen_modules()`` (the visual tower and, with learnable context, the text tower).

    Args:
        clip: an open_clip CLIP model; only its visual tower (and the text tower for learnable context)
            is kept.
        alignment, moe: module switches.
        region_prior: use the region prior in the router (False: ``beta = 0``).
        prior_strength, prior_eps, top_k: router settings (see :class:`sfam.moe.RegionMoE`).
        layers: 0-based CLIP blocks to read (default :func:`default_layers`).
        n_ctx: learnable prompt context vectors (0: fixed prompts).
        adapter_ratio, expert_ratio: hidden widths as fractions of the joint width ``D``.
        regions: region names, in the order of the region masks.
    """

    def __init__(
        self,
        clip: nn.Module,
        alignment: bool = True,
        moe: bool = True,
        region_prior: bool = True,
        prior_strength: float = 1.0,
        prior_eps: float = 1e-6,
        top_k: int | None = None,
        layers: Sequence[int] | None = None,
        n_ctx: int = 0,
        adapter_ratio: float = 0.25,
        expert_ratio: float = 0.5,
        regions: Sequence[str] = REGIONS,
    ) -> None:
        super().__init__()
        self.geometry: ClipGeometry = clip_geometry(clip)
        geo = self.geometry
        self.regions = tuple(regions)
        self.use_alignment, self.use_moe = alignment, moe
        self.layers = tuple(layers) if layers is not None else default_layers(geo.layers)
        bad = [i for i in self.layers if not 0 <= i < geo.layers]
        if bad or not self.layers:
            raise ValueError(
                f"layers must be 0-based block indices in 0..{geo.layers - 1}, got {self.layers}"
            )
        if clip.visual.proj is None:
            raise ValueError(
                "SFAM needs a CLIP visual tower with a projection (visual.proj) into the joint space"
            )
        self.visual: nn.Module = clip.visual
        scale = min(float(clip.logit_scale.detach().exp()), MAX_LOGIT_SCALE)
        self.register_buffer("logit_scale", torch.tensor(scale))
        self.prompts = PromptBank(clip, self.regions, n_ctx=n_ctx)
        region_text, global_text = self.prompts()
        d, r = geo.embed_dim, len(self.regions)

        self.fusion = LayerFusion(len(self.layers)) if self.needs_patches else None
        self.alignment = PatchTextAlignment(d, max(1, round(d * adapter_ratio))) if alignment else None
        hidden = max(1, round(d * expert_ratio))
        if moe:
            strength = prior_strength if region_prior else 0.0
            self.moe: nn.Module | None = RegionMoE(d, r, hidden, strength, prior_eps, top_k)
            self.region_head: PromptInitLinear | None = PromptInitLinear(region_text)
        else:
            self.moe = SingleExpert(d, hidden) if alignment else None
            self.region_head = None
        self.pool = AttentionPool(d) if self.needs_patches else None
        self.head = PromptInitLinear(global_text[None])

    # ------------------------------------------------------------------ structure
    @property
    def needs_patches(self) -> bool:
        """Whether the enabled modules read CLIP's patch tokens (alignment or the region MoE)."""
        return self.use_alignment or self.use_moe

    @property
    def needs_regions(self) -> bool:
        """Whether the forward needs the batch's region masks."""
        return self.needs_patches

    def frozen_modules(self) -> list[nn.Module]:
        """The frozen CLIP towers (visual, and the text tower when prompts are learned through it)."""
        mods: list[nn.Module] = [self.visual]
        if self.prompts.tower is not None:
            mods.append(self.prompts.tower)
        return mods

    # ------------------------------------------------------------------ forward
    @torch.no_grad()
    def clip_features(self, image: Tensor) -> tuple[Tensor, Tensor | None]:
        """Frozen CLIP: CLS embedding ``[B,D]`` and projected patch tokens ``[L,B,N,D]`` (None when unused)."""
        if not self.needs_patches:
            return self.visual(image), None
        return clip_patch_tokens(self.visual, image, self.layers)

    def forward(self, image: Tensor, region_masks: Tensor | None = None) -> SFAMOutput:
        """SFAM's output for ``image``: the frozen CLIP pass, then its own modules."""
        return self.forward_features(*self.clip_features(image), region_masks)

    def forward_features(
        self, cls: Tensor, per_layer: Tensor | None, region_masks: Tensor | None = None
    ) -> SFAMOutput:
        """SFAM's own modules on the output of :meth:`clip_features`."""
        scale = self.logit_scale
        cls = F.normalize(cls, dim=-1)
        if per_layer is None:
            return SFAMOutput(logits=self.head(cls[:, None], scale)[:, 0], feature=cls)
        if region_masks is None:
            raise ValueError("SFAM with alignment or MoE needs region_masks [B,R,H,W]")
        if region_masks.shape[1] != len(self.regions):
            raise ValueError(
                f"region_masks has {region_masks.shape[1]} channels, SFAM expects {len(self.regions)} "
                f"in the order {list(self.regions)}"
            )
        assign = region_assignment(region_masks, self.geometry.grid)
        region_text, global_text = self.prompts()
        x = self.fusion(per_layer)
        out = SFAMOutput(logits=cls.new_zeros(()), feature=cls, assign=assign, global_text=global_text)
        if self.alignment is not None:
            aligned = self.alignment(x, assign, region_text, scale)
            out.patch_logits, x = aligned.patch_logits, aligned.tokens
        else:
            x = F.normalize(x, dim=-1)
        if self.use_moe:
            routed = self.moe(x, assign)
            z, out.gates = routed.tokens, routed.gates
            regions = region_pool(z, assign)
            out.region_logits = self.region_head(regions, scale)
            present = assign.sum(1) >= 0.5  # the region covers at least half a patch
            valid = torch.cat([present.new_ones(present.shape[0], 1), present], dim=1)
            pooled = self.pool(torch.cat([cls[:, None].to(z.dtype), regions], dim=1), valid)
        else:
            z = self.moe(x)
            pooled = self.pool(torch.cat([cls[:, None].to(z.dtype), z], dim=1))
        out.feature = F.normalize(pooled, dim=-1)
        out.logits = self.head(pooled[:, None], scale)[:, 0]
        return out

    def global_text(self) -> Tensor:
        """Unit-norm global (real, fake) prompt embeddings ``[2, D]``."""
        return self.prompts()[1]

"""The SFAM detector (registered as ``sfam``) and its CLIP linear-probe baseline (``clip_linear``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from datamodules.batch import Batch
from datamodules.spec import CLIP_MEAN, CLIP_STD, DataSpec
from detectors.base import DataSpecError, Detector, DetectorAux, DetectorOutput
from detectors.clip_backbone import create_clip
from detectors.frozen_backbone import module_sha256
from detectors.recipe import SUITE_AUGMENTATION, Recipe
from detectors.registry import register_detector
from sfam.alignment import patch_alignment_loss, patch_labels
from sfam.losses import LossWeights, contrastive_loss, region_labels
from sfam.model import SFAMModel, SFAMOutput
from sfam.moe import RegionMoE, balance_loss


@dataclass
class SFAMAux(DetectorAux):
    """SFAM's aux: the shared maps (``patch_fakeness`` with patch alignment on, ``region_scores`` with a
    region head) plus the whole model output its loss reads."""

    sfam: SFAMOutput | None = None


_RECIPE = Recipe(
    optimizer="adamw",
    lr=1e-4,
    weight_decay=1e-4,
    scheduler="cosine",
    epochs=10,
    batch_size=32,
    eval_batch_size=64,
    frames_train=8,
    frames_test=32,
    augment=True,
    augmentation=SUITE_AUGMENTATION,  # SFAM publishes no augmentation (sfam/README.md, "Recipe")
    source=(
        "SFAM (Luo, Chen, Liu, arXiv 2604.21478) publishes no recipe; ours (sfam/README.md, 'Recipe'): AdamW "
        "1e-4, wd 1e-4, batch 32, cosine, 10 epochs, Effort's 8 frames/video, the suite's augmentation"
    ),
)


@register_detector("sfam")
class SFAMDetector(Detector):
    """SFAM: semantic fine-grained alignment and facial-region mixture-of-experts on frozen CLIP.

    Luo, Chen, Liu, "Rethinking Cross-Domain Evaluation for Face Forgery Detection with Semantic
    Fine-grained Alignment and Mixture-of-Experts", arXiv 2604.21478 (2026). Only the abstract is public;
    this is our reading of it (``sfam/README.md`` says which part is which). Architecture and shapes:
    :mod:`sfam.model`; losses: :mod:`sfam.losses`.

    Deliberate choices where the abstract is silent (each justified in ``sfam/README.md``):
    frozen CLIP ViT-B/16 (OpenAI, QuickGELU) at 224 px; tokens of blocks 8 and 12; hand-written region
    prompts; Forensics Adapter's patch-label rule; dense soft routing with a ``beta * log(A + eps)`` region
    prior; a prior-relative balance loss instead of Switch's uniform one; heads initialised from the
    zero-shot prompt classifier; one fake-logit with BCE instead of 2-way softmax CE (same model).

    Args:
        model_name, pretrained, weights_path: CLIP backbone (see :func:`detectors.clip_backbone.create_clip`);
            an open_clip CLIP with OpenAI-style towers (``ViT-B-16-quickgelu``, ``ViT-L-14-quickgelu``, ...);
            towers from timm or Hugging Face (EVA, SigLIP) are not supported.
        tiny: a tiny random CLIP for tests (32 px, 4x4 patch grid).
        alignment: patch-level image-text alignment module on/off.
        moe: region mixture-of-experts on/off (off: one region-agnostic expert).
        region_prior: region prior in the router on/off.
        prior_strength: ``beta``; ``math.inf`` routes every patch to its largest region.
        prior_eps: ``eps`` in ``log(A + eps)``; 0 is the hard prior.
        top_k: sparse routing (None: dense).
        layers: 0-based CLIP blocks whose patch tokens are read (default: 2/3 depth and last).
        n_ctx: learnable prompt context vectors (0: fixed prompts).
        adapter_ratio, expert_ratio: hidden widths as fractions of the joint width.
        w_ce, w_patch, w_region, w_itc, w_balance, w_dice: loss weights (:class:`sfam.losses.LossWeights`).
        **recipe: overrides of the recipe (``lr``, ``epochs``, ...).
    """

    default_recipe: ClassVar[Recipe] = _RECIPE
    tiny_config: ClassVar[dict[str, Any]] = {"tiny": True}

    def __init__(
        self,
        model_name: str = "ViT-B-16-quickgelu",
        pretrained: str | None = "openai",
        weights_path: str | Path | None = None,
        tiny: bool = False,
        alignment: bool = True,
        moe: bool = True,
        region_prior: bool = True,
        prior_strength: float = 1.0,
        prior_eps: float = 1e-6,
        top_k: int | None = None,
        layers: list[int] | None = None,
        n_ctx: int = 0,
        adapter_ratio: float = 0.25,
        expert_ratio: float = 0.5,
        w_ce: float = 1.0,
        w_patch: float = 1.0,
        w_region: float = 0.5,
        w_itc: float = 0.1,
        w_balance: float = 0.01,
        w_dice: float = 1.0,
        **recipe: Any,
    ) -> None:
        super().__init__(**recipe)
        clip, self.pretrained_loaded = create_clip(model_name, pretrained, weights_path, tiny=tiny)
        self.model = SFAMModel(
            clip,
            alignment=alignment,
            moe=moe,
            region_prior=region_prior,
            prior_strength=prior_strength,
            prior_eps=prior_eps,
            top_k=top_k,
            layers=layers,
            n_ctx=n_ctx,
            adapter_ratio=adapter_ratio,
            expert_ratio=expert_ratio,
        )
        del clip  # only the parts SFAMModel kept stay alive
        for m in self.model.frozen_modules():
            self.freeze_module(m)
        self.weights = LossWeights(w_ce, w_patch, w_region, w_itc, w_balance, w_dice)
        geo = self.model.geometry
        self.data_spec = DataSpec(
            input_size=geo.image_size,
            mean=CLIP_MEAN,
            std=CLIP_STD,
            region_masks=self.model.needs_regions,
            forgery_masks=(alignment and w_patch > 0) or (moe and w_region > 0),
        )

    # ------------------------------------------------------------------ forward
    def forward(self, batch: Batch) -> DetectorOutput:
        """SFAM's output for ``batch``: the frozen CLIP pass, then its own modules."""
        self._check_regions(batch)  # before the expensive frozen pass
        return self.forward_from_frozen(batch, self.frozen_features(batch))

    def _check_regions(self, batch: Batch) -> None:
        if self.model.needs_regions and batch.region_masks is None:
            raise DataSpecError(f"{self.name} needs batch.region_masks (DataSpec.region_masks)")

    def frozen_features(self, batch: Batch) -> dict[str, Tensor]:
        """Frozen CLIP's outputs: ``cls`` ``[B,D]`` and, when the modules read patches, ``tokens``
        ``[L,B,N,D]`` (:meth:`sfam.model.SFAMModel.clip_features`)."""
        cls, tokens = self.model.clip_features(batch.image)
        return {"cls": cls} if tokens is None else {"cls": cls, "tokens": tokens}

    def forward_from_frozen(self, batch: Batch, feats: dict[str, Tensor]) -> DetectorOutput:
        """SFAM's modules on frozen CLIP features already computed (or read from the frozen-feature cache)."""
        self._check_regions(batch)
        return self.output(self.model.forward_features(feats["cls"], feats.get("tokens"), batch.region_masks))

    def frozen_scope(self) -> dict[str, Any]:
        """The CLIP tower's state-dict SHA-256 and the blocks read (shared by ``clip_linear`` and every SFAM
        variant with the same backbone and layers)."""
        m = self.model
        return {
            "features": "sfam.clip_features",
            "backbone": module_sha256(self, m.visual),
            "layers": list(m.layers) if m.needs_patches else None,
        }

    def output(self, out: SFAMOutput) -> DetectorOutput:
        """The detector's output (fake-logit and explanation maps) from the model's output."""
        g = self.model.geometry.grid
        aux = SFAMAux(
            sfam=out,
            patch_fakeness=(
                out.patch_logits.softmax(-1)[..., 1].unflatten(1, (g, g))
                if out.patch_logits is not None
                else None
            ),
            region_scores=torch.sigmoid(out.region_logits) if out.region_logits is not None else None,
        )
        return DetectorOutput(logits=out.logits, aux=aux)

    # ------------------------------------------------------------------ loss
    def loss(self, batch: Batch, out: DetectorOutput) -> dict[str, Tensor]:
        """SFAM's weighted loss: cross-entropy plus the patch, region, image-text and MoE balance terms whose
        weight is set."""
        if not isinstance(out.aux, SFAMAux) or out.aux.sfam is None:
            raise TypeError(f"{self.name}.loss needs the output of its own forward() (SFAMAux)")
        s: SFAMOutput = out.aux.sfam
        w, grid, label = self.weights, self.model.geometry.grid, batch.label
        terms: dict[str, tuple[float, Tensor]] = {
            "ce": (w.ce, F.binary_cross_entropy_with_logits(s.logits.float(), label.float()))
        }
        needs_mask = (s.patch_logits is not None and w.patch) or (s.region_logits is not None and w.region)
        if needs_mask and batch.forgery_mask is None:
            raise DataSpecError(f"{self.name} needs batch.forgery_mask to train (DataSpec.forgery_masks)")
        if s.patch_logits is not None and w.patch:
            y = patch_labels(batch.forgery_mask, label, grid)
            terms["patch"] = (w.patch, patch_alignment_loss(s.patch_logits, y, w.dice))
        if s.region_logits is not None and w.region:
            y = region_labels(batch.forgery_mask, batch.region_masks, label)
            present = s.assign.sum(1) >= 0.5
            bce = F.binary_cross_entropy_with_logits(s.region_logits.float(), y, reduction="none")
            terms["region"] = (w.region, bce[present].mean())
        # The contrastive term needs something trainable upstream of the feature (nothing in clip_linear).
        if w.itc and (self.model.needs_patches or self.model.prompts.tower is not None):
            text = s.global_text if s.global_text is not None else self.model.global_text()
            itc = contrastive_loss(s.feature, text, label, self.model.logit_scale)
            terms["itc"] = (w.itc, itc)
        moe = self.model.moe
        if isinstance(moe, RegionMoE) and moe.router is not None and w.balance and s.gates is not None:
            prior = s.assign if moe.prior_strength > 0 else None
            terms["balance"] = (w.balance, balance_loss(s.gates, prior))
        losses = {k: v for k, (_, v) in terms.items()}
        losses["loss"] = sum(wt * v for wt, v in terms.values())
        return losses


@register_detector("clip_linear")
class CLIPLinearDetector(SFAMDetector):
    """CLIP linear probe: SFAM with both modules off (the baseline that shows what SFAM adds).

    A linear layer on CLIP's L2-normalised image embedding scaled by CLIP's logit scale, initialised as
    the zero-shot classifier of SFAM's global prompts ("a real face" / "a manipulated face" ...), trained
    with BCE and SFAM's recipe so the two differ only in the modules. Radford et al. (ICML 2021) fit
    their linear probes with L-BFGS logistic regression; we train the same function class with SGD-style
    updates so it goes through the same runner.
    """

    def __init__(self, alignment: bool = False, moe: bool = False, **kwargs: Any) -> None:
        for switch, on in (("alignment", alignment), ("moe", moe)):
            if on:
                raise ValueError(
                    f"clip_linear is SFAM with alignment and moe off; got {switch}=True (use 'sfam')"
                )
        super().__init__(alignment=False, moe=False, **kwargs)


__all__ = ["CLIPLinearDetector", "SFAMAux", "SFAMDetector"]

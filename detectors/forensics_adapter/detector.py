"""Forensics Adapter (Cui, Li, Luo, Zhou, Dong; CVPR 2025, arXiv 2411.19715) on a frozen open_clip CLIP."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from datamodules.batch import Batch
from datamodules.media import masks
from datamodules.spec import CLIP_MEAN, CLIP_STD, DataSpec
from detectors.base import DataSpecError, Detector, DetectorAux, DetectorOutput
from detectors.clip_backbone import TINY_CLIP_CFG, clip_geometry, create_clip
from detectors.forensics_adapter.blocks import (
    BoundaryDecoder,
    ClipBottleneck,
    MaskDecoder,
    QueryClassifier,
    SideAdapter,
    query_attention_mask,
)
from detectors.forensics_adapter.losses import (
    boundary_patches,
    boundary_target,
    clip_contrast,
    intra_contrast,
    patch_fractions,
    patch_labels,
)
from detectors.forensics_adapter.released import FORENSICS_ADAPTER_RELEASED
from detectors.recipe import Recipe, deepfakebench_augmentation, released_variant
from detectors.registry import register_detector
from detectors.settings import RELEASED

# Released layer choices for a 24-block CLIP (ViT-L/14): adapter block -> CLIP layer, and the CLIP block
# after which the bottleneck sits (index 6, i.e. after 7 blocks). Other depths scale proportionally.
_RELEASED_FUSION = {1: 1, 2: 8, 3: 15}
_RELEASED_INTRA_AFTER = 7
_RELEASED_DEPTH = 24


def _scale_layer(layer: int, depth: int) -> int:
    """Map a layer of the 24-block CLIP to a ``depth``-block one (round half up, at least 1)."""
    return max(1, min(depth, math.floor(layer * depth / _RELEASED_DEPTH + 0.5)))


@dataclass
class ForensicsAdapterAux(DetectorAux):
    """Forensics Adapter's aux: the shared ``boundary`` map, the 2-way logits, and (training mode only) the
    adapter's patch tokens of the contrast blocks and CLIP's bottleneck hidden states the loss reads."""

    logits2: Tensor | None = None  # [B, 2] (real, fake)
    adapter_patches: list[Tensor] | None = None
    clip_hidden: Tensor | None = None


@register_detector("forensics_adapter")
class ForensicsAdapter(Detector):
    """Forensics Adapter: a small side network that learns forgery traces for a frozen CLIP.

    Cui et al., "Forensics Adapter: Adapting CLIP for Generalizable Face Forgery Detection", CVPR 2025.
    Built from the paper and our reading of its released code (``OUC-VAS/ForensicsAdapter``, CC BY-NC
    4.0: ``model/ds.py``, ``model/adapters/adapter.py``, ``model/attn.py``, ``model/layer.py``,
    ``dataset/abstract_dataset.py``, ``train.py``); no code is copied.

    Data flow for an input of ``patch * grid`` px (256 for ViT-L/14, CLIP mean/std):

    1. CLIP pass 1 (frozen, ``torch.no_grad``): the input resized to CLIP's size (224); tokens after
       ``ln_pre`` and the patch tokens after the fusion layers.
    2. Side adapter (ViT-Tiny-shaped, 192 wide, 3 heads, 8 blocks, 128 query tokens): after adapter
       blocks 1, 2, 3 it adds ``0.01 * Linear(LN(clip layer 1, 8, 15))`` to its patch tokens.
    3. Mask decoder on block 8: per-query boundary features and per-head attention biases.
    4. CLIP pass 2 through all frozen blocks on ``[Q copies of CLS; CLS; patches]`` with the mask of
       :func:`~detectors.forensics_adapter.blocks.query_attention_mask`; after block 7 a trainable bottleneck adds
       ``0.05 * delta`` to the patch tokens. Queries -> ``ln_post`` -> ``proj`` -> L2-normalise.
    5. Classifier over the query tokens -> 2-way logits; boundary decoder -> boundary map.

    Returned: ``logits = l_fake - l_real`` (sigmoid = softmax fake probability); ``aux``
    (:class:`ForensicsAdapterAux`) with ``boundary`` ``[B,1,S,S]`` and ``logits2``. Loss as released: ``10 CE + 200 MSE(boundary) + 20 adapter
    contrast (blocks 4, 5, 6) + 10 CLIP contrast (intra + inter)``; see :mod:`detectors.forensics_adapter.losses`.

    Layer maps for other depths scale the released ViT-L values (``{1:1, 2:8, 3:15}``, bottleneck after
    block 7 of 24): ViT-B/16 (12 blocks) gets ``{1:1, 2:4, 3:8}`` and block 4; grids, widths, heads and
    the projection size come from :func:`detectors.clip_backbone.clip_geometry`. The adapter runs at
    ``16 * grid`` px (256 for L/14, 224 for B/16) so its grid equals CLIP's.

    Trainable parameters with ViT-L/14 (asserted by ``tests/test_forensics_adapter.py``): adapter
    blocks 1-8 3,558,912; mask decoder 937,730; query classifier 400,707; CLIP bottleneck 394,432;
    patch conv 147,648; queries and positional embeddings 86,784; boundary decoder 92,738; ``ln_pre``
    384. Sum 5,619,335, the parameter set of the released code (the paper says 5.7M). The learned fusion
    projections add 3 x 198,848 = 596,544, so the trainable total is 6,215,879 (ViT-B/16: 5,631,623)
    with ``reference="paper"``; with ``reference="released"`` they are frozen and the trainable set is
    exactly the released one, 5,619,335.

    Two references (``reference``; see :mod:`detectors.settings`):

    * ``"paper"`` (default): what the paper describes and its authors evidently intended.

      - Patch labels and boundary flags by the stated rule (:data:`datamodules.media.masks.FORENSICS_ADAPTER`:
        a 16x16 patch is fake above 10 % = from 26 of 256 fake pixels; boundary = fake but not all fake).
      - Fusion projections are learned parameters, as the paper describes a trained fusion (+0.6M).
      - The boundary decoder's output is zeroed outside boundary patches too, so real images and
        non-boundary patches predict exactly zero and a real image's boundary loss is exactly zero.
      - 60 epochs (``nEpochs: 60`` in ``config/train.yaml``).

    * ``"released"``: the released code's effective behaviour.

      - Patch labels and boundary flags as ``split_images_by_patch`` computes them on the float32 masks
        its loader returns (:data:`datamodules.media.masks.FORENSICS_ADAPTER_RELEASED`): ``cv2.bitwise_not``
        of a float32 patch leaves no pixel zero, every pixel counts as "black", so a patch is fake from
        29 of 256 fake pixels (22 of 196 on the CLIP grid) and EVERY fake patch is a boundary patch. This
        changes the weight-200 boundary loss, which trains the query MLP that also makes the attention
        biases.
      - Fusion projections frozen at their initialisation (the released ``Fusion`` init). The released
        ``Adapter.fuse`` builds a NEW randomly initialised ``Fusion`` at every forward (never trained,
        inference not deterministic); that cannot be reproduced deterministically, and one frozen draw
        per model (seeded by the run; checkpoints carry it) is the closest deterministic equivalent.
      - The boundary decoder zeroes only its input (``MaskPostXrayProcess``), so non-boundary patches
        predict a constant that the boundary loss also trains.
      - 61 epochs: ``train.py`` loops ``for epoch in range(start_epoch, nEpochs + 1)``.

    Deliberate deviations from the released code under both references:

    * Unused ViT-Tiny parts (blocks 9-12, timm's own patch embedding, CLS token) are not built, so every
      trainable parameter receives a gradient.
    * Blocked attention entries are ``-inf`` rather than ``-100``: queries then have exactly no effect
      on CLS and patch tokens (with ``-100`` their weight is ``exp(-100)`` ~ 4e-44 of the others: below
      float32 resolution, so not an effective difference).
    * Without a forgery mask (test sets) the boundary map is not masked; the released code masks it
      with ground-truth flags even at test time (the map never enters the score).
    * CLIP runs in the trainer's precision (the released code runs it in fp16 on CUDA).
    * The classifier's reduction uses ``squeeze(1)`` (the released ``squeeze()`` breaks at batch 1).
    * The ViT-B/16 port (adapter at 224 px, scaled layer maps, 12 bias heads, 512-d classifier) is ours:
      the released code is ViT-L/14 only.

    Kept as released although odd: the contrastive sums run over all patch pairs, so pairs with a
    masked-out patch add ``exp(0)`` (see :mod:`detectors.forensics_adapter.losses`); the adapter contrast uses only the
    real-patch term.

    Args:
        clip_model: open_clip name (``ViT-L-14-quickgelu`` as in the paper, or ``ViT-B-16-quickgelu``).
        clip_pretrained: open_clip pretrained tag (``openai``) or ``None`` for random initialisation.
        clip_weights_path: a local CLIP weights file (preferred over the hub).
        tiny_clip: build the tiny test CLIP of :mod:`detectors.clip_backbone`; ``tiny_vision`` overrides
            its vision settings (e.g. ``{"image_size": 56, "patch_size": 14}``). Tests only.
        adapter_width, adapter_heads, adapter_depth, adapter_patch, adapter_pos_grid: side network shape.
        num_queries: query tokens (128).
        decoder_hidden, decoder_out: mask-decoder MLP widths (256, 128).
        clip_bottleneck: width of the CLIP-side bottleneck (192).
        fusion_map: ``{adapter block: CLIP layer}`` (1-based); ``None`` derives it from CLIP's depth.
        contrast_blocks: adapter blocks whose patch tokens carry the adapter contrastive loss.
        intra_after: CLIP block (1-based) after which the bottleneck sits; ``None`` derives it.
        loss_weights: weights of (CE, boundary MSE, adapter contrast, CLIP contrast).
        temperature: of both contrastive losses.
        reference: ``"paper"`` (default) or ``"released"`` (see above).
        **recipe: overrides of the reference's recipe.
    """

    default_recipe = Recipe(
        optimizer="adam",
        lr=2e-4,
        weight_decay=5e-4,
        betas=(0.9, 0.999),
        scheduler=None,
        epochs=60,
        batch_size=16,
        eval_batch_size=128,
        frames_train=32,
        frames_test=32,
        augment=False,  # use_data_augmentation: false
        # config/train.yaml, data_aug (unused while augment is off; dataset/abstract_dataset.py builds
        # DeepfakeBench's pipeline from it)
        augmentation=deepfakebench_augmentation(
            {
                "flip_prob": 0.5,
                "rotate_prob": 0.5,
                "rotate_limit": (-10, 10),
                "blur_prob": 0.5,
                "blur_limit": (3, 7),
                "brightness_prob": 0.5,
                "brightness_limit": (-0.1, 0.1),
                "contrast_limit": (-0.1, 0.1),
                "quality_lower": 40,
                "quality_upper": 100,
            }
        ),
        source="Forensics Adapter released config/train.yaml (OUC-VAS/ForensicsAdapter): Adam 2e-4, "
        "wd 5e-4, batch 16, nEpochs 60, 32 frames, no augmentation",
    )
    released_recipe = released_variant(
        default_recipe, 60, "Forensics Adapter config/train.yaml run by train.py: nEpochs 60 -> 61 epochs"
    )
    converters = {"forensics_adapter": FORENSICS_ADAPTER_RELEASED}
    tiny_config: ClassVar[dict[str, Any]] = {
        "tiny_clip": True,
        "clip_pretrained": None,
        "adapter_width": 24,
        "adapter_heads": 3,
        "adapter_depth": 3,
        "adapter_patch": 8,
        "adapter_pos_grid": 3,
        "num_queries": 8,
        "decoder_hidden": 16,
        "decoder_out": 8,
        "clip_bottleneck": 16,
        "contrast_blocks": (1, 2, 3),
    }

    def __init__(
        self,
        clip_model: str = "ViT-L-14-quickgelu",
        clip_pretrained: str | None = "openai",
        clip_weights_path: str | Path | None = None,
        tiny_clip: bool = False,
        tiny_vision: dict[str, Any] | None = None,
        adapter_width: int = 192,
        adapter_heads: int = 3,
        adapter_depth: int = 8,
        adapter_patch: int = 16,
        adapter_pos_grid: int = 14,
        num_queries: int = 128,
        decoder_hidden: int = 256,
        decoder_out: int = 128,
        clip_bottleneck: int = 192,
        fusion_map: dict[int, int] | None = None,
        contrast_blocks: tuple[int, ...] = (4, 5, 6),
        intra_after: int | None = None,
        loss_weights: tuple[float, float, float, float] = (10.0, 200.0, 20.0, 10.0),
        temperature: float = 0.5,
        reference: str = "paper",
        **recipe: Any,
    ) -> None:
        super().__init__(reference=reference, **recipe)
        released = reference == RELEASED
        self.patch_rule = masks.FORENSICS_ADAPTER_RELEASED if released else masks.FORENSICS_ADAPTER
        clip, self.pretrained_loaded = self._build_clip(
            clip_model, clip_pretrained, clip_weights_path, tiny_clip, tiny_vision
        )
        self.geometry = g = clip_geometry(clip)
        visual = clip.visual
        if getattr(visual, "attn_pool", None) is not None or getattr(visual, "pool_type", "tok") != "tok":
            raise ValueError(f"{clip_model}: Forensics Adapter needs a CLS-token ViT (no attention pooling)")
        self.visual = self.freeze_module(visual)  # the text tower is not needed
        if num_queries % 4 or g.embed_dim % 4:
            raise ValueError(f"num_queries ({num_queries}) and CLIP embed_dim ({g.embed_dim}) must be /4")

        fusion = (
            {int(k): int(v) for k, v in fusion_map.items()}
            if fusion_map is not None
            else {k: _scale_layer(v, g.layers) for k, v in _RELEASED_FUSION.items()}
        )
        bad = sorted(v for v in fusion.values() if not 1 <= v <= g.layers)
        if bad:
            raise ValueError(f"fusion CLIP layers {bad} outside 1..{g.layers} of {clip_model}")
        self.fusion_map = fusion
        self.intra_after = intra_after or _scale_layer(_RELEASED_INTRA_AFTER, g.layers)
        if not 1 <= self.intra_after <= g.layers:
            raise ValueError(f"intra_after={self.intra_after} outside 1..{g.layers}")
        bad_c = [b for b in contrast_blocks if not 1 <= b <= adapter_depth]
        if bad_c:
            raise ValueError(f"contrast_blocks {bad_c} outside the adapter's blocks 1..{adapter_depth}")
        self.contrast_blocks = tuple(int(b) for b in contrast_blocks)
        self.loss_weights = tuple(float(w) for w in loss_weights)
        self.temperature = float(temperature)
        self.num_queries = num_queries
        self.input_size = adapter_patch * g.grid

        self.adapter = SideAdapter(
            width=adapter_width,
            heads=adapter_heads,
            depth=adapter_depth,
            patch=adapter_patch,
            grid=g.grid,
            pos_grid=adapter_pos_grid,
            num_queries=num_queries,
            fusion=fusion,
            clip_width=g.width,
        )
        self.mask_decoder = MaskDecoder(adapter_width, decoder_hidden, decoder_out, heads=g.heads)
        self.boundary_decoder = BoundaryDecoder(num_queries, adapter_patch, mask_output=not released)
        self.clip_bottleneck = ClipBottleneck(g.width, clip_bottleneck)
        self.classifier = QueryClassifier(num_queries, g.embed_dim)
        if released:  # one frozen draw of the released Fusion init (see the class docstring)
            self.freeze_module(self.adapter.fusions)
        self.data_spec = DataSpec(
            input_size=self.input_size, mean=CLIP_MEAN, std=CLIP_STD, forgery_masks=True
        )

    @staticmethod
    def _build_clip(
        name: str,
        pretrained: str | None,
        weights_path: str | Path | None,
        tiny: bool,
        tiny_vision: dict[str, Any] | None,
    ) -> tuple[nn.Module, bool]:
        if tiny and tiny_vision:
            import open_clip

            unknown = sorted(set(tiny_vision) - set(TINY_CLIP_CFG["vision_cfg"]))
            if unknown:
                raise ValueError(
                    f"tiny_vision keys {unknown} unknown; known: {sorted(TINY_CLIP_CFG['vision_cfg'])}"
                )
            cfg = {**TINY_CLIP_CFG, "vision_cfg": {**TINY_CLIP_CFG["vision_cfg"], **tiny_vision}}
            return open_clip.CLIP(**cfg), False
        return create_clip(name, pretrained=pretrained, weights_path=weights_path, tiny=tiny)

    # ------------------------------------------------------------------ CLIP passes
    def clip_features(self, image: Tensor) -> tuple[Tensor, dict[int, Tensor]]:
        """Pass 1 (frozen, no autograd): tokens after ``ln_pre`` ``[N,1+L,W]`` and patch tokens per fusion layer."""
        v, g = self.visual, self.geometry
        with torch.no_grad():
            x = image
            if x.shape[-1] != g.image_size or x.shape[-2] != g.image_size:
                x = F.interpolate(x, size=(g.image_size, g.image_size), mode="bilinear", align_corners=False)
            x = v.conv1(x.to(v.conv1.weight.dtype))
            x = x.flatten(2).transpose(1, 2)
            cls = v.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
            x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)
            x = v.ln_pre(x)
            tokens0 = x
            wanted = set(self.fusion_map.values())
            layers: dict[int, Tensor] = {}
            for i, block in enumerate(v.transformer.resblocks, start=1):
                if i > max(wanted):
                    break
                x = block(x)
                if i in wanted:
                    layers[i] = x[:, 1:]
        return tokens0, layers

    def clip_second_pass(self, tokens0: Tensor, bias: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Pass 2 through all frozen blocks with the query tokens (autograd through activations only).

        Returns ``(queries [N,Q,E]`` after ``ln_post``, ``proj`` and L2 normalisation, bottleneck
        features ``[N,L,bottleneck]``, the final CLS and patch tokens ``[N,1+L,W])``.
        """
        q = self.num_queries
        cls = tokens0[:, :1]
        x = torch.cat([cls.expand(-1, q, -1), tokens0], dim=1)
        x, hidden = self.run_clip_blocks(x, query_attention_mask(bias))
        v = self.visual
        queries = v.ln_post(x[:, :q])
        if v.proj is not None:
            queries = queries @ v.proj
        return F.normalize(queries, dim=-1), hidden, x[:, q:]

    def run_clip_blocks(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """The frozen blocks on ``[queries; CLS; patches]`` with the bottleneck after ``intra_after``.

        Up to the bottleneck, CLS and patch tokens depend on no trainable parameter (queries are masked
        out exactly), so they are detached there: backward skips their rows, parameter gradients are
        unchanged.
        """
        q = self.num_queries
        hidden = x.new_zeros(0)
        for i, block in enumerate(self.visual.transformer.resblocks, start=1):
            x = block(x, attn_mask=mask)
            if i < self.intra_after:
                x = torch.cat([x[:, :q], x[:, q:].detach()], dim=1)
            elif i == self.intra_after:
                delta, hidden = self.clip_bottleneck(x[:, q + 1 :])
                x = torch.cat([x[:, : q + 1], x[:, q + 1 :] + 0.05 * delta.to(x.dtype)], dim=1)
        return x, hidden

    # ------------------------------------------------------------------ forward / loss
    def forward(self, batch: Batch) -> DetectorOutput:
        """Adapter on CLIP's layers, mask decoder, CLIP's second pass with the query bias, classifier and
        boundary map."""
        image = batch.image
        tokens0, layers = self.clip_features(image)
        keep = self.contrast_blocks if self.training else ()
        queries, patch_map, kept = self.adapter(image, layers, keep=keep)
        boundary_feats, bias = self.mask_decoder(queries, patch_map)
        clip_queries, hidden, _ = self.clip_second_pass(tokens0, bias)
        logits2 = self.classifier(clip_queries)
        flags = None
        if batch.forgery_mask is not None:
            fake = (batch.label != 0).view(-1, 1)
            fractions = patch_fractions(batch.forgery_mask, self.geometry.grid, rule=self.patch_rule)
            flags = boundary_patches(fractions, self.patch_rule) & fake
        boundary = self.boundary_decoder(boundary_feats, flags)
        aux = ForensicsAdapterAux(boundary=boundary, logits2=logits2)
        if self.training:
            aux.adapter_patches, aux.clip_hidden = kept, hidden
        return DetectorOutput(logits=logits2[:, 1] - logits2[:, 0], aux=aux)

    def loss(self, batch: Batch, out: DetectorOutput) -> dict[str, Tensor]:
        """Forensics Adapter's loss (Cui et al., CVPR 2025): cross-entropy, boundary map and patch contrast
        terms."""
        if batch.forgery_mask is None:
            raise DataSpecError(
                "forensics_adapter needs batch.forgery_mask for its loss (DataSpec.forgery_masks); "
                "build the datamodule from this detector's data_spec"
            )
        aux = out.aux
        if not isinstance(aux, ForensicsAdapterAux) or aux.adapter_patches is None:
            raise RuntimeError("ForensicsAdapter.loss needs the output of forward() in training mode")
        label, mask = batch.label, batch.forgery_mask
        g = self.geometry
        mask = mask * (label != 0).view(-1, 1, 1, 1).to(mask.dtype)  # reals: zero mask, as released
        ce = F.cross_entropy(aux.logits2.float(), label)
        pred = aux.boundary.float()
        target = boundary_target(mask, label)
        if target.shape != pred.shape:
            raise DataSpecError(
                f"forensics_adapter: forgery mask gives a {tuple(target.shape[-2:])} boundary target, "
                f"the model predicts {tuple(pred.shape[-2:])}"
            )
        mse = F.mse_loss(pred, target)
        rule = self.patch_rule
        adapter_labels = patch_labels(patch_fractions(mask, g.grid, rule=rule), rule)
        adapter_c = sum(
            (intra_contrast(e, adapter_labels, label, self.temperature) for e in aux.adapter_patches),
            ce.new_zeros(()),
        )
        clip_labels = patch_labels(patch_fractions(mask, g.grid, size=g.image_size, rule=rule), rule)
        clip_c = clip_contrast(aux.clip_hidden, clip_labels, label, self.temperature)
        w = self.loss_weights
        total = w[0] * ce + w[1] * mse + w[2] * adapter_c + w[3] * clip_c
        return {
            "loss": total,
            "ce": ce.detach(),
            "boundary": mse.detach(),
            "adapter_contrast": adapter_c.detach(),
            "clip_contrast": clip_c.detach(),
        }

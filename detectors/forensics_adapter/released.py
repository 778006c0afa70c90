"""Forensics Adapter's released checkpoint -> our ``forensics_adapter`` (``reference="released"``).

    python -m detectors.convert --source forensics_adapter forensics_adapter ckpt_best.pth fa.ckpt

The authors' weights (OUC-VAS/ForensicsAdapter README, "Model Weights": Google Drive) are
``torch.save(model.state_dict())`` of their ``DS`` module (``trainer/trainer.py`` ``save_ckpt``; under
``module.`` when trained with DDP). From our reading of ``model/ds.py``, ``model/adapters/adapter.py``,
``model/attn.py``, ``model/layer.py`` and ``model/clip/model.py`` (CC BY-NC 4.0; read, not copied), that
state dict holds (ViT-L/14 sizes; ``W`` = 1024 CLIP width, ``D`` = 192 adapter width, ``Q`` = 128):

* ``clip_model.*``: the whole OpenAI CLIP as ``clip.load`` built it (fp16 after ``convert_weights``):
  ``visual.{conv1.weight, class_embedding, positional_embedding, ln_pre, transformer.resblocks.<i>.{ln_1,
  attn.in_proj_weight, attn.in_proj_bias, attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj}, ln_post, proj}``
  and the text tower ``transformer.resblocks.*``, ``token_embedding.weight``, ``positional_embedding``,
  ``ln_final``, ``text_projection``, ``logit_scale``;
* ``adapter.vit_model.*``: timm 0.6.12 ``vit_tiny_patch16_224`` (``fc_norm=False``, ``num_classes=0``,
  their ``PatchEmbed``): ``pos_embed [1, 196, D]`` (CLS position removed), ``patch_embed.proj.{weight,
  bias}`` and ``patch_embed.norm.{weight, bias}``, ``blocks.0..11.{norm1, attn.qkv, attn.proj, norm2,
  mlp.fc1, mlp.fc2}`` (``cls_token`` and ``norm`` deleted);
* ``adapter.{query_embed, query_pos_embed, ln_pre, patch_conv}``, ``adapter.mask_decoder.{query_mlp,
  xray_mlp, attn_mlp}.layers.{0,1,2}`` (``Linear`` / 1x1 ``Conv2d``) and ``adapter.mask_decoder.bias_scaling``;
* ``rec_attn_clip.*``: ``vit.*``, ``resblocks.*``, ``ln_post.*`` and ``proj``: the SAME visual tower
  registered again (a module and a parameter shared with ``clip_model.visual``), ``intra_scale`` (a
  frozen, unused parameter), ``clip_intra_blocks.0.{conv_first, conv_second}`` (``Conv1d`` kernel 1);
* ``masked_xray_post_process.process.{0,1,3,4,6,7}`` (convs, batch norms, the deconvolution);
* ``clip_post_process.first_process.{0,1,3,4,6}`` and ``second_process.{0,2,4}``.

It holds NO fusion projections: ``Adapter.fuse`` builds a new ``Fusion`` at every forward, outside the
module tree.

Mapping to ours:

=====================================================  ==================================================
released                                               ours
=====================================================  ==================================================
``clip_model.visual.X``                                ``visual.X`` (open_clip's names are OpenAI's)
``adapter.vit_model.pos_embed``                        ``adapter.pos_embed``
``adapter.vit_model.blocks.<i>.X`` (i < 8)             ``adapter.blocks.<i>.X``
``adapter.{query_embed,query_pos_embed,ln_pre,         same names under ``adapter.``
patch_conv}``
``adapter.mask_decoder.query_mlp`` / ``attn_mlp`` /    ``mask_decoder.query_mlp`` / ``attn_mlp`` /
``bias_scaling``                                       ``bias_scaling``
``adapter.mask_decoder.xray_mlp``                      ``mask_decoder.boundary_mlp``
``rec_attn_clip.clip_intra_blocks.0.conv_first``       ``clip_bottleneck.down`` (``[B, W, 1]`` -> ``[B, W]``)
``rec_attn_clip.clip_intra_blocks.0.conv_second``      ``clip_bottleneck.up`` (``[W, B, 1]`` -> ``[W, B]``)
``masked_xray_post_process.process.N``                 ``boundary_decoder.body.N``
``clip_post_process.first_process.N``                  ``classifier.reduce.N``
``clip_post_process.second_process.{0,2,4}``           ``classifier.head.layers.{0,1,2}``
=====================================================  ==================================================

Dropped on purpose (:data:`DROPPED`; never silent): the CLIP text tower (``clip_model.transformer``,
``token_embedding``, ``positional_embedding``, ``ln_final``, ``text_projection``, ``logit_scale``); the
duplicate views of the visual tower under ``rec_attn_clip.{vit, resblocks, ln_post, proj}`` (checked equal
to ``clip_model.visual``'s tensors first: a checkpoint whose copies differ is refused);
``rec_attn_clip.intra_scale``; ``adapter.vit_model.patch_embed`` (the adapter embeds with ``patch_conv``);
the adapter's unused blocks 8-11 (the forward stops after block 8).

Added (:data:`FRESH`): ``adapter.fusions.*``, drawn once from the released ``Fusion``'s initialisation
(seed 0 for the conversion) and frozen, as ``reference="released"`` builds them: the released code's
per-forward redraw cannot be reproduced deterministically (see
:class:`~detectors.forensics_adapter.detector.ForensicsAdapter`).

Everything else maps one to one; any other key, a missing key or a shape mismatch is refused with the
names of the keys. The network is built with ``reference="released"`` (released patch rule, frozen
fusions, the boundary decoder as released) and CLIP's weights come from the checkpoint.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from detectors.convert import Conversion, ConversionError, StateDict, strip_module

#: adapter blocks the released forward runs (``out_layers = [8]``; the loop breaks after block 8)
RELEASED_ADAPTER_BLOCKS = 8

#: prefixes of keys the released checkpoint holds and our network does not use
DROPPED = (
    "clip_model.transformer.",
    "clip_model.token_embedding.",
    "clip_model.positional_embedding",
    "clip_model.ln_final.",
    "clip_model.text_projection",
    "clip_model.logit_scale",
    "rec_attn_clip.vit.",
    "rec_attn_clip.resblocks.",
    "rec_attn_clip.ln_post.",
    "rec_attn_clip.proj",
    "rec_attn_clip.intra_scale",
    "adapter.vit_model.patch_embed.",
)
#: prefixes of our keys the released checkpoint cannot hold (drawn at build time, frozen)
FRESH = ("adapter.fusions.",)

_DUPLICATES = {  # released duplicate view -> the tensor it shares
    "rec_attn_clip.vit.": "clip_model.visual.",
    "rec_attn_clip.resblocks.": "clip_model.visual.transformer.resblocks.",
    "rec_attn_clip.ln_post.": "clip_model.visual.ln_post.",
    "rec_attn_clip.proj": "clip_model.visual.proj",
}
_RULES = (  # released prefix -> ours (first match wins)
    ("clip_model.visual.", "visual."),
    ("adapter.vit_model.pos_embed", "adapter.pos_embed"),
    ("adapter.query_embed", "adapter.query_embed"),
    ("adapter.query_pos_embed", "adapter.query_pos_embed"),
    ("adapter.ln_pre.", "adapter.ln_pre."),
    ("adapter.patch_conv.", "adapter.patch_conv."),
    ("adapter.mask_decoder.query_mlp.", "mask_decoder.query_mlp."),
    ("adapter.mask_decoder.xray_mlp.", "mask_decoder.boundary_mlp."),
    ("adapter.mask_decoder.attn_mlp.", "mask_decoder.attn_mlp."),
    ("adapter.mask_decoder.bias_scaling.", "mask_decoder.bias_scaling."),
    ("rec_attn_clip.clip_intra_blocks.0.conv_first.", "clip_bottleneck.down."),
    ("rec_attn_clip.clip_intra_blocks.0.conv_second.", "clip_bottleneck.up."),
    ("masked_xray_post_process.process.", "boundary_decoder.body."),
    ("clip_post_process.first_process.", "classifier.reduce."),
)
_ADAPTER_BLOCK = re.compile(r"^adapter\.vit_model\.blocks\.(\d+)\.(.+)$")
_HEAD = re.compile(r"^clip_post_process\.second_process\.(\d+)\.(.+)$")
_HEAD_LAYERS = {"0": "0", "2": "1", "4": "2"}  # Linear, ReLU, Linear, ReLU, Linear -> MLP.layers
_WHAT = "Forensics Adapter released checkpoint"


def convert_released(state: Mapping[str, Tensor]) -> StateDict:
    """The released ``DS`` state dict -> our ``forensics_adapter`` state dict (without ``adapter.fusions``)."""
    s = strip_module(state)
    for dup, src in _DUPLICATES.items():
        for k in [k for k in s if k.startswith(dup)]:
            twin = src + k[len(dup) :]
            if twin not in s or s[twin].shape != s[k].shape or not torch.equal(s[twin], s[k]):
                raise ConversionError(
                    f"{_WHAT}: {k} should repeat {twin} (one visual tower registered twice), but it differs"
                )
    out: StateDict = {}
    unknown = []
    for k, v in s.items():
        if k.startswith(DROPPED):
            continue
        m = _ADAPTER_BLOCK.match(k)
        if m:
            if int(m.group(1)) < RELEASED_ADAPTER_BLOCKS:
                out[f"adapter.blocks.{m.group(1)}.{m.group(2)}"] = v
            continue  # blocks 9-12: built, never run
        m = _HEAD.match(k)
        if m and m.group(1) in _HEAD_LAYERS:
            out[f"classifier.head.layers.{_HEAD_LAYERS[m.group(1)]}.{m.group(2)}"] = v
            continue
        src = next((p for p, _ in _RULES if k.startswith(p)), None)
        if src is None:
            unknown.append(k)
            continue
        name = dict(_RULES)[src] + k[len(src) :]
        if name.startswith("clip_bottleneck.") and name.endswith(".weight"):
            if v.ndim != 3 or v.shape[-1] != 1:
                raise ConversionError(
                    f"{_WHAT}: {k} should be a kernel-1 Conv1d weight, got {tuple(v.shape)}"
                )
            v = v[..., 0]
        out[name] = v
    if unknown:
        raise ConversionError(f"{_WHAT}: {len(unknown)} keys of unknown layout, e.g. {sorted(unknown)[:5]}")
    return out


def released_arguments(state: Mapping[str, Tensor]) -> dict[str, Any]:
    """Our constructor arguments for the network the checkpoint holds (widths, queries, CLIP backbone)."""
    s = strip_module(state)
    try:
        conv1 = s["clip_model.visual.conv1.weight"]
        layers = len({k.split(".")[4] for k in s if k.startswith("clip_model.visual.transformer.resblocks.")})
        query = s["adapter.query_embed"]
        pos = s["adapter.vit_model.pos_embed"]
        args: dict[str, Any] = {
            "num_queries": int(query.shape[1]),
            "adapter_width": int(query.shape[2]),
            "adapter_patch": int(s["adapter.patch_conv.weight"].shape[-1]),
            "adapter_pos_grid": math.isqrt(int(pos.shape[1])),
            "decoder_hidden": int(s["adapter.mask_decoder.query_mlp.layers.0.weight"].shape[0]),
            "decoder_out": int(s["adapter.mask_decoder.query_mlp.layers.2.weight"].shape[0]),
            "clip_bottleneck": int(s["rec_attn_clip.clip_intra_blocks.0.conv_first.weight"].shape[0]),
        }
    except KeyError as e:
        raise ConversionError(f"{_WHAT}: missing key {e}; is this a Forensics Adapter checkpoint?") from e
    known = {(1024, 24, 14): "ViT-L-14-quickgelu", (768, 12, 16): "ViT-B-16-quickgelu"}
    name = known.get((int(conv1.shape[0]), layers, int(conv1.shape[-1])))
    if name is not None:
        args["clip_model"] = name
    return args


FORENSICS_ADAPTER_RELEASED = Conversion(
    convert_released,
    build={"reference": "released", "clip_pretrained": None},
    infer=released_arguments,
    fresh=FRESH,
    seed=0,
)

"""Hugging Face ``CLIPVisionTransformer`` parameter names -> open_clip ``VisionTransformer`` names.

Effort and GenD train the vision tower of transformers' ``CLIPModel`` (``clip.vision_model``); this suite
runs the same network as open_clip's ``visual`` (:func:`detectors.clip_backbone.create_clip`). The two are
the same function with other names, from our reading of transformers' ``modeling_clip.py`` and open_clip's
``transformer.py``:

=================================================  ===================================================
HF (under the vision model)                        open_clip (under ``visual.``)
=================================================  ===================================================
``embeddings.class_embedding`` ``[W]``             ``class_embedding``
``embeddings.patch_embedding.weight``              ``conv1.weight`` ``[W, 3, P, P]`` (no bias in either)
``embeddings.position_embedding.weight``           ``positional_embedding`` ``[1 + G*G, W]``
``embeddings.position_ids`` ``[1, 1 + G*G]``       none: a persistent buffer only before transformers
                                                   4.31; checked to be ``0..G*G`` and dropped
``pre_layrnorm.*``                                 ``ln_pre.*``
``encoder.layers.i.layer_norm1.*``                 ``transformer.resblocks.i.ln_1.*``
``encoder.layers.i.self_attn.{q,k,v}_proj.*``      ``transformer.resblocks.i.attn.in_proj_{weight,bias}``
                                                   rows ``[0:W]``, ``[W:2W]``, ``[2W:3W]`` (fused), or
                                                   ``attn.{q,k,v}_proj.*`` when kept apart (Effort)
``encoder.layers.i.self_attn.out_proj.*``          ``transformer.resblocks.i.attn.out_proj.*``
``encoder.layers.i.layer_norm2.*``                 ``transformer.resblocks.i.ln_2.*``
``encoder.layers.i.mlp.fc1.*`` / ``mlp.fc2.*``     ``transformer.resblocks.i.mlp.c_fc.*`` / ``mlp.c_proj.*``
``post_layernorm.*``                               ``ln_post.*``
=================================================  ===================================================

HF's ``pooler_output`` is ``post_layernorm(last_hidden_state[:, 0])``: the CLS token after the final
LayerNorm, not projected. open_clip's ``visual(x)`` with ``visual.proj = None`` (pool type ``tok``, LayerNorm
before pooling, the OpenAI layout) returns exactly that. HF's ``visual_projection`` (on ``CLIPModel``, not on
the vision model) is open_clip's ``visual.proj`` transposed; neither detector uses it. Both use QuickGELU,
LayerNorm eps 1e-5 and the ``1/sqrt(head_dim)`` attention scale (OpenAI CLIP: open_clip ``-quickgelu``
names, HF ``hidden_act: quick_gelu``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import Tensor

StateDict = dict[str, Tensor]

#: (width, patch, layers, tokens) of an HF OpenAI CLIP vision tower -> the open_clip model name
OPENAI_CLIP_NAMES: dict[tuple[int, int, int, int], str] = {
    (1024, 14, 24, 257): "ViT-L-14-quickgelu",
    (1024, 14, 24, 577): "ViT-L-14-336-quickgelu",
    (768, 16, 12, 197): "ViT-B-16-quickgelu",
    (768, 32, 12, 50): "ViT-B-32-quickgelu",
}

_TOP = {
    "embeddings.class_embedding": "class_embedding",
    "embeddings.patch_embedding.weight": "conv1.weight",
    "embeddings.position_embedding.weight": "positional_embedding",
}
_NORMS = {"pre_layrnorm.": "ln_pre.", "post_layernorm.": "ln_post."}
_LAYER = re.compile(r"^encoder\.layers\.(\d+)\.(.+)$")
_BLOCK = {
    "layer_norm1.": "ln_1.",
    "layer_norm2.": "ln_2.",
    "mlp.fc1.": "mlp.c_fc.",
    "mlp.fc2.": "mlp.c_proj.",
    "self_attn.out_proj.": "attn.out_proj.",
}
_QKV = re.compile(r"^self_attn\.([qkv])_proj\.(.+)$")


class HFCLIPLayoutError(ValueError):
    """A state dict is not an HF CLIP vision tower of the expected layout."""


def check_position_ids(state: dict[str, Tensor], what: str) -> None:
    """Remove ``embeddings.position_ids`` (older transformers save it) after checking it is ``0..N-1``."""
    ids = state.pop("embeddings.position_ids", None)
    if ids is None:
        return
    n = (
        state["embeddings.position_embedding.weight"].shape[0]
        if "embeddings.position_embedding.weight" in state
        else -1
    )
    if ids.numel() != n or not torch.equal(ids.reshape(-1).long(), torch.arange(n)):
        raise HFCLIPLayoutError(
            f"{what}: embeddings.position_ids is not 0..{n - 1} (shape {tuple(ids.shape)})"
        )


def hf_vision_to_open_clip(
    state: Mapping[str, Tensor], what: str, fuse_qkv: bool = True, prefix: str = "visual."
) -> StateDict:
    """Rename an HF CLIP vision tower (keys relative to the vision model) to open_clip's ``visual``.

    ``fuse_qkv=True`` concatenates q/k/v weights and biases into ``attn.in_proj_{weight,bias}`` (plain CLIP);
    ``False`` keeps ``attn.{q,k,v}_proj.<anything>`` apart (Effort's decomposed projections). Any key of
    another layout raises :class:`HFCLIPLayoutError` naming it.
    """
    s = dict(state)
    check_position_ids(s, what)
    out: StateDict = {}
    qkv: dict[tuple[int, str], dict[str, Tensor]] = {}
    unknown = []
    for k, v in s.items():
        if k in _TOP:
            out[prefix + _TOP[k]] = v
            continue
        norm = next((p for p in _NORMS if k.startswith(p)), None)
        if norm is not None:
            out[prefix + _NORMS[norm] + k[len(norm) :]] = v
            continue
        m = _LAYER.match(k)
        if m is None:
            unknown.append(k)
            continue
        i, rest = int(m.group(1)), m.group(2)
        block = f"{prefix}transformer.resblocks.{i}."
        src = next((p for p in _BLOCK if rest.startswith(p)), None)
        if src is not None:
            out[block + _BLOCK[src] + rest[len(src) :]] = v
            continue
        q = _QKV.match(rest)
        if q is None:
            unknown.append(k)
        elif fuse_qkv:
            qkv.setdefault((i, q.group(2)), {})[q.group(1)] = v
        else:
            out[f"{block}attn.{q.group(1)}_proj.{q.group(2)}"] = v
    if unknown:
        raise HFCLIPLayoutError(f"{what}: {len(unknown)} keys of unknown layout, e.g. {sorted(unknown)[:5]}")
    for (i, param), parts in sorted(qkv.items()):
        if param not in {"weight", "bias"} or set(parts) != {"q", "k", "v"}:
            names = [f"encoder.layers.{i}.self_attn.{p}_proj.{param}" for p in sorted(parts)]
            raise HFCLIPLayoutError(f"{what}: need q, k and v projection weights and biases, got {names}")
        out[f"{prefix}transformer.resblocks.{i}.attn.in_proj_{param}"] = torch.cat(
            [parts["q"], parts["k"], parts["v"]], dim=0
        )
    return out


def hf_vision_geometry(state: Mapping[str, Tensor], what: str) -> tuple[int, int, int, int]:
    """``(width, patch, layers, tokens)`` of an HF CLIP vision tower (keys relative to the vision model)."""
    try:
        w = state["embeddings.patch_embedding.weight"]
        pos = state["embeddings.position_embedding.weight"]
    except KeyError as e:
        raise HFCLIPLayoutError(f"{what}: missing {e}; is this an HF CLIP vision tower?") from e
    layers = {int(m.group(1)) for k in state if (m := _LAYER.match(k))}
    return int(w.shape[0]), int(w.shape[-1]), len(layers), int(pos.shape[0])


def open_clip_name(state: Mapping[str, Tensor], what: str) -> dict[str, str]:
    """``{"model_name": ...}`` for an OpenAI CLIP geometry open_clip knows, else ``{}`` (shapes decide)."""
    name = OPENAI_CLIP_NAMES.get(hf_vision_geometry(state, what))
    return {"model_name": name} if name else {}


def sub_state(state: Mapping[str, Tensor], prefix: str) -> StateDict:
    """The keys under ``prefix``, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}

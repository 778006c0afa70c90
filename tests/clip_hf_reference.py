"""Released Effort / GenD checkpoints as their code writes them, and a CLIP forward from HF's equations.

Independent of our modules: the key names and shapes are derived from transformers' ``CLIPVisionTransformer``
(``embeddings``, ``pre_layrnorm``, ``encoder.layers.i.{self_attn.{q,k,v,out}_proj, layer_norm1, mlp.fc1,
mlp.fc2, layer_norm2}``, ``post_layernorm``), from Effort's ``effort_detector.py`` (``SVDResidualLinear``:
``weight_main``, ``bias``, ``S_residual``, ``U_residual``, ``V_residual`` and, in the Effort repository,
``S_r``, ``U_r``, ``V_r``; ``head = nn.Linear(W, 2)`` beside ``backbone``) and from GenD's ``modeling_gend.py``
(``feature_extractor.vision_model``, ``feature_extractor.visual_projection`` (no bias), ``model.linear``).
The forward is written from HF CLIP's equations with plain tensor operations on those names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

Shapes = dict[str, tuple[int, ...]]
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")


def hf_vision_shapes(
    width: int, layers: int, patch: int, image: int, mlp_ratio: int = 4, position_ids: bool = False
) -> Shapes:
    """An HF CLIP vision tower (plain ``nn.Linear`` projections), keys relative to the vision model."""
    tokens = (image // patch) ** 2 + 1
    s: Shapes = {
        "embeddings.class_embedding": (width,),
        "embeddings.patch_embedding.weight": (width, 3, patch, patch),
        "embeddings.position_embedding.weight": (tokens, width),
    }
    if position_ids:
        s["embeddings.position_ids"] = (1, tokens)
    for ln in ("pre_layrnorm", "post_layernorm"):
        s |= {f"{ln}.weight": (width,), f"{ln}.bias": (width,)}
    for i in range(layers):
        p = f"encoder.layers.{i}."
        for proj in PROJECTIONS:
            s |= {f"{p}self_attn.{proj}.weight": (width, width), f"{p}self_attn.{proj}.bias": (width,)}
        for ln in ("layer_norm1", "layer_norm2"):
            s |= {f"{p}{ln}.weight": (width,), f"{p}{ln}.bias": (width,)}
        s |= {f"{p}mlp.fc1.weight": (mlp_ratio * width, width), f"{p}mlp.fc1.bias": (mlp_ratio * width,)}
        s |= {f"{p}mlp.fc2.weight": (width, mlp_ratio * width), f"{p}mlp.fc2.bias": (width,)}
    return s


def effort_shapes(
    width: int,
    layers: int,
    patch: int,
    image: int,
    k: int = 1,
    principal: bool = True,
    position_ids: bool = False,
) -> Shapes:
    """``EffortDetector.state_dict()``: projections replaced by ``SVDResidualLinear`` (r = W - k)."""
    r = width - k
    s: Shapes = {}
    for key, shape in hf_vision_shapes(width, layers, patch, image, position_ids=position_ids).items():
        if "self_attn" in key and key.endswith(".weight"):
            base = key[: -len("weight")]
            s |= {base + "weight_main": (width, width)}
            s |= {base + "S_residual": (k,), base + "U_residual": (width, k), base + "V_residual": (k, width)}
            if principal:
                s |= {base + "S_r": (r,), base + "U_r": (width, r), base + "V_r": (r, width)}
        else:
            s[key] = shape
    out = {f"backbone.{k_}": v for k_, v in s.items()}
    return out | {"head.weight": (2, width), "head.bias": (2,)}


def gend_shapes(width: int, layers: int, patch: int, image: int, proj_dim: int) -> Shapes:
    """``GenD.state_dict()`` (CLIP backbone, ``LinearNorm`` head)."""
    s = {
        f"feature_extractor.vision_model.{k}": v
        for k, v in hf_vision_shapes(width, layers, patch, image).items()
    }
    s["feature_extractor.visual_projection.weight"] = (proj_dim, width)
    return s | {"model.linear.weight": (2, width), "model.linear.bias": (2,)}


def materialise(shapes: Shapes, seed: int = 0) -> dict[str, Tensor]:
    """Random values: LayerNorm scales near 1, ``position_ids`` = 0..N-1, everything else small."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in shapes.items():
        if k.endswith("position_ids"):
            out[k] = torch.arange(shape[1]).unsqueeze(0)
        elif "norm" in k.split(".")[-2] and k.endswith("weight"):
            out[k] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            out[k] = 0.05 * torch.randn(shape, generator=g)
    return out


Linear = Callable[[str], tuple[Tensor, Tensor]]


def plain_linear(state: Mapping[str, Tensor]) -> Linear:
    return lambda p: (state[p + "weight"], state[p + "bias"])


def effort_linear(state: Mapping[str, Tensor]) -> Linear:
    """Effort's ``SVDResidualLinear`` inside ``self_attn`` (``weight_main + U_residual @ diag(S_residual) @
    V_residual``); the MLP keeps plain ``nn.Linear`` weights."""

    def weights(p: str) -> tuple[Tensor, Tensor]:
        if ".self_attn." not in p:
            return state[p + "weight"], state[p + "bias"]
        residual = state[p + "U_residual"] @ torch.diag(state[p + "S_residual"]) @ state[p + "V_residual"]
        return state[p + "weight_main"] + residual, state[p + "bias"]

    return weights


def hf_clip_pooled(
    state: Mapping[str, Tensor], prefix: str, image: Tensor, heads: int, linear: Linear
) -> Tensor:
    """HF CLIP vision forward -> ``pooler_output`` (``post_layernorm`` of the CLS token)."""

    def ln(x: Tensor, name: str) -> Tensor:
        return F.layer_norm(
            x, x.shape[-1:], state[prefix + name + ".weight"], state[prefix + name + ".bias"], 1e-5
        )

    def lin(x: Tensor, name: str) -> Tensor:
        w, b = linear(prefix + name + ".")
        return x @ w.T + b

    patch_w = state[prefix + "embeddings.patch_embedding.weight"]
    x = F.conv2d(image, patch_w, stride=patch_w.shape[-1]).flatten(2).transpose(1, 2)  # [B, G*G, W]
    cls = state[prefix + "embeddings.class_embedding"].expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + state[prefix + "embeddings.position_embedding.weight"]
    x = ln(x, "pre_layrnorm")
    b, n, w = x.shape
    hd = w // heads
    i = 0
    while f"{prefix}encoder.layers.{i}.layer_norm1.weight" in state:
        p = f"encoder.layers.{i}."
        h = ln(x, p + "layer_norm1")
        q = lin(h, p + "self_attn.q_proj") * hd**-0.5
        k = lin(h, p + "self_attn.k_proj")
        v = lin(h, p + "self_attn.v_proj")
        q, k, v = (t.view(b, n, heads, hd).transpose(1, 2) for t in (q, k, v))
        a = torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
        x = x + lin(a.transpose(1, 2).reshape(b, n, w), p + "self_attn.out_proj")
        h = lin(ln(x, p + "layer_norm2"), p + "mlp.fc1")
        h = h * torch.sigmoid(1.702 * h)  # quick_gelu (OpenAI CLIP's hidden_act)
        x = x + lin(h, p + "mlp.fc2")
        i += 1
    return ln(x[:, 0], "post_layernorm")


def safetensors_size(shapes: Shapes, metadata: dict[str, str] | None = None) -> int:
    """Bytes of a float32 ``.safetensors`` file of these tensors (the format's header rules, see the test)."""
    hdr: dict[str, object] = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name in sorted(shapes):  # one dtype: entries are ordered by name
        nbytes = 4 * int(torch.tensor(shapes[name]).prod()) if shapes[name] else 4
        hdr[name] = {"dtype": "F32", "shape": list(shapes[name]), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(hdr, separators=(",", ":")).encode()
    return 8 + len(text) + (-len(text)) % 8 + offset

"""Effort's released checkpoints -> our ``effort`` detector, strictly.

Both released implementations save ``model.state_dict()`` of ``EffortDetector`` (``torch.save``, sometimes
under ``module.`` from DataParallel/DDP): ``backbone`` is transformers' ``CLIPModel.vision_model`` with every
``nn.Linear`` inside ``self_attn`` replaced by ``SVDResidualLinear``, ``head`` is ``nn.Linear(1024, 2)``. From
our reading of ``effort_detector.py`` (names per vision-tower layer ``i`` and projection
``p in {q_proj, k_proj, v_proj, out_proj}``; ViT-L/14: ``W = 1024``, ``r = 1023``, ``k = 1``):

==========================================================  ==================  =====================
released key                                                shape               ours
==========================================================  ==================  =====================
``backbone.<HF CLIP vision tower, see detectors.clip_hf>``   as HF               ``visual.*``
``backbone.encoder.layers.i.self_attn.p.weight_main``        ``[W, W]``          ``...attn.p.weight_main``
``backbone.encoder.layers.i.self_attn.p.bias``               ``[W]``             ``...attn.p.bias``
``backbone.encoder.layers.i.self_attn.p.U_residual``         ``[W, k]``          ``...attn.p.U_residual``
``backbone.encoder.layers.i.self_attn.p.S_residual``         ``[k]``             ``...attn.p.S_residual``
``backbone.encoder.layers.i.self_attn.p.V_residual``         ``[k, W]``          ``...attn.p.V_residual``
``backbone.encoder.layers.i.self_attn.p.{U_r,S_r,V_r}``      ``[W,r],[r],[r,W]`` dropped (see below)
``head.weight`` / ``head.bias``                              ``[2, W]`` / ``[2]`` ``head``: ``w_fake - w_real``
==========================================================  ==================  =====================

(``...`` = ``visual.transformer.resblocks.i``.) Two layouts exist and each source accepts exactly one:

* ``effort`` (YZY-stack/Effort-AIGI-Detection, whose README links the FF++-trained ViT-L/14 checkpoint):
  every projection also holds frozen copies of the principal factors ``U_r``, ``S_r``, ``V_r``
  (``weight_main = U_r diag(S_r) V_r``). They feed only the orthogonality loss, which the released
  ``get_losses`` does not use; they are checked for shape and dropped (they would double the memory of the
  attention weights). The repository's ``effort_detector.py`` registers them as (frozen) parameters
  and its ``training/test.py`` loads checkpoints with ``strict=True``, so the checkpoint its README links
  has them too.
* ``deepfakebench`` (SCLBD/DeepfakeBench ``training/detectors/effort_detector.py``): no ``U_r/S_r/V_r``.

``backbone.embeddings.position_ids`` is present when the checkpoint was written by transformers < 4.31 (a
persistent buffer then); it is checked to be ``0..256`` and dropped. ``residual_rank`` is read from
``S_residual`` and the open_clip model name from the tower's geometry. Everything else maps one to one;
unknown, missing or misshapen keys raise, naming them.

The published checkpoint (:data:`EFFORT_RELEASED`, what ``python -m benchmark.run --weights released``
scores): the Effort README's "CLIP-L14 + our Effort training on FaceForensics++" Google Drive file. The
README names no file; ``effort_clip_L14_trainOn_FaceForensic.pth`` is the name GenD's repository loads it
under (yermandy/GenD ``src/model/Effort.py``, ``src/exp/third_party.py``; not checked against the download
here: no internet), so save it under that name.
Licence: CC BY-NC 4.0 (the Effort README).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import Tensor

from detectors.clip_hf import HFCLIPLayoutError, hf_vision_to_open_clip, open_clip_name, sub_state
from detectors.convert import (
    Conversion,
    ConversionError,
    ReleasedWeights,
    StateDict,
    pop_head,
    strip_module,
)

_PROJ = re.compile(r"^encoder\.layers\.(\d+)\.self_attn\.(q_proj|k_proj|v_proj|out_proj)\.(.+)$")
_PRINCIPAL = ("U_r", "S_r", "V_r")


def _split(state: Mapping[str, Tensor], what: str) -> tuple[StateDict, tuple[Tensor, Tensor]]:
    """The vision tower (keys relative to ``backbone.``) and the fake-logit head of a checkpoint."""
    s = strip_module(state)
    head = pop_head(s, ("head.",), what)
    other = sorted(k for k in s if not k.startswith("backbone."))
    if other:
        raise ConversionError(f"{what}: {len(other)} keys outside backbone./head., e.g. {other[:5]}")
    return sub_state(s, "backbone."), head


def _take_principal(backbone: StateDict, what: str, expected: bool) -> None:
    """Check and remove ``U_r``, ``S_r``, ``V_r`` (``effort`` layout) or check that there are none."""
    projections = {(m.group(1), m.group(2)) for k in backbone if (m := _PROJ.match(k))}
    holding = {
        (i, p)
        for i, p in projections
        if any(f"encoder.layers.{i}.self_attn.{p}.{n}" in backbone for n in _PRINCIPAL)
    }
    if not expected:
        if holding:
            raise ConversionError(
                f"{what}: projections hold U_r/S_r/V_r (e.g. layer {min(holding)[0]} {min(holding)[1]}): this is "
                "the Effort repository's layout; use --source effort"
            )
        return
    lacking = sorted(projections - holding)
    if not holding:
        raise ConversionError(
            f"{what}: no projection holds U_r/S_r/V_r: this is DeepfakeBench's effort layout; "
            "use --source deepfakebench"
        )
    if lacking:
        raise ConversionError(
            f"{what}: U_r/S_r/V_r missing for {len(lacking)} projections, e.g. {lacking[:3]}"
        )
    for i, p in sorted(holding):
        base = f"encoder.layers.{i}.self_attn.{p}."
        u, s, v = (backbone.pop(base + n, None) for n in _PRINCIPAL)
        main = backbone.get(base + "weight_main")
        if u is None or s is None or v is None or main is None:
            raise ConversionError(f"{what}: {base}U_r/S_r/V_r/weight_main incomplete")
        r = s.shape[0] if s.ndim == 1 else -1
        if u.shape != (main.shape[0], r) or v.shape != (r, main.shape[1]):
            raise ConversionError(
                f"{what}: {base}U_r/S_r/V_r shapes {tuple(u.shape)}, {tuple(s.shape)}, {tuple(v.shape)} do not "
                f"factor weight_main {tuple(main.shape)}"
            )


def _convert(state: Mapping[str, Tensor], what: str, principal: bool) -> StateDict:
    backbone, (w, b) = _split(state, what)
    _take_principal(backbone, what, expected=principal)
    try:
        out = hf_vision_to_open_clip(backbone, what, fuse_qkv=False)
    except HFCLIPLayoutError as e:
        raise ConversionError(str(e)) from e
    out["head.weight"], out["head.bias"] = w, b
    return out


def convert_effort_release(state: Mapping[str, Tensor]) -> StateDict:
    """A checkpoint of the Effort repository's ``EffortDetector`` (with ``U_r/S_r/V_r``) -> ours."""
    return _convert(state, "Effort (YZY-stack) checkpoint", principal=True)


def convert_effort_deepfakebench(state: Mapping[str, Tensor]) -> StateDict:
    """A checkpoint of DeepfakeBench's ``EffortDetector`` (no ``U_r/S_r/V_r``) -> ours."""
    return _convert(state, "DeepfakeBench effort checkpoint", principal=False)


def effort_arguments(state: Mapping[str, Tensor]) -> dict[str, Any]:
    """``residual_rank`` and (for a known OpenAI geometry) ``model_name`` of a released checkpoint."""
    backbone = sub_state(strip_module(state), "backbone.")
    key = "encoder.layers.0.self_attn.q_proj.S_residual"
    if key not in backbone:
        raise ConversionError(f"Effort checkpoint: no backbone.{key}; is this an Effort checkpoint?")
    try:
        name = open_clip_name(backbone, "Effort checkpoint")
    except HFCLIPLayoutError as e:
        raise ConversionError(str(e)) from e
    return {"residual_rank": int(backbone[key].shape[0]), **name}


#: the FF++-trained checkpoint the Effort README links (YZY-stack/Effort-AIGI-Detection at 96f5dea)
EFFORT_RELEASED = ReleasedWeights(
    "effort_clip_L14_trainOn_FaceForensic.pth",
    "https://drive.google.com/file/d/1m4fyJecABU-Yk3bJ4b1WhUwQa0xCkMLI/view",
    "FF++, all four methods (Effort README; effort.yaml: c23, DeepfakeBench protocol)",
)
EFFORT_RELEASE = Conversion(
    convert_effort_release, build={"pretrained": None}, infer=effort_arguments, released=EFFORT_RELEASED
)
EFFORT_DEEPFAKEBENCH = Conversion(
    convert_effort_deepfakebench, build={"pretrained": None}, infer=effort_arguments
)

"""GenD's released checkpoints (Hugging Face hub ``yermandy/GenD_*``) -> our ``gend`` detector, strictly.

The authors publish their models with ``transformers``' ``save_pretrained``: a ``config.json``
(``{"backbone": "openai/clip-vit-large-patch14", "head": "LinearNorm", "model_type": "GenD", ...}``) and a
``model.safetensors`` of ``GenD.state_dict()`` (``src/hf/modeling_gend.py`` of yermandy/GenD; the training
class ``src/model/GenD.py`` has the same attribute names, so its checkpoints' ``state_dict`` do too). From
our reading of that code (``W`` = 1024, ``P`` = 768 for CLIP ViT-L/14):

=======================================================  =============  =======================================
released key                                             shape          ours
=======================================================  =============  =======================================
``feature_extractor.vision_model.<HF CLIP vision tower>``  as HF        ``visual.*`` (q/k/v fused into
                                                                        ``in_proj``; see :mod:`detectors.clip_hf`)
``feature_extractor.visual_projection.weight``             ``[P, W]``   dropped: built by ``CLIPEncoder``, never
                                                                        used (features are ``pooler_output``)
``model.linear.weight`` / ``model.linear.bias``            ``[2, W]``   ``head``: ``w_fake - w_real``
=======================================================  =============  =======================================

For ``yermandy/GenD_CLIP_L_14`` these 394 tensors (float32, ``{"format": "pt"}`` metadata, no
``position_ids``: transformers 4.56 does not save it) account for the published ``model.safetensors`` size,
1,215,928,160 bytes, to the byte (``tests/test_gend.py`` recomputes it).

Where the checkpoint comes from (:func:`locate_gend`): a ``.safetensors``/``.pth`` file (a ``config.json``
beside it is checked), a folder holding ``model.safetensors`` (and ``config.json``, checked when present), or
a hub id such as ``yermandy/GenD_CLIP_L_14`` fetched with ``huggingface_hub`` (cached). Offline
(``HF_HUB_OFFLINE=1``) a hub id is looked up in the local cache only and fails at once, naming the repository
and how to get the files. Only CLIP backbones with the ``LinearNorm`` head (GenD proper) are accepted; the PE
and DINOv3 variants are other networks.

The published checkpoint (:data:`GEND_RELEASED`, what ``python -m benchmark.run --weights released`` scores):
``yermandy/GenD_CLIP_L_14`` (the only CLIP model GenD's README names, MIT licence), its ``model.safetensors``
expected in the weights folder under that name, with the hub's ``config.json`` beside it if wanted (checked
when present): ``hf download yermandy/GenD_CLIP_L_14 model.safetensors config.json --local-dir weights``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
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

GEND_HUB_ID = "yermandy/GenD_CLIP_L_14"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_WHAT = "GenD checkpoint"


class ReleasedWeightsUnavailable(FileNotFoundError):
    """The released weights are neither on disk nor reachable (offline hub, missing cache)."""


def check_gend_config(config: Mapping[str, Any], where: str) -> None:
    """Refuse a GenD ``config.json`` that is not a CLIP backbone with the ``LinearNorm`` head."""
    backbone, head = str(config.get("backbone", "")), str(config.get("head", ""))
    if "clip" not in backbone.lower():
        raise ConversionError(
            f"{where}: backbone {backbone!r} is not CLIP; only GenD's CLIP models convert to 'gend'"
        )
    if head != "LinearNorm":
        raise ConversionError(
            f"{where}: head {head!r}; GenD classifies L2-normalised features (head 'LinearNorm')"
        )


def _offline() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}
    return bool(constants.HF_HUB_OFFLINE) or env


def _from_hub(repo: str, cache_dir: str | Path | None) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    offline = _offline()
    try:
        files = {
            name: Path(
                hf_hub_download(repo, name, cache_dir=cache_dir, local_files_only=offline)  # type: ignore[arg-type]
            )
            for name in (CONFIG_FILE, WEIGHTS_FILE)
        }
    except LocalEntryNotFoundError as e:
        why = "the hub is offline (HF_HUB_OFFLINE=1)" if offline else "the hub could not be reached"
        raise ReleasedWeightsUnavailable(
            f"GenD weights {repo!r} are not in the local Hugging Face cache and {why}; download them on a "
            f"connected machine (`hf download {repo}`) and pass the folder or its {WEIGHTS_FILE}"
        ) from e
    except Exception as e:  # unknown repository, gated, HTTP errors
        raise ReleasedWeightsUnavailable(
            f"GenD weights {repo!r}: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
        ) from e
    check_gend_config(json.loads(files[CONFIG_FILE].read_text()), f"{repo}/{CONFIG_FILE}")
    return files[WEIGHTS_FILE]


def locate_gend(source: str | Path, cache_dir: str | Path | None = None) -> Path:
    """The weights file of a GenD checkpoint given as a file, a folder or a hub id (see the module doc)."""
    path = Path(source)
    if path.is_file():
        config = path.with_name(CONFIG_FILE)
        if config.is_file():
            check_gend_config(json.loads(config.read_text()), str(config))
        return path
    if path.is_dir():
        config = path / CONFIG_FILE
        if config.is_file():
            check_gend_config(json.loads(config.read_text()), str(config))
        weights = path / WEIGHTS_FILE
        if not weights.is_file():
            raise FileNotFoundError(f"{path} has no {WEIGHTS_FILE} (a GenD save_pretrained folder has one)")
        return weights
    if _HUB_ID.match(str(source)):
        return _from_hub(str(source), cache_dir)
    raise FileNotFoundError(
        f"GenD checkpoint {source!r}: no such file or folder, and not a hub id (owner/name)"
    )


def convert_gend(state: Mapping[str, Tensor]) -> StateDict:
    """GenD's ``state_dict`` (hub ``model.safetensors`` or a training checkpoint) -> ours."""
    s = strip_module(state)
    w, b = pop_head(s, ("model.linear.",), _WHAT)
    proj = s.pop("feature_extractor.visual_projection.weight", None)
    tower = sub_state(s, "feature_extractor.vision_model.")
    other = sorted(k for k in s if not k.startswith("feature_extractor.vision_model."))
    if other:
        raise ConversionError(f"{_WHAT}: {len(other)} keys of unknown layout, e.g. {other[:5]}")
    if proj is None:
        raise ConversionError(f"{_WHAT}: missing feature_extractor.visual_projection.weight")
    if proj.ndim != 2 or proj.shape[1] != w.shape[1]:
        raise ConversionError(
            f"{_WHAT}: visual_projection.weight {tuple(proj.shape)} does not match the width {w.shape[1]}"
        )
    try:
        out = hf_vision_to_open_clip(tower, _WHAT, fuse_qkv=True)
    except HFCLIPLayoutError as e:
        raise ConversionError(str(e)) from e
    out["head.weight"], out["head.bias"] = w, b
    return out


def gend_arguments(state: Mapping[str, Tensor]) -> dict[str, Any]:
    """The open_clip model name of a released checkpoint's tower (for a known OpenAI geometry)."""
    tower = sub_state(strip_module(state), "feature_extractor.vision_model.")
    try:
        return open_clip_name(tower, _WHAT)
    except HFCLIPLayoutError as e:
        raise ConversionError(str(e)) from e


#: GenD's published CLIP checkpoint (GenD README: ``GenD.from_pretrained("yermandy/GenD_CLIP_L_14")``)
GEND_RELEASED = ReleasedWeights(
    WEIGHTS_FILE,
    f"https://huggingface.co/{GEND_HUB_ID}/resolve/main/{WEIGHTS_FILE}",
    "not stated by the GenD README (the paper's models train on FF++ c23)",
)
GEND_RELEASE = Conversion(
    convert_gend, build={"pretrained": None}, infer=gend_arguments, released=GEND_RELEASED, locate=locate_gend
)

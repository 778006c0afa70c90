"""Pretrained-weight loading shared by all detectors: hub when reachable, local file when given.

Weights are never required: when a hub is unreachable (offline machines, ``HF_HUB_OFFLINE=1``) the model
keeps its random initialisation and ONE clear warning says so; the detector records
``pretrained_loaded=False`` so cell records and leaderboards can say it too. Local files are read with
``weights_only=True`` or safetensors: no arbitrary unpickling.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)


class PretrainedUnavailableWarning(UserWarning):
    """Pretrained weights could not be had; the model runs from random initialisation."""


def warn_random_init(what: str, reason: str) -> None:
    """Warn (``PretrainedUnavailableWarning``) that ``what`` starts from random weights because of
    ``reason``."""
    warnings.warn(
        f"{what}: pretrained weights unavailable ({reason}); using RANDOM initialisation. "
        "Results are not comparable with published numbers.",
        PretrainedUnavailableWarning,
        stacklevel=3,
    )


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file (``weights_only=True``).

    Unwraps the usual containers (``state_dict``, ``model``, ``module``) and raises a clear error for a
    missing file or a file that needs arbitrary unpickling.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"refusing to load {path}: not a plain tensor file ({type(e).__name__}: {e})") from e
    for key in ("state_dict", "model", "module", "model_state_dict"):
        if isinstance(obj, Mapping) and key in obj and isinstance(obj[key], Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return dict(obj)


def strip_prefix(
    state: Mapping[str, Tensor], prefixes: tuple[str, ...] = ("module.", "model.")
) -> dict[str, Tensor]:
    """``state`` with the leading ``prefixes`` removed from its keys (as saved by DataParallel or
    wrappers)."""
    out = {}
    for k, v in state.items():
        for p in prefixes:
            if k.startswith(p):
                k = k[len(p) :]
        out[k] = v
    return out


def create_timm_backbone(
    arch: str,
    pretrained: bool,
    weights_path: str | Path | None = None,
    convert: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None,
    **kwargs,
) -> tuple[nn.Module, bool]:
    """``timm.create_model`` with the suite's offline policy. Returns ``(model, pretrained_loaded)``.

    ``weights_path`` (a local file, passed through ``convert`` when given, see :func:`load_into`) wins
    over the hub; a hub failure falls back to random init with a warning.
    """
    import timm

    from detectors.frozen_backbone import BackboneSource, tag_backbone

    def tagged(model: nn.Module, loaded: bool) -> nn.Module:  # lean checkpoints reference a frozen part
        file = str(weights_path) if weights_path is not None else None
        tag = "timm" if loaded and file is None else None
        return tag_backbone(
            model, BackboneSource("timm", arch, tag, file, "pretrained" if loaded else "random")
        )

    if weights_path is not None:
        model = timm.create_model(arch, pretrained=False, **kwargs)
        load_into(model, read_state_dict(weights_path), what=f"{arch} from {weights_path}", convert=convert)
        return tagged(model, True), True
    if pretrained:
        try:
            return tagged(timm.create_model(arch, pretrained=True, **kwargs), True), True
        except Exception as e:  # offline: URLError, LocalEntryNotFoundError, ...
            warn_random_init(f"timm '{arch}'", f"{type(e).__name__}: {str(e).splitlines()[0][:160]}")
    return tagged(timm.create_model(arch, pretrained=False, **kwargs), False), False


def load_into(
    model: nn.Module,
    state: Mapping[str, Tensor],
    what: str,
    convert: Callable[[dict[str, Tensor]], dict[str, Tensor]] | None = None,
    ignore_missing: tuple[str, ...] = (),
) -> None:
    """Load ``state`` into ``model`` strictly, except for missing keys that start with ``ignore_missing``
    (typically a fresh classifier head). Any unexpected key, shape mismatch or other missing key raises.
    """
    state = convert(dict(state)) if convert else strip_prefix(state)
    own = model.state_dict()
    bad_shape = [
        (k, tuple(v.shape), tuple(own[k].shape))
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    unexpected = sorted(set(state) - set(own))
    missing = sorted(k for k in set(own) - set(state) if not k.startswith(ignore_missing))
    if bad_shape or unexpected or missing:
        raise ValueError(
            f"cannot load {what}: {len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys "
            f"{unexpected[:5]}, {len(bad_shape)} shape mismatches {bad_shape[:3]}"
        )
    model.load_state_dict(state, strict=False)

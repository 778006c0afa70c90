"""Load checkpoints released by other code bases into our detectors, strictly; write them as our checkpoints.

    python -m detectors.convert --source deepfakebench xception xception_best.pth xception.ckpt
    # then detectors.load_detector("xception.ckpt")

Each detector declares the formats it reads in its class attribute ``converters`` (source name ->
:class:`Conversion`), written beside the detector: DeepfakeBench's Xception and EfficientNet-B4 in
:mod:`detectors.timm_cnn.deepfakebench`, its UCF in :mod:`detectors.ucf.deepfakebench`; their docstrings
hold the key mapping tables. This module only dispatches and holds the helpers converters share.

The rules every converter follows: ``module.`` prefixes (DataParallel / DDP) are removed; keys dropped on
purpose are listed in the converter's docstring, never silent; everything else maps one-to-one, and any
other unknown key, missing key or shape mismatch raises. Files are read with ``weights_only=True`` or
safetensors.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from datamodules.atomic import atomic_path
from detectors.base import Detector
from detectors.registry import create_detector, get_detector_class, list_detectors
from detectors.weights import load_into, read_state_dict

StateDict = dict[str, Tensor]


class ConversionError(ValueError):
    """A state dict does not have the layout the converter expects."""


@dataclass(frozen=True)
class Conversion:
    """How checkpoints of one external code base become checkpoints of one detector.

    Attributes:
        convert: their state dict -> ours (:class:`ConversionError` for a layout it does not know).
        build: constructor arguments that rebuild their network with our detector.
        infer: constructor arguments read from their state dict (e.g. a head's size); they win over ``build``.
    """

    convert: Callable[[Mapping[str, Tensor]], StateDict]
    build: dict[str, Any] = field(default_factory=dict)
    infer: Callable[[Mapping[str, Tensor]], dict[str, Any]] | None = None


def sources() -> dict[str, list[str]]:
    """Every source format and the detectors that read it (imports every detector module)."""
    out: dict[str, list[str]] = {}
    for name in list_detectors():
        for source in get_detector_class(name).converters:
            out.setdefault(source, []).append(name)
    return out


def load_converted(
    source: str, name: str, checkpoint: str | Path | Mapping[str, Tensor], /, **overrides: Any
) -> Detector:
    """Build detector ``name`` as ``source`` ran it and load its ``checkpoint`` strictly.

    ``checkpoint`` is a file (read with ``weights_only=True`` or safetensors) or an in-memory state dict.
    ``overrides`` go to the detector's constructor (e.g. recipe settings for fine-tuning). The returned
    detector has ``pretrained_loaded=True``.
    """
    conversion = get_detector_class(name).converters.get(source)
    if conversion is None:
        known = sources()
        raise ValueError(
            f"no {source!r} converter for {name!r}; "
            + "; ".join(f"{s}: {', '.join(dets)}" for s, dets in sorted(known.items()))
        )
    state = read_state_dict(checkpoint) if isinstance(checkpoint, (str, Path)) else dict(checkpoint)
    converted = conversion.convert(state)
    kwargs = {**conversion.build, **(conversion.infer(state) if conversion.infer else {}), **overrides}
    model = create_detector(name, **kwargs)
    load_into(model, converted, what=f"{source} {name} checkpoint", convert=lambda s: s)
    model.pretrained_loaded = True
    return model


def save_converted(model: Detector, path: str | Path) -> Path:
    """Write ``model`` as a checkpoint :func:`detectors.load_detector` reads (plain tensors and types only)."""
    path = Path(path)
    ckpt = {
        "detector_name": model.name,
        "hyper_parameters": dict(model.hparams),
        "state_dict": model.state_dict(),
        "pretrained_loaded": True,
    }
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path


# ---------------------------------------------------------------------------------------------- shared helpers
def strip_module(state: Mapping[str, Tensor]) -> StateDict:
    """Remove every leading ``module.`` (DataParallel / DDP, possibly nested)."""
    out = {}
    for k, v in state.items():
        while k.startswith("module."):
            k = k[len("module.") :]
        out[k] = v
    return out


def two_way_to_logit(weight: Tensor, bias: Tensor, what: str) -> tuple[Tensor, Tensor]:
    """A 2-way ``(real, fake)`` linear layer -> the fake-logit layer: ``w_fake - w_real``, ``b_fake - b_real``.

    ``sigmoid(l_fake - l_real) == softmax([l_real, l_fake])[1]``, so probabilities are unchanged.
    """
    if weight.ndim != 2 or weight.shape[0] != 2 or bias.shape != (2,):
        raise ConversionError(
            f"{what}: expected a 2-way head (weight [2, C], bias [2]), got {tuple(weight.shape)}, {tuple(bias.shape)}"
        )
    return (weight[1] - weight[0]).unsqueeze(0), (bias[1] - bias[0]).unsqueeze(0)


def pointwise_4d(key: str, v: Tensor) -> Tensor:
    """Cadene Xception's 2-D pointwise weights ``[out, in]`` as the 4-D ``[out, in, 1, 1]`` timm uses."""
    return v[:, :, None, None] if "pointwise" in key and v.ndim == 2 else v


def pop_head(state: StateDict, prefixes: tuple[str, ...], what: str) -> tuple[Tensor, Tensor]:
    """Remove the first 2-way classifier found under ``prefixes`` and return it as a fake-logit layer."""
    for p in prefixes:
        if f"{p}weight" in state and f"{p}bias" in state:
            return two_way_to_logit(state.pop(f"{p}weight"), state.pop(f"{p}bias"), what)
    raise ConversionError(f"{what}: no classifier found under {list(prefixes)}")


def drop(state: StateDict, prefix: str) -> list[str]:
    """Remove the keys under ``prefix`` (parts the source builds but never uses); return them."""
    dropped = [k for k in state if k.startswith(prefix)]
    for k in dropped:
        del state[k]
    return dropped


def rehome(state: StateDict, rules: list[tuple[str, str]], what: str) -> StateDict:
    """Rename every key by the first matching ``(source_prefix, target_prefix)`` rule; unmatched keys raise."""
    out, unknown = {}, []
    for k, v in state.items():
        for src, dst in rules:
            if k.startswith(src):
                out[dst + k[len(src) :]] = pointwise_4d(k, v)
                break
        else:
            unknown.append(k)
    if unknown:
        raise ConversionError(f"{what}: {len(unknown)} keys of unknown layout, e.g. {sorted(unknown)[:5]}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m detectors.convert",
        description="Convert another code base's checkpoint into a checkpoint of this suite "
        "(detectors.load_detector).",
    )
    p.add_argument(
        "--source", default="deepfakebench", help="the checkpoint's code base (default deepfakebench)"
    )
    p.add_argument("detector", help="our detector name (e.g. xception, efficientnet_b4, ucf)")
    p.add_argument("checkpoint", type=Path, help="the released checkpoint (.pth or .safetensors)")
    p.add_argument("output", type=Path, help="where to write the converted .ckpt")
    args = p.parse_args(argv)
    try:
        model = load_converted(args.source, args.detector, args.checkpoint)
    except (ValueError, KeyError, FileNotFoundError) as e:
        p.error(f"{e}\nhint: README 'Scoring DeepfakeBench's released checkpoints' lists the formats read")
    print(f"wrote {save_converted(model, args.output)}")
    return 0


if __name__ == "__main__":
    from datamodules.errors import run_cli

    raise SystemExit(run_cli(main))

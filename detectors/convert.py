"""Load checkpoints released by other code bases into our detectors, strictly; write them as our checkpoints.

    python -m detectors.convert --source deepfakebench xception xception_best.pth xception.ckpt
    # then detectors.load_detector("xception.ckpt")

Each detector declares the formats it reads in its class attribute ``converters`` (source name ->
:class:`Conversion`), written beside the detector: DeepfakeBench's Xception, EfficientNet-B4, ResNet-34
(CNN-Aug) and SBI in :mod:`detectors.timm_cnn.deepfakebench`, its UCF in :mod:`detectors.ucf.deepfakebench`,
SelfBlendedImages' own checkpoints in :mod:`detectors.timm_cnn.sbi_release`, Forensics Adapter's released
checkpoint (source ``forensics_adapter``) in :mod:`detectors.forensics_adapter.released`, Effort's (sources
``effort`` and ``deepfakebench``) in :mod:`detectors.effort.released`, GenD's Hugging Face checkpoints
(source ``gend``; a hub id, a folder or a file) in :mod:`detectors.gend.released`; their docstrings hold
the key mapping tables. This module only dispatches and holds the helpers converters share.

A conversion may name the checkpoint its owners publish (:class:`ReleasedWeights`): file name, address and
training data. ``python -m benchmark.run --weights released`` scores those files without training
(:func:`released_conversion` finds a detector's; ``python -m detectors.convert --released`` lists them all).

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
class ReleasedWeights:
    """A trained checkpoint its owners publish for a detector (read by the conversion that names it).

    Attributes:
        file: the file name as published; ``--weights released`` looks for ``<weights dir>/<file>``.
        url: where it is published (a download needs the owners' terms: several are non-commercial).
        trained_on: the training data and protocol, as the owners state it.
    """

    file: str
    url: str
    trained_on: str


@dataclass(frozen=True)
class Conversion:
    """How checkpoints of one external code base become checkpoints of one detector.

    Attributes:
        convert: their state dict -> ours (:class:`ConversionError` for a layout it does not know).
        build: constructor arguments that rebuild their network with our detector.
        infer: constructor arguments read from their state dict (e.g. a head's size); they win over ``build``.
        released: the trained checkpoint of this format the owners publish for the detector, if any.
        fresh: prefixes of OUR keys their checkpoints cannot hold (parts their code never saves, e.g.
            modules it re-creates at every call); they keep the detector's initialisation, every other
            key loads strictly. Listed in the converter's docstring.
        seed: torch seed of the detector's construction (so ``fresh`` parts are the same draw on every
            conversion); ``None`` = the current RNG state.
        locate: where a checkpoint given by name is (e.g. a hub id or a folder -> the weights file); default:
            the name is the file.
    """

    convert: Callable[[Mapping[str, Tensor]], StateDict]
    build: dict[str, Any] = field(default_factory=dict)
    infer: Callable[[Mapping[str, Tensor]], dict[str, Any]] | None = None
    released: ReleasedWeights | None = None
    fresh: tuple[str, ...] = ()
    seed: int | None = None
    locate: Callable[[str | Path], Path] | None = None


def sources() -> dict[str, list[str]]:
    """Every source format and the detectors that read it (imports every detector module)."""
    out: dict[str, list[str]] = {}
    for name in list_detectors():
        for source in get_detector_class(name).converters:
            out.setdefault(source, []).append(name)
    return out


def released_conversion(name: str) -> tuple[str, Conversion]:
    """``(source, conversion)`` of the checkpoint published for detector ``name``.

    Raises ``ValueError`` naming the detectors that have one when ``name`` has none.
    """
    found = [(s, c) for s, c in get_detector_class(name).converters.items() if c.released is not None]
    if len(found) == 1:
        return found[0]
    if found:
        raise ValueError(f"{name}: several released checkpoints declared ({[s for s, _ in found]})")
    have = ", ".join(sorted(released_detectors()))
    raise ValueError(
        f"detector {name!r} has no released checkpoint declared; detectors that have one: {have}"
    )


def released_detectors() -> dict[str, ReleasedWeights]:
    """Every detector with a published checkpoint, and that checkpoint (imports every detector module)."""
    out = {}
    for name in list_detectors():
        for conversion in get_detector_class(name).converters.values():
            if conversion.released is not None:
                out[name] = conversion.released
    return out


def load_converted(
    source: str, name: str, checkpoint: str | Path | Mapping[str, Tensor], /, **overrides: Any
) -> Detector:
    """Build detector ``name`` as ``source`` ran it and load its ``checkpoint`` strictly.

    ``checkpoint`` is a file (read with ``weights_only=True`` or safetensors), a name the conversion's
    ``locate`` resolves to a file (GenD: a hub id or a folder), or an in-memory state dict.
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
    if isinstance(checkpoint, (str, Path)):
        state = read_state_dict(conversion.locate(checkpoint) if conversion.locate else checkpoint)
    else:
        state = dict(checkpoint)
    converted = conversion.convert(state)
    kwargs = {**conversion.build, **(conversion.infer(state) if conversion.infer else {}), **overrides}
    if conversion.seed is None:
        model = create_detector(name, **kwargs)
    else:
        # a fixed draw for the ``fresh`` parts; the caller's RNG stays untouched
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(conversion.seed)
            model = create_detector(name, **kwargs)
    load_into(
        model,
        converted,
        what=f"{source} {name} checkpoint",
        convert=lambda s: s,
        ignore_missing=conversion.fresh,
    )
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
    """Command line: convert another code base's checkpoint (or list the released ones); returns the exit
    code."""
    p = argparse.ArgumentParser(
        prog="python -m detectors.convert",
        description="Convert another code base's checkpoint into a checkpoint of this suite "
        "(detectors.load_detector).",
    )
    p.add_argument(
        "--source",
        default="deepfakebench",
        help="the checkpoint's code base: deepfakebench (default), or an authors' release: "
        + ", ".join(s for s in sorted(sources()) if s != "deepfakebench"),
    )
    p.add_argument(
        "--released", action="store_true", help="list the published checkpoints each detector reads and exit"
    )
    p.add_argument(
        "detector",
        nargs="?",
        help="our detector name (e.g. xception, efficientnet_b4, ucf, sbi, forensics_adapter, effort, gend)",
    )
    p.add_argument(
        "checkpoint",
        type=Path,
        nargs="?",
        help="the released checkpoint (.pth, .tar, .safetensors; gend: also a folder or hub id)",
    )
    p.add_argument("output", type=Path, nargs="?", help="where to write the converted .ckpt")
    args = p.parse_args(argv)
    if args.released:
        for name, rel in sorted(released_detectors().items()):
            source, _ = released_conversion(name)
            print(f"{name}\t{source}\t{rel.file}\t{rel.url}\t{rel.trained_on}")
        return 0
    if args.output is None:
        p.error("give DETECTOR CHECKPOINT OUTPUT (or --released)")
    try:
        model = load_converted(args.source, args.detector, args.checkpoint)
    except (ValueError, KeyError, FileNotFoundError) as e:
        p.error(f"{e}\nhint: README 'Scoring DeepfakeBench's released checkpoints' lists the formats read")
    print(f"wrote {save_converted(model, args.output)}")
    return 0


if __name__ == "__main__":
    from datamodules.errors import run_cli

    raise SystemExit(run_cli(main))

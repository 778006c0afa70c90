"""Load DeepfakeBench checkpoints of Xception, EfficientNet-B4 and UCF into our detectors, strictly.

DeepfakeBench (SCLBD/DeepfakeBench) saves ``model.state_dict()`` of its detector classes, sometimes under
``module.`` (DataParallel/DDP). Their layouts, from our reading of ``training/networks/xception.py``,
``training/networks/efficientnetb4.py`` and ``training/detectors/ucf_detector.py``:

``xception`` (``XceptionDetector``)
    ``backbone.<Cadene Xception>`` (``conv1``, ``bn1``, ``conv2``, ``bn2``, ``block1..12.{skip,skipbn,rep.N}``,
    ``conv3``, ``bn3``, ``conv4``, ``bn4``; same names as timm ``legacy_xception``), the 2-way head
    ``backbone.last_linear.{weight,bias}`` (``last_linear.1.*`` when built with dropout) and an unused
    ``backbone.adjust_channel.*`` (built in every mode). ``pointwise`` weights are 4-D in trained
    checkpoints and 2-D in the Cadene ImageNet file.

``efficientnet_b4`` (``EfficientDetector``)
    ``backbone.efficientnet.<efficientnet_pytorch B4>``: ``_conv_stem``, ``_bn0``,
    ``_blocks.{0..31}.{_expand_conv,_bn0,_depthwise_conv,_bn1,_se_reduce,_se_expand,_project_conv,_bn2}``
    (no ``_expand_conv``/``_bn0`` in expansion-1 blocks), ``_conv_head``, ``_bn1``; the 2-way head
    ``backbone.last_layer``; ``backbone.adjust_channel.*`` only in ``adjust_channel`` mode (unused, dropped).

``ucf`` (``UCFDetector``)
    ``encoder_f.*`` / ``encoder_c.*`` (two Xceptions as above, ``adjust_channel`` used, ``last_linear``
    unused), ``block_spe.conv2d.{0,2,4}``, ``block_sha.conv2d.{0,2,4}``, ``head_spe.mlp.{0,2}``,
    ``head_sha.mlp.{0,2}``, ``con_gan.{dconv_up3,dconv_up2,dconv_up1}.{0,2}``, ``con_gan.conv_last``.

Mapping to ours (see docs/ARCHITECTURE.md, "Baselines"):

============================================  ===============================================
DeepfakeBench                                 ours
============================================  ===============================================
xception ``backbone.X``                       ``net.backbone.X`` (2-D pointwise -> 4-D)
xception ``backbone.last_linear[.1].W,b``     ``net.head.fc``: ``W[1] - W[0]``, ``b[1] - b[0]``
effnet ``backbone.efficientnet._blocks.i.*``  ``net.backbone.blocks.<stage>.<j>.*`` (renamed, see below)
effnet ``backbone.last_layer``                ``net.head.fc`` (``w_fake - w_real``)
ucf ``encoder_?.X`` / ``.adjust_channel``     ``encoder_?.backbone.X`` / ``encoder_?.adjust``
ucf ``block_???.conv2d``                      ``block_???.net``
ucf ``con_gan.dconv_upK`` / ``conv_last``     ``decoder.upK`` / ``decoder.conv_last``
ucf ``head_???.mlp``                          ``head_???.mlp`` (2-way ``head_sha`` kept: logit = l1 - l0)
============================================  ===============================================

Dropped on purpose (listed, never silent): unused ``adjust_channel`` of Xception/EfficientNet detectors and
the unused ``last_linear`` of UCF's encoders. Everything else must map one-to-one: any other unknown key,
missing key or shape mismatch raises. Files are read with ``weights_only=True`` or safetensors.

The EfficientNet checkpoint is loaded into ``tf_efficientnet_b4`` with ``deepfakebench_compat=True``
(DeepfakeBench's unpadded stem, ``efficientnet_pytorch``'s static paddings, BN eps 1e-3) and mean = std =
0.5, so scores match DeepfakeBench's own.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from datamodules.atomic import atomic_path
from datamodules.spec import HALF
from detectors.base import Detector
from detectors.registry import create_detector
from detectors.weights import load_into, read_state_dict

#: blocks per stage of EfficientNet-B4 (efficientnet_pytorch's flat ``_blocks`` index -> timm stage, index)
B4_STAGE_DEPTHS = (2, 4, 4, 6, 6, 8, 2)


class ConversionError(ValueError):
    """A DeepfakeBench state dict does not have the layout the converter expects."""


def strip_module(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
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


def _pointwise_4d(key: str, v: Tensor) -> Tensor:
    return v[:, :, None, None] if "pointwise" in key and v.ndim == 2 else v


def _pop_head(state: dict[str, Tensor], prefixes: tuple[str, ...], what: str) -> tuple[Tensor, Tensor]:
    for p in prefixes:
        if f"{p}weight" in state and f"{p}bias" in state:
            return two_way_to_logit(state.pop(f"{p}weight"), state.pop(f"{p}bias"), what)
    raise ConversionError(f"{what}: no classifier found under {list(prefixes)}")


def _drop(state: dict[str, Tensor], prefix: str) -> list[str]:
    dropped = [k for k in state if k.startswith(prefix)]
    for k in dropped:
        del state[k]
    return dropped


def _rehome(state: dict[str, Tensor], rules: list[tuple[str, str]], what: str) -> dict[str, Tensor]:
    """Rename every key by the first matching ``(source_prefix, target_prefix)`` rule; unmatched keys raise."""
    out, unknown = {}, []
    for k, v in state.items():
        for src, dst in rules:
            if k.startswith(src):
                out[dst + k[len(src) :]] = _pointwise_4d(k, v)
                break
        else:
            unknown.append(k)
    if unknown:
        raise ConversionError(f"{what}: {len(unknown)} keys of unknown layout, e.g. {sorted(unknown)[:5]}")
    return out


# ---------------------------------------------------------------------------------------------- per detector
def convert_xception(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """DeepfakeBench ``xception`` state dict -> our ``xception`` detector's state dict."""
    s = strip_module(state)
    w, b = _pop_head(s, ("backbone.last_linear.", "backbone.last_linear.1."), "DeepfakeBench xception")
    _drop(s, "backbone.adjust_channel.")
    out = _rehome(s, [("backbone.", "net.backbone.")], "DeepfakeBench xception")
    out["net.head.fc.weight"], out["net.head.fc.bias"] = w, b
    return out


_EFF_TOP = {"_conv_stem.": "conv_stem.", "_bn0.": "bn1.", "_conv_head.": "conv_head.", "_bn1.": "bn2."}
_EFF_EXPAND = {
    "_expand_conv.": "conv_pw.",
    "_bn0.": "bn1.",
    "_depthwise_conv.": "conv_dw.",
    "_bn1.": "bn2.",
    "_se_reduce.": "se.conv_reduce.",
    "_se_expand.": "se.conv_expand.",
    "_project_conv.": "conv_pwl.",
    "_bn2.": "bn3.",
}
_EFF_DS = {  # expansion-1 blocks (timm DepthwiseSeparableConv)
    "_depthwise_conv.": "conv_dw.",
    "_bn1.": "bn1.",
    "_se_reduce.": "se.conv_reduce.",
    "_se_expand.": "se.conv_expand.",
    "_project_conv.": "conv_pw.",
    "_bn2.": "bn2.",
}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(.+)$")


def convert_efficientnet_b4(
    state: Mapping[str, Tensor], stage_depths: tuple[int, ...] = B4_STAGE_DEPTHS
) -> dict[str, Tensor]:
    """DeepfakeBench ``efficientnetb4`` state dict -> our ``efficientnet_b4`` detector (timm names)."""
    what = "DeepfakeBench efficientnetb4"
    s = strip_module(state)
    w, b = _pop_head(s, ("backbone.last_layer.",), what)
    _drop(s, "backbone.adjust_channel.")
    starts = [sum(stage_depths[:i]) for i in range(len(stage_depths))]
    where = {starts[st] + j: (st, j) for st in range(len(stage_depths)) for j in range(stage_depths[st])}
    expanded = {i for i in where if f"backbone.efficientnet._blocks.{i}._expand_conv.weight" in s}
    out, unknown = {}, []
    for k, v in s.items():
        if not k.startswith("backbone.efficientnet."):
            unknown.append(k)
            continue
        name = k[len("backbone.efficientnet.") :]
        m = _BLOCK_KEY.match(name)
        if m:
            i, rest = int(m.group(1)), m.group(2)
            if i not in where:
                raise ConversionError(
                    f"{what}: block index {i} beyond the {sum(stage_depths)} blocks of B4 ({k})"
                )
            table = _EFF_EXPAND if i in expanded else _EFF_DS
            src = next((p for p in table if rest.startswith(p)), None)
            if src is None:
                unknown.append(k)
                continue
            st, j = where[i]
            out[f"net.backbone.blocks.{st}.{j}.{table[src]}{rest[len(src) :]}"] = v
            continue
        src = next((p for p in _EFF_TOP if name.startswith(p)), None)
        if src is None:
            unknown.append(k)
            continue
        out[f"net.backbone.{_EFF_TOP[src]}{name[len(src) :]}"] = v
    if unknown:
        raise ConversionError(f"{what}: {len(unknown)} keys of unknown layout, e.g. {sorted(unknown)[:5]}")
    out["net.head.fc.weight"], out["net.head.fc.bias"] = w, b
    return out


def convert_ucf(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """DeepfakeBench ``ucf`` state dict -> our ``ucf`` detector's state dict."""
    s = strip_module(state)
    for enc in ("encoder_f", "encoder_c"):
        _drop(s, f"{enc}.last_linear.")  # the Xception class always builds it; UCF never uses it
    rules = []
    for enc in ("encoder_f", "encoder_c"):
        rules += [(f"{enc}.adjust_channel.", f"{enc}.adjust."), (f"{enc}.", f"{enc}.backbone.")]
    rules += [
        ("block_spe.conv2d.", "block_spe.net."),
        ("block_sha.conv2d.", "block_sha.net."),
        ("head_spe.mlp.", "head_spe.mlp."),
        ("head_sha.mlp.", "head_sha.mlp."),
        ("con_gan.dconv_up3.", "decoder.up3."),
        ("con_gan.dconv_up2.", "decoder.up2."),
        ("con_gan.dconv_up1.", "decoder.up1."),
        ("con_gan.conv_last.", "decoder.conv_last."),
    ]
    return _rehome(s, rules, "DeepfakeBench ucf")


def _ucf_overrides(state: Mapping[str, Tensor]) -> dict[str, Any]:
    s = strip_module(state)
    try:
        return {
            "num_methods": int(s["head_spe.mlp.2.weight"].shape[0]) - 1,
            "feat_dim": int(s["encoder_f.adjust_channel.0.weight"].shape[0]),
        }
    except KeyError as e:
        raise ConversionError(f"DeepfakeBench ucf: missing key {e}; is this a UCF checkpoint?") from e


CONVERTERS: dict[str, Callable[[Mapping[str, Tensor]], dict[str, Tensor]]] = {
    "xception": convert_xception,
    "efficientnet_b4": convert_efficientnet_b4,
    "ucf": convert_ucf,
}

#: constructor arguments that rebuild DeepfakeBench's network for each detector
DEEPFAKEBENCH_BUILD: dict[str, dict[str, Any]] = {
    "xception": {"pretrained": False, "input_size": 256},
    "efficientnet_b4": {
        "pretrained": False,
        "arch": "tf_efficientnet_b4",
        "deepfakebench_compat": True,
        "mean": HALF,
        "std": HALF,
        "input_size": 256,
    },
    "ucf": {"pretrained": False, "input_size": 256},
}


def load_deepfakebench(name: str, source: str | Path | Mapping[str, Tensor], **overrides: Any) -> Detector:
    """Build detector ``name`` as DeepfakeBench ran it and load its checkpoint ``source`` strictly.

    ``source`` is a file (read with ``weights_only=True`` or safetensors) or an in-memory state dict.
    ``overrides`` go to the detector's constructor (e.g. recipe settings for fine-tuning). The returned
    detector has ``pretrained_loaded=True``.
    """
    if name not in CONVERTERS:
        raise ValueError(f"no DeepfakeBench converter for {name!r}; known: {sorted(CONVERTERS)}")
    state = read_state_dict(source) if isinstance(source, (str, Path)) else dict(source)
    converted = CONVERTERS[name](state)
    kwargs = dict(DEEPFAKEBENCH_BUILD[name])
    if name == "ucf":
        kwargs.update(_ucf_overrides(state))
    kwargs.update(overrides)
    model = create_detector(name, **kwargs)
    load_into(model, converted, what=f"DeepfakeBench {name} checkpoint", convert=lambda s: s)
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m detectors.convert_deepfakebench",
        description="Convert a DeepfakeBench checkpoint into a checkpoint of this suite (detectors.load_detector).",
    )
    p.add_argument("detector", choices=sorted(CONVERTERS))
    p.add_argument("source", type=Path, help="DeepfakeBench .pth (or .safetensors)")
    p.add_argument("output", type=Path, help="where to write the converted .ckpt")
    args = p.parse_args(argv)
    model = load_deepfakebench(args.detector, args.source)
    print(f"wrote {save_converted(model, args.output)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""DeepfakeBench checkpoints of UCF -> our ``ucf`` detector.

DeepfakeBench (SCLBD/DeepfakeBench) saves ``model.state_dict()`` of ``UCFDetector``, sometimes under
``module.`` (DataParallel/DDP). Its layout, from our reading of ``training/detectors/ucf_detector.py``:
``encoder_f.*`` / ``encoder_c.*`` (two Cadene Xceptions, see :mod:`detectors.timm_cnn.deepfakebench`, with
``adjust_channel`` used and ``last_linear`` unused), ``block_spe.conv2d.{0,2,4}``, ``block_sha.conv2d.{0,2,4}``,
``head_spe.mlp.{0,2}``, ``head_sha.mlp.{0,2}``, ``con_gan.{dconv_up3,dconv_up2,dconv_up1}.{0,2}``,
``con_gan.conv_last``.

Mapping to ours (see docs/ARCHITECTURE.md, "Baselines"):

============================================  ===============================================
DeepfakeBench                                 ours
============================================  ===============================================
``encoder_?.X`` / ``.adjust_channel``         ``encoder_?.backbone.X`` / ``encoder_?.adjust``
``block_???.conv2d``                          ``block_???.net``
``con_gan.dconv_upK`` / ``conv_last``         ``decoder.upK`` / ``decoder.conv_last``
``head_???.mlp``                              ``head_???.mlp`` (2-way ``head_sha`` kept: logit = l1 - l0)
============================================  ===============================================

Dropped on purpose (listed, never silent): the unused ``last_linear`` of both encoders. ``num_methods``
and ``feat_dim`` are read from the checkpoint's head and channel adjustment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from detectors.convert import (
    Conversion,
    ConversionError,
    ReleasedWeights,
    StateDict,
    drop,
    rehome,
    strip_module,
)


def convert_ucf(state: Mapping[str, Tensor]) -> StateDict:
    """DeepfakeBench ``ucf`` state dict -> our ``ucf`` detector's state dict."""
    s = strip_module(state)
    for enc in ("encoder_f", "encoder_c"):
        drop(s, f"{enc}.last_linear.")  # the Xception class always builds it; UCF never uses it
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
    return rehome(s, rules, "DeepfakeBench ucf")


def ucf_arguments(state: Mapping[str, Tensor]) -> dict[str, Any]:
    """``num_methods`` and ``feat_dim`` of the network a DeepfakeBench UCF checkpoint was trained as."""
    s = strip_module(state)
    try:
        return {
            "num_methods": int(s["head_spe.mlp.2.weight"].shape[0]) - 1,
            "feat_dim": int(s["encoder_f.adjust_channel.0.weight"].shape[0]),
        }
    except KeyError as e:
        raise ConversionError(f"DeepfakeBench ucf: missing key {e}; is this a UCF checkpoint?") from e


DEEPFAKEBENCH_UCF = Conversion(
    convert_ucf,
    build={"pretrained": False, "input_size": 256},
    infer=ucf_arguments,
    released=ReleasedWeights(
        "ucf_best.pth",
        "https://github.com/SCLBD/DeepfakeBench/releases/download/v1.0.1/ucf_best.pth",
        "FF++ c23 (DeepfakeBench protocol, release v1.0.1)",
    ),
)

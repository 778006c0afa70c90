"""DeepfakeBench checkpoints of Xception and EfficientNet-B4 -> our ``xception`` / ``efficientnet_b4``.

DeepfakeBench (SCLBD/DeepfakeBench) saves ``model.state_dict()`` of its detector classes, sometimes under
``module.`` (DataParallel/DDP). Their layouts, from our reading of ``training/networks/xception.py`` and
``training/networks/efficientnetb4.py``:

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

Mapping to ours (see docs/ARCHITECTURE.md, "Baselines"):

============================================  ===============================================
DeepfakeBench                                 ours
============================================  ===============================================
xception ``backbone.X``                       ``net.backbone.X`` (2-D pointwise -> 4-D)
xception ``backbone.last_linear[.1].W,b``     ``net.head.fc``: ``W[1] - W[0]``, ``b[1] - b[0]``
effnet ``backbone.efficientnet._blocks.i.*``  ``net.backbone.blocks.<stage>.<j>.*`` (renamed, see below)
effnet ``backbone.last_layer``                ``net.head.fc`` (``w_fake - w_real``)
============================================  ===============================================

Dropped on purpose (listed, never silent): the unused ``adjust_channel`` of both detectors.

The EfficientNet checkpoint is loaded into the ``reference="released"`` build of ``efficientnet_b4``
(``tf_efficientnet_b4`` with ``deepfakebench_compat=True``: DeepfakeBench's unpadded stem,
``efficientnet_pytorch``'s static paddings, BN eps 1e-3 / momentum 0.01; mean = std = 0.5), so scores match
DeepfakeBench's own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from detectors.convert import Conversion, ConversionError, StateDict, drop, pop_head, rehome, strip_module

#: blocks per stage of EfficientNet-B4 (efficientnet_pytorch's flat ``_blocks`` index -> timm stage, index)
B4_STAGE_DEPTHS = (2, 4, 4, 6, 6, 8, 2)


def convert_xception(state: Mapping[str, Tensor]) -> StateDict:
    """DeepfakeBench ``xception`` state dict -> our ``xception`` detector's state dict."""
    s = strip_module(state)
    w, b = pop_head(s, ("backbone.last_linear.", "backbone.last_linear.1."), "DeepfakeBench xception")
    drop(s, "backbone.adjust_channel.")
    out = rehome(s, [("backbone.", "net.backbone.")], "DeepfakeBench xception")
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
) -> StateDict:
    """DeepfakeBench ``efficientnetb4`` state dict -> our ``efficientnet_b4`` detector (timm names)."""
    what = "DeepfakeBench efficientnetb4"
    s = strip_module(state)
    w, b = pop_head(s, ("backbone.last_layer.",), what)
    drop(s, "backbone.adjust_channel.")
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


DEEPFAKEBENCH_XCEPTION = Conversion(convert_xception, build={"pretrained": False, "input_size": 256})
DEEPFAKEBENCH_EFFICIENTNET_B4 = Conversion(
    convert_efficientnet_b4,
    # reference="released" builds DeepfakeBench's network (EfficientNetB4.reference_arguments)
    build={"pretrained": False, "reference": "released", "input_size": 256},
)

"""``efficientnet_pytorch`` (lukemelas/EfficientNet-PyTorch) parameter names -> timm's EfficientNet names.

Both DeepfakeBench (``training/networks/efficientnetb4.py``) and SelfBlendedImages (``src/model.py``) build
their EfficientNet-B4 with ``efficientnet_pytorch``. Its layout, per block ``_blocks.<i>`` numbered flat
over the whole network:

==========================================  ================================================================
efficientnet_pytorch                        timm (``net.backbone.`` + ...)
==========================================  ================================================================
``_conv_stem`` / ``_bn0``                   ``conv_stem`` / ``bn1``
``_conv_head`` / ``_bn1``                   ``conv_head`` / ``bn2``
``_blocks.i._expand_conv`` / ``._bn0``      ``blocks.<stage>.<j>.conv_pw`` / ``.bn1`` (expansion > 1)
``_blocks.i._depthwise_conv`` / ``._bn1``   ``conv_dw`` / ``bn2`` (expansion > 1); ``conv_dw`` / ``bn1`` (= 1)
``_blocks.i._se_reduce`` / ``._se_expand``  ``se.conv_reduce`` / ``se.conv_expand``
``_blocks.i._project_conv`` / ``._bn2``     ``conv_pwl`` / ``bn3`` (expansion > 1); ``conv_pw`` / ``bn2`` (= 1)
==========================================  ================================================================

``<stage>, <j>`` come from the flat index and the blocks per stage (B4: 2, 4, 4, 6, 6, 8, 2); a block
without ``_expand_conv`` is an expansion-1 block (timm's ``DepthwiseSeparableConv``). The classifier
(``_fc``) is the caller's business.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from torch import Tensor

from detectors.convert import ConversionError, StateDict

#: blocks per stage of EfficientNet-B4 (depth multiplier 1.8 over B0's 1, 2, 2, 3, 3, 4, 1)
B4_STAGE_DEPTHS = (2, 4, 4, 6, 6, 8, 2)

_TOP = {"_conv_stem.": "conv_stem.", "_bn0.": "bn1.", "_conv_head.": "conv_head.", "_bn1.": "bn2."}
_EXPAND = {
    "_expand_conv.": "conv_pw.",
    "_bn0.": "bn1.",
    "_depthwise_conv.": "conv_dw.",
    "_bn1.": "bn2.",
    "_se_reduce.": "se.conv_reduce.",
    "_se_expand.": "se.conv_expand.",
    "_project_conv.": "conv_pwl.",
    "_bn2.": "bn3.",
}
_DEPTHWISE_SEPARABLE = {
    "_depthwise_conv.": "conv_dw.",
    "_bn1.": "bn1.",
    "_se_reduce.": "se.conv_reduce.",
    "_se_expand.": "se.conv_expand.",
    "_project_conv.": "conv_pw.",
    "_bn2.": "bn2.",
}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(.+)$")


def efficientnet_pytorch_to_timm(
    state: Mapping[str, Tensor],
    prefix: str,
    what: str,
    stage_depths: tuple[int, ...] = B4_STAGE_DEPTHS,
    target: str = "net.backbone.",
) -> tuple[StateDict, list[str]]:
    """Rename the ``efficientnet_pytorch`` keys under ``prefix`` to timm's under ``target``.

    Returns the renamed tensors and the keys NOT under ``prefix`` (for the caller to judge). A key under
    ``prefix`` that is not part of the layout above raises :class:`ConversionError` naming it.
    """
    starts = [sum(stage_depths[:i]) for i in range(len(stage_depths))]
    where = {starts[st] + j: (st, j) for st in range(len(stage_depths)) for j in range(stage_depths[st])}
    expanded = {i for i in where if f"{prefix}_blocks.{i}._expand_conv.weight" in state}
    out: StateDict = {}
    outside, unknown = [], []
    for k, v in state.items():
        if not k.startswith(prefix):
            outside.append(k)
            continue
        name = k[len(prefix) :]
        m = _BLOCK_KEY.match(name)
        if m:
            i, rest = int(m.group(1)), m.group(2)
            if i not in where:
                raise ConversionError(
                    f"{what}: block index {i} beyond the {sum(stage_depths)} blocks of the network ({k})"
                )
            table = _EXPAND if i in expanded else _DEPTHWISE_SEPARABLE
            src = next((p for p in table if rest.startswith(p)), None)
            if src is None:
                unknown.append(k)
                continue
            st, j = where[i]
            out[f"{target}blocks.{st}.{j}.{table[src]}{rest[len(src) :]}"] = v
            continue
        src = next((p for p in _TOP if name.startswith(p)), None)
        if src is None:
            unknown.append(k)
            continue
        out[f"{target}{_TOP[src]}{name[len(src) :]}"] = v
    if unknown:
        raise ConversionError(f"{what}: {len(unknown)} keys of unknown layout, e.g. {sorted(unknown)[:5]}")
    return out, outside

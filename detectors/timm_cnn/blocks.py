"""Building blocks of the timm CNN detectors: a timm feature extractor, OUR one-logit head, the weights'
normalisation, stochastic depth and DeepfakeBench's static "same" paddings.

Why not timm's own classifier: timm's ``legacy_xception.forward_head`` computes ``F.dropout(x)`` and then
discards the result, so its ``drop_rate`` never applies. Owning the head (dropout, then ``Linear(C, 1)``)
makes dropout real for every backbone and gives one state-dict layout (``net.backbone.*``, ``net.head.fc.*``)
that the DeepfakeBench converters target. UCF builds its two encoders with :func:`create_feature_backbone`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from detectors.weights import create_timm_backbone, strip_prefix

#: classifier weights of ImageNet files (timm, Cadene, lukemelas); never part of a feature extractor.
CLASSIFIER_PREFIXES = ("fc.", "last_linear.", "classifier.", "_fc.", "head.fc.")


class FakeLogitHead(nn.Module):
    """Dropout (really applied in training) then ``Linear(in_features, 1)``: the fake-logit ``[B, 1]``."""

    def __init__(self, in_features: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(in_features, 1)

    def forward(self, pooled: Tensor) -> Tensor:
        """Fake logit(s) of the pooled features, after dropout."""
        return self.fc(self.drop(pooled))


class BackboneWithHead(nn.Module):
    """``head(backbone(x))`` where the backbone returns pooled features ``[B, C]``."""

    def __init__(self, backbone: nn.Module, head: FakeLogitHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        """The head on the backbone's pooled features."""
        return self.head(self.backbone(x))


def adapt_imagenet_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Make an ImageNet weights file loadable into a timm feature extractor.

    Strips ``module.``/``model.`` prefixes, drops the classifier (:data:`CLASSIFIER_PREFIXES`) and turns the
    Cadene Xception's 2-D pointwise weights ``[out, in]`` into the 4-D ``[out, in, 1, 1]`` timm uses.
    """
    out = {}
    for k, v in strip_prefix(state).items():
        if k.startswith(CLASSIFIER_PREFIXES):
            continue
        if "pointwise" in k and v.ndim == 2:
            v = v[:, :, None, None]
        out[k] = v
    return out


def create_feature_backbone(
    arch: str,
    pretrained: bool,
    weights_path: str | Path | None = None,
    **kwargs: Any,
) -> tuple[nn.Module, bool]:
    """A timm model without classifier (``num_classes=0``), with the suite's weights policy.

    A local ``weights_path`` wins over the hub and is loaded strictly after :func:`adapt_imagenet_state`;
    when the hub is unreachable the model stays randomly initialised and ONE warning says so.
    Returns ``(model, pretrained_loaded)``.
    """
    return create_timm_backbone(
        arch, pretrained, weights_path, convert=adapt_imagenet_state, **{"num_classes": 0, **kwargs}
    )


def pretrained_norm(arch: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean/std the timm pretrained weights of ``arch`` were trained with."""
    import timm

    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None:
        raise ValueError(f"timm has no pretrained config for {arch!r}; pass mean= and std= explicitly")
    return tuple(cfg.mean), tuple(cfg.std)


class StaticPadConv2d(nn.Conv2d):
    """A convolution with a FIXED asymmetric zero padding ``(left, right, top, bottom)``.

    Reproduces ``efficientnet_pytorch``'s ``Conv2dStaticSamePadding``, whose TensorFlow-"same" padding is
    computed once for the native image size (380 px for B4) and then applied whatever the input size.
    Parameters are those of the plain ``nn.Conv2d`` (same state-dict keys).
    """

    def __init__(self, conv: nn.Conv2d, pad: tuple[int, int, int, int]) -> None:
        super().__init__(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=0,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=conv.bias is not None,
        )
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        """The convolution after TensorFlow-style static "same" padding."""
        return super().forward(F.pad(x, self.pad))


def tf_static_pad(size: int, kernel: int, stride: int) -> tuple[int, int, int, int]:
    """TensorFlow "same" padding for a square ``size`` input: ``(left, right, top, bottom)``."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return (total // 2, total - total // 2, total // 2, total - total // 2)


#: ``efficientnet_pytorch``'s batch-norm settings (``batch_norm_epsilon``, ``1 - batch_norm_momentum``)
DEEPFAKEBENCH_BN_EPS = 1e-3
DEEPFAKEBENCH_BN_MOMENTUM = 0.01


def make_deepfakebench_compatible(
    model: nn.Module, native_size: int = 380
) -> list[tuple[int, int, int, int]]:
    """Turn a timm ``tf_efficientnet_*`` into the network DeepfakeBench's ``efficientnetb4`` runs.

    From ``training/networks/efficientnetb4.py`` and ``efficientnet_pytorch`` 0.7.1 (its pinned version):

    * DeepfakeBench replaces ``efficientnet_pytorch``'s stem by a FRESHLY INITIALISED
      ``nn.Conv2d(3, 48, 3, stride=2, bias=False)`` without padding (the pretrained stem is discarded),
      so the stem here is a new, unpadded convolution too;
    * its strided depthwise convolutions keep the static TensorFlow-"same" padding computed for the
      native ``native_size`` input (``Conv2dStaticSamePadding``); their weights are kept;
    * its batch norms use ``eps = 1e-3`` and ``momentum = 1 - 0.99 = 0.01`` (PyTorch's convention).

    Stride-1 convolutions pad symmetrically in both libraries. Returns the paddings given to the strided
    depthwise convolutions, in order.
    """
    stem = model.conv_stem
    model.conv_stem = StaticPadConv2d(stem, (0, 0, 0, 0))
    size = math.ceil(native_size / stem.stride[0])  # efficientnet_pytorch's bookkeeping after its stem
    pads = []
    for stage in model.blocks:
        for block in stage:
            conv = block.conv_dw
            stride = conv.stride[0]
            if stride > 1:
                pad = tf_static_pad(size, conv.kernel_size[0], stride)
                block.conv_dw = StaticPadConv2d(conv, pad)
                block.conv_dw.load_state_dict(conv.state_dict())
                pads.append(pad)
            size = math.ceil(size / stride)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps, m.momentum = DEEPFAKEBENCH_BN_EPS, DEEPFAKEBENCH_BN_MOMENTUM
    return pads


def set_drop_path(model: nn.Module, rate: float) -> None:
    """Stochastic depth ("drop connect") growing linearly over the blocks: block ``i`` of ``n`` drops its
    residual branch with probability ``rate * i / n`` (EfficientNet's schedule, 0.2 in Tan & Le and in
    ``efficientnet_pytorch``). Only residual blocks use it; no parameters change."""
    from timm.layers import DropPath

    if rate == 0:
        return
    if not hasattr(model, "blocks") or not all(hasattr(b, "drop_path") for s in model.blocks for b in s):
        raise ValueError(
            f"drop_path_rate={rate} needs a timm EfficientNet backbone, got {type(model).__name__}"
        )
    blocks = [b for stage in model.blocks for b in stage]
    for i, block in enumerate(blocks):
        p = rate * i / len(blocks)
        block.drop_path = DropPath(p) if p > 0 else nn.Identity()

"""EfficientNet-B4 baseline (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
Networks", ICML 2019), as used for face-forgery detection by DeepfakeBench (Yan et al., NeurIPS 2023 D&B)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from datamodules.spec import DataSpec
from detectors.feature_head import TimmFeatureClassifier, pretrained_norm
from detectors.recipe import DEEPFAKEBENCH_CNN
from detectors.registry import register_detector


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
        return super().forward(F.pad(x, self.pad))


def tf_static_pad(size: int, kernel: int, stride: int) -> tuple[int, int, int, int]:
    """TensorFlow "same" padding for a square ``size`` input: ``(left, right, top, bottom)``."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return (total // 2, total - total // 2, total // 2, total - total // 2)


def make_deepfakebench_compatible(
    model: nn.Module, native_size: int = 380
) -> list[tuple[int, int, int, int]]:
    """Turn a timm ``tf_efficientnet_*`` into the network DeepfakeBench's ``efficientnetb4`` runs.

    DeepfakeBench replaces ``efficientnet_pytorch``'s stem by a fresh ``nn.Conv2d(3, 48, 3, stride=2)``
    WITHOUT padding, and its strided depthwise convolutions keep the static padding computed for the
    native ``native_size`` input. Stride-1 convolutions pad symmetrically in both libraries. Returns the
    paddings given to the strided depthwise convolutions, in order.
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
                pads.append(pad)
            size = math.ceil(size / stride)
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


@register_detector("efficientnet_b4")
class EfficientNetB4(TimmFeatureClassifier):
    """ImageNet EfficientNet-B4 fine-tuned end to end as a binary real/fake classifier.

    Architecture: timm ``efficientnet_b4`` (17.5M parameters without the ImageNet classifier), global
    average pooling, then our head: dropout and ``Linear(1792, 1)``. Input 256 px by default. The input
    normalisation is the one the pretrained weights were trained with, read from timm's pretrained config
    (ImageNet mean/std for ``efficientnet_b4``), and the pretrained stem is KEPT.

    Recipe (``default_recipe``): Adam lr 2e-4, weight decay 5e-4, batch 32, 10 epochs, 32 frames per video,
    no scheduler, augmentation on: DeepfakeBench ``training/config/detector/efficientnetb4.yaml``.
    Stochastic depth 0.2 over the blocks (``drop_path_rate``), as in Tan & Le and in the
    ``efficientnet_pytorch`` model DeepfakeBench trains (its default ``drop_connect_rate``).

    Deviations from DeepfakeBench, all deliberate:
    * DeepfakeBench discards the pretrained stem (it replaces ``_conv_stem`` by a freshly initialised,
      unpadded convolution) and feeds mean = std = 0.5 inputs to weights trained on ImageNet statistics;
      we keep the stem and the weights' own normalisation.
    * One logit with binary cross-entropy instead of 2-way softmax cross-entropy (same model up to a
      reparametrisation).

    ``deepfakebench_compat=True`` (with ``arch="tf_efficientnet_b4"``, ``mean``/``std`` 0.5) rebuilds
    DeepfakeBench's exact network (its unpadded stem and ``efficientnet_pytorch``'s static paddings), so its
    released checkpoints score as they do there; see :mod:`detectors.convert_deepfakebench`.
    """

    default_arch = "efficientnet_b4"
    default_input_size = 256
    default_recipe = DEEPFAKEBENCH_CNN.with_overrides(
        source="DeepfakeBench training/config/detector/efficientnetb4.yaml (Tan & Le ICML 2019 model)"
    )
    tiny_config: ClassVar[dict[str, Any]] = {
        "arch": "test_efficientnet",
        "pretrained": False,
        "input_size": 64,
        "drop_rate": 0.2,
    }

    def __init__(
        self,
        arch: str | None = None,
        pretrained: bool = True,
        weights_path: str | Path | None = None,
        input_size: int | None = None,
        drop_rate: float = 0.0,
        mean: tuple[float, float, float] | None = None,
        std: tuple[float, float, float] | None = None,
        deepfakebench_compat: bool = False,
        drop_path_rate: float = 0.2,
        **recipe: Any,
    ) -> None:
        super().__init__(
            arch=arch,
            pretrained=pretrained,
            weights_path=weights_path,
            input_size=input_size,
            drop_rate=drop_rate,
            **recipe,
        )
        if deepfakebench_compat:
            if not self.arch.startswith("tf_efficientnet"):
                raise ValueError(
                    f"deepfakebench_compat=True needs a TensorFlow-padded timm arch (tf_efficientnet_b4), got {self.arch!r}"
                )
            make_deepfakebench_compatible(self.net.backbone)
        set_drop_path(self.net.backbone, drop_path_rate)
        w_mean, w_std = pretrained_norm(self.arch)
        self.data_spec = DataSpec(
            input_size=self.data_spec.input_size,
            mean=tuple(mean) if mean is not None else w_mean,
            std=tuple(std) if std is not None else w_std,
        )

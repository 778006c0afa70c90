"""DeepfakeBench checkpoints of Xception, EfficientNet-B4, ResNet-34 (CNN-Aug) and SBI -> our timm CNNs.

DeepfakeBench (SCLBD/DeepfakeBench) saves ``model.state_dict()`` of its detector classes, sometimes under
``module.`` (DataParallel/DDP). Its release v1.0.1 publishes trained checkpoints of 13 detectors (FF++ c23
protocol), among them ``xception_best.pth``, ``effnb4_best.pth``, ``cnnaug_best.pth`` (ResNet-34, CNN-Aug) and
``ucf_best.pth`` (:mod:`detectors.ucf.deepfakebench`); it publishes no SBI checkpoint. Their layouts, from our
reading of ``training/networks/{xception,efficientnetb4,resnet34}.py`` and ``training/detectors/*``:

``xception`` (``XceptionDetector``)
    ``backbone.<Cadene Xception>`` (``conv1``, ``bn1``, ``conv2``, ``bn2``, ``block1..12.{skip,skipbn,rep.N}``,
    ``conv3``, ``bn3``, ``conv4``, ``bn4``; same names as timm ``legacy_xception``), the 2-way head
    ``backbone.last_linear.{weight,bias}`` (``last_linear.1.*`` when built with dropout) and an unused
    ``backbone.adjust_channel.*`` (built in every mode). ``pointwise`` weights are 4-D in trained
    checkpoints and 2-D in the Cadene ImageNet file.

``efficientnet_b4`` (``EfficientDetector``) and ``sbi_deepfakebench`` (``SBIDetector``, same backbone)
    ``backbone.efficientnet.<efficientnet_pytorch B4>`` (names: :mod:`detectors.timm_cnn.efficientnet_pytorch`);
    the 2-way head ``backbone.last_layer``; ``backbone.adjust_channel.*`` only in ``adjust_channel`` mode
    (unused, dropped). DeepfakeBench's ``sbi.yaml`` sets ``num_classes: 3``: such a 3-way head has no exact
    one-logit form and is refused (a 2-way SBI checkpoint converts).

``resnet34`` (``ResnetDetector``, CNN-Aug)
    ``backbone.resnet.<i>``: torchvision's ResNet-34 children without pooling and classifier as a
    ``Sequential`` (0 ``conv1``, 1 ``bn1``, 2 ReLU, 3 max-pool, 4-7 ``layer1``-``layer4``); the 2-way head
    ``backbone.fc``; ``backbone.adjust_channel.*`` only in ``adjust_channel`` mode (dropped).

Mapping to ours (see docs/ARCHITECTURE.md, "Baselines"):

============================================  ===============================================
DeepfakeBench                                 ours
============================================  ===============================================
xception ``backbone.X``                       ``net.backbone.X`` (2-D pointwise -> 4-D)
xception ``backbone.last_linear[.1].W,b``     ``net.head.fc``: ``W[1] - W[0]``, ``b[1] - b[0]``
effnet ``backbone.efficientnet.*``            ``net.backbone.*`` (efficientnet_pytorch -> timm names)
effnet ``backbone.last_layer``                ``net.head.fc`` (``w_fake - w_real``)
resnet ``backbone.resnet.{0,1,4,5,6,7}.*``    ``net.backbone.{conv1,bn1,layer1,layer2,layer3,layer4}.*``
resnet ``backbone.fc``                        ``net.head.fc`` (``w_fake - w_real``)
============================================  ===============================================

Dropped on purpose (listed, never silent): the unused ``adjust_channel`` of every detector.

The EfficientNet checkpoints load into ``tf_efficientnet_b4`` with ``deepfakebench_compat=True``
(DeepfakeBench's unpadded stem, ``efficientnet_pytorch``'s static paddings, BN eps 1e-3) and the config's
normalisation (``efficientnetb4.yaml``: mean = std = 0.5; ``sbi.yaml``: ImageNet), ResNet-34 with mean = std
= 0.5 (``resnet34.yaml``), so scores match DeepfakeBench's own.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor

from datamodules.spec import HALF, IMAGENET_MEAN, IMAGENET_STD
from detectors.convert import (
    Conversion,
    ConversionError,
    ReleasedWeights,
    StateDict,
    drop,
    pop_head,
    rehome,
    strip_module,
)
from detectors.timm_cnn.efficientnet_pytorch import B4_STAGE_DEPTHS, efficientnet_pytorch_to_timm


def convert_xception(state: Mapping[str, Tensor]) -> StateDict:
    """DeepfakeBench ``xception`` state dict -> our ``xception`` detector's state dict."""
    s = strip_module(state)
    w, b = pop_head(s, ("backbone.last_linear.", "backbone.last_linear.1."), "DeepfakeBench xception")
    drop(s, "backbone.adjust_channel.")
    out = rehome(s, [("backbone.", "net.backbone.")], "DeepfakeBench xception")
    out["net.head.fc.weight"], out["net.head.fc.bias"] = w, b
    return out


def convert_efficientnet_b4(
    state: Mapping[str, Tensor], stage_depths: tuple[int, ...] = B4_STAGE_DEPTHS
) -> StateDict:
    """DeepfakeBench ``efficientnetb4`` (or ``sbi``) state dict -> our EfficientNet-B4 detectors (timm names)."""
    what = "DeepfakeBench efficientnetb4"
    s = strip_module(state)
    w, b = pop_head(s, ("backbone.last_layer.",), what)
    drop(s, "backbone.adjust_channel.")
    out, outside = efficientnet_pytorch_to_timm(s, "backbone.efficientnet.", what, stage_depths)
    if outside:
        raise ConversionError(f"{what}: {len(outside)} keys of unknown layout, e.g. {sorted(outside)[:5]}")
    out["net.head.fc.weight"], out["net.head.fc.bias"] = w, b
    return out


#: ``backbone.resnet.<i>`` (torchvision ResNet children as a Sequential) -> timm ResNet names
_RESNET_CHILDREN = (
    ("0", "conv1"),
    ("1", "bn1"),
    ("4", "layer1"),
    ("5", "layer2"),
    ("6", "layer3"),
    ("7", "layer4"),
)


def convert_resnet34(state: Mapping[str, Tensor]) -> StateDict:
    """DeepfakeBench ``resnet34`` (CNN-Aug) state dict -> our ``resnet34`` detector's state dict."""
    what = "DeepfakeBench resnet34"
    s = strip_module(state)
    w, b = pop_head(s, ("backbone.fc.",), what)
    drop(s, "backbone.adjust_channel.")
    rules = [(f"backbone.resnet.{i}.", f"net.backbone.{name}.") for i, name in _RESNET_CHILDREN]
    out = rehome(s, rules, what)
    out["net.head.fc.weight"], out["net.head.fc.bias"] = w, b
    return out


_V101 = "https://github.com/SCLBD/DeepfakeBench/releases/download/v1.0.1/"
_FFPP = "FF++ c23 (DeepfakeBench protocol, release v1.0.1)"

DEEPFAKEBENCH_XCEPTION = Conversion(
    convert_xception,
    build={"pretrained": False, "input_size": 256},
    released=ReleasedWeights("xception_best.pth", _V101 + "xception_best.pth", _FFPP),
)
#: DeepfakeBench's EfficientNet-B4 network (``training/networks/efficientnetb4.py``)
DEEPFAKEBENCH_EFFICIENTNET_B4_BUILD = {
    "pretrained": False,
    "arch": "tf_efficientnet_b4",
    "deepfakebench_compat": True,
    "input_size": 256,
}
DEEPFAKEBENCH_EFFICIENTNET_B4 = Conversion(
    convert_efficientnet_b4,
    build={**DEEPFAKEBENCH_EFFICIENTNET_B4_BUILD, "mean": HALF, "std": HALF},
    released=ReleasedWeights("effnb4_best.pth", _V101 + "effnb4_best.pth", _FFPP),
)
DEEPFAKEBENCH_RESNET34 = Conversion(
    convert_resnet34,
    build={"pretrained": False, "arch": "resnet34", "mean": HALF, "std": HALF, "input_size": 256},
    released=ReleasedWeights("cnnaug_best.pth", _V101 + "cnnaug_best.pth", _FFPP),
)
#: DeepfakeBench's SBI (``sbi_detector.py``): its EfficientNet-B4 with ``sbi.yaml``'s ImageNet normalisation;
#: DeepfakeBench publishes no SBI checkpoint, so this reads checkpoints trained with its code.
DEEPFAKEBENCH_SBI = Conversion(
    convert_efficientnet_b4,
    build={**DEEPFAKEBENCH_EFFICIENTNET_B4_BUILD, "mean": IMAGENET_MEAN, "std": IMAGENET_STD},
)

"""Synthetic DeepfakeBench state dicts: the reference key names and shapes, derived independently of timm.

Written from our reading of DeepfakeBench's ``training/networks/xception.py`` (the Cadene/FaceForensics++
Xception), ``training/networks/efficientnetb4.py`` (``efficientnet_pytorch`` B4) and
``training/detectors/ucf_detector.py``: the layer tables below are the papers' architectures, expanded the
way those modules name their parameters. Values are random; only names and shapes matter.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

Shapes = dict[str, tuple[int, ...]]


def _bn(prefix: str, c: int) -> Shapes:
    s = {f"{prefix}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")}
    s[f"{prefix}.num_batches_tracked"] = ()
    return s


# --------------------------------------------------------------------------------------------- Xception
# (in, out, reps, stride, start_with_relu, grow_first) of blocks 1..12 (Chollet 2017, Cadene layout)
XCEPTION_BLOCKS = [(64, 128, 2, 2, False, True), (128, 256, 2, 2, True, True), (256, 728, 2, 2, True, True)]
XCEPTION_BLOCKS += [(728, 728, 3, 1, True, True)] * 8 + [(728, 1024, 2, 2, True, False)]


def xception_shapes(prefix: str, pointwise_2d: bool = False, head: str = "last_linear") -> Shapes:
    """Cadene Xception as DeepfakeBench builds it: features, 2-way ``last_linear`` and ``adjust_channel``."""

    def sep(p: str, cin: int, cout: int) -> Shapes:
        pw = (cout, cin) if pointwise_2d else (cout, cin, 1, 1)
        return {f"{p}.conv1.weight": (cin, 1, 3, 3), f"{p}.pointwise.weight": pw}

    s: Shapes = {f"{prefix}.conv1.weight": (32, 3, 3, 3), **_bn(f"{prefix}.bn1", 32)}
    s |= {f"{prefix}.conv2.weight": (64, 32, 3, 3), **_bn(f"{prefix}.bn2", 64)}
    for i, (cin, cout, reps, stride, start_relu, grow_first) in enumerate(XCEPTION_BLOCKS, start=1):
        b = f"{prefix}.block{i}"
        if cin != cout or stride != 1:
            s |= {f"{b}.skip.weight": (cout, cin, 1, 1), **_bn(f"{b}.skipbn", cout)}
        # rep = [relu, sep, bn] per repetition; the first relu is dropped when not start_with_relu
        if grow_first:
            convs = [(cin, cout)] + [(cout, cout)] * (reps - 1)
        else:
            convs = [(cin, cin)] * (reps - 1) + [(cin, cout)]
        offset = 1 if start_relu else 0
        for r, (a, o) in enumerate(convs):
            idx = 3 * r + offset
            s |= sep(f"{b}.rep.{idx}", a, o) | _bn(f"{b}.rep.{idx + 1}", o)
    s |= sep(f"{prefix}.conv3", 1024, 1536) | _bn(f"{prefix}.bn3", 1536)
    s |= sep(f"{prefix}.conv4", 1536, 2048) | _bn(f"{prefix}.bn4", 2048)
    s |= {f"{prefix}.{head}.weight": (2, 2048), f"{prefix}.{head}.bias": (2,)}
    s |= {f"{prefix}.adjust_channel.0.weight": (512, 2048, 1, 1), f"{prefix}.adjust_channel.0.bias": (512,)}
    s |= _bn(f"{prefix}.adjust_channel.1", 512)
    return s


# --------------------------------------------------------------------------------------------- EfficientNet-B4
# (kernel, stride, expand, in, out, repeats) of EfficientNet-B0 (Tan & Le 2019, Table 1), scaled for B4
B0_STAGES = [
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
]
B4_WIDTH, B4_DEPTH = 1.4, 1.8


def round_filters(c: int, width: float = B4_WIDTH, divisor: int = 8) -> int:
    new = max(divisor, int(c * width + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * c * width else new


def efficientnet_b4_shapes(prefix: str = "backbone.efficientnet") -> Shapes:
    """``efficientnet_pytorch`` EfficientNet-B4 parameter names and shapes (no ``_fc``)."""
    stem = round_filters(32)
    s: Shapes = {f"{prefix}._conv_stem.weight": (stem, 3, 3, 3), **_bn(f"{prefix}._bn0", stem)}
    i = 0
    for k, _stride, e, cin, cout, reps in B0_STAGES:
        cin, cout = round_filters(cin), round_filters(cout)
        for r in range(math.ceil(reps * B4_DEPTH)):
            inp = cin if r == 0 else cout
            mid = inp * e
            b = f"{prefix}._blocks.{i}"
            if e != 1:
                s |= {f"{b}._expand_conv.weight": (mid, inp, 1, 1), **_bn(f"{b}._bn0", mid)}
            s |= {f"{b}._depthwise_conv.weight": (mid, 1, k, k), **_bn(f"{b}._bn1", mid)}
            sq = max(1, int(inp * 0.25))
            s |= {f"{b}._se_reduce.weight": (sq, mid, 1, 1), f"{b}._se_reduce.bias": (sq,)}
            s |= {f"{b}._se_expand.weight": (mid, sq, 1, 1), f"{b}._se_expand.bias": (mid,)}
            s |= {f"{b}._project_conv.weight": (cout, mid, 1, 1), **_bn(f"{b}._bn2", cout)}
            i += 1
    head_in, head = round_filters(320), round_filters(1280)
    s |= {f"{prefix}._conv_head.weight": (head, head_in, 1, 1), **_bn(f"{prefix}._bn1", head)}
    return s


def efficientnet_detector_shapes() -> Shapes:
    return efficientnet_b4_shapes() | {
        "backbone.last_layer.weight": (2, 1792),
        "backbone.last_layer.bias": (2,),
    }


# --------------------------------------------------------------------------------------------- ResNet-34
# (blocks, width) of ResNet-34's four stages (He et al., CVPR 2016, Table 1), BasicBlock (two 3x3 convs)
RESNET34_STAGES = [(3, 64), (4, 128), (6, 256), (3, 512)]


def resnet34_shapes(prefix: str = "backbone.resnet") -> Shapes:
    """DeepfakeBench's ResNet-34 (CNN-Aug): torchvision's children without pooling/classifier as a
    ``Sequential`` (0 conv1, 1 bn1, 2 relu, 3 maxpool, 4-7 layer1-4) and the 2-way ``backbone.fc``."""
    s: Shapes = {f"{prefix}.0.weight": (64, 3, 7, 7), **_bn(f"{prefix}.1", 64)}
    cin = 64
    for stage, (blocks, width) in enumerate(RESNET34_STAGES):
        for b in range(blocks):
            p = f"{prefix}.{4 + stage}.{b}"
            inp = cin if b == 0 else width
            s |= {f"{p}.conv1.weight": (width, inp, 3, 3), **_bn(f"{p}.bn1", width)}
            s |= {f"{p}.conv2.weight": (width, width, 3, 3), **_bn(f"{p}.bn2", width)}
            if b == 0 and stage > 0:  # stride 2 and a width change: 1x1 projection shortcut
                s |= {f"{p}.downsample.0.weight": (width, inp, 1, 1), **_bn(f"{p}.downsample.1", width)}
        cin = width
    s |= {"backbone.fc.weight": (2, 512), "backbone.fc.bias": (2,)}
    return s


# --------------------------------------------------------------------------------------------- UCF
def ucf_shapes(num_methods: int = 4, feat: int = 512) -> Shapes:
    half = feat // 2
    s: Shapes = xception_shapes("encoder_f") | xception_shapes("encoder_c")
    for blk in ("block_spe", "block_sha"):
        for j, (o, i) in enumerate([(half, feat), (half, half), (half, half)]):
            s |= {f"{blk}.conv2d.{2 * j}.weight": (o, i, 1, 1), f"{blk}.conv2d.{2 * j}.bias": (o,)}
    for head, out in (("head_spe", num_methods + 1), ("head_sha", 2)):
        s |= {f"{head}.mlp.0.weight": (feat, half), f"{head}.mlp.0.bias": (feat,)}
        s |= {f"{head}.mlp.2.weight": (out, feat), f"{head}.mlp.2.bias": (out,)}
    for name, (cin, cout) in (("dconv_up3", (512, 256)), ("dconv_up2", (256, 128)), ("dconv_up1", (128, 64))):
        s |= {f"con_gan.{name}.0.weight": (cout, cin, 3, 3), f"con_gan.{name}.0.bias": (cout,)}
        s |= {f"con_gan.{name}.2.weight": (cout, cout, 3, 3), f"con_gan.{name}.2.bias": (cout,)}
    s |= {"con_gan.conv_last.weight": (3, 64, 1, 1), "con_gan.conv_last.bias": (3,)}
    return s


def materialise(shapes: Shapes, seed: int = 0, prefix: str = "") -> dict[str, Tensor]:
    """Random tensors of the given shapes (positive running variances, integer batch counters)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in shapes.items():
        if k.endswith("num_batches_tracked"):
            out[prefix + k] = torch.tensor(7)
        elif k.endswith("running_var"):
            out[prefix + k] = torch.rand(shape, generator=g) + 0.5
        else:
            out[prefix + k] = torch.randn(shape, generator=g) * 0.05
    return out

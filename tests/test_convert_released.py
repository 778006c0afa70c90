"""Released checkpoints -> our detectors: SelfBlendedImages' own (``FFc23.tar``) and DeepfakeBench's
ResNet-34 (CNN-Aug, ``cnnaug_best.pth``) and SBI formats.

The checkpoints are synthetic, with the exact key names and shapes the released code produces (derived in
tests/deepfakebench_reference.py from the layer tables and the released modules' naming, not from ours).
Forward references: for SBI and DeepfakeBench's EfficientNet-B4 / SBI, efficientnet_pytorch's EfficientNet-B4
forward written out from its equations (TensorFlow "same" padding, BN eps 1e-3, swish, squeeze-excitation,
identity skips; DeepfakeBench's unpadded stem and static paddings) reading the released names directly; for
ResNet-34, the network DeepfakeBench builds (torchvision's resnet34 children in a
``Sequential``, average pool, ``Linear(512, 2)``) with the checkpoint loaded strictly.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from datamodules.spec import HALF, IMAGENET_MEAN
from detectors.convert import ConversionError, load_converted, main, released_conversion, released_detectors
from detectors.timm_cnn.blocks import StaticPadConv2d
from tests.deepfakebench_reference import (
    B0_STAGES,
    B4_DEPTH,
    efficientnet_b4_shapes,
    efficientnet_detector_shapes,
    materialise,
    resnet34_shapes,
    round_filters,
)

SBI_HEAD = {"net._fc.weight": (2, 1792), "net._fc.bias": (2,)}


# ------------------------------------------------------------------------------- efficientnet_pytorch forward
def _same(x: Tensor, k: int, s: int) -> Tensor:
    """TensorFlow "same" padding (efficientnet_pytorch's Conv2dStaticSamePadding at its image size)."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def _static_pad(n: int, k: int, s: int) -> tuple[int, int]:
    """Conv2dStaticSamePadding's padding, computed once for a bookkept input side ``n``."""
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _conv(
    x: Tensor,
    w: Tensor,
    stride: int = 1,
    groups: int = 1,
    bias: Tensor | None = None,
    size: int | None = None,
) -> Tensor:
    """ "Same" convolution: for the actual input (``size=None``) or statically for a bookkept ``size``."""
    if size is None:
        x = _same(x, w.shape[-1], stride)
    else:
        x = F.pad(x, 2 * _static_pad(size, w.shape[-1], stride))
    return F.conv2d(x, w, bias, stride=stride, groups=groups)


def _bn(x: Tensor, sd: dict[str, Tensor], p: str) -> Tensor:
    return F.batch_norm(
        x,
        sd[f"{p}.running_mean"],
        sd[f"{p}.running_var"],
        sd[f"{p}.weight"],
        sd[f"{p}.bias"],
        False,
        0.0,
        1e-3,
    )


def _swish(x: Tensor) -> Tensor:
    return x * torch.sigmoid(x)


def efficientnet_pytorch_b4(
    sd: dict[str, Tensor], x: Tensor, p: str = "net", head: str = "net._fc", deepfakebench: bool = False
) -> tuple[Tensor, Tensor]:
    """``EfficientNet.forward`` of efficientnet_pytorch B4 in eval mode: (pooled features, 2-way logits).

    ``deepfakebench``: DeepfakeBench's build (training/networks/efficientnetb4.py): the stem replaced by
    ``nn.Conv2d(3, 48, 3, stride=2)`` (no padding) and every other convolution padded statically for the
    native 380 px, as efficientnet_pytorch bookkeeps it (``ceil(size / stride)`` after the stem and after
    each strided block), whatever the input size.
    """
    stem = sd[f"{p}._conv_stem.weight"]
    x = F.conv2d(x, stem, stride=2) if deepfakebench else _conv(x, stem, 2)
    x = _swish(_bn(x, sd, f"{p}._bn0"))
    size = math.ceil(380 / 2) if deepfakebench else None
    i = 0
    for _k, stride, e, cin, cout, reps in B0_STAGES:
        cin, cout = round_filters(cin), round_filters(cout)
        for r in range(math.ceil(reps * B4_DEPTH)):
            b, inp, s = f"{p}._blocks.{i}", cin if r == 0 else cout, stride if r == 0 else 1
            h = x
            if e != 1:
                h = _swish(_bn(_conv(h, sd[f"{b}._expand_conv.weight"]), sd, f"{b}._bn0"))
            h = _conv(h, sd[f"{b}._depthwise_conv.weight"], s, groups=h.shape[1], size=size)
            h = _swish(_bn(h, sd, f"{b}._bn1"))
            size = math.ceil(size / s) if size is not None else None
            z = F.adaptive_avg_pool2d(h, 1)
            z = _swish(F.conv2d(z, sd[f"{b}._se_reduce.weight"], sd[f"{b}._se_reduce.bias"]))
            h = torch.sigmoid(F.conv2d(z, sd[f"{b}._se_expand.weight"], sd[f"{b}._se_expand.bias"])) * h
            h = _bn(_conv(h, sd[f"{b}._project_conv.weight"]), sd, f"{b}._bn2")
            x = h + x if s == 1 and inp == cout else h  # id_skip
            i += 1
    x = _swish(_bn(_conv(x, sd[f"{p}._conv_head.weight"]), sd, f"{p}._bn1"))
    feats = x.mean(dim=(2, 3))
    return feats, feats @ sd[f"{head}.weight"].T + sd[f"{head}.bias"]


# ------------------------------------------------------------------------------- SelfBlendedImages
@pytest.fixture(scope="module")
def sbi_state() -> dict[str, Tensor]:
    return materialise(efficientnet_b4_shapes("net") | SBI_HEAD, seed=4)


@pytest.fixture(scope="module")
def sbi_file(sbi_state, tmp_path_factory):
    """``FFc23.tar`` as src/train_sbi.py saves it: the model, SAM's optimiser state and the epoch."""
    path = tmp_path_factory.mktemp("sbi") / "FFc23.tar"
    group = {"rho": 0.05, "lr": 4e-5, "momentum": 0.9, "dampening": 0, "weight_decay": 0, "nesterov": False}
    optimizer = {
        "state": {0: {"momentum_buffer": torch.zeros(3)}},
        "param_groups": [{**group, "params": [0]}],
    }
    torch.save({"model": sbi_state, "optimizer": optimizer, "epoch": 99}, path)
    return path


def test_sbi_release_loads_strictly_and_scores_as_the_released_network(sbi_state, sbi_file):
    model = load_converted("sbi", "sbi", sbi_file, input_size=64).double().eval()
    assert model.pretrained_loaded
    assert model.data_spec.mean == (0.0, 0.0, 0.0) and model.data_spec.std == (1.0, 1.0, 1.0)  # image / 255
    w, b = sbi_state["net._fc.weight"], sbi_state["net._fc.bias"]
    assert torch.equal(model.net.head.fc.weight[0], (w[1] - w[0]).double())
    assert torch.equal(model.net.head.fc.bias, (b[1] - b[0]).double().reshape(1))
    bb = model.net.backbone
    assert torch.equal(
        bb.blocks[5][7].conv_pwl.weight, sbi_state["net._blocks.29._project_conv.weight"].double()
    )
    assert torch.equal(
        bb.blocks[0][0].conv_pw.weight, sbi_state["net._blocks.0._project_conv.weight"].double()
    )

    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref_feats, ref_logits = efficientnet_pytorch_b4({k: v.double() for k, v in sbi_state.items()}, x)
    with torch.no_grad():
        feats, logits = bb(x), model.net(x).squeeze(-1)
    assert ref_feats.std() > 1e-2  # the comparison is not between vanishing activations
    torch.testing.assert_close(feats, ref_feats, rtol=1e-9, atol=1e-10)
    # the head's w_fake - w_real is taken in the checkpoint's float32: relative error ~1e-8
    torch.testing.assert_close(
        torch.sigmoid(logits), torch.softmax(ref_logits, 1)[:, 1], rtol=1e-6, atol=1e-9
    )


def test_sbi_release_refuses_anything_else(sbi_state):
    def convert(state):
        return load_converted("sbi", "sbi", state, input_size=64)

    with pytest.raises(ConversionError, match=r"_blocks\.3\._mystery"):
        convert(sbi_state | {"net._blocks.3._mystery.weight": torch.zeros(1)})
    with pytest.raises(ConversionError, match=r"outside the released network 'net.', e.g. \['cel.weight'\]"):
        convert(sbi_state | {"cel.weight": torch.zeros(1)})
    # flat block 5 = stage 1 (blocks 2-5), its 4th block
    missing = {k: v for k, v in sbi_state.items() if not k.startswith("net._blocks.5._depthwise_conv")}
    with pytest.raises(ValueError, match=r"1 missing keys \['net.backbone.blocks.1.3.conv_dw.weight'\]"):
        convert(missing)
    with pytest.raises(ValueError, match=r"1 shape mismatches \[\('net.backbone.bn1.weight'"):
        convert(sbi_state | {"net._bn0.weight": torch.zeros(47)})
    dfb = materialise(efficientnet_detector_shapes())  # a DeepfakeBench checkpoint is not SBI's format
    with pytest.raises(ConversionError, match=r"no classifier found under \['net._fc.'\]"):
        convert(dfb)


# ------------------------------------------------------------------------------- DeepfakeBench ResNet-34
class _DeepfakeBenchResNet34(nn.Module):
    """``ResnetDetector`` as DeepfakeBench builds it (training/networks/resnet34.py), named as it is saved."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Module()
        tv = torchvision.models.resnet34(weights=None)
        self.backbone.resnet = nn.Sequential(*list(tv.children())[:-2])
        self.backbone.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.backbone.fc = nn.Linear(512, 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.backbone.fc(self.backbone.avgpool(self.backbone.resnet(x)).flatten(1))


def test_deepfakebench_resnet34_loads_strictly_and_scores_as_deepfakebench():
    state = materialise(resnet34_shapes(), seed=5)
    reference = _DeepfakeBenchResNet34().double().eval()
    reference.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in state.items()})
    model = load_converted(
        "deepfakebench", "resnet34", {f"module.{k}": v for k, v in state.items()}, input_size=64
    )
    model = model.double().eval()
    assert model.data_spec.mean == HALF and model.data_spec.std == HALF  # resnet34.yaml
    w = state["backbone.fc.weight"]
    assert torch.equal(model.net.head.fc.weight[0], (w[1] - w[0]).double())
    assert torch.equal(
        model.net.backbone.layer3[0].downsample[1].running_var,
        state["backbone.resnet.6.0.downsample.1.running_var"].double(),
    )
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    with torch.no_grad():
        ours, theirs = torch.sigmoid(model.net(x).squeeze(-1)), torch.softmax(reference(x), 1)[:, 1]
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-12)
    with pytest.raises(ConversionError, match=r"keys of unknown layout, e.g. \['backbone.resnet.8.weight'\]"):
        load_converted("deepfakebench", "resnet34", state | {"backbone.resnet.8.weight": torch.zeros(1)})


# ------------------------------------------------------------------------------- DeepfakeBench SBI
def test_deepfakebench_sbi_converts_two_way_heads_and_refuses_sbi_yamls_three_way_head():
    state = materialise(efficientnet_detector_shapes(), seed=6)
    model = load_converted("deepfakebench", "sbi_deepfakebench", state)
    w = state["backbone.last_layer.weight"]
    assert torch.equal(model.net.head.fc.weight[0], w[1] - w[0])
    assert model.data_spec.mean == IMAGENET_MEAN and model.data_spec.paired  # sbi.yaml's normalisation
    stem = model.net.backbone.conv_stem
    assert isinstance(stem, StaticPadConv2d) and stem.pad == (0, 0, 0, 0)  # DeepfakeBench's fresh stem
    three = state | {
        "backbone.last_layer.weight": torch.zeros(3, 1792),
        "backbone.last_layer.bias": torch.zeros(3),
    }
    with pytest.raises(ConversionError, match="expected a 2-way head"):
        load_converted("deepfakebench", "sbi_deepfakebench", three)


@pytest.mark.parametrize("name", ["efficientnet_b4", "sbi_deepfakebench"])
def test_deepfakebench_efficientnet_scores_as_deepfakebenchs_network(name):
    state = materialise(efficientnet_detector_shapes(), seed=7)
    model = load_converted("deepfakebench", name, {f"module.{k}": v for k, v in state.items()}, input_size=64)
    model = model.double().eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    sd = {k: v.double() if v.is_floating_point() else v for k, v in state.items()}
    ref_feats, ref_logits = efficientnet_pytorch_b4(
        sd, x, p="backbone.efficientnet", head="backbone.last_layer", deepfakebench=True
    )
    with torch.no_grad():
        feats, logits = model.net.backbone(x), model.net(x).squeeze(-1)
    assert ref_feats.std() > 1e-2
    torch.testing.assert_close(feats, ref_feats, rtol=1e-9, atol=1e-10)
    # the head's w_fake - w_real is taken in the checkpoint's float32: relative error ~1e-8
    torch.testing.assert_close(
        torch.sigmoid(logits), torch.softmax(ref_logits, 1)[:, 1], rtol=1e-6, atol=1e-9
    )


# ------------------------------------------------------------------------------- declarations
def test_released_checkpoints_are_declared_once_with_distinct_file_names(capsys):
    declared = released_detectors()
    assert {"xception", "efficientnet_b4", "resnet34", "ucf", "sbi"} <= set(declared)
    assert declared["resnet34"].file == "cnnaug_best.pth" and declared["sbi"].file == "FFc23.tar"
    assert "sbi_deepfakebench" not in declared  # DeepfakeBench publishes no SBI checkpoint
    files = [r.file for r in declared.values()]
    assert len(files) == len(set(files)), "two detectors would read the same file in --weights-dir"
    assert all(
        r.url.startswith("https://") and r.url.endswith(("/" + r.file, "/view")) for r in declared.values()
    )
    assert released_conversion("sbi")[0] == "sbi" and released_conversion("xception")[0] == "deepfakebench"
    with pytest.raises(ValueError, match=r"'clip_linear' has no released checkpoint.*efficientnet_b4.*sbi"):
        released_conversion("clip_linear")
    assert main(["--released"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("sbi\tsbi\tFFc23.tar\t") for line in lines)
    assert any(line.startswith("resnet34\tdeepfakebench\tcnnaug_best.pth\t") for line in lines)

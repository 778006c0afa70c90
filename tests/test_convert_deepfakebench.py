"""DeepfakeBench checkpoints -> our detectors, on synthetic state dicts with the reference names and shapes.

The reference layouts come from tests/deepfakebench_reference.py, which derives them from the papers'
layer tables (not from timm), so a wrong mapping or a wrong shape fails here.
"""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from datamodules.spec import HALF
from detectors import load_detector
from detectors.convert import ConversionError, load_converted, save_converted
from detectors.timm_cnn.blocks import StaticPadConv2d
from detectors.timm_cnn.deepfakebench import convert_efficientnet_b4, convert_xception
from tests.deepfakebench_reference import (
    efficientnet_detector_shapes,
    materialise,
    ucf_shapes,
    xception_shapes,
)
from tests.helpers import make_batch


def load_deepfakebench(name, checkpoint, **overrides):
    return load_converted("deepfakebench", name, checkpoint, **overrides)


@pytest.fixture(scope="module")
def xception_state() -> dict[str, torch.Tensor]:
    # the Cadene 2-D pointwise layout, under DataParallel's "module." prefix
    return materialise(xception_shapes("backbone", pointwise_2d=True), seed=1, prefix="module.")


@pytest.fixture(scope="module")
def xception_model(xception_state, tmp_path_factory):
    src = tmp_path_factory.mktemp("dfb") / "xception_best.pth"  # a file, as DeepfakeBench saves it
    torch.save(xception_state, src)
    return load_deepfakebench("xception", src, input_size=64).eval()  # small inputs keep the test fast


def test_xception_loads_strictly_and_keeps_probabilities(xception_state, xception_model):
    m, s = xception_model, xception_state
    assert m.pretrained_loaded
    pw = s["module.backbone.block4.rep.1.pointwise.weight"]
    assert torch.equal(m.net.backbone.block4.rep[1].pointwise.weight, pw[:, :, None, None])
    assert torch.equal(m.net.backbone.bn4.running_var, s["module.backbone.bn4.running_var"])
    batch = make_batch(m.data_spec, n=2)
    with torch.no_grad():
        feats = m.net.backbone(batch.image)
        two_way = feats @ s["module.backbone.last_linear.weight"].T + s["module.backbone.last_linear.bias"]
        logits = m(batch).logits
    # sigmoid of our fake-logit = DeepfakeBench's softmax[:, 1]
    assert torch.allclose(torch.sigmoid(logits), torch.softmax(two_way, dim=1)[:, 1], atol=1e-5)


def test_xception_dropout_head_and_4d_pointwise_layouts_convert():
    shapes = xception_shapes("backbone", pointwise_2d=False, head="last_linear.1")
    out = convert_xception(materialise(shapes))
    assert out["net.head.fc.weight"].shape == (1, 2048)
    assert out["net.backbone.conv4.pointwise.weight"].ndim == 4
    assert not any("adjust_channel" in k or "last_linear" in k for k in out)


def test_unknown_and_missing_keys_and_bad_shapes_are_refused(xception_state):
    extra = dict(xception_state) | {"module.optimizer.step": torch.zeros(1)}
    with pytest.raises(ConversionError, match="optimizer.step"):
        convert_xception(extra)
    extra = dict(xception_state) | {"module.backbone.mystery.weight": torch.zeros(1)}
    with pytest.raises(ValueError, match=r"unexpected keys \['net.backbone.mystery.weight'\]"):
        load_deepfakebench("xception", extra)
    no_head = {k: v for k, v in xception_state.items() if "last_linear" not in k}
    with pytest.raises(ConversionError, match="no classifier"):
        convert_xception(no_head)
    three_way = dict(xception_state) | {
        "module.backbone.last_linear.weight": torch.zeros(3, 2048),
        "module.backbone.last_linear.bias": torch.zeros(3),
    }
    with pytest.raises(ConversionError, match="2-way head"):
        convert_xception(three_way)
    missing = {k: v for k, v in xception_state.items() if "block7.rep.4" not in k}
    with pytest.raises(ValueError, match=r"missing keys \['net.backbone.block7.rep.4"):
        load_deepfakebench("xception", missing)
    bad = dict(xception_state) | {"module.backbone.bn1.weight": torch.zeros(31)}
    with pytest.raises(ValueError, match="shape mismatches"):
        load_deepfakebench("xception", bad)


def test_converted_checkpoint_round_trips_through_load_detector(xception_model, tmp_path):
    ckpt = save_converted(xception_model, tmp_path / "xception.ckpt")
    again = load_detector(ckpt, expected="xception").eval()
    assert again.pretrained_loaded
    x = torch.randn(2, 3, 64, 64) * 0.5
    with torch.no_grad():
        assert torch.equal(again.net(x), xception_model.net(x))


class _Payload:
    """Unpickling this creates a directory: the proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickled_objects_are_never_loaded(tmp_path):
    path, marker = tmp_path / "evil.pth", tmp_path / "pwned"
    with path.open("wb") as f:
        pickle.dump({"backbone.conv1.weight": _Payload(str(marker))}, f)
    with pytest.raises(ValueError, match="refusing to load"):
        load_deepfakebench("xception", path)
    assert not marker.exists(), "the pickle payload was executed"


def test_efficientnet_b4_maps_efficientnet_pytorch_names_and_padding():
    state = materialise(efficientnet_detector_shapes(), seed=2)
    m = load_deepfakebench("efficientnet_b4", state).eval()
    bb = m.net.backbone
    # flat block 2 = stage 1, block 0 (expansion 6); flat block 1 = stage 0, block 1 (expansion 1)
    assert torch.equal(
        bb.blocks[1][0].conv_pw.weight, state["backbone.efficientnet._blocks.2._expand_conv.weight"]
    )
    assert torch.equal(bb.blocks[1][0].bn3.bias, state["backbone.efficientnet._blocks.2._bn2.bias"])
    assert torch.equal(
        bb.blocks[0][1].conv_pw.weight, state["backbone.efficientnet._blocks.1._project_conv.weight"]
    )
    assert torch.equal(
        bb.blocks[6][1].se.conv_expand.bias, state["backbone.efficientnet._blocks.31._se_expand.bias"]
    )
    assert torch.equal(bb.bn2.running_mean, state["backbone.efficientnet._bn1.running_mean"])
    w = state["backbone.last_layer.weight"]
    assert torch.equal(m.net.head.fc.weight[0], w[1] - w[0])
    # DeepfakeBench's network: unpadded stem, static paddings, BN eps 1e-3, inputs normalised with 0.5/0.5
    assert isinstance(bb.conv_stem, StaticPadConv2d) and bb.conv_stem.pad == (0, 0, 0, 0)
    assert bb.bn1.eps == 1e-3
    assert m.data_spec.mean == HALF and m.data_spec.std == HALF
    with torch.no_grad():
        fmap = bb.forward_features(torch.randn(1, 3, 256, 256))
    assert fmap.shape == (1, 1792, 8, 8)  # 256 -> 127 -> 63 -> 32 -> 16 -> 8 as in DeepfakeBench


def test_efficientnet_unknown_block_key_is_refused():
    state = materialise(efficientnet_detector_shapes())
    state["backbone.efficientnet._blocks.3._mystery.weight"] = torch.zeros(1)
    with pytest.raises(ConversionError, match="_mystery"):
        convert_efficientnet_b4(state)


@pytest.mark.parametrize("num_methods", [4, 2])
def test_ucf_loads_strictly_and_infers_its_heads(num_methods):
    state = materialise(ucf_shapes(num_methods=num_methods), seed=3, prefix="module.")
    m = load_deepfakebench("ucf", state).eval()
    assert m.num_methods == num_methods and m.head_spe.mlp[-1].out_features == num_methods + 1
    assert torch.equal(m.decoder.up3[2].weight, state["module.con_gan.dconv_up3.2.weight"])
    assert torch.equal(
        m.encoder_c.adjust[1].running_var, state["module.encoder_c.adjust_channel.1.running_var"]
    )
    assert torch.equal(
        m.encoder_f.backbone.block1.rep[0].pointwise.weight,
        state["module.encoder_f.block1.rep.0.pointwise.weight"],
    )
    # the released UCF adjusts Xception's pre-activation output (its features() stop at bn4)
    assert isinstance(m.encoder_f.backbone.act4, torch.nn.Identity)


def test_each_detector_declares_the_formats_it_reads():
    from detectors.convert import sources

    found = sources()  # other sources (effort, gend) are tested beside their detectors
    assert {"efficientnet_b4", "resnet34", "sbi_deepfakebench", "ucf", "xception"} <= set(
        found["deepfakebench"]
    )
    assert found["sbi"] == ["sbi"]
    assert found["forensics_adapter"] == [
        "forensics_adapter"
    ]  # the authors' release (forensics_adapter/released.py)
    with pytest.raises(
        ValueError, match=r"no 'deepfakebench' converter for 'sbi'.*efficientnet_b4.*resnet34"
    ):
        load_deepfakebench("sbi", {})


def test_command_line_converts_a_file(xception_state, tmp_path):
    from detectors.convert import main

    src = tmp_path / "xception_best.pth"
    torch.save(xception_state, src)
    assert main(["--source", "deepfakebench", "xception", str(src), str(tmp_path / "x.ckpt")]) == 0
    again = load_detector(tmp_path / "x.ckpt", expected="xception").eval()
    w = xception_state["module.backbone.last_linear.weight"]
    assert torch.equal(again.net.head.fc.weight[0], w[1] - w[0])
    with pytest.raises(SystemExit):
        main(["--source", "nope", "xception", str(src), str(tmp_path / "y.ckpt")])

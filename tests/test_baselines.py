"""Xception, EfficientNet-B4 and UCF: sizes against the published ones, heads, normalisation, weights."""

from __future__ import annotations

import warnings

import pytest
import timm
import torch

from datamodules.spec import HALF, IMAGENET_MEAN, IMAGENET_STD
from detectors import create_detector
from detectors.timm_cnn.blocks import FakeLogitHead, make_deepfakebench_compatible, tf_static_pad
from detectors.weights import PretrainedUnavailableWarning

#: published parameter counts (millions): Xception (Chollet 2017, without the ImageNet classifier),
#: EfficientNet-B4 (timm / Tan & Le without classifier), UCF (~47M, Effort's Table and our count)
PUBLISHED_M = {"xception": 20.8, "efficientnet_b4": 17.5, "ucf": 47.0}


@pytest.mark.parametrize("name", sorted(PUBLISHED_M))
def test_full_size_parameter_counts_match_the_published_ones(name):
    model = create_detector(name, pretrained=False)
    millions = model.num_trainable_parameters() / 1e6
    assert abs(millions - PUBLISHED_M[name]) / PUBLISHED_M[name] < 0.02, f"{name}: {millions:.2f}M"


@pytest.fixture(scope="module")
def full_xception():
    return create_detector("xception", pretrained=False, drop_rate=0.5, input_size=32)


def test_xception_head_dropout_really_applies(full_xception):
    m = full_xception
    assert m.net.backbone.drop_rate == 0  # timm's own (discarded) dropout is not used at all
    x = torch.randn(2, 3, 32, 32)  # the smallest input the full Xception takes (1x1 final map)
    m.train()
    with torch.no_grad():
        a, b = m.net(x), m.net(x)  # batch-norm in train mode is deterministic for the same batch
    assert not torch.equal(a, b), "dropout did not change the training output"
    m.eval()
    with torch.no_grad():
        assert torch.equal(m.net(x), m.net(x))
    assert m.data_spec.mean == HALF and m.data_spec.std == HALF


def test_fake_logit_head_drops_exactly_its_input():
    head = FakeLogitHead(4, drop_rate=0.5).train()
    with torch.no_grad():
        head.fc.weight.fill_(1.0)
        head.fc.bias.zero_()
        outs = {float(head(torch.ones(1, 4))) for _ in range(50)}
    # each kept unit is scaled by 2, so the sum is 2 x (number kept): values in {0, 2, 4, 6, 8}, several seen
    assert outs <= {0.0, 2.0, 4.0, 6.0, 8.0} and len(outs) > 1
    with pytest.raises(ValueError, match="drop_rate"):
        FakeLogitHead(4, drop_rate=1.0)


def test_efficientnet_normalisation_follows_the_weights():
    m = create_detector("efficientnet_b4", arch="test_efficientnet", pretrained=False)
    assert m.data_spec.mean == IMAGENET_MEAN and m.data_spec.std == IMAGENET_STD
    assert m.data_spec.input_size == 256
    cfg = timm.models.get_pretrained_cfg("test_convnext")  # another arch: its own statistics
    m2 = create_detector("efficientnet_b4", arch="test_convnext", pretrained=False, drop_path_rate=0.0)
    assert m2.data_spec.mean == tuple(cfg.mean)
    with pytest.raises(ValueError, match="tf_efficientnet_b4"):
        create_detector(
            "efficientnet_b4", arch="test_efficientnet", pretrained=False, deepfakebench_compat=True
        )


def test_local_imagenet_file_keeps_the_stem_and_drops_the_classifier(tmp_path):
    src = timm.create_model("test_efficientnet", num_classes=1000)
    path = tmp_path / "imagenet.pth"
    torch.save(src.state_dict(), path)
    m = create_detector("efficientnet_b4", arch="test_efficientnet", weights_path=str(path))
    assert m.pretrained_loaded
    assert torch.equal(m.net.backbone.conv_stem.weight, src.conv_stem.weight)  # the pretrained stem is kept


def test_cadene_xception_file_with_2d_pointwise_loads(full_xception, tmp_path):
    state = {k: v for k, v in full_xception.net.backbone.state_dict().items()}
    cadene = {k: (v[:, :, 0, 0] if "pointwise" in k else v) for k, v in state.items()}
    cadene |= {"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}
    path = tmp_path / "xception-b5690688.pth"
    torch.save(cadene, path)
    m = create_detector("xception", weights_path=str(path), input_size=32)
    assert m.pretrained_loaded
    w = m.net.backbone.block5.rep[1].pointwise.weight
    assert torch.equal(w, state["block5.rep.1.pointwise.weight"])


@pytest.mark.parametrize(
    "name,kw", [("xception", {"arch": "test_resnet"}), ("ucf", {"encoder_arch": "test_byobnet"})]
)
def test_offline_build_warns_once_and_records_random_init(name, kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = create_detector(name, pretrained=True, **kw)
    mine = [w for w in caught if issubclass(w.category, PretrainedUnavailableWarning)]
    assert len(mine) == 1, [str(w.message) for w in mine]
    assert "RANDOM" in str(mine[0].message)
    assert m.pretrained_loaded is False


def test_deepfakebench_static_paddings_are_efficientnet_pytorchs():
    # hand-computed TF "same" paddings for 380 px: stride-2 convs see 190 (k3), 95 (k5), 48 (k3), 24 (k5)
    assert [tf_static_pad(s, k, 2) for s, k in ((190, 3), (95, 5), (48, 3), (24, 5))] == [
        (0, 1, 0, 1),
        (2, 2, 2, 2),
        (0, 1, 0, 1),
        (1, 2, 1, 2),
    ]
    net = timm.create_model("tf_efficientnet_b4", num_classes=0)
    assert make_deepfakebench_compatible(net) == [(0, 1, 0, 1), (2, 2, 2, 2), (0, 1, 0, 1), (1, 2, 1, 2)]


def test_efficientnet_stochastic_depth_follows_the_paper_schedule():
    m = create_detector("efficientnet_b4", pretrained=False)
    blocks = [b for stage in m.net.backbone.blocks for b in stage]
    probs = [getattr(b.drop_path, "drop_prob", 0.0) for b in blocks]
    assert probs == pytest.approx([0.2 * i / 32 for i in range(32)])
    m0 = create_detector("efficientnet_b4", arch="test_efficientnet", pretrained=False, drop_path_rate=0.0)
    assert all(isinstance(b.drop_path, torch.nn.Identity) for s in m0.net.backbone.blocks for b in s)
    with pytest.raises(ValueError, match="drop_path_rate"):
        create_detector("efficientnet_b4", arch="test_convnext", pretrained=False)

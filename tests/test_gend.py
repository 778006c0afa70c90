"""GenD: losses against the released definitions, trainable parameters against the released count, the
released Hugging Face checkpoint (names and shapes derived from the released code, checked against the
published file size) against HF CLIP's equations, and where checkpoints are looked up."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from detectors import create_detector, load_detector
from detectors.clip_backbone import TINY_CLIP_CFG
from detectors.convert import ConversionError, load_converted, main
from detectors.gend.losses import alignment, uniformity
from detectors.gend.released import GEND_RELEASE, ReleasedWeightsUnavailable, locate_gend
from tests.clip_hf_reference import gend_shapes, hf_clip_pooled, materialise, plain_linear, safetensors_size
from tests.helpers import make_batch

V = TINY_CLIP_CFG["vision_cfg"]
TINY = {"width": V["width"], "layers": V["layers"], "patch": V["patch_size"], "image": V["image_size"]}
HEADS = V["width"] // V["head_width"]
PROJ = TINY_CLIP_CFG["embed_dim"]


# ----------------------------------------------------------------------------------- losses
def released_alignment(z, labels, alpha=2.0):
    """``src/losses/unifalign.py``: same-label pairs of the upper triangle, ``||x - y||_2 ** alpha``, mean."""
    if z.shape[0] < 2:
        return torch.tensor(0.0)
    idx = torch.nonzero((labels[:, None] == labels[None, :]).triu(diagonal=1))
    if idx.numel() == 0:
        return torch.tensor(0.0)
    return (z[idx[:, 0]] - z[idx[:, 1]]).norm(p=2, dim=1).pow(alpha).mean()


def released_uniformity(z, t=2.0, clip_value=1e-6):
    return torch.pdist(z, p=2).pow(2).mul(-t).exp().mean().clamp(min=clip_value).log()


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 12),
    d=st.integers(2, 16),
    seed=st.integers(0, 10_000),
    one_class=st.booleans(),
    alpha=st.sampled_from([1.0, 2.0, 3.0]),
)
def test_losses_equal_the_released_definitions(n, d, seed, one_class, alpha):
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)
    labels = torch.zeros(n, dtype=torch.long) if one_class else torch.randint(0, 2, (n,), generator=g)
    assert float(alignment(z, labels, alpha)) == pytest.approx(
        float(released_alignment(z, labels, alpha)), abs=1e-9
    )
    assert float(uniformity(z, 2.0)) == pytest.approx(float(released_uniformity(z, 2.0)), abs=1e-9)


def test_losses_on_degenerate_batches():
    z = F.normalize(torch.randn(1, 4), dim=1)
    assert alignment(z, torch.tensor([1])) == 0 and uniformity(z) == 0  # no pair at all
    labels = torch.tensor([0, 1, 0, 1])
    same = F.normalize(torch.ones(4, 3), dim=1).requires_grad_(True)
    u = uniformity(same)  # every embedding identical: exp(0) = 1, log 1 = 0, and a finite gradient
    assert u.item() == pytest.approx(0.0, abs=1e-6)
    (u + alignment(same, labels)).backward()
    assert torch.isfinite(same.grad).all()
    two = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # antipodal: distance 2
    assert alignment(two, torch.tensor([0, 0])).item() == pytest.approx(4.0)
    assert uniformity(two).item() == pytest.approx(-8.0)  # log exp(-2 * 4)
    assert uniformity(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]) * 10).item() == pytest.approx(
        torch.tensor(1e-6).log().item()
    )


def test_loss_is_the_released_weighted_sum():
    m = create_detector("gend", tiny=True)
    batch = make_batch(m.data_spec, n=6)
    out = m(batch)
    z = out.aux.embedding
    assert torch.allclose(z.norm(dim=1), torch.ones(6))
    losses = m.loss(batch, out)
    two_way = torch.stack([torch.zeros_like(out.logits), out.logits], dim=1)  # GenD's softmax CE
    ce = F.cross_entropy(two_way, batch.label)
    expected = ce + 0.1 * released_alignment(z, batch.label) + 0.5 * released_uniformity(z)
    assert torch.allclose(losses["loss"], expected, atol=1e-6)
    assert set(losses) == {"loss", "ce", "alignment", "uniformity"}


# ----------------------------------------------------------------------------------- parameters
def test_only_layer_norms_and_the_head_train_and_decay_follows_the_release():
    m = create_detector("gend", tiny=True)
    trainable = [n for n, p in m.named_parameters() if p.requires_grad]
    assert all(n.startswith("head.") or ".ln_" in n for n in trainable), trainable
    w, L = TINY["width"], TINY["layers"]
    assert m.num_trainable_parameters() == (2 * L + 2) * 2 * w + (w + 1)
    groups = m.param_groups()
    assert groups[0]["params"] == [m.head.weight] and "weight_decay" not in groups[0]
    assert groups[1]["weight_decay"] == 0.0 and len(groups[1]["params"]) == 2 * (2 * L + 2) + 1


def test_vit_l14_trainable_parameters_match_the_released_count():
    m = create_detector("gend", pretrained=None)
    layer_norms = (2 * 24 + 2) * 2 * 1024  # pre_layrnorm, 24 x (layer_norm1, layer_norm2), post_layernorm
    assert layer_norms == 102_400
    assert m.num_trainable_parameters() == layer_norms + 1024 + 1  # our one-logit head
    assert layer_norms + 2 * 1024 + 2 == 104_450  # the released 2-way head (~0.1M, "0.03 %" of the model)
    assert m.data_spec.input_size == 224 and m.visual.proj is None
    assert m.data_spec.paired is False  # the released sampler shuffles frames (see the class docstring)


# ----------------------------------------------------------------------------------- released checkpoint
def test_released_names_account_for_the_published_file_size(tmp_path):
    # the safetensors format: u64 header length, JSON header (metadata, then per tensor dtype / shape /
    # data offsets in name order), padded to 8 bytes, then the data. Check that arithmetic on a real file...
    small = materialise(gend_shapes(**TINY, proj_dim=PROJ))
    save_file(small, tmp_path / "model.safetensors", metadata={"format": "pt"})
    shapes = {k: tuple(v.shape) for k, v in small.items()}
    assert (tmp_path / "model.safetensors").stat().st_size == safetensors_size(shapes, {"format": "pt"})
    # ... then on the released names for CLIP ViT-L/14: huggingface.co/yermandy/GenD_CLIP_L_14 publishes
    # model.safetensors at 1,215,928,160 bytes (LFS pointer of the model's first commit)
    released = gend_shapes(width=1024, layers=24, patch=14, image=224, proj_dim=768)
    assert len(released) == 394
    assert safetensors_size(released, {"format": "pt"}) == 1_215_928_160


def _reference_prob(state, image):
    pooled = hf_clip_pooled(state, "feature_extractor.vision_model.", image, HEADS, plain_linear(state))
    z = F.normalize(pooled, p=2, dim=1)  # LinearProbe(normalize_inputs=True)
    logits = z @ state["model.linear.weight"].T + state["model.linear.bias"]
    return torch.softmax(logits, dim=1)[:, 1]  # GenD: softmax, fake = class 1


def _images(model, n=4):
    batch = make_batch(model.data_spec, n=n)
    batch.image = torch.randn(n, 3, TINY["image"], TINY["image"])
    return batch


@pytest.fixture
def released_state():
    return materialise(gend_shapes(**TINY, proj_dim=PROJ), seed=3)


def test_released_checkpoint_loads_strictly_and_scores_as_released(released_state, tmp_path):
    folder = tmp_path / "GenD_tiny"
    folder.mkdir()
    save_file(released_state, folder / "model.safetensors", metadata={"format": "pt"})
    (folder / "config.json").write_text(
        json.dumps({"backbone": "openai/clip-vit-large-patch14", "head": "LinearNorm"})
    )
    for source in (folder, folder / "model.safetensors", released_state):
        model = load_converted("gend", "gend", source, tiny=True).eval()
        assert model.pretrained_loaded
        batch = _images(model)
        with torch.no_grad():
            ours = torch.sigmoid(model(batch).logits)
            assert torch.allclose(ours, _reference_prob(released_state, batch.image), atol=1e-5)
    q = released_state["feature_extractor.vision_model.encoder.layers.2.self_attn.q_proj.weight"]
    v = released_state["feature_extractor.vision_model.encoder.layers.2.self_attn.v_proj.bias"]
    attn = model.visual.transformer.resblocks[2].attn
    assert torch.equal(attn.in_proj_weight[: TINY["width"]], q)
    assert torch.equal(attn.in_proj_bias[2 * TINY["width"] :], v)


def test_layouts_other_than_the_released_one_are_refused(released_state):
    extra = dict(released_state) | {
        "feature_extractor.vision_model.encoder.layers.0.self_attn.lora_A.weight": torch.zeros(2)
    }
    with pytest.raises(ConversionError, match="lora_A"):
        load_converted("gend", "gend", extra, tiny=True)
    no_proj = {k: v for k, v in released_state.items() if "visual_projection" not in k}
    with pytest.raises(ConversionError, match="visual_projection"):
        load_converted("gend", "gend", no_proj, tiny=True)
    no_k = {k: v for k, v in released_state.items() if "layers.1.self_attn.k_proj.bias" not in k}
    with pytest.raises(ConversionError, match=r"need q, k and v"):
        load_converted("gend", "gend", no_k, tiny=True)
    missing = {k: v for k, v in released_state.items() if "layers.3.layer_norm2" not in k}
    with pytest.raises(ValueError, match=r"missing keys \['visual.transformer.resblocks.3.ln_2"):
        load_converted("gend", "gend", missing, tiny=True)
    three_way = dict(released_state) | {
        "model.linear.weight": torch.zeros(3, TINY["width"]),
        "model.linear.bias": torch.zeros(3),
    }
    with pytest.raises(ConversionError, match="2-way head"):
        load_converted("gend", "gend", three_way, tiny=True)


def test_checkpoint_lookup(tmp_path, released_state, monkeypatch):
    folder = tmp_path / "snap"
    folder.mkdir()
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        locate_gend(folder)
    save_file(released_state, folder / "model.safetensors")
    assert locate_gend(folder) == folder / "model.safetensors"  # no config.json: the weights decide
    for config, match in [
        ({"backbone": "facebook/dinov3-vitl16-pretrain-lvd1689m", "head": "LinearNorm"}, "not CLIP"),
        ({"backbone": "openai/clip-vit-large-patch14", "head": "linear"}, "LinearNorm"),
    ]:
        (folder / "config.json").write_text(json.dumps(config))
        with pytest.raises(ConversionError, match=match):
            locate_gend(folder)
        with pytest.raises(ConversionError, match=match):  # the weights file named directly: its config too
            locate_gend(folder / "model.safetensors")
    with pytest.raises(FileNotFoundError, match="not a hub id"):
        locate_gend(tmp_path / "nothing" / "here")
    # a hub id offline with an empty cache: refused at once, naming the repository and the way out
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ReleasedWeightsUnavailable, match=r"'yermandy/GenD_CLIP_L_14'.*HF_HUB_OFFLINE=1.*hf download"
    ):
        locate_gend("yermandy/GenD_CLIP_L_14", cache_dir=tmp_path / "empty-cache")


def test_command_line_converts_a_folder_and_refuses_offline_hub_ids(
    tmp_path, released_state, monkeypatch, capsys
):
    folder = tmp_path / "GenD_tiny"
    folder.mkdir()
    save_file(released_state, folder / "model.safetensors", metadata={"format": "pt"})
    monkeypatch.setitem(GEND_RELEASE.build, "tiny", True)  # the command line builds what the folder holds
    assert main(["--source", "gend", "gend", str(folder), str(tmp_path / "gend.ckpt")]) == 0
    again = load_detector(tmp_path / "gend.ckpt", expected="gend").eval()
    batch = _images(again, n=2)
    with torch.no_grad():
        assert torch.allclose(
            torch.sigmoid(again(batch).logits), _reference_prob(released_state, batch.image), atol=1e-5
        )
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SystemExit):
        main(["--source", "gend", "gend", "yermandy/GenD_No_Such_Model", str(tmp_path / "x.ckpt")])
    assert "not in the local Hugging Face cache" in capsys.readouterr().err

"""Effort: the SVD split against numpy's SVD, the attention against open_clip's, trainable parameters against
the released count, released checkpoints (names and shapes derived from the released code) against HF CLIP's
equations."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from detectors import create_detector, load_detector
from detectors.clip_backbone import TINY_CLIP_CFG, create_clip
from detectors.convert import ConversionError, load_converted, main
from detectors.effort import svd_residual
from detectors.effort.released import EFFORT_RELEASE
from detectors.effort.svd_residual import SVDResidualLinear, apply_svd_residual, svd_split
from tests.clip_hf_reference import effort_linear, effort_shapes, hf_clip_pooled, materialise

V = TINY_CLIP_CFG["vision_cfg"]
TINY = {
    "width": V["width"],
    "layers": V["layers"],
    "patch": V["patch_size"],
    "image": V["image_size"],
}
HEADS = V["width"] // V["head_width"]


def test_svd_split_is_the_released_one():
    w = torch.randn(12, 12, dtype=torch.float64).float()
    main_, u, s, v = svd_split(w, residual_rank=2)
    U, S, Vh = np.linalg.svd(w.double().numpy())  # an independent SVD, singular values descending
    np.testing.assert_allclose(main_.numpy(), (U[:, :10] * S[:10]) @ Vh[:10], atol=1e-5)
    np.testing.assert_allclose(s.numpy(), S[10:], rtol=1e-5)
    # singular vectors are defined up to sign: compare the rank-2 residual itself
    np.testing.assert_allclose(((u * s) @ v).numpy(), (U[:, 10:] * S[10:]) @ Vh[10:], atol=1e-5)
    assert u.shape == (12, 2) and v.shape == (2, 12)
    with pytest.raises(ValueError, match="residual_rank"):
        svd_split(w, residual_rank=12)


def _towers():
    clip, _ = create_clip(tiny=True)
    visual = clip.visual.eval()
    visual.proj = None
    return visual, copy.deepcopy(visual)


def test_split_attention_reproduces_open_clip_tower():
    original, split = _towers()
    blocks = [copy.deepcopy(b.attn) for b in split.transformer.resblocks]
    apply_svd_residual(split, residual_rank=1)
    x = torch.randn(3, 3, TINY["image"], TINY["image"])
    with torch.no_grad():
        ref = original(x)
        # as initialised: weight_main + U S V = W, so the tower is unchanged
        assert torch.allclose(split(x), ref, atol=1e-5)
        # zero residual and weight_main = W exactly: only the attention code differs from open_clip's
        for block, attn in zip(split.transformer.resblocks, blocks, strict=True):
            slices = attn.in_proj_weight.split(TINY["width"]) + (attn.out_proj.weight,)
            for proj, w in zip(
                (block.attn.q_proj, block.attn.k_proj, block.attn.v_proj, block.attn.out_proj),
                slices,
                strict=True,
            ):
                proj.weight_main.copy_(w)
                proj.S_residual.zero_()
        err = (split(x) - ref).abs().max().item()
    assert err < 2e-6, err


def test_trainable_parameters_are_the_residuals_and_the_head():
    m = create_detector("effort", tiny=True, residual_rank=2)
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    suffixes = {n.rsplit(".", 1)[-1] for n in trainable}
    assert suffixes == {"U_residual", "S_residual", "V_residual", "weight", "bias"}
    assert {n for n in trainable if n.startswith("head.")} == {"head.weight", "head.bias"}
    w, L, k = TINY["width"], TINY["layers"], 2
    assert m.num_trainable_parameters() == 4 * L * (2 * w * k + k) + (w + 1)


def _shapes_only(weight, k):
    """Stands in for the SVD where only parameter shapes matter (real SVDs run in the tiny tests)."""
    out_f, in_f = weight.shape
    return weight, torch.zeros(out_f, k), torch.zeros(k), torch.zeros(k, in_f)


def test_vit_l14_trainable_parameters_match_the_released_count(monkeypatch):
    monkeypatch.setattr(svd_residual, "svd_split", _shapes_only)  # skip 96 SVDs of 1024 x 1024
    m = create_detector("effort", pretrained=None)
    residual = 4 * 24 * (2 * 1024 + 1)  # released: every q/k/v/out of 24 layers, U [1024,1] S [1] V [1,1024]
    assert residual == 196_704
    assert m.num_trainable_parameters() == residual + 1024 + 1  # our one-logit head
    assert residual + 2 * 1024 + 2 == 198_754  # the released 2-way head: "0.19M" in the paper
    assert m.data_spec.input_size == 224
    assert m.visual.proj is None


def test_vit_b16_variant_follows_the_released_rank_rule(monkeypatch):
    monkeypatch.setattr(svd_residual, "svd_split", _shapes_only)
    m = create_detector("effort", model_name="ViT-B-16-quickgelu", pretrained=None)
    q = m.visual.transformer.resblocks[0].attn.q_proj
    assert q.U_residual.shape == (768, 1) and q.weight_main.shape == (768, 768)  # r = 768 - 1
    assert m.num_trainable_parameters() == 4 * 12 * (2 * 768 + 1) + 768 + 1 == 74_545


# ----------------------------------------------------------------------------------- released checkpoints
def _reference_prob(state: dict, image: torch.Tensor, prefix: str = "") -> torch.Tensor:
    pooled = hf_clip_pooled(state, prefix + "backbone.", image, HEADS, effort_linear(state))
    logits = pooled @ state[prefix + "head.weight"].T + state[prefix + "head.bias"]
    return torch.softmax(logits, dim=1)[:, 1]  # EffortDetector: prob = softmax(pred)[:, 1]


@pytest.mark.parametrize(
    "source,principal,k,position_ids",
    [("effort", True, 1, True), ("effort", True, 2, False), ("deepfakebench", False, 1, False)],
)
def test_released_checkpoint_loads_strictly_and_scores_as_released(source, principal, k, position_ids):
    state = materialise(effort_shapes(**TINY, k=k, principal=principal, position_ids=position_ids), seed=k)
    model = load_converted(source, "effort", state, tiny=True).eval()
    assert model.pretrained_loaded and model.residual_rank == k
    q = model.visual.transformer.resblocks[1].attn.q_proj
    assert torch.equal(q.U_residual, state["backbone.encoder.layers.1.self_attn.q_proj.U_residual"])
    x = torch.randn(4, 3, TINY["image"], TINY["image"])
    with torch.no_grad():
        ours = torch.sigmoid(model(_batch(model, x)).logits)
        ref = _reference_prob(state, x)
    assert torch.allclose(ours, ref, atol=1e-5), (ours, ref)


def _batch(model, x):
    from tests.helpers import make_batch

    batch = make_batch(model.data_spec, n=x.shape[0])
    batch.image = x
    return batch


def test_each_source_refuses_the_other_layout():
    with_principal = materialise(effort_shapes(**TINY, principal=True))
    without = materialise(effort_shapes(**TINY, principal=False))
    with pytest.raises(ConversionError, match="use --source deepfakebench"):
        load_converted("effort", "effort", without, tiny=True)
    with pytest.raises(ConversionError, match="use --source effort"):
        load_converted("deepfakebench", "effort", with_principal, tiny=True)


def test_unknown_missing_and_misshapen_keys_are_refused():
    state = materialise(effort_shapes(**TINY, principal=False))
    extra = dict(state) | {"backbone.encoder.layers.0.self_attn.q_proj.lora_A": torch.zeros(1)}
    with pytest.raises(ValueError, match=r"unexpected keys \[.*lora_A"):
        load_converted("deepfakebench", "effort", extra, tiny=True)
    extra = dict(state) | {"optimizer.step": torch.zeros(1)}
    with pytest.raises(ConversionError, match="optimizer.step"):
        load_converted("deepfakebench", "effort", extra, tiny=True)
    missing = {k: v for k, v in state.items() if "layers.2.mlp.fc1" not in k}
    with pytest.raises(ValueError, match=r"missing keys \['visual.transformer.resblocks.2.mlp.c_fc"):
        load_converted("deepfakebench", "effort", missing, tiny=True)
    bad = dict(state) | {"backbone.post_layernorm.bias": torch.zeros(3)}
    with pytest.raises(ValueError, match="shape mismatches"):
        load_converted("deepfakebench", "effort", bad, tiny=True)
    ids = dict(state) | {"backbone.embeddings.position_ids": torch.arange(17).flip(0)[None]}
    with pytest.raises(ConversionError, match="position_ids"):
        load_converted("deepfakebench", "effort", ids, tiny=True)
    principal = materialise(effort_shapes(**TINY, principal=True))
    principal["backbone.encoder.layers.0.self_attn.v_proj.U_r"] = torch.zeros(TINY["width"], 3)
    with pytest.raises(ConversionError, match="do not factor weight_main"):
        load_converted("effort", "effort", principal, tiny=True)


def test_command_line_converts_a_released_file(tmp_path, monkeypatch):
    state = materialise(effort_shapes(**TINY, principal=True), seed=5)
    src = tmp_path / "effort_ff++.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, src)  # DDP-saved
    monkeypatch.setitem(EFFORT_RELEASE.build, "tiny", True)  # the command line builds what the file holds
    assert main(["--source", "effort", "effort", str(src), str(tmp_path / "effort.ckpt")]) == 0
    again = load_detector(tmp_path / "effort.ckpt", expected="effort").eval()
    assert again.pretrained_loaded
    x = torch.randn(2, 3, TINY["image"], TINY["image"])
    with torch.no_grad():
        assert torch.allclose(
            torch.sigmoid(again(_batch(again, x)).logits), _reference_prob(state, x), atol=1e-5
        )


def test_loss_is_cross_entropy_with_real_and_fake_terms_logged():
    m = create_detector("effort", tiny=True)
    from tests.helpers import make_batch

    batch = make_batch(m.data_spec, n=6)
    out = m(batch)
    losses = m.loss(batch, out)
    two_way = torch.stack(
        [torch.zeros_like(out.logits), out.logits], dim=1
    )  # sigmoid(l) = softmax([0, l])[1]
    ce = torch.nn.functional.cross_entropy(two_way, batch.label, reduction="none")
    assert torch.allclose(losses["loss"], ce.mean())
    assert torch.allclose(losses["real"], ce[batch.label == 0].mean())
    assert torch.allclose(losses["fake"], ce[batch.label == 1].mean())
    assert set(losses) == {"loss", "real", "fake"}


def test_residual_layer_applies_main_plus_residual():
    layer = SVDResidualLinear(5, 4, residual_rank=2)
    with torch.no_grad():
        for p in (layer.weight_main, layer.U_residual, layer.S_residual, layer.V_residual, layer.bias):
            p.copy_(torch.randn(p.shape))
    x = torch.randn(3, 5)
    w = layer.weight_main + layer.U_residual @ torch.diag(layer.S_residual) @ layer.V_residual
    assert torch.allclose(layer(x), x @ w.T + layer.bias, atol=1e-6)


def test_effort_declares_both_released_layouts():
    from detectors.convert import sources

    found = sources()
    assert found["effort"] == ["effort"] and "effort" in found["deepfakebench"]
    assert found["gend"] == ["gend"]

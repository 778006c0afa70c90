"""SFAM: routing by region prior, patch labels and loss, frozen CLIP, parameter budget, ablations, clip_linear."""

from __future__ import annotations

import math
import warnings

import numpy as np
import open_clip
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from datamodules.media.regions import REGIONS
from detectors import DataSpecError, create_detector
from detectors.clip_backbone import TINY_CLIP_CFG
from sfam.alignment import (
    PATCH_THRESHOLD,
    clip_patch_tokens,
    patch_alignment_loss,
    patch_labels,
    region_assignment,
)
from sfam.detector import SFAMDetector
from sfam.losses import contrastive_loss, region_labels
from sfam.moe import RegionMoE, SingleExpert, balance_loss
from sfam.prompts import DESCRIPTIONS, GLOBAL, TEMPLATES, PromptBank, TextTower
from tests.helpers import make_batch

R = len(REGIONS)
EYES, OUTSIDE = REGIONS.index("eyes"), REGIONS.index("outside")


def tiny(**kw) -> SFAMDetector:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_detector(kw.pop("name", "sfam"), tiny=True, **kw)


def trainable_names(det) -> set[str]:
    return {n for n, p in det.named_parameters() if p.requires_grad}


def random_assign(b: int = 2, n: int = 16, sharp: float = 3.0) -> torch.Tensor:
    return torch.softmax(torch.randn(b, n, R) * sharp, dim=-1)


# ---------------------------------------------------------------- routing
def test_infinite_prior_routes_every_patch_to_its_own_region_expert():
    moe = RegionMoE(dim=8, num_regions=R, hidden=4, prior_strength=math.inf)
    assert moe.router is None  # a learned term could not change the routing
    assign = random_assign()
    gates = moe(torch.randn(2, 16, 8), assign).gates
    assert torch.equal(gates, torch.nn.functional.one_hot(assign.argmax(-1), R).float())
    # Through the whole detector, on region masks from the data.
    det = tiny(prior_strength=math.inf).eval()
    batch = make_batch(det.data_spec, n=2)
    out = det(batch).aux.sfam
    own = region_assignment(batch.region_masks, det.model.geometry.grid).argmax(-1)
    assert torch.equal(out.gates.argmax(-1), own) and torch.equal(
        out.gates.amax(-1), torch.ones_like(own).float()
    )


def test_finite_prior_lets_the_router_cross_region_borders():
    moe = RegionMoE(dim=8, num_regions=R, hidden=4, prior_strength=1.0)
    gates = moe(torch.randn(2, 16, 8), random_assign()).gates
    assert (gates > 0).all() and torch.allclose(gates.sum(-1), torch.ones(2, 16))


def test_hard_prior_keeps_outside_tokens_away_from_the_eye_expert():
    torch.manual_seed(1)
    d, h = 8, 4
    moe = RegionMoE(dim=d, num_regions=R, hidden=h, prior_strength=1.0, prior_eps=0.0)
    with torch.no_grad():  # non-trivial experts and router (output layers start at zero)
        moe.experts.w2.normal_()
        moe.router.weight.normal_(std=3.0)
    assign = random_assign(1, 12)
    outside = torch.zeros(12, dtype=torch.bool)
    outside[:5] = True
    assign[0, outside] = torch.nn.functional.one_hot(torch.tensor(OUTSIDE), R).float()
    assign[0, 5:8, EYES] = 0.0  # inside the face but not touching the eyes
    assign = assign / assign.sum(-1, keepdim=True)
    x = torch.randn(1, 12, d, requires_grad=True)
    out = moe(x, assign)
    assert (out.gates[0, outside, EYES] == 0).all() and (out.gates[0, 5:8, EYES] == 0).all()
    assert (out.gates[0, 8:, EYES] > 0).all()  # the eye expert is in use elsewhere
    # The eye expert's weights do not influence outside tokens at all (value and gradient).
    out.tokens[0, outside].sum().backward()
    eye = slice(EYES * h, (EYES + 1) * h)
    assert (moe.experts.w1.grad[:, eye] == 0).all() and (moe.experts.w2.grad[eye] == 0).all()
    assert (moe.experts.b2.grad[EYES] == 0).all()
    assert moe.experts.w2.grad[eye].abs().sum() == 0 and moe.experts.w2.grad.abs().sum() > 0
    with torch.no_grad():
        moe.experts.w1[:, eye] += 5.0
        moe.experts.w2[eye] += 5.0
        again = moe(x, assign).tokens
    assert torch.equal(again[0, outside], out.tokens[0, outside])
    assert not torch.equal(again[0, 8:], out.tokens[0, 8:])
    # The soft prior (eps > 0) does give outside tokens a (tiny) eye weight: the hard prior is what stops it.
    soft = RegionMoE(dim=d, num_regions=R, hidden=h, prior_strength=1.0, prior_eps=1e-6)
    soft.load_state_dict(moe.state_dict())
    assert (soft(x, assign).gates[0, outside, EYES] > 0).all()


def test_hard_prior_in_the_detector_uses_the_pooled_region_masks():
    det = tiny(prior_eps=0.0).eval()
    batch = make_batch(det.data_spec, n=2)
    masks = torch.zeros_like(batch.region_masks)
    masks[:, OUTSIDE, :, :16] = 1.0  # left half of the 32 px image: outside the face
    masks[:, EYES, :, 16:] = 0.5
    masks[:, REGIONS.index("nose"), :, 16:] = 0.5
    batch.region_masks = masks
    gates = det(batch).aux.sfam.gates.unflatten(1, (4, 4))  # 4x4 grid of 8 px patches
    assert (gates[:, :, :2, EYES] == 0).all() and (gates[:, :, 2:, EYES] > 0).all()


def test_top_k_keeps_k_gates():
    moe = RegionMoE(dim=8, num_regions=R, hidden=4, top_k=2)
    gates = moe(torch.randn(2, 16, 8), random_assign(sharp=0.5)).gates
    assert ((gates > 0).sum(-1) == 2).all() and torch.allclose(gates.sum(-1), torch.ones(2, 16))
    with pytest.raises(ValueError, match="top_k"):
        RegionMoE(dim=8, num_regions=R, hidden=4, top_k=R + 1)


def test_balance_loss_is_one_when_balanced_and_switch_without_prior():
    assign = torch.nn.functional.one_hot(torch.arange(R).repeat(4), R).float()[None]  # every region equal
    assert balance_loss(assign, assign).item() == pytest.approx(1.0)
    skewed = torch.zeros_like(assign)
    skewed[..., 0] = 1.0  # every token to one expert
    assert balance_loss(skewed, assign).item() == pytest.approx(R)
    g = torch.softmax(torch.randn(3, 10, R), -1)
    f = torch.nn.functional.one_hot(g.argmax(-1), R).float().mean((0, 1))
    assert balance_loss(g, None).item() == pytest.approx((R * f * g.mean((0, 1))).sum().item(), rel=1e-5)
    # Prior-relative: an expert taking exactly its region's (unequal) share is balanced.
    prior = torch.softmax(torch.randn(1, 60, R) * 4, -1)
    hard = torch.nn.functional.one_hot(prior.argmax(-1), R).float()
    assert balance_loss(hard, hard).item() == pytest.approx(1.0, abs=1e-3)


# ---------------------------------------------------------------- CLIP tokens and region assignment
def test_patch_tokens_are_clip_tokens_projected_into_the_joint_space():
    clip = open_clip.CLIP(**TINY_CLIP_CFG).eval()
    image = torch.randn(2, 3, 32, 32)
    cls, tokens = clip_patch_tokens(clip.visual, image, [1, 3])
    clip.visual.output_tokens = True
    with torch.no_grad():
        pooled, ref = clip.visual(image)  # open_clip: last block, ln_post, NOT projected
    assert tokens.shape == (2, 2, 16, 32)
    torch.testing.assert_close(tokens[1], ref @ clip.visual.proj)
    torch.testing.assert_close(cls, pooled)


def test_region_assignment_area_pools_and_handles_empty_patches():
    masks = torch.zeros(1, R, 8, 8)
    masks[0, EYES, :4, :4] = 1.0  # patch (0,0) of a 2x2 grid: all eyes
    masks[0, OUTSIDE, :4, 4:6] = 1.0  # patch (0,1): half outside, half nothing
    masks[0, OUTSIDE, 4:, :] = 0.25  # bottom patches: a quarter outside, rest nothing
    a = region_assignment(masks, 2)
    assert torch.allclose(a.sum(-1), torch.ones(1, 4))
    assert a[0, 0, EYES] == 1 and a[0, 1, OUTSIDE] == 1 and a[0, 2, OUTSIDE] == 1
    masks[0, :, 4:, :] = 0.0
    assert torch.allclose(region_assignment(masks, 2)[0, 2:], torch.full((2, R), 1 / R))


def test_masks_at_another_resolution_than_the_image():
    det = tiny().train()
    batch = make_batch(det.data_spec, n=4)
    batch.region_masks = torch.nn.functional.interpolate(batch.region_masks, size=64, mode="nearest")
    batch.forgery_mask = torch.nn.functional.interpolate(batch.forgery_mask, size=16, mode="nearest")
    losses = det.loss(batch, det(batch))
    assert torch.isfinite(losses["loss"]) and {"patch", "region"} <= set(losses)


# ---------------------------------------------------------------- patch labels and losses
def test_patch_labels_follow_the_mask_rule():
    grid, p = 4, 8  # 32 px, 8 px patches: 64 pixels per patch
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, 0, 0, :7] = 1.0  # patch (0,0): 7/64 = 10.9% fake -> fake
    mask[:, 0, p, p : p + 6] = 1.0  # patch (1,1): 6/64 = 9.4% -> real
    mask[:, 0, 2 * p : 3 * p, 0:p] = 0.1  # patch (2,0): all pixels below 40/255 -> real
    mask[:, 0, 3 * p : 4 * p, 3 * p : 4 * p] = 0.2  # patch (3,3): all pixels above 40/255 -> fake
    y = patch_labels(mask, torch.tensor([1, 0]), grid)
    expected = torch.zeros(grid * grid)
    expected[[0, 15]] = 1.0
    assert torch.equal(y[0], expected)
    assert torch.equal(y[1], torch.zeros(grid * grid))  # a real image is all real whatever its mask
    assert 6 / 64 < PATCH_THRESHOLD < 7 / 64


@settings(max_examples=25, deadline=None)
@given(
    grid=st.integers(1, 5),
    patch=st.integers(1, 6),
    seed=st.integers(0, 10_000),
    fake=st.booleans(),
)
def test_patch_labels_match_a_numpy_block_reference(grid, patch, seed, fake):
    side = grid * patch
    rng = np.random.default_rng(seed)
    mask = rng.random((side, side)) * (rng.random((side, side)) < rng.random())
    blocks = (mask > 40 / 255).reshape(grid, patch, grid, patch).mean(axis=(1, 3))
    expected = (blocks > 0.10).reshape(-1) * float(fake)
    got = patch_labels(torch.from_numpy(mask)[None, None].float(), torch.tensor([int(fake)]), grid)
    np.testing.assert_array_equal(got[0].numpy(), expected)


def test_patch_loss_is_zero_for_a_perfect_prediction_and_uses_the_mask_labels():
    det = tiny().train()
    batch = make_batch(det.data_spec, n=4)  # fakes carry a centred square mask
    out = det(batch)
    s = out.aux.sfam
    y = patch_labels(batch.forgery_mask, batch.label, det.model.geometry.grid)
    assert y.sum() > 0 and (y.sum(1)[batch.label == 0] == 0).all()
    s.patch_logits = torch.stack([-30 * (2 * y - 1), 30 * (2 * y - 1)], dim=-1)  # (real, fake) logits
    assert det.loss(batch, out)["patch"].item() < 1e-6
    batch.forgery_mask = 1 - batch.forgery_mask  # same prediction, other mask: other labels
    assert det.loss(batch, out)["patch"].item() > 10
    assert patch_alignment_loss(s.patch_logits, y, dice_weight=0.0).item() < 1e-6


def test_region_labels_and_contrastive_loss():
    masks = torch.zeros(2, R, 8, 8)
    masks[:, EYES, :4] = 1.0
    masks[:, OUTSIDE, 4:] = 1.0
    forgery = torch.zeros(2, 1, 8, 8)
    forgery[:, :, :4, :] = 1.0  # the eye half is forged
    y = region_labels(forgery, masks, torch.tensor([1, 0]))
    assert y[0].tolist() == [1.0 if r == EYES else 0.0 for r in range(R)] and y[1].sum() == 0
    text = torch.nn.functional.normalize(torch.randn(2, 16), dim=-1)
    label = torch.tensor([0, 1, 1])
    perfect = contrastive_loss(text[label], text, label, torch.tensor(100.0))
    wrong = contrastive_loss(text[1 - label], text, label, torch.tensor(100.0))
    assert perfect.item() < wrong.item()


# ---------------------------------------------------------------- frozen CLIP, training
def test_clip_is_frozen_and_bitwise_unchanged_after_steps():
    det = tiny()
    det.train()
    visual = det.model.visual
    assert not visual.training and all(not p.requires_grad for p in visual.parameters())
    before = {k: v.clone() for k, v in visual.state_dict().items()}
    text_before = det.model.prompts.text.clone()
    opt = det.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    optimised = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not optimised & {id(p) for p in visual.parameters()}
    batch = make_batch(det.data_spec, n=4)
    for _ in range(3):
        opt.zero_grad()
        det.loss(batch, det(batch))["loss"].backward()
        opt.step()
    assert all(torch.equal(v, before[k]) for k, v in visual.state_dict().items())
    assert torch.equal(det.model.prompts.text, text_before)


def test_one_step_lowers_the_total_loss_on_a_fixed_batch():
    # The recipe's optimiser and learning rate (AdamW 1e-4); the loss keeps falling for two more steps.
    det = tiny()
    det.train()
    batch = make_batch(det.data_spec, n=8)
    opt = det.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = det.loss(batch, det(batch))["loss"]
        losses.append(loss.item())
        loss.backward()
        opt.step()
    with torch.no_grad():
        losses.append(det.loss(batch, det(batch))["loss"].item())
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses


@pytest.mark.parametrize("kw", [{}, {"n_ctx": 2, "top_k": 2, "prior_eps": 0.0}])
def test_bf16_autocast_training_step_is_finite(kw):
    det = tiny(**kw)
    det.train()
    batch = make_batch(det.data_spec, n=4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = det.loss(batch, det(batch))
    losses["loss"].backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert all(torch.isfinite(p.grad).all() for p in det.trainable_parameters())


def test_learnable_context_trains_only_the_context():
    det = tiny(n_ctx=2)
    prompts = det.model.prompts
    assert prompts.tower is not None and not prompts.tower.training
    assert {n for n in trainable_names(det) if n.startswith("model.prompts")} == {"model.prompts.ctx"}
    det.train()
    batch = make_batch(det.data_spec, n=4)
    det.loss(batch, det(batch))["loss"].backward()
    assert prompts.ctx.grad is not None and prompts.ctx.grad.abs().sum() > 0
    region_text, global_text = prompts()
    assert region_text.shape == (R, 2, det.model.geometry.embed_dim) and global_text.shape[0] == 2


def test_text_tower_truncation_is_exact():
    clip = open_clip.CLIP(**TINY_CLIP_CFG)
    tokens = open_clip.get_tokenizer("ViT-B-16")(["a photo of a real face.", "blurry eyes"])
    with torch.no_grad():
        ours = TextTower(clip)(tokens)
        ref = clip.encode_text(tokens)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_prompt_bank_averages_normalised_sentences_per_region_and_class():
    clip = open_clip.CLIP(**TINY_CLIP_CFG)
    bank = PromptBank(clip)
    region_text, global_text = bank()
    assert region_text.shape == (R, 2, 32) and global_text.shape == (2, 32)
    tok = open_clip.get_tokenizer("ViT-B-16")
    for name, got in (("mouth", region_text[REGIONS.index("mouth")]), (GLOBAL, global_text)):
        for c, cls in enumerate(("real", "fake")):
            sentences = [t.format(d) for d in DESCRIPTIONS[name][cls] for t in TEMPLATES]
            with torch.no_grad():
                ref = torch.nn.functional.normalize(clip.encode_text(tok(sentences)), dim=-1).mean(0)
            torch.testing.assert_close(
                got[c], torch.nn.functional.normalize(ref, dim=0), atol=1e-5, rtol=1e-5
            )
    assert "text" in dict(bank.named_buffers()) and not list(bank.parameters())


# ---------------------------------------------------------------- parameters and ablations
def _expected_trainable(d: int, r: int, n_layers: int, alignment=True, moe=True) -> int:
    """Trainable parameters from the design, computed independently of the modules."""
    a, h = d // 4, d // 2
    ffn = d * h + h + h * d + d
    n = d + 1  # prompt-initialised linear head
    if alignment or moe:
        n += n_layers + 3 * d  # layer fusion + attention pool (LN + query)
    if alignment:
        n += 2 * d + (d * a + a) + (a * d + d) + 1  # LN + bottleneck + alpha
    if moe:
        n += 2 * d + (d * r + r) + r * ffn + ffn + (r * d + r)  # LN, router, experts, shared, region head
    elif alignment:
        n += 2 * d + ffn  # single region-agnostic expert
    return n


def test_trainable_parameters_on_full_vit_b16(monkeypatch):
    # Prompt encoding on the full text tower takes ~10 s on 2 cores and does not change the count.
    monkeypatch.setattr(TextTower, "forward", lambda self, tokens, ctx=None: torch.zeros(len(tokens), 512))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = create_detector("sfam", pretrained=None)
    geo = det.model.geometry
    assert (geo.grid, geo.width, geo.embed_dim, geo.layers) == (14, 768, 512, 12)
    assert det.model.layers == (7, 11) and det.data_spec.input_size == 224
    n = det.num_trainable_parameters()
    print(f"\nSFAM trainable parameters on ViT-B/16: {n:,} ({n / 1e6:.2f}M)")
    assert n == _expected_trainable(512, R, 2)
    # The design's components (7 FFN experts 512-256-512, a 512-128-512 adapter, heads) sum to ~1.98M;
    # see sfam/README.md for why this is below the design's quoted "about 2.5-3M".
    assert 1.9e6 < n < 2.1e6
    frozen = sum(p.numel() for p in det.parameters() if not p.requires_grad)
    assert frozen == sum(p.numel() for p in det.model.visual.parameters())  # text tower not kept


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({}, {"alignment": True, "moe": RegionMoE, "router": True, "region_head": True}),
        ({"alignment": False}, {"alignment": False, "moe": RegionMoE, "router": True, "region_head": True}),
        ({"moe": False}, {"alignment": True, "moe": SingleExpert, "router": False, "region_head": False}),
        ({"region_prior": False}, {"alignment": True, "moe": RegionMoE, "router": True, "region_head": True}),
        (
            {"alignment": False, "moe": False},
            {"alignment": False, "moe": None, "router": False, "region_head": False},
        ),
    ],
)
def test_ablation_switches_change_the_architecture(kw, expected):
    det = tiny(**kw)
    m, geo = det.model, det.model.geometry
    assert (m.alignment is not None) == expected["alignment"]
    assert (type(m.moe) if m.moe is not None else None) is expected["moe"]
    assert (isinstance(m.moe, RegionMoE) and m.moe.router is not None) == expected["router"]
    assert (m.region_head is not None) == expected["region_head"]
    names = trainable_names(det)
    assert any(n.startswith("model.alignment.") for n in names) == expected["alignment"]
    assert det.num_trainable_parameters() == _expected_trainable(
        geo.embed_dim, R, len(m.layers), kw.get("alignment", True), kw.get("moe", True)
    )
    batch = make_batch(det.data_spec, n=2)
    aux = det.eval()(batch).aux
    assert (aux.patch_fakeness is not None) == expected["alignment"]
    assert (aux.region_scores is not None) == expected["region_head"]
    both_off = not kw.get("alignment", True) and not kw.get("moe", True)
    assert det.data_spec.region_masks == (not both_off) and det.data_spec.forgery_masks == (not both_off)


def test_region_prior_off_ignores_the_masks_in_routing():
    on, off = tiny(), tiny(region_prior=False)
    assert on.model.moe.prior_strength == 1.0 and off.model.moe.prior_strength == 0.0
    assert trainable_names(on) == trainable_names(off)
    x, a = torch.randn(2, 16, on.model.geometry.embed_dim), random_assign()
    g_off = off.model.moe.route(x, a)
    assert torch.equal(g_off, off.model.moe.route(x, random_assign()))
    assert not torch.equal(on.model.moe.route(x, a), on.model.moe.route(x, random_assign()))


def test_aux_maps_have_the_grid_and_region_shapes():
    det = tiny().eval()
    batch = make_batch(det.data_spec, n=3)
    aux = det(batch).aux
    g = det.model.geometry.grid
    assert aux.patch_fakeness.shape == (3, g, g) and aux.region_scores.shape == (3, R)
    for k in ("patch_fakeness", "region_scores"):
        assert ((getattr(aux, k) >= 0) & (getattr(aux, k) <= 1)).all()


def test_clip_linear_is_sfam_with_both_modules_off():
    probe, off = tiny(name="clip_linear"), tiny(alignment=False, moe=False)
    assert trainable_names(probe) == {"model.head.weight", "model.head.bias"} == trainable_names(off)
    shapes = {k: v.shape for k, v in probe.state_dict().items()}
    assert shapes == {k: v.shape for k, v in off.state_dict().items()}
    off.load_state_dict(probe.state_dict())
    batch = make_batch(probe.data_spec, n=2)
    with torch.no_grad():
        assert torch.equal(probe.eval()(batch).logits, off.eval()(batch).logits)
        # ... and the head is a linear function of CLIP's normalised image embedding.
        emb = torch.nn.functional.normalize(probe.model.visual(batch.image), dim=-1)
        head = probe.model.head
        ref = probe.model.logit_scale * emb @ head.weight[0] + head.bias[0]
    torch.testing.assert_close(probe(batch).logits, ref)
    assert set(probe.loss(batch, probe(batch))) == {"ce", "loss"}


def test_bad_inputs_fail_clearly():
    with pytest.raises(ValueError, match="alignment and moe off"):
        tiny(name="clip_linear", alignment=True)
    det = tiny().eval()
    batch = make_batch(det.data_spec, n=2)
    batch.region_masks = batch.region_masks[:, :4]
    with pytest.raises(ValueError, match="eyes"):
        det(batch)
    batch.region_masks = None
    with pytest.raises(DataSpecError, match="region_masks"):
        det(batch)
    with pytest.raises(ValueError, match="layers"):
        tiny(layers=[9])

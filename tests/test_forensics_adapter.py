"""Forensics Adapter: parameter budget, frozen CLIP, geometry, the second-pass attention mask, the losses."""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detectors import create_detector
from detectors.forensics_adapter.blocks import query_attention_mask
from detectors.forensics_adapter.detector import ForensicsAdapter
from detectors.forensics_adapter.losses import (
    blur3x3,
    boundary_patches,
    boundary_target,
    clip_contrast,
    inter_contrast,
    intra_contrast,
    patch_fractions,
    patch_labels,
)
from tests.helpers import make_batch

TINY = ForensicsAdapter.tiny_config
# Tiny CLIPs shaped like the two real backbones: L/14-like (patch 14, CLIP input smaller than the adapter's,
# as 224 < 256) and B/16-like (patch 16, same input for both, 4 heads instead of 2).
L14_LIKE = {"image_size": 56, "patch_size": 14}
B16_LIKE = {"image_size": 48, "patch_size": 16, "head_width": 16}


def build(**kw) -> ForensicsAdapter:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_detector("forensics_adapter", **{**TINY, **kw})


def balanced_batch(model: ForensicsAdapter, n: int = 4):
    return make_batch(model.data_spec, n=n, paired=True)  # [reals; fakes], fakes with a square mask


# ---------------------------------------------------------------- full-size parameter budget
@pytest.fixture(scope="module")
def vit_l():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_detector("forensics_adapter", clip_model="ViT-L-14-quickgelu", clip_pretrained=None)


@pytest.mark.slow
def test_vit_l_trainable_parameters_match_the_paper(vit_l):
    m = vit_l
    g = m.geometry
    assert (g.grid, g.width, g.heads, g.layers, g.embed_dim) == (16, 1024, 16, 24, 768)
    assert m.fusion_map == {1: 1, 2: 8, 3: 15} and m.intra_after == 7 and m.data_spec.input_size == 256
    assert all(not p.requires_grad for p in m.visual.parameters())
    total = m.num_trainable_parameters()
    fusion = sum(p.numel() for p in m.adapter.fusions.parameters())
    assert fusion == 3 * (2 * 1024 + 1024 * 192 + 192)  # LayerNorm + 1x1 projection per fused layer
    released = total - fusion  # the released code's parameter set (its fusion weights are not parameters)
    assert abs(released - 5.7e6) / 5.7e6 < 0.03, released
    assert released == 5_619_335 and total == 6_215_879  # the breakdown stated in the class docstring
    assert m.mask_decoder.attn_mlp.layers[-1].out_channels == 128 * 16  # one bias map per CLIP head


@pytest.mark.slow
def test_vit_b16_geometry_follows_the_backbone():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = create_detector("forensics_adapter", clip_model="ViT-B-16-quickgelu", clip_pretrained=None)
    assert m.geometry.grid == 14 and m.data_spec.input_size == 224
    assert m.fusion_map == {1: 1, 2: 4, 3: 8} and m.intra_after == 4
    assert m.mask_decoder.heads == 12 and m.classifier.head.layers[0].in_features == 512
    assert m.clip_bottleneck.down.in_features == 768
    m.eval()  # one real-size forward (batch 1: the classifier must not squeeze the batch away)
    batch = make_batch(m.data_spec, n=1)
    with torch.no_grad():
        out = m(batch)
    assert out.logits.shape == (1,) and out.aux.boundary.shape == (1, 1, 224, 224)


# ---------------------------------------------------------------- frozen CLIP
def test_clip_frozen_and_bitwise_unchanged_after_steps():
    m = build()
    m.train()
    assert not m.visual.training, "the frozen CLIP must stay in eval mode"
    before = {k: v.clone() for k, v in m.visual.state_dict().items()}
    frozen_ids = {id(p) for p in m.visual.parameters()}
    opt = m.configure_optimizers()
    assert not any(id(p) in frozen_ids for grp in opt.param_groups for p in grp["params"])
    batch = balanced_batch(m)
    for _ in range(3):
        opt.zero_grad()
        m.loss(batch, m(batch))["loss"].backward()
        assert all(p.grad is None for p in m.visual.parameters()), "a gradient was computed for CLIP"
        opt.step()
    assert all(not p.requires_grad for p in m.visual.parameters())
    after = m.visual.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_first_pass_builds_no_graph():
    m = build()
    m.train()
    img = balanced_batch(m).image.requires_grad_(True)
    tokens0, layers = m.clip_features(img)
    assert tokens0.grad_fn is None and all(t.grad_fn is None for t in layers.values())


# ---------------------------------------------------------------- geometry
@pytest.mark.parametrize("vision,grid,heads,clip_in", [(L14_LIKE, 4, 2, 56), (B16_LIKE, 3, 4, 48)])
def test_shapes_for_both_backbone_geometries(vision, grid, heads, clip_in):
    m = build(tiny_vision=vision, adapter_patch=16)
    g = m.geometry
    assert (g.grid, g.heads, g.image_size) == (grid, heads, clip_in)
    s, q, n = 16 * grid, m.num_queries, 3
    assert m.data_spec.input_size == s
    batch = make_batch(m.data_spec, n=n)
    tokens0, layers = m.clip_features(batch.image)
    assert tokens0.shape == (n, 1 + grid * grid, g.width)
    assert set(layers) == set(m.fusion_map.values())
    queries, patch_map, _ = m.adapter(batch.image, layers)
    assert queries.shape == (n, q, 24) and patch_map.shape == (n, 24, grid, grid)
    boundary_feats, bias = m.mask_decoder(queries, patch_map)
    assert boundary_feats.shape == (n, q, grid, grid) and bias.shape == (n, heads, q, grid * grid)
    clip_q, hidden, tokens = m.clip_second_pass(tokens0, bias)
    assert clip_q.shape == (n, q, g.embed_dim) and hidden.shape == (n, grid * grid, 16)
    assert tokens.shape == (n, 1 + grid * grid, g.width)
    assert torch.allclose(clip_q.norm(dim=-1), torch.ones(n, q), atol=1e-5)
    m.eval()
    with torch.no_grad():
        out = m(batch)
    assert out.logits.shape == (n,) and out.aux.boundary.shape == (n, 1, s, s)
    # the fake-logit is l_fake - l_real: its sigmoid is the softmax probability of "fake"
    prob = torch.softmax(out.aux.logits2, dim=1)[:, 1]
    assert torch.allclose(torch.sigmoid(out.logits), prob, atol=1e-6)


def test_bad_layer_maps_are_refused():
    with pytest.raises(ValueError, match="fusion CLIP layers"):
        build(fusion_map={1: 9})
    with pytest.raises(ValueError, match="contrast_blocks"):
        build(contrast_blocks=(7,))
    with pytest.raises(ValueError, match="tiny_vision keys"):
        build(tiny_vision={"patch": 14})


# ---------------------------------------------------------------- the second-pass attention mask
def test_attention_mask_tensor_blocks_what_the_paper_blocks():
    n, h, q, npatch = 2, 3, 5, 9
    bias = torch.randn(n, h, q, npatch)
    mask = query_attention_mask(bias)
    t = q + 1 + npatch
    assert mask.shape == (n * h, t, t)
    inf = float("-inf")
    eye = torch.eye(q, dtype=torch.bool)
    # nothing attends to a query except that query itself
    assert (mask[:, :, :q][:, :q][:, ~eye] == inf).all() and (mask[:, :q, :q][:, eye] == 0).all()
    assert (mask[:, q:, :q] == inf).all()
    assert (mask[:, :q, q] == inf).all()  # queries do not see CLS
    assert torch.equal(mask[:, :q, q + 1 :], bias.reshape(n * h, q, npatch))  # per-head bias on patches
    assert (mask[:, q:, q:] == 0).all()  # CLS and patches: plain CLIP attention


def test_queries_do_not_change_cls_or_patches():
    m = build().eval()
    batch = make_batch(m.data_spec, n=2)
    with torch.no_grad():
        tokens0, layers = m.clip_features(batch.image)
        queries, patch_map, _ = m.adapter(batch.image, layers)
        _, bias = m.mask_decoder(queries, patch_map)
        mask = query_attention_mask(bias)
        q = m.num_queries
        x = torch.cat([tokens0[:, :1].expand(-1, q, -1), tokens0], dim=1)
        y = x.clone()
        y[:, :q] = torch.randn_like(y[:, :q]) * 5
        out_x, _ = m.run_clip_blocks(x, mask)
        out_y, _ = m.run_clip_blocks(y, mask)
        assert torch.equal(out_x[:, q:], out_y[:, q:]), "query tokens leaked into CLS/patch tokens"
        assert not torch.allclose(out_x[:, :q], out_y[:, :q])  # the perturbation itself was real
        # one block: query i ignores query j and CLS, and does see the patches through the bias
        blk = m.visual.transformer.resblocks[0]
        base = blk(x, attn_mask=mask)
        z = x.clone()
        z[:, 1:q] += 3.0  # every query but the first
        z[:, q] += 3.0  # CLS
        assert torch.equal(blk(z, attn_mask=mask)[:, 0], base[:, 0])
        w = x.clone()
        w[:, q + 1 :] += torch.randn_like(w[:, q + 1 :])
        assert not torch.allclose(blk(w, attn_mask=mask)[:, 0], base[:, 0])
        biased = mask.clone()
        biased[:, :q, q + 1 :] += torch.randn_like(biased[:, :q, q + 1 :]) * 3
        assert not torch.allclose(blk(x, attn_mask=biased)[:, 0], base[:, 0])


def test_second_pass_keeps_clip_stream_without_the_bottleneck():
    m = build().eval()
    torch.nn.init.zeros_(m.clip_bottleneck.up.weight)
    torch.nn.init.zeros_(m.clip_bottleneck.up.bias)
    batch = make_batch(m.data_spec, n=2)
    with torch.no_grad():
        tokens0, layers = m.clip_features(batch.image)
        _, bias = m.mask_decoder(*m.adapter(batch.image, layers)[:2])
        _, _, tokens = m.clip_second_pass(tokens0, bias)
        pooled = m.visual.ln_post(tokens[:, 0]) @ m.visual.proj
        clip_in = F.interpolate(batch.image, size=m.geometry.image_size, mode="bilinear", align_corners=False)
        ref = m.visual(clip_in)
    assert torch.allclose(pooled, ref, atol=1e-5)


# ---------------------------------------------------------------- targets and losses
def test_blur_and_boundary_target_match_opencv():
    rng = np.random.default_rng(0)
    masks = (rng.random((3, 20, 20)) > 0.6).astype(np.float32)
    masks[1] = rng.random((20, 20)).astype(np.float32)  # soft values too
    t = torch.from_numpy(masks)[:, None]
    for i in range(3):
        ref = cv2.GaussianBlur(masks[i], (3, 3), 0)
        assert np.allclose(blur3x3(t[i : i + 1])[0, 0].numpy(), ref, atol=1e-6)
    target = boundary_target(t, torch.tensor([1, 1, 0]))
    ref = cv2.GaussianBlur(masks[0], (3, 3), 0)
    assert np.allclose(target[0, 0].numpy(), 4 * ref * (1 - ref), atol=1e-6)
    assert target[2].abs().sum() == 0  # reals: zero target whatever the mask


def test_patch_rules_match_a_reference_loop():
    rng = np.random.default_rng(1)
    grid, p = 4, 8
    m = np.zeros((2, 1, grid * p, grid * p), np.float32)
    for b in range(2):  # patches with 0, <10 %, just >10 %, partial and 100 % fake pixels
        for k, count in enumerate(rng.choice([0, 3, 6, 7, 32, 63, 64, 64], size=grid * grid)):
            i, j = divmod(k, grid)
            flat = np.zeros(p * p, np.float32)
            flat[rng.permutation(p * p)[:count]] = rng.uniform(
                41 / 255, 1.0, count
            )  # above the 40/255 threshold
            m[b, 0, i * p : (i + 1) * p, j * p : (j + 1) * p] = flat.reshape(p, p)
    frac = patch_fractions(torch.from_numpy(m), grid)
    ref_lab, ref_bnd = np.zeros((2, grid * grid), bool), np.zeros((2, grid * grid), bool)
    for b in range(2):
        for k in range(grid * grid):
            i, j = divmod(k, grid)
            fake = (m[b, 0, i * p : (i + 1) * p, j * p : (j + 1) * p] * 255 > 40).sum()
            ref_lab[b, k] = fake / (p * p) > 0.1
            ref_bnd[b, k] = fake / (p * p) > 0.1 and fake != p * p
    assert np.array_equal(patch_labels(frac).numpy(), ref_lab)
    assert np.array_equal(boundary_patches(frac).numpy(), ref_bnd)
    assert ref_bnd.any() and (ref_lab & ~ref_bnd).any() and (~ref_lab).any()


def _ref_ratio(pos: list[float], neg: list[float]) -> float:
    p, n = np.exp(pos).sum(), np.exp(neg).sum()
    return float(-np.log(p / (p + n)))


def test_contrast_losses_match_a_direct_computation():
    rng = np.random.default_rng(2)
    b, npatch, d, t = 4, 6, 5, 0.5
    emb = rng.normal(size=(b, npatch, d))
    lab = np.array([0, 1, 1, 0])
    plab = rng.random((b, npatch)) > 0.5
    e = emb / np.linalg.norm(emb, axis=-1, keepdims=True)
    pos, neg = [], []
    for i in np.flatnonzero(lab == 1):  # every pair of patches, masked-out ones as zero vectors
        f, r = e[i] * plab[i][:, None], e[i] * ~plab[i][:, None]
        for u in range(npatch):
            for v in range(npatch):
                neg.append(f[u] @ r[v] / t)
                pos.append(r[u] @ r[v] / t)
    args = torch.from_numpy(emb), torch.from_numpy(plab), torch.from_numpy(lab)
    intra = intra_contrast(*args, temperature=t)
    assert np.isclose(intra.item(), _ref_ratio(pos, neg), rtol=1e-6)
    # balanced batch: no random subset; real image k against itself and against the k-th fake image
    ipos, ineg = [], []
    for ri, fi in zip(np.flatnonzero(lab == 0), np.flatnonzero(lab == 1), strict=True):
        ipos += list((e[ri] @ e[ri].T / t).ravel())
        ineg += list((e[ri] @ e[fi].T / t).ravel())
    inter = inter_contrast(args[0], args[2], temperature=t)
    assert np.isclose(inter.item(), _ref_ratio(ipos, ineg), rtol=1e-6)
    assert np.isclose(clip_contrast(*args, temperature=t).item(), intra.item() + inter.item(), rtol=1e-6)
    assert inter_contrast(args[0], torch.ones(b, dtype=torch.long)) is None
    none = intra_contrast(args[0].requires_grad_(True), args[1], torch.zeros(b, dtype=torch.long))
    assert none.item() == 0 and none.requires_grad


def test_boundary_loss_is_zero_for_real_images():
    m = build()
    m.train()
    batch = make_batch(m.data_spec, n=4, paired=True)
    reals = batch.select([0, 1])
    reals.forgery_mask = torch.rand_like(reals.forgery_mask)  # even a stray mask on a real is ignored
    out = m(reals)
    assert out.aux.boundary.abs().sum() == 0
    assert m.loss(reals, out)["boundary"] == 0
    fakes = batch.select([2, 3])
    assert m.loss(fakes, m(fakes))["boundary"] > 0  # the check can fail: fakes do have a boundary loss


def test_loss_needs_a_forgery_mask():
    from detectors import DataSpecError

    m = build()
    m.train()
    batch = balanced_batch(m)
    out = m(batch)
    batch.forgery_mask = None
    with pytest.raises(DataSpecError, match="forgery_mask"):
        m.loss(batch, out)


def test_inference_without_mask_and_bf16():
    m = build().eval()
    batch = balanced_batch(m)
    batch.forgery_mask = None  # test sets carry no masks
    with torch.no_grad():
        out = m(batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out16 = m(batch)
    assert torch.isfinite(out.logits).all() and torch.isfinite(out16.logits.float()).all()
    assert out.aux.boundary.abs().sum() > 0  # unmasked map


def test_each_step_lowers_the_total_loss():
    """Adam at the paper's learning rate on one fixed balanced batch: every one of three steps lowers the loss.

    The batch is balanced, so the inter-image term draws no random subset and the loss is deterministic.
    """
    m = build()
    m.train()
    batch = balanced_batch(m, n=4)
    opt = m.configure_optimizers()
    losses = []
    for _ in range(4):
        opt.zero_grad()
        loss = m.loss(batch, m(batch))["loss"]
        losses.append(loss.item())
        loss.backward()
        opt.step()
    assert all(np.isfinite(losses))
    assert all(b < a for a, b in zip(losses[:-1], losses[1:], strict=True)), losses


def test_detaching_the_clip_stream_before_the_bottleneck_keeps_gradients_exact():
    m = build(tiny_vision={"layers": 6})
    assert m.intra_after == 2  # one block whose CLS/patch rows are detached
    m.train()
    batch = balanced_batch(m)

    def plain(x, mask):  # the same blocks without the detach
        q, hidden = m.num_queries, None
        for i, blk in enumerate(m.visual.transformer.resblocks, start=1):
            x = blk(x, attn_mask=mask)
            if i == m.intra_after:
                delta, hidden = m.clip_bottleneck(x[:, q + 1 :])
                x = torch.cat([x[:, : q + 1], x[:, q + 1 :] + 0.05 * delta], dim=1)
        return x, hidden

    def grads() -> dict[str, torch.Tensor]:
        m.zero_grad()
        m.loss(batch, m(batch))["loss"].backward()
        return {n: p.grad.clone() for n, p in m.named_parameters() if p.requires_grad}

    ours = grads()
    m.run_clip_blocks = plain
    ref = grads()
    assert all(torch.allclose(ours[k], ref[k], atol=1e-6) for k in ref)
    assert any(ref[k].abs().sum() > 0 for k in ref if k.startswith("adapter."))

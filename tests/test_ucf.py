"""UCF-specific behaviour beyond the detector contract: logged terms, pairing, shuffles, inference path."""

from __future__ import annotations

import pytest
import torch

from detectors import DataSpecError, create_detector, get_detector_class
from detectors.ucf.blocks import contrastive_loss, shuffle_within_groups
from detectors.ucf.detector import UCF
from tests.helpers import SyntheticDataModule, make_batch, quiet_trainer

TERMS = ("common", "specific", "reconstruction", "contrastive")


def tiny(**kw) -> UCF:
    return create_detector("ucf", **{**get_detector_class("ucf").tiny_config, **kw})


@pytest.fixture(scope="module")
def model() -> UCF:
    torch.manual_seed(0)
    return tiny()


def test_all_loss_terms_are_logged():
    m = tiny()
    trainer = quiet_trainer(max_steps=1, limit_val_batches=0)
    trainer.fit(m, datamodule=SyntheticDataModule(m.data_spec, n=4, batch_size=4))
    logged = trainer.callback_metrics
    for term in ("loss",) + TERMS:
        assert f"train/{term}_step" in logged, f"train/{term} not logged; got {sorted(logged)}"
        assert torch.isfinite(logged[f"train/{term}_step"])
    # the total is the paper's weighted sum of the logged terms
    expected = (
        logged["train/common_step"]
        + 0.1 * logged["train/specific_step"]
        + 0.3 * logged["train/reconstruction_step"]
        + 0.05 * logged["train/contrastive_step"]
    )
    assert torch.allclose(logged["train/loss_step"], expected, rtol=1e-5)


def test_unpaired_batch_is_refused(model):
    unpaired = make_batch(model.data_spec, n=4, paired=False)  # labels 0,1,0,1
    model.train()
    with pytest.raises(DataSpecError, match=r"paired batches \[reals; fakes\].*labels \[0, 1, 0, 1\]"):
        model.training_step(unpaired, 0)
    with pytest.raises(DataSpecError, match="paired"):  # forward itself verifies, not only the step
        model(unpaired)
    model.eval()
    with torch.no_grad():  # inference needs no pairing
        assert model(unpaired).logits.shape == (4,)


def test_bad_method_ids_are_refused(model):
    batch = make_batch(model.data_spec, n=4)
    model.train()
    bad = batch.select([0, 1, 2, 3])
    bad.method_id = torch.tensor([0, 0, 1, 9])
    with pytest.raises(DataSpecError, match=r"1\.\.4.*bad rows \[3\]"):
        model(bad)
    bad.method_id = torch.tensor([2, 0, 1, 1])  # a real with a method id
    with pytest.raises(DataSpecError, match=r"bad rows \[0\]"):
        model(bad)
    bad.method_id = None
    with pytest.raises(DataSpecError, match="method_id"):
        model(bad)


def test_specific_head_has_num_methods_plus_one_outputs():
    m = tiny(num_methods=2)
    assert m.head_spe.mlp[-1].out_features == 3 and m.head_sha.mlp[-1].out_features == 2
    assert tiny().head_spe.mlp[-1].out_features == 5  # default: FF++ DF, F2F, FS, NT + real


def test_inference_uses_the_common_head_only(model):
    model.eval()
    batch = make_batch(model.data_spec, n=4)
    with torch.no_grad():
        before = model(batch).logits.clone()
        for part in (model.encoder_c, model.block_spe, model.head_spe, model.decoder):
            for p in part.parameters():
                p.add_(1.0)
        after = model(batch).logits
        f = model.encoder_f(batch.image)
        two_way, _ = model.head_sha(model.block_sha(f))
        for part in (model.encoder_c, model.block_spe, model.head_spe, model.decoder):
            for p in part.parameters():
                p.sub_(1.0)
    assert torch.equal(before, after)
    # probability = the paper's softmax[:, 1]
    assert torch.allclose(torch.sigmoid(after), torch.softmax(two_way, dim=1)[:, 1], atol=1e-6)


def test_shuffle_within_groups_keeps_groups_and_is_a_permutation():
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        groups = torch.randint(0, 4, (int(torch.randint(1, 30, (1,), generator=g)),), generator=g)
        perm = shuffle_within_groups(groups)
        assert sorted(perm.tolist()) == list(range(len(groups)))
        assert torch.equal(groups[perm], groups)
    # it really shuffles: over many draws, some position moves
    groups = torch.tensor([0] * 8 + [1] * 8)
    assert any(not torch.equal(shuffle_within_groups(groups), torch.arange(16)) for _ in range(10))


def test_common_features_are_shuffled_within_halves_with_probability_p():
    batch = make_batch(tiny().data_spec, n=8)

    def common_features(p: float) -> torch.Tensor:
        torch.manual_seed(0)
        m = tiny(shuffle_p=p).train()
        with torch.no_grad():
            return m(batch).aux.feat_common

    plain, always = common_features(0.0), common_features(1.0)
    assert not torch.allclose(plain, always)
    for half in (slice(0, 4), slice(4, 8)):  # the same rows, reordered inside each half
        a = sorted(map(tuple, plain[half].round(decimals=5).tolist()))
        b = sorted(map(tuple, always[half].round(decimals=5).tolist()))
        assert a == b


def test_contrastive_loss_is_the_triplet_margin_on_separable_features():
    # real/fake common features far apart and methods well separated: every triplet is satisfied -> 0
    common = torch.cat([torch.zeros(3, 4), torch.full((3, 4), 10.0)])
    specific = torch.cat([torch.zeros(3, 4), torch.full((3, 4), 10.0)])
    method = torch.tensor([0, 0, 0, 1, 1, 1])
    assert contrastive_loss(common, specific, method, margin=3.0) == 0
    # all features identical: each of the four terms equals the margin
    same = torch.ones(6, 4)
    assert torch.isclose(contrastive_loss(same, same, method, margin=3.0), torch.tensor(12.0), atol=1e-4)


def test_a_few_steps_on_a_fixed_batch_lower_every_trained_term():
    """Three Adam steps (lr 1e-3) on one fixed paired batch lower every loss term.

    Every evaluation re-seeds the torch RNG, so the in-batch shuffle and the dropout masks are the same
    before and after: the comparison measures the parameters, not the randomness. A few steps rather
    than one, because a single step can trade a small rise of one term against the others.
    """
    torch.manual_seed(0)
    m = tiny(lr=1e-3).train()
    batch = make_batch(m.data_spec, n=8)
    opt = m.configure_optimizers()

    def terms() -> dict[str, float]:
        torch.manual_seed(123)
        with torch.no_grad():
            return {k: float(v) for k, v in m.loss(batch, m(batch)).items()}

    before = terms()
    for _ in range(3):
        torch.manual_seed(123)
        opt.zero_grad()
        m.loss(batch, m(batch))["loss"].backward()
        opt.step()
    after = terms()
    for k in ("loss",) + TERMS:
        assert after[k] < before[k], f"{k} did not decrease: {before[k]:.4f} -> {after[k]:.4f}"


def test_one_batched_decoder_pass_equals_the_four_separate_ones(model):
    """The decoder has no batch statistics, so stacking the four combinations changes nothing."""
    dec = model.decoder.eval()
    g = torch.Generator().manual_seed(0)
    f_real, f_fake, c_real, c_fake = (torch.randn(2, 32, 2, 2, generator=g) for _ in range(4))
    with torch.no_grad():
        stacked = dec(torch.cat([f_real, f_fake, f_fake, f_real]), torch.cat([c_real, c_fake] * 2), (64, 64))
        separate = [
            dec(f, c, (64, 64))
            for f, c in ((f_real, c_real), (f_fake, c_fake), (f_fake, c_real), (f_real, c_fake))
        ]
    assert torch.allclose(stacked, torch.cat(separate), atol=1e-6)
    dec.train()


def test_reconstructions_pair_each_content_with_its_own_and_the_other_halfs_forgery_code():
    m = tiny(shuffle_p=0.0).train()
    seen = {}

    class Recorder(torch.nn.Module):
        def forward(self, forgery, content, out_size):
            seen["forgery"], seen["content"] = forgery.detach(), content.detach()
            return torch.zeros(forgery.shape[0], 3, *out_size)

    m.decoder = Recorder()
    batch = make_batch(m.data_spec, n=4)
    out = m(batch)
    code = torch.cat([m.block_spe(m.encoder_f(batch.image)), m.block_sha(m.encoder_f(batch.image))], dim=1)
    content = m.encoder_c(batch.image)
    # rows 0..3: self (code i, content i); rows 4..7: cross (code of the other half, content i)
    assert torch.allclose(seen["content"], torch.cat([content, content]), atol=1e-5)
    partner = torch.tensor([2, 3, 0, 1])
    assert torch.allclose(seen["forgery"], torch.cat([code, code[partner]]), atol=1e-5)
    assert out.aux.reconstruction.shape == (8, 3, 64, 64)

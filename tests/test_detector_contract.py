"""Contract tests run over EVERY registered detector: a new detector is tested the day it is registered."""

from __future__ import annotations

import warnings

import pytest
import torch

from benchmark.runner.score_writer import ScoreWriter
from detectors import DetectorOutput, create_detector, get_detector_class, list_detectors, load_detector
from tests.helpers import SyntheticDataModule, make_batch, quiet_trainer

NAMES = list_detectors()


def tiny(name: str):
    cls = get_detector_class(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_detector(name, **cls.tiny_config)


@pytest.fixture(scope="module", params=NAMES)
def name(request):
    return request.param


def test_builds_offline_in_tiny_config(name):
    model = tiny(name)
    assert model.name == name
    assert model.num_trainable_parameters() > 0
    assert model.default_recipe.source, f"{name}: the paper recipe must cite its source"


def test_forward_shape_and_finite_loss(name):
    model = tiny(name).eval()
    batch = make_batch(model.data_spec, n=4)
    with torch.no_grad():
        out = model(batch)
    assert isinstance(out, DetectorOutput)
    assert out.logits.shape == (4,)
    assert torch.isfinite(out.logits).all()
    model.train()
    losses = model.loss(batch, model(batch))
    assert "loss" in losses and losses["loss"].ndim == 0 and torch.isfinite(losses["loss"])


def test_one_step_updates_trainable_and_not_frozen(name):
    model = tiny(name)
    model.train()
    batch = make_batch(model.data_spec, n=4)
    opt = model.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    frozen_buffers = {n: b.detach().clone() for m in model._frozen for n, b in m.named_buffers()}
    opt.zero_grad()
    model.loss(batch, model(batch))["loss"].backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"{name}: trainable parameters that receive no gradient: {no_grad[:10]}"
    opt.step()
    # A parameter with a non-zero gradient must move (a zero gradient can happen legitimately, e.g. dead ReLUs).
    stuck = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and p.grad.abs().sum() > 0 and torch.equal(p, trainable[n])
    ]
    assert not stuck, f"{name}: parameters with a gradient did not change after a step: {stuck[:10]}"
    assert any(not torch.equal(p, trainable[n]) for n, p in model.named_parameters() if p.requires_grad)
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), f"{name}: frozen parameter {n} changed"
    for m in model._frozen:
        for n, b in m.named_buffers():
            assert torch.equal(b, frozen_buffers[n]), f"{name}: frozen buffer {n} changed"


def test_checkpoint_round_trip(name, tmp_path):
    model = tiny(name)
    dm = SyntheticDataModule(model.data_spec, n=4, batch_size=4)
    trainer = quiet_trainer(max_steps=1, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = load_detector(path, expected=name)
    model.eval(), again.eval()
    batch = make_batch(model.data_spec, n=4)
    with torch.no_grad():
        assert torch.equal(model(batch).logits, again(batch).logits)


def test_fast_dev_run_fit_and_test(name):
    model = tiny(name)
    dm = SyntheticDataModule(model.data_spec, n=4, batch_size=4, test_sets=("a", "b"))
    writer = ScoreWriter()
    trainer = quiet_trainer(fast_dev_run=True, callbacks=[writer])
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm)
    rows = writer.rows
    assert {r["dataset"] for r in rows} == {"a", "b"}
    assert all(0.0 <= r["score"] <= 1.0 for r in rows)
    assert set(rows[0]) >= {"sample_id", "video_id", "dataset", "method", "label", "score"}

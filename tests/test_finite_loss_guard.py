"""A NaN loss mid-training stops the fit before the poisoned step; no checkpoint holds a diverged model."""

from __future__ import annotations

import warnings

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from benchmark.runner.guards import FiniteLossGuard, NonFiniteLossError
from detectors import create_detector, get_detector_class
from tests.helpers import SyntheticDataModule


def _fit(tmp_path, bad_step: int, value: float, guard: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = create_detector("resnet34", **get_detector_class("resnet34").tiny_config)
    loss = det.loss

    def poisoned(batch, out):
        terms = loss(batch, out)
        if det.global_step == bad_step:  # a diverged step in the middle of epoch 1
            terms["loss"] = terms["loss"] * value
        return terms

    det.loss = poisoned
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ck", save_last=True)
    trainer = L.Trainer(
        max_epochs=2, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[ckpt, *([FiniteLossGuard()] if guard else [])],
    )  # fmt: skip
    return det, trainer, SyntheticDataModule(det.data_spec, n=8, batch_size=4)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_loss_fails_loudly_before_the_weights_are_poisoned(tmp_path, value) -> None:
    det, trainer, dm = _fit(tmp_path, bad_step=3, value=value, guard=True)
    with pytest.raises(NonFiniteLossError, match=r"resnet34: non-finite training loss .* at epoch 1, batch 1 \(global step 3\)"):  # fmt: skip
        trainer.fit(det, datamodule=dm)
    assert all(torch.isfinite(p).all() for p in det.parameters())
    for path in (tmp_path / "ck").glob("*.ckpt"):  # epoch 0's checkpoints only, all finite
        state = torch.load(path, weights_only=True)["state_dict"]
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), path


def test_without_the_guard_the_same_run_silently_poisons_the_weights(tmp_path) -> None:
    """Guards the test above: the injected NaN really would reach the weights unnoticed."""
    det, trainer, dm = _fit(tmp_path, bad_step=3, value=float("nan"), guard=False)
    trainer.fit(det, datamodule=dm)  # no error at all
    assert not all(torch.isfinite(p).all() for p in det.parameters())

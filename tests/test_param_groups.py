"""Detector.param_groups: the default reproduces the single-group optimiser; groups reach the optimiser."""

from __future__ import annotations

import pytest
import torch

from datamodules.spec import DataSpec
from detectors import Detector, DetectorOutput, Recipe
from tests.helpers import SyntheticDataModule, make_batch, quiet_trainer


class _Net(Detector):
    default_recipe = Recipe(lr=0.1, weight_decay=0.01, source="test")

    def __init__(self, **recipe):
        super().__init__(**recipe)
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.norm = torch.nn.BatchNorm2d(4)
        self.head = torch.nn.Linear(4, 1)
        self.frozen = self.freeze_module(torch.nn.Linear(2, 2))
        self.data_spec = DataSpec(input_size=8)

    def forward(self, batch):
        x = self.norm(self.conv(batch.image)).mean((2, 3))
        return DetectorOutput(self.head(x).squeeze(-1))


class _NoDecayOnNormsAndBiases(_Net):
    """Weight decay on weights of convolutions and linears only; the head learns 10x faster."""

    def param_groups(self):
        decay = [self.conv.weight]
        no_decay = [self.conv.bias, self.norm.weight, self.norm.bias, self.head.bias]
        return [
            {"params": decay},
            {"params": no_decay, "weight_decay": 0.0},
            {"params": [self.head.weight], "lr": 1.0},
        ]


def _optimizer(model):
    out = model.configure_optimizers()
    return out["optimizer"] if isinstance(out, dict) else out


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_default_is_the_single_group_optimizer(optimizer):
    torch.manual_seed(0)
    a = _Net(optimizer=optimizer)
    b = _Net(optimizer=optimizer)
    b.load_state_dict(a.state_dict())
    r = a.recipe
    ours = _optimizer(a)
    cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}[optimizer]
    extra = {"momentum": r.momentum} if optimizer == "sgd" else {"betas": r.betas}
    reference = cls(b.trainable_parameters(), lr=r.lr, weight_decay=r.weight_decay, **extra)
    assert type(ours) is cls
    assert ours.state_dict()["param_groups"] == reference.state_dict()["param_groups"]
    batch = make_batch(a.data_spec, n=4)
    for model, opt in ((a, ours), (b, reference)):
        for _ in range(2):
            opt.zero_grad()
            model.loss(batch, model(batch))["loss"].backward()
            opt.step()
    for (n, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), n


def test_group_settings_reach_the_optimizer_and_the_schedule():
    model = _NoDecayOnNormsAndBiases(scheduler="cosine")
    groups = _optimizer(model).param_groups
    assert [(g["lr"], g["weight_decay"]) for g in groups] == [(0.1, 0.01), (0.1, 0.0), (1.0, 0.01)]
    trainer = quiet_trainer(max_epochs=1, limit_val_batches=0)
    trainer.fit(model, datamodule=SyntheticDataModule(model.data_spec, n=8, batch_size=4))
    (opt,) = trainer.optimizers
    lrs = [g["lr"] for g in opt.param_groups]
    assert lrs[0] < 0.1 and lrs[2] == pytest.approx(10 * lrs[0])  # the schedule scales each group's own lr
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0, 0.01]


def test_groups_must_cover_exactly_the_trainable_parameters():
    class Missing(_Net):
        def param_groups(self):
            return [{"params": [self.conv.weight]}]

    with pytest.raises(ValueError, match=r"leaves trainable parameters out: \['conv.bias'"):
        Missing().configure_optimizers()

    class Frozen(_Net):
        def param_groups(self):
            return [{"params": self.trainable_parameters()}, {"params": [self.frozen.weight]}]

    with pytest.raises(ValueError, match="group 1 holds parameters .* frozen or not this detector's"):
        Frozen().configure_optimizers()

    class Empty(_Net):
        def param_groups(self):
            return [{"params": self.trainable_parameters()}, {"params": []}]

    with pytest.raises(ValueError, match="group 1 is empty"):
        Empty().configure_optimizers()

"""The detector interface, registry and batch contract, independent of any particular detector."""

from __future__ import annotations

import warnings

import pytest
import torch

from benchmark.runner.score_writer import dedupe_rows
from datamodules import Batch, DataSpec, collate
from detectors import (
    DataSpecError,
    Detector,
    DetectorOutput,
    Recipe,
    UnknownDetectorError,
    create_detector,
    list_detectors,
    register_detector,
)
from tests.helpers import make_batch, make_item


def test_unknown_detector_lists_known_names():
    with pytest.raises(UnknownDetectorError) as e:
        create_detector("nope")
    msg = str(e.value)
    assert "nope" in msg
    for n in list_detectors():
        assert n in msg


def test_duplicate_registration_is_an_error():
    @register_detector("_dup_probe")
    class A(Detector):
        pass

    with pytest.raises(ValueError, match="already registered"):

        @register_detector("_dup_probe")
        class B(Detector):
            pass


def test_recipe_overrides_and_unknown_keys():
    r = Recipe(lr=1e-3)
    assert r.with_overrides(lr=5e-4).lr == 5e-4
    assert r.with_overrides(lr=5e-4).diff(r) == {"lr": (1e-3, 5e-4)}
    with pytest.raises(TypeError, match="lrr"):
        r.with_overrides(lrr=1)
    with pytest.raises(ValueError):
        Recipe(optimizer="lion")


def test_detector_init_records_recipe_overrides_as_hparams():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = create_detector("resnet34", arch="test_resnet", pretrained=False, input_size=64, lr=1e-3)
    assert m.recipe.lr == 1e-3 and m.hparams["lr"] == 1e-3 and m.hparams["arch"] == "test_resnet"


def test_collate_and_pairing():
    spec = DataSpec(input_size=8, region_masks=True)
    b = make_batch(spec, n=4, paired=True)
    assert isinstance(b, Batch) and b.image.shape == (4, 3, 8, 8) and b.region_masks.shape[:2] == (4, 6)
    assert b.is_paired()
    assert not make_batch(spec, n=4, paired=False).is_paired()
    sub = b.select([0, 3])
    assert sub.label.tolist() == [0, 1] and sub.sample_id == [b.sample_id[0], b.sample_id[3]]


def test_collate_refuses_mixed_optional_fields():
    spec = DataSpec(input_size=8, forgery_masks=True)
    items = [make_item(spec, 0, 0), make_item(DataSpec(input_size=8), 1, 1)]
    with pytest.raises(ValueError, match="forgery_mask"):
        collate(items)


class _Probe(Detector):
    def __init__(self, **kw):
        super().__init__(**kw)
        self.lin = torch.nn.Linear(3, 1)
        self.data_spec = DataSpec(input_size=8, region_masks=True, paired=True)

    def forward(self, batch):
        return DetectorOutput(self.lin(batch.image.mean((2, 3))).squeeze(-1))


def test_batch_missing_spec_field_is_refused_with_its_name():
    m = _Probe()
    b = make_batch(DataSpec(input_size=8), n=4, paired=True)
    with pytest.raises(DataSpecError, match="region_masks"):
        m.training_step(b, 0)


def test_unpaired_batch_is_refused_when_spec_is_paired():
    m = _Probe()
    b = make_batch(DataSpec(input_size=8, region_masks=True), n=4, paired=False)
    with pytest.raises(DataSpecError, match="paired"):
        m.training_step(b, 0)


def test_wrong_input_size_is_refused():
    m = _Probe()
    b = make_batch(DataSpec(input_size=16, region_masks=True), n=4, paired=True)
    with pytest.raises(DataSpecError, match="8px"):
        m.training_step(b, 0)


def test_dedupe_rows_keeps_first_occurrence_per_set_and_sample():
    rows = [
        {"test_set": "a", "split": "test", "sample_id": "1", "score": 0.1},
        {"test_set": "b", "split": "test", "sample_id": "1", "score": 0.2},
        {"test_set": "a", "split": "test", "sample_id": "1", "score": 0.1},
    ]
    assert dedupe_rows(rows) == rows[:2]


def test_frozen_module_stays_in_eval_mode():
    m = _Probe()
    frozen = torch.nn.Dropout(0.5)
    m.frozen = frozen
    m.freeze_module(frozen)
    m.train()
    assert m.training and not frozen.training


@pytest.mark.parametrize("sched", [None, "cosine", "step"])
def test_scheduler_really_steps(sched):

    from tests.helpers import SyntheticDataModule, quiet_trainer

    class Tiny(Detector):
        default_recipe = Recipe(lr=0.1, scheduler=sched, step_size=1, gamma=0.5, source="test")

        def __init__(self, **kw):
            super().__init__(**kw)
            self.lin = torch.nn.Linear(3, 1)
            self.data_spec = DataSpec(input_size=8)

        def forward(self, batch):
            return DetectorOutput(self.lin(batch.image.mean((2, 3))).squeeze(-1))

    m = Tiny()
    trainer = quiet_trainer(max_epochs=2, limit_val_batches=0)
    trainer.fit(m, datamodule=SyntheticDataModule(DataSpec(input_size=8), n=8, batch_size=4))
    lr = trainer.optimizers[0].param_groups[0]["lr"]
    if sched is None:
        assert lr == 0.1
    else:
        assert lr < 0.1


def test_aux_is_a_typed_record():
    """``aux`` is a DetectorAux (string-keyed dicts are refused); ``inference`` keeps the declared maps only,
    detached on the CPU; ``sample`` takes one sample's maps."""
    from dataclasses import dataclass

    from detectors import DetectorAux

    with pytest.raises(TypeError, match=r"DetectorOutput.aux must be a DetectorAux .* got dict"):
        DetectorOutput(torch.zeros(2), aux={"patch_fakeness": torch.zeros(2, 3, 3)})

    @dataclass
    class MyAux(DetectorAux):
        hidden: torch.Tensor | None = None

    patch = torch.rand(2, 3, 3, requires_grad=True)
    aux = MyAux(patch_fakeness=patch * 1, hidden=torch.ones(2))
    inf = aux.inference()
    assert type(inf) is DetectorAux and inf.region_scores is None and inf.boundary is None
    assert torch.equal(inf.patch_fakeness, patch.detach()) and not inf.patch_fakeness.requires_grad
    assert torch.equal(inf.sample(1).patch_fakeness, patch[1].detach())

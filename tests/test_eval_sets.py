"""Evaluation sets (one loader each, method subsets in the dataset) and the ScoreWriter callback."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark.runner.score_writer import ROW_COLUMNS, ScoreWriter
from datamodules.loading.datamodule import ForgeryDataModule
from datamodules.loading.eval_sets import EvalSet
from datamodules.manifest import DataError
from datamodules.spec import DataSpec
from detectors import create_detector, get_detector_class
from tests.helpers import SyntheticDataModule, quiet_trainer
from tests.test_datamodule import _write_dataset

SETS = [
    EvalSet("multi", "multi", "val"),
    EvalSet("multi", "multi"),
    EvalSet("multi/A", "multi", methods=("A",)),
    EvalSet("multi/B", "multi", methods=["B"]),
]


@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset whose test split has two fake methods (A, B) and shared reals."""
    root = tmp_path_factory.mktemp("multi")
    splits = {"train": {"real": 1, "A": 1}, "val": {"real": 1, "A": 1}, "test": {"real": 2, "A": 1, "B": 1}}
    return _write_dataset(root, "multi", splits)


def _dm(multi: Path, spec: DataSpec, sets=SETS) -> ForgeryDataModule:
    dm = ForgeryDataModule(
        spec, train="multi", tests=sets, manifests={"multi": multi}, frames_test=2, eval_batch_size=50
    )
    dm.setup("fit")
    dm.setup("test")
    return dm


def test_method_subsets_are_applied_in_the_dataset_and_keep_every_real(multi: Path) -> None:
    dm = _dm(multi, DataSpec(input_size=64))
    assert dm.eval_sets == SETS and SETS[3].methods == ("B",)
    loaders = dm.test_dataloader()
    assert len(loaders) == len(SETS)
    val, full, sub_a, sub_b = (next(iter(ld)) for ld in loaders)
    fit_val = next(iter(dm.val_dataloader()))  # the source val set = the validation loader's frames
    assert val.sample_id == fit_val.sample_id and torch.equal(val.image, fit_val.image)
    assert len(full) == 4 * 2 and set(full.method) == {"real", "A", "B"}
    for sub, ds, method in ((sub_a, dm.test_sets[2], "A"), (sub_b, dm.test_sets[3], "B")):
        keep = [
            i
            for i, (y, m) in enumerate(zip(full.label.tolist(), full.method, strict=True))
            if y == 0 or m == method
        ]
        assert len(ds) == len(keep) == 3 * 2  # the dataset itself holds two reals and one fake video
        assert sub.sample_id == [full.sample_id[i] for i in keep]
        assert torch.equal(sub.image, full.image[keep])
        assert set(sub.method) == {"real", method} and set(sub.dataset) == {"multi"}


def test_bad_evaluation_sets_are_refused(multi: Path) -> None:
    spec = DataSpec(input_size=64)
    with pytest.raises(DataError, match=r"'x': split must be one of \['val', 'test'\], got 'train'"):
        EvalSet("x", "multi", "train")
    with pytest.raises(DataError, match=r"'x': methods must be a sequence of method names, got 'A'"):
        EvalSet("x", "multi", methods="A")
    with pytest.raises(DataError, match=r"\['multi \(test\)'\] are listed twice"):
        _dm(multi, spec, [EvalSet("multi", "multi"), EvalSet("multi", "multi", methods=("A",))])
    with pytest.raises(DataError, match=r"unknown dataset 'nope'; known: multi"):
        _dm(multi, spec, [EvalSet("n", "nope")])


def _tiny(name: str = "resnet34"):
    return create_detector(name, **get_detector_class(name).tiny_config).eval()


def test_score_writer_rows_follow_the_sets(multi: Path) -> None:
    """One Trainer.test over every set: rows carry the manifest's dataset, the set and split; a method
    subset's rows are the full set's reals plus its fakes, with ``@<set>`` ids and the same scores; the
    scores are predict_step's on the same batches."""
    model = _tiny()
    dm = _dm(multi, model.data_spec)
    writer = ScoreWriter()
    quiet_trainer(callbacks=[writer]).test(model, datamodule=dm, verbose=False)
    rows = writer.rows
    assert all(tuple(r) == ROW_COLUMNS for r in rows)
    assert [(r["test_set"], r["split"]) for r in rows] == [
        (s.name, s.split) for s, ld in zip(SETS, dm.test_dataloader(), strict=True) for _ in ld.dataset.labels
    ]  # set by set, in order
    assert {r["dataset"] for r in rows} == {"multi"}
    full = {r["sample_id"]: r for r in rows if r["test_set"] == "multi" and r["split"] == "test"}
    for name, method in (("multi/A", "A"), ("multi/B", "B")):
        sub = [r for r in rows if r["test_set"] == name]
        want = [r for r in full.values() if r["label"] == 0 or r["method"] == method]
        assert [r["sample_id"] for r in sub] == [r["sample_id"] + f"@{name}" for r in want]
        assert all(r["video_id"].endswith(f"@{name}") for r in sub)
        for r, w in zip(sub, want, strict=True):
            assert (r["label"], r["method"], r["dataset"]) == (w["label"], w["method"], w["dataset"])
            assert r["score"] == pytest.approx(w["score"], rel=1e-6)
    with torch.no_grad():
        for s, ld in zip(SETS, dm.test_dataloader(), strict=True):
            for batch in ld:
                scored = model.predict_step(batch, 0)
                mine = {
                    r["sample_id"]: r["score"]
                    for r in rows
                    if r["test_set"] == s.name and r["split"] == s.split
                }
                assert [mine[i + s.id_suffix] for i in scored.sample_id] == scored.score.tolist()


def test_score_writer_refuses_a_mismatch() -> None:
    model = _tiny()
    dm = SyntheticDataModule(model.data_spec, n=4, batch_size=4, test_sets=("a", "b"))
    with pytest.raises(ValueError, match=r"2 test dataloader\(s\) for 1 evaluation set\(s\) \['a'\]"):
        quiet_trainer(callbacks=[ScoreWriter([EvalSet("a", "a")])]).test(model, datamodule=dm, verbose=False)
    loader = dm.test_dataloader()[0]
    with pytest.raises(ValueError, match="ScoreWriter needs the evaluation set of each test dataloader"):
        quiet_trainer(callbacks=[ScoreWriter()]).test(model, dataloaders=loader, verbose=False)

    class NoProbabilities(type(model)):
        def test_step(self, batch, batch_idx, dataloader_idx=0):
            return {"score": super().test_step(batch, batch_idx)}

    other = NoProbabilities(**get_detector_class("resnet34").tiny_config)
    with pytest.raises(
        TypeError, match=r"test_step must return the probabilities of fake, shape \(4,\); got dict"
    ):
        quiet_trainer(callbacks=[ScoreWriter()]).test(other, datamodule=dm, verbose=False)

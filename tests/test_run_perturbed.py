"""Derived cells: finished cells' checkpoints scored under test-time perturbations and views, one store entry
per (cell, condition), end to end through ``python -m benchmark.run`` on real face crops
(``tests/runner_fixtures.write_face_manifests``), so the suite's own ``ForgeryDataModule`` applies the
perturbation. Determinism per sample and seed is the library's (tests/test_perturb.py)."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pandas as pd
import pytest
import torch
import yaml
from rich.console import Console

from benchmark.run import main
from benchmark.runner.cells import Cell, CellConfig, Runtime, config_hash
from benchmark.runner.data_config import parse_data_config
from benchmark.runner.grid import GridError, load_grid
from benchmark.runner.launchers import InlineLauncher
from benchmark.runner.monitor import DONE, FAILED, Monitor
from benchmark.runner.perturbed import derive, perturbed_jobs, plan_perturbed
from benchmark.runner.plan import plan_cells
from benchmark.runner.sweeps import Condition, SweepError, deeperforensics, sensitivity, sweep_conditions
from benchmark.store import ScoreStore, file_sha256
from datamodules.media.perturb import CropView, get_perturbation
from tests.runner_fixtures import write_data_config, write_face_manifests, write_grid

TINY = {
    "arch": "test_resnet",
    "pretrained": False,
    "input_size": 32,
    "epochs": 1,
    "batch_size": 4,
    "eval_batch_size": 4,
    "frames_train": 2,
    "frames_test": 2,
    "augment": False,
}
SWEEP = {"distortions": ["gaussian_blur", "BW"], "levels": [5], "views": [{"zoom": 1.3}]}
TAGS = {"gaussian_blur@5", "block_wise@5", "zoom1.3"}
FRAMES_PER_TEST_SET = 8  # 4 videos x 2 frames


def _console() -> Console:
    return Console(record=True, width=250, force_terminal=False)


def _args(root: Path, *extra: str) -> list[str]:
    return [
        *("--grid", str(root / "tiny.yaml"), "--data", str(root / "datasets.yaml"), "--out", str(root / "out")),
        *("--launcher", "inline", "--no-leaderboard", *extra),
    ]  # fmt: skip


def _perturb(root: Path, *extra: str) -> list[str]:
    return _args(root, "--perturb", str(root / "sweep.yaml"), *extra)


def _cells(root: Path, **kw) -> list[Cell]:
    rt = Runtime(store_root=root / "out/store", work_root=root / "out/cells", progress_bar=False)
    return plan_cells(
        load_grid(root / "tiny.yaml"), parse_data_config(root / "datasets.yaml"), runtime=rt, **kw
    )


def _derived(store: ScoreStore) -> dict[str, dict]:
    """Derived cells' records by condition tag (one parent)."""
    recs = [store.record(c) for c in store.cell_ids("done")]
    return {r["perturbation"]["tag"]: r for r in recs if r.get("parent_cell_id")}


def _stamps(root: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (root / "out" / "store").rglob("*") if p.is_file()}


@pytest.fixture
def faces(tmp_path: Path) -> Path:
    write_data_config(tmp_path)
    write_face_manifests(tmp_path / "processed")
    write_grid(tmp_path, defaults={"detector": TINY, "data": {"num_workers": 0}})
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(SWEEP))
    return tmp_path


@pytest.fixture
def trained(faces: Path) -> Path:
    assert main(_args(faces), console=_console()) == 0
    return faces


# --------------------------------------------------------------------------- end to end
def test_a_grid_without_finished_cells_says_so(faces: Path) -> None:
    con = _console()
    assert main(_perturb(faces), console=con) == 2
    text = con.export_text()
    assert "has no finished cell to score" in text and "not run yet" in text, text
    assert "python -m benchmark.run --grid tiny" in text
    assert ScoreStore(faces / "out" / "store").cell_ids() == []


def test_each_finished_cell_is_scored_once_per_condition_on_its_test_sets(trained: Path) -> None:
    (parent,) = _cells(trained)
    store = ScoreStore(trained / "out" / "store")
    clean = store.read_scores(axis="dataset")
    con = _console()
    assert main(_perturb(trained), console=con) == 0
    text = con.export_text()
    assert "perturbed cells: 3 to run, 0 already done" in text, text
    assert "gaussian_blur@5" in text  # the monitor names each cell's condition

    derived = _derived(store)
    assert set(derived) == TAGS
    parent_rec = store.record(parent.cell_id)
    for tag, rec in derived.items():
        assert rec["parent_cell_id"] == parent.cell_id
        config = dict(rec["config"])
        cond = {k: config.pop(k) for k in ("perturbation", "view") if k in config}
        assert config == parent.config.to_json()  # the parent's config plus the condition
        assert rec["cell_id"] == config_hash(rec["config"]) != parent.cell_id
        assert rec["checkpoint"] == parent_rec["checkpoint"]
        assert rec["checkpoint_sha256"] == file_sha256(parent_rec["checkpoint"])
        assert rec["parent"]["finished_at"] == parent_rec["finished_at"]
        assert "fit_s" not in rec["timings"]
        if tag == "zoom1.3":
            assert cond == {"view": {"zoom": 1.3, "crop_size": None, "interpolation": None}}
        else:
            assert cond["perturbation"]["name"] in ("gaussian_blur", "block_wise")

    # clean reads are the parent's alone; derived rows are read on request, tagged with the condition
    assert_frame = pd.testing.assert_frame_equal
    assert_frame(store.read_scores(axis="dataset"), clean)
    rows = store.read_scores(derived=True, axis="dataset")
    assert len(store.read_scores(derived=None)) == len(clean) + len(rows)
    test = clean[clean.split == "test"]
    for tag, r in rows.groupby("perturbation"):
        assert tag in TAGS and (r.split == "test").all()  # the source val split is not scored again
        assert sorted(r.test_set.unique()) == ["a", "b"] and len(r) == 2 * FRAMES_PER_TEST_SET
        both = r.merge(test, on=["test_set", "sample_id"], suffixes=("", "_clean"), validate="one_to_one")
        assert len(both) == len(r) and (both.label == both.label_clean).all()
        assert (both.score != both.score_clean).any(), tag  # the condition reached the model's input

    # run again: every derived cell is done, nothing is rewritten
    stamps = _stamps(trained)
    con = _console()
    assert main(_perturb(trained), console=con) == 0
    assert "perturbed cells: 0 to run, 3 already done" in con.export_text()
    assert _stamps(trained) == stamps

    # the leaderboard: one row (derived cells are not seeds), its robustness column and page tables
    from benchmark.report.leaderboard import render

    render(trained / "out" / "store", trained / "lb", n_boot=20)
    readme = (trained / "lb" / "README.md").read_text()
    page = (trained / "lb" / "tiny" / "resnet34.md").read_text()
    assert readme.count("[resnet34](tiny/resnet34.md)") == 1 and " (2/35) |" in readme
    assert "| gaussian_blur | 5 |" in page and "| block_wise | 5 |" in page and "| zoom1.3 |" in page


def test_the_same_checkpoint_under_the_same_perturbation_scores_identically(trained: Path) -> None:
    """Scored twice (a forced re-run) the scores are bitwise equal, and they are the bare model's on the
    datamodule built with that perturbation (so the runner scored exactly that)."""
    (trained / "sweep.yaml").write_text(
        yaml.safe_dump({"distortions": ["gaussian_noise_color"], "levels": [4]})
    )
    store = ScoreStore(trained / "out" / "store")
    assert main(_perturb(trained), console=_console()) == 0
    first = store.read_scores(derived=True)
    assert main(_perturb(trained, "--force"), console=_console()) == 0
    second = store.read_scores(derived=True)
    assert len(first) == 2 * FRAMES_PER_TEST_SET
    pd.testing.assert_frame_equal(first, second, check_exact=True)

    from datamodules.loading.datamodule import ForgeryDataModule
    from detectors import load_detector

    (parent,) = _cells(trained)
    model = load_detector(store.record(parent.cell_id)["checkpoint"], expected="resnet34").eval()
    manifests = {n: trained / "processed" / n / "manifest.parquet" for n in ("train", "a", "b")}
    p = get_perturbation("gaussian_noise_color", 4, seed=0)
    dm = ForgeryDataModule(model.data_spec, "train", ["a", "b"], manifests, eval_batch_size=3, frames_test=2,
                           augment=False, test_perturbation=p)  # fmt: skip
    dm.setup("test")
    bare = {}
    with torch.no_grad():
        for name, loader in zip(["a", "b"], dm.test_dataloader(), strict=True):
            for batch in loader:
                probs = torch.sigmoid(model(batch).logits).tolist()
                bare.update({(name, s): v for s, v in zip(batch.sample_id, probs, strict=True)})
    got = {(t, s): v for t, s, v in zip(first.test_set, first.sample_id, first.score, strict=True)}
    assert got.keys() == bare.keys()
    assert max(abs(got[k] - bare[k]) for k in got) < 1e-6


class _KillWhileTesting(L.Callback):
    """Raises in the first test batch of the first cell that runs (a cell killed while scoring)."""

    def __init__(self) -> None:
        self.fired = False

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not self.fired:
            self.fired = True
            raise RuntimeError("simulated kill while testing")


def test_an_interrupted_sweep_resumes_with_the_unfinished_cells_only(trained: Path) -> None:
    (parent,) = _cells(trained)
    store = ScoreStore(trained / "out" / "store")
    conditions = sweep_conditions([str(trained / "sweep.yaml")])
    jobs = perturbed_jobs(plan_perturbed([parent], {"resnet34": conditions}, store))
    InlineLauncher(callbacks=[_KillWhileTesting()]).run(jobs, Monitor(jobs, "t", _console(), live=False))
    assert [j.status for j in jobs] == [FAILED, DONE, DONE]
    killed = jobs[0].cell.cell_id
    assert store.record(killed)["status"] == "failed" and not store.is_done(killed)

    con = _console()
    assert main(_perturb(trained), console=con) == 0
    assert "perturbed cells: 1 to run, 2 already done" in con.export_text()
    assert set(_derived(store)) == TAGS
    rows = store.read_scores(derived=True)
    assert len(rows) == 3 * 2 * FRAMES_PER_TEST_SET
    assert not rows.duplicated(["perturbation", "test_set", "sample_id"]).any()


def test_unfinished_parents_are_reported_and_skipped(trained: Path) -> None:
    store = ScoreStore(trained / "out" / "store")
    done, failed, never = _cells(trained, seeds=[0, 1, 2])
    store.write_record(failed.cell_id, {"config": failed.config.to_json()}, "failed")
    con = _console()
    assert main(_perturb(trained, "--seeds", "0", "1", "2"), console=con) == 0
    text = con.export_text()
    assert f"seed 1 ({failed.cell_id}) is failed: its perturbed cells are skipped" in text, text
    assert f"seed 2 ({never.cell_id}) is not run yet" in text
    assert {r["parent_cell_id"] for r in _derived(store).values()} == {done.cell_id}


def test_a_parent_run_again_makes_its_derived_cells_stale(trained: Path) -> None:
    (parent,) = _cells(trained)
    store = ScoreStore(trained / "out" / "store")
    assert main(_perturb(trained), console=_console()) == 0
    rec = store.record(parent.cell_id)
    store.write_record(parent.cell_id, {**rec, "finished_at": "2099-01-01T00:00:00+00:00"}, "done")
    con = _console()
    assert main(_perturb(trained, "--dry-run"), console=con) == 0
    text = con.export_text()
    assert text.count("stale (parent re-run)") == 3 and "scored an earlier run of their parent" in text
    assert main(_perturb(trained), console=(con := _console())) == 0
    assert "perturbed cells: 3 to run, 0 already done" in con.export_text()
    assert {r["parent"]["finished_at"] for r in _derived(store).values()} == {"2099-01-01T00:00:00+00:00"}


def test_the_grids_perturb_section_runs_after_training(faces: Path) -> None:
    """What ``make bench`` does on the demo grid: train, then the grid's (per-detector) subset."""
    section = {"distortions": ["JPEG"], "levels": [2, 3], "views": [{"interpolation": "nearest"}]}
    write_grid(
        faces,
        defaults={"detector": TINY, "data": {"num_workers": 0}, "perturb": section},
        per_detector={"resnet34": {"perturb": {"levels": [3]}}},
    )
    con = _console()
    assert main(_args(faces, "--dry-run"), console=con) == 0
    assert "perturbed cells" not in con.export_text()  # nothing finished yet: nothing to derive
    con = _console()
    assert main(_args(faces), console=con) == 0
    assert "perturbed cells: 2 to run" in con.export_text()
    assert set(_derived(ScoreStore(faces / "out" / "store"))) == {"jpeg_compression@3", "nearest"}


def test_released_weights_are_scored_under_a_condition_from_the_published_file(faces: Path) -> None:
    from tests.test_run_released import write_deepfakebench_xception

    weights = write_deepfakebench_xception(faces / "weights" / "xception_best.pth")
    write_grid(faces, detectors=["xception"], defaults={"detector": TINY, "data": {"num_workers": 0}})
    released = ("--weights", "released", "--weights-dir", str(faces / "weights"))
    assert main(_args(faces, *released), console=_console()) == 0
    assert main(_perturb(faces, *released), console=_console()) == 0
    store = ScoreStore(faces / "out" / "store")
    derived = _derived(store)
    assert set(derived) == TAGS
    for rec in derived.values():
        assert rec["checkpoint"] == str(weights.resolve()) and rec["weights"]["mode"] == "released"
        assert rec["checkpoint_sha256"] == file_sha256(weights)
    clean = store.read_scores(split="test")
    blur = store.read_scores(derived=True, perturbation="gaussian_blur@5")
    both = blur.merge(clean, on=["test_set", "sample_id"], suffixes=("", "_clean"), validate="one_to_one")
    assert len(both) == 2 * FRAMES_PER_TEST_SET and (both.score != both.score_clean).any()


# --------------------------------------------------------------------------- bad input
def test_a_datamodule_that_ignores_the_condition_is_refused(tmp_path: Path) -> None:
    """The synthetic datamodule cannot distort images: its scores would be clean ones under the
    condition's name, so the derived cell fails, naming the factory."""
    from benchmark.runner.cell import CellFailed, run_cell

    write_data_config(tmp_path)
    write_grid(tmp_path)
    rt = Runtime(store_root=tmp_path / "out/store", work_root=tmp_path / "out/cells", progress_bar=False)
    (parent,) = plan_cells(load_grid(tmp_path / "tiny.yaml"), parse_data_config(tmp_path / "datasets.yaml"),
                           datamodule="tests.runner_fixtures:synthetic", runtime=rt)  # fmt: skip
    run_cell(parent)
    derived = derive(parent, Condition(get_perturbation("GB", 2)))
    with pytest.raises(
        CellFailed, match=r"'tests.runner_fixtures:synthetic' does not apply .* 'gaussian_blur@2'"
    ):
        run_cell(derived)
    assert ScoreStore(tmp_path / "out" / "store").record(derived.cell_id)["status"] == "failed"


def test_bad_sweeps_name_the_culprit(faces: Path) -> None:
    con = _console()
    assert main(_args(faces, "--perturb", "nope"), console=con) == 2
    assert "unknown sweep 'nope'; known: deeperforensics, sensitivity, grid" in con.export_text()
    con = _console()
    assert main(_args(faces, "--perturb", "grid"), console=con) == 2
    assert "(grid 'tiny' has no perturb section)" in con.export_text()
    bad = write_grid(faces, "bad", defaults={"perturb": {"distortions": ["fog"]}})
    with pytest.raises(GridError, match=r"bad.yaml: defaults.perturb: unknown perturbation 'fog'"):
        load_grid(bad)
    bad = write_grid(faces, "bad2", per_detector={"resnet34": {"perturb": {"views": [{"zoom": 0.8}]}}})
    with pytest.raises(GridError, match=r"per_detector.resnet34.perturb: views\[0\]: CropView.zoom must be"):
        load_grid(bad)
    bad = write_grid(faces, "bad3", defaults={"perturb": {"level": [1]}})
    with pytest.raises(GridError, match=r"unknown key\(s\) \['level'\]; known keys: distortions, levels"):
        load_grid(bad)
    (faces / "s.yaml").write_text("views: [{zoom: 1.2, margin: 1}]\n")
    with pytest.raises(SweepError, match=r"s.yaml: views\[0\]: unknown view key\(s\) \['margin'\]"):
        sweep_conditions([str(faces / "s.yaml")])


# --------------------------------------------------------------------------- records and sweeps
def test_named_sweeps() -> None:
    df = deeperforensics()
    assert len(df) == 35 and len({c.tag for c in df}) == 35
    assert df[0].tag == "color_saturation@1" and df[-1].tag == "video_compression@5"
    views = sensitivity()
    assert [c.tag for c in views] == [
        "zoom1.1", "zoom1.2", "zoom1.3", "zoom1.4", "zoom1.5", "nearest", "bilinear", "bicubic", "area",
        "lanczos", "crop128", "crop160", "crop192", "crop224",
    ]  # fmt: skip
    assert sweep_conditions(["sensitivity", "sensitivity"]) == views  # no repeats
    both = Condition(get_perturbation("GB", 2), CropView(zoom=1.2))
    assert both.tag == "gaussian_blur@2+zoom1.2"
    assert Condition(get_perturbation("clean", 0), CropView()).is_clean


def test_a_derived_cells_config_is_its_parents_plus_the_condition(faces: Path) -> None:
    (parent,) = _cells(faces)
    blur = derive(parent, Condition(get_perturbation("GB", 3, seed=2)))
    view = derive(parent, Condition(view=CropView(interpolation="bicubic")))
    assert blur.parent_id == view.parent_id == parent.cell_id and parent.parent_id is None
    assert len({parent.cell_id, blur.cell_id, view.cell_id}) == 3
    assert blur.config.to_json()["perturbation"] == {
        "name": "gaussian_blur", "level": 3, "params": {"kernel": 13}, "seed": 2, "kind": "image",
    }  # fmt: skip
    assert "perturbation" not in parent.config.to_json() and "view" not in parent.config.to_json()
    spec = json.loads(json.dumps(blur.to_json()))
    assert Cell.from_json(spec) == blur and blur.label.endswith("| seed 0 | gaussian_blur@3")
    assert derive(parent, Condition(get_perturbation("GB", 3, seed=2))).cell_id == blur.cell_id
    changed = json.loads(json.dumps(spec["config"]))
    changed["perturbation"]["params"] = {"kernel": 11}  # a record the registry no longer matches
    with pytest.raises(ValueError, match=r"cell config: perturbation .* registry now has \{'kernel': 13\}"):
        CellConfig.from_json(changed)
    with pytest.raises(ValueError, match="itself derived"):
        derive(blur, Condition(view=CropView(zoom=1.1)))


def test_the_store_keeps_derived_cells_out_of_plain_reads(tmp_path: Path) -> None:
    store = ScoreStore(tmp_path)
    rows = pd.DataFrame({
        "test_set": "a", "split": "test", "dataset": "a", "video_id": ["a/0/v", "a/1/v"],
        "sample_id": ["a/0/v/0", "a/1/v/0"], "label": [0, 1], "method": ["real", "fake"],
        "score": [0.2, 0.7], "detector": "d", "train_set": "t",
    })  # fmt: skip
    store.write_cell("parent0", rows, {})
    store.write_cell(
        "child00", rows.assign(score=[0.4, 0.5], perturbation="x@1"), {"parent_cell_id": "parent0"}
    )
    assert list(store.read_scores().cell_id.unique()) == ["parent0"]
    assert list(store.read_scores(derived=True).score) == [0.4, 0.5]
    assert sorted(store.read_scores(derived=None).cell_id.unique()) == ["child00", "parent0"]
    assert store.read_scores(derived=None).set_index("cell_id").loc["parent0", "perturbation"].isna().all()


def test_the_live_table_names_each_cells_condition(faces: Path) -> None:
    from benchmark.runner.monitor import Job, jobs_table

    (parent,) = _cells(faces)
    jobs = [Job(parent), Job(derive(parent, Condition(view=CropView(crop_size=160))))]
    con = _console()
    con.print(jobs_table(jobs))
    text = con.export_text()
    assert "condition" in text and "crop160" in text and "clean" in text
    con = _console()
    con.print(jobs_table(jobs[:1]))  # a sweep without derived cells: the table as before
    assert "condition" not in con.export_text()

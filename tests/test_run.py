"""The runner: planning, hashing, resume, failures, bad input, the local/SLURM launchers and CPU DDP."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from benchmark.run import main
from benchmark.runner.cell import run_cell
from benchmark.runner.cells import Cell, Runtime, config_hash
from benchmark.runner.data_config import DataConfigError, load_data_config, parse_data_config
from benchmark.runner.grid import GridError, load_grid
from benchmark.runner.launchers import InlineLauncher, SlurmLauncher
from benchmark.runner.monitor import DONE, FAILED, Job, Monitor
from benchmark.runner.plan import plan_cells, resolve_grid
from benchmark.store import ScoreStore
from tests.runner_fixtures import RaiseAtEpoch, write_data_config, write_grid

ROOT = Path(__file__).resolve().parents[1]
N_PER_SET = 8  # synthetic factory: 8 samples per split and set


def _console() -> Console:
    return Console(record=True, width=200, force_terminal=False)


def _record(store: ScoreStore, cell_id: str) -> dict:
    assert list(store.read_records()["cell_id"]).count(cell_id) == 1
    return store.record(cell_id)


def _args(root: Path, *extra: str, factory: str = "synthetic", leaderboard: bool = False) -> list[str]:
    lb = ["--leaderboards", str(root / "lb")] if leaderboard else ["--no-leaderboard"]
    return [
        "--grid",
        str(root / "tiny.yaml"),
        "--data",
        str(root / "datasets.yaml"),
        "--out",
        str(root / "out"),
        "--datamodule",
        f"tests.runner_fixtures:{factory}",
        *lb,
        *extra,
    ]


def _cells(root: Path, factory: str = "synthetic", **kw) -> list[Cell]:
    data = parse_data_config(root / "datasets.yaml")
    rt = Runtime(store_root=root / "out/store", work_root=root / "out/cells", progress_bar=False)
    return plan_cells(
        load_grid(root / "tiny.yaml"), data, datamodule=f"tests.runner_fixtures:{factory}", runtime=rt, **kw
    )


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    write_data_config(tmp_path)
    write_grid(tmp_path)
    return tmp_path


# --------------------------------------------------------------------------- planning and hashing
def test_cell_ids_are_stable_and_depend_on_the_whole_config(tiny: Path) -> None:
    a, b = _cells(tiny), _cells(tiny)
    assert [c.cell_id for c in a] == [c.cell_id for c in b]
    cfg = a[0].config.to_json()
    # key order does not matter, every setting does, paths and devices do not
    assert config_hash(dict(reversed(list(cfg.items())))) == a[0].cell_id
    changed = json.loads(json.dumps(cfg))
    changed["recipe"]["lr"] = 1e-3
    assert config_hash(changed) != a[0].cell_id
    moved = Cell(a[0].config, Runtime(store_root="/elsewhere", devices=4))
    assert moved.cell_id == a[0].cell_id
    assert len({c.cell_id for c in _cells(tiny, seeds=[0, 1, 2])}) == 3


def test_cell_ids_are_the_same_in_another_process(tiny: Path) -> None:
    cell = _cells(tiny, seeds=[0, 5])[1]
    (tiny / "cfg.json").write_text(
        json.dumps(cell.config.to_json(), indent=3)
    )  # other whitespace, same content
    code = "import json, sys; from benchmark.runner.cells import config_hash; print(config_hash(json.load(open(sys.argv[1]))))"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tiny / "cfg.json")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == cell.cell_id


def test_dry_run_lists_cells_and_runs_nothing(tiny: Path) -> None:
    con = _console()
    assert main(_args(tiny, "--dry-run", "--seeds", "0", "3"), console=con) == 0
    text = con.export_text()
    for cell in _cells(tiny, seeds=[0, 3]):
        assert cell.cell_id in text
    assert text.count("todo") == 2
    assert not (tiny / "out" / "cells").exists()


# --------------------------------------------------------------------------- bad input
def test_unknown_grid_lists_known_grids() -> None:
    with pytest.raises(GridError, match=r"unknown grid 'nope'.*cross.*demo"):
        load_grid("nope")


def test_unknown_yaml_keys_are_named(tiny: Path) -> None:
    with pytest.raises(GridError, match=r"unknown key\(s\) \['detector_list'\]"):
        load_grid(write_grid(tiny, "bad1", detector_list=["x"]))
    bad = write_grid(tiny, "bad2", defaults={"trainer": {"max_epoch": 3}})
    with pytest.raises(GridError, match=r"defaults.trainer: unknown key\(s\) \['max_epoch'\]"):
        load_grid(bad)
    bad = write_grid(tiny, "bad3", test_sets=[{"name": "a", "dataset": "a", "method": ["x"]}])
    with pytest.raises(GridError, match=r"unknown key\(s\) \['method'\]"):
        load_grid(bad)


def test_unknown_detector_and_dataset_list_known_ones(tiny: Path) -> None:
    with pytest.raises(
        GridError, match=r"unknown detector\(s\) \['no_such_net'\].*known detectors: .*resnet34"
    ):
        _cells(tiny, detectors=["no_such_net"])
    with pytest.raises(GridError, match=r"unknown dataset\(s\) \['zz'\].*a, b, train"):
        _cells(tiny, datasets=["zz"])
    grid = load_grid(write_grid(tiny, "other", test_sets=["a", "CDF-v2"]))
    data = parse_data_config(tiny / "datasets.yaml")
    with pytest.raises(GridError, match=r"\['CDF-v2'\].*configured: a, b, train"):
        plan_cells(grid, data)
    bad = write_grid(tiny, "badover", defaults={"detector": {"no_such_arg": 1}})
    with pytest.raises(GridError, match=r"\['no_such_arg'\] are not arguments of resnet34"):
        plan_cells(load_grid(bad), data)
    con = _console()
    assert main(_args(tiny, "--detectors", "no_such_net"), console=con) == 2
    assert "known detectors" in con.export_text()


def test_data_config_errors(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text("datasets: {X: {layout: ffpp}}\n")
    with pytest.raises(DataConfigError, match=r"dataset 'X' needs at least 'layout' and 'root'"):
        parse_data_config(tmp_path / "d.yaml")
    (tmp_path / "e.yaml").write_text("datasets: {X: {layout: ffpp, root: r}}\nroots: 1\n")
    with pytest.raises(DataConfigError, match=r"unknown key\(s\) \['roots'\]"):
        parse_data_config(tmp_path / "e.yaml")
    with pytest.raises(DataConfigError, match="not found"):
        load_data_config(tmp_path / "missing.yaml")


def test_no_data_configured_uses_the_demo_and_cross_falls_back(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FORGERY_BENCH_DATA", raising=False)
    demo = tmp_path / "data" / "demo"
    demo.mkdir(parents=True)
    (demo / "datasets.yaml").write_text(
        "datasets:\n" + "".join(f"  demo-{n}: {{layout: x, root: .}}\n" for n in ("FF", "CDF", "DFDC"))
    )
    data = load_data_config()
    assert data.origin == "demo" and "DEMO" in data.note
    grid, note = resolve_grid("cross", data)
    assert grid.name == "demo" and "instead" in note
    assert resolve_grid("demo", data)[1] == ""


# --------------------------------------------------------------------------- sweeps
def test_crashing_cell_is_recorded_the_sweep_goes_on_and_resume_skips_done(tiny: Path) -> None:
    con = _console()
    args = _args(tiny, "--launcher", "inline", "--seeds", "0", "1", factory="crash_seed0", leaderboard=True)
    assert main(args, console=con) == 1
    crashed, ok = _cells(tiny, factory="crash_seed0", seeds=[0, 1])
    store = ScoreStore(tiny / "out" / "store")
    assert not store.is_done(crashed.cell_id) and store.is_done(ok.cell_id)
    rec = _record(store, crashed.cell_id)
    assert rec["status"] == "failed"
    assert "ValueError: synthetic crash of the seed-0 cell" in rec["traceback"]
    text = con.export_text()
    assert "FAILED" in text and "synthetic crash" in text
    assert re.search(r"wall time \d+:\d\d: the whole command \(2 cells run", text), text
    scores = store.read_scores()
    assert set(scores["cell_id"]) == {ok.cell_id}
    assert len(scores) == 3 * N_PER_SET and not scores.duplicated(["test_set", "sample_id"]).any()
    assert set(scores[scores.split == "val"]["test_set"]) == {"train"}
    assert set(scores[scores.split == "test"]["test_set"]) == {"a", "b"}
    # the sweep ends with the leaderboards of what is done; CSV logs are always written
    assert "[resnet34](tiny/resnet34.md)" in (tiny / "lb" / "README.md").read_text()
    assert list((tiny / "out" / "cells" / ok.cell_id / "logs").rglob("metrics.csv"))

    # Re-run: the done cell is skipped (its files untouched), the failed one is tried again.
    stamp = {p: p.stat().st_mtime_ns for p in (tiny / "out" / "store").rglob("*") if ok.cell_id in str(p)}
    con = _console()
    assert (
        main(_args(tiny, "--launcher", "inline", "--seeds", "0", "1", factory="crash_seed0"), console=con)
        == 1
    )
    text = con.export_text()
    assert "skipped (done)" in text, text
    assert stamp == {p: p.stat().st_mtime_ns for p in stamp}
    con = _console()
    main(_args(tiny, "--dry-run", "--seeds", "0", "1", factory="crash_seed0"), console=con)
    text = con.export_text()
    assert "failed" in text and "done" in text


def test_cell_killed_mid_fit_is_resumed_and_counted_once(tiny: Path) -> None:
    (cell,) = _cells(tiny)
    store = ScoreStore(tiny / "out" / "store")
    jobs = [Job(cell)]
    InlineLauncher(callbacks=[RaiseAtEpoch(1)]).run(jobs, Monitor(jobs, "t", _console()))
    assert jobs[0].status == FAILED and not store.is_done(cell.cell_id)
    assert (cell.cell_dir / "checkpoints" / "last.ckpt").is_file()
    assert store.read_scores().empty or cell.cell_id not in set(store.read_scores()["cell_id"])

    rec = run_cell(cell)
    assert rec["status"] == "done" and rec["resumed"] is True
    assert rec["arch_defaults"] == {"arch": "resnet34", "pretrained": True, "input_size": 256}
    assert rec["recipe_overrides"]["epochs"] == [10, 2]
    assert rec["reference"] == "paper"  # the grid names none: the paper's recipe
    jobs = [Job(cell)]
    InlineLauncher().run(jobs, Monitor(jobs, "t", _console()))  # an explicit second run replaces, never adds
    assert jobs[0].status == DONE
    scores = store.read_scores()
    assert len(scores) == 3 * N_PER_SET
    assert not scores.duplicated(["cell_id", "test_set", "sample_id"]).any()
    assert _record(store, cell.cell_id)["status"] == "done"


def test_one_test_call_scores_every_set_and_method_subsets_keep_the_manifest_name(tiny: Path) -> None:
    """Source val + test sets in one Trainer.test: ``dataset`` holds the manifest's name, ``test_set`` the
    set's; a method subset (its reals shared) gets ``@<set>`` ids; the metrics' axis is the set."""
    subset = {"name": "a/fake", "dataset": "a", "methods": ["fake"]}
    write_grid(tiny, test_sets=["a", subset, "b"])
    (cell,) = _cells(tiny)
    import lightning as L

    class CountTests(L.Callback):
        calls: list[int] = []

        def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.calls.append(len(trainer.num_test_batches))

    rec = run_cell(cell, callbacks=[CountTests()])
    assert CountTests.calls == [4]  # one Trainer.test, one loader per set
    store = ScoreStore(tiny / "out" / "store")
    stored = store.read_scores(axis="dataset")
    assert rec["n_scores"] == len(stored) == 4 * N_PER_SET
    sets = list(zip(stored.test_set, stored.split, stored.dataset, strict=True))
    assert list(dict.fromkeys(sets)) == [("train", "val", "train"), ("a", "test", "a"), ("a/fake", "test", "a"),
                                         ("b", "test", "b")]  # fmt: skip
    a, sub = stored[stored.test_set == "a"], stored[stored.test_set == "a/fake"]
    assert list(sub.sample_id) == [i + "@a/fake" for i in a.sample_id]
    assert list(sub.video_id) == [i + "@a/fake" for i in a.video_id]
    assert sub.score.to_numpy() == pytest.approx(a.score.to_numpy(), rel=1e-6)
    axis = store.read_scores()
    assert (axis.dataset == axis.test_set).all() and (axis.manifest_dataset == stored.dataset).all()


def test_a_datamodule_without_the_cells_evaluation_sets_is_refused(tiny: Path) -> None:
    from benchmark.runner.cell import CellFailed

    (cell,) = _cells(tiny, factory="test_sets_only")
    with pytest.raises(
        CellFailed, match=r"factory 'tests.runner_fixtures:test_sets_only' serves evaluation sets"
    ):
        run_cell(cell)
    assert not (cell.cell_dir / "checkpoints").exists()  # refused before any training


@pytest.mark.slow
def test_sigkilled_cell_process_is_recorded_then_redone_once(tiny: Path, monkeypatch) -> None:
    """The local launcher runs the cell in its own process; that process SIGKILLs itself in epoch 2."""
    monkeypatch.setenv("RUNNER_TEST_KILL_MARKER", str(tiny / "killed"))
    con = _console()
    assert main(_args(tiny, factory="killing"), console=con) == 1
    assert "killed by signal 9" in con.export_text()
    (cell,) = _cells(tiny, factory="killing")
    store = ScoreStore(tiny / "out" / "store")
    assert not store.is_done(cell.cell_id) and store.record(cell.cell_id)["status"] == "failed"
    con = _console()
    assert main(_args(tiny, factory="killing"), console=con) == 0, con.export_text()
    rec = _record(store, cell.cell_id)
    assert rec["status"] == "done" and rec["resumed"] is True
    scores = store.read_scores()
    assert len(scores) == 3 * N_PER_SET and not scores.duplicated(["test_set", "sample_id"]).any()


@pytest.mark.slow
def test_slurm_launcher_with_submitit_debug_executor(tiny: Path) -> None:
    (cell,) = _cells(tiny)
    jobs = [Job(cell)]
    SlurmLauncher(tiny / "slurm", cluster="debug").run(jobs, Monitor(jobs, "t", _console()))
    assert jobs[0].status == DONE
    assert ScoreStore(tiny / "out" / "store").is_done(cell.cell_id)


@pytest.mark.slow
def test_two_process_cpu_ddp_gives_the_single_process_score_set(tiny: Path) -> None:
    """11 samples per set on 2 gloo ranks: DistributedSampler pads one; the stored set must be exact."""
    con = _console()
    code = main(_args(tiny, "--devices", "2", "--accelerator", "cpu", factory="synthetic_odd"), console=con)
    assert code == 0, con.export_text()
    (cell,) = _cells(tiny, factory="synthetic_odd")
    store = ScoreStore(tiny / "out" / "store")
    ddp = store.read_scores()
    rec = _record(store, cell.cell_id)
    assert rec["devices"] == 2

    # The same checkpoint scored by one process: through the same path (one Trainer.test, ScoreWriter)
    # and by the bare model on each evaluation set's loader (no Lightning, no writer).
    import lightning as L
    import torch

    from benchmark.runner.score_writer import ScoreWriter
    from detectors import load_detector
    from tests.runner_fixtures import synthetic_odd

    model = load_detector(rec["checkpoint"], expected="resnet34")
    dm = synthetic_odd(cell.config, model.data_spec, {})
    writer = ScoreWriter()
    trainer = L.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, callbacks=[writer]
    )
    trainer.test(model, datamodule=dm, verbose=False)
    single = pd.DataFrame(writer.rows)
    bare = []
    with torch.no_grad():
        for s, loader in zip(dm.eval_sets, dm.test_dataloader(), strict=True):
            for batch in loader:
                p = torch.sigmoid(model.eval()(batch).logits).tolist()
                bare += [
                    {"test_set": s.name, "sample_id": i, "score": v}
                    for i, v in zip(batch.sample_id, p, strict=True)
                ]
    bare = pd.DataFrame(bare)
    assert [s.name for s in dm.eval_sets] == ["train", "a", "b"]
    assert len(ddp) == len(single) == len(bare) == 3 * 11
    assert not ddp.duplicated(["test_set", "sample_id"]).any()
    key = ["test_set", "sample_id"]
    for one in (single, bare):
        merged = ddp.merge(one, on=key, suffixes=("_ddp", "_one"), validate="one_to_one")
        assert len(merged) == len(one)
        assert (merged.score_ddp - merged.score_one).abs().max() < 1e-5
    merged = ddp.merge(single, on=key, suffixes=("_ddp", "_one"), validate="one_to_one")
    assert (merged.label_ddp == merged.label_one).all()
    assert (merged.split_ddp == merged.split_one).all() and (merged.dataset_ddp == merged.dataset_one).all()


def test_missing_manifests_are_preprocessed_first(tiny: Path, monkeypatch) -> None:
    """ensure_manifests calls preprocessing for missing manifests only, with the processed root."""
    from benchmark.runner.cell_data import ensure_manifests

    calls = []

    def fake_preprocess(name, layout, root, out, **options):
        calls.append((name, layout, Path(root), Path(out), options))
        path = Path(out) / name / "manifest.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"PAR1")
        return path

    monkeypatch.setattr("datamodules.preprocess.preprocess_dataset", fake_preprocess)
    (cell,) = _cells(tiny)
    processed = cell.runtime.processed_root
    (processed / "a").mkdir(parents=True)
    (processed / "a" / "manifest.parquet").write_bytes(b"PAR1")  # already there: not redone
    paths = ensure_manifests(cell.config, cell.runtime)
    assert sorted(c[0] for c in calls) == ["b", "train"]
    assert all(c[1] == "synthetic" and c[3] == processed for c in calls)
    assert paths == {n: processed / n / "manifest.parquet" for n in ("a", "b", "train")}
    assert ensure_manifests(cell.config, cell.runtime) == paths and len(calls) == 2


def test_device_slots_and_no_free_device(monkeypatch) -> None:
    import benchmark.runner.launchers as la

    assert la.device_slots(2, "cpu") == [None]
    monkeypatch.setattr(la, "free_gpus", lambda: [0, 1, 2, 3, 5])
    assert la.device_slots(2, "auto") == [[0, 1], [2, 3]]
    assert la.device_slots(1, "gpu") == [[0], [1], [2], [3], [5]]
    monkeypatch.setattr(la, "free_gpus", lambda: [3])
    with pytest.raises(la.NoFreeDeviceError, match=r"asks for 2 GPUs, free GPUs: \[3\]"):
        la.device_slots(2, "auto")
    monkeypatch.setattr(la, "free_gpus", lambda: [])
    with pytest.raises(la.NoFreeDeviceError, match="no free GPU"):
        la.device_slots(1, "gpu")
    assert la.device_slots(1, "auto") == [None]  # no GPU at all: one CPU slot


@pytest.mark.slow
def test_wandb_offline_logging(tiny: Path, monkeypatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tiny / "wandb-home"))
    (cell,) = _cells(tiny)
    cell = cell.with_runtime(wandb=True)
    run_cell(cell)
    work = cell.cell_dir
    assert list(work.rglob("offline-run-*")), "no offline W&B run written"
    assert list((work / "logs").rglob("metrics.csv"))


def test_truncated_last_checkpoint_restarts_from_scratch(tiny: Path) -> None:
    from benchmark.runner.cell import _readable_checkpoint

    good = tiny / "good.ckpt"
    import torch

    torch.save({"state_dict": {"w": torch.ones(3)}}, good)
    assert _readable_checkpoint(good) and good.is_file()
    bad = tiny / "last.ckpt"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    assert not _readable_checkpoint(bad)
    assert not bad.exists() and (tiny / "last.ckpt.unreadable").is_file()


def test_ensure_manifests_runs_the_real_preprocessing(tmp_path: Path) -> None:
    import cv2
    import skimage.data
    import yaml

    from benchmark.runner.cell_data import ensure_manifests

    (tmp_path / "faces" / "real").mkdir(parents=True)
    cv2.imwrite(
        str(tmp_path / "faces" / "real" / "a.png"), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    )
    opts = {"layout": "folder", "root": "faces", "frames": 2, "backend": "mtcnn", "progress": False}
    (tmp_path / "d.yaml").write_text(yaml.safe_dump({"datasets": {"P": opts}}))
    grid = write_grid(tmp_path, train_sets=["P"], test_sets=["P"])
    (cell,) = plan_cells(load_grid(grid), parse_data_config(tmp_path / "d.yaml"))
    assert cell.config.to_json()["datasets"]["P"] == {
        "layout": "folder",
        "options": {"frames": 2, "backend": "mtcnn", "progress": False},
    }
    paths = ensure_manifests(cell.config, cell.runtime)
    assert paths["P"] == tmp_path / "processed" / "P" / "manifest.parquet" and paths["P"].is_file()
    assert (pd.read_parquet(paths["P"])["status"] == "ok").all()


def test_force_and_no_resume(tiny: Path, monkeypatch) -> None:
    """--force requeues done cells from scratch; --no-resume drops an unfinished cell's checkpoints."""
    import benchmark.run as run_mod

    seen: list[list[str]] = []
    monkeypatch.setattr(
        run_mod.InlineLauncher, "run", lambda self, jobs, mon: seen.append([j.status for j in jobs])
    )
    done, partial = _cells(tiny, seeds=[0, 1])
    store = ScoreStore(tiny / "out" / "store")
    rows = pd.DataFrame(
        {
            "test_set": "a",
            "split": "test",
            "dataset": "a",
            "video_id": ["a/0/v", "a/1/v"],
            "sample_id": ["a/0/v/0", "a/1/v/0"],
            "label": [0, 1],
            "method": ["real", "fake"],
            "score": [0.2, 0.7],
            "detector": "resnet34",
            "train_set": "train",
        }
    )
    store.write_cell(done.cell_id, rows, {"config": done.config.to_json()})
    for c in (done, partial):
        ck = c.cell_dir / "checkpoints"
        ck.mkdir(parents=True)
        (ck / "last.ckpt").write_bytes(b"x")
    base = _args(tiny, "--launcher", "inline", "--seeds", "0", "1")
    assert main(base, console=_console()) == 0
    assert seen[-1] == ["skipped (done)", "queued"]
    assert (partial.cell_dir / "checkpoints" / "last.ckpt").is_file()
    assert main([*base, "--no-resume"], console=_console()) == 0
    assert seen[-1] == ["skipped (done)", "queued"]
    assert not (partial.cell_dir / "checkpoints").exists()
    assert (done.cell_dir / "checkpoints" / "last.ckpt").is_file()
    assert main([*base, "--force"], console=_console()) == 0
    assert seen[-1] == ["queued", "queued"]
    assert not (done.cell_dir / "checkpoints").exists()


def test_build_datamodule_serves_the_real_forgery_datamodule(tmp_path: Path) -> None:
    """The default factory builds ForgeryDataModule from a cell config: source val split, one test loader per set."""
    import cv2
    import skimage.data
    import yaml

    from benchmark.runner.cell_data import build_datamodule, ensure_manifests
    from detectors import create_detector, get_detector_class

    face = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    for split in ("train", "val", "test"):
        for label in ("real", "fake"):
            d = tmp_path / "faces" / split / label
            d.mkdir(parents=True)
            cv2.imwrite(str(d / f"{split}_{label}.png"), np.roll(face, 7 * len(split), axis=1))
    opts = {"layout": "folder", "root": "faces", "frames": 1, "backend": "mtcnn", "progress": False}
    (tmp_path / "d.yaml").write_text(yaml.safe_dump({"datasets": {"P": opts}}))
    over = {
        **get_detector_class("resnet34").tiny_config,
        "batch_size": 2,
        "eval_batch_size": 2,
        "augment": False,
    }
    grid = write_grid(tmp_path, train_sets=["P"], test_sets=["P"], defaults={"detector": over})
    (cell,) = plan_cells(load_grid(grid), parse_data_config(tmp_path / "d.yaml"))
    manifests = ensure_manifests(cell.config, cell.runtime)
    model = create_detector("resnet34", **over)
    dm = build_datamodule(cell.config, model.data_spec, manifests)
    dm.setup("fit")
    val = next(iter(dm.val_dataloader()))
    assert len(val) == 2 and sorted(val.label.tolist()) == [0, 1]
    assert all("/val_" in v for v in val.video_id), val.video_id
    dm.setup("test")
    (loader,) = [ld for s, ld in zip(dm.eval_sets, dm.test_dataloader(), strict=True) if s.split == "test"]
    batch = next(iter(loader))
    assert batch.image.shape[-1] == model.data_spec.input_size
    assert all("/test_" in v for v in batch.video_id), batch.video_id


# --------------------------------------------------------------------------- output to a file
def _one_line_per_event(text: str, cell_id: str) -> None:
    """The sweep's output holds exactly these event lines, in this order: the cell started, each epoch,
    each scored loader (the source val split and the two test sets), the cell done."""
    tag = re.escape(f"resnet34 | train | seed 0 {cell_id}")
    events = [line for line in text.splitlines() if line.startswith("[") and cell_id in line]
    expected = [
        rf"\[running\] {tag}$",
        rf"\[epoch\] {tag}: 1/2 done in \d+ s: train/loss \d\.\d{{4}}, val/loss \d\.\d{{4}}, val/auc \d\.\d{{4}}$",
        rf"\[epoch\] {tag}: 2/2 done in \d+ s: .*val/auc",
        rf"\[scored\] {tag}: train \(val\): {N_PER_SET} samples$",  # the source val split (set 'train')
        rf"\[scored\] {tag}: a \(test\): {N_PER_SET} samples$",
        rf"\[scored\] {tag}: b \(test\): {N_PER_SET} samples$",
        rf"\[done\] {tag} \d+:\d\d$",
    ]
    assert len(events) == len(expected), text
    for line, pattern in zip(events, expected, strict=True):
        assert re.match(pattern, line), (pattern, line)
    assert "\x1b[" not in text and "Epoch 0" not in text  # no terminal control codes, no progress-bar frame


@pytest.mark.slow
def test_output_to_a_file_is_one_line_per_event(tiny: Path) -> None:
    """``python -m benchmark.run > file``: no live table frozen at 0:00 and no rich bar, but one line per
    event; the local launcher copies a cell's event lines from its process's log as they come."""
    (cell,) = _cells(tiny)
    log = tiny / "sweep.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "w") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmark.run", *_args(tiny)],
            cwd=tiny,
            env=env,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            timeout=600,
        )
    assert proc.returncode == 0, proc.stderr[-3000:]
    _one_line_per_event(log.read_text(), cell.cell_id)


def test_inline_cells_print_their_own_event_lines_when_not_a_terminal(tiny: Path, capsys) -> None:
    """In-process cells (stdout captured, not a terminal) print the same event lines themselves."""
    (cell,) = _cells(tiny)
    console = Console(file=sys.stdout, width=200, force_terminal=False)
    assert main(_args(tiny, "--launcher", "inline"), console=console) == 0
    _one_line_per_event(capsys.readouterr().out, cell.cell_id)

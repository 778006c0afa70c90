"""Cells that span nodes: ``--num-nodes``, the Runtime field, the trainer, and the SLURM job submitit writes.

The multi-node run goes through the real chain: ``python -m benchmark.run --launcher slurm`` -> submitit's
sbatch script -> ``srun`` -> one task per device on every node -> Lightning's ``SLURMEnvironment`` ->
gloo DDP on the CPU. SLURM itself is replaced by ``tests.fake_slurm`` (every node is this machine).
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from benchmark.run import main
from benchmark.runner.cells import Cell, Runtime
from benchmark.runner.data_config import parse_data_config
from benchmark.runner.grid import load_grid
from benchmark.runner.launchers import SlurmLauncher
from benchmark.runner.plan import plan_cells
from benchmark.store import ScoreStore
from tests import fake_slurm
from tests.runner_fixtures import write_data_config, write_grid


def _console() -> Console:
    return Console(record=True, width=200, force_terminal=False)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    write_data_config(tmp_path)
    write_grid(tmp_path)
    return tmp_path


def _args(root: Path, *extra: str, factory: str = "synthetic") -> list[str]:
    return [
        *(
            "--grid",
            str(root / "tiny.yaml"),
            "--data",
            str(root / "datasets.yaml"),
            "--out",
            str(root / "out"),
        ),
        *("--datamodule", f"tests.runner_fixtures:{factory}", "--no-leaderboard", *extra),
    ]


def _cell(root: Path, factory: str = "synthetic") -> Cell:
    data = parse_data_config(root / "datasets.yaml")
    rt = Runtime(store_root=root / "out/store", work_root=root / "out/cells", progress_bar=False)
    (cell,) = plan_cells(
        load_grid(root / "tiny.yaml"), data, datamodule=f"tests.runner_fixtures:{factory}", runtime=rt
    )
    return cell


@pytest.fixture
def slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``tests.fake_slurm``'s sbatch, srun, sacct and scancel first on PATH; yields the state folder."""
    for name, value in fake_slurm.install(tmp_path / "slurm-bin", tmp_path / "slurm-state").items():
        monkeypatch.setenv(name, value)
    yield tmp_path / "slurm-state"
    fake_slurm.jobs_ended(tmp_path / "slurm-state")


def test_num_nodes_is_runtime_and_never_changes_the_cell_id(tiny: Path) -> None:
    cell = _cell(tiny)
    assert cell.runtime.num_nodes == 1
    spread = cell.with_runtime(num_nodes=4, devices=8)
    assert spread.cell_id == cell.cell_id and "num_nodes" not in json.dumps(spread.config.to_json())
    assert Cell.from_json(json.loads(json.dumps(spread.to_json()))).runtime.num_nodes == 4
    old = {k: v for k, v in cell.runtime.to_json().items() if k != "num_nodes"}  # a spec written before
    assert Runtime.from_json(old).num_nodes == 1


def test_trainer_spans_num_nodes_with_ddp(tiny: Path) -> None:
    from lightning.pytorch.strategies import DDPStrategy

    from benchmark.runner.cell import _trainer

    cell = _cell(tiny).with_runtime(num_nodes=2, devices=1, accelerator="cpu")
    trainer, _ = _trainer(cell, tiny / "work", [])
    assert trainer.num_nodes == 2 and isinstance(trainer.strategy, DDPStrategy)
    trainer, _ = _trainer(cell.with_runtime(num_nodes=1), tiny / "work", [])
    assert trainer.num_nodes == 1 and not isinstance(trainer.strategy, DDPStrategy)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--num-nodes", "2"), r"error: --num-nodes 2 needs --launcher slurm .*got --launcher local"),
        (("--num-nodes", "2", "--launcher", "inline"), r"error: .*got --launcher inline"),
        (
            ("--num-nodes", "0", "--launcher", "slurm"),
            r"error: --num-nodes 0: a cell needs at least one node",
        ),
    ],
)
def test_num_nodes_needs_the_slurm_launcher(tiny: Path, extra: tuple[str, ...], message: str) -> None:
    con = _console()
    assert main(_args(tiny, *extra), console=con) == 2
    lines = con.export_text().splitlines()
    assert any(re.search(message, line) for line in lines), lines
    assert any(line.startswith("hint: ") for line in lines), lines
    assert not (tiny / "out" / "cells").exists()


def test_slurm_job_asks_for_nodes_with_one_task_per_device(tmp_path: Path, slurm: Path) -> None:
    """The sbatch script submitit writes for a cell of 2 nodes x 4 GPUs (the text README shows)."""
    ex = SlurmLauncher(
        tmp_path / "jobs", devices=4, num_nodes=2, parameters={"slurm_partition": "gpu"}
    ).executor()
    assert ex.cluster == "slurm"
    text = ex._executor._make_submission_file_text(ex._executor._submitit_command_str, "uid")
    for option in (
        "--nodes=2",
        "--ntasks-per-node=4",
        "--gpus-per-node=4",
        "--partition=gpu",
        "--job-name=forgery-bench",
    ):
        assert f"#SBATCH {option}\n" in text, text
    assert re.search(r"^srun .* -m submitit\.core\._submit ", text, re.MULTILINE), text
    cpu = SlurmLauncher(tmp_path / "jobs", devices=2, num_nodes=3, accelerator="cpu").executor()
    text = cpu._executor._make_submission_file_text(cpu._executor._submitit_command_str, "uid")
    assert "#SBATCH --nodes=3\n" in text and "#SBATCH --ntasks-per-node=2\n" in text and "gpus" not in text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_of_two_processes_give_the_single_process_score_set(
    tiny: Path, slurm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2 nodes x 2 CPU processes (4 gloo ranks) on 11 samples per set: DistributedSampler pads one; the
    stored score set must equal one process scoring the same checkpoint."""
    monkeypatch.setenv("MASTER_PORT", str(_free_port()))  # Lightning's override of the job-id port
    write_grid(
        tiny, defaults={"detector": {**_detector_defaults(tiny), "epochs": 1}, "data": {"num_workers": 0}}
    )
    con = _console()
    args = ("--launcher", "slurm", "--num-nodes", "2", "--devices", "2", "--accelerator", "cpu")
    code = main(_args(tiny, *args, factory="synthetic_odd"), console=con)
    jobs = sorted(p for p in (tiny / "out" / "slurm").iterdir() if p.is_dir())  # one folder per job
    logs = {p.name: p.read_text() for p in jobs[0].glob("*_log.*")} if jobs else {}
    assert code == 0, con.export_text() + "\n".join(f"== {n}\n{t[-3000:]}" for n, t in logs.items())

    # one job, run by srun as 4 tasks that formed one world of 4 ranks over 2 nodes
    (job,) = jobs
    submission = (job / f"{job.name}_submission.sh").read_text()
    assert "#SBATCH --nodes=2\n" in submission and "#SBATCH --ntasks-per-node=2\n" in submission
    for rank in range(4):
        log = (job / f"{job.name}_{rank}_log.err").read_text() + (
            job / f"{job.name}_{rank}_log.out"
        ).read_text()
        assert f"GLOBAL_RANK: {rank}, MEMBER: {rank + 1}/4" in log, log[-3000:]

    cell = _cell(tiny, factory="synthetic_odd")
    store = ScoreStore(tiny / "out" / "store")
    ddp = store.read_scores()
    rec = store.record(cell.cell_id)
    assert rec["status"] == "done" and rec["devices"] == 2

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


def _detector_defaults(root: Path) -> dict:
    import yaml

    return yaml.safe_load((root / "tiny.yaml").read_text())["defaults"]["detector"]

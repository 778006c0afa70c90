"""Fault injection: SIGKILL a sweep at many points, fill the disk, diverge the loss; re-run and compare.

A tiny grid (``tests.runner_fixtures``: resnet34 ``test_resnet`` at 32 px, 2 epochs, 8 synthetic samples
per split, test sets ``a`` and ``b``; seeds 0 and 1 = two cells) runs once uninterrupted (the reference),
and once as a chain of sweeps, each SIGKILLed at the next point of ``tests.fault_driver.POINTS`` and
resumed by the next. After a final clean run, every cell must be done exactly once, every score file
complete, and the leaderboards identical to the reference (run-time seconds aside).
"""

from __future__ import annotations

import difflib
import multiprocessing
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from tests.fault_driver import POINTS

ROOT = Path(__file__).resolve().parents[1]
N = 8  # synthetic samples per split and set


def _console() -> Console:
    return Console(record=True, width=200, force_terminal=False)


def _setup(root: Path, seeds: list[int]) -> list[str]:
    from tests.runner_fixtures import write_data_config, write_grid

    root.mkdir(parents=True, exist_ok=True)
    write_data_config(root)
    write_grid(root, seeds=seeds)
    return [
        "--grid", str(root / "tiny.yaml"), "--data", str(root / "datasets.yaml"), "--out", str(root / "out"),
        "--datamodule", "tests.runner_fixtures:synthetic", "--leaderboards", str(root / "lb"),
        "--launcher", "inline", "--accelerator", "cpu",
    ]  # fmt: skip


def _child(point: str, marker: str, args: list[str]) -> None:
    import contextlib
    import io

    from tests.fault_driver import main

    with contextlib.redirect_stdout(io.StringIO()):
        code = main([point, marker, "--", *args])
    os._exit(code)


def _sweep(point: str, marker: Path, args: list[str]) -> int:
    """Run one sweep in a forked child (the parent has imported torch and Lightning but run nothing, so
    the child starts in a second instead of re-importing); returns its exit code (-9: SIGKILLed)."""
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(point, str(marker), args))
    proc.start()
    proc.join(timeout=300)
    return proc.exitcode


def _normalised_leaderboards(lb: Path) -> dict[str, bytes]:
    out = {}
    for p in sorted(lb.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.suffix == ".md":  # the run-metadata column "fit / test s" holds wall-clock seconds
                data = re.sub(rb"\| [0-9.]+ / [0-9.]+ \|", b"| T / T |", data)
            out[str(p.relative_to(lb))] = data
    return out


def _check_store(store_root: Path, cells: int) -> pd.DataFrame:
    from benchmark.store import ScoreStore

    store = ScoreStore(store_root)
    recs = store.read_records()
    assert len(recs) == cells and recs["cell_id"].is_unique, recs
    assert (recs["status"] == "done").all(), recs[["cell_id", "status"]]
    scores = store.read_scores()  # refuses a done cell whose row count differs from its record
    assert len(scores) == cells * 3 * N
    assert not scores.duplicated(["cell_id", "test_set", "sample_id"]).any()
    for f in store_root.rglob("scores.parquet"):
        assert len(pd.read_parquet(f)) == 3 * N, f  # every score file complete and readable
    return scores


@pytest.mark.slow
def test_sigkill_at_every_point_then_rerun_equals_the_uninterrupted_sweep(tmp_path: Path, capsys) -> None:
    from benchmark.run import main

    args = _setup(tmp_path / "fault", [0])
    marker = tmp_path / "killed.txt"
    tried = [p for p in POINTS if p != "preprocess"]  # the synthetic datamodule has nothing to preprocess
    for point in tried:
        code = _sweep(point, marker, args)
        fired = marker.read_text().split() if marker.exists() else []
        assert code == -signal.SIGKILL and fired[-1:] == [point], (point, code, fired)
    assert marker.read_text().split() == tried  # each point was reached, once, in order
    # The final run and the reference run in this process, after every fork (no OpenMP pool to inherit).
    assert main(args, console=_console()) == 0
    ref_args = _setup(tmp_path / "ref", [0])
    assert main(ref_args, console=_console()) == 0
    ref_scores = _check_store(tmp_path / "ref/out/store", 1)

    scores = _check_store(tmp_path / "fault/out/store", 1)
    key = ["cell_id", "test_set", "split", "sample_id"]
    merged = scores.merge(ref_scores, on=key, suffixes=("", "_ref"), validate="one_to_one")
    assert len(merged) == len(ref_scores)
    assert (merged["score"] == merged["score_ref"]).all(), "resumed training did not reproduce the scores"
    got, want = _normalised_leaderboards(tmp_path / "fault/lb"), _normalised_leaderboards(tmp_path / "ref/lb")
    assert sorted(got) == sorted(want)
    for name in want:
        diff = difflib.unified_diff(want[name].decode(errors="replace").splitlines(),
                                    got[name].decode(errors="replace").splitlines(), lineterm="")  # fmt: skip
        assert got[name] == want[name], f"{name} differs:\n" + "\n".join(list(diff)[:40])
    with capsys.disabled():
        print(f"\nfault injection: {len(tried)} kill points tried, {len(tried)} survived: {', '.join(tried)}")


def test_same_seed_same_data_gives_bitwise_identical_scores(tmp_path: Path) -> None:
    from benchmark.run import main

    runs = []
    for name in ("one", "two"):
        assert main(_setup(tmp_path / name, [0]), console=_console()) == 0
        runs.append(_check_store(tmp_path / name / "out/store", 1).sort_values(["test_set", "sample_id"]))
    a, b = (r.reset_index(drop=True) for r in runs)
    assert a["sample_id"].tolist() == b["sample_id"].tolist()
    assert (a["score"].to_numpy() == b["score"].to_numpy()).all()  # bitwise, not approximately


def test_nan_loss_fails_the_cell_loudly_and_writes_no_scores(tmp_path: Path) -> None:
    from benchmark.run import main
    from benchmark.store import ScoreStore

    args = _setup(tmp_path, [0])
    args[args.index("tests.runner_fixtures:synthetic")] = "tests.fault_fixtures:nan_in_training"
    con = _console()
    assert main(args, console=con) == 1
    store = ScoreStore(tmp_path / "out/store")
    (rec,) = store.read_records().to_dict("records")
    assert rec["status"] == "failed" and not store.is_done(rec["cell_id"])
    full = store.record(rec["cell_id"])
    assert "NonFiniteLossError" in full["traceback"] and "at epoch 0, batch 1" in full["traceback"]
    assert store.read_scores().empty
    assert not list((tmp_path / "out/store").rglob("scores.parquet"))
    assert "non-finite training loss" in con.export_text()  # the sweep's summary says why


def _full_disk(limit: int):
    """A ``preexec_fn``: files of this process may not grow past ``limit`` bytes; a write past it fails
    with EFBIG (SIGXFSZ ignored), as writes fail on a full disk."""

    def pre() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return pre


def test_full_disk_fails_the_cell_clearly_and_damages_nothing_finished(tmp_path: Path) -> None:
    from benchmark.run import main
    from benchmark.store import ScoreStore

    args = _setup(tmp_path, [0])
    assert main(args, console=_console()) == 0
    store = ScoreStore(tmp_path / "out/store")
    (done,) = store.cell_ids(status="done")
    before = {p: p.read_bytes() for p in (tmp_path / "out/store").rglob("*") if p.is_file()}

    seeds = [*args, "--seeds", "0", "1"]
    # a subprocess, not a fork: this process has run training, and a forked OpenMP pool can deadlock
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    res = subprocess.run([sys.executable, "-m", "benchmark.run", *seeds], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300, preexec_fn=_full_disk(256 * 1024))  # fmt: skip
    assert res.returncode == 1, res.stdout[-2000:] + res.stderr[-2000:]  # a failed cell, reported
    for p, data in before.items():
        assert p.read_bytes() == data, f"{p} of the finished cell changed"
    failed = [c for c in store.cell_ids() if c != done]
    assert len(failed) == 1 and store.record(failed[0])["status"] == "failed"
    assert "File too large" in store.record(failed[0])["traceback"]
    assert set(store.read_scores()["cell_id"]) == {done}
    # space again: the re-run finishes the failed cell and leaves the finished one alone
    assert main(seeds, console=_console()) == 0
    assert sorted(store.cell_ids(status="done")) == sorted([done, failed[0]])
    assert all(p.read_bytes() == data for p, data in before.items() if p.name == "scores.parquet")


def test_unwritable_output_dir_is_a_clear_error(tmp_path: Path) -> None:
    from benchmark.run import main

    args = _setup(tmp_path, [0])
    (tmp_path / "a_file").write_text("not a folder")
    args[args.index("--out") + 1] = str(tmp_path / "a_file" / "out")
    con = _console()
    assert main(args, console=con) == 2
    assert re.search(r"output folder .*a_file/out.* is not writable", con.export_text().replace("\n", ""))

"""The ``bench_demo`` perf topic's profile and the runner's ``--timings-json`` (no demo run, no training)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from benchmark.perf.__main__ import topics
from benchmark.perf.bench_demo import PHASES, cell_notes, split_phases
from benchmark.run import main
from benchmark.runner.phases import PhaseClock, process_start_time
from benchmark.store import ScoreStore
from tests.runner_fixtures import write_data_config, write_grid

secs = st.floats(min_value=0, max_value=5000, allow_nan=False)


def _record(started: float, phases: dict[str, float], cells: list[dict]) -> dict:
    return {
        "process_started": None,
        "started": started,
        "ended": started + 1,
        "phases": phases,
        "cells": cells,
    }


def test_the_topic_is_registered() -> None:
    assert "bench_demo" in topics()


def test_split_phases_of_a_synthetic_run() -> None:
    """A run like the demo's: one trained cell (fit 300 s, scoring 80 s in a 420 s process), five perturbed
    re-scorings (130 s in all)."""
    cells = [
        {"cell_id": "a", "label": "sfam", "derived": False, "status": "done", "wall_s": 420.0, "fit_s": 300.0}
    ]
    cells[0]["test_s"] = 80.0
    cells += [
        {"cell_id": f"p{i}", "label": "sfam", "derived": True, "wall_s": 26.0, "test_s": 20.0}
        for i in range(5)
    ]
    phases = {
        "startup": 6.0,
        "data": 25.0,
        "plan": 2.0,
        "preprocess": 70.0,
        "cells": 421.0,
        "perturbed": 131.0,
    }
    phases["leaderboards"] = 12.0
    rec = _record(1000.0 + 8.0, phases, cells)
    out = split_phases(rec, launched=1000.0, ended=1000.0 + 680.0)
    assert out["start-up"] == 8.0
    assert out["demo generation"] == 25.0 and out["planning"] == 2.0 and out["preprocessing"] == 70.0
    assert out["training"] == 421.0 - 80.0  # the cell's wall time but its scoring
    assert out["testing"] == 80.0 + 131.0  # its scoring and the perturbed re-scorings
    assert out["leaderboards"] == 12.0
    assert out["total"] == 680.0
    assert out["other"] == pytest.approx(680.0 - (8 + 25 + 2 + 70 + 421 + 131 + 12))
    train, test = cell_notes(rec)
    assert "fit 300 s" in train and "start-up and model 40 s" in train
    assert "scoring 80 s" in test and "5 perturbed re-scorings 130 s" in test


@given(
    st.fixed_dictionaries(
        {
            k: secs
            for k in (
                "data",
                "plan",
                "backfill",
                "preprocess",
                "cells",
                "perturbed",
                "shortcut",
                "leaderboards",
            )
        }
    ),
    st.lists(st.tuples(st.booleans(), secs), max_size=6),
    secs,
    secs,
)
def test_phases_add_up_to_the_total(phases: dict, cells: list, before: float, after: float) -> None:
    rows = [{"derived": d, "wall_s": t, "test_s": t / 2} for d, t in cells]
    rec = _record(100.0 + before, phases, rows)
    ended = 100.0 + before + sum(phases.values()) + after
    out = split_phases(rec, 100.0, ended)
    assert list(out) == [*PHASES, "total"]
    assert sum(out[p] for p in PHASES) == pytest.approx(out["total"], abs=1e-6)
    assert out["start-up"] == pytest.approx(before)
    assert out["training"] + out["testing"] == pytest.approx(phases["cells"] + phases["perturbed"])


def test_split_phases_refuses_a_bad_record() -> None:
    with pytest.raises(ValueError, match="not a --timings-json record"):
        split_phases({"phases": {}}, 0.0, 1.0)
    with pytest.raises(ValueError, match="out of order"):
        split_phases(_record(5.0, {}, []), launched=6.0, ended=9.0)


def test_the_runner_writes_its_phases_on_a_dry_run(tmp_path: Path) -> None:
    write_data_config(tmp_path)
    write_grid(tmp_path)
    out = tmp_path / "t" / "timings.json"
    t0 = time.time()
    args = ["--grid", str(tmp_path / "tiny.yaml"), "--data", str(tmp_path / "datasets.yaml")]
    args += ["--out", str(tmp_path / "out"), "--datamodule", "tests.runner_fixtures:synthetic"]
    assert (
        main([*args, "--dry-run", "--timings-json", str(out)], console=Console(record=True, width=200)) == 0
    )
    rec = json.loads(out.read_text())
    assert t0 <= rec["started"] <= rec["ended"] <= time.time()
    assert list(rec["phases"])[-2:] == ["data", "plan"] and rec["cells"] == []
    assert all(v >= 0 for v in rec["phases"].values())
    assert split_phases(rec, t0, rec["ended"])["total"] == pytest.approx(rec["ended"] - t0)


def test_phase_clock_reads_each_cell_record(tmp_path: Path) -> None:
    store = ScoreStore(tmp_path / "store")
    store.write_record("c1", {"timings": {"fit_s": 3.5, "test_s": 1.25, "total_s": 5.0}}, "done")

    def job(cell_id: str, started: float | None, derived: bool = False) -> SimpleNamespace:
        config = SimpleNamespace(perturbed=derived)
        cell = SimpleNamespace(cell_id=cell_id, label=f"x {cell_id}", config=config)
        return SimpleNamespace(
            cell=cell, status="done", started=started, ended=None if started is None else started + 6
        )

    clock = PhaseClock()
    clock.start("cells")
    clock.start("perturbed")  # ends "cells"
    clock.stop()
    clock.stop()  # nothing running: no-op
    clock.add_cells([job("c1", 10.0), job("c2", 20.0, derived=True), job("c3", None)], store)
    rec = clock.to_dict()
    assert {"cells", "perturbed"} <= set(rec["phases"])
    assert rec["cells"] == [
        {
            "cell_id": "c1",
            "label": "x c1",
            "derived": False,
            "status": "done",
            "wall_s": 6.0,
            "fit_s": 3.5,
            "test_s": 1.25,
        },
        {"cell_id": "c2", "label": "x c2", "derived": True, "status": "done", "wall_s": 6.0},
    ]


@pytest.mark.skipif(
    not Path("/proc/self/stat").exists() or shutil.which("ps") is None, reason="Linux /proc and ps"
)
def test_process_start_time_matches_ps() -> None:
    """Against procps: ``ps -o etimes`` is the process's elapsed time in whole seconds."""
    started = process_start_time()
    etimes = int(
        subprocess.run(["ps", "-o", "etimes=", "-p", str(os.getpid())], capture_output=True, text=True).stdout
    )
    assert started is not None
    assert abs((time.time() - started) - etimes) <= 2.0

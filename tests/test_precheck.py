"""The runner checks every dataset a grid needs before anything is preprocessed or trained, and reports
every problem at once (``benchmark.runner.precheck``); the command line shows them as lines, exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from benchmark.run import main
from benchmark.runner.data_config import parse_data_config
from benchmark.runner.grid import load_grid
from benchmark.runner.plan import plan_cells
from benchmark.runner.precheck import DataCheckError, check_data, require_data
from datamodules.manifest import write_manifest
from datamodules.preprocess import Options
from tests.dataset_fixtures import dfdc_download, ffpp_download

ROOT = Path(__file__).resolve().parents[1]


def _uadfv_manifest(processed: Path, protocol: str = "default") -> Path:
    """A preprocessed UADFV-like dataset: test reals and fakes, one frame each, pinned with ``protocol``."""
    base = processed / "UADFV"
    rows = [
        {"dataset": "UADFV", "split": "test", "label": lab, "method": m, "compression": "", "video_id": f"UADFV/{m}/{i}",
         "frame_index": 0, "crop_path": f"crops/{m}{i}.png", "landmarks_path": "", "mask_path": "", "status": "ok",
         "reason": "", "source_label": ""}
        for lab, m in ((0, "real"), (1, "fake")) for i in range(2)
    ]  # fmt: skip
    write_manifest(rows, base / "manifest.parquet")
    (base / "preprocess.json").write_text(json.dumps(asdict(Options(protocol=protocol))))
    return base / "manifest.parquet"


def bad_data(root: Path) -> tuple[Path, Path]:
    """A grid and a data configuration with five problems in four datasets (and one good dataset):

    * FF++ (good download, Deepfakes only) has no FaceSwap fakes for the test set ``FF++/FS``;
    * CDF-v2's root does not exist;
    * DFDC holds only its test set, but the grid also trains on it (no train, no val);
    * UADFV was preprocessed with the default protocol, the configuration asks for ``sfam``.
    """
    ffpp_download(root / "ff")
    dfdc_download(root / "dfdc", "elsewhere")
    _uadfv_manifest(root / "processed")
    cfg = {
        "processed_root": "processed",
        "datasets": {
            "FF++": {"layout": "ffpp", "root": "ff", "compression": "c23"},
            "CDF-v2": {"layout": "celebdf_v2", "root": "cdf"},
            "DFDC": {"layout": "dfdc", "root": "dfdc"},
            "UADFV": {"layout": "uadfv", "root": "uadfv", "protocol": "sfam"},
        },
    }
    (root / "d.yaml").write_text(yaml.safe_dump(cfg))
    grid = {
        "name": "bad",
        "detectors": ["resnet34"],
        "train_sets": ["FF++", "DFDC"],
        "test_sets": ["FF++", {"name": "FF++/FS", "dataset": "FF++", "methods": ["FaceSwap"]}, "CDF-v2", "DFDC", "UADFV"],
        "seeds": [0],
        "defaults": {"detector": {"arch": "test_resnet", "pretrained": False, "input_size": 32, "epochs": 1}},
    }  # fmt: skip
    (root / "bad.yaml").write_text(yaml.safe_dump(grid))
    return root / "bad.yaml", root / "d.yaml"


#: the five problems, in the order the datasets are first used, one line each
PROBLEMS = [
    r"FF\+\+ \(ffpp, .*ff\): test set 'FF\+\+/FS' needs fakes of \['FaceSwap'\] in split 'test'; found: train 8 \(Deepfakes 4, real 4\)",
    r"CDF-v2 \(celebdf_v2, .*cdf\): root .*cdf does not exist",
    r"DFDC \(dfdc, .*dfdc\): training set 'DFDC' needs split 'train' with reals and fakes: 'train' is empty; "
    r"found: train 0, val 0, test 4 \(fake 2, real 2\)",
    r"DFDC \(dfdc, .*dfdc\): training set 'DFDC' needs split 'val' with reals and fakes: 'val' is empty",
    r"UADFV \(uadfv, .*manifest\.parquet\): the manifest was preprocessed with protocol 'default' but the data "
    r"configuration asks for 'sfam'",
]


def _cells(grid: Path, cfg: Path):
    return plan_cells(load_grid(grid), parse_data_config(cfg))


def test_every_problem_is_found_before_anything_runs(tmp_path: Path) -> None:
    import re

    report = check_data(_cells(*bad_data(tmp_path)))
    assert report.checked == ["FF++", "CDF-v2", "DFDC", "UADFV"]
    assert len(report.problems) == len(PROBLEMS)
    for line, pattern in zip(report.problems, PROBLEMS, strict=True):
        assert "\n" not in line and re.search(pattern, line), (pattern, line)
    # the layout's own warning about a partial download is passed on, not lost
    assert any(n.startswith("DFDC: layout 'dfdc'") and "found only part" in n for n in report.notes)
    with pytest.raises(
        DataCheckError, match=r"^5 problems with the data this sweep needs \(nothing was preprocessed"
    ):
        require_data(_cells(tmp_path / "bad.yaml", tmp_path / "d.yaml"))


def test_the_sweep_stops_with_exit_2_before_preprocessing(tmp_path: Path, monkeypatch) -> None:
    import benchmark.run as run_mod

    grid, cfg = bad_data(tmp_path)
    calls = []
    monkeypatch.setattr(run_mod, "prepare_manifests", lambda *a, **k: calls.append(a))
    con = Console(record=True, width=400, force_terminal=False)
    assert (
        main(
            ["--grid", str(grid), "--data", str(cfg), "--out", str(tmp_path / "out"), "--no-leaderboard"], con
        )
        == 2
    )
    lines = con.export_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    assert (
        lines[first]
        == "error: 5 problems with the data this sweep needs (nothing was preprocessed or trained):"
    )
    assert len(lines[first + 1 : first + 6]) == 5 and all(
        line.startswith("  - ") for line in lines[first + 1 : first + 6]
    )
    assert lines[first + 6].startswith("hint: fix each dataset listed")
    assert calls == [] and not (tmp_path / "processed" / "FF++").exists()
    assert not list((tmp_path / "out" / "cells").iterdir())


def test_good_data_and_existing_manifests_pass(tmp_path: Path) -> None:
    grid, cfg = bad_data(tmp_path)
    data = yaml.safe_load(cfg.read_text())
    data["datasets"]["UADFV"].pop("protocol")  # now configured as the manifest was made
    cfg.write_text(yaml.safe_dump(data))
    g = yaml.safe_load(grid.read_text())
    g.update(train_sets=["FF++"], test_sets=["FF++", "DFDC", "UADFV"])
    grid.write_text(yaml.safe_dump(g))
    report = require_data(_cells(grid, cfg))
    assert report.problems == [] and report.checked == ["FF++", "DFDC", "UADFV"]
    # a manifest whose val frames all failed cannot train: the ok frames are what counts
    (tmp_path / "processed" / "UADFV" / "preprocess.json").unlink()
    g.update(train_sets=["UADFV"], test_sets=["UADFV"])
    grid.write_text(yaml.safe_dump(g))
    with pytest.raises(
        DataCheckError, match=r"training set 'UADFV' needs split 'train' with reals and fakes"
    ):
        require_data(_cells(grid, cfg))


def test_the_command_line_prints_lines_not_a_traceback(tmp_path: Path) -> None:
    grid, cfg = bad_data(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "400"}
    env.pop("FORGERY_BENCH_DEBUG", None)
    args = [sys.executable, "-m", "benchmark.run", "--grid", str(grid), "--data", str(cfg), "--out", str(tmp_path / "o"),
            "--no-leaderboard"]  # fmt: skip
    out = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert "error: 5 problems" in out.stdout and out.stdout.count("\n  - ") == 5
    assert "hint: fix each dataset listed" in out.stdout

"""Typed cells: CellConfig (hashed) and Runtime (not), their JSON, and the machine a cell ran on."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.runner.cells import Cell, CellConfig, Runtime
from benchmark.runner.data_config import parse_data_config
from benchmark.runner.grid import load_grid
from benchmark.runner.plan import plan_cells
from tests.runner_fixtures import write_data_config, write_grid

#: the keys of the hashed config (the order is irrelevant: the hash sorts them)
CONFIG_KEYS = {
    "version",
    "grid",
    "detector",
    "seed",
    "train_set",
    "test_sets",
    "overrides",
    "recipe",
    "arch_overrides",
    "trainer",
    "data",
    "datasets",
    "origin",
    "datamodule",
}


@pytest.fixture
def cell(tmp_path: Path) -> Cell:
    write_data_config(tmp_path)
    (cell,) = plan_cells(load_grid(write_grid(tmp_path)), parse_data_config(tmp_path / "datasets.yaml"))
    return cell


def test_config_json_has_exactly_the_hashed_keys(cell: Cell) -> None:
    d = cell.config.to_json()
    assert set(d) == CONFIG_KEYS
    assert d["train_set"] == {"name": "train", "dataset": "train", "methods": []}
    assert d["recipe"]["betas"] == [0.9, 0.999] and d["datasets"]["a"] == {
        "layout": "synthetic",
        "options": {},
    }
    assert CellConfig.from_json(d) == cell.config


def test_planner_puts_the_data_locations_in_the_runtime(cell: Cell, tmp_path: Path) -> None:
    rt = cell.runtime
    assert rt.data_config == tmp_path / "datasets.yaml"
    assert rt.processed_root == tmp_path / "processed"
    assert rt.roots == {n: tmp_path for n in ("a", "b", "train")}
    assert cell.config.recipe.epochs == 2 and cell.config.arch_overrides["input_size"] == 32


def test_runtime_defaults_live_in_one_place(cell: Cell) -> None:
    bare = Cell(cell.config)
    assert bare.cell_dir == Path("runs/cells") / cell.cell_id
    assert Runtime.from_json({}) == Runtime()
    assert Runtime(store_root="x").store_root == Path("x")


def test_changing_the_runtime_keeps_the_id_and_the_original(cell: Cell) -> None:
    moved = cell.with_runtime(work_root="/elsewhere", devices=4)
    assert moved.cell_id == cell.cell_id and moved == cell
    assert moved.cell_dir == Path("/elsewhere") / cell.cell_id and moved.runtime.devices == 4
    assert cell.runtime.devices == 1


def test_bad_spec_keys_are_named(cell: Cell) -> None:
    spec = cell.to_json()
    with pytest.raises(ValueError, match=r"cell runtime: unknown key\(s\) \['gpus'\]"):
        Cell.from_json({**spec, "runtime": {**spec["runtime"], "gpus": 2}})
    with pytest.raises(ValueError, match=r"cell config: unknown key\(s\) \['epochs'\]"):
        Cell.from_json({**spec, "config": {**spec["config"], "epochs": 2}})
    config = dict(spec["config"])
    del config["recipe"]
    with pytest.raises(ValueError, match=r"missing key\(s\) \['recipe'\]"):
        Cell.from_json({**spec, "config": config})


# --------------------------------------------------------------------------- hardware
def test_cpu_model_reads_proc_cpuinfo(tmp_path: Path) -> None:
    from benchmark.runner.hardware import cpu_model

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6248R\n")
    assert cpu_model(info) == "Intel(R) Xeon(R) Gold 6248R"
    fallback = cpu_model(tmp_path / "missing")
    assert fallback is None or isinstance(fallback, str)


def test_cell_record_names_the_hardware(cell: Cell) -> None:
    import torch

    from benchmark.runner.cell import base_record

    hw = base_record(cell)["hardware"]
    assert set(hw) == {"cpu", "gpu", "gpu_count", "cuda", "cudnn"}
    assert hw["gpu_count"] == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert (hw["gpu"] is None) == (hw["gpu_count"] == 0)
    assert hw["cuda"] == torch.version.cuda


def test_leaderboard_shows_hardware_only_when_recorded(tmp_path: Path) -> None:
    from benchmark.report.leaderboard import render
    from tests.test_leaderboard import fill_store

    store = fill_store(tmp_path / "old", seeds=(0,))
    render(tmp_path / "old", tmp_path / "lb_old", n_boot=50)
    old_page = (tmp_path / "lb_old" / "g1" / "resnet34.md").read_text()
    assert "hardware" not in old_page

    rec = store.record("cell0000")
    rec["hardware"] = {
        "cpu": "AMD EPYC 7B13",
        "gpu": "NVIDIA A100-SXM4-80GB",
        "gpu_count": 2,
        "cuda": "12.1",
        "cudnn": 90100,
    }
    store.write_record("cell0000", rec, "done")
    render(tmp_path / "old", tmp_path / "lb_new", n_boot=50)
    new_page = (tmp_path / "lb_new" / "g1" / "resnet34.md").read_text()
    want = "AMD EPYC 7B13; 2x NVIDIA A100-SXM4-80GB (CUDA 12.1, cuDNN 90100)"
    (row,) = [line for line in new_page.splitlines() if "`cell0000`" in line and want in line]
    # the only difference is the added column
    old_lines, new_lines = old_page.splitlines(), new_page.splitlines()
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert len(changed) == 3  # header, separator, the row
    assert all(b.startswith(a.rstrip("|").rstrip()) for a, b in changed)
    assert changed[2] == (row.removesuffix(f" {want} |"), row)

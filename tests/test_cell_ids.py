"""Cell ids are the store's primary key: a refactoring of the planner must never change them.

The ids below were printed by the planner as it was when the first cells were run (commit 140587d),
for the real grids against a fixed data configuration and for the runner-test grids. The ``demo`` ids are
also the ones on the committed demo leaderboard pages (``leaderboards/demo/*.md``). A hard-coded value is
the point here: these are the ids that existing stores, checkpoints folders and leaderboards carry.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.runner.cells import Cell, config_hash
from benchmark.runner.data_config import parse_data_config
from benchmark.runner.grid import load_grid
from benchmark.runner.plan import plan_cells
from tests.runner_fixtures import write_data_config, write_grid

FIXTURES = Path(__file__).resolve().parent / "fixtures"

#: the demo's datasets.yaml as ``python -m datamodules.demo`` writes it (roots are not hashed)
DEMO_DATA = """processed_root: processed
datasets:
  demo-FF: {layout: ffpp, root: demo-FF, compression: c23}
  demo-CDF: {layout: celebdf_v2, root: demo-CDF}
  demo-DFDC: {layout: dfdc, root: demo-DFDC}
"""
REAL_DATA = """processed_root: processed
datasets:
  FF++: {layout: ffpp, root: /data/FaceForensics++, compression: c23}
  CDF-v2: {layout: celebdf_v2, root: /data/Celeb-DF-v2}
  DFDC: {layout: dfdc, root: /data/DFDC}
  DFDC-P: {layout: dfdc_preview, root: /data/DFDC-P}
  DFD: {layout: dfd, root: /data/DFD}
"""

DEMO_IDS = {
    "resnet34": "e32cfccf96ec7065",
    "xception": "0891c447532a3d0b",
    "efficientnet_b4": "d809933ca499048c",
    "ucf": "74d4470bec1f79dc",
    "forensics_adapter": "574cb9b8c72f94bf",
    "clip_linear": "1899291d00b98d2e",
    "sfam": "02c097f1bb3bd7ac",
}
CROSS_IDS = [
    "fe982c18fd204770",
    "eba3042a505eb24b",
    "95e1fc5706fae472",
    "709e800e15133cb9",
    "a0b910550a257c1c",
    "1b0f7f8cf1804b7d",
]
CROSS_MANIPULATION_IDS = [
    "da33e855f59477c7",
    "740a42e130cfa420",
    "85ed9c650da12267",
    "a4d2ba13bd7aac81",
    "9468a8e203fca26d",
    "6678a2e092212170",
    "fa95a29d56d757c8",
    "43e0ebb7b1a137e6",
    "5f485f76b3e4844b",
    "36251d757f9e25e2",
    "8a55104e552fd7df",
    "fd63e87864733929",
    "babaef18764dd318",
    "18263957e570a2ca",
    "fa23e35757885649",
    "a27d8051f3f789f7",
    "8bc53cf7872e83c3",
    "4476667b2593acf5",
    "5fe633cdea273853",
    "07ad7281d268ef7d",
    "c3dc9ffdaedff51f",
    "81f15d2af7023be8",
    "2122a99ec077fd19",
    "7bf8b34c74bbf1d8",
]


@pytest.fixture
def data(tmp_path: Path):
    (tmp_path / "demo.yaml").write_text(DEMO_DATA)
    (tmp_path / "real.yaml").write_text(REAL_DATA)
    return parse_data_config(tmp_path / "demo.yaml"), parse_data_config(tmp_path / "real.yaml")


#: the detectors of the cross grid when CROSS_IDS were pinned (detectors added later get cells of their own)
CROSS_DETECTORS = ("xception", "efficientnet_b4", "ucf", "forensics_adapter", "clip_linear", "sfam")


def test_demo_grid_ids_are_todays(data) -> None:
    demo, _ = data
    assert demo.origin == "demo"
    cells = [c for c in plan_cells(load_grid("demo"), demo) if c.detector in DEMO_IDS]
    assert {c.detector: c.cell_id for c in cells} == DEMO_IDS
    assert [c.detector for c in cells] == list(DEMO_IDS)  # grid order


def test_cross_grid_ids_are_todays(data) -> None:
    _, real = data
    cells = [c for c in plan_cells(load_grid("cross"), real) if c.detector in CROSS_DETECTORS]
    assert [c.cell_id for c in cells] == CROSS_IDS
    cells = plan_cells(load_grid("cross-manipulation"), real)
    assert [c.cell_id for c in cells] == CROSS_MANIPULATION_IDS


def test_runner_fixture_grid_ids_are_todays(tmp_path: Path) -> None:
    write_data_config(tmp_path)
    tiny = load_grid(write_grid(tmp_path))
    fdata = parse_data_config(tmp_path / "datasets.yaml")
    assert [c.cell_id for c in plan_cells(tiny, fdata, seeds=[0, 1])] == [
        "9cf5c5a5f7976b46",
        "381c3592ca561d8f",
    ]
    synthetic = plan_cells(tiny, fdata, seeds=[0, 1], datamodule="tests.runner_fixtures:synthetic")
    assert [c.cell_id for c in synthetic] == ["9e6b53add09431d1", "36ff13dc89ba3079"]
    picked = plan_cells(tiny, fdata, detectors=["xception", "resnet34"], datasets=["train", "a"])
    assert [c.cell_id for c in picked] == ["66509ffe5c34d64c", "38365fb8aea60b26"]
    over = write_grid(
        tmp_path,
        "over",
        per_detector={
            "resnet34": {
                "detector": {"lr": 1e-3, "drop_rate": 0.1},
                "trainer": {"precision": "bf16-mixed"},
                "data": {"sbi_prob": 0.5},
            }
        },
    )
    assert [c.cell_id for c in plan_cells(load_grid(over), fdata)] == ["49ab3db9c2fb1f03"]


def test_old_spec_file_round_trips() -> None:
    """A spec file written by the launcher before cells were typed (the ``over`` cell above)."""
    spec = json.loads((FIXTURES / "cell_spec_v1.json").read_text())
    cell = Cell.from_json(spec)
    assert cell.cell_id == spec["cell_id"] == config_hash(spec["config"])
    again = cell.to_json()
    assert again["cell_id"] == spec["cell_id"]
    assert again["config"] == spec["config"]  # exactly today's dict, key for key
    assert {k: again["runtime"][k] for k in spec["runtime"]} == spec["runtime"]
    assert Cell.from_json(json.loads(json.dumps(again))).cell_id == spec["cell_id"]
    tampered = json.loads(json.dumps(spec))
    tampered["config"]["seed"] = 1
    with pytest.raises(ValueError, match="inconsistent"):
        Cell.from_json(tampered)

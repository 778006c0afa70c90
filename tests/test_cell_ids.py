"""Cell ids are the store's primary key: a refactoring of the planner must never change them.

The ids below are pinned: a hard-coded value is the point here, they are the ids that stores, checkpoint
folders and leaderboards carry.

History. The first ids were printed by the planner when the first cells were run (commit 140587d) and
held until cell-config version 2 (branch ``h/fidelity``, commit e4f41b5), which changed every id ONCE,
on purpose: each detector's augmentation became part of its recipe (``Recipe.augmentation``, DeepfakeBench's
per-detector ``data_aug`` blocks transcribed), so the pipeline a cell trains with is now in its id, and
the recipe's ``source`` citation left the hashed config (a citation is not an experiment; SFAM's citation
changed in the same commit). The ids below were regenerated from that code for the same grids and data
configurations; version-1 spec files are refused with a message (``test_version_1_spec_is_refused``),
version-1 store records stay readable by the leaderboard.

Since then one deliberate change of settings (not of the planner): the demo grid trains clip_linear and
sfam for one epoch instead of two (commit b5614a3, to bring ``make bench DETECTOR=sfam`` towards its time
target), which gives those two demo cells new ids; the ids pinned for them are the ones the re-run demo
grid wrote to its store (and its leaderboard pages show).
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
    "resnet34": "961fc4b603208a0f",
    "xception": "e9b2dbcf582b3c4b",
    "efficientnet_b4": "7aa0dc12e94fcf65",
    "ucf": "cbaf806d3c6cf3d4",
    "forensics_adapter": "e74c7706cf3898cb",
    "clip_linear": "67b1084e79786e0d",
    "sfam": "c100275a50b439a5",
}
CROSS_IDS = [
    "2bd3a3c196696689",
    "a84df77266d1f469",
    "9ad9f840ed3bf8c5",
    "1282083e821f55d1",
    "ba6c1762cf9182a0",
    "3594ce895cd4342c",
]
CROSS_MANIPULATION_IDS = [
    "10fe270608bee32c",
    "efdd0002adfdd8d1",
    "7b8784ebe6834cbd",
    "156fa45884dfaa08",
    "1945471667694923",
    "7d0b7bed02328708",
    "355d687ef58486ff",
    "59411b5a3f16bac7",
    "aff114fbd2cb1ab3",
    "d1518168958e6b08",
    "3eddd273430da293",
    "f1c45a0eb71fb78e",
    "c7460ac2d3725102",
    "f09b11d062f8af0c",
    "8644c01e7aeca694",
    "c3df084e0814f446",
    "3c518f4de7282df6",
    "956c340fb0062b71",
    "c9147ff63b8dc93e",
    "4423cbbb04f5c79f",
    "c6ccca190d96d266",
    "2c84d5c384a24fa7",
    "1d99198e044ab82d",
    "84cb1588fde1f8bc",
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
        "bc3e0dedc916e356",
        "dd9985091cc36772",
    ]
    synthetic = plan_cells(tiny, fdata, seeds=[0, 1], datamodule="tests.runner_fixtures:synthetic")
    assert [c.cell_id for c in synthetic] == ["6a49714d1370cf1e", "662979863bb348a1"]
    picked = plan_cells(tiny, fdata, detectors=["xception", "resnet34"], datasets=["train", "a"])
    assert [c.cell_id for c in picked] == ["a966e62e591cb11c", "3aa34ca3b0a220f9"]
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
    assert [c.cell_id for c in plan_cells(load_grid(over), fdata)] == ["3b36e481431225c3"]


def test_version_1_spec_is_refused() -> None:
    """A spec file written before recipes carried their augmentation (the ``over`` cell, version 1)."""
    spec = json.loads((FIXTURES / "cell_spec_v1.json").read_text())
    with pytest.raises(ValueError, match=r"cell config version 1 .*plan the grid again"):
        Cell.from_json(spec)


def test_spec_file_round_trips() -> None:
    """A spec file as the launcher writes it (the ``over`` cell above, version 2)."""
    spec = json.loads((FIXTURES / "cell_spec_v2.json").read_text())
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

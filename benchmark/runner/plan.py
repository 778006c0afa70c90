"""Cells: (detector, training set, seed, resolved config), identified by a hash of that config.

The hashed config holds everything that defines the experiment: grid, detector, its overrides and the
fully resolved recipe (so a change of a paper default in code gives new cells), trainer and data
settings, the training and test sets, each dataset's layout and preprocessing options, the data origin
(demo or real) and the datamodule factory. It leaves out where things are on disk (dataset roots, output
folders) and how the cell is executed (devices, launcher): those change nothing in the experiment.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from benchmark.runner.data_config import DataConfig
from benchmark.runner.grid import Grid, GridError, SetSpec, check_detector_settings, load_grid
from datamodules import atomic

DEFAULT_DATAMODULE = "benchmark.data:build_datamodule"
CONFIG_VERSION = 1


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(config: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the canonical JSON of ``config``."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Cell:
    """One unit of work. ``config`` is hashed into ``cell_id``; ``runtime`` is not (paths, devices)."""

    config: dict[str, Any]
    runtime: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def cell_id(self) -> str:
        return config_hash(self.config)

    @property
    def detector(self) -> str:
        return self.config["detector"]

    @property
    def train_set(self) -> str:
        return self.config["train_set"]["name"]

    @property
    def seed(self) -> int:
        return int(self.config["seed"])

    @property
    def grid(self) -> str:
        return self.config["grid"]

    @property
    def label(self) -> str:
        return f"{self.detector} | {self.train_set} | seed {self.seed}"

    def to_json(self) -> dict[str, Any]:
        return {"cell_id": self.cell_id, "config": self.config, "runtime": self.runtime}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Cell:
        cell = cls(d["config"], d.get("runtime", {}))
        if "cell_id" in d and d["cell_id"] != cell.cell_id:
            raise ValueError(f"cell spec is inconsistent: id {d['cell_id']} != hash {cell.cell_id}")
        return cell


def resolve_grid(name: str, data: DataConfig) -> tuple[Grid, str]:
    """The grid to run and a note: on demo data, a grid whose datasets are not configured runs its
    ``demo_fallback`` grid instead (``make bench`` on a fresh clone)."""
    grid = load_grid(name)
    missing = [d for d in grid.datasets() if d not in data.datasets]
    if missing and data.origin == "demo" and grid.demo_fallback:
        fallback = load_grid(grid.demo_fallback)
        note = (
            f"grid {grid.name!r} needs {', '.join(missing)}, which the demo data do not have: "
            f"running grid {fallback.name!r} (the demo benchmark) instead"
        )
        return fallback, note
    return grid, ""


def _split_overrides(overrides: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    from detectors.recipe import Recipe

    keys = {f.name for f in fields(Recipe)}
    return (
        {k: v for k, v in overrides.items() if k in keys},
        {k: v for k, v in overrides.items() if k not in keys},
    )


def _jsonable(obj: Any) -> Any:
    return json.loads(canonical_json(obj))


def plan_cells(
    grid: Grid,
    data: DataConfig,
    detectors: list[str] | None = None,
    datasets: list[str] | None = None,
    seeds: list[int] | None = None,
    datamodule: str = DEFAULT_DATAMODULE,
    runtime: dict[str, Any] | None = None,
) -> list[Cell]:
    """Every cell of ``grid`` (optionally restricted), in grid order: detector, training set, seed.

    ``detectors`` may name any registered detector (the grid's list is only the default);
    ``datasets`` restricts both training and test sets to the sets named (by set or dataset name).
    """
    from detectors.registry import get_detector_class

    dets = list(detectors or grid.detectors)
    check_detector_settings(grid, dets)
    train_sets, test_sets = list(grid.train_sets), list(grid.test_sets)
    if datasets:
        known = {s.name for s in (*train_sets, *test_sets)} | {s.dataset for s in (*train_sets, *test_sets)}
        unknown = [d for d in datasets if d not in known]
        if unknown:
            raise GridError(
                f"unknown dataset(s) {unknown} for grid {grid.name!r}; its datasets: {', '.join(sorted(known))}"
            )

        def keep(s: SetSpec) -> bool:
            return s.name in datasets or s.dataset in datasets

        train_sets = [s for s in train_sets if keep(s)]
        test_sets = [s for s in test_sets if keep(s)]
        if not train_sets or not test_sets:
            raise GridError(f"--datasets {datasets} leaves grid {grid.name!r} without a training or test set")
    used = {s.dataset for s in (*train_sets, *test_sets)}
    missing = sorted(used - set(data.datasets))
    if missing:
        raise GridError(
            f"grid {grid.name!r} uses dataset(s) {missing} that are not configured in {data.path}; "
            f"configured: {', '.join(sorted(data.datasets))}"
        )
    run_seeds = list(seeds) if seeds else list(grid.seeds)
    rt = dict(runtime or {})
    rt.setdefault("data_config", str(data.path))
    rt.setdefault("processed_root", str(data.processed_root))
    rt.setdefault("roots", {n: str(data.datasets[n].root) for n in sorted(used)})
    cells = []
    for det in dets:
        settings = grid.settings(det)
        recipe_over, arch_over = _split_overrides(settings["detector"])
        recipe = get_detector_class(det).default_recipe.with_overrides(**recipe_over)
        for tr in train_sets:
            for seed in run_seeds:
                config = {
                    "version": CONFIG_VERSION,
                    "grid": grid.name,
                    "detector": det,
                    "seed": int(seed),
                    "train_set": tr.to_dict(),
                    "test_sets": [t.to_dict() for t in test_sets],
                    "overrides": settings["detector"],
                    "recipe": recipe.to_dict(),
                    "arch_overrides": arch_over,
                    "trainer": settings["trainer"],
                    "data": settings["data"],
                    "datasets": {
                        n: {"layout": data.datasets[n].layout, "options": data.datasets[n].options}
                        for n in sorted(used)
                    },
                    "origin": data.origin,
                    "datamodule": datamodule,
                }
                cells.append(Cell(_jsonable(config), rt))
    return cells


def write_spec(cell: Cell, path: Path) -> Path:
    return atomic.write_json(path, cell.to_json(), indent=1, sort_keys=True)

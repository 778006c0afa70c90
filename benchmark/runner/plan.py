"""Planning: the cells of a grid on the configured data (detector x training set x seed, in grid order).

A cell is a typed record (:mod:`benchmark.runner.cells`); this module builds them from a grid and a data
configuration, and writes the spec files the launchers hand to a cell process.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from benchmark.runner.cells import DEFAULT_DATAMODULE, Cell, CellConfig, DatasetSpec, Runtime
from benchmark.runner.data_config import DataConfig
from benchmark.runner.grid import Grid, GridError, SetSpec, detector_settings, load_grid
from datamodules import atomic


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


def plan_cells(
    grid: Grid,
    data: DataConfig,
    detectors: list[str] | None = None,
    datasets: list[str] | None = None,
    seeds: list[int] | None = None,
    datamodule: str = DEFAULT_DATAMODULE,
    runtime: Runtime | None = None,
) -> list[Cell]:
    """Every cell of ``grid`` (optionally restricted), in grid order: detector, training set, seed.

    ``detectors`` may name any registered detector (the grid's list is only the default);
    ``datasets`` restricts both training and test sets to the sets named (by set or dataset name).
    ``runtime``'s data locations (data config, processed root, dataset roots) are set from ``data``.
    """
    dets = list(detectors or grid.detectors)
    settings = detector_settings(grid, dets)
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
    rt = replace(
        runtime or Runtime(),
        data_config=data.path,
        processed_root=data.processed_root,
        roots={n: data.datasets[n].root for n in sorted(used)},
    )
    specs = {n: DatasetSpec(data.datasets[n].layout, data.datasets[n].options) for n in sorted(used)}
    cells = []
    for det in dets:
        sections, resolved = grid.settings(det), settings[det]
        for tr in train_sets:
            for seed in run_seeds:
                config = CellConfig(
                    grid=grid.name,
                    detector=det,
                    seed=int(seed),
                    train_set=tr,
                    test_sets=tuple(test_sets),
                    overrides=sections["detector"],
                    recipe=resolved.recipe,
                    arch_overrides=resolved.arch_overrides,
                    trainer=sections["trainer"],
                    data=sections["data"],
                    datasets=specs,
                    origin=data.origin,
                    datamodule=datamodule,
                )
                # run with exactly the values a spec file carries (JSON types), inline or in a subprocess
                cells.append(Cell(CellConfig.from_json(config.to_json()), rt))
    return cells


def write_spec(cell: Cell, path: Path) -> Path:
    return atomic.write_json(path, cell.to_json(), indent=1, sort_keys=True)

"""Planning: the cells of a grid on the configured data (detector x training set x seed, in grid order).

A cell is a typed record (:mod:`benchmark.runner.cells`); this module builds them from a grid and a data
configuration, and writes the spec files the launchers hand to a cell process.

A detector's ``data_defaults`` (e.g. SBI: reals + self-blends only) are the cell's data settings under the
grid's own. With ``weights="released"`` every cell scores the checkpoint its detector's owners publish
(:func:`detectors.convert.released_conversion`) from ``<weights_dir>/<published file name>`` instead of
training: a detector without one, or a file that is not there, stops the plan before any cell runs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from benchmark.runner.cells import DEFAULT_DATAMODULE, Cell, CellConfig, DatasetSpec, Runtime, WeightsSpec
from benchmark.runner.data_config import DataConfig
from benchmark.runner.grid import DATA_KEYS, Grid, GridError, SetSpec, detector_settings, load_grid
from datamodules import atomic

#: ``--weights`` values: train every cell, or score the owners' published checkpoints without training
WEIGHTS_MODES = ("trained", "released")
DEFAULT_WEIGHTS_DIR = Path("weights")


class WeightsError(ValueError):
    """Released weights were asked for but a detector has none declared or its file is missing."""


def released_weights(detectors: list[str], weights_dir: Path) -> dict[str, tuple[WeightsSpec, Path]]:
    """Each detector's published checkpoint: its :class:`WeightsSpec` (with the file's SHA-256) and path.

    Raises :class:`WeightsError` (one line naming every detector without a declared checkpoint, and every
    expected path that is missing with the address to download it from).
    """
    from benchmark.store import file_sha256
    from detectors.convert import released_conversion

    found, problems = {}, []
    for det in dict.fromkeys(detectors):
        try:
            source, conversion = released_conversion(det)
        except ValueError as e:
            problems.append(str(e))
            continue
        rel = conversion.released
        assert rel is not None  # released_conversion returns only a conversion with a released checkpoint
        path = Path(weights_dir) / rel.file
        if not path.is_file():
            problems.append(f"{det}: released weights not found at {path} (published at {rel.url})")
            continue
        found[det] = (WeightsSpec(source=source, file=rel.file, sha256=file_sha256(path)), path)
    if problems:
        raise WeightsError("--weights released: " + "; ".join(problems))
    return found


def data_settings(detector: str, grid_data: dict) -> dict:
    """The cell's datamodule settings: the detector's ``data_defaults`` under the grid's data section."""
    from detectors.registry import get_detector_class

    defaults = dict(get_detector_class(detector).data_defaults)
    unknown = sorted(set(defaults) - DATA_KEYS)
    if unknown:
        raise GridError(
            f"detector {detector}: data_defaults {unknown} are not datamodule settings {sorted(DATA_KEYS)}"
        )
    return {**defaults, **grid_data}


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
    weights: str = "trained",
    weights_dir: Path = DEFAULT_WEIGHTS_DIR,
) -> list[Cell]:
    """Every cell of ``grid`` (optionally restricted), in grid order: detector, training set, seed.

    ``detectors`` may name any registered detector (the grid's list is only the default);
    ``datasets`` restricts both training and test sets to the sets named (by set or dataset name).
    ``runtime``'s data locations (data config, processed root, dataset roots) are set from ``data``.
    ``weights="released"`` plans cells that score each detector's published checkpoint found in
    ``weights_dir`` (see :func:`released_weights`) instead of training.
    """
    if weights not in WEIGHTS_MODES:
        raise WeightsError(f"--weights must be one of {', '.join(WEIGHTS_MODES)}, got {weights!r}")
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
    released = released_weights(dets, weights_dir) if weights == "released" else {}
    cells = []
    for det in dets:
        sections, resolved = grid.settings(det), settings[det]
        spec, path = released.get(det, (None, None))
        det_rt = replace(rt, weights_path=path)
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
                    data=data_settings(det, sections["data"]),
                    datasets=specs,
                    origin=data.origin,
                    datamodule=datamodule,
                    weights=spec,
                )
                # run with exactly the values a spec file carries (JSON types), inline or in a subprocess
                cells.append(Cell(CellConfig.from_json(config.to_json()), det_rt))
    return cells


def write_spec(cell: Cell, path: Path) -> Path:
    """Write ``cell``'s JSON spec to ``path`` atomically; returns the path."""
    return atomic.write_json(path, cell.to_json(), indent=1, sort_keys=True)

"""The data side of a cell: manifests (preprocessing when missing), evaluation sets and the datamodule.

A cell names its datamodule factory as ``"module:function"`` in its config (default
:func:`build_datamodule`), so tests and users can plug another one in and the choice survives the trip
to a subprocess, a DDP rank or a SLURM job. A factory is called as ``factory(config, data_spec, manifests)``
with the cell's :class:`~benchmark.runner.cells.CellConfig`, the detector's ``DataSpec`` and the manifest
path of each dataset (empty for factories that do not read manifests). The datamodule it returns must
serve :func:`eval_sets` of the config (its ``eval_sets``, one test dataloader each, in that order): the
cell checks it before training.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L

from benchmark.runner.cells import CellConfig, Runtime
from benchmark.runner.grid import SetSpec
from datamodules.loading.eval_sets import EvalSet
from datamodules.spec import DataSpec

DatamoduleFactory = Callable[[CellConfig, DataSpec, dict[str, Path]], L.LightningDataModule]


#: Stable names of factories whose module moved. The name is part of every cell's hashed config, so it
#: stays what it was when the first cells were run (their ids must not change).
FACTORY_ALIASES = {"benchmark.data:build_datamodule": "benchmark.runner.cell_data:build_datamodule"}


def reads_manifests(ref: str) -> bool:
    """Whether factory ``ref`` is :func:`build_datamodule` (the one that needs preprocessed manifests)."""
    return FACTORY_ALIASES.get(ref, ref) == f"{__name__}:build_datamodule"


def load_factory(ref: str) -> DatamoduleFactory:
    """Import ``"package.module:function"`` (or a name of :data:`FACTORY_ALIASES`)."""
    mod, _, attr = FACTORY_ALIASES.get(ref, ref).partition(":")
    if not attr:
        raise ValueError(f"datamodule factory must be 'module:function', got {ref!r}")
    try:
        return getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load datamodule factory {ref!r}: {e}") from e


def manifest_paths(config: CellConfig, runtime: Runtime) -> dict[str, Path]:
    """The manifest path of each dataset the cell reads, under the runtime's processed root."""
    from datamodules.manifest import manifest_path

    return {name: manifest_path(runtime.processed_root, name) for name in config.datasets}


def ensure_manifests(config: CellConfig, runtime: Runtime) -> dict[str, Path]:
    """Manifest path per dataset of the cell, running preprocessing first where one is missing."""
    paths = manifest_paths(config, runtime)
    for name, path in paths.items():
        if path.is_file():
            continue
        from datamodules.preprocess import preprocess_dataset

        entry = config.datasets[name]
        root = runtime.roots.get(name)
        if root is None:
            raise FileNotFoundError(f"manifest {path} is missing and no root is known for dataset {name!r}")
        print(f"preprocessing {name} ({entry.layout}, {root}) -> {path.parent}", flush=True)
        # preprocess_dataset writes <processed_root>/<name>/manifest.parquet and returns its path
        written = Path(preprocess_dataset(name, entry.layout, root, path.parent.parent, **entry.options))
        if not written.is_file():
            raise FileNotFoundError(f"preprocessing {name} wrote no manifest (expected {path})")
        paths[name] = written
    return paths


def eval_sets(config: CellConfig) -> list[EvalSet]:
    """What a cell scores, in order: the training set's source ``val`` split (named after the training
    set, restricted to its methods like validation), then each test set's ``test`` split. A derived cell
    (a test-time condition, which acts on the test sets only) scores the test sets alone."""

    def to_eval(s: SetSpec, split: str) -> EvalSet:
        return EvalSet(name=s.name, dataset=s.dataset, split=split, methods=tuple(s.methods))

    val = [] if config.perturbed else [to_eval(config.train_set, "val")]
    return [*val, *(to_eval(t, "test") for t in config.test_sets)]


def check_eval_sets(dm: L.LightningDataModule, config: CellConfig) -> None:
    """Refuse a datamodule whose evaluation sets are not the cell's (the factory names the culprit)."""
    want = eval_sets(config)
    got = getattr(dm, "eval_sets", None)
    if got is None or list(got) != want:
        raise ValueError(
            f"datamodule factory {config.datamodule!r} serves evaluation sets "
            f"{'(none: no eval_sets attribute)' if got is None else list(got)}; the cell scores {want} "
            "(benchmark.runner.cell_data.eval_sets(config))"
        )


def check_conditions(dm: L.LightningDataModule, config: CellConfig) -> None:
    """Refuse, for a derived cell, a datamodule that does not apply the cell's test-time perturbation and
    view (its scores would be the clean ones under the condition's name)."""
    got = getattr(dm, "test_perturbation", None), getattr(dm, "test_view", None)
    if got != (config.perturbation, config.view):
        raise ValueError(
            f"datamodule factory {config.datamodule!r} does not apply the cell's test-time condition "
            f"{config.condition.tag!r} (its test_perturbation / test_view are {got[0]!r} / {got[1]!r}); "
            "derived cells need a datamodule that does, e.g. the default ForgeryDataModule"
        )


def data_protocols(manifests: dict[str, Path]) -> dict[str, str]:
    """The preprocessing protocol each manifest was made with, from its pinned ``preprocess.json``
    (``datamodules.preprocess.protocols``; a manifest without the file counts as ``default``)."""
    from datamodules.preprocess import read_pinned

    out = {}
    for name, path in manifests.items():
        pinned = read_pinned(Path(path).parent)
        out[name] = str(pinned["protocol"]) if pinned else "default"
    return out


def build_datamodule(config: CellConfig, spec: DataSpec, manifests: dict[str, Path]) -> L.LightningDataModule:
    """The suite's ``ForgeryDataModule`` for one cell (val = the source's val split; evaluation sets =
    :func:`eval_sets`; a derived cell's test-time perturbation and view on the test sets)."""
    from datamodules.loading.datamodule import ForgeryDataModule

    recipe, train = config.recipe, config.train_set
    kwargs: dict[str, Any] = {
        "batch_size": recipe.batch_size,
        "eval_batch_size": recipe.eval_batch_size,
        "frames_train": recipe.frames_train,
        "frames_test": recipe.frames_test,
        "augment": recipe.augmentation if recipe.augment else False,  # the recipe's own pipeline
        "seed": config.seed,
        **config.data,  # the grid's data section (validated against grid.DATA_KEYS)
    }
    if train.methods:
        kwargs["train_methods"] = list(train.methods)
    return ForgeryDataModule(
        spec,
        train=train.dataset,
        tests=eval_sets(config),
        manifests=manifests,
        test_perturbation=config.perturbation,
        test_view=config.view,
        **kwargs,
    )

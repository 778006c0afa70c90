"""Datamodule factories and grids for the runner tests (synthetic data, no preprocessing)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import lightning as L
import yaml

from benchmark.runner.cell_data import eval_sets
from benchmark.runner.cells import CellConfig
from datamodules.loading.synthetic import SyntheticDataModule
from datamodules.spec import DataSpec

TEST_SETS = ("a", "b")


def synthetic(config: CellConfig, spec: DataSpec, manifests: dict[str, Path]) -> L.LightningDataModule:
    """8 samples per split; the cell's evaluation sets (source val, then the grid's test sets)."""
    return SyntheticDataModule(spec, n=8, batch_size=4, test_sets=eval_sets(config))


def synthetic_odd(config: CellConfig, spec: DataSpec, manifests: dict[str, Path]) -> L.LightningDataModule:
    """11 samples per split: two DDP ranks pad one sample (the duplicate-score trap)."""
    return SyntheticDataModule(spec, n=11, batch_size=4, test_sets=eval_sets(config))


class _KillOnce(L.Callback):
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 1 and not self.marker.exists():
            self.marker.write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)


class _KillingDM(SyntheticDataModule):
    def __init__(self, marker: Path, **kw: Any) -> None:
        super().__init__(**kw)
        self.marker = marker

    def train_dataloader(self):  # the datamodule has the trainer: add the killer callback lazily
        if not any(isinstance(c, _KillOnce) for c in self.trainer.callbacks):
            self.trainer.callbacks.append(_KillOnce(self.marker))
        return super().train_dataloader()


def killing(config: CellConfig, spec: DataSpec, manifests: dict[str, Path]) -> L.LightningDataModule:
    """Like ``synthetic`` but SIGKILLs its own process at the start of epoch 2, once (marker file)."""
    marker = Path(os.environ["RUNNER_TEST_KILL_MARKER"])
    return _KillingDM(marker, spec=spec, n=8, batch_size=4, test_sets=eval_sets(config))


def write_data_config(root: Path, names: tuple[str, ...] = ("train", *TEST_SETS)) -> Path:
    cfg = {
        "processed_root": "processed",
        "datasets": {n: {"layout": "synthetic", "root": "."} for n in names},
    }
    path = root / "datasets.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def write_grid(root: Path, name: str = "tiny", **over: Any) -> Path:
    grid = {
        "name": name,
        "detectors": ["resnet34"],
        "train_sets": ["train"],
        "test_sets": list(TEST_SETS),
        "seeds": [0],
        "defaults": {
            "detector": {
                "arch": "test_resnet",
                "pretrained": False,
                "input_size": 32,
                "epochs": 2,
                "batch_size": 4,
                "eval_batch_size": 4,
            },
            "data": {"num_workers": 0},
        },
    }
    grid.update(over)
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(grid))
    return path


def crash_seed0(config: CellConfig, spec: DataSpec, manifests: dict[str, Path]) -> L.LightningDataModule:
    """Raises for seed 0 (a crashing cell); ``synthetic`` for any other seed."""
    if config.seed == 0:
        raise ValueError("synthetic crash of the seed-0 cell")
    return synthetic(config, spec, manifests)


class RaiseAtEpoch(L.Callback):
    """Simulates a cell killed half-way: raises at the start of ``epoch`` (after last.ckpt was saved)."""

    def __init__(self, epoch: int = 1) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            raise RuntimeError("simulated kill in the middle of fit")


def test_sets_only(config: CellConfig, spec: DataSpec, manifests: dict[str, Path]) -> L.LightningDataModule:
    """A factory of the old kind: one loader per test dataset, no source val set (refused by the cell)."""
    return SyntheticDataModule(spec, n=8, batch_size=4, test_sets=tuple(config.test_datasets))

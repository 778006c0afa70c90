"""Datamodule factories for the fault-injection tests (the runner loads them by ``module:function``)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from benchmark.runner.cell_data import eval_sets
from benchmark.runner.cells import CellConfig
from datamodules.batch import collate
from datamodules.loading.synthetic import SyntheticDataModule, SyntheticItems
from datamodules.spec import DataSpec

NAN_INDEX = 5  # second training batch of 4: the first step is fine, the second diverges


class _NanItems(SyntheticItems):
    def __getitem__(self, i: int) -> dict:
        item = super().__getitem__(i)
        if i == NAN_INDEX:
            item["image"] = torch.full_like(item["image"], float("nan"))
        return item


class _NanDM(SyntheticDataModule):
    def train_dataloader(self) -> DataLoader:
        return DataLoader(_NanItems(self.spec, self.n, "train"), batch_size=self.bs, collate_fn=collate)


def nan_in_training(config: CellConfig, spec: DataSpec, manifests: dict[str, Path]) -> L.LightningDataModule:
    """Like ``tests.runner_fixtures.synthetic`` but one training image is all NaN: the loss diverges."""
    return _NanDM(spec, n=8, batch_size=4, test_sets=eval_sets(config))

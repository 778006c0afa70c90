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


def write_face_manifests(
    processed_root: Path, names: tuple[str, ...] = ("train", *TEST_SETS), side: int = 64, frames: int = 2
) -> dict[str, Path]:
    """Preprocessed datasets as preprocessing lays them out (``<root>/<name>/manifest.parquet`` + PNG
    crops), so the runner's own ``ForgeryDataModule`` serves them: two real faces, per split 2 real and 2
    fake videos of ``frames`` frames (a fake: the face with a brightened centre square), every split in
    every dataset. The real datamodule is what applies test-time perturbations and views."""
    import cv2
    import numpy as np

    from datamodules.manifest import manifest_path, write_manifest
    from tests.real_faces import aligned_face

    faces = [cv2.resize(aligned_face(n)[0], (side, side), interpolation=cv2.INTER_AREA) for n in
             ("astronaut", "grace_hopper")]  # fmt: skip
    out = {}
    for d, name in enumerate(names):
        path = manifest_path(processed_root, name)
        (path.parent / "crops").mkdir(parents=True, exist_ok=True)
        rows = []
        for split in ("train", "val", "test"):
            for v in range(4):
                label = v % 2
                method = "fake" if label else "real"
                video = f"{name}/{method}/{split}{v}"
                for f in range(frames):
                    img = np.clip(faces[(v // 2 + d) % 2].astype(int) + 9 * f - 5 * d, 0, 255).astype(
                        np.uint8
                    )
                    if label:
                        img[side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] //= 2
                        img[side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] += 100
                    crop = f"crops/{split}{v}_{f}.png"
                    cv2.imwrite(str(path.parent / crop), img[:, :, ::-1])
                    rows.append(
                        dict(dataset=name, split=split, label=label, method=method, compression="raw",
                             video_id=video, frame_index=f, crop_path=crop, landmarks_path="", mask_path="",
                             status="ok", reason="", source_label=method)
                    )  # fmt: skip
        out[name] = write_manifest(rows, path)
    return out

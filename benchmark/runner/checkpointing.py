"""The cell's checkpoint callback: the best checkpoint holds the weights, ``last.ckpt`` the training state.

The best checkpoint (selected on ``val/auc`` of the source validation split) is only ever scored, so it is
written weights-only (no optimiser, scheduler or callback state); ``last.ckpt``, which a killed cell
resumes from, keeps the full training state. With lean checkpoints (:mod:`detectors.frozen_backbone`)
neither repeats a frozen backbone, so ``last.ckpt`` is lean weights + optimiser state, not a second full
copy of the model (sizes: ``python -m benchmark.perf checkpoints``).
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint


class BestWeightsCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` whose top-k files are weights-only; the ``last`` file keeps the full state."""

    def _save_checkpoint(self, trainer: Any, filepath: str) -> None:
        # ModelCheckpoint sets last_model_path before it saves the last checkpoint: every other file is a
        # top-k one, saved weights-only. (Overrides a private hook of ModelCheckpoint, tested in
        # tests/test_lean_checkpoints.py against the installed Lightning.)
        keep = self.save_weights_only
        self.save_weights_only = keep or filepath != self.last_model_path
        try:
            super()._save_checkpoint(trainer, filepath)
        finally:
            self.save_weights_only = keep


def cell_checkpoint(dirpath: Any) -> BestWeightsCheckpoint:
    """The cell's checkpoint callback: best on ``val/auc`` (weights) and ``last.ckpt`` (training state)."""
    return BestWeightsCheckpoint(
        dirpath=dirpath,
        monitor="val/auc",
        mode="max",
        save_top_k=1,
        save_last=True,
        filename="best-{epoch}-{step}",
    )

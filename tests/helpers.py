"""Test helpers: a quiet CPU Trainer; the synthetic batches and datamodule live in the package
(``datamodules.loading.synthetic``) and are re-exported here for the tests."""

from __future__ import annotations

import lightning as L

from datamodules.loading.synthetic import SyntheticDataModule, make_batch, make_item

__all__ = ["SyntheticDataModule", "make_batch", "make_item", "quiet_trainer"]


def quiet_trainer(**overrides) -> L.Trainer:
    """A CPU ``Trainer`` without logger, checkpoints, progress bar or summary (``overrides`` win)."""
    kw = dict(
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return L.Trainer(**{**kw, **overrides})

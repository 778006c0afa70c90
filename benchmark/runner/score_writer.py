"""``ScoreWriter``: the Lightning callback that turns ``Trainer.test`` outputs into per-sample score rows.

In the manner of Lightning's ``BasePredictionWriter``: ``Detector.test_step`` only returns the
probabilities of fake ``[B]``; this callback pairs them with the batch's ids, names the evaluation set
of each dataloader (``dataloader_idx`` -> :class:`~datamodules.loading.eval_sets.EvalSet`, from the
datamodule's ``eval_sets`` or given), gathers the rows of every rank and drops the repeats that
``DistributedSampler`` pads shards with, so the rows equal those of a single process.

A row (:data:`ROW_COLUMNS`): ``sample_id, video_id`` (with the set's ``id_suffix`` for a method subset),
``dataset`` (the manifest's dataset name, as the batch carries it), ``method, label, score``,
``test_set`` (the set's name) and ``split``. The runner adds the cell's columns and stores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor

from datamodules.batch import Batch
from datamodules.loading.eval_sets import EvalSet

ROW_COLUMNS = ("sample_id", "video_id", "dataset", "method", "label", "score", "test_set", "split")


def dedupe_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop rows whose ``(test_set, split, sample_id)`` was already seen.

    DistributedSampler pads shards by repeating samples; the repeats carry the same sample_id and the
    same score, so keeping the first occurrence gives exactly the single-process set.
    """
    seen: set[tuple[str, str, str]] = set()
    out = []
    for r in rows:
        key = (r["test_set"], r["split"], r["sample_id"])
        if key in seen:
            continue
        seen.add(key)
        out.append(r)
    return out


class ScoreWriter(Callback):
    """Collects the score rows of one ``Trainer.test`` call; ``rows`` holds them afterwards (every rank).

    Args:
        sets: the evaluation set of each test dataloader, in order; default: ``trainer.datamodule.eval_sets``.
    """

    def __init__(self, sets: Sequence[EvalSet] | None = None) -> None:
        self.sets = list(sets) if sets is not None else None
        self.rows: list[dict[str, Any]] = []
        self._active: list[EvalSet] = []
        self._parts: list[list[dict[str, Any]]] = []  # this rank's rows, per evaluation set

    def on_test_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        """Match each test dataloader with its evaluation set (a clear error when the counts differ)."""
        sets = self.sets if self.sets is not None else getattr(trainer.datamodule, "eval_sets", None)
        if sets is None:
            raise ValueError(
                "ScoreWriter needs the evaluation set of each test dataloader: pass sets=[EvalSet, ...] or "
                "test with a datamodule that has eval_sets"
            )
        n_loaders = len(trainer.num_test_batches)
        if n_loaders != len(sets):
            raise ValueError(
                f"ScoreWriter: {n_loaders} test dataloader(s) for {len(sets)} evaluation set(s) "
                f"{[s.name for s in sets]}"
            )
        self._active = list(sets)
        self._parts = [[] for _ in sets]
        self.rows = []

    def on_test_batch_end(
        self,
        trainer: Any,
        pl_module: Any,
        outputs: Any,
        batch: Batch,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Collect one row per sample of the batch (a TypeError unless ``test_step`` returned ``[B]``
        probabilities)."""
        if not isinstance(outputs, Tensor) or outputs.shape != (len(batch),):
            got = tuple(outputs.shape) if isinstance(outputs, Tensor) else type(outputs).__name__
            raise TypeError(
                f"test_step must return the probabilities of fake, shape ({len(batch)},); got {got}"
            )
        s = self._active[dataloader_idx]
        scores = outputs.detach().float().cpu().tolist()
        labels = batch.label.detach().cpu().tolist()
        tag = s.id_suffix
        self._parts[dataloader_idx].extend(
            {
                "sample_id": batch.sample_id[i] + tag,
                "video_id": batch.video_id[i] + tag,
                "dataset": batch.dataset[i],
                "method": batch.method[i],
                "label": int(labels[i]),
                "score": float(p),
                "test_set": s.name,
                "split": s.split,
            }
            for i, p in enumerate(scores)
        )

    def on_test_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Gather every rank's rows (set by set), drop the duplicates of padded batches and keep them in
        ``rows``."""
        parts = self._parts
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered: list[list[list[dict[str, Any]]]] = [[] for _ in range(trainer.world_size)]
            torch.distributed.all_gather_object(gathered, parts)
            # set by set (the sets' order), ranks in order within a set
            parts = [[r for rank in gathered for r in rank[k]] for k in range(len(parts))]
        self.rows = dedupe_rows([r for part in parts for r in part])
        self._parts = []

"""A cell's progress output: Lightning's rich bar on a terminal, one line per event otherwise.

A rich progress bar written to a file (a cell's ``cell.log``, a SLURM log, ``python -m benchmark.run >
log``) is a frozen ``0:00`` frame, not progress. When stdout is not a terminal a cell prints instead one
line per event, each labelled with its cell so lines of several cells can be told apart::

    [epoch] resnet34 | FF++ | seed 0 1a2b3c4d5e6f7a8b: 1/10 done in 42 s: train/loss 0.6931, val/auc 0.5123
    [scored] resnet34 | FF++ | seed 0 1a2b3c4d5e6f7a8b: CDF-v2 (test): 1,240 samples

The sweep's monitor (:mod:`benchmark.runner.monitor`) prints the cell's ``[running]`` and ``[done]`` lines
and, for cells running in another process, copies these event lines from the cell's log as they come.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.callbacks.progress import ProgressBar

#: the event lines a cell prints (the monitor copies exactly these from a cell's log)
EVENTS = ("epoch", "scored")
#: the metrics an epoch line shows, when logged
EPOCH_METRICS = ("train/loss", "val/loss", "val/auc")


def is_event_line(line: str) -> bool:
    """Whether ``line`` is one of the event lines :class:`LineProgress` prints."""
    return line.startswith(tuple(f"[{e}] " for e in EVENTS))


class LineProgress(ProgressBar):
    """Lightning's progress bar as plain lines: one per finished epoch, one per scored evaluation set.

    Registered as the trainer's progress bar (so Lightning shows no other); prints on global rank 0 only.
    """

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label
        self._enabled = True
        self._epoch_started = 0.0

    def disable(self) -> None:
        """Stop printing (e.g. while a live table owns the console)."""
        self._enabled = False

    def enable(self) -> None:
        """Print again."""
        self._enabled = True

    def _line(self, event: str, text: str) -> None:
        if self._enabled:
            print(f"[{event}] {self.label}: {text}", flush=True)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        """Note when the epoch started (the epoch line gives its duration)."""
        self._epoch_started = time.perf_counter()

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Print one line per epoch: its number, duration and the logged epoch metrics."""
        metrics = trainer.callback_metrics
        shown = [f"{k} {float(metrics[k]):.4f}" for k in EPOCH_METRICS if k in metrics]
        took = time.perf_counter() - self._epoch_started
        self._line(
            "epoch",
            f"{trainer.current_epoch + 1}/{trainer.max_epochs} done in {took:.0f} s"
            + (f": {', '.join(shown)}" if shown else ""),
        )

    def on_test_end(self, trainer: Any, pl_module: Any) -> None:
        """One line per scored evaluation set, from the rows the ``ScoreWriter`` gathered (in set order)."""
        from benchmark.runner.score_writer import ScoreWriter

        writers = [c for c in trainer.callbacks if isinstance(c, ScoreWriter)]
        rows = writers[0].rows if writers else []
        sets: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in rows:
            sets.setdefault((str(r.get("test_set", "?")), str(r.get("split", "?"))), []).append(r)
        if not sets:
            self._line("scored", "(no samples): 0 samples")
        for (name, split), records in sets.items():
            self._line("scored", f"{name} ({split}): {len(records):,} samples")


def progress_callbacks(enabled: bool, label: str) -> list[Callback]:
    """The cell's progress display: none when disabled, Lightning's rich bar when stdout is a terminal,
    else :class:`LineProgress`."""
    if not enabled:
        return []
    if sys.stdout.isatty():
        from lightning.pytorch.callbacks import RichProgressBar

        return [RichProgressBar()]
    return [LineProgress(label)]

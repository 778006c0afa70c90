"""Training guards of a cell: a diverged model must fail loudly, never be scored as if all were well.

A NaN or infinite training loss poisons the weights at the next optimiser step; from then on every score
is NaN, or worse, a saturated but finite 0.0/1.0 that no score check can tell from a confident model.
:class:`FiniteLossGuard` checks the loss BEFORE backward, so the step that would poison the weights never
runs, no checkpoint of a diverged model is written after it, and the cell fails with a record naming the
epoch and step (the runner records the traceback; no scores reach the store).

Policy ``fail`` (the default and the only one for bf16/fp32 training). Under fp16 mixed precision a
GradScaler legitimately meets overflowing steps while it calibrates its scale and skips them itself, so
there the guard fails only after ``fp16_patience`` consecutive non-finite losses.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.callbacks import Callback


class NonFiniteLossError(FloatingPointError):
    """The training loss was NaN or infinite; the message names the detector, epoch and step."""


class FiniteLossGuard(Callback):
    """Raise :class:`NonFiniteLossError` when a training loss is not finite (checked before backward).

    One device-to-host sync per step (the progress bar already reads the loss every step).
    """

    def __init__(self, fp16_patience: int = 20) -> None:
        self.fp16_patience = fp16_patience
        self._streak = 0

    def on_before_backward(self, trainer: Any, pl_module: Any, loss: torch.Tensor) -> None:
        """Fail the cell on a non-finite loss (after ``fp16_patience`` steps under fp16's loss scaling)."""
        if bool(torch.isfinite(loss.detach()).all()):
            self._streak = 0
            return
        self._streak += 1
        if str(trainer.precision).startswith("16") and self._streak < self.fp16_patience:
            return  # the GradScaler skips this step and lowers its scale
        name = getattr(pl_module, "name", None) or type(pl_module).__name__
        raise NonFiniteLossError(
            f"{name}: non-finite training loss {loss.detach().float().cpu().tolist()} at epoch "
            f"{trainer.current_epoch}, batch {trainer.fit_loop.epoch_loop.batch_idx} (global step "
            f"{trainer.global_step}); the model diverged (or a batch holds NaN/inf), so the cell fails "
            "instead of scoring it. Check the data, lower the learning rate, or use bf16/fp32"
        )

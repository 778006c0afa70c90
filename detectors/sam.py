"""Sharpness-Aware Minimisation (Foret, Kleiner, Mobahi & Neyshabur, "Sharpness-Aware Minimization for
Efficiently Improving Generalization", ICLR 2021) around any torch optimiser, usable by Lightning.

One SAM step on a mini-batch loss ``L`` at weights ``w`` (the paper's Algorithm 1, ``p = 2``):

1. ``g = grad L(w)``;
2. ``e = rho * g / ||g||_2`` (the norm over ALL parameters with a gradient);
3. ``g_sam = grad L(w + e)``;
4. back to ``w``, then the base optimiser's update with ``g_sam`` (e.g. SGD with momentum).

Lightning's automatic optimisation hands ``optimizer.step`` a closure that runs the training step and
backward (zeroing the gradients first); :meth:`SAM.step` calls it twice, once at ``w`` and once at
``w + e``, so the detector's ``training_step``, gradient clipping and the loss guard all run unchanged.
:attr:`SAM.perturbed` is ``True`` during the second evaluation (a detector may skip logging it).

The wrapper shares the base optimiser's ``param_groups`` and ``state``: learning-rate schedulers bound to
it change the base optimiser's rates, and its ``state_dict`` is the base optimiser's (plus ``rho`` in each
group), so checkpoints resume. Refused on purpose: ``step()`` without a closure (fp16 GradScaler, a manual
``optimizer.step()``), which cannot evaluate the second gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

#: added to ``||g||`` so a zero gradient gives a zero perturbation instead of NaN
_EPS = 1e-12


class SAM(torch.optim.Optimizer):
    """SAM around ``base`` (already built on its parameter groups) with neighbourhood radius ``rho``."""

    def __init__(self, base: torch.optim.Optimizer, rho: float = 0.05) -> None:
        if not rho > 0:
            raise ValueError(f"SAM needs rho > 0, got {rho}")
        if isinstance(base, SAM):
            raise TypeError("SAM cannot wrap another SAM")
        # Optimizer.__init__ fills the base's group dicts in place (adds "rho"); then both share them.
        super().__init__(base.param_groups, {"rho": float(rho)})
        self.base = base
        self.rho = float(rho)
        self.param_groups = base.param_groups
        self.state = base.state
        self.perturbed = False

    def _params_with_grad(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"] if p.grad is not None]

    @torch.no_grad()
    def first_step(self) -> Tensor:
        """Move every parameter with a gradient to ``w + rho * g / ||g||``; returns ``||g||``."""
        params = self._params_with_grad()
        if not params:
            raise RuntimeError("SAM.first_step: no parameter has a gradient (was backward run?)")
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        scale = self.rho / (norm + _EPS)
        for p in params:
            e = p.grad * scale.to(p.grad)
            p.add_(e)
            self.state[p]["sam_e"] = e
        self.perturbed = True
        return norm

    @torch.no_grad()
    def restore(self) -> None:
        """Undo :meth:`first_step` (back to ``w``)."""
        for group in self.param_groups:
            for p in group["params"]:
                e = self.state.get(p, {}).pop("sam_e", None)
                if e is not None:
                    p.sub_(e)
        self.perturbed = False

    @torch.no_grad()
    def second_step(self) -> None:
        """Back to ``w``, then the base optimiser's step with the gradients taken at ``w + e``."""
        self.restore()
        self.base.step()

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One SAM step; ``closure`` zeroes the gradients, computes the loss, runs backward and returns it.

        Returns the loss at ``w`` (the first evaluation).
        """
        if closure is None:
            raise RuntimeError(
                "SAM.step needs a closure (it evaluates the loss twice); fp16 GradScaler training "
                "(precision='16-mixed') and manual optimizer.step() are not supported: use bf16-mixed or 32"
            )
        with torch.enable_grad():
            loss = closure()
        self.first_step()
        try:
            with torch.enable_grad():
                closure()
        except BaseException:
            self.restore()
            raise
        self.second_step()
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load into the base optimiser and share its new groups and state again."""
        self.base.load_state_dict(state_dict)
        self.param_groups = self.base.param_groups
        self.state = self.base.state
        self.perturbed = False

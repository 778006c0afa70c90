"""Training recipes: the optimiser, schedule and data settings a paper trained with.

Each detector class carries its paper's recipe as ``default_recipe``; overrides are explicit keyword
arguments (``create_detector("xception", lr=1e-4)``) and are recorded in the cell record, so a leaderboard
can print every deviation from the paper.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class Recipe:
    """Optimisation and data-loading settings of one training run.

    Attributes:
        optimizer: ``adam``, ``adamw`` or ``sgd``.
        lr, weight_decay, betas, momentum: optimiser parameters (``betas`` for Adam/AdamW, ``momentum`` for SGD).
        scheduler: ``None``, ``cosine`` (per step, to zero over the whole run) or ``step`` (per epoch).
        step_size, gamma: StepLR parameters.
        warmup_steps: linear warm-up before the schedule (0 = none).
        epochs: training epochs.
        batch_size: training images per step (for paired batches: reals + fakes).
        eval_batch_size: images per validation/test step.
        frames_train, frames_test: frames per video used in training / evaluation.
        augment: whether the training pipeline augments.
        source: where these numbers come from (paper, table, released config).
    """

    optimizer: str = "adam"
    lr: float = 2e-4
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    scheduler: str | None = None
    step_size: int = 10
    gamma: float = 0.1
    warmup_steps: int = 0
    epochs: int = 10
    batch_size: int = 32
    eval_batch_size: int = 64
    frames_train: int = 32
    frames_test: int = 32
    augment: bool = True
    source: str = ""

    def __post_init__(self) -> None:
        if self.optimizer not in {"adam", "adamw", "sgd"}:
            raise ValueError(f"Recipe.optimizer must be adam, adamw or sgd, got {self.optimizer!r}")
        if self.scheduler not in {None, "cosine", "step"}:
            raise ValueError(f"Recipe.scheduler must be None, 'cosine' or 'step', got {self.scheduler!r}")
        if self.lr <= 0 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"Recipe needs lr > 0, epochs >= 1, batch_size >= 1: {self}")

    def with_overrides(self, **overrides: Any) -> Recipe:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown recipe setting(s) {unknown}; known: {sorted(known)}")
        if "betas" in overrides:
            overrides["betas"] = tuple(overrides["betas"])
        return replace(self, **overrides)

    def diff(self, other: Recipe) -> dict[str, tuple[Any, Any]]:
        """Settings that differ from ``other`` as ``{name: (other_value, self_value)}``."""
        a, b = asdict(other), asdict(self)
        return {k: (a[k], b[k]) for k in a if k != "source" and a[k] != b[k]}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recipe:
        """The recipe :meth:`to_dict` (or its JSON) describes; unknown keys raise."""
        return cls().with_overrides(**d)


DEEPFAKEBENCH_CNN = Recipe(
    optimizer="adam",
    lr=2e-4,
    weight_decay=5e-4,
    betas=(0.9, 0.999),
    epochs=10,
    batch_size=32,
    eval_batch_size=32,
    frames_train=32,
    frames_test=32,
    augment=True,
    source="DeepfakeBench training/config/detector/*.yaml",
)
"""The settings DeepfakeBench's Xception, EfficientNet-B4 and UCF configs share (each detector
overrides ``source`` and whatever its own config changes)."""

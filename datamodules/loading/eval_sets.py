"""Evaluation sets: the frames a trained model is scored on, and the name its scores are stored under.

An :class:`EvalSet` is the ``split`` of the manifest of ``dataset``, restricted to the fake ``methods``
(every fake when empty; reals are always kept), scored under ``name``. The runner scores the source
dataset's ``val`` split (named after the training set; its threshold is transferred to the test sets)
and each test set of the grid, one evaluation dataloader per set, in one ``Trainer.test`` call.

A method subset (``FF++/DF``: FF++'s reals and its Deepfakes fakes) is its own unit on the Cross-AUC
axes, and it shares its reals with the other subsets of the same dataset; its scored frames therefore
carry :attr:`EvalSet.id_suffix` (``@<name>``) on ``video_id`` and ``sample_id``, so a video belongs to
exactly one set in the score store.
"""

from __future__ import annotations

from dataclasses import dataclass

from datamodules.manifest import DataError

#: manifest splits a model is evaluated on (``train`` never is)
EVAL_SPLITS = ("val", "test")


@dataclass(frozen=True)
class EvalSet:
    """One evaluation set (see the module docstring)."""

    name: str  # what the scores are stored and shown under (the store's ``test_set``, the Cross-AUC axis)
    dataset: str  # the manifest's dataset name (a key of the datamodule's manifests)
    split: str = "test"  # "val" | "test"
    methods: tuple[str, ...] = ()  # fake methods kept; empty: every fake. Reals are always kept.

    def __post_init__(self) -> None:
        for f in ("name", "dataset"):
            value = getattr(self, f)
            if not isinstance(value, str) or not value:
                raise DataError(
                    f"evaluation set {self.name!r}: {f} must be a non-empty string, got {value!r}"
                )
        if self.split not in EVAL_SPLITS:
            raise DataError(
                f"evaluation set {self.name!r}: split must be one of {list(EVAL_SPLITS)}, got {self.split!r}"
            )
        if isinstance(self.methods, str) or not all(isinstance(m, str) for m in self.methods):
            raise DataError(
                f"evaluation set {self.name!r}: methods must be a sequence of method names, got {self.methods!r}"
            )
        object.__setattr__(self, "methods", tuple(self.methods))

    @classmethod
    def of(cls, value: str | EvalSet) -> EvalSet:
        """``value`` as an EvalSet: a plain name means the ``test`` split of the dataset of that name."""
        return value if isinstance(value, EvalSet) else cls(name=value, dataset=value)

    @property
    def id_suffix(self) -> str:
        """``@<name>`` for a method subset (its reals are shared with other subsets), else ``""``."""
        return f"@{self.name}" if self.methods else ""


def check_unique(sets: list[EvalSet]) -> None:
    """Refuse two evaluation sets of the same name and split (their scores would be stored as one set).

    The source's ``val`` set and a test set may share a name (``FF++``): the split tells them apart.
    """
    keys = [(s.name, s.split) for s in sets]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise DataError(
            f"evaluation set(s) {[f'{n} ({sp})' for n, sp in twice]} are listed twice; "
            "each set needs its own name per split"
        )

"""Derived cells: a finished cell's checkpoint scored under a test-time condition, one store entry each.

A derived cell's config is its parent's plus the condition (``CellConfig.perturbation`` /
``CellConfig.view``, :mod:`benchmark.runner.sweeps`), so its id is a hash like any cell's: the same
condition on the same parent is the same cell, and a done one is skipped. It trains nothing: the cell
(:func:`benchmark.runner.cell.run_cell`) builds the detector as the parent did, loads the parent's
checkpoint (trained: the best checkpoint its record names; released weights: the published file,
converted), and scores the test sets through the same path as the parent's test (evaluation sets,
``ScoreWriter``, one ``Trainer.test``) with the datamodule's ``test_perturbation`` / ``test_view`` (the
source validation split, which the perturbation would not touch, is not scored again). Its record
carries ``parent_cell_id`` (the store's mark of a derived cell: ``ScoreStore.read_scores`` leaves such
cells out unless asked), the condition, the checkpoint and its SHA-256, and the parent's
``finished_at``: a parent re-run since (``--force``) makes the derived cell stale, and it is redone.

Planning never fails on a parent: one that is missing or unfinished is reported and skipped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.runner.cells import Cell, CellConfig
from benchmark.runner.monitor import SKIPPED, Job
from benchmark.runner.sweeps import Condition, SweepError, sweep_conditions, view_dict
from benchmark.store import PARENT_KEY, CellNotFoundError, ScoreStore, file_sha256

if TYPE_CHECKING:
    from rich.console import Console

    from benchmark.runner.grid import Grid

#: the column a derived cell's score rows carry: the condition's tag (``gaussian_blur@3``, ``zoom1.2``)
TAG_COLUMN = "perturbation"


def conditions_by_detector(
    names: Sequence[str], grid: Grid, detectors: Sequence[str], required: bool = False
) -> dict[str, list[Condition]]:
    """Each detector's conditions under the sweeps ``names`` (``grid``: its ``perturb`` settings in the
    grid). ``required``: a :class:`SweepError` when they name no condition at all (``--perturb grid`` on a
    grid without a ``perturb`` section)."""
    out = {
        d: sweep_conditions(names, grid.settings(d)["perturb"], f"{grid.path}: perturb settings of {d}")
        for d in dict.fromkeys(detectors)
    }
    if required and not any(out.values()):
        raise SweepError(
            f"--perturb {' '.join(names)} names no test-time condition for {', '.join(out) or 'any detector'}"
            + (f" (grid {grid.name!r} has no perturb section)" if "grid" in names else "")
        )
    return out


def derive(parent: Cell, condition: Condition) -> Cell:
    """The derived cell scoring ``parent``'s checkpoint under ``condition`` (same runtime)."""
    if parent.config.perturbed:
        raise ValueError(f"cell {parent.cell_id} is itself derived; derive from the trained cell")
    if condition.is_clean:
        raise ValueError("a derived cell needs a perturbation or a view (clean is the parent itself)")
    config = replace(parent.config, perturbation=condition.perturbation, view=condition.view)
    return Cell(CellConfig.from_json(config.to_json()), parent.runtime)


def record_state(cell: Cell, store: ScoreStore) -> str:
    """``done``, ``failed``, ``running`` (or killed while running) or ``not run yet``."""
    try:
        return str(store.record(cell.cell_id).get("status"))
    except CellNotFoundError:
        return "not run yet"


def is_current(derived: Cell, store: ScoreStore, parent_record: dict[str, Any]) -> bool:
    """Whether ``derived`` is done from the parent's present run (not from an earlier one)."""
    if not store.is_done(derived.cell_id):
        return False
    seen = (store.record(derived.cell_id).get("parent") or {}).get("finished_at")
    return seen == parent_record.get("finished_at")


@dataclass
class PerturbPlan:
    """The derived cells of a set of parents.

    Attributes:
        cells: every derived cell of the finished parents (parent by parent, conditions in order).
        parents: the finished parents.
        unfinished: the parents skipped, with their state.
        stale: ids of derived cells done from an earlier run of their parent (to redo).
        done: ids of derived cells done from the parent's present run.
    """

    cells: list[Cell] = field(default_factory=list)
    parents: list[Cell] = field(default_factory=list)
    unfinished: list[tuple[Cell, str]] = field(default_factory=list)
    stale: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)

    def state(self, cell: Cell, store: ScoreStore) -> str:
        """``done``, ``stale (parent re-run)``, ``failed`` or ``todo`` of one derived cell."""
        if cell.cell_id in self.done:
            return "done"
        if cell.cell_id in self.stale:
            return "stale (parent re-run)"
        return "failed" if record_state(cell, store) == "failed" else "todo"

    def notes(self) -> list[str]:
        """One line per skipped parent and one for the stale derived cells."""
        out = [
            f"{p.label} ({p.cell_id}) is {state}: its perturbed cells are skipped"
            for p, state in self.unfinished
        ]
        if self.stale:
            out.append(f"{len(self.stale)} perturbed cell(s) scored an earlier run of their parent: redone")
        return out


def plan_perturbed(
    parents: Sequence[Cell], conditions: Mapping[str, Sequence[Condition]], store: ScoreStore
) -> PerturbPlan:
    """The derived cells of each parent that is done, under its detector's ``conditions``."""
    plan = PerturbPlan()
    for parent in parents:
        todo = list(conditions.get(parent.detector, ()))
        if not todo:
            continue
        state = record_state(parent, store)
        if state != "done":
            plan.unfinished.append((parent, state))
            continue
        plan.parents.append(parent)
        parent_record = store.record(parent.cell_id)
        for cond in todo:
            cell = derive(parent, cond)
            plan.cells.append(cell)
            if is_current(cell, store, parent_record):
                plan.done.add(cell.cell_id)
            elif store.is_done(cell.cell_id):
                plan.stale.add(cell.cell_id)
    return plan


def perturbed_jobs(plan: PerturbPlan, force: bool = False) -> list[Job]:
    """The sweep's jobs: a derived cell done from its parent's present run is skipped (unless ``force``)."""
    jobs = [Job(c) for c in plan.cells]
    for job in jobs:
        if job.cell.cell_id in plan.done and not force:
            job.status = SKIPPED
    return jobs


def print_perturbed(
    plan: PerturbPlan, store: ScoreStore, console: Console, title: str, notes: bool = True
) -> None:
    """The ``--dry-run`` table of derived cells, and (``notes``) a line per skipped parent."""
    from rich.table import Table

    for note in plan.notes() if notes else []:
        console.print(f"note: {note}")
    if not plan.cells:
        return
    t = Table(title=title)
    for col in ("#", "cell", "detector", "train set", "seed", "condition", "parent", "state"):
        t.add_column(col, no_wrap=col in {"condition", "state"})
    for i, c in enumerate(plan.cells, 1):
        t.add_row(
            str(i), c.cell_id, c.detector, c.train_set, str(c.seed), c.config.condition.tag, str(c.parent_id),
            plan.state(c, store),
        )  # fmt: skip
    console.print(t)


# ------------------------------------------------------------------ inside the cell process
def parent_record(cell: Cell, store: ScoreStore) -> dict[str, Any]:
    """The done record of a derived cell's parent (a clear error when it is not done)."""
    pid = cell.parent_id
    if pid is None:
        raise ValueError(f"cell {cell.cell_id} ({cell.label}) is not a derived cell: it has no parent")
    state = "not run yet"
    try:
        record = store.record(pid)
        state = str(record.get("status"))
    except CellNotFoundError:
        record = {}
    if state != "done":
        raise RuntimeError(
            f"parent cell {pid} of {cell.label} is {state}: run its grid first (python -m benchmark.run)"
        )
    return record


def parent_checkpoint(cell: Cell, record: dict[str, Any]) -> Path | None:
    """The checkpoint a derived cell loads: the parent's best (None for released weights, which the cell
    converts from ``Runtime.weights_path`` as the parent did)."""
    if cell.config.weights is not None:
        return None
    path = Path(str(record.get("checkpoint") or ""))
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} of parent cell {cell.parent_id} is gone; re-run the parent (--force)"
        )
    return path


def record_fields(cell: Cell, parent: dict[str, Any], checkpoint: Path) -> dict[str, Any]:
    """What a derived cell's record adds: its parent, the condition and the scored file's SHA-256."""
    c = cell.config
    return {
        PARENT_KEY: cell.parent_id,
        "perturbation": {
            "tag": c.condition.tag,
            "distortion": None if c.perturbation is None else c.perturbation.to_dict(),
            "view": None if c.view is None else view_dict(c.view),
        },
        "parent": {
            "finished_at": parent.get("finished_at"),
            "scores_sha256": parent.get("scores_sha256"),
            "checkpoint": parent.get("checkpoint"),
        },
        "checkpoint_sha256": file_sha256(checkpoint),
    }

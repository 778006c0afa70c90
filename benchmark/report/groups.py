"""What a leaderboard row is: the done cells of one (grid, detector, training set) and one configuration.

``collect(store)`` groups the store's done cells; a group scores the cells of ONE configuration, the
latest finished one, one cell per seed. Cells of other settings (an edited grid file) are kept as
``superseded`` and listed on the page, never averaged in as extra seeds.

Derived cells (a finished cell's checkpoint scored under a test-time perturbation or view,
``benchmark.runner.perturbed``) are never a group nor a seed of one: each is attached to its parent
(``Group.perturbed``), for the robustness tables, when it scored the parent's present run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.store import PARENT_KEY, ScoreStore, is_derived


@dataclass
class Group:
    """The done cells of one (grid, detector, training set) and one configuration: one per seed.

    ``superseded`` holds the done cells of the same (grid, detector, training set) run with OTHER
    settings (an edited grid file, another recipe): they are listed on the page, never averaged in.
    """

    grid: str
    detector: str
    train_set: str
    records: list[dict[str, Any]]
    scores: dict[str, pd.DataFrame] = field(default_factory=dict)
    superseded: list[dict[str, Any]] = field(default_factory=list)
    released: bool = False  # cells that scored published checkpoints (no training): a group of their own
    #: per cell of ``records``: its derived cells' records by condition tag (test-time perturbations)
    perturbed: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    perturbed_scores: dict[str, pd.DataFrame] = field(default_factory=dict)  # derived cell id -> scores

    @property
    def test_order(self) -> list[str]:
        """The group's test sets in the grid's order."""
        return [t["name"] for t in self.records[0]["config"]["test_sets"]]

    @property
    def origin(self) -> str:
        """``demo``, ``real`` (or both, ``/``-joined): where the data of the group's cells came from."""
        return "/".join(sorted({r["config"]["origin"] for r in self.records}))

    @property
    def pretrained(self) -> str:
        """What the group started from: the released file's label, or whether pretrained weights were
        loaded."""
        if self.released:  # the published checkpoint itself: say which file
            labels = sorted({(r.get("weights") or {}).get("label", "released weights") for r in self.records})
            return "; ".join(labels)
        if all("template_cell_id" in r for r in self.records):  # the shortcut detector (runner.shortcut)
            return "n/a (confound features only)"
        vals = {bool(r.get("pretrained_loaded", False)) for r in self.records}
        return "yes" if vals == {True} else "no (random init)" if vals == {False} else "mixed"

    @property
    def seeds(self) -> str:
        """The group's seeds, comma-separated."""
        return ", ".join(str(r["config"]["seed"]) for r in self.records)


def slug(name: str) -> str:
    """``name`` as a file-name-safe slug (runs of other characters become ``_``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "x"


def page_path(grid: str, detector: str) -> Path:
    """The leaderboard page of ``detector`` on ``grid``, relative to the leaderboard folder."""
    return Path(slug(grid)) / f"{slug(detector)}.md"


def _settings(rec: dict[str, Any]) -> str:
    """A cell's configuration without its seed: cells that share it are seeds of one experiment."""
    return json.dumps({k: v for k, v in rec["config"].items() if k != "seed"}, sort_keys=True, default=str)


def _current(recs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split one (grid, detector, training set)'s cells into the latest configuration's and the rest.

    The latest configuration is that of the most recently finished cell; cells of older settings would
    otherwise be averaged in as if they were more seeds of the same experiment.
    """
    latest = max(recs, key=lambda r: (str(r.get("finished_at", "")), r["cell_id"]))
    key = _settings(latest)
    same = {r["cell_id"]: _settings(r) == key for r in recs}
    return [r for r in recs if same[r["cell_id"]]], [r for r in recs if not same[r["cell_id"]]]


def _derived_of(parent: dict[str, Any], children: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The derived cells that scored ``parent``'s present run, the latest per condition tag."""
    current = [c for c in children if (c.get("parent") or {}).get("finished_at") == parent.get("finished_at")]
    out: dict[str, dict[str, Any]] = {}
    for c in sorted(current, key=lambda r: (str(r.get("finished_at", "")), r["cell_id"])):
        out[c["perturbation"]["tag"]] = c
    return out


def collect(store: ScoreStore) -> list[Group]:
    """Done cells grouped by (grid, detector, training set), sorted; scores attached.

    Only the latest configuration of each group is scored; the others are kept as ``superseded``.
    Derived cells are attached to their parents (see the module docstring).
    """
    groups: dict[tuple[str, str, str, bool], list[dict[str, Any]]] = {}
    children: dict[str, list[dict[str, Any]]] = {}
    for cid in store.cell_ids("done"):
        rec = store.record(cid)
        if "config" not in rec:  # a store shared with cells not written by the runner
            continue
        if is_derived(rec):  # a test-time condition of another cell: never a group, never a seed
            children.setdefault(rec[PARENT_KEY], []).append(rec)
            continue
        released = rec["config"].get("weights") is not None
        key = (rec["config"]["grid"], rec["config"]["detector"], rec["config"]["train_set"]["name"], released)
        groups.setdefault(key, []).append(rec)
    scores = store.read_scores()  # derived cells' rows are left out
    by_cell = {cid: df.reset_index(drop=True) for cid, df in scores.groupby("cell_id", sort=True)}
    derived_scores = store.read_scores(derived=True) if children else pd.DataFrame(columns=["cell_id"])
    by_derived = {cid: df.reset_index(drop=True) for cid, df in derived_scores.groupby("cell_id", sort=True)}
    out = []
    for (g, d, t, released), recs in sorted(groups.items()):
        recs = sorted(recs, key=lambda r: (int(r["config"]["seed"]), r["cell_id"]))
        cur, old = _current(recs)  # both keep the seed order
        group = Group(g, d, t, cur, {r["cell_id"]: by_cell[r["cell_id"]] for r in cur}, old, released)
        group.perturbed = {r["cell_id"]: _derived_of(r, children.get(r["cell_id"], [])) for r in cur}
        group.perturbed_scores = {
            c["cell_id"]: by_derived[c["cell_id"]] for kids in group.perturbed.values() for c in kids.values()
        }
        out.append(group)
    return out

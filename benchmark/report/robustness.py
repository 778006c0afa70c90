"""The robustness tables of one group: every test-time condition's row, from the declared columns.

A row is one condition of the group's derived cells (``Analysis.conditions``): the columns of
``benchmark.report.columns.CONDITION_COLUMNS`` (mean video AUC, its change from the clean test, Cross-AUC
pair mean, worst ordered pair) evaluated on each seed's cell through a ``View`` bound to that condition,
averaged over seeds (point estimates: derived cells are not bootstrapped). Tables:

* ``distortions``: the clean test (level 0), then every distortion level, in registry order;
* ``means``: per level, the mean of the rows of the DeeperForensics-1.0 distortions scored at that level
  (the summary curve robustness papers plot, e.g. LipForensics, Haliassos et al., CVPR 2021);
* ``views``: the stored crops, then each preprocessing view (and conditions combining both kinds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from benchmark.metrics import cross_auc_summary
from benchmark.report import columns
from benchmark.report.analysis import Analysis, View, combine
from benchmark.report.columns import Estimate, Table
from datamodules.media.perturb import DEEPERFORENSICS
from datamodules.media.perturb.deeperforensics import CODES


@dataclass(frozen=True)
class Row:
    """One row: its label texts, its values by column key (seed means) and the worst ``(real, fake)``
    pair of its seed-mean Cross-AUC matrix. A row is also what the worst column's formatter reads the
    pair from (``columns.worst_arrow`` reads ``.worst_pair``)."""

    labels: tuple[str, ...]
    values: dict[str, Estimate]
    worst_pair: tuple[str, str] | None = None
    condition: str | None = None  # the condition's tag; None: the clean test (or a mean of rows)


@dataclass(frozen=True)
class Robustness:
    """The rows of the three tables (see the module docstring) and the curves of the figure."""

    distortions: list[Row]
    means: list[Row]
    views: list[Row]
    curves: dict[str, list[tuple[int, Row]]] = field(default_factory=dict)  # distortion -> (level, row)
    mean_curve: list[tuple[int, Row]] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)


def condition_row(a: Analysis, tag: str | None, labels: tuple[str, ...], table: Table) -> Row:
    """The row of condition ``tag`` (None: the clean test) with ``table``'s columns, over the seeds."""
    coverage = a.cells[0].boot["video"].ci
    values = {
        c.key: combine(c.fn, [View(cell, c.level).under(tag) for cell in a.cells], False, coverage)
        for c in table.columns
    }
    if tag is None:
        pair = a.worst_pair
    else:
        mats = [cell.perturbed[tag].matrix for cell in a.cells]
        pair = cross_auc_summary(sum(mats[1:], mats[0]) / len(mats))["worst_pair"]
    return Row(labels, values, pair, tag)


def mean_row(rows: list[Row], labels: tuple[str, ...], table: Table) -> Row:
    """The mean of ``rows``' values, column by column (no worst pair: each row has its own)."""
    values = {c.key: Estimate(float(np.mean([r.values[c.key].value for r in rows]))) for c in table.columns}
    return Row(labels, values)


def robustness(a: Analysis) -> Robustness | None:
    """The group's robustness tables; None when it has no derived cell at all."""
    if not a.conditions and not a.incomplete:
        return None
    dist_t, mean_t, view_t = columns.ROBUSTNESS, columns.ROBUSTNESS_MEAN, columns.SENSITIVITY
    conds = {tag: a.cells[0].perturbed[tag].condition for tag in a.conditions}
    clean = condition_row(a, None, ("clean", "0"), dist_t)
    distortions = [clean]
    curves: dict[str, list[tuple[int, Row]]] = {}
    for tag, cond in conds.items():
        p = cond.perturbation
        if p is None or cond.view is not None:
            continue
        row = condition_row(a, tag, (p.name, str(p.level)), dist_t)
        distortions.append(row)
        curves.setdefault(p.name, [(0, clean)]).append((p.level, row))
    means, mean_curve = [], []
    if any(name in DEEPERFORENSICS for name in curves):
        means.append(mean_row([clean], ("0", "clean"), mean_t))
        mean_curve.append((0, means[-1]))
        levels = sorted(
            {lv for name, pts in curves.items() if name in DEEPERFORENSICS for lv, _ in pts} - {0}
        )
        for lv in levels:
            at = [
                (name, r)
                for name, pts in curves.items()
                if name in DEEPERFORENSICS
                for x, r in pts
                if x == lv
            ]
            names = ", ".join(CODES.get(name, name) for name, _ in at)
            means.append(mean_row([r for _, r in at], (str(lv), f"{len(at)}: {names}"), mean_t))
            mean_curve.append((lv, means[-1]))
    others = [tag for tag, cond in conds.items() if cond.view is not None]
    views = [condition_row(a, None, ("stored crops",), view_t)] if others else []
    views += [condition_row(a, tag, (tag,), view_t) for tag in others]
    return Robustness(
        distortions if len(distortions) > 1 else [], means, views, curves, mean_curve, a.incomplete
    )

"""The numbers of one leaderboard group, as data: every declared column computed from the cells' scores.

Per cell (one seed): the test scores are validated once (:class:`~benchmark.metrics.Scores`), then the
Cross-AUC matrix is bootstrapped at video and frame level (``benchmark.metrics.resample``, seed
``BOOT_SEED``), per-test-set metrics are computed at both levels and the source validation split's EER
threshold is applied to the test sets (:class:`CellAnalysis`). A column's function reads one cell through a
:class:`View`; :func:`analyse` evaluates every column of ``benchmark.report.columns`` over the group's
seeds: a value is the mean over seeds, and an interval comes from the same resamples applied to every seed
(the seeds score the same videos and the draws depend only on the bootstrap seed and the videos),
averaged resample by resample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmark.metrics import (
    LEVELS,
    BootstrapResult,
    Scores,
    bootstrap,
    cross_auc_summary,
    dataset_metrics,
    pair_name,
    threshold_transfer,
)
from benchmark.report import columns
from benchmark.report.columns import Column, Estimate
from benchmark.report.groups import Group

N_BOOT = 1000
BOOT_SEED = 0


@dataclass(frozen=True)
class CellAnalysis:
    """One cell's analysed scores: what every column of one seed is computed from.

    Attributes:
        record: the cell record.
        test: the test split's scores, validated once, datasets in the grid's test-set order.
        boot: per level, the bootstrap of the Cross-AUC matrix (entries, summaries, pooled AUC).
        sets: per level, :func:`~benchmark.metrics.dataset_metrics` of each test set.
        transfer: :func:`~benchmark.metrics.threshold_transfer` from the source validation split (video
            level); None when that split cannot give an EER threshold (one class, no rows).
    """

    record: dict[str, Any]
    test: Scores
    boot: dict[str, BootstrapResult]
    sets: dict[str, pd.DataFrame]
    transfer: pd.DataFrame | None


def analyse_cell(record: dict[str, Any], frames: pd.DataFrame, order: list[str], n_boot: int) -> CellAnalysis:
    test = Scores.from_frames(
        frames[frames["split"] == "test"].reset_index(drop=True), datasets=order, need_video=True
    )
    val = frames[frames["split"] == "val"].reset_index(drop=True)
    boot = {lvl: bootstrap(test, "cross_auc", n=n_boot, seed=BOOT_SEED, level=lvl) for lvl in LEVELS}
    sets = {lvl: dataset_metrics(test, level=lvl) for lvl in LEVELS}
    try:
        transfer = threshold_transfer(val, test, level="video")
    except ValueError:  # a source val split with one class (or none) has no EER threshold
        transfer = None
    return CellAnalysis(record, test, boot, sets, transfer)


@dataclass(frozen=True)
class View:
    """What a column's function reads: one cell at one level (and one test set, for per-set columns).

    With ``resampled`` (only for ``ci`` columns), :meth:`stat` returns the statistic on every bootstrap
    resample instead of its estimate; the other readers have no resamples and refuse.
    """

    cell: CellAnalysis
    level: str | None
    dataset: str | None = None
    resampled: bool = False

    @property
    def record(self) -> dict[str, Any]:
        return self.cell.record

    def stat(self, name: str) -> Any:
        """A bootstrap statistic at this level: a Cross-AUC entry (``pair_name``) or a summary key."""
        boot = self.cell.boot[self._level()]
        if self.resampled:
            return boot.samples[name].to_numpy(dtype=float)
        return float(boot.table.loc[name, "estimate"])

    def metric(self, name: str) -> float:
        """``n_real, n_fake, auc, eer, ap, acc`` of this view's test set at this level."""
        self._no_resamples("per-test-set metrics")
        return float(self.cell.sets[self._level()].loc[self.dataset, name])

    def transfer(self, name: str) -> float:
        """``acc``, ``threshold``, ... of :func:`~benchmark.metrics.threshold_transfer` for this test set."""
        self._no_resamples("the threshold transfer")
        t = self.cell.transfer
        return math.nan if t is None else float(t.loc[self.dataset, name])

    def _level(self) -> str:
        if self.level is None:
            raise ValueError("this column declares no level, so it cannot read scores")
        return self.level

    def _no_resamples(self, what: str) -> None:
        if self.resampled:
            raise ValueError(f"a column with ci=True can only read bootstrap statistics, not {what}")


@dataclass(frozen=True)
class Analysis:
    """Every number of one group, keyed by the columns' keys (see ``benchmark.report.columns``).

    Attributes:
        datasets: the test sets, in the grid's order.
        summary: seed means (with intervals) of the ``SUMMARY`` and ``MATRIX_SENTENCE`` columns.
        per_set: per test set, the ``PER_SET`` columns (seed means; intervals where declared).
        per_seed: per seed (record order), the ``PER_SEED`` columns' raw values.
        matrix, matrix_lo, matrix_hi: the video-level Cross-AUC matrix (seed mean) and its interval.
        worst_pair: ``(real, fake)`` of the lowest off-diagonal entry of ``matrix`` (None if none).
        cells: the analysed cells, seed order (the figures read the first one's video scores).
    """

    datasets: list[str]
    summary: dict[str, Estimate]
    per_set: dict[str, dict[str, Estimate]]
    per_seed: list[dict[str, Any]]
    matrix: pd.DataFrame
    matrix_lo: pd.DataFrame
    matrix_hi: pd.DataFrame
    worst_pair: tuple[str, str] | None
    cells: list[CellAnalysis]


def _seed_mean(values: list[Any]) -> np.ndarray:
    """Mean over seeds, summed in seed order (elementwise for arrays: resample by resample)."""
    total = np.asarray(values[0], dtype=float)
    for v in values[1:]:
        total = total + np.asarray(v, dtype=float)
    return total / len(values)


def combine(fn: Any, views: list[View], ci: bool, coverage: float) -> Estimate:
    """``fn`` over the seeds' views: the seed mean, and with ``ci`` the percentile interval of the
    resample-wise seed mean (resamples where the statistic is undefined are left out)."""
    est = _seed_mean([fn(v) for v in views])
    value = float(est) if est.ndim == 0 else tuple(float(x) for x in est)
    if not ci:
        return Estimate(value)
    samples = _seed_mean([fn(View(v.cell, v.level, v.dataset, resampled=True)) for v in views])
    finite = samples[np.isfinite(samples)]
    if not len(finite):
        return Estimate(value)
    alpha = (1 - coverage) / 2
    lo, hi = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return Estimate(value, float(lo), float(hi))


def _column(c: Column, cells: list[CellAnalysis], coverage: float, dataset: str | None = None) -> Estimate:
    return combine(c.fn, [View(cell, c.level, dataset) for cell in cells], c.ci, coverage)


def analyse(group: Group, n_boot: int = N_BOOT) -> Analysis:
    """Every declared column of ``group`` (see the module docstring for how seeds combine)."""
    order = group.test_order
    cells = [analyse_cell(r, group.scores[r["cell_id"]], order, n_boot) for r in group.records]
    coverage = cells[0].boot["video"].ci
    summary = {key: _column(c, cells, coverage) for key, c in columns.group_columns().items()}
    per_set = {d: {c.key: _column(c, cells, coverage, d) for c in columns.PER_SET.columns} for d in order}
    per_seed = [{c.key: c.fn(View(cell, c.level)) for c in columns.PER_SEED.columns} for cell in cells]

    def entry(i: str, j: str) -> Estimate:
        return combine(lambda v: v.stat(pair_name(i, j)), [View(c, "video") for c in cells], True, coverage)

    entries = {(i, j): entry(i, j) for i in order for j in order}

    def mat(attr: str) -> pd.DataFrame:
        m = [[getattr(entries[i, j], attr) for j in order] for i in order]
        return pd.DataFrame(m, index=pd.Index(order, name="real"), columns=pd.Index(order, name="fake"))

    matrix = mat("value")
    return Analysis(
        datasets=order,
        summary=summary,
        per_set=per_set,
        per_seed=per_seed,
        matrix=matrix,
        matrix_lo=mat("lo"),
        matrix_hi=mat("hi"),
        worst_pair=cross_auc_summary(matrix)["worst_pair"],
        cells=cells,
    )

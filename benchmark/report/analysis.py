"""The numbers of one leaderboard group, as data: every declared column computed from the cells' scores.

Per cell (one seed): the test scores are validated once (:class:`~benchmark.metrics.Scores`), then the
Cross-AUC matrix is bootstrapped at video and frame level (``benchmark.metrics.resample``, seed
``BOOT_SEED``), per-test-set metrics are computed at both levels and the source validation split's EER
threshold is applied to the test sets (:class:`CellAnalysis`). Reading the shift adds, per cell: the
per-domain normalisation baselines (``benchmark.metrics.normalisation``, ``NORMALISATION`` settings), the
operating points fixed on the source validation split (``benchmark.metrics.operating``) and the
probabilities' calibration and separation (``benchmark.metrics.summaries.score_quality``), all at video
level. Confounds: where the frames carry the per-frame confound features (the shortcut detector's cell
of the same grid and training set stores them, ``benchmark.runner.shortcut``; they are joined to a
detector's test frames by ``(test set, sample_id)``), the confound-matched Cross-AUC of every ordered pair
(``benchmark.metrics.confounds``, ``MATCHING`` settings, video level); a pair is *confounded* when the
shortcut detector also wins it: both the detector's and the shortcut's video-level Cross-AUC intervals
lie above 0.5 (:func:`confounded`). A column's function reads one cell through a :class:`View`; :func:`analyse` evaluates every column
of ``benchmark.report.columns`` over the group's seeds: a value is the mean over seeds, and an interval
comes from the same resamples applied to every seed (the seeds score the same videos and the draws depend
only on the bootstrap seed and the videos), averaged resample by resample; a normalisation column's
interval is the spread of its calibration repeats (drawn alike for every seed), averaged repeat by repeat.

Test-time conditions (derived cells, ``Group.perturbed``): each seed's cell also carries the point
estimates of its derived cells (:class:`PerturbedCell`: the video-level Cross-AUC matrix and its
summaries, no bootstrap), for the conditions every seed has; a :class:`View` bound to a condition
(``View.under(tag)``) reads them with the same column functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from benchmark.metrics import (
    LEVELS,
    BootstrapResult,
    MatchedCrossAUC,
    MatchingSettings,
    NormalisationResult,
    NormalisationSettings,
    OperatingPoints,
    Scores,
    bootstrap,
    cross_auc_matrix,
    cross_auc_summary,
    dataset_metrics,
    matched_cross_auc,
    normalisation_analysis,
    operating_points,
    pair_name,
    score_quality,
    threshold_transfer,
)
from benchmark.metrics.confounds import has_features
from benchmark.report import columns
from benchmark.report.columns import Column, Estimate
from benchmark.report.groups import Group
from benchmark.runner.sweeps import Condition, condition_of, sort_key
from datamodules.manifest import CONFOUNDS

N_BOOT = 1000
BOOT_SEED = 0
#: the normalisation protocol's defaults (k = 50 calibration videos, 20 repeats, 5 folds, seed 0)
NORMALISATION = NormalisationSettings()
#: confound matching: coarsened exact matching, each feature cut at its median over the grid's test videos
MATCHING = MatchingSettings()
#: the detector whose cells hold the confound features (``benchmark.runner.shortcut.NAME``)
SHORTCUT = "shortcut"


@dataclass(frozen=True)
class ConfoundRow:
    """A row of the confounds table: the ordered pair (reals of ``real``, fakes of ``fake``), and whether the
    shortcut detector also wins it (:func:`confounded`)."""

    real: str
    fake: str
    confounded: bool = False

    @property
    def pair(self) -> tuple[str, str]:
        """``(real, fake)``: the Cross-AUC pair this row reads."""
        return self.real, self.fake


@dataclass(frozen=True)
class PerturbedCell:
    """A derived cell's test scores under one condition: the video-level Cross-AUC matrix (test sets in
    the grid's order) and its :func:`~benchmark.metrics.cross_auc_summary` (point estimates)."""

    record: dict[str, Any]
    condition: Condition
    matrix: pd.DataFrame
    summary: dict[str, Any]


def analyse_perturbed(record: dict[str, Any], frames: pd.DataFrame, order: list[str]) -> PerturbedCell:
    """Analyse a derived cell: its video-level Cross-AUC matrix and summary on the test-time condition."""
    test = Scores.from_frames(frames.reset_index(drop=True), datasets=order, need_video=True)
    matrix = cross_auc_matrix(test, level="video", datasets=order)
    return PerturbedCell(record, condition_of(record["config"]), matrix, cross_auc_summary(matrix))


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
        operating: :func:`~benchmark.metrics.operating_points` from the source validation split (video
            level; None like ``transfer``).
        quality: :func:`~benchmark.metrics.score_quality` of each test set (video level).
        normalised: :func:`~benchmark.metrics.normalisation_analysis` of the test sets (calibrated from
            the val split where a test set has one, else cross-fitted).
        val: the validated non-test split (None when the cell has none).
        perturbed: the cell's derived cells by condition tag (test-time perturbations and views).
        matched: the confound-matched Cross-AUC (video level); None when no frame carries a feature.
        shortcut: the shortcut detector's video-level Cross-AUC matrix (seed mean) of the same grid and
            training set; None without one.
    """

    record: dict[str, Any]
    test: Scores
    boot: dict[str, BootstrapResult]
    sets: dict[str, pd.DataFrame]
    transfer: pd.DataFrame | None
    operating: OperatingPoints | None
    quality: pd.DataFrame
    normalised: NormalisationResult
    val: Scores | None = None
    perturbed: dict[str, PerturbedCell] = field(default_factory=dict)
    matched: MatchedCrossAUC | None = None
    shortcut: pd.DataFrame | None = None


def with_confounds(frames: pd.DataFrame, features: pd.DataFrame | None) -> pd.DataFrame:
    """``frames`` with the confound columns of ``features`` (rows keyed ``dataset, split, sample_id``: the
    shortcut's cell), joined on those keys; ``frames`` as it is when it has them or there are none."""
    if features is None or has_features(frames, CONFOUNDS):
        return frames
    keys = ["dataset", "split", "sample_id"]
    cols = [c for c in CONFOUNDS if c in features.columns]
    right = features[keys + cols].drop_duplicates(keys)
    out = frames.drop(columns=[c for c in cols if c in frames.columns]).merge(right, on=keys, how="left")
    return out


def analyse_cell(
    record: dict[str, Any],
    frames: pd.DataFrame,
    order: list[str],
    n_boot: int,
    normalisation: NormalisationSettings = NORMALISATION,
    perturbed: dict[str, PerturbedCell] | None = None,
    features: pd.DataFrame | None = None,
    shortcut: pd.DataFrame | None = None,
    matching: MatchingSettings = MATCHING,
) -> CellAnalysis:
    """Analyse one cell's scores: bootstrap, per-set metrics, threshold transfer, operating points, quality,
    normalisation and, with confound ``features``, the confound-matched Cross-AUC beside the ``shortcut``
    detector's."""
    frames = with_confounds(frames, features)
    test = Scores.from_frames(
        frames[frames["split"] == "test"].reset_index(drop=True), datasets=order, need_video=True
    )
    val_rows = frames[frames["split"] == "val"].reset_index(drop=True)
    val = Scores.from_frames(val_rows, need_video=True) if len(val_rows) else None
    boot = {lvl: bootstrap(test, "cross_auc", n=n_boot, seed=BOOT_SEED, level=lvl) for lvl in LEVELS}
    sets = {lvl: dataset_metrics(test, level=lvl) for lvl in LEVELS}
    transfer = operating = None
    if val is not None:
        try:
            transfer = threshold_transfer(val, test, level="video")
            operating = operating_points(val, test, level="video")
        except ValueError:  # a source val split with one class has no EER threshold
            transfer = operating = None
    quality = score_quality(test, level="video")
    normalised = normalisation_analysis(test, val, settings=normalisation)
    matched = None
    if has_features(test, CONFOUNDS):
        matched = matched_cross_auc(test, CONFOUNDS, level="video", settings=matching, datasets=order)
    return CellAnalysis(
        record,
        test,
        boot,
        sets,
        transfer,
        operating,
        quality,
        normalised,
        val,
        dict(perturbed or {}),
        matched,
        shortcut,
    )


@dataclass(frozen=True)
class View:
    """What a column's function reads: one cell at one level (and one test set, for per-set columns).

    With ``resampled`` (only for ``ci`` columns), :meth:`stat` returns the statistic on every bootstrap
    resample instead of its estimate and :meth:`normalised` its value on every calibration repeat; the
    other readers have no replicates and refuse. ``method`` names the normalisation a row of the
    ``NORMALISATION`` table reads. With ``condition``
    (a derived cell's tag), :meth:`stat` reads that condition's scores (video level, point estimates).
    """

    cell: CellAnalysis
    level: str | None
    dataset: str | None = None
    resampled: bool = False
    method: str | None = None
    condition: str | None = None
    pair: tuple[str, str] | None = None

    def under(self, condition: str | None) -> View:
        """This view on the scores of one test-time condition (None: the clean test)."""
        return replace(self, condition=condition)

    @property
    def conditions(self) -> dict[str, PerturbedCell]:
        """The cell's derived cells by condition tag (those every seed of the group has)."""
        return self.cell.perturbed

    @property
    def record(self) -> dict[str, Any]:
        """The cell's record."""
        return self.cell.record

    def stat(self, name: str) -> Any:
        """A bootstrap statistic at this level: a Cross-AUC entry (``pair_name``) or a summary key."""
        if self.condition is not None:
            return self._perturbed_stat(self.condition, name)
        boot = self.cell.boot[self._level()]
        if self.resampled:
            return boot.samples[name].to_numpy(dtype=float)
        return float(boot.table.loc[name, "estimate"])

    def _perturbed_stat(self, condition: str, name: str) -> float:
        if self.resampled:
            raise ValueError(f"condition {condition}: test-time conditions have point estimates only")
        if self._level() != "video":
            raise ValueError(f"condition {condition}: only video-level statistics are computed")
        pc = self.cell.perturbed[condition]
        if name in pc.summary:
            return float(pc.summary[name])
        pairs = {pair_name(i, j): (i, j) for i in pc.matrix.index for j in pc.matrix.columns}
        if name not in pairs:
            raise KeyError(f"condition {condition}: no statistic {name!r}")
        return float(pc.matrix.loc[pairs[name]])

    def metric(self, name: str) -> float:
        """``n_real, n_fake, auc, eer, ap, acc`` of this view's test set at this level."""
        self._no_resamples("per-test-set metrics")
        return float(self.cell.sets[self._level()].loc[self.dataset, name])

    def transfer(self, name: str) -> float:
        """``acc``, ``threshold``, ... of :func:`~benchmark.metrics.threshold_transfer` for this test set."""
        self._no_resamples("the threshold transfer")
        t = self.cell.transfer
        return math.nan if t is None else float(t.loc[self.dataset, name])

    def operating(self, name: str) -> float:
        """A column of :func:`~benchmark.metrics.operating_points` (``eer|tpr``, ``oracle_tpr@0.05``, ...)
        for this view's test set; NaN when the source validation split gives no threshold."""
        self._no_resamples("operating points")
        op = self.cell.operating
        return math.nan if op is None else float(op.sets.loc[self.dataset, name])

    def quality(self, name: str) -> float:
        """``ece``, ``brier``, ``log_loss`` or ``w1`` of this view's test set (video level)."""
        self._no_resamples("calibration quality")
        return float(self.cell.quality.loc[self.dataset, name])

    def normalised(self, name: str) -> Any:
        """A summary (``diag_mean``, ``offdiag_mean``, ``worst``, ``shift_closed``, ...) of the Cross-AUC
        matrix after this view's normalisation ``method``: the mean over calibration repeats (undefined
        repeats left out), or with ``resampled`` the value of every repeat."""
        vals = self.cell.normalised.summary(self.normalisation())[name]
        if self.resampled:
            return np.asarray(vals, dtype=float)
        finite = vals[np.isfinite(vals)]
        return float(finite.mean()) if len(finite) else math.nan

    def test_set(self) -> str:
        """The test set a per-set column reads; a ValueError for a view of the whole matrix."""
        if self.dataset is None:
            raise ValueError("this column reads one test set, but the view names none")
        return self.dataset

    def normalisation(self) -> str:
        """The normalisation method a ``NORMALISATION`` row reads; a ValueError when the view names none."""
        if self.method is None:
            raise ValueError("this column reads a normalisation method, but the view names none")
        return self.method

    def matched(self, name: str) -> float:
        """``auc``, ``kept``, ``ess_real`` or ``ess_fake`` of the confound-matched Cross-AUC of this view's
        pair (NaN when the cell's frames carry no confound feature)."""
        self._no_resamples("confound matching")
        m = self.cell.matched
        if m is None:
            return math.nan
        i, j = (m.datasets.index(d) for d in self.require_pair())
        return float(getattr(m, name)[i, j])

    def shortcut(self) -> float:
        """The shortcut detector's video-level Cross-AUC of this view's pair (NaN without one)."""
        self._no_resamples("the shortcut detector")
        s = self.cell.shortcut
        return math.nan if s is None else float(s.loc[self.require_pair()])

    def require_pair(self) -> tuple[str, str]:
        """The Cross-AUC pair a per-pair column reads; a ValueError for a view without one."""
        if self.pair is None:
            raise ValueError("this column reads a Cross-AUC pair, but the view has none")
        return self.pair

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
        operating, quality: per test set, the ``OPERATING`` and ``QUALITY`` columns (seed means).
        normalisation: per normalisation method, the ``NORMALISATION`` columns (seed means; intervals over
            calibration repeats).
        normalised_matrix: per method, its Cross-AUC matrix (mean over repeats, then over seeds).
        pair_ba: per source threshold (``eer``, ``fpr@0.01``, ...), the balanced accuracy of every
            (reals of i, fakes of j) pair (seed mean; empty without source thresholds).
        thresholds: per source threshold, its value (seed mean; empty without).
        conditions: the test-time conditions every seed was scored under, in table order.
        incomplete: conditions only some seeds were scored under (left out of every number).
        confounds: per ordered pair (:class:`ConfoundRow`), the ``CONFOUNDS`` columns (seed means); empty
            when no frame carries a confound feature.
        confound_features: the features matched on (those some test video has).
        confounded: the pairs the shortcut detector also wins (:func:`confounded`), matrix order.
        shortcut: the shortcut detector's Analysis of the same grid and training set (None without one).
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
    operating: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    quality: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    normalisation: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    normalised_matrix: dict[str, pd.DataFrame] = field(default_factory=dict)
    pair_ba: dict[str, pd.DataFrame] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    conditions: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    confounds: dict[ConfoundRow, dict[str, Estimate]] = field(default_factory=dict)
    confound_features: tuple[str, ...] = ()
    confounded: list[tuple[str, str]] = field(default_factory=list)
    shortcut: Analysis | None = None


def wins(lo: float) -> bool:
    """A scorer *wins* a Cross-AUC pair when the pair's 95 % bootstrap interval lies above 0.5."""
    return bool(np.isfinite(lo) and lo > 0.5)


def confounded(a: Analysis, shortcut: Analysis | None) -> list[tuple[str, str]]:
    """The ordered pairs both ``a`` and the shortcut detector win (video level): what the nuisance
    features alone already separate, so the detector's win there may be theirs."""
    if shortcut is None:
        return []
    common = [d for d in a.datasets if d in shortcut.datasets]
    return [
        (i, j)
        for i in common
        for j in common
        if wins(a.matrix_lo.loc[i, j]) and wins(shortcut.matrix_lo.loc[i, j])
    ]


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
    samples = _seed_mean([fn(replace(v, resampled=True)) for v in views])
    finite = samples[np.isfinite(samples)]
    if not len(finite):
        return Estimate(value)
    alpha = (1 - coverage) / 2
    lo, hi = np.percentile(finite, [100 * alpha, 100 * (1 - alpha)])
    return Estimate(value, float(lo), float(hi))


def _column(
    c: Column,
    cells: list[CellAnalysis],
    coverage: float,
    dataset: str | None = None,
    method: str | None = None,
    pair: tuple[str, str] | None = None,
) -> Estimate:
    views = [View(cell, c.level, dataset, method=method, pair=pair) for cell in cells]
    return combine(c.fn, views, c.ci, coverage)


def _frame_mean(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return sum(frames[1:], frames[0].copy()) / len(frames)


def analyse(
    group: Group,
    n_boot: int = N_BOOT,
    normalisation: NormalisationSettings = NORMALISATION,
    shortcut: tuple[Group, Analysis] | None = None,
    matching: MatchingSettings = MATCHING,
) -> Analysis:
    """Every declared column of ``group`` (see the module docstring for how seeds combine); ``shortcut``:
    the shortcut detector's group and analysis of the same grid and training set (its frames carry the
    confound features)."""
    order = group.test_order
    conditions, incomplete = _common_conditions(group)
    features = short_matrix = None
    if shortcut is not None:
        sg, sa = shortcut
        features = pd.concat([sg.scores[r["cell_id"]] for r in sg.records], ignore_index=True)
        short_matrix = sa.matrix.reindex(index=order, columns=order)
    cells = [
        analyse_cell(
            r,
            group.scores[r["cell_id"]],
            order,
            n_boot,
            normalisation,
            perturbed=_perturbed(group, r, conditions, order),
            features=features,
            shortcut=short_matrix,
            matching=matching,
        )
        for r in group.records
    ]
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
    operating = {d: {c.key: _column(c, cells, coverage, d) for c in columns.OPERATING.columns} for d in order}
    quality = {d: {c.key: _column(c, cells, coverage, d) for c in columns.QUALITY.columns} for d in order}
    methods = list(cells[0].normalised.matrices)
    normalisation_rows = {
        m: {c.key: _column(c, cells, coverage, method=m) for c in columns.NORMALISATION.columns}
        for m in methods
    }
    normalised_matrix = {m: _frame_mean([cell.normalised.matrix(m) for cell in cells]) for m in methods}
    with_op = [cell.operating for cell in cells if cell.operating is not None]
    pair_ba, thresholds = {}, {}
    if len(with_op) == len(cells):
        pair_ba = {t: _frame_mean([op.pairs[t] for op in with_op]) for t in with_op[0].pairs}
        thresholds = {
            t: float(np.mean([op.thresholds[t] for op in with_op])) for t in with_op[0].thresholds.index
        }
    result = Analysis(
        datasets=order,
        summary=summary,
        per_set=per_set,
        per_seed=per_seed,
        matrix=matrix,
        matrix_lo=mat("lo"),
        matrix_hi=mat("hi"),
        worst_pair=cross_auc_summary(matrix)["worst_pair"],
        cells=cells,
        operating=operating,
        quality=quality,
        normalisation=normalisation_rows,
        normalised_matrix=normalised_matrix,
        pair_ba=pair_ba,
        thresholds=thresholds,
        conditions=conditions,
        incomplete=incomplete,
    )
    if any(cell.matched is None for cell in cells):  # every seed scores the same frames: all or none
        return replace(result, shortcut=shortcut[1] if shortcut else None)
    short_a = shortcut[1] if shortcut else None
    flagged = confounded(result, short_a)
    features = [m.features for m in (cells[0].matched,) if m is not None][0]
    rows = {
        ConfoundRow(i, j, (i, j) in flagged): {
            c.key: _column(c, cells, coverage, pair=(i, j)) for c in columns.CONFOUNDS.columns
        }
        for i in order
        for j in order
    }
    return replace(
        result,
        confounds=rows,
        confound_features=features,
        confounded=flagged,
        shortcut=short_a,
    )


def _common_conditions(group: Group) -> tuple[list[str], list[str]]:
    """The condition tags every seed's cell has (table order), and those only some have."""
    per_seed = [group.perturbed.get(r["cell_id"], {}) for r in group.records]
    every = set.intersection(*(set(p) for p in per_seed)) if per_seed else set()
    some = set().union(*(set(p) for p in per_seed)) - every
    tags = {tag: rec for p in per_seed for tag, rec in p.items()}

    def order(names: set[str]) -> list[str]:
        return sorted(names, key=lambda t: (sort_key(condition_of(tags[t]["config"])), t))

    return order(every), order(some)


def _perturbed(
    group: Group, record: dict[str, Any], conditions: list[str], order: list[str]
) -> dict[str, PerturbedCell]:
    kids = group.perturbed.get(record["cell_id"], {})
    return {
        tag: analyse_perturbed(kids[tag], group.perturbed_scores[kids[tag]["cell_id"]], order)
        for tag in conditions
    }

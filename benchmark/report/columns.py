"""Every leaderboard column, declared once: what it computes, at which level, whether it has an interval,
how it prints and the sentence that explains it.

A column is a :class:`Column`; a table is a :class:`Table` (leading :class:`Label` columns naming the row,
then columns). The analysis (``benchmark.report.analysis``) computes every column of these tables from the
cells' scores, the markdown (``benchmark.report.leaderboard``) prints them: neither lists a column itself.
A new column is one function of a :class:`~benchmark.report.analysis.View`, one reference test
(``tests/test_leaderboard.py::REFERENCES``) and one declaration in a table below.

Tables:
* ``SUMMARY``: the README row of one (grid, detector, training set); with ``MATRIX_SENTENCE`` (the line
  under a page's Cross-AUC matrix) its values are seed means with bootstrap intervals;
* ``PER_SET``: one row per test set on a detector's page (seed means; ``ci`` columns with intervals);
* ``PER_SEED``: one row per seed, no intervals.
The explanations of ``SUMMARY``'s columns complete the Cross-AUC note at the top of every page; those of
``PER_SET`` are printed under its table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from benchmark.metrics import pair_name
from benchmark.report.groups import page_path

if TYPE_CHECKING:
    from benchmark.report.analysis import Analysis, View


@dataclass(frozen=True)
class Estimate:
    """A seed mean with its bootstrap percentile interval (``lo``, ``hi`` NaN when none is computed).

    ``value`` is a tuple for a column whose function returns several numbers (e.g. real/fake counts).
    """

    value: Any
    lo: float = math.nan
    hi: float = math.nan


Formatter = Callable[[Any, "Analysis"], str]


@dataclass(frozen=True)
class Column:
    """One value of a leaderboard table.

    Attributes:
        key: its name in the analysis (``Analysis.summary[key]``, ``per_set[test_set][key]``, ...).
        header: the markdown header (or the phrase before the value in a sentence).
        fn: the value from ONE cell's analysed scores, read through a :class:`View` at ``level``.
            With ``ci`` it must read bootstrap statistics only (``view.stat``): the same function then
            gives the estimate and, on every resample, the interval.
        level: ``video`` or ``frame``: the units ``fn`` reads; None for what is not a score (a record).
        ci: whether a 95 % bootstrap interval is computed and shown.
        fmt: how to print the value; called with the value and the whole :class:`Analysis`.
        explanation: the sentence that defines the column (empty when the header says it all).
    """

    key: str
    header: str
    fn: Callable[[View], Any]
    level: str | None = "video"
    ci: bool = False
    fmt: Formatter = None  # type: ignore[assignment]  # set in __post_init__
    explanation: str = ""

    def __post_init__(self) -> None:
        if self.fmt is None:
            object.__setattr__(self, "fmt", with_ci if self.ci else plain)


@dataclass(frozen=True)
class Label:
    """A leading column naming the row: a text computed from the row itself (a group, a test set, a record)."""

    header: str
    text: Callable[[Any], str]


@dataclass(frozen=True)
class Table:
    """A markdown table: ``labels`` name each row, ``columns`` print its analysed values, in this order."""

    labels: tuple[Label, ...]
    columns: tuple[Column, ...]

    @property
    def headers(self) -> list[str]:
        return [lab.header for lab in self.labels] + [c.header for c in self.columns]

    def row(self, name: Any, values: dict[str, Any], analysis: Analysis) -> list[str]:
        """The printed fields of one row: its labels, then each column's ``fmt`` of its value."""
        return [lab.text(name) for lab in self.labels] + [
            c.fmt(values[c.key], analysis) for c in self.columns
        ]

    def explanations(self) -> list[str]:
        return [c.explanation for c in self.columns if c.explanation]


# --------------------------------------------------------------------------- formats


def fmt(x: Any, digits: int = 3) -> str:
    """``0.123``; ``n/a`` for None, NaN or inf."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def fmt_ci(est: float, lo: float, hi: float) -> str:
    """``0.123 [0.100, 0.150]``; the bare number without a finite interval; ``n/a`` when undefined."""
    if not math.isfinite(est):
        return "n/a"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return fmt(est)
    return f"{est:.3f} [{lo:.3f}, {hi:.3f}]"


def _value(v: Any) -> Any:
    return v.value if isinstance(v, Estimate) else v


def plain(v: Any, analysis: Analysis) -> str:
    return fmt(_value(v))


def with_ci(v: Estimate, analysis: Analysis) -> str:
    return fmt_ci(v.value, v.lo, v.hi)


def worst_arrow(v: Estimate, analysis: Analysis) -> str:
    """``0.250 [0.000, 0.556] (demo-FF -> demo-DFDC)``: the interval and which (real -> fake) pair."""
    if not analysis.worst_pair:
        return "n/a"
    return f"{with_ci(v, analysis)} ({analysis.worst_pair[0]} -> {analysis.worst_pair[1]})"


def worst_words(v: Estimate, analysis: Analysis) -> str:
    wp = analysis.worst_pair
    return with_ci(v, analysis) + (f" ({wp[0]} reals vs {wp[1]} fakes)" if wp else "")


def counts(v: Estimate, analysis: Analysis) -> str:
    return f"{int(v.value[0])}/{int(v.value[1])}"


def value_at_threshold(v: Estimate, analysis: Analysis) -> str:
    return f"{fmt(v.value[0])} (t={fmt(v.value[1])})"


# --------------------------------------------------------------------------- values


def mean_auc(v: View) -> Any:
    """The mean of the per-test-set AUCs (the Cross-AUC diagonal)."""
    return v.stat("diag_mean")


def pair_mean(v: View) -> Any:
    return v.stat("pair_mean")


def worst(v: View) -> Any:
    return v.stat("worst")


def shift_gap(v: View) -> Any:
    return v.stat("shift_gap")


def offdiag_mean(v: View) -> Any:
    return v.stat("offdiag_mean")


def set_auc_bootstrapped(v: View) -> Any:
    """The test set's own AUC, as the Cross-AUC diagonal entry of the bootstrap (so it has an interval)."""
    return v.stat(pair_name(v.dataset, v.dataset))


def set_auc(v: View) -> float:
    return v.metric("auc")


def set_eer(v: View) -> float:
    return v.metric("eer")


def set_ap(v: View) -> float:
    return v.metric("ap")


def set_accuracy(v: View) -> float:
    return v.metric("acc")


def set_videos(v: View) -> tuple[float, float]:
    return v.metric("n_real"), v.metric("n_fake")


def accuracy_at_source_threshold(v: View) -> tuple[float, float]:
    return v.transfer("acc"), v.transfer("threshold")


def best_val_auc(v: View) -> Any:
    return v.record.get("best_val_auc")


# --------------------------------------------------------------------------- declarations

VIDEO_AUC = Column("video_auc", "mean video AUC", mean_auc, "video", ci=True)
FRAME_AUC = Column("frame_auc", "mean frame AUC", mean_auc, "frame", ci=True)
PAIR_MEAN = Column(
    "pair_mean",
    "Cross-AUC (real_i vs fake_j) pair mean",
    pair_mean,
    ci=True,
    explanation="*Pair mean* averages C = (A[i,j] + A[j,i]) / 2 over unordered pairs",
)
WORST = Column(
    "worst",
    "worst ordered pair (real -> fake)",
    worst,
    ci=True,
    fmt=worst_arrow,
    explanation="*worst* is the lowest ordered pair",
)
SHIFT_GAP = Column(
    "shift_gap",
    "shift gap",
    shift_gap,
    ci=True,
    explanation="*shift gap* = mean diagonal - mean off-diagonal",
)
OFFDIAG_MEAN = Column("offdiag_mean", "off-diagonal mean", offdiag_mean, ci=True)

EER_EXPLANATION = (
    "*EER* (equal error rate, video level): the ROC curve has one vertex per distinct video score (a video "
    "is called fake when its score is >= that score), joined by straight segments; the EER is the false "
    "positive rate where this curve crosses FNR = FPR, interpolated linearly between the two neighbouring "
    "vertices (a vertex's own rate when FNR = FPR there exactly), not the error rate at the nearest "
    "threshold; n/a for a test set with one class. The threshold t of the last column is the source "
    "validation split's score at the ROC vertex nearest to that crossing (smaller |FNR - FPR|; on a tie "
    "the lower score)."
)

SUMMARY = Table(
    labels=(
        Label("detector", lambda g: f"[{g.detector}]({page_path(g.grid, g.detector).as_posix()})"),
        Label("train set", lambda g: g.train_set),
        Label("data", lambda g: g.origin),
        Label("seeds", lambda g: g.seeds),
        Label("pretrained", lambda g: g.pretrained),
    ),
    columns=(VIDEO_AUC, FRAME_AUC, PAIR_MEAN, WORST, SHIFT_GAP),
)

#: the line under a page's Cross-AUC matrix: "<header> <value>" joined by "; "
MATRIX_SENTENCE = (
    replace(PAIR_MEAN, header="Pair mean"),
    replace(WORST, header="worst", fmt=worst_words),
    OFFDIAG_MEAN,
    replace(SHIFT_GAP, header="shift gap"),
)

PER_SET = Table(
    labels=(Label("test set", str),),
    columns=(
        Column("videos", "real/fake videos", set_videos, fmt=counts),
        Column("frame_auc", "frame AUC", set_auc, "frame"),
        Column("video_auc", "video AUC", set_auc_bootstrapped, ci=True),
        Column("eer", "EER", set_eer, explanation=EER_EXPLANATION),
        Column("ap", "AP", set_ap),
        Column("acc", "acc@0.5", set_accuracy),
        Column(
            "acc_val_thr", "acc@source-val threshold", accuracy_at_source_threshold, fmt=value_at_threshold
        ),
    ),
)

PER_SEED = Table(
    labels=(Label("seed", lambda r: str(r["config"]["seed"])), Label("cell", lambda r: f"`{r['cell_id']}`")),
    columns=(
        replace(VIDEO_AUC, header="video AUC", ci=False, fmt=plain),
        replace(FRAME_AUC, header="frame AUC", ci=False, fmt=plain),
        replace(PAIR_MEAN, header="pair mean", ci=False, fmt=plain),
        replace(WORST, header="worst", ci=False, fmt=plain),
        replace(SHIFT_GAP, header="shift gap", ci=False, fmt=plain),
        Column("val_auc", "best source-val AUC", best_val_auc, level=None),
    ),
)

CROSS_AUC_DEFINITION = (
    "**Cross-AUC (real_i vs fake_j)** is the AUC of dataset i's REAL samples against dataset j's FAKE "
    "samples, all scored by the same model, for every ordered pair of test sets. The diagonal is the usual "
    "per-dataset AUC. A detector whose scores shift between domains (reals of one dataset scored as "
    "fake as the fakes of another) keeps a high diagonal while its off-diagonal cells fall: one threshold "
    "cannot serve every domain."
)


def cross_auc_note() -> str:
    """The note at the top of every page: the definition, then the ``SUMMARY`` columns' explanations."""
    return f"{CROSS_AUC_DEFINITION} {'; '.join(SUMMARY.explanations())}."


CROSS_AUC_NOTE = cross_auc_note()


def group_columns() -> dict[str, Column]:
    """The seed-mean columns of a group (``SUMMARY`` and ``MATRIX_SENTENCE``), one per key.

    Two declarations of one key must compute the same thing (they may print it differently).
    """
    out: dict[str, Column] = {}
    for c in (*SUMMARY.columns, *MATRIX_SENTENCE):
        seen = out.setdefault(c.key, c)
        if (seen.fn, seen.level, seen.ci) != (c.fn, c.level, c.ci):
            raise ValueError(f"column key {c.key!r} is declared twice with different values")
    return out


def _check_table(table: Table, name: str) -> None:
    keys = [c.key for c in table.columns]
    if len(set(keys)) != len(keys):
        raise ValueError(f"table {name} declares a column key twice: {keys}")


for _t, _n in ((SUMMARY, "SUMMARY"), (PER_SET, "PER_SET"), (PER_SEED, "PER_SEED")):
    _check_table(_t, _n)
group_columns()

__all__ = [
    "CROSS_AUC_NOTE",
    "MATRIX_SENTENCE",
    "PER_SEED",
    "PER_SET",
    "SUMMARY",
    "Column",
    "Estimate",
    "Label",
    "Table",
]

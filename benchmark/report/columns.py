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
* ``PER_SEED``: one row per seed, no intervals;
* reading the shift (``SHIFT_SECTIONS``, a detector page's section "Reading the shift", in this order):
  ``NORMALISATION`` (one row per per-domain normalisation, intervals over calibration repeats),
  ``OPERATING`` (per test set, at thresholds fixed on the source validation split) and ``QUALITY`` (per
  test set: calibration and real/fake separation) and ``CONFOUNDS`` (per ordered pair: the raw and the
  confound-matched Cross-AUC, the share kept, the effective sample sizes and the shortcut detector's AUC);
* ``PAIRED``: one row per pair of detectors on a grid's comparison page (``COMPARED`` columns, paired
  bootstrap differences).
* ``ROBUSTNESS``, ``ROBUSTNESS_MEAN``, ``SENSITIVITY``: one row per test-time condition (a distortion at a
  level, the mean over distortions at a level, a preprocessing view), the summary's video-level numbers
  under it (point estimates of the derived cells, seed means; ``benchmark.report.robustness``).
The explanations of ``SUMMARY``'s columns complete the Cross-AUC note at the top of every page; those of
the other tables are printed under them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.metrics import METHODS, N_BINS, pair_name, threshold_name
from benchmark.report.groups import page_path
from datamodules.media.perturb import DEEPERFORENSICS
from datamodules.media.perturb.deeperforensics import LEVELS as DF_LEVELS

if TYPE_CHECKING:
    from benchmark.report.analysis import Analysis, View
    from benchmark.report.robustness import Row


@dataclass(frozen=True)
class Estimate:
    """A seed mean with its bootstrap percentile interval (``lo``, ``hi`` NaN when none is computed).

    ``value`` is a tuple for a column whose function returns several numbers (e.g. real/fake counts).
    """

    value: Any
    lo: float = math.nan
    hi: float = math.nan


#: ``fmt(value, row_context)``: the context is the :class:`Analysis` of a detector's row, the
#: robustness ``Row`` of a condition (both carry ``worst_pair``) or None (a comparison row)
Formatter = Callable[[Any, Any], str]


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
        """The table's header row: label headers, then column headers."""
        return [lab.header for lab in self.labels] + [c.header for c in self.columns]

    def row(self, name: Any, values: dict[str, Any], analysis: Analysis | Row | None) -> list[str]:
        """The printed fields of one row: its labels, then each column's ``fmt`` of its value."""
        return [lab.text(name) for lab in self.labels] + [
            c.fmt(values[c.key], analysis) for c in self.columns
        ]

    def explanations(self) -> list[str]:
        """The explanations of the columns that have one, in column order."""
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


def rates(v: Estimate, analysis: Analysis) -> str:
    """``TPR / FPR / BA``: ``0.750 / 0.250 / 0.750``."""
    return " / ".join(fmt(x) for x in v.value)


def with_spread(v: Estimate, analysis: Analysis) -> str:
    """``0.612 [0.580, 0.640]`` over calibration repeats; the bare value when the repeats agree."""
    if math.isfinite(v.lo) and math.isfinite(v.hi) and v.lo == v.hi:
        return fmt(v.value)
    return with_ci(v, analysis)


def percent(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.0f} %"


def percent_spread(v: Estimate, analysis: Analysis) -> str:
    """``45 % [30 %, 60 %]``; the bare percentage when the repeats agree; ``n/a`` without a shift gap."""
    if not math.isfinite(v.value):
        return "n/a"
    if not (math.isfinite(v.lo) and math.isfinite(v.hi)) or v.lo == v.hi:
        return percent(v.value)
    return f"{percent(v.value)} [{percent(v.lo)}, {percent(v.hi)}]"


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
    return v.stat(pair_name(v.test_set(), v.test_set()))


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


def at_source_threshold(fpr: float | None) -> Callable[[View], tuple[float, float, float]]:
    """TPR, FPR and balanced accuracy of the view's test set at a source-val threshold (EER: ``None``)."""
    name = threshold_name(fpr)

    def rates_at(v: View) -> tuple[float, float, float]:
        return v.operating(f"{name}|tpr"), v.operating(f"{name}|fpr"), v.operating(f"{name}|ba")

    rates_at.__name__ = f"at_source_{name}"
    return rates_at


def oracle_tpr(fpr: float) -> Callable[[View], float]:
    """The test set's own best TPR at FPR <= ``fpr`` (threshold chosen on the test set: needs its labels)."""

    def oracle(v: View) -> float:
        return v.operating(f"oracle_tpr@{fpr:g}")

    oracle.__name__ = f"oracle_tpr_{fpr:g}"
    return oracle


def quality(name: str) -> Callable[[View], float]:
    def read(v: View) -> float:
        return v.quality(name)

    read.__name__ = f"quality_{name}"
    return read


def normalised(name: str) -> Callable[[View], Any]:
    """A summary of the Cross-AUC matrix after the view's normalisation method (per repeat when resampled)."""

    def read(v: View) -> Any:
        return v.normalised(name)

    read.__name__ = f"normalised_{name}"
    return read


#: (distortion, level) pairs of DeeperForensics-1.0: 7 x 5
N_DEEPERFORENSICS = sum(len(DF_LEVELS[n]) for n in DEEPERFORENSICS)


def robust_auc(v: View) -> tuple[float, float]:
    """``(mean, n)``: the mean video AUC under each DeeperForensics-1.0 distortion, averaged over the levels
    scored, then over the distortions (LipForensics' robustness summary); ``n`` (distortion, level) pairs.

    Views, user perturbations and combined conditions are not part of it. ``(nan, 0)`` when none was scored.
    """
    by_name: dict[str, list[float]] = {}
    for tag, pc in v.conditions.items():
        p = pc.condition.perturbation
        if pc.condition.view is None and p is not None and p.name in DEEPERFORENSICS:
            by_name.setdefault(p.name, []).append(v.under(tag).stat("diag_mean"))
    n = sum(len(x) for x in by_name.values())
    if not n:
        return math.nan, 0.0
    return float(np.mean([np.mean(x) for x in by_name.values()])), float(n)


def robust_value(v: Estimate, analysis: Analysis) -> str:
    """``0.712 (4/35)``: the value and how many of the 35 (distortion, level) pairs it averages."""
    mean, n = v.value
    if not n or not math.isfinite(mean):
        return "n/a"
    return f"{mean:.3f} ({int(round(n))}/{N_DEEPERFORENSICS})"


def auc_change(v: View) -> Any:
    """The mean video AUC under the view's condition minus the clean one (0 on the clean row)."""
    return v.stat("diag_mean") - v.under(None).stat("diag_mean")


def signed(v: Any, analysis: Any) -> str:
    x = _value(v)
    return "n/a" if x is None or not math.isfinite(x) else f"{x:+.3f}"


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

ROBUST_AUC = Column(
    "robust_auc",
    "robust AUC (DeeperForensics)",
    robust_auc,
    fmt=robust_value,
    explanation="*robust AUC* is the mean video AUC with the test crops distorted by the DeeperForensics-1.0 "
    "perturbations (Jiang et al., CVPR 2020), averaged over the levels of each distortion, then over the "
    "distortions, as LipForensics summarises robustness (Haliassos et al., CVPR 2021); in brackets, how many "
    "of the 7 x 5 (distortion, level) pairs were scored",
)

SUMMARY = Table(
    labels=(
        Label("detector", lambda g: f"[{g.detector}]({page_path(g.grid, g.detector).as_posix()})"),
        Label("train set", lambda g: g.train_set),
        Label("data", lambda g: g.origin),
        Label("seeds", lambda g: g.seeds),
        Label("pretrained", lambda g: g.pretrained),
    ),
    columns=(VIDEO_AUC, FRAME_AUC, PAIR_MEAN, WORST, SHIFT_GAP, ROBUST_AUC),
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

# --------------------------------------------------------------------------- reading the shift

NORMALISATION_INTRO = (
    "**Offset or ranking?** Each test set's video scores go through its own increasing transform, fitted "
    "without the labels of the videos it scores, and the Cross-AUC matrix is recomputed. Such a per-domain "
    "transform leaves every per-dataset AUC (the diagonal) as it was and moves only the off-diagonal "
    "entries: *shift closed* = (off-diagonal mean after - before) / (diagonal mean - off-diagonal mean "
    "before) is the share of the shift gap a deployment could calibrate away with that much target data. "
    "A gap that closes under label-free standardisation is an **offset problem** (the domains' scores are "
    "shifted or rescaled copies of one another); a gap that stays under every normalisation is a **ranking "
    "problem**: fakes of one domain score among the reals of another whatever each domain's scale."
)
NORMALISATION_METHODS = (
    "*Domain standardisation* (label-free): (score - median) / IQR of the test set's own video scores, all "
    "of them, no label read; on probabilities or on logits. *Reals-only z-norm*: (logit - mean) / std of k "
    "labelled REAL calibration videos of the test set (score normalisation as speaker verification does "
    "it). *Few-shot logit offset* (Yang et al., AAAI 2026, arXiv 2602.01973): one scalar per test set added "
    "to the logits, chosen on k labelled calibration videos (k/2 real, k/2 fake) to maximise the "
    "kernel-smoothed balanced accuracy, the rule of the authors' released code. *Unsupervised offset*: "
    "minus the (1 - pi) quantile of the logits of k unlabelled calibration videos, pi the assumed fake "
    "ratio, so that a share pi of them lands above 0."
)
OPERATING_INTRO = (
    "**Operating points.** A deployment runs at ONE threshold fixed before it sees the target domain. "
    "Thresholds here are fixed on the SOURCE validation split (video level): its EER threshold and the "
    "thresholds of a false-positive rate of 1 % and 5 % there (the ROC vertex with the largest FPR not "
    "above the target; with n real validation videos the FPR moves in steps of 1/n, so a target below 1/n "
    "is met at FPR 0). Each test set gets its TPR (fakes called fake), FPR (reals called fake) and "
    "balanced accuracy BA = (TPR + 1 - FPR) / 2 at those thresholds, beside the *oracle* TPR at the same "
    "FPR with the threshold chosen on the test set itself (what suites usually report; it needs the "
    "target's labels). An FPR far above its target, or a TPR far below the oracle's, is the shift at work."
)
PAIR_BA_NOTE = (
    "For a Cross-AUC pair (reals of i, fakes of j) at a fixed threshold the FPR is row i's and the TPR "
    "column j's, so its balanced accuracy is (TPR_j + 1 - FPR_i) / 2: a low entry is a pair the threshold "
    "cannot serve."
)
W1_EXPLANATION = (
    "*W1(real, fake)*: the 1-Wasserstein distance between the test set's real and fake video-score "
    "distributions on the probability scale (0: the classes score alike; 1: every real at 0 and every fake "
    'at 1): how far apart the classes sit, where AUC sees only their order. Not the "Cross-dataset AUC" '
    "of Nguyen et al. (arXiv 2606.19184), which they also abbreviate Cross-AUC and which combines "
    "per-domain AUCs with a W1 polarisation term: on these pages Cross-AUC always means real_i vs fake_j, "
    "and W1 is shown on its own."
)

NORMALISATION = Table(
    labels=(
        Label("normalisation", lambda m: METHODS[m].title),
        Label("fitted on", lambda m: METHODS[m].uses),
    ),
    columns=(
        Column(
            "norm_diag",
            "diagonal mean",
            normalised("diag_mean"),
            ci=True,
            fmt=with_spread,
            explanation="*Diagonal mean* moves only where a test set is cross-fitted (each fold has its own "
            "transform)",
        ),
        Column("norm_offdiag", "off-diagonal mean", normalised("offdiag_mean"), ci=True, fmt=with_spread),
        Column("norm_worst", "worst pair", normalised("worst"), ci=True, fmt=with_spread),
        Column(
            "shift_closed",
            "shift closed",
            normalised("shift_closed"),
            ci=True,
            fmt=percent_spread,
            explanation="*shift closed* is measured against the RAW diagonal (n/a when the raw off-diagonal "
            "mean is not below it: no shift to close); it can exceed 100 % or fall below 0",
        ),
    ),
)

OPERATING = Table(
    labels=(Label("test set", str),),
    columns=(
        Column("op_eer", "source EER threshold: TPR / FPR / BA", at_source_threshold(None), fmt=rates),
        Column("op_fpr01", "source FPR 1 % threshold: TPR / FPR / BA", at_source_threshold(0.01), fmt=rates),
        Column("oracle_fpr01", "oracle TPR @ FPR 1 %", oracle_tpr(0.01)),
        Column("op_fpr05", "source FPR 5 % threshold: TPR / FPR / BA", at_source_threshold(0.05), fmt=rates),
        Column("oracle_fpr05", "oracle TPR @ FPR 5 %", oracle_tpr(0.05)),
    ),
)

QUALITY = Table(
    labels=(Label("test set", str),),
    columns=(
        Column(
            "ece",
            f"ECE ({N_BINS} equal-mass bins)",
            quality("ece"),
            explanation=f"*ECE*: expected calibration error of the video probabilities over {N_BINS} "
            "equal-mass bins (videos ranked by score, tied scores kept in one bin): the sum over bins of "
            "(videos in the bin / videos) x |fake rate - mean score| of the bin.",
        ),
        Column("brier", "Brier", quality("brier"), explanation="*Brier*: mean (probability - label)^2."),
        Column(
            "log_loss",
            "log loss",
            quality("log_loss"),
            explanation="*log loss*: mean negative log-likelihood of the labels, probabilities clipped to "
            "[eps, 1 - eps] (float64 eps).",
        ),
        Column("w1", "W1(real, fake)", quality("w1"), explanation=W1_EXPLANATION),
    ),
)

CONFOUNDS_INTRO = (
    "**Confounds.** A Cross-AUC pair can be won on nuisance instead of forgery: the fakes of one set may "
    "simply be larger, sharper, less compressed or more frontal faces than the reals of another. Every frame "
    "carries the features a referee would name (face size in source pixels and the crop's resize factor, "
    "sharpness as the variance of the Laplacian, brightness, RMS contrast, JPEG quality from the "
    "quantisation tables of an image source, 8 x 8 blockiness of a decoded video frame, head yaw / pitch / "
    "roll from the landmarks; `datamodules/media/confounds.py`), averaged per video. *Matched AUC*: the "
    "pair's reals and fakes compared within strata of like videos only, by coarsened exact matching "
    "(Iacus, King and Porro, Political Analysis 2012: by default every feature cut at its median over the "
    "grid's test videos, a missing value its own bin; strata without both classes dropped, reals reweighted "
    "to the fakes' strata; `python -m benchmark.leaderboard --matching ipw` weights the reals by inverse "
    "propensity instead). *Kept*: the share of the pair's videos in matched strata; *ESS*: Kish's effective "
    "number of real / fake videos after weighting. A matched AUC near the raw one says the features do not "
    "explain the pair; one that falls towards 0.5 says they do. *Shortcut AUC*: the same pair scored by the "
    "**shortcut detector**, a logistic regression on these features alone fitted on the training set's "
    "train split (its own row on the leaderboard). A pair that the detector AND the shortcut detector both "
    "win (95 % interval above 0.5) is marked **confounded**: nuisance features alone already separate it, "
    "so the detector's win there may be theirs."
)
CONFOUNDS_MISSING = (
    "No confound features for these frames: the shortcut detector's cell of this grid and training set "
    "carries them once the manifests have them (new preprocessing records them; for existing manifests "
    "run `python -m benchmark.run --grid <grid> --backfill-confounds`)."
)


def pair_stat(v: View) -> Any:
    return v.stat(pair_name(*v.require_pair()))


def matched(name: str) -> Callable[[View], float]:
    def read(v: View) -> float:
        return v.matched(name)

    return read


def ess(v: View) -> tuple[float, float]:
    return v.matched("ess_real"), v.matched("ess_fake")


def shortcut_auc(v: View) -> float:
    return v.shortcut()


def sizes(v: Estimate, analysis: Analysis) -> str:
    r, f = _value(v)
    return f"{fmt(r, 1)} / {fmt(f, 1)}"


def share(v: Estimate, analysis: Analysis) -> str:
    return percent(_value(v))


CONFOUNDS = Table(
    labels=(
        Label("real", lambda r: r.real),
        Label("fake", lambda r: r.fake),
        Label("confounded", lambda r: "**confounded**" if r.confounded else ""),
    ),
    columns=(
        Column("raw_auc", "raw AUC", pair_stat, ci=True),
        Column("matched_auc", "matched AUC", matched("auc")),
        Column("kept", "kept", matched("kept"), fmt=share),
        Column("ess", "ESS real / fake", ess, fmt=sizes),
        Column("shortcut_auc", "shortcut AUC", shortcut_auc),
    ),
)

#: the "Reading the shift" sections of a detector page, in order: (title, intro, table, analysis field).
SHIFT_SECTIONS = (
    ("Offset or ranking: per-domain normalisation", NORMALISATION_INTRO, NORMALISATION, "normalisation"),
    ("Operating points fixed on the source validation split", OPERATING_INTRO, OPERATING, "operating"),
    ("Calibration and separation", "", QUALITY, "quality"),
    ("Confounds: matched Cross-AUC and the shortcut detector", CONFOUNDS_INTRO, CONFOUNDS, "confounds"),
)

#: statistics compared between detectors on a grid's comparison page (paired video bootstrap)
COMPARED = (VIDEO_AUC, PAIR_MEAN, WORST)


def difference(v: Any, analysis: Analysis | None = None) -> str:
    """``+0.012 [-0.030, 0.055] p=1.00``, bold when the interval excludes 0; the reason when not paired."""
    if v is None:
        return "n/a"
    if not math.isfinite(v.estimate):
        return "n/a"
    text = f"{v.estimate:+.3f} [{v.lo:+.3f}, {v.hi:+.3f}] p={v.p_holm:.2f}"
    return f"**{text}**" if v.excludes_zero else text


PAIRED = Table(
    labels=(Label("a - b", lambda pair: f"{pair[0]} - {pair[1]}"),),
    columns=tuple(replace(c, header=f"diff. {c.header}", fmt=difference) for c in COMPARED),
)

#: the summary's video-level numbers under one test-time condition (a row is a ``robustness.Row``: the
#: worst column prints that row's own worst pair)
CONDITION_COLUMNS = (
    Column("video_auc", "mean video AUC", mean_auc),
    Column("auc_change", "change from clean", auc_change, fmt=signed),
    Column("pair_mean", "Cross-AUC pair mean", pair_mean),
    Column("worst", "worst ordered pair (real -> fake)", worst, fmt=worst_arrow),
)

ROBUSTNESS = Table(
    labels=(Label("distortion", lambda r: r.labels[0]), Label("level", lambda r: r.labels[1])),
    columns=CONDITION_COLUMNS,
)

#: per level, the mean of the ``ROBUSTNESS`` rows of the DeeperForensics distortions scored at that level
ROBUSTNESS_MEAN = Table(
    labels=(Label("level", lambda r: r.labels[0]), Label("distortions", lambda r: r.labels[1])),
    columns=(*CONDITION_COLUMNS[:3], replace(CONDITION_COLUMNS[3], header="worst ordered pair", fmt=plain)),
)

SENSITIVITY = Table(labels=(Label("view", lambda r: r.labels[0]),), columns=CONDITION_COLUMNS)

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


for _t, _n in (
    (SUMMARY, "SUMMARY"),
    (PER_SET, "PER_SET"),
    (PER_SEED, "PER_SEED"),
    (NORMALISATION, "NORMALISATION"),
    (OPERATING, "OPERATING"),
    (QUALITY, "QUALITY"),
    (CONFOUNDS, "CONFOUNDS"),
    (PAIRED, "PAIRED"),
    (ROBUSTNESS, "ROBUSTNESS"),
    (ROBUSTNESS_MEAN, "ROBUSTNESS_MEAN"),
    (SENSITIVITY, "SENSITIVITY"),
):
    _check_table(_t, _n)
group_columns()

__all__ = [
    "COMPARED",
    "CONFOUNDS",
    "CROSS_AUC_NOTE",
    "MATRIX_SENTENCE",
    "NORMALISATION",
    "OPERATING",
    "PAIRED",
    "PER_SEED",
    "PER_SET",
    "QUALITY",
    "SHIFT_SECTIONS",
    "ROBUSTNESS",
    "ROBUSTNESS_MEAN",
    "SENSITIVITY",
    "SUMMARY",
    "Column",
    "Estimate",
    "Label",
    "Table",
]

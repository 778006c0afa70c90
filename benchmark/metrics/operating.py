"""Operating points: thresholds fixed on one split and the error rates they give on another.

A deployment runs a detector at ONE threshold, chosen before it sees the target domain: on the source
validation split, at its EER or at a target false-positive rate (1 %, 5 %). What happens at that
threshold on a shifted test set (its TPR, FPR and balanced accuracy) is the question Cross-AUC raises
but does not answer; the *oracle* TPR at the same FPR, chosen on the test set itself, is what other
suites report and what the fixed threshold gives away.

Conventions (as ``benchmark.metrics.binary``): ``labels`` 1 = fake; a unit is called fake when
``score >= threshold``; the ROC curve has one vertex per distinct score (``binary.roc``). Arrays in,
numbers out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pandas as pd

from benchmark.metrics.binary import as_arrays, eer_threshold, roc
from benchmark.metrics.scores import Scores, units

#: the target false-positive rates of the leaderboard's operating points
FPR_TARGETS = (0.01, 0.05)

__all__ = [
    "FPR_TARGETS",
    "OperatingPoints",
    "balanced_accuracy",
    "operating_points",
    "rates_at_threshold",
    "threshold_at_fpr",
    "threshold_name",
    "tpr_at_fpr",
]


def _check_rate(fpr: float) -> float:
    if not 0 <= fpr <= 1:
        raise ValueError(f"fpr={fpr} must be a rate in [0, 1]")
    return float(fpr)


def threshold_at_fpr(labels, scores, fpr: float) -> float:
    """The threshold a deployment fixes for a target false-positive rate ``fpr`` on these units.

    The ROC vertex with the largest FPR not above ``fpr`` (so the largest TPR among them); its threshold
    is that vertex's score, ``inf`` when only the first vertex (nothing called fake) qualifies. On a
    split with ``n`` reals the achievable rates are multiples of ``1 / n``: a target below ``1 / n`` is
    met at FPR 0. Raises ``ValueError`` when only one class is present.
    """
    fpr = _check_rate(fpr)
    f, _, thr = roc(labels, scores)
    k = int(np.searchsorted(f, fpr, side="right")) - 1  # f is non-decreasing and starts at 0
    return float(thr[k])


def tpr_at_fpr(labels, scores, fpr: float) -> float:
    """The oracle TPR at ``fpr``: the largest TPR of a ROC vertex whose FPR is at most ``fpr``.

    No interpolation between vertices (the rate a threshold on these units actually achieves).
    """
    fpr = _check_rate(fpr)
    f, t, _ = roc(labels, scores)
    return float(t[f <= fpr].max())


def rates_at_threshold(labels, scores, threshold: float) -> tuple[float, float, float]:
    """``(tpr, fpr, balanced accuracy)`` when units scoring ``>= threshold`` are called fake.

    ``tpr`` is NaN without fakes, ``fpr`` NaN without reals, and the balanced accuracy
    ``(tpr + 1 - fpr) / 2`` NaN when either is.
    """
    y, s = as_arrays(labels, scores)
    called = s >= threshold
    fakes, reals = y == 1, y == 0
    tpr = float(called[fakes].mean()) if fakes.any() else float("nan")
    fpr = float(called[reals].mean()) if reals.any() else float("nan")
    return tpr, fpr, (tpr + 1.0 - fpr) / 2


def balanced_accuracy(labels, scores, threshold: float) -> float:
    """``(TPR + TNR) / 2`` at ``threshold`` (the mean of the per-class accuracies)."""
    return rates_at_threshold(labels, scores, threshold)[2]


def threshold_name(fpr: float | None) -> str:
    """``eer`` for the EER threshold, ``fpr@0.01`` for the threshold at a target FPR of 1 %."""
    return "eer" if fpr is None else f"fpr@{fpr:g}"


class OperatingPoints(NamedTuple):
    """Output of :func:`operating_points`.

    Attributes:
        thresholds: per threshold name (``eer``, ``fpr@0.01``, ...), the source validation split's threshold.
        sets: one row per target set: ``<name>|tpr``, ``<name>|fpr``, ``<name>|ba`` at each threshold and
            ``oracle_tpr@<fpr>`` (the TPR at that FPR chosen on the set itself), ``n_real``, ``n_fake``.
        pairs: per threshold name, the K x K balanced accuracy of (reals of i, fakes of j):
            ``(TPR_j + 1 - FPR_i) / 2`` (at a fixed threshold a pair's FPR is its real set's, its TPR its
            fake set's); rows: reals of, columns: fakes of.
        n_val_real, n_val_fake: the source validation split's units (its FPR resolution is ``1 / n_val_real``).
    """

    thresholds: pd.Series
    sets: pd.DataFrame
    pairs: dict[str, pd.DataFrame]
    n_val_real: int
    n_val_fake: int


def operating_points(
    source_val: pd.DataFrame | Scores,
    target: pd.DataFrame | Scores,
    fprs: Iterable[float] = FPR_TARGETS,
    level: str = "video",
    agg: str = "mean",
    datasets: Iterable[str] | None = None,
) -> OperatingPoints:
    """Thresholds fixed on the source validation split, applied to every target set and Cross-AUC pair.

    The thresholds: the EER threshold (:func:`~benchmark.metrics.binary.eer_threshold`) and, for each
    target rate in ``fprs``, :func:`threshold_at_fpr`, all on ``source_val`` (every dataset it holds,
    pooled) at ``level``. Raises ``ValueError`` when ``source_val`` lacks a class.
    """
    fprs = [float(f) for f in fprs]
    src = units(source_val, level=level, agg=agg)
    n1 = int(src.label.sum())
    if n1 == 0 or n1 == len(src.label):
        raise ValueError(
            f"column 'label' of source_val holds only {'fakes' if n1 else 'reals'}; thresholds need both classes"
        )
    thr = {threshold_name(None): eer_threshold(src.label, src.score)}
    thr.update({threshold_name(f): threshold_at_fpr(src.label, src.score, f) for f in fprs})
    u = units(target, level=level, agg=agg, datasets=datasets)
    rows, tpr, fpr = {}, {}, {}
    for k, d in enumerate(u.datasets):
        y, s = u.label[u.dataset_code == k], u.score[u.dataset_code == k]
        row: dict[str, float] = {}
        for name, t in thr.items():
            row[f"{name}|tpr"], row[f"{name}|fpr"], row[f"{name}|ba"] = rates_at_threshold(y, s, t)
            tpr[name, d], fpr[name, d] = row[f"{name}|tpr"], row[f"{name}|fpr"]
        both = 0 < y.sum() < len(y)
        for f in fprs:
            row[f"oracle_tpr@{f:g}"] = tpr_at_fpr(y, s, f) if both else float("nan")
        row["n_real"], row["n_fake"] = int((y == 0).sum()), int(y.sum())
        rows[d] = row
    names = pd.Index(u.datasets)
    pairs = {
        name: pd.DataFrame(
            [[(tpr[name, j] + 1 - fpr[name, i]) / 2 for j in names] for i in names],
            index=names.rename("real"),
            columns=names.rename("fake"),
        )
        for name in thr
    }
    return OperatingPoints(
        pd.Series(thr, name="threshold"),
        pd.DataFrame.from_dict(rows, orient="index").rename_axis("dataset"),
        pairs,
        len(src.label) - n1,
        n1,
    )

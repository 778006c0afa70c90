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

import numpy as np

from benchmark.metrics.binary import as_arrays, roc

__all__ = ["balanced_accuracy", "rates_at_threshold", "threshold_at_fpr", "tpr_at_fpr"]


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

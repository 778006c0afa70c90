"""Binary-classification metrics on arrays: AUC, EER (and its threshold), average precision, accuracy.

Conventions (used by every table in the suite):
* ``labels``: 1 = fake (positive), 0 = real; ``scores``: probability of fake, higher = more fake.
* A sample is predicted fake when ``score >= threshold``.
* AUC is the Mann-Whitney statistic ``P(s_fake > s_real) + 1/2 P(s_fake = s_real)``: ties count one
  half, so constant scores give exactly 0.5. With only one class present AUC is undefined and returned
  as NaN (scikit-learn raises instead; a Cross-AUC entry with no reals or no fakes must not crash a table).

Everything is O(n log n): one sort or rank, never a loop over pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from benchmark.metrics.validation import check_labels, check_scores


def as_arrays(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return ``(labels int64, scores float64)``; errors name the argument and positions."""
    index = None
    if isinstance(scores, pd.Series):
        index = scores.index
    elif isinstance(labels, pd.Series):
        index = labels.index
    y, s = np.asarray(labels), np.asarray(scores)
    if y.ndim != 1 or s.ndim != 1 or len(y) != len(s):
        raise ValueError(f"labels and scores must be 1-D of equal length; got shapes {y.shape} and {s.shape}")
    idx = np.arange(len(y)) if index is None else np.asarray(index)
    check_labels(y, idx, column="labels")
    check_scores(s, idx, column="scores")
    return y.astype(np.int64), s.astype(np.float64)


def auc(labels, scores) -> float:
    """Area under the ROC curve, ties = 1/2 (rank formula); NaN when only one class is present."""
    y, s = as_arrays(labels, scores)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(s)  # average ranks: ties share their mean rank, i.e. count one half
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def roc(labels, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC vertices ``(fpr, tpr, thresholds)``, one per distinct score, from ``(0, 0, inf)`` to ``(1, 1)``.

    ``thresholds[k]`` is the score from which samples are called fake at vertex ``k``.
    """
    y, s = as_arrays(labels, scores)
    n1 = int(y.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        raise ValueError(f"the ROC curve needs both classes; labels has {n1} fake(s) and {n0} real(s)")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last index of each run of equal scores
    tps = np.cumsum(y)[last]
    fps = last + 1 - tps
    return np.r_[0.0, fps / n0], np.r_[0.0, tps / n1], np.r_[np.inf, s[last]]


def _eer_point(labels, scores) -> tuple[float, float]:
    fpr, tpr, thr = roc(labels, scores)
    d = (1.0 - tpr) - fpr  # FNR - FPR: +1 at the first vertex, -1 at the last, non-increasing
    k = int(np.argmax(d <= 0))
    if d[k] == 0:
        rate = fpr[k]
    else:  # the ROC segment (k-1, k) crosses FNR = FPR: interpolate linearly along it
        t = d[k - 1] / (d[k - 1] - d[k])
        rate = fpr[k - 1] + t * (fpr[k] - fpr[k - 1])
    # threshold: the vertex of that segment nearer to the crossing (never the +inf first vertex)
    best = k if abs(d[k]) <= abs(d[k - 1]) else k - 1
    return float(rate), float(thr[best])


def eer(labels, scores) -> float:
    """Equal error rate: where the piecewise-linear ROC curve crosses FNR = FPR (interpolated).

    Raises ``ValueError`` when only one class is present.
    """
    return _eer_point(labels, scores)[0]


def eer_threshold(labels, scores) -> float:
    """The score threshold at the EER point: the ROC vertex nearest to the FNR = FPR crossing.

    Used by ``threshold_transfer``: pick it on the source validation split, apply it to target sets.
    """
    return _eer_point(labels, scores)[1]


def average_precision(labels, scores) -> float:
    """Average precision ``sum_n (R_n - R_{n-1}) P_n`` over distinct thresholds (as scikit-learn).

    NaN when there is no fake (recall undefined).
    """
    y, s = as_arrays(labels, scores)
    n1 = int(y.sum())
    if n1 == 0:
        return float("nan")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[last]
    precision = tps / (last + 1)
    recall_gain = np.diff(np.r_[0, tps]) / n1
    return float(np.sum(recall_gain * precision))


def accuracy(labels, scores, threshold: float = 0.5) -> float:
    """Fraction of samples with ``(score >= threshold) == label``."""
    y, s = as_arrays(labels, scores)
    if len(y) == 0:
        raise ValueError("accuracy of an empty set is undefined: labels and scores are empty")
    return float(np.mean((s >= threshold).astype(np.int64) == y))

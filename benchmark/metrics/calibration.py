"""Calibration quality of the probabilities themselves: ECE (equal-mass bins), Brier score, log loss.

AUC ignores what a score means; a deployment reading ``score = 0.9`` as "90 % fake" needs the scores
to be calibrated on the domain it sees. Arrays in, numbers out; ``scores`` are probabilities of fake
(values in [0, 1]; anything else is refused), ``labels`` 1 = fake.

* ECE (expected calibration error, Guo et al., ICML 2017, with equal-mass instead of equal-width bins):
  the units are ranked by score and cut into ``n_bins`` bins of (nearly) equal count; ECE is
  ``sum_b (n_b / n) |mean label_b - mean score_b|``. A unit's bin is ``floor(n_bins * r / n)`` with ``r``
  the number of units scoring strictly below it, so tied scores always share a bin (the result never
  depends on the order of tied units) and without ties the bins hold ``floor(n / n_bins)`` or
  ``ceil(n / n_bins)`` units. ``N_BINS`` = 15, Guo et al.'s count.
* Brier score: ``mean (score - label)^2``.
* Log loss: ``-mean(label log p + (1 - label) log(1 - p))`` with ``p`` clipped to
  ``[eps, 1 - eps]``, ``eps`` the float64 machine epsilon (what scikit-learn does for float64), so a
  saturated score of exactly 0 or 1 costs a finite 36.04 nats when it is wrong.
"""

from __future__ import annotations

import numpy as np

from benchmark.metrics.binary import as_arrays

N_BINS = 15
_EPS = float(np.finfo(np.float64).eps)

__all__ = ["N_BINS", "brier_score", "ece", "log_loss"]


def _probabilities(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    y, p = as_arrays(labels, scores)
    if len(y) == 0:
        raise ValueError("a calibration metric of an empty set is undefined: labels and scores are empty")
    outside = (p < 0) | (p > 1)
    if outside.any():
        where = np.flatnonzero(outside)[:8].tolist()
        raise ValueError(f"scores must be probabilities in [0, 1]; positions {where} are outside")
    return y, p


def ece(labels, scores, n_bins: int = N_BINS) -> float:
    """Expected calibration error over ``n_bins`` equal-mass bins (ties share a bin; see module doc)."""
    if n_bins < 1:
        raise ValueError(f"n_bins={n_bins} must be >= 1")
    y, p = _probabilities(labels, scores)
    n = len(y)
    below = np.searchsorted(np.sort(p), p, side="left")  # units scoring strictly below each unit
    b = (n_bins * below) // n
    count = np.bincount(b, minlength=n_bins)
    gap = np.bincount(b, weights=y - p, minlength=n_bins)  # n_b (mean label_b - mean score_b)
    return float(np.abs(gap[count > 0]).sum() / n)


def brier_score(labels, scores) -> float:
    """Mean squared difference between the probability of fake and the label."""
    y, p = _probabilities(labels, scores)
    return float(np.mean((p - y) ** 2))


def log_loss(labels, scores) -> float:
    """Mean negative log-likelihood of the labels (probabilities clipped to ``[eps, 1 - eps]``)."""
    y, p = _probabilities(labels, scores)
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.mean(np.where(y == 1, np.log(p), np.log1p(-p))))

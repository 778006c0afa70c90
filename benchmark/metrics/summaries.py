"""Per-dataset metrics, threshold transfer and score-shift reports on frames tables (or ``Scores``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pandas as pd

from benchmark.metrics.binary import accuracy, as_arrays, auc, average_precision, eer, eer_threshold
from benchmark.metrics.calibration import N_BINS, brier_score, ece, log_loss
from benchmark.metrics.scores import Scores, Units, units


def _by_dataset(u: Units) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {d: (u.label[u.dataset_code == k], u.score[u.dataset_code == k]) for k, d in enumerate(u.datasets)}


def dataset_metrics(
    frames: pd.DataFrame | Scores, level: str = "video", agg: str = "mean", threshold: float = 0.5
) -> pd.DataFrame:
    """Per dataset: ``n_real, n_fake, auc, eer, ap, acc`` (accuracy at ``threshold``); NaN where undefined."""
    rows = {}
    for d, (y, s) in _by_dataset(units(frames, level=level, agg=agg)).items():
        both = 0 < y.sum() < len(y)
        rows[d] = {
            "n_real": int((y == 0).sum()),
            "n_fake": int(y.sum()),
            "auc": auc(y, s),
            "eer": eer(y, s) if both else float("nan"),
            "ap": average_precision(y, s),
            "acc": accuracy(y, s, threshold),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("dataset")


def threshold_transfer(
    source_val: pd.DataFrame | Scores,
    target: pd.DataFrame | Scores,
    level: str = "video",
    agg: str = "mean",
    default_threshold: float = 0.5,
) -> pd.DataFrame:
    """Accuracy on each target dataset at the threshold chosen on the source validation split.

    The threshold is the EER threshold of ``source_val`` (:func:`eer_threshold`, at the same ``level``),
    the only one a deployed model could know. A detector whose scores shift between domains loses
    accuracy here even when every per-dataset AUC is high: that is what Cross-AUC measures.

    Returns:
        One row per target dataset: ``threshold``, ``acc`` (at it), ``real_acc`` / ``fake_acc`` (the
        fraction of reals / fakes classified correctly at it), ``acc_at_default`` (at
        ``default_threshold``, 0.5) and ``n_real``, ``n_fake``.
    """
    src = units(source_val, level=level, agg=agg)
    if src.label.min() == src.label.max():
        raise ValueError(
            f"column 'label' of source_val holds only {'fakes' if src.label[0] else 'reals'}; "
            "the EER threshold needs both classes"
        )
    t = eer_threshold(src.label, src.score)
    rows = {}
    for d, (y, s) in _by_dataset(units(target, level=level, agg=agg)).items():
        pred = s >= t
        rows[d] = {
            "threshold": t,
            "acc": float(np.mean(pred == (y == 1))),
            "real_acc": float(np.mean(~pred[y == 0])) if (y == 0).any() else float("nan"),
            "fake_acc": float(np.mean(pred[y == 1])) if (y == 1).any() else float("nan"),
            "acc_at_default": accuracy(y, s, default_threshold),
            "n_real": int((y == 0).sum()),
            "n_fake": int(y.sum()),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("dataset")


def wasserstein1(u_values, v_values) -> float:
    """1-Wasserstein distance between two empirical distributions: ``integral |F_u(x) - F_v(x)| dx``."""
    u, v = np.sort(np.asarray(u_values, np.float64)), np.sort(np.asarray(v_values, np.float64))
    if len(u) == 0 or len(v) == 0:
        return float("nan")
    grid = np.concatenate([u, v])
    grid.sort(kind="mergesort")
    widths = np.diff(grid)
    at = grid[:-1]
    cdf_u = np.searchsorted(u, at, side="right") / len(u)
    cdf_v = np.searchsorted(v, at, side="right") / len(v)
    return float(np.sum(np.abs(cdf_u - cdf_v) * widths))


def separation(labels, scores) -> float:
    """The 1-Wasserstein distance between the REAL and the FAKE score distributions of one test set.

    ``W1 = integral |F_real(x) - F_fake(x)| dx`` on the probability scale: 0 when reals and fakes score
    alike, 1 when every real scores 0 and every fake 1. Unlike AUC it sees how FAR apart the classes sit,
    not only their order. NaN when a class is missing. (Nguyen et al., arXiv 2606.19184, build their
    "Cross-dataset AUC", also abbreviated Cross-AUC, from per-domain AUCs and a W1 term: a different
    number from this suite's Cross-AUC, real_i vs fake_j, and from this W1 alone.)
    """
    y, s = as_arrays(labels, scores)
    return wasserstein1(s[y == 0], s[y == 1])


def score_quality(
    frames: pd.DataFrame | Scores,
    level: str = "video",
    agg: str = "mean",
    n_bins: int = N_BINS,
    datasets: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Per dataset, what the probabilities are worth beyond their order: ``ece`` (``n_bins`` equal-mass
    bins), ``brier``, ``log_loss`` (``benchmark.metrics.calibration``) and ``w1`` (:func:`separation`)."""
    rows = {}
    for d, (y, s) in _by_dataset(units(frames, level=level, agg=agg, datasets=datasets)).items():
        rows[d] = {
            "ece": ece(y, s, n_bins),
            "brier": brier_score(y, s),
            "log_loss": log_loss(y, s),
            "w1": separation(y, s),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("dataset")


class ScoreShift(NamedTuple):
    """Output of :func:`score_shift`.

    Attributes:
        stats: one row per ``(dataset, label)``: ``n``, ``median``, ``q25``, ``q75``, ``iqr``, ``std``, ``mean``.
        real_w1: K x K 1-Wasserstein distances between datasets' REAL score distributions.
        fake_w1: the same for FAKE scores.
    """

    stats: pd.DataFrame
    real_w1: pd.DataFrame
    fake_w1: pd.DataFrame


def score_shift(
    frames: pd.DataFrame | Scores,
    level: str = "video",
    agg: str = "mean",
    datasets: Iterable[str] | None = None,
) -> ScoreShift:
    """Why Cross-AUC drops: how each dataset's score distributions sit relative to the others.

    A detector may separate reals from fakes inside every dataset (high diagonal) while one dataset's
    reals all score above another's fakes (low off-diagonal entry). The per-(dataset, label) medians and
    spreads and the W1 distances between datasets' real-score distributions show that offset directly.
    """
    u = units(frames, level=level, agg=agg, datasets=datasets)
    stats = []
    for d, (y, s) in _by_dataset(u).items():
        for lab in (0, 1):
            v = s[y == lab]
            if len(v) == 0:
                continue
            q25, med, q75 = np.percentile(v, [25, 50, 75])
            stats.append(
                {
                    "dataset": d,
                    "label": lab,
                    "n": len(v),
                    "median": med,
                    "q25": q25,
                    "q75": q75,
                    "iqr": q75 - q25,
                    "std": float(v.std()),
                    "mean": float(v.mean()),
                }
            )
    by = _by_dataset(u)

    def w1(lab: int) -> pd.DataFrame:
        vals = {d: s[y == lab] for d, (y, s) in by.items()}
        m = [[wasserstein1(vals[i], vals[j]) for j in u.datasets] for i in u.datasets]
        return pd.DataFrame(m, index=pd.Index(u.datasets, name="dataset"), columns=u.datasets)

    return ScoreShift(pd.DataFrame(stats).set_index(["dataset", "label"]), w1(0), w1(1))

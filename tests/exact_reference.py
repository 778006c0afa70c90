"""Exact references for ranking metrics (fractions.Fraction): pairwise AUC, ROC, EER and its threshold, AP.

Independent of ``benchmark.metrics``: each follows its textbook definition over explicit pairs or
thresholds. A video's score is the float64 nearest to the exact mean of its frames (``float(Fraction)``
rounds correctly), the definition ``benchmark.metrics`` documents.
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction

import pandas as pd


def exact_mean(values) -> Fraction:
    values = list(values)
    return sum((Fraction(float(v)) for v in values), Fraction(0)) / len(values)


def exact_video_scores(frames: pd.DataFrame) -> pd.DataFrame:
    """Per video: dataset, label and the float64 nearest to the exact mean (Fractions, then one rounding)."""
    per: dict[str, list[float]] = defaultdict(list)
    first: dict[str, tuple[str, int]] = {}
    for d, v, y, s in frames[["dataset", "video_id", "label", "score"]].itertuples(index=False):
        per[v].append(s)
        first.setdefault(v, (d, int(y)))
    rows = [(v, *first[v], float(exact_mean(per[v]))) for v in sorted(per)]
    return pd.DataFrame(rows, columns=["video_id", "dataset", "label", "score"])


def exact_auc(reals, fakes) -> Fraction | None:
    """P(f > r) + 1/2 P(f = r) over every (real, fake) pair, in Fractions; None when a side is empty."""
    r = [Fraction(float(x)) for x in reals]
    f = [Fraction(float(x)) for x in fakes]
    if not r or not f:
        return None
    wins = sum((Fraction(1) if a > b else Fraction(1, 2) if a == b else Fraction(0)) for a in f for b in r)
    return wins / (len(r) * len(f))


def exact_roc(labels, scores) -> list[tuple[Fraction, Fraction]]:
    """ROC vertices (FPR, TPR) from (0, 0): one per distinct score, 'fake' meaning score >= it."""
    y = [int(v) for v in labels]
    s = [Fraction(float(v)) for v in scores]
    n1, n0 = sum(y), len(y) - sum(y)
    pts = [(Fraction(0), Fraction(0))]
    for t in sorted(set(s), reverse=True):
        tp = sum(1 for yi, si in zip(y, s, strict=True) if yi == 1 and si >= t)
        fp = sum(1 for yi, si in zip(y, s, strict=True) if yi == 0 and si >= t)
        pts.append((Fraction(fp, n0), Fraction(tp, n1)))
    return pts


def exact_eer(labels, scores) -> Fraction:
    """FPR where the piecewise-linear ROC curve crosses FNR = FPR, in exact arithmetic."""
    pts = exact_roc(labels, scores)
    d = [(1 - tpr) - fpr for fpr, tpr in pts]
    for k in range(len(pts)):
        if d[k] == 0:
            return pts[k][0]
        if d[k] < 0:
            t = d[k - 1] / (d[k - 1] - d[k])
            return pts[k - 1][0] + t * (pts[k][0] - pts[k - 1][0])
    raise AssertionError("the ROC curve ends at (1, 1), where FNR - FPR = -1")


def exact_ap(labels, scores) -> Fraction | None:
    """sum over distinct thresholds (descending) of (recall gain) x precision, in Fractions."""
    y = [int(v) for v in labels]
    s = [Fraction(float(v)) for v in scores]
    n1 = sum(y)
    if n1 == 0:
        return None
    total, prev_tp = Fraction(0), 0
    for t in sorted(set(s), reverse=True):
        called = [yi for yi, si in zip(y, s, strict=True) if si >= t]
        tp = sum(called)
        total += Fraction(tp - prev_tp, n1) * Fraction(tp, len(called))
        prev_tp = tp
    return total


def exact_matrix(units: pd.DataFrame, datasets: list[str]) -> dict[tuple[str, str], Fraction | None]:
    return {
        (i, j): exact_auc(
            units.score[(units.dataset == i) & (units.label == 0)],
            units.score[(units.dataset == j) & (units.label == 1)],
        )
        for i in datasets
        for j in datasets
    }


def as_float(x: Fraction | None) -> float:
    return float("nan") if x is None else float(x)


def exact_eer_threshold(labels, scores) -> float:
    """The score of the ROC vertex nearest (smaller |FNR - FPR|, the later vertex on a tie) to the crossing."""
    s = sorted({Fraction(float(v)) for v in scores}, reverse=True)
    pts = exact_roc(labels, scores)
    d = [(1 - tpr) - fpr for fpr, tpr in pts]
    k = next(i for i in range(len(d)) if d[i] <= 0)
    best = k if abs(d[k]) <= abs(d[k - 1]) else k - 1
    return float(s[best - 1])  # vertex i >= 1 belongs to the i-th largest distinct score

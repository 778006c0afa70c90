"""Paired comparisons of detectors scored on the same test videos: bootstrap differences, Holm, t-tests.

Two detectors tested on the same videos are compared PAIRED: every bootstrap resample draws the same
videos for both (``benchmark.metrics.resample``: the draws depend only on the seed and the videos, which
are numbered by sorted ``video_id`` within each dataset), so the difference of a statistic is recomputed
resample by resample and its interval is far narrower than two separate intervals would suggest.

* Interval: the percentile interval of the resampled differences ``d*`` (resamples where either
  statistic is undefined are left out).
* Bootstrap p-value (two-sided, for "no difference"): ``p = min(1, 2 min(1 + #{d* <= 0},
  1 + #{d* >= 0}) / (B + 1))`` over the ``B`` valid resamples: twice the smaller tail of the bootstrap
  distribution at 0, counted with the usual +1 so that ``p > 0``. It is below 0.05 about when the 95 %
  percentile interval excludes 0.
* Holm (1979) step-down adjustment over a family of p-values: sorted ascending, ``p_(i)`` becomes
  ``max_{j <= i} min(1, (m - j + 1) p_(j))``; it controls the family-wise error rate.
* Several seeds: the paired t-test over seeds (``scipy.stats.ttest_rel``, the test SFAM's authors report
  with their tables) on the per-seed values of the two detectors, paired by seed.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.metrics.resample import bootstrap
from benchmark.metrics.scores import Scores, as_scores

__all__ = [
    "PairedDifference",
    "bootstrap_p_value",
    "different_videos",
    "holm",
    "paired_bootstrap",
    "paired_difference",
    "percentile_interval",
    "seed_ttest",
]


def bootstrap_p_value(deltas) -> float:
    """Two-sided bootstrap p-value of "difference = 0" from resampled differences (module docstring)."""
    d = np.asarray(deltas, dtype=np.float64)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return float("nan")
    tail = min(int((d <= 0).sum()), int((d >= 0).sum()))
    return min(1.0, 2 * (1 + tail) / (len(d) + 1))


def percentile_interval(samples, ci: float = 0.95) -> tuple[float, float]:
    """The ``ci`` percentile interval of the finite ``samples`` (NaN, NaN when there are none)."""
    if not 0 < ci < 1:
        raise ValueError(f"ci={ci} must be in (0, 1)")
    x = np.asarray(samples, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan"), float("nan")
    alpha = (1 - ci) / 2
    lo, hi = np.percentile(x, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


@dataclass(frozen=True)
class PairedDifference:
    """``estimate`` = a - b on the full data; ``lo``, ``hi`` its percentile interval; ``p`` the bootstrap
    p-value; ``n_valid`` the resamples where both statistics were defined."""

    estimate: float
    lo: float
    hi: float
    p: float
    n_valid: int

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of 0 (a difference the leaderboard marks)."""
        return bool(self.lo > 0 or self.hi < 0)


def paired_difference(
    estimate_a: float, estimate_b: float, samples_a, samples_b, ci: float = 0.95
) -> PairedDifference:
    """The paired difference a - b of one statistic from its values on the SAME bootstrap resamples."""
    sa, sb = np.asarray(samples_a, dtype=np.float64), np.asarray(samples_b, dtype=np.float64)
    if sa.shape != sb.shape:
        raise ValueError(f"paired samples need the same resamples; got shapes {sa.shape} and {sb.shape}")
    d = sa - sb
    d = d[np.isfinite(d)]
    lo, hi = percentile_interval(d, ci)
    return PairedDifference(float(estimate_a - estimate_b), lo, hi, bootstrap_p_value(d), len(d))


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries stay NaN and are not counted in the family)."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if len(ok) == 0:
        return out
    if ((p[ok] < 0) | (p[ok] > 1)).any():
        raise ValueError(f"p-values must lie in [0, 1]; got {p[ok][(p[ok] < 0) | (p[ok] > 1)][:5].tolist()}")
    m = len(ok)
    order = ok[np.argsort(p[ok], kind="stable")]
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def seed_ttest(values_a: Sequence[float], values_b: Sequence[float]) -> tuple[float, float]:
    """Paired t-test over seeds (``scipy.stats.ttest_rel``): ``(t, p)``; NaN with fewer than two seeds or
    when every difference is the same up to rounding (``1e-12``; the statistic is then undefined or a
    division by float noise)."""
    a, b = np.asarray(values_a, dtype=np.float64), np.asarray(values_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"a paired t-test needs the same seeds; got {len(a)} and {len(b)} values")
    d = a - b
    if len(d) < 2 or not np.isfinite(d).all() or np.ptp(d) <= 1e-12 * max(1.0, float(np.abs(d).max())):
        return float("nan"), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_rel(a, b)
    return float(res.statistic), float(res.pvalue)


def different_videos(a: Scores, b: Scores) -> str | None:
    """Why two score tables cannot be compared paired (other datasets, other videos), or None."""
    if a.datasets != b.datasets:
        return f"other test sets: {list(a.datasets)} vs {list(b.datasets)}"
    ua, ub = a.units("video"), b.units("video")
    (ids_a, _), (ids_b, _) = a.require_video(), b.require_video()
    for j, name in enumerate(a.datasets):
        ia = ids_a[ua.dataset_code == j]
        ib = ids_b[ub.dataset_code == j]
        if len(ia) != len(ib) or not np.array_equal(ia, ib):
            extra = sorted(set(ia.tolist()) ^ set(ib.tolist()))[:3]
            return f"test set {name!r} has other videos (e.g. {extra})"
    return None


def paired_bootstrap(
    frames_a: pd.DataFrame | Scores,
    frames_b: pd.DataFrame | Scores,
    statistics: Iterable[str] = ("diag_mean", "pair_mean", "worst"),
    n: int = 1000,
    seed: int = 0,
    level: str = "video",
    ci: float = 0.95,
    datasets: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Detector a minus detector b on the same videos, resample by resample (:func:`bootstrap` twice).

    Args:
        frames_a: detector a's test scores.
        frames_b: detector b's test scores (the same test sets and videos as a, else ValueError).
        statistics: bootstrap statistics (``diag_mean`` = mean video AUC, ``pair_mean``, ``worst``, a
            Cross-AUC entry ``pair_name(real, fake)``, ...).
        n: number of resamples, as :func:`benchmark.metrics.bootstrap`.
        seed: the random seed; both detectors get the same resamples.
        level: ``video`` or ``frame``, as :func:`benchmark.metrics.bootstrap`.
        ci: the interval's coverage, as :func:`benchmark.metrics.bootstrap`.
        datasets: the test sets to use, as :func:`benchmark.metrics.bootstrap`.

    Returns:
        One row per statistic: ``a``, ``b``, ``delta``, ``lo``, ``hi``, ``p`` (bootstrap), ``p_holm``
        (Holm over these rows), ``n_valid``.
    """
    sa = as_scores(frames_a, datasets=datasets, need_video=True)
    sb = as_scores(frames_b, datasets=datasets, need_video=True)
    why = different_videos(sa, sb)
    if why:
        raise ValueError(f"a paired comparison needs both detectors scored on the same videos: {why}")
    ba = bootstrap(sa, n=n, seed=seed, level=level, ci=ci, datasets=datasets)
    bb = bootstrap(sb, n=n, seed=seed, level=level, ci=ci, datasets=datasets)
    rows = {}
    for name in statistics:
        ea, eb = float(ba.table.loc[name, "estimate"]), float(bb.table.loc[name, "estimate"])
        d = paired_difference(ea, eb, ba.samples[name], bb.samples[name], ci)
        rows[name] = {
            "a": ea,
            "b": eb,
            "delta": d.estimate,
            "lo": d.lo,
            "hi": d.hi,
            "p": d.p,
            "n_valid": d.n_valid,
        }
    out = pd.DataFrame.from_dict(rows, orient="index").rename_axis("statistic")
    out.insert(6, "p_holm", holm(out["p"].to_numpy()))
    return out

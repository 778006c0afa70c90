"""Cross-AUC (real_i vs fake_j): the matrix, its summaries and the pooled AUC.

``A[i, j] = AUC(R_i, F_j) = P(s(f) > s(r)) + 1/2 P(s(f) = s(r))`` for ``r`` a real sample of dataset ``i``
and ``f`` a fake sample of dataset ``j``, all scored by one model (Luo et al., "SFAM", arXiv 2604.21478: AUC
"across dataset pairs by contrasting real samples from one dataset with fake samples from another (and vice
versa)"; definitions and summaries: README "Metrics"). The diagonal is the usual per-dataset AUC.
Not the "Cross-dataset AUC" of Nguyen et al. (arXiv 2606.19184), which is another metric.

The whole K x K matrix costs one sort: every unit's score (all datasets, both labels) is sorted once and
equal scores are grouped; per real dataset ``i`` a cumulative count over the groups gives, at each fake's
group, the reals of ``i`` below it and below or equal to it, summed per fake dataset ``j``
(:func:`pair_counts`). O(n log n) for the sort and O(n K) after it, never a loop over pairs of samples.
The counts are exact integers divided once, so an entry is its pairwise definition on the units' scores,
ties included (video scores: see ``benchmark.metrics.scores``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.metrics.ranking import Ranking, rank_units
from benchmark.metrics.scores import Scores, Units, units

SUMMARY_KEYS = ("diag_mean", "offdiag_mean", "pair_mean", "worst", "offdiag_std", "shift_gap")


@dataclass(frozen=True)
class PairCounts:
    """Exact integer counts behind every Cross-AUC entry.

    ``num[i, j]`` = sum over the fakes ``f`` of dataset ``j`` of ``#{reals of i < f} + #{reals of i <= f}``
    = ``2 * (#{r < f} + 1/2 #{r = f})`` over all pairs; ``n_real[i]``, ``n_fake[j]`` the class sizes.
    """

    num: np.ndarray
    n_real: np.ndarray
    n_fake: np.ndarray

    def matrix(self) -> np.ndarray:
        """``A[i, j] = num[i, j] / (2 n_real[i] n_fake[j])``, rounded once (NaN for an empty class)."""
        k = len(self.n_real)
        a = np.full((k, k), np.nan)
        for i in range(k):
            for j in range(k):
                nr, nf = int(self.n_real[i]), int(self.n_fake[j])
                if nr and nf:
                    a[i, j] = int(self.num[i, j]) / (2 * nr * nf)  # Python ints: exact, rounded once
        return a

    def pooled(self) -> float:
        """AUC of all reals against all fakes: the sum of the numerators over the sum of the pairs."""
        nr, nf = int(self.n_real.sum()), int(self.n_fake.sum())
        return int(self.num.sum()) / (2 * nr * nf) if nr and nf else float("nan")


def pair_counts(u: Units, ranking: Ranking | None = None) -> PairCounts:
    """:class:`PairCounts` of the units: one sort, then per real dataset one cumulative count over the
    tie groups, read at every fake's group (O(n log n) for the sort, O(n K) after it)."""
    r = ranking or rank_units(u)
    k = len(u.datasets)
    fake_groups = [r.class_groups(j, 1) for j in range(k)]
    n_real = np.array([len(r.class_groups(i, 0)) for i in range(k)], dtype=np.int64)
    n_fake = np.array([len(g) for g in fake_groups], dtype=np.int64)
    every_fake = np.concatenate(fake_groups) if k else np.zeros(0, np.int64)  # grouped by dataset
    starts = np.r_[0, np.cumsum(n_fake)][:-1]
    has = n_fake > 0
    num = np.zeros((k, k), dtype=np.int64)
    for i in range(k):
        if n_real[i] and has.any():
            below = r.reals_below(i)
            per_group = below[:-1] + below[1:]  # #{r < f} + #{r <= f} for a fake f of each group
            num[i, has] = np.add.reduceat(np.take(per_group, every_fake), starts[has])
    return PairCounts(num=num, n_real=n_real, n_fake=n_fake)


def matrix_from_units(u: Units) -> np.ndarray:
    """The K x K Cross-AUC array (NaN where a dataset has no reals / no fakes)."""
    return pair_counts(u).matrix()


def cross_auc_matrix(
    frames: pd.DataFrame | Scores,
    level: str = "video",
    agg: str = "mean",
    datasets: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The Cross-AUC matrix: ``A[i, j] = AUC(real samples of dataset i, fake samples of dataset j)``.

    Args:
        frames: per-frame scores (``dataset, label, score``; ``video_id`` for ``level="video"``), or
            :class:`~benchmark.metrics.scores.Scores` built from them.
        level: ``video`` (frame probabilities aggregated per video with ``agg``; the protocol's primary
            level) or ``frame``.
        agg: ``mean`` | ``median`` | ``max``, used at video level.
        datasets: rows/columns to use, in this order (default: every dataset, sorted by name).

    Returns:
        A square DataFrame: index ``real`` (the dataset whose REAL samples are used), columns ``fake``
        (the dataset whose FAKE samples are used). The diagonal is the per-dataset AUC. A dataset without
        reals (fake-only sets such as DF40 subsets) has a NaN row; one without fakes a NaN column.
    """
    return matrix_frame(units(frames, level=level, agg=agg, datasets=datasets))


def matrix_frame(u: Units, counts: PairCounts | None = None) -> pd.DataFrame:
    """:func:`matrix_from_units` as a DataFrame: index ``real``, columns ``fake`` (``counts``: if counted)."""
    a = (counts or pair_counts(u)).matrix()
    idx = pd.Index(u.datasets, name="real")
    return pd.DataFrame(a, index=idx, columns=pd.Index(u.datasets, name="fake"))


def summarize_arrays(a: np.ndarray) -> dict[str, np.ndarray]:
    """Summaries of a stack of matrices ``a`` of shape ``[B, K, K]`` (NaN entries are skipped).

    Returns arrays of shape ``[B]`` for each key of ``SUMMARY_KEYS``.
    """
    b, k, _ = a.shape
    off = ~np.eye(k, dtype=bool)
    offv = a[:, off]  # [B, K(K-1)] ordered pairs i != j
    iu, ju = np.triu_indices(k, 1)
    pairs = (a[:, iu, ju] + a[:, ju, iu]) / 2  # C over unordered pairs; NaN if either direction is
    diag = a[:, np.arange(k), np.arange(k)]
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN, which is the answer
        out = {
            "diag_mean": np.nanmean(diag, axis=1) if k else np.full(b, np.nan),
            "offdiag_mean": np.nanmean(offv, axis=1) if k > 1 else np.full(b, np.nan),
            "pair_mean": np.nanmean(pairs, axis=1) if k > 1 else np.full(b, np.nan),
            "worst": np.nanmin(offv, axis=1) if k > 1 else np.full(b, np.nan),
            "offdiag_std": np.nanstd(offv, axis=1) if k > 1 else np.full(b, np.nan),
        }
    out["shift_gap"] = out["diag_mean"] - out["offdiag_mean"]
    return out


def cross_auc_summary(matrix: pd.DataFrame, exclude: Iterable[str] = ()) -> dict:
    """Summaries of a Cross-AUC matrix (NaN entries are skipped).

    Args:
        matrix: from :func:`cross_auc_matrix`.
        exclude: datasets dropped from rows and columns first (e.g. the in-domain training set).

    Returns:
        ``diag_mean`` (mean per-dataset AUC), ``offdiag_mean`` (mean of ``A[i, j]`` over ordered pairs
        ``i != j``), ``pair_mean`` (mean over unordered pairs of ``C = (A[i, j] + A[j, i]) / 2``),
        ``worst`` (min of ``A[i, j]`` over ``i != j``) and ``worst_pair`` (its ``(real, fake)`` datasets,
        None if there is none), ``offdiag_std`` (population std of the ordered off-diagonal entries),
        ``shift_gap`` (``diag_mean - offdiag_mean``), ``n_datasets``.
    """
    if list(matrix.index) != list(matrix.columns):
        raise ValueError(
            f"matrix must be square with the same datasets in rows and columns; "
            f"rows {list(matrix.index)}, columns {list(matrix.columns)}"
        )
    exclude = list(exclude)
    unknown = [d for d in exclude if d not in matrix.index]
    if unknown:
        raise ValueError(f"exclude names unknown dataset(s) {unknown}; matrix has {list(matrix.index)}")
    keep = [d for d in matrix.index if d not in exclude]
    rows = [i for i, d in enumerate(matrix.index) if d not in exclude]
    a = matrix.to_numpy(dtype=np.float64)[np.ix_(rows, rows)]
    s = {key: float(v[0]) for key, v in summarize_arrays(a[None]).items()}
    worst_pair = None
    if not np.isnan(s["worst"]):
        masked = np.where(np.eye(len(keep), dtype=bool), np.nan, a)
        i, j = np.unravel_index(np.nanargmin(masked), a.shape)
        worst_pair = (keep[i], keep[j])
    return {**s, "worst_pair": worst_pair, "n_datasets": len(keep)}


def pooled_auc(frames: pd.DataFrame | Scores, level: str = "video", agg: str = "mean") -> float:
    """AUC of ALL reals against ALL fakes, every dataset mixed.

    It equals the size-weighted mean of the whole Cross-AUC matrix,
    ``sum_ij |R_i| |F_j| A[i, j] / (|R| |F|)``, so it depends on the mixing proportions and hides failing
    pairs: report it beside the matrix, never rank by it.
    """
    return pooled_from_units(units(frames, level=level, agg=agg))


def pooled_from_units(u: Units) -> float:
    """:func:`pooled_auc` of already built units."""
    return pair_counts(u).pooled()

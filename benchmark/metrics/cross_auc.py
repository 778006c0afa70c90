"""Cross-AUC (real_i vs fake_j): the matrix, its summaries and the pooled AUC.

``A[i, j] = AUC(R_i, F_j) = P(s(f) > s(r)) + 1/2 P(s(f) = s(r))`` for ``r`` a real sample of dataset ``i``
and ``f`` a fake sample of dataset ``j``, all scored by one model (Luo et al., "SFAM", arXiv 2604.21478: AUC
"across dataset pairs by contrasting real samples from one dataset with fake samples from another (and vice
versa)"; definitions and summaries: README "Metrics"). The diagonal is the usual per-dataset AUC.
Not the "Cross-dataset AUC" of Nguyen et al. (arXiv 2606.19184), which is another metric.

Every entry comes from per-dataset sorted real scores and two ``searchsorted`` calls over the fakes, so
the K x K matrix costs O(n log n) in total, never a loop over pairs of samples. The counts are exact
integers, so an entry is its pairwise definition on the units' scores, ties included (video scores: see
``benchmark.metrics.scores``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from benchmark.metrics.scores import Scores, Units, units

SUMMARY_KEYS = ("diag_mean", "offdiag_mean", "pair_mean", "worst", "offdiag_std", "shift_gap")


def split_by_dataset(
    u: Units,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per dataset: real scores sorted, their positions in the units, fake scores sorted, their positions."""
    reals_sorted, real_pos, fakes, fake_pos = [], [], [], []
    for d in range(len(u.datasets)):
        r = np.flatnonzero((u.dataset_code == d) & (u.label == 0))
        f = np.flatnonzero((u.dataset_code == d) & (u.label == 1))
        order = np.argsort(u.score[r], kind="stable")
        reals_sorted.append(u.score[r][order])
        real_pos.append(r[order])
        # sorted fakes too: searchsorted with sorted keys walks memory in order (several times faster)
        order = np.argsort(u.score[f], kind="stable")
        fakes.append(u.score[f][order])
        fake_pos.append(f[order])
    return reals_sorted, real_pos, fakes, fake_pos


def pair_counts(reals_sorted: np.ndarray, fakes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each fake: the number of reals strictly below it, and the number below or equal."""
    return (
        np.searchsorted(reals_sorted, fakes, side="left"),
        np.searchsorted(reals_sorted, fakes, side="right"),
    )


def matrix_from_units(u: Units) -> np.ndarray:
    """The K x K Cross-AUC array (NaN where a dataset has no reals / no fakes)."""
    reals_sorted, _, fakes, _ = split_by_dataset(u)
    k = len(u.datasets)
    a = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(k):
            nr, nf = len(reals_sorted[i]), len(fakes[j])
            if nr and nf:
                lo, hi = pair_counts(reals_sorted[i], fakes[j])
                # 2 * (#{r < f} + 1/2 #{r = f}) summed over fakes, exact in integers
                a[i, j] = int(lo.sum() + hi.sum()) / (2 * nr * nf)
    return a


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


def matrix_frame(u: Units) -> pd.DataFrame:
    """:func:`matrix_from_units` as a DataFrame: index ``real``, columns ``fake``."""
    idx = pd.Index(u.datasets, name="real")
    return pd.DataFrame(matrix_from_units(u), index=idx, columns=pd.Index(u.datasets, name="fake"))


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
    m = matrix.loc[keep, keep]
    a = m.to_numpy(dtype=np.float64)
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
    reals = np.sort(u.score[u.label == 0])
    fakes = u.score[u.label == 1]
    if len(reals) == 0 or len(fakes) == 0:
        return float("nan")
    lo, hi = pair_counts(reals, fakes)
    return int(lo.sum() + hi.sum()) / (2 * len(reals) * len(fakes))

"""Bootstrap percentile intervals that resample VIDEOS within each dataset.

One resample draws, for every dataset independently, as many videos as it has, with replacement (reals
and fakes together: the dataset's real/fake mix varies as it would in another draw of the dataset).
Every statistic is recomputed from that one resample, so the interval of a summary is consistent with
the intervals of the matrix entries it summarises.

Two paths give identical numbers for the same seed:
* ``statistic="cross_auc"`` (fast): every matrix entry, the summaries and the pooled AUC. The units'
  scores never change between resamples, only how often each video is drawn, so the units are ranked
  once (``benchmark.metrics.ranking``: one sort, ties grouped), each fake's count of reals
  below / below or equal per dataset is read off that ranking once, and each entry is a weighted count
  over those positions; the resamples are processed as a ``[B, n]`` weight array (no DataFrame per
  resample).
* ``statistic=<callable>``: any function of a frames table returning a number, a dict / Series of
  numbers or a DataFrame (flattened to ``"row|column"`` names). Each resample is materialised as a
  frames table in which a video drawn twice appears twice under distinct ids (``<video_id>#<k>``,
  ``<sample_id>#<k>``). Slower; meant for statistics the fast path does not cover.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.metrics.cross_auc import (
    SUMMARY_KEYS,
    cross_auc_summary,
    matrix_frame,
    pair_counts,
    summarize_arrays,
)
from benchmark.metrics.ranking import Ranking, rank_units
from benchmark.metrics.scores import Scores, Units, _check_level_agg, as_scores

_MAX_CELLS = 4_000_000  # resamples x units processed at once (bounds memory, ~10 int64 arrays of it)


@dataclass
class BootstrapResult:
    """Bootstrap output.

    Attributes:
        table: one row per statistic: ``estimate`` (on the full data), ``lo``, ``hi`` (percentile
            interval), ``std`` (bootstrap standard error), ``n_valid`` (resamples where it was defined).
        samples: ``[n, statistics]`` values of every resample.
        datasets: the matrix's datasets (fast path), for :meth:`matrix`.
        ci, n, seed: the interval level, number of resamples and seed used.
    """

    table: pd.DataFrame
    samples: pd.DataFrame
    datasets: list[str]
    ci: float
    n: int
    seed: int

    def matrix(self, column: str = "estimate") -> pd.DataFrame:
        """The Cross-AUC entries of ``column`` (``estimate``, ``lo``, ``hi``, ``std``) as a K x K DataFrame."""
        k = self.datasets
        vals = [[self.table.loc[pair_name(i, j), column] for j in k] for i in k]
        return pd.DataFrame(vals, index=pd.Index(k, name="real"), columns=pd.Index(k, name="fake"))


def pair_name(real: str, fake: str) -> str:
    """The statistic name of one Cross-AUC entry (an ordered pair of datasets) in a bootstrap table.

    ``A[real|fake]``: the labels of the bootstrap's ``table`` rows and ``samples`` columns (in memory only;
    nothing stores them).
    """
    return f"A[{real}|{fake}]"


def _draws(rng_per_dataset: list[np.random.Generator], n_videos: np.ndarray, b: int) -> list[np.ndarray]:
    """``b`` resamples: for every dataset a ``[b, n_videos]`` array of drawn video numbers."""
    return [
        g.integers(0, int(nv), size=(b, int(nv))) for g, nv in zip(rng_per_dataset, n_videos, strict=True)
    ]


def _counts(draws: np.ndarray, nv: int) -> np.ndarray:
    """``[b, nv]`` draws -> ``[b, nv]`` how often each video was drawn."""
    b = draws.shape[0]
    flat = (draws + np.arange(b)[:, None] * nv).ravel()
    return np.bincount(flat, minlength=b * nv).reshape(b, nv)


def bootstrap(
    frames: pd.DataFrame | Scores,
    statistic: str | Callable[[pd.DataFrame], object] = "cross_auc",
    n: int = 1000,
    seed: int = 0,
    level: str = "video",
    agg: str = "mean",
    ci: float = 0.95,
    datasets: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
) -> BootstrapResult:
    """Percentile bootstrap intervals, resampling videos within each dataset.

    Args:
        frames: per-frame scores with ``video_id`` (validated: see ``benchmark.metrics.scores``), or
            :class:`~benchmark.metrics.scores.Scores` built from them (validated once, reused).
        statistic: ``"cross_auc"`` for every Cross-AUC entry (named ``A[real|fake]``), the summaries of
            :func:`cross_auc_summary` (``worst_pair`` excluded: not a number) and ``pooled_auc``; or a
            callable of a frames table (see the module docstring).
        n: number of resamples.
        seed: the random seed (same seed, same resamples, on both paths).
        level: ``video`` or ``frame``, as :func:`cross_auc_matrix` (fast path only).
        agg: how frames make a video score, as :func:`cross_auc_matrix` (fast path only; a callable
            aggregates as it likes).
        datasets: the datasets to use (both paths; default all), in matrix order for the fast path.
        ci: the interval's coverage, e.g. 0.95 -> 2.5th and 97.5th percentiles.
        exclude: datasets left out of the summaries (not of the entries), as in :func:`cross_auc_summary`.
    """
    if not 0 < ci < 1:
        raise ValueError(f"ci={ci} must be in (0, 1)")
    if n < 1:
        raise ValueError(f"n={n} must be >= 1")
    if statistic == "cross_auc":
        _check_level_agg(level, agg)
        u = as_scores(frames, datasets=datasets, need_video=True).units(level, agg)
        ranking = rank_units(u)  # the one sort, shared by the estimate and the resamples
        counts = pair_counts(u, ranking)
        m = matrix_frame(u, counts)
        summ = cross_auc_summary(m, exclude=exclude)  # first: it refuses unknown names in `exclude`
        rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(u.datasets))]
        samples = _cross_auc_samples(u, ranking, rngs, n, list(exclude))
        est = {pair_name(i, j): m.loc[i, j] for i in u.datasets for j in u.datasets}
        est.update({k: summ[k] for k in SUMMARY_KEYS})
        est["pooled_auc"] = counts.pooled()
        names = list(est)
        dsets = u.datasets
    elif callable(statistic):
        s = as_scores(frames, datasets=datasets, need_video=True)  # refuses empty names
        s = s.select(sorted(s.datasets, key=str))  # the draws follow the sorted datasets on this path
        u = s.units("frame")
        rngs = [np.random.default_rng(q) for q in np.random.SeedSequence(seed).spawn(len(u.datasets))]
        est = _flatten(statistic(s.frames))
        names = list(est)
        samples = _generic_samples(s.frames, u, statistic, rngs, n, names)
        dsets = []
    else:
        raise ValueError(f"statistic={statistic!r} must be 'cross_auc' or a callable of a frames table")
    samples = samples[names]
    alpha = (1 - ci) / 2
    with np.errstate(invalid="ignore"):
        vals = samples.to_numpy(dtype=np.float64)
        valid = ~np.isnan(vals)
        n_valid = valid.sum(axis=0)
        lo = np.full(len(names), np.nan)
        hi = np.full(len(names), np.nan)
        sd = np.full(len(names), np.nan)
        for c in np.flatnonzero(n_valid):
            v = vals[valid[:, c], c]
            lo[c], hi[c] = np.percentile(v, [100 * alpha, 100 * (1 - alpha)])
            sd[c] = v.std(ddof=1) if len(v) > 1 else np.nan
    table = pd.DataFrame(
        {"estimate": [est[k] for k in names], "lo": lo, "hi": hi, "std": sd, "n_valid": n_valid},
        index=pd.Index(names, name="statistic"),
    )
    return BootstrapResult(table=table, samples=samples, datasets=dsets, ci=ci, n=n, seed=seed)


def _cross_auc_samples(
    u: Units, ranking: Ranking, rngs: list[np.random.Generator], n: int, exclude: list[str]
) -> pd.DataFrame:
    k = len(u.datasets)
    video_code, n_videos = u.video_arrays()
    # video number (within its dataset) of each real / fake, in score order
    real_vid = [video_code[ranking.class_units(d, 0)] for d in range(k)]
    fake_vid = [video_code[ranking.class_units(d, 1)] for d in range(k)]
    # per (i, j) and fake f of j: #{reals of i < f}, #{reals of i <= f}; the first lo (hi) reals of i in
    # score order are exactly those, whatever their order within a tie group
    below = [ranking.reals_below(i) for i in range(k)]
    fake_groups = [ranking.class_groups(j, 1) for j in range(k)]
    counts = {(i, j): (below[i][g], below[i][g + 1]) for i in range(k) for j, g in enumerate(fake_groups)}
    keep = [d for d in range(k) if u.datasets[d] not in exclude]
    chunk = max(1, _MAX_CELLS // max(1, len(u.score)))
    out = []
    done = 0
    while done < n:
        b = min(chunk, n - done)
        draws = _draws(rngs, n_videos, b)
        cnt = [_counts(draws[d], int(n_videos[d])) for d in range(k)]
        w_real = [cnt[d][:, real_vid[d]] for d in range(k)]  # [b, n_reals_d] weights of sorted reals
        w_fake = [cnt[d][:, fake_vid[d]] for d in range(k)]
        cum_real = [
            np.concatenate([np.zeros((b, 1), np.int64), np.cumsum(w, axis=1)], axis=1) for w in w_real
        ]
        tot_r = np.stack([w.sum(axis=1) for w in w_real], axis=1)  # [b, k]
        tot_f = np.stack([w.sum(axis=1) for w in w_fake], axis=1)
        num = np.zeros((b, k, k), dtype=np.int64)  # 2 x weighted count of (real < fake) + (real = fake) / 2
        for (i, j), (lo, hi) in counts.items():
            if len(lo):
                num[:, i, j] = ((cum_real[i][:, lo] + cum_real[i][:, hi]) * w_fake[j]).sum(axis=1)
        den = 2 * tot_r[:, :, None] * tot_f[:, None, :]
        with np.errstate(invalid="ignore", divide="ignore"):
            a = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
            pooled = num.sum(axis=(1, 2)) / (2 * tot_r.sum(axis=1) * tot_f.sum(axis=1))
        cols = {pair_name(u.datasets[i], u.datasets[j]): a[:, i, j] for i in range(k) for j in range(k)}
        cols.update(summarize_arrays(a[:, keep][:, :, keep]))
        cols["pooled_auc"] = np.where(np.isfinite(pooled), pooled, np.nan)
        out.append(pd.DataFrame(cols))
        done += b
    return pd.concat(out, ignore_index=True)


def _generic_samples(
    frames: pd.DataFrame,
    u: Units,
    statistic: Callable[[pd.DataFrame], object],
    rngs: list[np.random.Generator],
    n: int,
    names: list[str],
) -> pd.DataFrame:
    # u is at frame level over the rows of `frames` restricted to u.datasets, in frame order
    rows = np.flatnonzero(frames["dataset"].isin(u.datasets).to_numpy())
    k = len(u.datasets)
    video_code, n_videos = u.video_arrays()
    # rows of each (dataset, video), grouped so that one draw selects a whole video
    per_video: list[list[np.ndarray]] = []
    for d in range(k):
        m = np.flatnonzero(u.dataset_code == d)
        order = m[np.argsort(video_code[m], kind="stable")]
        bounds = np.searchsorted(video_code[order], np.arange(int(n_videos[d]) + 1))
        per_video.append([rows[order[bounds[v] : bounds[v + 1]]] for v in range(int(n_videos[d]))])
    records = []
    done = 0
    while done < n:
        b = min(1000, n - done)
        draws = _draws(rngs, n_videos, b)
        for r in range(b):
            parts, tags = [], []
            for d in range(k):
                for t, v in enumerate(draws[d][r]):
                    parts.append(per_video[d][v])
                    tags.append(np.full(len(per_video[d][v]), t))
            idx, tag = np.concatenate(parts), np.concatenate(tags).astype(str)
            sub = frames.iloc[idx].reset_index(drop=True)
            suffix = pd.Series(np.char.add("#", tag))
            sub["video_id"] = sub["video_id"].astype(str) + suffix
            if "sample_id" in sub.columns:
                sub["sample_id"] = sub["sample_id"].astype(str) + suffix
            records.append(_flatten(statistic(sub)))
        done += b
    return pd.DataFrame(records, columns=names)


_NUMBER = int | float | np.integer | np.floating | np.bool_  # what a statistic's value may be


def _flatten(value: object) -> dict[str, float]:
    if isinstance(value, pd.DataFrame):
        a = value.to_numpy(dtype=np.float64).tolist()
        return {
            f"{i}|{j}": float(a[r][c]) for r, i in enumerate(value.index) for c, j in enumerate(value.columns)
        }
    if isinstance(value, pd.Series):
        return {
            str(k): float(v)
            for k, v in zip(value.index, value.to_numpy(dtype=np.float64).tolist(), strict=True)
        }
    if isinstance(value, dict):
        return {str(k): float(v) for k, v in value.items() if isinstance(v, _NUMBER)}
    if isinstance(value, _NUMBER | np.ndarray):
        return {"value": float(value)}
    raise TypeError(
        f"the statistic returned a {type(value).__name__}: expected a number, Series, DataFrame or dict"
    )

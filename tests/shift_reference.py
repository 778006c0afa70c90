"""Independent references for the shift statistics (tests only): ECE in exact Fractions, the few-shot
offset's objective from scipy's own kernel densities, and a normalised Cross-AUC matrix recomputed from a
``NormalisationResult``'s recorded draws with numpy / statistics / scipy fits and pairwise AUCs (the
draws are the protocol's; everything else is computed here)."""

from __future__ import annotations

import statistics
from fractions import Fraction

import numpy as np
import pandas as pd
from scipy.special import ndtr
from scipy.stats import gaussian_kde

from tests.exact_reference import exact_video_scores


def exact_ece(labels, scores, n_bins: int) -> Fraction:
    """ECE in Fractions from the definition: unit u's bin is floor(n_bins * #{v: s_v < s_u} / n)."""
    s = [Fraction(float(x)) for x in scores]
    n = len(s)
    bins: dict[int, list[int]] = {}
    for u in range(n):
        below = sum(1 for v in range(n) if s[v] < s[u])
        bins.setdefault(n_bins * below // n, []).append(u)
    total = Fraction(0)
    for members in bins.values():
        gap = sum(Fraction(int(labels[u])) - s[u] for u in members)
        total += abs(gap)
    return total / n


def scipy_balanced_gain(y: np.ndarray, x: np.ndarray):
    """The few-shot objective CDF_real(T) + 1 - CDF_fake(T) from scipy's own kernel densities."""
    k0, k1 = gaussian_kde(x[y == 0]), gaussian_kde(x[y == 1])
    return lambda t: k0.integrate_box_1d(-np.inf, t) + 1 - k1.integrate_box_1d(-np.inf, t)


def scipy_balanced_gain_on(y: np.ndarray, x: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The same objective on a whole grid: scipy's kernel bandwidths, the Gaussian kernel CDF by ndtr
    (what ``integrate_box_1d`` sums in one dimension)."""
    out = np.ones(len(grid))
    for lab, sign in ((0, 1.0), (1, -1.0)):
        v = x[y == lab]
        try:
            kde = gaussian_kde(v)
        except np.linalg.LinAlgError:  # one value repeated: the kernel's limit, a step (1/2 at the value)
            out += sign * ((grid[:, None] > v) + 0.5 * (grid[:, None] == v)).mean(axis=1)
            continue
        h = float(np.sqrt(kde.covariance[0, 0]))
        out += sign * ndtr((grid[:, None] - kde.dataset[0][None, :]) / h).mean(axis=1)
    return out


_VIDEO_CACHE: dict[int, tuple[pd.DataFrame, pd.DataFrame]] = {}


def _videos(frames: pd.DataFrame) -> pd.DataFrame:
    """Exact video scores of ``frames`` (computed once per table object)."""
    hit = _VIDEO_CACHE.get(id(frames))
    if hit is None or hit[0] is not frames:
        hit = (frames, exact_video_scores(frames))
        _VIDEO_CACHE[id(frames)] = hit
    return hit[1]


def _logit(p) -> np.ndarray:
    """log(p / (1 - p)), a score of exactly 0 or 1 read as 2**-150 or 1 - 2**-25 (the documented clip)."""
    p = np.asarray(p, dtype=np.float64)
    p = np.where(p == 0, 2.0**-150, np.where(p == 1, 1 - 2.0**-25, p))
    return np.log(p / (1 - p))


def reference_normalised_matrix(
    test: pd.DataFrame, val: pd.DataFrame | None, res, method: str, repeat: int
) -> np.ndarray:
    """The normalised matrix of one repeat, recomputed from the recorded draws with numpy/statistics/scipy
    fits and pairwise AUCs (the draws are the protocol's; everything else is independent).

    ``test`` / ``val``: frames tables, or video tables of :func:`exact_video_scores` (``n_frames`` absent)."""
    units = _videos(test).set_index("video_id")
    pools = {} if val is None else _videos(val).set_index("video_id")
    to_logit = _logit
    z = {}
    for j, name in enumerate(res.datasets):
        ids = res.test_ids[j]
        y, s = units.loc[ids, "label"].to_numpy(), units.loc[ids, "score"].to_numpy()
        x = s if method in ("raw", "domain_score") else to_logit(s)
        undefined = False
        if method == "raw":
            zj = s
        elif method in ("domain_score", "domain_logit"):
            q25, q75 = np.percentile(x, [25, 75])
            zj = (x - statistics.median(x)) / ((q75 - q25) or 1.0)
        else:
            zj = np.full(len(ids), np.nan)
            for d in (d for d in res.draws if d.repeat == repeat and d.domain == j):
                if d.source == "val":
                    pid = res.pool_ids[j]
                    yc, xc = pools.loc[pid, "label"].to_numpy(), to_logit(pools.loc[pid, "score"].to_numpy())
                else:
                    yc, xc = y, x
                if method == "reals_znorm":
                    cal = d.calibration["reals"]
                    if len(cal) == 0:
                        undefined = True
                        continue
                    c, sd = statistics.fmean(xc[cal]), statistics.pstdev(xc[cal]) or 1.0
                elif method == "unsup_offset":
                    c, sd = (
                        float(np.quantile(xc[d.calibration["unlabelled"]], 1 - res.settings.fake_ratio)),
                        1.0,
                    )
                else:
                    cal = d.calibration["balanced"]
                    if min((yc[cal] == 0).sum(), (yc[cal] == 1).sum()) < 2:
                        undefined = True
                        continue
                    grid = np.linspace(xc[cal].min(), xc[cal].max(), 4001)
                    vals = scipy_balanced_gain_on(yc[cal], xc[cal], grid)
                    top = np.flatnonzero(vals >= vals.max() - 1e-12)  # a flat maximum: its middle
                    c, sd = (grid[top[0]] + grid[top[-1]]) / 2, 1.0
                zj[d.scored] = (x[d.scored] - c) / sd
        z[name] = (y, zj, undefined)
    k = len(res.datasets)
    out = np.empty((k, k))
    for i, a in enumerate(res.datasets):
        for j, b in enumerate(res.datasets):
            if z[a][2] or z[b][2]:
                out[i, j] = np.nan
                continue
            r, f = z[a][1][z[a][0] == 0], z[b][1][z[b][0] == 1]
            # the pairwise definition, P(f > r) + 1/2 P(f = r), by broadcasting over every pair
            out[i, j] = float(((f[:, None] > r[None, :]) + 0.5 * (f[:, None] == r[None, :])).mean())
    return out


def _median_bins(x: pd.Series) -> pd.Series:
    """The median split by rank (ties together), a missing value its own bin, computed with pandas."""
    below = x.rank(method="min") - 1
    return ((2 * below) // x.notna().sum()).where(x.notna(), 2)


def matched_reference(test: pd.DataFrame, features: list[str], i: str, j: str) -> dict[str, float]:
    """The confound-matched AUC of (reals of i, fakes of j) from test frames carrying ``features``: video
    means by pandas groupby, the median split per feature over all test videos, strata counts by groupby,
    Iacus-King-Porro weights and scikit-learn's weighted ``roc_auc_score``; with the share kept and Kish's
    ESS of each class."""
    from sklearn.metrics import roc_auc_score

    videos = exact_video_scores(test).set_index("video_id")
    per_video = test.groupby("video_id")[list(features)].mean()
    used = [c for c in features if per_video[c].notna().any()]
    v = videos.join(pd.DataFrame({c: _median_bins(per_video[c]) for c in used}))
    pair = v[((v.dataset == i) & (v.label == 0)) | ((v.dataset == j) & (v.label == 1))].copy()
    pair["stratum"] = pair[used].astype(int).astype(str).agg("-".join, axis=1)
    counts = (
        pair.groupby(["stratum", "label"]).size().unstack(fill_value=0).reindex(columns=[0, 1], fill_value=0)
    )
    matched = counts[(counts[0] > 0) & (counts[1] > 0)]
    m_r, m_f = matched[0].sum(), matched[1].sum()
    w = pd.Series(0.0, index=pair.index)
    for s, row in matched.iterrows():
        sel = pair.stratum == s
        w[sel & (pair.label == 1)] = 1.0
        w[sel & (pair.label == 0)] = (m_r / m_f) * (row[1] / row[0])
    keep = w > 0
    auc = roc_auc_score(pair.label[keep], pair.score[keep], sample_weight=w[keep]) if keep.any() else np.nan
    wr, wf = w[pair.label == 0], w[pair.label == 1]
    return {
        "auc": auc,
        "kept": float(keep.mean()),
        "ess_real": wr.sum() ** 2 / (wr**2).sum() if (wr > 0).any() else 0.0,
        "ess_fake": wf.sum() ** 2 / (wf**2).sum() if (wf > 0).any() else 0.0,
    }

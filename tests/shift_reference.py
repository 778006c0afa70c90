"""Independent references for the shift statistics (tests only): ECE in exact Fractions, the few-shot
offset's objective from scipy's own kernel densities, and a normalised Cross-AUC matrix recomputed from a
``NormalisationResult``'s recorded draws with numpy / statistics / scipy fits and scikit-learn AUCs (the
draws are the protocol's; everything else is computed here)."""

from __future__ import annotations

import statistics
from fractions import Fraction

import numpy as np
import pandas as pd
from scipy.stats import gaussian_kde
from sklearn.metrics import roc_auc_score

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


def reference_normalised_matrix(
    test: pd.DataFrame, val: pd.DataFrame | None, res, method: str, repeat: int
) -> np.ndarray:
    """The normalised matrix of one repeat, recomputed from the recorded draws with numpy/statistics/scipy
    fits and scikit-learn AUCs (the draws are the protocol's; everything else is independent)."""
    units = exact_video_scores(test).set_index("video_id")
    pools = {} if val is None else exact_video_scores(val).set_index("video_id")
    to_logit = lambda p: np.log(np.asarray(p) / (1 - np.asarray(p)))  # noqa: E731  (scores in (0, 1))
    z = {}
    for j, name in enumerate(res.datasets):
        ids = res.test_ids[j]
        y, s = units.loc[ids, "label"].to_numpy(), units.loc[ids, "score"].to_numpy()
        x = s if method == "domain_score" else to_logit(s)
        if method in ("domain_score", "domain_logit"):
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
                    c, sd = statistics.fmean(xc[cal]), statistics.pstdev(xc[cal]) or 1.0
                elif method == "unsup_offset":
                    c, sd = (
                        float(np.quantile(xc[d.calibration["unlabelled"]], 1 - res.settings.fake_ratio)),
                        1.0,
                    )
                else:
                    cal = d.calibration["balanced"]
                    gain = scipy_balanced_gain(yc[cal], xc[cal])
                    grid = np.linspace(xc[cal].min(), xc[cal].max(), 2001)
                    c, sd = grid[int(np.argmax([gain(g) for g in grid]))], 1.0
                zj[d.scored] = (x[d.scored] - c) / sd
        z[name] = (y, zj)
    k = len(res.datasets)
    out = np.empty((k, k))
    for i, a in enumerate(res.datasets):
        for j, b in enumerate(res.datasets):
            r, f = z[a][1][z[a][0] == 0], z[b][1][z[b][0] == 1]
            out[i, j] = roc_auc_score(np.r_[np.zeros(len(r)), np.ones(len(f))], np.r_[r, f])
    return out

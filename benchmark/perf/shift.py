"""Perf topic ``shift``: reading the shift of a whole 5 x 5 grid, against a naive baseline in the same run.

Figure: the shift analysis of a synthetic grid of 5 detectors x 5 test sets, 250,000 frames per test set
in videos of 32 frames (7,812 videos per set; plus a 1,000-video source validation split), as the
leaderboard computes it for each detector: the frames validated once (``Scores``: checks, exact video
means), the video-level Cross-AUC bootstrap (1,000 resamples: what the paired comparisons difference),
the six per-domain normalisations over R = 20 calibration repeats (k = 50, 5 folds), the operating points
at thresholds fixed on the source validation split, ECE / Brier / log loss / W1 per test set, the
confound-matched Cross-AUC (coarsened exact matching on 9 per-frame features averaged per video, the
leaderboard's ``MATCHING``); then every paired comparison of the grid (10 pairs x 3 statistics, Holm).
Target < 60 s on the 2-core machine.

Baseline (same run, same statistics, the naive way): video means by a pandas groupby; per bootstrap
resample a resampled video table and 25 ``sklearn.metrics.roc_auc_score`` calls; per calibration repeat
and normalisation a per-fold Python loop of fits (the few-shot offset with scipy ``gaussian_kde`` +
``minimize_scalar``, as the authors' released code finds it) and 25 ``roc_auc_score`` calls; operating
points from ``sklearn.metrics.roc_curve``; ECE by a loop over bins; matched Cross-AUC by a pandas groupby
per pair (strata counts, weights) and ``roc_auc_score(sample_weight=...)``. The baseline is timed on ONE detector
with a fraction of the resamples and repeats and scaled linearly to the grid (it is linear in each), as
its note says; its deterministic numbers are checked equal to ours before anything is timed.

Not included: the leaderboard's FRAME-level bootstrap (1,000 resamples of 1.25 million frames per
detector), which belongs to the Cross-AUC matrix itself, not to reading the shift.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import combinations
from typing import TypeVar

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.stats import gaussian_kde
from sklearn.metrics import roc_auc_score, roc_curve

from benchmark.metrics import (
    MatchingSettings,
    NormalisationSettings,
    Scores,
    bootstrap,
    holm,
    matched_cross_auc,
    normalisation_analysis,
    operating_points,
    paired_difference,
    score_quality,
)
from benchmark.perf.timing import Figure, duration, measure, with_ratio

_T = TypeVar("_T")

TOPIC = "shift"
SETS = ("FF++", "CDF-v2", "DFDC", "DFDCP", "DFD")
N_DETECTORS = 5
COMPARED = ("diag_mean", "pair_mean", "worst")
#: per-frame confound features of the synthetic grid (the manifest's, but JPEG quality: video frames)
FEATURES = ("face_px", "resize", "sharpness", "brightness", "contrast", "blockiness", "yaw", "pitch", "roll")
MATCHING = MatchingSettings()


def grid_frames(
    detector: int, frames_per_set: int, frames_per_video: int = 32, val_videos: int = 1000
) -> pd.DataFrame:
    """One detector's frames: the source val split (FF++) and 5 test sets whose scores shift by domain.

    The videos are the same for every detector (as on a real grid); the scores differ (float32
    probabilities, as the runner stores them).
    """
    rng = np.random.default_rng(detector)
    n_vid = frames_per_set // frames_per_video
    parts = []
    for split, sets in (("val", SETS[:1]), ("test", SETS)):
        for k, d in enumerate(sets):
            nv = n_vid if split == "test" else val_videos
            lab = np.arange(nv) % 2
            vid = np.char.add(
                np.char.add(f"{d}/{split}/", np.where(lab, "fake/", "real/")), np.arange(nv).astype(str)
            )
            logit_v = rng.normal(0.3 * k * (1 + detector) / N_DETECTORS + 1.5 * lab, 1.0)
            rep = np.repeat(np.arange(nv), frames_per_video)
            logit = logit_v[rep] + rng.normal(0, 0.5, len(rep))
            frng = np.random.default_rng([k, split == "test"])  # the same videos' features for every detector
            feats = {
                f: (frng.normal(0.2 * k * lab, 1.0, nv)[rep] + frng.normal(0, 0.1, len(rep))).astype(
                    np.float32
                )
                for f in FEATURES
            }
            parts.append(
                pd.DataFrame(
                    {
                        **feats,
                        "split": split,
                        "dataset": d,
                        "video_id": vid[rep],
                        "sample_id": np.char.add(
                            np.char.add(vid[rep], "/"), np.tile(np.arange(frames_per_video).astype(str), nv)
                        ),
                        "label": lab[rep],
                        "score": (1 / (1 + np.exp(-logit))).astype(np.float32).astype(np.float64),
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------- ours


def analyse_detector(frames: pd.DataFrame, n_boot: int, settings: NormalisationSettings) -> dict:
    """Everything the leaderboard reads about the shift of one detector (see the module docstring)."""
    test = Scores.from_frames(frames[frames["split"] == "test"], datasets=SETS, need_video=True)
    val = Scores.from_frames(frames[frames["split"] == "val"], need_video=True)
    return {
        "test": test,
        "boot": bootstrap(test, "cross_auc", n=n_boot, seed=0, level="video"),
        "operating": operating_points(val, test),
        "quality": score_quality(test),
        "normalised": normalisation_analysis(test, val, settings=settings),
        "matched": matched_cross_auc(test, FEATURES, level="video", settings=MATCHING, datasets=SETS),
    }


def analyse_grid(grid: list[pd.DataFrame], n_boot: int, settings: NormalisationSettings) -> dict:
    """Analyse every detector's scores (bootstrap, normalisation) and Holm-adjust their paired differences."""
    per = [analyse_detector(f, n_boot, settings) for f in grid]
    diffs = []
    for a, b in combinations(per, 2):
        for stat in COMPARED:
            ta, tb = a["boot"].table, b["boot"].table
            diffs.append(
                paired_difference(
                    ta.loc[stat, "estimate"],
                    tb.loc[stat, "estimate"],
                    a["boot"].samples[stat],
                    b["boot"].samples[stat],
                )
            )
    return {"detectors": per, "p_holm": holm([d.p for d in diffs])}


# --------------------------------------------------------------------------- naive


def _naive_matrix(v: pd.DataFrame, col: str = "score") -> np.ndarray:
    out = np.full((len(SETS), len(SETS)), np.nan)
    for i, di in enumerate(SETS):
        r = v.loc[(v["dataset"] == di) & (v["label"] == 0), col].to_numpy()
        for j, dj in enumerate(SETS):
            f = v.loc[(v["dataset"] == dj) & (v["label"] == 1), col].to_numpy()
            out[i, j] = roc_auc_score(np.r_[np.zeros(len(r)), np.ones(len(f))], np.r_[r, f])
    return out


def _naive_videos(frames: pd.DataFrame) -> pd.DataFrame:
    return frames.groupby("video_id", sort=True).agg(
        dataset=("dataset", "first"), label=("label", "first"), score=("score", "mean")
    )


def _naive_fewshot(y: np.ndarray, x: np.ndarray) -> float:
    k0, k1 = gaussian_kde(x[y == 0]), gaussian_kde(x[y == 1])
    res = minimize_scalar(
        lambda t: -(k0.integrate_box_1d(-np.inf, t) + 1 - k1.integrate_box_1d(-np.inf, t)),
        bounds=(x.min(), x.max()),
        method="bounded",
    )
    return float(res.x)


def naive_normalisation(
    v: pd.DataFrame, val: pd.DataFrame, repeats: int, settings: NormalisationSettings
) -> list:
    """Per repeat and method: Python-loop fits per fold (scipy for the few-shot offset), 25 sklearn AUCs."""
    logit = np.log(v["score"] / (1 - v["score"]))
    out = []
    for method in ("domain_score", "domain_logit"):
        z = v["score"].copy() if method == "domain_score" else logit.copy()
        for d in SETS:
            m = v["dataset"] == d
            q25, med, q75 = np.percentile(z[m], [25, 50, 75])
            z[m] = (z[m] - med) / (q75 - q25)
        out.append(_naive_matrix(v.assign(z=z), "z"))
    vlog = np.log(val["score"] / (1 - val["score"])).to_numpy()
    for r in range(repeats):
        rng = np.random.default_rng(r)
        for method in ("reals_znorm", "fewshot_offset", "unsup_offset"):
            z = logit.copy()
            for d in SETS:
                m = np.flatnonzero(v["dataset"].to_numpy() == d)
                y, x = v["label"].to_numpy()[m], logit.to_numpy()[m]
                folds = [(np.arange(len(m)), (val["label"].to_numpy(), vlog))] if d == SETS[0] else []
                if not folds:
                    fold = rng.permutation(len(m)) % settings.folds
                    folds = [
                        (np.flatnonzero(fold == f), (y[fold != f], x[fold != f]))
                        for f in range(settings.folds)
                    ]
                for scored, (yc, xc) in folds:
                    pick = rng.permutation(len(yc))[: settings.k]
                    yc, xc = yc[pick], xc[pick]
                    if method == "reals_znorm":
                        c, s = xc[yc == 0].mean(), xc[yc == 0].std()
                    elif method == "fewshot_offset":
                        c, s = _naive_fewshot(yc, xc), 1.0
                    else:
                        c, s = np.quantile(xc, 1 - settings.fake_ratio), 1.0
                    z.iloc[m[scored]] = (x[scored] - c) / s
            out.append(_naive_matrix(v.assign(z=z), "z"))
    return out


def naive_matched(frames: pd.DataFrame) -> np.ndarray:
    """Matched Cross-AUC the plain way: per-video means by groupby, median split by pandas ranks, per pair
    the strata counts by groupby, Iacus-King-Porro weights and ``roc_auc_score(sample_weight=...)``."""
    v = frames.groupby("video_id", sort=True).agg(
        dataset=("dataset", "first"), label=("label", "first"), score=("score", "mean"),
        **{f: (f, "mean") for f in FEATURES},
    )  # fmt: skip
    bins = [((2 * (v[f].rank(method="min") - 1)) // len(v)).astype(int).astype(str) for f in FEATURES]
    v["stratum"] = pd.concat(bins, axis=1).agg("-".join, axis=1)
    out = np.full((len(SETS), len(SETS)), np.nan)
    for i, di in enumerate(SETS):
        for j, dj in enumerate(SETS):
            p = v[((v["dataset"] == di) & (v["label"] == 0)) | ((v["dataset"] == dj) & (v["label"] == 1))]
            c = (
                p.groupby(["stratum", "label"])
                .size()
                .unstack(fill_value=0)
                .reindex(columns=[0, 1], fill_value=0)
            )
            c = c[(c[0] > 0) & (c[1] > 0)]
            if c.empty:
                continue
            ratio = (c[0].sum() / c[1].sum()) * c[1] / c[0]
            kept = p[p["stratum"].isin(c.index)]
            w = np.where(kept["label"] == 1, 1.0, kept["stratum"].map(ratio).to_numpy())
            out[i, j] = roc_auc_score(kept["label"], kept["score"], sample_weight=w)
    return out


def naive_bootstrap(v: pd.DataFrame, n: int) -> np.ndarray:
    """The naive reference bootstrap: resample rows per test set and recompute the whole Cross-AUC matrix."""
    rng = np.random.default_rng(0)
    per = [v[v["dataset"] == d] for d in SETS]
    return np.stack(
        [_naive_matrix(pd.concat([p.iloc[rng.integers(0, len(p), len(p))] for p in per])) for _ in range(n)]
    )


def naive_operating_quality(v: pd.DataFrame, val: pd.DataFrame) -> dict:
    """The naive reference of operating points and calibration: per test set, rates at the val thresholds,
    ECE, Brier."""
    fpr, _, thr = roc_curve(val["label"], val["score"], drop_intermediate=False)
    thresholds = [thr[np.flatnonzero(fpr <= a)[-1]] for a in (0.01, 0.05)]
    out = {}
    for d in SETS:
        s = v[v["dataset"] == d]
        y, p = s["label"].to_numpy(), s["score"].to_numpy()
        f, t, _ = roc_curve(y, p, drop_intermediate=False)
        rates = [((p[y == 1] >= th).mean(), (p[y == 0] >= th).mean()) for th in thresholds]
        order = np.argsort(p, kind="stable")
        ece = 0.0
        for b in np.array_split(order, 15):
            ece += len(b) / len(p) * abs(y[b].mean() - p[b].mean())
        out[d] = (rates, [t[f <= a].max() for a in (0.01, 0.05)], ece, np.mean((p - y) ** 2))
    return out


def _check(ours: dict, frames: pd.DataFrame, settings: NormalisationSettings) -> None:
    """The naive baseline computes the same deterministic numbers (matrix, label-free normalisations)."""
    v = _naive_videos(frames[frames["split"] == "test"])
    val = _naive_videos(frames[frames["split"] == "val"])
    res = ours["normalised"]
    naive = naive_normalisation(v, val, 0, settings)
    if not np.allclose(_naive_matrix(v), res.raw, rtol=0, atol=1e-9):
        raise AssertionError("the raw Cross-AUC matrix differs from the scikit-learn reference")
    for m, ref in zip(("domain_score", "domain_logit"), naive, strict=True):
        if not np.allclose(res.matrices[m][0], ref, rtol=0, atol=1e-9):
            raise AssertionError(f"the {m} matrix differs from the naive reference")
    if not np.allclose(
        ours["matched"].auc, naive_matched(frames[frames["split"] == "test"]), atol=1e-9, equal_nan=True
    ):
        raise AssertionError("the matched Cross-AUC differs from the pandas / scikit-learn reference")


def run(quick: bool = False) -> list[Figure]:
    """Time the grid's shift analysis; print its ratio to the scaled naive baseline."""
    frames_per_set = 20_000 if quick else 250_000
    n_boot, repeats = (100, 4) if quick else (1000, 20)
    boot_base, rep_base = (5, 1) if quick else (10, 1)
    settings = NormalisationSettings(repeats=repeats)
    grid = [grid_frames(d, frames_per_set) for d in range(N_DETECTORS)]

    ours = analyse_grid(grid, n_boot, settings)
    _check(ours["detectors"][0], grid[0], settings)
    t_ours = measure(lambda: analyse_grid(grid, n_boot, settings), 1 if quick else 2)

    def timed(fn: Callable[[], _T]) -> tuple[float, _T]:
        t0 = time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, out

    f0 = grid[0]
    t_videos, (v, val) = timed(
        lambda: (_naive_videos(f0[f0["split"] == "test"]), _naive_videos(f0[f0["split"] == "val"]))
    )
    t_opq, _ = timed(lambda: naive_operating_quality(v, val))
    t_free, _ = timed(lambda: naive_normalisation(v, val, 0, settings))
    t_reps, _ = timed(lambda: naive_normalisation(v, val, rep_base, settings))
    t_boot, _ = timed(lambda: naive_bootstrap(v, boot_base))
    t_matched, _ = timed(lambda: naive_matched(f0[f0["split"] == "test"]))
    per_repeat = max(t_reps - t_free, 0.0) / rep_base
    t_naive = N_DETECTORS * (
        t_videos + t_opq + t_free + per_repeat * repeats + t_boot / boot_base * n_boot + t_matched
    )

    n_vid = frames_per_set // 32
    size = (
        f"{N_DETECTORS} detectors x {len(SETS)} test sets x {frames_per_set:,} frames ({n_vid:,} videos of 32), "
        f"{n_boot:,} resamples, R = {repeats}"
    )
    base = duration(
        TOPIC,
        f"naive shift analysis (per-cell sklearn, Python-loop fits, scipy KDE), {size}",
        [t_naive],
        note=f"timed on 1 detector with {boot_base} resamples and {rep_base} repeat, scaled linearly",
    )
    mine = duration(
        TOPIC,
        f"shift analysis of a grid (Scores, video bootstrap, 6 normalisations, operating points, "
        f"calibration, matched Cross-AUC, paired comparisons + Holm), {size}",
        t_ours,
        target="< 60 s" if not quick else "",
    )
    return [base, with_ratio(mine, base)]

"""Confound-matched Cross-AUC: each pair (reals of i, fakes of j) compared on like-for-like samples.

A Cross-AUC entry may be high because the fakes of ``j`` differ from the reals of ``i`` in what a referee
would call nuisance (face size, sharpness, compression, head pose: the per-frame features of
``datamodules.media.confounds``, carried by the score rows), not in the forgery. Matching asks what is
left when the two sides are made alike in those features.

Coarsened exact matching (Iacus, King and Porro, "Causal inference without balance checking: coarsened
exact matching", Political Analysis 20(1), 2012): every feature is cut into ``n_bins`` bins of equal
mass over ALL units of the analysis (the grid's test sets, ranked, ties in one bin; a missing value is a
bin of its own; a feature missing everywhere is left out), so every pair is matched on the same strata.
For a pair, the strata holding both reals of ``i`` and fakes of ``j`` are kept; a kept fake weighs 1, a
kept real of stratum ``s`` weighs ``(m_R / m_F) (m_F^s / m_R^s)`` (the paper's weights, the fakes in the
role of the treated), everything else 0. The matched AUC is the weighted AUC
``sum w_r w_f [s_f > s_r] + 1/2 [s_f = s_r] / (sum w_r sum w_f)``; beside it the share of the pair's
units kept and Kish's effective sample size ``(sum w)^2 / sum w^2`` of each class (Kish, "Survey
Sampling", 1965).

Inverse propensity weights (option ``method="ipw"``): ``P(fake | features)`` by a logistic regression on
the pair's units (standardised features; a missing value is set to the mean and flagged by an indicator
column), fitted by Newton's method; a fake weighs 1, a real ``p / (1 - p)`` (weights to the fakes'
feature distribution, Hirano, Imbens and Ridder, Econometrica 71(4), 2003); every unit is kept.

When every stratum already holds reals and fakes in the pair's overall proportion (balanced by
construction), all weights are 1 and the matched AUC is the raw one; the weights depend on the features'
ranks only, so any increasing transform of a feature or of the scores changes nothing.

Vectorised: the strata are coded once for all units; a pair costs two ``bincount`` over the strata and
one sort of its units (O(n log n)), never a loop over samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.metrics.scores import Scores, as_scores

METHODS = ("cem", "ipw")


@dataclass(frozen=True)
class MatchingSettings:
    """How confounds are matched: ``method`` (``cem`` | ``ipw``) and, for ``cem``, ``n_bins`` per feature."""

    method: str = "cem"
    n_bins: int = 2

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"matching method={self.method!r} is not one of {list(METHODS)}")
        if self.n_bins < 1:
            raise ValueError(f"n_bins={self.n_bins} must be at least 1")


@dataclass(frozen=True)
class MatchedCrossAUC:
    """The matched Cross-AUC of every ordered pair (K x K arrays, rows reals of i, columns fakes of j).

    Attributes:
        datasets: rows and columns, in order.
        features: the features matched on (present for some unit).
        raw: the unweighted AUC of each pair (the Cross-AUC, at the units' level).
        auc: the matched (weighted) AUC; NaN when no stratum holds both classes.
        kept: share of the pair's units (reals of i and fakes of j) with a weight above 0.
        ess_real, ess_fake: Kish's effective sample size of each class's weights.
        n_real, n_fake: the pair's class sizes (its units).
        method: ``cem`` or ``ipw``.
    """

    datasets: list[str]
    features: tuple[str, ...]
    raw: np.ndarray
    auc: np.ndarray
    kept: np.ndarray
    ess_real: np.ndarray
    ess_fake: np.ndarray
    n_real: np.ndarray
    n_fake: np.ndarray
    method: str

    def frame(self, name: str) -> pd.DataFrame:
        """One of the arrays (``auc``, ``kept``, ``raw``, ...) as a DataFrame: index ``real``, columns ``fake``."""
        return pd.DataFrame(
            getattr(self, name),
            index=pd.Index(self.datasets, name="real"),
            columns=pd.Index(self.datasets, name="fake"),
        )


def weighted_auc(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> float:
    """``P_w(s_fake > s_real) + 1/2 P_w(s_fake = s_real)``: the AUC with per-sample weights (NaN when a
    class has no weight). One sort; ties grouped. Equals ``roc_auc_score(label, score, sample_weight=w)``."""
    score = np.asarray(score, np.float64)
    label = np.asarray(label)
    w = np.ones(len(score)) if weight is None else np.asarray(weight, np.float64)
    if not (len(score) == len(label) == len(w)):
        raise ValueError(f"score, label and weight differ in length: {len(score)}, {len(label)}, {len(w)}")
    if np.any(w < 0) or not np.isfinite(w).all():
        raise ValueError("weights must be finite and non-negative")
    _, group = np.unique(score, return_inverse=True)
    fake = label == 1
    w_real = np.bincount(group, weights=np.where(fake, 0.0, w))
    w_fake = np.bincount(group, weights=np.where(fake, w, 0.0))
    total_r, total_f = w_real.sum(), w_fake.sum()
    if total_r <= 0 or total_f <= 0:
        return float("nan")
    below = np.cumsum(w_real) - w_real
    return float(np.sum(w_fake * (below + 0.5 * w_real)) / (total_r * total_f))


def kish_ess(weight: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (0 without weight)."""
    w = np.asarray(weight, np.float64)
    s2 = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / s2 if s2 > 0 else 0.0


def rank_bins(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-mass bins ``0..n_bins-1`` of the finite values of ``x`` by rank (ties share a bin: a value's bin
    is ``floor(n_bins * #{values below it} / n)``); a missing value gets bin ``n_bins``."""
    x = np.asarray(x, np.float64)
    out = np.full(len(x), n_bins, dtype=np.int64)
    ok = np.isfinite(x)
    if ok.any():
        vals, inv, counts = np.unique(x[ok], return_inverse=True, return_counts=True)
        below = np.cumsum(counts) - counts
        out[ok] = (n_bins * below[inv]) // int(ok.sum())
    return out


def strata(x: np.ndarray, n_bins: int) -> np.ndarray:
    """Stratum code of every row of ``x`` ``[n, F]``: its features' :func:`rank_bins` combined (codes 0..S-1)."""
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be [n, F]; got shape {x.shape}")
    if x.shape[1] == 0:
        return np.zeros(len(x), dtype=np.int64)
    bins = np.stack([rank_bins(x[:, f], n_bins) for f in range(x.shape[1])], axis=1)
    return np.unique(bins, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)


def cem_weights(stratum: np.ndarray, fake: np.ndarray) -> np.ndarray:
    """Iacus-King-Porro weights: fakes of matched strata 1, reals ``(m_R / m_F)(m_F^s / m_R^s)``, else 0."""
    stratum = np.asarray(stratum, np.int64)
    fake = np.asarray(fake, bool)
    n_r = np.bincount(stratum[~fake], minlength=stratum.max(initial=-1) + 1)
    n_f = np.bincount(stratum[fake], minlength=len(n_r))
    matched = (n_r > 0) & (n_f > 0)
    m_r, m_f = int(n_r[matched].sum()), int(n_f[matched].sum())
    w = np.zeros(len(stratum))
    if not m_r:
        return w
    ok = matched[stratum]
    w[ok & fake] = 1.0
    real = ok & ~fake
    s = stratum[real]
    w[real] = (m_r / m_f) * (n_f[s] / n_r[s])
    return w


def design(x: np.ndarray) -> np.ndarray:
    """The propensity model's inputs: standardised features (constant ones dropped), a missing value set to
    0 (the mean) with a 0/1 indicator column per feature that has one, and an intercept column."""
    x = np.asarray(x, np.float64)
    cols = [np.ones(len(x))]
    for f in range(x.shape[1]):
        v = x[:, f]
        ok = np.isfinite(v)
        if ok.sum() < 2:
            continue
        sd = v[ok].std()
        if sd > 0:
            cols.append(np.where(ok, (v - v[ok].mean()) / sd, 0.0))
        if not ok.all():
            cols.append((~ok).astype(np.float64))
    return np.stack(cols, axis=1)


def logistic_fit(z: np.ndarray, y: np.ndarray, ridge: float = 1e-8, max_iter: int = 100) -> np.ndarray:
    """Maximum-likelihood logistic regression coefficients of ``y`` on the columns of ``z`` (Newton's method;
    ``ridge`` on every coefficient but the first keeps separated data finite)."""
    z = np.asarray(z, np.float64)
    y = np.asarray(y, np.float64)
    beta = np.zeros(z.shape[1])
    pen = np.full(z.shape[1], ridge)
    pen[0] = 0.0
    for _ in range(max_iter):
        eta = np.clip(z @ beta, -30, 30)
        p = 1 / (1 + np.exp(-eta))
        grad = z.T @ (y - p) - pen * beta
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(pen)
        step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        beta = beta + step
        if np.max(np.abs(step)) < 1e-10:
            break
    return beta


def propensity(x: np.ndarray, fake: np.ndarray) -> np.ndarray:
    """``P(fake | features)`` of every row, from :func:`logistic_fit` on :func:`design` of ``x``."""
    z = design(x)
    beta = logistic_fit(z, np.asarray(fake, np.float64))
    return 1 / (1 + np.exp(-np.clip(z @ beta, -30, 30)))


def ipw_weights(x: np.ndarray, fake: np.ndarray) -> np.ndarray:
    """Fakes 1, reals ``p / (1 - p)`` with ``p`` the :func:`propensity` (weights to the fakes' features)."""
    fake = np.asarray(fake, bool)
    p = propensity(x, fake)
    return np.where(fake, 1.0, p / (1 - p))


def unit_features(scores: Scores, features: Sequence[str], level: str = "video") -> np.ndarray:
    """The features of every unit ``[n_units, F]`` in the units' order: at video level the mean of the video's
    frames that have the feature (NaN when none has); a column the frames lack is all NaN."""
    frames = scores.frames
    x = np.full((len(frames), len(features)), np.nan)
    for f, name in enumerate(features):
        if name in frames.columns:
            x[:, f] = pd.to_numeric(frames[name], errors="coerce").to_numpy(np.float64)
    if level == "frame":
        return x
    video_ids, video_code = scores.require_video()
    n = len(video_ids)
    ok = np.isfinite(x)
    out = np.full((n, len(features)), np.nan)
    for f in range(len(features)):
        total = np.bincount(video_code, weights=np.where(ok[:, f], x[:, f], 0.0), minlength=n)
        count = np.bincount(video_code, weights=ok[:, f].astype(np.float64), minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, f] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def has_features(frames: pd.DataFrame | Scores, features: Sequence[str]) -> bool:
    """Whether any row of the table carries a value of any of ``features``."""
    table = frames.frames if isinstance(frames, Scores) else frames
    return any(
        name in table.columns and pd.to_numeric(table[name], errors="coerce").notna().any()
        for name in features
    )


def matched_cross_auc(
    frames: pd.DataFrame | Scores,
    features: Sequence[str],
    level: str = "video",
    settings: MatchingSettings = MatchingSettings(),
    datasets: Sequence[str] | None = None,
) -> MatchedCrossAUC:
    """The confound-matched Cross-AUC of every ordered pair (see the module docstring).

    Args:
        frames: per-frame scores with the feature columns (a ``Scores`` or a frames table).
        features: the feature columns to match on; those no unit has are left out.
        level: ``video`` (features averaged over the video's frames) or ``frame``.
        settings: ``cem`` (with ``n_bins``) or ``ipw``.
        datasets: rows and columns, in order (default: every dataset, sorted).
    """
    s = as_scores(frames, datasets=datasets, need_video=level == "video")
    u = s.units(level)
    x_all = unit_features(s, list(features), level)
    present = [f for f in range(len(features)) if np.isfinite(x_all[:, f]).any()]
    x = x_all[:, present]
    k = len(u.datasets)
    code = strata(x, settings.n_bins) if settings.method == "cem" else None
    shape = (k, k)
    raw, auc, kept = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    ess_r, ess_f = np.zeros(shape), np.zeros(shape)
    fake = u.label == 1
    n_real = np.bincount(u.dataset_code[~fake], minlength=k)
    n_fake = np.bincount(u.dataset_code[fake], minlength=k)
    for i in range(k):
        if not n_real[i]:
            continue
        reals = ~fake & (u.dataset_code == i)
        for j in range(k):
            if not n_fake[j]:
                continue
            idx = np.flatnonzero(reals | (fake & (u.dataset_code == j)))
            y = fake[idx]
            w = cem_weights(code[idx], y) if code is not None else ipw_weights(x[idx], y)
            raw[i, j] = weighted_auc(u.score[idx], y)
            auc[i, j] = weighted_auc(u.score[idx], y, w)
            kept[i, j] = float(np.mean(w > 0))
            ess_r[i, j], ess_f[i, j] = kish_ess(w[~y]), kish_ess(w[y])
    return MatchedCrossAUC(
        datasets=list(u.datasets),
        features=tuple(features[f] for f in present),
        raw=raw,
        auc=auc,
        kept=kept,
        ess_real=ess_r,
        ess_fake=ess_f,
        n_real=n_real,
        n_fake=n_fake,
        method=settings.method,
    )

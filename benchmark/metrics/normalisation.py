"""Per-domain post-hoc normalisation baselines: how much of a Cross-AUC drop is a mere offset.

Cross-AUC shows THAT a detector's scores move between domains. If each test domain's scores are mapped
through their own increasing transform (fitted without touching the scored videos' labels), every
per-dataset AUC (the diagonal) stays what it was and only the off-diagonal entries move: the part of
``diag_mean - offdiag_mean`` a transform recovers is the part a deployment could calibrate away
(**shift closed**). A detector whose gap closes under label-free standardisation has an *offset*
problem; one whose gap stays has a *ranking* problem (its fakes of one domain rank among the reals of
another whatever the per-domain scale).

Methods (``METHODS``; "logit space" means ``logit(score)``, see :func:`logit`):

* ``raw``: no transform, the leaderboard's matrix.
* ``domain_score`` (label-free, a): each test domain's scores minus their median, divided by their
  inter-quartile range (IQR), computed on ALL the domain's test scores (no label is read: what a
  deployment can do with a batch of unlabelled target data).
* ``domain_logit`` (label-free, a): the same in logit space.
* ``reals_znorm`` (b): z-norm as speaker verification normalises scores (Auckenthaler et al., DSP 2000):
  logit minus the mean of ``k`` labelled REAL calibration videos of the target, divided by their
  standard deviation (population, ``ddof=0``).
* ``fewshot_offset`` (c): one scalar added to the target's logits, the rule of Yang et al. (AAAI 2026,
  arXiv 2602.01973; released code ``AIGI-Det-Calib``, ``supervised_calibration``): from ``k`` labelled
  calibration videos drawn balanced (``k // 2`` reals, ``k // 2`` fakes), a Gaussian kernel density of
  each class's logits (Scott's bandwidth, scipy's ``gaussian_kde`` default), and the threshold ``T`` in
  ``[min, max]`` of those logits maximising the smoothed balanced accuracy ``CDF_real(T) + 1 -
  CDF_fake(T)``; the offset is ``-T`` (a logit ``l`` becomes ``l - T``, so ``T`` maps to 0).
* ``unsup_offset`` (d): one scalar from ``k`` UNLABELLED calibration videos and an assumed fake ratio
  ``pi`` (``fake_ratio``, default 0.5): the quantile rule, ``offset = -quantile(logits, 1 - pi)``
  (numpy's linear interpolation), so a fraction ``pi`` of the calibration videos lands above 0.
  (Yang et al.'s own label-free rule is another one: a moment balance of a kernel density.)

Protocol (calibration videos are never scored): a test domain whose non-test split is in the scores
(``split == "val"``: the source domain) is calibrated from that split and all its test videos are
scored. Every other domain is **cross-fitted**: its test videos are split into ``folds`` folds,
stratified by label and grouped by video (the score store has no identity column, so two videos of
one person can fall in different folds), and each fold is scored with a transform fitted on
calibration videos drawn from the OTHER folds. ``k`` and the number of ``repeats`` are settings; each
repeat draws new folds and calibration videos from ``SeedSequence([seed, repeat, domain])``, so the
draws depend only on the seed and the videos (every detector scored on the same videos gets the same
draws). Under cross-fitting each fold has its own transform, so the diagonal can move a little; shift
closed is therefore measured against the RAW diagonal:
``(offdiag_mean_after - offdiag_mean_raw) / (diag_mean_raw - offdiag_mean_raw)`` (NaN when the raw
gap is not positive: no shift to close).

A fit that the calibration videos cannot support (no real for ``reals_znorm``, fewer than two of a
class for ``fewshot_offset``) leaves that domain's row and column NaN in that repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import ndtr

from benchmark.metrics.binary import as_arrays
from benchmark.metrics.cross_auc import matrix_from_units, summarize_arrays
from benchmark.metrics.scores import Scores, Units, as_scores

#: a score of exactly 0 or 1 (a saturated float32 sigmoid) is placed just beyond float32's resolution
LOGIT_LO = 2.0**-150  # below float32's smallest subnormal: logit -104.0
LOGIT_HI = 1.0 - 2.0**-25  # above float32's largest value below 1 (1 - 2**-24): logit 17.3
_GRID = 257  # grid points of the few-shot offset's search before the bounded refinement

__all__ = [
    "METHODS",
    "METHOD_NAMES",
    "Draw",
    "Method",
    "NormalisationResult",
    "NormalisationSettings",
    "fewshot_offset",
    "logit",
    "normalisation_analysis",
    "quantile_offset",
    "robust_standardisation",
    "shift_closed",
    "znorm",
]


# --------------------------------------------------------------------------- functional core


def logit(scores) -> np.ndarray:
    """``log(p / (1 - p))`` of probabilities, exact 0 and 1 clipped to ``LOGIT_LO`` / ``LOGIT_HI``.

    Strictly increasing on float32 probabilities (a float32 sigmoid's outputs), so no two distinct stored
    scores merge and every AUC is unchanged.
    """
    p = np.clip(np.asarray(scores, dtype=np.float64), LOGIT_LO, LOGIT_HI)
    return np.log(p) - np.log1p(-p)


def keep_order(raw: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``z`` (an increasing transform of ``raw``, computed in floating point) with the order of ``raw`` kept
    exactly: where rounding merged or swapped two distinct values (the logit of two video means one ulp
    apart can be one float), the larger is moved to the next float above the smaller. Equal values of
    ``raw`` stay equal. Without such a collision ``z`` is returned as it is."""
    raw, z = np.asarray(raw, np.float64), np.asarray(z, np.float64)
    order = np.argsort(raw, kind="stable")
    r, v = raw[order], z[order]
    if not np.any((np.diff(r) > 0) & (np.diff(v) <= 0)):
        return z
    v = v.copy()
    for i in range(1, len(v)):  # only on a collision, which is rare: a plain loop keeps the cascade exact
        if r[i] == r[i - 1]:
            v[i] = v[i - 1]
        elif v[i] <= v[i - 1]:
            v[i] = np.nextafter(v[i - 1], np.inf)
    out = np.empty_like(v)
    out[order] = v
    return out


def robust_standardisation(values) -> tuple[float, float]:
    """``(median, IQR)`` of ``values`` (numpy's linear percentiles); the IQR is 1 when it is 0."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) == 0:
        raise ValueError("robust standardisation needs at least one value")
    q25, med, q75 = np.percentile(x, [25, 50, 75])
    iqr = q75 - q25
    return float(med), float(iqr) if iqr > 0 else 1.0


def znorm(real_values) -> tuple[float, float]:
    """``(mean, std)`` (population std, ``ddof=0``) of the calibration REALS; the std is 1 when it is 0."""
    x = np.asarray(real_values, dtype=np.float64)
    if len(x) == 0:
        raise ValueError("z-norm needs at least one real calibration video")
    sd = float(x.std())
    return float(x.mean()), sd if sd > 0 else 1.0


def _scott_bandwidth(x: np.ndarray) -> float:
    """scipy ``gaussian_kde``'s default bandwidth in 1-D: ``std(ddof=1) * n ** (-1/5)`` (floored above 0)."""
    h = float(np.std(x, ddof=1)) * len(x) ** -0.2
    return max(h, 1e-12 * max(1.0, float(np.abs(x).max())))


def fewshot_offset(labels, logits) -> float:
    """Yang et al.'s few-shot logit offset: ``-T``, ``T`` maximising the kernel-smoothed balanced accuracy.

    ``F(T) = CDF_real(T) + 1 - CDF_fake(T)`` with Gaussian kernel CDFs of each class's logits (Scott's
    bandwidth), over ``T`` in ``[min, max]`` of ``logits``: a grid of ``_GRID`` points, then a bounded
    scalar search between the best point's neighbours; where ``F`` is flat at its maximum over several
    grid points (classes far apart), the middle of that run. Needs at least two videos of each class.
    """
    y, x = as_arrays(labels, logits)
    r, f = x[y == 0], x[y == 1]
    if len(r) < 2 or len(f) < 2:
        raise ValueError(
            f"the few-shot offset needs at least two reals and two fakes; got {len(r)} and {len(f)}"
        )
    h0, h1 = _scott_bandwidth(r), _scott_bandwidth(f)
    lo, hi = float(x.min()), float(x.max())

    def gain(t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(t)[:, None]
        return ndtr((t - r) / h0).mean(axis=1) - ndtr((t - f) / h1).mean(axis=1)

    grid = np.linspace(lo, hi, _GRID)
    vals = gain(grid)
    best = int(np.argmax(vals))
    top = vals >= vals[best] - 1e-12
    end = best
    while end + 1 < _GRID and top[end + 1]:
        end += 1
    if end > best:  # a plateau: its middle
        return -float((grid[best] + grid[end]) / 2)
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, _GRID - 1)]
    res = minimize_scalar(
        lambda t: -float(gain(np.array(t))[0]),
        bounds=(a, b),
        method="bounded",
        options={"xatol": 1e-12 * max(1.0, hi - lo)},
    )
    t = float(res.x) if -res.fun >= vals[best] else float(grid[best])
    return -t


def quantile_offset(logits, fake_ratio: float = 0.5) -> float:
    """The unsupervised offset: ``-quantile(logits, 1 - fake_ratio)`` (linear interpolation)."""
    if not 0 < fake_ratio < 1:
        raise ValueError(f"fake_ratio={fake_ratio} must be in (0, 1)")
    x = np.asarray(logits, dtype=np.float64)
    if len(x) == 0:
        raise ValueError("the unsupervised offset needs at least one calibration video")
    return -float(np.quantile(x, 1 - fake_ratio))


def shift_closed(diag_raw, offdiag_raw, offdiag_after) -> np.ndarray | float:
    """The share of the raw gap ``diag_raw - offdiag_raw`` a normalisation recovers (NaN without a gap).

    ``(offdiag_after - offdiag_raw) / (diag_raw - offdiag_raw)``: 1 = every off-diagonal entry back at
    the diagonal's level on average, 0 = no change, negative = worse. Works elementwise on arrays.
    """
    gap = np.asarray(diag_raw, dtype=np.float64) - np.asarray(offdiag_raw, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(gap > 0, (np.asarray(offdiag_after) - offdiag_raw) / np.where(gap > 0, gap, 1), np.nan)
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Method:
    """One normalisation baseline.

    Attributes:
        name: its key. title: the row name on a page. uses: what it reads, in words.
        space: ``score`` or ``logit`` (None: no transform).
        data: what it is fitted on: ``domain`` (all the domain's test scores, no label), ``reals``
            (``k`` labelled reals), ``balanced`` (``k // 2`` reals + ``k // 2`` fakes), ``unlabelled``
            (``k`` videos, labels unread), or None (no fit).
        fit: ``(labels, values, settings) -> (center, scale)``; a unit becomes ``(value - center) / scale``.
    """

    name: str
    title: str
    uses: str
    space: str | None
    data: str | None
    fit: Callable[[np.ndarray, np.ndarray, NormalisationSettings], tuple[float, float]] | None


@dataclass(frozen=True)
class NormalisationSettings:
    """``k`` calibration videos per fit, ``repeats`` draws, ``folds`` for cross-fitting, the assumed
    ``fake_ratio`` of the unsupervised offset and the ``seed`` of every draw."""

    k: int = 50
    repeats: int = 20
    folds: int = 5
    fake_ratio: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.k < 1 or self.repeats < 1 or self.folds < 2:
            raise ValueError(f"need k >= 1, repeats >= 1 and folds >= 2; got {self}")
        if not 0 < self.fake_ratio < 1:
            raise ValueError(f"fake_ratio={self.fake_ratio} must be in (0, 1)")


def _domain(y: np.ndarray, x: np.ndarray, st: NormalisationSettings) -> tuple[float, float]:
    return robust_standardisation(x)


def _reals(y: np.ndarray, x: np.ndarray, st: NormalisationSettings) -> tuple[float, float]:
    return znorm(x[y == 0])


def _balanced(y: np.ndarray, x: np.ndarray, st: NormalisationSettings) -> tuple[float, float]:
    return -fewshot_offset(y, x), 1.0


def _unlabelled(y: np.ndarray, x: np.ndarray, st: NormalisationSettings) -> tuple[float, float]:
    return -quantile_offset(x, st.fake_ratio), 1.0


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("raw", "none (raw scores)", "nothing", None, None, None),
        Method(
            "domain_score",
            "domain standardisation, scores",
            "all test scores of the domain, no label",
            "score",
            "domain",
            _domain,
        ),
        Method(
            "domain_logit",
            "domain standardisation, logits",
            "all test scores of the domain, no label",
            "logit",
            "domain",
            _domain,
        ),
        Method("reals_znorm", "reals-only z-norm, logits", "k labelled reals", "logit", "reals", _reals),
        Method(
            "fewshot_offset",
            "few-shot logit offset (Yang et al.)",
            "k labelled videos, half real",
            "logit",
            "balanced",
            _balanced,
        ),
        Method(
            "unsup_offset",
            "unsupervised logit offset (quantile)",
            "k unlabelled videos + assumed fake ratio",
            "logit",
            "unlabelled",
            _unlabelled,
        ),
    )
}
METHOD_NAMES = tuple(METHODS)


# --------------------------------------------------------------------------- protocol


@dataclass(frozen=True)
class Draw:
    """One fit's videos: repeat, domain (index into ``datasets``), fold, where the calibration videos come
    from (``val`` or ``test``), the scored test videos and, per ``Method.data``, the calibration videos
    (numbers within the domain's pool: its val videos for ``val``, its test videos for ``test``)."""

    repeat: int
    domain: int
    fold: int
    source: str
    scored: np.ndarray
    calibration: dict[str, np.ndarray]


@dataclass
class NormalisationResult:
    """Cross-AUC matrices after each normalisation, every repeat, and the draws that produced them.

    Attributes:
        datasets: matrix order. settings: the protocol's settings.
        raw: the K x K video-level Cross-AUC matrix of the raw scores.
        matrices: per method, ``[repeats, K, K]`` matrices (label-free methods: the same every repeat).
        draws: every fit's videos (tests check the protocol on them).
        test_ids, pool_ids: per domain, the video ids behind the numbers of ``Draw.scored`` and of the
            ``val`` calibration videos (None for a cross-fitted domain).
        source: per domain, ``val`` or ``test`` (cross-fitted).
    """

    datasets: list[str]
    settings: NormalisationSettings
    raw: np.ndarray
    matrices: dict[str, np.ndarray]
    draws: list[Draw]
    test_ids: list[np.ndarray]
    pool_ids: list[np.ndarray | None]
    source: list[str]
    _summaries: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    def matrix(self, method: str) -> pd.DataFrame:
        """The mean over repeats of ``method``'s matrix (rows: reals of, columns: fakes of)."""
        with np.errstate(invalid="ignore"):
            m = (
                np.nanmean(self.matrices[method], axis=0)
                if self.settings.repeats > 1
                else self.matrices[method][0]
            )
        idx = pd.Index(self.datasets, name="real")
        return pd.DataFrame(m, index=idx, columns=pd.Index(self.datasets, name="fake"))

    def summary(self, method: str) -> dict[str, np.ndarray]:
        """Per repeat: ``diag_mean``, ``offdiag_mean``, ``worst``, ``shift_gap`` and ``shift_closed``."""
        if method not in self._summaries:
            raw = summarize_arrays(self.raw[None])
            s = summarize_arrays(self.matrices[method])
            s["shift_closed"] = np.broadcast_to(
                shift_closed(raw["diag_mean"], raw["offdiag_mean"], s["offdiag_mean"]),
                s["offdiag_mean"].shape,
            ).astype(np.float64)
            self._summaries[method] = s
        return self._summaries[method]


def _domain_pools(
    u: Units, val: Scores | None, test_ids: list[np.ndarray], agg: str
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """Per test domain, its val videos ``(labels, scores, ids)`` (None when the scores have none).

    A val video whose id is also a scored test id is left out (it would be scored).
    """
    pools: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = [None] * len(u.datasets)
    if val is None:
        return pools
    vu = val.units("video", agg)
    val_ids, _ = val.require_video()
    for j, name in enumerate(u.datasets):
        if name not in vu.datasets:
            continue
        m = np.flatnonzero(vu.dataset_code == vu.datasets.index(name))
        ids = val_ids[m]
        keep = ~np.isin(ids, test_ids[j])
        if keep.any():
            pools[j] = (vu.label[m][keep], vu.score[m][keep], ids[keep])
    return pools


def _first(order: np.ndarray, labels: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """The calibration videos of each ``Method.data`` from a pool in random ``order``: the first ones."""
    reals = order[labels[order] == 0]
    fakes = order[labels[order] == 1]
    half = k // 2
    return {
        "reals": reals[:k],
        "balanced": np.concatenate([reals[:half], fakes[:half]]),
        "unlabelled": order[:k],
    }


def _draws(
    settings: NormalisationSettings,
    repeat: int,
    j: int,
    test_labels: np.ndarray,
    pool: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
) -> list[Draw]:
    rng = np.random.default_rng(np.random.SeedSequence([settings.seed, repeat, j]))
    n = len(test_labels)
    if pool is not None:  # calibrate from the domain's own non-test split; score every test video
        order = rng.permutation(len(pool[0]))
        return [Draw(repeat, j, 0, "val", np.arange(n), _first(order, pool[0], settings.k))]
    order = rng.permutation(n)
    fold = np.empty(n, dtype=np.int64)
    for lab in (0, 1):  # stratified: the reals (fakes) of ``order`` are dealt to the folds in turn
        sel = order[test_labels[order] == lab]
        fold[sel] = np.arange(len(sel)) % settings.folds
    out = []
    for f in range(settings.folds):
        scored = np.flatnonzero(fold == f)
        if len(scored):
            rest = order[fold[order] != f]
            out.append(Draw(repeat, j, f, "test", scored, _first(rest, test_labels, settings.k)))
    return out


def normalisation_analysis(
    test: pd.DataFrame | Scores,
    val: pd.DataFrame | Scores | None = None,
    settings: NormalisationSettings | None = None,
    methods: Iterable[str] = METHOD_NAMES,
    agg: str = "mean",
    datasets: Iterable[str] | None = None,
) -> NormalisationResult:
    """The video-level Cross-AUC matrix after each per-domain normalisation, over ``settings.repeats``.

    Args:
        test: the test split's frames (or :class:`Scores`), ``video_id`` required.
        val: the non-test split's frames (``split == "val"`` rows), or None: a test domain with val
            videos calibrates from them, every other one is cross-fitted (module docstring).
        settings: ``k``, ``repeats``, ``folds``, ``fake_ratio``, ``seed`` (defaults: 50, 20, 5, 0.5, 0).
        methods: names from ``METHODS`` (``raw`` is always computed).
        agg: the video score's aggregation.
        datasets: matrix order (default: sorted names).
    """
    settings = settings or NormalisationSettings()
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown normalisation method(s) {unknown}; known: {list(METHOD_NAMES)}")
    s = as_scores(test, datasets=datasets, need_video=True)
    u = s.units("video", agg)
    has_val = val is not None and not (isinstance(val, pd.DataFrame) and val.empty)
    vs = as_scores(val, need_video=True) if has_val else None
    k = len(u.datasets)
    idx = [np.flatnonzero(u.dataset_code == j) for j in range(k)]  # in video-number order
    video_ids, _ = s.require_video()
    test_ids = [video_ids[i] for i in idx]
    pools = _domain_pools(u, vs, test_ids, agg)
    raw = matrix_from_units(u)
    logits = logit(u.score)
    draws = [
        d
        for r in range(settings.repeats)
        for j in range(k)
        for d in _draws(settings, r, j, u.label[idx[j]], pools[j])
    ]

    matrices = {"raw": np.broadcast_to(raw, (settings.repeats, k, k)).copy()}
    for name in dict.fromkeys(methods):
        m = METHODS[name]
        if m.fit is None or m.data is None:  # no fit: the raw matrix is its result
            continue
        data = m.data
        values = logits if m.space == "logit" else u.score
        if m.data == "domain":  # label-free, on the domain's own test scores: one transform, every repeat
            z = np.empty_like(values)
            for j in range(k):
                c, sc = m.fit(u.label[idx[j]], values[idx[j]], settings)
                z[idx[j]] = keep_order(u.score[idx[j]], (values[idx[j]] - c) / sc)
            matrices[name] = np.broadcast_to(
                matrix_from_units(replace(u, score=z)), (settings.repeats, k, k)
            ).copy()
            continue
        pool_values = [None if p is None else (logit(p[1]) if m.space == "logit" else p[1]) for p in pools]
        out = np.empty((settings.repeats, k, k))
        by_repeat: dict[int, list[Draw]] = {}
        for d in draws:
            by_repeat.setdefault(d.repeat, []).append(d)
        for r in range(settings.repeats):
            z = values.copy()
            undefined = np.zeros(k, dtype=bool)
            for d in by_repeat.get(r, []):
                j = d.domain
                cal = d.calibration[data]
                pool, pool_x = pools[j], pool_values[j]
                if d.source == "val":
                    # a val draw is made only for a domain with a val pool (_draws)
                    assert pool is not None and pool_x is not None
                    y_cal, x_cal = pool[0][cal], pool_x[cal]
                else:
                    y_cal, x_cal = u.label[idx[j]][cal], values[idx[j]][cal]
                try:
                    c, sc = m.fit(y_cal, x_cal, settings)
                except ValueError:
                    undefined[j] = True
                    continue
                units_j = idx[j][d.scored]
                z[units_j] = keep_order(u.score[units_j], (values[units_j] - c) / sc)
            a = matrix_from_units(replace(u, score=z))
            a[undefined, :] = np.nan
            a[:, undefined] = np.nan
            out[r] = a
        matrices[name] = out
    return NormalisationResult(
        datasets=list(u.datasets),
        settings=settings,
        raw=raw,
        matrices=matrices,
        draws=draws,
        test_ids=test_ids,
        pool_ids=[None if p is None else p[2] for p in pools],
        source=["val" if p is not None else "test" for p in pools],
    )

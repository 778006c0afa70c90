"""Beyond measuring the shift: operating points, calibration quality, separation, per-domain normalisation
and paired comparisons, against independent references (scikit-learn, scipy, statsmodels, exact
Fractions) and with property tests."""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.stats import iqr, ttest_rel, wasserstein_distance
from sklearn.metrics import (
    balanced_accuracy_score,
    brier_score_loss,
    roc_curve,
)
from sklearn.metrics import log_loss as sk_log_loss
from statsmodels.stats.multitest import multipletests

from benchmark.metrics import (
    METHOD_NAMES,
    NormalisationSettings,
    bootstrap,
    bootstrap_p_value,
    brier_score,
    cross_auc_matrix,
    ece,
    fewshot_offset,
    holm,
    log_loss,
    logit,
    normalisation_analysis,
    paired_bootstrap,
    paired_difference,
    quantile_offset,
    rates_at_threshold,
    robust_standardisation,
    seed_ttest,
    separation,
    shift_closed,
    threshold_at_fpr,
    tpr_at_fpr,
    znorm,
)
from benchmark.metrics.normalisation import keep_order
from tests.exact_reference import exact_video_scores
from tests.shift_reference import exact_ece, reference_normalised_matrix, scipy_balanced_gain

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tie_arrays(rng: np.random.Generator, n: int, levels: int = 5) -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, n)
    y[0], y[-1] = 0, 1
    s = rng.integers(0, levels, n).astype(float) / levels + 0.3 * y * rng.integers(0, 2, n)
    return y, np.clip(s, 0, 1)


# --------------------------------------------------------------------------- operating points


@pytest.mark.parametrize("seed", range(8))
def test_thresholds_and_oracle_tpr_match_sklearn_roc_curve(seed):
    rng = np.random.default_rng(seed)
    y, s = tie_arrays(rng, [4, 10, 40, 200, 7, 3, 60, 500][seed], [1000, 3, 5, 1000, 2, 10, 1, 50][seed])
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    for alpha in (0.0, 0.01, 0.05, 0.2, 0.5, 0.99, 1.0):
        k = int(np.flatnonzero(fpr <= alpha)[-1])
        assert threshold_at_fpr(y, s, alpha) == thr[k]
        assert tpr_at_fpr(y, s, alpha) == pytest.approx(tpr[fpr <= alpha].max(), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_rates_at_threshold_match_sklearn(seed):
    rng = np.random.default_rng(10 + seed)
    y, s = tie_arrays(rng, [5, 30, 300, 8, 50, 1000][seed], [2, 5, 1000, 3, 10, 20][seed])
    for t in (-np.inf, 0.0, 0.2, 0.4, 0.5, 1.0, np.inf):
        pred = (s >= t).astype(int)
        tpr, fpr, ba = rates_at_threshold(y, s, t)
        assert tpr == pytest.approx(pred[y == 1].mean(), abs=1e-12)
        assert fpr == pytest.approx(pred[y == 0].mean(), abs=1e-12)
        assert ba == pytest.approx(balanced_accuracy_score(y, pred), abs=1e-12)
    assert np.isnan(rates_at_threshold([1, 1], [0.2, 0.7], 0.5)[1])  # no reals: FPR undefined
    with pytest.raises(ValueError, match="fpr=1.5"):
        threshold_at_fpr([0, 1], [0.1, 0.9], 1.5)


def test_a_target_below_one_over_n_reals_is_met_at_fpr_zero():
    y, s = [0, 0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.6, 0.5, 0.9]
    assert threshold_at_fpr(y, s, 0.01) == 0.9  # the highest fake above every real
    assert tpr_at_fpr(y, s, 0.01) == 0.5
    assert threshold_at_fpr([0, 0, 1], [0.2, 0.9, 0.5], 0.01) == np.inf  # no fake above every real


# --------------------------------------------------------------------------- calibration quality


@pytest.mark.parametrize("seed", range(6))
def test_brier_and_log_loss_match_sklearn_ece_matches_exact_reference(seed):
    rng = np.random.default_rng(20 + seed)
    y, s = tie_arrays(rng, [5, 40, 300, 16, 100, 31][seed], [2, 5, 1000, 3, 1, 7][seed])
    assert brier_score(y, s) == pytest.approx(brier_score_loss(y, s), abs=1e-12)
    assert log_loss(y, s) == pytest.approx(sk_log_loss(y, s, labels=[0, 1]), abs=1e-9)
    for b in (1, 3, 15, 50):
        assert ece(y, s, b) == pytest.approx(float(exact_ece(y, s, b)), abs=1e-12)


@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 8)), min_size=1, max_size=40), st.randoms())
@FAST
def test_ece_does_not_depend_on_the_order_of_tied_units(pairs, rnd):
    y = np.array([p[0] for p in pairs])
    s = np.array([p[1] for p in pairs], dtype=float) / 8
    perm = list(range(len(y)))
    rnd.shuffle(perm)
    assert ece(y, s) == ece(y[perm], s[perm])
    assert 0 <= ece(y, s) <= 1


def test_ece_bins_are_equal_mass_and_perfect_calibration_is_zero():
    # 30 distinct scores, 15 bins of 2: each bin's labels average to its scores' mean
    s = np.repeat(np.linspace(0.05, 0.95, 15), 2) + np.tile([-0.01, 0.01], 15)
    y = np.zeros(30)
    assert ece(y, s) == pytest.approx(np.mean(s), abs=1e-12)  # every bin's gap is its mean score
    s2 = np.array([0.5] * 4)
    assert ece([0, 1, 0, 1], s2) == 0.0  # one bin (all tied) with mean label 0.5
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        ece([0, 1], [0.2, 1.2])


@pytest.mark.parametrize("seed", range(4))
def test_separation_is_scipy_wasserstein_between_reals_and_fakes(seed):
    rng = np.random.default_rng(30 + seed)
    y, s = tie_arrays(rng, [6, 50, 400, 20][seed], [3, 1000, 10, 2][seed])
    assert separation(y, s) == pytest.approx(wasserstein_distance(s[y == 0], s[y == 1]), abs=1e-12)
    assert separation([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0]) == 1.0
    assert np.isnan(separation([1, 1], [0.2, 0.3]))


# --------------------------------------------------------------------------- normalisation: functions


def test_logit_is_strictly_increasing_on_float32_probabilities_including_0_and_1():
    p = np.unique(
        np.r_[0.0, 1.0, np.random.default_rng(0).random(5000), 1e-30, 1 - 2.0**-24].astype(np.float32)
    )
    z = logit(p.astype(np.float64))
    assert np.isfinite(z).all() and (np.diff(z) > 0).all()
    assert logit([0.5])[0] == 0.0
    assert logit([0.25])[0] == pytest.approx(np.log(1 / 3), abs=1e-15)


def test_fits_match_their_textbook_definitions():
    x = np.random.default_rng(1).normal(size=41)
    med, scale = robust_standardisation(x)
    assert med == statistics.median(x) and scale == pytest.approx(iqr(x), abs=1e-12)
    assert robust_standardisation([2.0, 2.0, 2.0]) == (2.0, 1.0)  # IQR 0: scale 1
    mean, sd = znorm(x)
    assert mean == pytest.approx(statistics.fmean(x), abs=1e-12) and sd == pytest.approx(statistics.pstdev(x))
    for q in (0.1, 0.5, 0.7):
        h = (len(x) - 1) * (1 - q)  # numpy's default ("linear", Hyndman-Fan 7), written out
        xs = np.sort(x)
        lo = int(np.floor(h))
        expect = xs[lo] + (h - lo) * (xs[min(lo + 1, len(xs) - 1)] - xs[lo])
        assert quantile_offset(x, q) == pytest.approx(-expect, abs=1e-12)
        assert np.mean(x + quantile_offset(x, q) > 0) == pytest.approx(q, abs=1.5 / len(x))
    assert shift_closed(0.9, 0.6, 0.75) == pytest.approx(0.5)
    assert np.isnan(shift_closed(0.6, 0.7, 0.9))  # no gap to close


@pytest.mark.parametrize("seed", range(8))
def test_fewshot_offset_maximises_scipys_kernel_balanced_accuracy(seed):
    """Yang et al.'s rule (released code: scipy gaussian_kde per class, bounded search of
    CDF0(T) + 1 - CDF1(T) on [min, max]): ours reaches the global maximum of scipy's objective, found
    here on a dense grid, and equals scipy's bounded search where the objective has one maximum."""
    rng = np.random.default_rng(40 + seed)
    n = [6, 10, 25, 50, 4, 12, 30, 8][seed]
    y = np.r_[np.zeros(n, int), np.ones(n, int)]
    x = np.r_[rng.normal(0, 1, n), rng.normal([3, 1, 2, 0.5, 4, 1.5, 2.5, 6][seed], 1.3, n)]
    gain = scipy_balanced_gain(y, x)
    t = -fewshot_offset(y, x)
    grid = np.linspace(x.min(), x.max(), 4001)
    best = max(gain(g) for g in grid)
    assert gain(t) >= best - 1e-9
    assert x.min() <= t <= x.max()
    res = minimize_scalar(lambda v: -gain(v), bounds=(x.min(), x.max()), method="bounded")
    if abs(-res.fun - best) < 1e-9:  # scipy's local search found the global maximum: same threshold
        assert t == pytest.approx(res.x, abs=1e-4)
    with pytest.raises(ValueError, match="at least two reals and two fakes"):
        fewshot_offset([0, 1, 1], [0.1, 0.5, 0.7])


# --------------------------------------------------------------------------- normalisation: protocol


def domain_frames(
    rng: np.random.Generator,
    shifts: dict[str, float],
    n_videos: int = 16,
    frames: int = 2,
    split: str = "test",
    decimals: int | None = None,
) -> pd.DataFrame:
    rows = []
    for d, c in shifts.items():
        for v in range(n_videos):
            lab = v % 2
            base = rng.normal(1.2 * lab + c, 1.0)
            for f in range(frames):
                s = float(1 / (1 + np.exp(-(base + rng.normal(0, 0.3)))))
                s = s if decimals is None else round(s, decimals)
                vid = f"{d}/{split}/{lab}/{v}"
                rows.append((d, split, vid, f"{vid}/{f}", lab, s))
    return pd.DataFrame(rows, columns=["dataset", "split", "video_id", "sample_id", "label", "score"])


SHIFTS = {"A": 0.0, "B": 1.5, "C": -1.0}


def test_pure_offset_is_fully_closed_by_label_free_standardisation():
    """Domains whose scores differ ONLY by a per-domain shift: standardisation maps them onto one another,
    every Cross-AUC entry becomes the common per-dataset AUC and shift closed = 100 %."""
    rng = np.random.default_rng(7)
    base_l = rng.normal(size=40) + np.tile([0.0, 1.0], 20)  # distinct logits, videos of one frame
    lab = np.tile([0, 1], 20)
    rows_l, rows_s = [], []
    for d, c in {"A": 0.0, "B": 2.5, "C": -1.75}.items():
        for v in range(40):
            vid = f"{d}/{lab[v]}/{v}"
            rows_l.append((d, vid, lab[v], 1 / (1 + np.exp(-(base_l[v] + c)))))
    # score-space shift on dyadic values: exact arithmetic, ties included
    base_s = np.tile(np.arange(10) / 64, 4) + np.repeat([0, 0, 1 / 64, 1 / 32], 10) * np.tile([0, 1], 20)
    for d, c in {"A": 0.0, "B": 0.25, "C": 0.125}.items():
        for v in range(40):
            rows_s.append((d, f"{d}/{lab[v]}/{v}", lab[v], base_s[v] + c))
    for rows, method in ((rows_l, "domain_logit"), (rows_s, "domain_score")):
        fr = pd.DataFrame(rows, columns=["dataset", "video_id", "label", "score"])
        res = normalisation_analysis(fr, settings=NormalisationSettings(repeats=2), methods=[method])
        raw = res.raw
        assert raw[0, 0] == raw[1, 1] == raw[2, 2] and raw[1, 0] != raw[0, 0]  # a shift, same diagonal
        a = res.matrices[method]
        np.testing.assert_allclose(a, raw[0, 0], rtol=0, atol=1e-12)
        np.testing.assert_allclose(res.summary(method)["shift_closed"], 1.0, rtol=0, atol=1e-12)


@st.composite
def shifted_tables(draw):
    seed = draw(st.integers(0, 10_000))
    n = draw(st.integers(4, 14))
    decimals = draw(st.sampled_from([None, 1, 2]))
    k = draw(st.integers(1, 12))
    folds = draw(st.integers(2, 4))
    return seed, n, decimals, k, folds


@given(shifted_tables())
@example((101, 11, 2, 1, 2))  # video means 0.145 and 0.14500000000000002, one float apart after the logit
@FAST
def test_per_domain_transforms_keep_the_diagonal_and_calibration_videos_are_never_scored(case):
    seed, n, decimals, k, folds = case
    rng = np.random.default_rng(seed)
    test = domain_frames(rng, SHIFTS, n_videos=n, decimals=decimals)
    val = domain_frames(rng, {"A": 0.0}, n_videos=n, split="val", decimals=decimals)
    st_ = NormalisationSettings(k=k, repeats=3, folds=folds, seed=seed)
    res = normalisation_analysis(test, val, settings=st_, datasets=["A", "B", "C"])
    assert res.source == ["val", "test", "test"]
    diag = np.diag(res.raw)
    for m in METHOD_NAMES:  # one transform per domain (label-free, or calibrated from val): diagonal kept
        for r in range(st_.repeats):
            d = np.diag(res.matrices[m][r])
            if m in ("raw", "domain_score", "domain_logit"):
                np.testing.assert_array_equal(d, diag)
            elif np.isfinite(d[0]):
                assert d[0] == diag[0]  # domain A: calibrated from its val split, one transform
    for dr in res.draws:
        scored = set(res.test_ids[dr.domain][dr.scored].tolist())
        pool = res.pool_ids[dr.domain] if dr.source == "val" else res.test_ids[dr.domain]
        for kind, cal in dr.calibration.items():
            ids = set(pool[cal].tolist())
            assert not ids & scored, (kind, dr)  # calibration videos are never scored
            limit = {"reals": k, "balanced": 2 * (k // 2), "unlabelled": k}[kind]
            assert len(cal) <= limit and len(set(cal.tolist())) == len(cal)
    for r in range(st_.repeats):  # every test video is scored exactly once per repeat
        for j in range(3):
            scored = np.concatenate([d.scored for d in res.draws if d.repeat == r and d.domain == j])
            assert sorted(scored.tolist()) == list(range(len(res.test_ids[j])))


def test_draws_depend_only_on_the_seed_and_the_videos():
    rng = np.random.default_rng(3)
    test = domain_frames(rng, SHIFTS)
    other = test.assign(score=np.random.default_rng(4).random(len(test)))  # another detector, same videos
    s = NormalisationSettings(k=6, repeats=4, folds=3, seed=11)
    a, b = normalisation_analysis(test, settings=s), normalisation_analysis(other, settings=s)
    c = normalisation_analysis(test, settings=NormalisationSettings(k=6, repeats=4, folds=3, seed=12))
    same = [
        np.array_equal(x.scored, y.scored)
        and all(np.array_equal(x.calibration[t], y.calibration[t]) for t in x.calibration)
        for x, y in zip(a.draws, b.draws, strict=True)
    ]
    assert all(same)
    assert not all(np.array_equal(x.scored, y.scored) for x, y in zip(a.draws, c.draws, strict=True))


@pytest.mark.parametrize("method", [m for m in METHOD_NAMES if m != "raw"])
def test_normalised_matrices_match_an_independent_recomputation(method):
    rng = np.random.default_rng(5)
    test = domain_frames(rng, SHIFTS, n_videos=20, frames=3)
    val = domain_frames(rng, {"A": 0.0}, n_videos=12, split="val")
    s = NormalisationSettings(k=8, repeats=3, folds=3, seed=2)
    res = normalisation_analysis(test, val, settings=s, methods=[method], datasets=["A", "B", "C"])
    for r in range(s.repeats):
        ref = reference_normalised_matrix(test, val, res, method, r)
        # few-shot offsets: the reference's grid maximiser lies within a grid step of ours
        tol = 0.02 if method == "fewshot_offset" else 1e-12
        np.testing.assert_allclose(res.matrices[method][r], ref, rtol=0, atol=tol)
    np.testing.assert_allclose(res.raw, cross_auc_matrix(test, datasets=["A", "B", "C"]).to_numpy(), atol=0)


def test_a_fit_the_calibration_videos_cannot_support_leaves_nan():
    rng = np.random.default_rng(9)
    test = domain_frames(rng, {"A": 0.0, "B": 1.0}, n_videos=4)  # 2 reals + 2 fakes per domain
    res = normalisation_analysis(test, settings=NormalisationSettings(k=4, repeats=2, folds=2))
    # cross-fitting leaves one fake per out-of-fold pool: the few-shot offset needs two of each class
    assert np.isnan(res.matrices["fewshot_offset"]).all()
    assert np.isfinite(res.matrices["reals_znorm"]).all()
    with pytest.raises(ValueError, match="unknown normalisation method"):
        normalisation_analysis(test, methods=["zscore"])


# --------------------------------------------------------------------------- paired comparisons


@pytest.mark.parametrize("seed", range(5))
def test_holm_matches_statsmodels(seed):
    rng = np.random.default_rng(50 + seed)
    p = np.round(rng.random([1, 3, 10, 40, 7][seed]) ** 2, [3, 2, 4, 1, 2][seed])  # ties included
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1], abs=1e-12)
    q = np.r_[p, np.nan]
    np.testing.assert_allclose(holm(q)[:-1], holm(p), rtol=0, atol=0)
    assert np.isnan(holm(q)[-1])


@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
@FAST
def test_holm_is_monotone_and_never_below_the_raw_p(p):
    p = np.array(p)
    adj = holm(p)
    order = np.argsort(p, kind="stable")
    assert (np.diff(adj[order]) >= 0).all()  # adjusted p-values keep the raw order
    assert (adj >= p - 1e-15).all() and (adj <= 1).all()


def test_bootstrap_p_value_and_t_test_by_hand():
    assert bootstrap_p_value([0.1, 0.2, 0.3, -0.1]) == pytest.approx(2 * (1 + 1) / 5)
    assert bootstrap_p_value([0.1, 0.2, 0.3]) == pytest.approx(2 / 4)  # never 0
    assert bootstrap_p_value([0.0, 0.0]) == 1.0
    d = paired_difference(0.8, 0.7, [0.8, 0.9, 0.7, np.nan], [0.75, 0.7, 0.72, 0.7])
    assert d.estimate == pytest.approx(0.1) and d.n_valid == 3 and not d.excludes_zero
    a, b = [0.81, 0.77, 0.85, 0.8], [0.7, 0.74, 0.79, 0.71]
    t, p = seed_ttest(a, b)
    ref = ttest_rel(a, b)
    assert (t, p) == pytest.approx((ref.statistic, ref.pvalue), abs=1e-12)
    assert np.isnan(seed_ttest([0.8], [0.7])[1]) and np.isnan(seed_ttest([0.8, 0.9], [0.7, 0.8])[1])


def test_paired_bootstrap_uses_the_same_resamples_for_both_detectors():
    """The paired differences equal a brute-force statistic of both detectors on each resampled frames
    table of the bootstrap's generic path (one table holding both detectors' scores, same draws)."""
    rng = np.random.default_rng(12)
    a = domain_frames(rng, SHIFTS, n_videos=10, decimals=2)
    b = a.assign(score=np.clip(a["score"] + rng.normal(0, 0.2, len(a)), 0, 1).round(2))
    out = paired_bootstrap(a, b, n=60, seed=3, datasets=["A", "B", "C"])

    def both(sub: pd.DataFrame) -> dict[str, float]:
        res = {}
        for col, name in (("score", "a"), ("score_b", "b")):
            v = exact_video_scores(sub.assign(score=sub[col]))
            m = cross_auc_matrix(
                v.assign(sample_id=v.video_id), level="frame", datasets=["A", "B", "C"]
            ).to_numpy()
            off = m[~np.eye(3, dtype=bool)]
            res[f"diag_mean_{name}"], res[f"worst_{name}"] = np.diag(m).mean(), off.min()
        return res

    joint = a.assign(score_b=b["score"].to_numpy())
    ref = bootstrap(joint, both, n=60, seed=3, datasets=["A", "B", "C"]).samples
    for stat in ("diag_mean", "worst"):
        d = ref[f"{stat}_a"] - ref[f"{stat}_b"]
        lo, hi = np.percentile(d, [2.5, 97.5])
        assert (out.loc[stat, "lo"], out.loc[stat, "hi"]) == pytest.approx((lo, hi), abs=1e-12)
        assert out.loc[stat, "p"] == pytest.approx(bootstrap_p_value(d.to_numpy()), abs=1e-12)
    assert out["p_holm"].to_numpy() == pytest.approx(multipletests(out["p"], method="holm")[1], abs=1e-12)
    with pytest.raises(ValueError, match="same videos"):
        paired_bootstrap(a, b[b.video_id != b.video_id.iloc[0]], n=5)


def test_readme_worked_example_is_a_pure_offset():
    """README "Reading the shift": the worked example's domains are shifted copies; standardisation maps
    them onto one another (every entry 1.0) and closes 100 % of the shift gap."""
    scores = {"D1": ([0.1, 0.2], [0.3, 0.4]), "D2": ([0.3, 0.4], [0.5, 0.6]), "D3": ([0.5, 0.6], [0.7, 0.8])}
    rows = [
        (d, f"{d}/{'fake' if lab else 'real'}/{n}", lab, s)
        for d, per_label in scores.items()
        for lab, values in enumerate(per_label)
        for n, s in enumerate(values)
    ]
    fr = pd.DataFrame(rows, columns=["dataset", "video_id", "label", "score"])
    res = normalisation_analysis(fr, settings=NormalisationSettings(repeats=1))
    for m in ("domain_score", "domain_logit"):
        np.testing.assert_array_equal(res.matrices[m][0], np.ones((3, 3)))
        assert res.summary(m)["shift_closed"][0] == pytest.approx(1.0)
    assert res.summary("raw")["shift_closed"][0] == 0.0


def test_keep_order_separates_what_the_logit_merged():
    raw = np.array([0.145, 0.14500000000000002, 0.145, 0.3])
    merged = logit(raw)
    assert merged[0] == merged[1] and raw[0] < raw[1]  # the collision this guards against
    z = keep_order(raw, merged)
    assert z[0] == z[2] < z[1] < z[3] and z[1] == np.nextafter(merged[0], np.inf)
    clean = np.array([0.1, 0.2, 0.3])  # no collision: the transform's values come back as they are
    assert np.array_equal(keep_order(clean, logit(clean)), logit(clean))


@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=40), st.integers(0, 3))
@FAST
def test_keep_order_keeps_every_strict_order_and_tie_of_the_raw_scores(values, decimals):
    raw = np.round(np.asarray(values), decimals) if decimals else np.asarray(values)
    z = keep_order(raw, (logit(raw) - 0.3) / 7.0)
    for a in range(len(raw)):
        for b in range(len(raw)):
            assert (raw[a] < raw[b]) == (z[a] < z[b]) and (raw[a] == raw[b]) == (z[a] == z[b])

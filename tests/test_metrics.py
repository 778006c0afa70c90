"""benchmark.metrics against independent references (scikit-learn, scipy) and property tests."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq
from scipy.stats import mannwhitneyu, wasserstein_distance
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score, roc_curve

from benchmark.metrics import (
    accuracy,
    auc,
    average_precision,
    bootstrap,
    cross_auc_matrix,
    cross_auc_summary,
    dataset_metrics,
    eer,
    eer_threshold,
    pair_name,
    pooled_auc,
    score_shift,
    threshold_transfer,
    video_scores,
    wasserstein1,
)

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def make_frames(
    rng: np.random.Generator,
    datasets=("A", "B", "C"),
    videos: int = 12,
    frames_per_video: int = 3,
    shift: float = 0.5,
    decimals: int = 1,
    fake_only=(),
    real_only=(),
) -> pd.DataFrame:
    """Synthetic frames: per-dataset score offset, rounded so that ties are frequent."""
    rows = []
    for k, d in enumerate(datasets):
        for v in range(videos):
            lab = v % 2
            if d in fake_only:
                lab = 1
            if d in real_only:
                lab = 0
            vid = f"{d}/{'fake' if lab else 'real'}/{v:03d}"
            base = rng.normal(shift * k + lab, 0.7)
            for f in range(frames_per_video):
                s = round(float(base + rng.normal(0, 0.3)), decimals)
                rows.append((d, vid, f"{vid}/{f}", lab, "m" if lab else "real", s))
    return pd.DataFrame(rows, columns=["dataset", "video_id", "sample_id", "label", "method", "score"])


def tie_arrays(rng: np.random.Generator, n: int, levels: int = 5):
    y = rng.integers(0, 2, n)
    s = rng.integers(0, levels, n).astype(float) / levels + 0.3 * y * rng.integers(0, 2, n)
    return y, s


# --------------------------------------------------------------------------- array metrics


@pytest.mark.parametrize("n", [2, 3, 7, 50, 500])
@pytest.mark.parametrize("levels", [1, 3, 1000])
def test_auc_matches_sklearn_and_mannwhitney(n, levels):
    rng = np.random.default_rng(n * 31 + levels)
    for _ in range(5):
        y, s = tie_arrays(rng, n, levels)
        if y.min() == y.max():
            y[0] = 1 - y[0]
        ours = auc(y, s)
        assert ours == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        u = mannwhitneyu(s[y == 1], s[y == 0]).statistic
        assert ours == pytest.approx(u / (y.sum() * (len(y) - y.sum())), abs=1e-12)


def test_auc_constant_scores_is_half_and_one_class_is_nan():
    assert auc([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == 0.5
    assert auc([0, 1], [0.2, 0.9]) == 1.0
    assert auc([1, 0], [0.2, 0.9]) == 0.0
    assert np.isnan(auc([1, 1, 1], [0.1, 0.5, 0.9]))
    assert np.isnan(auc([0], [0.1]))
    with warnings.catch_warnings():  # scikit-learn 1.9 warns and returns NaN too (older ones raise)
        warnings.simplefilter("ignore")
        try:
            ref = roc_auc_score([1, 1, 1], [0.1, 0.5, 0.9])
        except ValueError:
            ref = float("nan")
    assert np.isnan(ref)


@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(-20, 20)), min_size=2, max_size=60),
    st.sampled_from(["exp", "cube", "affine", "logistic"]),
)
@FAST
def test_auc_invariant_to_monotone_transforms(pairs, kind):
    y = np.array([p[0] for p in pairs])
    s = np.array([p[1] for p in pairs], dtype=float) / 4
    f = {
        "exp": np.exp,
        "cube": lambda x: x**3 + x,
        "affine": lambda x: 3 * x - 7,
        "logistic": lambda x: 1 / (1 + np.exp(-x)),
    }[kind]
    a, b = auc(y, s), auc(y, f(s))
    assert (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_average_precision_and_accuracy_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y, s = tie_arrays(rng, [5, 40, 300, 3, 9, 77][seed], levels=[2, 5, 1000, 3, 1, 20][seed])
    y[0], y[-1] = 0, 1
    assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    for t in (0.0, 0.2, 0.5, 0.8):
        assert accuracy(y, s, t) == pytest.approx(accuracy_score(y, (s >= t).astype(int)), abs=1e-12)
    assert average_precision(np.ones(4, int), [0.1, 0.2, 0.2, 0.9]) == pytest.approx(1.0)
    assert np.isnan(average_precision(np.zeros(4, int), [0.1, 0.2, 0.2, 0.9]))


def _eer_reference(y, s):
    """The FNR = FPR crossing of scikit-learn's piecewise-linear ROC curve, found by root finding."""
    fpr, tpr, _ = roc_curve(y, s, drop_intermediate=False)
    x = np.arange(len(fpr), dtype=float)
    d = lambda t: np.interp(t, x, 1 - tpr - fpr)  # noqa: E731
    if d(0) == 0:
        return 0.0
    lo = float(np.flatnonzero(1 - tpr - fpr <= 0)[0])
    t = lo if d(lo) == 0 else brentq(d, lo - 1, lo, xtol=1e-14)
    return float(np.interp(t, x, fpr))


@pytest.mark.parametrize("seed", range(8))
def test_eer_matches_sklearn_roc_crossing(seed):
    rng = np.random.default_rng(100 + seed)
    y, s = tie_arrays(
        rng, [4, 10, 60, 300, 7, 2, 25, 1000][seed], levels=[1000, 3, 5, 1000, 2, 10, 1, 50][seed]
    )
    y[0], y[-1] = 0, 1
    assert eer(y, s) == pytest.approx(_eer_reference(y, s), abs=1e-9)
    assert eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert eer([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert eer([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5


def test_eer_threshold_balances_error_rates():
    y = np.r_[np.zeros(100, int), np.ones(100, int)]
    s = np.r_[np.linspace(0, 0.6, 100), np.linspace(0.4, 1.0, 100)]
    t = eer_threshold(y, s)
    fpr = np.mean(s[y == 0] >= t)
    fnr = np.mean(s[y == 1] < t)
    assert abs(fpr - fnr) <= 0.02 and abs(fpr - eer(y, s)) <= 0.02
    assert np.isfinite(eer_threshold([0, 1], [0.5, 0.5]))
    with pytest.raises(ValueError, match="both classes"):
        eer([1, 1], [0.2, 0.3])


# --------------------------------------------------------------------------- frames, videos


@pytest.mark.parametrize("agg", ["mean", "median", "max"])
def test_video_scores_match_groupby(agg):
    fr = make_frames(np.random.default_rng(1), decimals=3).sample(frac=1, random_state=0)
    v = video_scores(fr, agg=agg)
    ref = fr.groupby("video_id").agg(
        score=("score", agg), label=("label", "first"), dataset=("dataset", "first")
    )
    ref = ref.loc[v["video_id"]]
    np.testing.assert_allclose(v["score"].to_numpy(), ref["score"].to_numpy(), rtol=0, atol=1e-12)
    assert (v["label"].to_numpy() == ref["label"].to_numpy()).all()
    assert (v["dataset"].to_numpy() == ref["dataset"].to_numpy()).all()
    assert (v["n_frames"] == 3).all() and list(v["video_id"]) == sorted(v["video_id"])


def test_video_ids_are_not_merged_across_datasets():
    """Two datasets with a video folder 000_003 stay apart when video_id follows the contract."""
    fr = pd.DataFrame(
        {
            "dataset": ["X", "X", "Y", "Y"],
            "video_id": ["X/real/000_003", "X/fake/000_003", "Y/real/000_003", "Y/fake/000_003"],
            "label": [0, 1, 0, 1],
            "score": [0.1, 0.9, 0.2, 0.8],
        }
    )
    assert len(video_scores(fr)) == 4


# --------------------------------------------------------------------------- Cross-AUC


def _cell_reference(units: pd.DataFrame, i: str, j: str) -> float:
    r = units[(units.dataset == i) & (units.label == 0)].score.to_numpy()
    f = units[(units.dataset == j) & (units.label == 1)].score.to_numpy()
    if len(r) == 0 or len(f) == 0:
        return float("nan")
    return roc_auc_score(np.r_[np.zeros(len(r)), np.ones(len(f))], np.r_[r, f])


@pytest.mark.parametrize("level", ["video", "frame"])
def test_cross_auc_matrix_matches_sklearn_per_cell(level):
    fr = make_frames(np.random.default_rng(2), datasets=("D1", "D2", "D3", "D4"), videos=16)
    m = cross_auc_matrix(fr, level=level)
    assert m.index.name == "real" and m.columns.name == "fake"
    units = video_scores(fr) if level == "video" else fr
    for i in m.index:
        for j in m.columns:
            assert m.loc[i, j] == pytest.approx(_cell_reference(units, i, j), abs=1e-12)
    for d in m.index:  # the diagonal is the ordinary per-dataset AUC
        sub = units[units.dataset == d]
        assert m.loc[d, d] == pytest.approx(roc_auc_score(sub.label, sub.score), abs=1e-12)


def test_fake_only_and_real_only_datasets_give_nan_row_and_column():
    fr = make_frames(
        np.random.default_rng(3), datasets=("A", "DF40", "R"), fake_only=("DF40",), real_only=("R",)
    )
    m = cross_auc_matrix(fr)
    assert m.loc["DF40"].isna().all() and m["R"].isna().all()
    assert m.loc[["A", "R"], ["A", "DF40"]].notna().all().all()
    s = cross_auc_summary(m)
    assert np.isfinite(s["offdiag_mean"]) and s["worst_pair"] is not None


def test_constant_scores_give_half_everywhere_and_tiny_sets_work():
    fr = make_frames(np.random.default_rng(13)).assign(score=0.5)
    assert (cross_auc_matrix(fr).to_numpy() == 0.5).all()
    assert pooled_auc(fr) == 0.5
    tiny = pd.DataFrame({"dataset": ["A", "A"], "video_id": ["r", "f"], "label": [0, 1], "score": [0.2, 0.1]})
    assert cross_auc_matrix(tiny).loc["A", "A"] == 0.0


def test_datasets_argument_orders_and_rejects_empty_dataset():
    fr = make_frames(np.random.default_rng(4))
    m = cross_auc_matrix(fr, datasets=["C", "A"])
    assert list(m.index) == ["C", "A"] and list(m.columns) == ["C", "A"]
    with pytest.raises(ValueError, match=r"'Z'.*empty dataset.*\['A', 'B', 'C'\]"):
        cross_auc_matrix(fr, datasets=["A", "Z"])


@st.composite
def frame_tables(draw):
    k = draw(st.integers(1, 4))
    rows = []
    for d in range(k):
        n = draw(st.integers(1, 12))
        for v in range(n):
            lab = draw(st.integers(0, 1))
            s = draw(st.integers(0, 6)) / 6  # coarse grid: many ties
            rows.append((f"d{d}", f"d{d}/{lab}/{v}", lab, s))
    return pd.DataFrame(rows, columns=["dataset", "video_id", "label", "score"])


@given(frame_tables())
@FAST
def test_cell_equals_auc_of_explicit_concatenation(fr):
    m = cross_auc_matrix(fr, level="frame")
    for i in m.index:
        for j in m.columns:
            r = fr[(fr.dataset == i) & (fr.label == 0)].score
            f = fr[(fr.dataset == j) & (fr.label == 1)].score
            ref = auc(np.r_[np.zeros(len(r)), np.ones(len(f))], np.r_[r, f])
            got = m.loc[i, j]
            assert (np.isnan(got) and np.isnan(ref)) or got == pytest.approx(ref, abs=1e-12)


@given(frame_tables())
@FAST
def test_pooled_auc_is_size_weighted_mean_of_matrix(fr):
    m = cross_auc_matrix(fr, level="frame").fillna(0.0)
    nr = fr[fr.label == 0].groupby("dataset").size().reindex(m.index, fill_value=0).to_numpy()
    nf = fr[fr.label == 1].groupby("dataset").size().reindex(m.columns, fill_value=0).to_numpy()
    pooled = pooled_auc(fr, level="frame")
    if nr.sum() == 0 or nf.sum() == 0:
        assert np.isnan(pooled)
        return
    weighted = float((np.outer(nr, nf) * m.to_numpy()).sum() / (nr.sum() * nf.sum()))
    assert pooled == pytest.approx(weighted, abs=1e-12)
    assert pooled == pytest.approx(roc_auc_score(fr.label, fr.score), abs=1e-12)


def test_cross_auc_summary_by_hand():
    a = pd.DataFrame(
        [[0.9, 0.8, 0.6], [0.7, 1.0, 0.5], [0.4, 0.3, 0.95]],
        index=pd.Index(list("XYZ"), name="real"),
        columns=pd.Index(list("XYZ"), name="fake"),
    )
    s = cross_auc_summary(a)
    off = [0.8, 0.6, 0.7, 0.5, 0.4, 0.3]
    assert s["diag_mean"] == pytest.approx((0.9 + 1.0 + 0.95) / 3)
    assert s["offdiag_mean"] == pytest.approx(np.mean(off))
    assert s["pair_mean"] == pytest.approx(np.mean([(0.8 + 0.7) / 2, (0.6 + 0.4) / 2, (0.5 + 0.3) / 2]))
    assert s["worst"] == pytest.approx(0.3) and s["worst_pair"] == ("Z", "Y")
    assert s["offdiag_std"] == pytest.approx(np.std(off))
    assert s["shift_gap"] == pytest.approx(s["diag_mean"] - s["offdiag_mean"])
    e = cross_auc_summary(a, exclude=["X"])
    assert e["worst_pair"] == ("Z", "Y") and e["offdiag_mean"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="'Q'"):
        cross_auc_summary(a, exclude=["Q"])


def test_worked_example_from_readme():
    """README "Metrics": three domains shifted by +0.2 each; every diagonal is 1.0, Cross-AUC falls."""
    scores = {"D1": ([0.1, 0.2], [0.3, 0.4]), "D2": ([0.3, 0.4], [0.5, 0.6]), "D3": ([0.5, 0.6], [0.7, 0.8])}
    rows = [
        (d, f"{d}/{'fake' if lab else 'real'}/{n}", lab, s)
        for d, per_label in scores.items()
        for lab, values in enumerate(per_label)
        for n, s in enumerate(values)
    ]
    fr = pd.DataFrame(rows, columns=["dataset", "video_id", "label", "score"])
    m = cross_auc_matrix(fr)
    expected = [[1.0, 1.0, 1.0], [0.5, 1.0, 1.0], [0.0, 0.5, 1.0]]
    np.testing.assert_array_equal(m.to_numpy(), expected)
    s = cross_auc_summary(m)
    assert s["diag_mean"] == 1.0
    assert s["offdiag_mean"] == pytest.approx(4 / 6) and s["pair_mean"] == pytest.approx(2 / 3)
    assert s["worst"] == 0.0 and s["worst_pair"] == ("D3", "D1")
    assert s["shift_gap"] == pytest.approx(1 / 3)
    assert pooled_auc(fr) == pytest.approx(7 / 9)
    tt = threshold_transfer(fr[fr.dataset == "D1"], fr)
    assert tt["threshold"].iloc[0] == 0.3  # D1's EER threshold: its fakes start at 0.3
    assert list(tt["acc"]) == [1.0, 0.5, 0.5]  # D2's and D3's reals all score >= 0.3
    assert list(tt["acc_at_default"]) == [0.5, 1.0, 0.5]


# --------------------------------------------------------------------------- threshold, shift


def test_threshold_transfer_uses_source_eer_threshold():
    rng = np.random.default_rng(5)
    fr = make_frames(rng, datasets=("src", "T1", "T2"), decimals=3, shift=0.8)
    src = fr[fr.dataset == "src"]
    tt = threshold_transfer(src, fr[fr.dataset != "src"])
    v = video_scores(src)
    t = eer_threshold(v.label, v.score)
    assert (tt["threshold"] == t).all()
    for d in ("T1", "T2"):
        u = video_scores(fr[fr.dataset == d])
        assert tt.loc[d, "acc"] == pytest.approx(accuracy_score(u.label, (u.score >= t).astype(int)))
        assert tt.loc[d, "acc_at_default"] == pytest.approx(
            accuracy_score(u.label, (u.score >= 0.5).astype(int))
        )
        assert tt.loc[d, "real_acc"] == pytest.approx(np.mean(u.score[u.label == 0] < t))
    with pytest.raises(ValueError, match="label"):
        threshold_transfer(src[src.label == 1], fr)


@pytest.mark.parametrize("seed", range(4))
def test_wasserstein_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    u = np.round(rng.normal(0, 1, [1, 5, 40, 200][seed]), 1)
    v = np.round(rng.normal(0.5, 2, [3, 1, 70, 20][seed]), 1)
    assert wasserstein1(u, v) == pytest.approx(wasserstein_distance(u, v), abs=1e-12)


def test_score_shift_stats_and_real_w1():
    fr = make_frames(np.random.default_rng(6), decimals=3, shift=1.0)
    out = score_shift(fr, level="frame")
    for (d, lab), row in out.stats.iterrows():
        v = fr[(fr.dataset == d) & (fr.label == lab)].score
        assert row["median"] == pytest.approx(np.median(v)) and row["n"] == len(v)
        assert row["iqr"] == pytest.approx(np.percentile(v, 75) - np.percentile(v, 25))
    reals = {d: fr[(fr.dataset == d) & (fr.label == 0)].score for d in "ABC"}
    for i in "ABC":
        for j in "ABC":
            assert out.real_w1.loc[i, j] == pytest.approx(wasserstein_distance(reals[i], reals[j]), abs=1e-12)
    assert out.real_w1.loc["A", "C"] > out.real_w1.loc["A", "B"]  # offsets 0, 1, 2


def test_dataset_metrics_match_sklearn():
    fr = make_frames(np.random.default_rng(7), decimals=2)
    dm = dataset_metrics(fr)
    v = video_scores(fr)
    for d in "ABC":
        s = v[v.dataset == d]
        assert dm.loc[d, "auc"] == pytest.approx(roc_auc_score(s.label, s.score))
        assert dm.loc[d, "ap"] == pytest.approx(average_precision_score(s.label, s.score))


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_fast_path_equals_per_cell_sklearn_on_resampled_frames():
    fr = make_frames(np.random.default_rng(8), videos=10)

    def sklearn_matrix(sub: pd.DataFrame) -> pd.DataFrame:
        u = sub.groupby("video_id").agg(
            dataset=("dataset", "first"), label=("label", "first"), score=("score", "mean")
        )
        ds = sorted(fr.dataset.unique())
        return pd.DataFrame([[_cell_reference(u, i, j) for j in ds] for i in ds], index=ds, columns=ds)

    fast = bootstrap(fr, "cross_auc", n=20, seed=3)
    slow = bootstrap(fr, sklearn_matrix, n=20, seed=3)
    ds = sorted(fr.dataset.unique())
    for i in ds:
        for j in ds:
            np.testing.assert_allclose(
                fast.samples[pair_name(i, j)].to_numpy(), slow.samples[f"{i}|{j}"].to_numpy(), atol=1e-12
            )
    m = cross_auc_matrix(fr)
    np.testing.assert_allclose(fast.matrix("estimate").to_numpy(), m.to_numpy())
    assert (fast.matrix("lo").to_numpy() <= fast.matrix("hi").to_numpy() + 1e-15).all()


def test_bootstrap_summaries_recomputed_from_same_resample():
    fr = make_frames(np.random.default_rng(9), datasets=("A", "B", "C", "D"), videos=8)
    res = bootstrap(fr, n=25, seed=0, level="frame")
    ds = list("ABCD")
    for r in range(0, 25, 6):
        a = pd.DataFrame(
            [[res.samples.loc[r, pair_name(i, j)] for j in ds] for i in ds],
            index=pd.Index(ds, name="real"),
            columns=pd.Index(ds, name="fake"),
        )
        s = cross_auc_summary(a)
        for key in ("diag_mean", "offdiag_mean", "pair_mean", "worst", "offdiag_std", "shift_gap"):
            got = res.samples.loc[r, key]
            assert (np.isnan(got) and np.isnan(s[key])) or got == pytest.approx(s[key], abs=1e-12)
    est = res.table["estimate"]
    assert est["pooled_auc"] == pytest.approx(pooled_auc(fr, level="frame"))
    assert ((res.table.lo <= res.table.hi) | res.table.lo.isna()).all()
    assert list(res.table.columns) == ["estimate", "lo", "hi", "std", "n_valid"]
    excl = bootstrap(fr, n=5, seed=0, level="frame", exclude=["A"]).table
    assert excl.loc["diag_mean", "estimate"] == pytest.approx(
        cross_auc_summary(cross_auc_matrix(fr, level="frame"), exclude=["A"])["diag_mean"]
    )
    with pytest.raises(ValueError, match="'Q'"):
        bootstrap(fr, n=5, exclude=["Q"])


def test_bootstrap_does_not_depend_on_chunking(monkeypatch):
    import benchmark.metrics.resample as bmod

    fr = make_frames(np.random.default_rng(14), videos=9)
    whole = bootstrap(fr, n=12, seed=5, level="frame").samples
    monkeypatch.setattr(bmod, "_MAX_CELLS", 2 * len(fr))  # two resamples per chunk
    pd.testing.assert_frame_equal(bootstrap(fr, n=12, seed=5, level="frame").samples, whole)


def test_bootstrap_resamples_whole_videos_within_each_dataset_and_is_seeded():
    fr = make_frames(np.random.default_rng(10), datasets=("A", "B"), videos=7, frames_per_video=4)
    n_videos = fr.groupby("dataset").video_id.nunique()

    def shape(sub: pd.DataFrame) -> dict:
        per_video = sub.groupby("video_id").size()
        out = {
            "whole_videos": float((per_video == 4).all()),
            "distinct": sub.video_id.str.split("#").str[0].nunique(),
        }
        out.update({f"n_{d}": sub[sub.dataset == d].video_id.nunique() for d in ("A", "B")})
        return out

    res = bootstrap(fr, shape, n=20, seed=1)
    only_a = bootstrap(fr, shape, n=3, seed=1, datasets=["A"])
    assert (only_a.samples["n_B"] == 0).all() and (only_a.samples["n_A"] == n_videos["A"]).all()
    assert only_a.table.loc["n_B", "estimate"] == 0
    assert (res.samples["whole_videos"] == 1.0).all()
    for d in ("A", "B"):
        assert (res.samples[f"n_{d}"] == n_videos[d]).all()  # as many draws as videos, per dataset
    assert (res.samples["distinct"] < 14).any()  # drawn with replacement
    again = bootstrap(fr, n=15, seed=1).samples
    pd.testing.assert_frame_equal(again, bootstrap(fr, n=15, seed=1).samples)
    assert not again.equals(bootstrap(fr, n=15, seed=2).samples)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (lambda f: f.assign(score=f.score.where(f.index != 5, np.nan)), r"'score'.*rows \[5\]"),
        (lambda f: f.assign(score=f.score.where(f.index != 7, np.inf)), r"'score'.*rows \[7\]"),
        (lambda f: f.assign(label=f.label.where(f.index != 4, 2)), r"'label'.*\[2\].*rows \[4\]"),
        (
            lambda f: f.assign(sample_id=f.sample_id.where(f.index != 1, f.sample_id[0])),
            r"'sample_id'.*rows \[0, 1\]",
        ),
        (
            lambda f: f.assign(label=f.label.where(f.index != 0, 1)),
            r"'label' differs.*'A/real/000'.*rows \[0, 1, 2\]",
        ),
        (lambda f: f.iloc[:0], r"empty"),
        (lambda f: f.drop(columns="score"), r"\['score'\]"),
    ],
    ids=["nan", "inf", "label2", "dup_sample", "mixed_video", "empty", "no_score"],
)
def test_bad_input_is_a_clear_value_error(mutate, pattern):
    fr = mutate(make_frames(np.random.default_rng(11)))
    for fn in (cross_auc_matrix, video_scores, pooled_auc, lambda f: bootstrap(f, n=2)):
        with pytest.raises(ValueError, match=pattern):
            fn(fr)


def test_array_metrics_reject_bad_input():
    with pytest.raises(ValueError, match=r"'scores'.*rows \[1\]"):
        auc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match=r"'labels'.*\[-1\].*rows \[0\]"):
        average_precision([-1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="equal length"):
        accuracy([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match=r"'scores'.*rows \['b'\]"):
        auc(pd.Series([0, 1], index=["a", "b"]), pd.Series([0.1, np.inf], index=["a", "b"]))


def test_video_in_two_datasets_and_mixed_models_are_refused():
    fr = make_frames(np.random.default_rng(12))
    moved = fr.copy()
    moved.loc[0, "dataset"] = "B"
    with pytest.raises(ValueError, match=r"'dataset' differs.*'A/real/000'"):
        cross_auc_matrix(moved)
    per_dataset_cells = fr.assign(cell_id="m1-" + fr.dataset)  # one model, one cell per test set: fine
    assert cross_auc_matrix(per_dataset_cells).shape == (3, 3)
    two_models = pd.concat([fr.assign(cell_id="m1"), fr.assign(cell_id="m2")], ignore_index=True)
    with pytest.raises(ValueError, match=r"'sample_id'.*across cell_id \['m1', 'm2'\]"):
        cross_auc_matrix(two_models)
    with pytest.raises(ValueError, match="sample_id"):
        cross_auc_matrix(pd.concat([fr, fr], ignore_index=True))  # same frames twice, no cell_id

"""Ranking metrics under ties, against pairwise references in EXACT arithmetic (fractions.Fraction).

Tie-heavy scores (rounded to one or two decimals, saturated at 0/1, videos whose frames differ but whose
means are equal) at frame and video level, for every metric that ranks: AUC, the Cross-AUC matrix, EER,
AP, and each bootstrap resample.

The video score is defined as the float64 nearest to the exact mean of the video's frame scores (what
``video_scores`` reports); the references compute it with Fractions and ``float(Fraction)`` (correctly
rounded), then compare video scores exactly as Fractions. Before this definition a float sum made the
mean depend on the frames' order, so equal means could differ in the last bit and stop tying.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark.metrics import (
    Scores,
    auc,
    average_precision,
    bootstrap,
    cross_auc_matrix,
    dataset_metrics,
    eer,
    pair_name,
    pooled_auc,
    video_scores,
)
from benchmark.metrics.means import exact_group_means
from tests.exact_reference import (
    as_float,
    exact_ap,
    exact_auc,
    exact_eer,
    exact_matrix,
    exact_mean,
    exact_video_scores,
)

PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- tie-heavy data

# videos with different frames and the same mean (in decimal arithmetic; as floats their exact means may
# differ by less than half an ulp, and round to the same float64)
EQUAL_MEANS = [
    [[0.25, 0.75], [0.5, 0.5], [0.5], [0.0, 1.0], [0.5, 0.25, 0.75]],
    [[0.1, 0.3], [0.2, 0.2], [0.2], [0.3, 0.1, 0.2], [0.0, 0.4]],
    [[0.1, 0.1, 0.1], [0.1], [0.05, 0.15], [0.1, 0.1, 0.1, 0.1]],
    [[0.3, 0.5, 0.4], [0.4, 0.4, 0.4], [0.4], [0.35, 0.45]],
    [[1.0, 1.0, 1.0], [1.0], [0.0, 0.0], [0.0]],
    [[0.7, 0.9, 0.8], [0.8, 0.8], [0.6, 1.0]],
]


def tie_frames(rng: np.random.Generator, datasets=("A", "B", "C"), shuffle: bool = True) -> pd.DataFrame:
    """Every dataset gets reals and fakes drawn from the EQUAL_MEANS families (so video means tie across
    labels and datasets), plus frames rounded to 1-2 decimals and saturated 0/1 scores."""
    rows = []
    for d in datasets:
        for v in range(14):
            label = v % 2
            if v < 8:
                family = EQUAL_MEANS[int(rng.integers(len(EQUAL_MEANS)))]
                frames = list(family[int(rng.integers(len(family)))])
            elif v < 11:
                frames = list(np.round(rng.random(int(rng.integers(1, 5))), int(rng.integers(1, 3))))
            else:
                frames = list(rng.choice([0.0, 1.0], int(rng.integers(1, 4))))
            if shuffle:
                rng.shuffle(frames)
            vid = f"{d}/{'fake' if label else 'real'}/{v:02d}"
            rows += [(d, vid, f"{vid}/{k}", label, float(s)) for k, s in enumerate(frames)]
    fr = pd.DataFrame(rows, columns=["dataset", "video_id", "sample_id", "label", "score"])
    return (
        fr.sample(frac=1, random_state=int(rng.integers(1 << 30))).reset_index(drop=True) if shuffle else fr
    )


@st.composite
def tie_tables(draw):
    """Frames tables with many ties: 1-5 frames per video, on a coarse decimal grid (0, 1 included) or
    taken from the EQUAL_MEANS families in any order."""
    grid = draw(st.sampled_from([10, 100, 4, 2]))
    family = st.sampled_from([frames for fam in EQUAL_MEANS for frames in fam]).flatmap(st.permutations)
    k = draw(st.integers(1, 3))
    rows = []
    for d in range(k):
        for v in range(draw(st.integers(1, 8))):
            label = draw(st.integers(0, 1))
            on_grid = st.lists(st.integers(0, grid).map(lambda x: round(x / grid, 2)), min_size=1, max_size=5)
            vals = draw(st.one_of(on_grid, family))
            vid = f"d{d}/{label}/{v}"
            rows += [(f"d{d}", vid, f"{vid}/{i}", label, float(x)) for i, x in enumerate(vals)]
    return pd.DataFrame(rows, columns=["dataset", "video_id", "sample_id", "label", "score"])


# --------------------------------------------------------------------------- video means


def test_equal_means_tie_whatever_the_order_and_the_frames():
    # 0.1 + 0.1 + 0.1 = 0.30000000000000004 in floats, / 3 = 0.10000000000000002: it no longer tied 0.1
    fr = pd.DataFrame(
        {
            "dataset": "A",
            "video_id": ["r1"] * 3 + ["f1"] + ["r2"] * 3 + ["f2"] * 3,
            "label": [0] * 3 + [1] + [0] * 3 + [1] * 3,
            "score": [0.1, 0.1, 0.1, 0.1, 0.3, 0.5, 0.4, 0.4, 0.4, 0.4],
        }
    )
    v = video_scores(fr).set_index("video_id").score
    assert v["r1"] == v["f1"] == 0.1 and v["r2"] == v["f2"] == 0.4
    assert cross_auc_matrix(fr).loc["A", "A"] == 0.5  # every (real, fake) pair ties


@given(
    st.lists(
        st.sampled_from([0.0, 1.0, 0.1, 0.2, 0.3, 0.25, 0.75, 0.05, 0.15, 0.33]), min_size=1, max_size=9
    ),
    st.randoms(use_true_random=False),
)
@PROPERTY
def test_video_mean_is_the_nearest_float_to_the_exact_mean_in_any_order(values, rnd):
    shuffled = list(values)
    rnd.shuffle(shuffled)
    got = exact_group_means(
        np.array(values + shuffled), np.r_[np.zeros(len(values)), np.ones(len(values))], 2
    )
    assert got[0] == got[1] == float(exact_mean(values))


@pytest.mark.parametrize(
    "values",
    [
        [1e-30, 0.9, 0.1],  # 100 bits apart: the Python-integer path
        [5e-324, 5e-324, 0.0],  # subnormal mean
        [2.2250738585072014e-308, 1e-310],
        [1e300, -1e300, 3.0],
        [-0.3, 0.1, 0.7, 0.2] * 40,  # 160 frames: the quotient's vectorised rounding needs n < 128
        list(np.linspace(0, 1, 97)),
    ],
)
def test_video_mean_exact_on_wide_and_tiny_values(values):
    assert exact_group_means(np.array(values), np.zeros(len(values), np.int64), 1)[0] == float(
        exact_mean(values)
    )


@given(tie_tables())
@PROPERTY
def test_video_scores_equal_the_exact_reference(fr):
    got = video_scores(fr.sample(frac=1, random_state=0))
    ref = exact_video_scores(fr)
    assert list(got.video_id) == list(ref.video_id)
    assert (got.score.to_numpy() == ref.score.to_numpy()).all()


# --------------------------------------------------------------------------- ranking metrics


@pytest.mark.parametrize("level", ["video", "frame"])
@pytest.mark.parametrize("seed", range(4))
def test_cross_auc_matrix_is_the_exact_pairwise_auc(level, seed):
    fr = tie_frames(np.random.default_rng(seed))
    units = exact_video_scores(fr) if level == "video" else fr
    m = cross_auc_matrix(fr, level=level)
    ref = exact_matrix(units, list(m.index))
    for (i, j), r in ref.items():
        assert m.loc[i, j] == as_float(r) or (r is None and np.isnan(m.loc[i, j])), (i, j)
    pooled = exact_auc(units.score[units.label == 0], units.score[units.label == 1])
    assert pooled_auc(fr, level=level) == as_float(pooled)


@pytest.mark.parametrize("level", ["video", "frame"])
@pytest.mark.parametrize("seed", range(4))
def test_auc_eer_ap_are_the_exact_definitions(level, seed):
    fr = tie_frames(np.random.default_rng(10 + seed))
    units = exact_video_scores(fr) if level == "video" else fr
    dm = dataset_metrics(Scores.from_frames(fr), level=level)
    for d in dm.index:
        u = units[units.dataset == d]
        y, s = u.label.to_numpy(), u.score.to_numpy()
        assert dm.loc[d, "auc"] == pytest.approx(float(exact_auc(s[y == 0], s[y == 1])), abs=1e-12)
        assert dm.loc[d, "eer"] == pytest.approx(float(exact_eer(y, s)), abs=1e-12)
        assert dm.loc[d, "ap"] == pytest.approx(float(exact_ap(y, s)), abs=1e-12)
        assert auc(y, s) == dm.loc[d, "auc"] and eer(y, s) == dm.loc[d, "eer"]
        assert average_precision(y, s) == dm.loc[d, "ap"]


@given(tie_tables(), st.sampled_from(["video", "frame"]))
@PROPERTY
def test_ranking_metrics_match_exact_references_on_random_tie_tables(fr, level):
    units = exact_video_scores(fr) if level == "video" else fr
    m = cross_auc_matrix(fr, level=level)
    for (i, j), r in exact_matrix(units, list(m.index)).items():
        assert m.loc[i, j] == as_float(r) or (r is None and np.isnan(m.loc[i, j]))
    dm = dataset_metrics(fr, level=level)
    for d in dm.index:
        u = units[units.dataset == d]
        y, s = u.label.to_numpy(), u.score.to_numpy()
        if 0 < y.sum() < len(y):
            assert dm.loc[d, "auc"] == pytest.approx(float(exact_auc(s[y == 0], s[y == 1])), abs=1e-12)
            assert dm.loc[d, "eer"] == pytest.approx(float(exact_eer(y, s)), abs=1e-12)
        if y.sum():
            assert dm.loc[d, "ap"] == pytest.approx(float(exact_ap(y, s)), abs=1e-12)


# --------------------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("level", ["video", "frame"])
def test_each_bootstrap_resample_is_the_exact_auc_of_that_resample(level):
    """The generic path hands the callable the resampled frames (a video drawn twice appears twice under
    distinct ids); both paths draw the same resamples, so resample r of the fast path must be the exact
    pairwise Cross-AUC of the table the callable saw at r."""
    fr = tie_frames(np.random.default_rng(20), datasets=("A", "B"))
    ds = ["A", "B"]

    def exact(sub: pd.DataFrame) -> dict[str, float]:
        units = exact_video_scores(sub) if level == "video" else sub
        return {pair_name(i, j): as_float(r) for (i, j), r in exact_matrix(units, ds).items()}

    fast = bootstrap(fr, "cross_auc", n=12, seed=4, level=level)
    slow = bootstrap(fr, exact, n=12, seed=4)
    names = [pair_name(i, j) for i in ds for j in ds]
    pd.testing.assert_frame_equal(fast.samples[names], slow.samples[names], check_exact=True)


@given(tie_tables())
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_bootstrap_resamples_match_exact_references_on_random_tie_tables(fr):
    ds = sorted(fr.dataset.unique())

    def exact(sub: pd.DataFrame) -> dict[str, float]:
        return {
            pair_name(i, j): as_float(r) for (i, j), r in exact_matrix(exact_video_scores(sub), ds).items()
        }

    fast = bootstrap(fr, "cross_auc", n=5, seed=1)
    slow = bootstrap(fr, exact, n=5, seed=1)
    names = [pair_name(i, j) for i in ds for j in ds]
    pd.testing.assert_frame_equal(fast.samples[names], slow.samples[names], check_exact=True)

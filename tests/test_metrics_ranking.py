"""The one sort behind the ranking metrics (``benchmark.metrics.ranking``) and the exact pair counts on it.

References are independent: ``numpy.sort`` for the order, explicit loops over every (real, fake) pair in
exact arithmetic (``tests.exact_reference``) for the counts. The scores are built to reach every branch of
the packed-key sort: scores differing only in their last mantissa bits (equal kept bits, sorted again by
full value), both zeros, subnormals, negatives, exact ties.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark.metrics import Scores, cross_auc_matrix, pooled_auc
from benchmark.metrics.cross_auc import pair_counts
from benchmark.metrics.ranking import ordered_key, rank_units, sort_scores
from tests.exact_reference import as_float, exact_auc, exact_matrix, exact_video_scores

PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _ulps(x: float, k: int) -> float:
    """``x`` moved ``k`` floats up (k > 0) or down."""
    for _ in range(abs(k)):
        x = float(np.nextafter(x, np.inf if k > 0 else -np.inf))
    return x


# scores that differ only in their last bits (ulps apart) around a few centres, plus the zeros' neighbours
NEAR = st.builds(_ulps, st.sampled_from([0.5, 0.1, 0.9999, -0.25, 1e-300]), st.integers(-40, 40))
ZEROS = st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e-310, -1e-310])
ANY = st.floats(allow_nan=False, allow_infinity=False, width=64)
SCORES = st.one_of(NEAR, ZEROS, ANY, st.integers(0, 4).map(lambda k: k / 4))


@given(SCORES, SCORES)
@PROPERTY
def test_ordered_key_orders_like_the_scores(a, b):
    ka, kb = ordered_key(np.array([a, b]))
    assert (ka < kb) == (a < b) and (ka == kb) == (a == b)


def _check_sorted(x: np.ndarray) -> None:
    order, keys = sort_scores(x)
    assert sorted(order.tolist()) == list(range(len(x)))  # a permutation
    assert (x[order] == np.sort(x)).all()  # -0.0 == 0.0: either may come first, as in numpy
    assert (keys == ordered_key(x[order])).all()


@given(st.lists(SCORES, min_size=0, max_size=200))
@PROPERTY
def test_sort_scores_sorts_like_numpy(values):
    _check_sorted(np.array(values, dtype=np.float64))


def test_scores_sharing_the_kept_bits_are_sorted_by_full_value():
    # 64 units -> the low 6 bits of each key carry the index; 32 scores ulps apart share the other 58
    rng = np.random.default_rng(0)
    x = np.array([_ulps(0.5, k % 32) for k in range(64)])
    rng.shuffle(x)
    assert len(np.unique(ordered_key(x) >> np.uint64(6))) == 1 and len(np.unique(x)) == 32
    _check_sorted(x)
    # both zeros share a key; the smallest subnormals share the kept bits with them
    assert ordered_key(np.array([-0.0]))[0] == ordered_key(np.array([0.0]))[0]
    _check_sorted(np.array([5e-324, -0.0, 0.0, -5e-324, 1e-323, -0.0, 0.0, 5e-324] * 4))


@st.composite
def unit_tables(draw):
    """Units of 1-4 datasets (some without reals or without fakes) with near-tied and tied scores."""
    k = draw(st.integers(1, 4))
    rows = []
    for d in range(k):
        for _ in range(draw(st.integers(0, 12))):
            rows.append(
                (d, draw(st.integers(0, 1)), draw(st.one_of(NEAR, ZEROS, st.sampled_from([0.0, 0.5]))))
            )
    rows = rows or [(0, 0, 0.5)]
    d, y, s = (np.array(c) for c in zip(*rows, strict=True))
    return k, d.astype(np.int64), y.astype(np.int64), s.astype(np.float64)


def _units(k, d, y, s):
    from benchmark.metrics.scores import Units

    return Units(
        datasets=[f"d{i}" for i in range(k)], dataset_code=d, label=y, score=s, video_code=None, n_videos=None
    )


@given(unit_tables())
@PROPERTY
def test_pair_counts_are_the_exact_pairwise_counts(table):
    k, d, y, s = table
    c = pair_counts(_units(k, d, y, s))
    for i in range(k):
        reals = s[(d == i) & (y == 0)]
        assert c.n_real[i] == len(reals)
        for j in range(k):
            fakes = s[(d == j) & (y == 1)]
            ref = exact_auc(reals, fakes)  # P(f > r) + 1/2 P(f = r) over explicit pairs, in Fractions
            if ref is None:
                assert c.num[i, j] == 0 and np.isnan(c.matrix()[i, j])
            else:
                assert Fraction(int(c.num[i, j])) == 2 * len(reals) * len(fakes) * ref
                assert c.matrix()[i, j] == float(ref)
    pooled = exact_auc(s[y == 0], s[y == 1])
    assert c.pooled() == as_float(pooled) or (pooled is None and np.isnan(c.pooled()))


@given(unit_tables())
@PROPERTY
def test_ranking_lists_each_class_in_score_order_with_its_groups(table):
    k, d, y, s = table
    r = rank_units(_units(k, d, y, s))
    distinct = np.unique(s)  # -0.0 and 0.0 are one value
    assert r.n_groups == len(distinct)
    for i in range(k):
        for label in (0, 1):
            units = r.class_units(i, label)
            assert sorted(units.tolist()) == np.flatnonzero((d == i) & (y == label)).tolist()
            assert (np.diff(s[units]) >= 0).all()
            assert (r.class_groups(i, label) == np.searchsorted(distinct, s[units])).all()
        below = r.reals_below(i)
        reals = s[(d == i) & (y == 0)]
        assert [int(below[g]) for g in range(r.n_groups)] == [int((reals < v).sum()) for v in distinct]
        assert int(below[-1]) == len(reals)


@pytest.mark.parametrize("level", ["frame", "video"])
def test_cross_auc_is_exact_when_scores_differ_only_in_their_last_bits(level):
    """Frame scores ulps apart (video means of them too): every entry equals its exact pairwise AUC."""
    rng = np.random.default_rng(7)
    rows = []
    for ds in ("A", "B", "C"):
        for v in range(40):
            label = v % 2
            vid = f"{ds}/{label}/{v}"
            for f in range(int(rng.integers(1, 4))):
                score = _ulps(0.5, int(rng.integers(-6, 7)) + 2 * label)
                rows.append((ds, vid, f"{vid}/{f}", label, score))
    fr = pd.DataFrame(rows, columns=["dataset", "video_id", "sample_id", "label", "score"])
    units = exact_video_scores(fr) if level == "video" else fr
    m = cross_auc_matrix(Scores.from_frames(fr), level=level)
    for (i, j), ref in exact_matrix(units, list(m.index)).items():
        assert m.loc[i, j] == as_float(ref), (i, j)
    assert pooled_auc(fr, level=level) == as_float(
        exact_auc(units.score[units.label == 0], units.score[units.label == 1])
    )

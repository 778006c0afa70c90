"""Confound-matched Cross-AUC (``benchmark.metrics.confounds``): references and properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from benchmark.metrics import cross_auc_matrix
from benchmark.metrics.confounds import (
    MatchingSettings,
    cem_weights,
    design,
    kish_ess,
    logistic_fit,
    matched_cross_auc,
    rank_bins,
    strata,
    weighted_auc,
)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(4, 60), st.booleans())
def test_weighted_auc_equals_sklearn_with_sample_weight(seed, n, ties):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    s = rng.integers(0, 5, n).astype(float) if ties else rng.normal(size=n)
    w = rng.uniform(0.1, 3, n)
    assert weighted_auc(s, y, w) == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-12)
    assert weighted_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_weighted_auc_bad_input_and_one_class():
    assert np.isnan(weighted_auc([0.1, 0.2], [1, 1]))
    with pytest.raises(ValueError, match="non-negative"):
        weighted_auc([0.1, 0.2], [0, 1], [-1, 1])
    with pytest.raises(ValueError, match="length"):
        weighted_auc([0.1, 0.2], [0, 1], [1])


def test_kish_ess():
    assert kish_ess(np.ones(7)) == pytest.approx(7)
    assert kish_ess(np.array([1.0, 0, 0, 0])) == pytest.approx(1)
    w = np.array([1.0, 2.0, 3.0])
    assert kish_ess(w) == pytest.approx(36 / 14)


def test_rank_bins_are_equal_mass_and_keep_ties_and_missing_apart():
    x = np.array([5.0, 1, 2, 3, 4, 6, 7, 8, np.nan])
    b = rank_bins(x, 4)
    assert b[-1] == 4  # missing: a bin of its own
    assert np.bincount(b[:-1]).tolist() == [2, 2, 2, 2]
    assert len(set(rank_bins(np.array([1.0, 1, 1, 2]), 2)[:3])) == 1


def test_cem_weights_follow_iacus_king_porro():
    # stratum 0: 2 reals, 1 fake; stratum 1: 1 real, 3 fakes; stratum 2: fakes only (dropped)
    stratum = np.array([0, 0, 0, 1, 1, 1, 1, 2])
    fake = np.array([0, 0, 1, 0, 1, 1, 1, 1], bool)
    w = cem_weights(stratum, fake)
    m_r, m_f = 3, 4
    expected = [m_r / m_f * 1 / 2] * 2 + [1] + [m_r / m_f * 3 / 1] + [1, 1, 1] + [0]
    assert w == pytest.approx(expected)
    # the weighted reals have the fakes' stratum distribution
    assert np.bincount(stratum[~fake], w[~fake]) / w[~fake].sum() == pytest.approx(
        np.bincount(stratum[fake & (w > 0)]) / 4
    )


def test_propensity_fit_equals_statsmodels_logit():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    x[rng.random(400) < 0.1, 1] = np.nan
    z = design(x)
    y = (rng.random(400) < 1 / (1 + np.exp(-(0.5 * np.nan_to_num(x[:, 0]) - 0.3)))).astype(float)
    ref = sm.Logit(y, z).fit(disp=0).params
    assert logistic_fit(z, y) == pytest.approx(ref, abs=1e-6)


def _frames(n_per: dict[tuple[str, int, int], int], seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """Frames (one per video) of datasets A, B: per (dataset, label, stratum) the number of videos; the
    feature ``f`` is the stratum; scores depend on the label (and on ``f`` with ``shift``)."""
    rng = np.random.default_rng(seed)
    rows = []
    for (d, label, f), n in n_per.items():
        for k in range(n):
            rows.append(
                {
                    "dataset": d,
                    "label": label,
                    "video_id": f"{d}/{label}/{f}/{k}",
                    "score": float(1 / (1 + np.exp(-(rng.normal() + label + shift * f)))),
                    "f": float(f),
                }
            )
    return pd.DataFrame(rows)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(1, 6), min_size=2, max_size=4),
    st.integers(1, 3),
    st.integers(0, 1000),
)
def test_matched_auc_equals_raw_when_balanced_by_construction(per_stratum, ratio, seed):
    # every stratum has the same fake:real ratio in every pair, so every weight is 1 and nothing is dropped
    n = {}
    for d in ("A", "B"):
        for f, c in enumerate(per_stratum):
            n[(d, 0, f)] = c
            n[(d, 1, f)] = ratio * c
    frames = _frames(n, seed, shift=1.0)
    m = matched_cross_auc(frames, ["f"], settings=MatchingSettings(n_bins=len(per_stratum)))
    assert np.array_equal(m.auc, m.raw)
    assert np.all(m.kept == 1)
    raw = cross_auc_matrix(frames, level="video").to_numpy()
    assert m.raw == pytest.approx(raw, abs=1e-12)


def test_matching_removes_a_confound_the_raw_auc_rides_on():
    # reals of A sit in stratum 0, fakes of B mostly in stratum 1; scores follow the stratum only
    n = {("A", 0, 0): 40, ("A", 0, 1): 10, ("A", 1, 0): 5, ("B", 0, 0): 5, ("B", 1, 0): 10, ("B", 1, 1): 40}
    frames = _frames(n, 1)
    frames["score"] = np.clip(
        0.2 + 0.6 * frames["f"] + np.random.default_rng(2).normal(0, 0.05, len(frames)), 0, 1
    )
    m = matched_cross_auc(frames, ["f", "absent"], settings=MatchingSettings(n_bins=2))
    assert m.features == ("f",)
    a_b = m.frame("auc").loc["A", "B"]
    assert m.frame("raw").loc["A", "B"] > 0.75
    assert a_b == pytest.approx(0.5, abs=0.15)
    assert m.frame("kept").loc["A", "B"] == 1.0
    ipw = matched_cross_auc(frames, ["f"], settings=MatchingSettings(method="ipw"))
    assert ipw.frame("auc").loc["A", "B"] == pytest.approx(0.5, abs=0.15)
    assert ipw.frame("ess_real").loc["A", "B"] < 50  # the reweighting costs effective reals


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 1000))
def test_increasing_transforms_of_scores_and_features_change_nothing(seed):
    rng = np.random.default_rng(seed)
    n = 60
    frames = pd.DataFrame(
        {
            "dataset": rng.choice(["A", "B"], n),
            "label": rng.integers(0, 2, n),
            "video_id": [f"v{i}" for i in range(n)],
            "score": rng.uniform(0.01, 0.99, n),
            "f": rng.normal(size=n),
            "g": rng.integers(0, 4, n).astype(float),
        }
    )
    frames.loc[:3, "label"] = [0, 1, 0, 1]
    frames.loc[:3, "dataset"] = ["A", "A", "B", "B"]
    base = matched_cross_auc(frames, ["f", "g"])
    moved = frames.assign(score=np.log(frames["score"]) * 3 + 1, f=np.exp(frames["f"]), g=frames["g"] ** 3)
    other = matched_cross_auc(moved, ["f", "g"])
    assert np.array_equal(np.isnan(base.auc), np.isnan(other.auc))
    assert np.nan_to_num(base.auc) == pytest.approx(np.nan_to_num(other.auc), abs=1e-12)
    assert np.array_equal(base.kept, other.kept)


def test_strata_shape_error_and_settings_errors():
    with pytest.raises(ValueError, match=r"\[n, F\]"):
        strata(np.zeros(3), 2)
    with pytest.raises(ValueError, match="matching method"):
        MatchingSettings(method="nearest")
    with pytest.raises(ValueError, match="n_bins"):
        MatchingSettings(n_bins=0)

"""Leaderboards: rendered from the store alone, deterministic, with the numbers of benchmark.metrics.

The numbers are checked on the typed analysis (``benchmark.report.analysis.Analysis``) against independent
references (scikit-learn, exact Fractions, brute-force pairs, the bootstrap's generic path); one test
checks that the markdown is what the column declarations print from it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    log_loss,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from benchmark.metrics import METHOD_NAMES, NormalisationSettings, auc, bootstrap, cross_auc_matrix
from benchmark.report import columns
from benchmark.report.analysis import Analysis, View, analyse, analyse_cell, combine
from benchmark.report.columns import Column, Table, fmt_ci
from benchmark.report.groups import Group, collect
from benchmark.report.leaderboard import main, md_table, render
from benchmark.store import ScoreStore
from tests.exact_reference import exact_eer, exact_eer_threshold, exact_video_scores
from tests.shift_reference import exact_ece, matched_reference, reference_normalised_matrix

#: a small normalisation protocol for the reference test (the independent few-shot reference is slow)
SMALL_NORMALISATION = NormalisationSettings(k=6, repeats=4, folds=3)

SETS = ["dom-A", "dom-B", "dom-C"]
SHIFT = {"dom-A": 0.0, "dom-B": 0.25, "dom-C": -0.2}
#: derived cells of every seed's cell (test-time conditions): tag -> (config keys, how far scores move to 0.5)
CONDITIONS = {
    "gaussian_blur@1": (
        {"perturbation": {"name": "gaussian_blur", "level": 1, "params": {"kernel": 7}}},
        0.8,
    ),
    "gaussian_blur@3": (
        {"perturbation": {"name": "gaussian_blur", "level": 3, "params": {"kernel": 13}}},
        0.4,
    ),
    "jpeg_compression@3": (
        {"perturbation": {"name": "jpeg_compression", "level": 3, "params": {"factor": 4}}},
        0.6,
    ),
    "zoom1.2": ({"view": {"zoom": 1.2, "crop_size": None, "interpolation": None}}, 0.9),
}
#: the seven DeeperForensics-1.0 distortions (the released perturbation code's types), 5 levels each
DEEPERFORENSICS = ("color_saturation", "color_contrast", "block_wise", "gaussian_noise_color", "gaussian_blur",
                   "jpeg_compression", "video_compression")  # fmt: skip


def _frames(
    cell_id: str,
    seed: int,
    rng: np.random.Generator,
    decimals: int | None = None,
    detector: str = "resnet34",
) -> pd.DataFrame:
    rows = []
    for split, sets in (("val", ["dom-A"]), ("test", SETS)):
        for ds in sets:
            for v in range(12):
                label = v % 2
                for f in range(3):
                    base = 0.3 + 0.4 * label + (SHIFT[ds] if split == "test" else 0.0)
                    score = float(np.clip(base + rng.normal(0, 0.15), 0, 1))
                    rows.append(
                        {
                            "cell_id": cell_id,
                            "detector": detector,
                            "train_set": "dom-A",
                            "test_set": ds,
                            "split": split,
                            "dataset": ds,
                            "video_id": f"{ds}/{split}/{label}/v{v}",
                            "sample_id": f"{ds}/{split}/{label}/v{v}/{f}",
                            "label": label,
                            "method": "fake" if label else "real",
                            "score": score if decimals is None else round(score, decimals),
                            "seed": seed,
                        }
                    )
    return pd.DataFrame(rows)


def child_frames(frames: pd.DataFrame, cid: str, seed: int, k: int, shrink: float, decimals: int | None):
    """A derived cell's test rows: the parent's, scores pulled towards 0.5 and noisier the more they are."""
    test = frames[frames.split == "test"].copy()
    noise = np.random.default_rng([seed, k]).normal(0, 0.02 + 0.4 * (1 - shrink), len(test))
    s = np.clip(0.5 + shrink * (test.score.to_numpy() - 0.5) + noise, 0, 1)
    test["score"] = s if decimals is None else np.round(s, decimals)
    test["cell_id"] = cid
    return test


def fill_store(
    root: Path,
    seeds: tuple[int, ...] = (0, 1),
    origin: str = "demo",
    decimals: int | None = None,
    conditions: dict[str, tuple[dict, float]] = CONDITIONS,
    detector: str = "resnet34",
    rng_offset: int = 0,
) -> ScoreStore:
    """Two seeds' cells (as the runner records them) and, for each, one derived cell per condition."""
    store = ScoreStore(root)
    for seed in seeds:
        cid = f"cell{seed:04d}" if detector == "resnet34" else f"{detector}{seed:04d}"
        config = {
            "grid": "g1",
            "detector": detector,
            "seed": seed,
            "train_set": {"name": "dom-A", "dataset": "dom-A", "methods": []},
            "test_sets": [{"name": s, "dataset": s, "methods": []} for s in SETS],
            "origin": origin,
        }
        record = {
            "grid": "g1",
            "detector": detector,
            "train_set": "dom-A",
            "seed": seed,
            "config": config,
            "pretrained_loaded": False,
            "recipe_source": "test recipe",
            "recipe_overrides": {"epochs": [10, 2]},
            "arch_overrides": {"input_size": 32},
            "best_val_auc": 0.9,
            "checkpoint": f"/x/{cid}/best.ckpt",
            "versions": {"torch": "2.x"},
            "timings": {"fit_s": 1.0, "test_s": 0.5},
        }
        rng = np.random.default_rng(seed + rng_offset)
        frames = _frames(cid, seed, rng, decimals, detector)
        store.write_cell(cid, frames, record)
        parent = store.record(cid)
        for k, (tag, (keys, shrink)) in enumerate(conditions.items()):
            kid = f"{cid}-c{k}"
            cond = {
                n: ({**v, "seed": 0, "kind": "image"} if n == "perturbation" else v) for n, v in keys.items()
            }
            child = {
                **record,
                "config": {**config, **cond},
                "parent_cell_id": cid,
                "perturbation": {
                    "tag": tag,
                    "distortion": cond.get("perturbation"),
                    "view": cond.get("view"),
                },
                "parent": {"finished_at": parent["finished_at"]},
            }
            store.write_cell(kid, child_frames(frames, kid, seed, k, shrink, decimals), child)
    store.write_record("crashed0", {"config": {}}, "failed")  # failed cells never reach a leaderboard
    return store


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _analysed(
    root: Path, n_boot: int, normalisation: NormalisationSettings = SMALL_NORMALISATION
) -> tuple[Group, Analysis]:
    (group,) = collect(ScoreStore(root))
    return group, analyse(group, n_boot=n_boot, normalisation=normalisation)


# --------------------------------------------------------------------------- independent references


def brute_auc(reals: np.ndarray, fakes: np.ndarray) -> float:
    """P(f > r) + 1/2 P(f = r) over every (real, fake) pair, by broadcasting; NaN when a side is empty."""
    if len(reals) == 0 or len(fakes) == 0:
        return float("nan")
    f, r = np.asarray(fakes)[:, None], np.asarray(reals)[None, :]
    return float(((f > r) + 0.5 * (f == r)).mean())


class Reference:
    """One cell's numbers computed without benchmark.metrics: video scores from exact Fractions, AUCs by
    brute force or scikit-learn, EER and its threshold from exact ROC vertices, summaries by hand."""

    def __init__(
        self,
        test: pd.DataFrame,
        val: pd.DataFrame | None = None,
        record: dict | None = None,
        normalised: Any = None,
        perturbed: dict[str, pd.DataFrame] | None = None,
        shortcut: Reference | None = None,
        features: tuple[str, ...] = (),
    ):
        self.units = {"frame": test, "video": exact_video_scores(test)}
        self.val = val
        self.record = record or {}
        self.normalised_result = normalised  # the protocol's recorded draws (NormalisationResult)
        self._normalised: dict[str, dict[str, np.ndarray]] = {}
        self.perturbed = perturbed or {}  # test frames of the derived cells, by condition tag
        self.shortcut = shortcut  # the shortcut detector's Reference (confounds), if any
        self.features = features  # the confound columns the test frames carry
        self._scores = {
            (level, d, y): g.score.to_numpy()
            for level, u in self.units.items()
            for (d, y), g in u.groupby(["dataset", "label"])
        }
        self._summary: dict[str, dict[str, float]] = {}

    def entry(self, level: str, i: str, j: str) -> float:
        none = np.array([])
        return brute_auc(self._scores.get((level, i, 0), none), self._scores.get((level, j, 1), none))

    def summary(self, level: str) -> dict[str, float]:
        if level not in self._summary:
            self._summary[level] = self._by_hand(level)
        return self._summary[level]

    def _by_hand(self, level: str) -> dict[str, float]:
        """By hand; an undefined entry (a resample with one class) is left out, as documented."""
        diag = [x for x in (self.entry(level, d, d) for d in SETS) if not np.isnan(x)]
        off = {(i, j): self.entry(level, i, j) for i in SETS for j in SETS if i != j}
        pairs = [(off[i, j] + off[j, i]) / 2 for a, i in enumerate(SETS) for j in SETS[a + 1 :]]
        offv = [x for x in off.values() if not np.isnan(x)]
        pairs = [x for x in pairs if not np.isnan(x)]
        out = {
            "diag_mean": sum(diag) / len(diag) if diag else np.nan,
            "offdiag_mean": sum(offv) / len(offv) if offv else np.nan,
            "pair_mean": sum(pairs) / len(pairs) if pairs else np.nan,
            "worst": min(offv) if offv else np.nan,
        }
        out["shift_gap"] = out["diag_mean"] - out["offdiag_mean"]
        return out

    def matched(self, pair: tuple[str, str]) -> dict[str, float]:
        return matched_reference(self.units["frame"], list(self.features), *pair)

    def robust(self) -> tuple[float, float]:
        """Mean video AUC under each DeeperForensics distortion, mean over its levels, then over distortions
        (LipForensics' summary); views are not distortions. With the number of (distortion, level) pairs."""
        by: dict[str, list[float]] = {}
        for tag, frames in self.perturbed.items():
            name, at, _level = tag.partition("@")
            if at and name in DEEPERFORENSICS:
                by.setdefault(name, []).append(Reference(frames).summary("video")["diag_mean"])
        n = sum(len(v) for v in by.values())
        return (sum(sum(v) / len(v) for v in by.values()) / len(by), float(n)) if n else (np.nan, 0.0)

    def videos(self, d: str) -> pd.DataFrame:
        v = self.units["video"]
        return v[v.dataset == d]

    def transfer(self, d: str) -> tuple[float, float]:
        vv = exact_video_scores(self.val)
        t = exact_eer_threshold(vv.label.to_numpy(), vv.score.to_numpy())
        u = self.videos(d)
        return accuracy_score(u.label, (u.score >= t).astype(int)), t

    def _val_videos(self) -> pd.DataFrame:
        return exact_video_scores(self.val)

    def source_threshold(self, name: str) -> float:
        """The source val split's EER threshold (exact ROC vertices) or its FPR threshold (sklearn roc_curve)."""
        vv = self._val_videos()
        if name == "eer":
            return exact_eer_threshold(vv.label.to_numpy(), vv.score.to_numpy())
        alpha = float(name.split("@")[1])
        fpr, _, thr = roc_curve(vv.label, vv.score, drop_intermediate=False)
        return float(thr[np.flatnonzero(fpr <= alpha)[-1]])

    def rates(self, d: str, name: str) -> tuple[float, float, float]:
        u = self.videos(d)
        pred = (u.score >= self.source_threshold(name)).astype(int)
        return (
            recall_score(u.label, pred),
            1 - recall_score(u.label, pred, pos_label=0),
            balanced_accuracy_score(u.label, pred),
        )

    def oracle(self, d: str, alpha: float) -> float:
        u = self.videos(d)
        fpr, tpr, _ = roc_curve(u.label, u.score, drop_intermediate=False)
        return float(tpr[fpr <= alpha].max())

    def normalised(self, method: str) -> dict[str, np.ndarray]:
        """Per repeat, the summaries of the matrix after ``method``, from the reference matrices."""
        if method in self._normalised:
            return self._normalised[method]
        res = self.normalised_result
        test = self.units["frame"]
        mats = np.stack(
            [reference_normalised_matrix(test, self.val, res, method, r) for r in range(res.settings.repeats)]
        )
        raw = self.summary("video")
        off = ~np.eye(len(SETS), dtype=bool)
        out = {
            "norm_diag": np.array([np.nanmean(np.diag(m)) for m in mats]),
            "norm_offdiag": np.array([np.nanmean(m[off]) for m in mats]),
            "norm_worst": np.array([np.nanmin(m[off]) for m in mats]),
        }
        gap = raw["diag_mean"] - raw["offdiag_mean"]
        out["shift_closed"] = (
            (out["norm_offdiag"] - raw["offdiag_mean"]) / gap if gap > 0 else out["norm_offdiag"] * np.nan
        )
        return out


# one reference per declared column, keyed (table, column key): a new column needs one here
Ref = Callable[[Reference, Any], Any]
REFERENCES: dict[tuple[str, str], Ref] = {
    ("group", "video_auc"): lambda r, d: r.summary("video")["diag_mean"],
    ("group", "frame_auc"): lambda r, d: r.summary("frame")["diag_mean"],
    ("group", "pair_mean"): lambda r, d: r.summary("video")["pair_mean"],
    ("group", "worst"): lambda r, d: r.summary("video")["worst"],
    ("group", "shift_gap"): lambda r, d: r.summary("video")["shift_gap"],
    ("group", "offdiag_mean"): lambda r, d: r.summary("video")["offdiag_mean"],
    ("group", "robust_auc"): lambda r, d: r.robust(),
    ("per_set", "videos"): lambda r, d: ((r.videos(d).label == 0).sum(), (r.videos(d).label == 1).sum()),
    ("per_set", "frame_auc"): lambda r, d: roc_auc_score(
        r.units["frame"].label[r.units["frame"].dataset == d],
        r.units["frame"].score[r.units["frame"].dataset == d],
    ),
    ("per_set", "video_auc"): lambda r, d: r.entry("video", d, d),
    ("per_set", "eer"): lambda r, d: float(
        exact_eer(r.videos(d).label.to_numpy(), r.videos(d).score.to_numpy())
    ),
    ("per_set", "ap"): lambda r, d: average_precision_score(r.videos(d).label, r.videos(d).score),
    ("per_set", "acc"): lambda r, d: accuracy_score(
        r.videos(d).label, (r.videos(d).score >= 0.5).astype(int)
    ),
    ("per_set", "acc_val_thr"): lambda r, d: r.transfer(d),
    ("per_seed", "video_auc"): lambda r, d: r.summary("video")["diag_mean"],
    ("per_seed", "frame_auc"): lambda r, d: r.summary("frame")["diag_mean"],
    ("per_seed", "pair_mean"): lambda r, d: r.summary("video")["pair_mean"],
    ("per_seed", "worst"): lambda r, d: r.summary("video")["worst"],
    ("per_seed", "shift_gap"): lambda r, d: r.summary("video")["shift_gap"],
    ("per_seed", "val_auc"): lambda r, d: r.record["best_val_auc"],
    # reading the shift: operating points at thresholds fixed on the source val split (d: test set)
    ("operating", "op_eer"): lambda r, d: r.rates(d, "eer"),
    ("operating", "op_fpr01"): lambda r, d: r.rates(d, "fpr@0.01"),
    ("operating", "oracle_fpr01"): lambda r, d: r.oracle(d, 0.01),
    ("operating", "op_fpr05"): lambda r, d: r.rates(d, "fpr@0.05"),
    ("operating", "oracle_fpr05"): lambda r, d: r.oracle(d, 0.05),
    # calibration and separation (d: test set)
    ("quality", "ece"): lambda r, d: float(
        exact_ece(r.videos(d).label.to_numpy(), r.videos(d).score.to_numpy(), 15)
    ),
    ("quality", "brier"): lambda r, d: brier_score_loss(r.videos(d).label, r.videos(d).score),
    ("quality", "log_loss"): lambda r, d: log_loss(r.videos(d).label, r.videos(d).score, labels=[0, 1]),
    ("quality", "w1"): lambda r, d: wasserstein_distance(
        r.videos(d).score[r.videos(d).label == 0], r.videos(d).score[r.videos(d).label == 1]
    ),
    # per-domain normalisation (d: method); per-repeat values, the test takes their mean and spread
    ("normalisation", "norm_diag"): lambda r, m: r.normalised(m)["norm_diag"],
    ("normalisation", "norm_offdiag"): lambda r, m: r.normalised(m)["norm_offdiag"],
    ("normalisation", "norm_worst"): lambda r, m: r.normalised(m)["norm_worst"],
    ("normalisation", "shift_closed"): lambda r, m: r.normalised(m)["shift_closed"],
    # paired comparisons (r: detector a's Reference, d: detector b's): the difference a - b of the
    # seed-mean estimates; its interval and p are checked in test_paired_comparisons_match_references
    # confounds (d: an ordered pair (real, fake)); checked in tests/test_confounds_report.py, whose store
    # has the shortcut detector's cell carrying the features
    ("confounds", "raw_auc"): lambda r, p: r.entry("video", *p),
    ("confounds", "matched_auc"): lambda r, p: r.matched(p)["auc"],
    ("confounds", "kept"): lambda r, p: r.matched(p)["kept"],
    ("confounds", "ess"): lambda r, p: (r.matched(p)["ess_real"], r.matched(p)["ess_fake"]),
    ("confounds", "shortcut_auc"): lambda r, p: r.shortcut.entry("video", *p) if r.shortcut else np.nan,
    ("paired", "video_auc"): lambda r, o: r.summary("video")["diag_mean"] - o.summary("video")["diag_mean"],
    ("paired", "pair_mean"): lambda r, o: r.summary("video")["pair_mean"] - o.summary("video")["pair_mean"],
    ("paired", "worst"): lambda r, o: r.summary("video")["worst"] - o.summary("video")["worst"],
}
#: the independent few-shot reference finds its maximum on a grid: within this of ours
FEWSHOT_TOLERANCE = 0.05


def stored_children(root: Path, parent: str) -> dict[str, pd.DataFrame]:
    """The derived cells' test frames of cell ``parent``, by condition tag, read from the store's files."""
    store = ScoreStore(root)
    rows = store.read_scores(derived=True)
    out = {}
    for cid, g in rows.groupby("cell_id"):
        rec = store.record(cid)
        if rec["parent_cell_id"] == parent:
            out[rec["perturbation"]["tag"]] = g.reset_index(drop=True)
    return out


def _declared() -> list[tuple[str, Column]]:
    return (
        [("group", c) for c in columns.group_columns().values()]
        + [("per_set", c) for c in columns.PER_SET.columns]
        + [("per_seed", c) for c in columns.PER_SEED.columns]
        + [("operating", c) for c in columns.OPERATING.columns]
        + [("quality", c) for c in columns.QUALITY.columns]
        + [("normalisation", c) for c in columns.NORMALISATION.columns]
        + [("confounds", c) for c in columns.CONFOUNDS.columns]
        + [("paired", c) for c in columns.PAIRED.columns]
    )


def missing_references() -> list[tuple[str, str]]:
    """``(table, key)`` of every declared column without a reference in :data:`REFERENCES`."""
    return [(t, c.key) for t, c in _declared() if (t, c.key) not in REFERENCES]


def test_every_declared_column_has_a_reference() -> None:
    missing = missing_references()
    assert not missing, f"declare a reference in REFERENCES for {missing}"


def _interval(per_seed_resamples: list[pd.Series], coverage: float = 0.95) -> tuple[float, float]:
    mean = np.mean(np.stack([s.to_numpy(dtype=float) for s in per_seed_resamples]), axis=0)
    mean = mean[np.isfinite(mean)]
    alpha = (1 - coverage) / 2
    return tuple(np.percentile(mean, [100 * alpha, 100 * (1 - alpha)]))


@pytest.mark.parametrize(("seeds", "decimals"), [((0,), None), ((0, 1), None), ((0, 1), 1)])
def test_analysis_values_match_independent_references(tmp_path: Path, seeds, decimals) -> None:
    check_analysis_against_references(tmp_path, seeds, decimals)


def check_analysis_against_references(tmp_path: Path, seeds: tuple[int, ...], decimals: int | None) -> None:
    """Every declared column (and the matrix), value and interval, against REFERENCES; intervals from the
    bootstrap's generic path (a brute-force statistic of each resampled frames table, same draws).

    The harness a new column goes through (``tests/test_extending.py`` runs it on the toy column of
    docs/EXTENDING.md)."""
    n_boot = 40
    fill_store(tmp_path / "store", seeds=seeds, decimals=decimals)
    group, a = _analysed(tmp_path / "store", n_boot)
    frames = [group.scores[r["cell_id"]] for r in group.records]
    refs = [
        Reference(
            f[f.split == "test"].reset_index(drop=True),
            f[f.split == "val"],
            r,
            cell.normalised,
            perturbed=stored_children(tmp_path / "store", r["cell_id"]),
        )
        for f, r, cell in zip(frames, group.records, a.cells, strict=True)
    ]

    def expect(table: str, key: str, d: Any = None) -> Any:
        vals = [REFERENCES[table, key](r, d) for r in refs]
        return (
            tuple(np.mean(np.array(vals, dtype=float), axis=0))
            if isinstance(vals[0], tuple)
            else np.mean(vals)
        )

    # intervals: each seed's resamples through the generic path, every ci statistic by brute force
    ci_cols = [(t, c) for t, c in _declared() if c.ci and t in ("group", "per_set")]

    def resample_stats(sub: pd.DataFrame) -> dict[str, float]:
        r = Reference(sub)
        out = {
            f"{t}|{c.key}|{d}": REFERENCES[t, c.key](r, d)
            for t, c in ci_cols
            for d in (SETS if t == "per_set" else [None])
        }
        out.update({f"entry|{i}|{j}": r.entry("video", i, j) for i in SETS for j in SETS})
        return out

    boots = [bootstrap(ref.units["frame"], resample_stats, n=n_boot, seed=0).samples for ref in refs]

    for table, c in _declared():
        if table == "paired":  # two detectors: test_paired_comparisons_match_references
            continue
        if table == "confounds":  # needs the shortcut's cell: tests/test_confounds_report.py
            continue
        if table == "normalisation":  # per method: the mean over repeats and the spread of the repeats
            for m in METHOD_NAMES:
                reps = np.mean(
                    [REFERENCES[table, c.key](r, m) for r in refs], axis=0
                )  # repeat-wise seed mean
                got = a.normalisation[m][c.key]
                tol = FEWSHOT_TOLERANCE if m == "fewshot_offset" else 1e-12
                per_seed = [np.nanmean(REFERENCES[table, c.key](r, m)) for r in refs]
                if np.isnan(per_seed).all():
                    assert np.isnan(got.value), (c.key, m)
                    continue
                assert got.value == pytest.approx(np.mean(per_seed), abs=tol), (c.key, m)
                lo, hi = np.percentile(reps[np.isfinite(reps)], [2.5, 97.5])
                assert (got.lo, got.hi) == pytest.approx((lo, hi), abs=tol), (c.key, m)
            continue
        for d in SETS if table in ("per_set", "operating", "quality") else [None]:
            if table in ("operating", "quality"):
                got = getattr(a, table)[d][c.key]
                assert got.value == pytest.approx(expect(table, c.key, d), abs=1e-12), (table, c.key, d)
                continue
            if table == "per_seed":
                for r, got in zip(refs, a.per_seed, strict=True):
                    assert got[c.key] == pytest.approx(REFERENCES[table, c.key](r, d), abs=1e-12), c.key
                continue
            got = a.summary[c.key] if table == "group" else a.per_set[d][c.key]
            assert got.value == pytest.approx(expect(table, c.key, d), abs=1e-12), (table, c.key, d)
            if c.ci:
                lo, hi = _interval([b[f"{table}|{c.key}|{d}"] for b in boots])
                assert (got.lo, got.hi) == pytest.approx((lo, hi), abs=1e-12), (table, c.key, d)
            else:
                assert np.isnan(got.lo) and np.isnan(got.hi)
    for i in SETS:
        for j in SETS:
            assert a.matrix.loc[i, j] == pytest.approx(
                np.mean([r.entry("video", i, j) for r in refs]), abs=1e-12
            )
            lo, hi = _interval([b[f"entry|{i}|{j}"] for b in boots])
            assert (a.matrix_lo.loc[i, j], a.matrix_hi.loc[i, j]) == pytest.approx((lo, hi), abs=1e-12)
    off = {(i, j): a.matrix.loc[i, j] for i in SETS for j in SETS if i != j}
    assert a.worst_pair == min(off, key=off.get)
    assert [s["val_auc"] for s in a.per_seed] == [0.9] * len(seeds)


def test_leaderboard_is_byte_identical_on_re_render(tmp_path: Path) -> None:
    fill_store(tmp_path / "store")
    first = render(tmp_path / "store", tmp_path / "lb", n_boot=200)
    d1 = _digest(tmp_path / "lb")
    assert {p.name for p in first} >= {"README.md", "resnet34.md", "resnet34-dom-A-cross_auc.png"}
    render(tmp_path / "store", tmp_path / "lb2", n_boot=200)
    render(tmp_path / "store", tmp_path / "lb", n_boot=200)
    assert _digest(tmp_path / "lb") == d1
    assert _digest(tmp_path / "lb2") == d1


def test_leaderboard_content_matches_the_metrics(tmp_path: Path) -> None:
    store = fill_store(tmp_path / "store", seeds=(0,))
    group, a = _analysed(tmp_path / "store", 100)
    assert [r["cell_id"] for r in group.records] == ["cell0000"]  # the failed cell is not a group member
    test = store.read_scores(split="test")
    m = cross_auc_matrix(test, datasets=SETS)
    pd.testing.assert_frame_equal(a.matrix, m, check_exact=True)  # every Cross-AUC entry is the metric's
    for ds in SETS:  # per-test-set frame AUC, independently from the frames
        d = test[test.dataset == ds]
        assert a.per_set[ds]["frame_auc"].value == pytest.approx(auc(d.label, d.score), abs=1e-12)
        assert a.per_set[ds]["videos"].value == (6, 6)
    worst = min((m.loc[i, j], i, j) for i in SETS for j in SETS if i != j)
    assert a.worst_pair == (worst[1], worst[2])
    assert (group.origin, group.pretrained, group.seeds) == ("demo", "no (random init)", "0")


def test_two_seeds_are_averaged(tmp_path: Path) -> None:
    store = fill_store(tmp_path / "store", seeds=(0, 1))
    group, a = _analysed(tmp_path / "store", 100)
    test = store.read_scores(split="test")
    per_seed = [cross_auc_matrix(test[test.seed == s], datasets=SETS).loc["dom-B", "dom-C"] for s in (0, 1)]
    assert a.matrix.loc["dom-B", "dom-C"] == pytest.approx(np.mean(per_seed), abs=1e-12)
    assert [(r["config"]["seed"], r["cell_id"]) for r in group.records] == [(0, "cell0000"), (1, "cell0001")]
    assert len(a.per_seed) == 2 and group.seeds == "0, 1"


def test_markdown_is_printed_from_the_declarations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every declared table appears as its declarations print the analysis; a column added to a
    declaration (here a per-set pooled count) appears with its value and explanation, nothing else edited."""
    extra = Column(
        "n_frames",
        "frames",
        lambda v: v.metric("n_real") + v.metric("n_fake"),
        "frame",
        fmt=lambda v, a: str(int(v.value)),
        explanation="*frames*: scored frames of the test set.",
    )
    per_set = Table(columns.PER_SET.labels, (*columns.PER_SET.columns, extra))
    monkeypatch.setattr(columns, "PER_SET", per_set)
    fill_store(tmp_path / "store", seeds=(0, 1))
    render(tmp_path / "store", tmp_path / "lb", n_boot=60)
    readme = (tmp_path / "lb" / "README.md").read_text()
    page = (tmp_path / "lb" / "g1" / "resnet34.md").read_text()
    group, a = _analysed(tmp_path / "store", 60)

    assert "> " + columns.cross_auc_note() in readme and columns.cross_auc_note() in page
    assert columns.cross_auc_note().endswith("; ".join(columns.SUMMARY.explanations()) + ".")
    assert md_table(columns.SUMMARY.headers, [columns.SUMMARY.row(group, a.summary, a)]) in readme
    set_rows = [per_set.row(d, a.per_set[d], a) for d in SETS]
    notes = "\n\n".join(per_set.explanations())
    assert md_table(per_set.headers, set_rows) + "\n\n" + notes + "\n" in page
    assert columns.EER_EXPLANATION in notes and "*frames*" in notes
    assert [r[-1] for r in set_rows] == ["36"] * 3  # 12 videos x 3 frames in each test set
    seed_rows = [columns.PER_SEED.row(r, v, a) for r, v in zip(group.records, a.per_seed, strict=True)]
    assert md_table(columns.PER_SEED.headers, seed_rows) in page
    sentence = "; ".join(f"{c.header} {c.fmt(a.summary[c.key], a)}" for c in columns.MATRIX_SENTENCE) + "."
    assert sentence in page
    for i in SETS:  # the Cross-AUC matrix table
        cells = [fmt_ci(a.matrix.loc[i, j], a.matrix_lo.loc[i, j], a.matrix_hi.loc[i, j]) for j in SETS]
        assert f"| **{i}** | " + " | ".join(cells) + " |" in page
    # what the declarations print
    assert "[resnet34](g1/resnet34.md)" in readme and "no (random init)" in readme and "demo" in readme
    wp = a.worst_pair
    assert f"({wp[0]} -> {wp[1]})" in readme and f"({wp[0]} reals vs {wp[1]} fakes)" in page
    assert "| epochs | 10 | 2 |" in page and "| input_size | (default) | 32 |" in page  # overrides table
    assert "crashed0" not in readme + page


def test_a_ci_column_must_read_bootstrap_statistics_only(tmp_path: Path) -> None:
    fill_store(tmp_path / "store", seeds=(0,))
    (group,) = collect(ScoreStore(tmp_path / "store"))
    bad = replace(next(c for c in columns.PER_SET.columns if c.key == "eer"), ci=True)  # no resamples
    cell = analyse_cell(group.records[0], group.scores["cell0000"], SETS, 10)
    with pytest.raises(ValueError, match="ci=True can only read bootstrap statistics"):
        combine(bad.fn, [View(cell, bad.level, "dom-A")], True, 0.95)


def test_leaderboard_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--store", str(tmp_path / "none"), "--out", str(tmp_path / "lb")]) == 2
    fill_store(tmp_path / "store", seeds=(0,))
    assert main(["--store", str(tmp_path / "store"), "--out", str(tmp_path / "lb"), "--bootstrap", "50"]) == 0
    assert (tmp_path / "lb" / "README.md").is_file()


def test_cells_of_other_settings_are_listed_not_averaged(tmp_path: Path) -> None:
    """A grid edited between two runs leaves cells of the old settings in the store: the page scores only
    the latest settings and lists the older cell with what differs, instead of calling it another seed."""
    store = fill_store(tmp_path / "store", seeds=(0,))
    old = store.record("cell0000")
    new_config = {**old["config"], "overrides": {"epochs": 1}}
    new = {**old, "config": new_config, "finished_at": "2026-01-02T00:00:00+00:00"}
    frames = _frames("cellnew0", 0, np.random.default_rng(7))
    store.write_cell("cellnew0", frames, new)
    store.write_record("cell0000", {**old, "finished_at": "2026-01-01T00:00:00+00:00"}, "done")
    group, a = _analysed(tmp_path / "store", 50)
    assert [r["cell_id"] for r in group.records] == ["cellnew0"] and group.seeds == "0"
    assert [r["cell_id"] for r in group.superseded] == ["cell0000"]
    m = cross_auc_matrix(frames[frames.split == "test"], datasets=SETS)
    assert a.matrix.loc["dom-B", "dom-C"] == pytest.approx(m.loc["dom-B", "dom-C"], abs=1e-12)
    render(tmp_path / "store", tmp_path / "lb", n_boot=50)
    page = (tmp_path / "lb" / "g1" / "resnet34.md").read_text()
    readme = (tmp_path / "lb" / "README.md").read_text()
    assert "Seeds: 0." in page and "Seeds: 0, 0" not in page
    assert "### Superseded cells" in page
    assert "| 0 | `cell0000` | 2026-01-01T00:00:00+00:00 | overrides.epochs = null |" in page
    assert "| demo | 0 |" in readme  # one seed in the README row too


def test_the_page_header_names_the_reference(tmp_path: Path) -> None:
    """``paper`` or ``released`` (``detectors.settings``); records written before references were paper."""
    store = fill_store(tmp_path / "store", seeds=(0,))
    render(tmp_path / "store", tmp_path / "lb", n_boot=20)
    assert "Reference: paper." in (tmp_path / "lb" / "g1" / "resnet34.md").read_text()
    store.write_record("cell0000", {**store.record("cell0000"), "reference": "released"}, "done")
    render(tmp_path / "store", tmp_path / "lb", n_boot=20)
    page = (tmp_path / "lb" / "g1" / "resnet34.md").read_text()
    assert "Reference: released." in page and "### Overrides from the reference's recipe" in page


def test_paired_comparisons_match_references(tmp_path: Path) -> None:
    """Two detectors scored on the same videos, two seeds each: the comparison page's differences,
    intervals and p-values against a brute-force paired bootstrap (the generic path on one table holding
    both detectors' scores, so the draws are shared by construction), Holm from statsmodels and the
    t-test over seeds from scipy."""
    from scipy.stats import ttest_rel
    from statsmodels.stats.multitest import multipletests

    from benchmark.report.comparisons import compare_grid

    n_boot = 50
    fill_store(tmp_path / "store", seeds=(0, 1), decimals=2)
    fill_store(tmp_path / "store", seeds=(0, 1), decimals=2, detector="xception", rng_offset=17)
    groups = collect(ScoreStore(tmp_path / "store"))
    items = [(g, analyse(g, n_boot=n_boot, normalisation=SMALL_NORMALISATION)) for g in groups]
    assert [g.detector for g, _ in items] == ["resnet34", "xception"]
    cmp = compare_grid("g1", items)
    key = ("dom-A", "resnet34", "xception")
    assert list(cmp.pairs) == [key] and not cmp.not_paired and cmp.n_family == 3

    def tests_of(g: Group) -> list[pd.DataFrame]:
        return [g.scores[r["cell_id"]].query("split == 'test'").reset_index(drop=True) for r in g.records]

    ta, tb = tests_of(items[0][0]), tests_of(items[1][0])
    refs_a, refs_b = [Reference(t) for t in ta], [Reference(t) for t in tb]

    def both(sub: pd.DataFrame) -> dict[str, float]:
        out = {}
        for name, col in (("a", "score"), ("b", "score_b")):
            r = Reference(sub.assign(score=sub[col]))
            for c in columns.COMPARED:
                out[f"{c.key}|{name}"] = REFERENCES["group", c.key](r, None)
        return out

    boots = [
        bootstrap(a.assign(score_b=b["score"].to_numpy()), both, n=n_boot, seed=0).samples
        for a, b in zip(ta, tb, strict=True)
    ]
    ps = []
    for c in columns.COMPARED:
        got = cmp.pairs[key][c.key]
        est = np.mean([REFERENCES["paired", c.key](ra, rb) for ra, rb in zip(refs_a, refs_b, strict=True)])
        assert got.estimate == pytest.approx(est, abs=1e-12), c.key
        d = np.mean([b[f"{c.key}|a"] for b in boots], axis=0) - np.mean(
            [b[f"{c.key}|b"] for b in boots], axis=0
        )
        d = d[np.isfinite(d)]
        assert (got.lo, got.hi) == pytest.approx(tuple(np.percentile(d, [2.5, 97.5])), abs=1e-12), c.key
        tail = min((d <= 0).sum(), (d >= 0).sum())
        assert got.p == pytest.approx(min(1.0, 2 * (1 + tail) / (len(d) + 1)), abs=1e-12), c.key
        ps.append(got.p)
        # over seeds: mean +- std and the paired t-test
        va = [REFERENCES["group", c.key](r, None) for r in refs_a]
        vb = [REFERENCES["group", c.key](r, None) for r in refs_b]
        m, sd, n = cmp.seed_stats["dom-A", "resnet34"][c.key]
        assert (m, sd, n) == pytest.approx((np.mean(va), np.std(va, ddof=1), 2), abs=1e-12)
        t = cmp.seed_tests[key][c.key]
        ref = ttest_rel(va, vb)
        assert t.seeds == (0, 1)
        np.testing.assert_allclose([t.t, t.p], [ref.statistic, ref.pvalue], rtol=1e-9, atol=1e-12)
    holm = multipletests(ps, method="holm")[1]
    assert [cmp.pairs[key][c.key].p_holm for c in columns.COMPARED] == pytest.approx(list(holm), abs=1e-12)

    render(tmp_path / "store", tmp_path / "lb", n_boot=n_boot, normalisation=SMALL_NORMALISATION)
    page = (tmp_path / "lb" / "g1" / "comparisons.md").read_text()
    readme = (tmp_path / "lb" / "README.md").read_text()
    assert "[g1/comparisons.md](g1/comparisons.md)" in readme
    assert (
        md_table(columns.PAIRED.headers, [columns.PAIRED.row(("resnet34", "xception"), cmp.pairs[key], None)])
        in page
    )
    assert "## Over seeds" in page and "| resnet34 - xception | dom-A | 0, 1 |" in page


def test_paired_comparisons_refuse_detectors_scored_on_other_videos(tmp_path: Path) -> None:
    from benchmark.report.comparisons import compare_grid

    fill_store(tmp_path / "store", seeds=(0,))
    store = fill_store(tmp_path / "other", seeds=(0,), detector="xception", rng_offset=5)
    frames = store.read_scores()
    frames = frames[frames.video_id != "dom-B/test/1/v3"]  # one video fewer
    rec = store.record("xception0000")
    ScoreStore(tmp_path / "store").write_cell("xception0000", frames.drop(columns=["seed"]), rec)
    groups = collect(ScoreStore(tmp_path / "store"))
    items = [(g, analyse(g, n_boot=20, normalisation=SMALL_NORMALISATION)) for g in groups]
    cmp = compare_grid("g1", items)
    assert not cmp.pairs
    assert "dom-B" in cmp.not_paired["dom-A", "resnet34", "xception"]
    render(tmp_path / "store", tmp_path / "lb", n_boot=20, normalisation=SMALL_NORMALISATION)
    assert (
        "Not compared: `resnet34` and `xception`: test set 'dom-B' has other videos"
        in (tmp_path / "lb" / "g1" / "comparisons.md").read_text()
    )

"""Perf topic ``metrics``: the one-sort Cross-AUC matrix and video bootstrap against naive scikit-learn.

Figures (synthetic scores with per-dataset offsets and ties):
* frame-level Cross-AUC matrix + summary, 4 datasets x 250,000 frames; baseline: one
  ``sklearn.metrics.roc_auc_score`` per cell on the explicit concatenation of real_i and fake_j (the
  arrays taken from the same table, no validation). Ours twice: from a validated ``Scores`` (validation
  is done once per table and shared by every metric of an analysis; target >= 10x the baseline), and
  from the raw table, its validation included (target < 5 s). Baseline and ours run in alternating
  rounds and each ratio is the median of the per-round ratios, so a change of the machine's load hits
  both sides of a ratio.
* 1,000-resample video-level bootstrap of the whole matrix (cells, summaries, pooled AUC), 4 datasets x
  2,000 videos (target >= 100x the baseline, and < 30 s); baseline: per resample, a resampled video
  table and 16 ``roc_auc_score`` calls. The baseline is timed on fewer resamples and scaled to 1,000 (it
  is linear in the number of resamples), as its figure's note says; baseline and ours alternate, the
  ratio is the median of the per-round ratios.

* exact video means (``benchmark.metrics.means``: the float64 nearest to each video's exact mean, so
  equal means tie), 4 datasets x 250,000 frames in videos of 50 (target < 1 s); baseline: the float
  ``np.bincount`` sum divided by the counts (what the means were before, order-dependent in the last bit).

Both baselines of the metrics are checked to give the same numbers as ours before anything is timed.
"""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from benchmark.metrics import Scores, bootstrap, cross_auc_matrix, cross_auc_summary, video_scores
from benchmark.metrics.means import exact_group_means
from benchmark.metrics.resample import pair_name
from benchmark.perf.timing import Figure, duration, measure, with_ratio

TOPIC = "metrics"
DATASETS = ("CDF-v2", "DFDC", "DFDCP", "DFD")


def synthetic_frames(frames_per_dataset: int, frames_per_video: int, seed: int = 0) -> pd.DataFrame:
    """Frames of len(DATASETS) datasets; scores shifted per dataset and rounded to 1e-3 (many ties)."""
    rng = np.random.default_rng(seed)
    n_vid = frames_per_dataset // frames_per_video
    parts = []
    for k, d in enumerate(DATASETS):
        label = np.arange(n_vid) % 2
        video = np.char.add(
            np.char.add(f"{d}/", np.where(label, "fake/", "real/")), np.arange(n_vid).astype(str)
        )
        vscore = rng.normal(0.4 * k + 1.2 * label, 1.0)
        rep = np.repeat(np.arange(n_vid), frames_per_video)
        logit = vscore[rep] + rng.normal(0, 0.5, len(rep))
        frame_no = np.tile(np.arange(frames_per_video).astype(str), n_vid)
        parts.append(
            pd.DataFrame(
                {
                    "dataset": d,
                    "video_id": video[rep],
                    "sample_id": np.char.add(np.char.add(video[rep], "/"), frame_no),
                    "label": label[rep],
                    "score": np.round(1 / (1 + np.exp(-logit)), 3),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def naive_matrix(units: pd.DataFrame, datasets=DATASETS) -> np.ndarray:
    """Per-cell scikit-learn reference: AUC of the explicit concatenation of real_i and fake_j."""
    out = np.full((len(datasets), len(datasets)), np.nan)
    ds, lab, sc = units["dataset"].to_numpy(), units["label"].to_numpy(), units["score"].to_numpy()
    for i, di in enumerate(datasets):
        r = sc[(ds == di) & (lab == 0)]
        for j, dj in enumerate(datasets):
            f = sc[(ds == dj) & (lab == 1)]
            out[i, j] = roc_auc_score(np.r_[np.zeros(len(r)), np.ones(len(f))], np.r_[r, f])
    return out


def naive_bootstrap(frames: pd.DataFrame, n: int, seed: int = 0) -> np.ndarray:
    """``n`` resamples of videos within each dataset, each a new video table and a per-cell sklearn matrix."""
    vids = video_scores(frames)
    rng = np.random.default_rng(seed)
    per_ds = [vids[vids["dataset"] == d] for d in DATASETS]
    out = []
    for _ in range(n):
        sample = pd.concat([v.iloc[rng.integers(0, len(v), len(v))] for v in per_ds], ignore_index=True)
        out.append(naive_matrix(sample))
    return np.stack(out)


def _frame_matrix(frames: pd.DataFrame | Scores) -> dict:
    return cross_auc_summary(cross_auc_matrix(frames, level="frame", datasets=DATASETS))


def _frame_matrix_figures(frames: pd.DataFrame, rounds: int, quick: bool) -> list[Figure]:
    """Naive sklearn matrix, ours from validated ``Scores``, ours from the raw table: alternating rounds."""
    scores = Scores.from_frames(frames, datasets=DATASETS)
    scores.units("frame")  # validated and numbered once, as an analysis does before its metrics
    size = f"{len(DATASETS)} x {len(frames) // len(DATASETS):,} frames"
    jobs = {
        f"naive sklearn per-cell matrix, {size}": (lambda: naive_matrix(frames), ""),
        f"Cross-AUC matrix + summary (frame level) from validated Scores, {size}": (
            lambda: _frame_matrix(scores),
            ">= 10x baseline",
        ),
        f"Cross-AUC matrix + summary (frame level), frames table validated in the call, {size}": (
            lambda: _frame_matrix(frames),
            "< 5 s",
        ),
    }
    for fn, _ in jobs.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {name: [] for name in jobs}
    for _ in range(rounds):
        for name, (fn, _) in jobs.items():
            times[name] += measure(fn, repeat=1)
    (base_name, *names) = jobs
    base = duration(TOPIC, base_name, times[base_name])
    figs = [base]
    for name in names:
        fig = with_ratio(duration(TOPIC, name, times[name], target="" if quick else jobs[name][1]), base)
        per_round = [b / t for t, b in zip(times[name], times[base_name], strict=True)]
        fig.ratio = statistics.median(per_round)
        fig.note = (
            f"ratio: median of {rounds} per-round ratios (min {min(per_round):.2f}, max {max(per_round):.2f})"
        )
        figs.append(fig)
    return figs


def run(quick: bool = False) -> list[Figure]:
    """Time the frame-level matrix and the video-level bootstrap; print ratios against sklearn baselines."""
    repeat = 1 if quick else 3
    n_frames = 25_000 if quick else 250_000
    n_videos = 500 if quick else 2_000
    n_boot = 100 if quick else 1_000
    n_boot_base = 10 if quick else 25
    figs: list[Figure] = []

    frames = synthetic_frames(n_frames, frames_per_video=50)
    ours = cross_auc_matrix(frames, level="frame", datasets=DATASETS).to_numpy()
    if not np.allclose(ours, naive_matrix(frames), rtol=0, atol=1e-12):
        raise AssertionError("Cross-AUC matrix differs from the per-cell scikit-learn reference")
    figs += _frame_matrix_figures(frames, rounds=1 if quick else 7, quick=quick)

    s = Scores.from_frames(frames)
    video_ids, group = s.require_video()
    values, n_vid = s.score, len(video_ids)
    size = f"{len(DATASETS)} x {n_frames:,} frames, {n_vid:,} videos"
    base = duration(
        TOPIC,
        f"float bincount video means (order-dependent), {size}",
        measure(lambda: np.bincount(group, weights=values) / np.bincount(group), repeat),
    )
    mine = duration(
        TOPIC,
        f"exact video means (nearest float64 to the exact mean), {size}",
        measure(lambda: exact_group_means(values, group, n_vid), repeat),
        target="< 1 s" if not quick else "",
    )
    figs += [base, with_ratio(mine, base)]

    frames_v = synthetic_frames(n_videos * 8, frames_per_video=8, seed=1)
    res = bootstrap(frames_v, "cross_auc", n=n_boot_base, seed=0, datasets=DATASETS)
    if not np.isfinite(res.table["lo"]).all():
        raise AssertionError("bootstrap produced undefined intervals on the synthetic scores")
    est = np.array([[res.table.loc[pair_name(i, j), "estimate"] for j in DATASETS] for i in DATASETS])
    if not np.allclose(est, naive_matrix(video_scores(frames_v)), rtol=0, atol=1e-12):
        raise AssertionError("bootstrap estimate differs from the scikit-learn matrix")
    size = f"{n_boot:,} resamples, {len(DATASETS)} x {n_videos:,} videos"
    scale = n_boot / n_boot_base
    t_base: list[float] = []
    t_mine: list[float] = []
    for _ in range(repeat):  # alternating rounds: naive (scaled), then ours
        t_base += [t * scale for t in measure(lambda: naive_bootstrap(frames_v, n=n_boot_base), 1)]
        t_mine += measure(lambda: bootstrap(frames_v, "cross_auc", n=n_boot, seed=0), 1)
    base = duration(
        TOPIC,
        f"naive sklearn bootstrap (resampled table + per-cell AUC), {size} "
        f"(timed on {n_boot_base}, scaled x{scale:g})",
        t_base,
        note=f"each run timed on {n_boot_base} resamples, scaled x{scale:g}",
    )
    mine = with_ratio(
        duration(
            TOPIC,
            f"video bootstrap of the whole matrix + summaries, {size}",
            t_mine,
            target=">= 100x baseline (and < 30 s)" if not quick else "",
        ),
        base,
    )
    per_round = [b / t for t, b in zip(t_mine, t_base, strict=True)]
    mine.ratio = statistics.median(per_round)
    mine.note = (
        f"ratio: median of {repeat} per-round ratios (min {min(per_round):.2f}, max {max(per_round):.2f})"
    )
    figs += [base, mine]
    return figs

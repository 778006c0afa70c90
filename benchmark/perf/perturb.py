"""Perturbed test loader against the clean one (target: >= 80 % of the clean samples/s per worker).

Data: the loader topic's cache of 256 px crops of a real face (PNG level 0, as preprocessing writes
them), all rows in the ``test`` split and grouped into videos of 8 frames. Each figure is the
``ForgeryDataModule`` test loader (DataSpec of a CLIP detector: 224 px, CLIP mean/std, no masks: the
cheapest test sample that still resizes, so the tightest budget for a perturbation) run in-process, i.e.
one DataLoader worker's work, with ``test_perturbation`` set to one distortion level; the baseline is
the same loader with no perturbation.

The machine is shared (two cores, often a load of 6) and wall-clock rates of the same loader varied 3x
within one run, so the figures are samples per CPU second of the process (``time.process_time``; one
torch and one OpenCV thread, so that is one worker's rate on a core of its own). Every perturbed run is
also paired with a clean run right next to it (clean first in even rounds, second in odd ones, so a
drift cancels), and a figure's ratio is the median over rounds of (perturbed / its paired clean run).
Levels: 1 and 5 of each image distortion (cost grows with the level for block occlusion and falls with
it for the down/up resize), every level of the blur (kernel 7 to 21: its cost grows fastest). Video compression is clip-level (each video's 8 crops encoded as
one H.264 clip) and shown without a target: the issue's target covers the image distortions.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import pandas as pd
import torch

from benchmark.perf.loader import write_cache
from benchmark.perf.timing import Figure, throughput, with_ratio

TOPIC = "perturb"
TARGET = ">= 0.8x baseline"
FRAMES_PER_VIDEO = 8


def write_test_cache(root: Path, n: int) -> Path:
    """``n`` test crops (half real, half fake) in videos of ``FRAMES_PER_VIDEO`` frames."""
    path = write_cache(root, n)
    df = pd.read_parquet(path).iloc[:n].copy()
    df["split"] = "test"
    k = df.index.to_numpy() // 2  # position among the rows of the same label
    df["video_id"] = [f"perf/{m}/{j // FRAMES_PER_VIDEO:05d}" for m, j in zip(df["method"], k, strict=True)]
    df["frame_index"] = k % FRAMES_PER_VIDEO
    df.to_parquet(path)
    return path


def cpu_seconds(fn: Callable[[], None]) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def run(quick: bool = False) -> list[Figure]:
    threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)  # one worker's share
    cv2.setNumThreads(1)  # here only: never inside DataLoader workers (it deadlocked forked workers)
    try:
        return _run(quick)
    finally:
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])


def _run(quick: bool) -> list[Figure]:
    from datamodules.loading.datamodule import ForgeryDataModule
    from datamodules.media.perturb import IMAGE_DISTORTIONS, get_perturbation
    from datamodules.spec import CLIP_MEAN, CLIP_STD, DataSpec

    n, rounds = (64, 5) if quick else (96, 25)
    spec = DataSpec(input_size=224, mean=CLIP_MEAN, std=CLIP_STD)
    levels = {"gaussian_blur": (1, 2, 3, 4, 5)}  # the one whose cost grows steeply with the level
    cases = [(name, lv) for name in IMAGE_DISTORTIONS for lv in levels.get(name, (1, 5))]
    cases.append(("video_compression", 1))
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_test_cache(Path(tmp), n)

        def loader_job(perturbation) -> Callable[[], None]:
            dm = ForgeryDataModule(
                spec, train="perf", tests=["perf"], manifests={"perf": manifest}, eval_batch_size=32,
                frames_test=FRAMES_PER_VIDEO, test_perturbation=perturbation,
            )  # fmt: skip
            dm.setup("test")
            loader = dm.test_dataloader()[0]

            def epoch() -> None:
                for _ in loader:
                    pass

            return epoch

        jobs = [("clean test loader @224 (CLIP spec, no masks; in-process = 1 worker)", loader_job(None))]
        for name, level in cases:
            p = get_perturbation(name, level)
            jobs.append((f"{p.tag} {dict(p.params)}", loader_job(p)))
        (base_name, clean), *rest = jobs
        times: dict[str, list[float]] = {name: [] for name, _ in jobs}
        paired: dict[str, list[float]] = {name: [] for name, _ in rest}  # the clean run next to each
        for _, fn in jobs:  # warm-up: file cache, lazy imports, albumentations transforms, noise bank
            fn()
        for r in range(rounds):
            for name, fn in rest:
                first, second = (clean, fn) if r % 2 == 0 else (fn, clean)
                t1, t2 = cpu_seconds(first), cpu_seconds(second)
                t_clean, t_case = (t1, t2) if r % 2 == 0 else (t2, t1)
                times[base_name].append(t_clean)
                paired[name].append(t_clean)
                times[name].append(t_case)
    unit = "samples/CPU-s"
    base = throughput(TOPIC, base_name, n, times[base_name], unit=unit)
    figs = [base]
    for (name, _), (dist, _) in zip(rest, cases, strict=True):
        fig = with_ratio(throughput(TOPIC, name, n, times[name], unit=unit), base)
        per_round = [b / t for t, b in zip(times[name], paired[name], strict=True)]
        fig.ratio = statistics.median(per_round)
        fig.note = (
            f"ratio: median of {rounds} per-round ratios (min {min(per_round):.2f}, max {max(per_round):.2f})"
        )
        if dist == "video_compression":
            fig.note += f"; clip-level: each video's {FRAMES_PER_VIDEO} crops encoded once as H.264"
        else:
            fig.target = TARGET
        figs.append(fig)
    return figs

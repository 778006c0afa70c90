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

Blur implementations (informational, no target): the two largest blur kernels miss the target, so the
same run times, per crop of the cache and including the detector's area resize to 224 px, the library's
blur (albumentations' float ``sepFilter2D``) against the ways to make it cheaper -- the released call
``cv2.GaussianBlur`` (OpenCV's bit-exact fixed point), an 8-bit integer kernel (OpenCV's fixed-point
``sepFilter2D`` path) and the resize done first with sigma scaled by 224/256 -- each with its largest
deviation from the library's output, and the budget a perturbation has at 0.8x of the clean loader.

Perturbation on the device (``ForgeryDataModule(perturb_on_device=True)``): for the four distortions
with a device form (colour saturation, colour contrast, Gaussian blur, the "JPEG" resampling) the test
worker only reads the crops; the same in-process loader then measures that worker (paired with the
clean loader like the others, same target). Informational beside it: the device part (distortion,
resize, normalisation in torch) run on this CPU for lack of a GPU, in CPU ms per sample, with the CPU
path's whole perturbed sample (``1 / rate``) for scale -- on a GPU it runs as batched kernels beside the
model, and this machine cannot say how fast.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from benchmark.perf.loader import write_cache
from benchmark.perf.timing import Figure, duration, throughput, with_ratio

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


def cpu_seconds(fn: Callable[[], object]) -> float:
    """CPU seconds (process time) one call of ``fn`` takes."""
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def run(quick: bool = False) -> list[Figure]:
    """Time the test-time perturbations on one worker's share of the CPU (one torch and one OpenCV thread)."""
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
    device_cases = [
        ("gaussian_blur", 5),
        ("color_saturation", 5),
        ("color_contrast", 5),
        ("jpeg_compression", 1),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_test_cache(Path(tmp), n)
        crops = [
            _read_rgb(manifest.parent / p)
            for p in pd.read_parquet(manifest)["crop_path"][: 8 if quick else 32]
        ]

        def make_dm(perturbation, on_device: bool = False) -> ForgeryDataModule:
            dm = ForgeryDataModule(
                spec, train="perf", tests=["perf"], manifests={"perf": manifest}, eval_batch_size=32,
                frames_test=FRAMES_PER_VIDEO, test_perturbation=perturbation, perturb_on_device=on_device,
            )  # fmt: skip
            dm.setup("test")
            return dm

        def loader_job(perturbation, on_device: bool = False) -> Callable[[], None]:
            loader = make_dm(perturbation, on_device).test_dataloader()[0]

            def epoch() -> None:
                for _ in loader:
                    pass

            return epoch

        jobs = [("clean test loader @224 (CLIP spec, no masks; in-process = 1 worker)", loader_job(None))]
        for name, level in cases:
            p = get_perturbation(name, level)
            jobs.append((f"{p.tag} {dict(p.params)}", loader_job(p)))
        for name, level in device_cases:
            p = get_perturbation(name, level)
            jobs.append((f"{p.tag} {dict(p.params)}, perturb_on_device: the worker", loader_job(p, True)))
        device_parts = [_device_part(make_dm(get_perturbation(*c), True)) for c in device_cases]
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
    for (name, _), (dist, _) in zip(rest, cases + device_cases, strict=True):
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
    clean_ms = 1000.0 / base.value  # CPU ms of one clean test sample
    # CPU ms of one perturbed sample on the CPU path (the figures of `cases`, not the device workers')
    cpu_ms = {f.name.split(" ")[0]: 1000.0 / f.value for f in figs[1 : 1 + len(cases)]}
    for (dist, level), part in zip(device_cases, device_parts, strict=True):
        tag = f"{dist}@{level}"
        fig = duration(
            TOPIC, f"{tag}, perturb_on_device: the device part run on this CPU", part(3 if quick else 9)
        )
        fig.unit = "CPU ms/sample"
        fig.note = (
            f"distortion + resize + normalisation in torch, one thread, batches of 32; the CPU path's whole "
            f"{tag} sample costs {cpu_ms[tag]:.3f} ms in this run (informational: written for a GPU)"
        )
        figs.append(fig)
    return figs + blur_alternatives(crops, spec.input_size, clean_ms, rounds=3 if quick else 9)


def _device_part(dm) -> Callable[[int], list[float]]:
    """CPU ms per sample of ``dm``'s device step on its test batches, one value per round."""
    batches = list(dm.test_dataloader()[0])
    perturber = dm._device_perturb
    n = sum(len(b.image) for b in batches)

    def rounds(k: int) -> list[float]:
        perturber.image(batches[0].image)  # warm-up
        return [cpu_seconds(lambda: [perturber.image(b.image) for b in batches]) * 1000 / n for _ in range(k)]

    return rounds


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR_RGB)
    if img is None:
        raise FileNotFoundError(f"cannot read the crop {path}")
    return img


def _blur_all(fn: Callable[[np.ndarray, int], np.ndarray], crops: list[np.ndarray], k: int) -> None:
    for c in crops:
        fn(c, k)


def _blur_methods(side: int) -> dict[str, Callable[[np.ndarray, int], np.ndarray]]:
    """Blur of kernel ``k`` + the detector's area resize to ``side``, four ways (see the module docstring)."""
    from albumentations.augmentations.blur.functional import create_gaussian_kernel_1d

    from datamodules.media.perturb import deeperforensics as df

    def resize(img: np.ndarray) -> np.ndarray:
        return cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)

    def int_taps(k: int) -> np.ndarray:  # multiples of 1/256 summing to 1: OpenCV's fixed-point path
        q = np.floor(create_gaussian_kernel_1d(k / 6, k) * 256 + 0.5)
        q[k // 2] += 256 - q.sum()
        return (q / 256).astype(np.float32)

    def scaled_taps(k: int, r: float) -> np.ndarray:
        radius = round((k // 2) * r)
        return create_gaussian_kernel_1d(k / 6 * r, 2 * radius + 1).astype(np.float32)

    def sep(img: np.ndarray, taps: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(img, -1, taps, taps, borderType=cv2.BORDER_REFLECT_101)

    return {
        "library (albumentations GaussianBlur: float sepFilter2D)": lambda img, k: resize(
            df.gaussian_blur(img, None, k)
        ),
        "released call cv2.GaussianBlur (bit-exact fixed point)": lambda img, k: resize(
            cv2.GaussianBlur(img, (k, k), k / 6)
        ),
        "8-bit integer kernel (fixed-point sepFilter2D)": lambda img, k: resize(sep(img, int_taps(k))),
        f"resize to {side} first, sigma x {side}/256": lambda img, k: sep(
            resize(img), scaled_taps(k, side / img.shape[0])
        ),
    }


def blur_alternatives(crops: list[np.ndarray], side: int, clean_ms: float, rounds: int) -> list[Figure]:
    """CPU ms per crop of each blur implementation (kernels 17 and 21, with the resize to ``side``), the
    library's first (the baseline of the others), and each one's deviation from the library's output."""
    methods = _blur_methods(side)
    budget = clean_ms * (1 / 0.8 - 1)  # extra CPU ms per sample that still gives 0.8x of the clean loader
    figs = []
    for k in (17, 21):
        ref = [methods[next(iter(methods))](c, k).astype(int) for c in crops]
        times: dict[str, list[float]] = {name: [] for name in methods}
        for _ in range(rounds):  # interleaved, so a load change hits every method alike
            for name, fn in methods.items():
                times[name].append(cpu_seconds(partial(_blur_all, fn, crops, k)) * 1000 / len(crops))
        base = None
        for name, fn in methods.items():
            diff = np.concatenate(
                [np.abs(fn(c, k).astype(int) - r).ravel() for c, r in zip(crops, ref, strict=True)]
            )
            fig = duration(TOPIC, f"blur kernel {k} + resize to {side}: {name}", times[name])
            fig.unit = "CPU ms/crop"
            fig.note = (
                f"max |diff| from the library's output {diff.max()} levels, {np.mean(diff > 1):.1%} of values "
                f"off by more than 1; a perturbation may add {budget:.3f} CPU ms to the clean sample's "
                f"{clean_ms:.3f} ms for 0.8x"
            )
            figs.append(fig if base is None else with_ratio(fig, base))
            base = base or fig
    return figs

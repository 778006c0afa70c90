"""Training-loader throughput from cached 256 px crops (issue 4 target: >= 200 samples/s per worker).

A temporary processed dataset is written from a real face (skimage astronaut, detected and landmarked
once): PNG crops (written by preprocessing's writer, ``datamodules.atomic.write_png``, at its default
level 0 and, for comparison, at zlib level 3), landmarks, masks and a manifest. Figures, all single-process (= one DataLoader worker's
work):

* baseline: PNG decode + resize + to tensor, no augmentation, no masks;
* loader: ``ForgeryDataModule`` training batches at 224 px with augmentation and soft region masks
  (SFAM-style DataSpec) from crops as ``python -m datamodules.preprocess`` writes them by default — the
  target figure; the same from level-3 crops (half the disk) is informational;
* loader + forgery masks + SBI (p = 0.5): informational, blending costs a lot per blended sample;
* loader through one real DataLoader worker process (informational: adds the worker-to-main
  transfer, and the main process competes for the same 2 cores).

The machine is shared, so the runs are interleaved: each round times the baseline and then every
loader case once, and a case's ``ratio`` is the median over rounds of (case / baseline of the same
round), so a load change hits both sides of each ratio.
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from benchmark.perf.timing import Figure, measure, throughput, with_ratio

TOPIC = "loader"


def _face_crop() -> tuple[np.ndarray, np.ndarray]:
    import skimage.data

    from datamodules.media import faces

    img = faces.to_rgb(skimage.data.astronaut())
    face = faces.detect_faces(img)[0]
    lm = faces.landmarks68(img, face.box)
    x1, y1, x2, y2 = face.box
    c, half = np.array([(x1 + x2) / 2, (y1 + y2) / 2]), 0.65 * max(x2 - x1, y2 - y1)
    x0, y0 = int(max(0, c[0] - half)), int(max(0, c[1] - half))
    side = int(min(2 * half, img.shape[1] - x0, img.shape[0] - y0))
    crop = cv2.resize(img[y0 : y0 + side, x0 : x0 + side], (256, 256), interpolation=cv2.INTER_AREA)
    return crop, ((lm - [x0, y0]) * 256 / side).astype(np.float32)


def write_cache(root: Path, n: int, png_compression: int = 0) -> Path:
    """``n`` crops (half real, half fake with a mask) in one ``train`` split, plus a tiny ``val`` split.

    Crops are written as preprocessing writes them, at zlib level ``png_compression``.
    """
    from datamodules.atomic import write_png
    from datamodules.manifest import write_manifest

    crop, lm = _face_crop()
    rows = []
    mask = np.zeros((256, 256), np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(lm.astype(np.int32)), 255)
    (root / "crops").mkdir(parents=True, exist_ok=True)
    for i in range(n + 4):
        split, label = ("train" if i < n else "val"), i % 2
        stem = f"crops/{i:05d}"
        img = np.clip(crop.astype(int) + (i % 21) - 10, 0, 255).astype(np.uint8)
        write_png(root / f"{stem}.png", img, png_compression)
        np.save(root / f"{stem}.npy", lm)
        if label:
            write_png(root / f"{stem}_mask.png", mask)
        rows.append(
            dict(
                dataset="perf",
                split=split,
                label=label,
                method="Fake" if label else "real",
                compression="raw",
                video_id=f"perf/{'Fake' if label else 'real'}/{i:05d}",
                frame_index=0,
                crop_path=f"{stem}.png",
                landmarks_path=f"{stem}.npy",
                mask_path=f"{stem}_mask.png" if label else "",
                status="ok",
                reason="",
            )
        )
    return write_manifest(rows, root / "manifest.parquet")


def _baseline(root: Path, paths: list[str], size: int) -> None:
    for p in paths:
        bgr = cv2.imread(str(root / p), cv2.IMREAD_COLOR)
        rgb = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (size, size), interpolation=cv2.INTER_AREA)
        torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float32) / 255.0)


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
    from datamodules.spec import CLIP_MEAN, CLIP_STD, DataSpec

    n, rounds = (64, 3) if quick else (256, 7)
    spec = DataSpec(input_size=224, mean=CLIP_MEAN, std=CLIP_STD, region_masks=True)
    sbi_spec = DataSpec(input_size=224, mean=CLIP_MEAN, std=CLIP_STD, region_masks=True, forgery_masks=True)
    cases = [  # name, spec, sbi_prob, DataLoader workers, PNG level of the crops, target
        (
            "loader: aug + soft region masks @224 (1 worker's work, in-process)",
            spec,
            0.0,
            0,
            0,
            ">= 200 samples/s per worker",
        ),
        ("loader: same, from zlib level-3 crops (half the disk)", spec, 0.0, 0, 3, ""),
        ("loader: aug + region + forgery masks + SBI p=0.5 @224 (in-process)", sbi_spec, 0.5, 0, 0, ""),
        ("loader: aug + soft region masks @224 (1 DataLoader worker process)", spec, 0.0, 1, 0, ""),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        manifests = {level: write_cache(Path(tmp) / f"png{level}", n, level) for level in (0, 3)}
        paths = pd.read_parquet(manifests[0]).query("split == 'train'")["crop_path"].tolist()
        jobs: list[tuple[str, int, Callable[[], None]]] = [
            (
                "baseline: PNG decode (level-0 crops) + resize 224, no aug, no masks",
                n,
                lambda: _baseline(Path(tmp) / "png0", paths, 224),
            )
        ]
        kb = {
            level: np.mean([(m.parent / p).stat().st_size for p in paths]) / 1024
            for level, m in manifests.items()
        }
        for name, case_spec, sbi, workers, level, _ in cases:
            dm = ForgeryDataModule(
                case_spec,
                train="perf",
                tests=[],
                manifests={"perf": manifests[level]},
                batch_size=32,
                frames_train=1,
                augment=True,
                num_workers=workers,
                persistent_workers=workers > 0,
                sbi_prob=sbi,
            )
            dm.setup("fit")
            loader = dm.train_dataloader()

            def epoch(loader=loader) -> None:
                for _ in loader:
                    pass

            jobs.append((f"{name} [{kb[level]:.0f} KB/crop]", len(loader) * 32, epoch))
        times: dict[str, list[float]] = {name: [] for name, _, _ in jobs}
        for _, _, fn in jobs:  # warm-up (and worker start-up)
            fn()
        for _ in range(rounds):
            for name, _, fn in jobs:
                times[name] += measure(fn, repeat=1)
    (base_name, base_n, _), *rest = jobs
    base = throughput(TOPIC, base_name, base_n, times[base_name], unit="samples/s")
    figs = [base]
    for (name, items, _), (*_, target) in zip(rest, cases, strict=True):
        fig = with_ratio(throughput(TOPIC, name, items, times[name], unit="samples/s"), base)
        per_round = [(items / t) / (base_n / b) for t, b in zip(times[name], times[base_name], strict=True)]
        fig.ratio = statistics.median(per_round)
        fig.note = (
            f"ratio: median of {rounds} per-round ratios (min {min(per_round):.2f}, max {max(per_round):.2f})"
        )
        fig.target = target
        figs.append(fig)
    return figs

"""Training-loader throughput from cached 256 px crops (issue 4 target: >= 200 samples/s per worker), and
the packed store and device augmentation against it (issue "Scale and cost": >= 4x per worker).

A temporary processed dataset is written from a real face (skimage astronaut, detected and landmarked
once): PNG crops (written by preprocessing's writer, ``datamodules.atomic.write_png``, at its default
level 0 and, for comparison, at zlib level 3), landmarks, masks and a manifest; the level-0 store is
then packed (``datamodules.pack``). Figures, all single-process (= one DataLoader worker's work) unless
they say otherwise:

* baseline: PNG decode + resize + to tensor, no augmentation, no masks;
* loader: ``ForgeryDataModule`` training batches at 224 px with augmentation and soft region masks
  (SFAM-style DataSpec) from crops as ``python -m datamodules.preprocess`` writes them by default — the
  target figure; the same from level-3 crops (half the disk) and from the packed store are informational;
* loader + forgery masks + SBI (p = 0.5): informational, blending costs a lot per blended sample;
* loader through one real DataLoader worker process (informational: adds the worker-to-main
  transfer, and the main process competes for the same 2 cores).

Worker CPU rates (samples per CPU second of the process, ``time.process_time``: the machine is shared and
wall-clock rates swing with its load; one torch and one OpenCV thread, so this is one worker's rate on a
core of its own), each against today's loader (PNG store, augmentation and region masks on the worker)
measured in the same rounds: the packed store with the augmentation on the worker; the packed and PNG
stores with ``augment_on_device`` (the worker only reads; its batches are not augmented, the device does
that); the device part itself run on this CPU (there is no GPU here: informational); the evaluation
loader (sequential reads) from either store. Then the CPU time per sample of each stage of the packed
CPU path (read + checksum, the seeded draw, warp, photometric ops, normalisation, region masks): what
bounds the rate once decoding is gone; and that bound as one figure: today's CPU per sample over the
same minus its PNG read, the speed-up a store that cost nothing to read would give a worker that still
augments (Amdahl's law).

The runs are interleaved: each round times every job once, and a case's ``ratio`` is the median over
rounds of (case / its baseline of the same round), so a load change hits both sides of each ratio.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pandas as pd
import torch

from benchmark.perf.timing import Figure, throughput, with_ratio

if TYPE_CHECKING:
    from datamodules.loading.datamodule import ForgeryDataModule

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
        if bgr is None:
            raise FileNotFoundError(f"cannot read the crop {root / p}")
        rgb = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (size, size), interpolation=cv2.INTER_AREA)
        torch.from_numpy(rgb.transpose(2, 0, 1).astype(np.float32) / 255.0)


def run(quick: bool = False) -> list[Figure]:
    """Time the training loader on one worker's share of the CPU (one torch and one OpenCV thread)."""
    threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)  # one worker's share
    cv2.setNumThreads(1)  # here only: never inside DataLoader workers (it deadlocked forked workers)
    try:
        return _run(quick)
    finally:
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])


@dataclass
class _Job:
    """One timed thing: ``fn`` handles ``items`` samples; wall and CPU seconds of each round."""

    name: str
    items: int
    fn: Callable[[], object]
    wall: list[float]
    cpu: list[float]

    def time_once(self) -> None:
        t0, c0 = time.perf_counter(), time.process_time()
        self.fn()
        self.wall.append(time.perf_counter() - t0)
        self.cpu.append(time.process_time() - c0)

    def cpu_rates(self) -> list[float]:
        return [self.items / t for t in self.cpu]


def _job(name: str, items: int, fn: Callable[[], object]) -> _Job:
    return _Job(name, items, fn, [], [])


def _epoch(loader, hook=None) -> Callable[[], None]:
    def fn() -> None:
        for b in loader:
            if hook is not None:
                hook(b)

    return fn


PNG_LOADER = "loader: aug + soft region masks @224 (1 worker's work, in-process)"
TARGET_4X = ">= 4x baseline"


def _run(quick: bool) -> list[Figure]:
    from datamodules.loading.datamodule import ForgeryDataModule
    from datamodules.spec import CLIP_MEAN, CLIP_STD, DataSpec

    n, rounds = (64, 3) if quick else (256, 7)
    spec = DataSpec(input_size=224, mean=CLIP_MEAN, std=CLIP_STD, region_masks=True)
    sbi_spec = DataSpec(input_size=224, mean=CLIP_MEAN, std=CLIP_STD, region_masks=True, forgery_masks=True)
    cases = [  # name, spec, sbi_prob, DataLoader workers, PNG level of the crops (None: packed), target
        (PNG_LOADER, spec, 0.0, 0, 0, ">= 200 samples/s per worker"),
        ("loader: same, from zlib level-3 crops (half the disk)", spec, 0.0, 0, 3, ""),
        ("loader: aug + region + forgery masks + SBI p=0.5 @224 (in-process)", sbi_spec, 0.5, 0, 0, ""),
        ("loader: aug + soft region masks @224 (1 DataLoader worker process)", spec, 0.0, 1, 0, ""),
        ("loader: same as the target figure, from the packed store (in-process)", spec, 0.0, 0, None, ""),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        manifests = {level: write_cache(Path(tmp) / f"png{level}", n, level) for level in (0, 3)}
        pack_fig = _pack(manifests[0], n)
        paths = pd.read_parquet(manifests[0]).query("split == 'train'")["crop_path"].tolist()
        jobs = [
            _job(
                "baseline: PNG decode (level-0 crops) + resize 224, no aug, no masks",
                n,
                lambda: _baseline(Path(tmp) / "png0", paths, 224),
            )
        ]
        kb: dict[int | None, float] = {
            level: np.mean([(m.parent / p).stat().st_size for p in paths]) / 1024
            for level, m in manifests.items()
        }
        kb[None] = kb[0]

        def datamodule(case_spec, level, store="png", **kw) -> ForgeryDataModule:
            dm = ForgeryDataModule(
                case_spec,
                train="perf",
                tests=[],
                manifests={"perf": manifests[0 if level is None else level]},
                batch_size=32,
                frames_train=1,
                augment=True,
                store="packed" if level is None else store,
                **kw,
            )
            dm.setup("fit")
            return dm

        for name, case_spec, sbi, workers, level, _ in cases:
            loader = datamodule(
                case_spec, level, num_workers=workers, persistent_workers=workers > 0, sbi_prob=sbi
            ).train_dataloader()
            jobs.append(_job(f"{name} [{kb[level]:.0f} KB/crop]", len(loader) * 32, _epoch(loader)))
        cpu_jobs = _cpu_jobs(datamodule, spec, manifests[0], n)
        stages = _Stages(datamodule(spec, None), datamodule(spec, 0))
        for job in jobs + cpu_jobs:  # warm-up (and worker start-up)
            job.fn()
        stages.run()
        for _ in range(rounds):
            for job in jobs + cpu_jobs:
                job.time_once()
            stages.run()
    return [
        *_wall_figures(jobs, cases, rounds),
        *_cpu_figures(jobs[1], jobs[-1], cpu_jobs),
        *stages.figures(),
        _read_bound(jobs[1], stages),
        pack_fig,
    ]


def _read_bound(png_job: _Job, stages: _Stages) -> Figure:
    """The most any store can give a worker that still augments: today's CPU per sample over the same
    without the PNG read (Amdahl: reading made free), per round."""
    png_read = stages.times[_Stages.NAMES[0]][1:]  # ms per sample; the first pass is the warm-up
    today = [1000 * t / png_job.items for t in png_job.cpu]
    bound = [a / (a - r) for a, r in zip(today, png_read, strict=True)]
    return Figure(
        TOPIC,
        "bound on any store with aug + soft region masks on the worker: today's loader with a free read",
        "x today's loader",
        statistics.median(bound),
        min(bound),
        max(bound),
        len(bound),
        higher_is_better=True,
        note=f"today's {statistics.median(today):.2f} ms CPU/sample, of which the PNG read "
        f"{statistics.median(png_read):.2f} ms; what is left is augmentation, masks and batching",
    )


def _pack(manifest: Path, n: int) -> Figure:
    from benchmark.perf.timing import duration
    from datamodules.pack.writer import pack_dataset

    t0 = time.perf_counter()
    folder = pack_dataset(manifest.parent, "perf")
    t = time.perf_counter() - t0
    size = sum(p.stat().st_size for p in folder.glob("shard-*.bin"))
    return duration(
        TOPIC,
        f"pack {n + 4} crops with landmarks and masks (python -m datamodules.pack)",
        [t],
        note=f"{(n + 4) / t:,.0f} crops/s, {size / (n + 4) / 1024:.0f} KB/crop in the shards",
    )


def _cpu_jobs(datamodule, spec, manifest: Path, n: int) -> list[_Job]:
    """Worker CPU jobs; the first is today's loader (its baseline) and is the target figure's job too."""
    from datamodules.spec import CLIP_MEAN, CLIP_STD, DataSpec

    out = []
    for store in ("packed", "png"):
        dm = datamodule(spec, 0, store=store, augment_on_device=True)
        loader = dm.train_dataloader()
        out.append(
            _job(
                f"worker CPU: {store} store + augment_on_device (the worker reads; its batches go to the device)",
                len(loader) * 32,
                _epoch(loader),
            )
        )
        if store == "packed":
            raw = list(loader)
            out.append(
                _job(
                    "device part of augment_on_device, run on this CPU (no GPU here; on a GPU it runs there)",
                    len(raw) * 32,
                    partial(_device_part, dm, raw),
                )
            )
    eval_spec = DataSpec(input_size=224, mean=CLIP_MEAN, std=CLIP_STD)  # a CLIP test sample, no masks
    for store in ("png", "packed"):
        loader = _eval_loader(manifest, eval_spec, store)
        out.append(
            _job(f"worker CPU: evaluation loader @224, {store} store (sequential reads)", n, _epoch(loader))
        )
    return out


def _device_part(dm: ForgeryDataModule, raw: list) -> None:
    for b in raw:
        dm.on_after_batch_transfer(_fresh(b), 0)


def _fresh(batch):
    """A raw batch the device hook can consume again (it pops the raw fields)."""
    from dataclasses import replace

    return replace(batch, extra=dict(batch.extra))


def _eval_loader(manifest: Path, spec, store: str):
    from torch.utils.data import DataLoader

    from datamodules.batch import collate
    from datamodules.loading.dataset import ManifestDataset
    from datamodules.loading.store import open_pack
    from datamodules.manifest import read_ok_rows, select_frames

    rows, _ = read_ok_rows(manifest, "perf")
    rows = select_frames(rows[rows["split"] == "train"], 1)
    ds = ManifestDataset(
        rows, manifest.parent, spec, False, [], False, pack=open_pack(manifest, "perf", store)
    )
    return DataLoader(ds, batch_size=32, collate_fn=collate)


def _wall_figures(jobs: list[_Job], cases: list, rounds: int) -> list[Figure]:
    base_job, *rest = jobs
    base = throughput(TOPIC, base_job.name, base_job.items, base_job.wall, unit="samples/s")
    figs = [base]
    for job, (*_, target) in zip(rest, cases, strict=True):
        fig = with_ratio(throughput(TOPIC, job.name, job.items, job.wall, unit="samples/s"), base)
        per_round = [
            (job.items / t) / (base_job.items / b) for t, b in zip(job.wall, base_job.wall, strict=True)
        ]
        fig.ratio = statistics.median(per_round)
        fig.note = (
            f"ratio: median of {rounds} per-round ratios (min {min(per_round):.2f}, max {max(per_round):.2f})"
        )
        fig.target = target
        figs.append(fig)
    return figs


def _cpu_figures(png_job: _Job, packed_job: _Job, cpu_jobs: list[_Job]) -> list[Figure]:
    """Samples per CPU second against today's loader (PNG store, augmentation on the worker): the packed
    store with the augmentation on the worker, then the device and evaluation jobs."""
    unit = "samples/CPU s"
    base = throughput(
        TOPIC,
        "worker CPU: PNG store + aug + soft region masks @224 (today's loader)",
        png_job.items,
        png_job.cpu,
        unit=unit,
    )
    base.note = f"{1000 / base.value:.2f} ms CPU per sample"
    packed = throughput(
        TOPIC,
        "worker CPU: packed store + aug + soft region masks @224",
        packed_job.items,
        packed_job.cpu,
        unit=unit,
    )
    _ratio(packed, packed_job, base, png_job)
    packed.target = TARGET_4X
    figs = [base, packed]
    eval_base: Figure | None = None
    eval_job: _Job | None = None
    for job in cpu_jobs:
        fig = throughput(TOPIC, job.name, job.items, job.cpu, unit=unit)
        if "evaluation loader" in job.name and eval_base is None:
            eval_base, eval_job = fig, job
            fig.note = f"{1000 / fig.value:.3f} ms CPU per sample"
        elif "evaluation loader" in job.name and eval_base is not None and eval_job is not None:
            _ratio(fig, job, eval_base, eval_job)
        else:
            _ratio(fig, job, base, png_job)
            if job.name.startswith("worker CPU: packed store + augment_on_device"):
                fig.target = TARGET_4X
        figs.append(fig)
    return figs


def _ratio(fig: Figure, job: _Job, ref: Figure, ref_job: _Job) -> None:
    with_ratio(fig, ref)
    per_round = [a / b for a, b in zip(job.cpu_rates(), ref_job.cpu_rates(), strict=True)]
    fig.ratio = statistics.median(per_round)
    fig.note = (
        f"{1000 / fig.value:.3f} ms CPU per sample; ratio: median of {len(per_round)} per-round ratios "
        f"(min {min(per_round):.2f}, max {max(per_round):.2f})"
    )


class _Stages:
    """CPU time per sample of each stage of the packed CPU path (and of a PNG read), one pass per round."""

    NAMES = (
        "read crop + landmarks, PNG store",
        "read crop + landmarks, packed store (with checksum)",
        "seeded draw of the augmentation parameters",
        "warp: flip + rotation + resize 256 -> 224 (one warpAffine)",
        "photometric: blur / colour op / JPEG (as drawn)",
        "normalise (uint8 -> float32 CHW lookup)",
        "soft region masks @224 from the landmarks",
    )

    def __init__(self, packed_dm, png_dm) -> None:
        self.packed, self.png = packed_dm.train_set, png_dm.train_set
        self.keys = [k for batch in packed_dm.train_dataloader().batch_sampler for k in batch]
        self.times: dict[str, list[float]] = {name: [] for name in self.NAMES}

    def run(self) -> None:
        from datamodules.loading import augment as ops
        from datamodules.loading.transforms import _resize_matrix, _warp  # the CPU path's own steps
        from datamodules.media.regions import region_masks

        tr = self.packed.transform.face
        aug, spec = tr.augmentation, tr.spec
        acc = dict.fromkeys(self.NAMES, 0)
        clock = time.process_time_ns
        for i, _, seed in self.keys:
            t0 = clock()
            self.png.store.crop(i), self.png.store.landmarks(i)
            t1 = clock()
            image, lm = self.packed.store.crop(i), self.packed.store.landmarks(i)
            t2 = clock()
            d = ops.draw(aug, np.random.default_rng(seed % 2**32))
            t3 = clock()
            geom = ops.geometry(image.shape[:2], d, aug.semantics)
            img = _warp(image, geom, spec.input_size, cv2.BORDER_REFLECT_101)
            t4 = clock()
            img = ops.photometric(img, d, aug.semantics)
            t5 = clock()
            tr._normalise(img, None)
            t6 = clock()
            a = _resize_matrix(image.shape[:2], (spec.input_size,) * 2) @ geom
            region_masks(lm @ a[:2, :2].T + a[:2, 2], spec.mask_side, spec.input_size, soft=True)
            t7 = clock()
            for name, dt in zip(
                self.NAMES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6), strict=True
            ):
                acc[name] += dt
        for name in self.NAMES:
            self.times[name].append(acc[name] / 1e6 / len(self.keys))

    def figures(self) -> list[Figure]:
        figs = []
        for name, ms in self.times.items():
            ms = ms[1:]  # the first pass is the warm-up
            figs.append(
                Figure(
                    TOPIC,
                    f"stage CPU: {name}",
                    "ms CPU/sample",
                    statistics.median(ms),
                    min(ms),
                    max(ms),
                    len(ms),
                )
            )
        return figs

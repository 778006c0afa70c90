"""Video -> sampled frames -> the tracked face -> aligned crops + landmarks + masks -> Parquet manifest.

Command line::

    python -m datamodules.preprocess --dataset FF++ --layout ffpp --root /data/FaceForensics++ \\
        --out data/processed [--frames 32] [--size 256] [--margin 1.3] \\
        [--backend auto|mtcnn|dlib|insightface] [--workers N] [--option compression=c40]

Programmatic API (what the runner calls; keep the signature stable)::

    preprocess_dataset(name, layout, root, out, **options) -> Path   # out/<name>/manifest.parquet

Per video: ``frames`` indices spread evenly over the whole video (only those are converted to RGB; see
``datamodules.media.video``); faces detected by the chosen backend (``datamodules.media.faces``) on a frame
downscaled to at most ``detect_max_side`` pixels, and after the first face inside a window around the
tracked face (the full frame again when the window finds none). The face is the LARGEST in the first
frame that has one (for a fake with a manipulation mask: the face the mask covers most), then followed
by overlap; a frame where no face overlaps the tracked one is ``face_lost``, never another person.
Each face is aligned by a 5-point similarity into ``size`` x ``size`` with ``margin``
(``datamodules.media.align``); the mask is warped by the same matrix; dlib 68 landmarks are computed on the
aligned crop. Crops and masks are lossless PNG, landmarks float32 ``.npy`` ``[68, 2]`` in crop pixels.

Output under ``out/<name>/``: ``crops/<method>/<video>/<frame:05d>.png``, ``landmarks/.../*.npy``,
``masks/.../*.png``, ``rows/<method>/<video>.json`` (a finished video's rows, written last and
atomically: it is the resume marker), ``preprocess.json`` (the options; a re-run with other options
refuses unless ``overwrite``) and ``manifest.parquet``.

Every sampled frame has a manifest row; a video that cannot be opened has one row with
``frame_index = -1``. Status values: ``ok``, ``no_face``, ``face_lost``, ``decode_error``, ``error``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from datamodules.datasets.base import VideoRecord, enumerate_dataset, get_adapter, list_layouts, safe_stem
from datamodules.media import align, faces
from datamodules.media.video import (
    VideoOpenError,
    frame_number,
    list_frame_files,
    open_video,
    read_image,
    read_mask_frames,
    read_video_frames,
    sample_indices,
)

COLUMNS = (
    "dataset",
    "split",
    "label",
    "method",
    "compression",
    "video_id",
    "frame_index",
    "crop_path",
    "landmarks_path",
    "mask_path",
    "status",
    "reason",
    "source_label",  # the dataset's own class name (VideoRecord.source_label), e.g. DeepfakeBench's FF-DF
)
STATUSES = ("ok", "no_face", "face_lost", "decode_error", "error")
TRACK_FACE_PX = 96


class PreprocessConfigError(ValueError):
    """``out`` already holds a run made with other options (would mix two crop geometries)."""


@dataclass(frozen=True)
class Options:
    """Preprocessing options (stored in ``preprocess.json``; a resumed run must use the same)."""

    frames: int = 32
    size: int = 256
    margin: float = 1.3
    backend: str = "mtcnn"
    detect_max_side: int = 640
    min_iou: float = 0.25
    max_shift: float = 1.0
    min_face: int = 20
    png_compression: int = 0


# Options that only change how files are stored, never their pixels: a resume may change them.
_STORAGE_ONLY = ("png_compression",)


# ---- geometry helpers --------------------------------------------------------------------------


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def mask_coverage(mask: np.ndarray, box: np.ndarray) -> float:
    """Fraction of ``box`` the binary mask covers."""
    h, w = mask.shape[:2]
    x1, y1 = int(max(0, box[0])), int(max(0, box[1]))
    x2, y2 = int(min(w, box[2])), int(min(h, box[3]))
    if x2 <= x1 or y2 <= y1:
        return 0.0
    return float((mask[y1:y2, x1:x2] > 127).mean())


def _shift(face: faces.Face, dx: float, dy: float, scale: float) -> faces.Face:
    off = np.array([dx, dy], np.float32)
    return faces.Face(
        box=face.box * scale + np.tile(off, 2),
        score=face.score,
        points5=face.points5 * scale + off,
    )


class FaceTracker:
    """Detects faces and keeps following ONE person through a video.

    The first frame with a face picks it (the mask's face if a mask is given, else the largest); later
    frames take the candidate that overlaps the last accepted box, or has its size and moved less than
    ``max_shift`` face sizes (see :meth:`_best`), and report ``face_lost`` when none does.
    """

    def __init__(self, detect: Callable[..., list[faces.Face]], opts: Options) -> None:
        self.detect, self.opts = detect, opts
        self.last: np.ndarray | None = None

    def _detect(self, rgb: np.ndarray, window: np.ndarray | None = None) -> list[faces.Face]:
        """Faces in ``rgb`` (or in ``window`` of it), in full-frame coordinates.

        The full frame is downscaled to ``detect_max_side``; a tracking window is downscaled so the
        tracked face is about ``TRACK_FACE_PX`` wide (MTCNN's last stage sees faces at 48 px anyway)
        and faces under half the tracked size are not searched for.
        """
        x0 = y0 = 0
        s, min_size = 1.0, self.opts.min_face
        h, w = rgb.shape[:2]
        if window is not None:
            x0, y0, x1, y1 = (int(v) for v in window)
            rgb = rgb[y0:y1, x0:x1]
            h, w = rgb.shape[:2]
            side = float(min(self.last[2] - self.last[0], self.last[3] - self.last[1]))
            s = min(1.0, TRACK_FACE_PX / max(side, 1.0))
            min_size = max(self.opts.min_face, int(0.5 * side * s))
        else:
            s = min(1.0, self.opts.detect_max_side / max(h, w))
        small = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) if s < 1 else rgb
        found = [_shift(f, x0, y0, 1.0 / s) for f in self.detect(small, min_size=min_size)]
        return [f for f in found if min(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= self.opts.min_face]

    def _window(self, shape: tuple[int, ...]) -> np.ndarray:
        x1, y1, x2, y2 = self.last
        bw, bh = x2 - x1, y2 - y1
        h, w = shape[:2]
        k = self.opts.max_shift + 0.5  # room for a face that moved ``max_shift`` face sizes
        return np.array([max(0, x1 - k * bw), max(0, y1 - k * bh), min(w, x2 + k * bw), min(h, y2 + k * bh)])

    def __call__(self, rgb: np.ndarray, mask: np.ndarray | None = None) -> tuple[faces.Face | None, str]:
        if self.last is None:
            cands = self._detect(rgb)
            if not cands:
                return None, "no_face"
            pick = cands[0]
            if mask is not None and len(cands) > 1:
                cover = [mask_coverage(mask, f.box) for f in cands]
                if max(cover) > 0:
                    pick = cands[int(np.argmax(cover))]
            self.last = pick.box
            return pick, "ok"
        best = self._best(self._detect(rgb, self._window(rgb.shape)))
        if best is None:  # the window may miss a fast move: look at the whole frame
            cands = self._detect(rgb)
            best = self._best(cands)
            if best is None:
                return None, "face_lost" if cands else "no_face"
        self.last = best.box
        return best, "ok"

    def _best(self, cands: list[faces.Face]) -> faces.Face | None:
        """The candidate that is the tracked person: overlapping it (IoU >= ``min_iou``), or, for a
        face that moved further between two sampled frames, a face of similar size (ratio within
        1.5x) whose centre moved at most ``max_shift`` face sizes; the closest such face wins."""
        lx1, ly1, lx2, ly2 = self.last
        lsize = float(np.sqrt(max(1.0, (lx2 - lx1) * (ly2 - ly1))))
        lc = np.array([lx1 + lx2, ly1 + ly2]) / 2
        best, best_key = None, None
        for f in cands:
            o = iou(f.box, self.last)
            size = float(np.sqrt(max(1.0, f.area)))
            shift = float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - lc)) / lsize
            same = o >= self.opts.min_iou or (shift <= self.opts.max_shift and 1 / 1.5 <= size / lsize <= 1.5)
            if same and (best_key is None or (-o, shift) < best_key):
                best, best_key = f, (-o, shift)
        return best


# ---- per-video processing (runs in worker processes) ------------------------------------------


def video_key(rec: VideoRecord) -> Path:
    """Relative folder of a video's outputs: ``<method>/<stem>`` from its video_id."""
    rest = (
        rec.video_id[len(rec.dataset) + 1 :] if rec.video_id.startswith(rec.dataset + "/") else rec.video_id
    )
    return Path(*[safe_stem(p) for p in rest.split("/") if p])


def _atomic_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _png_params(level: int | None) -> list[int]:
    """``cv2.imencode`` parameters for a crop at zlib ``level`` (``None``: OpenCV's default, for masks).

    Level 0 stores the pixels and skips PNG's row filters: filters only help compression, and undoing
    them (Paeth above all) is most of a stored PNG's decode time. A 256 px crop then decodes in ~0.2 ms
    instead of ~2-3 ms at levels 1-9 (``python -m benchmark.perf loader``), at about twice the disk.
    """
    if level is None:
        return []
    if not 0 <= level <= 9:
        raise ValueError(f"PNG compression level must be 0-9, got {level}")
    if level == 0:
        return [cv2.IMWRITE_PNG_COMPRESSION, 0, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    return [cv2.IMWRITE_PNG_COMPRESSION, level]


def write_png(path: Path, rgb_or_gray: np.ndarray, level: int | None = None) -> None:
    """Write an RGB or grey uint8 image as a lossless PNG, atomically (see ``_png_params`` for ``level``)."""
    img = rgb_or_gray if rgb_or_gray.ndim == 2 else cv2.cvtColor(rgb_or_gray, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", img, _png_params(level))
    if not ok:
        raise OSError(f"PNG encoding failed for {path}")
    _atomic_bytes(path, buf.tobytes())


def _write_npy(path: Path, arr: np.ndarray) -> None:
    import io

    b = io.BytesIO()
    np.save(b, arr)
    _atomic_bytes(path, b.getvalue())


def _frames(rec: VideoRecord, n: int) -> tuple[np.ndarray, Iterator[tuple[int, np.ndarray | None, str]]]:
    """The sampled indices and a generator of ``(frame_index, rgb | None, reason)`` for them."""
    if rec.kind == "image":
        img = read_image(rec.path)
        return np.array([0]), iter([(0, img, "" if img is not None else "decode_error: unreadable image")])
    if rec.kind == "frames":
        files = list(rec.frames) or list_frame_files(rec.path)
        pos = sample_indices(len(files), n)
        chosen = [files[i] for i in pos]

        def gen() -> Iterator[tuple[int, np.ndarray | None, str]]:
            for p, f in zip(pos, chosen, strict=True):
                img = read_image(f)
                yield (
                    frame_number(f, int(p)),
                    img,
                    "" if img is not None else f"decode_error: unreadable {f.name}",
                )

        return np.array([frame_number(f, int(p)) for p, f in zip(pos, chosen, strict=True)]), gen()
    cap, count = open_video(rec.path)
    idx = sample_indices(count, n)

    def vgen() -> Iterator[tuple[int, np.ndarray | None, str]]:
        try:
            yield from read_video_frames(cap, idx)
        finally:
            cap.release()

    return idx, vgen()


def _row(rec: VideoRecord, frame: int, status: str, reason: str = "", crop="", lm="", mask="") -> dict:
    return {
        "dataset": rec.dataset,
        "split": rec.split,
        "label": rec.label,
        "method": rec.method,
        "compression": rec.compression,
        "video_id": rec.video_id,
        "frame_index": int(frame),
        "crop_path": crop,
        "landmarks_path": lm,
        "mask_path": mask,
        "status": status,
        "reason": reason,
        "source_label": rec.source_label,
    }


def _prealigned(rec: VideoRecord, opts: Options, base: Path, key: Path) -> list[dict]:
    """DeepfakeBench crops: reuse them (resized to ``size``), with their landmarks and masks if present."""
    files = list(rec.frames) or list_frame_files(rec.path)
    rows = []
    for p in sample_indices(len(files), opts.frames):
        f, fi = files[p], frame_number(files[p], int(p))
        img = read_image(f)
        if img is None:
            rows.append(_row(rec, fi, "decode_error", f"unreadable {f}"))
            continue
        h, w = img.shape[:2]
        crop = (
            cv2.resize(img, (opts.size, opts.size), interpolation=cv2.INTER_AREA)
            if (h, w) != (opts.size,) * 2
            else img
        )
        if rec.landmarks and rec.landmarks[p].is_file():
            lm = np.load(rec.landmarks[p]).astype(np.float32).reshape(-1, 2)[:68] * [
                opts.size / w,
                opts.size / h,
            ]
        else:
            c = align.template(opts.size, opts.margin)
            pad = (c[:, 0].max() - c[:, 0].min()) * 0.6
            box = np.array(
                [c[:, 0].min() - pad, c[:, 1].min() - pad, c[:, 0].max() + pad, c[:, 1].max() + pad]
            )
            lm = faces.landmarks68(crop, box)
        cp, lp = Path("crops") / key / f"{fi:05d}.png", Path("landmarks") / key / f"{fi:05d}.npy"
        write_png(base / cp, crop, opts.png_compression)
        _write_npy(base / lp, lm.astype(np.float32))
        mp = ""
        if rec.masks and rec.masks[p].is_file():
            m = read_image(rec.masks[p])
            if m is not None:
                m = cv2.resize(
                    cv2.cvtColor(m, cv2.COLOR_RGB2GRAY), (opts.size,) * 2, interpolation=cv2.INTER_NEAREST
                )
                mp = str(Path("masks") / key / f"{fi:05d}.png")
                write_png(base / mp, np.where(m > 127, 255, 0).astype(np.uint8))
        rows.append(_row(rec, fi, "ok", "", str(cp), str(lp), mp))
    return rows


def process_video(rec: VideoRecord, opts: Options, base: Path) -> list[dict]:
    """Process one video into files under ``base`` and return its manifest rows (never raises)."""
    key = video_key(rec)
    try:
        if rec.prealigned:
            return _prealigned(rec, opts, base, key)
        idx, frames = _frames(rec, opts.frames)
    except VideoOpenError as e:
        return [_row(rec, -1, "decode_error", str(e))]
    except Exception as e:  # noqa: BLE001  (one bad video must not stop the run)
        return [_row(rec, -1, "error", f"{type(e).__name__}: {e}")]
    rows: list[dict] = []
    try:
        _track_and_crop(rec, opts, base, key, idx, frames, rows)
    except Exception as e:  # noqa: BLE001  (e.g. the decoder failing mid-stream: keep what was done)
        done = {r["frame_index"] for r in rows}
        rows += [_row(rec, int(i), "error", f"{type(e).__name__}: {e}") for i in idx if int(i) not in done]
    if not rows:
        rows.append(_row(rec, -1, "decode_error", "no frame sampled"))
    return rows


def _track_and_crop(
    rec: VideoRecord,
    opts: Options,
    base: Path,
    key: Path,
    idx: np.ndarray,
    frames: Iterator[tuple[int, np.ndarray | None, str]],
    rows: list[dict],
) -> None:
    tracker = FaceTracker(faces.get_detector(opts.backend), opts)
    masks = read_mask_frames(rec.mask_path, idx) if rec.kind == "video" else iter([None] * len(idx))
    for (fi, rgb, reason), mask in zip(frames, masks, strict=False):
        try:
            if rgb is None:
                rows.append(_row(rec, fi, "decode_error", reason))
                continue
            face, status = tracker(rgb, mask)
            if face is None:
                why = "no face detected" if status == "no_face" else "no face overlaps the tracked face"
                rows.append(_row(rec, fi, status, why))
                continue
            m = align.alignment_matrix(face.points5, opts.size, opts.margin)
            crop = align.warp(rgb, m, opts.size)
            lm = faces.landmarks68(crop, align.box_in_crop(face.box, m))
            cp, lp = Path("crops") / key / f"{fi:05d}.png", Path("landmarks") / key / f"{fi:05d}.npy"
            write_png(base / cp, crop, opts.png_compression)
            _write_npy(base / lp, lm.astype(np.float32))
            mp, note = "", ""
            if mask is not None:
                wm = align.warp(mask, m, opts.size)
                mp = str(Path("masks") / key / f"{fi:05d}.png")
                write_png(base / mp, np.where(wm > 127, 255, 0).astype(np.uint8))
            elif rec.mask_path is not None:
                note = f"mask frame {fi} unreadable in {rec.mask_path.name}"
            rows.append(_row(rec, fi, "ok", note, str(cp), str(lp), mp))
        except Exception as e:  # noqa: BLE001
            rows.append(_row(rec, fi, "error", f"{type(e).__name__}: {e}"))


def _files(row: dict) -> dict:
    keys = ("crop_path", "landmarks_path", "mask_path", "reason")
    return {k: row[k] for k in keys}


def _rows_file(base: Path, rec: VideoRecord) -> Path:
    key = video_key(rec)
    return base / "rows" / key.with_name(key.name + ".json")


def _process_and_store(rec: VideoRecord, opts: Options, base: Path) -> tuple[str, list[dict]]:
    rows = process_video(rec, opts, base)
    _atomic_bytes(_rows_file(base, rec), json.dumps(rows).encode())  # the resume marker, written last
    return rec.video_id, rows


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


# ---- the dataset run ---------------------------------------------------------------------------


def _check_config(base: Path, opts: Options, overwrite: bool) -> None:
    cfg = base / "preprocess.json"
    want = asdict(opts)
    if cfg.is_file():
        have = json.loads(cfg.read_text())
        pixels = {k: v for k, v in want.items() if k not in _STORAGE_ONLY}
        if {k: v for k, v in have.items() if k not in _STORAGE_ONLY} != pixels:
            if not overwrite:
                diff = {k: (have.get(k), v) for k, v in pixels.items() if have.get(k) != v}
                raise PreprocessConfigError(
                    f"{base} was preprocessed with other options {diff} (stored, requested); use another "
                    "--out, or --overwrite to redo every video"
                )
            import shutil

            for sub in ("rows", "crops", "landmarks", "masks"):
                shutil.rmtree(base / sub, ignore_errors=True)
    _atomic_bytes(cfg, json.dumps(want, indent=1).encode())


def write_manifest(rows: list[dict], path: Path) -> Path:
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["label"] = df["label"].astype("int8")
    df["frame_index"] = df["frame_index"].astype("int64")
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def summarize(rows: list[dict], n_videos: int, n_resumed: int, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    counts = Counter(r["status"] for r in rows)
    t = Table(title="preprocessing summary")
    t.add_column("item")
    t.add_column("count", justify="right")
    t.add_row("videos", str(n_videos))
    t.add_row("videos resumed (already done)", str(n_resumed))
    t.add_row("frames ok", str(counts.get("ok", 0)))
    for status in sorted(counts):
        if status != "ok":
            t.add_row(f"frames {status}", str(counts[status]))
    t.add_row("seconds", f"{seconds:.1f}")
    Console(stderr=True).print(t)


def manifest_path(out: str | Path, name: str) -> Path:
    """``out/<name>/manifest.parquet`` (the dataset name is used verbatim, e.g. ``FF++``)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"dataset name {name!r} cannot be a folder name (no '/', '\\', '.' or '..')")
    return Path(out) / name / "manifest.parquet"


def preprocess_dataset(
    name: str,
    layout: str,
    root: str | Path,
    out: str | Path,
    *,
    frames: int = 32,
    size: int = 256,
    margin: float = 1.3,
    backend: str = "auto",
    workers: int = 1,
    detect_max_side: int = 640,
    png_compression: int = 0,
    limit: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    **adapter_options: object,
) -> Path:
    """Preprocess dataset ``name`` (layout ``layout`` at ``root``) into ``out/<name>/``.

    Args:
        name: the dataset's name (goes into every ``video_id``), e.g. ``"FF++"``, ``"demo-FF"``.
        layout: an adapter layout (``datamodules.datasets.list_layouts()``).
        root: the dataset's root folder (or file, for ``csv`` / ``deepfakebench_json``).
        out: the processed root; the manifest is ``out/<name>/manifest.parquet``.
        frames, size, margin: frames per video, crop side, alignment margin.
        backend: ``auto | mtcnn | dlib | insightface`` (``datamodules.media.faces``).
        workers: processes (1 = in this process).
        detect_max_side: frames are downscaled to at most this side for detection.
        png_compression: zlib level 0-9 of the crop PNGs (all lossless). 0 (default) reads fastest
            (~0.2 ms per 256 px crop, no row filters) at about twice the disk of 1-9 (~2-3 ms);
            a resume may change it (files already written keep theirs).
        limit: process only the first ``limit`` videos (smoke runs).
        overwrite: redo everything when ``out/<name>`` holds a run with other options.
        progress: show the rich progress bar and the summary table.
        **adapter_options: passed to the adapter (e.g. ``compression="c40"``, ``remap="C:/x=/data"``).

    Returns:
        The manifest path. Finished videos of an earlier run with the same options are not redone.
    """
    base = manifest_path(out, name).parent
    if not 0 <= png_compression <= 9:
        raise ValueError(f"png_compression must be 0-9, got {png_compression}")
    opts = Options(
        frames, size, margin, faces.resolve_backend(backend), detect_max_side, png_compression=png_compression
    )
    records = enumerate_dataset(layout, root, dataset=name, **adapter_options)
    if limit is not None:
        records = records[:limit]
    keys: dict[Path, str] = {}
    for rec in records:
        k = video_key(rec)
        if k in keys:
            raise ValueError(f"video ids {keys[k]!r} and {rec.video_id!r} map to the same output folder {k}")
        keys[k] = rec.video_id
    base.mkdir(parents=True, exist_ok=True)
    _check_config(base, opts, overwrite)
    done: dict[str, list[dict]] = {}
    todo = []
    for rec in records:
        f = _rows_file(base, rec)
        if f.is_file():
            done[rec.video_id] = json.loads(f.read_text())
        else:
            todo.append(rec)
    n_resumed = len(done)
    t0 = time.perf_counter()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    cols = (
        TextColumn(f"[bold]{name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[ok]} frames ok"),
    )
    with Progress(*cols, TimeRemainingColumn(), disable=not progress, transient=False) as bar:
        task = bar.add_task("videos", total=len(records), completed=n_resumed, ok=0)
        n_ok = 0

        def advance(rows: list[dict]) -> None:
            nonlocal n_ok
            n_ok += sum(r["status"] == "ok" for r in rows)
            bar.update(task, advance=1, ok=n_ok)

        if workers <= 1 or len(todo) <= 1:
            for rec in todo:
                vid, rows = _process_and_store(rec, opts, base)
                done[vid] = rows
                advance(rows)
        else:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")  # torch + fork can deadlock
            with ProcessPoolExecutor(
                min(workers, len(todo)), mp_context=ctx, initializer=_worker_init
            ) as pool:
                futs = [pool.submit(_process_and_store, rec, opts, base) for rec in todo]
                for fut in as_completed(futs):
                    vid, rows = fut.result()
                    done[vid] = rows
                    advance(rows)
    # labels and splits come from TODAY's enumeration (a fixed split file must not be undone by a resume)
    rows = [
        {**r, **_row(rec, r["frame_index"], r["status"])} | _files(r)
        for rec in records
        for r in done[rec.video_id]
    ]
    path = write_manifest(rows, base / "manifest.parquet")
    if progress:
        summarize(rows, len(records), n_resumed, time.perf_counter() - t0)
    return path


def _parse_option(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option {text!r} must look like KEY=VALUE")
    k, v = text.split("=", 1)
    try:
        return k, json.loads(v)
    except ValueError:
        return k, v


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m datamodules.preprocess",
        description="Face crops, landmarks, masks and a Parquet manifest for one dataset.",
    )
    p.add_argument("--list-layouts", action="store_true", help="print every layout's expected files and exit")
    p.add_argument("--dataset", help="dataset name used in video ids, e.g. FF++")
    p.add_argument("--layout", help=f"one of: {', '.join(list_layouts())} (default: guessed from --dataset)")
    p.add_argument("--root", help="the dataset's root folder (see README 'Datasets')")
    p.add_argument("--out", help="processed root; writes OUT/<dataset>/manifest.parquet")
    p.add_argument("--frames", type=int, default=32, help="frames per video, spread over the whole video")
    p.add_argument("--size", type=int, default=256, help="side of the aligned square crop, pixels")
    p.add_argument("--margin", type=float, default=1.3, help="context around the 5-point face template")
    p.add_argument(
        "--backend", default="auto", choices=faces.BACKENDS, help="face detector (auto: see README)"
    )
    p.add_argument(
        "--png-compression",
        type=int,
        default=0,
        choices=range(10),
        metavar="0-9",
        help="zlib level of the lossless crop PNGs: 0 reads ~10x faster, 1-9 take about half the disk",
    )
    p.add_argument("--workers", type=int, default=max(1, min(4, (os.cpu_count() or 2) - 1)), help="processes")
    p.add_argument("--limit", type=int, help="only the first N videos (smoke run)")
    p.add_argument("--overwrite", action="store_true", help="redo everything if options changed")
    p.add_argument("--remap", action="append", help="deepfakebench_json: OLD_PREFIX=NEW_PREFIX (repeatable)")
    p.add_argument(
        "--option", action="append", type=_parse_option, default=[], help="adapter option KEY=VALUE"
    )
    args = p.parse_args(argv)
    if args.list_layouts:
        import inspect

        for name in list_layouts():
            print(f"== {name}\n{inspect.getdoc(type(get_adapter(name)))}\n")
        return 0
    missing = [f"--{a}" for a in ("dataset", "root", "out") if not getattr(args, a)]
    if missing:
        p.error(f"the following arguments are required: {', '.join(missing)}")
    layout = args.layout or _guess_layout(args.dataset)
    opts = dict(args.option)
    if args.remap:
        opts["remap"] = args.remap
    get_adapter(layout)  # unknown layout: the error lists the known ones before any work
    path = preprocess_dataset(
        args.dataset,
        layout,
        args.root,
        args.out,
        frames=args.frames,
        size=args.size,
        margin=args.margin,
        backend=args.backend,
        png_compression=args.png_compression,
        workers=args.workers,
        limit=args.limit,
        overwrite=args.overwrite,
        **opts,
    )
    print(path)
    return 0


_GUESS = {"ff++": "ffpp", "ffpp": "ffpp", "dfd": "dfd", "cdf-v1": "celebdf_v1", "cdf-v2": "celebdf_v2",
          "celeb-df-v1": "celebdf_v1", "celeb-df-v2": "celebdf_v2", "dfdc": "dfdc", "dfdcp": "dfdc_preview",
          "dfdc-p": "dfdc_preview", "uadfv": "uadfv"}  # fmt: skip


def _guess_layout(dataset: str) -> str:
    key = dataset.lower()
    if key in _GUESS:
        return _GUESS[key]
    if key in list_layouts():
        return key
    from datamodules.datasets.base import UnknownLayoutError

    raise UnknownLayoutError(
        f"cannot guess the layout of dataset {dataset!r} (known names: {', '.join(sorted(_GUESS))}); "
        f"pass --layout, one of: {', '.join(list_layouts())}"
    )


if __name__ == "__main__":
    sys.exit(main())

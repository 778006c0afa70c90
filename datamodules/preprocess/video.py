"""One video (or image, or frame folder) -> its files and manifest rows. Runs in worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from datamodules.datasets.base import VideoRecord
from datamodules.media import confounds
from datamodules.media.crop import FaceCrop, track_and_crop
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
from datamodules.preprocess import files
from datamodules.preprocess.options import Options
from datamodules.preprocess.prealigned import import_prealigned
from datamodules.preprocess.rows import json_safe, row, video_key, write_rows

Frames = Iterator[tuple[int, np.ndarray | None, str]]


def sampled_frames(rec: VideoRecord, n: int) -> tuple[np.ndarray, Frames]:
    """The sampled indices and a generator of ``(frame_index, rgb | None, reason)`` for them."""
    if rec.kind == "image":
        img = read_image(rec.path)
        return np.array([0]), iter([(0, img, "" if img is not None else "decode_error: unreadable image")])
    if rec.kind == "frames":
        frame_files = list(rec.frames) or list_frame_files(rec.path)
        pos = sample_indices(len(frame_files), n)
        chosen = [frame_files[i] for i in pos]

        def gen() -> Frames:
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

    def vgen() -> Frames:
        try:
            yield from read_video_frames(cap, idx)
        finally:
            cap.release()

    return idx, vgen()


def source_files(rec: VideoRecord, n: int) -> dict[int, Path]:
    """The image file each sampled frame of an image or a frame folder was decoded from (for its JPEG
    quality); empty for a video file, whose frames have no file of their own."""
    if rec.kind == "image":
        return {0: Path(rec.path)}
    if rec.kind == "frames":
        frame_files = list(rec.frames) or list_frame_files(rec.path)
        return {
            frame_number(frame_files[p], int(p)): Path(frame_files[p])
            for p in sample_indices(len(frame_files), n)
        }
    return {}


def features(rec: VideoRecord, c: FaceCrop, sources: dict[int, Path]) -> dict:
    """The confound features of an ok frame (``datamodules.media.confounds``), JSON-safe for the rows file."""
    reasons = {"jpeg_quality": "video frame (no image file)"} if rec.kind == "video" else {}
    feats = confounds.frame_features(
        c.crop, c.landmarks, c.box, c.blockiness, sources.get(c.frame_index), reasons=reasons
    )
    return json_safe(feats)


def process_video(rec: VideoRecord, opts: Options, base: Path) -> list[dict]:
    """Process one video into files under ``base`` and return its manifest rows (never raises)."""
    key = video_key(rec)
    try:
        if rec.prealigned:
            return import_prealigned(rec, opts, base, key)
        idx, frames = sampled_frames(rec, opts.frames)
    except VideoOpenError as e:
        return [row(rec, -1, "decode_error", str(e))]
    except Exception as e:  # noqa: BLE001  (one bad video must not stop the run)
        return [row(rec, -1, "error", f"{type(e).__name__}: {e}")]
    rows: list[dict] = []
    try:
        _crop_video(rec, opts, base, key, idx, frames, rows)
    except Exception as e:  # noqa: BLE001  (e.g. the decoder failing mid-stream: keep what was done)
        done = {r["frame_index"] for r in rows}
        rows += [row(rec, int(i), "error", f"{type(e).__name__}: {e}") for i in idx if int(i) not in done]
    if not rows:
        rows.append(row(rec, -1, "decode_error", "no frame sampled"))
    return rows


def _crop_video(
    rec: VideoRecord, opts: Options, base: Path, key: Path, idx: np.ndarray, frames: Frames, rows: list[dict]
) -> None:
    """Track and crop the sampled frames (``datamodules.media.crop``), write each ok frame's files."""
    sources = source_files(rec, opts.frames)
    masks = read_mask_frames(rec.mask_path, idx) if rec.kind == "video" else iter([None] * len(idx))
    mask_name = rec.mask_path.name if rec.mask_path is not None else None
    for c in track_and_crop(frames, opts.crop, masks, mask_name):
        if c.status != "ok":
            rows.append(row(rec, c.frame_index, c.status, c.reason))
            continue
        try:
            paths = files.write_frame(
                base, key, c.frame_index, c.crop, c.landmarks, c.mask, opts.png_compression
            )
            rows.append(row(rec, c.frame_index, "ok", c.reason, *paths, features=features(rec, c, sources)))
        except Exception as e:  # noqa: BLE001  (e.g. a full disk: this frame fails, the video goes on)
            rows.append(row(rec, c.frame_index, "error", f"{type(e).__name__}: {e}"))


def process_and_store(rec: VideoRecord, opts: Options, base: Path) -> tuple[str, list[dict]]:
    """Process a video, then write its rows file: the resume marker, written last (after the folders of
    the video's files are fsynced)."""
    rows = process_video(rec, opts, base)
    files.sync_folders(base, video_key(rec))
    write_rows(base, rec, rows)
    return rec.video_id, rows


def worker_init() -> None:
    """One thread per worker process for torch and OpenCV (the workers are the parallelism)."""
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)

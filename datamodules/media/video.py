"""Reading the sampled frames of a video, a frame folder or an image, decoding only what is needed.

``sample_indices`` spreads N frames evenly over the whole video (``np.linspace`` over the frame count,
as DeepfakeBench does). :func:`read_video_frames` then reaches each sampled index by ``grab()`` (which
skips the colour conversion) for short gaps and by seeking for long ones, and converts only the sampled
frames to RGB. Every sampled index yields exactly one ``(index, rgb | None, reason)``.

Seeking relies on OpenCV's FFmpeg backend landing on the requested frame (tested here on mp4v and
MJPG files against decoding every frame). With 32 samples, videos under ~1,500 frames are never sought,
only grabbed through; variable-frame-rate files with long gaps are where a seek could be inexact.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from datamodules.datasets.base import IMAGE_EXTS

SEEK_GAP = 48  # beyond this many frames, one seek is cheaper than grabbing through


class VideoOpenError(OSError):
    """The file cannot be opened as a video, or has no decodable frame (zero-byte, truncated, not video)."""


def sample_indices(n_frames: int, n: int) -> np.ndarray:
    """``n`` indices spread evenly over ``[0, n_frames - 1]`` (fewer when the video is shorter)."""
    if n_frames <= 0 or n <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.linspace(0, n_frames - 1, min(n, n_frames)).round().astype(np.int64))


def read_image(path: Path) -> np.ndarray | None:
    """An image file as RGB uint8 (gray, RGBA and 16-bit inputs converted), or None if undecodable."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        return None
    if img.dtype == np.uint16:
        img = (img // 257).astype(np.uint8)
    elif img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        return cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def open_video(path: Path) -> tuple[cv2.VideoCapture, int]:
    """An opened capture and its frame count; counts by ``grab()`` when the header has none."""
    if not path.is_file():
        raise VideoOpenError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoOpenError(f"{path}: zero-byte file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoOpenError(f"{path}: cannot be opened as a video (not a video, or truncated)")
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    if n <= 0:  # some containers have no frame count: count without converting any frame
        while cap.grab():
            n += 1
        cap.release()
        cap = cv2.VideoCapture(str(path))
    if n <= 0:
        cap.release()
        raise VideoOpenError(f"{path}: no decodable frame")
    return cap, n


def _to_rgb(bgr: np.ndarray) -> np.ndarray:
    if bgr.ndim == 2:
        return cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
    if bgr.shape[2] == 4:
        return cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_video_frames(
    cap: cv2.VideoCapture, indices: np.ndarray, seek_gap: int = SEEK_GAP
) -> Iterator[tuple[int, np.ndarray | None, str]]:
    """Yield ``(index, rgb, "")`` or ``(index, None, reason)`` for each sampled index, in order."""
    pos = 0  # index of the next frame grab() would return
    broken = False
    for idx in (int(i) for i in indices):
        if broken:
            yield idx, None, "decode_error: the stream ended early (truncated video?)"
            continue
        if idx - pos > seek_gap:
            cap.set(cv2.CAP_PROP_POS_FRAMES, idx)
            pos = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
            if pos != idx:  # inexact seek: restart and walk
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                pos = 0
        while pos < idx and cap.grab():
            pos += 1
        ok = pos == idx and cap.grab()
        frame = cap.retrieve()[1] if ok else None
        if ok:
            pos += 1
        if frame is None or frame.size == 0:
            broken = not ok
            yield idx, None, f"decode_error: frame {idx} could not be decoded"
            continue
        yield idx, _to_rgb(frame), ""


def read_mask_frames(path: Path | None, indices: np.ndarray) -> Iterator[np.ndarray | None]:
    """Gray uint8 mask frames at ``indices`` from a mask video or folder (None where unavailable)."""
    if path is None:
        for _ in indices:
            yield None
        return
    if path.is_dir():
        files = list_frame_files(path)
        for i in indices:
            img = read_image(files[int(i)]) if int(i) < len(files) else None
            yield None if img is None else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        return
    try:
        cap, _ = open_video(path)
    except VideoOpenError:
        for _ in indices:
            yield None
        return
    try:
        for _, rgb, _ in read_video_frames(cap, indices):
            yield None if rgb is None else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    finally:
        cap.release()


def list_frame_files(folder: Path) -> list[Path]:
    """Image files of a frame folder, in :func:`order_frame_files` order."""
    return order_frame_files(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def order_frame_files(files: Iterable[Path]) -> list[Path]:
    """Frame files in numeric order when every stem is a number (``000, 044, 088, 1019``, as
    DeepfakeBench's ``abstract_dataset.py`` sorts them), else by name."""
    files = list(files)
    if files and all(p.stem.isdigit() for p in files):
        return sorted(files, key=lambda p: (int(p.stem), p.name))
    return sorted(files)


def frame_number(path: Path, position: int) -> int:
    """A frame file's original index when its stem is a number, else its position."""
    return int(path.stem) if path.stem.isdigit() else position

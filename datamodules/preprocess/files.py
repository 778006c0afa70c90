"""Where a frame's files go and how they are written (every file atomically, by ``datamodules.atomic``).

Under the dataset's folder: ``crops/<method>/<video>/<frame:05d>.png`` (RGB, lossless, zlib level
``png_compression``), ``landmarks/.../<frame:05d>.npy`` (float32 ``[68, 2]`` in crop pixels) and
``masks/.../<frame:05d>.png`` (binary 0/255, OpenCV's default PNG level: tiny either way).

A frame's files are renamed into place without fsyncing their folders each time; :func:`sync_folders`
does it once per video, before the video's resume marker is written (``datamodules.atomic``, step 4).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from datamodules import atomic

#: the folders a frame's files go to, each with the video's key below it
FOLDERS = ("crops", "landmarks", "masks")


def write_frame(
    base: Path,
    key: Path,
    frame: int,
    crop: np.ndarray,
    landmarks: np.ndarray,
    mask: np.ndarray | None,
    png_compression: int,
) -> tuple[str, str, str]:
    """Write one frame's crop, landmarks and (binary) mask; return their paths relative to ``base``.

    The mask path is "" when there is no mask.
    """
    name = f"{frame:05d}"
    cp, lp = Path("crops") / key / f"{name}.png", Path("landmarks") / key / f"{name}.npy"
    atomic.write_png(base / cp, crop, png_compression, sync_dir=False)
    atomic.write_npy(base / lp, landmarks.astype(np.float32), sync_dir=False)
    mp = ""
    if mask is not None:
        mp = str(Path("masks") / key / f"{name}.png")
        atomic.write_png(base / mp, mask, sync_dir=False)
    return str(cp), str(lp), mp


def sync_folders(base: Path, key: Path) -> None:
    """``fsync`` the folders :func:`write_frame` wrote a video's files into (those that exist), so their
    renames are durable before the video's resume marker is."""
    for sub in FOLDERS:
        folder = base / sub / key
        if folder.is_dir():
            atomic.fsync_dir(folder)

"""Manifest rows of one video, and the per-video rows file that marks it done (the resume marker)."""

from __future__ import annotations

import json
from pathlib import Path

from datamodules import atomic
from datamodules.datasets.base import VideoRecord, safe_stem

#: the row fields that come from processing (the others come from today's enumeration of the dataset)
PROCESSED_FIELDS = ("crop_path", "landmarks_path", "mask_path", "reason")


def video_key(rec: VideoRecord) -> Path:
    """Relative folder of a video's outputs: ``<method>/<stem>`` from its video_id."""
    rest = (
        rec.video_id[len(rec.dataset) + 1 :] if rec.video_id.startswith(rec.dataset + "/") else rec.video_id
    )
    return Path(*[safe_stem(p) for p in rest.split("/") if p])


def row(
    rec: VideoRecord,
    frame: int,
    status: str,
    reason: str = "",
    crop: str = "",
    lm: str = "",
    mask: str = "",
    features: dict | None = None,
) -> dict:
    """One manifest row (``datamodules.manifest.COLUMNS``) of frame ``frame`` of ``rec``; ``features``: its
    confound features and ``confounds_note`` (``datamodules.media.confounds.frame_features``; an ok frame)."""
    return (features or {}) | {
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


def json_safe(features: dict) -> dict:
    """Features with NaN as None (a rows file is strict JSON; the manifest writer reads None as NaN)."""
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in features.items()}


def refresh(rec: VideoRecord, stored: dict) -> dict:
    """A stored row with today's labels and split (a fixed split file must not be undone by a resume)."""
    return {**stored, **row(rec, stored["frame_index"], stored["status"])} | {
        k: stored[k] for k in PROCESSED_FIELDS
    }


def rows_file(base: Path, rec: VideoRecord) -> Path:
    """``base/rows/<method>/<stem>.json``: a finished video's rows."""
    key = video_key(rec)
    return base / "rows" / key.with_name(key.name + ".json")


def write_rows(base: Path, rec: VideoRecord, rows: list[dict]) -> None:
    """Store a finished video's rows (atomically: this file's existence means the video is done)."""
    atomic.write_bytes(rows_file(base, rec), json.dumps(rows).encode())


def read_rows(base: Path, rec: VideoRecord) -> list[dict] | None:
    """The stored rows of a finished video, or None when it was not finished."""
    f = rows_file(base, rec)
    return json.loads(f.read_text()) if f.is_file() else None

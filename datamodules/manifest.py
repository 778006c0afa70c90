"""The manifest: one Parquet table per preprocessed dataset, one row per sampled frame.

Where: ``<processed_root>/<dataset>/manifest.parquet`` (:func:`manifest_path`; the dataset name is used
verbatim, e.g. ``FF++``). Paths in the table are relative to the manifest's folder.

Columns (:data:`COLUMNS`, in this order, with :data:`DTYPES`): ``dataset, split, label, method,
compression, video_id, frame_index, crop_path, landmarks_path, mask_path, status, reason, source_label``. ``label``
is 0 real / 1 fake, ``frame_index`` the frame's index in its video (-1: the video could not be read at
all), ``status`` one of :data:`STATUSES`; failed frames keep their row, with empty paths and a
``reason``. A reader needs :data:`REQUIRED` (``compression``, ``reason`` and the confounds are informational).

Frame selection (:func:`select_frames`): ``k`` frames per video at the centres of ``k`` equal bins over
the video's frames (DeepfakeBench-style even spread, not the first ``k``).

Written by ``datamodules.preprocess`` (:func:`write_manifest`), read by the datamodule
(:func:`read_ok_rows`), located by the runner (:func:`manifest_path`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from datamodules.atomic import atomic_path
from datamodules.errors import UserError
from datamodules.media.confounds import FEATURES as CONFOUNDS

log = logging.getLogger(__name__)

FILE_NAME = "manifest.parquet"
#: column -> dtype as written and read back (``str``: pandas' string dtype; "" for an absent path)
DTYPES: dict[str, str] = {
    "dataset": "str",
    "split": "str",
    "label": "int8",
    "method": "str",
    "compression": "str",
    "video_id": "str",
    "frame_index": "int64",
    "crop_path": "str",
    "landmarks_path": "str",
    "mask_path": "str",
    "status": "str",
    "reason": "str",
    "source_label": "str",  # the dataset's own class name (VideoRecord.source_label), e.g. DeepfakeBench's FF-DF
    **dict.fromkeys(CONFOUNDS, "float32"),  # NaN: not computable from what preprocessing had (see the note)
    "confounds_note": "str",  # "face_px, resize: no source face box; ...": the missing features and why
}
COLUMNS: tuple[str, ...] = tuple(DTYPES)
#: columns a reader needs (``compression``, ``reason``, ``source_label`` and the confounds only inform
#: people or the confound analysis; manifests written before them lack them)
REQUIRED: tuple[str, ...] = tuple(
    c for c in COLUMNS if c not in ("compression", "reason", "source_label", *CONFOUNDS, "confounds_note")
)
#: a frame's outcome: ``ok``; no crop because of the face (``no_face``, ``face_lost``), of a preprocessing
#: protocol's rule (``low_confidence``, ``small_face``: ``datamodules.preprocess.protocols``) or of the file
#: (``decode_error``, ``error``). Every status but ``ok`` keeps its row with a reason.
STATUSES = ("ok", "no_face", "face_lost", "low_confidence", "small_face", "decode_error", "error")


class DataError(UserError, ValueError):
    """A manifest or dataset that cannot serve what the DataSpec or the run asks for."""

    hint = (
        "re-run preprocessing (`python -m datamodules.preprocess`, README 'Datasets') or point the data "
        "configuration's processed_root at the preprocessed data"
    )


def manifest_path(processed_root: str | os.PathLike, name: str) -> Path:
    """``<processed_root>/<name>/manifest.parquet`` (the dataset name is used verbatim, e.g. ``FF++``)."""
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"dataset name {name!r} cannot be a folder name (no '/', '\\', '.' or '..')")
    return Path(processed_root) / name / FILE_NAME


def is_empty(value: Any) -> bool:
    """True for an absent path cell: None, NaN or blank."""
    return value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == ""


def write_manifest(rows: Sequence[dict[str, Any]], path: str | os.PathLike) -> Path:
    """Write ``rows`` (dicts with :data:`COLUMNS`) as the manifest at ``path``, atomically."""
    path = Path(path)
    df = pd.DataFrame(list(rows), columns=list(COLUMNS))
    for col, dtype in DTYPES.items():
        if dtype == "float32":
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(dtype)  # absent -> NaN
        elif dtype != "str":
            df[col] = df[col].astype(dtype)
        elif df[col].isna().all():  # a column no row carries (e.g. rows built before it existed)
            df[col] = pd.Series([""] * len(df), dtype="str")
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return path


def sample_id(video_id: str, frame_index: int) -> str:
    """A frame's ``sample_id``, ``<video_id>/<frame_index>``: the key of its score rows in the store."""
    return f"{video_id}/{int(frame_index)}"


def sample_ids(df: pd.DataFrame) -> pd.Series:
    """:func:`sample_id` of every row of a manifest table (vectorised)."""
    return df["video_id"].astype(str) + "/" + df["frame_index"].astype(int).astype(str)


def read_manifest(path: str | os.PathLike, name: str) -> pd.DataFrame:
    """The whole manifest of dataset ``name``; ``DataError`` when it is missing or lacks columns."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"manifest of dataset {name!r} not found: {path}")
    df = pd.read_parquet(path)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(f"manifest {path} (dataset {name!r}) lacks columns {missing}")
    return df


def read_ok_rows(path: str | os.PathLike, name: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """The ``status == ok`` rows of a manifest, and the count of the other rows per status."""
    df = read_manifest(path, name)
    bad = df[df["status"] != "ok"]
    skipped = {str(k): int(v) for k, v in bad["status"].value_counts().items()}
    if skipped:
        log.info("dataset %s: skipping %d frames with status != ok: %s", name, len(bad), skipped)
    ok = df[df["status"] == "ok"].copy()
    ok["label"] = ok["label"].astype(int)
    ok["frame_index"] = ok["frame_index"].astype(int)
    return ok.reset_index(drop=True), skipped


def spread_frames(frame_indices: Sequence[int], k: int) -> list[int]:
    """Positions of ``k`` items evenly spread over ``len(frame_indices)`` sorted frames (all if fewer).

    The centre of each of ``k`` equal bins, so ``k = 1`` takes the middle frame, not the first.
    """
    n = len(frame_indices)
    if k <= 0 or k >= n:
        return list(range(n))
    return [int((j + 0.5) * n / k) for j in range(k)]


def select_frames(df: pd.DataFrame, frames: int) -> pd.DataFrame:
    """``frames`` rows per video, evenly spread over each video's frames (sorted by frame index)."""
    df = df.sort_values(["video_id", "frame_index"], kind="stable")
    keep: list[int] = []
    for _, g in df.groupby("video_id", sort=True):
        idx = g.index.to_numpy()
        keep += [int(idx[i]) for i in spread_frames(g["frame_index"].tolist(), frames)]
    return df.loc[keep].reset_index(drop=True)

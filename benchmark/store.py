"""The score store: per-frame scores and a JSON record for every cell, written atomically.

Layout::

    <root>/cells/<cell_id>/scores.parquet   one row per scored frame (SCORE_COLUMNS, + any extra column)
    <root>/cells/<cell_id>/record.json      config, seed, versions, git commit, checkpoint, manifest hash,
                                            timings, ..., and ``status`` ("running" | "done" | "failed")

Columns: ``dataset`` is the MANIFEST's dataset name of the frame; ``test_set`` is the name of the
evaluation set it was scored in (the source's val split is named after the training set; a method subset
such as ``FF++/DF`` has ``dataset = FF++``, and ``@<set>`` on its ``video_id``/``sample_id``, its reals being
shared with the other subsets); ``split`` is ``val`` or ``test``. The Cross-AUC axis is ``test_set``:
:meth:`ScoreStore.read_scores` returns it in ``dataset`` (the column ``benchmark.metrics`` groups by) and
the stored dataset name in ``manifest_dataset`` unless asked for ``axis="dataset"`` (see :func:`on_axis`).
Stores written before the two were separated hold the set's name in both; they read the same either way.

A *derived* cell (its record has ``parent_cell_id``: another cell's checkpoint scored under a test-time
perturbation or view, ``benchmark.runner.perturbed``) scores the same frames as its parent, so
:meth:`ScoreStore.read_scores` leaves derived cells out unless asked (``derived=True``: only them,
``derived=None``: every cell); their rows carry the condition in a ``perturbation`` column.

A cell is one test of one trained model on one dataset. Every file is written by the project's atomic
writer (``datamodules.atomic``: a unique temporary name in the same folder, fsync, ``os.replace``, fsync
of the folder), so a reader sees the old file or the new one, never half of one. ``write_cell`` first marks the record ``running``, then replaces the scores,
then writes the record with ``status: done`` LAST: a cell whose scores are being (re)written, or whose
writer died, is not ``done`` and is ignored by :meth:`ScoreStore.read_scores`. Leftover ``*.tmp`` files are
never read.

Notebook use::

    store = ScoreStore("results")
    frames = store.read_scores(detector="sfam", test_set=["CDF-v2", "DFDC"])   # dataset = test_set
    store.read_scores(axis="dataset")    # the columns as stored (dataset = the manifest's name)
    store.read_scores(derived=True, perturbation="gaussian_blur@3")   # one test-time condition
    store.read_records()          # one row per cell, nested keys flattened ("versions.torch", ...)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import subprocess
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from benchmark.metrics.scores import validate_frames
from datamodules.atomic import write_bytes as _atomic_write_bytes  # module-level name: tests patch it

SCORE_COLUMNS = (
    "cell_id",
    "detector",
    "train_set",
    "test_set",
    "split",
    "dataset",
    "video_id",
    "sample_id",
    "label",
    "method",
    "score",
)
#: columns ``write_cell`` takes from the record when the scores table lacks them (``seed`` only when set)
RECORD_COLUMNS = ("detector", "train_set", "test_set", "split", "seed")
STATUSES = ("running", "done", "failed")
#: what ``read_scores(axis=...)`` puts in ``dataset``: the evaluation set (the Cross-AUC axis) or the manifest
AXES = ("test_set", "dataset")
#: the column that keeps the stored (manifest) dataset name when ``dataset`` carries the set's name
MANIFEST_DATASET = "manifest_dataset"
#: distributions whose versions go into every cell record (importlib.metadata: nothing is imported)
VERSIONED = (
    "torch",
    "lightning",
    "timm",
    "open_clip_torch",
    "torchvision",
    "numpy",
    "pandas",
    "scikit-learn",
    "pyarrow",
)
_CELL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]{0,199}$")
SCORES_FILE = "scores.parquet"
RECORD_FILE = "record.json"
#: record key of a derived cell: the id of the cell whose checkpoint it scored under a test-time condition
PARENT_KEY = "parent_cell_id"


def is_derived(record: Mapping[str, object]) -> bool:
    """Whether a cell record is a derived cell's (see the module docstring)."""
    return record.get(PARENT_KEY) is not None


class CellNotFoundError(KeyError):
    """No record for this cell id in the store."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def package_versions(names: Iterable[str] = VERSIONED) -> dict[str, str | None]:
    """Installed versions of ``names`` (None when not installed), plus ``python``."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def git_commit(path: str | os.PathLike = ".") -> dict[str, object] | None:
    """``{"commit": sha, "dirty": bool}`` of the git checkout holding ``path``; None outside git."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha, "dirty": bool(status.strip())}


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file (e.g. the data manifest a cell was tested on)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def build_record(
    config: Mapping[str, object],
    seed: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    manifest_hash: str | None = None,
    timings: Mapping[str, float] | None = None,
    **extra: object,
) -> dict:
    """A cell record: the caller's facts plus package versions, git commit, host and creation time.

    Args:
        config: the cell's full configuration (detector, overrides, train/test sets, ...).
        seed: the training seed.
        checkpoint: the checkpoint tested.
        manifest_hash: hash of the test data manifest (:func:`file_sha256`).
        timings: seconds per phase (``train``, ``test``, ...).
        extra: any other top-level keys (e.g. ``detector="sfam"``, ``pretrained_loaded=False``);
            ``detector``, ``train_set``, ``test_set``, ``split`` also fill missing score columns.
    """
    rec: dict[str, object] = {
        "config": dict(config),
        "seed": seed,
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "manifest_hash": manifest_hash,
        "timings": dict(timings or {}),
        "versions": package_versions(),
        "git": git_commit(Path(__file__).resolve().parent),
        "host": platform.node(),
        "created_at": _utc_now(),
    }
    rec.update(extra)
    return rec


def _json_default(obj: object) -> object:
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, set | frozenset):
        return sorted(obj, key=str)
    if isinstance(obj, datetime):
        return obj.isoformat()
    raise TypeError(f"cell record value of type {type(obj).__name__} is not JSON-serialisable: {obj!r}")


def on_axis(scores: pd.DataFrame, axis: str = "test_set") -> pd.DataFrame:
    """``scores`` (the stored columns) with the Cross-AUC axis in ``dataset``: the one adapter between the
    store's columns and the metrics' (``benchmark.metrics`` groups by ``dataset``).

    ``axis="test_set"``: ``dataset`` := ``test_set`` (each evaluation set, e.g. the method subset
    ``FF++/DF``, is its own unit), the stored dataset moves to ``manifest_dataset`` (added as the last
    column). ``axis="dataset"``: the table as stored. A table without ``test_set`` is returned as it is.
    """
    if axis not in AXES:
        raise ValueError(f"axis={axis!r} is not one of {list(AXES)}")
    if axis == "dataset" or "test_set" not in scores.columns or "dataset" not in scores.columns:
        return scores
    out = scores.copy()
    manifest = out["dataset"]
    out["dataset"] = out["test_set"]
    out[MANIFEST_DATASET] = manifest
    return out


class ScoreStore:
    """Per-cell score tables and records under ``root`` (see the module docstring for the layout)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.cells_dir = self.root / "cells"

    def __repr__(self) -> str:
        return f"ScoreStore({str(self.root)!r})"

    # -- paths -----------------------------------------------------------------------------------
    def _cell_dir(self, cell_id: str) -> Path:
        if not isinstance(cell_id, str) or not _CELL_ID.match(cell_id):
            raise ValueError(
                f"cell_id {cell_id!r} is not a valid cell id: 1-200 characters from [A-Za-z0-9._=+-], "
                "starting with a letter or digit"
            )
        return self.cells_dir / cell_id

    def cell_ids(self, status: str | None = None) -> list[str]:
        """Cell ids with a record (``status`` filters: ``running``, ``done`` or ``failed``), sorted."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status={status!r} is not one of {list(STATUSES)}")
        if not self.cells_dir.is_dir():
            return []
        out = []
        for d in sorted(self.cells_dir.iterdir()):
            rec = self._read_record(d / RECORD_FILE)
            if rec is not None and (status is None or rec.get("status") == status):
                out.append(d.name)
        return out

    # -- records ---------------------------------------------------------------------------------
    @staticmethod
    def _read_record(path: Path) -> dict | None:
        try:
            text = path.read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"cell record {path} is not valid JSON ({e})") from None

    def write_record(self, cell_id: str, record: Mapping[str, object], status: str) -> dict:
        """Atomically write ``record`` for ``cell_id`` with ``status`` (``running``/``done``/``failed``).

        Use it to mark a cell ``running`` or ``failed`` (with e.g. an ``error`` key); :meth:`write_cell`
        writes ``done`` itself. Returns the record as written (JSON types, as :meth:`record` reads it).
        """
        if status not in STATUSES:
            raise ValueError(f"status={status!r} is not one of {list(STATUSES)}")
        d = self._cell_dir(cell_id)
        d.mkdir(parents=True, exist_ok=True)
        rec = {**dict(record), "cell_id": cell_id, "status": status, "updated_at": _utc_now()}
        data = json.dumps(rec, indent=2, sort_keys=True, default=_json_default).encode()
        _atomic_write_bytes(d / RECORD_FILE, data)
        return json.loads(data)

    def record(self, cell_id: str) -> dict:
        """The record of ``cell_id`` (any status); ``CellNotFoundError`` when there is none."""
        rec = self._read_record(self._cell_dir(cell_id) / RECORD_FILE)
        if rec is None:
            known = self.cell_ids()
            raise CellNotFoundError(
                f"no record for cell {cell_id!r} in {self.root}; {len(known)} cell(s) known"
                + (f": {known[:20]}" if known else "")
            )
        return rec

    def is_done(self, cell_id: str) -> bool:
        """True when the cell's record says ``done`` (its scores are complete)."""
        rec = self._read_record(self._cell_dir(cell_id) / RECORD_FILE)
        return rec is not None and rec.get("status") == "done"

    def read_records(self, status: str | None = None) -> pd.DataFrame:
        """One row per cell (optionally of one ``status``); nested keys flattened (``versions.torch``)."""
        recs = [self.record(c) for c in self.cell_ids(status)]
        if not recs:
            return pd.DataFrame(columns=["cell_id", "status"])
        return pd.json_normalize(recs, sep=".").set_index("cell_id", drop=False).rename_axis(None)

    # -- scores ----------------------------------------------------------------------------------
    def write_cell(self, cell_id: str, scores: pd.DataFrame, record: Mapping[str, object]) -> dict:
        """Store a finished cell: validate ``scores``, write them atomically, then the record (``done``).

        ``scores`` needs ``SCORE_COLUMNS``; ``cell_id`` is added when absent (and must equal ``cell_id``
        when present); ``detector``, ``train_set``, ``test_set``, ``split`` are taken from ``record`` when
        the table lacks them, and ``seed`` too when the record has one (so ``read_scores(seed=0)`` works).
        Raises ``ValueError`` (nothing is written) for missing columns, duplicated
        ``sample_id``, labels outside {0, 1}, NaN/inf scores or a video with mixed labels, naming the
        column and rows. Returns the record as written (with ``n_rows`` and ``scores_sha256``).
        """
        d = self._cell_dir(cell_id)
        df = self._prepare(cell_id, scores, record)
        table_bytes = _parquet_bytes(df)
        d.mkdir(parents=True, exist_ok=True)
        old = self._read_record(d / RECORD_FILE)
        if old is not None and old.get("status") == "done":  # being replaced: not done until finished
            self.write_record(cell_id, {**old, "replacing": True}, "running")
        _atomic_write_bytes(d / SCORES_FILE, table_bytes)
        rec = {
            **dict(record),
            "n_rows": len(df),
            "scores_sha256": hashlib.sha256(table_bytes).hexdigest(),
            "finished_at": _utc_now(),
        }
        rec.pop("replacing", None)
        return self.write_record(cell_id, rec, "done")

    @staticmethod
    def _prepare(cell_id: str, scores: pd.DataFrame, record: Mapping[str, object]) -> pd.DataFrame:
        if not isinstance(scores, pd.DataFrame):
            raise TypeError(f"scores must be a pandas DataFrame, got {type(scores).__name__}")
        df = scores.copy()
        if "cell_id" in df.columns:
            other = df["cell_id"] != cell_id
            if other.any():
                raise ValueError(
                    f"column 'cell_id' holds {df.loc[other, 'cell_id'].iloc[0]!r} instead of {cell_id!r} "
                    f"in {int(other.sum())} row(s), e.g. rows {list(df.index[other.to_numpy()][:8])}"
                )
        else:
            df["cell_id"] = cell_id
        for c in RECORD_COLUMNS:
            if c not in df.columns and record.get(c) is not None:
                df[c] = record[c]
        missing = [c for c in SCORE_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(
                f"scores for cell {cell_id!r} lack column(s) {missing} (put detector/train_set/test_set/"
                f"split in the record to fill them); it has {list(scores.columns)}"
            )
        try:
            validate_frames(df, need_video=True)
            validate_frames(on_axis(df), need_video=True)  # what the metrics will read
        except ValueError as e:
            raise ValueError(f"scores for cell {cell_id!r}: {e}") from None
        df["label"] = df["label"].astype(np.int8)
        df["score"] = df["score"].astype(np.float64)
        rest = [c for c in df.columns if c not in SCORE_COLUMNS]
        return df[list(SCORE_COLUMNS) + rest].reset_index(drop=True)

    def read_scores(
        self,
        columns: Iterable[str] | None = None,
        axis: str = "test_set",
        derived: bool | None = False,
        **filters: object,
    ) -> pd.DataFrame:
        """All ``done`` cells' scores as one DataFrame, filtered on any column.

        Args:
            columns: keep only these columns (all by default).
            axis: what ``dataset`` holds (:func:`on_axis`): ``"test_set"`` (default; the Cross-AUC axis
                the metrics and leaderboards group by, the stored dataset name in ``manifest_dataset``)
                or ``"dataset"`` (the manifest's dataset name, the columns as stored).
            filters: ``column=value`` keeps rows equal to ``value``; ``column=[v1, v2]`` (list, tuple,
                set) keeps rows whose value is in it. ``read_scores(detector="sfam", test_set=["DFDC"])``.
                Filters and ``columns`` apply to the table as returned (after ``axis``).
            derived: derived cells (test-time perturbations of another cell's checkpoint, which score the
                same frames) are left out by default; ``True`` reads only them, ``None`` every cell.

        Raises ``ValueError`` naming a filter column no cell has, and for a done cell whose scores
        file is missing or does not match its record (``n_rows``).
        """
        if axis not in AXES:
            raise ValueError(f"axis={axis!r} is not one of {list(AXES)}")
        frames = []
        known: set[str] = set()
        for cell in self.cell_ids("done"):
            rec = self.record(cell)
            if derived is not None and is_derived(rec) != derived:
                continue
            path = self.cells_dir / cell / SCORES_FILE
            if not path.is_file():
                raise ValueError(f"cell {cell!r} is marked done but has no {SCORES_FILE} in {path.parent}")
            n = pq.ParquetFile(path).metadata.num_rows
            if "n_rows" in rec and n != rec["n_rows"]:
                raise ValueError(f"cell {cell!r}: {path} has {n} rows, its record says {rec['n_rows']}")
            df = on_axis(pd.read_parquet(path), axis)
            known.update(df.columns)
            bad = [k for k in filters if k not in df.columns]
            if bad:
                continue
            for k, v in filters.items():
                keep = df[k].isin(list(v)) if isinstance(v, list | tuple | set | frozenset) else df[k] == v
                df = df[keep.to_numpy()]
            if columns is not None:
                df = df[list(columns)]
            if len(df):
                frames.append(df)
        unknown = [k for k in filters if k not in known]
        if unknown and known:
            raise ValueError(f"filter column(s) {unknown} are not in the scores; columns: {sorted(known)}")
        if not frames:
            cols = list(columns) if columns is not None else list(SCORE_COLUMNS)
            if columns is None and axis == "test_set":
                cols.append(MANIFEST_DATASET)
            return pd.DataFrame(columns=cols)
        return pd.concat(frames, ignore_index=True)

    def clean_tmp(self) -> list[Path]:
        """Delete leftover ``*.tmp`` files of interrupted writes (never read anyway); return them."""
        gone = sorted(self.cells_dir.glob("*/*.tmp")) if self.cells_dir.is_dir() else []
        for p in gone:
            p.unlink(missing_ok=True)
        return gone


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()

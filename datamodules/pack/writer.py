"""Packing a preprocessed dataset's PNG store into shards (:func:`pack_dataset`): resumable and atomic.

Steps: fingerprint the manifest (:func:`datamodules.pack.format.fingerprint`); write ``plan.json`` (what
is being built: fingerprint, rows per shard, row count; a plan that differs from an unfinished pack's
clears that pack first); write each shard, then its index part, each atomically
(:mod:`datamodules.atomic`); merge the parts into ``index.parquet``; write ``pack.json`` last. A run
killed at any point resumes at the first shard without a matching part (a shard is kept when its part
is there and its size is what the part says), so finished shards are never rewritten; an unchanged
complete pack is a no-op.

Rows: the manifest's ``ok`` rows, sorted by ``(video_id, frame_index)`` (the order evaluation reads).
Each part is read through :mod:`datamodules.loading.store`'s ``read_crop`` / ``read_landmarks`` /
``read_mask``, the functions the PNG loader decodes with, so a packed record holds exactly the
values a PNG-store read gives (tested: bitwise-identical batches).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xxhash

from datamodules import atomic
from datamodules.loading.store import read_crop, read_landmarks, read_mask
from datamodules.manifest import FILE_NAME, DataError, is_empty, read_manifest
from datamodules.pack import format as fmt

DEFAULT_SHARD_ROWS = 2048  # ~400-540 MB of 256 px crops (with masks) per shard


def _ok_rows(dataset_dir: Path, name: str) -> pd.DataFrame:
    df = read_manifest(dataset_dir / FILE_NAME, name)
    df = df.assign(manifest_row=np.arange(len(df), dtype=np.int64))
    ok = df[df["status"] == "ok"].sort_values(["video_id", "frame_index"], kind="stable")
    empty = ok["crop_path"].map(is_empty)
    if empty.any():
        raise DataError(f"manifest of {name!r}: {int(empty.sum())} ok rows have no crop_path")
    twice = ok["crop_path"][ok["crop_path"].duplicated()]
    if len(twice):
        raise DataError(f"manifest of {name!r} lists crop {twice.iloc[0]!r} in more than one row")
    return ok.reset_index(drop=True)


def _clear(folder: Path) -> None:
    """Remove an unfinished or stale pack's files (only the names a pack writes)."""
    for p in folder.iterdir():
        if p.name.startswith("shard-") or p.name in (fmt.INDEX, fmt.INFO, fmt.PLAN):
            p.unlink()


def _write_shard(dataset_dir: Path, rows: pd.DataFrame, k: int, folder: Path) -> pd.DataFrame:
    """Shard ``k`` of ``rows`` (then its index part); returns the part."""
    entries = []
    offset = 0
    with atomic.atomic_path(folder / fmt.shard_name(k)) as tmp, open(tmp, "wb") as f:
        for r in rows.itertuples(index=False):
            crop = read_crop(dataset_dir / str(r.crop_path))
            lm = None if is_empty(r.landmarks_path) else read_landmarks(dataset_dir / str(r.landmarks_path))
            mask = None if is_empty(r.mask_path) else read_mask(dataset_dir / str(r.mask_path))
            parts = [np.ascontiguousarray(a) for a in (lm, crop, mask) if a is not None]
            h = xxhash.xxh3_64()
            for a in parts:
                h.update(memoryview(a).cast("B"))
                f.write(memoryview(a).cast("B"))
            n = sum(a.nbytes for a in parts)
            f.write(b"\0" * (fmt.padded(n) - n))
            entries.append(
                {
                    "crop_path": str(r.crop_path),
                    "manifest_row": int(r.manifest_row),
                    "shard": k,
                    "offset": offset,
                    "nbytes": n,
                    "checksum": h.intdigest(),
                    "crop_h": crop.shape[0],
                    "crop_w": crop.shape[1],
                    "lm_rows": 0 if lm is None else lm.shape[0],
                    "lm_cols": 0 if lm is None else (lm.shape[1] if lm.ndim > 1 else 1),
                    "lm_dtype": "" if lm is None else lm.dtype.str,
                    "mask_h": 0 if mask is None else mask.shape[0],
                    "mask_w": 0 if mask is None else mask.shape[1],
                }
            )
            offset += fmt.padded(n)
        f.flush()
    part = _frame(entries)
    with atomic.atomic_path(folder / fmt.part_name(k)) as tmp:
        part.to_parquet(tmp, index=False)
    return part


def _frame(entries: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(entries, columns=list(fmt.INDEX_DTYPES))
    return df.astype({c: d for c, d in fmt.INDEX_DTYPES.items() if d != "str"})


def _shard_bytes(part: pd.DataFrame) -> int:
    return 0 if part.empty else int(part["offset"].iloc[-1]) + fmt.padded(int(part["nbytes"].iloc[-1]))


def _done_part(folder: Path, k: int) -> pd.DataFrame | None:
    """Shard ``k``'s part when the shard and its part are both there and agree in size, else None."""
    part, shard = folder / fmt.part_name(k), folder / fmt.shard_name(k)
    if not (part.is_file() and shard.is_file()):
        return None
    try:
        df = pd.read_parquet(part)
    except (OSError, ValueError):
        return None
    return df if shard.stat().st_size == _shard_bytes(df) else None


def pack_dataset(
    dataset_dir: str | os.PathLike,
    name: str | None = None,
    *,
    shard_rows: int = DEFAULT_SHARD_ROWS,
    progress: bool = False,
) -> Path:
    """Pack the PNG store of ``dataset_dir`` (a folder holding ``manifest.parquet``); return ``packed/``.

    Resumes an interrupted run of the same plan; redoes a stale or differently planned pack.
    """
    dataset_dir = Path(dataset_dir)
    name = name or dataset_dir.name
    if shard_rows <= 0:
        raise ValueError(f"shard_rows must be positive, got {shard_rows}")
    rows = _ok_rows(dataset_dir, name)
    plan = {
        "version": fmt.VERSION,
        "fingerprint": fmt.fingerprint(dataset_dir),
        "shard_rows": shard_rows,
        "rows": len(rows),
    }
    folder = dataset_dir / fmt.FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    info = fmt.read_json(folder / fmt.INFO)
    if info is not None and info.get("plan") == plan:
        return folder  # complete and current
    if fmt.read_json(folder / fmt.PLAN) != plan:
        _clear(folder)
        atomic.write_json(folder / fmt.PLAN, plan, indent=1)
    elif info is not None:  # pack.json of another plan next to this plan: never trust it
        (folder / fmt.INFO).unlink()
    n_shards = -(-len(rows) // shard_rows)
    parts = []
    from rich.progress import Progress

    with Progress(disable=not progress, transient=False) as bar:
        task = bar.add_task(f"packing {name}", total=n_shards)
        for k in range(n_shards):
            part = _done_part(folder, k)
            if part is None:
                part = _write_shard(dataset_dir, rows.iloc[k * shard_rows : (k + 1) * shard_rows], k, folder)
            parts.append(part)
            bar.update(task, advance=1)
    index = pd.concat(parts, ignore_index=True) if parts else _frame([])
    with atomic.atomic_path(folder / fmt.INDEX) as tmp:
        index.to_parquet(tmp, index=False)
    shards = [
        {"file": fmt.shard_name(k), "bytes": _shard_bytes(p), "rows": len(p)} for k, p in enumerate(parts)
    ]
    atomic.write_json(
        folder / fmt.INFO,
        {"version": fmt.VERSION, "fingerprint": plan["fingerprint"], "plan": plan, "shards": shards},
        indent=1,
    )
    return folder


def describe(folder: Path) -> str:
    """One line: shards, rows and bytes of a complete pack."""
    info = json.loads((Path(folder) / fmt.INFO).read_text())
    n = sum(s["rows"] for s in info["shards"])
    size = sum(s["bytes"] for s in info["shards"])
    return f"{folder}: {len(info['shards'])} shards, {n:,} rows, {size / 2**20:,.1f} MiB"

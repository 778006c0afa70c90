"""The packed store's file names, index columns and the manifest fingerprint that ties a pack to its manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from datamodules.manifest import FILE_NAME, DataError

VERSION = 1
FOLDER = "packed"  # inside the dataset's folder, beside manifest.parquet
INFO = "pack.json"  # written last: its presence means the pack is complete
PLAN = "plan.json"  # written first: what an unfinished pack is building (resume keeps its shards)
INDEX = "index.parquet"
ALIGN = 64  # every record starts at a multiple of this (keeps the float landmarks aligned)
PREPROCESS_CONFIG = "preprocess.json"  # datamodules.preprocess.options.CONFIG_FILE (pins the pixels)

#: index column -> dtype (one row per packed manifest row)
INDEX_DTYPES: dict[str, str] = {
    "crop_path": "str",  # the manifest's crop_path: what a dataset looks its rows up by
    "manifest_row": "int64",  # the row's position in manifest.parquet
    "shard": "int32",
    "offset": "int64",  # record start in the shard, bytes
    "nbytes": "int64",  # record length without padding
    "checksum": "uint64",  # xxh3-64 of the record's nbytes
    "crop_h": "int32",
    "crop_w": "int32",
    "lm_rows": "int32",  # 0: no landmarks packed for this row
    "lm_cols": "int32",
    "lm_dtype": "str",  # numpy dtype string as stored, e.g. "<f4"
    "mask_h": "int32",  # 0: no mask packed for this row
    "mask_w": "int32",
}


class PackError(DataError):
    """A pack that cannot be read as its pack.json describes (truncated or corrupt shard, bad index)."""


def shard_name(k: int) -> str:
    """File name of shard ``k``."""
    return f"shard-{k:05d}.bin"


def part_name(k: int) -> str:
    """A shard's own index rows, written right after the shard: the shard's done marker for a resume."""
    return f"shard-{k:05d}.index.parquet"


def padded(n: int) -> int:
    """``n`` rounded up to the record alignment."""
    return -(-n // ALIGN) * ALIGN


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(dataset_dir: Path) -> dict[str, Any]:
    """What the pack was made from: the manifest's bytes and the preprocessing options pinning its pixels.

    A manifest rewritten after packing (more videos, other splits) changes the first; a preprocessing
    re-run with other options (``--overwrite`` rewrites every crop under the same paths) the second.
    """
    manifest = Path(dataset_dir) / FILE_NAME
    if not manifest.is_file():
        raise DataError(f"no manifest to pack: {manifest} not found")
    config = Path(dataset_dir) / PREPROCESS_CONFIG
    return {
        "manifest_sha256": _sha256(manifest),
        "manifest_bytes": manifest.stat().st_size,
        "preprocess_sha256": _sha256(config) if config.is_file() else "",
    }


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's object, or ``None`` when it is absent or unreadable (an unfinished pack)."""
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None

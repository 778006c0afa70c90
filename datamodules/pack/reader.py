"""Reading a pack: is it usable for this manifest (:func:`pack_state`), and its records (:class:`PackReader`).

Shards are memory-mapped lazily, per process: a DataLoader worker maps them on its first read (after the
fork), never inheriting the parent's maps, and the reader pickles without them (spawned workers). A
record is served as read-only numpy views of the map (no copy, no decode); its xxh3-64 checksum is
verified when it is first read after another record (~25 us for a 256 px crop with its mask), so a
corrupt byte is a :class:`~datamodules.pack.format.PackError` naming the shard, never a silently
different training sample. A shard whose size differs from ``pack.json`` (truncated, replaced) is refused
before it is mapped (reading past a truncated map's end would kill the process with SIGBUS).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xxhash

from datamodules.pack import format as fmt
from datamodules.pack.format import PackError


def pack_state(dataset_dir: Path) -> tuple[str, str]:
    """``(state, reason)``: ``absent`` (no pack), ``incomplete`` (no ``pack.json``: interrupted or being
    written), ``stale`` (made from another manifest, other preprocessing options or another format version)
    or ``ok``."""
    folder = Path(dataset_dir) / fmt.FOLDER
    if not folder.is_dir() or not any(folder.iterdir()):
        return "absent", f"no pack in {folder}"
    info = fmt.read_json(folder / fmt.INFO)
    if info is None:
        return "incomplete", f"the pack in {folder} is unfinished (no readable {fmt.INFO})"
    if info.get("version") != fmt.VERSION:
        return "stale", f"the pack in {folder} has format version {info.get('version')}, not {fmt.VERSION}"
    now = fmt.fingerprint(Path(dataset_dir))
    was = info.get("fingerprint", {})
    changed = [k for k in now if was.get(k) != now[k]]
    if changed:
        what = {"manifest_sha256": "the manifest", "manifest_bytes": "the manifest"}
        names = sorted({what.get(k, "preprocess.json (the preprocessing options)") for k in changed})
        return "stale", f"the pack in {folder} is stale: {' and '.join(names)} changed since it was packed"
    return "ok", ""


class PackReader:
    """The records of one complete pack (see :mod:`datamodules.pack`), by index position ``j``."""

    def __init__(self, folder: Path, info: dict[str, Any], index: pd.DataFrame) -> None:
        self.folder = Path(folder)
        self.shard_paths = [self.folder / s["file"] for s in info["shards"]]
        self.shard_bytes = [int(s["bytes"]) for s in info["shards"]]
        for k, p in enumerate(self.shard_paths):  # cheap: one stat per shard
            self._check_size(k, p)
        self._keys = pd.Index(index["crop_path"].astype(str))
        if not self._keys.is_unique:
            raise PackError(f"pack index {self.folder / fmt.INDEX} lists a crop_path twice")
        col = {c: index[c].to_numpy() for c in fmt.INDEX_DTYPES if c != "crop_path"}
        self.manifest_row = col["manifest_row"].astype(np.int64)
        self._shard = col["shard"].astype(np.int64)
        self._offset = col["offset"].astype(np.int64)
        self._nbytes = col["nbytes"].astype(np.int64)
        self._checksum = col["checksum"].astype(np.uint64)
        self._crop = np.stack([col["crop_h"], col["crop_w"]], 1).astype(np.int64)
        self._lm = np.stack([col["lm_rows"], col["lm_cols"]], 1).astype(np.int64)
        self._lm_dtype = [np.dtype(d) if d else None for d in col["lm_dtype"]]
        self._mask = np.stack([col["mask_h"], col["mask_w"]], 1).astype(np.int64)
        ends = self._offset + self._nbytes
        over = np.flatnonzero(ends > np.asarray(self.shard_bytes, np.int64)[self._shard])
        if len(over):
            raise PackError(f"pack index {self.folder / fmt.INDEX} points past the end of its shards")
        self._maps: dict[int, mmap.mmap] = {}
        self._pid = -1
        self._verified = -1

    @classmethod
    def open(cls, dataset_dir: Path) -> PackReader:
        """The pack of ``dataset_dir`` (its state must be ``ok``: see :func:`pack_state`)."""
        folder = Path(dataset_dir) / fmt.FOLDER
        info = fmt.read_json(folder / fmt.INFO)
        if info is None:
            raise PackError(f"no readable {fmt.INFO} in {folder}")
        try:
            index = pd.read_parquet(folder / fmt.INDEX)
        except (OSError, ValueError) as e:
            raise PackError(f"cannot read the pack index {folder / fmt.INDEX}: {e}") from e
        missing = [c for c in fmt.INDEX_DTYPES if c not in index.columns]
        if missing:
            raise PackError(f"pack index {folder / fmt.INDEX} lacks columns {missing}")
        return cls(folder, info, index)

    def __len__(self) -> int:
        return len(self._keys)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_maps"], state["_pid"], state["_verified"] = {}, -1, -1
        return state

    def lookup(self, crop_paths: Sequence) -> np.ndarray:
        """Index positions of ``crop_paths`` (int64; -1 for a path the pack does not hold)."""
        return self._keys.get_indexer(pd.Index([str(p) for p in crop_paths]))

    # ------------------------------------------------------------------ records
    def _check_size(self, k: int, path: Path) -> None:
        try:
            size = path.stat().st_size
        except OSError as e:
            raise PackError(
                f"pack shard {path} cannot be read: {e}; re-run python -m datamodules.pack"
            ) from e
        if size != self.shard_bytes[k]:
            raise PackError(
                f"pack shard {path} is {size:,} bytes, {fmt.INFO} says {self.shard_bytes[k]:,}: truncated or "
                "replaced; re-run python -m datamodules.pack (it redoes the shards that do not check)"
            )

    def _map(self, k: int) -> mmap.mmap:
        if self._pid != os.getpid():  # a forked worker: map the shards itself
            self._maps, self._pid, self._verified = {}, os.getpid(), -1
        m = self._maps.get(k)
        if m is None:
            path = self.shard_paths[k]
            self._check_size(k, path)
            with open(path, "rb") as f:
                m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            self._maps[k] = m
        return m

    def _record(self, j: int) -> tuple[mmap.mmap, int]:
        """The map holding record ``j`` and the record's offset, its checksum verified."""
        k, off = int(self._shard[j]), int(self._offset[j])
        m = self._map(k)
        if j != self._verified:
            n = int(self._nbytes[j])
            if xxhash.xxh3_64_intdigest(memoryview(m)[off : off + n]) != int(self._checksum[j]):
                raise PackError(
                    f"pack shard {self.shard_paths[k]} is corrupt: the record of {self._keys[j]} (bytes "
                    f"{off:,}-{off + n:,}) fails its checksum; re-run python -m datamodules.pack"
                )
            self._verified = j
        return m, off

    def _lm_bytes(self, j: int) -> int:
        r, c = self._lm[j]
        return int(r * c * self._lm_dtype[j].itemsize) if r else 0

    def checksum(self, j: int) -> int:
        """Record ``j``'s stored checksum (xxh3-64 of its bytes), without reading the shard."""
        return int(self._checksum[j])

    def crop(self, j: int) -> np.ndarray:
        """Record ``j``'s crop, uint8 RGB ``[H, W, 3]`` (a read-only view of the shard)."""
        m, off = self._record(j)
        h, w = (int(x) for x in self._crop[j])
        return np.frombuffer(m, np.uint8, h * w * 3, off + self._lm_bytes(j)).reshape(h, w, 3)

    def landmarks(self, j: int) -> np.ndarray:
        """Record ``j``'s landmarks as stored (read-only view); ``PackError`` when none were packed."""
        r, c = (int(x) for x in self._lm[j])
        if not r:
            raise PackError(f"the pack {self.folder} holds no landmarks for {self._keys[j]}")
        m, off = self._record(j)
        return np.frombuffer(m, self._lm_dtype[j], r * c, off).reshape(r, c)

    def mask(self, j: int) -> np.ndarray:
        """Record ``j``'s forgery mask, uint8 ``[H, W]`` (read-only view); ``PackError`` when none was packed."""
        mh, mw = (int(x) for x in self._mask[j])
        if not mh:
            raise PackError(f"the pack {self.folder} holds no mask for {self._keys[j]}")
        m, off = self._record(j)
        h, w = (int(x) for x in self._crop[j])
        return np.frombuffer(m, np.uint8, mh * mw, off + self._lm_bytes(j) + h * w * 3).reshape(mh, mw)

    def has_landmarks(self, j: np.ndarray) -> np.ndarray:
        """Whether each record ``j`` stores landmarks."""
        return self._lm[np.asarray(j), 0] > 0

    def has_mask(self, j: np.ndarray) -> np.ndarray:
        """Whether each record ``j`` stores a forgery mask."""
        return self._mask[np.asarray(j), 0] > 0

    def verify(self) -> int:
        """Check every record's checksum (a full read); return the number checked."""
        for j in range(len(self)):
            self._verified = -1
            self._record(j)
        return len(self)

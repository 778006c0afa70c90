"""The frozen-feature cache: what a frozen backbone computed for a batch, reused by later passes.

For a detector whose trainable part only reads a frozen backbone's outputs (``sfam``, ``clip_linear``),
the backbone's forward is nearly all of the cost (CLIP ViT-B/16: ~30x SFAM's own modules), and it is the
same for every seed, cell and re-scoring that sees the same crops. The detector exposes the split
(:meth:`detectors.base.Detector.frozen_features` / ``forward_from_frozen`` / ``frozen_scope``) and this
cache stores ``frozen_features(batch)`` on disk.

Keys. A pack holds the outputs of ONE batch and is found by

* the *scope*: the detector's ``frozen_scope()`` (the frozen tower's state-dict SHA-256 and what is read
  from it, e.g. SFAM's layers) and the numerics of the pass (torch version, device type, CPU threads or
  GPU name and TF32 switches, autocast dtype): ``<root>/<scope hash>/``;
* the batch's ordered ``Batch.input_key`` (crop, transform, perturbation and view of each sample,
  :mod:`datamodules.loading.input_keys`): the pack's file name hashes them, and the pack stores them, so
  a read checks them exactly.

Why per batch and not per sample: a matrix product's result depends on how many rows it computes at
once (measured on this CPU: CLIP's projection of the CLS token differs in the last bits between a batch
of 3 and a batch of 8), so only the same batch reproduces the uncached forward bit for bit. Every seed,
cell and re-scoring of an evaluation set sees the same batches (same set, frames and evaluation batch
size), so they share packs; scores with and without the cache are identical.

Files are ``safetensors`` (no pickle) written through :mod:`datamodules.atomic`, so concurrent cells
never see half a pack (two writers of one pack write the same bytes); an unreadable pack is a miss. The
cache is bounded by ``max_bytes`` (least recently used packs go first) and prunable from the command line::

    python -m detectors.frozen_cache stats  [--root runs/cache/frozen]
    python -m detectors.frozen_cache prune --max-gb 50
    python -m detectors.frozen_cache clear
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from datamodules import atomic

DEFAULT_ROOT = Path("runs/cache/frozen")
SUFFIX = ".safetensors"


def pass_context(device: torch.device) -> dict[str, Any]:
    """What besides weights and inputs decides a forward's exact bits on ``device``."""
    ctx: dict[str, Any] = {
        "torch": torch.__version__,
        "device": device.type,
        "matmul_precision": torch.get_float32_matmul_precision(),
        "autocast": str(torch.get_autocast_dtype(device.type))
        if torch.is_autocast_enabled(device.type)
        else None,
    }
    if device.type == "cpu":
        ctx["threads"] = torch.get_num_threads()
    elif device.type == "cuda":
        ctx["gpu"] = torch.cuda.get_device_name(device)
        ctx["tf32"] = [torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32]
        ctx["cudnn"] = [torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark]
    return ctx


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class CacheStats:
    """Counts of one process's lookups."""

    hits: int = 0
    misses: int = 0
    written_bytes: int = 0

    def to_dict(self) -> dict[str, int]:
        """The counters as a dict (recorded with the cell)."""
        return {"hits": self.hits, "misses": self.misses, "written_bytes": self.written_bytes}


class FrozenFeatureCache:
    """Per-batch packs of frozen-backbone outputs under ``root`` (see the module docstring).

    Args:
        root: the cache folder (the runner's: ``<work root>/../cache/frozen``, i.e. ``runs/cache/frozen``).
        max_bytes: bound on the folder's size; after a write past it, least recently used packs are
            removed down to 90 % of it (``None``: unbounded).
    """

    def __init__(self, root: str | os.PathLike = DEFAULT_ROOT, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.stats = CacheStats()
        self._size: int | None = None
        self._scopes: dict[str, str] = {}

    # ------------------------------------------------------------------ keys
    def scope_id(self, scope: Mapping[str, Any], device: torch.device) -> str:
        """16 hex digits of the scope (detector's frozen scope + the pass context on ``device``)."""
        record = json.dumps({"scope": scope, "context": pass_context(device)}, sort_keys=True, default=str)
        sid = self._scopes.get(record)
        if sid is None:
            sid = _sha(record)[:16]
            folder = self.root / sid
            if not (folder / "scope.json").is_file():
                atomic.write_text(folder / "scope.json", json.dumps(json.loads(record), indent=1))
            self._scopes[record] = sid
        return sid

    def pack_path(self, sid: str, keys: Sequence[str]) -> Path:
        """The pack file of the features of samples ``keys`` in scope ``sid``."""
        name = _sha(sid + "\n" + "\n".join(keys))[:32]
        return self.root / sid / name[:2] / f"{name}{SUFFIX}"

    # ------------------------------------------------------------------ lookup
    def features(
        self,
        scope: Mapping[str, Any],
        keys: Sequence[str],
        compute: Callable[[], Mapping[str, Tensor]],
        device: torch.device,
    ) -> dict[str, Tensor]:
        """The frozen outputs of the batch with input keys ``keys``: read from the cache, or ``compute()``-d
        and stored. Every key must be non-empty (a sample without a key is never cached)."""
        if not keys or not all(keys):
            raise ValueError("frozen-feature cache: every sample needs an input key")
        sid = self.scope_id(scope, device)
        path = self.pack_path(sid, keys)
        got = self._read(path, keys, device)
        if got is not None:
            self.stats.hits += 1
            return got
        self.stats.misses += 1
        feats = dict(compute())
        self._write(path, keys, feats)
        return feats

    def _read(self, path: Path, keys: Sequence[str], device: torch.device) -> dict[str, Tensor] | None:
        from safetensors import SafetensorError
        from safetensors.torch import load

        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            meta = json.loads(_metadata(data).get("keys", "null"))
            tensors = load(data)
        except (SafetensorError, ValueError, KeyError, json.JSONDecodeError):
            path.unlink(missing_ok=True)  # a torn or foreign file: recompute it
            return None
        if meta != list(keys):  # a hash collision or a foreign file
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # least recently used goes first when pruning
        return {k: v.to(device) for k, v in tensors.items()}

    def _write(self, path: Path, keys: Sequence[str], feats: Mapping[str, Tensor]) -> None:
        from safetensors.torch import save

        cpu = {k: v.detach().to("cpu").contiguous() for k, v in feats.items()}
        data = save(cpu, metadata={"keys": json.dumps(list(keys))})
        atomic.write_bytes(path, data)
        self.stats.written_bytes += len(data)
        if self.max_bytes is not None:
            self._size = (self._size if self._size is not None else self.size()) + len(data)
            if self._size > self.max_bytes:
                self.prune(int(self.max_bytes * 0.9))

    # ------------------------------------------------------------------ housekeeping
    def packs(self) -> list[Path]:
        """Every pack file of the cache, sorted."""
        return sorted(self.root.rglob(f"*{SUFFIX}")) if self.root.is_dir() else []

    def size(self) -> int:
        """Bytes of all packs under ``root``."""
        total = 0
        for p in self.packs():
            with contextlib.suppress(FileNotFoundError):  # pruned by another process meanwhile
                total += p.stat().st_size
        return total

    def prune(self, max_bytes: int) -> int:
        """Remove least recently used packs until the packs take at most ``max_bytes``; returns bytes removed."""
        entries = []
        for p in self.packs():
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            entries.append((st.st_mtime_ns, st.st_size, p))
        total = sum(e[1] for e in entries)
        removed = 0
        for _, size, p in sorted(entries, key=lambda e: e[0]):
            if total - removed <= max_bytes:
                break
            p.unlink(missing_ok=True)
            removed += size
        self._size = total - removed
        return removed

    def clear(self) -> None:
        """Remove the whole cache folder."""
        shutil.rmtree(self.root, ignore_errors=True)
        self._size, self._scopes = 0, {}


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file's header (raises ValueError when it is not one)."""
    if len(data) < 8:
        raise ValueError("too short for a safetensors file")
    n = int.from_bytes(data[:8], "little")
    if n <= 0 or 8 + n > len(data):
        raise ValueError("bad safetensors header length")
    return json.loads(data[8 : 8 + n]).get("__metadata__", {}) or {}


def main(argv: list[str] | None = None) -> int:
    """Command line: ``stats``, ``prune`` or ``clear`` the frozen-feature cache; returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m detectors.frozen_cache", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["stats", "prune", "clear"])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help=f"cache folder (default {DEFAULT_ROOT})")
    p.add_argument("--max-gb", type=float, help="prune: keep at most this many GB (least recently used go)")
    args = p.parse_args(argv)
    cache = FrozenFeatureCache(args.root)
    if args.command == "stats":
        scopes = sorted(d for d in args.root.iterdir() if d.is_dir()) if args.root.is_dir() else []
        print(f"{args.root}: {len(cache.packs())} packs, {cache.size() / 1e9:.3f} GB, {len(scopes)} scopes")
        for d in scopes:
            packs = list(d.rglob(f"*{SUFFIX}"))
            print(f"  {d.name}: {len(packs)} packs, {sum(f.stat().st_size for f in packs) / 1e9:.3f} GB")
    elif args.command == "prune":
        if args.max_gb is None or args.max_gb < 0:
            p.error("prune needs --max-gb >= 0")
        removed = cache.prune(int(args.max_gb * 1e9))
        print(f"removed {removed / 1e9:.3f} GB; {cache.size() / 1e9:.3f} GB left in {args.root}")
    else:
        cache.clear()
        print(f"removed {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

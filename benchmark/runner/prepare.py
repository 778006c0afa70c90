"""Preprocess every dataset a sweep's cells need before any cell runs, in one pool of processes.

The local launcher calls :func:`prepare_manifests` once, so parallel cells never preprocess the same
dataset. Each missing dataset is preprocessed by :func:`datamodules.preprocess.preprocess_dataset`, the
same call a cell makes, one dataset after the other with the usual progress bar and summary; their videos
run in ONE pool of ``workers`` spawned processes of one thread each, shared by the datasets (face detection
runs on one thread, ``datamodules.media.faces``, so one video at a time leaves the other cores idle; a pool
per dataset would start its processes again for each). The outputs are the same bytes as in-process
(checked on the demo's 6,114 files and in ``tests/test_prepare.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.runner.cells import CellConfig, Runtime
from datamodules.preprocess.dataset import preprocess_dataset, worker_pool


@dataclass(frozen=True)
class Missing:
    """A dataset whose manifest is missing: what :func:`preprocess_dataset` needs to write it."""

    name: str
    layout: str
    root: Path
    manifest: Path
    options: dict[str, Any]


def missing_datasets(cells: Iterable[tuple[CellConfig, Runtime]]) -> list[Missing]:
    """The datasets of ``cells`` without a manifest, once each, in the order the cells name them.

    Raises:
        FileNotFoundError: a manifest is missing and the runtime knows no root to preprocess it from.
    """
    from benchmark.runner.cell_data import manifest_paths

    out: dict[Path, Missing] = {}
    for config, runtime in cells:
        for name, path in manifest_paths(config, runtime).items():
            if path.is_file() or path in out:
                continue
            root = runtime.roots.get(name)
            if root is None:
                raise FileNotFoundError(
                    f"manifest {path} is missing and no root is known for dataset {name!r}"
                )
            entry = config.datasets[name]
            out[path] = Missing(name, entry.layout, Path(root), path, dict(entry.options))
    return list(out.values())


#: the default pool's size at most (each process holds its own face detector and landmark model)
MAX_WORKERS = 8


def default_workers() -> int:
    """Processes for preprocessing: the CPUs this process may use, at most :data:`MAX_WORKERS`."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, MAX_WORKERS))


def prepare_manifests(missing: list[Missing], workers: int | None = None) -> dict[str, Path]:
    """Preprocess every dataset of ``missing``; returns the manifest path of each, by name.

    ``workers`` (default :func:`default_workers`): 1 runs every video in this process, as a cell would;
    more runs the videos of all the datasets in one shared pool of that many processes. A dataset whose
    options set its own ``workers`` keeps its own pool (and the others then run in this process).
    """
    written: dict[str, Path] = {}
    if not missing:
        return written
    n = default_workers() if workers is None else max(1, workers)
    own = any(int(m.options.get("workers", 1) or 1) > 1 for m in missing)
    pool = None if n == 1 or own else worker_pool(n)
    try:
        for m in missing:
            print(f"preprocessing {m.name} ({m.layout}, {m.root}) -> {m.manifest.parent}", flush=True)
            path = Path(
                preprocess_dataset(
                    m.name, m.layout, m.root, m.manifest.parent.parent, executor=pool, **m.options
                )
            )
            if not path.is_file():
                raise FileNotFoundError(f"preprocessing {m.name} wrote no manifest (expected {m.manifest})")
            written[m.name] = path
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return written

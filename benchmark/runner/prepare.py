"""Preprocess every dataset a sweep's cells need before any cell runs, several datasets at once.

The local launcher calls :func:`prepare_manifests` once, so parallel cells never preprocess the same
dataset. Each missing dataset is preprocessed by :func:`datamodules.preprocess.preprocess_dataset`, the
same call a cell makes; when two or more are missing (the demo: demo-FF, demo-CDF, demo-DFDC) they run
side by side in ``workers`` spawned processes of one thread each (face detection already runs on one
thread, ``datamodules.media.faces``, so one dataset at a time leaves the other cores idle). The outputs
are the same bytes as a sequential run (checked on the demo: ``tests/test_perf_bench_demo.py`` and
docs/PERFORMANCE.md). Each process's progress bar and summary tables are captured and printed whole,
one dataset after the other as they finish, so the output does not interleave.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing as mp
import os
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.runner.cells import CellConfig, Runtime


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


def default_workers(n_missing: int) -> int:
    """Processes for ``n_missing`` datasets: one each, at most the CPUs this process may use."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(n_missing, cpus))


def _preprocess(m: Missing, *, progress: bool = True) -> Path:
    from datamodules.preprocess import preprocess_dataset

    written = Path(
        preprocess_dataset(m.name, m.layout, m.root, m.manifest.parent.parent, progress=progress, **m.options)
    )
    if not written.is_file():
        raise FileNotFoundError(f"preprocessing {m.name} wrote no manifest (expected {m.manifest})")
    return written


def _announce(m: Missing) -> None:
    print(f"preprocessing {m.name} ({m.layout}, {m.root}) -> {m.manifest.parent}", flush=True)


def _n_videos(m: Missing) -> int:
    """The number of videos preprocessing ``m`` would enumerate (what its run checks first anyway)."""
    from datamodules.preprocess import plan_preprocess

    return len(plan_preprocess(m.name, m.layout, m.root, **m.options)[1])


def _init_worker() -> None:
    from datamodules.preprocess.video import worker_init

    worker_init()


def _captured(m: Missing) -> tuple[Path, str, str]:
    """Run in a worker: preprocess ``m`` with its output captured (printed whole by the parent)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        path = _preprocess(m)
    return path, out.getvalue(), err.getvalue()


def prepare_manifests(missing: list[Missing], workers: int | None = None) -> dict[str, Path]:
    """Preprocess every dataset of ``missing``; returns the manifest path of each, by name.

    ``workers`` (default :func:`default_workers`): 1 preprocesses them one after the other in this process,
    as a cell would; more runs up to that many datasets at once in spawned processes. A dataset whose
    options ask for its own ``workers`` (a video-level process pool) is never run inside another pool: with
    one of those the datasets run one after the other. The first failure is raised as it was raised in the
    worker (a user error stays one).
    """
    written: dict[str, Path] = {}
    if not missing:
        return written
    n = default_workers(len(missing)) if workers is None else max(1, min(workers, len(missing)))
    if n == 1 or any(int(m.options.get("workers", 1) or 1) > 1 for m in missing):
        for m in missing:
            _announce(m)
            written[m.name] = _preprocess(m)
        return written
    # the datasets with the most videos first, so the last one to start is a short one
    order = sorted(missing, key=lambda m: -_n_videos(m))
    print(f"preprocessing {len(missing)} datasets, {n} at a time:", flush=True)
    for m in order:
        _announce(m)
    ctx = mp.get_context("spawn")  # torch + fork can deadlock
    with ProcessPoolExecutor(n, mp_context=ctx, initializer=_init_worker) as pool:
        futures = {pool.submit(_captured, m): m for m in order}
        try:
            for fut in as_completed(futures):
                path, out, err = fut.result()
                sys.stdout.write(out)
                sys.stdout.flush()
                sys.stderr.write(err)
                sys.stderr.flush()
                written[futures[fut].name] = path
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return written

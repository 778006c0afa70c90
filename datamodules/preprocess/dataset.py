"""A whole dataset run: enumerate, resume, process the videos left (in-process or a process pool), manifest.

:func:`plan_preprocess` is everything a run checks before it writes anything (options, protocol, the
enumeration of the dataset); the runner's data check calls it too, so a grid learns of a bad root before
any dataset is preprocessed.
"""

from __future__ import annotations

import inspect
import time
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from datamodules.datasets.base import VideoRecord, enumerate_dataset, layout_options
from datamodules.errors import user_error
from datamodules.manifest import manifest_path, write_manifest
from datamodules.media import faces
from datamodules.preprocess import video
from datamodules.preprocess.options import Options, PreprocessConfigError, check_config
from datamodules.preprocess.protocols import PROBABILITY_BACKENDS, get_protocol
from datamodules.preprocess.rows import read_rows, refresh, video_key
from datamodules.preprocess.summary import summarize


def preprocess_dataset(
    name: str,
    layout: str,
    root: str | Path,
    out: str | Path,
    *,
    frames: int = 32,
    size: int = 256,
    margin: float = 1.3,
    backend: str = "auto",
    workers: int = 1,
    detect_max_side: int = 640,
    png_compression: int = 0,
    protocol: str = "default",
    limit: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    executor: Executor | None = None,
    **adapter_options: object,
) -> Path:
    """Preprocess dataset ``name`` (layout ``layout`` at ``root``) into ``out/<name>/``.

    Args:
        name: the dataset's name (goes into every ``video_id``), e.g. ``"FF++"``, ``"demo-FF"``.
        layout: an adapter layout (``datamodules.datasets.list_layouts()``).
        root: the dataset's root folder (or file, for ``csv`` / ``deepfakebench_json``).
        out: the processed root; the manifest is ``out/<name>/manifest.parquet``.
        frames: frames sampled per video, spread over the whole video.
        size: side of the aligned square crop, pixels.
        margin: context around the 5-point face template (the alignment margin).
        backend: ``auto | mtcnn | dlib | insightface`` (``datamodules.media.faces``).
        workers: processes (1 = in this process).
        detect_max_side: frames are downscaled to at most this side for detection.
        png_compression: zlib level 0-9 of the crop PNGs (all lossless). 0 (default) reads fastest
            (~0.2 ms per 256 px crop, no row filters) at about twice the disk of 1-9 (~2-3 ms);
            a resume may change it (files already written keep theirs).
        protocol: which detected faces are kept (``datamodules.preprocess.protocols``: ``default``,
            ``sfam``); its thresholds are pinned in ``preprocess.json``, excluded frames keep their rows.
        limit: process only the first ``limit`` videos (smoke runs).
        overwrite: redo everything when ``out/<name>`` holds a run with other options.
        progress: show the rich progress bar and the summary table.
        executor: a process pool (``spawn``, initializer :func:`video.worker_init`) to run the videos in
            instead of ``workers``: the runner shares one across the datasets it preprocesses
            (``benchmark.runner.prepare``). The files are the same bytes either way.
        **adapter_options: passed to the adapter (e.g. ``compression="c40"``, ``remap="C:/x=/data"``).

    Returns:
        The manifest path. Finished videos of an earlier run with the same options are not redone.
    """
    path = manifest_path(out, name)
    base = path.parent
    opts, records = plan_preprocess(
        name,
        layout,
        root,
        frames=frames,
        size=size,
        margin=margin,
        backend=backend,
        detect_max_side=detect_max_side,
        png_compression=png_compression,
        protocol=protocol,
        limit=limit,
        **adapter_options,
    )
    base.mkdir(parents=True, exist_ok=True)
    check_config(base, opts, overwrite)
    done: dict[str, list[dict]] = {}
    todo = []
    for rec in records:
        stored = read_rows(base, rec)
        if stored is not None:
            done[rec.video_id] = stored
        else:
            todo.append(rec)
    n_resumed = len(done)
    t0 = time.perf_counter()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    cols = (
        TextColumn(f"[bold]{name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[ok]} frames ok"),
    )
    with Progress(*cols, TimeRemainingColumn(), disable=not progress, transient=False) as bar:
        task = bar.add_task("videos", total=len(records), completed=n_resumed, ok=0)
        n_ok = 0

        def advance(rows: list[dict]) -> None:
            nonlocal n_ok
            n_ok += sum(r["status"] == "ok" for r in rows)
            bar.update(task, advance=1, ok=n_ok)

        def run_in(pool: Executor) -> None:
            futs = [pool.submit(video.process_and_store, rec, opts, base) for rec in todo]
            for fut in as_completed(futs):
                vid, rows = fut.result()
                done[vid] = rows
                advance(rows)

        if executor is not None:
            run_in(executor)
        elif workers <= 1 or len(todo) <= 1:
            for rec in todo:
                vid, rows = video.process_and_store(rec, opts, base)
                done[vid] = rows
                advance(rows)
        else:
            with worker_pool(min(workers, len(todo))) as pool:
                run_in(pool)
    rows = [refresh(rec, r) for rec in records for r in done[rec.video_id]]
    write_manifest(rows, path)
    if progress:
        summarize(
            rows, len(records), n_resumed, time.perf_counter() - t0, dataset=name, protocol=opts.protocol
        )
    return path


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """The process pool preprocessing runs videos in: ``spawn`` (torch + fork can deadlock), one thread
    per worker (:func:`video.worker_init`)."""
    import multiprocessing as mp

    return ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=video.worker_init)


#: preprocess_dataset's own keyword options (every other option goes to the layout's adapter)
RUN_OPTIONS = ("workers", "overwrite", "progress", "executor")


def preprocess_options() -> list[str]:
    """The keyword options of :func:`preprocess_dataset` (the rest of a data-config entry is the adapter's)."""
    params = inspect.signature(preprocess_dataset).parameters.values()
    return [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.name != "executor"]


def plan_preprocess(
    name: str,
    layout: str,
    root: str | Path,
    *,
    frames: int = 32,
    size: int = 256,
    margin: float = 1.3,
    backend: str = "auto",
    detect_max_side: int = 640,
    png_compression: int = 0,
    protocol: str = "default",
    limit: int | None = None,
    **adapter_options: Any,
) -> tuple[Options, list[VideoRecord]]:
    """The options and the videos a :func:`preprocess_dataset` run would use, checked, without writing.

    Raises what the run would raise before its first video: a bad option or protocol
    (:class:`PreprocessConfigError`), an unknown option (``TypeError`` naming the layout's and
    preprocessing's options), the layout's errors (``DatasetLayoutError``...), two videos sharing an
    output folder. ``workers``, ``overwrite`` and ``progress`` are accepted and ignored.
    """
    for key in RUN_OPTIONS:
        adapter_options.pop(key, None)
    if not 0 <= png_compression <= 9:
        raise user_error(ValueError(f"png_compression must be 0-9, got {png_compression}"))
    rules = get_protocol(protocol)
    resolved = faces.resolve_backend(backend)
    if rules.min_confidence is not None and resolved not in PROBABILITY_BACKENDS:
        raise user_error(
            PreprocessConfigError(
                f"protocol {protocol!r} keeps faces of detector confidence >= {rules.min_confidence:g}, but "
                f"backend {resolved!r} scores no probability; use --backend "
                f"{' or '.join(PROBABILITY_BACKENDS)}"
            ),
            "pick a backend whose face score is a probability, or protocol 'default'",
        )
    opts = Options(
        frames,
        size,
        margin,
        resolved,
        detect_max_side,
        png_compression=png_compression,
        protocol=rules.name,
        min_confidence=rules.min_confidence,
        min_face_side=rules.min_face_side,
    )
    takes = layout_options(layout)
    unknown = sorted(set(adapter_options) - set(takes))
    if unknown:
        raise user_error(
            TypeError(
                f"dataset {name!r}: option(s) {unknown} are neither preprocessing options "
                f"({', '.join(preprocess_options())}) nor options of layout {layout!r} "
                f"({', '.join(takes) or 'none'})"
            ),
            "fix the option's name (a data configuration key other than layout and root is an option)",
        )
    records = enumerate_dataset(layout, root, dataset=name, **adapter_options)
    if limit is not None:
        records = records[:limit]
    if rules.filters and any(r.prealigned for r in records):
        n = sum(r.prealigned for r in records)
        raise user_error(
            PreprocessConfigError(
                f"protocol {protocol!r} filters faces by detector confidence and by box size in source pixels, "
                f"but {n} video(s) of dataset {name!r} are frames already aligned by another pipeline "
                f"(layout {layout!r}), which carry neither"
            ),
            "preprocess the dataset's source videos with a video layout instead, or use protocol 'default'",
        )
    keys: dict[Path, str] = {}
    for rec in records:
        k = video_key(rec)
        if k in keys:
            raise ValueError(f"video ids {keys[k]!r} and {rec.video_id!r} map to the same output folder {k}")
        keys[k] = rec.video_id
    return opts, records

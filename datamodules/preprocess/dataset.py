"""A whole dataset run: enumerate, resume, process the videos left (in-process or a process pool), manifest."""

from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from datamodules.datasets.base import enumerate_dataset
from datamodules.manifest import manifest_path, write_manifest
from datamodules.media import faces
from datamodules.preprocess import video
from datamodules.preprocess.options import Options, check_config
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
    limit: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    **adapter_options: object,
) -> Path:
    """Preprocess dataset ``name`` (layout ``layout`` at ``root``) into ``out/<name>/``.

    Args:
        name: the dataset's name (goes into every ``video_id``), e.g. ``"FF++"``, ``"demo-FF"``.
        layout: an adapter layout (``datamodules.datasets.list_layouts()``).
        root: the dataset's root folder (or file, for ``csv`` / ``deepfakebench_json``).
        out: the processed root; the manifest is ``out/<name>/manifest.parquet``.
        frames, size, margin: frames per video, crop side, alignment margin.
        backend: ``auto | mtcnn | dlib | insightface`` (``datamodules.media.faces``).
        workers: processes (1 = in this process).
        detect_max_side: frames are downscaled to at most this side for detection.
        png_compression: zlib level 0-9 of the crop PNGs (all lossless). 0 (default) reads fastest
            (~0.2 ms per 256 px crop, no row filters) at about twice the disk of 1-9 (~2-3 ms);
            a resume may change it (files already written keep theirs).
        limit: process only the first ``limit`` videos (smoke runs).
        overwrite: redo everything when ``out/<name>`` holds a run with other options.
        progress: show the rich progress bar and the summary table.
        **adapter_options: passed to the adapter (e.g. ``compression="c40"``, ``remap="C:/x=/data"``).

    Returns:
        The manifest path. Finished videos of an earlier run with the same options are not redone.
    """
    path = manifest_path(out, name)
    base = path.parent
    if not 0 <= png_compression <= 9:
        raise ValueError(f"png_compression must be 0-9, got {png_compression}")
    opts = Options(
        frames, size, margin, faces.resolve_backend(backend), detect_max_side, png_compression=png_compression
    )
    records = enumerate_dataset(layout, root, dataset=name, **adapter_options)
    if limit is not None:
        records = records[:limit]
    keys: dict[Path, str] = {}
    for rec in records:
        k = video_key(rec)
        if k in keys:
            raise ValueError(f"video ids {keys[k]!r} and {rec.video_id!r} map to the same output folder {k}")
        keys[k] = rec.video_id
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

        if workers <= 1 or len(todo) <= 1:
            for rec in todo:
                vid, rows = video.process_and_store(rec, opts, base)
                done[vid] = rows
                advance(rows)
        else:
            import multiprocessing as mp

            ctx = mp.get_context("spawn")  # torch + fork can deadlock
            with ProcessPoolExecutor(
                min(workers, len(todo)), mp_context=ctx, initializer=video.worker_init
            ) as pool:
                futs = [pool.submit(video.process_and_store, rec, opts, base) for rec in todo]
                for fut in as_completed(futs):
                    vid, rows = fut.result()
                    done[vid] = rows
                    advance(rows)
    rows = [refresh(rec, r) for rec in records for r in done[rec.video_id]]
    write_manifest(rows, path)
    if progress:
        summarize(rows, len(records), n_resumed, time.perf_counter() - t0)
    return path

"""Atomic file writes: the one writer, with one durability policy, for every file the project produces.

Policy (every function here follows it):

1. the data go to a unique temporary name in the target's folder (or in ``tmp_dir``, which must be on
   the same filesystem): ``.<name>.<pid>@<host>.<token>.tmp[<suffix>]``;
2. the temporary file is flushed and ``fsync``-ed;
3. ``os.replace`` puts it onto the target (atomic on POSIX and Windows), so a reader sees the old file
   or the new one, never half of one;
4. the target's folder is ``fsync``-ed, so the rename itself survives a power loss (POSIX only: Windows
   cannot open a folder for that, and filesystems that refuse it are skipped silently). A writer of many
   files into few folders may pass ``sync_dir=False`` and call :func:`fsync_dir` on each folder once,
   before anything that depends on the renames is written (preprocessing: a video's crop, landmark and
   mask folders, before its resume marker; half the fsyncs of a demo preprocessing run);
5. on any failure the temporary file is removed and the exception propagates (the target is untouched).

A process killed in the middle (SIGKILL) cannot remove its temporary file. The first write of a
process into a folder therefore removes the temporary files there whose writer was a process of this
host that no longer exists (the ``<pid>@<host>`` in the name), so a redone run leaves no leftovers;
files of live processes and of other hosts are never touched. (Two machines that share a folder
and a host name, with separate process-id namespaces, would defeat that check; none of our launchers
does that.)

``write_bytes``/``write_text``/``write_json``/``write_npy``/``write_png`` cover what we write ourselves;
:func:`atomic_path` hands a temporary path to a library that insists on writing a file itself
(``torch.save``, ``DataFrame.to_parquet``, ``Figure.savefig``, ``cv2.VideoWriter``).
"""

from __future__ import annotations

import io
import json
import os
import re
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

_HOST = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "host"
_TEMP = re.compile(r"^\..+\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9._-]+)\.[0-9a-f]{8}\.tmp(\.[A-Za-z0-9]+)?$")
_swept: set[str] = set()  # folders whose dead writers' temp files this process already removed


def temp_path(path: str | os.PathLike, tmp_dir: str | os.PathLike | None = None, suffix: str = "") -> Path:
    """A fresh temporary name for ``path`` (in ``tmp_dir`` or next to it), as the writers here use."""
    path = Path(path)
    folder = Path(tmp_dir) if tmp_dir is not None else path.parent
    return folder / f".{path.name}.{os.getpid()}@{_HOST}.{uuid.uuid4().hex[:8]}.tmp{suffix}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: the process exists under another user
        return True
    return True


def remove_dead_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files in ``folder`` left by dead writers of this host; return them."""
    if os.name != "posix":  # os.kill(pid, 0) is no liveness probe on Windows
        return []
    gone = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for e in entries:
        m = _TEMP.match(e.name)
        if m and m["host"] == _HOST and int(m["pid"]) != os.getpid() and not _alive(int(m["pid"])):
            Path(e.path).unlink(missing_ok=True)
            gone.append(Path(e.path))
    return gone


def _sweep_once(folder: Path) -> None:
    key = os.path.abspath(folder)
    if key not in _swept:
        remove_dead_temps(folder)
        if len(_swept) >= 4096:  # preprocessing writes into a new folder per video: bound the memory
            _swept.clear()
        _swept.add(key)


def fsync_dir(folder: str | os.PathLike) -> None:
    """``fsync`` a folder (makes a rename in it durable); a no-op where the platform cannot."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a folder
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


@contextmanager
def _commit(
    path: str | os.PathLike,
    tmp_dir: str | os.PathLike | None,
    suffix: str,
    synced: bool,
    sync_dir: bool = True,
) -> Iterator[Path]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tmp_dir) if tmp_dir is not None else path.parent
    folder.mkdir(parents=True, exist_ok=True)
    _sweep_once(folder)
    tmp = temp_path(path, folder, suffix)
    try:
        yield tmp
        if not synced:
            _fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    if sync_dir:
        fsync_dir(path.parent)


@contextmanager
def atomic_path(
    path: str | os.PathLike, *, tmp_dir: str | os.PathLike | None = None, suffix: str = ""
) -> Iterator[Path]:
    """A temporary path to write ``path`` through: write the file there inside the ``with`` block.

    On leaving the block normally the file is fsync-ed and renamed onto ``path`` (see the module
    docstring); if the block raises, the temporary file is removed. ``suffix`` ends the temporary name
    (for writers that pick the format from it, e.g. ``".mp4"`` for ``cv2.VideoWriter``).
    """
    with _commit(path, tmp_dir, suffix, synced=False) as tmp:
        yield tmp


def write_bytes(
    path: str | os.PathLike, data: bytes, *, tmp_dir: str | os.PathLike | None = None, sync_dir: bool = True
) -> Path:
    """Write ``data`` to ``path`` atomically and durably (the module docstring's policy; ``sync_dir=False``:
    the caller fsyncs the folder, step 4)."""
    with _commit(path, tmp_dir, "", synced=True, sync_dir=sync_dir) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def write_text(
    path: str | os.PathLike, text: str, *, encoding: str = "utf-8", tmp_dir: str | os.PathLike | None = None
) -> Path:
    """Write ``text`` (``encoding``, newlines kept as they are) atomically."""
    return write_bytes(path, text.encode(encoding), tmp_dir=tmp_dir)


def write_json(
    path: str | os.PathLike, obj: Any, *, tmp_dir: str | os.PathLike | None = None, **dumps: Any
) -> Path:
    """Write ``json.dumps(obj, **dumps)`` atomically (UTF-8)."""
    return write_text(path, json.dumps(obj, **dumps), tmp_dir=tmp_dir)


def write_npy(path: str | os.PathLike, array: np.ndarray, *, sync_dir: bool = True) -> Path:
    """Write ``array`` as a ``.npy`` file (``numpy.save`` format) atomically (``sync_dir``: :func:`write_bytes`)."""
    buf = io.BytesIO()
    np.save(buf, array)
    return write_bytes(path, buf.getvalue(), sync_dir=sync_dir)


def png_params(level: int | None) -> list[int]:
    """``cv2.imencode`` parameters for a PNG at zlib ``level`` (``None``: OpenCV's default).

    Level 0 stores the pixels and skips PNG's row filters: filters only help compression, and undoing
    them (Paeth above all) is most of a stored PNG's decode time. A 256 px crop then decodes in ~0.2 ms
    instead of ~2-3 ms at levels 1-9 (``python -m benchmark.perf loader``), at about twice the disk.
    """
    if level is None:
        return []
    if not 0 <= level <= 9:
        raise ValueError(f"PNG compression level must be 0-9, got {level}")
    import cv2

    if level == 0:
        return [cv2.IMWRITE_PNG_COMPRESSION, 0, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    return [cv2.IMWRITE_PNG_COMPRESSION, level]


def write_png(
    path: str | os.PathLike, rgb_or_gray: np.ndarray, level: int | None = None, *, sync_dir: bool = True
) -> Path:
    """Write an RGB or grey uint8 image as a lossless PNG atomically (``level``: see :func:`png_params`;
    ``sync_dir``: :func:`write_bytes`)."""
    import cv2

    img = rgb_or_gray if rgb_or_gray.ndim == 2 else cv2.cvtColor(rgb_or_gray, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", img, png_params(level))
    if not ok:
        raise OSError(f"PNG encoding failed for {path}")
    return write_bytes(path, buf.tobytes(), sync_dir=sync_dir)

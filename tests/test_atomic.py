"""The atomic writer: content, fsync of file and folder, nothing left behind on failure, dead writers'
temporary files swept, live and foreign ones kept."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from datamodules import atomic


def test_writers_produce_the_bytes_of_the_plain_encoders(tmp_path: Path) -> None:
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    buf = io.BytesIO()
    np.save(buf, arr)
    assert atomic.write_npy(tmp_path / "a/x.npy", arr).read_bytes() == buf.getvalue()
    assert atomic.write_json(tmp_path / "x.json", {"b": 1, "a": [2]}, indent=1).read_text() == json.dumps(
        {"b": 1, "a": [2]}, indent=1
    )
    assert atomic.write_text(tmp_path / "x.txt", "é\r\n").read_bytes() == "é\r\n".encode()  # no translation
    img = np.random.default_rng(0).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    png = atomic.write_png(tmp_path / "x.png", img, level=0)
    assert np.array_equal(cv2.imread(str(png), cv2.IMREAD_COLOR_RGB), img)
    ok, ref = cv2.imencode(".png", img[:, :, ::-1], atomic.png_params(0))
    assert ok and png.read_bytes() == ref.tobytes()
    with pytest.raises(ValueError, match="0-9"):
        atomic.write_png(tmp_path / "y.png", img, level=10)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "x.json", "x.npy", "x.png", "x.txt"]


def test_file_and_folder_are_fsynced_before_and_after_the_rename(tmp_path: Path, monkeypatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync-dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync-file")
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    atomic.write_bytes(tmp_path / "x.bin", b"data")
    with atomic.atomic_path(tmp_path / "y.bin") as tmp:
        tmp.write_bytes(b"third-party writer")
    if os.path.isdir("/proc/self/fd"):
        assert events == ["fsync-file", "replace", "fsync-dir"] * 2
    assert (tmp_path / "y.bin").read_bytes() == b"third-party writer"


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path, monkeypatch) -> None:
    target = atomic.write_bytes(tmp_path / "x.bin", b"old")

    def full_disk(*a, **k):
        raise OSError("No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        atomic.write_bytes(target, b"new")
    monkeypatch.undo()
    with pytest.raises(RuntimeError, match="encoder"), atomic.atomic_path(target, suffix=".mp4") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("encoder died")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def _leave_a_temp(folder: str) -> None:
    atomic.temp_path(Path(folder) / "page.md").write_text("half")  # then die without cleaning up
    os._exit(0)


def test_temporary_files_of_dead_writers_are_swept_once_per_folder(tmp_path: Path, monkeypatch) -> None:
    proc = multiprocessing.get_context("fork").Process(target=_leave_a_temp, args=(str(tmp_path),))
    proc.start()
    proc.join()
    dead = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(dead) == 1 and f".{proc.pid}@" in dead[0].name
    live = tmp_path / f".page.md.{os.getppid()}@{atomic._HOST}.0123abcd.tmp"  # our parent: alive
    live.write_text("a live writer's")
    foreign = tmp_path / f".page.md.{proc.pid}@another-host.0123abcd.tmp"
    foreign.write_text("another machine's")
    monkeypatch.setattr(atomic, "_swept", set())
    atomic.write_text(tmp_path / "other.md", "x")  # any write into the folder sweeps it
    assert not dead[0].exists() and live.exists() and foreign.exists()
    assert atomic.remove_dead_temps(tmp_path) == []

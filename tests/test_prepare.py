"""The sweep's preprocessing (benchmark.runner.prepare): datasets at once give the bytes of one after the other;
a video's folders are fsynced before its resume marker."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from benchmark.runner.data_config import parse_data_config
from benchmark.runner.grid import load_grid
from benchmark.runner.plan import plan_cells
from benchmark.runner.prepare import Missing, missing_datasets, prepare_manifests
from datamodules.preprocess import preprocess_dataset
from datamodules.preprocess.dataset import worker_pool
from tests.facevideos import face_video
from tests.runner_fixtures import write_data_config, write_grid


def _uadfv(root: Path, names: tuple[str, ...]) -> Path:
    for i, name in enumerate(names):
        face_video(root / f"{'fake' if i % 2 else 'real'}/{i}.mp4", name, n=3, width=160)
    return root


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_missing_datasets_once_each_and_only_without_a_manifest(tmp_path: Path) -> None:
    write_data_config(tmp_path)
    write_grid(tmp_path, seeds=[0, 1])
    cells = plan_cells(load_grid(tmp_path / "tiny.yaml"), parse_data_config(tmp_path / "datasets.yaml"))
    pairs = [(c.config, c.runtime) for c in cells]
    names = sorted(cells[0].config.datasets)
    assert len(cells) == 2 and [m.name for m in missing_datasets(pairs)] == names
    done = cells[0].runtime.processed_root / names[0] / "manifest.parquet"
    done.parent.mkdir(parents=True)
    done.write_bytes(b"")
    assert [m.name for m in missing_datasets(pairs)] == names[1:]
    assert prepare_manifests([]) == {}


def test_a_missing_root_is_named(tmp_path: Path) -> None:
    write_data_config(tmp_path)
    write_grid(tmp_path)
    (cell,) = plan_cells(load_grid(tmp_path / "tiny.yaml"), parse_data_config(tmp_path / "datasets.yaml"))
    rt = cell.runtime.__class__(**{**cell.runtime.__dict__, "roots": {}})
    with pytest.raises(FileNotFoundError, match="no root is known for dataset"):
        missing_datasets([(cell.config, rt)])


@pytest.mark.slow
def test_one_shared_pool_writes_the_bytes_of_one_process(tmp_path: Path, capsys, monkeypatch) -> None:
    import benchmark.runner.prepare as prepare

    a = _uadfv(tmp_path / "src/a", ("astronaut", "grace_hopper", "astronaut"))
    b = _uadfv(tmp_path / "src/b", ("grace_hopper", "astronaut"))
    pools = []

    def counted(n: int):
        pools.append(n)
        return worker_pool(n)

    monkeypatch.setattr(prepare, "worker_pool", counted)

    def missing(out: Path) -> list[Missing]:
        return [
            Missing(n, "uadfv", root, out / n / "manifest.parquet", {"frames": 2})
            for n, root in (("A", a), ("B", b))
        ]

    one = prepare_manifests(missing(tmp_path / "seq"), workers=1)
    assert pools == []
    two = prepare_manifests(missing(tmp_path / "par"), workers=2)
    assert pools == [2]  # one pool for both datasets
    assert set(one) == set(two) == {"A", "B"}
    seq, par = _tree(tmp_path / "seq"), _tree(tmp_path / "par")
    assert seq == par and any(k.endswith(".png") for k in seq)
    assert capsys.readouterr().err.count("preprocessing summary: A") == 2


def test_a_videos_folders_are_fsynced_before_its_resume_marker(tmp_path: Path, monkeypatch) -> None:
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    root = _uadfv(tmp_path / "u", ("astronaut", "grace_hopper"))  # real/0.mp4, fake/1.mp4
    base = tmp_path / "out" / "U"
    events: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        if os.path.isdir(target):
            events.append("dir " + os.path.relpath(target, base))
        elif Path(target).name.startswith(".0.json."):  # real/0's rows file (temporary): its resume marker
            events.append("marker")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    preprocess_dataset("U", "uadfv", root, tmp_path / "out", frames=2, progress=False)
    assert (base / "rows/real/0.json").is_file()
    marker = events.index("marker")
    # each folder once (2 frames x 1 file each would be 2 per folder), before the marker
    for folder in ("dir crops/real/0", "dir landmarks/real/0"):
        assert events.count(folder) == 1 and events.index(folder) < marker

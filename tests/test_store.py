"""benchmark.store: atomic per-cell scores and records, read back as one filterable DataFrame."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark import store as store_mod
from benchmark.metrics import cross_auc_matrix
from benchmark.store import SCORE_COLUMNS, CellNotFoundError, ScoreStore, build_record, file_sha256


def scores_for(test_set: str, n_videos: int = 4, frames: int = 2, offset: float = 0.0) -> pd.DataFrame:
    rows = []
    for v in range(n_videos):
        lab = v % 2
        vid = f"{test_set}/{'fake' if lab else 'real'}/{v:03d}"
        for f in range(frames):
            rows.append(
                (
                    test_set,
                    vid,
                    f"{vid}/{f}",
                    lab,
                    "fs" if lab else "real",
                    0.2 + 0.5 * lab + offset + f / 100,
                )
            )
    return pd.DataFrame(rows, columns=["dataset", "video_id", "sample_id", "label", "method", "score"])


def record_for(test_set: str, detector: str = "xception", seed: int = 0) -> dict:
    return {
        "detector": detector,
        "train_set": "FF++",
        "test_set": test_set,
        "split": "test",
        "seed": seed,
        "config": {"lr": 2e-4},
    }


@pytest.fixture
def store(tmp_path) -> ScoreStore:
    return ScoreStore(tmp_path / "results")


def test_roundtrip_and_filters(store):
    for d, off in (("CDF", 0.0), ("DFDC", 0.3)):
        store.write_cell(f"xception-s0-{d}", scores_for(d, offset=off), record_for(d))
    store.write_cell("sfam-s0-CDF", scores_for("CDF"), record_for("CDF", detector="sfam"))
    assert (store.root / "cells" / "xception-s0-CDF" / "scores.parquet").is_file()
    everything = store.read_scores()
    assert len(everything) == 3 * 8
    assert list(everything.columns[: len(SCORE_COLUMNS)]) == list(SCORE_COLUMNS)
    x = store.read_scores(detector="xception")
    assert set(x.test_set) == {"CDF", "DFDC"} and set(x.cell_id) == {"xception-s0-CDF", "xception-s0-DFDC"}
    assert len(store.read_scores(test_set=["DFDC"], detector=("sfam", "xception"))) == 8
    assert len(store.read_scores(seed=0, label=1)) == 12
    assert list(store.read_scores(columns=["score"], detector="sfam").columns) == ["score"]
    assert store.read_scores(detector="nope").empty
    with pytest.raises(ValueError, match=r"\['colour'\].*columns"):
        store.read_scores(colour="red")
    m = cross_auc_matrix(x)  # one model over two test cells: the store's output feeds the metrics as-is
    assert m.shape == (2, 2) and m.loc["CDF", "DFDC"] == 1.0


def test_records_are_complete_and_readable(store, tmp_path):
    manifest = tmp_path / "manifest.parquet"
    manifest.write_bytes(b"frames")
    rec = build_record(
        {"detector": "xception", "lr": 2e-4},
        seed=1,
        checkpoint=tmp_path / "best.ckpt",
        manifest_hash=file_sha256(manifest),
        timings={"test": 1.5},
        detector="xception",
        train_set="FF++",
        test_set="CDF",
        split="test",
        pretrained_loaded=False,
    )
    for pkg in ("torch", "lightning", "timm", "open_clip_torch", "python"):
        assert pkg in rec["versions"]
    assert rec["versions"]["torch"] is not None and "git" in rec and rec["created_at"].endswith("+00:00")
    if rec["git"] is not None:
        assert len(rec["git"]["commit"]) == 40
    assert rec["manifest_hash"] == hashlib.sha256(b"frames").hexdigest()
    written = store.write_cell("c1", scores_for("CDF"), {**rec, "np_value": np.float32(0.5)})
    back = store.record("c1")
    assert back == written and back["status"] == "done"
    assert back["n_rows"] == 8 and len(back["scores_sha256"]) == 64 and back["np_value"] == 0.5
    assert back["checkpoint"].endswith("best.ckpt") and back["seed"] == 1
    table = store.read_records()
    assert table.loc["c1", "versions.torch"] == rec["versions"]["torch"]
    assert table.loc["c1", "config.lr"] == 2e-4
    with pytest.raises(CellNotFoundError, match=r"'nope'.*1 cell\(s\) known.*c1"):
        store.record("nope")


def test_scores_missing_columns_filled_from_record_or_refused(store):
    s = scores_for("CDF")
    store.write_cell("filled", s, record_for("CDF"))
    got = store.read_scores()
    assert (got.detector == "xception").all() and (got.split == "test").all() and (got.seed == 0).all()
    with pytest.raises(
        ValueError, match=r"lack column\(s\) \['detector', 'train_set', 'test_set', 'split'\]"
    ):
        store.write_cell("bare", s, {"seed": 0})
    with pytest.raises(ValueError, match=r"'cell_id' holds 'other'"):
        store.write_cell("mine", s.assign(cell_id="other"), record_for("CDF"))
    assert not store.is_done("bare") and not store.is_done("mine")


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [
        (
            lambda s: s.assign(sample_id=s.sample_id.where(s.index != 3, s.sample_id[2])),
            r"'sample_id'.*'bad'.*rows \[2, 3\]",
        ),
        (lambda s: s.assign(score=s.score.where(s.index != 1, np.nan)), r"'bad'.*'score'.*rows \[1\]"),
        (lambda s: s.assign(label=s.label.where(s.index != 0, 5)), r"'bad'.*'label'.*rows \[0\]"),
        (lambda s: s.assign(label=s.label.where(s.index != 0, 1)), r"'bad'.*'label' differs.*rows \[0, 1\]"),
    ],
    ids=["duplicate_sample_id", "nan_score", "label5", "mixed_video"],
)
def test_bad_scores_are_refused_and_nothing_is_written(store, mutate, pattern):
    with pytest.raises(ValueError, match=pattern):
        store.write_cell("bad", mutate(scores_for("CDF")), record_for("CDF"))
    assert not (store.root / "cells" / "bad" / "scores.parquet").exists()
    assert not store.is_done("bad") and store.read_scores().empty


def test_half_written_files_and_unfinished_cells_are_never_read(store):
    store.write_cell("done", scores_for("CDF"), record_for("CDF"))
    cell = store.root / "cells" / "done"
    junk = pd.DataFrame({"cell_id": ["done"], "score": [0.99]})
    junk.to_parquet(cell / "scores.parquet.123.abcd.tmp")  # a leftover of an interrupted rewrite
    (cell / "record.json.9.beef.tmp").write_text('{"status": "done", "truncat')
    # a cell whose writer died before the record: scores present, no record
    orphan = store.root / "cells" / "orphan"
    orphan.mkdir()
    scores_for("DFDC").assign(cell_id="orphan").to_parquet(orphan / "scores.parquet")
    # a cell marked running
    store.write_record("running", record_for("DFDC"), "running")
    got = store.read_scores()
    assert set(got.cell_id) == {"done"} and len(got) == 8
    assert store.cell_ids() == ["done", "running"] and store.cell_ids("done") == ["done"]
    assert not store.is_done("orphan") and not store.is_done("running")
    removed = store.clean_tmp()
    assert len(removed) == 2 and not list(cell.glob("*.tmp"))


def test_crash_between_scores_and_record_leaves_cell_not_done(store, monkeypatch):
    store.write_cell("c", scores_for("CDF"), record_for("CDF"))
    real_write = store_mod._atomic_write_bytes

    def die_on_done_record(path, data):
        if path.name == "record.json" and b'"status": "done"' in data:
            raise KeyboardInterrupt("killed")
        real_write(path, data)

    monkeypatch.setattr(store_mod, "_atomic_write_bytes", die_on_done_record)
    with pytest.raises(KeyboardInterrupt):
        store.write_cell("c", scores_for("CDF", offset=0.1), record_for("CDF"))
    assert not store.is_done("c") and store.record("c")["status"] == "running"
    assert store.read_scores().empty  # the replaced scores are not trusted until the record says done
    monkeypatch.setattr(store_mod, "_atomic_write_bytes", real_write)
    store.write_cell("c", scores_for("CDF", offset=0.1), record_for("CDF"))
    assert store.is_done("c") and "replacing" not in store.record("c")
    assert store.read_scores().score.min() == pytest.approx(0.3)


def test_interrupted_scores_write_keeps_the_old_file_intact(store, monkeypatch):
    store.write_cell("c", scores_for("CDF"), record_for("CDF"))
    before = (store.root / "cells" / "c" / "scores.parquet").read_bytes()

    real_replace = store_mod.os.replace

    def fail_scores_replace(src, dst):
        if str(dst).endswith("scores.parquet"):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(store_mod.os, "replace", fail_scores_replace)
    with pytest.raises(OSError, match="disk full"):
        store.write_cell("c", scores_for("CDF", offset=0.1), record_for("CDF"))
    monkeypatch.undo()
    cell = store.root / "cells" / "c"
    assert (cell / "scores.parquet").read_bytes() == before and not list(cell.glob("*.tmp"))
    assert not store.is_done("c")  # a rewrite that failed half-way does not pass for a result


def test_record_and_scores_disagreeing_is_an_error(store):
    store.write_cell("a", scores_for("CDF"), record_for("CDF"))
    scores_for("CDF").iloc[:3].assign(cell_id="a").to_parquet(store.root / "cells" / "a" / "scores.parquet")
    with pytest.raises(ValueError, match=r"'a'.*3 rows.*record says 8"):
        store.read_scores()


def test_invalid_cell_ids_and_statuses(store):
    for bad in ("", "../escape", "a/b", ".hidden", "x" * 201):
        with pytest.raises(ValueError, match="not a valid cell id"):
            store.write_cell(bad, scores_for("CDF"), record_for("CDF"))
    with pytest.raises(ValueError, match="status"):
        store.write_record("ok", {}, "finished")
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        store.write_record("ok", {"model": object()}, "running")
    assert store.read_records().empty and store.cell_ids() == []


def _subset_cell(new_layout: bool) -> pd.DataFrame:
    """A cell scored on FF (val and test) and on the method subset FF/X (FF's reals and its ``x`` fakes;
    the reals are shared with FF's, so its ids carry ``@FF/X``). New layout: ``dataset`` is the manifest's
    name (FF) everywhere; the layout before the change stored the set's name in ``dataset`` too."""
    parts = []
    for test_set, split in (("FF", "val"), ("FF", "test"), ("FF/X", "test")):
        s = scores_for("FF", n_videos=6)  # fakes: videos 1, 3, 5; video 3 is method x
        s["method"] = s.method.where(~s.video_id.str.endswith("/003"), "x")
        tag = ""
        if test_set == "FF/X":
            s, tag = s[(s.label == 0) | (s.method == "x")].copy(), "@FF/X"
        s["video_id"] = split + "/" + s.video_id + tag
        s["sample_id"] = split + "/" + s.sample_id + tag
        s["test_set"], s["split"] = test_set, split
        s["dataset"] = "FF" if new_layout else test_set
        parts.append(s)
    return pd.concat(parts, ignore_index=True)


def test_read_axis_puts_the_set_in_dataset_and_keeps_the_manifest_name(store):
    store.write_cell("new", _subset_cell(new_layout=True), record_for("FF", detector="sfam"))
    store.write_cell("old", _subset_cell(new_layout=False), record_for("FF"))
    stored = store.read_scores(axis="dataset")
    assert list(stored.columns) == [*SCORE_COLUMNS, "seed"]
    assert set(stored[stored.cell_id == "new"].dataset) == {"FF"}
    assert set(stored[stored.cell_id == "old"].dataset) == {"FF", "FF/X"}
    got = store.read_scores()  # the Cross-AUC axis: dataset = test_set, old and new stores alike
    assert list(got.columns) == [*SCORE_COLUMNS, "seed", "manifest_dataset"]
    assert (got.dataset == got.test_set).all()
    assert (got.manifest_dataset == stored.dataset).all()
    for cell in ("new", "old"):
        mine = got[(got.cell_id == cell) & (got.split == "test")]
        assert list(cross_auc_matrix(mine).index) == ["FF", "FF/X"]
    assert set(store.read_scores(dataset="FF/X").test_set) == {"FF/X"}  # filters see the returned table
    assert set(store.read_scores(axis="dataset", dataset="FF").cell_id) == {"new", "old"}
    assert list(store.read_scores(detector="nope").columns) == [*SCORE_COLUMNS, "manifest_dataset"]
    with pytest.raises(ValueError, match=r"axis='set' is not one of \['test_set', 'dataset'\]"):
        store.read_scores(axis="set")


def test_a_video_split_over_two_sets_is_refused(store):
    """Stored columns valid (one manifest dataset per video), but the metrics' axis would split a video."""
    s = scores_for("FF").assign(test_set="FF")
    s.loc[s.index % 2 == 1, "test_set"] = "FF/X"  # frame 1 of every video in another set, same ids
    with pytest.raises(ValueError, match=r"'bad'.*'dataset' differs between frames of video_id"):
        store.write_cell("bad", s, record_for("FF"))
    assert not store.is_done("bad")


def test_old_and_new_layouts_render_the_same_leaderboard(tmp_path, monkeypatch):
    """A store whose ``dataset`` is the manifest's name renders exactly the pages of one that stored the
    set's name (the layout before): the reader's axis is the set in both."""
    from benchmark.report.leaderboard import render

    monkeypatch.setattr(store_mod, "_utc_now", lambda: "2026-01-01T00:00:00+00:00")
    sets = [
        {"name": "FF", "dataset": "FF", "methods": []},
        {"name": "FF/X", "dataset": "FF", "methods": ["x"]},
    ]
    config = {
        "grid": "g",
        "detector": "sfam",
        "seed": 0,
        "train_set": sets[0],
        "test_sets": sets,
        "origin": "demo",
    }
    record = {"detector": "sfam", "train_set": "FF", "seed": 0, "config": config, "best_val_auc": 0.9}
    pages = []
    for layout in ("old", "new"):
        root = tmp_path / layout / "store"
        ScoreStore(root).write_cell("cell0", _subset_cell(new_layout=layout == "new"), record)
        render(root, tmp_path / layout / "lb", n_boot=50)
        files = sorted(p for p in (tmp_path / layout / "lb").rglob("*") if p.is_file())
        pages.append({p.relative_to(tmp_path / layout / "lb"): p.read_bytes() for p in files})
    assert pages[0] == pages[1]
    assert "FF/X" in pages[0][Path("g") / "sfam.md"].decode()

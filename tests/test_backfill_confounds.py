"""``--backfill-confounds``: an older manifest gains what its crops and landmarks give, the rest is marked
missing, the write is atomic and a current pack stays current."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from datamodules.manifest import CONFOUNDS, read_manifest
from datamodules.media import confounds
from datamodules.pack.reader import pack_state
from datamodules.pack.writer import pack_dataset
from datamodules.preprocess import main as preprocess_main
from datamodules.preprocess.backfill import BACKFILL_REASON, backfill_confounds
from tests.test_datamodule import _write_dataset

SPLITS = {"train": {"real": 1, "A": 1}, "test": {"real": 1, "B": 1}}


@pytest.fixture
def old_root(tmp_path) -> Path:
    _write_dataset(tmp_path, "src", SPLITS)  # rows as written before the confounds existed
    return tmp_path


def test_backfill_computes_crop_features_and_marks_the_rest_missing(old_root, capsys):
    before = read_manifest(old_root / "src/manifest.parquet", "src")
    assert before[list(CONFOUNDS)].isna().all().all()
    assert preprocess_main(["--backfill-confounds", "--dataset", "src", "--out", str(old_root)]) == 0
    assert "confounds computed for" in capsys.readouterr().out
    after = read_manifest(old_root / "src/manifest.parquet", "src")
    keep = [c for c in before.columns if c not in (*CONFOUNDS, "confounds_note")]
    pd.testing.assert_frame_equal(before[keep], after[keep])  # same rows, same order
    ok = after[after.status == "ok"]
    row = ok.iloc[0]
    crop = cv2.cvtColor(cv2.imread(str(old_root / "src" / row.crop_path)), cv2.COLOR_BGR2RGB)
    g = crop.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # BT.601 luma, computed here
    assert row.brightness == pytest.approx(g.mean(), abs=0.6)
    assert row.contrast == pytest.approx(g.std(), abs=0.6)
    assert ok[["sharpness", "yaw", "pitch", "roll"]].notna().all().all()
    assert ok[["face_px", "resize", "jpeg_quality", "blockiness"]].isna().all().all()
    assert (ok.confounds_note == f"face_px, resize, jpeg_quality, blockiness: {BACKFILL_REASON}").all()
    bad = after[after.status != "ok"]
    assert bad[list(CONFOUNDS)].isna().all().all()
    # a second run finds nothing to do
    assert backfill_confounds(old_root, "src").computed == 0


def test_backfill_keeps_a_current_pack_current_and_reads_crops_from_it(old_root):
    pack_dataset(old_root / "src")
    assert pack_state(old_root / "src")[0] == "ok"
    ref = backfill_confounds(shutil.copytree(old_root, old_root.parent / "ref"), "src")
    assert ref.pack == "updated"
    shutil.rmtree(old_root / "src/crops")  # only the pack holds the crops now
    report = backfill_confounds(old_root, "src")
    assert report.pack == "updated" and report.unreadable == 0
    assert pack_state(old_root / "src") == ("ok", "")
    a = read_manifest(old_root / "src/manifest.parquet", "src")
    b = read_manifest(old_root.parent / "ref/src/manifest.parquet", "src")
    pd.testing.assert_frame_equal(a, b)


def test_backfill_without_landmarks_says_so(tmp_path):
    _write_dataset(tmp_path, "nolm", SPLITS, with_landmarks=False)
    backfill_confounds(tmp_path, "nolm")
    ok = read_manifest(tmp_path / "nolm/manifest.parquet", "nolm").query("status == 'ok'")
    assert ok[["yaw", "pitch", "roll"]].isna().all().all() and ok["sharpness"].notna().all()
    assert ok.confounds_note.str.contains("yaw, pitch, roll: no stored landmarks").all()


def test_backfill_cli_names_what_it_needs(capsys):
    with pytest.raises(SystemExit):
        preprocess_main(["--backfill-confounds", "--dataset", "x"])
    assert "--backfill-confounds needs --out" in capsys.readouterr().err


def test_frame_features_round_trip_through_the_manifest(tmp_path):
    """NaN features survive the rows file (JSON null) and come back NaN from the manifest."""
    from datamodules.manifest import write_manifest
    from datamodules.preprocess.rows import json_safe

    feats = json_safe(confounds.frame_features(np.zeros((16, 16, 3), np.uint8), None))
    assert feats["yaw"] is None
    row = dict(dataset="d", split="test", label=0, method="real", compression="", video_id="d/v",
               frame_index=0, crop_path="c.png", landmarks_path="", mask_path="", status="ok", reason="",
               source_label="", **feats)  # fmt: skip
    df = read_manifest(write_manifest([row], tmp_path / "m.parquet"), "d")
    assert math.isnan(df.yaw.iloc[0]) and df.brightness.iloc[0] == 0
    assert df.yaw.dtype == np.float32

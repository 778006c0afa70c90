"""The named preprocessing protocols (``sfam``: detector confidence >= 0.9, face box >= 128 x 128 source
pixels): the rules as stated in ``datamodules/preprocess/protocols.py``, excluded frames kept as rows, the
thresholds pinned, the data configuration, the cell id, the record and the leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from datamodules.media import faces
from datamodules.media.crop import FaceCropOptions, excluded, track_and_crop
from datamodules.preprocess import (
    PROTOCOLS,
    PreprocessConfigError,
    main,
    preprocess_dataset,
    read_pinned,
    status_counts,
)
from tests.facevideos import photo

SFAM = PROTOCOLS["sfam"]


# ---- the rules, from their definition ------------------------------------------------------------------


def _face(w: float, h: float, score: float = 0.99) -> faces.Face:
    return faces.Face(np.array([10, 20, 10 + w, 20 + h], np.float32), score, np.zeros((5, 2), np.float32))


@pytest.mark.parametrize(
    ("w", "h", "kept"),
    [(128, 128, True), (300, 128, True), (127.9, 300, False), (300, 127.9, False), (100, 100, False)],
)
def test_small_face_rule_needs_both_sides_of_the_box(w: float, h: float, kept: bool) -> None:
    """ "Smaller than 128 x 128" read as: the box must be at least 128 wide AND 128 high (not an area)."""
    opts = FaceCropOptions(min_confidence=SFAM.min_confidence, min_face_side=SFAM.min_face_side)
    out = excluded(_face(w, h), "ok", opts)
    assert (out is None) == kept
    if not kept:
        assert out[0] == "small_face" and f"{w:.0f}x{h:.0f} source px, smaller than 128x128" in out[1]
    # the default protocol keeps every box
    assert excluded(_face(w, h), "ok", FaceCropOptions()) is None


def test_the_sfam_protocol_states_its_thresholds_and_source() -> None:
    assert (SFAM.min_confidence, SFAM.min_face_side) == (0.9, 128)
    assert "2604.21478" in SFAM.source and SFAM.filters and not PROTOCOLS["default"].filters
    assert SFAM.describe() == "sfam (detector confidence >= 0.9, face box >= 128x128 source px)"


# ---- the tracker with a detector whose faces we draw ----------------------------------------------------


def _painted_detector(image: np.ndarray, min_size: int = 20, min_score: float = 0.9) -> list[faces.Face]:
    """A stand-in face detector: every bright rectangle is a face, its score = its grey level / 255.

    Like MTCNN it reports only faces at or above ``min_score`` (0.9 unless asked), largest first.
    """
    gray = image[:, :, 0]
    n, _, stats, _ = cv2.connectedComponentsWithStats((gray > 30).astype(np.uint8))
    found = []
    for x, y, w, h, _area in stats[1:n]:
        score = float(gray[y : y + h, x : x + w].mean()) / 255
        if min(w, h) >= min_size and score >= min_score:
            box = np.array([x, y, x + w, y + h], np.float32)
            eyes = [[x + 0.3 * w, y + 0.4 * h], [x + 0.7 * w, y + 0.4 * h]]
            pts = np.array(
                [*eyes, [x + 0.5 * w, y + 0.6 * h], [x + 0.35 * w, y + 0.8 * h], [x + 0.65 * w, y + 0.8 * h]]
            )
            found.append(faces.Face(box, score, pts.astype(np.float32)))
    return sorted(found, key=lambda f: -f.area)


def _frame(*rects: tuple[int, int, int, int, int]) -> np.ndarray:
    img = np.zeros((400, 400, 3), np.uint8)
    for x1, y1, x2, y2, v in rects:
        img[y1:y2, x1:x2] = v
    return img


A, A_LOW = (100, 100, 260, 260, 250), (100, 100, 260, 260, 215)  # 160 x 160 px at 0.98, and at 0.84
A_NARROW = (100, 100, 200, 260, 250)  # the same person, 100 x 160 px
B, B_LOW = (300, 20, 380, 100, 250), (300, 20, 380, 100, 215)  # someone else, 80 x 80 px


def _run(frames: list[np.ndarray], protocol: str, monkeypatch) -> list:
    monkeypatch.setattr(faces, "get_detector", lambda name="auto": _painted_detector)
    p = PROTOCOLS[protocol]
    opts = FaceCropOptions(size=64, min_confidence=p.min_confidence, min_face_side=p.min_face_side)
    return list(track_and_crop(((i, f, "") for i, f in enumerate(frames)), opts))


@pytest.mark.parametrize(
    ("frames", "default", "sfam"),
    [
        # tracked A; A found only at 0.84; A too narrow; A again; only B (not A); only B below 0.9
        (
            [_frame(A), _frame(A_LOW), _frame(A_NARROW), _frame(A), _frame(B), _frame(B_LOW)],
            ["ok", "no_face", "ok", "ok", "face_lost", "no_face"],
            ["ok", "low_confidence", "small_face", "ok", "face_lost", "no_face"],
        ),
        # before anyone is tracked, a face found only below 0.9
        ([_frame(A_LOW), _frame(A)], ["no_face", "ok"], ["low_confidence", "ok"]),
    ],
)
def test_rules_exclude_frames_and_never_change_a_kept_crop(frames, default, sfam, monkeypatch) -> None:
    plain, ruled = _run(frames, "default", monkeypatch), _run(frames, "sfam", monkeypatch)
    assert [c.status for c in plain] == default
    assert [c.status for c in ruled] == sfam
    for p, r in zip(plain, ruled, strict=True):
        if r.status == "ok":
            assert np.array_equal(p.crop, r.crop) and np.array_equal(p.landmarks, r.landmarks)
        else:
            assert r.crop is None and r.reason
    low = next(r for r in ruled if r.status == "low_confidence")
    assert low.reason == f"face confidence {215 / 255:.3f} < 0.9 (protocol rule)"


# ---- end to end on real photos (MTCNN) ------------------------------------------------------------------


def _box(img: np.ndarray) -> tuple[float, float]:
    (f,) = faces.detect_faces(img)
    return float(f.box[2] - f.box[0]), float(f.box[3] - f.box[1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """One folder dataset preprocessed twice, default and sfam (the latter through the CLI)."""
    root = tmp_path_factory.mktemp("photos")
    imgs = {
        # 1024 px wide: detected on the 640 px downscale (face ~107 px there), ~172 px in source pixels
        "train/real/big.png": photo("astronaut", 1024),
        "train/fake/small.png": photo("astronaut", 512),
        "test/real/hopper.png": photo("grace_hopper", 300),
        "test/fake/noise.png": np.random.default_rng(0).integers(0, 255, (120, 120, 3), dtype=np.uint8),
    }
    for rel, img in imgs.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    out = tmp_path_factory.mktemp("processed")
    plain = preprocess_dataset("P", "folder", root, out / "default", frames=1, size=64, progress=False)
    code = main(["--dataset", "P", "--layout", "folder", "--root", str(root), "--out", str(out / "sfam"),
                 "--frames", "1", "--size", "64", "--backend", "mtcnn", "--workers", "1", "--protocol", "sfam"])  # fmt: skip
    assert code == 0
    return {"root": root, "out": out, "imgs": imgs, "default": plain, "sfam": out / "sfam/P/manifest.parquet"}


def test_sfam_protocol_end_to_end(runs: dict) -> None:
    plain, ruled = pd.read_parquet(runs["default"]), pd.read_parquet(runs["sfam"])
    status = dict(zip(ruled.video_id, ruled.status, strict=True))
    assert status == {
        "P/real/train_big": "ok",  # >= 128 px in SOURCE pixels, though not on the detection downscale
        "P/fake/train_small": "small_face",
        "P/real/test_hopper": "small_face",
        "P/fake/test_noise": "no_face",
    }
    assert dict(zip(plain.video_id, plain.status, strict=True)) == {**status, **dict.fromkeys(
        ["P/fake/train_small", "P/real/test_hopper"], "ok")}  # fmt: skip
    # the reason names the detector's box (an independent MTCNN call on the same image)
    for vid, rel in (
        ("P/fake/train_small", "train/fake/small.png"),
        ("P/real/test_hopper", "test/real/hopper.png"),
    ):
        w, h = _box(runs["imgs"][rel])
        assert min(w, h) < 128
        (reason,) = ruled.loc[ruled.video_id == vid, "reason"]
        assert f"face box {w:.0f}x{h:.0f} source px, smaller than 128x128" in reason
        assert (ruled.loc[ruled.video_id == vid, "crop_path"] == "").all()
    assert min(_box(runs["imgs"]["train/real/big.png"])) >= 128
    # the kept crop is the default protocol's, pixel for pixel
    rel = ruled.loc[ruled.video_id == "P/real/train_big", "crop_path"].item()
    same = plain.loc[plain.video_id == "P/real/train_big", "crop_path"].item()
    a = cv2.imread(str(runs["sfam"].parent / rel), cv2.IMREAD_UNCHANGED)
    b = cv2.imread(str(runs["default"].parent / same), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(a, b)
    # per status and split, as the summary prints them
    assert status_counts(ruled.to_dict("records")) == {
        "ok": {"train": 1},
        "small_face": {"train": 1, "test": 1},
        "no_face": {"test": 1},
    }


def test_thresholds_are_pinned_and_a_resume_cannot_mix_protocols(runs: dict, tmp_path: Path) -> None:
    pinned = json.loads((runs["sfam"].parent / "preprocess.json").read_text())
    assert (pinned["protocol"], pinned["min_confidence"], pinned["min_face_side"]) == ("sfam", 0.9, 128)
    with pytest.raises(PreprocessConfigError, match=r"other options \{'protocol': \('sfam', 'default'\)"):
        preprocess_dataset(
            "P", "folder", runs["root"], runs["out"] / "sfam", frames=1, size=64, progress=False
        )
    # a preprocess.json written before protocols existed reads as the default protocol
    old = {k: v for k, v in json.loads((runs["default"].parent / "preprocess.json").read_text()).items()
           if k not in ("protocol", "min_confidence", "min_face_side")}  # fmt: skip
    (tmp_path / "P").mkdir()
    (tmp_path / "P/preprocess.json").write_text(json.dumps(old))
    assert read_pinned(tmp_path / "P")["protocol"] == "default"
    with pytest.raises(PreprocessConfigError, match="'protocol': \\('default', 'sfam'\\)"):
        preprocess_dataset(
            "P", "folder", runs["root"], tmp_path, frames=1, size=64, protocol="sfam", progress=False
        )


def test_summary_counts_excluded_frames_per_split(capsys) -> None:
    from datamodules.preprocess import summarize

    rows = [{"status": "ok", "split": "train"}] * 3 + [{"status": "small_face", "split": "test"}] * 2
    rows += [{"status": "low_confidence", "split": "train"}]
    per = summarize(rows, n_videos=2, n_resumed=0, seconds=1.0, dataset="X", protocol="sfam")
    assert per == {"ok": {"train": 3}, "small_face": {"test": 2}, "low_confidence": {"train": 1}}
    err = capsys.readouterr().err
    assert "frames per status and split" in err and "sfam (detector confidence >= 0.9" in err
    table = {}
    for line in err.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").replace("┃", "│").split("│")]
        if len(cells) == 3 and cells[0] in per:
            table[cells[0]] = cells[1:]
    assert table == {"ok": ["3", "0"], "low_confidence": ["1", "0"], "small_face": ["0", "2"]}


# ---- configuration, cell ids, records, leaderboard -------------------------------------------------------


def _cell_id(tmp_path: Path, entry: str) -> str:
    from benchmark.runner.data_config import parse_data_config
    from benchmark.runner.grid import load_grid
    from benchmark.runner.plan import plan_cells
    from tests.runner_fixtures import write_grid

    (tmp_path / "d.yaml").write_text(f"datasets:\n  P: {{layout: folder, root: faces{entry}}}\n")
    grid = load_grid(write_grid(tmp_path, train_sets=["P"], test_sets=["P"]))
    (cell,) = plan_cells(grid, parse_data_config(tmp_path / "d.yaml"))
    return cell.cell_id


def test_a_protocol_other_than_the_default_changes_the_cell_id(tmp_path: Path) -> None:
    from benchmark.runner.data_config import DataConfigError

    plain = _cell_id(tmp_path, "")
    assert _cell_id(tmp_path, ", protocol: default") == plain  # the same data: the same cell
    assert _cell_id(tmp_path, ", protocol: sfam") != plain
    with pytest.raises(
        DataConfigError, match=r"unknown preprocessing protocol 'sfm'; known protocols: default, sfam"
    ):
        _cell_id(tmp_path, ", protocol: sfm")


def test_record_and_leaderboard_name_the_protocol(runs: dict) -> None:
    from benchmark.report.leaderboard import _protocol_note
    from benchmark.runner.cell_data import data_protocols

    protocols = data_protocols(
        {"A": runs["sfam"], "B": runs["default"], "C": Path("/nowhere/manifest.parquet")}
    )
    assert protocols == {"A": "sfam", "B": "default", "C": "default"}
    assert _protocol_note([{"data_protocols": protocols}]) == " (preprocessing protocol `sfam`: A)"
    assert _protocol_note([{"data_protocols": {"A": "default"}}]) == ""
    # records written before data_protocols existed: the configured option
    old = {
        "config": {
            "datasets": {"X": {"layout": "ffpp", "options": {"protocol": "sfam"}}, "Y": {"layout": "dfd"}}
        }
    }
    assert _protocol_note([old]) == " (preprocessing protocol `sfam`: X)"


def test_protocol_refusals(tmp_path: Path) -> None:
    with pytest.raises(PreprocessConfigError, match=r"unknown preprocessing protocol 'sfm'"):
        preprocess_dataset("P", "folder", tmp_path, tmp_path / "o", protocol="sfm", progress=False)
    with pytest.raises(PreprocessConfigError, match=r"backend 'dlib' scores no probability"):
        preprocess_dataset(
            "P", "folder", tmp_path, tmp_path / "o", protocol="sfam", backend="dlib", progress=False
        )

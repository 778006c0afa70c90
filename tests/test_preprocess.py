"""Preprocessing end to end on short videos made from real face photos, plus alignment and frame reading."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from datamodules.datasets import DatasetLayoutError, UnknownLayoutError
from datamodules.manifest import COLUMNS
from datamodules.media import align, faces
from datamodules.media.video import open_video, read_video_frames, sample_indices
from datamodules.preprocess import PreprocessConfigError, main, preprocess_dataset
from tests.facevideos import face_video, frames_of, make_ffpp, mask_video, photo, write_video


def load(manifest: Path) -> pd.DataFrame:
    return pd.read_parquet(manifest)


def check_ok_rows(df: pd.DataFrame, base: Path, size: int = 256) -> None:
    ok = df[df.status == "ok"]
    assert len(ok) > 0
    for _, r in ok.iterrows():
        crop = cv2.imread(str(base / r.crop_path), cv2.IMREAD_UNCHANGED)
        assert crop.shape == (size, size, 3) and r.crop_path.endswith(".png")
        lm = np.load(base / r.landmarks_path)
        assert lm.dtype == np.float32 and lm.shape == (68, 2)
        assert (lm > -0.1 * size).all() and (lm < 1.1 * size).all()
        eyes_y, mouth_y = lm[36:48, 1].mean(), lm[48:68, 1].mean()
        assert eyes_y < mouth_y  # upright, aligned face


# ---- alignment and frame reading -------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    st.floats(-np.pi, np.pi),
    st.floats(0.2, 5.0),
    st.floats(-300, 300),
    st.floats(-300, 300),
    st.integers(0, 2**31 - 1),
)
def test_similarity_matches_skimage_and_recovers_transform(angle, scale, tx, ty, seed):
    from skimage.transform import SimilarityTransform

    rng = np.random.default_rng(seed)
    src = rng.uniform(0, 500, (5, 2))
    c, s = np.cos(angle), np.sin(angle)
    true = np.array([[scale * c, -scale * s, tx], [scale * s, scale * c, ty]])
    dst = src @ true[:, :2].T + true[:, 2] + rng.normal(0, 0.5, (5, 2))
    m = align.similarity(src, dst)
    ref = (
        SimilarityTransform.from_estimate(src, dst) if hasattr(SimilarityTransform, "from_estimate") else None
    )
    if ref is None:
        ref = SimilarityTransform()
        ref.estimate(src, dst)
    np.testing.assert_allclose(m, ref.params[:2], atol=1e-6 * max(1.0, abs(tx) + abs(ty)))
    exact = align.similarity(src, src @ true[:, :2].T + true[:, 2])
    np.testing.assert_allclose(exact, true, atol=1e-6)


def test_template_margin_and_size():
    t = align.template(256, 1.0)
    np.testing.assert_allclose(t, align.ARCFACE_5 / 112 * 256)
    t13 = align.template(256, 1.3)
    c = np.array([128.0, 128.0])
    np.testing.assert_allclose(t13 - c, (t - c) / 1.3)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 5000), st.integers(0, 64))
def test_sample_indices_spread(count, n):
    idx = sample_indices(count, n)
    assert len(idx) == (min(count, n) if count and n else 0)
    if len(idx):
        assert idx[0] == 0 and (idx[-1] == count - 1 or len(idx) == 1)
        assert (np.diff(idx) > 0).all() and idx.max() < count


def test_seek_and_grab_read_the_same_frames_as_decoding_everything(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (32, 48, 3), dtype=np.uint8) for _ in range(120)]
    path = write_video(tmp_path / "noise.avi", frames)
    cap = cv2.VideoCapture(str(path))
    every = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        every.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    idx = sample_indices(len(every), 7)
    for gap in (1, 10_000):  # always seek / always grab
        cap, n = open_video(path)
        assert n == len(every) == 120
        got = list(read_video_frames(cap, idx, seek_gap=gap))
        assert [g[0] for g in got] == idx.tolist()
        for i, rgb, reason in got:
            assert reason == "" and np.array_equal(rgb, every[i])


# ---- face detection on real photos ----------------------------------------------------------------


def test_mtcnn_finds_six_faces_in_t1_and_backend_errors():
    found = faces.get_detector("mtcnn")(photo("t1", 640))
    assert len(found) == 6
    assert [f.area for f in found] == sorted((f.area for f in found), reverse=True)
    with pytest.raises(faces.FaceBackendError, match="known: auto, mtcnn, dlib, insightface"):
        faces.get_detector("retinaface")
    if faces.insightface_pack() is None:
        with pytest.raises(faces.FaceBackendError, match="no local model pack"):
            faces.get_detector("insightface")


# ---- end to end: official layouts ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ffpp_run(tmp_path_factory):
    root = make_ffpp(tmp_path_factory.mktemp("ffpp"), n_frames=6, methods=("Deepfakes",))
    out = tmp_path_factory.mktemp("processed")
    manifest = preprocess_dataset("FF++", "ffpp", root, out, frames=3, progress=False)
    return root, out, manifest


def test_ffpp_end_to_end_manifest_crops_landmarks_masks(ffpp_run):
    root, out, manifest = ffpp_run
    assert manifest == out / "FF++" / "manifest.parquet"
    df = load(manifest)
    assert tuple(df.columns) == COLUMNS
    assert len(df) == 8 * 3 and (df.status == "ok").all()
    assert sorted(df.frame_index.unique()) == [0, 2, 5]  # spread over the whole 6-frame video
    assert set(df.split) == {"train", "val"}
    assert df.video_id.str.startswith("FF++/").all()
    check_ok_rows(df, manifest.parent)
    fakes = df[df.label == 1]
    assert (fakes.mask_path != "").all() and (df[df.label == 0].mask_path == "").all()
    m = cv2.imread(str(manifest.parent / fakes.mask_path.iloc[0]), cv2.IMREAD_UNCHANGED)
    assert (
        m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255} and m[128, 128] == 255
    )  # warped onto the face
    # the eye centres land where the alignment template puts them
    lm = np.load(manifest.parent / df.landmarks_path.iloc[0])
    t = align.template(256, 1.3)
    assert np.abs(lm[36:42].mean(0) - t[0]).max() < 10 and np.abs(lm[42:48].mean(0) - t[1]).max() < 10
    # confounds: everything a video frame gives, its JPEG quality marked missing with the reason
    feats = ["face_px", "resize", "sharpness", "brightness", "contrast", "blockiness", "yaw", "pitch", "roll"]
    assert df[feats].notna().all().all() and df.jpeg_quality.isna().all()
    assert (df.confounds_note == "jpeg_quality: video frame (no image file)").all()
    assert np.allclose(df.resize * df.face_px, 256, rtol=1e-5)
    assert (df.yaw.abs() < 60).all() and (df.roll.abs() < 20).all()  # aligned crops: little roll left


def test_resume_skips_finished_videos_and_refuses_other_options(ffpp_run):
    root, out, manifest = ffpp_run
    base = manifest.parent
    rows = sorted((base / "rows").rglob("*.json"))
    assert len(rows) == 8
    stamp = {p: p.stat().st_mtime_ns for p in rows}
    rows[0].unlink()  # as if the run had crashed during this video
    again = preprocess_dataset("FF++", "ffpp", root, out, frames=3, progress=False)
    assert sorted(p.stat().st_mtime_ns == stamp[p] for p in rows) == [False] + [True] * 7
    pd.testing.assert_frame_equal(load(again), load(manifest))
    # a corrected split file takes effect on resume without redoing any video
    orig = load(manifest)
    splits = root / "splits"
    train, val = (splits / "train.json").read_text(), (splits / "val.json").read_text()
    (splits / "train.json").write_text(val)
    (splits / "val.json").write_text(train)
    try:
        swapped = load(preprocess_dataset("FF++", "ffpp", root, out, frames=3, progress=False))
    finally:
        (splits / "train.json").write_text(train)
        (splits / "val.json").write_text(val)
    flip = {"train": "val", "val": "train"}
    assert swapped.split.tolist() == [flip[s] for s in orig.split]
    assert swapped.crop_path.tolist() == orig.crop_path.tolist()
    preprocess_dataset("FF++", "ffpp", root, out, frames=3, progress=False)  # back to the original
    with pytest.raises(PreprocessConfigError, match="margin"):
        preprocess_dataset("FF++", "ffpp", root, out, frames=3, margin=1.5, progress=False)


def test_png_level_changes_storage_not_pixels_and_may_change_on_resume(ffpp_run):
    """Level 0 (default) stores crops unfiltered; a resume at level 3 redoes only the missing video, with
    the same pixels in a smaller file, and is not refused as 'other options'."""
    root, out, manifest = ffpp_run
    base = manifest.parent
    df = load(manifest)
    vid = df.video_id.iloc[-1]
    crops = df[df.video_id == vid].crop_path.tolist()
    before = {c: (cv2.imread(str(base / c), cv2.IMREAD_UNCHANGED), (base / c).stat().st_size) for c in crops}
    assert all(size > 256 * 256 * 3 for _, size in before.values())  # stored, not deflated
    row_file = next(
        p for p in (base / "rows").rglob("*.json") if json.loads(p.read_text())[0]["crop_path"] == crops[0]
    )
    others = {p: p.stat().st_mtime_ns for p in (base / "rows").rglob("*.json") if p != row_file}
    row_file.unlink()
    again = preprocess_dataset("FF++", "ffpp", root, out, frames=3, png_compression=3, progress=False)
    pd.testing.assert_frame_equal(load(again), df)
    assert all(p.stat().st_mtime_ns == t for p, t in others.items())  # nothing else redone
    for c, (pixels, size) in before.items():
        np.testing.assert_array_equal(cv2.imread(str(base / c), cv2.IMREAD_UNCHANGED), pixels)
        assert (base / c).stat().st_size < size
    assert json.loads((base / "preprocess.json").read_text())["png_compression"] == 3
    with pytest.raises(ValueError, match="png_compression must be 0-9, got 10"):
        preprocess_dataset("FF++", "ffpp", root, out, frames=3, png_compression=10, progress=False)
    with pytest.raises(SystemExit):
        main(["--dataset", "FF++", "--root", str(root), "--out", str(out), "--png-compression", "12"])


def test_celebdf_and_dfdc_layouts_end_to_end(tmp_path):
    cdf = tmp_path / "cdf"
    for rel, nm in (
        ("Celeb-real/id0_0000.mp4", "astronaut"),
        ("Celeb-real/id1_0000.mp4", "grace_hopper"),
        ("Celeb-synthesis/id0_id1_0000.mp4", "astronaut"),
        ("YouTube-real/00000.avi", "grace_hopper"),
    ):
        face_video(cdf / rel, nm, n=3, width=160)
    (cdf / "List_of_testing_videos.txt").write_text(
        "1 YouTube-real/00000.avi\n0 Celeb-synthesis/id0_id1_0000.mp4\n"
    )
    df = load(preprocess_dataset("CDF-v2", "celebdf_v2", cdf, tmp_path / "out", frames=2, progress=False))
    test = df[df.split == "test"].groupby("video_id").label.first().to_dict()
    assert test == {"CDF-v2/real/yt_00000": 0, "CDF-v2/fake/id0_id1_0000": 1}
    assert (df.status == "ok").all()

    dfdc = tmp_path / "dfdc"
    face_video(dfdc / "dfdc_train_part_0/r.mp4", "grace_hopper", n=3, width=160)
    face_video(dfdc / "dfdc_train_part_0/f.mp4", "grace_hopper", n=3, width=160)
    (dfdc / "dfdc_train_part_0/metadata.json").write_text(
        json.dumps({"r.mp4": {"label": "REAL"}, "f.mp4": {"label": "FAKE", "original": "r.mp4"}})
    )
    face_video(dfdc / "test/videos/t.mp4", "astronaut", n=3, width=160)
    (dfdc / "test/labels.csv").write_text("filename,label\nt.mp4,1\n")
    df = load(preprocess_dataset("DFDC", "dfdc", dfdc, tmp_path / "out", frames=2, progress=False))
    assert set(df.video_id) == {"DFDC/real/r", "DFDC/fake/f", "DFDC/fake/t"}
    assert (df.status == "ok").all() and set(df.split) == {"train", "test"}


# ---- bad input ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    """A UADFV-layout folder holding one good video and every kind of bad one."""
    root = tmp_path_factory.mktemp("uadfv")
    good = face_video(root / "real/good.mp4", "astronaut", n=4, width=192)
    (root / "real/zero.mp4").write_bytes(b"")
    (root / "real/text.mp4").write_text("this is not a video\n" * 50)
    full = face_video(root / "fake/full.avi", "grace_hopper", n=8, width=128).read_bytes()
    (root / "fake/truncated.avi").write_bytes(full[: len(full) // 2])
    (root / "fake/full.avi").unlink()
    writer = cv2.VideoWriter(str(root / "fake/noframes.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
    writer.release()
    rng = np.random.default_rng(0)
    write_video(
        root / "fake/noface.mp4", [rng.integers(0, 255, (96, 96, 3), dtype=np.uint8) for _ in range(3)]
    )
    gray = cv2.cvtColor(photo("astronaut", 192), cv2.COLOR_RGB2GRAY)
    write_video(root / "fake/gray.mp4", [cv2.cvtColor(g, cv2.COLOR_GRAY2RGB) for g in frames_of(gray, 3)])
    # face cut by the left border: the crop keeps the frame's edge, filled with black
    border = photo("astronaut", 512)[:, 195:395]
    write_video(root / "fake/border.mp4", frames_of(np.ascontiguousarray(border), 3, drift=0))
    manifest = preprocess_dataset(
        "UADFV", "uadfv", root, tmp_path_factory.mktemp("out"), frames=4, progress=False
    )
    return good, load(manifest).set_index("video_id", drop=False), manifest.parent


def test_bad_videos_get_failure_rows_and_good_video_survives(bad_run):
    _, df, base = bad_run
    st_of = df.groupby(level=0).status.agg(lambda s: sorted(set(s)))
    assert st_of["UADFV/real/good"] == ["ok"] and (df.loc["UADFV/real/good"].status == "ok").sum() == 4
    for vid in ("UADFV/real/zero", "UADFV/real/text", "UADFV/fake/noframes"):
        row = df.loc[[vid]]
        assert len(row) == 1 and row.status.iloc[0] == "decode_error" and row.frame_index.iloc[0] == -1
    assert "zero-byte" in df.loc[["UADFV/real/zero"]].reason.iloc[0]
    assert "no decodable frame" in df.loc[["UADFV/fake/noframes"]].reason.iloc[0]
    trunc = df.loc[["UADFV/fake/truncated"]]
    assert {"ok", "decode_error"} <= set(trunc.status) and len(trunc) == 4
    noface = df.loc[["UADFV/fake/noface"]]
    assert (noface.status == "no_face").all() and (noface.crop_path == "").all()


def test_grayscale_and_border_faces_are_cropped(bad_run):
    _, df, base = bad_run
    assert (df.loc[["UADFV/fake/gray"]].status == "ok").all()
    border = df.loc[["UADFV/fake/border"]]
    assert (border.status == "ok").all()
    check_ok_rows(border, base)
    crop = cv2.imread(str(base / border.crop_path.iloc[0]))
    assert (crop[:, :8] == 0).all()  # the part beyond the frame edge is black padding


def test_images_gray_rgba_and_several_faces(tmp_path):
    root = tmp_path / "imgs"
    (root / "test/real").mkdir(parents=True)
    (root / "test/fake").mkdir(parents=True)
    a = photo("astronaut", 256)
    cv2.imwrite(str(root / "test/real/gray.png"), cv2.cvtColor(a, cv2.COLOR_RGB2GRAY))
    rgba = np.dstack([cv2.cvtColor(a, cv2.COLOR_RGB2BGR), np.full(a.shape[:2], 128, np.uint8)])
    cv2.imwrite(str(root / "test/fake/rgba.png"), rgba)
    cv2.imwrite(str(root / "test/fake/group.jpg"), cv2.cvtColor(photo("t1", 640), cv2.COLOR_RGB2BGR))
    df = load(preprocess_dataset("imgs", "folder", root, tmp_path / "out", frames=4, progress=False))
    assert len(df) == 3 and (df.status == "ok").all()
    check_ok_rows(df, tmp_path / "out/imgs")
    # several faces: the largest one is kept, one row only
    t1 = cv2.cvtColor(cv2.imread(str(root / "test/fake/group.jpg")), cv2.COLOR_BGR2RGB)
    biggest = faces.detect_faces(t1)[0]
    crop = cv2.imread(str(tmp_path / "out/imgs" / df[df.video_id == "imgs/fake/group"].crop_path.iloc[0]))
    m = align.alignment_matrix(biggest.points5)
    ref = cv2.cvtColor(align.warp(t1, m, 256), cv2.COLOR_RGB2BGR)
    assert np.abs(crop.astype(int) - ref.astype(int)).mean() < 8
    group = df[df.video_id == "imgs/fake/group"].iloc[0]
    w, h = biggest.box[2] - biggest.box[0], biggest.box[3] - biggest.box[1]
    assert group.face_px == pytest.approx(float(np.sqrt(w * h)), rel=1e-3)
    assert group.jpeg_quality == 95  # OpenCV's default JPEG quality, written above
    assert df[df.video_id != "imgs/fake/group"].jpeg_quality.isna().all()  # PNG sources


def test_mask_picks_the_manipulated_face_and_tracking_never_switches_person(tmp_path):
    t1 = photo("t1", 480)
    found = faces.detect_faces(t1)
    target = found[-1]  # the SMALLEST face: only the mask can make us choose it
    x1, y1, x2, y2 = (int(v) for v in target.box)
    root = make_ffpp(tmp_path / "ff", n_frames=2, methods=())
    vid = write_video(
        root / "manipulated_sequences/Deepfakes/c23/videos/000_001.mp4", frames_of(t1, 4, drift=0)
    )
    mask_video(root / "manipulated_sequences/Deepfakes/masks/videos/000_001.mp4", t1, (x1, y1, x2, y2), 4, 0)
    # a second fake in which the largest face disappears after the first frame
    big = found[0]
    bx1, by1, bx2, by2 = (int(v) for v in big.box)
    frames = frames_of(t1, 4, drift=0)
    for f in frames[1:]:
        f[max(0, by1 - 10) : by2 + 10, max(0, bx1 - 10) : bx2 + 10] = 0
    write_video(root / "manipulated_sequences/Deepfakes/c23/videos/001_000.mp4", frames)
    assert vid.is_file()
    df = load(preprocess_dataset("FF", "ffpp", root, tmp_path / "out", frames=4, progress=False))
    base = tmp_path / "out/FF"
    masked = df[df.video_id == "FF/Deepfakes/000_001"]
    assert (masked.status == "ok").all() and len(masked) == 4
    for p in masked.mask_path:
        assert cv2.imread(str(base / p), cv2.IMREAD_GRAYSCALE)[128, 128] == 255
    lost = df[df.video_id == "FF/Deepfakes/001_000"].sort_values("frame_index")
    assert lost.status.tolist() == ["ok", "face_lost", "face_lost", "face_lost"]
    assert "tracked face" in lost.reason.iloc[1]


def test_prealigned_deepfakebench_frames_are_reused(tmp_path):
    a = photo("astronaut", 512)
    m = align.alignment_matrix(faces.detect_faces(a)[0].points5, 256, 1.3)
    crop = cv2.cvtColor(align.warp(a, m, 256), cv2.COLOR_RGB2BGR)
    frames = tmp_path / "rgb/UADFV/real/frames/0001"
    frames.mkdir(parents=True)
    (tmp_path / "rgb/UADFV/real/landmarks/0001").mkdir(parents=True)
    for i in (0, 7):
        cv2.imwrite(str(frames / f"{i:03d}.png"), crop)
    lm81 = np.zeros((81, 2), np.int64)
    lm81[:68] = np.arange(136).reshape(68, 2)
    np.save(tmp_path / "rgb/UADFV/real/landmarks/0001/000.npy", lm81)
    np.save(tmp_path / "rgb/UADFV/real/landmarks/0001/007.npy", lm81)
    v = {
        "label": "UADFV_Real",
        "frames": [f"C:\\dfb\\rgb\\UADFV\\real\\frames\\0001\\{i:03d}.png" for i in (0, 7)],
    }
    (tmp_path / "UADFV.json").write_text(json.dumps({"UADFV": {"UADFV_Real": {"test": {"0001": v}}}}))
    df = load(
        preprocess_dataset(
            "U", "deepfakebench_json", tmp_path / "UADFV.json", tmp_path / "out", size=128,
            remap=f"C:/dfb/rgb={tmp_path / 'rgb'}", progress=False,
        )
    )  # fmt: skip
    assert df.frame_index.tolist() == [0, 7] and (df.status == "ok").all()
    lm = np.load(tmp_path / "out/U" / df.landmarks_path.iloc[0])
    np.testing.assert_allclose(lm, np.arange(136).reshape(68, 2) * 0.5)  # 81 -> 68 points, 256 -> 128 px
    assert cv2.imread(str(tmp_path / "out/U" / df.crop_path.iloc[0])).shape == (128, 128, 3)


def test_cli_errors_name_the_culprit(tmp_path, capsys):
    assert main(["--list-layouts"]) == 0
    out = capsys.readouterr().out
    assert "== ffpp" in out and "List_of_testing_videos.txt" in out and "== deepfakebench_json" in out
    with pytest.raises(SystemExit):
        main(["--dataset", "X"])
    assert "--root, --out" in capsys.readouterr().err
    with pytest.raises(UnknownLayoutError, match="known layouts: celebdf_v1"):
        main(["--dataset", "X", "--layout", "nope", "--root", str(tmp_path), "--out", str(tmp_path)])
    with pytest.raises(UnknownLayoutError, match="pass --layout"):
        main(["--dataset", "MyData", "--root", str(tmp_path), "--out", str(tmp_path)])
    with pytest.raises(DatasetLayoutError, match="List_of_testing_videos.txt|Celeb-real"):
        main(["--dataset", "CDF-v2", "--root", str(tmp_path), "--out", str(tmp_path / "o")])


@pytest.mark.slow
def test_parallel_workers_match_single_process(tmp_path):
    root = tmp_path / "u"
    face_video(root / "real/0.mp4", "astronaut", n=3, width=160)
    face_video(root / "fake/x.mp4", "grace_hopper", n=3, width=160)
    one = load(preprocess_dataset("U", "uadfv", root, tmp_path / "a", frames=2, progress=False))
    two = load(preprocess_dataset("U", "uadfv", root, tmp_path / "b", frames=2, workers=2, progress=False))
    pd.testing.assert_frame_equal(one, two)
    for p in one.landmarks_path:
        np.testing.assert_allclose(np.load(tmp_path / "a/U" / p), np.load(tmp_path / "b/U" / p), atol=1e-3)
    assert os.listdir(tmp_path / "b/U/rows/real")


def test_crash_loses_only_the_video_in_flight_and_rerun_resumes(tmp_path, monkeypatch):
    import datamodules.preprocess.video as pp

    root = tmp_path / "u"
    for i in range(3):
        face_video(root / f"real/{i}.mp4", "grace_hopper", n=2, width=128)
    face_video(root / "fake/x.mp4", "astronaut", n=2, width=128)
    real_process = pp.process_video
    calls: list[str] = []

    def crashing(rec, opts, base):
        calls.append(rec.video_id)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the machine goes down while the third video is in flight
        return real_process(rec, opts, base)

    monkeypatch.setattr(pp, "process_video", crashing)
    with pytest.raises(KeyboardInterrupt):
        preprocess_dataset("U", "uadfv", root, tmp_path / "out", frames=1, progress=False)
    assert len(list((tmp_path / "out/U/rows").rglob("*.json"))) == 2
    assert not (tmp_path / "out/U/manifest.parquet").exists()
    done_before = calls[:2]
    calls.clear()
    monkeypatch.setattr(
        pp, "process_video", lambda rec, o, b: calls.append(rec.video_id) or real_process(rec, o, b)
    )
    df = load(preprocess_dataset("U", "uadfv", root, tmp_path / "out", frames=1, progress=False))
    assert len(calls) == 2 and not set(calls) & set(done_before)
    assert len(df) == 4 and (df.status == "ok").all()


def test_summary_table_counts_each_failure_kind(capsys):
    from datamodules.preprocess import summarize

    rows = [{"status": s} for s in ["ok"] * 5 + ["no_face"] * 2 + ["decode_error"]]
    summarize(rows, n_videos=3, n_resumed=1, seconds=1.0)
    err = capsys.readouterr().err
    counts = {}
    for line in err.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").replace("┃", "│").split("│")]
        if len(cells) == 2 and cells[1].isdigit():
            counts[cells[0]] = int(cells[1])
    assert counts["videos"] == 3 and counts["videos resumed (already done)"] == 1
    assert (counts["frames ok"], counts["frames no_face"], counts["frames decode_error"]) == (5, 2, 1)


def test_dlib_backend_agrees_with_mtcnn_on_a_real_face():
    img = photo("grace_hopper", 300)
    (m,) = faces.get_detector("mtcnn")(img)
    d = faces.get_detector("dlib")(img)
    assert len(d) == 1
    eye_dist = np.linalg.norm(m.points5[0] - m.points5[1])
    assert np.abs(d[0].points5[:2] - m.points5[:2]).max() < 0.25 * eye_dist  # same eyes


def _layout_tree(layout: str, root: Path) -> None:
    """One real and one fake face video (or frames) in ``layout``'s official structure."""
    real, fake = "astronaut", "grace_hopper"
    if layout == "dfd":
        face_video(root / "original_sequences/actors/c23/videos/01__talking.mp4", real, 2, 128)
        face_video(
            root / "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__talking.mp4", fake, 2, 128
        )
    elif layout == "celebdf_v1":
        face_video(root / "Celeb-real/id0_0000.mp4", real, 2, 128)
        face_video(root / "Celeb-synthesis/id0_id1_0000.mp4", fake, 2, 128)
        (root / "List_of_testing_videos.txt").write_text(
            "1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n"
        )
    elif layout == "dfdc_preview":
        face_video(root / "original_videos/100/a.mp4", real, 2, 128)
        face_video(root / "method_A/100/a.mp4", fake, 2, 128)
        (root / "dataset.json").write_text(
            json.dumps(
                {
                    "original_videos/100/a.mp4": {"label": "real", "set": "test"},
                    "method_A/100/a.mp4": {"label": "fake", "set": "test"},
                }
            )
        )
    elif layout == "fake_only":
        face_video(root / "v.avi", fake, 2, 128)
        (root / "frames/x").mkdir(parents=True)
        cv2.imwrite(str(root / "frames/x/000.png"), cv2.cvtColor(photo(real, 128), cv2.COLOR_RGB2BGR))
    elif layout == "csv":
        face_video(root / "r.mp4", real, 2, 128)
        face_video(root / "f.avi", fake, 2, 128)
        (root / "dataset.csv").write_text("path,label,split\nr.mp4,real,test\nf.avi,fake,test\n")


@pytest.mark.parametrize("layout", ["dfd", "celebdf_v1", "dfdc_preview", "fake_only", "csv"])
def test_other_layouts_end_to_end(tmp_path, layout):
    _layout_tree(layout, tmp_path / "data")
    df = load(preprocess_dataset("D", layout, tmp_path / "data", tmp_path / "out", frames=2, progress=False))
    assert (df.status == "ok").all() and (df.split == "test").all()
    labels = df.groupby("video_id").label.first()
    assert sorted(labels) == ([1, 1] if layout == "fake_only" else [0, 1])
    check_ok_rows(df, tmp_path / "out/D")


def test_insightface_backend_used_only_with_a_local_pack(tmp_path, monkeypatch):
    """Our glue around insightface (pack discovery, auto choice, Face conversion); SCRFD itself needs
    weights that cannot be downloaded here, so its detector object is replaced by a stand-in."""
    from types import SimpleNamespace

    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert faces.insightface_pack() is None and faces.resolve_backend("auto") == "mtcnn"
    pack = tmp_path / "ins/models/buffalo_l"
    pack.mkdir(parents=True)
    (pack / "det_10g.onnx").write_bytes(b"")
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path / "ins"))
    assert faces.insightface_pack() == pack and faces.resolve_backend("auto") == "insightface"
    seen = {}

    def get(bgr):
        seen["shape"] = bgr.shape
        small = SimpleNamespace(bbox=np.array([0, 0, 10, 10.0]), det_score=0.9, kps=np.zeros((5, 2)))
        big = SimpleNamespace(bbox=np.array([5, 5, 45, 55.0]), det_score=0.8, kps=np.ones((5, 2)))
        low = SimpleNamespace(bbox=np.array([0, 0, 99, 99.0]), det_score=0.1, kps=np.ones((5, 2)))
        return [small, big, low]

    monkeypatch.setattr(faces, "_insightface_app", lambda p: SimpleNamespace(get=get))
    found = faces.get_detector("auto")(np.zeros((60, 80), np.uint8))  # grayscale input is converted
    assert seen["shape"] == (60, 80, 3)
    assert [f.box.tolist() for f in found] == [[5, 5, 45, 55], [0, 0, 10, 10]]  # largest first, low score out
    assert found[0].points5.dtype == np.float32

"""Dataset adapters on tiny copies of each official layout (files are empty: adapters only list them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datamodules.datasets import (
    DatasetLayoutError,
    UnknownLayoutError,
    enumerate_dataset,
    get_adapter,
    list_layouts,
)
from datamodules.datasets.base import check_unique


def touch(root: Path, *rels: str) -> None:
    for r in rels:
        p = root / r
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"")


def by_id(records) -> dict:
    return {r.video_id: r for r in records}


# ---- registry --------------------------------------------------------------------------------------


def test_every_layout_has_adapter_with_layout_docstring():
    layouts = list_layouts()
    for name in ("ffpp", "dfd", "celebdf_v1", "celebdf_v2", "dfdc", "dfdc_preview", "uadfv", "fake_only"):
        assert name in layouts
    for name in ("deepfakebench_json", "csv", "folder"):
        assert name in layouts
    for name in layouts:
        a = get_adapter(name)
        assert a.layout == name
        assert "layout" in (type(a).__doc__ or "").lower(), name


def test_unknown_layout_lists_known_names():
    with pytest.raises(UnknownLayoutError) as e:
        get_adapter("celebdf_v3")
    msg = str(e.value)
    assert "celebdf_v3" in msg and "celebdf_v2" in msg and "ffpp" in msg


# ---- FF++ and DFD ------------------------------------------------------------------------------------


def ffpp_tree(root: Path, comp: str = "c23") -> Path:
    touch(root, *[f"original_sequences/youtube/{comp}/videos/{i:03d}.mp4" for i in range(6)])
    for m in ("Deepfakes", "FaceShifter"):
        for a, b in ((0, 1), (1, 0), (2, 3), (3, 2), (4, 5), (5, 4)):
            touch(root, f"manipulated_sequences/{m}/{comp}/videos/{a:03d}_{b:03d}.mp4")
    touch(root, "manipulated_sequences/Deepfakes/masks/videos/000_001.mp4")
    (root / "splits").mkdir()
    (root / "splits/train.json").write_text(json.dumps([["000", "001"]]))
    (root / "splits/val.json").write_text(json.dumps([["002", "003"]]))
    (root / "splits/test.json").write_text(json.dumps([["005", "004"]]))
    return root


def test_ffpp_official_pairs_define_splits(tmp_path):
    recs = by_id(enumerate_dataset("ffpp", ffpp_tree(tmp_path), dataset="FF++"))
    assert len(recs) == 6 + 2 * 6
    assert recs["FF++/real/000"].split == "train" and recs["FF++/real/000"].label == 0
    assert recs["FF++/real/004"].split == "test"
    # both fakes of a pair follow the pair, whatever the order inside the JSON
    assert recs["FF++/Deepfakes/004_005"].split == recs["FF++/Deepfakes/005_004"].split == "test"
    assert recs["FF++/FaceShifter/003_002"].split == "val"
    f = recs["FF++/Deepfakes/000_001"]
    assert f.label == 1 and f.method == "Deepfakes" and f.compression == "c23"
    assert f.mask_path is not None and f.mask_path.name == "000_001.mp4"
    assert recs["FF++/Deepfakes/001_000"].mask_path is None  # no mask file for this one
    assert recs["FF++/FaceShifter/000_001"].mask_path is None


def test_unknown_adapter_option_is_an_error(tmp_path):
    with pytest.raises(TypeError, match=r"takes no option\(s\) \['compresion'\]; its options: compression"):
        enumerate_dataset("ffpp", ffpp_tree(tmp_path), compresion="c40")


def test_ffpp_missing_split_file_is_named(tmp_path):
    root = ffpp_tree(tmp_path)
    (root / "splits/val.json").unlink()
    with pytest.raises(DatasetLayoutError, match=r"splits/val\.json"):
        enumerate_dataset("ffpp", root)


def test_ffpp_missing_compression_lists_present(tmp_path):
    root = ffpp_tree(tmp_path)
    with pytest.raises(DatasetLayoutError, match=r"c40.*present: \['c23'\]"):
        enumerate_dataset("ffpp", root, compression="c40")


def test_ffpp_video_outside_splits_warns(tmp_path):
    root = ffpp_tree(tmp_path)
    touch(root, "original_sequences/youtube/c23/videos/999.mp4")
    with pytest.warns(UserWarning, match="no official split"):
        recs = enumerate_dataset("ffpp", root)
    assert not any(r.video_id.endswith("/999") for r in recs)


def test_dfd_is_test_only(tmp_path):
    touch(
        tmp_path,
        "original_sequences/actors/c23/videos/01__walking.mp4",
        "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__walking__ABC.mp4",
        "manipulated_sequences/DeepFakeDetection/masks/videos/01_02__walking__ABC.mp4",
    )
    recs = enumerate_dataset("dfd", tmp_path)
    assert {r.split for r in recs} == {"test"}
    assert sorted(r.label for r in recs) == [0, 1]
    assert [r.mask_path is not None for r in recs if r.label] == [True]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="actors"):
        enumerate_dataset("dfd", tmp_path / "empty")


# ---- Celeb-DF ---------------------------------------------------------------------------------------


def celebdf_tree(root: Path, youtube: bool = True) -> Path:
    reals = [f"Celeb-real/id{i}_000{j}.mp4" for i in range(6) for j in range(2)]
    fakes = [f"Celeb-synthesis/id{i}_id{(i + 1) % 6}_000{j}.mp4" for i in range(6) for j in range(2)]
    yt = [f"YouTube-real/0000{k}.mp4" for k in range(4)] if youtube else []
    touch(root, *reals, *fakes, *yt)
    lines = ["1 Celeb-real/id0_0000.mp4", "0 Celeb-synthesis/id0_id1_0000.mp4"]
    if youtube:
        lines.append("1 YouTube-real/00000.mp4")
    (root / "List_of_testing_videos.txt").write_text("\n".join(lines) + "\n")
    return root


def test_celebdf_inverted_labels_and_no_test_in_train(tmp_path):
    recs = enumerate_dataset("celebdf_v2", celebdf_tree(tmp_path), dataset="CDF-v2")
    ids = by_id(recs)
    # "1" in the list means REAL, "0" FAKE
    assert ids["CDF-v2/real/id0_0000"].split == "test" and ids["CDF-v2/real/id0_0000"].label == 0
    assert ids["CDF-v2/fake/id0_id1_0000"].split == "test" and ids["CDF-v2/fake/id0_id1_0000"].label == 1
    assert ids["CDF-v2/real/yt_00000"].split == "test"
    test = {r.path for r in recs if r.split == "test"}
    assert len(test) == 3 and not test & {r.path for r in recs if r.split != "test"}
    # val carved by identity: an identity's non-test videos are all in one split
    split_of: dict[str, set] = {}
    for r in recs:
        if r.split != "test" and "yt_" not in r.video_id:
            split_of.setdefault(r.path.stem.split("_")[0], set()).add(r.split)
    assert all(len(s) == 1 for s in split_of.values())
    assert {r.split for r in recs} == {"train", "val", "test"}
    # fixed seed: the same carve every time
    assert enumerate_dataset("celebdf_v2", tmp_path, dataset="CDF-v2") == recs


def test_celebdf_label_contradicting_folder_is_an_error(tmp_path):
    root = celebdf_tree(tmp_path)
    (root / "List_of_testing_videos.txt").write_text("0 Celeb-real/id0_0000.mp4\n")  # usual convention: wrong
    with pytest.raises(DatasetLayoutError, match="1 = REAL, 0 = FAKE"):
        enumerate_dataset("celebdf_v2", root)


def test_celebdf_missing_listed_video_and_list(tmp_path):
    root = celebdf_tree(tmp_path)
    (root / "Celeb-real/id0_0000.mp4").unlink()
    with pytest.raises(DatasetLayoutError, match=r"(?s)1 listed test videos.*id0_0000"):
        enumerate_dataset("celebdf_v2", root)
    (root / "List_of_testing_videos.txt").unlink()
    with pytest.raises(DatasetLayoutError, match="List_of_testing_videos.txt"):
        enumerate_dataset("celebdf_v2", root)


def test_celebdf_v1_youtube_optional_v2_required(tmp_path):
    root = celebdf_tree(tmp_path, youtube=False)
    assert all("yt_" not in r.video_id for r in enumerate_dataset("celebdf_v1", root))
    with pytest.raises(DatasetLayoutError, match="YouTube-real"):
        enumerate_dataset("celebdf_v2", root)


# ---- DFDC, DFDC-P, UADFV ----------------------------------------------------------------------------


def dfdc_tree(root: Path, test_sub: str = "test/videos") -> Path:
    meta = {}
    for i in range(6):
        meta[f"r{i}.mp4"] = {"label": "REAL", "split": "train", "original": None}
        meta[f"f{i}.mp4"] = {"label": "FAKE", "split": "train", "original": f"r{i}.mp4"}
    part = root / "dfdc_train_part_0"
    touch(part, *meta)
    (part / "metadata.json").write_text(json.dumps(meta))
    touch(root, f"{test_sub}/aaa.mp4", f"{test_sub}/bbb.mp4")
    (root / "test").mkdir(exist_ok=True)
    (root / "test/labels.csv").write_text("filename,label\naaa.mp4,1\nbbb.mp4,0\n")
    return root


@pytest.mark.parametrize("test_sub", ["test/videos", "test"])
def test_dfdc_train_val_by_original_and_test(tmp_path, test_sub):
    recs = enumerate_dataset("dfdc", dfdc_tree(tmp_path, test_sub))
    ids = by_id(recs)
    assert ids["DFDC/fake/aaa"].split == "test" and ids["DFDC/fake/aaa"].label == 1
    assert ids["DFDC/real/bbb"].label == 0
    for i in range(6):  # a fake stays with its original
        assert ids[f"DFDC/real/r{i}"].split == ids[f"DFDC/fake/f{i}"].split
    assert {r.split for r in recs} == {"train", "val", "test"}


def test_dfdc_missing_video_and_bad_csv(tmp_path):
    root = dfdc_tree(tmp_path)
    (root / "dfdc_train_part_0/f3.mp4").unlink()
    with pytest.raises(DatasetLayoutError, match=r"(?s)1 videos listed in metadata.json.*f3\.mp4"):
        enumerate_dataset("dfdc", root)
    with pytest.raises(DatasetLayoutError, match="dfdc_train_part"):
        enumerate_dataset("dfdc", tmp_path / "dfdc_train_part_0")


def test_dfdc_preview(tmp_path):
    entries = {
        "method_A/1000/a.mp4": {"label": "fake", "set": "train"},
        "method_B/1000/b.mp4": {"label": "fake", "set": "test"},
        "original_videos/1000/a.mp4": {"label": "real", "set": "train"},
        "original_videos/2000/c.mp4": {"label": "real", "set": "train"},
        "method_A/2000/c.mp4": {"label": "fake", "set": "train"},
    }
    touch(tmp_path, *entries)
    (tmp_path / "dataset.json").write_text(json.dumps(entries))
    ids = by_id(enumerate_dataset("dfdc_preview", tmp_path))
    assert ids["DFDCP/method_A/1000_a"].label == 1
    assert ids["DFDCP/method_B/1000_b"].split == "test"
    assert ids["DFDCP/real/1000_a"].label == 0
    assert ids["DFDCP/real/1000_a"].split == ids["DFDCP/method_A/1000_a"].split  # same source folder
    (tmp_path / "dataset.json").unlink()
    with pytest.raises(DatasetLayoutError, match="dataset.json"):
        enumerate_dataset("dfdc_preview", tmp_path)


def test_uadfv(tmp_path):
    touch(tmp_path, "real/0000.mp4", "fake/0000_fake.mp4")
    recs = enumerate_dataset("uadfv", tmp_path)
    assert [(r.label, r.split) for r in recs] == [(0, "test"), (1, "test")]
    with pytest.raises(DatasetLayoutError, match="fake"):
        enumerate_dataset("uadfv", (tmp_path / "fake").rename(tmp_path / "x").parent)


# ---- fake-only, generic ----------------------------------------------------------------------------


def test_fake_only_videos_and_frame_folders(tmp_path):
    root = tmp_path / "simswap"
    touch(root, "ff/frames/000_003/000.png", "ff/frames/000_003/001.png", "cdf/v1.mp4")
    touch(root, "ff/masks/000_003/000.png", "ff/landmarks/000_003/000.npy", "ff/landmarks/000_003/001.npy")
    recs = enumerate_dataset("fake_only", root, dataset="DF40-simswap")
    assert sorted(r.kind for r in recs) == ["frames", "video"]  # masks/ and landmarks/ are not videos
    (pre,) = [r for r in enumerate_dataset("fake_only", root, prealigned=True) if r.kind == "frames"]
    assert pre.prealigned and [p.name for p in pre.landmarks] == ["000.npy", "001.npy"] and pre.masks == ()
    assert all(r.label == 1 and r.method == "simswap" and r.split == "test" for r in recs)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match="no video"):
        enumerate_dataset("fake_only", tmp_path / "empty")


def test_csv_adapter(tmp_path):
    touch(tmp_path, "v/a.mp4", "v/b.avi", "img/c1.png", "img/c2.png")
    (tmp_path / "dataset.csv").write_text(
        "path,label,split,method,video\n"
        "v/a.mp4,real,train,,\nv/b.avi,1,test,swap,\nimg/c1.png,fake,val,,c\nimg/c2.png,fake,val,,c\n"
    )
    ids = by_id(enumerate_dataset("csv", tmp_path, dataset="mine"))
    assert ids["mine/real/v_a"].kind == "video" and ids["mine/real/v_a"].label == 0
    assert ids["mine/swap/v_b"].split == "test"
    c = ids["mine/fake/c"]
    assert c.kind == "frames" and [p.name for p in c.frames] == ["c1.png", "c2.png"]


@pytest.mark.parametrize(
    ("csv", "match"),
    [
        ("path,label\nv/a.mp4,0\n", r"missing column\(s\) \['split'\]"),
        ("path,label,split\nv/a.mp4,maybe,train\n", r"row 2: label 'maybe'"),
        ("path,label,split\nv/a.mp4,0,training\n", r"rows \[2\]"),
        ("path,label,split\nv/zz.mp4,0,train\n", r"(?s)1 listed paths.*zz\.mp4"),
    ],
)
def test_csv_adapter_errors_name_culprit(tmp_path, csv, match):
    touch(tmp_path, "v/a.mp4")
    (tmp_path / "data.csv").write_text(csv)
    with pytest.raises((DatasetLayoutError, ValueError), match=match):
        enumerate_dataset("csv", tmp_path / "data.csv")


def test_folder_adapter(tmp_path):
    touch(tmp_path, "train/real/a.mp4", "train/fake/DF/b.mp4", "test/fake/c.png", "test/real/d/0.png")
    ids = by_id(enumerate_dataset("folder", tmp_path, dataset="f"))
    assert ids["f/DF/train_b"].method == "DF" and ids["f/DF/train_b"].label == 1
    assert ids["f/fake/test_c"].kind == "image"
    assert ids["f/real/test_d"].kind == "frames"
    with pytest.raises(DatasetLayoutError, match=r"\{train,val,test\}"):
        enumerate_dataset("folder", tmp_path / "train" / "fake" / "DF")


def test_duplicate_video_ids_rejected(tmp_path):
    touch(tmp_path, "real/a.mp4", "fake/a.mp4")
    recs = enumerate_dataset("uadfv", tmp_path)
    with pytest.raises(ValueError, match="duplicate video_id"):
        check_unique(recs + recs[:1])


# ---- DeepfakeBench JSON ------------------------------------------------------------------------------


def dfb_json(tmp_path: Path, prefix: str = "D:\\DeepfakeBench\\datasets\\rgb") -> Path:
    """Frames on disk under tmp/rgb; the JSON lists them with a Windows prefix (as DeepfakeBench writes)."""
    touch(
        tmp_path,
        "rgb/CDF/real/frames/id0_0000/000.png",
        "rgb/CDF/real/frames/id0_0000/010.png",
        "rgb/CDF/real/landmarks/id0_0000/000.npy",
        "rgb/CDF/real/landmarks/id0_0000/010.npy",
        "rgb/CDF/fake/frames/id0_id1_0000/000.png",
    )

    def entry(label, rel, n):
        return {"label": label, "frames": [f"{prefix}\\CDF\\{rel}\\{i:03d}.png" for i in n]}

    real = entry("CelebDFv2_real", "real\\frames\\id0_0000", (0, 10))
    fake = entry("CelebDFv2_fake", "fake\\frames\\id0_id1_0000", (0,))
    data = {
        "Celeb-DF-v2": {
            # DeepfakeBench lists every Celeb-DF video in train, and the test list in test and val too
            "CelebDFv2_real": {
                "train": {"id0_0000": real},
                "val": {"id0_0000": real},
                "test": {"id0_0000": real},
            },
            "CelebDFv2_fake": {"train": {"id0_id1_0000": fake}, "test": {}},
        }
    }
    path = tmp_path / "Celeb-DF-v2.json"
    path.write_text(json.dumps(data))
    return path


def test_deepfakebench_json_remap_windows_paths_and_dedup(tmp_path):
    path = dfb_json(tmp_path)
    with pytest.warns(UserWarning, match="priority test > val > train"):
        recs = enumerate_dataset(
            "deepfakebench_json",
            path,
            remap=f"D:/DeepfakeBench/datasets/rgb={tmp_path / 'rgb'}",
            val_fraction=0,  # one training fake: nothing to carve
        )
    ids = by_id(recs)
    real = ids["Celeb-DF-v2/real/id0_0000"]
    assert real.split == "test" and real.label == 0 and real.prealigned and real.kind == "frames"
    assert [p.name for p in real.frames] == ["000.png", "010.png"] and all(p.is_file() for p in real.frames)
    assert [p.suffix for p in real.landmarks] == [".npy", ".npy"]
    # the label is mapped to the suite's method name, the raw DeepfakeBench label kept beside it
    fake = ids["Celeb-DF-v2/fake/id0_id1_0000"]
    assert fake.split == "train" and fake.label == 1 and fake.landmarks == ()
    assert (fake.method, fake.source_label) == ("fake", "CelebDFv2_fake")


def test_deepfakebench_json_missing_paths_count_examples_hint(tmp_path):
    path = dfb_json(tmp_path)
    with pytest.raises(DatasetLayoutError) as e, pytest.warns(UserWarning):
        enumerate_dataset("deepfakebench_json", path)
    msg = str(e.value)
    assert "3 listed frame paths do not exist" in msg
    assert "D:/DeepfakeBench/datasets/rgb/CDF/real/frames/id0_0000/000.png" in msg
    assert "remap=" in msg and "--remap" in msg
    # missing='skip' that skips every video is an error naming what was looked for (issue item 4; it used
    # to return an empty list, which wrote an empty manifest without a word)
    with pytest.raises(DatasetLayoutError) as e, pytest.warns(UserWarning):
        enumerate_dataset("deepfakebench_json", path, missing="skip")
    msg = str(e.value)
    assert "no usable video: all 2 listed video(s) were skipped (missing='skip')" in msg
    assert f"resolved against base {tmp_path}" in msg and "CDF/real/frames/id0_0000/000.png" in msg
    assert "remap=" in msg


def test_deepfakebench_json_skip_warning_counts_videos_not_folders(tmp_path):
    """Two of three listed videos lack frames: the warning says 2 of 3 VIDEOS (the three share two folders)."""
    path = dfb_json(tmp_path)
    data = json.loads(path.read_text())
    extra = {
        "label": "CelebDFv2_fake",
        "frames": ["D:\\DeepfakeBench\\datasets\\rgb\\CDF\\fake\\frames\\id1_id0_0000\\000.png"],
    }
    data["Celeb-DF-v2"]["CelebDFv2_fake"]["train"]["id1_id0_0000"] = extra
    path.write_text(json.dumps(data))
    (tmp_path / "rgb/CDF/fake/frames/id0_id1_0000/000.png").unlink()
    remap = f"D:/DeepfakeBench/datasets/rgb={tmp_path / 'rgb'}"
    with pytest.warns(UserWarning, match=r"2 of 3 listed video\(s\) skipped \(missing='skip'\); 1 kept"):
        recs = enumerate_dataset("deepfakebench_json", path, remap=remap, missing="skip", val_fraction=0)
    assert [r.video_id for r in recs] == ["Celeb-DF-v2/real/id0_0000"]


def test_deepfakebench_json_ff_compression_level(tmp_path):
    touch(tmp_path, "FF/frames/000/000.png")
    v = {"000": {"label": "FF-real", "frames": ["FF/frames/000/000.png"]}}
    (tmp_path / "FF-DF.json").write_text(json.dumps({"FF-DF": {"FF-real": {"train": {"c23": v, "c40": {}}}}}))
    (rec,) = enumerate_dataset("deepfakebench_json", tmp_path, dataset="FFdfb")
    assert (rec.video_id, rec.compression, rec.split) == ("FFdfb/real/000", "c23", "train")
    with pytest.raises(DatasetLayoutError, match="not 'raw'"):
        enumerate_dataset("deepfakebench_json", tmp_path, compression="raw")

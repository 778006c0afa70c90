"""Layouts read as their owners release them: DF40, Celeb-DF++, Deepfake-Eval-2024; and the adapter
behaviour the released files of FF++, Celeb-DF and DFDC called for (placements, partial downloads, the
identity-clean Celeb-DF val, the splits a run needs).

Each fixture's docstring names the owner file it follows.
"""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import pytest

from datamodules.datasets import DatasetLayoutError, enumerate_dataset
from datamodules.datasets.base import MissingSplitError, PartialDatasetWarning, require_splits, split_counts
from datamodules.datasets.celebdf import identities
from tests import dataset_fixtures as fx


def by_id(records) -> dict:
    return {r.video_id: r for r in records}


# ---- DF40 -----------------------------------------------------------------------------------------------


def df40_release(base: Path) -> Path:
    """``deepfake_detection_datasets/{DF40,DF40_train}`` as YZY-stack/DF40's README "Folder Structure"
    shows it (commit ce80816): known methods as ``<method>/{ff,cdf}``, the self-contained ones (heygen,
    MidJourney, ...) as ``<method>/{fake,real}``. Inside, DeepfakeBench's crops ``frames/<video>/<n>.png`` +
    ``landmarks/<video>/<n>.npy`` (the preprocessing DF40 ran, DeepfakeBench_DF40/preprocessing); for sets
    DF40 did not preprocess ("For EFS and FE methods, the original data is the processed data"), image
    folders without a ``frames/`` level, or loose images."""
    df40 = base / "DF40"
    fx.dfb_frames(df40 / "simswap/ff", "000_001", ids=(0, 10))
    fx.dfb_frames(df40 / "simswap/cdf", "id0_id1_0000", ids=(0,))
    fx.touch(df40, "StyleGAN2/ff/000/0.png", "StyleGAN2/ff/000/1.png")  # generated images, no frames/
    fx.dfb_frames(df40 / "heygen/fake", "h001", ids=(0, 5))
    fx.touch(df40, "heygen/real/r001/000.png", "heygen/real/r001/005.png")
    fx.touch(df40, "MidJourney/fake/mj_1.png", "MidJourney/fake/mj_2.png", "MidJourney/real/ffhq_1.png")
    train = base / "DF40_train"
    for stem in ("000_001", "004_005"):
        fx.dfb_frames(train / "simswap/ff", stem, ids=(0, 3))
    return base


def test_df40_release_reads_own_reals_as_reals(tmp_path):
    recs = by_id(enumerate_dataset("df40", df40_release(tmp_path), dataset="DF40"))
    heygen_real = recs["DF40/real/heygen_real_r001"]
    assert (heygen_real.label, heygen_real.method, heygen_real.source_label) == (0, "real", "heygen/real")
    assert recs["DF40/heygen/fake_h001"].label == 1
    mj = [r for r in recs.values() if r.source_label.startswith("MidJourney")]
    assert sorted((r.label, r.video_id) for r in mj) == [
        (0, "DF40/real/MidJourney_real_ffhq_1"),
        (1, "DF40/MidJourney/fake_mj_1"),
        (1, "DF40/MidJourney/fake_mj_2"),
    ]
    assert all(len(r.frames) == 1 for r in mj)  # loose images: one-frame videos
    sim = recs["DF40/simswap/ff_000_001"]
    assert (sim.label, sim.method, sim.source_label, sim.split) == (1, "simswap", "simswap/ff", "test")
    assert sim.prealigned and [p.name for p in sim.landmarks] == ["000.npy", "010.npy"]
    assert recs["DF40/simswap/cdf_id0_id1_0000"].source_label == "simswap/cdf"
    assert recs["DF40/StyleGAN2/ff_000"].landmarks == () and len(recs["DF40/StyleGAN2/ff_000"].frames) == 2
    assert {r.split for r in recs.values() if "DF40_train" in str(r.path)} == {"train"}
    assert {r.split for r in recs.values() if "DF40_train" not in str(r.path)} == {"test"}


def test_df40_images_in_a_class_folder_or_its_namesake_are_single_images(tmp_path):
    """Generated-image sets may keep their images directly in ``fake/`` or one level down in a folder of
    the same name (``fake/fake``): each image is its own one-frame record, not one long video."""
    fx.touch(tmp_path / "DF40/stargan", "fake/fake/a.png", "fake/fake/b.png", "real/real/c.png", "real/d.png")
    recs = enumerate_dataset("df40", tmp_path / "DF40")
    assert sorted((r.label, len(r.frames)) for r in recs) == [(0, 1), (0, 1), (1, 1), (1, 1)]


def test_df40_roots_domains_and_methods(tmp_path):
    base = df40_release(tmp_path)
    one = enumerate_dataset("df40", base / "DF40/simswap")
    assert {(r.method, r.source_label) for r in one} == {
        ("simswap", "simswap/ff"),
        ("simswap", "simswap/cdf"),
    }
    cdf = enumerate_dataset("df40", base / "DF40", domains=["cdf"])
    assert [r.source_label for r in cdf] == ["simswap/cdf"]
    own = enumerate_dataset("df40", base / "DF40", domains="own", methods=["heygen"])
    assert sorted(r.label for r in own) == [0, 1]
    with pytest.raises(
        DatasetLayoutError, match=r"no method folder \['fsgan'\].*found \['MidJourney', 'StyleGAN2'"
    ):
        enumerate_dataset("df40", base / "DF40", methods=["fsgan"])
    with pytest.raises(DatasetLayoutError, match=r"neither the DF40 .*<method>/\{ff,cdf\}"):
        enumerate_dataset("df40", base / "DF40/simswap/ff/frames")


def test_df40_training_set_with_ffpp_reals_follows_ffpp_pairs(tmp_path):
    """DF40 ships no reals for its ff sets; ``ffpp_root`` adds FF++'s (official splits) and puts a
    DF40_train fake named after an FF++ pair into that pair's split."""
    base = df40_release(tmp_path / "dfdd")
    ff = fx.ffpp_download(tmp_path / "FaceForensics++")
    recs = by_id(enumerate_dataset("df40", base / "DF40_train", dataset="D", ffpp_root=ff))
    assert (
        recs["D/simswap/train_ff_000_001"].split == "train"
        and recs["D/simswap/train_ff_004_005"].split == "val"
    )
    reals = [r for r in recs.values() if r.label == 0]
    assert len(reals) == 8 and {r.source_label for r in reals} == {"ffpp reals"}
    assert {r.split for r in reals} == {"train", "val", "test"}
    require_splits(recs.values(), ("train", "val"), "D", both_labels=True)


def test_fake_only_refuses_a_root_holding_reals_and_names_df40_methods(tmp_path):
    base = df40_release(tmp_path)
    for root in (base / "DF40/heygen", base / "DF40"):
        with pytest.raises(
            DatasetLayoutError, match=r"holds a real/ folder .*layout 'df40'.*layout 'folder'"
        ):
            enumerate_dataset("fake_only", root)
    recs = enumerate_dataset("fake_only", base / "DF40/simswap/ff", prealigned=True)
    assert {r.method for r in recs} == {"simswap"}


# ---- Celeb-DF++ -----------------------------------------------------------------------------------------

CDFPP_METHODS = {
    "FaceSwap": ("Celeb-DF", "BlendFace"),
    "FaceReenact": ("LivePortrait",),
    "TalkingFace": ("SadTalker",),
}


def celebdf_pp_release(root: Path, digits: str = "celebdf", scenarios=tuple(CDFPP_METHODS)) -> Path:
    """OUC-VAS/Celeb-DF-PP README "Dataset Structure" (commit 8564a64): ``Celeb-real``, ``YouTube-real``,
    ``Celeb-synthesis/<Scenario>/<Method>/`` and ``List_of_testing_videos.txt``, whose test reals are
    Celeb-DF's and whose test fakes are drawn per method ("Training and Testing Split"). Lines follow
    Celeb-DF's list format ``<digit> <relative path>``; ``digits`` picks the digit convention."""
    n = 6
    fx.touch(root, *[f"Celeb-real/id{i}_{k:04d}.mp4" for i in range(n) for k in range(2)])
    fx.touch(root, *[f"YouTube-real/{k:05d}.mp4" for k in range(3)])
    fakes = []
    for scen in scenarios:
        for m in CDFPP_METHODS[scen]:
            fakes += [
                f"Celeb-synthesis/{scen}/{m}/id{i}_id{(i + 1) % n}_{k:04d}.mp4"
                for i in range(n)
                for k in range(2)
            ]
    fx.touch(root, *fakes)
    real_d, fake_d = ("1", "0") if digits == "celebdf" else ("0", "1")
    lines = [f"{real_d} Celeb-real/id0_0000.mp4", f"{real_d} YouTube-real/00000.mp4"]
    lines += [f"{fake_d} {f}" for f in fakes if f.endswith("id0_id1_0000.mp4")]
    (root / "List_of_testing_videos.txt").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.parametrize("digits", ["celebdf", "reverse"])
def test_celebdf_pp_methods_shared_test_reals_and_digit_convention(tmp_path, digits):
    recs = enumerate_dataset("celebdfpp", celebdf_pp_release(tmp_path, digits), dataset="P")
    test = [r for r in recs if r.split == "test"]
    assert sorted(r.video_id for r in test if r.label == 0) == ["P/real/id0_0000", "P/real/yt_00000"]
    assert sorted(r.source_label for r in test if r.label) == [
        "FaceReenact/LivePortrait", "FaceSwap/BlendFace", "FaceSwap/Celeb-DF", "TalkingFace/SadTalker"]  # fmt: skip
    assert {r.method for r in recs if r.label} == {"Celeb-DF", "BlendFace", "LivePortrait", "SadTalker"}
    train_ids = {i for r in recs if r.split == "train" for i in identities(r.source_label, r.path.stem)}
    val_ids = {i for r in recs if r.split == "val" for i in identities(r.source_label, r.path.stem)}
    assert val_ids and not val_ids & train_ids


def test_celebdf_pp_contradicting_digits_and_partial_download(tmp_path):
    root = celebdf_pp_release(tmp_path / "a")
    text = (root / "List_of_testing_videos.txt").read_text().replace("1 YouTube", "0 YouTube")
    (root / "List_of_testing_videos.txt").write_text(text)
    with pytest.raises(DatasetLayoutError, match=r"contradict the folders under both conventions"):
        enumerate_dataset("celebdfpp", root)
    part = celebdf_pp_release(tmp_path / "b", scenarios=("FaceSwap",))
    with pytest.warns(PartialDatasetWarning, match=r"found only part.*test 4 .*not found: .*FaceReenact"):
        enumerate_dataset("celebdfpp", part)


# ---- Deepfake-Eval-2024 ---------------------------------------------------------------------------------


def dfe_release(root: Path) -> Path:
    """Hugging Face ``nuriachandra/Deepfake-Eval-2024``: ``video-data/``, ``image-data/`` and the metadata
    CSVs ``video-metadata-publish-with-links.csv`` / ``image-metadata-publish.csv`` (file names as the
    release lists them); the columns the layout reads are ``Filename``, ``Video Ground Truth`` or
    ``Ground Truth`` (Real/Fake) and ``Finetuning Set`` (Train/Test). The image CSV carries a row whose
    file name a spreadsheet mangled to ``#NAME?``, as public loaders of the release filter it out."""
    videos = [(f"v{i:02d}.mp4", "Fake" if i % 2 else "Real", "Train" if i < 8 else "Test") for i in range(10)]
    fx.touch(root / "video-data", *[v for v, _, _ in videos])
    with (root / "video-metadata-publish-with-links.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Filename", "Video Ground Truth", "Finetuning Set"])
        w.writerows(videos)
    images = [("i1.jpg", "Fake", "Test"), ("i2.webp", "Real", "Test"), ("#NAME?", "Fake", "Train")]
    fx.touch(root / "image-data", "i1.jpg", "i2.webp")
    with (root / "image-metadata-publish.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Filename", "Ground Truth", "Finetuning Set"])
        w.writerows(images)
    return root


def test_deepfake_eval_2024_videos_images_and_finetuning_split(tmp_path):
    with pytest.warns(UserWarning, match=r"1 row\(s\) left out .*#NAME\?"):
        recs = by_id(enumerate_dataset("deepfake_eval_2024", dfe_release(tmp_path), dataset="E"))
    assert recs["E/fake/image_i1"].kind == "image" and recs["E/real/image_i2"].label == 0
    assert recs["E/fake/video_v01"].kind == "video" and recs["E/fake/video_v09"].split == "test"
    assert recs["E/fake/image_i1"].source_label == "image/Fake"
    counts = split_counts(recs.values())
    assert sum(counts["test"].values()) == 4 and sum(counts["val"].values()) == 1
    assert sum(counts["train"].values()) == 7


def test_deepfake_eval_2024_errors_name_the_culprit(tmp_path):
    root = dfe_release(tmp_path)
    text = (
        (root / "video-metadata-publish-with-links.csv").read_text().replace("v03.mp4,Fake", "v03.mp4,Maybe")
    )
    (root / "video-metadata-publish-with-links.csv").write_text(text)
    with pytest.raises(DatasetLayoutError, match=r"video-metadata-publish-with-links\.csv row 5: .*'Maybe'"):
        enumerate_dataset("deepfake_eval_2024", root, modalities="video")
    (root / "image-metadata-publish.csv").write_text("Filename,Label\ni1.jpg,Fake\n")
    with pytest.raises(
        DatasetLayoutError, match=r"missing column\(s\) \['Finetuning Set', 'Video Ground Truth'\]"
    ):
        enumerate_dataset("deepfake_eval_2024", root, modalities=["image"])


# ---- DFDC: training parts where the public instructions put them; the official validation set ----------


@pytest.mark.parametrize("placement", [".", "train", "dfdc_train_full"])
def test_dfdc_training_parts_found_in_every_placement(tmp_path, placement):
    root = fx.dfdc_download(tmp_path, placement)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PartialDatasetWarning)
        recs = enumerate_dataset("dfdc", root)
    assert {r.split for r in recs} == {"train", "val", "test"} and len(recs) == 6 * 3 + 4


def test_dfdc_test_only_download_warns_with_counts(tmp_path):
    root = fx.dfdc_download(tmp_path, "somewhere_else")
    with pytest.warns(
        PartialDatasetWarning, match=r"train 0, val 0, test 4 \(fake 2, real 2\); not found: training parts"
    ):
        recs = enumerate_dataset("dfdc", root)
    with pytest.raises(
        MissingSplitError, match=r"'train' is empty; 'val' is empty; found: train 0, val 0, test 4"
    ):
        require_splits(recs, ("train", "val"), "DFDC")


def test_dfdc_official_validation_set(tmp_path):
    """The official 4,000-video validation set ships its own labels.csv (``filename,label``, 1 = fake;
    names like ``4000.mp4`` in public copies)."""
    root = fx.dfdc_download(tmp_path, "train")
    with pytest.raises(DatasetLayoutError, match=r"val_source='official' needs .*validation/labels\.csv"):
        enumerate_dataset("dfdc", root, val_source="official")
    fx.touch(root / "validation/videos", "4000.mp4", "4001.mp4")
    (root / "validation/labels.csv").write_text("filename,label\n4000.mp4,1\n4001.mp4,0\n")
    recs = by_id(enumerate_dataset("dfdc", root, val_source="official"))
    assert sorted(v for v, r in recs.items() if r.split == "val") == ["DFDC/fake/4000", "DFDC/real/4001"]
    assert sum(r.split == "train" for r in recs.values()) == 18


# ---- FF++: where the split files come from; partial downloads -------------------------------------------


def test_ffpp_split_files_in_deepfakebench_placement(tmp_path):
    """DeepfakeBench's rearrange.py reads ``FaceForensics++/{train,val,test}.json`` (the FF++ root)."""
    recs = enumerate_dataset("ffpp", fx.ffpp_download(tmp_path, splits="root"))
    assert {r.split for r in recs} == {"train", "val", "test"}


def test_ffpp_without_split_files_says_where_they_come_from(tmp_path):
    root = fx.ffpp_download(tmp_path, splits="")
    with pytest.raises(DatasetLayoutError) as e:
        enumerate_dataset("ffpp", root)
    msg = str(e.value)
    assert "github.com/ondyari/FaceForensics" in msg and "dataset/splits/" in msg and "split_dir" in msg
    assert "DeepfakeBench" in msg and str(root / "splits") in msg


def test_ffpp_partial_download_counts_what_was_found(tmp_path):
    import shutil

    root = fx.ffpp_download(tmp_path / "a")
    shutil.rmtree(root / "original_sequences")
    with pytest.warns(PartialDatasetWarning, match=r"train 4 \(Deepfakes 4\).*not found: the reals"):
        recs = enumerate_dataset("ffpp", root)
    with pytest.raises(MissingSplitError, match=r"'train' has 0 real and 4 fake videos"):
        require_splits(recs, ["train"], "FF++", both_labels=True)
    root = fx.ffpp_download(tmp_path / "b")
    (root / "manipulated_sequences/Deepfakes/c23/videos/000_001.mp4").unlink()
    (root / "original_sequences/youtube/c23/videos/006.mp4").unlink()
    with pytest.warns(
        PartialDatasetWarning, match=r"official splits list \(Deepfakes train 3 of 4, real test 1 of 2\)"
    ):
        enumerate_dataset("ffpp", root)


# ---- Celeb-DF v2: no identity of a val video in train ---------------------------------------------------


def test_celebdf_val_shares_no_identity_with_train(tmp_path):
    root = fx.celebdf_download(tmp_path, n_ids=10)
    for seed in range(5):
        recs = enumerate_dataset("celebdf_v2", root, seed=seed, val_fraction=0.3)
        ids = {s: set() for s in ("train", "val", "test")}
        for r in recs:
            ids[r.split] |= identities(r.source_label, r.path.stem)
        assert ids["val"] and not ids["val"] & ids["train"], seed
        listed = {
            line.split(" ")[1] for line in (root / "List_of_testing_videos.txt").read_text().splitlines()
        }
        assert {f"{r.path.parent.name}/{r.path.name}" for r in recs if r.split == "test"} == listed


# ---- require_splits on a manifest -----------------------------------------------------------------------


def test_require_splits_reads_a_manifest():
    import pandas as pd

    df = pd.DataFrame({"split": ["train"] * 3 + ["test"], "method": ["real", "real", "fake", "fake"],
                       "video_id": ["a", "a", "b", "c"]})  # fmt: skip
    assert split_counts(df) == {"train": {"real": 1, "fake": 1}, "test": {"fake": 1}}
    require_splits(df, ["train"], "M", both_labels=True)
    with pytest.raises(
        MissingSplitError, match=r"dataset 'M': 'val' is empty; found: train 2 \(fake 1, real 1\)"
    ):
        require_splits(df, ["train", "val"], "M")


# ---- preprocessing runs end to end on each new layout ---------------------------------------------------


def _crop_tree(root: Path) -> None:
    """A DF40 tree whose crops are a real aligned face (tests/real_faces.py), with DeepfakeBench's 81-point
    landmarks beside ``frames/`` for the face-swap set."""
    import cv2
    import numpy as np

    from tests.real_faces import aligned_face

    crop, lm68 = aligned_face("astronaut")
    bgr = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
    lm81 = np.zeros((81, 2), np.float32)
    lm81[:68] = lm68
    for rel in ("DF40/simswap/ff/frames/000_001/000.png", "DF40/simswap/ff/frames/000_001/012.png",
                "DF40/heygen/real/r1/000.png", "DF40/MidJourney/fake/mj_1.png"):  # fmt: skip
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), bgr)
    for i in (0, 12):
        (root / "DF40/simswap/ff/landmarks/000_001").mkdir(parents=True, exist_ok=True)
        np.save(root / f"DF40/simswap/ff/landmarks/000_001/{i:03d}.npy", lm81)


def _faces_for(layout: str, root: Path) -> None:
    import cv2

    from tests.facevideos import face_video, photo

    if layout == "df40":
        _crop_tree(root)
    elif layout == "celebdfpp":
        for rel in ("Celeb-real/id0_0000.mp4", "YouTube-real/00000.mp4",
                    "Celeb-synthesis/FaceSwap/BlendFace/id0_id1_0000.mp4",
                    "Celeb-synthesis/TalkingFace/SadTalker/id0_id1_0000.mp4"):  # fmt: skip
            face_video(root / rel, "grace_hopper" if "real" in rel else "astronaut", 2, 128)
        (root / "List_of_testing_videos.txt").write_text(
            "1 Celeb-real/id0_0000.mp4\n1 YouTube-real/00000.mp4\n"
            "0 Celeb-synthesis/FaceSwap/BlendFace/id0_id1_0000.mp4\n0 Celeb-synthesis/TalkingFace/SadTalker/id0_id1_0000.mp4\n"
        )
        (root / "Celeb-synthesis/FaceReenact").mkdir()
    else:
        face_video(root / "video-data/clip.mp4", "astronaut", 2, 128)
        (root / "image-data").mkdir()
        cv2.imwrite(
            str(root / "image-data/pic.jpg"), cv2.cvtColor(photo("grace_hopper", 160), cv2.COLOR_RGB2BGR)
        )
        (root / "video-metadata-publish-with-links.csv").write_text(
            "Filename,Video Ground Truth,Finetuning Set\nclip.mp4,Fake,Test\n"
        )
        (root / "image-metadata-publish.csv").write_text(
            "Filename,Ground Truth,Finetuning Set\npic.jpg,Real,Test\n"
        )


@pytest.mark.parametrize("layout", ["df40", "celebdfpp", "deepfake_eval_2024"])
def test_new_layouts_preprocess_end_to_end(tmp_path, layout):
    import pandas as pd

    from datamodules.preprocess import preprocess_dataset

    _faces_for(layout, tmp_path / "data")
    out = preprocess_dataset(
        "N", layout, tmp_path / "data", tmp_path / "out", frames=2, size=128, progress=False
    )
    df = pd.read_parquet(out)
    assert (df.status == "ok").all(), df[["video_id", "status", "reason"]].to_string()
    assert (df.split == "test").all() and set(df.label) == {0, 1}
    assert (df.source_label != "").all()
    for rel in df.crop_path:
        assert (out.parent / rel).is_file()
    if layout == "df40":  # DF40's crops and landmarks were reused, not detected again
        sim = df[df.video_id == "N/simswap/ff_000_001"]
        assert sim.frame_index.tolist() == [0, 12] and set(sim.source_label) == {"simswap/ff"}
    if layout == "deepfake_eval_2024":
        assert sorted(df.groupby("video_id").size().items()) == [
            ("N/fake/video_clip", 2),
            ("N/real/image_pic", 1),
        ]
    json.dumps(df.to_dict())  # the manifest is plain data

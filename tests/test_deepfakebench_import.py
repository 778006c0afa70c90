"""The ``deepfakebench_json`` importer on JSONs shaped exactly as DeepfakeBench writes them.

Structures come from ``SCLBD/DeepfakeBench`` commit 8a4a7bf: ``preprocessing/rearrange.py`` (the JSON of
each family, see ``tests/dataset_fixtures.py``), ``training/dataset/abstract_dataset.py`` (frames sorted by
``int(<file name>.split('.')[0])``; landmarks/masks found by replacing ``frames`` in the frame path) and
``training/config/train_config.yaml`` (``label_dict``, the full list of label names).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from datamodules.datasets import DatasetLayoutError, enumerate_dataset
from datamodules.datasets.deepfakebench import parse_remap, resolve
from datamodules.datasets.deepfakebench_labels import LABELS, canonical
from tests import dataset_fixtures as fx

# ---- DFDC.json's one-video "val" entry -----------------------------------------------------------------


def test_released_dfdc_json_val_entry_is_one_video_not_a_crash(tmp_path):
    """The released DFDC.json ("Only Test Data"): rearrange.py's test loop leaves ``val`` = ONE video dict
    ``{"label": "DFDC_Fake", "frames": [...]}`` per label. It is read as that video (named by its frames'
    folder), which is also a test video, so it stays in test."""
    root = fx.dfdc_download(tmp_path / "DFDC")
    path = fx.dfdc_deepfakebench(root, tmp_path, with_train=False)
    val = json.loads(path.read_text())["DFDC"]["DFDC_Fake"]["val"]
    assert set(val) == {"label", "frames"} and val["label"] == "DFDC_Fake"  # the shape that crashed
    recs = enumerate_dataset("deepfakebench_json", path, dataset="DFDC")
    assert sorted((r.video_id, r.split, r.label) for r in recs) == [
        ("DFDC/fake/aamrozxzsq", "test", 1),
        ("DFDC/fake/aaoqanfmgd", "test", 1),
        ("DFDC/real/aalscayrfi", "test", 0),
        ("DFDC/real/abajdarwnl", "test", 0),
    ]


def test_dfdc_json_with_train_val_dict_mixing_one_video_and_videos(tmp_path):
    """With training parts, the train loop adds ``{video: {...}}`` entries to the one-video ``val`` dict:
    both kinds are read, and rearrange.py's val (a copy of train) is replaced by the carve."""
    root = fx.dfdc_download(tmp_path / "DFDC")
    path = fx.dfdc_deepfakebench(root, tmp_path)
    val = json.loads(path.read_text())["DFDC"]["DFDC_Real"]["val"]
    assert {"label", "frames"} < set(val) and "real00000a" in val
    recs = enumerate_dataset("deepfakebench_json", path, dataset="DFDC")
    assert {r.split for r in recs} == {"train", "val", "test"}
    assert len(recs) == 6 * 3 + 4  # every video once


# ---- malformed JSON: a DatasetLayoutError naming file, key path and expectation, never a crash ----------


def _valid() -> dict:
    v = {"label": "UADFV_Fake", "frames": ["UADFV/fake/frames/0000_fake/000.png"]}
    return {"UADFV": {"UADFV_Fake": {"test": {"0000_fake": v}}}}


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([1, 2], r"\(top level\): expected \{\"<Dataset>\""),
        ({"UADFV": []}, r"UADFV: expected \{\"<label>\""),
        ({"UADFV": {"UADFV_Fake": "x"}}, r"UADFV/UADFV_Fake: expected \{\"train\"\|\"val\"\|\"test\""),
        ({"UADFV": {"UADFV_Fake": {"dev": {}}}}, r"UADFV/UADFV_Fake: unknown split 'dev'"),
        ({"UADFV": {"UADFV_Fake": {"test": ["a"]}}}, r"UADFV/UADFV_Fake/test: expected \{\"<video>\""),
        ({"UADFV": {"UADFV_Fake": {"test": {"v": "x"}}}}, r"UADFV/UADFV_Fake/test/v: expected \{\"label\""),
        ({"UADFV": {"UADFV_Fake": {"test": {"v": {"frames": "a.png"}}}}}, r"test/v/frames: expected a \"frames\" list"),
        ({"UADFV": {"UADFV_Fake": {"test": {"v": {"frames": [3]}}}}}, r"test/v/frames: expected a \"frames\" list"),
        ({"UADFV": {"UADFV_Fake": {"test": {"v": {"label": "x"}}}}}, r"test/v: expected a \"frames\" list"),
        ({"UADFV": {"UADFV_Fake": {"test": {"v": {"frames": ["a/b.png"], "label": 7}}}}}, r"test/v/label: expected a label name"),
        ({"UADFV": {"UADFV_Fake": {"test": {"c23": []}}}}, r"test/c23: expected \{\"<video>\""),
        ({"UADFV": {"UADFV_Fake": {"test": {"label": "x", "frames": []}}}}, r"test/frames: expected frame paths inside a folder"),
        ({"A": {}, "B": {}}, r"holds datasets \['A', 'B'\]; choose one with dataset_key"),
    ],
)  # fmt: skip
def test_malformed_shapes_name_the_key_path(tmp_path, data, match):
    (tmp_path / "X.json").write_text(json.dumps(data))
    with pytest.raises(DatasetLayoutError, match=r"X\.json: .*" + match if "holds" not in match else match):
        enumerate_dataset("deepfakebench_json", tmp_path / "X.json")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
_PATHS = [(), ("UADFV",), ("UADFV", "UADFV_Fake"), ("UADFV", "UADFV_Fake", "test"),
          ("UADFV", "UADFV_Fake", "test", "0000_fake"), ("UADFV", "UADFV_Fake", "test", "0000_fake", "frames"),
          ("UADFV", "UADFV_Fake", "test", "0000_fake", "label")]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    where=st.sampled_from(_PATHS), value=_JSON, extra=st.dictionaries(st.text(max_size=5), _JSON, max_size=2)
)
def test_no_json_shape_crashes_the_importer(tmp_path, where, value, extra):
    """Any value at any level of a valid file (or extra keys beside a level) gives records or a
    DatasetLayoutError, never another exception."""
    data = _valid()
    node = data
    for k in where[:-1]:
        node = node[k]
    if where:
        node[where[-1]] = value
        if isinstance(node, dict):
            node.update(extra)
    else:
        data = value
    (tmp_path / "F.json").write_text(json.dumps(data))
    try:
        recs = enumerate_dataset("deepfakebench_json", tmp_path / "F.json", missing="skip")
    except DatasetLayoutError as e:
        assert "F.json" in str(e), e  # the message names the file
    else:
        assert all(r.kind == "frames" and r.frames for r in recs)


# ---- frames in DeepfakeBench's order --------------------------------------------------------------------


@pytest.mark.parametrize("ids", [(141, 158, 66, 0, 7), (0, 44, 88, 1019, 132)])
def test_frames_sorted_by_number_like_deepfakebench(tmp_path, ids):
    frames = [f"UADFV/real/frames/0000/{i:03d}.png" for i in ids]  # directory-scan / string order
    fx.touch(tmp_path, *frames)
    v = {"label": "UADFV_Real", "frames": frames}
    (tmp_path / "UADFV.json").write_text(json.dumps({"UADFV": {"UADFV_Real": {"test": {"0000": v}}}}))
    (rec,) = enumerate_dataset("deepfakebench_json", tmp_path / "UADFV.json")
    # abstract_dataset.py: sorted(frame_paths, key=lambda x: int(x.split('/')[-1].split('.')[0]))
    expected = sorted(frames, key=lambda x: int(x.split("/")[-1].split(".")[0]))
    assert [str(p.relative_to(tmp_path)) for p in rec.frames] == expected


# ---- remap ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remap", "path", "expected"),
    [
        ("D:/dfb/rgb/=/data/rgb", "D:\\dfb\\rgb\\CDF\\a.png", "/data/rgb/CDF/a.png"),  # OLD ends with /
        ("D:\\dfb\\rgb\\=/data/rgb/", "D:\\dfb\\rgb\\CDF\\a.png", "/data/rgb/CDF/a.png"),
        ("t:/dfb=/data", "T:\\dfb\\CDF\\a.png", "/data/CDF/a.png"),  # lower-case drive letter
        ("T:/DFB=/data", "t:/dfb/CDF/a.png", "/data/CDF/a.png"),  # Windows paths ignore case
        ("/old/root/=/new", "/old/root/x/a.png", "/new/x/a.png"),
        ("/old/root=/new", "/old/rootless/a.png", "/old/rootless/a.png"),  # whole components only
        ("/old=/new", "/Old/a.png", "/Old/a.png"),  # POSIX paths keep case
        ("D:/x=/n", "D:\\\\x\\\\a.png", "/n/a.png"),  # doubled separators
    ],
)
def test_remap_normalises_both_sides(remap, path, expected):
    assert str(resolve(path, parse_remap(remap), Path("/base"))) == expected


def test_remap_rejects_empty_sides():
    with pytest.raises(ValueError, match="must be non-empty"):
        parse_remap("=/data")
    with pytest.raises(ValueError, match="OLD_PREFIX=NEW_PREFIX"):
        parse_remap("/no-equals-sign")


# ---- method names ----------------------------------------------------------------------------------------

# the suite's name for the videos each video layout reads, per DeepfakeBench label
VIDEO_LAYOUT_NAMES = {
    "FF-real": "real", "FF-DF": "Deepfakes", "FF-F2F": "Face2Face", "FF-FS": "FaceSwap", "FF-NT": "NeuralTextures",
    "FF-FH": "FaceShifter", "FF-SH": "FaceShifter", "DFD_real": "real", "DFD_fake": "DeepFakeDetection",
    "CelebDFv1_real": "real", "CelebDFv1_fake": "fake", "CelebDFv2_real": "real", "CelebDFv2_fake": "fake",
    "DFDCP_Real": "real", "DFDCP_FakeA": "method_A", "DFDCP_FakeB": "method_B", "DFDC_Real": "real",
    "DFDC_Fake": "fake", "DF_real": "real", "DF_fake": "fake", "UADFV_Real": "real", "UADFV_Fake": "fake",
    "roop_Real": "real", "roop_Fake": "roop",
}  # fmt: skip
# training/config/train_config.yaml label_dict at SCLBD/DeepfakeBench@8a4a7bf (label -> 0 real / 1 fake)
LABEL_DICT = yaml.safe_load(
    """
  DFD_fake: 1
  DFD_real: 0
  FF-SH: 1
  FF-F2F: 1
  FF-DF: 1
  FF-FS: 1
  FF-NT: 1
  FF-FH: 1
  FF-real: 0
  CelebDFv1_real: 0
  CelebDFv1_fake: 1
  CelebDFv2_real: 0
  CelebDFv2_fake: 1
  DFDCP_Real: 0
  DFDCP_FakeA: 1
  DFDCP_FakeB: 1
  DFDC_Fake: 1
  DFDC_Real: 0
  DF_fake: 1
  DF_real: 0
  UADFV_Fake: 1
  UADFV_Real: 0
  roop_Real: 0
  roop_Fake: 1
"""
)


def test_every_label_dict_label_has_a_canonical_name():
    assert set(LABELS) == set(LABEL_DICT) == set(VIDEO_LAYOUT_NAMES)
    for label, target in LABEL_DICT.items():
        method = canonical(label)[1]
        assert method == VIDEO_LAYOUT_NAMES[label]
        assert (method == "real") == (target == 0), label


def test_df40_labels_name_df40_method_folders():
    """DF40's JSONs (YZY-stack/DF40 DeepfakeBench_DF40/training/config/train_config.yaml) use
    ``<method>_Fake``; the frame path names DF40's method folder, which the ``df40`` layout uses too."""
    assert canonical("whichisreal_Fake", "/d/DF40/whichfaceisreal/fake/x/0.png") == (
        "df40",
        "whichfaceisreal",
    )
    assert canonical("simswap_Fake", "rel/DF40_train/simswap/ff/frames/000_003/000.png") == (
        "df40",
        "simswap",
    )
    assert canonical("FSAll_Fake")[1] == "FSAll" and canonical("FSAll_Real")[1] == "real"


# ---- the same dataset through its video layout and through deepfakebench_json ---------------------------


def _view(records) -> dict[str, tuple[int, str, str]]:
    return {r.video_id: (r.label, r.split, r.method) for r in records}


def test_ffpp_same_through_both_layouts(tmp_path):
    """FF-DF.json (rearrange.py, ``dataset_name == 'FaceForensics++'``: one JSON per method holding
    FF-real, Windows paths) against the ``ffpp`` layout restricted to Deepfakes: equal."""
    rgb = tmp_path / "rgb"
    video = enumerate_dataset(
        "ffpp", fx.ffpp_download(rgb / "FaceForensics++"), dataset="X", methods=["Deepfakes"]
    )
    path = fx.ffpp_deepfakebench(rgb, tmp_path)
    imported = enumerate_dataset(
        "deepfakebench_json", path, dataset="X", remap=f"D:/DeepfakeBench/datasets/rgb={rgb}"
    )
    assert _view(imported) == _view(video)
    assert {r.source_label for r in imported} == {"FF-real", "FF-DF"}
    fake = next(r for r in imported if r.label)
    assert len(fake.masks) == len(fake.frames) and fake.masks[0].parent.parent.name == "masks"


def test_celebdf_v2_same_through_both_layouts_except_the_reals_rearrange_drops(tmp_path):
    """Celeb-DF-v2.json lists every video in train and the test list in val and test: the import keeps
    test videos in test and carves val as the video layout does (same identities, same seed). Legitimate
    difference: rearrange.py re-creates the real label's dict for each real folder, so its train list
    keeps only the last real folder scanned (YouTube-real); the Celeb-real videos outside the test list
    are not in the JSON and cannot be imported. Every video both readings see agrees."""
    root = fx.celebdf_download(tmp_path / "Celeb-DF-v2")
    video = _view(enumerate_dataset("celebdf_v2", root, dataset="X"))
    with pytest.warns(UserWarning, match="priority test > val > train"):
        imported = _view(
            enumerate_dataset("deepfakebench_json", fx.celebdf_deepfakebench(root, tmp_path), dataset="X")
        )
    only_video = set(video) - set(imported)
    assert not set(imported) - set(video)
    assert only_video == {f"X/real/id{i}_{k:04d}" for i in range(8) for k in range(2)} - {"X/real/id0_0000"}
    assert {k: video[k] for k in imported} == imported
    assert {s for _, s, _ in imported.values()} == {"train", "val", "test"}


def test_dfdc_same_through_both_layouts(tmp_path):
    """DFDC.json (test read first, val = one test video + a copy of train) against the ``dfdc`` layout with
    the training part where DeepfakeBench puts it (``DFDC/train/dfdc_train_part_0``): equal; the import
    groups the val carve by ``original`` from the part's metadata.json beside its ``frames/``."""
    root = fx.dfdc_download(tmp_path / "DFDC")
    video = _view(enumerate_dataset("dfdc", root, dataset="X"))
    imported = _view(
        enumerate_dataset("deepfakebench_json", fx.dfdc_deepfakebench(root, tmp_path), dataset="X")
    )
    assert imported == video and {s for _, s, _ in video.values()} == {"train", "val", "test"}


def test_dfdc_preview_same_through_both_layouts(tmp_path):
    """DFDCP.json (val IS test; frames named by file stem only) against ``dfdc_preview``: equal, the import
    finding each video's source clip and id stem in the dataset.json above the method folders."""
    root = fx.dfdcp_download(tmp_path / "DFDCP")
    video = _view(enumerate_dataset("dfdc_preview", root, dataset="X"))
    imported = _view(
        enumerate_dataset("deepfakebench_json", fx.dfdcp_deepfakebench(root, tmp_path), dataset="X")
    )
    assert imported == video and {s for _, s, _ in video.values()} == {"train", "val", "test"}


def test_a_genuine_val_is_kept_not_carved_again(tmp_path):
    """A Celeb-DF-family JSON whose val lists videos of its own (not copies) keeps that val."""
    frames = {
        v: fx.dfb_frames(tmp_path / "Celeb-real", v, ids=(0,)) for v in ("id0_0000", "id1_0000", "id2_0000")
    }
    data = {s: {v: {"label": "CelebDFv2_real", "frames": frames[v]}} for s, v in
            zip(("train", "val", "test"), frames, strict=True)}  # fmt: skip
    (tmp_path / "C.json").write_text(json.dumps({"C": {"CelebDFv2_real": data}}))
    recs = enumerate_dataset("deepfakebench_json", tmp_path / "C.json")
    assert sorted((r.video_id, r.split) for r in recs) == [
        ("C/real/id0_0000", "train"), ("C/real/id1_0000", "val"), ("C/real/id2_0000", "test")]  # fmt: skip


def test_dfdc_preview_without_its_dataset_json_says_the_carve_is_per_video(tmp_path):
    root = fx.dfdcp_download(tmp_path / "DFDCP")
    path = fx.dfdcp_deepfakebench(root, tmp_path)
    (root / "dataset.json").unlink()
    with pytest.warns(UserWarning, match="not found in the DFDC-P dataset.json.*own group"):
        recs = enumerate_dataset("deepfakebench_json", path, dataset="X")
    assert {r.method for r in recs} == {"real", "method_A", "method_B"}


@pytest.mark.parametrize("family", ["dfd", "uadfv"])
def test_test_only_sets_same_through_both_layouts(tmp_path, family):
    """DFD and UADFV: rearrange.py lists every video in all three splits; both readings give test only."""
    if family == "dfd":
        rgb = tmp_path / "rgb"
        video = enumerate_dataset("dfd", fx.dfd_download(rgb / "FaceForensics++"), dataset="X")
        path = fx.dfd_deepfakebench(rgb, tmp_path)
        opts = {"remap": f"D:/DeepfakeBench/datasets/rgb={rgb}"}
    else:
        root = fx.uadfv_download(tmp_path / "UADFV")
        video = enumerate_dataset("uadfv", root, dataset="X")
        path, opts = fx.uadfv_deepfakebench(root, tmp_path), {}
    with pytest.warns(UserWarning, match="repeat a video"):
        imported = enumerate_dataset("deepfakebench_json", path, dataset="X", **opts)
    assert _view(imported) == _view(video) and {r.split for r in imported} == {"test"}

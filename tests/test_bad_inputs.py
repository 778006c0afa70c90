"""The bad-input matrix: every bad input the data, metrics and detector contracts name, in two tables.

``CASES``: inputs that must raise, each with the exact exception class and a regex the message must
match (the culprit: file, column, rows, name, with the known names where relevant).
``ROW_CASES``: inputs that must NOT raise: preprocessing keeps a manifest row with a status and reason
for each (corrupt, empty, truncated, non-video files, frames without a face, faces a protocol excludes), and
converts grayscale and RGBA images instead of failing on them.
``CLI_CASES``: bad input given to a command-line entry point: exit code 2, an ``error:`` line naming the
culprit and a ``hint:`` line, never a traceback (``datamodules.errors.run_cli``).

README.md's "Bad-input matrix" section is generated from these tables (``python -m tests.test_bad_inputs``)
and a test checks it is current, so the count printed there cannot drift.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.runner.data_config import DataConfigError
from benchmark.runner.grid import GridError
from benchmark.runner.precheck import DataCheckError
from datamodules.datasets import DatasetLayoutError, UnknownLayoutError, enumerate_dataset
from datamodules.datasets.base import MissingSplitError, check_unique, require_splits
from datamodules.loading.datamodule import DataError, TrainBatchSampler
from datamodules.media.faces import FaceBackendError, resolve_backend
from datamodules.media.video import VideoOpenError, open_video
from datamodules.preprocess import PreprocessConfigError, preprocess_dataset
from datamodules.preprocess import main as preprocess_main
from datamodules.spec import DataSpec
from detectors import DataSpecError, create_detector, get_detector_class, load_detector
from detectors.registry import UnknownDetectorError
from detectors.weights import read_state_dict
from tests.facevideos import face_video, frames_of, photo, write_video

README = Path(__file__).resolve().parents[1] / "README.md"


@dataclass(frozen=True)
class Case:
    id: str
    what: str  # one line for the README
    trigger: Callable[[Path], object]  # gets a fresh tmp_path
    exc: type[BaseException]
    match: str  # regex the message must match: it names the culprit
    after: Callable[[Path], None] | None = None  # a post-condition (e.g. nothing was executed)


# ---- builders -------------------------------------------------------------------------------------------


def _touch(root: Path, *rels: str) -> Path:
    for r in rels:
        (root / r).parent.mkdir(parents=True, exist_ok=True)
        (root / r).write_bytes(b"")
    return root


def _ffpp(root: Path) -> Path:
    _touch(root, *[f"original_sequences/youtube/c23/videos/{i:03d}.mp4" for i in range(2)])
    _touch(root, "manipulated_sequences/Deepfakes/c23/videos/000_001.mp4")
    (root / "splits").mkdir()
    for split, pairs in (("train", [["000", "001"]]), ("val", []), ("test", [])):
        (root / f"splits/{split}.json").write_text(json.dumps(pairs))
    return root


def _frames(**cols) -> pd.DataFrame:
    base = {
        "dataset": ["A"] * 4,
        "video_id": ["A/real/0", "A/real/1", "A/fake/0", "A/fake/1"],
        "sample_id": ["A/real/0/0", "A/real/1/0", "A/fake/0/0", "A/fake/1/0"],
        "label": [0, 0, 1, 1],
        "method": ["real", "real", "fake", "fake"],
        "score": [0.1, 0.2, 0.8, 0.9],
    }
    base.update(cols)
    return pd.DataFrame(base)


def _metric(**cols):
    from benchmark.metrics import cross_auc_matrix

    return lambda tmp: cross_auc_matrix(_frames(**cols))


def _empty_scores(tmp: Path):
    from benchmark.metrics import cross_auc_matrix

    return cross_auc_matrix(_frames().iloc[:0])


def _store_write(tmp: Path) -> None:
    from benchmark.store import ScoreStore, build_record

    df = _frames(sample_id=["A/real/0/0", "A/real/0/0", "A/fake/0/0", "A/fake/1/0"])
    rec = build_record({"detector": "x"}, detector="x", train_set="A", test_set="A", split="test")
    ScoreStore(tmp).write_cell("cell-dup", df, rec)


def _store_lost_scores(tmp: Path) -> None:
    from benchmark.store import ScoreStore, build_record

    store = ScoreStore(tmp)
    rec = build_record({"detector": "x"}, detector="x", train_set="A", test_set="A", split="test")
    store.write_cell("cell-a", _frames(), rec)
    next(Path(tmp).rglob("scores.parquet")).unlink()
    store.read_scores()


def _dfb_json_bad_paths(tmp: Path) -> None:
    frames = [f"D:\\DeepfakeBench\\datasets\\rgb\\CDF\\real\\frames\\id0_0000\\{i:03d}.png" for i in (0, 10)]
    data = {
        "Celeb-DF-v2": {
            "CelebDFv2_real": {"test": {"id0_0000": {"label": "CelebDFv2_real", "frames": frames}}}
        }
    }
    (tmp / "Celeb-DF-v2.json").write_text(json.dumps(data))
    enumerate_dataset("deepfakebench_json", tmp / "Celeb-DF-v2.json")


def _dfb(tmp: Path, data: object, **opts) -> None:
    (tmp / "X.json").write_text(json.dumps(data))
    enumerate_dataset("deepfakebench_json", tmp / "X.json", **opts)


def _dfdc_test_only_for_training(tmp: Path) -> None:
    from tests.dataset_fixtures import dfdc_download

    recs = enumerate_dataset("dfdc", dfdc_download(tmp, "elsewhere"))  # warns: no training parts
    require_splits(recs, ("train", "val"), "DFDC", both_labels=True)


def _fixture(builder: str, *args):
    """A released-layout fixture of tests/dataset_fixtures.py or tests/test_released_layouts.py, built in tmp."""

    def run(tmp: Path) -> Path:
        from tests import dataset_fixtures, test_released_layouts

        build = getattr(dataset_fixtures, builder, None) or getattr(test_released_layouts, builder)
        return build(tmp, *args)

    return run


def _cdfpp_digits(tmp: Path) -> None:
    root = _fixture("celebdf_pp_release")(tmp)
    listing = root / "List_of_testing_videos.txt"
    listing.write_text(listing.read_text().replace("1 YouTube", "0 YouTube"))
    enumerate_dataset("celebdfpp", root)


def _dfe_label(tmp: Path) -> None:
    root = _fixture("dfe_release")(tmp)
    meta = root / "video-metadata-publish-with-links.csv"
    meta.write_text(meta.read_text().replace("v03.mp4,Fake", "v03.mp4,Deepfake?"))
    enumerate_dataset("deepfake_eval_2024", root)


def _csv(tmp: Path, text: str) -> None:
    _touch(tmp, "a.mp4", "b.mp4")
    (tmp / "dataset.csv").write_text(text)
    enumerate_dataset("csv", tmp)


def _duplicated_videos(tmp: Path) -> None:
    recs = enumerate_dataset("uadfv", _touch(tmp, "real/a.mp4", "fake/b.mp4"))
    check_unique(recs + recs[:1])


def _preprocess_other_options(tmp: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    (tmp / "d/test/real").mkdir(parents=True)
    cv2.imwrite(str(tmp / "d/test/real/noise.png"), noise)
    preprocess_dataset("D", "folder", tmp / "d", tmp / "out", frames=1, size=64, progress=False)
    preprocess_dataset("D", "folder", tmp / "d", tmp / "out", frames=1, size=96, progress=False)


def _dfb_skip_everything(tmp: Path) -> None:
    from tests.dataset_fixtures import uadfv_deepfakebench, uadfv_download

    path = uadfv_deepfakebench(uadfv_download(tmp / "rgb"), tmp)
    path.write_text(path.read_text().replace(str(tmp / "rgb"), str(tmp / "elsewhere")))
    enumerate_dataset("deepfakebench_json", path, missing="skip")


def _data_check(edit=None):
    """The data check of a sweep on the five-problem grid of tests/test_precheck.py (``edit(root)`` first)."""

    def run(tmp: Path):
        from benchmark.runner.data_config import parse_data_config
        from benchmark.runner.grid import load_grid
        from benchmark.runner.plan import plan_cells
        from benchmark.runner.precheck import require_data
        from tests.test_precheck import bad_data

        grid, cfg = bad_data(tmp)
        if edit:
            grid = edit(tmp)
        return require_data(plan_cells(load_grid(grid), parse_data_config(cfg)))

    return run


def _only_uadfv(tmp: Path) -> Path:
    import yaml

    g = yaml.safe_load((tmp / "bad.yaml").read_text())
    g.update(train_sets=["FF++"], test_sets=["UADFV"])
    (tmp / "bad.yaml").write_text(yaml.safe_dump(g))
    return tmp / "bad.yaml"


def _protocol_on_prealigned(tmp: Path) -> None:
    from tests.dataset_fixtures import uadfv_deepfakebench, uadfv_download

    path = uadfv_deepfakebench(uadfv_download(tmp / "rgb"), tmp)
    preprocess_dataset("U", "deepfakebench_json", path, tmp / "out", protocol="sfam", progress=False)


def _ckpt(tmp: Path, name: str = "resnet34") -> Path:
    path = tmp / f"{name}.ckpt"
    torch.save({"detector_name": name, "state_dict": {}, "hyper_parameters": {}}, path)
    return path


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _malicious(tmp: Path) -> None:
    obj = {"detector_name": "resnet34", "state_dict": {}, "evil": _Payload(str(tmp / "pwned"))}
    with open(tmp / "evil.ckpt", "wb") as f:
        torch.save(obj, f, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    load_detector(tmp / "evil.ckpt")


def _not_executed(tmp: Path) -> None:
    assert not (tmp / "pwned").exists(), "the pickle payload ran"


def _tiny(name: str):
    return create_detector(name, **get_detector_class(name).tiny_config)


def _batch(spec: DataSpec, labels: list[int], drop: tuple[str, ...] = (), size: int | None = None):
    from datamodules.batch import collate
    from datamodules.media.regions import REGIONS

    s, m = size or spec.input_size, spec.mask_side
    items = []
    for i, lab in enumerate(labels):
        it = {"image": torch.zeros(3, s, s), "label": lab, "sample_id": f"s{i}", "video_id": f"v{i}",
              "dataset": "d", "method": "fake" if lab else "real", "method_id": lab,
              "region_masks": torch.full((len(REGIONS), m, m), 1 / len(REGIONS)),
              "forgery_mask": torch.full((1, m, m), float(lab))}  # fmt: skip
        items.append({k: v for k, v in it.items() if k not in drop})
    return collate(items)


def _train_step(name: str, labels: list[int], drop: tuple[str, ...] = (), size: int | None = None):
    def run(tmp: Path) -> None:
        det = _tiny(name)
        det.training_step(_batch(det.data_spec, labels, drop, size), 0)

    return run


def _manifest(tmp: Path, name: str = "src", landmarks: bool = True, splits: dict | None = None) -> Path:
    from tests.test_datamodule import _write_dataset

    splits = splits or {"train": {"real": 1, "A": 1}, "val": {"real": 1, "A": 1}}
    return _write_dataset(tmp, name, splits, with_landmarks=landmarks)


def _dm_setup(spec: DataSpec | None = None, *, train: str = "src", edit=None, **mkw):
    """A ForgeryDataModule on a small manifest (``edit(path)`` may break it first), then ``setup("fit")``."""

    def run(tmp: Path):
        from datamodules.loading.datamodule import ForgeryDataModule

        path = _manifest(tmp, **mkw)
        if edit:
            edit(path)
        dm = ForgeryDataModule(spec or DataSpec(input_size=64), train=train, tests=[], manifests={"src": path},
                               batch_size=2, frames_train=2, frames_test=2, augment=False)  # fmt: skip
        dm.setup("fit")
        return dm

    return run


def _drop_fake_masks(path: Path) -> None:
    df = pd.read_parquet(path)
    df.loc[df["label"] == 1, "mask_path"] = ""
    df.to_parquet(path)


def _vanish_crops(path: Path) -> None:
    df = pd.read_parquet(path)
    for rel in df.loc[(df["split"] == "train") & (df["status"] == "ok"), "crop_path"]:
        (path.parent / rel).unlink()


def _drop_status_column(path: Path) -> None:
    pd.read_parquet(path).drop(columns=["status"]).to_parquet(path)


def _zero_byte_crop(tmp: Path):
    dm = _dm_setup()(tmp)
    (dm.train_set.root / dm.train_set.rows["crop_path"][0]).write_bytes(b"")
    return dm.train_set[0]


def _grid(tmp: Path, **over) -> Path:
    from tests.runner_fixtures import write_data_config, write_grid

    write_data_config(tmp)
    return write_grid(tmp, "bad", **over)


def _load_grid(**over):
    def run(tmp: Path):
        from benchmark.runner.grid import load_grid

        return load_grid(_grid(tmp, **over))

    return run


def _plan(**kw):
    def run(tmp: Path):
        from benchmark.runner.data_config import parse_data_config
        from benchmark.runner.grid import load_grid
        from benchmark.runner.plan import plan_cells

        grid = load_grid(_grid(tmp))
        return plan_cells(grid, parse_data_config(tmp / "datasets.yaml"), **kw)

    return run


def _data_config(text: str):
    def run(tmp: Path):
        from benchmark.runner.data_config import parse_data_config

        (tmp / "d.yaml").write_text(text)
        return parse_data_config(tmp / "d.yaml")

    return run


def _unknown_grid(tmp: Path):
    from benchmark.runner.grid import load_grid

    return load_grid("nope")


# ---- table 1: must raise ----------------------------------------------------------------------------------

CASES: list[Case] = [
    # files and layouts
    Case("zero_byte_video", "opening a zero-byte video", lambda t: open_video(_touch(t, "z.mp4") / "z.mp4"),
         VideoOpenError, r"z\.mp4: zero-byte file"),
    Case("non_video_file", "opening a text file named .mp4",
         lambda t: (t / "x.mp4").write_text("not a video\n" * 40) and open_video(t / "x.mp4"),
         VideoOpenError, r"x\.mp4: cannot be opened as a video"),
    Case("missing_video", "opening a video that does not exist", lambda t: open_video(t / "gone.mp4"),
         VideoOpenError, r"gone\.mp4: no such file"),
    Case("missing_split_file", "FF++ without splits/val.json",
         lambda t: (_ffpp(t) / "splits/val.json").unlink() or enumerate_dataset("ffpp", t),
         DatasetLayoutError, r"splits/val\.json"),
    Case("wrong_layout", "an FF++ folder read as Celeb-DF v2", lambda t: enumerate_dataset("celebdf_v2", _ffpp(t)),
         DatasetLayoutError, r"layout 'celebdf_v2': missing (file|folder) .*(List_of_testing_videos\.txt|Celeb-)"),
    Case("missing_compression", "FF++ asked for c40 when only c23 is there",
         lambda t: enumerate_dataset("ffpp", _ffpp(t), compression="c40"), DatasetLayoutError,
         r"c40.*present: \['c23'\]"),
    Case("empty_dataset_folder", "a `folder` dataset with no video, frame folder or image",
         lambda t: enumerate_dataset("folder", _touch(t, "real/readme.txt")), DatasetLayoutError,
         r"layout 'folder': no video, frame folder or image found under"),
    Case("deepfakebench_json_bad_paths", "DeepfakeBench JSON whose frame paths do not exist (Windows prefix)",
         _dfb_json_bad_paths, DatasetLayoutError,
         r"2 listed frame paths do not exist.*D:/DeepfakeBench/datasets/rgb/CDF/real/frames/id0_0000/000\.png.*remap="),
    Case("deepfakebench_json_not_json", "a DeepfakeBench JSON that is not JSON",
         lambda t: (t / "CDF.json").write_text("{oops") and enumerate_dataset("deepfakebench_json", t / "CDF.json"),
         DatasetLayoutError, r"CDF\.json: not valid JSON"),
    # DeepfakeBench JSONs and the released layouts of DF40, Celeb-DF++, Deepfake-Eval-2024, DFDC, FF++
    Case("deepfakebench_json_video_not_an_object", "a DeepfakeBench JSON whose video entry is a string",
         lambda t: _dfb(t, {"UADFV": {"UADFV_Fake": {"test": {"v1": "x"}}}}), DatasetLayoutError,
         r"X\.json: UADFV/UADFV_Fake/test/v1: expected \{\"label\": \"<label>\", \"frames\": .*got str 'x'"),
    Case("deepfakebench_json_frames_not_paths", "a DeepfakeBench JSON whose frames are numbers",
         lambda t: _dfb(t, {"UADFV": {"UADFV_Fake": {"test": {"v1": {"frames": [1, 2]}}}}}), DatasetLayoutError,
         r"X\.json: UADFV/UADFV_Fake/test/v1/frames: expected a \"frames\" list of path strings, got list \[1, 2\]"),
    Case("deepfakebench_json_unknown_split", "a DeepfakeBench JSON with a split named 'dev'",
         lambda t: _dfb(t, {"UADFV": {"UADFV_Fake": {"dev": {}}}}), DatasetLayoutError,
         r"X\.json: UADFV/UADFV_Fake: unknown split 'dev'"),
    Case("remap_empty_side", "a remap with an empty OLD prefix",
         lambda t: _dfb(t, {"UADFV": {"UADFV_Fake": {"test": {}}}}, remap="=/data"), ValueError,
         r"remap =/data: both OLD_PREFIX and NEW_PREFIX must be non-empty"),
    Case("fake_only_root_with_reals", "fake_only pointed at DF40/heygen (it holds real/)",
         lambda t: enumerate_dataset("fake_only", _fixture("df40_release")(t) / "DF40/heygen"), DatasetLayoutError,
         r"layout 'fake_only': .*heygen holds a real/ folder .*layout 'df40'.*layout 'folder'"),
    Case("df40_not_a_release", "a df40 root that is a frames folder",
         lambda t: enumerate_dataset("df40", _fixture("df40_release")(t) / "DF40/simswap/ff/frames"),
         DatasetLayoutError, r"layout 'df40': .*frames is neither the DF40 .*<method>/\{ff,cdf\}"),
    Case("df40_unknown_method", "a df40 method filter naming no DF40 folder",
         lambda t: enumerate_dataset("df40", _fixture("df40_release")(t) / "DF40", methods=["roop"]),
         DatasetLayoutError, r"no method folder \['roop'\] under .*DF40; found \['MidJourney'"),
    Case("celebdf_pp_digits_contradict", "a Celeb-DF++ test list whose digits fit neither convention",
         _cdfpp_digits, DatasetLayoutError, r"List_of_testing_videos\.txt: the label digits contradict the folders"),
    Case("deepfake_eval_2024_bad_label", "a Deepfake-Eval-2024 row labelled 'Deepfake?'", _dfe_label,
         DatasetLayoutError, r"video-metadata-publish-with-links\.csv row 5: Video Ground Truth 'Deepfake\?'"),
    Case("dfdc_official_val_missing", "DFDC asked for its official validation set when absent",
         lambda t: enumerate_dataset("dfdc", _fixture("dfdc_download", "train")(t), val_source="official"),
         DatasetLayoutError, r"val_source='official' needs .*validation/labels\.csv"),
    Case("training_split_not_found", "training on DFDC when only its test set was found",
         _dfdc_test_only_for_training, MissingSplitError,
         r"dataset 'DFDC': 'train' is empty; 'val' is empty; found: train 0, val 0, test 4 \(fake 2, real 2\)"),
    Case("ffpp_without_split_files", "FF++ without the official split files",
         lambda t: enumerate_dataset("ffpp", _fixture("ffpp_download", ("Deepfakes",), "c23", "")(t)),
         DatasetLayoutError, r"no official FF\+\+ split files .*github\.com/ondyari/FaceForensics, folder dataset/splits/.*split_dir"),
    Case("csv_label_outside_0_1", "a CSV row with label 2",
         lambda t: _csv(t, "path,label,split\na.mp4,0,test\nb.mp4,2,test\n"), ValueError,
         r"dataset\.csv row 3: label '2' is not 0/1 or real/fake"),
    Case("csv_bad_split", "a CSV row with split 'dev'",
         lambda t: _csv(t, "path,label,split\na.mp4,0,dev\n"), ValueError, r"dataset\.csv: rows \[2\] have a split outside"),
    Case("csv_missing_columns", "a CSV without a label column",
         lambda t: _csv(t, "path,split\na.mp4,test\n"), DatasetLayoutError, r"missing column\(s\) \['label'\]"),
    Case("csv_inconsistent_video_labels", "CSV rows of one video with two labels",
         lambda t: _csv(t, "path,label,split,video\na.mp4,0,test,v\nb.mp4,1,test,v\n"), ValueError,
         r"video 'v' mixes labels or splits \(rows \[2, 3\]\)"),
    Case("duplicated_video_ids", "two records with one video_id", _duplicated_videos, ValueError,
         r"1 duplicate video_id\(s\): .*UADFV/real/a|duplicate video_id"),
    Case("unknown_layout", "an unknown layout name", lambda t: enumerate_dataset("celebdf_v3", t),
         UnknownLayoutError, r"celebdf_v3.*known layouts: .*celebdf_v2.*ffpp"),
    Case("unknown_dataset_name", "preprocessing a dataset name with no default layout",
         lambda t: preprocess_main(["--dataset", "MyData", "--root", str(t), "--out", str(t)]),
         UnknownLayoutError, r"MyData.*pass --layout"),
    Case("unknown_adapter_option", "a misspelt adapter option",
         lambda t: enumerate_dataset("ffpp", _ffpp(t), compresion="c40"), TypeError,
         r"takes no option\(s\) \['compresion'\]; its options: compression"),
    Case("unknown_face_backend", "an unknown face-detector backend", lambda t: resolve_backend("retinaface"),
         FaceBackendError, r"unknown face backend 'retinaface'; known: .*mtcnn"),
    Case("preprocess_other_options", "resuming a preprocessed dataset with another crop size",
         _preprocess_other_options, PreprocessConfigError, r"preprocessed with other options \{'size': \(64, 96\)\}"),
    Case("no_usable_video", "a layout's folders that hold no video (UADFV's real/ and fake/ empty)",
         lambda t: (t / "real").mkdir() or (t / "fake").mkdir() or enumerate_dataset("uadfv", t), DatasetLayoutError,
         r"layout 'uadfv' at .*: no usable video found; the layout expects: UADFV: no official split"),
    Case("deepfakebench_json_skip_everything", "DeepfakeBench JSON with missing='skip' whose every video lacks frames",
         _dfb_skip_everything, DatasetLayoutError,
         r"UADFV\.json: no usable video: all 4 listed video\(s\) were skipped \(missing='skip'\) because their "
         r"frames do not exist \(frames resolved against base .*\).*elsewhere/real/frames/0000/"),
    Case("preprocess_misspelt_option", "a misspelt preprocessing option",
         lambda t: preprocess_dataset("D", "uadfv", t, t / "o", frmes=2, progress=False), TypeError,
         r"dataset 'D': option\(s\) \['frmes'\] are neither preprocessing options \(.*frames.*\) nor options of "
         r"layout 'uadfv' \(none\)"),
    Case("unknown_protocol", "an unknown preprocessing protocol",
         lambda t: preprocess_dataset("D", "uadfv", t, t / "o", protocol="sfm", progress=False), PreprocessConfigError,
         r"unknown preprocessing protocol 'sfm'; known protocols: default, sfam"),
    Case("protocol_without_probability", "protocol sfam with dlib, whose face score is no probability",
         lambda t: preprocess_dataset("D", "uadfv", t, t / "o", protocol="sfam", backend="dlib", progress=False),
         PreprocessConfigError, r"protocol 'sfam' keeps faces of detector confidence >= 0\.9, but backend 'dlib'"),
    Case("protocol_on_prealigned_frames", "protocol sfam on DeepfakeBench's already aligned frames",
         _protocol_on_prealigned, PreprocessConfigError,
         r"protocol 'sfam' filters faces by .* 4 video\(s\) of dataset 'U' are frames already aligned"),
    # the data loader (manifests -> batches)
    Case("datamodule_unknown_dataset", "a datamodule asked for a dataset it has no manifest for",
         _dm_setup(train="nope"), DataError, r"unknown dataset 'nope'; known: src"),
    Case("manifest_missing", "a manifest file that does not exist",
         _dm_setup(edit=lambda p: p.unlink()), DataError, r"manifest of dataset 'src' not found: .*manifest\.parquet"),
    Case("manifest_lacks_columns", "a manifest without its status column", _dm_setup(edit=_drop_status_column),
         DataError, r"manifest .*manifest\.parquet \(dataset 'src'\) lacks columns \['status'\]"),
    Case("no_val_split", "a source dataset without a val split",
         _dm_setup(splits={"train": {"real": 1, "A": 1}}), DataError,
         r"'src' has no ok frames in split 'val' \(splits present: \['train'\]\)"),
    Case("region_masks_without_landmarks", "region masks asked of a manifest without landmarks",
         _dm_setup(DataSpec(input_size=64, region_masks=True), landmarks=False), DataError,
         r"region masks \(DataSpec\.region_masks\) need landmarks, but dataset 'src' has \d+ of \d+ selected frames"),
    Case("forgery_masks_missing", "forgery masks asked of fakes that have none",
         _dm_setup(DataSpec(input_size=64, forgery_masks=True), edit=_drop_fake_masks), DataError,
         r"forgery_masks needs a mask for every training fake, but dataset 'src' has \d+ fake frames without mask_path"),
    Case("vanished_crop_files", "crop files deleted after preprocessing", _dm_setup(edit=_vanish_crops), DataError,
         r"dataset 'src': \d+ of \d+ files named by .*manifest\.parquet are missing, e\.g\. \[.*crops/"),
    Case("zero_byte_crop", "a crop that became a zero-byte file", _zero_byte_crop, DataError,
         r"cannot read crop .*crops/.*\.png \(missing or corrupt\)"),
    Case("paired_odd_batch", "paired (UCF) batches of an odd size",
         lambda t: TrainBatchSampler(np.array([0, 1, 0, 1]), 3, seed=0, sbi_prob=0.0, paired=True), DataError,
         r"paired batches need an even batch_size, got 3"),
    # the runner: grids and data configuration
    Case("unknown_grid", "an unknown grid name", _unknown_grid, GridError, r"unknown grid 'nope'; known grids: .*cross.*demo"),
    Case("grid_unknown_key", "a grid YAML with a misspelt key", _load_grid(detector_list=["x"]), GridError,
         r"unknown key\(s\) \['detector_list'\]; known keys:"),
    Case("grid_unknown_trainer_key", "a grid's trainer section with a misspelt key",
         _load_grid(defaults={"trainer": {"max_epoch": 3}}), GridError,
         r"defaults\.trainer: unknown key\(s\) \['max_epoch'\]"),
    Case("grid_unknown_detector", "a sweep asked for an unknown detector", _plan(detectors=["no_such_net"]),
         GridError, r"unknown detector\(s\) \['no_such_net'\].*known detectors: .*resnet34"),
    Case("grid_unknown_dataset", "a sweep asked for an unconfigured dataset", _plan(datasets=["zz"]), GridError,
         r"unknown dataset\(s\) \['zz'\].*a, b, train"),
    Case("data_config_unknown_key", "a data configuration with a misspelt key",
         _data_config("datasets: {X: {layout: ffpp, root: r}}\nroots: 1\n"), DataConfigError,
         r"unknown key\(s\) \['roots'\]"),
    Case("data_config_missing_root", "a configured dataset without its root",
         _data_config("datasets: {X: {layout: ffpp}}\n"), DataConfigError,
         r"dataset 'X' needs at least 'layout' and 'root'"),
    Case("data_config_unknown_protocol", "a data configuration naming an unknown protocol",
         _data_config("datasets: {X: {layout: ffpp, root: r, protocol: SFAM}}\n"), DataConfigError,
         r"dataset 'X' asks for unknown preprocessing protocol 'SFAM'; known protocols: default, sfam"),
    Case("grid_data_problems", "a sweep whose datasets have a missing root, a test-only training set, a missing "
         "method (checked before any preprocessing)", _data_check(), DataCheckError,
         r"^5 problems with the data this sweep needs .*\n- FF\+\+ .*FaceSwap.*\n- CDF-v2 .*does not exist\n"
         r"- DFDC .*'train' is empty.*\n- DFDC .*'val' is empty.*\n- UADFV .*protocol 'default'"),
    Case("manifest_of_another_protocol", "a preprocessed dataset whose protocol is not the configured one",
         _data_check(_only_uadfv), DataCheckError,
         r"^1 problem with .*\n- UADFV \(uadfv, .*manifest\.parquet\): the manifest was preprocessed with protocol "
         r"'default' but the data configuration asks for 'sfam'"),
    # scores and metrics
    Case("nan_score", "a NaN score", _metric(score=[0.1, np.nan, 0.8, 0.9]), ValueError,
         r"column 'score' has NaN or infinite values in rows \[1\]"),
    Case("inf_score", "an infinite score", _metric(score=[0.1, 0.2, np.inf, 0.9]), ValueError,
         r"column 'score' has NaN or infinite values in rows \[2\]"),
    Case("label_outside_0_1", "a label 2", _metric(label=[0, 0, 2, 1]), ValueError,
         r"column 'label' must hold 0 \(real\) or 1 \(fake\); found \[2\] in rows \[2\]"),
    Case("duplicated_sample_ids", "one frame scored twice",
         _metric(sample_id=["A/real/0/0", "A/real/0/0", "A/fake/0/0", "A/fake/1/0"]), ValueError,
         r"column 'sample_id' has duplicates \(e\.g\. 'A/real/0/0'\) in rows \[0, 1\]"),
    Case("inconsistent_video_labels", "frames of one video with two labels",
         _metric(video_id=["A/v/0", "A/v/1", "A/v/0", "A/v/1"]), ValueError,
         r"column 'label' differs between frames of video_id 'A/v/0' \(rows \[0, 2\]"),
    Case("empty_scores", "an empty score table", _empty_scores, ValueError, r"frames is empty"),
    Case("store_duplicated_sample_ids", "writing a cell whose scores repeat a frame", _store_write, ValueError,
         r"scores for cell 'cell-dup': column 'sample_id' has duplicates"),
    Case("store_scores_vanished", "a done cell whose scores file was deleted", _store_lost_scores, ValueError,
         r"cell 'cell-a' is marked done but has no scores\.parquet"),
    # detectors, checkpoints, weights
    Case("unknown_detector", "an unknown detector name", lambda t: create_detector("xceptionnet"),
         UnknownDetectorError, r"xceptionnet.*known.*efficientnet_b4.*xception"),
    Case("unknown_recipe_override", "a misspelt recipe override", lambda t: create_detector("resnet34", lrate=1e-3),
         TypeError, r"unknown recipe setting\(s\) \['lrate'\]"),
    Case("checkpoint_of_another_detector", "loading a resnet34 checkpoint as xception",
         lambda t: load_detector(_ckpt(t), expected="xception"), ValueError,
         r"resnet34\.ckpt is a checkpoint of detector 'resnet34', not 'xception'"),
    Case("malicious_pickle_checkpoint", "a checkpoint carrying a pickle payload (refused, never run)",
         _malicious, ValueError, r"refusing to load .*evil\.ckpt", after=_not_executed),
    Case("missing_checkpoint", "a checkpoint path that does not exist", lambda t: load_detector(t / "none.ckpt"),
         FileNotFoundError, r"checkpoint not found: .*none\.ckpt"),
    Case("missing_weights_file", "a weights file that does not exist", lambda t: read_state_dict(t / "w.pth"),
         FileNotFoundError, r"weights file not found: .*w\.pth"),
    Case("weights_not_tensors", "a weights file holding no tensors",
         lambda t: torch.save({"a": 1}, t / "w.pth") or read_state_dict(t / "w.pth"), ValueError,
         r"w\.pth does not hold a state dict of tensors"),
    Case("batch_lacks_region_masks", "an SFAM batch without the region masks its DataSpec asks for",
         _train_step("sfam", [0, 1], drop=("region_masks",)), DataSpecError, r"sfam needs batch\.region_masks"),
    Case("batch_lacks_forgery_mask", "a Forensics Adapter training batch without forgery masks",
         _train_step("forensics_adapter", [0, 1], drop=("forgery_mask",)), DataSpecError,
         r"forensics_adapter needs batch\.forgery_mask"),
    Case("batch_lacks_method_id", "a UCF training batch without method ids",
         _train_step("ucf", [0, 1], drop=("method_id",)), DataSpecError, r"ucf needs batch\.method_id"),
    Case("unpaired_ucf_batch", "a UCF training batch that is not [reals; fakes]",
         _train_step("ucf", [0, 1, 0, 1]), DataSpecError, r"ucf trains on paired batches .*labels \[0, 1, 0, 1\]"),
    Case("wrong_image_size", "a batch of another image size than the DataSpec's",
         _train_step("resnet34", [0, 1], size=32), DataSpecError, r"resnet34 expects 64px images, got \(2, 3, 32, 32\)"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_raises_naming_the_culprit(case: Case, tmp_path: Path) -> None:
    with pytest.raises(case.exc) as info:
        case.trigger(tmp_path)
    assert type(info.value) is case.exc, (
        f"expected exactly {case.exc.__name__}, got {type(info.value).__name__}"
    )
    assert re.search(case.match, str(info.value), re.S), f"message {str(info.value)!r} !~ {case.match!r}"
    if case.after:
        case.after(tmp_path)


# ---- table 2: preprocessing keeps a row per failed frame (never an exception) ---------------------------


@dataclass(frozen=True)
class RowCase:
    id: str
    what: str
    make: Callable[[Path], object]  # writes one file under the folder-layout root
    video_id: str
    statuses: frozenset[str]  # the statuses its rows must carry (all of them, nothing else)
    reason: str = ""  # regex one row's reason must match
    protocol: str = "default"  # the preprocessing protocol of the run (datamodules.preprocess.protocols)


def _img(rel: str, img: np.ndarray) -> Callable[[Path], object]:
    def make(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(root / rel), img)

    return make


def _bytes(rel: str, data: bytes) -> Callable[[Path], object]:
    def make(root: Path) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)

    return make


def _truncated(root: Path) -> None:
    full = face_video(root / "tmp/full.avi", "grace_hopper", n=8, width=128)
    (root / "test/fake").mkdir(parents=True, exist_ok=True)
    (root / "test/fake/truncated.avi").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    full.unlink()
    full.parent.rmdir()


def _gray_video(root: Path) -> None:
    gray = cv2.cvtColor(photo("astronaut", 160), cv2.COLOR_RGB2GRAY)
    write_video(
        root / "test/fake/gray_video.mp4", [cv2.cvtColor(g, cv2.COLOR_GRAY2RGB) for g in frames_of(gray, 2)]
    )


_NOISE = np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8)
_FACE = cv2.cvtColor(photo("astronaut", 192), cv2.COLOR_RGB2BGR)

ROW_CASES: list[RowCase] = [
    RowCase("good_video", "a real-face video (control)", lambda r: face_video(r / "test/real/good.mp4", "astronaut", 3, 160),
            "B/real/good", frozenset({"ok"})),
    RowCase("zero_byte_video_row", "a zero-byte video", _bytes("test/real/zero.mp4", b""), "B/real/zero",
            frozenset({"decode_error"}), r"zero-byte"),
    RowCase("non_video_row", "a text file named .mp4", _bytes("test/real/text.mp4", b"not a video\n" * 50),
            "B/real/text", frozenset({"decode_error"}), r"cannot be opened as a video"),
    RowCase("truncated_video_row", "a video cut in half", _truncated, "B/fake/truncated",
            frozenset({"ok", "decode_error"})),
    RowCase("corrupt_image_row", "an image file of random bytes", _bytes("test/fake/corrupt.png", b"\x89PNG\r\n" + bytes(200)),
            "B/fake/corrupt", frozenset({"decode_error"})),
    RowCase("no_face_video_row", "a video of noise", lambda r: write_video(r / "test/fake/noface.mp4", [_NOISE] * 2),
            "B/fake/noface", frozenset({"no_face"})),
    RowCase("no_face_image_row", "an image of noise", _img("test/real/noface.png", _NOISE), "B/real/noface",
            frozenset({"no_face"})),
    RowCase("grayscale_video", "a grayscale video (converted, cropped)", _gray_video, "B/fake/gray_video",
            frozenset({"ok"})),
    RowCase("grayscale_image", "a one-channel image (converted, cropped)",
            _img("test/real/gray.png", cv2.cvtColor(_FACE, cv2.COLOR_BGR2GRAY)), "B/real/gray", frozenset({"ok"})),
    RowCase("rgba_image", "an RGBA image (alpha dropped, cropped)",
            _img("test/fake/rgba.png", np.dstack([_FACE, np.full(_FACE.shape[:2], 128, np.uint8)])), "B/fake/rgba",
            frozenset({"ok"})),
    # the sfam protocol: faces smaller than 128 x 128 source pixels are excluded, as rows
    RowCase("small_face_sfam", "a face of about 86x110 px", _img("test/real/small.png", cv2.cvtColor(photo("astronaut", 512), cv2.COLOR_RGB2BGR)),
            "B/real/small", frozenset({"small_face"}), r"face box \d+x\d+ source px, smaller than 128x128", "sfam"),
    RowCase("big_face_downscaled_sfam", "a face of about 172x220 px, detected on a 640 px downscale (control)",
            _img("test/fake/big.png", cv2.cvtColor(photo("astronaut", 1024), cv2.COLOR_RGB2BGR)), "B/fake/big",
            frozenset({"ok"}), "", "sfam"),
]  # fmt: skip


@pytest.fixture(scope="module")
def bad_manifest(tmp_path_factory) -> dict[str, pd.DataFrame]:
    """One preprocessing run per protocol, each over a folder holding its cases' files."""
    out = {}
    for protocol in dict.fromkeys(c.protocol for c in ROW_CASES):
        root = tmp_path_factory.mktemp(f"bad_folder_{protocol}")
        for c in ROW_CASES:
            if c.protocol == protocol:
                c.make(root)
        path = preprocess_dataset("B", "folder", root, tmp_path_factory.mktemp("out"), frames=2, size=64,
                                  protocol=protocol, progress=False)  # fmt: skip
        out[protocol] = pd.read_parquet(path)
    return out


@pytest.mark.parametrize("case", ROW_CASES, ids=[c.id for c in ROW_CASES])
def test_bad_file_keeps_its_rows_with_status_and_reason(case: RowCase, bad_manifest: dict) -> None:
    manifest = bad_manifest[case.protocol]
    rows = manifest[manifest.video_id == case.video_id]
    assert len(rows) >= 1, f"{case.video_id} has no manifest row: a failed file was dropped silently"
    assert set(rows.status) == set(case.statuses), rows[["frame_index", "status", "reason"]].to_string()
    failed = rows[rows.status != "ok"]
    assert (failed.crop_path == "").all() and (failed.reason != "").all()
    assert (rows[rows.status == "ok"].crop_path != "").all()
    if case.reason:
        assert failed.reason.str.contains(case.reason).any(), failed.reason.tolist()


# ---- table 3: command-line entry points: one error line, one hint line, exit 2 -------------------------


@dataclass(frozen=True)
class CLICase:
    id: str
    what: str
    main: str  # "module:function" of the entry point's main
    argv: Callable[[Path], list[str]]  # gets a fresh tmp_path
    error: str  # regex the ``error:`` line must match (after "error: ")


def _bad_grid_args(tmp: Path) -> list[str]:
    from tests.test_precheck import bad_data

    grid, cfg = bad_data(tmp)
    return ["--grid", str(grid), "--data", str(cfg), "--out", str(tmp / "out"), "--no-leaderboard"]


CLI_CASES: list[CLICase] = [
    CLICase("cli_run_data_problems", "`python -m benchmark.run` on a grid whose data have five problems",
            "benchmark.run:main", _bad_grid_args, r"5 problems with the data this sweep needs"),
    CLICase("cli_run_unknown_grid", "`python -m benchmark.run --grid nope`", "benchmark.run:main",
            lambda t: ["--grid", "nope", "--data", _grid_data(t), "--dry-run"], r"unknown grid 'nope'; known grids: "),
    CLICase("cli_run_num_nodes_without_slurm", "`python -m benchmark.run --num-nodes 2` with the local launcher",
            "benchmark.run:main", lambda t: [*_tiny_grid_args(t), "--num-nodes", "2"],
            r"--num-nodes 2 needs --launcher slurm .*got --launcher local"),
    CLICase("cli_run_zero_nodes", "`python -m benchmark.run --num-nodes 0`", "benchmark.run:main",
            lambda t: [*_tiny_grid_args(t), "--num-nodes", "0", "--launcher", "slurm"],
            r"--num-nodes 0: a cell needs at least one node"),
    CLICase("cli_preprocess_missing_root", "`python -m datamodules.preprocess` with a root that does not exist",
            "datamodules.preprocess.cli:main",
            lambda t: ["--dataset", "CDF-v2", "--root", str(t / "nope"), "--out", str(t / "o")],
            r"layout 'celebdf_v2': missing folder .*nope \(Celeb-DF root\)"),
    CLICase("cli_preprocess_protocol_backend", "`python -m datamodules.preprocess --protocol sfam --backend dlib`",
            "datamodules.preprocess.cli:main",
            lambda t: ["--dataset", "U", "--layout", "uadfv", "--root", str(t), "--out", str(t / "o"), "--protocol",
                       "sfam", "--backend", "dlib"], r"protocol 'sfam' keeps faces .* backend 'dlib'"),
    CLICase("cli_predict_missing_checkpoint", "`python -m benchmark.predict` with a checkpoint that does not exist",
            "benchmark.predict:main", lambda t: [str(t / "none.ckpt"), str(t / "face.png")],
            r"checkpoint not found: .*none\.ckpt"),
    CLICase("cli_leaderboard_no_store", "`python -m benchmark.leaderboard` without a score store",
            "benchmark.report.leaderboard:main", lambda t: ["--store", str(t / "none"), "--out", str(t / "lb")],
            r"no score store at .*none"),
    CLICase("cli_convert_unknown_source", "`python -m detectors.convert --source nope`", "detectors.convert:main",
            lambda t: ["--source", "nope", "xception", str(t / "x.pth"), str(t / "x.ckpt")], r"no 'nope' converter for 'xception'"),
]  # fmt: skip


def _grid_data(tmp: Path) -> str:
    from tests.runner_fixtures import write_data_config

    return str(write_data_config(tmp))


def _tiny_grid_args(tmp: Path) -> list[str]:
    from tests.runner_fixtures import write_grid

    return ["--grid", str(write_grid(tmp)), "--data", _grid_data(tmp), "--out", str(tmp / "out"), "--dry-run"]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_command_line_bad_input_is_one_error_line_and_a_hint(
    case: CLICase, tmp_path: Path, capsys, monkeypatch
) -> None:
    import importlib

    from datamodules.errors import run_cli

    monkeypatch.delenv("FORGERY_BENCH_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)
    module, _, name = case.main.partition(":")
    main = getattr(importlib.import_module(module), name)
    try:
        code = run_cli(main, case.argv(tmp_path))
    except SystemExit as e:  # argparse's own error (detectors.convert reports through it)
        code = e.code
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 2, text
    assert "Traceback" not in text
    lines = text.splitlines()
    errors = [line for line in lines if re.match(r"^(.*: )?error: ", line)]
    assert len(errors) == 1 and re.search(case.error, errors[0]), text
    assert any(line.startswith("hint: ") for line in lines), text


# ---- the README section, generated from the tables ------------------------------------------------------


def readme_section() -> str:
    """The README's "Bad-input matrix" section body."""
    n = len(CASES) + len(ROW_CASES) + len(CLI_CASES)
    lines = [
        f"`tests/test_bad_inputs.py` checks **{n} bad inputs**: {len(CASES)} that must raise a specific "
        f"exception whose message names the culprit, {len(ROW_CASES)} files preprocessing must keep as "
        "manifest rows with a status and reason (or convert) instead of failing, and "
        f"{len(CLI_CASES)} given to a command-line entry point, which must exit with code 2 and print an "
        "`error:` line naming the culprit and a `hint:` line, not a traceback. Generated from the test's "
        "tables by `python -m tests.test_bad_inputs`.",
        "",
        "| case | bad input | outcome |",
        "| --- | --- | --- |",
    ]
    lines += [f"| `{c.id}` | {c.what} | `{c.exc.__name__}` |" for c in CASES]
    lines += [
        f"| `{c.id}` | {c.what}{'' if c.protocol == 'default' else f' (protocol {c.protocol})'} | rows: "
        f"{', '.join(sorted(c.statuses))} |"
        for c in ROW_CASES
    ]
    lines += [f"| `{c.id}` | {c.what} | exit 2: `error:` + `hint:` lines |" for c in CLI_CASES]
    return "\n".join(lines) + "\n"


def test_readme_lists_the_matrix_with_its_count() -> None:
    text = README.read_text()
    m = re.search(r"^## Bad-input matrix\n\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, "README.md lacks the '## Bad-input matrix' section"
    assert m.group(1).strip() == readme_section().strip(), "regenerate it: python -m tests.test_bad_inputs"
    ids = [c.id for c in CASES] + [c.id for c in ROW_CASES] + [c.id for c in CLI_CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"


if __name__ == "__main__":
    sys.stdout.write(readme_section())

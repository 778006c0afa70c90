"""Single-file inference: real face photos and a short video through the preprocessing face pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from benchmark.predict import main, make_batch, predict_path
from detectors import create_detector, get_detector_class, load_detector
from tests.helpers import SyntheticDataModule, quiet_trainer

skimage_data = pytest.importorskip("skimage.data")


def _checkpoint(tmp: Path, name: str = "resnet34") -> Path:
    """A real Lightning checkpoint of a tiny detector after one training step."""
    model = create_detector(name, **get_detector_class(name).tiny_config)
    trainer = quiet_trainer(max_steps=1, limit_val_batches=0)
    trainer.fit(model, datamodule=SyntheticDataModule(model.data_spec, n=4, batch_size=4))
    path = tmp / f"{name}.ckpt"
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("predict")
    face = skimage_data.astronaut()
    cv2.imwrite(str(tmp / "face.png"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp / "blank.png"), np.full((200, 200, 3), 127, np.uint8))
    vw = cv2.VideoWriter(str(tmp / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (256, 256))
    for k in range(6):
        frame = cv2.resize(face, (256, 256))
        vw.write(cv2.cvtColor(np.roll(frame, 3 * k, axis=1), cv2.COLOR_RGB2BGR))
    vw.release()
    (tmp / "notes.txt").write_text("not media")
    return {
        "face": tmp / "face.png",
        "blank": tmp / "blank.png",
        "clip": tmp / "clip.avi",
        "txt": tmp / "notes.txt",
        "ckpt": _checkpoint(tmp),
    }


def test_image_and_video_scores_match_the_model(files: dict[str, Path]) -> None:
    model = load_detector(files["ckpt"]).eval()
    img = predict_path(model, files["face"])
    assert img.kind == "image" and len(img.frames) == 1 and img.frames[0]["status"] == "ok"
    assert 0.0 <= img.video_score <= 1.0
    vid = predict_path(model, files["clip"], n_frames=4)
    assert vid.kind == "video" and len(vid.frames) == 4
    scores = [f["score"] for f in vid.frames]
    assert all(s is not None for s in scores)
    assert vid.video_score == pytest.approx(np.mean(scores))
    # the per-frame probability is the detector's sigmoid on that crop
    from benchmark.predict import face_frames

    _, frames = face_frames(files["face"], 1)
    with torch.no_grad():
        p = torch.sigmoid(model(make_batch(frames, model.data_spec, "face")).logits).item()
    assert img.video_score == pytest.approx(p, abs=1e-6)


@pytest.mark.parametrize("name", ["resnet34", "sfam"])
def test_predict_scores_are_the_modules_predict_step(
    files: dict[str, Path], tmp_path: Path, name: str
) -> None:
    """``predict_path`` scores through the LightningModule's ``predict_step``: same probabilities, and the
    typed inference maps (SFAM's patch map and region scores; none for a CNN) without training internals."""
    from benchmark.predict import face_frames
    from detectors import DetectorAux

    model = load_detector(files["ckpt"] if name == "resnet34" else _checkpoint(tmp_path, name)).eval()
    pred = predict_path(model, files["clip"], n_frames=4)
    _, frames = face_frames(files["clip"], 4)
    batch = make_batch([f for f in frames if f.status == "ok"], model.data_spec, "clip")
    with torch.no_grad():
        scored = model.predict_step(batch, 0)
    assert scored.sample_id == batch.sample_id and len(scored.score) == 4
    assert [f["score"] for f in pred.frames] == scored.score.tolist()
    assert type(scored.aux) is DetectorAux  # the detector's own fields (SFAM's model output) are dropped
    has_maps = name == "sfam"
    assert (scored.aux.patch_fakeness is not None) == has_maps == (scored.aux.region_scores is not None)
    if has_maps:
        assert scored.aux.patch_fakeness.device.type == "cpu" and scored.aux.patch_fakeness.shape[0] == 4


def test_frames_without_a_face_are_reported_not_scored(files: dict[str, Path]) -> None:
    model = load_detector(files["ckpt"]).eval()
    pred = predict_path(model, files["blank"])
    assert pred.video_score is None and pred.frames[0]["status"] == "no_face"


def test_cli_json_and_table(files: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    assert main([str(files["ckpt"]), str(files["face"]), str(files["blank"]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["detector"] == "resnet34" and len(out["inputs"]) == 2
    assert out["inputs"][0]["n_scored"] == 1 and out["inputs"][1]["video_score"] is None
    assert main([str(files["ckpt"]), str(files["face"])]) == 0
    assert "p(fake)" in capsys.readouterr().out


def test_bad_inputs_are_refused(files: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    assert main([str(files["ckpt"]), str(files["face"]), "--detector", "xception"]) == 2
    assert "is a checkpoint of detector 'resnet34', not 'xception'" in capsys.readouterr().err
    assert main([str(files["ckpt"]), str(files["txt"])]) == 2
    assert "notes.txt is neither an image" in capsys.readouterr().err
    assert main([str(files["ckpt"]), str(files["face"].with_name("missing.png"))]) == 2
    assert "input not found" in capsys.readouterr().err
    assert main([str(files["face"].with_name("none.ckpt")), str(files["face"])]) == 2


def test_sfam_overlay(files: dict[str, Path], tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path, "sfam")
    assert main([str(ckpt), str(files["face"]), "--overlay", str(tmp_path / "ov"), "--json"]) == 0
    png = tmp_path / "ov" / "face-overlay.png"
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"


@pytest.fixture(scope="module")
def processed(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The face photo and the clip preprocessed as a ``folder`` dataset (4 frames per video, MTCNN)."""
    from datamodules.preprocess import preprocess_dataset

    tmp = tmp_path_factory.mktemp("processed")
    root = tmp / "ds"
    (root / "real").mkdir(parents=True)
    for k in ("face", "clip"):
        (root / "real" / files[k].name).write_bytes(files[k].read_bytes())
    return preprocess_dataset("P", "folder", root, tmp / "out", frames=4, backend="mtcnn", progress=False)


def test_crops_are_the_preprocessing_crops(files: dict[str, Path], processed: Path) -> None:
    """predict's face crops equal the crops preprocessing writes for the same files (same pipeline)."""
    import pandas as pd

    from benchmark.predict import face_frames

    manifest = processed
    rows = pd.read_parquet(manifest)
    rows = rows[rows.status == "ok"]
    assert len(rows) == 5  # 1 image + 4 video frames
    for k in ("face", "clip"):
        _, frames = face_frames(files[k], 4, backend="mtcnn")
        mine = {f.frame_index: f.crop for f in frames if f.status == "ok"}
        theirs = rows[rows.video_id.str.contains(files[k].stem)]
        assert sorted(mine) == sorted(theirs.frame_index.astype(int))
        for fi, crop_path in zip(theirs.frame_index.astype(int), theirs.crop_path, strict=True):
            ref = cv2.cvtColor(cv2.imread(str(manifest.parent / crop_path)), cv2.COLOR_BGR2RGB)
            assert np.array_equal(mine[fi], ref), f"{k} frame {fi}: crop differs from preprocessing"


@pytest.mark.parametrize("name", ["resnet34", "sfam"])
def test_predict_scores_equal_the_runner_test_loader(
    files: dict[str, Path], processed: Path, tmp_path: Path, name: str
) -> None:
    """A file scored by ``benchmark.predict`` gets exactly the probability the runner's test loader gives
    its preprocessed crops: same input tensors (image, and region masks for SFAM) bit for bit, and the
    same probabilities. The loader's batches (4 clip frames, then the photo) are the batches predict
    forms per file, so even the convolutions run the same way and the probabilities are equal exactly,
    not just to float32 rounding."""
    from benchmark.predict import face_frames
    from datamodules.loading.datamodule import ForgeryDataModule

    model = load_detector(files["ckpt"] if name == "resnet34" else _checkpoint(tmp_path, name)).eval()
    spec = model.data_spec
    dm = ForgeryDataModule(spec, train="P", tests=["P"], manifests={"P": processed}, frames_test=4,
                           eval_batch_size=4, augment=False)  # fmt: skip
    dm.setup("test")
    loader: dict[tuple[str, int], tuple[float, dict[str, torch.Tensor]]] = {}
    with torch.no_grad():
        for batch in dm.test_dataloader()[0]:
            probs = torch.sigmoid(model(batch).logits)
            for i, sid in enumerate(batch.sample_id):
                video, frame = sid.rsplit("/", 1)
                tensors = {"image": batch.image[i]}
                if spec.region_masks:
                    tensors["region_masks"] = batch.region_masks[i]
                loader[(video.rsplit("/", 1)[1], int(frame))] = (probs[i].item(), tensors)
    assert len(loader) == 5
    scored = 0
    for k in ("face", "clip"):
        pred = predict_path(model, files[k], n_frames=4, backend="mtcnn")
        _, frames = face_frames(files[k], 4, backend="mtcnn")
        batch = make_batch([f for f in frames if f.status == "ok"], spec, files[k].stem)
        for f, sid in zip(pred.frames, batch.sample_id, strict=True):
            p, tensors = loader[(files[k].stem, f["frame_index"])]
            assert f["score"] == p, f"{k} frame {f['frame_index']}: predict {f['score']} != loader {p}"
            j = batch.sample_id.index(sid)
            assert torch.equal(batch.image[j], tensors["image"])
            if spec.region_masks:
                assert torch.equal(batch.region_masks[j], tensors["region_masks"])
            scored += 1
    assert scored == 5

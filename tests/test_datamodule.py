"""ForgeryDataModule on small synthetic manifests written from real aligned faces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from datamodules.loading.datamodule import ForgeryDataModule
from datamodules.loading.sampler import TrainBatchSampler
from datamodules.manifest import (
    COLUMNS,
    DTYPES,
    STATUSES,
    DataError,
    manifest_path,
    read_manifest,
    spread_frames,
    write_manifest,
)
from datamodules.media.regions import REGIONS
from datamodules.spec import DataSpec
from tests.real_faces import aligned_face

SIDE = 96
FRAMES = [0, 5, 10, 15, 20, 25]  # frame 15 of every video failed face detection


def _write_dataset(root: Path, name: str, splits: dict[str, dict[str, int]], with_landmarks=True) -> Path:
    """Videos per split: {"train": {"real": 2, "A": 2, "B": 1}, ...}; 6 sampled frames, one no_face."""
    out = root / name
    (out / "crops").mkdir(parents=True)
    faces = [aligned_face(n) for n in ("astronaut", "grace_hopper")]
    rows = []
    k = 0
    for split, methods in splits.items():
        for method, n_videos in methods.items():
            for v in range(n_videos):
                crop, lm = faces[k % 2]
                k += 1
                crop = cv2.resize(crop, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
                lm = (lm * SIDE / 256).astype(np.float32)
                label = 0 if method == "real" else 1
                vid = f"{name}/{method}/{split}{v:03d}"
                for f in FRAMES:
                    stem = f"crops/{method}_{split}{v}_{f}"
                    status = "no_face" if f == 15 else "ok"
                    img = np.clip(crop.astype(int) + (f - 12), 0, 255).astype(np.uint8)  # frames differ
                    cv2.imwrite(str(out / f"{stem}.png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
                    if with_landmarks:
                        np.save(out / f"{stem}.npy", lm)
                    mask_rel = ""
                    if label:
                        m = np.zeros((SIDE, SIDE), np.uint8)
                        m[30:70, 25:70] = 255
                        mask_rel = f"{stem}_mask.png"
                        cv2.imwrite(str(out / mask_rel), m)
                    rows.append(
                        dict(
                            dataset=name,
                            split=split,
                            label=label,
                            method=method,
                            compression="raw",
                            video_id=vid,
                            frame_index=f,
                            crop_path=f"{stem}.png" if status == "ok" else "",
                            landmarks_path=f"{stem}.npy" if with_landmarks and status == "ok" else "",
                            mask_path=mask_rel if status == "ok" else "",
                            status=status,
                            reason="" if status == "ok" else "no face found",
                        )
                    )
    return write_manifest(rows, manifest_path(root, name))


@pytest.fixture(scope="module")
def manifests(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("processed")
    return {
        "src": _write_dataset(
            root,
            "src",
            {"train": {"real": 2, "A": 2, "B": 1}, "val": {"real": 1, "A": 1}, "test": {"real": 1, "B": 1}},
        ),
        "other": _write_dataset(root, "other", {"test": {"real": 1, "X": 1}}),
    }


def _dm(manifests, spec, **kw) -> ForgeryDataModule:
    args = dict(train="src", tests=["other", "src"], manifests=manifests, batch_size=4, frames_train=3)
    args.update(frames_test=2, augment=True, seed=0, num_workers=0)
    args.update(kw)
    dm = ForgeryDataModule(spec, **args)
    dm.setup("fit")
    return dm


def test_spread_frames_is_even_and_centred():
    assert spread_frames(list(range(10)), 4) == [1, 3, 6, 8]
    assert spread_frames(list(range(100)), 4) == [12, 37, 62, 87]
    assert spread_frames(list(range(3)), 8) == [0, 1, 2]
    assert spread_frames(list(range(5)), 1) == [2]


def test_manifest_round_trip_keeps_columns_and_dtypes(manifests, tmp_path):
    df = read_manifest(manifests["src"], "src")
    assert tuple(df.columns) == COLUMNS
    assert {c: str(df[c].dtype) for c in COLUMNS} == DTYPES
    assert set(df["status"]) <= set(STATUSES)
    df.drop(columns=["status", "reason"]).to_parquet(tmp_path / "m.parquet")
    with pytest.raises(DataError, match=r"lacks columns \['status'\]"):  # reason only informs people
        read_manifest(tmp_path / "m.parquet", "m")
    with pytest.raises(ValueError, match="cannot be a folder name"):
        manifest_path(tmp_path, "FF++/DF")
    assert manifest_path(tmp_path, "FF++") == tmp_path / "FF++" / "manifest.parquet"


def test_batch_fields_follow_the_spec(manifests):
    spec = DataSpec(input_size=64, region_masks=True, forgery_masks=True, method_ids=True, mask_size=32)
    dm = _dm(manifests, spec)
    assert dm.methods == ["A", "B"]
    assert dm.skipped["src"] == {"no_face": 9}  # 9 videos, one failed frame each
    for b in list(dm.train_dataloader())[:2]:
        assert b.image.shape == (4, 3, 64, 64) and b.image.dtype == torch.float32
        assert b.region_masks.shape == (4, len(REGIONS), 32, 32)
        torch.testing.assert_close(b.region_masks.sum(1), torch.ones(4, 32, 32))
        assert b.forgery_mask.shape == (4, 1, 32, 32)
        for i in range(4):
            real = b.label[i] == 0
            assert (b.forgery_mask[i].max() == 0) if real else (b.forgery_mask[i].max() > 0.5)
            expected = 0 if real else 1 + dm.methods.index(b.method[i])
            assert b.method_id[i] == expected
            assert b.sample_id[i].startswith(b.video_id[i] + "/")
    plain = _dm(manifests, DataSpec(input_size=64))
    b = next(iter(plain.train_dataloader()))
    assert b.region_masks is None and b.forgery_mask is None and b.method_id is None


def test_frames_are_spread_over_ok_frames_per_stage(manifests):
    dm = _dm(manifests, DataSpec(input_size=64))
    ok = [0, 5, 10, 20, 25]  # frame 15 failed
    for ds, k in ((dm.train_set, 3), (dm.val_set, 2)):
        by_video: dict[str, list[int]] = {}
        for v, f in zip(ds.rows["video_id"], ds.rows["frame_index"], strict=True):
            by_video.setdefault(v, []).append(f)
        for frames in by_video.values():
            assert sorted(frames) == [ok[i] for i in spread_frames(ok, k)]
    assert len(dm.train_set) == 5 * 3 and len(dm.val_set) == 2 * 2
    assert set(np.asarray(dm.val_set.rows["video_id"])) == {"src/real/val000", "src/A/val000"}


def test_paired_batches_and_method_filter_with_sbi(manifests):
    spec = DataSpec(input_size=64, paired=True, method_ids=True, forgery_masks=True)
    dm = _dm(manifests, spec, batch_size=6, train_methods=["B"], sbi_prob=0.5, seed=3)
    assert dm.methods == ["B", "sbi"]
    batches = list(dm.train_dataloader())
    assert batches
    methods = set()
    for b in batches:
        assert b.is_paired()
        half = len(b) // 2
        assert (b.method_id[:half] == 0).all()
        assert set(b.method[half:]) <= {"B", "sbi"}
        methods |= set(b.method[half:])
        for i in range(half, len(b)):
            assert b.method_id[i] == (1 if b.method[i] == "B" else 2)
            assert b.forgery_mask[i].max() > 0
    assert "A" not in {m for b in batches for m in b.method}
    assert set(dm.val_set.rows["method"]) <= {"real", "B"}
    with pytest.raises(DataError, match="even"):
        _dm(manifests, spec, batch_size=5).train_dataloader()


def test_sbi_turns_reals_into_fakes_with_masks(manifests):
    spec = DataSpec(input_size=64, forgery_masks=True)
    dm = _dm(manifests, spec, train_methods=[], sbi_prob=1.0, augment=False, batch_size=5)
    b = next(iter(dm.train_dataloader()))
    assert (b.label == 1).all() and set(b.method) == {"sbi"}
    assert all(v.endswith("#sbi") for v in b.video_id)
    assert (b.forgery_mask.flatten(1).max(1).values > 0.2).all()
    assert set(dm.val_set.rows["method"]) == {"real", "A"}  # validation keeps the source's fakes


def test_deterministic_under_a_seed_and_independent_of_workers(manifests):
    spec = DataSpec(input_size=64, region_masks=True)

    def first(seed, workers=0):
        dm = _dm(manifests, spec, seed=seed, num_workers=workers, sbi_prob=0.3)
        loader = dm.train_dataloader()
        return [next(iter(loader)) for _ in range(2)]  # two epochs

    a, b = first(0), first(0)
    assert a[0].sample_id == b[0].sample_id and torch.equal(a[0].image, b[0].image)
    assert torch.equal(a[1].region_masks, b[1].region_masks)
    assert a[0].sample_id != a[1].sample_id or not torch.equal(a[0].image, a[1].image)  # epochs differ
    c = first(1)
    assert c[0].sample_id != a[0].sample_id or not torch.equal(c[0].image, a[0].image)
    w = first(0, workers=2)
    assert w[0].sample_id == a[0].sample_id and torch.equal(w[0].image, a[0].image)


def test_batched_fetch_equals_collated_items(manifests):
    """``__getitems__`` writes samples straight into batch tensors; it must match item-by-item collation."""
    from datamodules.batch import collate

    spec = DataSpec(input_size=64, region_masks=True, forgery_masks=True, method_ids=True, mask_size=32)
    dm = _dm(manifests, spec, sbi_prob=0.5, seed=4)
    keys = next(iter(dm.train_dataloader().batch_sampler))
    fast, slow = dm.train_set.__getitems__(keys), collate([dm.train_set[k] for k in keys])
    for name in ("image", "region_masks", "forgery_mask", "label", "method_id"):
        torch.testing.assert_close(getattr(fast, name), getattr(slow, name), rtol=0, atol=0, msg=name)
    assert fast.sample_id == slow.sample_id and fast.method == slow.method
    rows = list(range(len(dm.val_set)))[:3]
    torch.testing.assert_close(
        dm.val_set.__getitems__(rows).image, collate([dm.val_set[r] for r in rows]).image
    )


def test_val_and_one_test_loader_per_dataset_in_order(manifests):
    dm = _dm(manifests, DataSpec(input_size=64, forgery_masks=True), eval_batch_size=50)
    val = next(iter(dm.val_dataloader()))
    assert set(val.dataset) == {"src"} and val.forgery_mask is not None
    dm.setup("test")
    loaders = dm.test_dataloader()
    assert len(loaders) == 2
    got = [next(iter(ld)) for ld in loaders]
    assert set(got[0].dataset) == {"other"} and set(got[1].dataset) == {"src"}
    assert set(got[0].method) == {"real", "X"} and len(got[0]) == 4
    assert all("test" in v for v in got[1].video_id)
    again = [next(iter(ld)) for ld in dm.test_dataloader()]
    assert torch.equal(again[0].image, got[0].image)  # evaluation has no randomness


def test_bad_inputs_give_clear_errors(manifests, tmp_path):
    spec = DataSpec(input_size=64)
    with pytest.raises(DataError, match=r"unknown dataset 'nope'; known: other, src"):
        ForgeryDataModule(spec, train="nope", tests=[], manifests=manifests)
    with pytest.raises(DataError, match=r"'other' has no ok frames in split 'train'"):
        _dm(manifests, spec, train="other")
    noval = _write_dataset(tmp_path, "noval", {"train": {"real": 1, "A": 1}})
    with pytest.raises(
        DataError, match=r"'noval' has no ok frames in split 'val' \(splits present: \['train'\]\)"
    ):
        _dm({"noval": noval}, spec, train="noval", tests=[])
    with pytest.raises(DataError, match=r"train_methods \['Z'\].*known: \['A', 'B'\]"):
        _dm(manifests, spec, train_methods=["Z"])
    nolm = _write_dataset(tmp_path, "nolm", {"train": {"real": 1, "A": 1}, "val": {"real": 1}}, False)
    with pytest.raises(DataError, match=r"region masks.*dataset 'nolm'"):
        _dm({"nolm": nolm}, DataSpec(input_size=64, region_masks=True), train="nolm", tests=[])
    _dm({"nolm": nolm}, spec, train="nolm", tests=[])  # fine without region masks
    df = pd.read_parquet(nolm)
    df.loc[df["label"] == 1, "mask_path"] = ""
    df.to_parquet(nolm)
    with pytest.raises(DataError, match=r"forgery_masks.*'nolm' has 3 fake frames without mask_path"):
        _dm({"nolm": nolm}, DataSpec(input_size=64, forgery_masks=True), train="nolm", tests=[])
    train_ok = df[(df["split"] == "train") & (df["status"] == "ok")]["crop_path"]
    gone = [c for c in train_ok if c.endswith(("_0.png", "_10.png"))][:2]  # frames the loader selects
    for rel in gone:
        (nolm.parent / rel).unlink()
    with pytest.raises(DataError, match=r"'nolm': 2 of \d+ files .* missing, e.g. \[.*" + Path(gone[0]).name):
        _dm({"nolm": nolm}, spec, train="nolm", tests=[])
    with pytest.raises(DataError, match="lacks columns"):
        df.drop(columns=["status"]).to_parquet(tmp_path / "bad.parquet")
        _dm({"bad": tmp_path / "bad.parquet"}, spec, train="bad", tests=[])


def test_train_sampler_shards_batches_across_ranks(monkeypatch):
    labels = np.array([0, 1] * 11)
    single = list(TrainBatchSampler(labels, 4, seed=2, sbi_prob=0.0, paired=False))
    assert len(single) == 5 and all(len(b) == 4 for b in single)
    shards = []
    for rank in (0, 1):
        monkeypatch.setattr(TrainBatchSampler, "_rank_world", staticmethod(lambda r=rank: (r, 2)))
        sampler = TrainBatchSampler(labels, 4, seed=2, sbi_prob=0.0, paired=False)
        shards.append(list(sampler))
        assert len(sampler) == len(shards[-1]) == 2  # equal counts on every rank
    assert shards[0] == single[0:4:2] and shards[1] == single[1:4:2]


def test_corrupt_crop_names_the_file(tmp_path):
    path = _write_dataset(tmp_path, "bad", {"train": {"real": 1, "A": 1}, "val": {"real": 1}})
    dm = _dm({"bad": path}, DataSpec(input_size=64), train="bad", tests=[])
    victim = path.parent / dm.train_set.rows["crop_path"][0]
    victim.write_bytes(b"")  # zero-byte PNG: exists, cannot be decoded
    with pytest.raises(DataError, match=f"cannot read crop .*{victim.name}"):
        dm.train_set[0]

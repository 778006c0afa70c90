"""Packed crop stores (datamodules.pack): identical batches to the PNG store, stale / corrupt / truncated packs,
resume of an interrupted pack, the CLIs, lazy maps in DataLoader workers."""

from __future__ import annotations

import json
import pickle
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from datamodules.loading.datamodule import ForgeryDataModule
from datamodules.loading.store import PackedStore, PngStore, StalePackWarning
from datamodules.manifest import DataError, read_manifest, write_manifest
from datamodules.pack import format as fmt
from datamodules.pack.cli import main as pack_main
from datamodules.pack.reader import PackReader, pack_state
from datamodules.pack.writer import pack_dataset
from datamodules.spec import DataSpec
from tests.test_datamodule import _write_dataset

SPLITS = {"train": {"real": 2, "A": 2, "B": 1}, "val": {"real": 1, "A": 1}, "test": {"real": 1, "B": 1}}
FULL = DataSpec(input_size=64, region_masks=True, forgery_masks=True, method_ids=True)


@pytest.fixture(scope="module")
def packed_root(tmp_path_factory) -> Path:
    """A processed root with datasets ``src`` (packed 4 rows per shard) and ``other``, PNG stores and packs."""
    root = tmp_path_factory.mktemp("processed")
    _write_dataset(root, "src", SPLITS)
    _write_dataset(root, "other", {"test": {"real": 1, "X": 1}})
    pack_dataset(root / "src", shard_rows=4)
    pack_dataset(root / "other")
    return root


def _copy(root: Path, tmp_path: Path, name: str = "src") -> Path:
    shutil.copytree(root / name, tmp_path / name)
    return tmp_path / name


def _manifests(root: Path) -> dict[str, Path]:
    return {n: root / n / "manifest.parquet" for n in ("src", "other") if (root / n).is_dir()}


def _dm(root: Path, store: str, spec: DataSpec = FULL, **kw) -> ForgeryDataModule:
    args = dict(train="src", tests=["src", *(["other"] if (root / "other").is_dir() else [])])
    args.update(manifests=_manifests(root), batch_size=4, frames_train=3, frames_test=2, seed=3, store=store)
    args.update(kw)
    dm = ForgeryDataModule(spec, **args)
    dm.setup(None)
    return dm


def _assert_same(a, b) -> None:
    for f in ("image", "label", "method_id", "region_masks", "forgery_mask"):
        x, y = getattr(a, f), getattr(b, f)
        assert (x is None) == (y is None), f
        if x is not None:
            assert torch.equal(x, y), f
    assert (a.sample_id, a.video_id, a.method) == (b.sample_id, b.video_id, b.method)


def _all_batches(dm: ForgeryDataModule) -> list:
    loaders = [dm.train_dataloader(), dm.val_dataloader(), *dm.test_dataloader()]
    return [b for loader in loaders for b in loader]


@pytest.mark.parametrize("augment", [False, True])
def test_packed_and_png_stores_give_bitwise_identical_batches(packed_root, augment):
    png, packed = _dm(packed_root, "png", augment=augment), _dm(packed_root, "packed", augment=augment)
    assert isinstance(png.train_set.store, PngStore) and isinstance(packed.train_set.store, PackedStore)
    a, b = _all_batches(png), _all_batches(packed)
    assert len(a) == len(b) > 5
    for x, y in zip(a, b, strict=True):
        _assert_same(x, y)


def test_sbi_and_paired_batches_are_identical_from_the_pack(packed_root):
    spec = DataSpec(input_size=64, region_masks=True, forgery_masks=True, paired=True)
    png = _dm(packed_root, "png", spec, sbi_prob=0.5, augment=True)
    packed = _dm(packed_root, "auto", spec, sbi_prob=0.5, augment=True)
    assert isinstance(packed.train_set.store, PackedStore)  # auto: the fresh pack
    methods = []
    for x, y in zip(png.train_dataloader(), packed.train_dataloader(), strict=True):
        _assert_same(x, y)
        methods += x.method
    assert "sbi" in methods


def test_workers_map_shards_lazily_after_fork(packed_root):
    dm = _dm(packed_root, "packed", augment=True)
    reader = dm.train_set.store.reader
    assert reader._maps == {}  # setup only looked rows up: nothing mapped in the parent
    in_process = list(dm.train_dataloader())
    assert reader._maps  # the in-process run mapped shards in this process
    reader._maps.clear()
    dm.num_workers = 2
    in_workers = list(dm.train_dataloader())
    assert reader._maps == {}  # the workers mapped their own; the parent never did
    for x, y in zip(in_process, in_workers, strict=True):
        _assert_same(x, y)
    clone = pickle.loads(pickle.dumps(reader))  # what a spawned worker receives: no maps
    assert clone._maps == {} and np.array_equal(clone.crop(0), reader.crop(0))


def test_pack_layout_index_and_zero_copy_views(packed_root):
    base = packed_root / "src"
    info = json.loads((base / fmt.FOLDER / fmt.INFO).read_text())
    df = read_manifest(base / "manifest.parquet", "src")
    ok = df[df.status == "ok"]
    assert sum(s["rows"] for s in info["shards"]) == len(ok) and all(s["rows"] <= 4 for s in info["shards"])
    index = pd.read_parquet(base / fmt.FOLDER / fmt.INDEX)
    assert list(index.columns) == list(fmt.INDEX_DTYPES)
    # rows in (video, frame) order; manifest_row points back at the manifest's row
    keys = list(
        zip(df.loc[index.manifest_row, "video_id"], df.loc[index.manifest_row, "frame_index"], strict=True)
    )
    assert keys == sorted(keys)
    assert (df.loc[index.manifest_row, "crop_path"].to_numpy() == index.crop_path.to_numpy()).all()
    assert (index.offset % fmt.ALIGN == 0).all()
    reader = PackReader.open(base)
    j = int(np.flatnonzero(index.mask_h > 0)[0])
    crop, mask, lm = reader.crop(j), reader.mask(j), reader.landmarks(j)
    assert not crop.flags.writeable and not crop.flags.owndata  # a view of the map, no copy
    row = df.loc[index.manifest_row[j]]
    png = PngStore(base, [row.crop_path], [row.landmarks_path], [row.mask_path])
    assert np.array_equal(crop, png.crop(0)) and np.array_equal(mask, png.mask(0))
    assert lm.dtype == png.landmarks(0).dtype and np.array_equal(lm, png.landmarks(0))
    assert reader.verify() == len(ok)


def test_stale_pack_is_detected_and_ignored_with_a_warning_or_refused(packed_root, tmp_path):
    base = _copy(packed_root, tmp_path)
    assert pack_state(base) == ("ok", "")
    plain = _copy(packed_root, tmp_path, "other")
    shutil.rmtree(plain / fmt.FOLDER)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no pack at all: the PNG store, silently
        dm = ForgeryDataModule(
            FULL, train="src", tests=["other"], manifests=_manifests(tmp_path), batch_size=4
        )
        dm.setup(None)
    assert isinstance(dm.train_set.store, PackedStore) and isinstance(dm.test_sets[0].store, PngStore)
    df = read_manifest(base / "manifest.parquet", "src")
    write_manifest(df.iloc[:-1].to_dict("records"), base / "manifest.parquet")  # rewritten after packing
    state, why = pack_state(base)
    assert state == "stale" and "the manifest changed" in why
    manifests = {"src": base / "manifest.parquet"}
    with pytest.warns(StalePackWarning, match="stale"):
        dm = ForgeryDataModule(FULL, train="src", tests=["src"], manifests=manifests, batch_size=4)
        dm.setup("fit")
    assert isinstance(dm.train_set.store, PngStore)
    with pytest.raises(DataError, match="store='packed' but the pack in .* is stale"):
        ForgeryDataModule(FULL, train="src", tests=["src"], manifests=manifests, store="packed").setup("fit")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # store="png" never looks at the pack
        ForgeryDataModule(FULL, train="src", tests=["src"], manifests=manifests, store="png").setup("fit")
    pack_dataset(base, shard_rows=4)  # repacking makes it current again
    assert pack_state(base) == ("ok", "")
    (base / "preprocess.json").write_text('{"size": 128}')  # other preprocessing options, same paths
    assert pack_state(base)[0] == "stale" and "preprocess.json" in pack_state(base)[1]
    with pytest.raises(DataError, match="store must be one of"):
        ForgeryDataModule(FULL, train="src", tests=[], manifests=manifests, store="lmdb")


def test_truncated_shard_is_a_data_error_naming_it(packed_root, tmp_path):
    base = _copy(packed_root, tmp_path)
    shard = base / fmt.FOLDER / fmt.shard_name(1)
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(DataError, match=rf"pack shard {shard} is .* bytes, pack.json says .*truncated"):
        _dm(tmp_path, "auto")


def test_corrupt_record_is_a_data_error_naming_the_shard_and_crop(packed_root, tmp_path):
    base = _copy(packed_root, tmp_path)
    index = pd.read_parquet(base / fmt.FOLDER / fmt.INDEX)
    j = 5
    shard = base / fmt.FOLDER / fmt.shard_name(int(index.shard[j]))
    data = bytearray(shard.read_bytes())
    data[int(index.offset[j]) + 1000] ^= 0xFF  # one flipped byte inside the crop
    shard.write_bytes(bytes(data))
    reader = PackReader.open(base)
    reader.crop(j - 1)  # its neighbours still read
    with pytest.raises(
        DataError, match=rf"pack shard {shard} is corrupt: the record of {index.crop_path[j]}"
    ):
        reader.crop(j)
    with pytest.raises(DataError, match="is corrupt"):
        reader.verify()


def test_interrupted_pack_resumes_without_rewriting_finished_shards(packed_root, tmp_path):
    base = _copy(packed_root, tmp_path)
    shutil.rmtree(base / fmt.FOLDER)
    index = pd.read_parquet(packed_root / "src" / fmt.FOLDER / fmt.INDEX)
    victim = base / index.crop_path[9]  # a row of the third shard (4 rows per shard)
    good = victim.read_bytes()
    victim.write_bytes(b"not a png")
    with pytest.raises(DataError, match=f"cannot read crop {victim}"):
        pack_dataset(base, shard_rows=4)
    folder = base / fmt.FOLDER
    assert pack_state(base)[0] == "incomplete" and not (folder / fmt.INFO).exists()
    done = {k: (folder / fmt.shard_name(k)).stat() for k in (0, 1)}
    assert not (folder / fmt.part_name(2)).exists()
    with pytest.warns(StalePackWarning, match="unfinished"):
        ForgeryDataModule(FULL, train="src", tests=[], manifests={"src": base / "manifest.parquet"}).setup(
            "fit"
        )
    victim.write_bytes(good)
    pack_dataset(base, shard_rows=4)
    for k, st in done.items():  # finished shards were kept, not rewritten
        now = (folder / fmt.shard_name(k)).stat()
        assert (now.st_ino, now.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    assert pack_state(base) == ("ok", "")
    ref = packed_root / "src" / fmt.FOLDER  # an uninterrupted pack of the same data
    assert pd.read_parquet(folder / fmt.INDEX).equals(pd.read_parquet(ref / fmt.INDEX))
    for s in json.loads((ref / fmt.INFO).read_text())["shards"]:
        assert (folder / s["file"]).read_bytes() == (ref / s["file"]).read_bytes()
    again = (folder / fmt.INFO).stat().st_mtime_ns
    pack_dataset(base, shard_rows=4)  # complete and current: a no-op
    assert (folder / fmt.INFO).stat().st_mtime_ns == again


def test_pack_cli_verifies_and_names_a_missing_dataset(packed_root, tmp_path, capsys):
    _copy(packed_root, tmp_path)
    assert (
        pack_main(["--dataset", "src", "--processed-root", str(tmp_path), "--shard-rows", "6", "--verify"])
        == 0
    )
    out = capsys.readouterr().out
    assert "src/packed: " in out and "rows" in out and "verified" in out
    assert json.loads((tmp_path / "src" / fmt.FOLDER / fmt.INFO).read_text())["plan"]["shard_rows"] == 6
    with pytest.raises(SystemExit) as e:
        pack_main(["--dataset", "nope", "--processed-root", str(tmp_path)])
    assert e.value.code == 2 and "manifest of dataset 'nope' not found" in capsys.readouterr().err


def test_preprocess_pack_flag_packs_what_preprocessing_wrote(tmp_path):
    from datamodules.preprocess import main as preprocess_main
    from tests.facevideos import make_ffpp

    root = make_ffpp(tmp_path / "ffpp", n_frames=4, methods=("Deepfakes",))
    out = tmp_path / "processed"
    argv = ["--dataset", "FF++", "--layout", "ffpp", "--root", str(root), "--out", str(out)]
    assert preprocess_main([*argv, "--frames", "2", "--workers", "1", "--pack"]) == 0
    assert pack_state(out / "FF++") == ("ok", "")
    spec = DataSpec(input_size=64, region_masks=True, forgery_masks=True)
    kw = dict(train="FF++", tests=[], manifests={"FF++": out / "FF++" / "manifest.parquet"}, batch_size=2)
    png, packed = ForgeryDataModule(spec, store="png", **kw), ForgeryDataModule(spec, store="packed", **kw)
    png.setup("fit")
    packed.setup("fit")
    for x, y in zip(png.train_dataloader(), packed.train_dataloader(), strict=True):
        _assert_same(x, y)


def test_packed_crops_have_input_keys_from_their_checksums(packed_root):
    """Evaluation samples read from a pack get frozen-cache input keys whose stamp is the xxh3 of the
    record's bytes in the shard (no crop file is touched); the dataset and sample parts equal the PNG
    store's; a rewritten record would change the key."""
    import xxhash

    png, packed = _dm(packed_root, "png"), _dm(packed_root, "packed")
    a, b = next(iter(png.val_dataloader())), next(iter(packed.val_dataloader()))
    assert len(a.input_key) == len(b.input_key) == len(b.sample_id) > 0
    reader = packed.val_set.store.reader
    for k, (ka, kb) in enumerate(zip(a.input_key, b.input_key, strict=True)):
        identity, sample, kind, digest = kb.split(":")[0], kb.split(":")[1], *kb.rsplit(":", 2)[1:]
        assert sample == b.sample_id[k].split(":")[0] and ka.startswith(f"{identity}:{sample}:")
        j = int(packed.val_set.store.entries[k])
        shard = reader.shard_paths[int(reader._shard[j])].read_bytes()
        off, n = int(reader._offset[j]), int(reader._nbytes[j])
        assert kind == "xxh3" and int(digest, 16) == xxhash.xxh3_64_intdigest(shard[off : off + n])

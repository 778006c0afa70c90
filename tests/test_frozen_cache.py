"""The frozen-feature cache: identical scores with and without it, keys, atomic packs, pruning, input keys."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
import torch

from benchmark.runner.score_writer import ScoreWriter
from datamodules.loading.input_keys import input_identity, input_key
from datamodules.spec import DataSpec
from detectors import create_detector, get_detector_class
from detectors.frozen_cache import FrozenFeatureCache
from detectors.frozen_cache import main as cache_main
from tests.helpers import SyntheticDataModule, make_batch, quiet_trainer

SETS = ("a", "b")


def _tiny(name: str, seed: int, backbone_from=None):
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_detector(name, **get_detector_class(name).tiny_config)
    if backbone_from is not None:  # one frozen tower shared by seeds, as pretrained weights are
        model.model.visual.load_state_dict(backbone_from.model.visual.state_dict())
    return model.eval()


def _score(model, n: int = 10, batch_size: int = 4) -> tuple[torch.Tensor, list[str]]:
    """The probabilities a cell stores: one Trainer.test over the evaluation sets with the ScoreWriter."""
    dm = SyntheticDataModule(model.data_spec, n=n, batch_size=batch_size, test_sets=SETS)
    writer = ScoreWriter()
    quiet_trainer(callbacks=[writer]).test(model, datamodule=dm, verbose=False)
    return torch.tensor([r["score"] for r in writer.rows], dtype=torch.float64), [
        r["sample_id"] for r in writer.rows
    ]


@pytest.mark.parametrize("name", ["sfam", "clip_linear"])
def test_scores_with_the_cache_are_bitwise_the_scores_without(name, tmp_path):
    """Five seeds (one shared tower, different trainable parts): uncached, then cached from an empty
    cache (the first seed fills it, the others read it), then re-scored from the warm cache."""
    first = _tiny(name, 0)
    models = [first] + [_tiny(name, s, backbone_from=first) for s in range(1, 5)]
    with torch.no_grad():
        for i, m in enumerate(models[1:], 1):  # make the trainable parts differ for sure
            for p in m.parameters():
                if p.requires_grad:
                    p.add_(0.01 * i)
    uncached = [_score(m) for m in models]
    cache = FrozenFeatureCache(tmp_path / "cache")
    for m in models:
        assert m.attach_frozen_cache(cache) == "eval"
    cached = [_score(m) for m in models]
    batches = 2 * 3  # two sets of 10 samples in batches of 4
    assert cache.stats.misses == batches and cache.stats.hits == 4 * batches
    rescored = [_score(m) for m in models]
    assert cache.stats.hits == 9 * batches and cache.stats.misses == batches
    for (u, ids), (c, cids), (r, rids) in zip(uncached, cached, rescored, strict=True):
        assert ids == cids == rids
        assert torch.equal(u, c) and torch.equal(u, r)  # bitwise
    assert not torch.equal(uncached[0][0], uncached[1][0])  # the seeds do differ
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == batches


def test_another_tower_layers_or_batch_is_another_pack(tmp_path):
    cache = FrozenFeatureCache(tmp_path)
    a = _tiny("sfam", 0)
    a.attach_frozen_cache(cache)
    batch = make_batch(a.data_spec, n=4)
    a.test_step(batch, 0)
    b = _tiny("sfam", 1)  # another random tower
    b.attach_frozen_cache(cache)
    b.test_step(batch, 0)
    assert cache.stats.misses == 2 and len({p.parent.parent for p in cache.packs()}) == 2
    lin = _tiny("clip_linear", 0)  # same tower as `a`, reads only the CLS embedding
    lin.attach_frozen_cache(cache)
    lin.test_step(batch, 0)
    assert cache.stats.misses == 3
    a.test_step(batch.select([1, 0, 2, 3]), 0)  # another composition: matmuls may differ in the last bits
    a.test_step(batch.select([0, 1, 2]), 0)
    assert cache.stats.misses == 5 and cache.stats.hits == 0
    a.test_step(batch, 0)
    assert cache.stats.hits == 1


def test_batches_without_input_keys_and_augmented_training_are_not_cached(tmp_path):
    cache = FrozenFeatureCache(tmp_path)
    m = _tiny("clip_linear", 0)
    m.attach_frozen_cache(cache, train=False)
    batch = make_batch(m.data_spec, n=4)
    keyless = batch.select(range(4))
    keyless.input_key = None
    m.test_step(keyless, 0)
    partial = batch.select(range(4))
    partial.input_key = [*batch.input_key[:3], ""]
    m.test_step(partial, 0)
    assert cache.stats.hits == cache.stats.misses == 0
    m.train()
    m.training_step(batch, 0)
    assert cache.stats.misses == 0  # train=False: training batches bypass the cache
    assert m.attach_frozen_cache(cache, train=True) == "train+eval"
    m.train()
    m.training_step(batch, 0)
    assert cache.stats.misses == 1
    fa = _tiny_fa()
    assert fa.attach_frozen_cache(cache) == "off" and fa.frozen_cache is None  # CLIP runs inside FA's adapter


def _tiny_fa():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_detector("forensics_adapter", **get_detector_class("forensics_adapter").tiny_config)


def test_training_from_cached_features_takes_the_same_steps(tmp_path):
    """Without augmentation, training batches may read the cache: two epochs over the same batches give
    bitwise the weights of uncached training."""
    finals = []
    for use in (False, True):
        m = _tiny("sfam", 0).train()
        m.attach_frozen_cache(FrozenFeatureCache(tmp_path / "c") if use else None, train=True)
        opt = torch.optim.AdamW(m.trainable_parameters(), lr=1e-3)
        batches = [make_batch(m.data_spec, n=4)] * 2
        for _ in range(2):
            for b in batches:
                opt.zero_grad()
                m.loss(b, m.forward_batch(b))["loss"].backward()
                opt.step()
        finals.append({k: v.clone() for k, v in m.state_dict().items()})
    assert all(torch.equal(finals[0][k], finals[1][k]) for k in finals[0])


def test_a_torn_or_foreign_pack_is_a_miss_and_is_replaced(tmp_path):
    cache = FrozenFeatureCache(tmp_path)
    m = _tiny("clip_linear", 0)
    m.attach_frozen_cache(cache)
    batch = make_batch(m.data_spec, n=4)
    want = m.test_step(batch, 0)
    (pack,) = cache.packs()
    data = pack.read_bytes()
    pack.write_bytes(data[: len(data) // 2])  # torn
    assert torch.equal(m.test_step(batch, 0), want) and cache.stats.misses == 2
    assert pack.read_bytes() == data  # rewritten whole
    pack.write_bytes(b"not a safetensors file")
    assert torch.equal(m.test_step(batch, 0), want) and cache.stats.misses == 3
    assert torch.equal(m.test_step(batch, 0), want) and cache.stats.hits == 1
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]  # no temporary leftovers


def test_prune_bound_and_cli(tmp_path, capsys):
    cache = FrozenFeatureCache(tmp_path)
    m = _tiny("sfam", 0)
    m.attach_frozen_cache(cache)
    spec = m.data_spec
    for i in range(4):
        m.test_step(make_batch(spec, n=4 + i), 0)
    packs = cache.packs()
    sizes = {p: p.stat().st_size for p in packs}
    for i, p in enumerate(sorted(packs, key=lambda p: sizes[p])):  # least recently used = smallest batch
        os.utime(p, ns=(10**18 + i, 10**18 + i))
    keep = max(sizes.values())
    cache.prune(keep)
    assert cache.packs() == [max(sizes, key=sizes.get)]
    assert cache_main(["stats", "--root", str(tmp_path)]) == 0
    assert "1 packs" in capsys.readouterr().out
    bounded = FrozenFeatureCache(tmp_path, max_bytes=keep + 1)
    m.attach_frozen_cache(bounded)
    m.test_step(make_batch(spec, n=5), 0)  # a write past the bound prunes the older pack
    assert len(bounded.packs()) == 1 and bounded.size() <= keep + 1
    assert cache_main(["prune", "--root", str(tmp_path), "--max-gb", "0"]) == 0
    assert not cache.packs()
    assert cache_main(["clear", "--root", str(tmp_path)]) == 0 and not tmp_path.exists()


# --------------------------------------------------------------------------- input keys (data side)
def test_input_keys_name_manifest_crop_transform_and_perturbation(tmp_path):
    from datamodules.loading.datamodule import ForgeryDataModule
    from datamodules.loading.eval_sets import EvalSet
    from datamodules.media.perturb import get_perturbation
    from tests.test_datamodule import _write_dataset

    spec = DataSpec(input_size=64)
    path = _write_dataset(
        tmp_path, "D", {"train": {"real": 2, "A": 2}, "val": {"real": 1, "A": 1}, "test": {"real": 1, "A": 1}}
    )

    def dm(**kw):
        return ForgeryDataModule(
            spec, "D", [EvalSet("D", "D")], {"D": path}, batch_size=4, frames_test=2, **kw
        )

    clean = dm(augment=True, sbi_prob=0.5)
    clean.setup("fit")
    clean.setup("test")
    (test,) = clean.test_dataloader()
    keys = next(iter(test)).input_key
    assert keys and all(keys) and len(set(keys)) == len(keys)
    assert next(iter(clean.val_dataloader())).input_key
    assert next(iter(clean.train_dataloader())).input_key is None  # augmented: no key
    blurred = dm(test_perturbation=get_perturbation("GB", 3))
    blurred.setup("test")
    bkeys = next(iter(blurred.test_dataloader()[0])).input_key
    assert [k.split(":", 1)[1] for k in bkeys] == [k.split(":", 1)[1] for k in keys]
    assert {k.split(":")[0] for k in bkeys}.isdisjoint({k.split(":")[0] for k in keys})
    # the identity part is the documented hash of manifest, spec, perturbation and code
    from datamodules.loading.input_keys import file_sha256, file_stamp

    assert keys[0].split(":")[0] == input_identity(file_sha256(path), spec)
    assert bkeys[0].split(":")[0] == input_identity(file_sha256(path), spec, get_perturbation("GB", 3))
    assert input_identity("m", spec, get_perturbation("GB", 0)) == input_identity("m", spec)
    assert input_identity("m", spec) != input_identity("m", DataSpec(input_size=32))
    # a crop rewritten under the same manifest gets a new key
    sample = keys[0].split(":")[1]
    crop = next(p for p in (tmp_path / "D" / "crops").glob("*.png"))
    before = input_key("x", sample, file_stamp(crop))
    os.utime(crop, ns=(1, 1))
    assert input_key("x", sample, file_stamp(crop)) != before


def test_self_blended_training_samples_have_no_key(tmp_path):
    from datamodules.loading.datamodule import ForgeryDataModule
    from tests.test_datamodule import _write_dataset

    spec = DataSpec(input_size=64, region_masks=False)
    path = _write_dataset(tmp_path, "D", {"train": {"real": 2, "A": 2}, "val": {"real": 1, "A": 1}})
    dm = ForgeryDataModule(
        spec, "D", [], {"D": path}, batch_size=8, augment=False, sbi_prob=1.0, frames_train=5
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    sbi = [m == "sbi" for m in batch.method]
    assert any(sbi) and not all(sbi)
    assert all((k == "") == s for k, s in zip(batch.input_key, sbi, strict=True))


def test_cell_records_the_cache_mode_and_scores_equal_without_it(tmp_path: Path):
    from benchmark.runner.cell import run_cell
    from benchmark.store import ScoreStore
    from tests.test_lean_checkpoints import _cells

    scores, records = {}, {}
    for use in (False, True):
        (cell,) = _cells(tmp_path / str(use), "clip_linear", tiny=True, epochs=2)
        cell = cell.with_runtime(frozen_cache=use)
        records[use] = run_cell(cell)
        df = ScoreStore(tmp_path / str(use) / "out/store").read_scores()
        scores[use] = df.sort_values(["test_set", "sample_id"])["score"].to_numpy()
    assert records[False]["frozen_cache"] == "off" and "frozen_cache_stats" not in records[False]
    assert records[True]["frozen_cache"] == "eval"  # clip_linear's recipe augments: no training cache
    assert records[True]["frozen_cache_stats"]["hits"] > 0
    assert (scores[True] == scores[False]).all()
    assert (tmp_path / "True/out/cache/frozen").is_dir() and not (tmp_path / "False/out/cache").exists()

"""Perf topic ``frozen_cache``: scoring a 5-seed SFAM grid with and without the frozen-feature cache.

Five SFAM detectors (ViT-B/16 at 224 px, random weights: speed does not depend on them) share one frozen
CLIP tower, as the seeds of a grid share the pretrained weights, and differ in their trainable modules.
Each scores the same evaluation set the way a cell does (one ``Trainer.test`` with the ``ScoreWriter``):

* baseline: without the cache (five CLIP forwards per image);
* with the cache, starting EMPTY: the first seed computes and stores CLIP's outputs, the other four read
  them (target: at most a quarter of the baseline's time, i.e. ``>= 4x``);
* re-scoring the five seeds from the warm cache (a perturbation sweep's clean column, a re-run).

Before timing, each model computes its tower's SHA-256 (the cache's scope), as a trained cell already has
(the lean checkpoints of its training hash the same tensors; the cost is its own figure). The batches are
prepared once, in memory, and served to every ``Trainer.test`` (the data loader's own
cost, the same with and without the cache, is the ``loader`` topic's). The stored probabilities are
compared: the topic fails if the cached ones differ from the uncached ones in any bit. The three
workloads are timed interleaved, round after round, so load from other processes hits them alike.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from pathlib import Path

import torch

from benchmark.perf.timing import Figure, duration, with_ratio

TOPIC = "frozen_cache"
SEEDS = 5


def _models(n_seeds: int) -> list:
    from detectors import create_detector
    from sfam.detector import SFAMDetector

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models: list[SFAMDetector] = []
        for seed in range(n_seeds):
            torch.manual_seed(seed)
            m = create_detector("sfam", pretrained=None)
            if not isinstance(m, SFAMDetector):
                raise TypeError(f"'sfam' built a {type(m).__name__}, not an SFAMDetector")
            if models:  # the shared frozen tower (pretrained weights in a real grid)
                m.model.visual.load_state_dict(models[0].model.visual.state_dict())
            models.append(m.eval())
    return models


def _datamodule(spec, n: int, batch: int):
    """One evaluation set of ``n`` synthetic images in batches of ``batch``, built once, kept in memory."""
    import lightning as L

    from datamodules.loading.eval_sets import EvalSet
    from datamodules.loading.synthetic import SyntheticDataModule

    batches = list(SyntheticDataModule(spec, n=n, batch_size=batch, test_sets=("eval",)).test_dataloader()[0])

    class Batches:  # an iterable of ready batches (a list would be taken for a list of loaders)
        def __iter__(self):
            return iter(batches)

        def __len__(self) -> int:
            return len(batches)

    class InMemory(L.LightningDataModule):
        eval_sets = [EvalSet.of("eval")]

        def test_dataloader(self) -> list:
            return [Batches()]

    return InMemory()


def _score(models: list, dm, cache) -> tuple[float, list[list[float]]]:
    import lightning as L

    from benchmark.runner.score_writer import ScoreWriter

    scores = []
    t = time.perf_counter()
    for m in models:
        m.attach_frozen_cache(cache)
        writer = ScoreWriter()
        trainer = L.Trainer(
            accelerator="cpu",
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            callbacks=[writer],
        )
        trainer.test(m, datamodule=dm, verbose=False)
        scores.append([r["score"] for r in writer.rows])
    return time.perf_counter() - t, scores


def run(quick: bool) -> list[Figure]:
    """Time scoring a multi-seed SFAM grid without, into and from the frozen-feature cache."""
    from detectors.frozen_backbone import module_sha256
    from detectors.frozen_cache import FrozenFeatureCache

    n, batch, repeat = (8, 4, 1) if quick else (32, 8, 2)
    models = _models(SEEDS)
    hash_s = []
    for m in models:
        t = time.perf_counter()
        module_sha256(m, m.model.visual)
        hash_s.append(time.perf_counter() - t)
    dm = _datamodule(models[0].data_spec, n, batch)
    root = Path(tempfile.mkdtemp(prefix="perf-frozen-cache-"))
    times: dict[str, list[float]] = {"off": [], "cold": [], "warm": []}
    try:
        _score(models[:1], dm, None)  # warm-up (allocator, thread pools)
        reference: list[list[float]] = []
        for r in range(repeat):
            t, off = _score(models, dm, None)
            times["off"].append(t)
            cache = FrozenFeatureCache(root / f"round{r}")
            t, cold = _score(models, dm, cache)
            times["cold"].append(t)
            t, warm = _score(models, dm, FrozenFeatureCache(root / f"round{r}"))
            times["warm"].append(t)
            if not off == cold == warm:
                raise AssertionError("frozen_cache: cached probabilities differ from uncached ones")
            reference = off
        size = sum(p.stat().st_size for p in (root / "round0").rglob("*.safetensors"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    what = f"{SEEDS} seeds x {n} images (batch {batch}), ViT-B/16 224 px, cpu, batches in memory"
    base = duration(TOPIC, f"score a {SEEDS}-seed SFAM grid, no cache", times["off"], note=what)
    cold_fig = duration(
        TOPIC,
        f"score a {SEEDS}-seed SFAM grid, cache starting empty",
        times["cold"],
        target=">= 4x baseline (at most a quarter of the time)",
        note=f"identical probabilities: yes ({len(reference[0])} per seed); cache {size / n / 1e3:.0f} KB per image",
    )
    warm_fig = duration(TOPIC, f"re-score the {SEEDS} seeds from a warm cache", times["warm"], note=what)
    tower = duration(
        TOPIC,
        "SHA-256 of the frozen ViT-B/16 tower (once per model)",
        hash_s,
        note="the cache's scope; shared with the lean checkpoints' hashes",
    )
    return [base, with_ratio(cold_fig, base), with_ratio(warm_fig, base), tower]

"""Which videos the demo writes, where, and with which labels: the three official layouts.

Identities are split once (``sources.SPLIT_OF``: train 6, val 2, test 2) and every domain follows it:

* ``demo-FF`` (layout ``ffpp``): ``ff_clips`` originals per identity with 3-digit ids
  (``id = clip * 10 + identity index``); within each split, originals of different identities are paired,
  and each pair ``(a, b)`` gets the fakes ``a_b`` and ``b_a`` for every method in ``FF_METHODS`` plus their
  mask videos. ``splits/{train,val,test}.json`` list the pairs: identity-disjoint by construction.
* ``demo-CDF`` (layout ``celebdf_v2``): ``Celeb-real/id<i>_<k>.mp4`` (``i`` = identity index, two clips
  for test identities, one otherwise), ``YouTube-real/<n>.mp4`` (four more reals), and one
  ``Celeb-synthesis/id<t>_id<s>_<k>.mp4`` per Celeb-real clip with a source from the same split group.
  ``List_of_testing_videos.txt`` lists every video of the test identities (1 = REAL, 0 = FAKE, Celeb-DF's
  own convention); the rest is train (the adapter carves val from it by identity; the layout has no val).
* ``demo-DFDC`` (layout ``dfdc``): ``dfdc_train_part_0`` holds train + val identities (one real each, one
  fake per real) with ``metadata.json``; ``test/videos`` + ``test/labels.csv`` (1 = fake) hold the test
  identities (two reals each, one fake per real). File names are random 10-letter stems, as in DFDC.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from datamodules.demo_gen.domains import FF_METHODS
from datamodules.demo_gen.sources import IDENTITIES, SPLIT_OF

SPLITS = ("train", "val", "test")
YOUTUBE_REAL = ("t1_a", "t1_d", "grace_hopper", "t1_c")


@dataclass(frozen=True)
class DemoConfig:
    """Size knobs. ``full`` is the shipped demo; ``quick`` exists only for the test suite."""

    name: str
    frames: int
    ff_clips: int


CONFIGS = {
    "full": DemoConfig("full", frames=16, ff_clips=2),
    "quick": DemoConfig("quick", frames=8, ff_clips=1),
}


@dataclass(frozen=True)
class Job:
    """One video to write. ``clip_key`` names the original clip whose motion and noise it uses."""

    domain: str
    relpath: str
    target: str
    clip_key: str
    label: int
    method: str
    split: str
    source: str | None = None
    mask_relpath: str | None = None


def rng_for(seed: int, *keys: str) -> np.random.Generator:
    """An independent Generator per (seed, keys): stable across processes and Python hash seeds."""
    digest = hashlib.sha256("\x1f".join(keys).encode()).digest()
    return np.random.default_rng(
        np.random.SeedSequence([seed, *np.frombuffer(digest[:16], np.uint32).tolist()])
    )


def _group(split: str) -> list[str]:
    """Identities a fake may take its source from: its own split's (train and val share a group where a
    layout has no val split, see the callers)."""
    return [n for n in IDENTITIES if SPLIT_OF[n] == split]


def _partner(name: str, group: list[str], k: int) -> str:
    """The k-th other identity of ``name``'s group, in ``IDENTITIES`` order after it."""
    i = group.index(name)
    others = group[i + 1 :] + group[:i]
    return others[k % len(others)]


def plan_ffpp(cfg: DemoConfig) -> tuple[list[Job], dict[str, list[list[str]]]]:
    """The demo FF++ clips (reals and face swaps between identity pairs) and its split lists."""
    d = "demo-FF"
    vid = {(n, k): f"{k * 10 + i:03d}" for k in range(cfg.ff_clips) for i, n in enumerate(IDENTITIES)}
    jobs: list[Job] = []
    splits: dict[str, list[list[str]]] = {}
    for split in SPLITS:
        group = _group(split)
        if len(group) % 2:
            raise ValueError(f"split {split} needs an even number of identities, has {group}")
        pairs = []
        for k in range(cfg.ff_clips):
            order = group[k:] + group[:k]
            pairs += [(order[j], order[j + 1], k) for j in range(0, len(order), 2)]
        splits[split] = [[vid[a, k], vid[b, k]] for a, b, k in pairs]
        for n in group:
            for k in range(cfg.ff_clips):
                v = vid[n, k]
                jobs.append(
                    Job(d, f"{d}/original_sequences/youtube/c23/videos/{v}.mp4", n, v, 0, "real", split)
                )
        for a, b, k in pairs:
            for tgt, src in ((a, b), (b, a)):
                name = f"{vid[tgt, k]}_{vid[src, k]}"
                for m in FF_METHODS:
                    jobs.append(
                        Job(
                            d,
                            f"{d}/manipulated_sequences/{m}/c23/videos/{name}.mp4",
                            tgt,
                            vid[tgt, k],
                            1,
                            m,
                            split,
                            source=src,
                            mask_relpath=f"{d}/manipulated_sequences/{m}/masks/videos/{name}.mp4",
                        )
                    )
    return jobs, splits


def plan_celebdf(cfg: DemoConfig) -> list[Job]:
    """The demo Celeb-DF clips: each identity's real clip and a swap with a partner of its split."""
    d = "demo-CDF"
    jobs: list[Job] = []
    train_group = _group("train") + _group("val")
    for i, n in enumerate(IDENTITIES):
        split = "test" if SPLIT_OF[n] == "test" else "train"
        group = _group("test") if split == "test" else train_group
        for k in range(2 if split == "test" else 1):
            key = f"id{i}_{k:04d}"
            jobs.append(Job(d, f"{d}/Celeb-real/{key}.mp4", n, key, 0, "real", split))
            s = _partner(n, group, k)
            jobs.append(
                Job(
                    d,
                    f"{d}/Celeb-synthesis/id{i}_id{IDENTITIES.index(s)}_{k:04d}.mp4",
                    n,
                    key,
                    1,
                    "Celeb-synthesis",
                    split,
                    source=s,
                )
            )
    for j, n in enumerate(YOUTUBE_REAL):
        split = "test" if SPLIT_OF[n] == "test" else "train"
        jobs.append(Job(d, f"{d}/YouTube-real/{j:05d}.mp4", n, f"yt{j:05d}", 0, "real", split))
    return jobs


def celebdf_test_list(jobs: list[Job]) -> str:
    """``List_of_testing_videos.txt``: ``<1 real | 0 fake> <relative path>`` per test video."""
    lines = [f"{1 - j.label} {j.relpath.split('/', 1)[1]}" for j in jobs if j.split == "test"]
    return "\n".join(sorted(lines, key=lambda s: s.split(" ", 1)[1])) + "\n"


def _dfdc_names(seed: int, count: int) -> list[str]:
    rng = rng_for(seed, "demo-DFDC", "names")
    names: list[str] = []
    while len(names) < count:
        stem = "".join(chr(97 + int(c)) for c in rng.integers(0, 26, size=10))
        if stem not in names:
            names.append(stem)
    return names


def plan_dfdc(cfg: DemoConfig, seed: int) -> list[Job]:
    """The demo DFDC clips, named like DFDC's random file names (drawn from ``seed``)."""
    d = "demo-DFDC"
    train_group = _group("train") + _group("val")
    test_group = _group("test")
    specs = [(n, 0, "train", train_group) for n in train_group]
    specs += [(n, k, "test", test_group) for n in test_group for k in range(2)]
    names = iter(_dfdc_names(seed, 2 * len(specs)))
    jobs: list[Job] = []
    for n, k, split, group in specs:
        folder = f"{d}/dfdc_train_part_0" if split == "train" else f"{d}/test/videos"
        real, fake = next(names), next(names)
        jobs.append(Job(d, f"{folder}/{real}.mp4", n, real, 0, "real", split))
        jobs.append(Job(d, f"{folder}/{fake}.mp4", n, real, 1, "fake", split, source=_partner(n, group, k)))
    return jobs


def dfdc_metadata(jobs: list[Job]) -> str:
    """``metadata.json`` of the train part: label REAL/FAKE, split train, original (null for reals)."""
    meta = {}
    for j in jobs:
        if j.split != "train":
            continue
        meta[j.relpath.rsplit("/", 1)[1]] = {
            "label": "FAKE" if j.label else "REAL",
            "split": "train",
            "original": f"{j.clip_key}.mp4" if j.label else None,
        }
    return json.dumps(dict(sorted(meta.items())), indent=1) + "\n"


def dfdc_labels(jobs: list[Job]) -> str:
    """``test/labels.csv``: ``filename,label`` with 1 = fake."""
    rows = sorted(f"{j.relpath.rsplit('/', 1)[1]},{j.label}" for j in jobs if j.split == "test")
    return "filename,label\n" + "\n".join(rows) + "\n"

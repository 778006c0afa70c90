"""Training batches: ``(row, sbi, seed)`` keys drawn in the main process from ``(seed, epoch)``.

Every training sample's randomness (order, SBI draw, blend, augmentation) comes from a seed this sampler
draws, so batches do not depend on the number of DataLoader workers. Workers are seeded too
(:func:`seed_worker`) for any library that draws on its own.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import Sampler

from datamodules.manifest import DataError


class TrainBatchSampler(Sampler[list[tuple[int, bool, int]]]):
    """Training batches of ``(row, sbi, seed)`` keys, reshuffled each epoch from ``(seed, epoch)``.

    Unpaired: a permutation of all rows; each real turns into an SBI fake with probability ``sbi_prob``.
    Paired: one pair per fake row (one per real when there are no fakes and SBI makes them), each fake
    paired with a uniformly drawn real; a batch is its reals then its fakes.
    The last incomplete batch is dropped unless it is the only one.

    Under torch.distributed each rank takes every ``world``-th batch of the same global sequence (all
    ranks get the same count); run Lightning with ``use_distributed_sampler=False`` so it keeps this
    sampler instead of injecting a ``DistributedSampler``.
    """

    def __init__(self, labels: np.ndarray, batch_size: int, seed: int, sbi_prob: float, paired: bool) -> None:
        if paired and batch_size % 2:
            raise DataError(f"paired batches need an even batch_size, got {batch_size}")
        self.labels, self.batch_size, self.seed = np.asarray(labels), batch_size, seed
        self.sbi_prob, self.paired, self.epoch = sbi_prob, paired, 0
        self.reals = np.flatnonzero(self.labels == 0)
        self.fakes = np.flatnonzero(self.labels == 1)
        if paired and (len(self.reals) == 0 or (len(self.fakes) == 0 and sbi_prob <= 0)):
            raise DataError(
                f"paired batches need reals and fakes (or sbi_prob > 0); the training split has "
                f"{len(self.reals)} reals and {len(self.fakes)} fakes"
            )

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch the next iteration draws its order from (same seed and epoch: same batches)."""
        self.epoch = epoch

    def _units(self) -> int:
        if self.paired:
            return len(self.fakes) if len(self.fakes) else len(self.reals)
        return len(self.labels)

    def _global_len(self) -> int:
        per = self.batch_size // 2 if self.paired else self.batch_size
        n = self._units()
        return max(1, n // per) if n else 0

    @staticmethod
    def _rank_world() -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def __len__(self) -> int:
        _, world = self._rank_world()
        return max(1, self._global_len() // world) if self._global_len() else 0

    def __iter__(self) -> Iterator[list[tuple[int, bool, int]]]:
        rank, world = self._rank_world()
        for b, batch in enumerate(self._batches()):
            if b >= len(self) * world:
                break
            if b % world == rank or world == 1:
                yield batch

    def _batches(self) -> Iterator[list[tuple[int, bool, int]]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        seeds = lambda k: rng.integers(0, 2**31 - 1, size=k)  # noqa: E731
        if not self.paired:
            order = rng.permutation(len(self.labels))
            sbi = (self.labels[order] == 0) & (rng.random(len(order)) < self.sbi_prob)
            keys = [(int(r), bool(s), int(z)) for r, s, z in zip(order, sbi, seeds(len(order)), strict=True)]
            per = self.batch_size
            for b in range(self._global_len()):
                yield keys[b * per : (b + 1) * per]
            return
        n = self._units()
        reals = rng.choice(self.reals, size=n, replace=True)
        if len(self.fakes):
            fakes = [(int(f), False) for f in rng.permutation(self.fakes)]
            use_sbi = rng.random(n) < self.sbi_prob
            fakes = [(int(r), True) if s else f for f, r, s in zip(fakes, reals, use_sbi, strict=True)]
        else:
            fakes = [(int(r), True) for r in reals]
        rs, fs = seeds(n), seeds(n)
        real_keys = [(int(r), False, int(z)) for r, z in zip(reals, rs, strict=True)]
        fake_keys = [(r, s, int(z)) for (r, s), z in zip(fakes, fs, strict=True)]
        half = self.batch_size // 2
        for b in range(self._global_len()):
            sl = slice(b * half, (b + 1) * half)
            yield real_keys[sl] + fake_keys[sl]


def seed_worker(worker_id: int) -> None:
    """Seed numpy, random and OpenCV in a DataLoader worker from torch's per-worker seed.

    Never call ``cv2.setNumThreads`` here: in a forked worker it waits forever on the parent's thread
    pool (seen when the parent had used OpenCV threads before forking).
    """
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)
    cv2.setRNGSeed(int(s % 2**31))

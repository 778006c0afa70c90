"""Synthetic batches and a tiny datamodule built from a ``DataSpec`` (tests, perf scripts, examples).

Everything a detector's ``DataSpec`` asks for, with no data on disk: random images (fakes carry a
brighter centre square, something learnable), random soft region masks summing to 1, a centred square
forgery mask on fakes, method ids. Deterministic: sample ``i`` always has the same values.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.batch import Batch, collate
from datamodules.loading.eval_sets import EvalSet, check_unique
from datamodules.loading.input_keys import input_identity, input_key
from datamodules.media.regions import REGIONS
from datamodules.spec import DataSpec


@lru_cache(maxsize=64)
def _identity(dataset: str, spec: DataSpec) -> str:
    return input_identity(f"synthetic:{dataset}", spec)


def make_item(spec: DataSpec, index: int, label: int, dataset: str = "synth", n_methods: int = 4) -> dict:
    """Sample ``index`` with ``label`` as a dataset item (a dict with the ``Batch`` fields ``spec`` asks for;
    its ``input_key`` names the synthetic dataset, the spec and the sample)."""
    g = torch.Generator().manual_seed(1000 + index)
    s, m = spec.input_size, spec.mask_side
    img = torch.randn(3, s, s, generator=g) * 0.5
    if label:  # a brighter square: something learnable
        img[:, s // 4 : 3 * s // 4, s // 4 : 3 * s // 4] += 0.8
    item = {
        "image": img,
        "label": label,
        "sample_id": f"{dataset}/{label}/v{index // 2:03d}/{index:04d}",
        "video_id": f"{dataset}/{label}/v{index // 2:03d}",
        "dataset": dataset,
        "method": "fake" if label else "real",
    }
    item["input_key"] = input_key(_identity(dataset, spec), item["sample_id"])
    if spec.region_masks:
        logits = torch.randn(len(REGIONS), m, m, generator=g)
        item["region_masks"] = torch.softmax(logits * 3, dim=0)
    if spec.forgery_masks:
        mask = torch.zeros(1, m, m)
        if label:
            mask[:, m // 4 : 3 * m // 4, m // 4 : 3 * m // 4] = 1.0
        item["forgery_mask"] = mask
    if spec.method_ids:
        item["method_id"] = 0 if label == 0 else 1 + index % n_methods
    return item


def make_batch(spec: DataSpec, n: int = 4, paired: bool | None = None) -> Batch:
    """``n`` samples; paired ``[reals; fakes]`` when the spec (or ``paired``) asks for it."""
    paired = spec.paired if paired is None else paired
    labels = [0] * (n // 2) + [1] * (n - n // 2) if paired else [i % 2 for i in range(n)]
    return collate([make_item(spec, i, lab) for i, lab in enumerate(labels)])


class SyntheticItems(Dataset):
    """``n`` items of :func:`make_item`, labels alternating real / fake; with ``methods``, only the reals
    and the fakes of those methods (every synthetic fake's method is ``"fake"``)."""

    def __init__(self, spec: DataSpec, n: int, dataset: str, methods: Sequence[str] = ()) -> None:
        self.spec, self.n, self.dataset = spec, n, dataset
        self.index = [i for i in range(n) if i % 2 == 0 or not methods or "fake" in methods]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        k = self.index[i]
        return make_item(self.spec, k, k % 2, self.dataset)


class PairedSyntheticItems(SyntheticItems):
    """Each index yields a [real, fake] pair; collate_pairs orders the batch as [reals; fakes]."""

    def __getitem__(self, i: int) -> tuple[dict, dict]:
        return make_item(self.spec, 2 * i, 0, self.dataset), make_item(self.spec, 2 * i + 1, 1, self.dataset)


def collate_pairs(pairs: list[tuple[dict, dict]]) -> Batch:
    """``[real, fake]`` pairs -> one ``[reals; fakes]`` batch."""
    return collate([p[0] for p in pairs] + [p[1] for p in pairs])


class SyntheticDataModule(L.LightningDataModule):
    """``n`` samples per split (labels alternating; paired ``[reals; fakes]`` training batches when the
    spec is paired), one evaluation loader per set of ``test_sets`` (``EvalSet``s, or names: the set of
    that name), listed in ``eval_sets``. Items carry the set's ``dataset``; every split has the same
    ``n`` samples."""

    def __init__(
        self,
        spec: DataSpec,
        n: int = 8,
        batch_size: int = 4,
        test_sets: Sequence[str | EvalSet] = ("a", "b"),
    ):
        super().__init__()
        self.spec, self.n, self.bs = spec, n, batch_size
        self.eval_sets = [EvalSet.of(t) for t in test_sets]
        check_unique(self.eval_sets)

    def train_dataloader(self) -> DataLoader:
        """Random training batches (real/fake pairs when the spec is paired)."""
        if self.spec.paired:
            return DataLoader(
                PairedSyntheticItems(self.spec, self.n // 2, "train"),
                batch_size=self.bs // 2,
                collate_fn=collate_pairs,
            )
        return DataLoader(SyntheticItems(self.spec, self.n, "train"), batch_size=self.bs, collate_fn=collate)

    def val_dataloader(self) -> DataLoader:
        """Random validation batches."""
        return DataLoader(SyntheticItems(self.spec, self.n, "val"), batch_size=self.bs, collate_fn=collate)

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per evaluation set, in the order of ``eval_sets``."""
        return [
            DataLoader(
                SyntheticItems(self.spec, self.n, s.dataset, s.methods),
                batch_size=self.bs,
                collate_fn=collate,
            )
            for s in self.eval_sets
        ]

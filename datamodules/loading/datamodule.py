"""The LightningDataModule: manifests + a detector's ``DataSpec`` -> train / val / test dataloaders.

* Train: the ``train`` split of the source dataset (optionally only ``train_methods`` among its fakes),
  ``frames_train`` frames per video evenly spread over the video's ``ok`` frames. Optional SBI
  (:mod:`datamodules.media.blending`): each real becomes a self-blended fake (label 1, method ``"sbi"``) with
  probability ``sbi_prob``; in paired mode each fake slot is, with that probability, the blend of its
  paired real (the SBI pairing).
* Val: the SOURCE dataset's ``val`` split (same methods as train; all of its fakes when training on
  reals + SBI only), ``frames_val`` frames per video.
* Test: one dataloader per test dataset, in the order given, each from its ``test`` split.

Batches follow the DataSpec: ``region_masks`` (painted from the landmarks after augmentation),
``forgery_mask`` (the manifest's mask, the blend mask for SBI fakes, zeros for reals), ``method_id``
(0 real, 1..M: ``train_methods`` in the given order, else the train split's fake methods sorted, then
``"sbi"`` when blending is on; methods unseen in training get -1), ``[reals; fakes]`` training batches
when ``spec.paired``.

Determinism: every training sample's randomness (SBI draw, blend, augmentation) comes from a seed the
batch sampler draws in the main process from ``(seed, epoch)``, so batches do not depend on the
number of workers. Workers are seeded too (``seed_worker``) for any library that draws on its own.

In evaluation stages a forgery mask is delivered only when every fake of that split has one (a
missing mask is not a zero mask); the training split must have one for every fake (or use SBI).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import lightning as L
import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from datamodules.batch import Batch, batch_tensor, collate
from datamodules.loading.transforms import FaceTransform
from datamodules.media.blending import self_blend
from datamodules.media.perturb import ClipFrames, CropView, Perturbation
from datamodules.media.regions import REGIONS, region_masks
from datamodules.spec import DataSpec

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = (
    "dataset",
    "split",
    "label",
    "method",
    "video_id",
    "frame_index",
    "crop_path",
    "landmarks_path",
    "mask_path",
    "status",
)
SBI = "sbi"


class DataError(ValueError):
    """A manifest or dataset that cannot serve what the DataSpec or the run asks for."""


def spread_frames(frame_indices: Sequence[int], k: int) -> list[int]:
    """Positions of ``k`` items evenly spread over ``len(frame_indices)`` sorted frames (all if fewer).

    The centre of each of ``k`` equal bins, so ``k = 1`` takes the middle frame, not the first.
    """
    n = len(frame_indices)
    if k <= 0 or k >= n:
        return list(range(n))
    return [int((j + 0.5) * n / k) for j in range(k)]


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""


def load_manifest(path: Path, name: str) -> tuple[pd.DataFrame, dict[str, int]]:
    """Read one manifest; keep ``status == ok`` rows; return them and the count of skipped rows per status."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"manifest of dataset {name!r} not found: {path}")
    df = pd.read_parquet(path)
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"manifest {path} (dataset {name!r}) lacks columns {missing}")
    bad = df[df["status"] != "ok"]
    skipped = {str(k): int(v) for k, v in bad["status"].value_counts().items()}
    if skipped:
        log.info("dataset %s: skipping %d frames with status != ok: %s", name, len(bad), skipped)
    ok = df[df["status"] == "ok"].copy()
    ok["label"] = ok["label"].astype(int)
    ok["frame_index"] = ok["frame_index"].astype(int)
    return ok.reset_index(drop=True), skipped


def select_frames(df: pd.DataFrame, frames: int) -> pd.DataFrame:
    """``frames`` rows per video, evenly spread over each video's frames (sorted by frame index)."""
    df = df.sort_values(["video_id", "frame_index"], kind="stable")
    keep: list[int] = []
    for _, g in df.groupby("video_id", sort=True):
        idx = g.index.to_numpy()
        keep += [int(idx[i]) for i in spread_frames(g["frame_index"].tolist(), frames)]
    return df.loc[keep].reset_index(drop=True)


class ManifestDataset(Dataset):
    """Items (dicts with the ``Batch`` fields) from manifest rows.

    A key is ``row`` (evaluation: no augmentation draw) or ``(row, sbi, seed)`` from a training sampler.
    ``perturbation`` / ``view``: test-time perturbation and preprocessing view
    (:mod:`datamodules.media.perturb`); a ``clip`` perturbation acts on each video's selected crops
    together (:class:`ClipFrames`).
    """

    def __init__(
        self,
        rows: pd.DataFrame,
        root: Path,
        spec: DataSpec,
        augment: bool,
        methods: Sequence[str],
        with_forgery_mask: bool,
        soft_regions: bool = True,
        blend: bool = False,
        perturbation: Perturbation | None = None,
        view: CropView | None = None,
    ) -> None:
        self.root = Path(root)
        self.spec = spec
        per_clip = perturbation is not None and perturbation.kind == "clip" and not perturbation.is_identity
        self.transform = FaceTransform(spec, augment, None if per_clip else perturbation, view)
        self.method_index = {m: i + 1 for i, m in enumerate(methods)}
        self.with_forgery_mask = with_forgery_mask
        self.soft_regions = soft_regions
        self.need_landmarks = spec.region_masks or blend
        cols = [c for c in MANIFEST_COLUMNS if c not in ("split", "status")]
        self.rows = {c: rows[c].tolist() for c in cols}
        self.labels = np.asarray(self.rows["label"], dtype=np.int64)
        self._read = self._image
        if per_clip:
            self._read = ClipFrames(
                perturbation.apply_clip, self.rows["video_id"], self.rows["frame_index"], self._image
            )

    def __len__(self) -> int:
        return len(self.labels)

    def _path(self, rel: str) -> Path:
        return self.root / str(rel)

    def _image(self, i: int) -> np.ndarray:
        path = self._path(self.rows["crop_path"][i])
        rgb = cv2.imread(str(path), cv2.IMREAD_COLOR_RGB)  # libpng swaps channels: no extra pass
        if rgb is None:
            raise DataError(f"cannot read crop {path} (missing or corrupt)")
        return rgb

    def _mask(self, i: int, shape: tuple[int, int]) -> np.ndarray:
        rel = self.rows["mask_path"][i]
        if self.labels[i] == 0 or _empty(rel):
            return np.zeros(shape, np.float32)
        m = cv2.imread(str(self._path(rel)), cv2.IMREAD_GRAYSCALE)
        if m is None:
            raise DataError(f"cannot read mask {self._path(rel)} (missing or corrupt)")
        if m.shape != shape:
            m = cv2.resize(m, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
        return m.astype(np.float32) / 255.0

    def __getitem__(self, key: int | tuple[int, bool, int]) -> dict[str, Any]:
        return self._item(key)

    def __getitems__(self, keys: Sequence[int | tuple[int, bool, int]]) -> Batch:
        """A whole batch, each sample's image and region masks written straight into the batch tensors
        (in shared memory inside a worker): no per-sample tensors to stack, one copy less per sample.
        Same values as collating ``[self[k] for k in keys]``.
        """
        keys = list(keys)
        s, m = self.spec.input_size, self.spec.mask_side
        out = {"image": batch_tensor((len(keys), 3, s, s))}
        if self.spec.region_masks:
            out["region_masks"] = batch_tensor((len(keys), len(REGIONS), m, m))
        items = [self._item(k, {f: t[j] for f, t in out.items()}) for j, k in enumerate(keys)]
        return collate(items, stacked=out)

    def _item(self, key: int | tuple[int, bool, int], out: dict[str, Tensor] | None = None) -> dict[str, Any]:
        """One sample; ``out`` optionally holds ``image`` / ``region_masks`` tensors to write into."""
        out = out or {}
        i, sbi, seed = (int(key), False, None) if not isinstance(key, tuple | list) else key
        i = int(i)
        image = self._read(i)
        lm = np.load(self._path(self.rows["landmarks_path"][i])) if self.need_landmarks else None
        label, method = int(self.labels[i]), str(self.rows["method"][i])
        video_id = str(self.rows["video_id"][i])
        sample_id = f"{video_id}/{self.rows['frame_index'][i]}"
        mask = None
        if sbi:
            blend = self_blend(image, lm, np.random.default_rng(seed))
            image, label, method, video_id = blend.image, 1, SBI, f"{video_id}#sbi"
            mask = blend.mask if self.with_forgery_mask else None
        elif self.with_forgery_mask:
            mask = self._mask(i, image.shape[:2])
        tr = self.transform(image, lm, mask, seed=seed, out=out.get("image"), sample_key=sample_id)
        item: dict[str, Any] = {
            "image": tr.image,
            "label": label,
            "sample_id": f"{video_id}/{self.rows['frame_index'][i]}",
            "video_id": video_id,
            "dataset": str(self.rows["dataset"][i]),
            "method": method,
        }
        if self.spec.method_ids:
            item["method_id"] = 0 if label == 0 else self.method_index.get(method, -1)
        if self.spec.region_masks:
            dst = out["region_masks"].numpy() if "region_masks" in out else None
            rm = region_masks(
                tr.landmarks, self.spec.mask_side, self.spec.input_size, soft=self.soft_regions, out=dst
            )
            item["region_masks"] = torch.from_numpy(rm)
        if tr.mask is not None:
            item["forgery_mask"] = tr.mask
        return item


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


class ForgeryDataModule(L.LightningDataModule):
    """Train on one dataset, validate on its ``val`` split, test on each of ``tests``.

    Args:
        spec: the detector's ``DataSpec``.
        train: source dataset name (a key of ``manifests``).
        tests: test dataset names, one test dataloader each, in this order.
        manifests: dataset name -> ``manifest.parquet`` path (crop paths are relative to its folder).
        batch_size, eval_batch_size: training and evaluation batch sizes.
        frames_train, frames_test, frames_val: frames per video per stage (``frames_val`` defaults to
            ``frames_test``), evenly spread over each video's ok frames.
        augment: training augmentation (:mod:`datamodules.loading.transforms`).
        seed: drives every random draw of the data side.
        train_methods: fake methods used for training and validation (default: all of the train split).
        sbi_prob: probability of turning a training real into a self-blended fake.
        soft_regions: soft (blurred, summing to 1) or one-hot region masks.
        test_perturbation, test_view: applied to the test sets only (:mod:`datamodules.media.perturb`).
    """

    def __init__(
        self,
        spec: DataSpec,
        train: str,
        tests: Sequence[str],
        manifests: dict[str, Path | str],
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        frames_train: int = 8,
        frames_test: int = 32,
        frames_val: int | None = None,
        augment: bool = True,
        seed: int = 0,
        num_workers: int = 0,
        train_methods: Sequence[str] | None = None,
        sbi_prob: float = 0.0,
        soft_regions: bool = True,
        persistent_workers: bool = False,
        test_perturbation: Perturbation | None = None,
        test_view: CropView | None = None,
    ) -> None:
        super().__init__()
        known = sorted(manifests)
        for name in [train, *tests]:
            if name not in manifests:
                raise DataError(f"unknown dataset {name!r}; known: {', '.join(known) or '(none)'}")
        if not 0.0 <= sbi_prob <= 1.0:
            raise DataError(f"sbi_prob must be in [0, 1], got {sbi_prob}")
        if batch_size <= 0:
            raise DataError(f"batch_size must be positive, got {batch_size}")
        self.spec, self.train_name, self.test_names = spec, train, list(tests)
        self.manifests = {k: Path(v) for k, v in manifests.items()}
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.frames = {"train": frames_train, "val": frames_val or frames_test, "test": frames_test}
        self.augment, self.seed, self.num_workers = augment, seed, num_workers
        self.train_methods = list(train_methods) if train_methods is not None else None
        self.sbi_prob, self.soft_regions, self.persistent_workers = sbi_prob, soft_regions, persistent_workers
        self.test_perturbation, self.test_view = test_perturbation, test_view
        self.skipped: dict[str, dict[str, int]] = {}
        self.methods: list[str] = []
        self.train_set: ManifestDataset | None = None
        self.val_set: ManifestDataset | None = None
        self.test_sets: list[ManifestDataset] = []
        self._frames_cache: dict[str, pd.DataFrame] = {}

    # ------------------------------------------------------------------ loading and validation
    def _ok_rows(self, name: str) -> pd.DataFrame:
        if name not in self._frames_cache:
            df, skipped = load_manifest(self.manifests[name], name)
            self.skipped[name] = skipped
            self._frames_cache[name] = df
        return self._frames_cache[name]

    def _split(self, name: str, split: str, methods: Sequence[str] | None) -> pd.DataFrame:
        df = self._ok_rows(name)
        rows = df[df["split"] == split]
        if rows.empty:
            present = sorted(df["split"].astype(str).unique())
            raise DataError(
                f"dataset {name!r} has no ok frames in split {split!r} (splits present: {present}); "
                + ("validation uses the source dataset's official val split" if split == "val" else "")
            )
        if methods is not None:
            rows = rows[(rows["label"] == 0) | rows["method"].isin(methods)]
        return select_frames(rows, self.frames[split])

    def _check(self, name: str, rows: pd.DataFrame, need_masks: bool, blend: bool = False) -> None:
        root = self.manifests[name].parent
        need_lm = self.spec.region_masks or blend
        if need_lm:
            lm_missing = rows["landmarks_path"].map(_empty)
            if lm_missing.any():
                why = "region masks (DataSpec.region_masks)" if self.spec.region_masks else "SBI blending"
                raise DataError(
                    f"{why} need landmarks, but dataset {name!r} has {int(lm_missing.sum())} of {len(rows)} "
                    f"selected frames without landmarks_path (e.g. {rows['crop_path'][lm_missing].head(3).tolist()}); "
                    "re-run preprocessing with a landmark backend"
                )
        if need_masks:
            fake_no_mask = (rows["label"] == 1) & rows["mask_path"].map(_empty)
            if fake_no_mask.any():
                raise DataError(
                    f"DataSpec.forgery_masks needs a mask for every training fake, but dataset {name!r} has "
                    f"{int(fake_no_mask.sum())} fake frames without mask_path "
                    f"(e.g. {rows['crop_path'][fake_no_mask].head(3).tolist()}); "
                    "train on masked data, or on reals + SBI (train_methods=[], sbi_prob > 0)"
                )
        cols = ["crop_path"] + (["landmarks_path"] if need_lm else [])
        cols += ["mask_path"] if need_masks else []
        paths = [root / str(p) for c in cols for p in rows[c] if not _empty(p)]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise DataError(
                f"dataset {name!r}: {len(missing)} of {len(paths)} files named by {self.manifests[name]} are "
                f"missing, e.g. {[str(p) for p in missing[:3]]}; re-run preprocessing"
            )

    def _methods(self, rows: pd.DataFrame) -> list[str]:
        present = sorted(rows.loc[rows["label"] == 1, "method"].astype(str).unique())
        if self.train_methods is not None:
            unknown = [m for m in self.train_methods if m not in present]
            if unknown:
                raise DataError(
                    f"train_methods {unknown} not found among the fakes of {self.train_name!r}; known: {present}"
                )
            methods = list(self.train_methods)
        else:
            methods = present
        return methods + ([SBI] if self.sbi_prob > 0 and SBI not in methods else [])

    def _dataset(
        self, name: str, rows: pd.DataFrame, augment: bool, masks: bool, blend: bool = False, **kw: Any
    ) -> ManifestDataset:
        root = self.manifests[name].parent
        return ManifestDataset(
            rows, root, self.spec, augment, self.methods, masks, self.soft_regions, blend, **kw
        )

    def _eval_masks(self, rows: pd.DataFrame) -> bool:
        fakes = rows[rows["label"] == 1]
        return self.spec.forgery_masks and not fakes["mask_path"].map(_empty).any()

    def setup(self, stage: str | None = None) -> None:
        """Load manifests, select frames and validate everything the requested stage needs."""
        fit = stage in (None, "fit", "validate")
        if fit or self.spec.method_ids:  # method ids are defined by the training split
            all_train = self._ok_rows(self.train_name)
            all_train = all_train[all_train["split"] == "train"]
            if all_train.empty and fit:
                raise DataError(f"dataset {self.train_name!r} has no ok frames in split 'train'")
            self.methods = self._methods(all_train) if not all_train.empty else []
        method_filter = self.methods if self.train_methods is not None else None
        if fit:
            rows = self._split(self.train_name, "train", method_filter)
            blend = self.sbi_prob > 0
            self._check(self.train_name, rows, self.spec.forgery_masks, blend)
            self.train_set = self._dataset(
                self.train_name, rows, self.augment, self.spec.forgery_masks, blend
            )
            # SBI-only training (train_methods=[]) still validates on the source's real fakes: a val set
            # of reals alone has no AUC, and SBI's point is generalising to unseen manipulations.
            val = self._split(self.train_name, "val", method_filter if self.train_methods else None)
            masks = self._eval_masks(val)
            self._check(self.train_name, val, masks)
            self.val_set = self._dataset(self.train_name, val, False, masks)
        if stage in (None, "test", "predict"):
            self.test_sets = []
            for name in self.test_names:
                rows = self._split(name, "test", None)
                masks = self._eval_masks(rows)
                self._check(name, rows, masks)
                ds = self._dataset(
                    name, rows, False, masks, perturbation=self.test_perturbation, view=self.test_view
                )
                self.test_sets.append(ds)

    # ------------------------------------------------------------------ loaders
    def _loader(self, ds: Dataset, **kw: Any) -> DataLoader:
        return DataLoader(
            ds,
            collate_fn=collate,
            num_workers=self.num_workers,
            worker_init_fn=seed_worker,
            generator=torch.Generator().manual_seed(self.seed),
            persistent_workers=self.persistent_workers and self.num_workers > 0,
            **kw,
        )

    def train_dataloader(self) -> DataLoader:
        if self.train_set is None:
            self.setup("fit")
        sampler = TrainBatchSampler(
            self.train_set.labels, self.batch_size, self.seed, self.sbi_prob, self.spec.paired
        )
        if self.trainer is not None:
            sampler.set_epoch(self.trainer.current_epoch)
        return self._loader(self.train_set, batch_sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        if self.val_set is None:
            self.setup("fit")
        return self._loader(self.val_set, batch_size=self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> list[DataLoader]:
        if not self.test_sets:
            self.setup("test")
        return [self._loader(ds, batch_size=self.eval_batch_size, shuffle=False) for ds in self.test_sets]

    def predict_dataloader(self) -> list[DataLoader]:
        return self.test_dataloader()

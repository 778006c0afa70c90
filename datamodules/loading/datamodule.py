"""The LightningDataModule: manifests + a detector's ``DataSpec`` -> train / val / test dataloaders.

* Train: the ``train`` split of the source dataset (optionally only ``train_methods`` among its fakes),
  ``frames_train`` frames per video evenly spread over the video's ``ok`` frames. Optional SBI
  (:mod:`datamodules.media.blending`): each real becomes a self-blended fake (label 1, method ``"sbi"``) with
  probability ``sbi_prob``; in paired mode each fake slot is, with that probability, the blend of its
  paired real (the SBI pairing).
* Val: the SOURCE dataset's ``val`` split (same methods as train; all of its fakes when training on
  reals + SBI only), ``frames_val`` frames per video.
* Evaluation: one dataloader per evaluation set (:class:`~datamodules.loading.eval_sets.EvalSet`), in
  the order given: the set's ``split`` of its dataset, restricted to its fake ``methods`` (all reals
  kept) in the dataset itself, ``frames_val`` / ``frames_test`` frames per video.
  ``test_dataloader()`` returns them; ``eval_sets`` says which set each loader serves. A plain name in
  ``tests`` is the ``test`` split of that dataset. The runner also lists the source's ``val`` split
  here, so one ``Trainer.test`` scores it with the test sets.

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

Frames are read from each dataset's packed store when it has a current one (``store="auto"``;
:mod:`datamodules.pack`, :mod:`datamodules.loading.store`), else from its PNG files: the batches are
the same. With ``augment_on_device`` the training workers only read, and :meth:`on_after_batch_transfer`
augments each batch on its device (:mod:`datamodules.loading.device_augment`); with ``perturb_on_device``
the test workers read and the device applies a test perturbation that has a device form
(:mod:`datamodules.loading.device_perturb`).

Items come from :mod:`datamodules.loading.dataset`, training batches from
:mod:`datamodules.loading.sampler`, manifests and frame selection from :mod:`datamodules.manifest`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning as L
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from datamodules.augmentation import Augmentation
from datamodules.batch import collate
from datamodules.loading.dataset import SBI, ManifestDataset
from datamodules.loading.device_augment import DeviceAugment, finish
from datamodules.loading.device_perturb import DevicePerturb, finish_perturb, moves_to_device
from datamodules.loading.eval_sets import EvalSet, check_unique
from datamodules.loading.input_keys import file_sha256
from datamodules.loading.sampler import TrainBatchSampler, seed_worker
from datamodules.loading.store import STORES, check_pack_covers, open_pack
from datamodules.manifest import DataError, is_empty, read_ok_rows, select_frames
from datamodules.media.perturb import CropView, Perturbation
from datamodules.spec import DataSpec

if TYPE_CHECKING:
    from datamodules.pack.reader import PackReader


class ForgeryDataModule(L.LightningDataModule):
    """Train on one dataset, validate on its ``val`` split, evaluate on each of ``tests``.

    Args:
        spec: the detector's ``DataSpec``.
        train: source dataset name (a key of ``manifests``).
        tests: evaluation sets (``EvalSet``, or a dataset name: its ``test`` split), one evaluation
            dataloader each, in this order (``eval_sets``).
        manifests: dataset name -> ``manifest.parquet`` path (crop paths are relative to its folder).
        batch_size, eval_batch_size: training and evaluation batch sizes.
        frames_train, frames_test, frames_val: frames per video per stage (``frames_val`` defaults to
            ``frames_test``), evenly spread over each video's ok frames.
        augment: the training augmentation: an :class:`~datamodules.augmentation.Augmentation` (the
            detector's ``Recipe.augmentation``; the runner passes it), ``True`` for its defaults, ``False``
            for none (:mod:`datamodules.loading.transforms`).
        seed: drives every random draw of the data side.
        train_methods: fake methods used for training and validation (default: all of the train split).
        sbi_prob: probability of turning a training real into a self-blended fake.
        soft_regions: soft (blurred, summing to 1) or one-hot region masks.
        test_perturbation, test_view: applied to the test sets only (:mod:`datamodules.media.perturb`).
        store: where frames are read from: ``"auto"`` (a dataset's pack, :mod:`datamodules.pack`, when it
            was made from its current manifest; else its PNG files, with a ``StalePackWarning`` when a
            pack is there but stale or unfinished), ``"png"`` (always the files), ``"packed"`` (the pack
            or a ``DataError``). Both stores give identical batches.
        augment_on_device: training workers only read (uint8 crops, landmarks, masks, seeds); the
            augmentation, resize, normalisation and region masks run on the device in
            :meth:`on_after_batch_transfer` (:mod:`datamodules.loading.device_augment`: the same
            per-sample draws, not bit-identical pixels). Evaluation loaders are unchanged.
        perturb_on_device: test workers only read the crops (and paint the masks) when the test
            perturbation has a device form (colour saturation, colour contrast, Gaussian blur, the
            "JPEG" resampling) and no ``test_view`` re-crops: the distortion, the evaluation resize and the
            normalisation run on the device in :meth:`on_after_batch_transfer`
            (:mod:`datamodules.loading.device_perturb`; the same resize and normalisation, the distortion
            up to float rounding). Other perturbations stay in the workers.
    """

    def __init__(
        self,
        spec: DataSpec,
        train: str,
        tests: Sequence[str | EvalSet],
        manifests: Mapping[str, Path | str],
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        frames_train: int = 8,
        frames_test: int = 32,
        frames_val: int | None = None,
        augment: bool | Augmentation = True,
        seed: int = 0,
        num_workers: int = 0,
        train_methods: Sequence[str] | None = None,
        sbi_prob: float = 0.0,
        soft_regions: bool = True,
        persistent_workers: bool = False,
        test_perturbation: Perturbation | None = None,
        test_view: CropView | None = None,
        store: str = "auto",
        augment_on_device: bool = False,
        perturb_on_device: bool = False,
    ) -> None:
        super().__init__()
        known = sorted(manifests)
        self.eval_sets: list[EvalSet] = [EvalSet.of(t) for t in tests]
        check_unique(self.eval_sets)
        for name in [train, *(s.dataset for s in self.eval_sets)]:
            if name not in manifests:
                raise DataError(f"unknown dataset {name!r}; known: {', '.join(known) or '(none)'}")
        if not 0.0 <= sbi_prob <= 1.0:
            raise DataError(f"sbi_prob must be in [0, 1], got {sbi_prob}")
        if batch_size <= 0:
            raise DataError(f"batch_size must be positive, got {batch_size}")
        self.spec, self.train_name = spec, train
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
        self.test_sets: list[ManifestDataset] = []  # one per evaluation set, in the order of eval_sets
        self._frames_cache: dict[str, pd.DataFrame] = {}
        if store not in STORES:
            raise DataError(f"store must be one of {list(STORES)}, got {store!r}")
        self.store, self.augment_on_device = store, bool(augment_on_device)
        self._packs: dict[str, PackReader | None] = {}
        self._device_augment: DeviceAugment | None = None
        self.perturb_on_device = bool(perturb_on_device)
        self._device_perturb: DevicePerturb | None = None

    # ------------------------------------------------------------------ loading and validation
    def _ok_rows(self, name: str) -> pd.DataFrame:
        if name not in self._frames_cache:
            df, skipped = read_ok_rows(self.manifests[name], name)
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
            lm_missing = rows["landmarks_path"].map(is_empty)
            if lm_missing.any():
                why = "region masks (DataSpec.region_masks)" if self.spec.region_masks else "SBI blending"
                raise DataError(
                    f"{why} need landmarks, but dataset {name!r} has {int(lm_missing.sum())} of {len(rows)} "
                    f"selected frames without landmarks_path (e.g. {rows['crop_path'][lm_missing].head(3).tolist()}); "
                    "re-run preprocessing with a landmark backend"
                )
        if need_masks:
            fake_no_mask = (rows["label"] == 1) & rows["mask_path"].map(is_empty)
            if fake_no_mask.any():
                raise DataError(
                    f"DataSpec.forgery_masks needs a mask for every training fake, but dataset {name!r} has "
                    f"{int(fake_no_mask.sum())} fake frames without mask_path "
                    f"(e.g. {rows['crop_path'][fake_no_mask].head(3).tolist()}); "
                    "train on masked data, or on reals + SBI (train_methods=[], sbi_prob > 0)"
                )
        pack = self._pack(name)
        if pack is not None:  # the pack was checked against this manifest: it must hold these rows
            check_pack_covers(pack, rows, need_lm, need_masks, name)
            return
        cols = ["crop_path"] + (["landmarks_path"] if need_lm else [])
        cols += ["mask_path"] if need_masks else []
        paths = [root / str(p) for c in cols for p in rows[c] if not is_empty(p)]
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
        self,
        name: str,
        rows: pd.DataFrame,
        augment: bool | Augmentation,
        masks: bool,
        blend: bool = False,
        **kw: Any,
    ) -> ManifestDataset:
        root = self.manifests[name].parent
        source = file_sha256(self.manifests[name])  # unaugmented samples get input keys
        return ManifestDataset(
            rows,
            root,
            self.spec,
            augment,
            self.methods,
            masks,
            self.soft_regions,
            blend,
            pack=self._pack(name),
            source=source,
            **kw,
        )

    def _pack(self, name: str) -> PackReader | None:
        """The pack serving dataset ``name`` (``datamodules.loading.store.open_pack``), or None: PNG files."""
        if name not in self._packs:
            self._packs[name] = open_pack(self.manifests[name], name, self.store)
        return self._packs[name]

    def _eval_masks(self, rows: pd.DataFrame) -> bool:
        fakes = rows[rows["label"] == 1]
        return self.spec.forgery_masks and not fakes["mask_path"].map(is_empty).any()

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
            on_device = self.augment_on_device
            self.train_set = self._dataset(
                self.train_name,
                rows,
                False if on_device else self.augment,
                self.spec.forgery_masks,
                blend,
                device_augment=on_device,
            )
            self._device_augment = (
                DeviceAugment(self.spec, self.augment, self.soft_regions) if on_device else None
            )
            # SBI-only training (train_methods=[]) still validates on the source's real fakes: a val set
            # of reals alone has no AUC, and SBI's point is generalising to unseen manipulations.
            val = self._split(self.train_name, "val", method_filter if self.train_methods else None)
            masks = self._eval_masks(val)
            self._check(self.train_name, val, masks)
            self.val_set = self._dataset(self.train_name, val, False, masks)
        if stage in (None, "test", "predict"):
            self.test_sets = [self._eval_dataset(s) for s in self.eval_sets]

    def _eval_dataset(self, s: EvalSet) -> ManifestDataset:
        """The frames of evaluation set ``s``: its split, its fakes' methods (all reals), no augmentation."""
        rows = self._split(s.dataset, s.split, s.methods or None)
        masks = self._eval_masks(rows)
        self._check(s.dataset, rows, masks)
        if s.split != "test":  # test-time perturbations and views act on the test sets only
            return self._dataset(s.dataset, rows, False, masks)
        p, view = self.test_perturbation, self.test_view
        on_device = self.perturb_on_device and moves_to_device(p, view)
        if on_device and self._device_perturb is None and p is not None:
            self._device_perturb = DevicePerturb(self.spec, p)
        return self._dataset(
            s.dataset, rows, False, masks, perturbation=p, view=view, device_perturb=on_device
        )

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
        """The training loader: batches from :class:`TrainBatchSampler`, reshuffled each epoch."""
        if self.train_set is None:
            self.setup("fit")
        sampler = TrainBatchSampler(
            self.train_set.labels, self.batch_size, self.seed, self.sbi_prob, self.spec.paired
        )
        if self.trainer is not None:
            sampler.set_epoch(self.trainer.current_epoch)
        return self._loader(self.train_set, batch_sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        """The validation loader (in order, ``eval_batch_size``)."""
        if self.val_set is None:
            self.setup("fit")
        return self._loader(self.val_set, batch_size=self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per evaluation set, in the order of ``eval_sets``."""
        if len(self.test_sets) != len(self.eval_sets):
            self.setup("test")
        return [self._loader(ds, batch_size=self.eval_batch_size, shuffle=False) for ds in self.test_sets]

    def predict_dataloader(self) -> list[DataLoader]:
        """The test loaders: prediction reads the same evaluation sets."""
        return self.test_dataloader()

    # ------------------------------------------------------------------ device augmentation
    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """With ``augment_on_device``: augment a raw training batch on its device; with
        ``perturb_on_device``: perturb, resize and normalise a raw test batch there (others pass through)."""
        return finish_perturb(finish(batch, self._device_augment), self._device_perturb)

"""``ManifestDataset``: manifest rows -> dataset items (dicts with the ``Batch`` fields), one or a batch at a time.

A key is ``row`` (evaluation: no augmentation draw) or ``(row, sbi, seed)`` from the training sampler
(:mod:`datamodules.loading.sampler`). An SBI key turns the real crop into a self-blended fake
(:mod:`datamodules.media.blending`; label 1, method ``"sbi"``, the blend mask as its forgery mask).
The crop -> tensors step is :class:`datamodules.loading.transforms.SampleTransform`, the one
``benchmark.predict`` uses too.

Frames are read from a store (:mod:`datamodules.loading.store`): the PNG files, or a pack
(:mod:`datamodules.pack`) when one is given; both give the same arrays, hence the same batches.
With ``device_augment`` (training with ``ForgeryDataModule(augment_on_device=True)``) a batch carries
the crops as uint8, their landmarks, forgery masks and augmentation seeds
(:mod:`datamodules.loading.device_augment`), which the datamodule augments after the transfer. With
``device_perturb`` (a test set with ``ForgeryDataModule(perturb_on_device=True)``) a batch carries the
stored crops as uint8 and its region / forgery masks made here; the datamodule perturbs, resizes and
normalises the image after the transfer (:mod:`datamodules.loading.device_perturb`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import Dataset

from datamodules.augmentation import Augmentation
from datamodules.batch import Batch, batch_tensor, collate
from datamodules.loading.device_augment import RAW, raw_fields
from datamodules.loading.device_perturb import PERTURB, DevicePerturb, moves_to_device
from datamodules.loading.input_keys import input_identity, input_key
from datamodules.loading.store import PackedStore, PngStore
from datamodules.loading.transforms import SampleTransform
from datamodules.manifest import REQUIRED, is_empty, sample_id
from datamodules.media.blending import self_blend
from datamodules.media.perturb import ClipFrames, CropView, Perturbation
from datamodules.media.regions import REGIONS
from datamodules.spec import DataSpec

if TYPE_CHECKING:
    from datamodules.pack.reader import PackReader

SBI = "sbi"


class ManifestDataset(Dataset):
    """Items (dicts with the ``Batch`` fields) from manifest rows.

    A key is ``row`` (evaluation: no augmentation draw) or ``(row, sbi, seed)`` from a training sampler.
    ``perturbation`` / ``view``: test-time perturbation and preprocessing view
    (:mod:`datamodules.media.perturb`); a ``clip`` perturbation acts on each video's selected crops
    together (:class:`ClipFrames`). ``source`` (the manifest's SHA-256) gives unaugmented samples an
    ``input_key`` (:mod:`datamodules.loading.input_keys`); self-blended ones get none.
    """

    def __init__(
        self,
        rows: pd.DataFrame,
        root: Path,
        spec: DataSpec,
        augment: bool | Augmentation,
        methods: Sequence[str],
        with_forgery_mask: bool,
        soft_regions: bool = True,
        blend: bool = False,
        perturbation: Perturbation | None = None,
        view: CropView | None = None,
        pack: PackReader | None = None,
        device_augment: bool = False,
        source: str | None = None,
        device_perturb: bool = False,
    ) -> None:
        self.root = Path(root)
        self.spec = spec
        per_clip = perturbation is not None and perturbation.kind == "clip" and not perturbation.is_identity
        if device_perturb and (augment or not moves_to_device(perturbation, view)):
            what = perturbation.tag if perturbation is not None else "no perturbation"
            raise ValueError(
                f"device_perturb needs an unaugmented set and a device-form perturbation, got {what}"
            )
        self.device_perturb = device_perturb
        self._perturbation = perturbation
        self._perturber: DevicePerturb | None = None
        cpu_perturbation = None if per_clip or device_perturb else perturbation
        self.transform = SampleTransform(spec, augment, soft_regions, cpu_perturbation, view)
        self.method_index = {m: i + 1 for i, m in enumerate(methods)}
        self.with_forgery_mask = with_forgery_mask
        self.need_landmarks = spec.region_masks or blend
        cols = [c for c in REQUIRED if c not in ("split", "status")]
        self.rows = {c: rows[c].tolist() for c in cols}
        self.labels = np.asarray(self.rows["label"], dtype=np.int64)
        self.store = (
            PackedStore(pack, self.rows["crop_path"])
            if pack is not None
            else PngStore(
                self.root, self.rows["crop_path"], self.rows["landmarks_path"], self.rows["mask_path"]
            )
        )
        self.device_augment = device_augment
        self.identity = None
        if source is not None and not augment:
            clip = (
                zip(self.rows["video_id"], map(int, self.rows["frame_index"]), strict=True)
                if per_clip
                else None
            )
            self.identity = input_identity(source, spec, perturbation, view, clip, on_device=device_perturb)
        self._read = self._image
        if per_clip:
            self._read = ClipFrames(
                perturbation.apply_clip, self.rows["video_id"], self.rows["frame_index"], self._image
            )

    def __len__(self) -> int:
        return len(self.labels)

    def _image(self, i: int) -> np.ndarray:
        return self.store.crop(i)

    def _mask(self, i: int, shape: tuple[int, int]) -> np.ndarray:
        if self.labels[i] == 0 or is_empty(self.rows["mask_path"][i]):
            return np.zeros(shape, np.float32)
        m = self.store.mask(i)
        if m.shape != shape:
            m = cv2.resize(m, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
        return m.astype(np.float32) / 255.0

    def __getitem__(self, key: int | tuple[int, bool, int]) -> dict[str, Any]:
        return self._item(key)

    def __getitems__(self, keys: Sequence[int | tuple[int, bool, int]]) -> Batch:
        """A whole batch, each sample's image and region masks written straight into the batch tensors
        (in shared memory inside a worker): no per-sample tensors to stack, one copy less per sample.
        Same values as collating ``[self[k] for k in keys]``. With ``device_augment``: the raw batch
        (:func:`datamodules.loading.device_augment.raw_fields`).
        """
        keys = list(keys)
        if self.device_augment:
            return self._raw_batch(keys)
        s, m = self.spec.input_size, self.spec.mask_side
        out = {} if self.device_perturb else {"image": batch_tensor((len(keys), 3, s, s))}
        if self.spec.region_masks:
            out["region_masks"] = batch_tensor((len(keys), len(REGIONS), m, m))
        crops: list[np.ndarray] = []
        items = [self._item(k, {f: t[j] for f, t in out.items()}, crops) for j, k in enumerate(keys)]
        if self.device_perturb:  # the stored crops, perturbed and resized after the transfer
            ids = [it["sample_id"] for it in items]
            out["image"] = raw_fields(crops, None, None, [0] * len(crops), ids)[0]["image"]
            batch = collate(items, stacked=out)
            batch.extra[PERTURB] = True
            return batch
        return collate(items, stacked=out)

    def _load(self, key: int | tuple[int, bool, int]) -> tuple[dict[str, Any], np.ndarray, Any, Any, Any]:
        """One sample before its transform: ``(metadata item, uint8 crop, landmarks, forgery mask, seed)``."""
        i, sbi, seed = (int(key), False, None) if not isinstance(key, tuple | list) else key
        i = int(i)
        image = self._read(i)
        lm = self.store.landmarks(i) if self.need_landmarks else None
        label, method = int(self.labels[i]), str(self.rows["method"][i])
        video_id = str(self.rows["video_id"][i])
        mask = None
        if sbi:
            blend = self_blend(image, lm, np.random.default_rng(seed))
            image, label, method, video_id = blend.image, 1, SBI, f"{video_id}#sbi"
            mask = blend.mask if self.with_forgery_mask else None
        elif self.with_forgery_mask:
            mask = self._mask(i, image.shape[:2])
        item: dict[str, Any] = {
            "label": label,
            "sample_id": sample_id(video_id, self.rows["frame_index"][i]),
            "video_id": video_id,
            "dataset": str(self.rows["dataset"][i]),
            "method": method,
        }
        if self.spec.method_ids:
            item["method_id"] = 0 if label == 0 else self.method_index.get(method, -1)
        return item, image, lm, mask, seed

    def _item(
        self,
        key: int | tuple[int, bool, int],
        out: dict[str, Tensor] | None = None,
        crops: list[np.ndarray] | None = None,
    ) -> dict[str, Any]:
        """One sample; ``out`` optionally holds ``image`` / ``region_masks`` tensors to write into. With
        ``device_perturb`` the item has no image: the stored crop is appended to ``crops`` (a single
        item, ``self[key]``, gets the device step here, on the CPU)."""
        item, image, lm, mask, seed = self._load(key)
        if self.identity is not None and "#" not in item["video_id"]:  # not a self-blend
            i = int(key[0] if isinstance(key, tuple | list) else key)
            item["input_key"] = input_key(self.identity, item["sample_id"], self.store.stamp(i))
        with_image = not self.device_perturb
        item.update(
            self.transform(
                image, lm, mask, seed=seed, out=out, sample_key=item["sample_id"], with_image=with_image
            )
        )
        if not with_image:
            if crops is not None:
                crops.append(image)
            else:
                item["image"] = self._device_image(image)
        return item

    def _device_image(self, crop: np.ndarray) -> Tensor:
        if self._perturber is None:
            self._perturber = DevicePerturb(self.spec, self._perturbation)
        return self._perturber.image(torch.from_numpy(crop).permute(2, 0, 1)[None])[0]

    def _raw_batch(self, keys: list) -> Batch:
        """Crops, landmarks, masks and seeds for the device augmentation (nothing transformed here)."""
        loaded = [self._load(k) for k in keys]
        items = [it for it, *_ in loaded]
        stacked, raw = raw_fields(
            [img for _, img, *_ in loaded],
            [lm for _, _, lm, _, _ in loaded] if self.spec.region_masks else None,
            [m for *_, m, _ in loaded] if self.with_forgery_mask else None,
            [seed if seed is not None else int(k) for (*_, seed), k in zip(loaded, keys, strict=True)],
            [it["sample_id"] for it in items],
        )
        batch = collate(items, stacked=stacked)
        batch.extra[RAW] = raw
        return batch

"""``ManifestDataset``: manifest rows -> dataset items (dicts with the ``Batch`` fields), one or a batch at a time.

A key is ``row`` (evaluation: no augmentation draw) or ``(row, sbi, seed)`` from the training sampler
(:mod:`datamodules.loading.sampler`). An SBI key turns the real crop into a self-blended fake
(:mod:`datamodules.media.blending`; label 1, method ``"sbi"``, the blend mask as its forgery mask).
The crop -> tensors step is :class:`datamodules.loading.transforms.SampleTransform`, the one
``benchmark.predict`` uses too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from torch import Tensor
from torch.utils.data import Dataset

from datamodules.batch import Batch, batch_tensor, collate
from datamodules.loading.input_keys import input_identity, input_key
from datamodules.loading.transforms import SampleTransform
from datamodules.manifest import REQUIRED, DataError, is_empty
from datamodules.media.blending import self_blend
from datamodules.media.perturb import ClipFrames, CropView, Perturbation
from datamodules.media.regions import REGIONS
from datamodules.spec import DataSpec

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
        augment: bool,
        methods: Sequence[str],
        with_forgery_mask: bool,
        soft_regions: bool = True,
        blend: bool = False,
        perturbation: Perturbation | None = None,
        view: CropView | None = None,
        source: str | None = None,
    ) -> None:
        self.root = Path(root)
        self.spec = spec
        per_clip = perturbation is not None and perturbation.kind == "clip" and not perturbation.is_identity
        self.transform = SampleTransform(
            spec, augment, soft_regions, None if per_clip else perturbation, view
        )
        self.method_index = {m: i + 1 for i, m in enumerate(methods)}
        self.with_forgery_mask = with_forgery_mask
        self.need_landmarks = spec.region_masks or blend
        cols = [c for c in REQUIRED if c not in ("split", "status")]
        self.rows = {c: rows[c].tolist() for c in cols}
        self.labels = np.asarray(self.rows["label"], dtype=np.int64)
        self.identity = None
        if source is not None and not augment:
            clip = (
                zip(self.rows["video_id"], map(int, self.rows["frame_index"]), strict=True)
                if per_clip
                else None
            )
            self.identity = input_identity(source, spec, perturbation, view, clip)
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
        if self.labels[i] == 0 or is_empty(rel):
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
        i, sbi, seed = (int(key), False, None) if not isinstance(key, tuple | list) else key
        i = int(i)
        image = self._read(i)
        lm = np.load(self._path(self.rows["landmarks_path"][i])) if self.need_landmarks else None
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
            "sample_id": f"{video_id}/{self.rows['frame_index'][i]}",
            "video_id": video_id,
            "dataset": str(self.rows["dataset"][i]),
            "method": method,
        }
        if self.spec.method_ids:
            item["method_id"] = 0 if label == 0 else self.method_index.get(method, -1)
        if self.identity is not None and not sbi:
            item["input_key"] = input_key(
                self.identity, item["sample_id"], self._path(self.rows["crop_path"][i])
            )
        item.update(self.transform(image, lm, mask, seed=seed, out=out, sample_key=item["sample_id"]))
        return item

"""The one typed batch that flows from every datamodule into every detector.

Defined once here and imported everywhere (design card, "Contracts / Batch"). A dataset item is a plain
``dict`` (cheap to pickle across DataLoader workers); :func:`collate` turns a list of items into a
:class:`Batch`. Lightning moves dataclasses between devices field by field, so a ``Batch`` can be used
as-is in ``training_step``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import Tensor

REAL, FAKE = 0, 1


@dataclass
class Batch:
    """A batch of face crops and their metadata.

    Attributes:
        image: float ``[B, 3, H, W]``, already normalised for the detector.
        label: long ``[B]``, 0 real, 1 fake.
        sample_id: unique frame key per sample (``video_id/frame_index``).
        video_id: globally unique video key (``dataset/label/source-video``).
        dataset: dataset name per sample.
        method: manipulation name per sample (``"real"`` for reals).
        method_id: optional long ``[B]``: 0 for real, 1..M for the training methods (UCF).
        region_masks: optional float ``[B, R, H, W]`` in the order of ``datamodules.media.regions.REGIONS``.
        forgery_mask: optional float ``[B, 1, H, W]`` in [0, 1], soft, all zero for reals.
        input_key: optional, per sample, what its ``image`` is made from (source crop, transform,
            perturbation; :mod:`datamodules.loading.input_keys`), ``""`` for a sample without one (an
            augmented or self-blended one): two samples with the same key have the same image. Detectors
            key cached frozen-backbone outputs on it.
    """

    image: Tensor
    label: Tensor
    sample_id: list[str]
    video_id: list[str]
    dataset: list[str]
    method: list[str]
    method_id: Tensor | None = None
    region_masks: Tensor | None = None
    forgery_mask: Tensor | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    input_key: list[str] | None = None

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def is_paired(self) -> bool:
        """True when the first half are reals and the second half fakes, of equal size (UCF pairing)."""
        n = len(self)
        if n == 0 or n % 2:
            return False
        half = n // 2
        return bool((self.label[:half] == REAL).all() and (self.label[half:] == FAKE).all())

    def to(self, device: torch.device | str) -> Batch:
        """A Batch with every tensor field on ``device`` (the list fields are shared)."""
        return Batch(**{f.name: _moved(getattr(self, f.name), device) for f in fields(self)})

    def select(self, index: Tensor | Sequence[int]) -> Batch:
        """Rows of the batch at ``index`` (a new Batch; tensors are indexed, lists gathered)."""
        idx = torch.as_tensor(index, dtype=torch.long)
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Tensor):
                out[f.name] = v[idx.to(v.device)]
            elif isinstance(v, list):
                out[f.name] = [v[i] for i in idx.tolist()]
            else:
                out[f.name] = v
        return Batch(**out)


def _moved(value: Any, device: torch.device | str) -> Any:
    return value.to(device) if isinstance(value, Tensor) else value


_TENSOR_FIELDS = ("image", "label", "method_id", "region_masks", "forgery_mask")
_LIST_FIELDS = ("sample_id", "video_id", "dataset", "method")


def batch_tensor(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> Tensor:
    """An uninitialised batch tensor; inside a DataLoader worker it lives in shared memory (as torch's
    default collate does), which saves the copy into shared memory when the batch goes to the main
    process.
    """
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(tuple(shape), dtype=dtype)
    numel = 1
    for d in shape:
        numel *= int(d)
    storage = torch.UntypedStorage._new_shared(numel * torch.empty((), dtype=dtype).element_size())
    return torch.empty(0, dtype=dtype).set_(storage).view(*shape)


def _stack(tensors: list[Tensor]) -> Tensor:
    return torch.stack(tensors, out=batch_tensor((len(tensors), *tensors[0].shape), tensors[0].dtype))


def collate(items: Sequence[dict[str, Any]] | Batch, stacked: dict[str, Tensor] | None = None) -> Batch:
    """Stack dataset items (dicts with the field names of :class:`Batch`) into one :class:`Batch`.

    Optional tensor fields must be present in all items or in none; a mixture is a data bug and raises.
    ``stacked`` holds fields the dataset already wrote into batch tensors (their items are not
    stacked again); a ``Batch`` (from a dataset's batched ``__getitems__``) is returned as it is.
    """
    if isinstance(items, Batch):
        return items
    if not items:
        raise ValueError("collate() got an empty list of samples")
    out: dict[str, Any] = {}
    for name in _TENSOR_FIELDS:
        if stacked is not None and name in stacked:
            out[name] = stacked[name]
            continue
        present = [name in it and it[name] is not None for it in items]
        if not any(present):
            continue
        if not all(present):
            missing = [items[i].get("sample_id", i) for i, p in enumerate(present) if not p][:5]
            raise ValueError(f"field '{name}' is missing in some samples of the batch, e.g. {missing}")
        out[name] = _stack([torch.as_tensor(it[name]) for it in items])
    for name in _LIST_FIELDS:
        out[name] = [str(it.get(name, "")) for it in items]
    if any(it.get("input_key") for it in items):
        out["input_key"] = [str(it.get("input_key") or "") for it in items]
    out["label"] = out["label"].long()
    if "method_id" in out:
        out["method_id"] = out["method_id"].long()
    return Batch(**out)

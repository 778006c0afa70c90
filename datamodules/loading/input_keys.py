"""Input keys: what a sample's image tensor is made from, as a string (``Batch.input_key``).

Two samples with the same key get the same input tensor, so a detector may reuse what a frozen backbone
computed from it (``detectors.frozen_cache``). A key is ``<identity>:<sample_id>:<crop stamp>``:

* ``identity`` (16 hex digits) hashes everything of the dataset that shapes its images: the manifest's
  SHA-256, the detector's input size and normalisation, the test-time perturbation (``to_dict()``) and
  view, for a clip perturbation the frames selected per video (they are encoded together), and the source
  of the modules that make the image (a changed transform changes every key) with the OpenCV version;
* ``sample_id`` names the frame within the manifest;
* the crop's stamp (a PNG file's size and modification time, a packed crop's checksum) catches a crop
  rewritten under an unchanged manifest.

Only unaugmented samples have a key: an augmented or self-blended sample's image is a fresh draw.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from datamodules.spec import DataSpec

#: modules whose code turns a stored crop into the image tensor
IMAGE_MODULES = (
    "datamodules.loading.transforms",
    "datamodules.loading.dataset",
    "datamodules.media.perturb.registry",
    "datamodules.media.perturb.deeperforensics",
    "datamodules.media.perturb.video",
    "datamodules.media.perturb.view",
    "datamodules.media.perturb.device",
    "datamodules.loading.device_perturb",
)


@lru_cache(maxsize=1)
def image_code_sha256() -> str:
    """SHA-256 of the source of :data:`IMAGE_MODULES` and the OpenCV version."""
    import cv2

    h = hashlib.sha256(f"cv2 {cv2.__version__}\n".encode())
    for name in IMAGE_MODULES:
        h.update(name.encode() + b"\n" + Path(inspect.getfile(importlib.import_module(name))).read_bytes())
    return h.hexdigest()


@lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file (remembered per path, size and modification time)."""
    st = os.stat(path)
    return _file_sha256(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def input_identity(
    source: str,
    spec: DataSpec,
    perturbation: Any = None,
    view: Any = None,
    clip_frames: Iterable[tuple[str, int]] | None = None,
    on_device: bool = False,
) -> str:
    """The ``identity`` part of the keys of one unaugmented dataset (see the module docstring).

    Args:
        source: what the crops come from (a manifest's SHA-256; any unique name for synthetic data).
        spec: the detector's data spec (input size and normalisation are used).
        perturbation: a test-time ``Perturbation`` (its ``to_dict()``), or ``None``.
        view: a test-time ``CropView``, or ``None``.
        clip_frames: ``(video_id, frame_index)`` of the selected frames, for a clip perturbation.
        on_device: the perturbation runs on the device (``perturb_on_device``: pixels may differ by one
            grey level from the worker's, so the keys differ).
    """
    record = {
        "source": source,
        "input_size": spec.input_size,
        "mean": list(spec.mean),
        "std": list(spec.std),
        "perturbation": None if perturbation is None or perturbation.is_identity else perturbation.to_dict(),
        "view": None if view is None or view.is_identity else _record(view),
        "code": image_code_sha256(),
    }
    if clip_frames is not None:
        frames = hashlib.sha256(json.dumps(sorted(clip_frames)).encode()).hexdigest()
        record["clip_frames"] = frames
    if on_device:
        record["perturbation_on_device"] = True
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def _record(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else repr(value)


def file_stamp(path: str | os.PathLike) -> str:
    """A stored crop file's size and modification time: a cheap stamp of its bytes."""
    st = os.stat(path)
    return f"{st.st_size}:{st.st_mtime_ns}"


def input_key(identity: str, sample_id: str, stamp: str | None = None) -> str:
    """The key of one sample of a dataset of ``identity``; ``stamp``: the store's stamp of the crop's bytes
    (:func:`file_stamp` of a PNG crop, a packed crop's checksum), None for generated images."""
    return f"{identity}:{sample_id}" if stamp is None else f"{identity}:{sample_id}:{stamp}"

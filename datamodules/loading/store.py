"""Where a dataset's crops, landmarks and forgery masks are read from: one file each, or a packed store.

* :class:`PngStore`: the files preprocessing writes (``crops/...png``, ``landmarks/...npy``,
  ``masks/...png``), decoded by :func:`read_crop`, :func:`read_landmarks`, :func:`read_mask`. These three
  functions are the one definition of a stored frame's pixels and points: the packer
  (:mod:`datamodules.pack.writer`) reads the PNG store through them, so a packed store holds exactly
  what the PNG store decodes to.
* :class:`PackedStore`: the same frames from the shards of :mod:`datamodules.pack` (no decode; zero-copy
  read-only views of memory-mapped shards, each record's checksum verified on read).

Both take the dataset's rows at construction and serve them by the dataset's row index ``i``.
:func:`open_pack` decides whether a dataset folder's pack may serve a manifest (``store="auto"``:
a complete pack made from this very manifest, else the PNG store with a warning when a pack is there but
stale or unfinished).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from datamodules.loading.input_keys import file_stamp
from datamodules.manifest import DataError, is_empty

if TYPE_CHECKING:
    import pandas as pd

    from datamodules.pack.reader import PackReader

log = logging.getLogger(__name__)

#: values of ``ForgeryDataModule(store=...)``
STORES = ("auto", "png", "packed")


class StalePackWarning(UserWarning):
    """A dataset folder holds a pack that does not match its manifest (or is unfinished): PNGs are read."""


def read_crop(path: Path) -> np.ndarray:
    """A stored crop as uint8 RGB ``[H, W, 3]``; ``DataError`` naming the file when it cannot be read."""
    rgb = cv2.imread(str(path), cv2.IMREAD_COLOR_RGB)  # libpng swaps channels: no extra pass
    if rgb is None:
        raise DataError(f"cannot read crop {path} (missing or corrupt)")
    return rgb


def read_mask(path: Path) -> np.ndarray:
    """A stored forgery mask as uint8 ``[H, W]`` (0-255); ``DataError`` naming the file when unreadable."""
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise DataError(f"cannot read mask {path} (missing or corrupt)")
    return m


def read_landmarks(path: Path) -> np.ndarray:
    """Stored landmarks ``[68, 2]`` as written (float32 from preprocessing); ``DataError`` when unreadable."""
    try:
        return np.load(path)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read landmarks {path}: {e}") from e


class PngStore:
    """The frames of ``rows`` (manifest rows: ``crop_path``, ``landmarks_path``, ``mask_path`` relative to
    ``root``) read from their files."""

    kind = "png"

    def __init__(
        self, root: Path, crop_paths: Sequence, landmark_paths: Sequence, mask_paths: Sequence
    ) -> None:
        self.root = Path(root)
        self.crop_paths, self.landmark_paths, self.mask_paths = crop_paths, landmark_paths, mask_paths

    def crop(self, i: int) -> np.ndarray:
        """Crop ``i`` read from its PNG."""
        return read_crop(self.root / str(self.crop_paths[i]))

    def landmarks(self, i: int) -> np.ndarray:
        """Landmarks of crop ``i`` read from their file."""
        return read_landmarks(self.root / str(self.landmark_paths[i]))

    def mask(self, i: int) -> np.ndarray:
        """Forgery mask of crop ``i`` read from its PNG."""
        return read_mask(self.root / str(self.mask_paths[i]))

    def stamp(self, i: int) -> str:
        """What identifies the stored crop's bytes cheaply: the file's size and modification time."""
        return file_stamp(self.root / str(self.crop_paths[i]))


class PackedStore:
    """The frames of ``rows`` served from a pack (:class:`datamodules.pack.reader.PackReader`).

    Every row must be in the pack (``DataError`` naming the first ones otherwise); a row whose landmarks
    or mask were not packed raises when they are asked for, as a missing file would.
    """

    kind = "packed"

    def __init__(self, reader: PackReader, crop_paths: Sequence) -> None:
        self.reader = reader
        self.entries = reader.lookup(crop_paths)
        missing = [str(crop_paths[i]) for i in np.flatnonzero(self.entries < 0)[:3]]
        if missing:
            raise DataError(
                f"{int((self.entries < 0).sum())} rows are not in the pack {reader.folder} "
                f"(e.g. {missing}); re-run python -m datamodules.pack"
            )

    def crop(self, i: int) -> np.ndarray:
        """Crop ``i`` decoded from the pack."""
        return self.reader.crop(int(self.entries[i]))

    def landmarks(self, i: int) -> np.ndarray:
        """Landmarks of crop ``i`` from the pack."""
        return self.reader.landmarks(int(self.entries[i]))

    def mask(self, i: int) -> np.ndarray:
        """Forgery mask of crop ``i`` decoded from the pack."""
        return self.reader.mask(int(self.entries[i]))

    def stamp(self, i: int) -> str:
        """What identifies the stored crop's bytes: the pack's checksum of them."""
        return f"xxh3:{self.reader.checksum(int(self.entries[i])):016x}"


def open_pack(manifest: Path, name: str, store: str) -> PackReader | None:
    """The pack that may serve ``manifest`` (a ``PackReader``), or ``None`` for the PNG store.

    ``store``: ``"png"`` never reads a pack; ``"packed"`` requires a complete pack made from this
    manifest (``DataError`` otherwise); ``"auto"`` uses one when there is one, and warns
    (:class:`StalePackWarning`) and reads the PNGs when the pack is stale or unfinished.
    """
    if store not in STORES:
        raise DataError(f"store must be one of {list(STORES)}, got {store!r}")
    if store == "png":
        return None
    from datamodules.pack.reader import PackReader, pack_state

    state, why = pack_state(Path(manifest).parent)
    if state == "ok":
        return PackReader.open(Path(manifest).parent)
    if store == "packed":
        raise DataError(f"dataset {name!r}: store='packed' but {why}")
    if state != "absent":
        warnings.warn(
            f"dataset {name!r}: {why}; reading the PNG store (re-run python -m datamodules.pack)",
            StalePackWarning,
            stacklevel=2,
        )
    return None


def check_pack_covers(
    reader: PackReader, rows: pd.DataFrame, need_landmarks: bool, need_masks: bool, name: str
) -> None:
    """``DataError`` unless the pack holds every row of ``rows`` (a manifest DataFrame) with the landmarks
    and masks the run reads (the packed counterpart of checking that the files exist)."""
    j = reader.lookup(rows["crop_path"].tolist())
    problems = []
    if (j < 0).any():
        problems.append(
            f"{int((j < 0).sum())} rows not packed, e.g. {rows['crop_path'][j < 0].head(3).tolist()}"
        )
    j_ok = np.where(j < 0, 0, j)
    if need_landmarks:
        no_lm = (j >= 0) & ~reader.has_landmarks(j_ok) & ~rows["landmarks_path"].map(is_empty).to_numpy()
        if no_lm.any():
            problems.append(f"{int(no_lm.sum())} rows without packed landmarks")
    if need_masks:
        want = (rows["label"].to_numpy() == 1) & ~rows["mask_path"].map(is_empty).to_numpy()
        no_mask = (j >= 0) & want & ~reader.has_mask(j_ok)
        if no_mask.any():
            problems.append(f"{int(no_mask.sum())} fake rows without a packed mask")
    if problems:
        raise DataError(
            f"dataset {name!r}: the pack {reader.folder} does not serve the selected rows ({'; '.join(problems)}); "
            "re-run python -m datamodules.pack"
        )

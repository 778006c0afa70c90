"""The options of a preprocessing run, pinned in ``preprocess.json`` so a resumed run cannot mix geometries."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from datamodules import atomic
from datamodules.errors import UserError
from datamodules.media.crop import FaceCropOptions

CONFIG_FILE = "preprocess.json"
#: Options that only change how files are stored, never their pixels: a resume may change them.
STORAGE_ONLY = ("png_compression",)
#: the output folders a run with other options must clear before it redoes every video
OUTPUT_DIRS = ("rows", "crops", "landmarks", "masks")
#: options added after the first runs, with the value a ``preprocess.json`` without them was made with
ADDED_LATER = {"protocol": "default", "min_confidence": None, "min_face_side": 0}

_CROP = FaceCropOptions


class PreprocessConfigError(UserError, ValueError):
    """Preprocessing options that cannot be used: ``out`` already holds a run made with other options (would
    mix two crop geometries), an unknown protocol, a protocol the data or the face backend cannot follow."""

    hint = "use another --out, or --overwrite to redo every video with the new options"


@dataclass(frozen=True)
class Options:
    """Preprocessing options (stored flat in ``preprocess.json``; a resumed run must use the same).

    The face-crop fields and their defaults are :class:`datamodules.media.crop.FaceCropOptions`'s.
    """

    frames: int = 32
    size: int = _CROP.size
    margin: float = _CROP.margin
    backend: str = _CROP.backend
    detect_max_side: int = _CROP.detect_max_side
    min_iou: float = _CROP.min_iou
    max_shift: float = _CROP.max_shift
    min_face: int = _CROP.min_face
    png_compression: int = 0
    protocol: str = "default"  # datamodules.preprocess.protocols; its thresholds are the next two fields
    min_confidence: float | None = _CROP.min_confidence
    min_face_side: int = _CROP.min_face_side

    @property
    def crop(self) -> FaceCropOptions:
        """The face-crop part of the options."""
        return FaceCropOptions(**{f.name: getattr(self, f.name) for f in fields(FaceCropOptions)})


def check_config(base: Path, opts: Options, overwrite: bool) -> None:
    """Pin ``opts`` in ``base/preprocess.json``; refuse a folder made with other pixel options.

    With ``overwrite`` the earlier run's outputs are removed instead (every video is redone).
    """
    cfg = base / CONFIG_FILE
    want = asdict(opts)
    have = read_pinned(base)
    if have is not None:
        pixels = {k: v for k, v in want.items() if k not in STORAGE_ONLY}
        if {k: v for k, v in have.items() if k not in STORAGE_ONLY} != pixels:
            if not overwrite:
                diff = {k: (have.get(k), v) for k, v in pixels.items() if have.get(k) != v}
                raise PreprocessConfigError(
                    f"{base} was preprocessed with other options {diff} (stored, requested); use another "
                    "--out, or --overwrite to redo every video"
                )
            for sub in OUTPUT_DIRS:
                shutil.rmtree(base / sub, ignore_errors=True)
    atomic.write_json(cfg, want, indent=1)


def read_pinned(base: Path) -> dict | None:
    """The options pinned in ``base/preprocess.json`` (None when there is none); a file written before an
    option existed reads as made with that option's original value (:data:`ADDED_LATER`)."""
    cfg = base / CONFIG_FILE
    if not cfg.is_file():
        return None
    return {**ADDED_LATER, **json.loads(cfg.read_text())}

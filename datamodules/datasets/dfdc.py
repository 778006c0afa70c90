"""DFDC, the Deepfake Detection Challenge dataset (Dolhansky et al., 2020)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from datamodules.datasets.base import (
    Adapter,
    DatasetLayoutError,
    VideoRecord,
    carve_val,
    missing_report,
    parse_label,
    register_layout,
    require_dir,
    warn_partial,
)

#: where the training parts are found below ``root``: unzipped side by side, as DeepfakeBench's
#: ``preprocessing/preprocess.py`` expects them (``DFDC/train/dfdc_train_part_N``), or inside the folder
#: of the full training download
TRAIN_PLACES = (".", "train", "dfdc_train_full")
VAL_SOURCES = ("carved", "official")


def read_metadata(path: Path) -> dict[str, dict]:
    """A training part's ``metadata.json``: ``{"abc.mp4": {"label": "FAKE", "original": "xyz.mp4"}}``."""
    try:
        meta = json.loads(path.read_text())
    except ValueError as e:
        raise DatasetLayoutError(f"{path}: not valid JSON: {e}") from e
    if not isinstance(meta, dict) or not all(isinstance(v, dict) for v in meta.values()):
        raise DatasetLayoutError(f'{path}: expected an object {{"abc.mp4": {{"label": "FAKE"|"REAL", ...}}}}')
    return meta


def read_labels(path: Path) -> list[tuple[str, int]]:
    """A ``labels.csv`` of the test or validation set: ``filename,label`` with 1 = fake."""
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or [])
        if not {"filename", "label"} <= cols:
            raise DatasetLayoutError(f"{path}: needs columns filename,label (1 = fake); has {sorted(cols)}")
        return [(r["filename"], parse_label(r["label"], f"{path} row {i}")) for i, r in enumerate(reader, 2)]


def train_parts(root: Path) -> list[Path]:
    """Every ``dfdc_train_part_<N>`` folder in the :data:`TRAIN_PLACES` below ``root``."""
    return sorted(
        (p for place in TRAIN_PLACES for p in (root / place).glob("dfdc_train_part_*") if p.is_dir()),
        key=lambda p: str(p),
    )


@register_layout("dfdc")
class DFDCAdapter(Adapter):
    """DFDC: training parts with ``metadata.json``, the labelled test set, the official validation set.

    Expected layout (each part optional, at least one present)::

        dfdc_train_part_<N>/metadata.json   # {"abc.mp4": {"label": "FAKE"|"REAL", "split": "train",
        dfdc_train_part_<N>/abc.mp4         #              "original": "xyz.mp4"}, ...}
        train/dfdc_train_part_<N>/...       # or there (DeepfakeBench's placement)
        dfdc_train_full/dfdc_train_part_<N>/...   # or inside the full training download's folder
        test/labels.csv                     # filename,label   (1 = fake)
        test/videos/<filename>              # or test/<filename>
        validation/labels.csv               # the official 4,000-video validation set, same format
        validation/videos/<filename>        # or validation/<filename>

    Training parts give ``train``; ``val`` comes from ``val_source``: ``carved`` (default; carved from
    the training parts with a fixed seed, ``val_fraction`` 0.1, ``seed`` 0, by ORIGINAL video: a real
    and every fake made from it stay together) or ``official`` (the validation set; then nothing is
    carved). Fakes have method ``fake``. Missing videos listed in a metadata.json or labels.csv are an
    error; finding the test set without training parts (or the reverse) is a ``PartialDatasetWarning``
    with counts per split.
    """

    default_name = "DFDC"

    def enumerate(
        self,
        root: str | Path,
        dataset: str | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        val_source: str = "carved",
        **_: object,
    ) -> list[VideoRecord]:
        """The records of the DFDC download at ``root`` (layout and options: the class docstring)."""
        root, name = Path(root), dataset or self.default_name
        require_dir(root, self.layout, "DFDC root")
        if val_source not in VAL_SOURCES:
            raise ValueError(f"val_source must be one of {VAL_SOURCES}, got {val_source!r}")
        parts = train_parts(root)
        test_csv, val_csv = root / "test" / "labels.csv", root / "validation" / "labels.csv"
        places = ", ".join(str(root / p / "dfdc_train_part_<N>") for p in TRAIN_PLACES)
        if not parts and not test_csv.is_file():
            raise DatasetLayoutError(
                f"layout 'dfdc': found neither dfdc_train_part_<N>/metadata.json (looked in {places}) "
                f"nor {test_csv} under {root}"
            )
        if val_source == "official" and not val_csv.is_file():
            raise DatasetLayoutError(f"layout 'dfdc': val_source='official' needs {val_csv}")
        out = self._train(name, parts, val_fraction if val_source == "carved" else 0.0, seed)
        if test_csv.is_file():
            out += self._listed(name, test_csv, "test")
        if val_source == "official":
            out += self._listed(name, val_csv, "val")
        missing = []
        if not parts:
            missing.append(f"training parts (looked for {places})")
        if not test_csv.is_file():
            missing.append(f"test labels ({test_csv})")
        warn_partial(self.layout, root, out, missing)
        return out

    @staticmethod
    def _train(name: str, parts: list[Path], val_fraction: float, seed: int) -> list[VideoRecord]:
        rows: list[tuple[Path, str, str]] = []  # (video, REAL|FAKE, original)
        missing: list[str] = []
        for part in parts:
            meta_path = part / "metadata.json"
            if not meta_path.is_file():
                raise DatasetLayoutError(f"layout 'dfdc': missing file {meta_path}")
            for fname, info in read_metadata(meta_path).items():
                lab = str(info.get("label", "")).upper()
                if lab not in ("REAL", "FAKE"):
                    raise DatasetLayoutError(
                        f"{meta_path}: {fname}: label {info.get('label')!r} is not REAL/FAKE"
                    )
                video = part / fname
                if not video.is_file():
                    missing.append(str(video))
                    continue
                rows.append((video, lab, fname if lab == "REAL" else str(info.get("original") or fname)))
        if missing:
            raise DatasetLayoutError(
                "DFDC train: " + missing_report(missing, "videos listed in metadata.json")
            )
        val, _ = carve_val({str(v): [g] for v, _, g in rows}, val_fraction, seed)
        out = []
        for v, lab, _ in rows:
            method = "fake" if lab == "FAKE" else "real"
            split = "val" if str(v) in val else "train"
            out.append(VideoRecord(name, split, int(lab == "FAKE"), method, "", f"{name}/{method}/{v.stem}", v,
                                   source_label=lab))  # fmt: skip
        return out

    def _listed(self, name: str, labels_csv: Path, split: str) -> list[VideoRecord]:
        folder = labels_csv.parent
        base = folder / "videos" if (folder / "videos").is_dir() else require_dir(folder, self.layout)
        out, missing = [], []
        for fname, lab in read_labels(labels_csv):
            video = base / fname
            if not video.is_file():
                missing.append(str(video))
                continue
            m = "fake" if lab else "real"
            out.append(VideoRecord(name, split, lab, m, "", f"{name}/{m}/{video.stem}", video,
                                   source_label=f"{folder.name} label {lab}"))  # fmt: skip
        if missing:
            raise DatasetLayoutError(f"{labels_csv}: " + missing_report(missing, f"listed {split} videos"))
        return out

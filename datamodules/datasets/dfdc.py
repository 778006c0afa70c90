"""DFDC, the Deepfake Detection Challenge dataset (Dolhansky et al., 2020)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from datamodules.datasets.base import (
    Adapter,
    DatasetLayoutError,
    VideoRecord,
    missing_report,
    parse_label,
    register_layout,
    require_dir,
    seeded_val,
)


def _read_metadata(path: Path) -> dict[str, dict]:
    try:
        meta = json.loads(path.read_text())
    except ValueError as e:
        raise DatasetLayoutError(f"{path}: not valid JSON: {e}") from e
    if not isinstance(meta, dict):
        raise DatasetLayoutError(f'{path}: expected an object {{"abc.mp4": {{"label": ...}}}}')
    return meta


def _read_labels(path: Path) -> list[tuple[str, int]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or [])
        if not {"filename", "label"} <= cols:
            raise DatasetLayoutError(f"{path}: needs columns filename,label (1 = fake); has {sorted(cols)}")
        return [(r["filename"], parse_label(r["label"], f"{path} row {i}")) for i, r in enumerate(reader, 2)]


@register_layout("dfdc")
class DFDCAdapter(Adapter):
    """DFDC: train parts with ``metadata.json`` and the labelled test set.

    Expected layout (at least one of the two)::

        dfdc_train_part_<N>/metadata.json   # {"abc.mp4": {"label": "FAKE"|"REAL", "split": "train",
        dfdc_train_part_<N>/abc.mp4         #              "original": "xyz.mp4"}, ...}
        test/labels.csv                     # filename,label   (1 = fake)
        test/videos/<filename>              # or test/<filename>

    Train parts give ``train`` minus a validation split carved with a fixed seed (``val_fraction``
    0.1, ``seed`` 0) by ORIGINAL video: a real and every fake made from it stay together. Fakes have
    method ``fake``. Missing videos listed in a metadata.json or labels.csv are an error.
    """

    default_name = "DFDC"

    def enumerate(
        self,
        root: str | Path,
        dataset: str | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        **_: object,
    ) -> list[VideoRecord]:
        root, name = Path(root), dataset or self.default_name
        require_dir(root, self.layout, "DFDC root")
        parts = sorted(p for p in root.glob("dfdc_train_part_*") if p.is_dir())
        labels_csv = root / "test" / "labels.csv"
        if not parts and not labels_csv.is_file():
            raise DatasetLayoutError(
                f"layout 'dfdc': found neither dfdc_train_part_<N>/metadata.json nor {labels_csv} under {root}"
            )
        rows: list[tuple[Path, int, str]] = []  # (video, label, group)
        missing: list[str] = []
        for part in parts:
            meta_path = part / "metadata.json"
            if not meta_path.is_file():
                raise DatasetLayoutError(f"layout 'dfdc': missing file {meta_path}")
            for fname, info in _read_metadata(meta_path).items():
                lab = str(info.get("label", "")).upper()
                if lab not in ("REAL", "FAKE"):
                    raise DatasetLayoutError(
                        f"{meta_path}: {fname}: label {info.get('label')!r} is not REAL/FAKE"
                    )
                video = part / fname
                if not video.is_file():
                    missing.append(str(video))
                    continue
                original = fname if lab == "REAL" else str(info.get("original") or fname)
                rows.append((video, int(lab == "FAKE"), original))
        if missing:
            raise DatasetLayoutError(
                "DFDC train: " + missing_report(missing, "videos listed in metadata.json")
            )
        val_groups = seeded_val([g for _, _, g in rows], val_fraction, seed)
        out = [
            VideoRecord(
                name,
                "val" if g in val_groups else "train",
                lab,
                "fake" if lab else "real",
                "",
                f"{name}/{'fake' if lab else 'real'}/{v.stem}",
                v,
            )
            for v, lab, g in rows
        ]
        if labels_csv.is_file():
            vids = root / "test" / "videos"
            base = vids if vids.is_dir() else require_dir(root / "test", self.layout)
            for fname, lab in _read_labels(labels_csv):
                video = base / fname
                if not video.is_file():
                    missing.append(str(video))
                    continue
                m = "fake" if lab else "real"
                out.append(VideoRecord(name, "test", lab, m, "", f"{name}/{m}/{video.stem}", video))
            if missing:
                raise DatasetLayoutError(f"{labels_csv}: " + missing_report(missing, "listed test videos"))
        return out

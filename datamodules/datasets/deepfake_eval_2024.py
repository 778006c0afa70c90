"""Deepfake-Eval-2024 (Chandra et al., 2025, arXiv:2503.02857): in-the-wild videos and images circulated
in 2024, manually labelled, with the authors' split for fine-tuning.

The release (Hugging Face ``nuriachandra/Deepfake-Eval-2024``) holds ``video-data/``, ``image-data/`` and
``audio-data/`` beside metadata CSVs named ``<modality>-metadata-publish.csv`` and
``<modality>-metadata-publish-with-links.csv``. The columns this layout reads: ``Filename``,
``Video Ground Truth`` (videos) or ``Ground Truth`` (images) with ``Real``/``Fake``, and
``Finetuning Set`` with ``Train``/``Test``. Audio is not a face benchmark and is not read.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

from datamodules.datasets.base import (
    Adapter,
    DatasetLayoutError,
    VideoRecord,
    missing_report,
    register_layout,
    require_dir,
    safe_stem,
    seeded_val,
    warn_partial,
)

MODALITIES = ("video", "image")
LABEL_COLUMNS = ("Video Ground Truth", "Ground Truth")
SPLIT_COLUMN = "Finetuning Set"
_UNKNOWN = {"", "unknown", "n/a", "na", "nan"}
#: a spreadsheet turned some file names into a formula error before the CSV was written
_MANGLED = {"#NAME?"}


def metadata_csv(root: Path, modality: str) -> Path | None:
    """The modality's metadata CSV: ``<modality>-metadata-publish.csv`` or its ``-with-links`` twin."""
    for name in (f"{modality}-metadata-publish.csv", f"{modality}-metadata-publish-with-links.csv"):
        if (root / name).is_file():
            return root / name
    return None


def read_rows(path: Path) -> tuple[list[dict[str, str]], str]:
    """The CSV's rows and the label column it uses; a missing column names the file and what it has."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            cols = list(reader.fieldnames or [])
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as e:
        raise DatasetLayoutError(f"{path}: not a readable CSV: {e}") from e
    label_col = next((c for c in LABEL_COLUMNS if c in cols), None)
    lacking = [c for c in ("Filename", SPLIT_COLUMN) if c not in cols] + (
        [] if label_col else [LABEL_COLUMNS[0]]
    )
    if lacking:
        raise DatasetLayoutError(
            f"{path}: missing column(s) {lacking}; expected Filename, {' or '.join(LABEL_COLUMNS)}, "
            f"{SPLIT_COLUMN}; found {cols}"
        )
    return rows, label_col  # type: ignore[return-value]


@register_layout("deepfake_eval_2024")
class DeepfakeEval2024Adapter(Adapter):
    """Deepfake-Eval-2024 as released on Hugging Face (see the module docstring).

    Expected layout::

        video-metadata-publish[-with-links].csv   # Filename, Video Ground Truth (Real|Fake), Finetuning Set (Train|Test), ...
        video-data/<Filename>
        image-metadata-publish[-with-links].csv   # Filename, Ground Truth (Real|Fake), Finetuning Set, ...
        image-data/<Filename>

    Videos are ``video`` records, images ``image`` records (preprocessed as one-frame videos). Fakes have
    method ``fake``; ``source_label`` is ``<modality>/<ground truth>``. ``Test`` rows are ``test``;
    ``Train`` rows are ``train`` minus a fixed-seed val (``val_fraction`` 0.1, ``seed`` 0; the release
    names no groups, so each item is its own). Rows whose label is empty or ``Unknown`` and rows whose
    file name a spreadsheet turned into ``#NAME?`` are left out with a warning; any other label or split
    value, or a listed file that is missing, is an error. Options: ``modalities`` (``video``, ``image``).
    """

    default_name = "DFE-2024"

    def enumerate(
        self,
        root: str | Path,
        dataset: str | None = None,
        modalities: list[str] | tuple[str, ...] | str = MODALITIES,
        val_fraction: float = 0.1,
        seed: int = 0,
        **_: object,
    ) -> list[VideoRecord]:
        """The records of the Deepfake-Eval-2024 download at ``root`` (layout and options: the class
        docstring)."""
        root, name = Path(root), dataset or self.default_name
        require_dir(root, self.layout, "Deepfake-Eval-2024 folder")
        wanted = [modalities] if isinstance(modalities, str) else list(modalities)
        if not set(wanted) <= set(MODALITIES) or not wanted:
            raise ValueError(f"modalities must be among {MODALITIES}, got {wanted}")
        items: list[tuple[str, Path, int, str, str]] = []  # (modality, file, label, split, ground truth)
        absent, skipped = [], []
        for mod in wanted:
            path = metadata_csv(root, mod)
            if path is None:
                absent.append(f"{root}/{mod}-metadata-publish[-with-links].csv")
                continue
            items += self._read(path, root / f"{mod}-data", mod, skipped)
        if not items:
            raise DatasetLayoutError(f"layout 'deepfake_eval_2024': no metadata CSV with rows under {root}: "
                                     f"looked for {', '.join(absent) or 'the CSVs of ' + str(wanted)}")  # fmt: skip
        if skipped:
            warnings.warn(
                f"Deepfake-Eval-2024: {len(skipped)} row(s) left out (no Real/Fake label, or a file name "
                f"mangled to '#NAME?'), e.g. {skipped[:3]}",
                stacklevel=2,
            )
        val = seeded_val([str(f) for _, f, _, s, _ in items if s == "train"], val_fraction, seed)
        out = []
        for mod, f, label, split, truth in items:
            method = "fake" if label else "real"
            split = "val" if str(f) in val else split
            vid = f"{name}/{method}/{mod}_{safe_stem(f.with_suffix('').name)}"
            out.append(
                VideoRecord(name, split, label, method, "", vid, f, kind=mod, source_label=f"{mod}/{truth}")
            )
        warn_partial(self.layout, root, out, absent)
        return out

    @staticmethod
    def _read(
        path: Path, folder: Path, mod: str, skipped: list[str]
    ) -> list[tuple[str, Path, int, str, str]]:
        rows, label_col = read_rows(path)
        out, missing = [], []
        for i, row in enumerate(rows, 2):
            fname, truth = (row.get("Filename") or "").strip(), (row.get(label_col) or "").strip()
            split = (row.get(SPLIT_COLUMN) or "").strip().lower()
            if fname in _MANGLED or truth.lower() in _UNKNOWN:
                skipped.append(f"{path.name} row {i}")
                continue
            if truth.lower() not in ("real", "fake"):
                raise DatasetLayoutError(f"{path} row {i}: {label_col} {truth!r} is not Real/Fake")
            if split not in ("train", "test"):
                raise DatasetLayoutError(
                    f"{path} row {i}: {SPLIT_COLUMN} {row.get(SPLIT_COLUMN)!r} is not Train/Test"
                )
            f = folder / fname
            if not f.is_file():
                missing.append(str(f))
                continue
            out.append((mod, f, int(truth.lower() == "fake"), split, truth))
        if missing:
            raise DatasetLayoutError(f"{path}: " + missing_report(missing, "listed files"))
        return out

"""DFDC-Preview (Dolhansky et al., 2019): ``dataset.json`` with labels and sets."""

from __future__ import annotations

import json
from pathlib import Path

from datamodules.datasets.base import (
    Adapter,
    DatasetLayoutError,
    VideoRecord,
    missing_report,
    register_layout,
    require_dir,
    require_file,
    safe_stem,
    seeded_val,
)


def source_group(rel: str) -> str:
    """The source clip a listed video comes from: its second path component (``1000`` of
    ``method_A/1000/a.mp4``); reals and fakes of one source share it."""
    parts = rel.split("/")
    return parts[1] if len(parts) > 2 else parts[-1]


def video_stem(rel: str) -> str:
    """The id stem of a listed video: its path below the method folder (``1000_a``)."""
    return safe_stem("_".join(Path(rel).with_suffix("").parts[1:]) or Path(rel).stem)


def read_dataset_json(jpath: Path) -> dict[str, dict]:
    """``dataset.json`` as ``{relative path: {"label": ..., "set": ...}}``; bad JSON names the file."""
    try:
        meta = json.loads(jpath.read_text())
    except ValueError as e:
        raise DatasetLayoutError(f"{jpath}: not valid JSON: {e}") from e
    if not isinstance(meta, dict) or not all(isinstance(v, dict) for v in meta.values()):
        raise DatasetLayoutError(
            f'{jpath}: expected an object {{"method_A/xxx/yyy.mp4": {{"label": "fake", "set": "train"}}, ...}}'
        )
    return meta


@register_layout("dfdc_preview")
class DFDCPreviewAdapter(Adapter):
    """DFDC-Preview.

    Expected layout::

        dataset.json     # {"method_A/xxx/yyy.mp4": {"label": "fake"|"real", "set": "train"|"test"}, ...}
        method_A/xxx/yyy.mp4, method_B/..., original_videos/...   # paths relative to root

    Fakes take their method from the first path component (``method_A``, ``method_B``). ``test`` is the
    official test set; the official release has no validation set, so ``val`` is carved from train
    with a fixed seed (``val_fraction`` 0.1, ``seed`` 0) by the second path component (the source
    clip folder), keeping a source's reals and fakes together.
    """

    default_name = "DFDCP"

    def enumerate(
        self,
        root: str | Path,
        dataset: str | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        **_: object,
    ) -> list[VideoRecord]:
        """The records of the DFDC Preview download at ``root``, read from its ``dataset.json``."""
        root, name = Path(root), dataset or self.default_name
        require_dir(root, self.layout, "DFDC-Preview root")
        jpath = require_file(root / "dataset.json", self.layout)
        meta = read_dataset_json(jpath)
        entries, missing = [], []
        for rel, info in meta.items():
            rel_n = rel.replace("\\", "/")
            lab = str(info.get("label", "")).lower()
            if lab not in ("real", "fake"):
                raise DatasetLayoutError(f"{jpath}: {rel}: label {info.get('label')!r} is not real/fake")
            split = str(info.get("set", "")).lower()
            if split not in ("train", "test"):
                raise DatasetLayoutError(f"{jpath}: {rel}: set {info.get('set')!r} is not train/test")
            if not (root / rel_n).is_file():
                missing.append(str(root / rel_n))
                continue
            entries.append((rel_n, int(lab == "fake"), split, source_group(rel_n)))
        if missing:
            raise DatasetLayoutError(f"{jpath}: " + missing_report(missing, "listed videos"))
        val = seeded_val([g for _, _, s, g in entries if s == "train"], val_fraction, seed)
        out = []
        for rel, lab, split, group in entries:
            method = rel.split("/")[0] if lab else "real"
            stem = video_stem(rel)
            if split == "train" and group in val:
                split = "val"
            out.append(
                VideoRecord(name, split, lab, method, "", f"{name}/{method}/{stem}", root / rel,
                            source_label=rel.split("/")[0])
            )  # fmt: skip
        return out

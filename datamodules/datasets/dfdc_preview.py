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
        root, name = Path(root), dataset or self.default_name
        require_dir(root, self.layout, "DFDC-Preview root")
        jpath = require_file(root / "dataset.json", self.layout)
        try:
            meta = json.loads(jpath.read_text())
        except ValueError as e:
            raise DatasetLayoutError(f"{jpath}: not valid JSON: {e}") from e
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
            parts = rel_n.split("/")
            group = parts[1] if len(parts) > 2 else parts[-1]
            entries.append((rel_n, int(lab == "fake"), split, group))
        if missing:
            raise DatasetLayoutError(f"{jpath}: " + missing_report(missing, "listed videos"))
        val = seeded_val([g for _, _, s, g in entries if s == "train"], val_fraction, seed)
        out = []
        for rel, lab, split, group in entries:
            parts = rel.split("/")
            method = parts[0] if lab else "real"
            stem = safe_stem("_".join(Path(rel).with_suffix("").parts[1:]) or Path(rel).stem)
            if split == "train" and group in val:
                split = "val"
            out.append(VideoRecord(name, split, lab, method, "", f"{name}/{method}/{stem}", root / rel))
        return out

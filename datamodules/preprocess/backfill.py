"""Confound features for a manifest written before preprocessing recorded them (``--backfill-confounds``).

What the stored crop and its landmarks give is computed (``datamodules.media.confounds.FROM_CROP``:
sharpness, brightness, contrast, head pose); what needed the source (the face box in source pixels, the
resize factor, the source's JPEG tables, the 8 x 8 grid of the decoded frame) is marked missing in
``confounds_note``, never guessed. Rows that already carry features, and rows without a crop, are left
as they are. The crop is read from its PNG, or from the pack when the PNG is gone.

The manifest is rewritten atomically (``datamodules.atomic``) with the same rows in the same order, so a
pack made from the old manifest still indexes it: when the pack was current before, its fingerprint
(``pack.json`` and ``plan.json``) is updated to the new manifest, so it stays current
(``datamodules.pack.reader.pack_state``).

    python -m datamodules.preprocess --backfill-confounds --dataset FF++ --out data/processed
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from datamodules import atomic
from datamodules.manifest import CONFOUNDS, is_empty, manifest_path, read_manifest, write_manifest
from datamodules.media import confounds
from datamodules.media.video import read_image

#: why the features that need the source are missing after a backfill
BACKFILL_REASON = "not recorded when the manifest was written (backfilled from the stored crop)"


@dataclass(frozen=True)
class BackfillReport:
    """What one backfill did: rows computed, rows that already had features, ok rows whose crop was unreadable."""

    manifest: Path
    computed: int
    kept: int
    unreadable: int
    pack: str  # "updated" | "absent" | "left stale: <reason>"

    def __str__(self) -> str:
        return (
            f"{self.manifest}: confounds computed for {self.computed} frames, {self.kept} already had them, "
            f"{self.unreadable} crops unreadable; pack {self.pack}"
        )


def _needs(df: pd.DataFrame) -> np.ndarray:
    """Ok rows none of whose crop features is recorded."""
    ok = (df["status"] == "ok").to_numpy()
    have = np.zeros(len(df), bool)
    for c in confounds.FROM_CROP:
        if c in df.columns:
            have |= pd.to_numeric(df[c], errors="coerce").notna().to_numpy()
    return ok & ~have


def backfill_confounds(processed_root: str | Path, name: str) -> BackfillReport:
    """Add the computable confound features to dataset ``name``'s manifest under ``processed_root``."""
    from datamodules.pack import format as pack_format
    from datamodules.pack.reader import PackReader, pack_state

    path = manifest_path(processed_root, name)
    base = path.parent
    df = read_manifest(path, name)
    state, why = pack_state(base)
    reader = PackReader.open(base) if state == "ok" else None
    for c in (*CONFOUNDS, "confounds_note"):
        if c not in df.columns:
            df[c] = np.nan if c != "confounds_note" else ""
    todo = np.flatnonzero(_needs(df))
    reasons = dict.fromkeys(("face_px", "resize", "jpeg_quality", "blockiness"), BACKFILL_REASON)
    computed = unreadable = 0
    values = {c: df[c].to_numpy(np.float64, na_value=np.nan).copy() for c in CONFOUNDS}
    notes = np.array(
        df["confounds_note"].astype(object).where(df["confounds_note"].notna(), ""), dtype=object
    )
    for i in todo:
        crop, lm = _read(base, df.iloc[i], reader)
        if crop is None:
            unreadable += 1
            notes[i] = "every feature: the stored crop is unreadable"
            continue
        feats = confounds.crop_features(crop, lm)
        for c in confounds.FROM_CROP:
            values[c][i] = feats[c]
        notes[i] = confounds.missing_note(
            {c: values[c][i] for c in CONFOUNDS}, {**reasons, **_pose_reason(lm)}
        )
        computed += 1
    for c in CONFOUNDS:
        df[c] = values[c]
    df["confounds_note"] = notes
    write_manifest(df.to_dict("records"), path)
    pack = "absent"
    if state == "ok":
        _refingerprint(base, pack_format)
        pack = "updated"
    elif state != "absent":
        pack = f"left {state}: {why}"
    kept = int((df["status"] == "ok").sum()) - len(todo)
    return BackfillReport(path, computed, kept, unreadable, pack)


def _pose_reason(lm: np.ndarray | None) -> dict[str, str]:
    return {} if lm is not None else dict.fromkeys(("yaw", "pitch", "roll"), "no stored landmarks")


def _read(base: Path, row: pd.Series, reader: object) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The row's crop (RGB) and landmarks ([68, 2] or None): the files, else the pack."""
    crop = lm = None
    cp = row["crop_path"]
    if not is_empty(cp) and (base / str(cp)).is_file():
        crop = read_image(base / str(cp))
    lp = row["landmarks_path"]
    if not is_empty(lp) and (base / str(lp)).is_file():
        lm = np.load(base / str(lp)).astype(np.float64).reshape(-1, 2)
    if reader is not None and (crop is None or lm is None):
        j = int(reader.lookup([cp])[0])
        if j >= 0:
            if crop is None:
                crop = reader.crop(j)
            if lm is None and reader.has_landmarks(np.array([j]))[0]:
                lm = np.asarray(reader.landmarks(j), np.float64).reshape(-1, 2)
    if lm is not None and (lm.shape[0] != 68 or not math.isfinite(float(lm.sum()))):
        lm = None
    return crop, lm


def _refingerprint(base: Path, fmt: object) -> None:
    """Point a current pack at the rewritten manifest (same rows, same order, same crops)."""
    folder = base / fmt.FOLDER
    fp = fmt.fingerprint(base)
    info = fmt.read_json(folder / fmt.INFO)
    info["fingerprint"] = fp
    if isinstance(info.get("plan"), dict):
        info["plan"]["fingerprint"] = fp
        atomic.write_json(folder / fmt.PLAN, info["plan"], indent=1)
    atomic.write_json(folder / fmt.INFO, info, indent=1)

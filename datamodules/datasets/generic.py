"""Custom data: a CSV listing (``csv``) or a split/label folder tree (``folder``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from datamodules.datasets.base import (
    IMAGE_EXTS,
    SPLITS,
    VIDEO_EXTS,
    Adapter,
    DatasetLayoutError,
    VideoRecord,
    images_in,
    missing_report,
    parse_label,
    register_layout,
    require_dir,
    safe_stem,
)


def _kind(path: Path) -> str:
    if path.is_dir():
        return "frames"
    if path.suffix.lower() in VIDEO_EXTS:
        return "video"
    if path.suffix.lower() in IMAGE_EXTS:
        return "image"
    raise DatasetLayoutError(f"{path}: neither a video ({', '.join(VIDEO_EXTS)}), an image nor a folder")


@register_layout("csv")
class CSVAdapter(Adapter):
    """A CSV file listing videos, frame folders or images.

    Expected layout: ``root`` is the CSV file, or a folder holding ``dataset.csv``, with columns::

        path,label,split[,method][,video]

    ``path`` is relative to the CSV's folder (or absolute): a video, a folder of frames, or an image.
    ``label`` is 0/1 or real/fake; ``split`` train/val/test; ``method`` defaults to real/fake; rows
    sharing a ``video`` value are the frames of one video (images, kept in row order).
    """

    default_name = "custom"

    def enumerate(self, root: str | Path, dataset: str | None = None, **_: object) -> list[VideoRecord]:
        """The records listed by a ``dataset.csv`` (``path,label,split[,method][,video]``)."""
        root, name = Path(root), dataset or self.default_name
        csv_path = root / "dataset.csv" if root.is_dir() else root
        if not csv_path.is_file():
            raise DatasetLayoutError(f"layout 'csv': missing file {csv_path}")
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
        lacking = [c for c in ("path", "label", "split") if c not in df.columns]
        if lacking:
            raise DatasetLayoutError(
                f"{csv_path}: missing column(s) {lacking}; expected path,label,split[,method][,video], "
                f"found {list(df.columns)}"
            )
        bad = [i + 2 for i, s in enumerate(df["split"]) if s.strip().lower() not in SPLITS]
        if bad:
            raise ValueError(f"{csv_path}: rows {bad[:10]} have a split outside {SPLITS}")
        labels = [parse_label(v, f"{csv_path} row {i + 2}") for i, v in enumerate(df["label"])]
        paths = [Path(p) if Path(p).is_absolute() else csv_path.parent / p for p in df["path"]]
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise DatasetLayoutError(f"{csv_path}: " + missing_report(missing, "listed paths"))
        methods = df["method"] if "method" in df.columns else [""] * len(df)
        videos = df["video"] if "video" in df.columns else [""] * len(df)
        groups: dict[str, list[int]] = {}
        for i, v in enumerate(videos):
            groups.setdefault(v or f"\0{i}", []).append(i)
        out = []
        for key, idx in groups.items():
            i = idx[0]
            lab, split = labels[i], df["split"].iloc[i].strip().lower()
            if any(labels[j] != lab or df["split"].iloc[j].strip().lower() != split for j in idx):
                raise ValueError(
                    f"{csv_path}: video {key!r} mixes labels or splits (rows {[j + 2 for j in idx]})"
                )
            method = methods[i] or ("fake" if lab else "real")
            if lab == 0:
                method = "real"
            if len(idx) > 1:
                frames = tuple(paths[j] for j in idx)
                stem = safe_stem(key)
                out.append(
                    VideoRecord(
                        name,
                        split,
                        lab,
                        method,
                        "",
                        f"{name}/{method}/{stem}",
                        frames[0].parent,
                        None,
                        "frames",
                        frames,
                    )
                )
            else:
                p = paths[i]
                stem = safe_stem(key if not key.startswith("\0") else df["path"].iloc[i].rsplit(".", 1)[0])
                out.append(
                    VideoRecord(name, split, lab, method, "", f"{name}/{method}/{stem}", p, kind=_kind(p))
                )
        return out


@register_layout("folder")
class FolderAdapter(Adapter):
    """A split/label folder tree.

    Expected layout (every ``<split>`` folder optional, at least one present)::

        {train,val,test}/real/<video>.mp4 | <video>/ (frames) | <image>.png
        {train,val,test}/fake/...                            # or fake/<method>/...

    Or, without splits, ``real/`` and ``fake/`` directly under ``root`` (all ``test``).
    Fakes directly under ``fake/`` have method ``fake``; under ``fake/<method>/`` that method.
    """

    default_name = "custom"

    def enumerate(self, root: str | Path, dataset: str | None = None, **_: object) -> list[VideoRecord]:
        """The records of a ``{train,val,test}/{real,fake}/`` (or ``real/`` and ``fake/``) folder tree."""
        root, name = Path(root), dataset or self.default_name
        require_dir(root, self.layout)
        split_dirs = {s: root / s for s in SPLITS if (root / s).is_dir()}
        if not split_dirs:
            if not ((root / "real").is_dir() or (root / "fake").is_dir()):
                raise DatasetLayoutError(
                    f"layout 'folder': missing folders under {root}: expected {{train,val,test}}/{{real,fake}}/ "
                    "or real/ and fake/"
                )
            split_dirs = {"test": root}
        out = []
        for split, sdir in split_dirs.items():
            for label, lname in ((0, "real"), (1, "fake")):
                ldir = sdir / lname
                if not ldir.is_dir():
                    continue
                items = [(p, lname) for p in sorted(ldir.iterdir())]
                if label:  # fake/<method>/ subfolders holding videos or frame folders
                    expanded = []
                    for p, m in items:
                        if p.is_dir() and not images_in(p):
                            expanded += [(c, p.name) for c in sorted(p.iterdir())]
                        else:
                            expanded.append((p, m))
                    items = expanded
                for p, method in items:
                    if p.is_dir() and not images_in(p):
                        continue
                    if p.is_file() and p.suffix.lower() not in VIDEO_EXTS + IMAGE_EXTS:
                        continue
                    vid = f"{name}/{method}/{safe_stem(split + '_' + p.stem if len(split_dirs) > 1 else p.stem)}"
                    out.append(VideoRecord(name, split, label, method, "", vid, p, kind=_kind(p)))
        if not out:
            raise DatasetLayoutError(f"layout 'folder': no video, frame folder or image found under {root}")
        return out

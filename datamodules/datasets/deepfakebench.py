"""Import of DeepfakeBench dataset JSONs (Yan et al., NeurIPS 2023 D&B), reusing their aligned frames.

The JSON format (``<Name>.json``)::

    {"<DatasetName>": {"<label_name>": {"train"|"val"|"test": {["c23"|"c40"|"raw":]
        {"<video>": {"label": "<label_name>", "frames": [".../frames/<video>/000.png", ...]}}}}}}

The compression level appears only for the FF family. Landmarks and masks are not listed: like
DeepfakeBench we look for them at ``frames`` -> ``landmarks`` (``.npy``) and ``frames`` -> ``masks``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from pathlib import Path

from datamodules.datasets.base import (
    SPLITS,
    Adapter,
    DatasetLayoutError,
    VideoRecord,
    missing_report,
    register_layout,
    require_file,
    safe_stem,
)

_PRIORITY = {"test": 0, "val": 1, "train": 2}
REMAP_HINT = (
    "The JSON's paths were written on another machine: pass remap='OLD_PREFIX=NEW_PREFIX' "
    "(CLI: --remap OLD_PREFIX=NEW_PREFIX), e.g. remap='D:/DeepfakeBench/datasets/rgb=/data/dfb/rgb'; "
    "relative paths are resolved against `base` (default: the JSON's folder)."
)


def parse_remap(remap: str | dict[str, str] | Iterable[str] | None) -> list[tuple[str, str]]:
    """``"OLD=NEW"``, a list of them, or a dict -> ``[(old, new)]`` with ``/`` separators."""
    if not remap:
        return []
    if isinstance(remap, dict):
        items = list(remap.items())
    else:
        items = []
        for s in [remap] if isinstance(remap, str) else remap:
            if "=" not in s:
                raise ValueError(f"remap {s!r} must look like OLD_PREFIX=NEW_PREFIX")
            old, new = s.split("=", 1)
            items.append((old, new))
    return [(o.replace("\\", "/"), n.replace("\\", "/")) for o, n in items]


def resolve(path: str, remap: list[tuple[str, str]], base: Path) -> Path:
    """Normalise Windows separators, apply the first matching prefix remap, resolve relative paths."""
    p = path.replace("\\", "/")
    for old, new in remap:
        if p.startswith(old):
            p = new + p[len(old) :]
            break
    out = Path(p)
    return out if out.is_absolute() else base / out


def is_real(label_name: str) -> bool:
    return label_name.lower().endswith("real")


def sibling(frame: Path, folder: str, suffix: str | None) -> Path:
    """DeepfakeBench's convention: the last ``frames`` path component replaced by ``folder``."""
    parts = list(frame.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "frames":
            parts[i] = folder
            break
    else:
        return Path()
    out = Path(*parts)
    return out.with_suffix(suffix) if suffix else out


@register_layout("deepfakebench_json")
class DeepfakeBenchAdapter(Adapter):
    """A DeepfakeBench ``<Name>.json`` and the aligned frames it lists (kind ``frames``, prealigned).

    Expected layout: ``root`` is the JSON file (or a folder holding exactly one ``*.json``); the frame
    paths it lists must exist after remapping. Options:

    * ``remap``: ``"OLD_PREFIX=NEW_PREFIX"`` (or a list / dict) applied to every path after ``\\`` -> ``/``;
    * ``base``: folder for relative paths (DeepfakeBench's ``rgb_dir``; default the JSON's folder);
    * ``dataset_key``: the top-level key to read (needed only when the JSON holds several);
    * ``compression``: ``c23`` (FF family only);
    * ``missing``: ``error`` (default: count, first examples and the remap hint) or ``skip`` (warn).

    Label names ending in ``real``/``Real`` are reals; every other label name becomes the method. A
    video DeepfakeBench lists in several splits (it puts DFD, UADFV in all three and all of Celeb-DF in
    train) is kept in ONE split, by priority test > val > train, so no test video is trained on.
    """

    default_name = ""

    def enumerate(
        self,
        root: str | Path,
        dataset: str | None = None,
        remap: str | dict[str, str] | list[str] | None = None,
        base: str | Path | None = None,
        dataset_key: str | None = None,
        compression: str = "c23",
        missing: str = "error",
        **_: object,
    ) -> list[VideoRecord]:
        root = Path(root)
        if root.is_dir():
            found = sorted(root.glob("*.json"))
            if len(found) != 1:
                raise DatasetLayoutError(
                    f"layout 'deepfakebench_json': expected one <Name>.json in {root}, found "
                    f"{[f.name for f in found] or 'none'}; pass the JSON file itself"
                )
            root = found[0]
        jpath = require_file(root, self.layout, "DeepfakeBench dataset JSON")
        try:
            data = json.loads(jpath.read_text())
        except ValueError as e:
            raise DatasetLayoutError(f"{jpath}: not valid JSON: {e}") from e
        if dataset_key is None:
            if not isinstance(data, dict) or len(data) != 1:
                raise DatasetLayoutError(f"{jpath}: holds datasets {list(data)}; choose one with dataset_key")
            dataset_key = next(iter(data))
        if dataset_key not in data:
            raise DatasetLayoutError(f"{jpath}: no dataset {dataset_key!r}; it holds {list(data)}")
        name = dataset or dataset_key
        rules, base_dir = parse_remap(remap), Path(base) if base else jpath.parent
        chosen: dict[tuple[str, str], tuple[str, dict, str]] = {}
        dup = 0
        for label_name, by_split in data[dataset_key].items():
            for split, videos in by_split.items():
                comp = ""
                if split not in SPLITS:
                    raise DatasetLayoutError(f"{jpath}: {label_name}: unknown split {split!r}")
                if videos and all(k in ("raw", "c23", "c40") for k in videos):
                    if compression not in videos:
                        raise DatasetLayoutError(
                            f"{jpath}: {label_name}/{split} has compressions {list(videos)}, not {compression!r}"
                        )
                    videos, comp = videos[compression], compression
                for vname, info in videos.items():
                    key = (label_name, vname)
                    if key in chosen:
                        dup += 1
                        if _PRIORITY[split] >= _PRIORITY[chosen[key][0]]:
                            continue
                    chosen[key] = (split, info, comp)
        if dup:
            warnings.warn(
                f"{jpath}: {dup} video listing(s) repeat a video in another split; each video was kept "
                "once (priority test > val > train)",
                stacklevel=2,
            )
        out, lost = [], []
        for (label_name, vname), (split, info, comp) in chosen.items():
            frames = [resolve(f, rules, base_dir) for f in info.get("frames", [])]
            absent = [str(f) for f in frames if not f.is_file()]
            if absent or not frames:
                lost += absent or [f"{vname}: no frames listed"]
                continue
            real = is_real(str(info.get("label", label_name)))
            method = "real" if real else label_name
            lms = tuple(sibling(f, "landmarks", ".npy") for f in frames)
            msk = tuple(sibling(f, "masks", None) for f in frames)
            out.append(
                VideoRecord(
                    name,
                    split,
                    0 if real else 1,
                    method,
                    comp,
                    f"{name}/{method}/{safe_stem(vname)}",
                    frames[0].parent,
                    kind="frames",
                    frames=tuple(frames),
                    prealigned=True,
                    landmarks=lms if all(p.is_file() for p in lms) else (),
                    masks=msk if all(p.is_file() for p in msk) else (),
                )
            )
        if lost:
            msg = f"{jpath}: " + missing_report(lost, "listed frame paths", REMAP_HINT)
            if missing == "skip":
                warnings.warn(
                    msg + f"\n{len({p.split('/frames/')[0] for p in lost})} video(s) skipped", stacklevel=2
                )
            else:
                raise DatasetLayoutError(msg)
        return out

"""Import of DeepfakeBench dataset JSONs (Yan et al., NeurIPS 2023 D&B), reusing their aligned frames.

The JSON format (``<Name>.json``, written by DeepfakeBench's ``preprocessing/rearrange.py``; its exact
shapes, including the one-video ``val`` entry of DFDC.json, are in :mod:`deepfakebench_parse`)::

    {"<DatasetName>": {"<label_name>": {"train"|"val"|"test": {["c23"|"c40"|"raw":]
        {"<video>": {"label": "<label_name>", "frames": [".../frames/<video>/000.png", ...]}}}}}}

The compression level appears only for the FF family. Landmarks and masks are not listed per frame: like
DeepfakeBench (``abstract_dataset.py`` replaces ``frames`` by ``landmarks``/``masks`` in each frame path)
we look for them at ``frames`` -> ``landmarks`` (``.npy``) and ``frames`` -> ``masks``.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from datamodules.datasets import deepfakebench_parse as parse
from datamodules.datasets.base import (
    Adapter,
    DatasetLayoutError,
    VideoRecord,
    carve_val,
    missing_report,
    register_layout,
    require_file,
    safe_stem,
)
from datamodules.datasets.deepfakebench_labels import canonical, is_real
from datamodules.media.video import order_frame_files

_PRIORITY = {"test": 0, "val": 1, "train": 2}
#: families whose JSON ``val`` is a copy of another split (rearrange.py: Celeb-DF val = test, DFDC-P
#: val = test, DFDC val = train or one test video); their val is carved as the video layout carves it
CARVED = ("celebdf", "dfdc", "dfdc_preview")
REMAP_HINT = (
    "The JSON's paths were written on another machine: pass remap='OLD_PREFIX=NEW_PREFIX' "
    "(CLI: --remap OLD_PREFIX=NEW_PREFIX), e.g. remap='D:/DeepfakeBench/datasets/rgb=/data/dfb/rgb'; "
    "relative paths are resolved against `base` (default: the JSON's folder)."
)
_DRIVE = re.compile(r"^[A-Za-z]:(/|$)")


def _norm(path: str) -> str:
    r"""``\`` -> ``/``, repeated separators collapsed (a leading ``//`` kept), no trailing ``/``, and an
    upper-case drive letter, so ``t:\data\`` and ``T:/data`` compare equal."""
    p = path.replace("\\", "/")
    lead = "//" if p.startswith("//") else ""
    p = lead + re.sub(r"/+", "/", p[len(lead) :])
    if len(p) > 1 and p.endswith("/") and not re.fullmatch(r"[A-Za-z]:/", p):
        p = p.rstrip("/")
    return p[0].upper() + p[1:] if _DRIVE.match(p) else p


def parse_remap(remap: str | dict[str, str] | Iterable[str] | None) -> list[tuple[str, str]]:
    """``"OLD=NEW"``, a list of them, or a dict -> ``[(old, new)]``, both sides normalised (:func:`_norm`)."""
    if not remap:
        return []
    if isinstance(remap, dict):
        items = list(remap.items())
    else:
        items = []
        for s in [remap] if isinstance(remap, str) else remap:
            if not isinstance(s, str) or "=" not in s:
                raise ValueError(f"remap {s!r} must look like OLD_PREFIX=NEW_PREFIX")
            old, new = s.split("=", 1)
            items.append((old, new))
    out = []
    for old, new in items:
        if not str(old).strip() or not str(new).strip():
            raise ValueError(f"remap {old}={new}: both OLD_PREFIX and NEW_PREFIX must be non-empty")
        out.append((_norm(str(old).strip()), _norm(str(new).strip())))
    return out


def resolve(path: str, remap: list[tuple[str, str]], base: Path) -> Path:
    """Normalise the path, apply the first remap whose OLD is a whole-component prefix of it (drive
    letters and, for Windows paths, case ignored), resolve relative paths against ``base``."""
    p = _norm(path)
    for old, new in remap:
        windows = bool(_DRIVE.match(old))
        head, cmp_old = (p[: len(old)].lower(), old.lower()) if windows else (p[: len(old)], old)
        if head == cmp_old and (len(p) == len(old) or p[len(old)] == "/" or old.endswith("/")):
            rest = p[len(old) :].lstrip("/")
            p = f"{new.rstrip('/')}/{rest}" if rest else new
            break
    out = Path(p)
    return out if out.is_absolute() else base / out


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


@dataclass
class _Video:
    listing: parse.Listing
    split: str
    family: str
    method: str
    frames: list[Path]
    stem: str = ""


@register_layout("deepfakebench_json")
class DeepfakeBenchAdapter(Adapter):
    r"""A DeepfakeBench ``<Name>.json`` and the aligned frames it lists (kind ``frames``, prealigned).

    Expected layout: ``root`` is the JSON file (or a folder holding exactly one ``*.json``); the frame
    paths it lists must exist after remapping. Options:

    * ``remap``: ``"OLD_PREFIX=NEW_PREFIX"`` (or a list / dict) applied to every path; both sides are
      normalised (``\`` -> ``/``, trailing separators, drive-letter case) and OLD matches whole path
      components;
    * ``base``: folder for relative paths (DeepfakeBench's ``rgb_dir``; default the JSON's folder);
    * ``dataset_key``: the top-level key to read (needed only when the JSON holds several);
    * ``compression``: ``c23`` (FF family only);
    * ``missing``: ``error`` (default: count, first examples and the remap hint) or ``skip`` (warn);
    * ``val_fraction`` (0.1), ``seed`` (0): the val carve of the Celeb-DF, DFDC and DFDC-P families.

    Labels map to the suite's canonical method names (``FF-DF`` -> ``Deepfakes``, ``CelebDFv2_fake`` ->
    ``fake``, ``DFDCP_FakeA`` -> ``method_A``..., see :mod:`deepfakebench_labels`); the raw label is kept
    as ``source_label``. Frames are ordered by their number, as DeepfakeBench sorts them.

    Splits follow the video layout of the same dataset: a video DeepfakeBench lists in several splits
    (DFD and UADFV in all three, all of Celeb-DF in train) is kept in ONE split, by priority
    test > val > train, so no test video is trained on. Where rearrange.py's ``val`` only copies another
    split (Celeb-DF, DFDC-P: the test list; DFDC: the training set, or one test video), it is replaced by
    the val the video layout carves from train: Celeb-DF by identity (target and source), DFDC by
    original video (read from ``metadata.json`` beside the ``frames`` folder of each training part),
    DFDC-P by source clip (read from ``dataset.json`` above the method folders).
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
        val_fraction: float = 0.1,
        seed: int = 0,
        **_: object,
    ) -> list[VideoRecord]:
        """The records of a DeepfakeBench JSON and its frames (layout and options: the class docstring)."""
        jpath = self._json_path(Path(root)).absolute()
        try:
            data = json.loads(jpath.read_text())
        except (ValueError, UnicodeDecodeError) as e:
            raise DatasetLayoutError(f"{jpath}: not valid JSON: {e}") from e
        dataset_key, labels = parse.dataset_entry(data, jpath, dataset_key)
        name = dataset or dataset_key
        rules, base_dir = parse_remap(remap), Path(base) if base else jpath.parent
        videos = []
        for item in parse.listings(labels, jpath, dataset_key, compression):
            family, method = canonical(item.label, item.frames[0] if item.frames else "")
            videos.append(
                _Video(item, item.split, family, "real" if is_real(item.video_label) else method, [])
            )
        families = {v.family for v in videos}
        carved = families.pop() if len(families) == 1 and families <= set(CARVED) else ""
        kept, lost, n_lost = [], [], 0
        listed = _one_split_each(videos, jpath, drop_val_copies=bool(carved))
        for v in listed:
            frames = [resolve(f, rules, base_dir) for f in v.listing.frames]
            absent = [str(f) for f in frames if not f.is_file()]
            if absent or not frames:
                lost += absent or [f"{v.listing.where}: no frames listed"]
                n_lost += 1
                continue
            v.frames = order_frame_files(frames)
            kept.append(v)
        if lost:
            msg = f"{jpath}: " + missing_report(lost, "listed frame paths", REMAP_HINT)
            if missing != "skip" or not kept:
                looked = f"frames resolved against base {base_dir}" + (
                    f" after remap {remap!r}" if remap else ""
                )
                raise DatasetLayoutError(
                    msg
                    if missing != "skip"
                    else f"{jpath}: no usable video: all {n_lost} listed video(s) were skipped (missing='skip') "
                    f"because their frames do not exist ({looked}); "
                    + missing_report(lost, "listed frame paths", REMAP_HINT)
                )
            warnings.warn(
                msg + f"\n{n_lost} of {len(listed)} listed video(s) skipped (missing='skip'); "
                f"{len(kept)} kept",
                stacklevel=2,
            )
        if carved and not any(v.split == "val" for v in kept):  # never on top of a genuine val
            kept = _carve(kept, carved, val_fraction, seed, jpath)
        return [_record(name, v, carved) for v in kept]

    @staticmethod
    def _json_path(root: Path) -> Path:
        if root.is_dir():
            found = sorted(root.glob("*.json"))
            if len(found) != 1:
                raise DatasetLayoutError(
                    f"layout 'deepfakebench_json': expected one <Name>.json in {root}, found "
                    f"{[f.name for f in found] or 'none'}; pass the JSON file itself"
                )
            root = found[0]
        return require_file(root, "deepfakebench_json", "DeepfakeBench dataset JSON")


def _one_split_each(videos: list[_Video], jpath: Path, drop_val_copies: bool) -> list[_Video]:
    """Each (label, video) once: by priority test > val > train; with ``drop_val_copies``, a ``val`` that
    only repeats videos listed in another split is dropped first (it is carved again later)."""
    by_key: dict[tuple[str, str], list[_Video]] = {}
    for v in videos:
        by_key.setdefault((v.listing.label, v.listing.name), []).append(v)
    if drop_val_copies:
        val_keys = [k for k, vs in by_key.items() if any(v.split == "val" for v in vs)]
        if all(any(v.split != "val" for v in by_key[k]) for k in val_keys):
            by_key = {k: [v for v in vs if v.split != "val"] for k, vs in by_key.items()}
    dup = sum(len(vs) - 1 for vs in by_key.values())
    if dup:
        warnings.warn(
            f"{jpath}: {dup} video listing(s) repeat a video in another split (as DeepfakeBench's "
            "rearrange.py writes them); each video was kept once (priority test > val > train)",
            stacklevel=3,
        )
    return [min(vs, key=lambda v: _PRIORITY[v.split]) for vs in by_key.values() if vs]


def _carve(videos: list[_Video], family: str, fraction: float, seed: int, jpath: Path) -> list[_Video]:
    """The video layout's val carve, on the imported training videos (see the adapter docstring)."""
    side = _Sidecars()
    groups = {id(v): side.groups(v, family) for v in videos}
    if side.lacking:
        where = "metadata.json of its training part" if family == "dfdc" else "the DFDC-P dataset.json"
        warnings.warn(
            f"{jpath}: {len(side.lacking)} training video(s) are not found in {where} (e.g. "
            f"{side.lacking[:3]}); each is its own group in the val carve, so a real and its fakes may "
            "straddle train and val",
            stacklevel=3,
        )
    val, left_out = carve_val(
        {str(id(v)): groups[id(v)] for v in videos if v.split == "train"}, fraction, seed
    )
    out = []
    for v in videos:
        if str(id(v)) in left_out:
            continue
        if str(id(v)) in val:
            v.split = "val"
        if family == "dfdc_preview":
            v.stem = side.dfdcp_stem(v)
        out.append(v)
    return out


def _up(path: Path, n: int) -> Path | None:
    """The ``n``-th parent folder of a file, or None when the path is too short."""
    parents = path.parents
    return parents[n] if len(parents) > n else None


class _Sidecars:
    """The official metadata files DeepfakeBench's tree keeps beside its ``frames/`` folders (DFDC's
    ``dfdc_train_part_N/metadata.json``, DFDC-P's ``dataset.json``), read once per run."""

    def __init__(self) -> None:
        self.files: dict[Path, dict | None] = {}
        self.indexes: dict[Path, dict[tuple[str, str], str]] = {}
        self.lacking: list[str] = []

    def read(self, path: Path | None, reader) -> dict | None:
        if path is None:
            return None
        if path not in self.files:
            self.files[path] = reader(path) if path.is_file() else None
        return self.files[path]

    def groups(self, v: _Video, family: str) -> frozenset[str]:
        """The identities a video shows, as the video layout of ``family`` defines them."""
        from datamodules.datasets import celebdf, dfdc, dfdc_preview

        name = v.listing.name
        if family == "celebdf":
            return celebdf.identities(_celebdf_folder(v), name)
        if family == "dfdc":
            part = _up(v.frames[0], 2)  # dfdc_train_part_N/frames/<video>/000.png
            meta = self.read(part / "metadata.json" if part else None, dfdc.read_metadata) or {}
            info = meta.get(f"{name}.mp4")
            if info is None and v.split == "train":
                self.lacking.append(name)
            fake = isinstance(info, dict) and str(info.get("label", "")).upper() == "FAKE"
            original = str(info.get("original") or "") if fake else ""  # type: ignore[union-attr]
            return frozenset({original or f"{name}.mp4"})  # the video layout's grouping
        rel = self.dfdcp_rel(v)
        if rel is None and v.split == "train":
            self.lacking.append(name)
        return frozenset({dfdc_preview.source_group(rel) if rel else name})

    def dfdcp_rel(self, v: _Video) -> str | None:
        """A DFDC-P video's ``dataset.json`` key, found by method folder + file stem as rearrange.py names
        its frame folders (``DFDCP/<method folder>/frames/<stem>/``)."""
        from datamodules.datasets import dfdc_preview

        root = _up(v.frames[0], 3)
        meta = self.read(root / "dataset.json" if root else None, dfdc_preview.read_dataset_json)
        if meta is None or root is None:
            return None
        if root not in self.indexes:
            self.indexes[root] = _dfdcp_index(meta)
        return self.indexes[root].get((v.frames[0].parents[2].name, v.listing.name))

    def dfdcp_stem(self, v: _Video) -> str:
        from datamodules.datasets.dfdc_preview import video_stem

        rel = self.dfdcp_rel(v)
        return video_stem(rel) if rel else safe_stem(v.listing.name)


def _dfdcp_index(meta: dict) -> dict[tuple[str, str], str]:
    """``(method folder, file stem) -> relative path`` of a DFDC-P ``dataset.json``."""
    out = {}
    for key in meta:
        rel = key.replace("\\", "/")
        parts = rel.split("/")
        out[(parts[0], parts[-1].split(".")[0])] = rel
    return out


def _celebdf_folder(v: _Video) -> str:
    parts = v.frames[0].parts
    for folder in ("YouTube-real", "Celeb-real", "Celeb-synthesis"):
        if folder in parts:
            return folder
    return "YouTube-real" if v.listing.name.isdigit() else "Celeb-real"


def _record(name: str, v: _Video, family: str) -> VideoRecord:
    stem = v.stem or safe_stem(v.listing.name)
    if family == "celebdf":
        from datamodules.datasets.celebdf import video_stem

        stem = video_stem(_celebdf_folder(v), v.listing.name)
    lms = tuple(sibling(f, "landmarks", ".npy") for f in v.frames)
    msk = tuple(sibling(f, "masks", None) for f in v.frames)
    return VideoRecord(
        name,
        v.split,
        0 if v.method == "real" else 1,
        v.method,
        v.listing.compression,
        f"{name}/{v.method}/{stem}",
        v.frames[0].parent,
        kind="frames",
        frames=tuple(v.frames),
        prealigned=True,
        landmarks=lms if all(p.is_file() for p in lms) else (),
        masks=msk if all(p.is_file() for p in msk) else (),
        source_label=v.listing.label,
    )

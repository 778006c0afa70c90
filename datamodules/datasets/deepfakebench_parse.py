"""Walking a DeepfakeBench dataset JSON strictly: every listing, or a :class:`DatasetLayoutError` that names
the file, the key path and what was expected there. No input shape may end in a raw Python error.

The shape DeepfakeBench's ``preprocessing/rearrange.py`` writes (SCLBD/DeepfakeBench, commit 8a4a7bf)::

    {"<Dataset>": {"<label>": {"train"|"val"|"test": {["c23"|"c40"|"raw":]
        {"<video>": {"label": "<label>", "frames": ["<path>", ...][, "masks": [...]]}}}}}}

with one documented irregularity kept in every copy of its DFDC.json: the test loop assigns
``dataset_dict['DFDC'][label]['val'] = {'label': label, 'frames': frame_paths}``, so a split entry may be
ONE video written as the split itself (the last test video of that label). Such an entry is read as the
video it is, named by its frames' folder; when the train loop later added ``{video: {...}}`` entries to
the same dict, those are read too.
"""

from __future__ import annotations

from dataclasses import dataclass

from datamodules.datasets.base import SPLITS, DatasetLayoutError

COMPRESSIONS = ("raw", "c23", "c40")
VIDEO_SHAPE = '{"label": "<label>", "frames": ["<path>", ...]}'
_ONE_VIDEO_KEYS = ("label", "frames", "masks")


@dataclass(frozen=True)
class Listing:
    """One video listed under ``label`` in ``split`` (``compression`` for the FF family, else "")."""

    label: str
    split: str
    compression: str
    name: str
    frames: tuple[str, ...]
    video_label: str  # the video's own "label" field (its class name), or ``label`` when absent
    where: str  # key path, for messages


def _shape(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def _expect(cond: bool, jpath: object, where: str, expected: str, got: object) -> None:
    if not cond:
        raise DatasetLayoutError(f"{jpath}: {where or '(top level)'}: expected {expected}, got {_shape(got)}")


def frame_folder(path: str) -> str:
    """The folder a frame path sits in (``id0_0000`` of ``.../frames/id0_0000/000.png``), any separator."""
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    return parts[-2] if len(parts) >= 2 else ""


def dataset_entry(data: object, jpath: object, dataset_key: str | None) -> tuple[str, dict]:
    """The chosen top-level dataset name and its ``{label: {split: ...}}`` object."""
    _expect(isinstance(data, dict) and bool(data), jpath, "", '{"<Dataset>": {"<label>": {...}}}', data)
    assert isinstance(data, dict)
    if dataset_key is None:
        if len(data) != 1:
            raise DatasetLayoutError(f"{jpath}: holds datasets {list(data)}; choose one with dataset_key")
        dataset_key = next(iter(data))
    if dataset_key not in data:
        raise DatasetLayoutError(f"{jpath}: no dataset {dataset_key!r}; it holds {list(data)}")
    labels = data[dataset_key]
    _expect(
        isinstance(labels, dict) and bool(labels),
        jpath,
        dataset_key,
        '{"<label>": {"train"|"val"|"test": {...}}} (at least one label)',
        labels,
    )
    return dataset_key, labels


def listings(labels: dict, jpath: object, dataset_key: str, compression: str) -> list[Listing]:
    """Every video listing of ``labels`` (see the module docstring), in file order."""
    out: list[Listing] = []
    for label, by_split in labels.items():
        where = f"{dataset_key}/{label}"
        _expect(isinstance(by_split, dict), jpath, where, '{"train"|"val"|"test": {...}}', by_split)
        for split, entry in by_split.items():
            if split not in SPLITS:
                raise DatasetLayoutError(f"{jpath}: {where}: unknown split {split!r} (expected {SPLITS})")
            at = f"{where}/{split}"
            _expect(isinstance(entry, dict), jpath, at, '{"<video>": ' + VIDEO_SHAPE + ", ...}", entry)
            comp = ""
            if entry and all(k in COMPRESSIONS for k in entry):
                if compression not in entry:
                    raise DatasetLayoutError(
                        f"{jpath}: {label}/{split} has compressions {list(entry)}, not {compression!r}"
                    )
                entry, comp, at = entry[compression], compression, f"{at}/{compression}"
                _expect(isinstance(entry, dict), jpath, at, '{"<video>": ' + VIDEO_SHAPE + ", ...}", entry)
            out += _videos(entry, jpath, at, str(label), split, comp)
    return out


def _videos(entry: dict, jpath: object, at: str, label: str, split: str, comp: str) -> list[Listing]:
    out = []
    rest = entry
    if isinstance(entry.get("frames"), list):  # one video written as the split itself (DFDC's val)
        one = {k: entry[k] for k in _ONE_VIDEO_KEYS if k in entry}
        frames = _frames(one, jpath, f"{at} (one video written as the split itself)")
        name = frame_folder(frames[0]) if frames else ""
        _expect(
            bool(name),
            jpath,
            f"{at}/frames",
            "frame paths inside a folder named after the video",
            list(frames),
        )
        out.append(_listing(one, frames, label, split, comp, name, f"{at} (one video)", jpath))
        rest = {k: v for k, v in entry.items() if k not in _ONE_VIDEO_KEYS}
    for name, info in rest.items():
        where = f"{at}/{name}"
        _expect(isinstance(info, dict), jpath, where, VIDEO_SHAPE, info)
        frames = _frames(info, jpath, where)
        out.append(_listing(info, frames, label, split, comp, str(name), where, jpath))
    return out


def _frames(info: dict, jpath: object, where: str) -> tuple[str, ...]:
    frames = info.get("frames")
    _expect(
        isinstance(frames, list) and all(isinstance(f, str) and f for f in frames),
        jpath,
        f"{where}/frames" if "frames" in info else where,
        'a "frames" list of path strings',
        frames if "frames" in info else info,
    )
    masks = info.get("masks", [])
    _expect(isinstance(masks, list), jpath, f"{where}/masks", "a list of mask paths", masks)
    return tuple(frames)  # type: ignore[arg-type]


def _listing(info: dict, frames: tuple[str, ...], label: str, split: str, comp: str, name: str, where: str,
             jpath: object) -> Listing:  # fmt: skip
    own = info.get("label", label)
    _expect(isinstance(own, str) and bool(own), jpath, f"{where}/label", "a label name string", own)
    return Listing(label, split, comp, name, frames, own, where)

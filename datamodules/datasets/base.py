"""The adapter contract: ``VideoRecord``, the layout registry and small shared helpers.

An adapter turns a dataset's OFFICIAL on-disk layout into a list of :class:`VideoRecord` (one per video,
frame folder or image) carrying label, method, compression, split and a globally unique ``video_id``
(``f"{dataset}/{method}/{source_video_stem}"``; ``method`` is ``"real"`` for reals).

Adapters live one per module in this package and register with :func:`register_layout`; modules are
imported only when their layout is asked for (``_MODULES``), so a new layout is one file + one line
(recipe: docs/EXTENDING.md). A package installed beside the suite adds layouts without editing this file,
under the entry-point group :data:`ENTRY_POINT_GROUP` (:func:`installed_layouts`).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from datamodules.errors import UserError, user_error

VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
SPLITS = ("train", "val", "test")

# layout name -> module (imported lazily by get_adapter)
_MODULES: dict[str, str] = {
    "ffpp": "datamodules.datasets.ffpp",
    "dfd": "datamodules.datasets.dfd",
    "celebdf_v1": "datamodules.datasets.celebdf",
    "celebdf_v2": "datamodules.datasets.celebdf",
    "dfdc": "datamodules.datasets.dfdc",
    "dfdc_preview": "datamodules.datasets.dfdc_preview",
    "uadfv": "datamodules.datasets.uadfv",
    "fake_only": "datamodules.datasets.fake_only",
    "df40": "datamodules.datasets.df40",
    "celebdfpp": "datamodules.datasets.celebdf_pp",
    "deepfake_eval_2024": "datamodules.datasets.deepfake_eval_2024",
    "deepfakebench_json": "datamodules.datasets.deepfakebench",
    "csv": "datamodules.datasets.generic",
    "folder": "datamodules.datasets.generic",
}
_ADAPTERS: dict[str, type[Adapter]] = {}

#: the entry-point group through which an installed package adds layouts (``name = "package.module"``)
ENTRY_POINT_GROUP = "forgery_bench.layouts"


class DatasetLayoutError(UserError, FileNotFoundError):
    """The files on disk do not match the layout an adapter expects (the message names the culprit)."""

    hint = (
        "compare the folder with README 'Datasets' (`python -m datamodules.preprocess --list-layouts` prints "
        "what each layout expects) and fix the root, layout or options"
    )


class UnknownLayoutError(UserError, KeyError):
    """An unknown layout name; the message lists the known ones."""

    hint = "`python -m datamodules.preprocess --list-layouts` lists every layout and what it expects"

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


@dataclass(frozen=True)
class VideoRecord:
    """One video (or frame folder, or image) of a dataset.

    Attributes:
        dataset: the dataset's name as configured by the user (e.g. ``"FF++"``).
        split: ``train | val | test``.
        label: 0 real, 1 fake.
        method: manipulation method; ``"real"`` for reals, ``"fake"`` when a dataset has one method only.
        compression: ``raw | c23 | c40`` for the FF++ family, ``""`` otherwise.
        video_id: ``f"{dataset}/{method}/{stem}"``, globally unique.
        path: the video file, the frame folder, or the image.
        mask_path: the manipulation-mask video or folder, if the dataset ships one.
        kind: ``video | frames | image``.
        frames: explicit frame files for ``kind="frames"`` (empty: every image in ``path``, sorted).
        prealigned: the frames are already aligned face crops (DeepfakeBench output): preprocessing
            reuses them instead of detecting again.
        landmarks: per-frame landmark ``.npy`` files matching ``frames`` (prealigned data only).
        masks: per-frame mask images matching ``frames`` (prealigned data only).
        source_label: the name the dataset's own files give this video's class (DeepfakeBench's
            ``FF-DF``, DF40's ``simswap_ff``, Celeb-DF++'s ``FaceSwap/BlendFace``), kept beside the
            suite's canonical ``method`` so a leaderboard reads the same whichever way the data came in.
    """

    dataset: str
    split: str
    label: int
    method: str
    compression: str
    video_id: str
    path: Path
    mask_path: Path | None = None
    kind: str = "video"
    frames: tuple[Path, ...] = field(default=(), repr=False)
    prealigned: bool = False
    landmarks: tuple[Path, ...] = field(default=(), repr=False)
    masks: tuple[Path, ...] = field(default=(), repr=False)
    source_label: str = ""

    def __post_init__(self) -> None:
        if self.label not in (0, 1):
            raise ValueError(f"{self.video_id}: label must be 0 or 1, got {self.label!r}")
        if self.split not in SPLITS:
            raise ValueError(f"{self.video_id}: split must be one of {SPLITS}, got {self.split!r}")
        if self.kind not in ("video", "frames", "image"):
            raise ValueError(f"{self.video_id}: kind must be video|frames|image, got {self.kind!r}")


class Adapter:
    """Base class: subclasses set ``layout`` and ``default_name`` and implement :meth:`enumerate`.

    The subclass docstring states the expected on-disk layout (shown by ``--help`` and the README).
    """

    layout: str = ""
    default_name: str = ""

    def enumerate(self, root: str | Path, dataset: str | None = None, **options) -> list[VideoRecord]:
        """Every video (or image) of the dataset at ``root`` as a record; each subclass implements it."""
        raise NotImplementedError(f"{type(self).__name__} must implement enumerate(root, dataset, **options)")


def register_layout(*names: str):
    """Class decorator registering an :class:`Adapter` under one or more layout names."""

    def deco(cls: type[Adapter]) -> type[Adapter]:
        for n in names:
            if n in _ADAPTERS and _ADAPTERS[n] is not cls:
                raise ValueError(f"layout {n!r} is registered twice")
            _ADAPTERS[n] = cls
        return cls

    return deco


@functools.cache
def installed_layouts() -> dict[str, str]:
    """Layout name -> module, as installed packages declare them under :data:`ENTRY_POINT_GROUP`.

    Read once per process (``installed_layouts.cache_clear()`` reads again). A name the suite already has,
    or one two entry points give different modules, raises ``ValueError`` naming the entry point.
    """
    out: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "unknown distribution"
        where = f"entry point {ep.name} = {ep.value!r} of {dist} (group {ENTRY_POINT_GROUP})"
        if ep.name in _MODULES:
            raise ValueError(f"{where}: the suite already has a layout {ep.name!r}; choose another name")
        if out.get(ep.name, ep.module) != ep.module:
            raise ValueError(f"{where}: layout {ep.name!r} is also declared as module {out[ep.name]!r}")
        out[ep.name] = ep.module
    return out


def _modules() -> dict[str, str]:
    """Layout -> module that registers it: the suite's ``_MODULES`` and the installed packages' entry points."""
    return {**installed_layouts(), **_MODULES}


def list_layouts() -> list[str]:
    """Every known layout name."""
    return sorted(_modules())


def get_adapter(layout: str) -> Adapter:
    """The adapter for ``layout``; an unknown name raises :class:`UnknownLayoutError` listing known ones."""
    modules = _modules()
    if layout not in modules:
        raise UnknownLayoutError(
            f"unknown dataset layout {layout!r}; known layouts: {', '.join(list_layouts())}"
        )
    if layout not in _ADAPTERS:
        importlib.import_module(modules[layout])
        if layout not in _ADAPTERS:
            raise RuntimeError(f"module {modules[layout]} did not register layout {layout!r}")
    cls = _ADAPTERS[layout]
    adapter = cls()
    adapter.layout = layout
    return adapter


def enumerate_dataset(
    layout: str, root: str | Path, dataset: str | None = None, **options
) -> list[VideoRecord]:
    """``get_adapter(layout).enumerate(root, dataset, **options)`` with the shared sanity checks.

    An option the adapter does not take is an error (a typo would otherwise be ignored silently), and so
    is a dataset with no usable video at all (:class:`DatasetLayoutError` naming the layout, the root and
    what the layout expects): nothing downstream can use an empty dataset.
    """
    adapter = get_adapter(layout)
    known = layout_options(layout)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise user_error(
            TypeError(
                f"layout {layout!r} takes no option(s) {unknown}; its options: {', '.join(known) or 'none'}"
            ),
            "fix the option's name (a data configuration key other than layout and root is an option)",
        )
    records = adapter.enumerate(root, dataset=dataset, **options)
    if not records:
        raise DatasetLayoutError(
            f"layout {layout!r} at {root}: no usable video found"
            + (f" (options {options})" if options else "")
            + f"; the layout expects: {expected_layout(adapter)}"
        )
    check_unique(records)
    return records


def layout_options(layout: str) -> list[str]:
    """The options layout ``layout``'s adapter takes (the keyword arguments of its ``enumerate``)."""
    import inspect

    params = inspect.signature(get_adapter(layout).enumerate).parameters
    return [
        n
        for n, p in params.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in ("root", "dataset")
    ]


def expected_layout(adapter: Adapter) -> str:
    """The first paragraph of an adapter's docstring (what it expects on disk), on one line."""
    import inspect

    doc = inspect.getdoc(type(adapter)) or ""
    return " ".join(doc.split("\n\n")[0].split()) or f"see README 'Datasets' ({adapter.layout})"


# ---- helpers shared by the adapters -------------------------------------------------------------


def require_dir(path: Path, layout: str, what: str = "") -> Path:
    """``path`` if it is a folder, else a :class:`DatasetLayoutError` naming the layout and ``what`` it should
    hold."""
    if not path.is_dir():
        hint = f" ({what})" if what else ""
        raise DatasetLayoutError(f"layout {layout!r}: missing folder {path}{hint}")
    return path


def require_file(path: Path, layout: str, what: str = "") -> Path:
    """``path`` if it is a file, else a :class:`DatasetLayoutError` naming the layout and ``what`` it is."""
    if not path.is_file():
        hint = f" ({what})" if what else ""
        raise DatasetLayoutError(f"layout {layout!r}: missing file {path}{hint}")
    return path


def videos_in(folder: Path) -> list[Path]:
    """Video files directly inside ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTS)


def images_in(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)


def parse_label(value: object, where: str) -> int:
    """0/1 or real/fake (any case) -> 0/1; anything else raises naming ``where``."""
    s = str(value).strip().lower()
    if s in ("0", "real", "0.0"):
        return 0
    if s in ("1", "fake", "1.0"):
        return 1
    raise ValueError(f"{where}: label {value!r} is not 0/1 or real/fake")


def safe_stem(text: str) -> str:
    """A path-safe identifier part (keeps letters, digits, ``._-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "_"


def check_unique(records: Iterable[VideoRecord]) -> None:
    """A ValueError listing the first duplicate ``video_id`` values of ``records`` (and their paths)."""
    seen: dict[str, VideoRecord] = {}
    dups: list[str] = []
    for r in records:
        if r.video_id in seen:
            dups.append(f"{r.video_id} ({seen[r.video_id].path} and {r.path})")
        seen[r.video_id] = r
    if dups:
        raise ValueError(f"{len(dups)} duplicate video_id(s): {'; '.join(dups[:5])}")


def missing_report(missing: list[str], what: str, hint: str = "") -> str:
    """A message counting the ``missing`` paths and listing the first five, with an optional ``hint``."""
    first = "\n  ".join(missing[:5])
    return f"{len(missing)} {what} do not exist; first {min(5, len(missing))}:\n  {first}" + (
        f"\n{hint}" if hint else ""
    )


def seeded_val(groups: Iterable[str], fraction: float, seed: int) -> set[str]:
    """A fixed-seed choice of ``round(fraction * n)`` groups (at least one when ``fraction > 0``)."""
    import numpy as np

    uniq = sorted(set(groups))
    if fraction <= 0 or len(uniq) < 2:
        return set()
    k = min(len(uniq) - 1, max(1, round(fraction * len(uniq))))
    rng = np.random.default_rng(seed)
    return {uniq[i] for i in rng.choice(len(uniq), size=k, replace=False)}


def carve_val(members: Mapping[str, Iterable[str]], fraction: float, seed: int) -> tuple[set[str], set[str]]:
    """A validation split carved from training items by the people (or source clips) they show.

    ``members`` maps each training item to the identities it shows (a real: its person; a face swap:
    target AND source; a DFDC fake: its original clip). A fixed-seed :func:`seeded_val` choice of
    identities goes to val; an item goes to val when EVERY identity it shows is a val identity, stays in
    train when none is, and is left out of both otherwise, so no identity of a val item appears in train.

    Returns ``(val_items, left_out_items)``.
    """
    sets = {k: frozenset(v) for k, v in members.items()}
    val_ids = seeded_val([i for s in sets.values() for i in s], fraction, seed)
    val = {k for k, s in sets.items() if s and s <= val_ids}
    left_out = {k for k, s in sets.items() if s & val_ids and not s <= val_ids}
    return val, left_out


# ---- what was found: counts, partial downloads, the splits a grid needs -------------------------


class PartialDatasetWarning(UserWarning):
    """An adapter found one official part of a dataset but not another (the message lists both)."""


class MissingSplitError(DatasetLayoutError):
    """A split a run needs is absent (or one-sided) in what the adapter found."""

    hint = (
        "the run needs these splits: check that the root holds the whole official download (README "
        "'Datasets'), or train / test on another set"
    )


def split_counts(found: object) -> dict[str, dict[str, int]]:
    """Videos per split and method: ``{"train": {"real": 720, "Deepfakes": 720}, ...}``.

    ``found`` is a list of :class:`VideoRecord` or a manifest ``DataFrame`` (columns ``split``,
    ``method``, ``video_id``); a mapping already in this shape is returned as is.
    """
    if isinstance(found, Mapping):
        return {str(s): {str(m): int(n) for m, n in ms.items()} for s, ms in found.items()}
    out: dict[str, dict[str, int]] = {}
    if hasattr(found, "groupby"):  # a manifest: count videos, not frames
        per = found.drop_duplicates("video_id").groupby(["split", "method"]).size()  # type: ignore[attr-defined]
        for (split, method), n in per.items():
            out.setdefault(str(split), {})[str(method)] = int(n)
        return out
    for r in found:  # type: ignore[attr-defined]
        ms = out.setdefault(r.split, {})
        ms[r.method] = ms.get(r.method, 0) + 1
    return out


def describe_counts(found: object) -> str:
    """``"train 12 (real 6, fake 6), val 0, test 4 (real 2, fake 2)"`` for messages."""
    counts = split_counts(found)
    parts = []
    for split in SPLITS:
        ms = counts.get(split, {})
        inner = ", ".join(f"{m} {n}" for m, n in sorted(ms.items()))
        parts.append(f"{split} {sum(ms.values())}" + (f" ({inner})" if inner else ""))
    return ", ".join(parts)


def warn_partial(layout: str, root: Path, records: Iterable[VideoRecord], missing: list[str]) -> None:
    """Say that only part of an official dataset was found: counts of what was, and what was looked for."""
    if not missing:
        return
    warnings.warn(
        f"layout {layout!r} at {root}: found only part of the dataset: {describe_counts(list(records))}; "
        f"not found: {'; '.join(missing)}",
        PartialDatasetWarning,
        stacklevel=3,
    )


def require_splits(found: object, needed: Iterable[str], dataset: str, *, both_labels: bool = False) -> None:
    """Raise :class:`MissingSplitError` when a split a run needs has no video (or, with ``both_labels``,
    lacks reals or fakes), listing what WAS found per split and method.

    ``found`` is what :func:`split_counts` takes: the records of ``enumerate_dataset`` or a manifest.
    """
    counts = split_counts(found)
    bad = []
    for split in needed:
        ms = counts.get(split, {})
        reals = ms.get("real", 0)
        fakes = sum(n for m, n in ms.items() if m != "real")
        if not ms:
            bad.append(f"{split!r} is empty")
        elif both_labels and not (reals and fakes):
            bad.append(f"{split!r} has {reals} real and {fakes} fake videos (needs both)")
    if bad:
        raise MissingSplitError(f"dataset {dataset!r}: {'; '.join(bad)}; found: {describe_counts(counts)}")

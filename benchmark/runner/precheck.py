"""Check every dataset a sweep needs BEFORE anything is preprocessed or trained, and report all problems.

A grid reads several datasets; a bad root of the fourth used to surface only after the first three had been
preprocessed (hours). :func:`check_data` looks at each dataset the queued cells read, once:

* already preprocessed (its manifest exists): the manifest (readable, its columns), the ok frames' splits,
  and that ``preprocess.json`` pins the protocol the data configuration asks for (else the cell would train
  on other data than its id says);
* not yet preprocessed: the root exists, then everything preprocessing checks before its first video
  (:func:`datamodules.preprocess.plan_preprocess`: options, protocol, the layout's enumeration);

then, on what was found, the splits the cells need (:func:`datamodules.datasets.base.require_splits`): a
training set's ``train`` and ``val`` with reals AND fakes (the checkpoint is chosen by AUC on val), each
test set's ``test`` with at least one video, and every method a method-subset set names.

Each problem is one line naming the dataset, its layout and where it was looked for; warnings the layouts
raise (a partial download) are returned as notes.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.runner.cells import Cell
from datamodules.errors import UserError, is_user_error, one_line, print_traceback_if_debug


class DataCheckError(UserError, ValueError):
    """Datasets a sweep needs are missing, broken or lack a split (every problem, one line each)."""

    hint = (
        "fix each dataset listed (root, layout and options in the data configuration; README 'Datasets'), "
        "then run the same command again"
    )


@dataclass(frozen=True)
class Need:
    """What a cell needs of one dataset: a split, with both labels or not, with these methods' fakes."""

    split: str
    both_labels: bool
    methods: tuple[str, ...]
    why: str  # e.g. "training set 'FF++/DF'"


@dataclass
class DataCheck:
    """The outcome: ``problems`` (one line each; empty = all good) and ``notes`` (layout warnings)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # dataset names, in order

    def error(self) -> DataCheckError | None:
        """The error listing every problem (None when there is none)."""
        if not self.problems:
            return None
        n = len(self.problems)
        return DataCheckError(
            f"{n} problem{'s' if n > 1 else ''} with the data this sweep needs (nothing was preprocessed or "
            "trained):\n" + "\n".join(f"- {p}" for p in self.problems)
        )


def needs(cells: Iterable[Cell]) -> dict[str, list[Need]]:
    """Per dataset, what the cells need of it (in first-use order, without repeats)."""
    out: dict[str, list[Need]] = {}

    def add(dataset: str, need: Need) -> None:
        got = out.setdefault(dataset, [])
        if need not in got:
            got.append(need)

    for cell in cells:
        tr = cell.config.train_set
        for split in ("train", "val"):
            add(tr.dataset, Need(split, True, tuple(tr.methods), f"training set {tr.name!r}"))
        for t in cell.config.test_sets:
            add(t.dataset, Need("test", False, tuple(t.methods), f"test set {t.name!r}"))
    return out


def check_data(cells: list[Cell]) -> DataCheck:
    """Check every dataset the ``cells`` read (see the module docstring); never raises for bad data."""
    from datamodules.manifest import manifest_path

    report = DataCheck()
    if not cells:
        return report
    first: dict[str, Cell] = {}
    for cell in cells:
        for name in cell.config.datasets:
            first.setdefault(name, cell)
    for name, need in needs(cells).items():
        cell = first[name]
        spec = cell.config.datasets[name]
        manifest = manifest_path(cell.runtime.processed_root, name)
        root = cell.runtime.roots.get(name)
        where = f"{name} ({spec.layout}, {manifest if manifest.is_file() else root})"
        report.checked.append(name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                found = (
                    _from_manifest(name, manifest, spec.options)
                    if manifest.is_file()
                    else _from_root(name, spec.layout, root, spec.options)
                )
            except Exception as e:  # every problem is reported, a bug included (with its type)
                if not is_user_error(e):
                    print_traceback_if_debug(e)
                report.problems.append(f"{where}: {_describe(e)}")
                found = None
        report.notes += [f"{name}: {one_line(str(w.message))}" for w in caught]
        if found is not None:
            report.problems += [f"{where}: {p}" for p in _missing(name, found, need)]
    return report


def require_data(cells: list[Cell]) -> DataCheck:
    """:func:`check_data`, raising :class:`DataCheckError` listing every problem when there is any."""
    report = check_data(cells)
    error = report.error()
    if error is not None:
        raise error
    return report


def _describe(e: BaseException) -> str:
    text = one_line(str(e)) or type(e).__name__
    return text if is_user_error(e) else f"{type(e).__name__}: {text}"


def _from_manifest(name: str, manifest: Path, options: dict[str, Any]) -> Any:
    """The ok rows of an existing manifest, after checking it was made with the configured protocol."""
    from datamodules.manifest import DataError, read_manifest
    from datamodules.preprocess import read_pinned

    want = str(options.get("protocol", "default"))
    pinned = read_pinned(manifest.parent)
    if pinned is not None and pinned["protocol"] != want:
        raise DataError(
            f"the manifest was preprocessed with protocol {pinned['protocol']!r} but the data configuration asks "
            f"for {want!r}; re-run preprocessing with --protocol {want} --overwrite, or fix the configuration"
        )
    df = read_manifest(manifest, name)
    return df[df["status"] == "ok"]


def _from_root(name: str, layout: str, root: Path | None, options: dict[str, Any]) -> Any:
    """The records preprocessing would enumerate at ``root`` (after every check it makes first)."""
    from datamodules.datasets.base import DatasetLayoutError
    from datamodules.preprocess import plan_preprocess

    if root is None:
        raise DatasetLayoutError("no root configured and no manifest preprocessed")
    if not Path(root).exists():
        raise DatasetLayoutError(f"root {root} does not exist")
    return plan_preprocess(name, layout, root, **options)[1]


def _missing(name: str, found: Any, need: list[Need]) -> list[str]:
    """One line per need that ``found`` (records or ok manifest rows) does not meet."""
    from datamodules.datasets.base import MissingSplitError, describe_counts, require_splits, split_counts

    out = []
    for n in need:
        subset = _only(found, n.methods)
        try:
            require_splits(subset, [n.split], name, both_labels=n.both_labels)
        except MissingSplitError as e:
            detail = one_line(str(e)).removeprefix(f"dataset {name!r}: ")
            labels = " with reals and fakes" if n.both_labels else ""
            out.append(f"{n.why} needs split {n.split!r}{labels}: {detail}")
            continue
        have = split_counts(subset).get(n.split, {})
        lacking = [m for m in n.methods if not have.get(m)]
        if lacking:
            out.append(
                f"{n.why} needs fakes of {lacking} in split {n.split!r}; found: {describe_counts(found)}"
            )
    return out


def _only(found: Any, methods: tuple[str, ...]) -> Any:
    """Reals plus the fakes of ``methods`` (everything when no method is named)."""
    if not methods:
        return found
    keep = {"real", *methods}
    if hasattr(found, "loc"):
        return found[found["method"].isin(keep)]
    return [r for r in found if r.method in keep]

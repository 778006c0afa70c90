"""Grids (``benchmark/grids/*.yaml``): which detectors train on which sets and test on which.

A grid file::

    name: cross                      # defaults to the file name
    description: one line for the leaderboard
    detectors: [xception, sfam]
    train_sets: [FF++]               # a name, or {name, dataset, methods} (e.g. one FF++ method)
    test_sets: [FF++, CDF-v2]        # same forms; a method subset is scored as its own "dataset"
    seeds: [0]
    defaults:                        # for every detector
      detector: {}                   # recipe / constructor overrides (Detector.resolve_settings checks them)
      trainer: {}                    # Lightning Trainer settings (see TRAINER_KEYS)
      data: {}                       # datamodule settings (see DATA_KEYS)
      perturb: {}                    # test-time conditions scored after training (runner.sweeps)
    per_detector:                    # same sections, per detector name
      sfam: {detector: {lr: 1e-4}}
    demo_fallback: demo              # grid to run instead when only the demo data is configured

Unknown keys are errors that name them; unknown detectors and datasets list the known ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from benchmark.runner.sweeps import SweepError, parse_section
from datamodules.errors import UserError

if TYPE_CHECKING:
    from detectors import DetectorSettings

GRIDS_DIR = Path(__file__).resolve().parents[1] / "grids"

GRID_KEYS = {
    "name",
    "description",
    "detectors",
    "train_sets",
    "test_sets",
    "seeds",
    "defaults",
    "per_detector",
    "demo_fallback",
}
SECTION_KEYS = {"detector", "trainer", "data", "perturb"}
SET_KEYS = {"name", "dataset", "methods"}
TRAINER_KEYS = {
    "limit_train_batches",
    "limit_val_batches",
    "limit_test_batches",
    "precision",
    "accumulate_grad_batches",
    "gradient_clip_val",
    "check_val_every_n_epoch",
    "val_check_interval",
    "deterministic",
    "benchmark",
    "log_every_n_steps",
}
#: ForgeryDataModule arguments a grid (or a detector's ``data_defaults``) may set (batch sizes, frames and
#: augmentation come from the recipe)
DATA_KEYS = {
    "num_workers",
    "persistent_workers",
    "sbi_prob",
    "soft_regions",
    "frames_val",
    "train_methods",
    "augment_on_device",  # augmentation in the datamodule's on_after_batch_transfer (pixels differ: hashed)
    "perturb_on_device",  # test perturbation on the device: hashed only into the derived cells it moves
}


class GridError(UserError, ValueError):
    """A grid is unknown or its YAML is invalid (the message names the culprit)."""

    hint = "grids live in benchmark/grids/*.yaml; README 'Running grids' lists their keys and sections"


@dataclass(frozen=True)
class SetSpec:
    """A training or test set: a configured ``dataset``, optionally restricted to fake ``methods``.

    ``name`` is what tables show; it equals ``dataset`` unless a method subset is chosen.
    """

    name: str
    dataset: str
    methods: tuple[str, ...] = ()


@dataclass(frozen=True)
class Grid:
    """A parsed grid: detectors x training sets x seeds, the test sets and per-detector settings."""

    name: str
    path: Path
    detectors: tuple[str, ...]
    train_sets: tuple[SetSpec, ...]
    test_sets: tuple[SetSpec, ...]
    seeds: tuple[int, ...]
    defaults: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_detector: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    description: str = ""
    demo_fallback: str | None = None

    def settings(self, detector: str) -> dict[str, dict[str, Any]]:
        """``{detector, trainer, data}`` settings for one detector: defaults, then its own entries."""
        out = {k: dict(self.defaults.get(k, {})) for k in SECTION_KEYS}
        for k, v in self.per_detector.get(detector, {}).items():
            out[k].update(v)
        return out

    def datasets(self) -> list[str]:
        """Every configured dataset the grid reads, in first-use order."""
        seen: dict[str, None] = {}
        for s in (*self.train_sets, *self.test_sets):
            seen.setdefault(s.dataset, None)
        return list(seen)


def list_grids() -> list[str]:
    """The names of the grids shipped in ``benchmark/grids``."""
    return sorted(p.stem for p in GRIDS_DIR.glob("*.yaml"))


def grid_path(name_or_path: str | Path) -> Path:
    """The YAML file of a grid given by name or path; an error listing the known grids otherwise."""
    p = Path(name_or_path)
    if p.suffix in {".yaml", ".yml"} and p.is_file():
        return p
    cand = GRIDS_DIR / f"{name_or_path}.yaml"
    if not cand.is_file():
        raise GridError(f"unknown grid {str(name_or_path)!r}; known grids: {', '.join(list_grids())}")
    return cand


def load_grid(name_or_path: str | Path) -> Grid:
    """Read and validate a grid by name (``benchmark/grids/<name>.yaml``) or by path."""
    path = grid_path(name_or_path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise GridError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise GridError(f"{path}: a grid is a mapping, got {type(raw).__name__}")
    _no_unknown(raw, GRID_KEYS, f"{path}")
    for key in ("detectors", "train_sets", "test_sets"):
        if not raw.get(key):
            raise GridError(f"{path}: '{key}' is missing or empty")
    defaults = _sections(raw.get("defaults") or {}, f"{path}: defaults")
    per_det_raw = raw.get("per_detector") or {}
    if not isinstance(per_det_raw, dict):
        raise GridError(f"{path}: per_detector must map detector names to settings")
    per_detector = {str(d): _sections(v or {}, f"{path}: per_detector.{d}") for d, v in per_det_raw.items()}
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
        raise GridError(f"{path}: seeds must be a list of integers, got {seeds!r}")
    return Grid(
        name=str(raw.get("name", path.stem)),
        path=path,
        detectors=tuple(str(d) for d in raw["detectors"]),
        train_sets=tuple(_set(s, f"{path}: train_sets") for s in raw["train_sets"]),
        test_sets=tuple(_set(s, f"{path}: test_sets") for s in raw["test_sets"]),
        seeds=tuple(seeds),
        defaults=defaults,
        per_detector=per_detector,
        description=str(raw.get("description", "")),
        demo_fallback=raw.get("demo_fallback"),
    )


def _no_unknown(d: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(map(str, d)) - known)
    if unknown:
        raise GridError(f"{where}: unknown key(s) {unknown}; known keys: {', '.join(sorted(known))}")


def _sections(d: Any, where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(d, dict):
        raise GridError(f"{where}: expected a mapping with {sorted(SECTION_KEYS)}, got {d!r}")
    _no_unknown(d, SECTION_KEYS, where)
    out = {k: dict(d.get(k) or {}) for k in SECTION_KEYS}
    _no_unknown(out["trainer"], TRAINER_KEYS, f"{where}.trainer")
    _no_unknown(out["data"], DATA_KEYS, f"{where}.data")
    try:  # validated here; a detector's conditions are resolved by benchmark.runner.sweeps
        parse_section(out["perturb"], f"{where}.perturb")
    except SweepError as e:
        raise GridError(str(e)) from None
    return out


def _set(s: Any, where: str) -> SetSpec:
    if isinstance(s, str):
        return SetSpec(s, s)
    if not isinstance(s, dict) or "dataset" not in s and "name" not in s:
        raise GridError(f"{where}: a set is a dataset name or {{name, dataset, methods}}, got {s!r}")
    _no_unknown(s, SET_KEYS, f"{where} entry {s!r}")
    dataset = str(s.get("dataset", s.get("name")))
    methods = tuple(str(m) for m in (s.get("methods") or ()))
    return SetSpec(str(s.get("name", dataset)), dataset, methods)


def detector_settings(grid: Grid, detectors: list[str]) -> dict[str, DetectorSettings]:
    """Each detector's resolved settings in ``grid`` (:meth:`detectors.Detector.resolve_settings`).

    Unknown detector names (asked for, or under ``per_detector``) and overrides that are neither recipe
    settings nor constructor arguments raise :class:`GridError` naming the grid file and the culprit.
    """
    from detectors import UnknownSettingError, list_detectors
    from detectors.registry import get_detector_class

    known = list_detectors()
    unknown = [d for d in [*detectors, *grid.per_detector] if d not in known]
    if unknown:
        raise GridError(
            f"{grid.path}: unknown detector(s) {sorted(set(unknown))}; known detectors: {', '.join(known)}"
        )
    out = {}
    for d in detectors:
        try:
            out[d] = get_detector_class(d).resolve_settings(**grid.settings(d)["detector"])
        except UnknownSettingError as e:
            raise GridError(f"{grid.path}: detector {e}") from e
    return out

"""A cell as typed records: :class:`CellConfig` (the experiment, hashed into the cell id) and
:class:`Runtime` (where things are and how the cell is executed, not hashed).

The config holds everything that defines the experiment: grid, detector, its overrides (the reference,
``paper`` or ``released``, among them) and the fully resolved recipe with its augmentation (so a change of
a paper default in code gives new cells), trainer and data settings, the training and test sets, each
dataset's layout and preprocessing options, the data origin (demo or real) and the datamodule factory.
It leaves out where things are on disk (dataset roots, output folders), how the cell is executed
(devices, nodes, launcher) and descriptive text (the recipe's ``source`` citation): those change nothing
in the experiment.

``cell_id`` = the first 16 hex digits of the SHA-256 of the canonical JSON (sorted keys, no spaces) of
:meth:`CellConfig.to_json`. Spec files and store records carry the same JSON. Version 2 (recipes carry
their augmentation, the citation left out) changed every id once; a version-1 spec is refused (re-plan
it), while version-1 store records stay readable as JSON by the leaderboard. A cell that scores released
weights has one key more, ``weights`` (source, file, SHA-256), so its id differs from the trained cell's;
for trained cells the key is left out.
A *derived* cell scores a finished cell's checkpoint under a test-time condition
(:mod:`benchmark.runner.perturbed`): its config is the parent's plus ``perturbation``
(``Perturbation.to_dict()``) and/or ``view`` (``CropView`` fields), keys left out when unset, so the
parent's id is the hash of the config without them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from benchmark.runner.grid import SetSpec
from benchmark.runner.sweeps import Condition, view_dict, view_from_dict
from datamodules.media.perturb import CropView, Perturbation
from datamodules.media.perturb.device import moves_to_device
from detectors.recipe import Recipe

#: the default datamodule factory. The name is hashed into every cell id, so it stays the one the first
#: cells were run with; ``benchmark.runner.cell_data.FACTORY_ALIASES`` resolves it to where the code lives.
DEFAULT_DATAMODULE = "benchmark.data:build_datamodule"
CONFIG_VERSION = 2


def canonical_json(obj: Any) -> str:
    """``obj`` as compact JSON with sorted keys: the text a configuration hash is taken of."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def jsonable(obj: Any) -> Any:
    """``obj`` as JSON gives it back (tuples -> lists, paths -> strings): what a spec file carries."""
    return json.loads(canonical_json(obj))


def config_hash(config: dict[str, Any]) -> str:
    """16 hex digits of the SHA-256 of the canonical JSON of ``config``."""
    return hashlib.sha256(canonical_json(config).encode()).hexdigest()[:16]


def _check_keys(d: Any, cls: type, where: str) -> None:
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(d).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known keys: {', '.join(sorted(known))}")


@dataclass(frozen=True)
class DatasetSpec:
    """How a dataset is read: the part of the data configuration that changes the experiment."""

    layout: str  # official layout (datamodules.datasets adapter name: ffpp, celebdf_v2, ...)
    options: dict[str, Any] = field(default_factory=dict)  # preprocessing options (frames, compression, ...)


@dataclass(frozen=True)
class WeightsSpec:
    """Released weights a cell scores instead of training. Hashed: another file is another experiment."""

    source: str  # the checkpoint's code base: the converter that reads it (deepfakebench, sbi)
    file: str  # the file name as published
    sha256: str  # SHA-256 of the file the cell was planned with

    @property
    def label(self) -> str:
        """A human-readable label: source, file name and the start of its SHA-256."""
        return f"released weights ({self.source} {self.file}, sha256 {self.sha256[:12]})"


@dataclass(frozen=True, kw_only=True)
class CellConfig:
    """The experiment of one cell. Every field is hashed into the cell id (field name = JSON key)."""

    version: int = CONFIG_VERSION  # layout of this record; bump only with a migration of old ids
    grid: str  # grid name (benchmark/grids/<name>.yaml)
    detector: str  # registry name (detectors.create_detector)
    seed: int  # training seed (Lightning seed_everything, data order)
    train_set: SetSpec  # training set; its val split selects the checkpoint
    test_sets: tuple[SetSpec, ...]  # sets the best checkpoint is scored on, in grid order
    overrides: dict[str, Any] = field(default_factory=dict)  # the grid's detector section, as written
    recipe: Recipe  # the resolved recipe: the paper's with the recipe overrides
    arch_overrides: dict[str, Any] = field(default_factory=dict)  # overrides that are constructor arguments
    trainer: dict[str, Any] = field(default_factory=dict)  # Lightning Trainer arguments (grid.TRAINER_KEYS)
    data: dict[str, Any] = field(default_factory=dict)  # ForgeryDataModule arguments (grid.DATA_KEYS)
    datasets: dict[str, DatasetSpec]  # every dataset the cell reads, by name
    origin: str  # "demo" (the embedded synthetic benchmark) or "real"
    datamodule: str = DEFAULT_DATAMODULE  # datamodule factory, "module:function"
    weights: WeightsSpec | None = None  # released weights scored without training; None = trained here
    perturbation: Perturbation | None = None  # derived cell: test-time distortion of the test sets
    view: CropView | None = None  # derived cell: test-time preprocessing view of the test sets

    @property
    def perturbed(self) -> bool:
        """A derived cell: the parent's checkpoint scored under a test-time condition, no training."""
        return self.perturbation is not None or self.view is not None

    @property
    def condition(self) -> Condition:
        """The test-time condition (perturbation and view) this config scores."""
        return Condition(self.perturbation, self.view)

    def parent(self) -> CellConfig:
        """The config of the cell whose checkpoint a derived cell scores (itself for other cells)."""
        return replace(self, perturbation=None, view=None)

    @property
    def test_datasets(self) -> list[str]:
        """The distinct datasets of the test sets, in order (one test loader each)."""
        return list(dict.fromkeys(t.dataset for t in self.test_sets))

    def to_json(self) -> dict[str, Any]:
        """The hashed dict: JSON types only, one key per field; the recipe without its citation
        (:meth:`Recipe.experiment_dict`); ``weights``, ``perturbation`` and ``view`` only when set (a trained
        cell's dict has no such key); the data setting ``perturb_on_device`` only in a derived cell whose
        condition it moves to the device (elsewhere it changes no pixel, so no id)."""
        d = jsonable({**asdict(self), "recipe": self.recipe.experiment_dict()})
        if not moves_to_device(self.perturbation, self.view):  # the setting changes nothing here
            d["data"].pop("perturb_on_device", None)
        for key in ("weights", "perturbation", "view"):  # unset: absent, so older ids stay what they were
            if getattr(self, key) is None:
                del d[key]
        if self.perturbation is not None:
            d["perturbation"] = jsonable(self.perturbation.to_dict())
        if self.view is not None:
            d["view"] = view_dict(self.view)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CellConfig:
        """Rebuild a config from :meth:`to_json`; a clear error for another version or missing keys."""
        _check_keys(d, cls, "cell config")
        version = d.get("version", CONFIG_VERSION)
        if version != CONFIG_VERSION:
            raise ValueError(
                f"cell config version {version} is not this planner's ({CONFIG_VERSION}): version 1 configs were "
                "written before recipes carried their augmentation; plan the grid again"
            )
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted(required - set(d))
        if missing:
            raise ValueError(f"cell config: missing key(s) {missing}")
        return cls(
            **{
                **d,
                "seed": int(d["seed"]),
                "train_set": _set(d["train_set"]),
                "test_sets": tuple(_set(t) for t in d["test_sets"]),
                "recipe": Recipe.from_dict(d["recipe"]),
                "datasets": {n: DatasetSpec(**v) for n, v in d["datasets"].items()},
                "weights": WeightsSpec(**d["weights"]) if d.get("weights") is not None else None,
                "perturbation": _perturbation(d.get("perturbation")),
                "view": view_from_dict(d["view"], "cell config: view") if d.get("view") is not None else None,
            }
        )


def _perturbation(d: Any) -> Perturbation | None:
    if d is None:
        return None
    try:
        return Perturbation.from_dict(d)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"cell config: perturbation {d!r}: {e}") from None


def _set(d: dict[str, Any]) -> SetSpec:
    return SetSpec(d["name"], d["dataset"], tuple(d.get("methods", ())))


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """Where a cell's inputs and outputs are and how it runs. Not hashed: moving a store changes no id."""

    store_root: Path = Path("runs/store")  # the score store (benchmark.store.ScoreStore)
    work_root: Path = Path("runs/cells")  # cell folders: checkpoints, logs, progress.json, failure.txt
    processed_root: Path = Path("data/processed")  # manifests: <processed_root>/<dataset>/manifest.parquet
    data_config: Path | None = None  # the data YAML the cell was planned from (for the reader)
    roots: dict[str, Path] = field(default_factory=dict)  # dataset folders, to preprocess a missing manifest
    devices: int = 1  # devices per node (Lightning DDP when > 1)
    num_nodes: int = 1  # nodes one cell spans (Lightning num_nodes; DDP over devices x num_nodes when > 1)
    accelerator: str = "auto"  # Lightning accelerator: auto, cpu, gpu
    wandb: bool = False  # also log to Weights & Biases
    progress_bar: bool = True  # progress display: rich bar on a terminal, else event lines (progress.py)
    weights_path: Path | None = None  # the released weights file of a cell whose config has ``weights``
    frozen_cache: bool = True  # reuse frozen-backbone outputs (detectors.frozen_cache; identical scores)
    frozen_cache_max_gb: float | None = None  # bound on the frozen cache (None: unbounded)

    def __post_init__(self) -> None:  # accept strings (JSON, callers) for paths
        for name in ("store_root", "work_root", "processed_root"):
            object.__setattr__(self, name, Path(getattr(self, name)))
        for name in ("data_config", "weights_path"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        object.__setattr__(self, "roots", {n: Path(p) for n, p in self.roots.items()})

    def cell_dir(self, cell_id: str) -> Path:
        """The folder of cell ``cell_id``: checkpoints, logs, progress and failure files."""
        return self.work_root / cell_id

    @property
    def frozen_cache_dir(self) -> Path:
        """The frozen-feature cache shared by the cells: ``<work root>/../cache/frozen`` (runs/cache/frozen)."""
        return self.work_root.parent / "cache" / "frozen"

    def to_json(self) -> dict[str, Any]:
        """The runtime as a JSON-ready dict."""
        return jsonable(asdict(self))

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Runtime:
        """Rebuild a runtime from :meth:`to_json` (unknown keys are an error)."""
        _check_keys(d, cls, "cell runtime")
        return cls(**d)


@dataclass(frozen=True)
class Cell:
    """One unit of work: a :class:`CellConfig` (hashed into ``cell_id``) and its :class:`Runtime`."""

    config: CellConfig
    runtime: Runtime = field(default_factory=Runtime, compare=False)

    @property
    def cell_id(self) -> str:
        """The cell's id: the hash of its configuration (the runtime does not change it)."""
        return config_hash(self.config.to_json())

    @property
    def detector(self) -> str:
        """The detector's registry name."""
        return self.config.detector

    @property
    def train_set(self) -> str:
        """The training set's name."""
        return self.config.train_set.name

    @property
    def seed(self) -> int:
        """The training seed."""
        return self.config.seed

    @property
    def grid(self) -> str:
        """The grid's name."""
        return self.config.grid

    @property
    def label(self) -> str:
        """A one-line label: detector, training set, seed, and released weights or condition when any."""
        released = " | released weights" if self.config.weights is not None else ""
        tested = f" | {self.config.condition.tag}" if self.config.perturbed else ""
        return f"{self.detector} | {self.train_set} | seed {self.seed}{released}{tested}"

    @property
    def parent_id(self) -> str | None:
        """The id of the cell whose checkpoint a derived cell scores (None for other cells)."""
        return config_hash(self.config.parent().to_json()) if self.config.perturbed else None

    @property
    def cell_dir(self) -> Path:
        """The cell's working folder under the runtime's run root."""
        return self.runtime.cell_dir(self.cell_id)

    def with_runtime(self, **changes: Any) -> Cell:
        """The same cell (same id) with some runtime settings changed."""
        return replace(self, runtime=replace(self.runtime, **changes))

    def to_json(self) -> dict[str, Any]:
        """The cell as a JSON spec: id, config and runtime."""
        return {"cell_id": self.cell_id, "config": self.config.to_json(), "runtime": self.runtime.to_json()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Cell:
        """Rebuild a cell from :meth:`to_json`, checking that its id is its config's hash."""
        cell = cls(CellConfig.from_json(d["config"]), Runtime.from_json(d.get("runtime", {})))
        if config_hash(d["config"]) != cell.cell_id:
            raise ValueError(
                f"cell spec does not round-trip: its config hashes to {config_hash(d['config'])}"
            )
        if "cell_id" in d and d["cell_id"] != cell.cell_id:
            raise ValueError(f"cell spec is inconsistent: id {d['cell_id']} != hash {cell.cell_id}")
        return cell

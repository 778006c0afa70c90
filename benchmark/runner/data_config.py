"""Where the data come from: the data configuration file (one per user, read by the runner).

The file is found, in this order, at ``--data PATH``, at ``$FORGERY_BENCH_DATA``, or at
``data/datasets.yaml``. Its format (docs/ARCHITECTURE.md, "Data configuration")::

    processed_root: data/processed
    datasets:
      FF++:   {layout: ffpp, root: /data/FaceForensics++, compression: c23}
      CDF-v2: {layout: celebdf_v2, root: /data/Celeb-DF-v2}

Relative paths are relative to the file's folder. Every key of a dataset entry other than ``layout`` and
``root`` is passed to preprocessing as an option; ``protocol: sfam`` names a preprocessing protocol
(``datamodules.preprocess.protocols``; ``default`` is dropped, so writing it changes no cell id).

With no file configured the embedded demo benchmark is used (generated with
``python -m datamodules.demo --out data/demo`` when missing) and :func:`load_data_config` says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from datamodules.errors import UserError

ENV_VAR = "FORGERY_BENCH_DATA"
DEFAULT_PATH = Path("data/datasets.yaml")
DEMO_DIR = Path("data/demo")
DEMO_PREFIX = "demo-"


class DataConfigError(UserError, ValueError):
    """The data configuration file is missing, malformed, or lacks a dataset asked for."""

    hint = (
        "README 'Running grids' shows the data configuration (found at --data, $FORGERY_BENCH_DATA or "
        "data/datasets.yaml)"
    )


@dataclass(frozen=True)
class DatasetEntry:
    """One configured dataset: its on-disk ``layout``, ``root`` folder and preprocessing options."""

    name: str
    layout: str
    root: Path
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataConfig:
    """The parsed data configuration.

    Attributes:
        path: the YAML file it was read from.
        processed_root: where preprocessing writes ``<dataset>/manifest.parquet``.
        datasets: configured datasets by name.
        origin: ``"demo"`` (the embedded synthetic demo) or ``"real"``.
        note: a sentence for the user when the runner chose the data itself (the demo fallback).
    """

    path: Path
    processed_root: Path
    datasets: dict[str, DatasetEntry]
    origin: str = "real"
    note: str = ""

    def manifest_path(self, name: str) -> Path:
        """The manifest path of dataset ``name`` under the processed root."""
        from datamodules.manifest import manifest_path

        return manifest_path(self.processed_root, name)

    def entry(self, name: str) -> DatasetEntry:
        """The configured entry of dataset ``name``; an error listing the configured datasets otherwise."""
        if name not in self.datasets:
            raise DataConfigError(
                f"dataset {name!r} is not configured in {self.path}; "
                f"configured datasets: {', '.join(sorted(self.datasets)) or '(none)'}"
            )
        return self.datasets[name]


def parse_data_config(path: Path, origin: str | None = None, note: str = "") -> DataConfig:
    """Read and validate one data configuration YAML file."""
    path = Path(path)
    if not path.is_file():
        raise DataConfigError(f"data configuration file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise DataConfigError(f"{path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise DataConfigError(f"{path}: expected a mapping with 'datasets', got {type(raw).__name__}")
    unknown = sorted(set(raw) - {"processed_root", "datasets", "origin"})
    if unknown:
        raise DataConfigError(
            f"{path}: unknown key(s) {unknown}; known keys: datasets, origin, processed_root"
        )
    base = path.parent
    datasets: dict[str, DatasetEntry] = {}
    for name, spec in (raw.get("datasets") or {}).items():
        if not isinstance(spec, dict) or "layout" not in spec or "root" not in spec:
            raise DataConfigError(
                f"{path}: dataset {name!r} needs at least 'layout' and 'root', got {spec!r}"
            )
        opts = {k: v for k, v in spec.items() if k not in {"layout", "root"}}
        _check_protocol(path, str(name), opts)
        datasets[str(name)] = DatasetEntry(str(name), str(spec["layout"]), _resolve(base, spec["root"]), opts)
    if not datasets:
        raise DataConfigError(f"{path}: no datasets configured")
    processed = _resolve(base, raw.get("processed_root", "processed"))
    if origin is None:
        # The demo writes dataset names "demo-*"; a file may also say so explicitly.
        declared = raw.get("origin")
        is_demo = declared == "demo" or (
            declared is None and all(n.startswith(DEMO_PREFIX) for n in datasets)
        )
        origin = "demo" if is_demo else "real"
    return DataConfig(path, processed, datasets, origin, note)


def _check_protocol(path: Path, name: str, opts: dict[str, Any]) -> None:
    """Refuse an unknown ``protocol`` (naming the known ones); drop ``protocol: default`` (the same data as
    no protocol key, so the same cell ids)."""
    if "protocol" not in opts:
        return
    from datamodules.preprocess.protocols import DEFAULT, PROTOCOLS

    if opts["protocol"] not in PROTOCOLS:
        raise DataConfigError(
            f"{path}: dataset {name!r} asks for unknown preprocessing protocol {opts['protocol']!r}; "
            f"known protocols: {', '.join(PROTOCOLS)}"
        )
    if opts["protocol"] == DEFAULT:
        del opts["protocol"]


def _resolve(base: Path, p: Any) -> Path:
    q = Path(str(p)).expanduser()
    return q if q.is_absolute() else (base / q).resolve()


def configured_path(explicit: str | Path | None = None) -> Path | None:
    """The data config the user configured (flag, env var or default file), or None."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    return DEFAULT_PATH if DEFAULT_PATH.is_file() else None


def ensure_demo(demo_dir: Path = DEMO_DIR) -> Path:
    """The demo's data config, generated with ``python -m datamodules.demo`` when missing."""
    cfg = demo_dir / "datasets.yaml"
    if not cfg.is_file():
        cmd = [sys.executable, "-m", "datamodules.demo", "--out", str(demo_dir)]
        print(f"generating the embedded demo benchmark: {' '.join(cmd)}", file=sys.stderr)
        subprocess.run(cmd, check=True)
        if not cfg.is_file():
            raise DataConfigError(f"`{' '.join(cmd)}` finished but wrote no {cfg}")
    return cfg


def load_data_config(explicit: str | Path | None = None, demo_dir: Path = DEMO_DIR) -> DataConfig:
    """The configured data, or the embedded demo (generated if needed) when nothing is configured."""
    path = configured_path(explicit)
    if path is not None:
        return parse_data_config(path)
    cfg = ensure_demo(demo_dir)
    note = (
        f"no data configured (--data, ${ENV_VAR} or {DEFAULT_PATH}): using the embedded DEMO benchmark "
        f"({cfg}); its numbers say nothing about real deepfakes"
    )
    return parse_data_config(cfg, origin="demo", note=note)

"""Create detectors by name (timm-style registry with lazy imports).

A new detector is one new file plus one line in ``_MODULES``: the file decorates its class with
``@register_detector("name")``; the line tells the registry which module to import for that name, so
``create_detector("xception")`` never imports open_clip (recipe: docs/EXTENDING.md).

A package installed beside the suite adds detectors without editing this file: it declares each name and
the module that registers it under the entry-point group :data:`ENTRY_POINT_GROUP` in its own
``pyproject.toml``; every process (also the cells the local and SLURM launchers start) reads them like
``_MODULES`` lines (:func:`installed_detectors`).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from datamodules.errors import UserError
from detectors.base import Detector
from detectors.frozen_backbone import LEAN_KEY, constructor_arguments, rebuild, restore_frozen

# name -> module that registers it (imported only when the name is asked for)
_MODULES: dict[str, str] = {
    "resnet34": "detectors.timm_cnn.variants",
    "xception": "detectors.timm_cnn.variants",
    "efficientnet_b4": "detectors.timm_cnn.variants",
    "sbi": "detectors.timm_cnn.sbi",
    "sbi_deepfakebench": "detectors.timm_cnn.sbi",
    "ucf": "detectors.ucf.detector",
    "forensics_adapter": "detectors.forensics_adapter.detector",
    "effort": "detectors.effort.detector",
    "gend": "detectors.gend.detector",
    "sfam": "sfam.detector",
    "clip_linear": "sfam.detector",
}

_REGISTRY: dict[str, type[Detector]] = {}

#: the entry-point group through which an installed package adds detectors (``name = "package.module"``)
ENTRY_POINT_GROUP = "forgery_bench.detectors"

T = TypeVar("T", bound=type[Detector])


class UnknownDetectorError(UserError, KeyError):
    """Raised for a detector name the registry does not know; the message lists the known names."""

    hint = "README 'Detectors' lists them (`detectors.list_detectors()`)"

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


def register_detector(name: str) -> Callable[[T], T]:
    """Class decorator: file ``cls`` under ``name``. A duplicate name is an error."""

    def deco(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(
                f"detector name {name!r} is already registered by {_REGISTRY[name].__qualname__}"
            )
        if not issubclass(cls, Detector):
            raise TypeError(f"{cls.__qualname__} must subclass detectors.base.Detector")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


@functools.cache
def installed_detectors() -> dict[str, str]:
    """Detector name -> module, as installed packages declare them under :data:`ENTRY_POINT_GROUP`.

    Read once per process (``installed_detectors.cache_clear()`` reads again). A name the suite already
    has, or one two entry points give different modules, raises ``ValueError`` naming the entry point.
    """
    out: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "unknown distribution"
        where = f"entry point {ep.name} = {ep.value!r} of {dist} (group {ENTRY_POINT_GROUP})"
        if ep.name in _MODULES:
            raise ValueError(f"{where}: the suite already has a detector {ep.name!r}; choose another name")
        if out.get(ep.name, ep.module) != ep.module:
            raise ValueError(f"{where}: detector {ep.name!r} is also declared as module {out[ep.name]!r}")
        out[ep.name] = ep.module
    return out


def _modules() -> dict[str, str]:
    """Name -> module that registers it: the suite's ``_MODULES`` and the installed packages' entry points."""
    return {**installed_detectors(), **_MODULES}


def list_detectors() -> list[str]:
    """All detector names, registered or registrable, sorted."""
    return sorted(set(_modules()) | set(_REGISTRY))


def get_detector_class(name: str) -> type[Detector]:
    """The class registered as ``name``, importing its module on first use; an error listing the known
    detectors."""
    if name not in _REGISTRY:
        modules = _modules()
        if name not in modules:
            raise UnknownDetectorError(
                f"unknown detector {name!r}; known detectors: {', '.join(list_detectors())}"
            )
        importlib.import_module(modules[name])
        if name not in _REGISTRY:
            raise RuntimeError(f"module {modules[name]} did not register detector {name!r}")
    return _REGISTRY[name]


def create_detector(name: str, **overrides: Any) -> Detector:
    """Build detector ``name``; ``overrides`` are its constructor arguments (architecture or recipe).

    ``get_detector_class(name).resolve_settings(**overrides)`` tells what this builds without building it;
    a reference's constructor arguments (``reference="released"``) are passed under the overrides.
    """
    cls = get_detector_class(name)
    return cls(**cls.build_arguments(**overrides))


def load_detector(path: str | Path, expected: str | None = None, map_location: str = "cpu") -> Detector:
    """Rebuild a detector from a Lightning checkpoint without unpickling arbitrary objects.

    The checkpoint is read with ``weights_only=True``; the detector is re-created from its registry name
    and saved hyper-parameters, then the state dict is loaded strictly. A lean checkpoint (its frozen
    backbone stored by reference, :mod:`detectors.frozen_backbone`) is rebuilt with the random state it
    recorded, its backbone hash-checked (:class:`~detectors.frozen_backbone.FrozenBackboneMismatch` names
    both hashes when it differs) and filled in; a full checkpoint loads every tensor from the file.

    Args:
        path: the checkpoint file.
        expected: if given, refuse a checkpoint of another detector.
        map_location: the device the tensors are loaded onto.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle.UnpicklingError and friends
        raise ValueError(
            f"refusing to load {path}: not a plain weights checkpoint ({type(e).__name__}: {e})"
        ) from e
    name = ckpt.get("detector_name")
    if not name:
        raise ValueError(f"{path} is not a checkpoint written by this suite (no 'detector_name')")
    if expected is not None and name != expected:
        raise ValueError(f"{path} is a checkpoint of detector {name!r}, not {expected!r}")
    cls = get_detector_class(name)
    cls.upgrade_checkpoint(ckpt)
    hparams = constructor_arguments(ckpt.get("hyper_parameters", {}))
    lean = ckpt.get(LEAN_KEY)
    model = rebuild(cls, hparams, lean["init_rng_state"], quiet=False) if lean else cls(**hparams)
    restore_frozen(model, ckpt, where=str(path))
    model.load_state_dict(ckpt["state_dict"], strict=True)
    model.pretrained_loaded = bool(ckpt.get("pretrained_loaded", False))
    return model

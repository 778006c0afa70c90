"""Test-time conditions a finished cell is scored under, and the sweeps that list them.

A *condition* is a test-time distortion of the stored crops (one level of a
:mod:`datamodules.media.perturb` distortion: the seven DeeperForensics-1.0 ones, or a user perturbation by
configuration), a preprocessing view (:class:`~datamodules.media.perturb.CropView`), or both. A *sweep*
is a list of conditions; every condition of a sweep becomes one derived cell per finished cell
(:mod:`benchmark.runner.perturbed`). Named sweeps:

* ``deeperforensics``: the seven distortions at their five published levels (35 conditions);
* ``sensitivity``: preprocessing views: zoom 1.1-1.5 (GenD's zoom sweep of stored crops), the detector
  resize's five interpolations, crops emulated at 128-224 px (``--size``);
* ``grid``: the grid's own ``perturb`` section (``defaults.perturb``, ``per_detector.<name>.perturb``);
* a path to a YAML file holding one section.

A section (the grid's, or a YAML file)::

    distortions: [gaussian_blur, JPEG]     # registry names or DeeperForensics codes; "all" = the seven
    levels: [1, 3]                         # default 1-5 (levels a distortion lacks are left out)
    views: [{zoom: 1.2}, {interpolation: bicubic}, {crop_size: 128}]
    configs:                               # user perturbations (datamodules.media.perturb.register_config),
      - {name: jpeg_quality, albumentations: [...]}   # scored at `levels` too
    seed: 0                                # the perturbations' seed (default 0)

The seed is the same for every cell: all training seeds see the same draws on the same samples, so a
level sweep and a comparison across seeds are paired.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from datamodules.errors import UserError
from datamodules.media.perturb import (
    DEEPERFORENSICS,
    INTERPOLATIONS,
    CropView,
    Perturbation,
    get_distortion,
    get_perturbation,
    list_perturbations,
    register_config,
)

#: keys of a sweep section
SECTION_KEYS = ("distortions", "levels", "views", "configs", "seed")
LEVELS = (1, 2, 3, 4, 5)
#: the ``sensitivity`` sweep: GenD's zoom factors above 1 (1.0 is the stored crop), every interpolation,
#: crops emulated below the stored side
SENSITIVITY_ZOOMS = (1.1, 1.2, 1.3, 1.4, 1.5)
SENSITIVITY_CROP_SIZES = (128, 160, 192, 224)
NAMED = ("deeperforensics", "sensitivity", "grid")


class SweepError(UserError, ValueError):
    """A sweep name, file or section is invalid (the message names the culprit)."""


@dataclass(frozen=True)
class Condition:
    """One test-time condition: a distortion level, a preprocessing view, or both."""

    perturbation: Perturbation | None = None
    view: CropView | None = None

    def __post_init__(self) -> None:
        if self.perturbation is not None and self.perturbation.is_identity:
            object.__setattr__(self, "perturbation", None)
        if self.view is not None and self.view.is_identity:
            object.__setattr__(self, "view", None)

    @property
    def is_clean(self) -> bool:
        """Whether this is the clean test (no perturbation, no view)."""
        return self.perturbation is None and self.view is None

    @property
    def tag(self) -> str:
        """``gaussian_blur@3``, ``zoom1.2``, ``gaussian_blur@3+zoom1.2``; ``clean`` for none (a row label,
        and the ``perturbation`` column of a derived cell's scores)."""
        parts = [] if self.perturbation is None else [self.perturbation.tag]
        parts += [] if self.view is None else [self.view.tag]
        return "+".join(parts) or "clean"


def sort_key(c: Condition) -> tuple:
    """Distortions first (registry order, then level), then views: zooms, interpolations (in
    ``INTERPOLATIONS`` order), crop sizes (the ``sensitivity`` sweep's order)."""
    names, interps = list_perturbations(), list(INTERPOLATIONS)
    p, v = c.perturbation, c.view
    pk = (0, "", 0, 0)
    if p is not None:
        pk = (names.index(p.name) if p.name in names else len(names), p.name, p.level, p.seed)
    vk: tuple = ()
    if v is not None:
        interp = interps.index(v.interpolation) if v.interpolation in interps else len(interps)
        vk = (v.zoom == 1.0, v.zoom, interp, v.crop_size or 0)
    return (p is None, pk, v is not None, vk)


def condition_of(config: Mapping[str, Any]) -> Condition:
    """The condition of a derived cell's config, as recorded (read back without the registry's check, so
    a store renders after the registry changed)."""
    p, v = config.get("perturbation"), config.get("view")
    perturbation = None
    if p is not None:
        perturbation = Perturbation(
            str(p["name"]),
            int(p["level"]),
            dict(p.get("params", {})),
            int(p.get("seed", 0)),
            p.get("kind", "image"),
        )
    return Condition(perturbation, None if v is None else view_from_dict(v))


def view_dict(view: CropView) -> dict[str, Any]:
    """A view as its JSON record (every field, so the record is one shape)."""
    return {"zoom": view.zoom, "crop_size": view.crop_size, "interpolation": view.interpolation}


def view_from_dict(d: Any, where: str = "view") -> CropView:
    """The :class:`CropView` of a sweep entry (``zoom``, ``crop_size``, ``interpolation``); ``where`` names it
    in errors."""
    if not isinstance(d, Mapping):
        raise SweepError(f"{where}: a view is a mapping of zoom / crop_size / interpolation, got {d!r}")
    unknown = sorted(set(d) - {"zoom", "crop_size", "interpolation"})
    if unknown:
        raise SweepError(f"{where}: unknown view key(s) {unknown}; known: zoom, crop_size, interpolation")
    try:
        return CropView(
            zoom=float(d.get("zoom", 1.0)),
            crop_size=None if d.get("crop_size") is None else int(d["crop_size"]),
            interpolation=d.get("interpolation"),
        )
    except (TypeError, ValueError) as e:
        raise SweepError(f"{where}: {e}") from None


def parse_section(section: Any, where: str) -> list[Condition]:
    """The conditions of a ``perturb`` section (see the module docstring), in order, without repeats."""
    if section is None or section == {}:
        return []
    if not isinstance(section, Mapping):
        raise SweepError(
            f"{where}: a perturb section is a mapping with {list(SECTION_KEYS)}, got {section!r}"
        )
    unknown = sorted(set(map(str, section)) - set(SECTION_KEYS))
    if unknown:
        raise SweepError(f"{where}: unknown key(s) {unknown}; known keys: {', '.join(SECTION_KEYS)}")
    seed = section.get("seed", 0)
    if not isinstance(seed, int):
        raise SweepError(f"{where}: seed must be an integer, got {seed!r}")
    levels = section.get("levels", list(LEVELS))
    if not isinstance(levels, list) or not all(isinstance(v, int) and v >= 1 for v in levels):
        raise SweepError(f"{where}: levels must be a list of integers >= 1, got {levels!r}")
    names = section.get("distortions", [])
    names = list(DEEPERFORENSICS) if names == "all" else names
    if not isinstance(names, list):
        raise SweepError(f"{where}: distortions must be a list of names (or 'all'), got {names!r}")
    names = list(names)  # configs append to it; never to the grid's own list
    for i, config in enumerate(section.get("configs") or []):
        try:
            names.append(register_config(config, replace=True).name)
        except ValueError as e:
            raise SweepError(f"{where}: configs[{i}]: {e}") from None
    conditions = []
    for name in names:
        try:
            d = get_distortion(str(name))
        except ValueError as e:
            raise SweepError(f"{where}: {e}") from None
        conditions += [Condition(get_perturbation(d.name, lv, seed)) for lv in levels if lv <= len(d.levels)]
    views = section.get("views") or []
    if not isinstance(views, list):
        raise SweepError(f"{where}: views must be a list of mappings, got {views!r}")
    conditions += [Condition(view=view_from_dict(v, f"{where}: views[{i}]")) for i, v in enumerate(views)]
    return unique([c for c in conditions if not c.is_clean])


def unique(conditions: Sequence[Condition]) -> list[Condition]:
    """``conditions`` without repeats (same perturbation record and view), first occurrence kept."""
    seen, out = set(), []
    for c in conditions:
        key = (None if c.perturbation is None else repr(c.perturbation.to_dict()), c.view)
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def deeperforensics(seed: int = 0) -> list[Condition]:
    """The seven DeeperForensics-1.0 distortions at their five published levels."""
    return [Condition(get_perturbation(n, lv, seed)) for n in DEEPERFORENSICS for lv in LEVELS]


def sensitivity() -> list[Condition]:
    """Preprocessing views: zooms (tighter margins), resize interpolations, smaller emulated crops."""
    views = [CropView(zoom=z) for z in SENSITIVITY_ZOOMS]
    views += [CropView(interpolation=i) for i in INTERPOLATIONS]
    views += [CropView(crop_size=s) for s in SENSITIVITY_CROP_SIZES]
    return [Condition(view=v) for v in views]


def load_file(path: Path) -> list[Condition]:
    """The test-time conditions of a sweep YAML file (a :class:`SweepError` naming the file when
    unreadable)."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise SweepError(f"sweep file {path}: {e}") from None
    return parse_section(raw or {}, str(path))


def sweep_conditions(names: Sequence[str], grid_section: Any = None, where: str = "grid") -> list[Condition]:
    """The conditions of the sweeps ``names`` (named sweeps or YAML files), in order, without repeats;
    ``grid`` reads ``grid_section`` (a detector's ``perturb`` settings of the grid)."""
    out: list[Condition] = []
    for name in names:
        if name == "deeperforensics":
            out += deeperforensics()
        elif name == "sensitivity":
            out += sensitivity()
        elif name == "grid":
            out += parse_section(grid_section, where)
        elif Path(name).suffix in {".yaml", ".yml"}:
            if not Path(name).is_file():
                raise SweepError(f"sweep file {name} not found")
            out += load_file(Path(name))
        else:
            raise SweepError(
                f"unknown sweep {name!r}; known: {', '.join(NAMED)}, or a YAML file with a perturb section"
            )
    return unique(out)

"""The perturbation registry: named distortions with levels, the ``Perturbation`` record, per-sample seeds.

A *distortion* is a named family with numbered levels (``Distortion``); a *perturbation* is one of its
levels with a seed (``Perturbation``), the value a test-time data path carries. Level 0 of every
distortion, and the distortion ``clean``, is the identity. Kinds:

* ``image``: ``fn(rgb uint8 [H, W, 3], rng, **params) -> rgb``, applied to one stored crop;
* ``clip``: ``fn(frames, rng, **params) -> frames``, applied to all selected crops of one video at once
  (video compression, :mod:`datamodules.media.perturb.video`).

Randomness: ``Perturbation.rng(key)`` is ``numpy.random.default_rng([seed, *blake2b(key)])`` with ``key``
the sample's ``sample_id`` (``<dataset>/<label>/<video>/<frame>``), so a sample's draw depends only on
the seed and the sample, never on worker count or order. The distortion's name and level are not part of
it: the levels of one distortion share their random numbers (the same noise field scaled, the first
blocks of level 5 being those of level 1), which makes a level sweep a paired comparison.

User-defined perturbations come from configuration: an albumentations transform serialised as
``albumentations.to_dict`` writes it (or only its ``transform`` part), one per level::

    register_config({
        "name": "jpeg_quality",
        "albumentations": [  # level 1, 2, ...; a single mapping is one level
            {"__class_fullname__": "ImageCompression", "quality_range": [90, 90]},
            {"__class_fullname__": "ImageCompression", "quality_range": [50, 50]},
        ],
    })

``p`` defaults to 1 (a perturbation is always applied; albumentations' own default would be 0.5). The
transform's random state is re-seeded from the sample's seed at every call, so it is deterministic too.
A config-defined perturbation carries its spec in ``params``, so a worker process rebuilds it without the
registration having happened there.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from datamodules.media.perturb import deeperforensics as df
from datamodules.media.perturb import video

CLEAN = "clean"
KINDS = ("image", "clip")


@dataclass(frozen=True)
class Distortion:
    """A named family of perturbations; ``levels[i]`` are the keyword parameters of level ``i + 1``.

    ``random=False`` declares that ``fn`` ignores its generator (it then gets ``None``: building a
    per-sample generator costs tens of microseconds).
    """

    name: str
    fn: Callable[..., Any]
    levels: tuple[Mapping[str, Any], ...]
    kind: str = "image"
    code: str = ""
    source: str = ""
    random: bool = True


_REGISTRY: dict[str, Distortion] = {}
_ALIASES: dict[str, str] = {}


def register(distortion: Distortion, replace: bool = False) -> Distortion:
    """Add a distortion (a duplicate name raises unless ``replace``)."""
    if distortion.kind not in KINDS:
        raise ValueError(
            f"distortion {distortion.name!r}: kind must be one of {KINDS}, got {distortion.kind!r}"
        )
    if not distortion.name or distortion.name == CLEAN:
        raise ValueError(f"invalid distortion name {distortion.name!r}")
    if not replace and (distortion.name in _REGISTRY or distortion.name in _ALIASES):
        raise ValueError(f"perturbation {distortion.name!r} is already registered")
    if not distortion.levels:
        raise ValueError(f"distortion {distortion.name!r} has no levels")
    _REGISTRY[distortion.name] = distortion
    if distortion.code:
        _ALIASES[distortion.code] = distortion.name
    return distortion


def list_perturbations() -> list[str]:
    """Registered distortion names (``clean`` first), in registration order."""
    return [CLEAN, *_REGISTRY]


def get_distortion(name: str) -> Distortion:
    """The registered distortion ``name`` (or an alias of it); an error listing the known ones."""
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        known = ", ".join([*_REGISTRY, *_ALIASES])
        raise ValueError(f"unknown perturbation {name!r}; known: {CLEAN}, {known}")
    return _REGISTRY[key]


def _key_words(key: str) -> list[int]:
    digest = hashlib.blake2b(str(key).encode(), digest_size=16).digest()
    return np.frombuffer(digest, dtype="<u4").tolist()


def sample_rng(seed: int, key: str) -> np.random.Generator:
    """The generator of one sample: depends only on ``seed`` and ``key`` (its sample id)."""
    return np.random.default_rng([int(seed) % 2**32, *_key_words(key)])


@dataclass(frozen=True)
class Perturbation:
    """One level of one distortion, with the seed of its random draws.

    Attributes:
        name: registry name (``clean`` for none).
        level: 0 (identity) .. number of levels of the distortion.
        params: the level's parameters (the published values for DeeperForensics-1.0).
        seed: combined with each sample's id to seed its draw.
        kind: ``image`` or ``clip`` (see the module docstring).
    """

    name: str
    level: int
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    seed: int = 0
    kind: str = "image"

    @property
    def is_identity(self) -> bool:
        """Whether this is level 0: the image is left unchanged."""
        return self.level == 0

    @property
    def tag(self) -> str:
        """``clean`` or ``<name>@<level>`` (a column / file name for results)."""
        return CLEAN if self.is_identity else f"{self.name}@{self.level}"

    def rng(self, key: str) -> np.random.Generator:
        """The random generator of sample ``key``: the same for every run with this seed."""
        return sample_rng(self.seed, key)

    def prepare(self) -> Perturbation:
        """Build what the first call would (albumentations transforms, the noise bank) now, e.g. in the
        main process before DataLoader workers fork, so each worker does not redo it."""
        if self.is_identity or self.kind != "image":
            return self
        if "albumentations" in self.params:  # build only: a user transform may need a larger image
            _albumentations_transform(json.dumps(self.params["albumentations"], sort_keys=True))
        else:
            self.apply(np.zeros((64, 64, 3), np.uint8), "prepare")
        return self

    def _call(self, data: Any, key: str) -> Any:
        if "albumentations" in self.params:  # rebuilt from its spec, registered here or not
            return apply_albumentations(data, self.rng(key), **self.params)
        d = get_distortion(self.name)
        return d.fn(data, self.rng(key) if d.random else None, **self.params)

    def apply(self, rgb: np.ndarray, key: str) -> np.ndarray:
        """The perturbed copy of one RGB ``uint8`` crop (the input itself when the level is 0)."""
        if self.is_identity:
            return rgb
        if self.kind != "image":
            raise ValueError(f"{self.tag} acts on a whole video's frames: use apply_clip")
        return self._call(rgb, key)

    def apply_clip(self, frames: Sequence[np.ndarray], key: str) -> list[np.ndarray]:
        """The perturbed frames of one video (``key`` = its video id), for a ``clip`` kind."""
        if self.is_identity:
            return list(frames)
        if self.kind != "clip":
            raise ValueError(f"{self.tag} acts on one crop at a time: use apply")
        return list(self._call(frames, key))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record (e.g. for a cell's config); :meth:`from_dict` rebuilds it."""
        return {
            "name": self.name,
            "level": self.level,
            "params": dict(self.params),
            "seed": self.seed,
            "kind": self.kind,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Perturbation:
        """The record back; a registered distortion must still have the recorded parameters."""
        p = cls(
            str(d["name"]),
            int(d["level"]),
            dict(d.get("params", {})),
            int(d.get("seed", 0)),
            d.get("kind", "image"),
        )
        if p.name == CLEAN or "albumentations" in p.params:
            return p
        now = get_perturbation(p.name, p.level, p.seed)
        if dict(now.params) != p.params or now.kind != p.kind:
            raise ValueError(
                f"recorded {p.tag} has params {p.params}, the registry now has {dict(now.params)}"
            )
        return now


def get_perturbation(name: str, level: int, seed: int = 0) -> Perturbation:
    """Level ``level`` of ``name`` (a name or a DeeperForensics code such as ``GB``); level 0 = identity."""
    if name == CLEAN:
        if level != 0:
            raise ValueError(f"{CLEAN!r} has only level 0, got {level}")
        return Perturbation(CLEAN, 0, {}, seed)
    d = get_distortion(name)
    if not 0 <= int(level) <= len(d.levels):
        raise ValueError(f"perturbation {d.name!r} has levels 0-{len(d.levels)}, got {level}")
    params = dict(d.levels[int(level) - 1]) if level else {}
    return Perturbation(d.name, int(level), params, seed, d.kind)


def perturbation_grid(
    names: Sequence[str] | None = None, levels: Sequence[int] = (1, 2, 3, 4, 5), seed: int = 0
) -> list[Perturbation]:
    """``clean`` then every level of each distortion (default: the seven DeeperForensics-1.0 ones)."""
    names = list(DEEPERFORENSICS if names is None else names)
    return [get_perturbation(CLEAN, 0, seed)] + [
        get_perturbation(n, lv, seed) for n in names for lv in levels if lv <= len(get_distortion(n).levels)
    ]


# ---------------------------------------------------------------- user perturbations by configuration
def _transform_spec(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise ValueError(f"{where}: expected an albumentations transform mapping, got {type(spec).__name__}")
    inner = dict(spec.get("transform", spec))
    if "__class_fullname__" not in inner:
        raise ValueError(f"{where}: an albumentations transform needs '__class_fullname__'")
    inner.setdefault("p", 1.0)
    return inner


@lru_cache(maxsize=64)
def _albumentations_transform(spec_json: str):
    import albumentations as A

    return A.from_dict({"transform": json.loads(spec_json)})


def apply_albumentations(rgb: np.ndarray, rng: np.random.Generator, albumentations: Mapping[str, Any]):
    """Apply a serialised albumentations transform, its random state seeded from ``rng``."""
    t = _albumentations_transform(json.dumps(albumentations, sort_keys=True))
    seed = int(rng.integers(0, 2**32))
    t.set_random_state(np.random.default_rng(seed), random.Random(seed))
    out = t(image=rgb)["image"]
    if out.dtype != np.uint8 or out.shape != rgb.shape:
        raise ValueError(
            f"albumentations transform {albumentations['__class_fullname__']} returned "
            f"{out.dtype} {out.shape} for a uint8 {rgb.shape} image"
        )
    return out


def register_config(config: Mapping[str, Any], replace: bool = False) -> Distortion:
    """Register a perturbation given as ``{"name": ..., "albumentations": spec | [spec per level]}``."""
    name = config.get("name") if isinstance(config, Mapping) else None
    if not isinstance(name, str) or not name:
        raise ValueError(f"a perturbation config needs a 'name', got {config!r}")
    unknown = sorted(set(config) - {"name", "albumentations", "source"})
    if unknown:
        raise ValueError(
            f"perturbation config {name!r}: unknown keys {unknown}; known: name, albumentations, source"
        )
    specs = config.get("albumentations")
    if specs is None:
        raise ValueError(f"perturbation config {name!r} needs 'albumentations' (a transform spec or a list)")
    specs = [specs] if isinstance(specs, Mapping) else list(specs)
    levels = []
    for i, spec in enumerate(specs, 1):
        s = _transform_spec(spec, f"perturbation config {name!r}, level {i}")
        try:
            _albumentations_transform(json.dumps(s, sort_keys=True))
        except Exception as e:  # noqa: BLE001 - albumentations raises many kinds; name the culprit
            raise ValueError(
                f"perturbation config {name!r}, level {i}: albumentations cannot build it: {e}"
            ) from e
        levels.append({"albumentations": s})
    return register(
        Distortion(
            name, apply_albumentations, tuple(levels), "image", source=str(config.get("source", "config"))
        ),
        replace=replace,
    )


# ---------------------------------------------------------------- the seven DeeperForensics-1.0 distortions
_SOURCE = (
    "DeeperForensics-1.0 (Jiang et al., CVPR 2020), perturbation/{distortions,add_distortion_to_video}.py"
)
_PARAM = {  # name: (parameter, function, kind, random)
    "color_saturation": ("factor", df.color_saturation, "image", False),
    "color_contrast": ("factor", df.color_contrast, "image", False),
    "block_wise": ("blocks", df.block_wise, "image", True),
    "gaussian_noise_color": ("variance", df.gaussian_noise_color, "image", True),
    "gaussian_blur": ("kernel", df.gaussian_blur, "image", False),
    "jpeg_compression": ("factor", df.jpeg_compression, "image", False),
    "video_compression": ("crf", video.video_compression, "clip", False),
}
DEEPERFORENSICS = tuple(_PARAM)
IMAGE_DISTORTIONS = tuple(n for n, (_, _, kind, _) in _PARAM.items() if kind == "image")

for _name, (_param, _fn, _kind, _random) in _PARAM.items():
    _levels = tuple({_param: v} for v in df.LEVELS[_name])
    register(Distortion(_name, _fn, _levels, _kind, df.CODES[_name], _SOURCE, _random))

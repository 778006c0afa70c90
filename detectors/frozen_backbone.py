"""Lean checkpoints: a checkpoint stores what training changed, and the frozen backbone by reference.

A CLIP detector's checkpoint used to repeat its frozen tower (ViT-B/16: 345 MB, ViT-L/14: 1.2 GB) in
every file it wrote. A lean checkpoint stores the trainable tensors, every buffer and frozen tensor that
is not part of a rebuildable backbone, and the *identity* of the omitted backbone tensors:

* their source (:class:`BackboneSource`: the builder, architecture, pretrained tag actually loaded, local
  weights file, pretrained or random initialisation), recorded per frozen module;
* one SHA-256 over the omitted tensors (name, dtype, shape, bytes), and one per frozen module;
* the CPU random-number state at the start of the detector's construction, so a backbone built from
  random initialisation (offline machines, the demo) is rebuilt with the same numbers.

Loading rebuilds the detector from its saved constructor arguments with that random state (the same
pretrained weights or file, or the same random draw), hashes the rebuilt backbone and refuses it, naming
both hashes, when it differs; otherwise the omitted tensors are filled in and the state dict loads strictly.

Which tensors may be left out (the rule):

1. they belong to a module the detector froze with :meth:`detectors.base.Detector.freeze_module`;
2. they are buffers or parameters with ``requires_grad=False`` (a parameter unfrozen inside a frozen
   tower, such as GenD's LayerNorms or Forensics Adapter's trainable parts, is saved);
3. their owning module carries a :class:`BackboneSource` (``create_clip`` and ``create_timm_backbone``
   tag every module they build), or the detector declared the frozen module rebuildable
   (``freeze_module(m, rebuildable=True)``: "my constructor re-creates these tensors from its arguments");
   ``rebuildable=False`` keeps a frozen module in full. So a frozen module of the detector's own making
   (Forensics Adapter's fusion projections frozen at their random initialisation under
   ``reference="released"``) is saved in full unless the detector declares otherwise;
4. they equal, bit for bit, the tensors of a rebuild of the detector from its constructor arguments and
   recorded random state (checked once per process, at the first save): a tensor that training changed,
   or that the constructor does not reproduce (a converted released checkpoint's backbone, a constructor
   that is not deterministic), is saved.

A checkpoint without the ``frozen_backbone`` section is a full one and loads as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from detectors.base import Detector

#: checkpoint key of the lean section
LEAN_KEY = "frozen_backbone"
LEAN_FORMAT = 1
#: attribute that tags a module with the source it was built from
SOURCE_ATTR = "_backbone_source"


class FrozenBackboneMismatch(ValueError):
    """The backbone rebuilt for a lean checkpoint is not the one the checkpoint was trained with."""


@dataclass(frozen=True)
class BackboneSource:
    """Where a frozen backbone comes from: enough to rebuild it and to tell a reader what it is.

    Attributes:
        kind: the builder (``open_clip``, ``timm``, or ``constructor``: the detector's own constructor).
        arch: architecture name (open_clip / timm model name; ``tiny`` for the test CLIP).
        pretrained: the pretrained tag that was actually loaded (``None``: not loaded).
        weights_file: the local weights file it was loaded from, if any.
        init: ``pretrained`` or ``random`` (random initialisation: rebuilt from the recorded random state).
    """

    kind: str
    arch: str
    pretrained: str | None = None
    weights_file: str | None = None
    init: str = "random"

    def describe(self) -> str:
        """Where the frozen backbone comes from, in words (architecture, weights or initialisation)."""
        where = self.weights_file or (f"pretrained={self.pretrained!r}" if self.pretrained else "")
        what = f"{self.kind} {self.arch}"
        if self.init == "pretrained":
            return f"{what} ({where})"
        return (
            f"{what} (random initialisation)"
            if self.init == "random"
            else f"{what} (built by its constructor)"
        )

    def to_dict(self) -> dict[str, Any]:
        """The source as a JSON-ready dict (recorded in lean checkpoints)."""
        return asdict(self)


def tag_backbone(module: nn.Module, source: BackboneSource) -> nn.Module:
    """Mark every sub-module of ``module`` as built from ``source`` (what lean checkpoints reference)."""
    for sub in module.modules():
        object.__setattr__(sub, SOURCE_ATTR, source)
    return module


def backbone_source(module: nn.Module) -> BackboneSource | None:
    """The source recorded on ``module`` (None when it has none: it is then stored in full)."""
    return getattr(module, SOURCE_ATTR, None)


# ---------------------------------------------------------------------------------------------- hashing
def tensor_digest(t: Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes (device-independent)."""
    h = hashlib.sha256(f"{t.dtype}|{tuple(t.shape)}|".encode())
    data = t.detach()
    if data.device.type != "cpu":
        data = data.cpu()
    data = data.contiguous().reshape(-1)
    if data.numel():
        h.update(data.view(torch.uint8).numpy().data)
    return h.hexdigest()


def combined_sha256(digests: Mapping[str, str]) -> str:
    """One SHA-256 over named tensor digests (sorted by name)."""
    h = hashlib.sha256()
    for k in sorted(digests):
        h.update(f"{k}:{digests[k]}\n".encode())
    return h.hexdigest()


class DigestCache:
    """Tensor digests remembered until the tensor changes (its storage, dtype or in-place version)."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[tuple[Any, ...], str]] = {}

    def digest(self, key: str, t: Tensor) -> str:
        """The digest of tensor ``t`` under ``key``, recomputed only when the tensor changed since the last
        call."""
        sig = (t.data_ptr(), t._version, t.dtype, t.device, tuple(t.shape))
        hit = self._seen.get(key)
        if hit is not None and hit[0] == sig:
            return hit[1]
        d = tensor_digest(t)
        self._seen[key] = (sig, d)
        return d


def _digests(model: nn.Module, named: Mapping[str, Tensor]) -> dict[str, str]:
    cache = model.__dict__.setdefault("_frozen_digest_cache", DigestCache())
    return {k: cache.digest(k, t) for k, t in named.items()}


def module_sha256(model: nn.Module, module: nn.Module) -> str:
    """SHA-256 of ``module``'s state dict (every tensor, module-relative names; cached on ``model`` until a
    tensor changes, and shared with the lean-checkpoint hashes of the same tensors).

    The identity of a frozen tower's outputs (the frozen-feature cache keys on it)."""
    prefixes = model.__dict__.setdefault("_module_prefixes", {})
    if id(module) not in prefixes:
        name = next((n for n, m in model.named_modules() if m is module), None)
        prefixes[id(module)] = f"module:{id(module)}:" if name is None else (f"{name}." if name else "")
    prefix = prefixes[id(module)]
    digests = _digests(model, {prefix + k: v for k, v in module.state_dict().items()})
    return combined_sha256({k[len(prefix) :]: d for k, d in digests.items()})


# ---------------------------------------------------------------------------------------------- the rule
@dataclass(frozen=True)
class Candidate:
    """A state-dict entry a lean checkpoint may leave out."""

    tensor: Tensor
    root: str  # name of the frozen module it belongs to
    source: BackboneSource


def _module_names(model: nn.Module) -> dict[int, str]:
    return {id(m): n for n, m in model.named_modules(remove_duplicate=False)}


def candidates(model: Detector) -> dict[str, Candidate]:
    """The entries of ``model.state_dict()`` that rules 1-3 of the module docstring allow to leave out."""
    names = _module_names(model)
    owner_root: dict[int, tuple[str, bool | None]] = {}
    for m, rebuildable in zip(model._frozen, model._frozen_rebuildable, strict=True):
        if rebuildable is False:
            continue
        for sub in m.modules():
            owner_root.setdefault(id(sub), (names.get(id(m), "?"), rebuildable))
    if not owner_root:
        return {}
    out: dict[str, Candidate] = {}
    constructor = BackboneSource(
        kind="constructor", arch=model.name or type(model).__name__, init="constructor"
    )
    for key, t in model.state_dict(keep_vars=True).items():
        prefix = key.rpartition(".")[0]
        owner = model.get_submodule(prefix) if prefix else model
        hit = owner_root.get(id(owner))
        if hit is None or (isinstance(t, nn.Parameter) and t.requires_grad):
            continue
        root, rebuildable = hit
        source = backbone_source(owner) or (constructor if rebuildable else None)
        if source is not None:
            out[key] = Candidate(t.detach(), root, source)
    return out


# ---------------------------------------------------------------------------------------------- rebuilding
def constructor_arguments(checkpoint_hparams: Mapping[str, Any]) -> dict[str, Any]:
    """A detector's saved hyper-parameters as constructor arguments."""
    hparams = dict(checkpoint_hparams)
    hparams.pop("_instantiator", None)
    return hparams


@contextlib.contextmanager
def seeded_construction(rng_state: Tensor | None, quiet: bool = True) -> Iterator[None]:
    """Run a construction with the CPU random state ``rng_state`` (when given), leaving every global random
    state (torch CPU, Python, NumPy) as it was; ``quiet`` silences the construction's warnings (a rebuild
    for checking repeats the original construction's)."""
    py, npy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        if rng_state is not None:
            torch.random.set_rng_state(rng_state)
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)


def rebuild(
    cls: type[Detector], hparams: Mapping[str, Any], rng_state: Tensor | None, quiet: bool = True
) -> Detector:
    """``cls(**hparams)`` built with the recorded random state (see :func:`seeded_construction`)."""
    with seeded_construction(rng_state, quiet):
        return cls(**constructor_arguments(hparams))


def _reference_digests(model: Detector, keys: list[str], dtypes: Mapping[str, torch.dtype]) -> dict[str, str]:
    """Digests of ``keys`` in a rebuild of ``model`` (cast to the model's dtypes), computed once per model."""
    memo = model.__dict__.setdefault("_frozen_reference", {})
    missing = [k for k in keys if (k, dtypes[k]) not in memo]
    if missing:
        fresh = rebuild(type(model), model.hparams, model._init_rng_state).state_dict()
        for k in keys:
            if k in fresh:
                memo[(k, dtypes[k])] = tensor_digest(fresh[k].to(dtypes[k]))
            else:
                memo[(k, dtypes[k])] = None
        del fresh
    return {k: memo[(k, dtypes[k])] for k in keys}


# ---------------------------------------------------------------------------------------------- save / load
def slim_checkpoint(model: Detector, checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """Leave the rebuildable frozen tensors out of ``checkpoint["state_dict"]`` (in place) and record their
    identity under :data:`LEAN_KEY`. Returns that section (``None``: nothing could be left out)."""
    state = checkpoint.get("state_dict")
    found = candidates(model)
    if not state or not found:
        return None
    found = {k: c for k, c in found.items() if k in state}
    dtypes = {k: c.tensor.dtype for k, c in found.items()}
    current = _digests(model, {k: c.tensor for k, c in found.items()})
    try:
        reference = _reference_digests(model, sorted(found), dtypes)
    except Exception as e:  # a constructor that cannot run again here: save everything, say why once
        if not model.__dict__.get("_lean_warned"):
            warnings.warn(
                f"{model.name}: saving full checkpoints, the detector could not be rebuilt to check its frozen "
                f"backbone ({type(e).__name__}: {e})",
                stacklevel=2,
            )
            model.__dict__["_lean_warned"] = True
        return None
    same = sorted(k for k in found if reference[k] is not None and reference[k] == current[k])
    if not same:
        return None
    roots: dict[tuple[str, BackboneSource], list[str]] = {}
    for k in same:
        roots.setdefault((found[k].root, found[k].source), []).append(k)
    section = {
        "format": LEAN_FORMAT,
        "sha256": combined_sha256({k: current[k] for k in same}),
        "keys": same,
        "dtypes": {k: str(dtypes[k]).removeprefix("torch.") for k in same},
        "sources": [
            {
                "module": root,
                **source.to_dict(),
                "tensors": len(keys),
                "sha256": combined_sha256({k: current[k] for k in keys}),
            }
            for (root, source), keys in sorted(roots.items(), key=lambda kv: kv[0][0])
        ],
        "init_rng_state": model._init_rng_state.clone(),
    }
    for k in same:
        del state[k]
    checkpoint[LEAN_KEY] = section
    return section


def is_lean(checkpoint: Mapping[str, Any]) -> bool:
    """Whether ``checkpoint`` is lean (its frozen backbones stored by reference)."""
    return bool(checkpoint.get(LEAN_KEY))


def describe_sources(section: Mapping[str, Any]) -> str:
    """The recorded backbone sources of a lean checkpoint's section, in words."""
    parts = []
    for s in section.get("sources", []):
        src = BackboneSource(**{k: s.get(k) for k in ("kind", "arch", "pretrained", "weights_file", "init")})
        parts.append(f"{s.get('module')}: {src.describe()}")
    return "; ".join(parts) or "(no source recorded)"


def restore_frozen(model: Detector, checkpoint: dict[str, Any], where: str = "checkpoint") -> None:
    """Fill a lean checkpoint's omitted tensors from ``model`` (built from the same source), after checking
    that they hash to the recorded SHA-256. A full checkpoint is left as it is.

    Raises:
        FrozenBackboneMismatch: the model's backbone differs (the message names both hashes).
    """
    section = checkpoint.get(LEAN_KEY)
    if not section:
        return
    if int(section.get("format", 0)) > LEAN_FORMAT:
        raise ValueError(
            f"{where}: lean checkpoint format {section.get('format')} is newer than this code's ({LEAN_FORMAT})"
        )
    keys = list(section["keys"])
    own = model.state_dict()
    absent = [k for k in keys if k not in own]
    if absent:
        raise FrozenBackboneMismatch(
            f"{where}: the checkpoint's frozen backbone has tensors this {model.name} has not "
            f"({len(absent)}, e.g. {absent[:3]}): another architecture; backbone {describe_sources(section)}"
        )
    dtypes = {k: getattr(torch, section["dtypes"][k]) for k in keys}
    filled = {k: own[k].to(dtypes[k]) for k in keys}
    got = combined_sha256(_digests(model, filled))
    want = section["sha256"]
    state = section.get("init_rng_state")
    if got != want and state is not None and not torch.equal(state, model._init_rng_state):
        # The model was built under another random state (e.g. Trainer.test(model, ckpt_path=...) on a model
        # made elsewhere): rebuild the detector as the checkpoint recorded it and take its tensors.
        fresh = rebuild(type(model), model.hparams, state).state_dict()
        filled = {k: fresh[k].to(dtypes[k]) for k in keys if k in fresh}
        got = combined_sha256({k: tensor_digest(t) for k, t in filled.items()})
    if got != want:
        raise FrozenBackboneMismatch(
            f"{where}: refusing to load: its frozen backbone ({describe_sources(section)}) has sha256 {want}, "
            f"the backbone rebuilt here has sha256 {got}. A lean checkpoint stores the frozen backbone by "
            "reference, so it loads only where the same backbone is rebuilt: the same pretrained weights (hub "
            "tag or weights file) or, for a random initialisation, the same code; export a self-contained "
            "checkpoint where it loads (python -m detectors.export --full CKPT OUT)"
        )
    checkpoint["state_dict"] = {**checkpoint["state_dict"], **filled}


def lean_summary(checkpoint: Mapping[str, Any]) -> str:
    """One line on what a checkpoint holds (for the export CLI)."""
    section = checkpoint.get(LEAN_KEY)
    if not section:
        return "full checkpoint (every tensor)"
    return (
        f"lean checkpoint: {len(section['keys'])} frozen tensors by reference ({describe_sources(section)}; "
        f"sha256 {section['sha256'][:16]})"
    )

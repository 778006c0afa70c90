"""The one detector interface (design card, "Contracts / Detector").

A detector subclasses :class:`Detector` and writes only

* ``__init__`` (build the network; call ``super().__init__(**recipe_overrides)`` first and set
  ``self.data_spec``; a detector whose released code differs from its paper also takes
  ``reference: str = "paper"``, passes it on as ``super().__init__(reference=reference, **recipe)`` and
  declares ``released_recipe`` / ``reference_arguments``, see :mod:`detectors.settings`),
* ``forward(batch) -> DetectorOutput`` (one fake-logit per image, shape ``[B]``, plus a typed ``aux``
  record: :class:`DetectorAux`, or a subclass holding the tensors the detector's own loss reads),
* optionally ``loss(batch, out) -> dict`` with a ``"loss"`` key when it needs more than binary
  cross-entropy; every other key is logged as a loss term;
* optionally ``param_groups()`` (optimiser groups with their own ``lr`` / ``weight_decay``),
  ``upgrade_checkpoint`` (read checkpoints of an earlier layout) and ``converters`` (load checkpoints
  released by other code bases, see :mod:`detectors.convert`).

Constructor arguments have concrete defaults in the signature: :meth:`Detector.resolve_settings` reads
them (with the class's ``default_recipe``) to tell what a set of overrides builds without building it.

The base class owns everything else: the training/validation/test/predict steps, logging, the validation
AUC used for checkpoint selection, optimiser and scheduler construction from the :class:`Recipe` and
frozen sub-modules. ``test_step`` returns the probabilities of fake ``[B]``; turning them into stored rows
(ids, evaluation set, gathering across ranks) is the job of a callback (the runner's
``benchmark.runner.score_writer.ScoreWriter``), not of the module. ``predict_step`` returns a
:class:`ScoredBatch` (ids, probabilities, the inference maps of ``aux``), which ``benchmark.predict``
renders.

A detector that thinks in two-way softmax logits ``(l_real, l_fake)`` returns ``l_fake - l_real``: its
sigmoid equals ``softmax[:, 1]``, so probabilities match the paper's.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import BinaryAUROC

from datamodules.batch import Batch
from datamodules.spec import DataSpec
from detectors.recipe import Recipe
from detectors.settings import PAPER, REFERENCES, DetectorSettings, UnknownSettingError

if TYPE_CHECKING:
    from detectors.convert import Conversion
    from detectors.frozen_cache import FrozenFeatureCache


@dataclass
class DetectorAux:
    """What a detector shows beside its logit: typed maps every consumer can render (``None`` = absent).

    A detector whose ``loss`` needs more of its forward pass subclasses this record with those fields
    (``SFAMAux``, ``ForensicsAdapterAux``, ``UCFAux``); :meth:`inference` keeps only the fields declared
    here, so nothing outside the detector depends on its training internals.
    """

    #: ``[B, G, G]`` probability of fake per ViT patch (SFAM's patch alignment)
    patch_fakeness: Tensor | None = None
    #: ``[B, R]`` probability that each region is forged, in ``datamodules.media.regions.REGIONS`` order
    region_scores: Tensor | None = None
    #: ``[B, 1, S, S]`` predicted blending-boundary map (Forensics Adapter)
    boundary: Tensor | None = None

    def inference(self) -> DetectorAux:
        """The maps declared on :class:`DetectorAux`, detached, float32, on the CPU (subclass fields dropped)."""
        return DetectorAux(
            **{
                f.name: None if (v := getattr(self, f.name)) is None else v.detach().float().cpu()
                for f in fields(DetectorAux)
            }
        )

    def sample(self, i: int) -> DetectorAux:
        """The maps of sample ``i`` of the batch (the batch dimension dropped)."""
        return DetectorAux(
            **{f.name: None if (v := getattr(self, f.name)) is None else v[i] for f in fields(DetectorAux)}
        )


@dataclass
class DetectorOutput:
    """What ``forward`` returns: ``logits`` ``[B]`` for "fake" and the typed auxiliary record."""

    logits: Tensor
    aux: DetectorAux = field(default_factory=DetectorAux)

    def __post_init__(self) -> None:
        if not isinstance(self.aux, DetectorAux):
            raise TypeError(
                f"DetectorOutput.aux must be a DetectorAux (or a subclass with the detector's own fields), "
                f"got {type(self.aux).__name__}"
            )


@dataclass
class ScoredBatch:
    """What ``predict_step`` returns: per-sample ids, probability of fake and inference maps (CPU)."""

    sample_id: list[str]
    video_id: list[str]
    score: Tensor  # [B] float32, sigmoid of the fake-logit
    aux: DetectorAux  # DetectorAux.inference() of the forward pass


class DataSpecError(ValueError):
    """A batch (or a datamodule) does not provide what the detector's DataSpec asks for."""


class Detector(L.LightningModule):
    """Base class of every detector. See the module docstring for the contract."""

    #: registry name, set by :func:`detectors.registry.register_detector`.
    name: ClassVar[str] = ""
    #: the paper's training recipe; instances may override single settings.
    default_recipe: ClassVar[Recipe] = Recipe()
    #: the recipe the released code effectively trains with (``reference="released"``), if it differs
    released_recipe: ClassVar[Recipe | None] = None
    #: constructor arguments a reference sets (``{"released": {"arch": ...}}``): defaults that
    #: ``resolve_settings`` reports and ``create_detector`` passes; explicit overrides win
    reference_arguments: ClassVar[dict[str, dict[str, Any]]] = {}
    #: overrides that build a tiny configuration for tests (never the default).
    tiny_config: ClassVar[dict[str, Any]] = {}
    #: checkpoint formats of other code bases this detector loads, by source name (``deepfakebench``)
    converters: ClassVar[dict[str, Conversion]] = {}
    #: datamodule settings the method itself needs (SBI: reals + self-blends only); a grid's data section wins
    data_defaults: ClassVar[dict[str, Any]] = {}
    #: checkpoints store rebuildable frozen backbones by reference (:mod:`detectors.frozen_backbone`);
    #: a class default that one instance may override (``benchmark.perf.checkpoints`` writes the full format)
    lean_checkpoints: bool = True

    def __init__(self, reference: str = PAPER, **recipe_overrides: Any) -> None:
        # The CPU random state before anything is built: a lean checkpoint records it, so a frozen backbone
        # at random initialisation is rebuilt with the same numbers (detectors.frozen_backbone).
        init_rng_state = torch.random.get_rng_state()
        super().__init__()
        self._init_rng_state: Tensor = init_rng_state
        self.reference = reference
        self.recipe: Recipe = type(self).recipe_for(reference).with_overrides(**recipe_overrides)
        self.data_spec: DataSpec = DataSpec()
        self.pretrained_loaded: bool = False  # set True by subclasses that loaded real weights
        self._frozen: list[nn.Module] = []
        self._frozen_rebuildable: list[bool | None] = []
        self.frozen_cache: FrozenFeatureCache | None = None  # see attach_frozen_cache
        self.frozen_cache_train: bool = False
        self.val_auc = BinaryAUROC()
        # Collects the init arguments of the whole subclass chain (Lightning walks the __init__ frames).
        self.save_hyperparameters()
        if "reference" not in type(self).constructor_arguments()[0]:
            self.hparams.pop("reference", None)  # this base's own argument: not the detector's to replay

    @classmethod
    def references(cls) -> tuple[str, ...]:
        """The references this detector can be built as (``("paper",)`` without a released recipe)."""
        return REFERENCES if cls.released_recipe is not None else (PAPER,)

    @classmethod
    def recipe_for(cls, reference: str) -> Recipe:
        """The base recipe of ``reference``: ``default_recipe`` (paper) or ``released_recipe``."""
        known = cls.references()
        if reference not in known:
            raise ValueError(
                f"{cls.name or cls.__name__}: unknown reference {reference!r}; this detector has {list(known)}"
            )
        return cls.default_recipe if reference == PAPER else cls.released_recipe  # type: ignore[return-value]

    # ------------------------------------------------------------------ settings
    @classmethod
    def constructor_arguments(cls) -> tuple[set[str], dict[str, Any]]:
        """Names of the constructor arguments (over the class chain) and their signature defaults.

        The most derived class's default wins (a registered variant may change a parent's default).
        """
        names: set[str] = set()
        defaults: dict[str, Any] = {}
        for klass in cls.__mro__:
            if not (isinstance(klass, type) and issubclass(klass, Detector)) or klass is Detector:
                continue
            if "__init__" not in vars(klass):
                continue
            for n, p in inspect.signature(klass.__init__).parameters.items():
                if n == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) or n in names:
                    continue
                names.add(n)
                if p.default is not p.empty:
                    defaults[n] = p.default
        return names, defaults

    @classmethod
    def resolve_settings(cls, **overrides: Any) -> DetectorSettings:
        """What ``create_detector(name, **overrides)`` builds: the recipe (``default_recipe`` with the recipe
        overrides) and the constructor arguments (signature defaults with the other overrides).

        Raises :class:`UnknownSettingError` naming every key that is neither, the detector and the accepted keys.
        """
        name = cls.name or cls.__name__
        recipe_keys = {f.name for f in fields(Recipe)}
        arch_keys, defaults = cls.constructor_arguments()
        shadowing = sorted(arch_keys & recipe_keys)
        if shadowing:
            raise TypeError(
                f"{name}: constructor argument(s) {shadowing} shadow Recipe fields of the same name"
            )
        unknown = sorted(set(overrides) - recipe_keys - arch_keys)
        if unknown:
            raise UnknownSettingError(
                f"setting(s) {unknown} are not arguments of {name}; "
                f"accepted: {', '.join(sorted(arch_keys | recipe_keys))}"
            )
        recipe_over = {k: v for k, v in overrides.items() if k in recipe_keys}
        reference = overrides.get("reference", defaults.get("reference", PAPER))
        base = cls.recipe_for(reference)
        return DetectorSettings(
            detector=name,
            paper_recipe=cls.default_recipe,
            recipe=base.with_overrides(**recipe_over),
            arch_defaults={**defaults, **cls.reference_arguments.get(reference, {})},
            recipe_overrides=recipe_over,
            arch_overrides={k: v for k, v in overrides.items() if k not in recipe_keys},
            reference=reference,
            reference_recipe=base,
        )

    @classmethod
    def build_arguments(cls, **overrides: Any) -> dict[str, Any]:
        """The keyword arguments ``create_detector`` calls the class with: the reference's
        ``reference_arguments`` under the overrides (no validation here: the constructor does it)."""
        _, defaults = cls.constructor_arguments()
        reference = overrides.get("reference", defaults.get("reference", PAPER))
        return {**cls.reference_arguments.get(reference, {}), **overrides}

    # ------------------------------------------------------------------ subclass API
    def forward(self, batch: Batch) -> DetectorOutput:  # pragma: no cover - abstract
        """The detector's logits (and auxiliary outputs) for ``batch``; each detector implements it."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward(batch)")

    def loss(self, batch: Batch, out: DetectorOutput) -> dict[str, Tensor]:
        """Binary cross-entropy on the fake-logit; override for multi-term losses."""
        return {"loss": F.binary_cross_entropy_with_logits(out.logits, batch.label.float())}

    # ------------------------------------------------------------------ frozen parts
    def freeze_module(self, module: nn.Module, rebuildable: bool | None = None) -> nn.Module:
        """Freeze ``module``: no gradients, always in eval mode, excluded from the optimiser.

        ``rebuildable`` says whether lean checkpoints may store its frozen tensors by reference
        (:mod:`detectors.frozen_backbone`): ``None`` (default) for the parts built by a backbone builder
        that tags its modules (``create_clip``, ``create_timm_backbone``), ``True`` for every frozen tensor
        of ``module`` (the constructor re-creates them from its arguments), ``False`` never. Either way a
        tensor is left out only when a rebuild reproduces it bit for bit. Parameters unfrozen afterwards
        (``requires_grad_(True)``) are trained and saved.
        """
        module.requires_grad_(False)
        module.eval()
        self._frozen.append(module)
        self._frozen_rebuildable.append(rebuildable)
        return module

    def train(self, mode: bool = True) -> Detector:
        """Set training mode, keeping the frozen modules in eval mode (their dropout and norms stay fixed)."""
        super().train(mode)
        for m in self._frozen:
            m.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters the optimiser updates (those with ``requires_grad``)."""
        return [p for p in self.parameters() if p.requires_grad]

    def num_trainable_parameters(self) -> int:
        """The number of trainable parameter values."""
        return sum(p.numel() for p in self.trainable_parameters())

    # ------------------------------------------------------------------ frozen forward (cache hook)
    def frozen_scope(self) -> dict[str, Any] | None:
        """What identifies :meth:`frozen_features` besides the input: the frozen tower's state-dict SHA-256
        (:func:`detectors.frozen_backbone.module_sha256`) and what is read from it. ``None`` (default): this
        detector's forward does not split into a frozen part and the rest, nothing is cached."""
        return None

    def frozen_features(self, batch: Batch) -> dict[str, Tensor]:
        """The frozen backbone's outputs that the rest of ``forward`` reads (tensors, computed without
        gradients). With :meth:`frozen_scope` set, ``forward(batch)`` must equal
        ``forward_from_frozen(batch, frozen_features(batch))`` bit for bit."""
        raise NotImplementedError(
            f"{type(self).__name__} has no separable frozen forward (frozen_scope is None)"
        )

    def forward_from_frozen(self, batch: Batch, feats: dict[str, Tensor]) -> DetectorOutput:
        """``forward`` from precomputed :meth:`frozen_features` (possibly read from the cache)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no separable frozen forward (frozen_scope is None)"
        )

    def attach_frozen_cache(self, cache: FrozenFeatureCache | None, train: bool = False) -> str:
        """Use ``cache`` for the frozen forward of evaluation batches (validation, test, predict) and, with
        ``train`` (only sound without augmentation), of training batches. Returns the mode in effect:
        ``"off"`` (no cache, or a detector without a separable frozen forward), ``"eval"`` or
        ``"train+eval"``. Only batches whose every sample has an ``input_key`` are cached."""
        usable = cache is not None and type(self).frozen_scope is not Detector.frozen_scope
        self.frozen_cache = cache if usable else None
        self.frozen_cache_train = usable and train
        return "off" if not usable else ("train+eval" if train else "eval")

    def forward_batch(self, batch: Batch) -> DetectorOutput:
        """What every step runs: ``self(batch)``, or the cached frozen forward when a cache is attached
        (:meth:`attach_frozen_cache`) and the batch has input keys."""
        cache, keys = self.frozen_cache, batch.input_key
        if cache is None or not keys or not all(keys) or (self.training and not self.frozen_cache_train):
            return self(batch)
        scope = self.frozen_scope()
        if scope is None:
            return self(batch)
        feats = cache.features(scope, keys, lambda: self.frozen_features(batch), batch.image.device)
        return self.forward_from_frozen(batch, feats)

    # ------------------------------------------------------------------ checks
    def check_batch(self, batch: Batch, training: bool) -> None:
        """Refuse a batch that lacks what ``data_spec`` asks for, with a message naming the field."""
        spec = self.data_spec
        wants = {
            "region_masks": spec.region_masks,
            "forgery_mask": spec.forgery_masks and training,
            "method_id": spec.method_ids and training,
        }
        for name, needed in wants.items():
            if needed and getattr(batch, name) is None:
                raise DataSpecError(
                    f"{self.name or type(self).__name__} needs batch.{name} (DataSpec) but the batch has none; "
                    "build the datamodule from this detector's data_spec"
                )
        if batch.image.shape[-1] != spec.input_size or batch.image.shape[-2] != spec.input_size:
            raise DataSpecError(
                f"{self.name or type(self).__name__} expects {spec.input_size}px images, got {tuple(batch.image.shape)}"
            )
        if training and spec.paired and not batch.is_paired():
            raise DataSpecError(
                f"{self.name or type(self).__name__} trains on paired batches [reals; fakes] of equal size "
                f"(DataSpec.paired), got labels {batch.label.tolist()}"
            )

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """One training step: check the batch, forward, the detector's loss; every term is logged."""
        self.check_batch(batch, training=True)
        out = self.forward_batch(batch)
        losses = self.loss(batch, out)
        if "loss" not in losses:
            raise KeyError(
                f"{type(self).__name__}.loss() must return a dict with a 'loss' key, got {list(losses)}"
            )
        n = len(batch)
        for k, v in losses.items():
            self.log(
                f"train/{k}", v.detach(), batch_size=n, prog_bar=(k == "loss"), on_step=True, on_epoch=True
            )
        return losses["loss"]

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """One validation step: the BCE loss is logged and the batch added to the epoch's AUC."""
        self.check_batch(batch, training=False)
        out = self.forward_batch(batch)
        loss = F.binary_cross_entropy_with_logits(out.logits, batch.label.float())
        self.val_auc.update(torch.sigmoid(out.logits.float()), batch.label)
        self.log("val/loss", loss, batch_size=len(batch), on_epoch=True, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        """Log the epoch's validation AUC (the checkpoint monitor) and reset it."""
        self.log("val/auc", self.val_auc.compute(), prog_bar=True)
        self.val_auc.reset()

    @staticmethod
    def probabilities(out: DetectorOutput) -> Tensor:
        """Probability of fake ``[B]`` (float32, detached): the sigmoid of the fake-logit."""
        return torch.sigmoid(out.logits.detach().float())

    def test_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> Tensor:
        """The probabilities of fake ``[B]``; a callback (``ScoreWriter``) turns them into rows."""
        self.check_batch(batch, training=False)
        return self.probabilities(self.forward_batch(batch))

    def predict_step(self, batch: Batch, batch_idx: int = 0, dataloader_idx: int = 0) -> ScoredBatch:
        """Ids, probabilities of fake and the inference maps of ``aux``, on the CPU."""
        self.check_batch(batch, training=False)
        out = self.forward_batch(batch)
        return ScoredBatch(
            sample_id=list(batch.sample_id),
            video_id=list(batch.video_id),
            score=self.probabilities(out).cpu(),
            aux=out.aux.inference(),
        )

    # ------------------------------------------------------------------ optimisation
    def param_groups(self) -> list[dict[str, Any]]:
        """The optimiser's parameter groups: ``[{"params": [...], ...}]``.

        A group may set its own optimiser options (``lr``, ``weight_decay``, ...); options it leaves out
        come from the recipe. Every trainable parameter must be in exactly one group and no frozen one in
        any. Default: one group of all trainable parameters.
        """
        return [{"params": self.trainable_parameters()}]

    def _checked_param_groups(self) -> list[dict[str, Any]]:
        me = type(self).__name__
        trainable = {id(p): n for n, p in self.named_parameters() if p.requires_grad}
        if not trainable:
            raise RuntimeError(f"{me} has no trainable parameters")
        groups, seen = [], set()
        for i, group in enumerate(self.param_groups()):
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError(f"{me}.param_groups(): group {i} must be a dict with 'params', got {group!r}")
            params = list(group["params"])
            if not params:
                raise ValueError(f"{me}.param_groups(): group {i} is empty")
            foreign = [j for j, p in enumerate(params) if id(p) not in trainable]
            if foreign:
                raise ValueError(
                    f"{me}.param_groups(): group {i} holds parameters {foreign[:5]} (by position) that are "
                    "frozen or not this detector's"
                )
            seen |= {id(p) for p in params}
            groups.append({**group, "params": params})
        missing = [n for pid, n in trainable.items() if pid not in seen]
        if missing:
            raise ValueError(f"{me}.param_groups() leaves trainable parameters out: {missing[:5]}")
        return groups

    def configure_optimizers(self) -> Any:
        """The recipe's optimiser over the checked parameter groups, with its scheduler and warm-up if any."""
        r = self.recipe
        groups = self._checked_param_groups()
        opt: torch.optim.Optimizer
        if r.optimizer == "adam":
            opt = torch.optim.Adam(groups, lr=r.lr, betas=r.betas, weight_decay=r.weight_decay)
        elif r.optimizer == "adamw":
            opt = torch.optim.AdamW(groups, lr=r.lr, betas=r.betas, weight_decay=r.weight_decay)
        else:
            opt = torch.optim.SGD(groups, lr=r.lr, momentum=r.momentum, weight_decay=r.weight_decay)
        if r.scheduler is None and r.warmup_steps == 0:
            return opt
        if r.scheduler == "step":
            step = torch.optim.lr_scheduler.StepLR(opt, step_size=r.step_size, gamma=r.gamma)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": step, "interval": "epoch"}}
        total = max(1, int(self.trainer.estimated_stepping_batches)) if self._trainer is not None else 1
        warm = min(r.warmup_steps, total - 1) if total > 1 else 0

        def factor(step: int) -> float:
            if warm and step < warm:
                return (step + 1) / warm
            if r.scheduler != "cosine":
                return 1.0
            progress = min(1.0, (step - warm) / max(1, total - warm))
            return 0.5 * (1.0 + torch.cos(torch.tensor(progress * torch.pi)).item())

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Name the detector and, when ``lean_checkpoints``, leave the rebuildable frozen backbone out of
        the state dict (stored by reference: source and SHA-256, see :mod:`detectors.frozen_backbone`)."""
        from detectors.frozen_backbone import slim_checkpoint

        checkpoint["detector_name"] = self.name
        checkpoint["pretrained_loaded"] = bool(self.pretrained_loaded)
        if self.lean_checkpoints:
            slim_checkpoint(self, checkpoint)

    @classmethod
    def upgrade_checkpoint(cls, checkpoint: dict[str, Any]) -> None:
        """Bring a checkpoint written by an earlier version of this detector up to date, in place
        (``hyper_parameters``, ``state_dict``). Called by :func:`detectors.load_detector` and by Lightning
        (resume, ``Trainer.test(ckpt_path=...)``) before the weights are loaded. Default: nothing to do.
        In a lean checkpoint the frozen backbone's names are listed in ``checkpoint["frozen_backbone"]
        ["keys"]`` (not in ``state_dict``): an upgrade that renames them renames them there too."""

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Upgrade, then fill a lean checkpoint's frozen backbone from this model's own (hash-checked)."""
        from detectors.frozen_backbone import restore_frozen

        type(self).upgrade_checkpoint(checkpoint)
        restore_frozen(self, checkpoint, where=f"{self.name} checkpoint")

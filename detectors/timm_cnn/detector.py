"""One timm CNN detector class; ``resnet34``, ``xception`` and ``efficientnet_b4`` are its registered variants
(:mod:`detectors.timm_cnn.variants`), each a paper's architecture, input size, normalisation and recipe."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datamodules.batch import Batch
from datamodules.spec import IMAGENET_MEAN, IMAGENET_STD, DataSpec
from detectors.base import Detector, DetectorOutput
from detectors.timm_cnn.blocks import (
    BackboneWithHead,
    FakeLogitHead,
    create_feature_backbone,
    make_deepfakebench_compatible,
    pretrained_norm,
    set_drop_path,
)

#: ``mean=``/``std=`` value meaning "the statistics the timm pretrained weights of ``arch`` were trained with"
PRETRAINED_NORM = "pretrained"

Norm = tuple[float, float, float] | str


class TimmCNN(Detector):
    """A timm CNN feature extractor and our fake-logit head (:class:`~detectors.timm_cnn.blocks.FakeLogitHead`),
    fine-tuned end to end with binary cross-entropy.

    State dict: ``net.backbone.*`` (the timm model without classifier) and ``net.head.fc.*``.

    Args:
        arch: timm architecture name.
        pretrained: try to load the timm/hub ImageNet weights (random init with a warning when offline).
        weights_path: a local ImageNet weights file (safetensors or torch), preferred over the hub; its
            classifier is dropped and Cadene 2-D pointwise weights are reshaped.
        input_size: square input side.
        drop_rate: dropout before the head's linear layer (really applied, see the blocks module).
        mean, std: input normalisation, or ``"pretrained"`` for the statistics of ``arch``'s pretrained
            weights (timm's pretrained config).
        drop_path_rate: stochastic depth over the blocks (timm EfficientNet backbones only; 0 = off).
        deepfakebench_compat: rebuild DeepfakeBench's EfficientNet exactly (fresh unpadded stem, static
            paddings for 380 px, batch-norm eps 1e-3 / momentum 0.01); needs a ``tf_efficientnet_*`` arch.
            ``reference="released"`` sets it for ``efficientnet_b4``.
        reference: ``"paper"`` (default) or ``"released"``: the variant's paper recipe or what DeepfakeBench's
            released training code effectively runs (``released_recipe``, with the variant's
            ``reference_arguments``); see :mod:`detectors.settings`.
        **recipe: overrides of the reference's recipe (``lr``, ``epochs``, ...).
    """

    def __init__(
        self,
        arch: str = "resnet34",
        pretrained: bool = True,
        weights_path: str | Path | None = None,
        input_size: int = 256,
        drop_rate: float = 0.0,
        mean: Norm = IMAGENET_MEAN,
        std: Norm = IMAGENET_STD,
        drop_path_rate: float = 0.0,
        deepfakebench_compat: bool = False,
        reference: str = "paper",
        **recipe: Any,
    ) -> None:
        super().__init__(reference=reference, **recipe)
        if deepfakebench_compat and not arch.startswith("tf_efficientnet"):
            raise ValueError(
                f"deepfakebench_compat=True needs a TensorFlow-padded timm arch (tf_efficientnet_b4), got {arch!r}"
            )
        self.arch = arch
        backbone, self.pretrained_loaded = create_feature_backbone(arch, pretrained, weights_path)
        self.net = BackboneWithHead(backbone, FakeLogitHead(backbone.num_features, drop_rate))
        if deepfakebench_compat:
            make_deepfakebench_compatible(self.net.backbone)
        set_drop_path(self.net.backbone, drop_path_rate)
        self.data_spec = DataSpec(
            input_size=input_size, mean=_norm(mean, arch, "mean"), std=_norm(std, arch, "std")
        )

    @classmethod
    def variant(cls, **defaults: Any) -> Callable[..., None]:
        """The ``__init__`` of a registered variant: this constructor with other signature defaults.

        Its ``inspect.signature`` (and so :meth:`Detector.resolve_settings`) lists every constructor argument
        of the class chain with the variant's defaults, also when ``cls.__init__`` forwards ``**kwargs`` to
        its parent (a ``functools.partialmethod`` would hide those).
        """
        names, current = cls.constructor_arguments()
        unknown = sorted(set(defaults) - names)
        if unknown:
            raise TypeError(f"{cls.__name__} has no argument(s) {unknown}; arguments: {sorted(names)}")
        base_init = cls.__init__

        def __init__(self: TimmCNN, **kwargs: Any) -> None:
            base_init(self, **{**defaults, **kwargs})

        order: list[str] = []
        for klass in cls.__mro__:  # most derived first: its arguments, then its parents'
            if "__init__" in vars(klass) and isinstance(klass, type) and issubclass(klass, TimmCNN):
                order += [n for n in inspect.signature(klass.__init__).parameters if n in names]
        params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        params += [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=defaults.get(n, current[n]))
            for n in dict.fromkeys(order)
        ]
        params.append(inspect.Parameter("recipe", inspect.Parameter.VAR_KEYWORD))
        __init__.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        return __init__

    def forward(self, batch: Batch) -> DetectorOutput:
        """The network's fake logit per image."""
        return DetectorOutput(logits=self.net(batch.image).squeeze(-1))

    @classmethod
    def upgrade_checkpoint(cls, checkpoint: dict[str, Any]) -> None:
        """Read checkpoints of the earlier class layout.

        * Hyper-parameters ``arch``/``input_size``/``mean``/``std`` saved as ``None`` meant "the class
          default": dropped, so the signature default applies.
        * ``resnet34`` used timm's own classifier as ``net``: ``net.fc.*`` becomes ``net.head.fc.*`` and
          every other ``net.*`` key ``net.backbone.*`` (same tensors, same parameter count).
        """
        hparams = checkpoint.get("hyper_parameters")
        if isinstance(hparams, dict):
            for key in ("arch", "input_size", "mean", "std"):
                if key in hparams and hparams[key] is None:
                    del hparams[key]
        state = checkpoint.get("state_dict")
        if state and not any(k.startswith(("net.backbone.", "net.head.")) for k in state):
            checkpoint["state_dict"] = {_current_key(k): v for k, v in state.items()}


def _current_key(key: str) -> str:
    if key.startswith("net.fc."):
        return "net.head.fc." + key[len("net.fc.") :]
    if key.startswith("net."):
        return "net.backbone." + key[len("net.") :]
    return key


def _norm(value: Norm, arch: str, which: str) -> tuple[float, ...]:
    if isinstance(value, str):
        if value != PRETRAINED_NORM:
            raise ValueError(f"{which} must be 3 floats or {PRETRAINED_NORM!r}, got {value!r}")
        mean, std = pretrained_norm(arch)
        return mean if which == "mean" else std
    return tuple(float(v) for v in value)

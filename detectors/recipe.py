"""Training recipes: the optimiser, schedule and data settings (augmentation included) a paper trained with.

Each detector class carries its paper's recipe as ``default_recipe`` and, when its released code
effectively trains otherwise, that code's recipe as ``released_recipe`` (chosen by the constructor
argument ``reference="released"``, see :meth:`detectors.base.Detector.resolve_settings`); overrides are
explicit keyword arguments (``create_detector("xception", lr=1e-4)``, ``augmentation={"blur_prob": 0.1}``)
and are recorded in the cell record, so a leaderboard can print every deviation from the reference.

:func:`deepfakebench_augmentation` turns a transcribed DeepfakeBench ``data_aug`` block into the
:class:`~datamodules.augmentation.Augmentation` its ``init_data_aug_method`` builds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from datamodules.augmentation import Augmentation

#: Recipe fields that describe, not define, an experiment: left out of :meth:`Recipe.experiment_dict`
#: (what a cell id hashes) and of :meth:`Recipe.diff`.
NOT_EXPERIMENTAL = ("source",)


@dataclass(frozen=True)
class Recipe:
    """Optimisation and data-loading settings of one training run.

    Attributes:
        optimizer: ``adam``, ``adamw`` or ``sgd``.
        lr, weight_decay, betas, momentum: optimiser parameters (``betas`` for Adam/AdamW, ``momentum`` for SGD).
        scheduler: ``None``, ``cosine`` (per step, to zero over the whole run) or ``step`` (per epoch).
        step_size, gamma: StepLR parameters.
        warmup_steps: linear warm-up before the schedule (0 = none).
        epochs: training epochs.
        batch_size: training images per step (for paired batches: reals + fakes).
        eval_batch_size: images per validation/test step.
        frames_train, frames_test: frames per video used in training / evaluation.
        augment: whether the training pipeline augments.
        augmentation: what it does when it does (:class:`~datamodules.augmentation.Augmentation`); an
            override may give a mapping of some of its settings (``{"blur_prob": 0.1}``).
        source: where these numbers come from (paper, table, released config); a citation, not part of
            the experiment (excluded from cell ids).
    """

    optimizer: str = "adam"
    lr: float = 2e-4
    weight_decay: float = 5e-4
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    scheduler: str | None = None
    step_size: int = 10
    gamma: float = 0.1
    warmup_steps: int = 0
    epochs: int = 10
    batch_size: int = 32
    eval_batch_size: int = 64
    frames_train: int = 32
    frames_test: int = 32
    augment: bool = True
    augmentation: Augmentation = field(default_factory=Augmentation)
    source: str = ""

    def __post_init__(self) -> None:
        if self.optimizer not in {"adam", "adamw", "sgd"}:
            raise ValueError(f"Recipe.optimizer must be adam, adamw or sgd, got {self.optimizer!r}")
        if self.scheduler not in {None, "cosine", "step"}:
            raise ValueError(f"Recipe.scheduler must be None, 'cosine' or 'step', got {self.scheduler!r}")
        if self.lr <= 0 or self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"Recipe needs lr > 0, epochs >= 1, batch_size >= 1: {self}")

    def with_overrides(self, **overrides: Any) -> Recipe:
        """A copy with ``overrides`` applied (``augmentation`` may be a mapping of its own overrides); a
        TypeError naming unknown settings."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown recipe setting(s) {unknown}; known: {sorted(known)}")
        if "betas" in overrides:
            overrides["betas"] = tuple(overrides["betas"])
        aug = overrides.get("augmentation")
        if isinstance(aug, dict):
            overrides["augmentation"] = self.augmentation.with_overrides(**aug)
        elif aug is not None and not isinstance(aug, Augmentation):
            raise TypeError(
                f"Recipe.augmentation must be an Augmentation or a mapping, got {type(aug).__name__}"
            )
        return replace(self, **overrides)

    def diff(self, other: Recipe) -> dict[str, tuple[Any, Any]]:
        """Settings that differ from ``other`` as ``{name: (other_value, self_value)}``; augmentation
        settings are listed one by one as ``augmentation.<name>``."""
        a, b = _flat(other._settings()), _flat(self._settings())
        return {k: (a[k], b[k]) for k in a if a[k] != b[k]}

    def to_dict(self) -> dict[str, Any]:
        """The recipe as a dict (recorded with each cell)."""
        return asdict(self)

    def _settings(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in NOT_EXPERIMENTAL}

    def experiment_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` without the descriptive fields (:data:`NOT_EXPERIMENTAL`): what a cell id hashes.
        The augmentation is its :meth:`~datamodules.augmentation.Augmentation.experiment_dict` (settings
        added later are left out at their defaults, so earlier cell ids stay the same)."""
        return {**self._settings(), "augmentation": self.augmentation.experiment_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recipe:
        """The recipe :meth:`to_dict` (or its JSON) describes; unknown keys raise. A nested
        ``augmentation`` mapping is read as a whole record (missing settings take the record's defaults)."""
        d = dict(d)
        if isinstance(d.get("augmentation"), dict):
            d["augmentation"] = Augmentation.from_dict(d["augmentation"])
        return cls().with_overrides(**d)


def _flat(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            out[k] = v
    return out


def deepfakebench_augmentation(data_aug: dict[str, Any], **constants: Any) -> Augmentation:
    """The :class:`~datamodules.augmentation.Augmentation` DeepfakeBench's ``init_data_aug_method``
    (``training/dataset/abstract_dataset.py``) builds from a config's ``data_aug`` block.

    ``data_aug`` holds the block's ten keys exactly as the YAML writes them (``flip_prob``, ``rotate_prob``,
    ``rotate_limit``, ``blur_prob``, ``blur_limit``, ``brightness_prob``, ``brightness_limit``,
    ``contrast_limit``, ``quality_lower``, ``quality_upper``); the pipeline's constants (``OneOf`` p 0.5
    over brightness/contrast, ``FancyPCA()``, ``HueSaturationValue()``; ``ImageCompression`` p 0.5;
    ``Rotate``'s reflect-101 border; ``GaussianBlur``'s ``sigma_limit=0``) are the record's defaults;
    ``constants`` may set others (e.g. ``semantics``).
    """
    keys = {
        "flip_prob",
        "rotate_prob",
        "rotate_limit",
        "blur_prob",
        "blur_limit",
        "brightness_prob",
        "brightness_limit",
        "contrast_limit",
        "quality_lower",
        "quality_upper",
    }
    if set(data_aug) != keys:
        raise ValueError(
            f"a DeepfakeBench data_aug block has the keys {sorted(keys)}; got {sorted(data_aug)} "
            f"(missing {sorted(keys - set(data_aug))}, unexpected {sorted(set(data_aug) - keys)})"
        )
    return Augmentation().with_overrides(**data_aug, **constants)


#: DeepfakeBench's shared ``data_aug`` block (``efficientnetb4.yaml``, ``ucf.yaml``, ``resnet34.yaml`` at
#: commit 8a4a7bf; ``xception.yaml`` differs in ``rotate_prob``).
DEEPFAKEBENCH_DATA_AUG: dict[str, Any] = {
    "flip_prob": 0.5,
    "rotate_prob": 0.5,
    "rotate_limit": (-10, 10),
    "blur_prob": 0.5,
    "blur_limit": (3, 7),
    "brightness_prob": 0.5,
    "brightness_limit": (-0.1, 0.1),
    "contrast_limit": (-0.1, 0.1),
    "quality_lower": 40,
    "quality_upper": 100,
}

#: the suite's own pipeline (the parameters it used before recipes carried their augmentation), for detectors
#: whose authors publish none: flip; rotation +-10 degrees with a scale jitter 0.9-1.1 and a zero border; a
#: light blur (p 0.1, kernel 3/5/7, sigma 0.5-3); brightness/contrast +-0.1 or an HSV shift (10/15/10);
#: JPEG 40-100
SUITE_AUGMENTATION = Augmentation(
    flip_prob=0.5,
    rotate_prob=0.5,
    rotate_limit=(-10.0, 10.0),
    scale_limit=(0.9, 1.1),
    border="constant",
    blur_prob=0.1,
    blur_limit=(3, 7),
    blur_sigma=(0.5, 3.0),
    colour_prob=0.5,
    colour_ops=("brightness_contrast", "hsv"),
    brightness_limit=(-0.1, 0.1),
    contrast_limit=(-0.1, 0.1),
    hue_shift_limit=(-10.0, 10.0),
    sat_shift_limit=(-15.0, 15.0),
    val_shift_limit=(-10.0, 10.0),
    jpeg_prob=0.5,
    quality_lower=40,
    quality_upper=100,
)

#: what the released code bases' pinned albumentations (1.1.0, ``install.sh``) computes
RELEASED_SEMANTICS = "albumentations-1.1.0"


def released_variant(recipe: Recipe, n_epochs: int, source: str) -> Recipe:
    """The recipe a DeepfakeBench-style training script effectively runs for a config with ``nEpochs =
    n_epochs``: its loop is ``for epoch in range(start_epoch, nEpochs + 1)``, so ``n_epochs + 1`` epochs,
    and its albumentations 1.1.0 computes the augmentation (``semantics``)."""
    return recipe.with_overrides(
        epochs=n_epochs + 1,
        augmentation=replace(recipe.augmentation, semantics=RELEASED_SEMANTICS),
        source=source,
    )


DEEPFAKEBENCH_CNN = Recipe(
    optimizer="adam",
    lr=2e-4,
    weight_decay=5e-4,
    betas=(0.9, 0.999),
    epochs=10,
    batch_size=32,
    eval_batch_size=32,
    frames_train=32,
    frames_test=32,
    augment=True,
    augmentation=deepfakebench_augmentation(DEEPFAKEBENCH_DATA_AUG),
    source="DeepfakeBench training/config/detector/*.yaml",
)
"""The settings DeepfakeBench's Xception, EfficientNet-B4 and UCF configs share (each detector
overrides ``source`` and whatever its own config changes, its ``data_aug`` block included)."""

"""A timm feature extractor plus OUR one-logit head, shared by the Xception and EfficientNet-B4 detectors.

Why not timm's own classifier: timm's ``legacy_xception.forward_head`` computes ``F.dropout(x)`` and then
discards the result, so its ``drop_rate`` never applies. Owning the head (dropout, then ``Linear(C, 1)``)
makes dropout real for every backbone and gives one state-dict layout (``net.backbone.*``, ``net.head.fc.*``)
that the DeepfakeBench converter targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from detectors.timm_cnn import TimmClassifier
from detectors.weights import create_timm_backbone, strip_prefix

#: classifier weights of ImageNet files (timm, Cadene, lukemelas); never part of a feature extractor.
CLASSIFIER_PREFIXES = ("fc.", "last_linear.", "classifier.", "_fc.", "head.fc.")


class FakeLogitHead(nn.Module):
    """Dropout (really applied in training) then ``Linear(in_features, 1)``: the fake-logit ``[B, 1]``."""

    def __init__(self, in_features: int, drop_rate: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {drop_rate}")
        self.drop = nn.Dropout(drop_rate)
        self.fc = nn.Linear(in_features, 1)

    def forward(self, pooled: Tensor) -> Tensor:
        return self.fc(self.drop(pooled))


class BackboneWithHead(nn.Module):
    """``head(backbone(x))`` where the backbone returns pooled features ``[B, C]``."""

    def __init__(self, backbone: nn.Module, head: FakeLogitHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))


def adapt_imagenet_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Make an ImageNet weights file loadable into a timm feature extractor.

    Strips ``module.``/``model.`` prefixes, drops the classifier (:data:`CLASSIFIER_PREFIXES`) and turns the
    Cadene Xception's 2-D pointwise weights ``[out, in]`` into the 4-D ``[out, in, 1, 1]`` timm uses.
    """
    out = {}
    for k, v in strip_prefix(state).items():
        if k.startswith(CLASSIFIER_PREFIXES):
            continue
        if "pointwise" in k and v.ndim == 2:
            v = v[:, :, None, None]
        out[k] = v
    return out


def create_feature_backbone(
    arch: str,
    pretrained: bool,
    weights_path: str | Path | None = None,
    **kwargs: Any,
) -> tuple[nn.Module, bool]:
    """A timm model without classifier (``num_classes=0``), with the suite's weights policy.

    A local ``weights_path`` wins over the hub and is loaded strictly after :func:`adapt_imagenet_state`;
    when the hub is unreachable the model stays randomly initialised and ONE warning says so.
    Returns ``(model, pretrained_loaded)``.
    """
    return create_timm_backbone(
        arch, pretrained, weights_path, convert=adapt_imagenet_state, **{"num_classes": 0, **kwargs}
    )


def pretrained_norm(arch: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean/std the timm pretrained weights of ``arch`` were trained with."""
    import timm

    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None:
        raise ValueError(f"timm has no pretrained config for {arch!r}; pass mean= and std= explicitly")
    return tuple(cfg.mean), tuple(cfg.std)


class TimmFeatureClassifier(TimmClassifier):
    """:class:`TimmClassifier` whose head is :class:`FakeLogitHead` on the timm pooled features."""

    def build_backbone(
        self, arch: str, pretrained: bool, weights_path: str | Path | None, drop_rate: float
    ) -> tuple[nn.Module, bool]:
        backbone, loaded = create_feature_backbone(arch, pretrained, weights_path)
        return BackboneWithHead(backbone, FakeLogitHead(backbone.num_features, drop_rate)), loaded

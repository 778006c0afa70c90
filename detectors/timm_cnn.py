"""A timm CNN with one fake-logit head: the shared body of the CNN baselines.

``resnet34`` registered here is DeepfakeBench's "CNN-Aug" backbone (Wang et al., "CNN-generated images are
surprisingly easy to spot... for now", CVPR 2020): ImageNet ResNet-34 fine-tuned end to end with binary
cross-entropy. Xception and EfficientNet-B4 subclass :class:`TimmClassifier`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from datamodules.batch import Batch
from datamodules.spec import IMAGENET_MEAN, IMAGENET_STD, DataSpec
from detectors.base import Detector, DetectorOutput
from detectors.recipe import Recipe
from detectors.registry import register_detector
from detectors.weights import create_timm_backbone


class TimmClassifier(Detector):
    """A timm image classifier with ``num_classes=1`` whose output is the fake-logit.

    Args:
        arch: timm architecture name.
        pretrained: try to load the timm/hub ImageNet weights (random init with a warning when offline).
        weights_path: a local backbone weights file (safetensors or torch), preferred over the hub.
        input_size: square input side.
        drop_rate: dropout before the classifier.
        **recipe: overrides of the class's paper recipe (``lr``, ``epochs``, ...).
    """

    default_arch: ClassVar[str] = "resnet34"
    default_input_size: ClassVar[int] = 256
    mean: ClassVar[tuple[float, float, float]] = IMAGENET_MEAN
    std: ClassVar[tuple[float, float, float]] = IMAGENET_STD

    def __init__(
        self,
        arch: str | None = None,
        pretrained: bool = True,
        weights_path: str | Path | None = None,
        input_size: int | None = None,
        drop_rate: float = 0.0,
        **recipe: Any,
    ) -> None:
        super().__init__(**recipe)
        self.arch = arch or self.default_arch
        self.net, self.pretrained_loaded = self.build_backbone(self.arch, pretrained, weights_path, drop_rate)
        self.data_spec = DataSpec(
            input_size=input_size or self.default_input_size, mean=self.mean, std=self.std
        )

    def build_backbone(
        self, arch: str, pretrained: bool, weights_path: str | Path | None, drop_rate: float
    ) -> tuple[nn.Module, bool]:
        return create_timm_backbone(arch, pretrained, weights_path, num_classes=1, drop_rate=drop_rate)

    def forward(self, batch: Batch) -> DetectorOutput:
        return DetectorOutput(logits=self.net(batch.image).squeeze(-1))


@register_detector("resnet34")
class ResNet34(TimmClassifier):
    """ResNet-34 baseline (CNN-Aug, Wang et al. CVPR 2020), 256 px, ImageNet normalisation.

    Recipe: DeepfakeBench's released config for this backbone (Adam 2e-4, weight decay 5e-4, batch 32,
    10 epochs, 32 frames per video). Deviation: none beyond the one-logit head (BCE instead of 2-way CE,
    which is the same model up to a reparametrisation).
    """

    default_arch = "resnet34"
    default_recipe = Recipe(
        optimizer="adam",
        lr=2e-4,
        weight_decay=5e-4,
        epochs=10,
        batch_size=32,
        source="DeepfakeBench training/config/detector/resnet34.yaml (CNN-Aug)",
    )
    tiny_config: ClassVar[dict[str, Any]] = {"arch": "test_resnet", "pretrained": False, "input_size": 64}

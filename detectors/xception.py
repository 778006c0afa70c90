"""Xception, the FaceForensics++ baseline (Rössler et al., "FaceForensics++: Learning to Detect Manipulated
Facial Images", ICCV 2019; architecture: Chollet, "Xception", CVPR 2017)."""

from __future__ import annotations

from typing import Any, ClassVar

from datamodules.spec import HALF
from detectors.feature_head import TimmFeatureClassifier
from detectors.recipe import DEEPFAKEBENCH_CNN
from detectors.registry import register_detector


@register_detector("xception")
class Xception(TimmFeatureClassifier):
    """ImageNet Xception fine-tuned end to end as a binary real/fake classifier.

    Architecture: timm ``legacy_xception`` (the Cadene/Keras ImageNet Xception that FaceForensics++ and
    DeepfakeBench use, 20.8M parameters), global average pooling, then our head: dropout and
    ``Linear(2048, 1)`` giving the fake-logit. Input 256 px normalised with mean = std = 0.5 (the Cadene
    weights' own statistics and the field's protocol).

    Recipe (``default_recipe``): Adam lr 2e-4 (betas 0.9/0.999), weight decay 5e-4, batch 32, 10 epochs,
    32 frames per video for training and test, no scheduler, augmentation on: DeepfakeBench's
    ``training/config/detector/xception.yaml``, the protocol of the published Xception numbers the field
    compares with. FaceForensics++'s released code (``classification/network/models.py``) builds the
    Xception classifier at 299 px without dropout.

    Deviations, all deliberate:
    * One logit with binary cross-entropy instead of 2-way softmax cross-entropy: the same model up to a
      reparametrisation (a 2-way head converts exactly as ``w_fake - w_real``, see
      :mod:`detectors.convert_deepfakebench`).
    * ``drop_rate`` (default 0.0, as in both references) really applies; timm's legacy head computes
      dropout and discards it.
    * 256 px instead of FaceForensics++'s 299 px, as DeepfakeBench and the field's tables do.
    """

    default_arch = "legacy_xception"
    default_input_size = 256
    mean = HALF
    std = HALF
    default_recipe = DEEPFAKEBENCH_CNN.with_overrides(
        source="DeepfakeBench training/config/detector/xception.yaml (Rössler et al. ICCV 2019 model)"
    )
    tiny_config: ClassVar[dict[str, Any]] = {
        "arch": "test_resnet",
        "pretrained": False,
        "input_size": 64,
        "drop_rate": 0.5,
    }

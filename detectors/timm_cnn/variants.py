"""The registered timm CNN detectors: each is :class:`~detectors.timm_cnn.detector.TimmCNN` with a paper's
architecture, input size, normalisation and recipe as its signature defaults (timm-style entry points).

Recipes come from DeepfakeBench's configs (``training/config/detector/<name>.yaml`` at commit 8a4a7bf),
their ``data_aug`` blocks transcribed key for key. ``reference="released"`` trains as DeepfakeBench's
``training/train.py`` effectively does: ``for epoch in range(start_epoch, nEpochs + 1)`` runs
``nEpochs + 1`` epochs, and albumentations 1.1.0 computes the augmentation
(:func:`detectors.recipe.released_variant`); for EfficientNet-B4 and ResNet-34 it also builds DeepfakeBench's
network. SBI's variants, which add SAM and self-blended training data, are in :mod:`detectors.timm_cnn.sbi`."""

from __future__ import annotations

from typing import Any, ClassVar

from datamodules.spec import HALF, IMAGENET_MEAN, IMAGENET_STD
from detectors.recipe import DEEPFAKEBENCH_CNN, Recipe, deepfakebench_augmentation, released_variant
from detectors.registry import register_detector
from detectors.timm_cnn.deepfakebench import (
    DEEPFAKEBENCH_EFFICIENTNET_B4,
    DEEPFAKEBENCH_RESNET34,
    DEEPFAKEBENCH_XCEPTION,
)
from detectors.timm_cnn.detector import PRETRAINED_NORM, TimmCNN


@register_detector("resnet34")
class ResNet34(TimmCNN):
    """ResNet-34 baseline (CNN-Aug: Wang et al., "CNN-generated images are surprisingly easy to spot...
    for now", CVPR 2020), 256 px, ImageNet normalisation: ImageNet ResNet-34 fine-tuned end to end with
    binary cross-entropy.

    Recipe: DeepfakeBench's released config for this backbone (Adam 2e-4, weight decay 5e-4, batch 32,
    10 epochs, 32 frames per video, its ``data_aug`` block). Deviations: the one-logit head (BCE instead of
    2-way CE, which is the same model up to a reparametrisation) and, by default, timm's default ResNet-34
    ImageNet weights with the ImageNet statistics they were trained with (``resnet34.yaml`` feeds mean =
    std = 0.5).

    ``reference="released"``: DeepfakeBench's ``training/networks/resnet34.py`` as it runs: torchvision's
    ImageNet weights (``resnet34.tv_in1k``), inputs normalised with mean = std = 0.5 (``resnet34.yaml``),
    11 epochs (``nEpochs + 1``) and albumentations 1.1.0's arithmetic. DeepfakeBench's trained checkpoint
    (``cnnaug_best.pth``, release v1.0.1) loads with its 0.5 normalisation through
    ``converters["deepfakebench"]``.
    """

    __init__ = TimmCNN.variant(arch="resnet34", input_size=256, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    default_recipe = Recipe(
        optimizer="adam",
        lr=2e-4,
        weight_decay=5e-4,
        epochs=10,
        batch_size=32,
        # training/config/detector/resnet34.yaml, data_aug
        augmentation=deepfakebench_augmentation(
            {
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
        ),
        source="DeepfakeBench training/config/detector/resnet34.yaml (CNN-Aug)",
    )
    released_recipe = released_variant(
        default_recipe, 10, "DeepfakeBench resnet34.yaml run by training/train.py: nEpochs 10 -> 11 epochs"
    )
    reference_arguments: ClassVar[dict[str, dict[str, Any]]] = {
        "released": {"arch": "resnet34.tv_in1k", "mean": HALF, "std": HALF}
    }
    tiny_config: ClassVar[dict[str, Any]] = {"arch": "test_resnet", "pretrained": False, "input_size": 64}
    converters = {"deepfakebench": DEEPFAKEBENCH_RESNET34}


@register_detector("xception")
class Xception(TimmCNN):
    """Xception, the FaceForensics++ baseline (Rössler et al., "FaceForensics++: Learning to Detect
    Manipulated Facial Images", ICCV 2019; architecture: Chollet, "Xception", CVPR 2017): ImageNet Xception
    fine-tuned end to end as a binary real/fake classifier.

    Architecture: timm ``legacy_xception`` (the Cadene/Keras ImageNet Xception that FaceForensics++ and
    DeepfakeBench use, 20.8M parameters), global average pooling, then our head: dropout and
    ``Linear(2048, 1)`` giving the fake-logit. Input 256 px normalised with mean = std = 0.5 (the Cadene
    weights' own statistics and the field's protocol).

    Recipe (``default_recipe``): Adam lr 2e-4 (betas 0.9/0.999), weight decay 5e-4, batch 32, 10 epochs,
    32 frames per video for training and test, no scheduler, augmentation on with the config's
    ``data_aug`` block (flip 0.5, NO rotation: ``rotate_prob: 0.0`` unlike the other DeepfakeBench
    configs, blur 0.5 with kernels 3-7, brightness/contrast +-0.1 or FancyPCA or HSV with p 0.5, JPEG
    40-100 with p 0.5): DeepfakeBench's ``training/config/detector/xception.yaml``, the protocol of the
    published Xception numbers the field compares with. FaceForensics++'s released code
    (``classification/network/models.py``) builds the Xception classifier at 299 px without dropout.

    ``reference="released"``: 11 epochs (``nEpochs + 1``) and albumentations 1.1.0's arithmetic; the
    network is the same (timm ``legacy_xception`` is DeepfakeBench's Xception).

    Deviations, all deliberate:
    * One logit with binary cross-entropy instead of 2-way softmax cross-entropy: the same model up to a
      reparametrisation (a 2-way head converts exactly as ``w_fake - w_real``, see
      :mod:`detectors.timm_cnn.deepfakebench`).
    * ``drop_rate`` (default 0.0, as in both references) really applies; timm's legacy head computes
      dropout and discards it.
    * 256 px instead of FaceForensics++'s 299 px, as DeepfakeBench and the field's tables do.
    """

    __init__ = TimmCNN.variant(arch="legacy_xception", input_size=256, mean=HALF, std=HALF)
    default_recipe = DEEPFAKEBENCH_CNN.with_overrides(
        # training/config/detector/xception.yaml, data_aug
        augmentation=deepfakebench_augmentation(
            {
                "flip_prob": 0.5,
                "rotate_prob": 0.0,
                "rotate_limit": (-10, 10),
                "blur_prob": 0.5,
                "blur_limit": (3, 7),
                "brightness_prob": 0.5,
                "brightness_limit": (-0.1, 0.1),
                "contrast_limit": (-0.1, 0.1),
                "quality_lower": 40,
                "quality_upper": 100,
            }
        ),
        source="DeepfakeBench training/config/detector/xception.yaml (Rössler et al. ICCV 2019 model)",
    )
    released_recipe = released_variant(
        default_recipe, 10, "DeepfakeBench xception.yaml run by training/train.py: nEpochs 10 -> 11 epochs"
    )
    tiny_config: ClassVar[dict[str, Any]] = {
        "arch": "test_resnet",
        "pretrained": False,
        "input_size": 64,
        "drop_rate": 0.5,
    }
    converters = {"deepfakebench": DEEPFAKEBENCH_XCEPTION}


@register_detector("efficientnet_b4")
class EfficientNetB4(TimmCNN):
    """EfficientNet-B4 baseline (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
    Networks", ICML 2019), as used for face-forgery detection by DeepfakeBench (Yan et al., NeurIPS 2023
    D&B): ImageNet EfficientNet-B4 fine-tuned end to end as a binary real/fake classifier.

    Architecture: timm ``efficientnet_b4`` (17.5M parameters without the ImageNet classifier), global
    average pooling, then our head: dropout and ``Linear(1792, 1)``. Input 256 px by default. The input
    normalisation is the one the pretrained weights were trained with, read from timm's pretrained config
    (``mean``/``std`` ``"pretrained"``: ImageNet mean/std for ``efficientnet_b4``), and the pretrained
    stem is KEPT.

    Recipe (``default_recipe``): Adam lr 2e-4, weight decay 5e-4, batch 32, 10 epochs, 32 frames per video,
    no scheduler, augmentation on with the config's ``data_aug`` block: DeepfakeBench
    ``training/config/detector/efficientnetb4.yaml``. Stochastic depth 0.2 over the blocks
    (``drop_path_rate``), as in Tan & Le and in the ``efficientnet_pytorch`` model DeepfakeBench trains
    (its default ``drop_connect_rate``).

    Two builds, chosen by ``reference``:

    * ``"paper"`` (default): the EfficientNet-B4 of Tan & Le as timm ships it: ``efficientnet_b4``
      (timm's RA2 ImageNet weights), symmetric PyTorch padding, batch norm eps 1e-5 / momentum 0.1, its
      pretrained stem KEPT and inputs normalised with the weights' own statistics. Not the network
      behind DeepfakeBench's published numbers; the stem and the normalisation are deliberate (a network
      whose pretrained stem is thrown away and whose weights see other input statistics is not the
      ImageNet EfficientNet the paper fine-tunes), the weights, padding and batch-norm settings are
      timm's defaults for the architecture.
    * ``"released"``: DeepfakeBench's network exactly (``reference_arguments``): the original TensorFlow
      EfficientNet-B4 weights (``tf_efficientnet_b4.aa_in1k``: TF's AutoAugment release, which
      ``efficientnet_pytorch``'s ``efficientnet-b4-6ed6700e.pth`` ports), TensorFlow "same" padding with
      ``efficientnet_pytorch``'s static paddings for 380 px, a freshly initialised unpadded stem, batch
      norm eps 1e-3 / momentum 0.01, mean = std = 0.5 (``deepfakebench_compat=True``); and 11 epochs
      with albumentations 1.1.0's arithmetic. DeepfakeBench's released checkpoints load into this build
      (:mod:`detectors.timm_cnn.deepfakebench`) and score as they do there.

    Deviation under both: one logit with binary cross-entropy instead of 2-way softmax cross-entropy (same
    model up to a reparametrisation).
    """

    __init__ = TimmCNN.variant(
        arch="efficientnet_b4",
        input_size=256,
        mean=PRETRAINED_NORM,
        std=PRETRAINED_NORM,
        drop_path_rate=0.2,
    )
    default_recipe = DEEPFAKEBENCH_CNN.with_overrides(
        # training/config/detector/efficientnetb4.yaml, data_aug
        augmentation=deepfakebench_augmentation(
            {
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
        ),
        source="DeepfakeBench training/config/detector/efficientnetb4.yaml (Tan & Le ICML 2019 model)",
    )
    released_recipe = released_variant(
        default_recipe,
        10,
        "DeepfakeBench efficientnetb4.yaml run by training/train.py: nEpochs 10 -> 11 epochs",
    )
    reference_arguments: ClassVar[dict[str, dict[str, Any]]] = {
        "released": {
            "arch": "tf_efficientnet_b4.aa_in1k",
            "deepfakebench_compat": True,
            "mean": HALF,
            "std": HALF,
        }
    }
    tiny_config: ClassVar[dict[str, Any]] = {
        "arch": "test_efficientnet",
        "pretrained": False,
        "input_size": 64,
        "drop_rate": 0.2,
    }
    converters = {"deepfakebench": DEEPFAKEBENCH_EFFICIENTNET_B4}

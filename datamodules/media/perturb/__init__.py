"""Test-time perturbations of the stored face crops, and views that emulate other preprocessing.

* :mod:`.deeperforensics`: the seven DeeperForensics-1.0 distortions at their five published levels
  (definitions, levels and sources in its docstring);
* :mod:`.video`: the H.264 re-encode (``video_compression``) of a video's selected crops as one clip;
* :mod:`.registry`: ``Perturbation`` (one level of one distortion + seed), the registry, per-sample
  seeding and user perturbations from albumentations configs;
* :mod:`.view`: ``CropView`` (zoom / crop size / resize interpolation) for preprocessing sensitivity.

The data path takes a ``Perturbation`` and a ``CropView`` (``FaceTransform(..., perturbation=, view=)``,
``ManifestDataset`` / ``ForgeryDataModule(test_perturbation=, test_view=)``); both default to off, and the
clean path is then unchanged bit for bit.
"""

from datamodules.media.perturb.registry import (
    CLEAN,
    DEEPERFORENSICS,
    IMAGE_DISTORTIONS,
    Distortion,
    Perturbation,
    get_distortion,
    get_perturbation,
    list_perturbations,
    perturbation_grid,
    register,
    register_config,
    sample_rng,
)
from datamodules.media.perturb.video import ClipFrames
from datamodules.media.perturb.view import INTERPOLATIONS, CropView

__all__ = [
    "CLEAN",
    "DEEPERFORENSICS",
    "IMAGE_DISTORTIONS",
    "INTERPOLATIONS",
    "ClipFrames",
    "CropView",
    "Distortion",
    "Perturbation",
    "get_distortion",
    "get_perturbation",
    "list_perturbations",
    "perturbation_grid",
    "register",
    "register_config",
    "sample_rng",
]

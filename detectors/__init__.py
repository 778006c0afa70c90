"""Face-forgery detectors behind one interface (``detectors.base.Detector``) and a registry by name."""

from datamodules.augmentation import Augmentation
from datamodules.spec import DataSpec
from detectors.base import DataSpecError, Detector, DetectorAux, DetectorOutput, ScoredBatch
from detectors.recipe import Recipe
from detectors.registry import (
    UnknownDetectorError,
    create_detector,
    get_detector_class,
    list_detectors,
    load_detector,
    register_detector,
)
from detectors.settings import PAPER, RELEASED, DetectorSettings, UnknownSettingError

__all__ = [
    "PAPER",
    "RELEASED",
    "Augmentation",
    "DataSpec",
    "DataSpecError",
    "Detector",
    "DetectorAux",
    "DetectorOutput",
    "DetectorSettings",
    "Recipe",
    "ScoredBatch",
    "UnknownDetectorError",
    "UnknownSettingError",
    "create_detector",
    "get_detector_class",
    "list_detectors",
    "load_detector",
    "register_detector",
]

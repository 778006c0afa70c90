"""Face-forgery detectors behind one interface (``detectors.base.Detector``) and a registry by name."""

from datamodules.spec import DataSpec
from detectors.base import DataSpecError, Detector, DetectorOutput
from detectors.recipe import Recipe
from detectors.registry import (
    UnknownDetectorError,
    create_detector,
    get_detector_class,
    list_detectors,
    load_detector,
    register_detector,
)

__all__ = [
    "DataSpec",
    "DataSpecError",
    "Detector",
    "DetectorOutput",
    "Recipe",
    "UnknownDetectorError",
    "create_detector",
    "get_detector_class",
    "list_detectors",
    "load_detector",
    "register_detector",
]

"""Detector.resolve_settings: the one place that splits overrides into recipe and constructor arguments.

The checks every detector passes (resolved settings = what the constructor receives, concrete signature
defaults, every reference resolves) are part of the detector contract (``tests/detector_contract.py``).
"""

from __future__ import annotations

import pytest

from detectors import UnknownSettingError, get_detector_class


def test_timm_variants_carry_their_papers_defaults():
    from datamodules.spec import HALF, IMAGENET_MEAN

    arch = {
        n: get_detector_class(n).resolve_settings().arch for n in ("resnet34", "xception", "efficientnet_b4")
    }
    assert arch["resnet34"]["arch"] == "resnet34" and arch["resnet34"]["mean"] == IMAGENET_MEAN
    assert arch["xception"]["arch"] == "legacy_xception" and arch["xception"]["mean"] == HALF
    assert arch["efficientnet_b4"]["arch"] == "efficientnet_b4"
    assert (
        arch["efficientnet_b4"]["mean"] == "pretrained" and arch["efficientnet_b4"]["drop_path_rate"] == 0.2
    )
    assert {a["input_size"] for a in arch.values()} == {256}
    assert arch["resnet34"]["drop_path_rate"] == arch["xception"]["drop_path_rate"] == 0.0


def test_clip_linear_reports_its_modules_off():
    a = get_detector_class("clip_linear").resolve_settings().arch
    assert a["alignment"] is False and a["moe"] is False
    assert get_detector_class("sfam").resolve_settings().arch["alignment"] is True


def test_unknown_key_names_the_key_the_detector_and_the_accepted_keys():
    cls = get_detector_class("xception")
    with pytest.raises(UnknownSettingError) as e:
        cls.resolve_settings(lr=1e-4, dropout=0.5, archh="x")
    msg = str(e.value)
    assert "['archh', 'dropout']" in msg and "xception" in msg
    assert "drop_rate" in msg and "input_size" in msg and "epochs" in msg  # constructor and recipe keys


def test_a_constructor_argument_may_not_shadow_a_recipe_field():
    from detectors import Detector

    class Shadow(Detector):
        def __init__(self, epochs: int = 3, **recipe):
            super().__init__(**recipe)

    with pytest.raises(TypeError, match=r"\['epochs'\] shadow Recipe fields"):
        Shadow.resolve_settings()


def test_overridden_defaults_are_the_signature_defaults():
    s = get_detector_class("resnet34").resolve_settings(arch="test_resnet", pretrained=False, input_size=32)
    assert s.overridden_defaults() == {"arch": "resnet34", "pretrained": True, "input_size": 256}

"""Detector.resolve_settings: the one place that splits overrides into recipe and constructor arguments.

The reference for "what a detector is built with" is the detector itself: Lightning's saved
hyper-parameters are the arguments every ``__init__`` of the class chain actually received.
"""

from __future__ import annotations

import inspect
import json
import warnings
from dataclasses import fields

import pytest

from detectors import (
    Recipe,
    UnknownSettingError,
    create_detector,
    get_detector_class,
    list_detectors,
)


def _json(v):
    return json.loads(json.dumps(v, default=str))


@pytest.mark.parametrize("name", list_detectors())
def test_resolved_settings_are_what_the_constructor_receives(name):
    cls = get_detector_class(name)
    over = {**cls.tiny_config, "lr": 3e-5, "epochs": 3}
    settings = cls.resolve_settings(**over)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_detector(name, **over)
    hparams = dict(model.hparams)
    assert {k: _json(hparams[k]) for k in settings.arch} == _json(settings.arch)
    assert set(hparams) <= set(settings.arch) | {f.name for f in fields(Recipe)}
    assert settings.recipe == model.recipe and settings.paper_recipe == cls.default_recipe
    assert settings.recipe_overrides == {"lr": 3e-5, "epochs": 3}
    assert settings.arch_overrides == cls.tiny_config
    assert settings.recipe_changes() == model.recipe.diff(cls.default_recipe)


@pytest.mark.parametrize("name", list_detectors())
def test_architecture_defaults_are_concrete_in_the_signature(name):
    """No ``None`` that means "look at a class attribute": the built detector matches the signature."""
    cls = get_detector_class(name)
    _, defaults = cls.constructor_arguments()
    params = inspect.signature(cls).parameters
    for key in ("arch", "input_size", "mean", "std", "encoder_arch", "clip_model", "model_name"):
        if key in defaults:
            assert defaults[key] is not None, f"{name}.{key}"
            if key in params:
                assert params[key].default == defaults[key]


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

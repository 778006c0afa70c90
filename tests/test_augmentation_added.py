"""Settings added to the augmentation record after DeepfakeBench's structure (``translate_limit``,
``colour_mode``, ``rgb_shift``; the ``"torchvision"`` semantics are in test_augmentation_torchvision.py).

Every pipeline declared before them must draw, compute and hash exactly as it did: the draw order below is
transcribed from the table of ``datamodules/loading/augment.py`` as it stood before the additions (commit
a9c2072), and the cell ids of the pinned grids are checked by test_cell_ids.py. The RGB shift reference is
albumentations 1.1.0's ``functional.shift_rgb`` for uint8 images, transcribed (MIT).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from datamodules.augmentation import ADDED_SETTINGS, Augmentation
from datamodules.loading import augment as ops
from detectors import get_detector_class, list_detectors
from detectors.recipe import Recipe

ALBU = "albumentations-1.1.0"


def _documented_draw(aug: Augmentation, rng: np.random.Generator) -> dict:
    """The draw sequence of the DeepfakeBench-structured record: five step Bernoullis, angle, scale, kernel,
    sigma, the OneOf member, contrast, brightness, FancyPCA's alpha, three HSV shifts, the JPEG quality."""
    u = rng.random(5)
    angle, scale = rng.uniform(*aug.rotate_limit), rng.uniform(*aug.scale_limit)
    lo, hi = aug.blur_limit
    if aug.semantics == ALBU:
        k = int(rng.integers(lo, hi + 1))
        k = (k + 1) % (hi + 1) if k % 2 == 0 else k
    else:
        k = int(rng.choice(np.arange(lo, hi + 1, 2)))
    sigma = rng.uniform(*aug.blur_sigma)
    op = aug.colour_ops[int(rng.integers(len(aug.colour_ops)))]
    alpha, beta = 1 + rng.uniform(*aug.contrast_limit), rng.uniform(*aug.brightness_limit)
    pca = rng.normal(0.0, aug.fancy_pca_alpha)
    hsv = tuple(rng.uniform(*lim) for lim in (aug.hue_shift_limit, aug.sat_shift_limit, aug.val_shift_limit))
    q = int(rng.integers(aug.quality_lower, aug.quality_upper + 1))
    return {
        "flip": bool(u[0] < aug.flip_prob),
        "angle": angle if u[1] < aug.rotate_prob else None,
        "scale": scale,
        "blur": (k, sigma) if u[2] < aug.blur_prob else None,
        "colour": op if u[3] < aug.colour_prob else None,
        "alpha": alpha,
        "beta": beta,
        "pca_alpha": pca,
        "hsv": hsv,
        "jpeg_quality": q if u[4] < aug.jpeg_prob else None,
    }


def _records_without_added_settings() -> dict[str, Augmentation]:
    out = {}
    for name in list_detectors():
        cls = get_detector_class(name)
        for ref, recipe in (
            ("paper", cls.default_recipe),
            ("released", getattr(cls, "released_recipe", None)),
        ):
            aug = None if recipe is None else recipe.augmentation
            plain = aug is not None and aug.semantics != "torchvision"
            if plain and all(getattr(aug, k) == v for k, v in ADDED_SETTINGS.items()):
                out[f"{name}/{ref}"] = aug
    return out


def test_records_without_the_added_settings_draw_as_documented():
    records = _records_without_added_settings()
    assert {"xception/paper", "xception/released", "effort/paper", "sfam/paper"} <= set(records)
    for name, aug in records.items():
        ours, ref = np.random.default_rng(3), np.random.default_rng(3)
        for _ in range(20):
            d = ops.draw(aug, ours)
            expected = _documented_draw(aug, ref)
            assert {k: getattr(d, k) for k in expected} == expected, name
            assert (d.translate, d.chain, d.rgb) == ((0.0, 0.0), (), (0.0, 0.0, 0.0)), name
        assert ours.random() == ref.random(), name  # the generator ends where the documented draws leave it


def test_added_settings_leave_the_hashed_record_at_their_defaults():
    base = Augmentation()
    assert set(base.to_dict()) - set(base.experiment_dict()) == set(ADDED_SETTINGS)
    moved = base.with_overrides(translate_limit=(0.1, 0.0), colour_mode="each")
    assert (
        moved.experiment_dict()["translate_limit"] == (0.1, 0.0)
        and moved.experiment_dict()["colour_mode"] == "each"
    )
    assert "rgb_shift_limit" not in moved.experiment_dict()
    recipe = Recipe(augmentation=moved)
    again = Recipe.from_dict(recipe.experiment_dict())
    assert again.augmentation == moved  # a hashed dict reads back as the same record
    assert recipe.diff(Recipe()) == {
        "augmentation.translate_limit": ((0.0, 0.0), (0.1, 0.0)),
        "augmentation.colour_mode": ("one_of", "each"),
    }


def test_each_mode_applies_every_member_in_order_with_its_own_probability():
    aug = Augmentation(colour_mode="each", colour_prob=0.3, colour_ops=("rgb_shift", "hsv", "brightness_contrast"),
                       flip_prob=0, rotate_prob=0, blur_prob=0, jpeg_prob=0)  # fmt: skip
    rng = np.random.default_rng(0)
    draws = [ops.draw(aug, rng) for _ in range(6000)]
    assert all(d.colour is None for d in draws)
    for op in aug.colour_ops:
        f = np.mean([op in d.chain for d in draws])
        assert abs(f - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 6000), (op, f)
    both = np.mean([{"rgb_shift", "hsv"} <= set(d.chain) for d in draws])  # independent Bernoullis
    assert abs(both - 0.09) < 4 * np.sqrt(0.09 * 0.91 / 6000)
    order = {op: i for i, op in enumerate(aug.colour_ops)}
    assert all(list(d.chain) == sorted(d.chain, key=order.get) for d in draws)
    # the photometric step applies the chain in that order
    img = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    d = next(d for d in draws if len(d.chain) == 3)
    expected = cv2.LUT(ops.hsv_shift(ops.rgb_shift(img, d.rgb, "suite"), d.hsv, "suite"),
                       ops.brightness_contrast_lut(d.alpha, d.beta, "suite"))  # fmt: skip
    np.testing.assert_array_equal(ops.photometric(img, d, "suite"), expected)


def albu_shift_rgb(img, r, g, b):
    """albumentations 1.1.0 functional._shift_rgb_uint8 / _shift_image_uint8: a float32 LUT per channel,
    clipped, cast with astype (truncation)."""
    out = np.empty_like(img)
    for i, shift in enumerate((r, g, b)):
        lut = np.arange(0, 256).astype("float32")
        lut += shift
        out[..., i] = cv2.LUT(img[..., i], np.clip(lut, 0, 255).astype(np.uint8))
    return out


@pytest.mark.parametrize("shifts", [(12.7, -3.2, 19.9), (-20.0, 0.4, 5.5), (0.0, 0.0, -0.6)])
def test_rgb_shift(shifts):
    img = np.random.default_rng(2).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    np.testing.assert_array_equal(ops.rgb_shift(img, shifts, ALBU), albu_shift_rgb(img, *shifts))
    rounded = np.clip(np.round(img.astype(np.float32) + np.float32(shifts)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(ops.rgb_shift(img, shifts, "suite"), rounded)
    rng = np.random.default_rng(0)
    aug = Augmentation(colour_ops=("rgb_shift",), rgb_shift_limit=(-20, 20))
    values = np.array([ops.draw(aug, rng).rgb for _ in range(2000)])
    assert values.min() >= -20 and values.max() <= 20 and abs(np.corrcoef(values.T)[0, 1]) < 0.1


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"translate_limit": (0.1, 1.5)}, "translate_limit must be"),
        ({"translate_limit": (-0.1, 0.1)}, "translate_limit must be"),
        ({"colour_mode": "all"}, "colour_mode must be one of"),
        ({"colour_ops": ("rgb", "hsv")}, "known ops"),
        ({"rgb_shift_limit": (20, -20)}, "low <= high"),
    ],
)
def test_bad_added_settings_name_the_field(bad, match):
    with pytest.raises(ValueError, match=match):
        Augmentation().with_overrides(**bad)

"""Each detector's augmentation is its recipe's, transcribed from the released configs; the ops compute
what albumentations 1.1.0 (the version both released code bases pin in ``install.sh``) computes.

Expected values are written here from the YAML files as released (paths and commits in the comments), not
from our modules; the op references are transcriptions of albumentations 1.1.0's
``augmentations/functional.py`` / ``transforms.py`` and ``geometric/functional.py`` (MIT).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from benchmark.runner.cell_data import build_datamodule
from benchmark.runner.cells import CellConfig, DatasetSpec
from benchmark.runner.grid import SetSpec
from datamodules.augmentation import Augmentation
from datamodules.loading import augment as ops
from datamodules.loading.transforms import FaceTransform
from datamodules.media.regions import REGIONS, label_map, region_masks
from datamodules.spec import DataSpec
from detectors import get_detector_class
from tests.real_faces import aligned_face

# DeepfakeBench training/config/detector/<name>.yaml, data_aug, at commit 8a4a7bf (SCLBD/DeepfakeBench)
DFB_XCEPTION = dict(flip_prob=0.5, rotate_prob=0.0, rotate_limit=(-10, 10), blur_prob=0.5, blur_limit=(3, 7),
                    brightness_prob=0.5, brightness_limit=(-0.1, 0.1), contrast_limit=(-0.1, 0.1),
                    quality_lower=40, quality_upper=100)  # fmt: skip
DFB_EFFICIENTNETB4 = dict(flip_prob=0.5, rotate_prob=0.5, rotate_limit=(-10, 10), blur_prob=0.5, blur_limit=(3, 7),
                          brightness_prob=0.5, brightness_limit=(-0.1, 0.1), contrast_limit=(-0.1, 0.1),
                          quality_lower=40, quality_upper=100)  # fmt: skip
DFB_UCF = dict(DFB_EFFICIENTNETB4)  # training/config/detector/ucf.yaml: the same ten values
DFB_RESNET34 = dict(DFB_EFFICIENTNETB4)  # training/config/detector/resnet34.yaml: the same ten values
# Forensics Adapter config/train.yaml at commit a4cc94f (OUC-VAS/ForensicsAdapter): the same block, and
# use_data_augmentation: false
FA_TRAIN = dict(DFB_EFFICIENTNETB4)
# training/dataset/abstract_dataset.py init_data_aug_method (8a4a7bf): OneOf([RandomBrightnessContrast,
# FancyPCA(), HueSaturationValue()], p=0.5); ImageCompression(..., p=0.5); Rotate's default border
# cv2.BORDER_REFLECT_101; GaussianBlur's default sigma_limit=0; FancyPCA(alpha=0.1);
# HueSaturationValue(20, 30, 20) (albumentations 1.1.0 defaults)
PIPELINE = dict(colour_prob=0.5, colour_ops=("brightness_contrast", "fancy_pca", "hsv"), jpeg_prob=0.5,
                border="reflect101", blur_sigma=(0.0, 0.0), fancy_pca_alpha=0.1, hue_shift_limit=(-20, 20),
                sat_shift_limit=(-30, 30), val_shift_limit=(-20, 20), scale_limit=(1.0, 1.0))  # fmt: skip
# training/train.py (8a4a7bf) and train.py (a4cc94f): for epoch in range(start_epoch, nEpochs + 1)
N_EPOCHS = {"xception": 10, "efficientnet_b4": 10, "resnet34": 10, "ucf": 5, "forensics_adapter": 60}
CONFIGS = {
    "xception": DFB_XCEPTION,
    "efficientnet_b4": DFB_EFFICIENTNETB4,
    "ucf": DFB_UCF,
    "resnet34": DFB_RESNET34,
    "forensics_adapter": FA_TRAIN,
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_recipe_augmentation_is_the_config_transcribed(name):
    cls = get_detector_class(name)
    aug = cls.default_recipe.augmentation
    expected = {**CONFIGS[name], **PIPELINE}
    assert {k: getattr(aug, k) for k in expected} == expected  # (-10, 10) == (-10.0, 10.0)
    assert aug.semantics == "suite"
    assert cls.default_recipe.augment is (name != "forensics_adapter")  # FA: use_data_augmentation: false
    released = cls.released_recipe
    assert released.augmentation == aug.with_overrides(semantics="albumentations-1.1.0")
    assert released.augment == cls.default_recipe.augment


@pytest.mark.parametrize("name", sorted(N_EPOCHS))
def test_released_recipe_runs_n_epochs_plus_one(name):
    cls = get_detector_class(name)
    assert cls.default_recipe.epochs == N_EPOCHS[name]
    assert cls.released_recipe.epochs == N_EPOCHS[name] + 1
    changes = cls.resolve_settings(reference="released").reference_changes()
    assert set(changes) == {"epochs", "augmentation.semantics"}


# Effort: training/config/detector/effort.yaml, use_data_augmentation: true and data_aug, at 8a4a7bf
# (SCLBD/DeepfakeBench); YZY-stack/Effort-AIGI-Detection DeepfakeBench/training/config/detector/effort.yaml at
# 96f5dea has the same block
DFB_EFFORT = dict(flip_prob=0.5, rotate_prob=0.5, rotate_limit=(-10, 10), blur_prob=0.5, blur_limit=(3, 7),
                  brightness_prob=0.5, brightness_limit=(-0.1, 0.1), contrast_limit=(-0.1, 0.1),
                  quality_lower=40, quality_upper=100)  # fmt: skip


def test_effort_recipe_augmentation_is_its_config_transcribed():
    recipe = get_detector_class("effort").default_recipe
    expected = {**DFB_EFFORT, **PIPELINE, "semantics": "suite"}
    assert {k: getattr(recipe.augmentation, k) for k in expected} == expected
    assert recipe.augment is True


# mapooon/SelfBlendedImages src/utils/sbi.py at 9fe4efe: SBI_Dataset.__getitem__ flips (hflip) when
# np.random.rand() < 0.5, then get_transforms() = Compose([RGBShift((-20, 20), (-20, 20), (-20, 20), p=0.3),
# HueSaturationValue(hue_shift_limit=(-0.3, 0.3), sat_shift_limit=(-0.3, 0.3), val_shift_limit=(-0.3, 0.3),
# p=0.3), RandomBrightnessContrast(brightness_limit=(-0.3, 0.3), contrast_limit=(-0.3, 0.3), p=0.3),
# ImageCompression(quality_lower=40, quality_upper=100, p=0.5)]); nothing else
SBI_RELEASED = dict(flip_prob=0.5, rotate_prob=0.0, blur_prob=0.0, colour_mode="each", colour_prob=0.3,
                    colour_ops=("rgb_shift", "hsv", "brightness_contrast"), rgb_shift_limit=(-20, 20),
                    hue_shift_limit=(-0.3, 0.3), sat_shift_limit=(-0.3, 0.3), val_shift_limit=(-0.3, 0.3),
                    brightness_limit=(-0.3, 0.3), contrast_limit=(-0.3, 0.3), jpeg_prob=0.5, quality_lower=40,
                    quality_upper=100, translate_limit=(0, 0), scale_limit=(1, 1))  # fmt: skip
# DeepfakeBench training/dataset/sbi_api.py at 8a4a7bf: SBI_API.__call__ applies the same get_transforms()
# Compose and never flips (hflip is defined, not called; sbi_dataset.py's SBIDataset.__getitem__ does not
# flip, and never calls the init_data_aug_method transform built from sbi.yaml's data_aug, whose
# use_data_augmentation: false is read only by the abstract dataset's __getitem__, which it overrides)
SBI_DEEPFAKEBENCH = dict(SBI_RELEASED, flip_prob=0.0)


@pytest.mark.parametrize("name,expected", [("sbi", SBI_RELEASED), ("sbi_deepfakebench", SBI_DEEPFAKEBENCH)])
def test_sbi_recipes_carry_the_post_blend_augmentation_their_code_applies(name, expected):
    recipe = get_detector_class(name).default_recipe
    assert recipe.augment is True
    assert {k: getattr(recipe.augmentation, k) for k in expected} == expected
    assert recipe.augmentation.semantics == "suite"


def test_sfam_declares_its_own_augmentation_and_has_no_released_reference():
    for name in ("sfam", "clip_linear"):
        cls = get_detector_class(name)
        aug = cls.default_recipe.augmentation
        assert aug.blur_prob == 0.1 and aug.scale_limit == (0.9, 1.1) and aug.border == "constant"
        assert aug.colour_ops == ("brightness_contrast", "hsv")
        assert cls.references() == ("paper",)
        with pytest.raises(TypeError, match="reference"):
            cls.resolve_settings(reference="released")


def test_recipe_overrides_and_diff_name_each_augmentation_setting():
    cls = get_detector_class("xception")
    s = cls.resolve_settings(augmentation={"blur_prob": 0.1, "rotate_prob": 0.5})
    assert s.recipe.augmentation.blur_prob == 0.1 and s.recipe.augmentation.flip_prob == 0.5
    assert s.recipe_changes() == {
        "augmentation.blur_prob": (0.5, 0.1),
        "augmentation.rotate_prob": (0.0, 0.5),
    }
    with pytest.raises(TypeError, match=r"unknown augmentation setting\(s\) \['blur'\]"):
        cls.resolve_settings(augmentation={"blur": 0.1})


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"blur_limit": (2, 7)}, "odd kernel sizes"),
        ({"flip_prob": 1.5}, "flip_prob must be a probability"),
        ({"colour_ops": ("sepia",)}, "known ops"),
        ({"quality_lower": 90, "quality_upper": 80}, "quality_lower <= quality_upper"),
        ({"rotate_limit": (10, -10)}, "low <= high"),
        ({"semantics": "albumentations-2"}, "semantics must be one of"),
    ],
)
def test_bad_augmentation_settings_name_the_field(bad, match):
    with pytest.raises(ValueError, match=match):
        Augmentation().with_overrides(**bad)


# ---------------------------------------------------------------------------------------------- the ops
ALBU = "albumentations-1.1.0"


def _img(seed: int = 0, side: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)


def albu_brightness_contrast(img, alpha, beta):
    """functional._brightness_contrast_adjust_uint with beta_by_max=True."""
    lut = np.arange(0, 256).astype("float32")
    if alpha != 1:
        lut *= alpha
    if beta != 0:
        lut += beta * 255
    lut = np.clip(lut, 0, 255).astype(np.uint8)
    return cv2.LUT(img, lut)


def albu_fancy_pca(img, alpha):
    """functional.fancy_pca (its eigen sort, its np.column_stack of the eigenvector matrix)."""
    orig = img.astype(float).copy()
    rs = (img / 255.0).reshape(-1, 3)
    cov = np.cov(rs - np.mean(rs, axis=0), rowvar=False)
    eig_vals, eig_vecs = np.linalg.eigh(cov)
    sort_perm = eig_vals[::-1].argsort()
    eig_vals[::-1].sort()
    eig_vecs = eig_vecs[:, sort_perm]
    m1 = np.column_stack(eig_vecs)
    m2 = np.zeros((3, 1))
    m2[:, 0] = alpha * eig_vals[:]
    add = m1 @ m2
    for i in range(3):
        orig[..., i] += add[i, 0] * 255
    return np.clip(orig, 0.0, 255.0).astype(np.uint8)


def albu_hsv(img, dh, ds, dv):
    """functional._shift_hsv_uint8."""
    hue, sat, val = cv2.split(cv2.cvtColor(img, cv2.COLOR_RGB2HSV))
    if dh != 0:
        hue = cv2.LUT(hue, np.mod(np.arange(0, 256, dtype=np.int16) + dh, 180).astype(np.uint8))
    if ds != 0:
        sat = cv2.LUT(sat, np.clip(np.arange(0, 256, dtype=np.int16) + ds, 0, 255).astype(np.uint8))
    if dv != 0:
        val = cv2.LUT(val, np.clip(np.arange(0, 256, dtype=np.int16) + dv, 0, 255).astype(np.uint8))
    return cv2.cvtColor(cv2.merge((hue, sat, val)).astype(np.uint8), cv2.COLOR_HSV2RGB)


def albu_jpeg(img, quality):
    """functional.image_compression: the array goes to cv2.imencode as it is (RGB read as BGR)."""
    _, enc = cv2.imencode(".jpg", img, (int(cv2.IMWRITE_JPEG_QUALITY), quality))
    return cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)


@pytest.mark.parametrize("alpha,beta", [(1.07, 0.03), (0.93, -0.08), (1.0, 0.05), (1.1, 0.0)])
def test_brightness_contrast(alpha, beta):
    img = _img()
    np.testing.assert_array_equal(cv2.LUT(img, ops.brightness_contrast_lut(alpha, beta, ALBU)),
                                  albu_brightness_contrast(img, alpha, beta))  # fmt: skip
    rounded = np.clip(
        np.round(np.arange(256, dtype=np.float32) * np.float32(alpha) + np.float32(beta * 255)), 0, 255
    )
    np.testing.assert_array_equal(ops.brightness_contrast_lut(alpha, beta, "suite"), rounded.astype(np.uint8))


@pytest.mark.parametrize("alpha", [0.1, -0.23, 0.05])
def test_fancy_pca(alpha):
    img = _img(1)
    np.testing.assert_array_equal(ops.fancy_pca(img, alpha, ALBU), albu_fancy_pca(img, alpha))
    # suite: Krizhevsky's offset V (alpha lambda), rounded
    flat = (img / 255.0).reshape(-1, 3)
    vals, vecs = np.linalg.eigh(np.cov(flat, rowvar=False))
    expected = np.round(np.clip(img + (vecs @ (alpha * vals)) * 255, 0, 255)).astype(np.uint8)
    np.testing.assert_array_equal(ops.fancy_pca(img, alpha, "suite"), expected)


@pytest.mark.parametrize("shift", [(5.3, -12.7, 7.9), (-17.2, 22.1, -3.4), (0.0, 3.3, 0.0)])
def test_hue_saturation_value(shift):
    img = _img(2)
    np.testing.assert_array_equal(ops.hsv_shift(img, shift, ALBU), albu_hsv(img, *shift))


@pytest.mark.parametrize("quality", [40, 77, 100])
def test_jpeg(quality):
    img = _img(3)
    np.testing.assert_array_equal(ops.jpeg(img, quality, ALBU), albu_jpeg(img, quality))
    suite = ops.jpeg(img, quality, "suite")
    np.testing.assert_array_equal(suite, albu_jpeg(img[:, :, ::-1].copy(), quality)[:, :, ::-1])
    if quality < 100:
        assert not np.array_equal(suite, ops.jpeg(img, quality, ALBU))  # the channel order matters


class _Fixed:
    """A stand-in generator whose ``integers`` returns a chosen value (to enumerate a draw's outcomes)."""

    def __init__(self, k: int) -> None:
        self.k = k

    def integers(self, lo, hi):
        assert lo <= self.k < hi
        return self.k


def test_blur_kernel_draw():
    # GaussianBlur.get_params: ksize = np.random.randint(3, 8); even -> (ksize + 1) % (7 + 1)
    assert [ops.blur_kernel(_Fixed(k), (3, 7), ALBU) for k in range(3, 8)] == [3, 5, 5, 7, 7]
    rng = np.random.default_rng(0)
    counts = np.bincount([ops.blur_kernel(rng, (3, 7), "suite") for _ in range(3000)], minlength=8)
    assert counts[[4, 6]].sum() == 0 and all(abs(counts[k] / 3000 - 1 / 3) < 0.04 for k in (3, 5, 7))


def test_step_probabilities_follow_the_record():
    aug = Augmentation().with_overrides(**DFB_XCEPTION)
    rng = np.random.default_rng(0)
    draws = [ops.draw(aug, rng) for _ in range(6000)]
    freq = {
        "flip": np.mean([d.flip for d in draws]),
        "rotate": np.mean([d.angle is not None for d in draws]),
        "blur": np.mean([d.blur is not None for d in draws]),
        "jpeg": np.mean([d.jpeg_quality is not None for d in draws]),
        **{op: np.mean([d.colour == op for d in draws]) for op in aug.colour_ops},
    }
    expected = {
        "flip": 0.5,
        "rotate": 0.0,
        "blur": 0.5,
        "jpeg": 0.5,
        **dict.fromkeys(aug.colour_ops, 0.5 / 3),
    }
    for k, p in expected.items():
        assert abs(freq[k] - p) < 4 * np.sqrt(p * (1 - p) / 6000) + 1e-9, (k, freq[k])
    qualities = [d.jpeg_quality for d in draws if d.jpeg_quality is not None]
    assert min(qualities) == 40 and max(qualities) == 100  # random.randint: both ends included


def _identity_spec(side: int) -> DataSpec:
    return DataSpec(input_size=side, mean=(0.0,) * 3, std=(1.0,) * 3)  # tensor = pixels / 255


@pytest.mark.parametrize("flip", [False, True])
def test_released_geometry_is_albumentations_flip_then_rotate(flip):
    """HorizontalFlip (a pixel copy) then Rotate: ``getRotationMatrix2D((w / 2, h / 2), angle, 1)``,
    bilinear, reflect-101 (geometric/functional.rotate); the other steps off."""
    aug = Augmentation(flip_prob=float(flip), rotate_prob=1.0, blur_prob=0.0, colour_prob=0.0, jpeg_prob=0.0,
                       semantics=ALBU)  # fmt: skip
    img = _img(4, 64)
    out = FaceTransform(_identity_spec(64), aug)(img, seed=11).image
    angle = ops.draw(aug, np.random.default_rng(11)).angle
    src = cv2.flip(img, 1) if flip else img
    m = cv2.getRotationMatrix2D((64 / 2, 64 / 2), angle, 1.0)
    ref = cv2.warpAffine(src, m, (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    np.testing.assert_array_equal(np.round(out.numpy().transpose(1, 2, 0) * 255).astype(np.uint8), ref)


def test_photometric_steps_follow_the_geometric_ones():
    """DeepfakeBench's order: the JPEG round trip is of the rotated image."""
    aug = Augmentation(
        flip_prob=0.0, rotate_prob=1.0, blur_prob=0.0, colour_prob=0.0, jpeg_prob=1.0, semantics=ALBU
    )
    img = _img(5, 64)
    out = FaceTransform(_identity_spec(64), aug)(img, seed=3).image
    d = ops.draw(aug, np.random.default_rng(3))
    rot = cv2.warpAffine(img, cv2.getRotationMatrix2D((32.0, 32.0), d.angle, 1.0), (64, 64),
                         flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)  # fmt: skip
    ref = albu_jpeg(rot, d.jpeg_quality)
    np.testing.assert_array_equal(np.round(out.numpy().transpose(1, 2, 0) * 255).astype(np.uint8), ref)


@pytest.mark.parametrize("semantics", ["suite", ALBU])
def test_landmarks_and_masks_follow_every_geometric_step(semantics):
    """Unlike DeepfakeBench (which returns the un-augmented landmarks), landmarks and masks stay on the face,
    also when the crop (256) is resized to another input side (128) first."""
    crop, lm = aligned_face("astronaut")
    eyes_id = REGIONS.index("eyes")
    eyes = (label_map(lm, 256) == eyes_id).astype(np.uint8)
    canvas = np.repeat(eyes[..., None] * 255, 3, axis=2).astype(np.uint8)
    aug = Augmentation(rotate_prob=1.0, rotate_limit=(-25, 25), blur_prob=0.0, colour_prob=0.0, jpeg_prob=0.0,
                       semantics=semantics)  # fmt: skip
    t = FaceTransform(DataSpec(input_size=128, mean=(0.5,) * 3, std=(0.5,) * 3), aug)
    for seed in range(6):
        out = t(canvas, lm, eyes.astype(np.float32), seed=seed)
        painted = region_masks(out.landmarks, 128, src_size=128, soft=False)[eyes_id] > 0.5
        for moved in (out.mask[0].numpy() > 0.5, out.image.numpy().mean(0) > 0.0):
            assert (painted & moved).sum() / max(1, (painted | moved).sum()) > 0.7, seed


# ---------------------------------------------------------------------------------------------- the datamodule
def _config(detector: str, **overrides) -> CellConfig:
    settings = get_detector_class(detector).resolve_settings(**overrides)
    return CellConfig(
        grid="g",
        detector=detector,
        seed=0,
        train_set=SetSpec("A", "A"),
        test_sets=(SetSpec("A", "A"),),
        overrides=overrides,
        recipe=settings.recipe,
        arch_overrides=settings.arch_overrides,
        datasets={"A": DatasetSpec("folder")},
        origin="demo",
    )


@pytest.mark.parametrize("detector", ["xception", "ucf", "forensics_adapter", "sfam"])
def test_the_datamodule_gets_the_recipes_augmentation(detector):
    config = _config(detector)
    dm = build_datamodule(config, DataSpec(), {"A": Path("A/manifest.parquet")})
    r = config.recipe
    assert dm.augment == (r.augmentation if r.augment else False)
    released = _config("xception", reference="released")
    dm = build_datamodule(released, DataSpec(), {"A": Path("A/manifest.parquet")})
    assert dm.augment.semantics == ALBU and dm.augment.rotate_prob == 0.0


def test_augmentation_is_part_of_the_cell_id_and_the_citation_is_not():
    base = _config("xception")
    other = _config("xception", augmentation={"blur_prob": 0.1})
    assert base.to_json() != other.to_json()
    assert (
        "source" not in base.to_json()["recipe"]
        and base.to_json()["recipe"]["augmentation"]["rotate_prob"] == 0.0
    )
    cited = replace(base, recipe=base.recipe.with_overrides(source="another citation"))
    assert cited.to_json() == base.to_json()

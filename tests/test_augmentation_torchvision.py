"""``"torchvision"`` augmentation semantics and GenD's released augmentation.

GenD (yermandy/GenD, MIT) augments with ``torchvision.transforms.v2`` on PIL images
(``src/dataset/augmentations.py``). The expected record is written here from GenD's ``src/config.py``
``Augmentations`` defaults and torchvision's documented parameters, not from our modules; the pixel ops are
checked against torchvision itself (installed): the same output bit for bit where the arithmetic is the same
(PIL's brightness/contrast, JPEG), within one grey level where only the float summation order differs (blur),
and within a few levels at a small fraction of pixels for the affine (OpenCV's fixed-point bilinear against
torchvision's float grid sampling); the random parameters against the distributions torchvision draws.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as F
from PIL import Image
from scipy import stats
from torchvision.transforms import InterpolationMode

from datamodules.augmentation import Augmentation
from datamodules.loading import augment as ops
from datamodules.loading.transforms import FaceTransform
from datamodules.spec import DataSpec
from detectors import get_detector_class
from detectors.gend.augmentation import GEND_AUGMENTATIONS, gend_augmentation

TV = "torchvision"

# yermandy/GenD src/config.py, class Augmentations, at commit e03532d (field defaults; none of the paper's
# runs in src/exp/wacv_rebuttal.py overrides them; the -noaug ablations set augmentations=None)
GEND_CONFIG = {
    "random_horizontal_flip": 0.5,
    "random_affine_degrees": 10,
    "random_affine_translate": [0.1, 0.1],
    "random_affine_scale": [0.9, 1.1],
    "gaussian_blur_prob": 0.1,
    "gaussian_blur_kernel_size": 7,
    "gaussian_blur_sigma": [0.1, 2.0],
    "color_jitter_brightness": 0.1,
    "color_jitter_contrast": 0.1,
    "jpeg_quality": [40, 100],
    "resize": None,
    "resize_interpolation": 2,
    "gaussian_noise_sigma": 0.0,
}
# what src/dataset/augmentations.py init_augmentations builds from them (e03532d), in torchvision's terms:
# RandomHorizontalFlip(0.5); RandomAffine(degrees=10 -> (-10, 10), translate=(0.1, 0.1), scale=(0.9, 1.1),
# fill 0), no p: always; RandomApply([GaussianBlur(7, sigma=(0.1, 2.0))], p=0.1); ColorJitter(brightness=0.1,
# contrast=0.1): factors U[0.9, 1.1], no p: always; JPEG([40, 100]): always; no Resize, no GaussianNoise
GEND_EXPECTED = {
    "flip_prob": 0.5,
    "rotate_prob": 1.0,
    "rotate_limit": (-10.0, 10.0),
    "translate_limit": (0.1, 0.1),
    "scale_limit": (0.9, 1.1),
    "border": "constant",
    "blur_prob": 0.1,
    "blur_limit": (7, 7),
    "blur_sigma": (0.1, 2.0),
    "colour_prob": 1.0,
    "colour_mode": "one_of",
    "colour_ops": ("brightness_contrast",),
    "brightness_limit": (-0.1, 0.1),
    "contrast_limit": (-0.1, 0.1),
    "jpeg_prob": 1.0,
    "quality_lower": 40,
    "quality_upper": 100,
    "semantics": TV,
}


def test_gend_recipe_is_the_released_config_transcribed():
    assert GEND_AUGMENTATIONS == GEND_CONFIG
    recipe = get_detector_class("gend").default_recipe
    assert recipe.augment is True
    assert {k: getattr(recipe.augmentation, k) for k in GEND_EXPECTED} == GEND_EXPECTED


def test_gend_transcription_follows_init_augmentations_off_rules():
    # Augmentations.get_empty(): every step off (src/config.py)
    empty = dict(GEND_CONFIG, random_horizontal_flip=0.0, random_affine_degrees=0, random_affine_translate=None,
                 random_affine_scale=None, gaussian_blur_prob=0.0, gaussian_blur_kernel_size=0,
                 gaussian_blur_sigma=0.0, color_jitter_brightness=0.0, color_jitter_contrast=0.0,
                 jpeg_quality=100)  # fmt: skip
    aug = gend_augmentation(empty)
    assert (aug.flip_prob, aug.rotate_prob, aug.blur_prob, aug.colour_prob, aug.jpeg_prob) == (0, 0, 0, 0, 0)
    # translation alone still builds RandomAffine (angle U(0, 0), scale 1); brightness alone a ColorJitter
    aug = gend_augmentation(dict(empty, random_affine_translate=[0.2, 0.05], color_jitter_brightness=0.3))
    assert aug.rotate_prob == 1 and aug.rotate_limit == (0, 0) and aug.translate_limit == (0.2, 0.05)
    assert aug.colour_prob == 1 and aug.brightness_limit == (-0.3, 0.3) and aug.contrast_limit == (0, 0)
    # ColorJitter's factor range [max(0, 1 - b), 1 + b]; a fixed JPEG quality
    aug = gend_augmentation(dict(GEND_CONFIG, color_jitter_contrast=1.5, jpeg_quality=75))
    assert aug.contrast_limit == (-1.0, 1.5) and (aug.jpeg_prob, aug.quality_lower, aug.quality_upper) == (
        1,
        75,
        75,
    )
    with pytest.raises(ValueError, match="resize / gaussian_noise_sigma"):
        gend_augmentation(dict(GEND_CONFIG, resize=224))
    with pytest.raises(ValueError, match=r"missing \['jpeg_quality'\]"):
        gend_augmentation({k: v for k, v in GEND_CONFIG.items() if k != "jpeg_quality"})


def _photo(seed: int = 0, side: int = 96) -> np.ndarray:
    """A smooth random RGB image (JPEG and blur behave as on photographs, unlike on white noise)."""
    small = np.random.default_rng(seed).integers(0, 256, (side // 8, side // 8, 3), dtype=np.uint8)
    return cv2.resize(small, (side, side), interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize("factor", [0.0, 0.9, 0.9731, 1.0, 1.0412, 1.1, 1.7])
def test_brightness_and_contrast_are_torchvisions_on_pil_images(factor):
    for seed in range(3):
        img = _photo(seed)
        pil = Image.fromarray(img)
        np.testing.assert_array_equal(cv2.LUT(img, ops.pil_brightness_lut(factor)),
                                      np.asarray(F.adjust_brightness(pil, factor)))  # fmt: skip
        np.testing.assert_array_equal(cv2.LUT(img, ops.pil_contrast_lut(img, factor)),
                                      np.asarray(F.adjust_contrast(pil, factor)))  # fmt: skip


def test_contrast_grey_mean_is_pils():
    """ImageEnhance.Contrast's degenerate grey: int(ImageStat.Stat(image.convert("L")).mean[0] + 0.5)."""
    from PIL import ImageStat

    rng = np.random.default_rng(0)
    for shape in [(1, 1, 3), (7, 5, 3), (224, 224, 3), (380, 380, 3)]:
        for _ in range(5):
            img = rng.integers(0, 256, shape, dtype=np.uint8)
            expected = int(ImageStat.Stat(Image.fromarray(img).convert("L")).mean[0] + 0.5)
            assert ops.pil_grey_mean(img) == expected
    assert ops.pil_grey_mean(np.full((4, 4, 3), 255, np.uint8)) == 255


def test_colour_jitter_is_torchvisions_with_its_drawn_factors_and_order():
    jitter = T.ColorJitter(brightness=0.1, contrast=0.1)
    torch.manual_seed(0)
    orders = set()
    for i in range(12):
        img = _photo(i)
        pil = Image.fromarray(img)
        params = jitter.make_params([pil])
        order = [int(k) for k in params["fn_idx"] if int(k) in (0, 1)]  # 0 brightness, 1 contrast
        orders.add(tuple(order))
        ours = ops.colour_jitter(
            img, params["brightness_factor"], params["contrast_factor"], brightness_first=order[0] == 0
        )
        np.testing.assert_array_equal(ours, np.asarray(jitter.transform(pil, params)))
    assert orders == {(0, 1), (1, 0)}  # both orders were exercised


@pytest.mark.parametrize("sigma", [0.1, 0.45, 1.0, 1.37, 2.0])
def test_blur_is_torchvisions_gaussian_blur(sigma):
    img = _photo(4, 128)
    ref = np.asarray(F.gaussian_blur(Image.fromarray(img), [7, 7], [sigma, sigma])).astype(int)
    diff = np.abs(ops.torchvision_blur(img, 7, sigma).astype(int) - ref)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # only float summation order differs


@pytest.mark.parametrize("quality", [40, 63, 91, 100])
def test_jpeg_is_torchvisions_on_pil_images(quality):
    img = _photo(5, 80)
    np.testing.assert_array_equal(
        ops.jpeg(img, quality, TV), np.asarray(F.jpeg(Image.fromarray(img), quality))
    )


def _affine_only(**kw) -> Augmentation:
    base = dict(flip_prob=0.0, rotate_prob=1.0, rotate_limit=(-10, 10), translate_limit=(0.1, 0.1),
                scale_limit=(0.9, 1.1), border="constant", blur_prob=0.0, colour_prob=0.0,
                colour_ops=("brightness_contrast",), jpeg_prob=0.0, semantics=TV)  # fmt: skip
    return Augmentation(**{**base, **kw})


def _pixels(t: torch.Tensor) -> np.ndarray:
    return np.round(t.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)


def _inside(d: ops.AugmentDraw, side: int, margin: int) -> np.ndarray:
    """Output pixels at least ``margin`` pixels away from any pixel sampled from outside the image (near the
    border both libraries blend with the fill, each in its own way)."""
    m = ops.geometry((side, side), d, TV)
    ones = np.ones((side, side), np.uint8)
    inside = cv2.warpAffine(ones, m[:2], (side, side), flags=cv2.INTER_NEAREST, borderValue=0)
    kernel = np.ones((2 * margin + 1,) * 2, np.uint8)
    return cv2.erode(inside, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


@pytest.mark.parametrize("seed", range(4))
def test_affine_is_torchvisions_random_affine(seed):
    """Our one warp (flip + affine + the resize, here to the same side) against torchvision's ``affine`` with
    the drawn angle (clockwise), whole-pixel translation and scale, bilinear, fill 0."""
    side = 96
    img = _photo(seed, side)
    aug = _affine_only(flip_prob=0.5)
    out = _pixels(
        FaceTransform(DataSpec(input_size=side, mean=(0.0,) * 3, std=(1.0,) * 3), aug)(img, seed=seed).image
    )
    d = ops.draw(aug, np.random.default_rng(seed))
    t = torch.from_numpy(img).permute(2, 0, 1).contiguous()
    if d.flip:
        t = F.horizontal_flip(t)
    shift = [round(d.translate[0] * side), round(d.translate[1] * side)]
    ref = F.affine(t, angle=d.angle, translate=shift, scale=d.scale, shear=[0.0, 0.0],
                   interpolation=InterpolationMode.BILINEAR, fill=0)  # fmt: skip
    diff = np.abs(out.astype(int) - ref.permute(1, 2, 0).numpy())[_inside(d, side, 2)]
    # OpenCV samples at 1/32 pixel, torchvision in float: a wrong centre, sign or rounding moves every pixel
    assert diff.mean() < 0.25 and diff.max() <= 2, (diff.mean(), diff.max())


def test_affine_parameters_are_drawn_as_torchvision_draws_them():
    """RandomAffine.make_params: angle U(-10, 10), tx = int(round(U(-0.1 w, 0.1 w))), ty likewise, scale
    U(0.9, 1.1); compared with torchvision's own draws (two-sample KS tests, exact integer supports)."""
    side, n = 100, 4000
    img = Image.fromarray(_photo(0, side))
    affine = T.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))
    torch.manual_seed(0)
    theirs = [affine.make_params([img]) for _ in range(n)]
    aug, rng = _affine_only(), np.random.default_rng(0)
    ours = [ops.draw(aug, rng) for _ in range(n)]
    m = [ops.geometry((side, side), d, TV) for d in ours]
    # the translation is the matrix's offset beyond the rotation about the centre
    c = np.array([(side - 1) / 2, (side - 1) / 2])
    tx = [mm[:2, 2] - c + mm[:2, :2] @ c for mm in m]  # m x = A (x - c) + c + t
    our_t = np.array([[round(float(v[0])), round(float(v[1]))] for v in tx])
    np.testing.assert_allclose(np.array(tx), our_t, atol=1e-9)  # whole pixels
    their_t = np.array([p["translate"] for p in theirs])
    assert set(our_t.ravel()) == set(their_t.ravel()) == set(range(-10, 11))
    for a, b in [
        ([d.angle for d in ours], [p["angle"] for p in theirs]),
        ([d.scale for d in ours], [p["scale"] for p in theirs]),
        (our_t[:, 0], their_t[:, 0]),
        (our_t[:, 1], their_t[:, 1]),
    ]:
        assert stats.ks_2samp(a, b).pvalue > 1e-3
    # the rotation part turns clockwise by the drawn angle, scaled: torchvision's affine convention
    d = ours[0]
    r = m[0][:2, :2] / d.scale
    a = np.deg2rad(d.angle)
    np.testing.assert_allclose(r, [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]], atol=1e-12)


def test_gend_pipeline_is_torchvisions_composition():
    """Flip + affine, blur, ColorJitter, JPEG in GenD's order (init_augmentations), each with the drawn
    parameters, against torchvision's functions; only the affine's resampling differs slightly."""
    side = 160
    aug = get_detector_class("gend").default_recipe.augmentation.with_overrides(blur_prob=1.0)
    spec = DataSpec(input_size=side, mean=(0.0,) * 3, std=(1.0,) * 3)
    for seed in range(3):
        img = _photo(seed + 10, side)
        out = _pixels(FaceTransform(spec, aug)(img, seed=seed).image).astype(int)
        d = ops.draw(aug, np.random.default_rng(seed))
        t = torch.from_numpy(img).permute(2, 0, 1).contiguous()
        t = F.horizontal_flip(t) if d.flip else t
        shift = [round(d.translate[0] * side), round(d.translate[1] * side)]
        t = F.affine(t, angle=d.angle, translate=shift, scale=d.scale, shear=[0.0, 0.0],
                     interpolation=InterpolationMode.BILINEAR, fill=0)  # fmt: skip
        pil = F.gaussian_blur(F.to_pil_image(t), [7, 7], [d.blur[1], d.blur[1]])
        steps = [(F.adjust_brightness, 1.0 + d.beta), (F.adjust_contrast, d.alpha)]
        for fn, factor in steps if d.brightness_first else steps[::-1]:
            pil = fn(pil, factor)
        ref = np.asarray(F.jpeg(pil, d.jpeg_quality)).astype(int)
        diff = np.abs(out - ref)[_inside(d, side, 20)]  # away from the border's JPEG blocks
        assert diff.mean() < 1.0, diff.mean()


def test_draws_follow_gend_probabilities():
    aug = get_detector_class("gend").default_recipe.augmentation
    rng = np.random.default_rng(1)
    draws = [ops.draw(aug, rng) for _ in range(4000)]
    freq = {
        "flip": np.mean([d.flip for d in draws]),
        "affine": np.mean([d.angle is not None for d in draws]),
        "blur": np.mean([d.blur is not None for d in draws]),
        "jitter": np.mean([d.colours() == ("brightness_contrast",) for d in draws]),
        "jpeg": np.mean([d.jpeg_quality is not None for d in draws]),
        "brightness_first": np.mean([d.brightness_first for d in draws]),
    }
    expected = {"flip": 0.5, "affine": 1.0, "blur": 0.1, "jitter": 1.0, "jpeg": 1.0, "brightness_first": 0.5}
    for k, p in expected.items():
        assert abs(freq[k] - p) < 4 * np.sqrt(p * (1 - p) / 4000) + 1e-9, (k, freq[k])
    assert {d.blur[0] for d in draws if d.blur} == {7}
    sigmas = [d.blur[1] for d in draws if d.blur]
    assert min(sigmas) >= 0.1 and max(sigmas) <= 2.0
    factors = [1 + d.beta for d in draws] + [d.alpha for d in draws]
    assert 0.9 <= min(factors) < 0.91 and 1.09 < max(factors) <= 1.1


@pytest.mark.parametrize("semantics", ["suite", TV])
def test_landmarks_and_masks_follow_the_translation(semantics):
    side = 64
    aug = _affine_only(
        rotate_limit=(0, 0), scale_limit=(1, 1), translate_limit=(0.2, 0.1), semantics=semantics
    )
    img = _photo(0, side)
    mask = np.zeros((side, side), np.float32)
    mask[20:40, 24:36] = 1
    lm = np.random.default_rng(0).uniform(10, 50, (68, 2))
    spec = DataSpec(input_size=side, mean=(0.0,) * 3, std=(1.0,) * 3, mask_size=side)
    for seed in range(5):
        out = FaceTransform(spec, aug)(img, lm, mask, seed=seed)
        d = ops.draw(aug, np.random.default_rng(seed))
        shift = np.array([d.translate[0] * side, d.translate[1] * side])
        if semantics == TV:
            shift = np.round(shift)
        np.testing.assert_allclose(out.landmarks, lm + shift, atol=1e-4)
        dx, dy = (int(v) for v in shift) if semantics == TV else (None, None)
        if dx is not None:  # a whole-pixel shift moves the mask and the image exactly
            moved = np.zeros_like(mask)
            moved[20 + dy : 40 + dy, 24 + dx : 36 + dx] = 1
            np.testing.assert_array_equal(out.mask[0].numpy(), moved)


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"colour_ops": ("brightness_contrast", "hsv")}, r"\['hsv'\] have no torchvision semantics"),
        ({"blur_sigma": (0.0, 2.0)}, "GaussianBlur needs sigma > 0"),
        ({"contrast_limit": (-1.5, 0.1)}, "factors 1 \\+ limit must be >= 0"),
    ],
)
def test_settings_torchvision_cannot_express_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        get_detector_class("gend").default_recipe.augmentation.with_overrides(**bad)

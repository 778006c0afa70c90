"""SBI self-blending on real aligned faces: the returned mask explains the image exactly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from datamodules.media.blending import HULL_TYPES, hull_mask, self_blend
from tests.real_faces import aligned_face


@pytest.mark.parametrize("hull", HULL_TYPES)
def test_blend_is_exactly_the_mask_weighted_mix(hull):
    crop, lm = aligned_face("astronaut")
    b = self_blend(crop, lm, np.random.default_rng(7), hull=hull)
    assert b.hull == hull and b.image.dtype == np.uint8 and b.image.shape == crop.shape
    assert b.mask.dtype == np.float32 and b.mask.shape == crop.shape[:2]
    assert b.mask.min() >= 0 and b.mask.max() <= 1 and b.mask.max() > 0.2
    m = b.mask[..., None].astype(np.float64)
    expected = np.round(m * b.source + (1 - m) * b.target)
    np.testing.assert_array_equal(b.image, expected.astype(np.uint8))
    diff = np.abs(b.image.astype(np.float64) - b.target)
    assert (diff <= m * np.abs(b.source.astype(np.float64) - b.target) + 0.5 + 1e-6).all()
    assert (diff[b.mask == 0] == 0).all()
    # the source really differs from the target where it is blended in: that is the forgery signal
    inside = b.mask > 0.5 * b.mask.max()
    assert np.abs(b.source.astype(int) - b.target.astype(int))[inside].mean() > 1.0


def test_mask_sits_on_the_face_and_ratio_scales_it():
    crop, lm = aligned_face("grace_hopper")
    face = cv2.dilate(hull_mask(lm, crop.shape[:2], "extended"), np.ones((31, 31), np.uint8))
    for seed in range(4):
        b = self_blend(crop, lm, np.random.default_rng(seed), ratio=0.5)
        assert b.mask.max() == pytest.approx(0.5, abs=1e-3)
        assert (b.mask * face).sum() / b.mask.sum() > 0.95  # mass inside the (dilated) face
        ys, xs = np.nonzero(b.mask > 0.25)
        assert lm[:, 0].min() < xs.mean() < lm[:, 0].max() and lm[:, 1].min() < ys.mean() < lm[:, 1].max()


def test_seeded_and_varied():
    crop, lm = aligned_face("astronaut")
    a = self_blend(crop, lm, np.random.default_rng(1))
    b = self_blend(crop, lm, np.random.default_rng(1))
    c = self_blend(crop, lm, np.random.default_rng(2))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.mask, b.mask)
    assert not np.array_equal(a.mask, c.mask)


def test_bad_inputs():
    crop, lm = aligned_face("astronaut")
    with pytest.raises(ValueError, match="uint8 RGB"):
        self_blend(crop.astype(np.float32), lm, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"\[68, 2\]"):
        self_blend(crop, lm[:5], np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown hull type 'x'; known: facehull"):
        self_blend(crop, lm, np.random.default_rng(0), hull="x")
    with pytest.raises(ValueError, match="outside the crop"):
        self_blend(crop, lm + 1000, np.random.default_rng(0))

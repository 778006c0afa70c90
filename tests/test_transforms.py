"""Training/eval pipelines keep image, mask and landmarks aligned (real face, landmark-painted masks)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from datamodules.loading.transforms import FaceTransform
from datamodules.media.regions import REGIONS, label_map, region_masks
from datamodules.spec import DataSpec
from tests.real_faces import aligned_face

EYES = REGIONS.index("eyes")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def test_augmentation_moves_image_mask_and_landmarks_together():
    crop, lm = aligned_face("astronaut")
    spec = DataSpec(input_size=128, mean=(0.5,) * 3, std=(0.5,) * 3)
    t = FaceTransform(spec, augment=True)
    eyes = (label_map(lm, 256) == EYES).astype(np.uint8)
    canvas = np.repeat(eyes[..., None] * 255, 3, axis=2).astype(np.uint8)  # eye region as the image
    flips = 0
    for seed in range(12):
        out = t(canvas, lm, eyes.astype(np.float32), seed=seed)
        assert out.landmarks.shape == (68, 2)  # never dropped
        painted = region_masks(out.landmarks, 128, src_size=128, soft=False)[EYES] > 0.5
        moved_mask = out.mask[0].numpy() > 0.5
        moved_image = out.image.numpy().mean(0) > 0.0  # de-normalised > 0.5
        assert _iou(painted, moved_mask) > 0.8, seed
        assert _iou(painted, moved_image) > 0.7, seed
        flips += int(out.landmarks[36, 0] > out.landmarks[45, 0])  # point 36 moved to the right
    assert 0 < flips < 12  # the flip is random, and happened


def test_eval_pipeline_is_resize_and_normalise_only():
    crop, lm = aligned_face("grace_hopper")
    spec = DataSpec(input_size=128, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3), mask_size=32)
    t = FaceTransform(spec, augment=False)
    mask = np.zeros((256, 256), np.float32)
    mask[64:192, 64:192] = 1
    a, b = t(crop, lm, mask, seed=1), t(crop, lm, mask, seed=2)
    np.testing.assert_array_equal(a.image.numpy(), b.image.numpy())
    ref = cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    ref = (ref - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)
    np.testing.assert_allclose(a.image.numpy().transpose(1, 2, 0), ref, atol=1e-4)
    np.testing.assert_allclose(a.landmarks, lm / 2, atol=0.6)
    assert a.mask.shape == (1, 32, 32)
    assert a.mask[0, 16, 16] == 1 and a.mask[0, 2, 2] == 0


def test_seeded_and_rejects_bad_input():
    crop, lm = aligned_face("astronaut")
    t = FaceTransform(DataSpec(input_size=64), augment=True)
    a, b = t(crop, lm, seed=5), t(crop, lm, seed=5)
    np.testing.assert_array_equal(a.image.numpy(), b.image.numpy())
    np.testing.assert_array_equal(a.landmarks, b.landmarks)
    assert t(crop).landmarks is None and t(crop).mask is None
    with pytest.raises(ValueError, match="uint8 RGB"):
        t(crop[..., 0])
    with pytest.raises(ValueError, match="does not match"):
        t(crop, lm, np.zeros((10, 10), np.float32))

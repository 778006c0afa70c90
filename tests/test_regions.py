"""Region masks from real faces (skimage astronaut, matplotlib grace_hopper) detected and aligned here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.media.regions import REGIONS, forehead_points, label_map, pool_to_grid, region_masks
from tests.real_faces import aligned_face

PHOTOS = ("astronaut", "grace_hopper")
EYES, NOSE, MOUTH, FOREHEAD, SKIN, OUTSIDE = range(6)


def _inside(mask: np.ndarray, pts: np.ndarray) -> np.ndarray:
    x = np.clip(np.round(pts[:, 0]).astype(int), 0, mask.shape[1] - 1)
    y = np.clip(np.round(pts[:, 1]).astype(int), 0, mask.shape[0] - 1)
    return mask[y, x]


def test_regions_order_is_fixed():
    assert REGIONS == ("eyes", "nose", "mouth", "forehead", "skin", "outside")


@pytest.mark.parametrize("name", PHOTOS)
def test_masks_partition_the_image(name):
    _, lm = aligned_face(name)
    hard = region_masks(lm, 256, soft=False)
    soft = region_masks(lm, 256)
    assert hard.shape == soft.shape == (len(REGIONS), 256, 256)
    assert set(np.unique(hard)) == {0.0, 1.0}
    np.testing.assert_allclose(hard.sum(0), 1.0)
    np.testing.assert_allclose(soft.sum(0), 1.0, atol=1e-5)
    assert soft.min() >= 0
    # soft masks are a blurred version of the hard ones: same winner almost everywhere
    assert (soft.argmax(0) == hard.argmax(0)).mean() > 0.95
    assert 0 < np.abs(soft - hard).mean() < 0.1
    for r in range(len(REGIONS)):
        assert hard[r].sum() > 50, f"region {REGIONS[r]} is (almost) empty on {name}"


@pytest.mark.parametrize("name", PHOTOS)
def test_regions_sit_where_the_landmarks_are(name):
    _, lm = aligned_face(name)
    lab = label_map(lm, 256)
    assert (_inside(lab, lm[36:42]) == EYES).all() and (_inside(lab, lm[42:48]) == EYES).all()
    assert (_inside(lab, lm[17:27]) == EYES).all()  # brows belong to the eye region
    assert (_inside(lab, lm[48:68]) == MOUTH).all()
    assert (_inside(lab, lm[30:36]) == NOSE).all()
    ys = {r: np.nonzero(lab == r)[0] for r in range(len(REGIONS))}
    assert ys[EYES].max() < ys[MOUTH].min(), "eye region must lie above the mouth region"
    assert ys[EYES].mean() < ys[NOSE].mean() < ys[MOUTH].mean()
    # forehead above the brows, below nothing but hair
    assert ys[FOREHEAD].mean() < lm[17:27, 1].min()
    assert (forehead_points(lm)[:, 1] < lm[17:27, 1]).all()
    # the skin region contains the chin and cheeks; the image corners are outside
    assert _inside(lab, lm[8:9] - [0, 3])[0] == SKIN
    assert (lab[[0, 0, -1], [0, -1, 0]] == OUTSIDE).all()


@pytest.mark.parametrize("name", PHOTOS)
def test_resolution_and_flip_consistency(name):
    _, lm = aligned_face(name)
    full = label_map(lm, 256)
    low = label_map(lm, 64, src_size=256)
    # a 4x4 block's majority label at 256 px should match the 64 px label almost everywhere
    onehot = np.eye(len(REGIONS))[full].reshape(64, 4, 64, 4, -1).sum((1, 3))
    assert (onehot.argmax(-1) == low).mean() > 0.95
    flipped = lm.copy()
    flipped[:, 0] = 255 - flipped[:, 0]
    assert (label_map(flipped, 256)[:, ::-1] == full).mean() > 0.99
    rotated = np.stack([lm[:, 1], 255 - lm[:, 0]], 1)  # 90 degrees counter-clockwise
    assert (np.rot90(full) == label_map(rotated, 256)).mean() > 0.99


def test_pool_to_grid_is_area_average_with_rows_summing_to_one():
    _, lm = aligned_face("astronaut")
    masks = region_masks(lm, 224, src_size=256)
    grid = pool_to_grid(masks, 14)
    assert grid.shape == (196, len(REGIONS))
    torch.testing.assert_close(grid.sum(1), torch.ones(196))
    block = masks[:, 16:32, 32:48].mean((1, 2))  # patch (row 1, col 2)
    torch.testing.assert_close(grid[1 * 14 + 2], torch.as_tensor(block / block.sum()))
    batched = pool_to_grid(torch.stack([torch.as_tensor(masks)] * 2), 14)
    assert batched.shape == (2, 196, len(REGIONS))
    torch.testing.assert_close(batched[1], grid)


def test_bad_landmarks_raise():
    with pytest.raises(ValueError, match=r"\[68, 2\]"):
        region_masks(np.zeros((5, 2)), 64)
    bad = np.zeros((68, 2))
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        region_masks(bad, 64)
    with pytest.raises(ValueError, match="grid"):
        pool_to_grid(torch.ones(6, 8, 8), 0)

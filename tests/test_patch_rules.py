"""Forensics Adapter's two patch-label rules against the released ``split_images_by_patch``.

The reference runs the released function's OpenCV calls (``cv2.threshold``, ``cv2.findNonZero``,
``cv2.bitwise_not``) on the float32 0-255 masks its loader returns (``tests/forensics_adapter_reference.py``);
the stated rule is written from the paper's definition. Patches carry known numbers of fake pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from datamodules.media import masks
from tests.forensics_adapter_reference import released_patch_labels, stated_patch_labels


def counted_mask(counts: list[int], patch: int, grid: int) -> np.ndarray:
    """A ``grid*patch`` square 0/255 float32 mask whose patch ``i`` (row-major) has ``counts[i]`` fake pixels."""
    m = np.zeros((grid * patch, grid * patch), np.float32)
    for i, c in enumerate(counts):
        r, q = divmod(i, grid)
        flat = np.zeros(patch * patch, np.float32)
        flat[:c] = 255.0
        m[r * patch : (r + 1) * patch, q * patch : (q + 1) * patch] = flat.reshape(patch, patch)
    return m


def ours(m255: np.ndarray, patch: int, rule: masks.PatchRule, size: int | None = None):
    t = torch.from_numpy(m255 / np.float32(255.0))[None, None]
    grid = (size or m255.shape[0]) // patch
    lab = masks.patch_labels(t, grid, rule, size=size)
    return lab.fake[0].int().tolist(), lab.boundary[0].int().tolist()


ADAPTER = [0, 1, 25, 26, 28, 29, 30, 128, 255, 256, 40, 12, 27, 200, 100, 3]  # a 4x4 grid of 16x16 patches
CLIP = [0, 19, 20, 21, 22, 23, 196, 195, 98]  # a 3x3 grid of 14x14 patches


def test_released_counts_every_pixel_as_black():
    m = counted_mask(ADAPTER, 16, 4)
    labels, bounds = released_patch_labels(m, 16)
    fake_from = min(c for c, lab in zip(ADAPTER, labels, strict=True) if lab)
    assert fake_from == 29 and labels[ADAPTER.index(28)] == 0  # not 26: 29 / (256 + 29) > 0.1
    assert bounds == labels  # every fake patch is a boundary patch, the fully fake one included
    labels, bounds = released_patch_labels(counted_mask(CLIP, 14, 3), 14)
    assert min(c for c, lab in zip(CLIP, labels, strict=True) if lab) == 22 and bounds == labels


@pytest.mark.parametrize("patch,grid,counts", [(16, 4, ADAPTER), (14, 3, CLIP)])
def test_both_rules_equal_their_references(patch, grid, counts):
    m = counted_mask(counts, patch, grid)
    assert ours(m, patch, masks.FORENSICS_ADAPTER_RELEASED) == released_patch_labels(m, patch)
    stated = stated_patch_labels(m, patch)
    assert ours(m, patch, masks.FORENSICS_ADAPTER) == stated
    n = patch * patch
    assert stated[0] == [int(c / n > 0.1) for c in counts]  # 26 of 256, 20 of 196
    assert stated[1] == [int(0.1 < c / n < 1) for c in counts]  # the fully fake patch is not a boundary


def test_pixel_threshold_is_strictly_above_40():
    m = np.zeros((16, 16), np.float32)
    m.flat[:40] = 40.0  # not fake
    m.flat[40:80] = 41.0  # fake: 40 pixels
    assert released_patch_labels(m, 16)[0] == [1]
    for rule in (masks.FORENSICS_ADAPTER, masks.FORENSICS_ADAPTER_RELEASED):
        frac = masks.patch_fractions(torch.from_numpy(m / np.float32(255.0))[None, None], 1, rule)
        assert torch.allclose(frac, torch.tensor([[40 / 256 if rule.counting == "stated" else 40 / 296]]))


def test_clip_grid_labels_after_the_resize_match_the_released_code():
    """``mode='resize'``: the 256 px mask resized to 224 (``cv2.resize``, bilinear) before 14 px patches."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        m = np.zeros((256, 256), np.float32)
        for _ in range(4):
            y, x = rng.integers(0, 200, 2)
            h, w = rng.integers(8, 90, 2)
            m[y : y + h, x : x + w] = 255.0
        assert (
            ours(m, 14, masks.FORENSICS_ADAPTER_RELEASED, size=224)[0] == released_patch_labels(m, 14, 224)[0]
        )

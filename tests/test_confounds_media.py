"""Per-frame confound features (``datamodules.media.confounds``) against independent references."""

from __future__ import annotations

import io
import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage
from scipy.spatial.transform import Rotation

from datamodules.media import confounds as cf


def _rgb(seed: int = 0, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def test_sharpness_is_the_variance_of_scipys_laplacian():
    g = cf.grey(_rgb(1))
    ref = ndimage.laplace(g, mode="mirror").var()  # OpenCV's BORDER_REFLECT_101 is scipy's "mirror"
    assert cf.sharpness(g) == pytest.approx(ref, rel=1e-9)


def test_brightness_and_contrast_against_numpy_on_pil_grey():
    rgb = _rgb(2)
    g_pil = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float64)  # BT.601 luma, rounded
    g = cf.grey(rgb)
    assert np.abs(g - g_pil).max() <= 1
    assert cf.brightness(g) == pytest.approx(g.mean())
    assert cf.contrast(g) == pytest.approx(math.sqrt(((g - g.mean()) ** 2).mean()))
    assert cf.contrast(np.full((8, 8), 7.0)) == 0


@pytest.mark.parametrize("quality", [10, 30, 50, 75, 90, 95])
def test_jpeg_quality_of_files_pil_wrote_at_known_qualities(quality):
    buf = io.BytesIO()
    Image.fromarray(_rgb(3)).save(buf, format="JPEG", quality=quality)
    assert cf.jpeg_quality(buf.getvalue()) == quality


def test_jpeg_quality_is_missing_for_a_png(tmp_path):
    p = tmp_path / "x.png"
    Image.fromarray(_rgb(4)).save(p)
    assert math.isnan(cf.jpeg_quality(p))
    with pytest.raises(ValueError, match="64 entries"):
        cf.quality_from_table([1, 2, 3])


def test_blockiness_sees_8x8_blocks_on_the_source_grid():
    rng = np.random.default_rng(5)
    blocks = np.kron(rng.uniform(0, 255, (8, 8)), np.ones((8, 8)))  # constant 8x8 blocks
    smooth = blocks + rng.normal(0, 2, blocks.shape)
    assert cf.blockiness(smooth) > 5
    noise = rng.uniform(0, 255, (64, 64))
    assert cf.blockiness(noise) == pytest.approx(1, abs=0.1)
    # the same picture cut at an offset: the grid is the source's, so the origin decides
    assert cf.blockiness(smooth[3:, 5:], origin=(5, 3)) > 5
    assert cf.blockiness(smooth[3:, 5:], origin=(0, 0)) < 2


def test_blockiness_of_a_jpeg_grows_as_quality_falls():
    x = np.linspace(0, 255, 96)
    img = np.clip(np.add.outer(x, x) / 2 + np.random.default_rng(6).normal(0, 8, (96, 96)), 0, 255)
    rgb = np.repeat(img.astype(np.uint8)[..., None], 3, axis=2)

    def coded(q: int) -> float:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=q)
        return cf.blockiness(cf.grey(np.asarray(Image.open(buf).convert("RGB"))))

    assert coded(10) > coded(95)


def _project(yaw: float, pitch: float, roll: float, side: float = 256.0) -> np.ndarray:
    r = Rotation.from_euler("xyz", [pitch, yaw, roll], degrees=True).as_matrix()  # extrinsic: Rz Ry Rx
    rvec = cv2.Rodrigues(r)[0]
    tvec = np.array([0.0, 0.0, 1800.0])
    pts, _ = cv2.projectPoints(cf.GENERIC_FACE, rvec, tvec, cf.camera(side), np.zeros(4))
    lm = np.zeros((68, 2))
    lm[list(cf.POSE_LANDMARKS)] = pts.reshape(-1, 2)
    return lm


@settings(max_examples=25, deadline=None)
@given(
    st.floats(-40, 40),
    st.floats(-25, 25),
    st.floats(-30, 30),
)
def test_head_pose_recovers_a_known_rotation(yaw, pitch, roll):
    got = cf.head_pose(_project(yaw, pitch, roll), 256.0)
    assert got == pytest.approx((yaw, pitch, roll), abs=0.5)


def test_head_pose_refuses_other_landmark_counts_and_is_missing_for_nan():
    with pytest.raises(ValueError, match="68"):
        cf.head_pose(np.zeros((5, 2)), 256)
    assert all(math.isnan(a) for a in cf.head_pose(np.full((68, 2), np.nan), 256))


def test_frame_features_name_what_is_missing():
    crop = _rgb(7, 32)
    out = cf.frame_features(crop, None)
    assert set(cf.FEATURES) <= set(out)
    assert math.isnan(out["face_px"]) and math.isnan(out["yaw"])
    assert "face_px, resize" in out["confounds_note"] and "no landmarks" in out["confounds_note"]
    full = cf.frame_features(
        crop,
        _project(10, 0, 0, 32.0),
        box=np.array([10, 20, 74, 84]),
        block=cf.source_blockiness(_rgb(8, 128), np.array([10, 20, 74, 84])),
    )
    assert full["face_px"] == pytest.approx(64) and full["resize"] == pytest.approx(0.5)
    assert math.isfinite(full["blockiness"]) and math.isfinite(full["yaw"])
    assert full["confounds_note"] == "jpeg_quality: source is not an image file"

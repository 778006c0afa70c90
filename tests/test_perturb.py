"""Test-time perturbations against independent implementations of their published definitions.

The definitions and level tables are those of the DeeperForensics-1.0 release (``EndlessSora/
DeeperForensics-1.0``, ``perturbation/distortions.py`` and ``perturbation/add_distortion_to_video.py``);
the expected values here are computed from those equations with numpy / scipy / fractions / an H.264
decoder other than ours, on a real aligned face (``tests/real_faces.py``), never from our module.
"""

from __future__ import annotations

import tempfile
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.ndimage import gaussian_filter
from scipy.special import ndtri

import datamodules.media.perturb as P
from datamodules.loading.datamodule import ForgeryDataModule, ManifestDataset
from datamodules.loading.transforms import FaceTransform
from datamodules.media.perturb import video
from datamodules.spec import CLIP_MEAN, CLIP_STD, DataSpec
from tests.real_faces import aligned_face

# perturbation/add_distortion_to_video.py, get_distortion_parameter (level 1 .. 5)
RELEASED = {
    "CS": [0.4, 0.3, 0.2, 0.1, 0.0],
    "CC": [0.85, 0.725, 0.6, 0.475, 0.35],
    "BW": [16, 32, 48, 64, 80],
    "GNC": [0.001, 0.002, 0.005, 0.01, 0.05],
    "GB": [7, 9, 13, 17, 21],
    "JPEG": [2, 3, 4, 5, 6],
    "VC": [30, 32, 35, 38, 40],
}
LEVELS = range(1, 6)
KEY = "ds/real/video007/42"


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    return aligned_face("astronaut")[0]


def _param(code: str, level: int):
    p = P.get_perturbation(code, level)
    (value,) = p.params.values()
    return p, value


# ---------------------------------------------------------------------------------- registry and levels
def test_levels_are_the_released_table_and_codes_resolve():
    for code, values in RELEASED.items():
        got = [_param(code, lv)[1] for lv in LEVELS]
        assert got == values, code
    assert P.get_perturbation("GB", 2).name == "gaussian_blur"
    assert [p.tag for p in P.perturbation_grid(levels=(1,))][:3] == [
        "clean",
        "color_saturation@1",
        "color_contrast@1",
    ]
    assert len(P.perturbation_grid()) == 1 + 7 * 5
    with pytest.raises(ValueError, match="unknown perturbation 'fog'"):
        P.get_perturbation("fog", 1)
    with pytest.raises(ValueError, match="levels 0-5, got 6"):
        P.get_perturbation("GB", 6)


def test_records_round_trip():
    for p in P.perturbation_grid(levels=(2,), seed=4):
        assert P.Perturbation.from_dict(p.to_dict()) == p
    with pytest.raises(ValueError, match=r"recorded gaussian_blur@2 has params \{'kernel': 11\}"):
        P.Perturbation.from_dict({"name": "gaussian_blur", "level": 2, "params": {"kernel": 11}})


def test_clean_and_level_zero_are_the_identity(face):
    for p in [P.get_perturbation("clean", 0)] + [P.get_perturbation(n, 0) for n in P.DEEPERFORENSICS]:
        assert p.is_identity and p.tag == "clean"
        if p.kind == "image":
            assert p.apply(face, KEY) is face
        else:
            assert p.apply_clip([face], "v")[0] is face


# ---------------------------------------------------------------------------------- the seven definitions
@pytest.mark.parametrize("level", LEVELS)
def test_color_saturation_scales_bt601_chroma(face, level):
    """Chroma of Y'CbCr (BT.601 luma 0.299/0.587/0.114) times the factor: RGB' = Y + f (RGB - Y), truncated.

    The released float pipeline adds a chroma shift of -(1 - f)/448 (its studio-range offsets around
    OpenCV's float offset 0.5 do not cancel), which moves a value across an integer now and then: at most
    one level, at few pixels; on a neutral pixel it shows as (v-1, v, v-1).
    """
    p, f = _param("CS", level)
    x = face.astype(np.float64)
    y = x @ np.array([0.299, 0.587, 0.114])
    exact = y[..., None] + f * (x - y[..., None])
    out = p.apply(face, KEY).astype(int)
    diff = out - np.floor(exact + 1e-9)
    assert np.abs(diff).max() <= 1
    assert (diff != 0).mean() < 0.03
    grey = np.broadcast_to(np.arange(1, 256, dtype=np.uint8)[:, None, None], (255, 4, 3)).copy()
    g = p.apply(grey, KEY).astype(int)
    v = np.arange(1, 256)[:, None]
    assert (g[..., 0] == v - 1).all() and (g[..., 1] == v).all() and (g[..., 2] == v - 1).all()


@pytest.mark.parametrize("level", LEVELS)
def test_color_contrast_is_the_truncated_product(level):
    """Every value x becomes floor(x * factor) (the released float32 product equals it for all x)."""
    p, f = _param("CC", level)
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    expected = np.array([int(Fraction(int(v)) * Fraction(str(f)) // 1) for v in range(256)]).reshape(
        16, 16, 1
    )
    assert (p.apply(ramp, KEY).astype(int) == expected).all()


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("side", [256, 512])
def test_block_wise_grey_8px_blocks_count_and_places(face, level, side):
    """min(H, W) // 256 * blocks grey (128) 8x8 blocks, corners uniform in [0, W-9] x [0, H-9]."""
    p, blocks = _param("BW", level)
    img = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    img[img == 128] = 127  # so that every 128 of the output is a block pixel
    n = side // 256 * blocks
    rng = p.rng(KEY)  # the documented draw: corners (x, y) = rng.integers(0, (W - 8, H - 8), size=(n, 2))
    corners = rng.integers(0, (side - 8, side - 8), size=(n, 2))
    expected = img.copy()
    for x, y in corners:
        expected[y : y + 8, x : x + 8] = 128
    out = p.apply(img, KEY)
    assert (out == expected).all()
    changed = (out != img).any(axis=2)
    assert (out[changed] == 128).all()
    assert 64 <= changed.sum() <= 64 * n


def _cdf_sigma(residual: np.ndarray, limit: int = 100) -> float:
    """Std of N(0, s^2) from r = floor(n) (truncation of an integer plus noise): P(r <= k) = Phi((k + 1) / s).

    Fitted on the quantiles of k with |k| < ``limit``, which clipping cannot move when every pixel x has
    x > limit and 255 - x > limit (clipping only changes r beyond -x or 255 - x).
    """
    r = residual.ravel()
    ks = np.arange(-limit, limit)
    cdf = np.searchsorted(np.sort(r), ks, side="right") / r.size
    keep = (cdf > 0.02) & (cdf < 0.98)
    z = ndtri(cdf[keep])
    return float(((ks[keep] + 1) * z).sum() / (z * z).sum())


@pytest.mark.parametrize("level", LEVELS)
def test_gaussian_noise_is_white_in_ycbcr_with_the_released_spread(face, level):
    """Noise N(0, var) on each of Y', Cb, Cr normalised to studio range ([16, 235] / [16, 240] over 255).

    On the 0-255 scale: std sqrt(var) 255^2/219 on Y and sqrt(var) 255^2/224 on Cb/Cr, so in RGB (BT.601
    inverse: R = Y + 1.402 Cr, G = Y - 0.344136 Cb - 0.714136 Cr, B = Y + 1.772 Cb) each channel has its own
    spread. Tolerance 3 %: the fitted std of 65,536 samples has a relative standard error near 0.5 %, and
    OpenCV's inverse coefficients differ from BT.601's by under 0.1 %.
    """
    p, var = _param("GNC", level)
    img = (face // 8 + 112).astype(np.uint8)  # values 112..143: clipping never reaches the fitted quantiles
    out = p.apply(img, KEY).astype(int)
    s_y, s_c = np.sqrt(var) * 255**2 / 219, np.sqrt(var) * 255**2 / 224
    expected = [np.hypot(s_y, 1.402 * s_c), np.sqrt(s_y**2 + (0.344136 * s_c) ** 2 + (0.714136 * s_c) ** 2)]
    expected.append(np.hypot(s_y, 1.772 * s_c))
    for c in range(3):
        got = _cdf_sigma(out[..., c] - img[..., c])
        assert got == pytest.approx(expected[c], rel=0.03), (c, got, expected[c])
    if level <= 3:  # (almost) no clipping: R and B share only the Y noise, cov = s_y^2 (SE of r ~ 0.004)
        r = out - img.astype(int)
        corr = np.corrcoef(r[..., 0].ravel(), r[..., 2].ravel())[0, 1]
        assert corr == pytest.approx(s_y**2 / (expected[0] * expected[2]), abs=0.02)


@pytest.mark.parametrize("level", LEVELS)
def test_gaussian_blur_kernel_side_and_sigma(face, level):
    """Gaussian of side k and sigma k/6, reflect-101 border (scipy's 'mirror'), against scipy.ndimage."""
    p, k = _param("GB", level)
    out = p.apply(face, KEY).astype(float)

    def ref(side: int) -> np.ndarray:
        return gaussian_filter(
            face.astype(float), sigma=(side / 6, side / 6, 0), radius=(side // 2, side // 2, 0), mode="mirror"
        )

    diff = np.abs(out - ref(k))
    assert diff.max() <= 1.0 + 1e-6  # rounding of a float filter to uint8
    assert diff.mean() < 0.5
    for other in {RELEASED["GB"][max(0, level - 2)], RELEASED["GB"][min(4, level)]} - {k}:
        assert (
            np.abs(out - ref(other)).mean() > 2 * diff.mean()
        )  # the test can tell neighbouring levels apart


def _axis(n_src: int, n_dst: int):
    """OpenCV's bilinear sampling on one axis: half-pixel centres, clamped at the borders."""
    x = (np.arange(n_dst) + 0.5) * n_src / n_dst - 0.5
    x0 = np.floor(x).astype(int)
    fx = np.where(x0 < 0, 0.0, x - x0)
    x0 = np.clip(x0, 0, n_src - 1)
    fx = np.where(x0 >= n_src - 1, 0.0, fx)
    return x0, np.minimum(x0 + 1, n_src - 1), fx


def _bilinear(img: np.ndarray, w: int, h: int) -> np.ndarray:
    a = img.astype(np.float64)
    y0, y1, fy = _axis(a.shape[0], h)
    a = a[y0] * (1 - fy)[:, None, None] + a[y1] * fy[:, None, None]
    x0, x1, fx = _axis(a.shape[1], w)
    return a[:, x0] * (1 - fx)[None, :, None] + a[:, x1] * fx[None, :, None]


@pytest.mark.parametrize("level", LEVELS)
def test_jpeg_compression_is_the_released_down_up_resize(face, level):
    """The released 'JPEG compression' resizes to (W // f, H // f) and back, bilinear both ways (no codec).

    Tolerance 2 levels: OpenCV resizes uint8 in fixed point (11-bit weights) and rounds the small image.
    """
    p, f = _param("JPEG", level)
    out = p.apply(face, KEY).astype(float)
    h, w = face.shape[:2]
    ref = _bilinear(np.round(_bilinear(face, w // f, h // f)), w, h)
    assert np.abs(out - ref).max() <= 2
    assert np.abs(out - ref).mean() < 0.5
    if round(w / f) != w // f:  # f = 6 on 256 px: the small side is 42, not 43
        ref_round = _bilinear(np.round(_bilinear(face, round(w / f), round(h / f))), w, h)
        assert np.abs(out - ref_round).max() > 20


def _x264_options(data: bytes) -> dict[str, str]:
    """The encoder settings x264 writes into its SEI user-data message."""
    i = data.find(b"x264 - core")
    text = data[i : data.index(b"\x00", i)].decode()
    return dict(kv.split("=", 1) for kv in text.split("options: ", 1)[1].split() if "=" in kv)


def test_video_compression_writes_h264_at_the_released_crf_and_decodes_like_opencv(face):
    frames = [np.roll(face, 3 * i, axis=1) for i in range(12)]
    psnr = []
    for level in LEVELS:
        p, crf = _param("VC", level)
        data = video.encode_h264(frames, crf)
        opts = _x264_options(data)
        assert opts["rc"] == "crf" and float(opts["crf"]) == crf
        assert opts["bframes"] == "3" and opts["keyint"] == "250"  # x264's medium preset, as ffmpeg uses it
        with tempfile.TemporaryDirectory() as tmp:  # an independent decoder: OpenCV's FFmpeg
            path = Path(tmp) / "clip.mp4"
            path.write_bytes(data)
            cap, decoded = cv2.VideoCapture(str(path)), []
            while (f := cap.read())[0]:
                decoded.append(f[1][:, :, ::-1])
            cap.release()
        ours = p.apply_clip(frames, "v")
        assert len(ours) == len(frames) and all((a == b).all() for a, b in zip(ours, decoded, strict=True))
        assert video.encode_h264(frames, crf) == data  # deterministic (x264 on one thread)
        psnr.append(np.mean([cv2.PSNR(a, b) for a, b in zip(ours, frames, strict=True)]))
    assert all(a > b for a, b in zip(psnr, psnr[1:], strict=False)), psnr  # higher CRF, lower quality
    odd = [f[:255, :253] for f in frames[:3]]  # yuv420p needs even sides: padded, then cropped back
    assert [o.shape for o in video.h264_roundtrip(odd, 30)] == [(255, 253, 3)] * 3


# ---------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("name", P.IMAGE_DISTORTIONS)
def test_same_seed_and_sample_same_bytes_other_sample_other_draw(face, name):
    p = P.get_perturbation(name, 3, seed=7)
    a, b = p.apply(face, KEY), p.apply(face.copy(), KEY)
    assert a.tobytes() == b.tobytes()
    assert (face == aligned_face("astronaut")[0]).all()  # the input is never modified
    if name in ("block_wise", "gaussian_noise_color"):  # the random ones
        assert not (p.apply(face, KEY + "x") == a).all()
        assert not (P.get_perturbation(name, 3, seed=8).apply(face, KEY) == a).all()


def test_levels_share_their_random_numbers(face):
    """Level 5's first blocks are level 1's: a level sweep compares the same draw at growing strength."""
    lo, hi = (P.get_perturbation("BW", lv).apply(face, KEY) for lv in (1, 5))
    lo_blocks = (lo != face).any(axis=2)
    assert lo_blocks.any() and (hi[lo_blocks] == 128).all()


# ---------------------------------------------------------------------------------- user perturbations
_ANNEX_K_LUMA = [
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99],
]  # fmt: skip
_ANNEX_K_CHROMA = [
    [17, 18, 24, 47, 99, 99, 99, 99], [18, 21, 26, 66, 99, 99, 99, 99], [24, 26, 56, 99, 99, 99, 99, 99],
    [47, 66, 99, 99, 99, 99, 99, 99],
] + [[99] * 8] * 4  # fmt: skip


def _zigzag() -> list[tuple[int, int]]:
    """(row, col) of each coefficient in JPEG's zig-zag order (anti-diagonals, alternating direction)."""
    order = []
    for s in range(15):
        cells = [(i, s - i) for i in range(8) if 0 <= s - i < 8]
        order += cells if s % 2 else cells[::-1]
    return order


def _dqt_tables(jpeg: bytes) -> list[np.ndarray]:
    tables, i = [], 2
    while i < len(jpeg) and jpeg[i] == 0xFF and jpeg[i + 1] != 0xDA:
        length = int.from_bytes(jpeg[i + 2 : i + 4], "big")
        if jpeg[i + 1] == 0xDB:
            seg, j = jpeg[i + 4 : i + 2 + length], 0
            while j < len(seg):
                assert seg[j] >> 4 == 0  # 8-bit tables
                t = np.zeros((8, 8), int)
                for k, (r, c) in enumerate(_zigzag()):
                    t[r, c] = seg[j + 1 + k]
                tables.append(t)
                j += 65
        i += 2 + length
    return tables


def _ijg(base: list[list[int]], quality: int) -> np.ndarray:
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((np.array(base) * scale + 50) // 100, 1, 255)


def test_user_perturbation_from_an_albumentations_config_writes_the_jpeg_quality_asked(face):
    qualities = [90, 50, 20]
    spec = [{"__class_fullname__": "ImageCompression", "quality_range": [q, q]} for q in qualities]
    d = P.register_config({"name": "jpeg_quality_test", "albumentations": spec}, replace=True)
    assert d.name in P.list_perturbations() and len(d.levels) == 3
    for level, q in enumerate(qualities, 1):
        p = P.get_perturbation("jpeg_quality_test", level)
        ok, buf = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, q])  # what ImageCompression runs
        luma, chroma = _dqt_tables(buf.tobytes())[:2]
        assert (luma == _ijg(_ANNEX_K_LUMA, q)).all() and (chroma == _ijg(_ANNEX_K_CHROMA, q)).all()
        assert (p.apply(face, KEY) == cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)).all()
        rebuilt = P.Perturbation(p.name + "_unregistered", level, p.params)  # e.g. in a spawned worker
        assert (rebuilt.apply(face, KEY) == p.apply(face, KEY)).all()


def test_random_user_perturbation_is_seeded_per_sample(face):
    spec = {"__class_fullname__": "GaussNoise", "std_range": [0.05, 0.2]}
    P.register_config({"name": "rgb_noise_test", "albumentations": spec}, replace=True)
    p = P.get_perturbation("rgb_noise_test", 1, seed=3)
    a = p.apply(face, KEY)
    assert (a == p.apply(face, KEY)).all() and not (a == p.apply(face, KEY + "y")).all()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"albumentations": {}}, "needs a 'name'"),
        ({"name": "x"}, "needs 'albumentations'"),
        ({"name": "x", "albumentations": {"p": 1}}, "needs '__class_fullname__'"),
        (
            {"name": "x", "albumentations": {"__class_fullname__": "NoSuchTransform"}},
            "level 1: albumentations cannot",
        ),
        ({"name": "x", "albumentations": [], "levels": 3}, r"unknown keys \['levels'\]"),
        ({"name": "gaussian_blur", "albumentations": {"__class_fullname__": "Blur"}}, "already registered"),
    ],
)
def test_bad_user_configs_name_the_culprit(config, message):
    with pytest.raises(ValueError, match=message):
        P.register_config(config)


# ---------------------------------------------------------------------------------- preprocessing views
def test_identity_view_and_clean_perturbation_leave_the_transform_unchanged(face):
    spec = DataSpec(input_size=224, mean=CLIP_MEAN, std=CLIP_STD)
    lm = aligned_face("astronaut")[1]
    plain = FaceTransform(spec, augment=False)(face, lm)
    other = FaceTransform(spec, False, P.get_perturbation("clean", 0), P.CropView())(face, lm, sample_key=KEY)
    assert torch.equal(plain.image, other.image) and (plain.landmarks == other.landmarks).all()


@pytest.mark.parametrize("margin", [1.0, 1.15])
def test_zoom_is_preprocessing_at_a_tighter_margin(margin):
    """CropView.from_margin(m, 1.3) of a 1.3-margin crop vs the same photo aligned at margin m directly."""
    stored, lm = aligned_face("astronaut", 256, 1.3)
    direct, lm_direct = aligned_face("astronaut", 256, margin)
    view = P.CropView.from_margin(margin, 1.3)
    img, _, m = view.apply(stored)
    moved = lm @ m[:2, :2].T + m[:2, 2]
    z = 1.3 / margin
    assert np.allclose(moved, z * (lm - 128.0) + 128.0)  # a scale about the template's fixed point
    inner = (slice(16, 240), slice(16, 240))
    err = np.abs(img.astype(float) - direct)[inner].mean()
    assert err < 0.4 * np.abs(stored.astype(float) - direct)[inner].mean()
    assert err < 8  # two resamplings of the same pixels, not one
    assert np.linalg.norm(moved - lm_direct, axis=1).mean() < 2.5  # dlib on the two crops


def test_crop_size_is_preprocessing_at_another_side():
    stored = aligned_face("astronaut", 256, 1.3)[0]
    small = aligned_face("astronaut", 128, 1.3)[0]
    img, _, _ = P.CropView(crop_size=128).apply(stored)
    assert img.shape == (128, 128, 3)
    assert np.abs(img.astype(float) - small).mean() < 5


def test_view_interpolation_and_limits(face):
    spec = DataSpec(input_size=100, mean=(0.0,) * 3, std=(1.0,) * 3)
    out = FaceTransform(spec, False, view=P.CropView(interpolation="nearest"))(face).image.numpy()
    centre = (np.arange(100) + 0.5) * 256 / 100  # where each output pixel centre falls, in source pixels
    idx = np.floor(centre).astype(int)
    tie = (2 * np.arange(100) + 1) * 256 % 200 == 0  # exactly between two pixels: either is nearest
    expected = face[idx][:, idx].transpose(2, 0, 1) / 255.0
    assert (np.abs(out - expected).max(axis=0) < 1e-6)[~tie][:, ~tie].all()
    area = FaceTransform(spec, False)(face).image.numpy()
    assert np.abs(out - area).mean() > 0.005
    with pytest.raises(ValueError, match="zooming out"):
        P.CropView(zoom=0.9)
    with pytest.raises(ValueError, match="wider than the stored crops' 1.3"):
        P.CropView.from_margin(1.5, 1.3)
    with pytest.raises(ValueError, match="interpolation 'cubic' unknown"):
        P.CropView(interpolation="cubic")


# ---------------------------------------------------------------------------------- the data path
def _manifest(root: Path, videos: int = 2, frames: tuple[int, ...] = (3, 0, 9, 6)) -> Path:
    crops = [aligned_face(n) for n in ("astronaut", "grace_hopper")]
    (root / "crops").mkdir(parents=True)
    rows = []
    for v in range(videos):
        crop, lm = crops[v % 2]
        for f in frames:
            stem = f"crops/v{v}_{f}"
            img = np.clip(crop.astype(int) + f - 4, 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / f"{stem}.png"), img[:, :, ::-1])
            np.save(root / f"{stem}.npy", lm)
            label = v % 2
            rows.append(
                dict(dataset="t", split="test", label=label, method="M" if label else "real",
                     compression="raw",
                     video_id=f"t/{'M' if label else 'real'}/{v:03d}", frame_index=f, crop_path=f"{stem}.png",
                     landmarks_path=f"{stem}.npy", mask_path="", status="ok", reason="")
            )  # fmt: skip
    path = root / "manifest.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return _manifest(tmp_path_factory.mktemp("perturbed"))


def _test_batches(manifest: Path, workers: int = 0, **kw) -> list:
    spec = DataSpec(input_size=128, region_masks=True)
    dm = ForgeryDataModule(
        spec, "t", ["t"], {"t": manifest}, eval_batch_size=3, frames_test=4, num_workers=workers, **kw
    )
    dm.setup("test")
    return list(dm.test_dataloader()[0])


def test_datamodule_clean_is_bitwise_the_default_and_perturbation_follows_sample_ids(manifest):
    default = _test_batches(manifest)
    clean = _test_batches(manifest, test_perturbation=P.get_perturbation("clean", 0), test_view=P.CropView())
    for a, b in zip(default, clean, strict=True):
        assert torch.equal(a.image, b.image) and torch.equal(a.region_masks, b.region_masks)
    p = P.get_perturbation("GNC", 2, seed=5)
    noisy = _test_batches(manifest, test_perturbation=p)
    noisy_workers = _test_batches(manifest, workers=2, test_perturbation=p)
    ds = ManifestDataset(
        pd.read_parquet(manifest), manifest.parent, DataSpec(input_size=128), False, [], False
    )
    transform = FaceTransform(DataSpec(input_size=128), False)
    for batch, again in zip(noisy, noisy_workers, strict=True):
        assert torch.equal(batch.image, again.image)  # independent of the number of workers
        for j, sid in enumerate(batch.sample_id):
            i = next(
                k for k in range(len(ds)) if f"{ds.rows['video_id'][k]}/{ds.rows['frame_index'][k]}" == sid
            )
            expected = transform(p.apply(ds._image(i), sid)).image
            assert torch.equal(batch.image[j], expected)


def test_video_compression_in_the_dataset_encodes_each_video_in_frame_order(manifest):
    p = P.get_perturbation("VC", 3)
    rows = pd.read_parquet(manifest)
    ds = ManifestDataset(rows, manifest.parent, DataSpec(input_size=256), False, [], False, perturbation=p)
    for video_id, g in rows.groupby("video_id"):
        g = g.sort_values("frame_index")
        crops = [cv2.imread(str(manifest.parent / c), cv2.IMREAD_COLOR_RGB) for c in g["crop_path"]]
        expected = video.h264_roundtrip(crops, 35)
        for (i, _), exp in zip(g.iterrows(), expected, strict=True):
            assert (ds._read(i) == exp).all(), (video_id, i)
    with pytest.raises(ValueError, match="acts on a video's frames together"):
        FaceTransform(DataSpec(), False, p)

"""Augmentation on the device (augment_on_device): same per-sample draws and geometry as the CPU path,
deterministic per seed, masks and landmarks follow the image, ops close to the CPU ops, Lightning calls it."""

from __future__ import annotations

from dataclasses import replace

import cv2
import lightning as L
import numpy as np
import pytest
import torch

from datamodules.augmentation import Augmentation
from datamodules.batch import Batch
from datamodules.loading import augment as ops
from datamodules.loading import device_ops as dops
from datamodules.loading.datamodule import ForgeryDataModule
from datamodules.loading.device_augment import RAW, DeviceAugment, raw_fields
from datamodules.loading.transforms import FaceTransform
from datamodules.manifest import DataError
from datamodules.media.regions import REGIONS, region_masks
from datamodules.spec import DataSpec
from tests.real_faces import aligned_face
from tests.test_datamodule import _write_dataset

SPEC = DataSpec(input_size=224, mean=(0.48, 0.46, 0.41), std=(0.27, 0.26, 0.28), region_masks=True)
GEOMETRY_ONLY = dict(blur_prob=0.0, colour_prob=0.0, jpeg_prob=0.0, rotate_prob=1.0, scale_limit=(0.9, 1.1))


def _raw(seeds, faces=("astronaut", "grace_hopper"), masks=None) -> Batch:
    crops, lms = zip(*[aligned_face(faces[i % len(faces)]) for i in range(len(seeds))], strict=True)
    ids = [f"s{i}" for i in range(len(seeds))]
    stacked, raw = raw_fields(list(crops), list(lms), masks, list(seeds), ids)
    n = len(seeds)
    batch = Batch(
        image=stacked["image"], label=torch.zeros(n, dtype=torch.long), sample_id=ids, video_id=ids,
        dataset=["d"] * n, method=["real"] * n,
    )  # fmt: skip
    batch.extra[RAW] = raw
    return batch


def _fresh(batch: Batch) -> Batch:
    return replace(batch, extra={RAW: dict(batch.extra[RAW])})


def _pixels(image: torch.Tensor, spec: DataSpec) -> np.ndarray:
    """Normalised [B,3,S,S] back to 0..255 (as the uint8 values the CPU path normalised)."""
    mean = np.asarray(spec.mean, np.float32)[None, :, None, None] * 255
    std = np.asarray(spec.std, np.float32)[None, :, None, None] * 255
    return image.numpy() * std + mean


@pytest.mark.parametrize("semantics", ["suite", ops.ALBU])
def test_same_draws_geometry_and_landmarks_as_the_cpu_path(semantics):
    aug = Augmentation(semantics=semantics, scale_limit=(0.9, 1.1))
    seeds = list(range(100, 116))
    dev = DeviceAugment(SPEC, aug)
    out = dev(_fresh(_raw(seeds)))
    cpu = FaceTransform(SPEC, aug)
    for j, seed in enumerate(seeds):
        assert dev.draws([seed])[0] == ops.draw(aug, np.random.default_rng(seed))
        crop, lm = aligned_face(("astronaut", "grace_hopper")[j % 2])
        ref = cpu(crop, lm, seed=seed)
        np.testing.assert_allclose(out.extra["landmarks"][j].numpy(), ref.landmarks, atol=1e-4)


@pytest.mark.parametrize("border", ["reflect101", "constant"])
def test_geometric_pixels_are_within_one_grey_level_of_opencv(border):
    aug = Augmentation(border=border, **GEOMETRY_ONLY)
    seeds = list(range(8))
    out = _pixels(DeviceAugment(SPEC, aug)(_fresh(_raw(seeds))).image, SPEC)
    cpu = FaceTransform(SPEC, aug)
    for j, seed in enumerate(seeds):
        crop, lm = aligned_face(("astronaut", "grace_hopper")[j % 2])
        ref = _pixels(cpu(crop, lm, seed=seed).image[None], SPEC)[0]
        diff = np.abs(out[j] - ref)
        # OpenCV quantises sampling positions to 1/32 pixel: +-1, more only on the sharpest edges
        assert diff.mean() < 0.3 and np.quantile(diff, 0.99) <= 1.01 and diff.max() <= 8.01, (
            seed,
            diff.max(),
        )


def test_flip_rate_rotation_and_scale_follow_the_draws():
    aug = Augmentation(rotate_prob=0.7, scale_limit=(0.8, 1.2), blur_prob=0, colour_prob=0, jpeg_prob=0)
    seeds = list(range(1000, 1160))
    dev = DeviceAugment(DataSpec(input_size=64), aug)
    lm_out = dev(_fresh(_raw(seeds, faces=("astronaut",)))).extra["landmarks"].double().numpy()
    _, lm = aligned_face("astronaut")
    eye_in = lm[45] - lm[36]
    flips, angles = [], []
    for j, d in enumerate(dev.draws(seeds)):
        flipped = lm_out[j, 36, 0] > lm_out[j, 45, 0]  # the outer corner of the left eye went right
        assert flipped == d.flip
        flips.append(flipped)
        eye_out = lm_out[j, 45] - lm_out[j, 36]
        if d.flip:
            eye_out = eye_out * [-1, 1]  # undo the mirror to read the rotation
        turn = np.degrees(np.arctan2(eye_out[1], eye_out[0]) - np.arctan2(eye_in[1], eye_in[0]))
        turn = (turn + 180) % 360 - 180
        # OpenCV's positive angle turns counter-clockwise on screen: y points down, so the eye line's angle falls
        expected = 0.0 if d.angle is None else (d.angle if d.flip else -d.angle)
        assert turn == pytest.approx(expected, abs=1e-3), (j, d)
        scale = (1.0 if d.angle is None else d.scale) * 64 / 256
        assert np.linalg.norm(eye_out) / np.linalg.norm(eye_in) == pytest.approx(scale, rel=1e-6)
        if d.angle is not None:
            angles.append(d.angle)
    n = len(seeds)
    assert abs(np.mean(flips) - 0.5) < 4 * np.sqrt(0.25 / n)
    assert abs(len(angles) / n - 0.7) < 4 * np.sqrt(0.21 / n)
    assert -10 <= min(angles) < -8 and 8 < max(angles) <= 10  # the rotation range is covered, never exceeded


def test_forgery_mask_and_region_masks_follow_the_image():
    crop, lm = aligned_face("astronaut")
    hull = np.zeros((256, 256), np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(lm[:27].astype(np.int32)), 255)
    canvas = crop.copy()
    canvas[..., 0] = hull  # the red channel IS the mask
    spec = DataSpec(input_size=128, mean=(0, 0, 0), std=(1, 1, 1), region_masks=True, forgery_masks=True)
    aug = Augmentation(**GEOMETRY_ONLY)
    seeds = list(range(20, 28))
    stacked, raw = raw_fields(
        [canvas] * 8, [lm] * 8, [hull.astype(np.float32) / 255] * 8, seeds, list("abcdefgh")
    )
    batch = Batch(image=stacked["image"], label=torch.ones(8, dtype=torch.long), sample_id=list("abcdefgh"),
                  video_id=list("abcdefgh"), dataset=["d"] * 8, method=["f"] * 8)  # fmt: skip
    batch.extra[RAW] = raw
    out = DeviceAugment(spec, aug)(batch)
    red = out.image[:, 0].numpy() * 255
    mask = out.forgery_mask[:, 0].numpy() * 255
    assert out.forgery_mask.shape == (8, 1, 128, 128)
    assert np.abs(red - mask).max() <= 0.5 + 1e-3  # one sampling grid: the image only adds its rounding
    assert out.region_masks.shape == (8, len(REGIONS), 128, 128)
    np.testing.assert_allclose(out.region_masks.sum(1).numpy(), 1.0, atol=1e-5)
    for j in range(8):
        lm_j = out.extra["landmarks"][j].numpy()
        ref = region_masks(lm_j, 128, 128, soft=True)
        assert np.abs(out.region_masks[j].numpy() - ref).mean() < 0.005
        hard_dev = DeviceAugment(spec, aug, soft_regions=False)
        eyes = out.region_masks[j, REGIONS.index("eyes")].numpy()
        ys, xs = np.nonzero(eyes > 0.5)
        centre = np.array([xs.mean(), ys.mean()])
        eyes_and_brows = np.concatenate([lm_j[17:27], lm_j[36:48]])
        assert np.linalg.norm(centre - eyes_and_brows.mean(0)) < 3  # the eyes mask sits on the moved eyes
    hard = hard_dev(_fresh(_raw(seeds, faces=("astronaut",))))
    for j in range(8):
        ref = region_masks(hard.extra["landmarks"][j].numpy(), 128, 128, soft=False)
        agree = (hard.region_masks[j].argmax(0).numpy() == ref.argmax(0)).mean()
        assert agree > 0.99  # fillPoly steps edges in fixed point: a few edge pixels differ


@pytest.mark.parametrize("semantics", ["suite", ops.ALBU])
def test_photometric_ops_match_the_cpu_ops(semantics):
    crop, _ = aligned_face("grace_hopper")
    x = torch.from_numpy(crop).permute(2, 0, 1)[None].float()

    def diff(cpu: np.ndarray, dev: torch.Tensor) -> np.ndarray:
        return np.abs(dev[0].permute(1, 2, 0).numpy() - cpu.astype(np.float32))

    lut = ops.brightness_contrast_lut(1.07, -0.06, semantics)
    assert diff(cv2.LUT(crop, lut), dops.brightness_contrast(x, [1.07], [-0.06], semantics)).max() == 0
    for alpha in (0.13, -0.2):
        assert diff(ops.fancy_pca(crop, alpha, semantics), dops.fancy_pca(x, [alpha], semantics)).max() == 0
    for shifts in ((12.3, -17.6, 9.1), (0.0, 25.0, 0.0), (-19.5, 0.0, -11.0)):
        d = diff(ops.hsv_shift(crop, shifts, semantics), dops.hsv_shift(x, [shifts], semantics))
        assert d.max() <= 1 and d.mean() < 0.5  # OpenCV's HSV -> RGB rounds some pixels the other way
    hsv = cv2.cvtColor(crop, cv2.COLOR_RGB2HSV)
    assert np.array_equal(dops.rgb_to_hsv8(x)[0].permute(1, 2, 0).numpy(), hsv)  # its integer arithmetic
    for q in (40, 77, 100):
        d = diff(ops.jpeg(crop, q, semantics), dops.jpeg(x, [q], semantics))
        assert d.mean() < 0.5 and d.max() <= 8
    for k, sigma in ((3, 0.0), (5, 0.0), (7, 1.3)):
        ref = cv2.GaussianBlur(crop, (k, k), sigma, borderType=cv2.BORDER_REFLECT_101)
        d = diff(ref, dops.gaussian_blur(x, [(k, sigma)]))
        assert d.max() <= 1 and d.mean() < 0.1  # OpenCV blurs uint8 in fixed point


def test_deterministic_per_seed_and_independent_of_batch_mates():
    aug = Augmentation(blur_prob=1.0, colour_prob=1.0, jpeg_prob=1.0)
    seeds = [7, 8, 9, 10, 11, 12]
    dev = DeviceAugment(SPEC, aug)
    batch = _raw(seeds)
    a, b = dev(_fresh(batch)), dev(_fresh(batch))
    assert torch.equal(a.image, b.image) and torch.equal(a.region_masks, b.region_masks)
    alone = dev(_fresh(_raw(seeds[2:3], faces=("astronaut",))))  # sample 2 (astronaut) in a batch of one
    np.testing.assert_allclose(alone.image[0].numpy(), a.image[2].numpy(), atol=1.01 / (255 * 0.26))
    other = dev(_fresh(_raw([s + 100 for s in seeds])))
    assert not torch.equal(other.image, a.image)


def test_crops_of_two_sizes_in_one_batch_are_a_data_error():
    crop, lm = aligned_face("astronaut")
    small = cv2.resize(crop, (128, 128))
    with pytest.raises(DataError, match="one size per batch: b is uint8 \\(128, 128, 3\\)"):
        raw_fields([crop, small], None, None, [1, 2], ["a", "b"])


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    root = tmp_path_factory.mktemp("processed")
    splits = {"train": {"real": 2, "A": 2}, "val": {"real": 1, "A": 1}, "test": {"real": 1, "A": 1}}
    return {"src": _write_dataset(root, "src", splits)}


def _dm(manifests, **kw) -> ForgeryDataModule:
    spec = DataSpec(input_size=64, region_masks=True, forgery_masks=True, mask_size=32)
    dm = ForgeryDataModule(
        spec, train="src", tests=["src"], manifests=manifests, batch_size=4, frames_train=3, seed=1, **kw
    )
    dm.setup(None)
    return dm


def test_datamodule_flag_makes_workers_return_raw_batches_the_hook_augments(manifests):
    cpu, dev = _dm(manifests, sbi_prob=0.5), _dm(manifests, sbi_prob=0.5, augment_on_device=True)
    n_sbi = 0
    for a, raw in zip(cpu.train_dataloader(), dev.train_dataloader(), strict=True):
        assert raw.image.dtype == torch.uint8 and RAW in raw.extra and raw.region_masks is None
        assert raw.sample_id == a.sample_id and torch.equal(raw.label, a.label)  # same samples, SBI included
        b = dev.on_after_batch_transfer(raw, 0)
        assert RAW not in b.extra and b.image.dtype == torch.float32 and b.image.shape == a.image.shape
        assert b.region_masks.shape == a.region_masks.shape and b.forgery_mask.shape == a.forgery_mask.shape
        np.testing.assert_allclose(b.region_masks.sum(1).numpy(), 1.0, atol=1e-5)
        assert float(b.forgery_mask.min()) >= 0 and float(b.forgery_mask.max()) <= 1
        n_sbi += sum(m == "sbi" for m in a.method)
    assert n_sbi > 0
    for a, b in zip(cpu.val_dataloader(), dev.val_dataloader(), strict=True):  # evaluation is untouched
        assert torch.equal(a.image, b.image) and dev.on_after_batch_transfer(b, 0) is b
    in_process = list(dev.train_dataloader())
    dev.num_workers = 1
    for a, b in zip(in_process, dev.train_dataloader(), strict=True):  # workers return the same raw batch
        assert torch.equal(a.image, b.image) and torch.equal(a.extra[RAW]["seed"], b.extra[RAW]["seed"])


class _Probe(L.LightningModule):
    """Records what training_step receives (Lightning must have run the datamodule's hook first)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.seen: list[Batch] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(batch)
        return (self.w * batch.image.mean()).sum() + self.w.sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_applies_the_hook_before_training_step(manifests):
    dm = ForgeryDataModule(
        DataSpec(input_size=64, region_masks=True), train="src", tests=["src"], manifests=manifests,
        batch_size=4, frames_train=3, augment_on_device=True,
    )  # fmt: skip
    probe = _Probe()
    trainer = L.Trainer(
        max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(probe, datamodule=dm)
    assert len(probe.seen) == 2
    for b in probe.seen:
        assert b.image.dtype == torch.float32 and b.image.shape[1:] == (3, 64, 64) and RAW not in b.extra
        assert b.region_masks is not None and b.region_masks.shape[1] == len(REGIONS)

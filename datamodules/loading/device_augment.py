"""Training augmentation on the device: CPU workers only read crops, the batch is augmented after transfer.

With ``ForgeryDataModule(augment_on_device=True)`` the training dataset returns *raw* batches
(:func:`raw_fields`): ``image`` holds the stored crops as uint8 ``[B, 3, H, W]`` and ``extra[RAW]`` their
augmentation seeds, landmarks (float64 ``[B, 68, 2]``, stored crop pixels; when the DataSpec asks for
region masks) and forgery masks (float32 ``[B, 1, H, W]``; when it asks for them). SBI blending, which
needs the crop and its landmarks together, still runs in the worker. The datamodule's
``on_after_batch_transfer`` then calls :class:`DeviceAugment` on the device: the recipe's
:class:`~datamodules.augmentation.Augmentation` (flip, rotation/scale, blur, one colour op, JPEG: the
ops of :mod:`datamodules.loading.device_ops`), the resize to ``spec.input_size``, normalisation and the
region masks painted from the transformed landmarks (:mod:`datamodules.loading.device_regions`).

Determinism: each sample's parameters are :func:`datamodules.loading.augment.draw` from
``numpy.random.default_rng(seed)``, the seed the training sampler drew for it: the SAME draw as the CPU
path, so flip, angle, scale, kernel, colour op and JPEG quality of every sample are those the CPU path
would apply (tested), and the batch depends only on the seeds.

What equals the CPU path (:class:`datamodules.loading.transforms.FaceTransform`) and what does not:

* equal: the parameters; the geometry (one matrix per sample, flip + rotation/scale + resize, built by
  the same functions); the transformed landmarks (the same float64 matrix product); normalisation (the
  same float32 formula as the CPU lookup table);
* not bit-equal: pixels. The warp is ``grid_sample`` (bilinear, exact float weights) where OpenCV's
  ``warpAffine`` quantises positions and weights to 1/32 pixel, so most pixels differ by at most 1 grey
  level; the reflect-101 border is reproduced exactly (coordinates are reflected before sampling); the
  masks are warped by the same sampling grid as the image; strong downscales (output < half the crop)
  area-average after the warp with ``F.interpolate(mode="area")`` (equal to ``INTER_AREA`` for integer
  factors); with ``"albumentations-1.1.0"`` semantics a crop that is not at the input side is first
  resized bicubically by ``F.interpolate`` (OpenCV's ``INTER_CUBIC`` has the same kernel, fixed-point
  rounding); the photometric ops' differences are listed in :mod:`datamodules.loading.device_ops`;
  region masks: :mod:`datamodules.loading.device_regions` (boundary pixels);
* without augmentation the resize is the augmented path's bilinear warp (the CPU path uses
  ``INTER_AREA`` to downscale when it does not augment).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from datamodules.augmentation import Augmentation
from datamodules.batch import Batch, batch_tensor
from datamodules.loading import augment as ops
from datamodules.loading import device_ops as dops
from datamodules.loading import device_regions
from datamodules.manifest import DataError
from datamodules.spec import DataSpec

RAW = "device_augment"  # Batch.extra key of a raw (not yet augmented) training batch


def raw_fields(
    images: Sequence[np.ndarray],
    landmarks: Sequence[np.ndarray] | None,
    masks: Sequence[np.ndarray] | None,
    seeds: Sequence[int],
    sample_ids: Sequence[str],
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """A raw batch's tensors (in shared memory inside a worker): ``({"image": uint8 [B,3,H,W]}, extra)``.

    Every crop of a batch must have one size (preprocessing writes one size per dataset).
    """
    h, w = images[0].shape[:2]
    for img, sid in zip(images, sample_ids, strict=True):
        if img.shape != (h, w, 3) or img.dtype != np.uint8:
            raise DataError(
                f"augment_on_device / perturb_on_device need uint8 RGB crops of one size per batch: {sid} is {img.dtype} "
                f"{img.shape}, {sample_ids[0]} is {images[0].dtype} {images[0].shape}"
            )
    n = len(images)
    crops = batch_tensor((n, h, w, 3), torch.uint8)
    dst = crops.numpy()
    for j, img in enumerate(images):
        dst[j] = img
    raw = {"seed": torch.tensor([int(s) for s in seeds], dtype=torch.int64)}
    if landmarks is not None:
        lm = batch_tensor((n, 68, 2), torch.float64)
        for j, (pts, sid) in enumerate(zip(landmarks, sample_ids, strict=True)):
            if pts is None or np.shape(pts) != (68, 2):
                raise DataError(f"region masks need 68 landmarks [68, 2] per crop; {sid} has {np.shape(pts)}")
            lm.numpy()[j] = pts
        raw["landmarks"] = lm
    if masks is not None:
        m = batch_tensor((n, 1, h, w), torch.float32)
        for j, mask in enumerate(masks):
            m.numpy()[j, 0] = mask
        raw["forgery_mask"] = m
    return {"image": crops.permute(0, 3, 1, 2)}, raw


def _resize_matrix(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    sy, sx = dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1]
    return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]], np.float64)


def _grid_coords(h: int, w: int) -> np.ndarray:
    """Pixel coordinates -> ``grid_sample``'s ``align_corners=True`` ones (-1, 1 at the end pixels' centres)."""
    return np.array([[2 / max(w - 1, 1), 0, -1], [0, 2 / max(h - 1, 1), -1], [0, 0, 1]])


def _reflect101(g: Tensor) -> Tensor:
    """OpenCV's BORDER_REFLECT_101 on ``align_corners=True`` grid coordinates (mirror about the end pixels'
    centres, -1 and 1: ``... 2 1 | 0 1 2 ... n-1 | n-2 ...`` in pixels)."""
    y = torch.remainder(g + 1, 4)
    return torch.where(y > 2, 4 - y, y) - 1


def sample(x: Tensor, mats: np.ndarray, out_hw: tuple[int, int], border: str) -> Tensor:
    """``warpAffine``: output pixel ``p`` of sample ``i`` takes ``x[i]`` at ``mats[i]^-1 p`` (bilinear).

    ``mats [B, 3, 3]`` map input pixels to output pixels (OpenCV's pixel-centre convention).
    """
    _, _, h, w = x.shape
    # output grid coordinates -> input grid coordinates
    theta = _grid_coords(h, w) @ np.linalg.inv(mats) @ np.linalg.inv(_grid_coords(*out_hw))
    theta = torch.as_tensor(theta[:, :2], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta, [x.shape[0], x.shape[1], *out_hw], align_corners=True)
    if border == "reflect101":
        grid = _reflect101(grid)
    pad = "border" if border == "reflect101" else "zeros"
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=pad, align_corners=True)


def warp(x: Tensor, geoms: np.ndarray, side: int, border: str) -> Tensor:
    """``transforms._warp`` for a batch: move by ``geoms [B,3,3]`` and resize to ``side`` in one resampling,
    or, below half size, warp at the source size and area-average."""
    h, w = x.shape[2:]
    if side >= max(h, w) / 2:
        return sample(x, _resize_matrix((h, w), (side, side)) @ geoms, (side, side), border)
    return F.interpolate(sample(x, geoms, (h, w), border), size=(side, side), mode="area")


def normalise(x: Tensor, spec: DataSpec) -> Tensor:
    """``(x - 255 mean) / (255 std)`` of a float batch holding uint8 values: the float32 values of the CPU
    path's lookup table (:class:`datamodules.loading.transforms.FaceTransform`)."""
    mean = np.asarray(spec.mean, dtype=np.float32) * 255.0
    inv_std = 1.0 / (np.asarray(spec.std, dtype=np.float32) * 255.0)
    m = torch.as_tensor(mean, device=x.device)[None, :, None, None]
    return (x - m) * torch.as_tensor(inv_std, device=x.device)[None, :, None, None]


class DeviceAugment:
    """Augment, resize, normalise and paint region masks of a raw batch on its device (module docstring).

    Args:
        spec: the detector's input contract.
        augment: the recipe's ``Augmentation`` (``True``: its defaults; ``False``: resize and normalise only).
        soft_regions: soft or one-hot region masks.
    """

    def __init__(self, spec: DataSpec, augment: bool | Augmentation, soft_regions: bool = True) -> None:
        if augment is True:
            augment = Augmentation()
        if augment is not False and not isinstance(augment, Augmentation):
            raise TypeError(f"augment must be a bool or an Augmentation, got {type(augment).__name__}")
        self.spec, self.soft_regions = spec, soft_regions
        self.augmentation: Augmentation | None = augment or None

    def draws(self, seeds: Sequence[int]) -> list[ops.AugmentDraw]:
        """Each sample's draw: the CPU path's, from ``default_rng(seed)``."""
        aug = self.augmentation
        return [ops.draw(aug, np.random.default_rng(int(z) % 2**32)) for z in seeds]

    def __call__(self, batch: Batch) -> Batch:
        """Apply the batch's augmentation on its device: warps, colour, blur and masks in one pass."""
        raw = batch.extra.pop(RAW)
        x = batch.image.float()
        dev = x.device
        n, _, h, w = x.shape
        s, side = self.spec.input_size, self.spec.mask_side
        aug = self.augmentation
        mask = raw.get("forgery_mask")
        pre = np.eye(3)
        if aug is not None and aug.semantics == ops.ALBU and (h, w) != (s, s):
            pre = _resize_matrix((h, w), (s, s))  # DeepfakeBench's load_rgb / load_mask
            x = torch.round(F.interpolate(x, size=(s, s), mode="bicubic", align_corners=False)).clamp(0, 255)
            if mask is not None:
                mask = F.interpolate(mask, size=(s, s), mode="bilinear", align_corners=False)
            h = w = s
        draws = self.draws(raw["seed"].tolist()) if aug is not None else None
        semantics = aug.semantics if aug is not None else "suite"
        if draws is not None:
            # the CPU path copies an albumentations flip before rotating: the same sampling positions
            geoms = np.stack([ops.geometry((h, w), d, semantics) for d in draws])
        else:
            geoms = np.repeat(np.eye(3)[None], n, 0)
        border = aug.border if aug is not None else "reflect101"
        x = torch.round(warp(x, geoms, s, border)).clamp(0, 255)
        if draws is not None:
            x = self.photometric(x, draws, semantics)
        batch.image = normalise(x, self.spec)
        if mask is not None:
            batch.forgery_mask = warp(mask, geoms, side, border).clamp(0, 1)
        if "landmarks" in raw:
            a = torch.as_tensor(_resize_matrix((h, w), (s, s)) @ geoms @ pre, device=dev)
            lm = raw["landmarks"].to(dev, torch.float64)
            lm = lm @ a[:, :2, :2].transpose(1, 2) + a[:, None, :2, 2]
            batch.extra["landmarks"] = lm.float()
            if self.spec.region_masks:
                batch.region_masks = device_regions.region_masks(lm, side, s, soft=self.soft_regions)
        return batch

    @staticmethod
    def photometric(x: Tensor, draws: Sequence[ops.AugmentDraw], semantics: str) -> Tensor:
        """Blur, the colour op and JPEG, each on the samples whose draw applies it (DeepfakeBench's order)."""
        x = x.clone()

        def on(pick, fn) -> None:
            idx = [i for i, d in enumerate(draws) if pick(d)]
            if idx:
                sub = [draws[i] for i in idx]
                t = torch.tensor(idx, device=x.device)
                x[t] = fn(x[t], sub)

        on(lambda d: d.blur is not None, lambda v, ds: dops.gaussian_blur(v, [d.blur for d in ds]))
        on(
            lambda d: d.colour == "brightness_contrast",
            lambda v, ds: dops.brightness_contrast(v, [d.alpha for d in ds], [d.beta for d in ds], semantics),
        )
        on(
            lambda d: d.colour == "fancy_pca",
            lambda v, ds: dops.fancy_pca(v, [d.pca_alpha for d in ds], semantics),
        )
        on(lambda d: d.colour == "hsv", lambda v, ds: dops.hsv_shift(v, [d.hsv for d in ds], semantics))
        on(
            lambda d: d.jpeg_quality is not None,
            lambda v, ds: dops.jpeg(v, [d.jpeg_quality for d in ds], semantics),
        )
        return x


def finish(batch: Batch, augmenter: DeviceAugment | None) -> Batch:
    """``augmenter(batch)`` for a raw batch, the batch itself otherwise (what the datamodule hook calls)."""
    if augmenter is None or not isinstance(batch, Batch) or RAW not in batch.extra:
        return batch
    return augmenter(batch)


__all__ = ["RAW", "DeviceAugment", "finish", "normalise", "raw_fields"]

"""Image pipelines built from a ``DataSpec``: training augmentation, resize and normalisation.

Training augmentation (:class:`AugmentParams` draws it): horizontal flip (p 0.5), rotation +-10 deg and
scale 0.9-1.1 about the centre (p 0.5), Gaussian blur (kernel 3/5/7, sigma 0.5-3, p 0.1), one of
brightness/contrast +-0.1 or HSV shift (hue +-10, saturation +-15, value +-10 in OpenCV's 8-bit HSV
units) (p 0.5), JPEG quality 40-100 (p 0.5) -- the parameters of the albumentations pipeline this
replaces, implemented with OpenCV and lookup tables because albumentations' per-call overhead
(seeding, parameter checks, a separate resize) cost more than the pixel work at 256 px.

Photometric steps run on the source crop; then flip, rotation, scale and the resize to
``spec.input_size`` are ONE ``cv2.warpAffine`` with one matrix, applied to the image, to the forgery
mask (warped straight to ``spec.mask_side``) and to the 68 landmarks (never dropped: DeepfakeBench
discards them when augmenting, so its landmark-based masks drift from the image). Region masks are
then painted from the transformed landmarks at the mask resolution, which keeps them exact instead of
resampling a painted mask. Photometric steps commute with the geometric ones except at the border
fill (the zero border of a rotated image is no longer brightened or JPEG-compressed).

Coordinates follow OpenCV's pixel-centre convention (pixel ``i`` is centred at ``i``): a resize by
``r`` maps ``x -> (x + 0.5) r - 0.5``, as :func:`datamodules.media.regions.label_map` assumes.

Flipped landmarks keep their index (point 36 ends up on the image's right): the region masks treat
both eyes, brows and jaw halves alike, so they are unaffected.

Evaluation: ``INTER_AREA`` resize and normalisation only.

:class:`SampleTransform` is the whole crop -> tensors step of a sample (this transform, then the region
masks): the test loader (``datamodules.loading.dataset.ManifestDataset``) and single-file prediction
(``benchmark.predict``) both use it, so a crop gets the same input tensors on either path.

Randomness: each call may take a ``seed``; all draws of one sample come from
``numpy.random.default_rng(seed)``, so one sample's augmentation depends only on that seed, not on
worker count or order.

Test-time perturbations (:mod:`datamodules.media.perturb`, off by default): an image ``Perturbation``
acts on the decoded stored crop first (seeded by the sample's key, ``sample_id``), then a ``CropView``
re-crops it (zoom / crop size, with landmarks and mask) and sets the interpolation of the evaluation
resize. Without them the path is unchanged bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from datamodules.media.perturb import CropView, Perturbation
from datamodules.media.regions import region_masks
from datamodules.spec import DataSpec


@dataclass
class Transformed:
    """Output of :class:`FaceTransform`.

    Attributes:
        image: float ``[3, S, S]`` normalised, ``S = spec.input_size``.
        landmarks: float32 ``[68, 2]`` in the pixels of an ``S x S`` image, or ``None``.
        mask: float ``[1, M, M]`` forgery mask in [0, 1], ``M = spec.mask_side``, or ``None``.
    """

    image: Tensor
    landmarks: np.ndarray | None
    mask: Tensor | None


@dataclass
class AugmentParams:
    """One sample's augmentation draw (``None`` / ``False`` = step not applied)."""

    flip: bool
    angle: float | None  # degrees, with ``scale``; None = no affine step
    scale: float
    blur: tuple[int, float] | None  # (odd kernel size, sigma)
    brightness_contrast: tuple[float, float] | None  # (brightness, contrast) in [-0.1, 0.1]
    hsv: tuple[int, int, int] | None  # (hue, saturation, value) shifts
    jpeg_quality: int | None

    @staticmethod
    def draw(rng: np.random.Generator) -> AugmentParams:
        """Every parameter is drawn whether used or not, so one step's draw never shifts another's."""
        u = rng.random(6)
        angle, scale = float(rng.uniform(-10, 10)), float(rng.uniform(0.9, 1.1))
        ksize, sigma = int(rng.choice([3, 5, 7])), float(rng.uniform(0.5, 3.0))
        bc = (float(rng.uniform(-0.1, 0.1)), float(rng.uniform(-0.1, 0.1)))
        hsv = (int(rng.integers(-10, 11)), int(rng.integers(-15, 16)), int(rng.integers(-10, 11)))
        quality = int(rng.integers(40, 101))
        colour = u[3] < 0.5
        return AugmentParams(
            flip=bool(u[0] < 0.5),
            angle=angle if u[1] < 0.5 else None,
            scale=scale,
            blur=(ksize, sigma) if u[2] < 0.1 else None,
            brightness_contrast=bc if colour and u[4] < 0.5 else None,
            hsv=hsv if colour and u[4] >= 0.5 else None,
            jpeg_quality=quality if u[5] < 0.5 else None,
        )


_RAMP = np.arange(256, dtype=np.float32)


def _photometric(img: np.ndarray, p: AugmentParams) -> np.ndarray:
    """Blur, colour and JPEG steps on a uint8 RGB image (returns a new array when any step applies)."""
    if p.blur is not None:
        img = cv2.GaussianBlur(img, (p.blur[0], p.blur[0]), p.blur[1], borderType=cv2.BORDER_REFLECT_101)
    if p.brightness_contrast is not None:
        b, c = p.brightness_contrast  # albumentations' brightness_by_max: x (1 + c) + 255 b
        lut = np.clip(_RAMP * (1.0 + c) + 255.0 * b, 0, 255).round().astype(np.uint8)
        img = cv2.LUT(img, lut)
    if p.hsv is not None:
        dh, ds, dv = p.hsv
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        ramp = np.arange(256, dtype=np.int32)
        lut = np.stack([(ramp + dh) % 180, np.clip(ramp + ds, 0, 255), np.clip(ramp + dv, 0, 255)], 1)
        lut[0, 1] = 0  # grey pixels (S = 0) stay grey
        img = cv2.cvtColor(cv2.LUT(hsv, lut.astype(np.uint8)[None]), cv2.COLOR_HSV2RGB)
    if p.jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, p.jpeg_quality])
        if not ok:
            raise RuntimeError("cv2.imencode failed on a training crop")
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR_RGB)
    return img


def _resize_matrix(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    sy, sx = dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1]
    return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]], np.float64)


def _geometry(src_hw: tuple[int, int], p: AugmentParams) -> np.ndarray:
    """3x3 matrix of flip then rotation/scale about the centre, in source pixels."""
    h, w = src_hw
    m = np.eye(3)
    if p.flip:
        m = np.array([[-1.0, 0, w - 1], [0, 1, 0], [0, 0, 1]]) @ m
    if p.angle is not None:
        r = np.vstack([cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), p.angle, p.scale), [0, 0, 1]])
        m = r @ m
    return m


def _warp(img: np.ndarray, geom: np.ndarray, side: int, interp: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``img`` moved by ``geom`` (source pixels) and resized to ``side x side`` in one resampling.

    Bilinear sampling aliases below half size, so strong downscales warp at the source size first
    and then area-resize.
    """
    h, w = img.shape[:2]
    if side >= max(h, w) / 2:
        m = _resize_matrix((h, w), (side, side)) @ geom
        return cv2.warpAffine(img, m[:2], (side, side), flags=interp, borderMode=cv2.BORDER_CONSTANT)
    moved = cv2.warpAffine(img, geom[:2], (w, h), flags=interp, borderMode=cv2.BORDER_CONSTANT)
    return cv2.resize(moved, (side, side), interpolation=cv2.INTER_AREA)


def _resize(img: np.ndarray, side: int, interp: int | None = None) -> np.ndarray:
    if img.shape[0] == side and img.shape[1] == side:
        return img
    if interp is None:
        interp = cv2.INTER_AREA if side < max(img.shape[:2]) else cv2.INTER_LINEAR
    return cv2.resize(img, (side, side), interpolation=interp)


class FaceTransform:
    """Augment (optionally), resize to ``spec.input_size`` and normalise with ``spec.mean/std``.

    Args:
        spec: the detector's input contract.
        augment: apply the training augmentation (see the module docstring).
        perturbation: an ``image``-kind test-time perturbation of the decoded crop (``clip`` kinds act on
            a whole video: :class:`~datamodules.media.perturb.ClipFrames` in the dataset).
        view: a preprocessing variant (zoom, crop size, resize interpolation) of the decoded crop.
    """

    def __init__(
        self,
        spec: DataSpec,
        augment: bool,
        perturbation: Perturbation | None = None,
        view: CropView | None = None,
    ) -> None:
        if perturbation is not None and perturbation.kind != "image" and not perturbation.is_identity:
            raise ValueError(f"{perturbation.tag} acts on a video's frames together, not in FaceTransform")
        self.spec, self.augment = spec, augment
        self.perturbation = (
            None if perturbation is None or perturbation.is_identity else perturbation.prepare()
        )
        self.view = None if view is None or view.is_identity else view
        self._interp = None if self.view is None else self.view.resize_flag
        mean = np.asarray(spec.mean, dtype=np.float32) * 255.0
        inv_std = 1.0 / (np.asarray(spec.std, dtype=np.float32) * 255.0)
        # uint8 -> normalised float32 in one table lookup per channel plane
        self._luts = [((_RAMP - mean[c]) * inv_std[c]).reshape(1, 256) for c in range(3)]
        self._rng = np.random.default_rng(0)  # used only by calls without a seed

    def _normalise(self, img: np.ndarray, out: Tensor | None) -> Tensor:
        if out is None:
            out = torch.empty((3, *img.shape[:2]), dtype=torch.float32)
        elif out.shape != (3, *img.shape[:2]) or out.dtype != torch.float32 or not out.is_contiguous():
            raise ValueError(f"out must be a contiguous float32 [3, {img.shape[0]}, {img.shape[1]}] tensor")
        chw = out.numpy()
        for c, plane in enumerate(cv2.split(img)):
            cv2.LUT(plane, self._luts[c], dst=chw[c])
        return out

    def __call__(
        self,
        image: np.ndarray,
        landmarks: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        seed: int | None = None,
        out: Tensor | None = None,
        sample_key: str | None = None,
    ) -> Transformed:
        """Transform a ``uint8 [H, W, 3]`` RGB crop with its landmarks ``[68, 2]`` and mask ``[H, W]``.

        ``out``: a float32 ``[3, S, S]`` tensor (e.g. a row of a batch tensor) to write the image into.
        ``sample_key``: the sample's id, which seeds the perturbation (required when there is one).
        """
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a uint8 RGB image [H, W, 3], got {image.dtype} {image.shape}")
        if mask is not None and mask.shape[:2] != image.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape}")
        s, side = self.spec.input_size, self.spec.mask_side
        pre = None  # stored-crop pixels -> view pixels
        if self.perturbation is not None:
            if sample_key is None:
                raise ValueError(f"perturbation {self.perturbation.tag} needs the sample's key (sample_id)")
            image = self.perturbation.apply(image, sample_key)
        if self.view is not None:
            image, mask, pre = self.view.apply(image, mask)
        hw = image.shape[:2]
        if self.augment:
            rng = np.random.default_rng(int(seed) % 2**32) if seed is not None else self._rng
            p = AugmentParams.draw(rng)
            geom = _geometry(hw, p)
            img = _warp(_photometric(image, p), geom, s)
            m = None if mask is None else _warp(np.asarray(mask, np.float32), geom, side)
        else:
            geom = np.eye(3)
            img = _resize(image, s, self._interp)
            m = None if mask is None else _resize(np.asarray(mask, np.float32), side)
        lm = None
        if landmarks is not None:
            a = _resize_matrix(hw, (s, s)) @ geom
            a = a if pre is None else a @ pre
            lm = (np.asarray(landmarks, np.float64) @ a[:2, :2].T + a[:2, 2]).astype(np.float32)
        t_mask = None if m is None else torch.from_numpy(np.clip(m, 0, 1, dtype=np.float32))[None]
        return Transformed(self._normalise(img, out), lm, t_mask)


class SampleTransform:
    """A crop with its landmarks and forgery mask -> the tensor fields of one ``Batch`` item for ``spec``.

    :class:`FaceTransform` (augmented or not), then, when ``spec.region_masks``, the region masks painted
    from the transformed landmarks at ``spec.mask_side`` (soft or one-hot).

    Args:
        spec: the detector's input contract.
        augment: apply the training augmentation.
        soft_regions: soft (blurred, summing to 1) or one-hot region masks.
        perturbation, view: test-time perturbation and preprocessing view (:class:`FaceTransform`).
    """

    def __init__(
        self,
        spec: DataSpec,
        augment: bool,
        soft_regions: bool = True,
        perturbation: Perturbation | None = None,
        view: CropView | None = None,
    ) -> None:
        self.spec, self.soft_regions = spec, soft_regions
        self.face = FaceTransform(spec, augment, perturbation, view)

    def __call__(
        self,
        image: np.ndarray,
        landmarks: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        seed: int | None = None,
        out: dict[str, Tensor] | None = None,
        sample_key: str | None = None,
    ) -> dict[str, Tensor]:
        """``{"image", ["region_masks"], ["forgery_mask"]}`` of a uint8 RGB crop.

        ``out`` optionally holds ``image`` / ``region_masks`` tensors (rows of batch tensors) to write into;
        ``sample_key`` (the sample id) seeds a test-time perturbation.
        """
        out = out or {}
        tr = self.face(image, landmarks, mask, seed=seed, out=out.get("image"), sample_key=sample_key)
        fields: dict[str, Tensor] = {"image": tr.image}
        if self.spec.region_masks:
            if tr.landmarks is None:
                raise ValueError("region masks (DataSpec.region_masks) need the crop's 68 landmarks")
            dst = out["region_masks"].numpy() if "region_masks" in out else None
            rm = region_masks(
                tr.landmarks, self.spec.mask_side, self.spec.input_size, soft=self.soft_regions, out=dst
            )
            fields["region_masks"] = torch.from_numpy(rm)
        if tr.mask is not None:
            fields["forgery_mask"] = tr.mask
        return fields

"""Image pipelines built from a ``DataSpec``: training augmentation, resize and normalisation.

Training augmentation follows an :class:`~datamodules.augmentation.Augmentation` record (a detector's
``Recipe.augmentation``; ``augment=True`` means the record's defaults): its structure is DeepfakeBench's
``init_data_aug_method`` and its ops are in :mod:`datamodules.loading.augment`. Order: flip, then
rotation (with the optional scale jitter and translation), then blur, the colour op(s), JPEG, as in
DeepfakeBench.

The geometric steps and the resize to ``spec.input_size`` are ONE ``cv2.warpAffine`` with one matrix,
applied to the image, to the forgery mask (warped straight to ``spec.mask_side``) and to the 68
landmarks (never dropped: DeepfakeBench passes the landmarks through albumentations but then returns
the un-augmented ones, so landmark-based targets drift from the image there; here they follow every
flip and rotation). The photometric steps then run on the ``input_size`` image. Region masks are
painted from the transformed landmarks at the mask resolution, which keeps them exact instead of
resampling a painted mask. The border a rotation uncovers is filled as ``Augmentation.border`` says
(reflect-101 for DeepfakeBench's recipes, as albumentations' ``Rotate``), for the mask too; region
masks cover only the face the landmarks describe, not its reflection.

Deliberate differences from albumentations that apply under both ``Augmentation.semantics``: masks are
warped bilinearly (soft masks stay soft; albumentations warps masks with nearest-neighbour
interpolation), and flip + rotation + resize are one resampling (albumentations: the flip is a pixel
copy, the rotation one bilinear resampling; the same sampling positions, so equal up to OpenCV's
fixed-point rounding; with ``"albumentations-1.1.0"`` semantics the flip is a pixel copy too, so the
image is bit-identical to albumentations'). With ``"albumentations-1.1.0"`` semantics a crop whose side is not the input
side is first resized with ``INTER_CUBIC`` (DeepfakeBench's ``load_rgb``; masks bilinear, as its
``load_mask``) and augmented at the input side, as there; with ``"suite"`` semantics it is resampled
once. Evaluation never depends on the recipe.

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

from dataclasses import dataclass, replace

import cv2
import numpy as np
import torch
from torch import Tensor

from datamodules.augmentation import Augmentation
from datamodules.loading import augment as ops
from datamodules.media.perturb import CropView, Perturbation
from datamodules.media.regions import region_masks
from datamodules.spec import DataSpec

_RAMP = np.arange(256, dtype=np.float32)


@dataclass
class Transformed:
    """Output of :class:`FaceTransform`.

    Attributes:
        image: float ``[3, S, S]`` normalised, ``S = spec.input_size`` (None when not asked for).
        landmarks: float32 ``[68, 2]`` in the pixels of an ``S x S`` image, or ``None``.
        mask: float ``[1, M, M]`` forgery mask in [0, 1], ``M = spec.mask_side``, or ``None``.
    """

    image: Tensor | None
    landmarks: np.ndarray | None
    mask: Tensor | None


def _resize_matrix(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    sy, sx = dst_hw[0] / src_hw[0], dst_hw[1] / src_hw[1]
    return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]], np.float64)


_BORDERS = {"reflect101": cv2.BORDER_REFLECT_101, "constant": cv2.BORDER_CONSTANT}


def _warp(img: np.ndarray, geom: np.ndarray, side: int, border: int) -> np.ndarray:
    """``img`` moved by ``geom`` (source pixels) and resized to ``side x side`` in one bilinear resampling.

    Bilinear sampling aliases below half size, so strong downscales warp at the source size first
    and then area-resize.
    """
    h, w = img.shape[:2]
    if side >= max(h, w) / 2:
        m = _resize_matrix((h, w), (side, side)) @ geom
        return cv2.warpAffine(img, m[:2], (side, side), flags=cv2.INTER_LINEAR, borderMode=border)
    moved = cv2.warpAffine(img, geom[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=border)
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
        augment: the training augmentation (see the module docstring); ``True`` = ``Augmentation()``,
            ``False`` = none.
        perturbation: an ``image``-kind test-time perturbation of the decoded crop (``clip`` kinds act on
            a whole video: :class:`~datamodules.media.perturb.ClipFrames` in the dataset).
        view: a preprocessing variant (zoom, crop size, resize interpolation) of the decoded crop.
    """

    def __init__(
        self,
        spec: DataSpec,
        augment: bool | Augmentation,
        perturbation: Perturbation | None = None,
        view: CropView | None = None,
    ) -> None:
        if augment is True:
            augment = Augmentation()
        if augment is not False and not isinstance(augment, Augmentation):
            raise TypeError(f"augment must be a bool or an Augmentation, got {type(augment).__name__}")
        if perturbation is not None and perturbation.kind != "image" and not perturbation.is_identity:
            raise ValueError(f"{perturbation.tag} acts on a video's frames together, not in FaceTransform")
        self.spec = spec
        self.augmentation: Augmentation | None = augment or None
        self.augment = self.augmentation is not None
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
        with_image: bool = True,
    ) -> Transformed:
        """Transform a ``uint8 [H, W, 3]`` RGB crop with its landmarks ``[68, 2]`` and mask ``[H, W]``.

        ``out``: a float32 ``[3, S, S]`` tensor (e.g. a row of a batch tensor) to write the image into.
        ``sample_key``: the sample's id, which seeds the perturbation (required when there is one).
        ``with_image=False`` (evaluation only): landmarks and mask alone, ``image`` is None (the device
        makes it: ``datamodules.loading.device_perturb``).
        """
        if not with_image and self.augmentation is not None:
            raise ValueError("with_image=False is for evaluation: an augmented image draws with its geometry")
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected a uint8 RGB image [H, W, 3], got {image.dtype} {image.shape}")
        if mask is not None and mask.shape[:2] != image.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} does not match image shape {image.shape}")
        s, side = self.spec.input_size, self.spec.mask_side
        pre = np.eye(3)  # stored-crop pixels -> the pixels the augmentation (or the resize) works in
        if self.perturbation is not None:
            if sample_key is None:
                raise ValueError(f"perturbation {self.perturbation.tag} needs the sample's key (sample_id)")
            image = self.perturbation.apply(image, sample_key)
        if self.view is not None:
            image, mask, view_matrix = self.view.apply(image, mask)
            pre = view_matrix @ pre
        aug = self.augmentation
        if aug is not None and aug.semantics == ops.ALBU and image.shape[:2] != (s, s):
            pre = _resize_matrix(image.shape[:2], (s, s)) @ pre  # DeepfakeBench's load_rgb / load_mask
            image = cv2.resize(image, (s, s), interpolation=cv2.INTER_CUBIC)
            mask = None if mask is None else cv2.resize(np.asarray(mask, np.float32), (s, s))
        hw = image.shape[:2]
        if aug is not None:
            rng = np.random.default_rng(int(seed) % 2**32) if seed is not None else self._rng
            d = ops.draw(aug, rng)
            if aug.semantics == ops.ALBU and d.flip:  # albumentations copies the flipped pixels, then rotates
                image = cv2.flip(image, 1)
                mask = None if mask is None else cv2.flip(np.asarray(mask, np.float32), 1)
                pre = ops.flip_matrix(hw[1]) @ pre
                d = replace(d, flip=False)
            geom = ops.geometry(hw, d, aug.semantics)
            border = _BORDERS[aug.border]
            img = ops.photometric(_warp(image, geom, s, border), d, aug.semantics)
            m = None if mask is None else _warp(np.asarray(mask, np.float32), geom, side, border)
        else:
            geom = np.eye(3)
            img = _resize(image, s, self._interp) if with_image else None
            m = None if mask is None else _resize(np.asarray(mask, np.float32), side)
        lm = None
        if landmarks is not None:
            a = _resize_matrix(hw, (s, s)) @ geom @ pre
            lm = (np.asarray(landmarks, np.float64) @ a[:2, :2].T + a[:2, 2]).astype(np.float32)
        t_mask = None if m is None else torch.from_numpy(np.clip(m, 0, 1, dtype=np.float32))[None]
        return Transformed(None if img is None else self._normalise(img, out), lm, t_mask)


class SampleTransform:
    """A crop with its landmarks and forgery mask -> the tensor fields of one ``Batch`` item for ``spec``.

    :class:`FaceTransform` (augmented or not), then, when ``spec.region_masks``, the region masks painted
    from the transformed landmarks at ``spec.mask_side`` (soft or one-hot).

    Args:
        spec: the detector's input contract.
        augment: the training augmentation (an ``Augmentation``, ``True`` for its defaults, ``False``).
        soft_regions: soft (blurred, summing to 1) or one-hot region masks.
        perturbation, view: test-time perturbation and preprocessing view (:class:`FaceTransform`).
    """

    def __init__(
        self,
        spec: DataSpec,
        augment: bool | Augmentation,
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
        with_image: bool = True,
    ) -> dict[str, Tensor]:
        """``{"image", ["region_masks"], ["forgery_mask"]}`` of a uint8 RGB crop.

        ``out`` optionally holds ``image`` / ``region_masks`` tensors (rows of batch tensors) to write into;
        ``sample_key`` (the sample id) seeds a test-time perturbation; ``with_image=False``: no ``image``
        (:meth:`FaceTransform.__call__`).
        """
        out = out or {}
        tr = self.face(
            image,
            landmarks,
            mask,
            seed=seed,
            out=out.get("image"),
            sample_key=sample_key,
            with_image=with_image,
        )
        fields: dict[str, Tensor] = {} if tr.image is None else {"image": tr.image}
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

"""Preprocessing sensitivity: look at a stored face crop as another preprocessing would have made it.

Three knobs, each emulating one preprocessing choice from the stored crop and its 68 landmarks:

* ``zoom`` (>= 1): the crop a preprocessing run with margin ``stored_margin / zoom`` would have written.
  Preprocessing aligns the face by a similarity onto the ArcFace template shrunk about the crop's
  centre point ``(S/2, S/2)`` (pixel-centre coordinates, :func:`datamodules.media.align.template`), so a
  smaller margin is exactly the stored crop magnified by ``zoom`` about that point. GenD (Yermakov et
  al., 2025) sweeps third-party checkpoints over ``zoom_factor`` 1.0-1.5 of its stored crops (1.3x the
  face box; a centre crop of ``side // zoom`` resized back bilinearly, ``yermandy/GenD``
  ``src/model/base.py``, ``custom_preprocessing``); here the same sweep is ``CropView(zoom=z)``: on
  crops stored at our default margin 1.3, margins 1.3 down to 0.87. ``CropView.from_margin(m,
  stored_margin)`` states it as a margin.
  *Exact*: the geometry, for every zoom >= 1 (a similarity composes with a scale about the template's
  fixed point). *Not exact*: the pixels -- the stored crop was already resampled once, so the view's
  bilinear warp is a second resampling, and a zoom of ``z`` spreads ``S / z`` stored pixels over ``S``
  (no detail beyond the stored crop's). Zooming *out* (``zoom < 1``, a margin wider than the stored
  one) needs pixels outside the stored crop: refused; re-run preprocessing with a wider ``--margin``
  (e.g. 1.5: then every zoom of the sweep below the stored margin is served).
* ``crop_size``: the crop side preprocessing would have written (``--size``), in the same warp as the
  zoom (preprocessing warps once, bilinearly). Sizes above the stored side add no detail.
* ``interpolation``: the detector's resize of the crop to ``DataSpec.input_size``, one of
  ``nearest | bilinear | bicubic | area | lanczos`` (OpenCV's ``INTER_NEAREST_EXACT``, ``LINEAR``,
  ``CUBIC``, ``AREA``, ``LANCZOS4``: all sample at pixel centres, as the landmarks assume); ``None`` keeps
  :class:`~datamodules.loading.transforms.FaceTransform`'s default (area when shrinking, bilinear when
  enlarging).

Landmarks and forgery masks go through the same matrix as the image, so region masks painted afterwards
stay aligned with the face.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST_EXACT,  # pixel-centre nearest (PIL's); INTER_NEAREST shifts by up to 1/2 px
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}
MAX_ZOOM = 4.0


@dataclass(frozen=True)
class CropView:
    """A test-time preprocessing variant of the stored crops (see the module docstring).

    Attributes:
        zoom: magnification about the alignment centre, >= 1 (1 = the stored crop).
        crop_size: side of the emulated crop before the detector's resize (``None`` = the stored side).
        interpolation: the detector resize's interpolation (``None`` = the default rule).
    """

    zoom: float = 1.0
    crop_size: int | None = None
    interpolation: str | None = None

    def __post_init__(self) -> None:
        if not 1.0 <= self.zoom <= MAX_ZOOM:
            raise ValueError(
                f"CropView.zoom must be in [1, {MAX_ZOOM}], got {self.zoom}: zooming out (a margin wider "
                "than the stored crop's) needs pixels outside the stored crop; re-run preprocessing with a "
                "wider --margin"
            )
        if self.crop_size is not None and self.crop_size < 8:
            raise ValueError(f"CropView.crop_size must be >= 8 px, got {self.crop_size}")
        if self.interpolation is not None and self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"CropView.interpolation {self.interpolation!r} unknown; known: {', '.join(INTERPOLATIONS)}"
            )

    @classmethod
    def from_margin(cls, margin: float, stored_margin: float, **kw) -> CropView:
        """The view of crops stored at ``stored_margin`` as preprocessing at ``margin`` would make them."""
        if margin <= 0 or stored_margin <= 0:
            raise ValueError(f"margins must be positive, got margin={margin}, stored_margin={stored_margin}")
        if margin > stored_margin:
            raise ValueError(
                f"margin {margin} is wider than the stored crops' {stored_margin}: their pixels outside the "
                "stored crop are gone; re-run preprocessing with --margin >= "
                f"{margin}"
            )
        return cls(zoom=stored_margin / margin, **kw)

    @property
    def is_identity(self) -> bool:
        """Whether the view is the stored crop unchanged."""
        return self.zoom == 1.0 and self.crop_size is None and self.interpolation is None

    @property
    def tag(self) -> str:
        """A short tag naming the view (``zoom1.2+crop224+area``; ``stored`` for the identity)."""
        parts = [f"zoom{self.zoom:g}"] if self.zoom != 1.0 else []
        parts += [f"crop{self.crop_size}"] if self.crop_size is not None else []
        parts += [self.interpolation] if self.interpolation is not None else []
        return "+".join(parts) or "stored"

    @property
    def resize_flag(self) -> int | None:
        """The OpenCV interpolation flag of the view's resize (None: the detector's default)."""
        return None if self.interpolation is None else INTERPOLATIONS[self.interpolation]

    def matrix(self, hw: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
        """``([3, 3] stored-crop pixels -> view pixels, view (h, w))`` for a stored crop of size ``hw``."""
        h, w = hw
        oh, ow = (h, w) if self.crop_size is None else (self.crop_size, self.crop_size)
        cx, cy = w / 2.0, h / 2.0  # the template's fixed point (align.template), not (w - 1) / 2
        zoom = np.array(
            [[self.zoom, 0, cx * (1 - self.zoom)], [0, self.zoom, cy * (1 - self.zoom)], [0, 0, 1]]
        )
        # Emulated preprocessing at side o: the template point t*S/S0 (template coordinates scale with
        # the side about the origin, align.template), i.e. x -> x * o / S in pixel-centre coordinates.
        size = np.diag([ow / w, oh / h, 1.0])
        return size @ zoom, (oh, ow)

    def apply(
        self, image: np.ndarray, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """``(image, mask, matrix)`` of the view; ``matrix`` maps stored-crop pixels to view pixels."""
        m, (oh, ow) = self.matrix(image.shape[:2])
        if self.zoom == 1.0 and (oh, ow) == image.shape[:2]:
            return image, mask, m

        def warp(a: np.ndarray) -> np.ndarray:  # preprocessing's own interpolation (align.warp)
            return cv2.warpAffine(a, m[:2], (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

        return warp(image), None if mask is None else warp(np.asarray(mask, np.float32)), m

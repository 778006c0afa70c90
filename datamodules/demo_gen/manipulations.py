"""Face manipulations of the demo, each returning the exact region it changed.

Every manipulation is split into a static part (computed once per video in portrait coordinates) and a
per-frame part (applied to the captured frame, whose landmarks are the portrait landmarks moved by the
frame's similarity transform). Because the head motion is a similarity, warping the static part by the
same transform is exactly the per-frame manipulation (a piecewise-affine map composed with a similarity
is the piecewise-affine map to the moved landmarks).

Algorithms (our own implementations of the published methods):

* ``swap``: the classic graphics FaceSwap (as in FaceForensics++, Rossler et al., ICCV 2019): Delaunay
  triangulation of the target's 68 landmarks, piecewise-affine warp of the source face onto it, colour
  transfer (Reinhard et al., "Color Transfer between Images", IEEE CG&A 2001: mean/std matching in Lab),
  feathered alpha blend inside the landmark hull.
* ``region``: the same warp restricted to the eyes (+ brows) or the mouth of another identity.
* ``selfblend``: self-blended images (Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended
  Images", CVPR 2022): the frame blended with a colour- and frequency-altered, slightly shifted copy of
  itself inside a landmark mask.
* ``upsample``: upsampling artifacts of generator decoders (Odena et al., "Deconvolution and
  Checkerboard Artifacts", Distill 2016): the face region is downsampled and re-upsampled by zero
  insertion + a kernel whose size is not a multiple of the stride (uneven overlap -> checkerboard),
  mixed with a smooth upsampling.

The exact mask of a fake frame is ``alpha > MASK_THRESHOLD``: every pixel whose value the blend moved by
more than 2 % of the way to the inserted content (before compression, which spreads changes slightly).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from datamodules.media.faces import JAW, LEFT_EYE, MOUTH, RIGHT_EYE

MASK_THRESHOLD = 0.02
BROWS_AND_EYES = list(range(17, 27)) + list(LEFT_EYE) + list(RIGHT_EYE)
LOWER_FACE = list(JAW)[3:14] + [29, 30, 31, 35]


@dataclass(frozen=True)
class FakeSpec:
    """One fake video's manipulation and blending quality (drawn per video by its domain).

    ``kind``: swap | region | selfblend | upsample. ``region``: face | eyes | mouth | lower.
    ``colour``: strength of the Reinhard colour transfer in [0, 1]. ``feather``: Gaussian sigma of
    the blend edge as a fraction of the face width. ``erode``: mask erosion as a fraction of the face
    width. ``upsample``: stride of the upsampling-artifact synthesis (0 = none), ``artifact``: its mix.
    ``match_blur``: blur the inserted face like the camera (better blending). ``opacity``: peak alpha.
    """

    kind: str
    region: str = "face"
    colour: float = 1.0
    feather: float = 0.03
    erode: float = 0.0
    upsample: int = 0
    artifact: float = 0.0
    match_blur: bool = False
    opacity: float = 1.0
    jitter: tuple[float, ...] = ()  # selfblend: (dr, dg, db, contrast, blur_or_sharpen, dx, dy, scale)


def region_points(landmarks: np.ndarray, region: str) -> np.ndarray:
    """Landmark subset whose convex hull is the region."""
    if region == "face":
        return landmarks
    if region == "eyes":
        return landmarks[BROWS_AND_EYES]
    if region == "mouth":
        lm = landmarks[list(MOUTH)]
        c = lm.mean(0)
        return c + (lm - c) * 1.35  # lips plus a margin of skin, as expression transfer changes it
    if region == "lower":
        return landmarks[LOWER_FACE]
    raise ValueError(f"unknown region {region!r}; known: face, eyes, mouth, lower")


def hull_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float32 {0,1} mask of the convex hull of ``points`` (x, y)."""
    mask = np.zeros(shape, np.uint8)
    hull = cv2.convexHull(np.round(points * 16).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(np.float32)


def piecewise_affine(
    src: np.ndarray, src_pts: np.ndarray, dst_pts: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Warp ``src`` so ``src_pts`` land on ``dst_pts``: one affine map per Delaunay triangle of ``dst_pts``.

    Returns the warped float32 image and its coverage mask (the union of the target triangles).
    """
    h, w = shape
    out = np.zeros((h, w, src.shape[2]), np.float32)
    cover = np.zeros((h, w), np.float32)
    srcf = src.astype(np.float32)
    for tri in Delaunay(dst_pts.astype(np.float64)).simplices:
        d = dst_pts[tri].astype(np.float32)
        x0, y0 = np.floor(d.min(0)).astype(int)
        x1, y1 = np.ceil(d.max(0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            continue
        m = cv2.getAffineTransform(src_pts[tri].astype(np.float32), d - np.float32([x0, y0]))
        patch = cv2.warpAffine(
            srcf, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
        )
        tmask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillConvexPoly(tmask, np.round((d - [x0, y0]) * 16).astype(np.int32), 1, cv2.LINE_8, 4)
        sel = tmask.astype(bool)
        out[y0:y1, x0:x1][sel] = patch[sel]
        cover[y0:y1, x0:x1][sel] = 1.0
    return out, cover


def colour_transfer(src: np.ndarray, ref: np.ndarray, mask: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Reinhard colour transfer: match ``src``'s Lab mean/std inside ``mask`` to ``ref``'s (float 0..255).

    Deviation from Reinhard et al.: the std ratio is clipped to [0.5, 2].
    """
    if strength <= 0:
        return src
    sel = mask > 0.5
    if sel.sum() < 16:
        return src
    s_lab = cv2.cvtColor(np.clip(src / 255.0, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)
    r_lab = cv2.cvtColor(np.clip(ref / 255.0, 0, 1).astype(np.float32), cv2.COLOR_RGB2Lab)
    sm, ss = s_lab[sel].mean(0), s_lab[sel].std(0) + 1e-3
    rm, rs = r_lab[sel].mean(0), r_lab[sel].std(0) + 1e-3
    moved = (s_lab - sm) * np.clip(rs / ss, 0.5, 2.0) + rm  # bounded: extreme contrast stretch looks broken
    moved = cv2.cvtColor(moved.astype(np.float32), cv2.COLOR_Lab2RGB) * 255.0
    return (1 - strength) * src + strength * moved


def feathered_alpha(mask: np.ndarray, face_width: float, spec: FakeSpec) -> np.ndarray:
    """Erode, then Gaussian-feather a {0,1} mask; the peak is ``spec.opacity``."""
    m = mask.astype(np.float32)
    e = int(round(spec.erode * face_width))
    if e > 0:
        m = cv2.erode(m, np.ones((2 * e + 1, 2 * e + 1), np.uint8))
    sigma = spec.feather * face_width
    if sigma > 0.3:
        k = 2 * int(np.ceil(3 * sigma)) + 1
        m = cv2.GaussianBlur(m, (k, k), sigma, borderType=cv2.BORDER_CONSTANT)
    return np.clip(m, 0, 1) * spec.opacity


def upsampling_artifacts(img: np.ndarray, stride: int, mix: float) -> np.ndarray:
    """Down- then up-sample by ``stride``: a smooth upsampling mixed (``mix``) with a transposed-conv-like
    one (zero insertion + box kernel of size stride + 1: uneven overlap gives the checkerboard)."""
    h, w = img.shape[:2]
    lh, lw = max(1, h // stride), max(1, w // stride)
    low = cv2.resize(img, (lw, lh), interpolation=cv2.INTER_AREA)
    smooth = cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)
    zeros = np.zeros_like(img)
    zeros[: lh * stride : stride, : lw * stride : stride] = low
    k = stride + 1
    checker = cv2.filter2D(zeros, -1, np.ones((k, k), np.float32), borderType=cv2.BORDER_REFLECT_101)
    checker *= (stride * stride) / float(k * k)
    return (1 - mix) * smooth + mix * checker


class StaticFake:
    """The per-video static part of a fake, in portrait coordinates resized to the frame size.

    ``content``: the inserted pixels (swap / region; None for self-generated kinds), ``region``: the
    region mask, both already at the domain's frame resolution.
    """

    def __init__(
        self,
        spec: FakeSpec,
        target_portrait: np.ndarray,
        target_lm: np.ndarray,
        source_portrait: np.ndarray | None,
        source_lm: np.ndarray | None,
        size: int,
    ) -> None:
        self.spec = spec
        p = target_portrait.shape[0]
        shape = (p, p)
        region = hull_mask(region_points(target_lm, spec.region), shape)
        self.content = None
        if spec.kind in ("swap", "region"):
            if source_portrait is None or source_lm is None:
                raise ValueError(f"{spec.kind} needs a source identity")
            warped, cover = piecewise_affine(source_portrait, source_lm, target_lm, shape)
            region = region * cover
            # outside the triangles, the target itself: resizing must not pull black into the face edge
            warped = np.where(cover[..., None] > 0, warped, target_portrait.astype(np.float32))
            self.content = cv2.resize(warped, (size, size), interpolation=cv2.INTER_AREA)
        self.region = cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA)
        scale = size / p
        self.face_width = float(np.ptp(target_lm[:, 0])) * scale

    def apply(
        self, frame: np.ndarray, motion: np.ndarray, camera_blur: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Manipulate one captured frame (float32 RGB 0..255) moved by the 2x3 ``motion``.

        Returns ``(fake frame, alpha)``; ``alpha`` is the per-pixel blend weight of the inserted content.
        """
        spec = self.spec
        h, w = frame.shape[:2]
        warp = {"flags": cv2.INTER_LINEAR, "borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}
        region = cv2.warpAffine(self.region, motion, (w, h), **warp)
        region = (region > 0.5).astype(np.float32)
        if spec.kind in ("swap", "region"):
            content = cv2.warpAffine(self.content, motion, (w, h), flags=cv2.INTER_LINEAR)
            if spec.match_blur and camera_blur > 0:
                content = cv2.GaussianBlur(content, (0, 0), camera_blur)
        elif spec.kind == "selfblend":
            content = self._self_source(frame)
        elif spec.kind == "upsample":
            content = frame
        else:
            raise ValueError(f"unknown manipulation {spec.kind!r}; known: swap, region, selfblend, upsample")
        if spec.upsample:
            content = upsampling_artifacts(content, spec.upsample, spec.artifact)
        content = np.clip(colour_transfer(content, frame, region, spec.colour), 0, 255)
        alpha = feathered_alpha(region, self.face_width, spec)
        out = alpha[..., None] * content + (1 - alpha[..., None]) * frame
        return out, alpha

    def _self_source(self, frame: np.ndarray) -> np.ndarray:
        """SBI's source: colour shift, contrast, blur or sharpening, small shift and scale of the frame."""
        dr, dg, db, contrast, freq, dx, dy, scale = self.spec.jitter
        src = (frame - 128.0) * contrast + 128.0 + np.float32([dr, dg, db])
        if freq > 0:
            src = cv2.GaussianBlur(src, (0, 0), freq)
        elif freq < 0:
            src = src + (-freq) * (src - cv2.GaussianBlur(src, (0, 0), 1.5))
        h, w = frame.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, scale)
        m[:, 2] += (dx * w, dy * h)
        return cv2.warpAffine(src.astype(np.float32), m, (w, h), borderMode=cv2.BORDER_REFLECT_101)

"""Sampled frames -> the tracked face -> aligned crops with 68 landmarks (and the warped forgery mask).

The one face pipeline: preprocessing (``datamodules.preprocess``) and single-file prediction
(``benchmark.predict``) both call :func:`track_and_crop`, so a file scored directly gets the crops a
preprocessed dataset holds.

* Detection (:class:`FaceTracker`) runs on the frame downscaled to at most ``detect_max_side`` pixels
  and, once a face is tracked, on a window around it scaled so the face is ~``TRACK_FACE_PX`` wide
  (MTCNN's last stage sees 48 px anyway); the full frame again when the window finds none.
* The face is the LARGEST in the first frame that has one (for a fake with a manipulation mask: the face
  the mask covers most), then followed by overlap; a frame where no face overlaps the tracked one is
  ``face_lost``, never another person.
* Each face is aligned by a 5-point similarity into ``size`` x ``size`` with ``margin``
  (``datamodules.media.align``); the mask is warped by the same matrix and binarised; dlib 68 landmarks
  are computed on the aligned crop.
* A preprocessing protocol's filters (``datamodules.preprocess.protocols``; off by default) exclude frames
  whose tracked face is below ``min_confidence`` (``low_confidence``: tracking only sees faces at or above
  it, so kept crops are the unfiltered ones) or whose detector box in source pixels is narrower or
  shorter than ``min_face_side`` (``small_face``: the tracker still follows it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from datamodules.media import align, confounds, faces

TRACK_FACE_PX = 96


@dataclass(frozen=True)
class FaceCropOptions:
    """How faces are found, followed and cropped (preprocessing stores these in ``preprocess.json``)."""

    size: int = 256
    margin: float = 1.3
    backend: str = "mtcnn"
    detect_max_side: int = 640
    min_iou: float = 0.25
    max_shift: float = 1.0
    min_face: int = 20
    min_confidence: float | None = None  # protocol rule: the tracked face's score must reach it (None: off)
    min_face_side: int = 0  # protocol rule: its box must be this wide AND high in source px (0: off)


@dataclass
class FaceCrop:
    """One sampled frame's outcome.

    Attributes:
        frame_index: the frame's index in its video (0 for an image).
        status: ``ok | no_face | face_lost | low_confidence | small_face | decode_error | error`` (the
            manifest's statuses).
        reason: why there is no crop (or a note, e.g. an unreadable mask frame); "" when all is well.
        crop: aligned RGB uint8 ``[size, size, 3]`` when ``ok``.
        landmarks: float32 ``[68, 2]`` in crop pixels when ``ok``.
        mask: the forgery mask warped like the crop, uint8 0/255 ``[size, size]``, when a mask frame was given.
        box: the tracked face's detector box ``(x1, y1, x2, y2)`` in SOURCE pixels when ``ok``.
        blockiness: the 8 x 8 blockiness of that box in the decoded source frame
            (``datamodules.media.confounds.source_blockiness``) when ``ok``.
    """

    frame_index: int
    status: str
    reason: str = ""
    crop: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    mask: np.ndarray | None = None
    box: np.ndarray | None = None
    blockiness: float = float("nan")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes (0 when the union is empty)."""
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def mask_coverage(mask: np.ndarray, box: np.ndarray) -> float:
    """Fraction of ``box`` the binary mask covers."""
    h, w = mask.shape[:2]
    x1, y1 = int(max(0, box[0])), int(max(0, box[1]))
    x2, y2 = int(min(w, box[2])), int(min(h, box[3]))
    if x2 <= x1 or y2 <= y1:
        return 0.0
    return float((mask[y1:y2, x1:x2] > 127).mean())


def _shift(face: faces.Face, dx: float, dy: float, scale: float) -> faces.Face:
    off = np.array([dx, dy], np.float32)
    return faces.Face(
        box=face.box * scale + np.tile(off, 2),
        score=face.score,
        points5=face.points5 * scale + off,
    )


class FaceTracker:
    """Detects faces and keeps following ONE person through a video.

    The first frame with a face picks it (the mask's face if a mask is given, else the largest); later
    frames take the candidate that overlaps the last accepted box, or has its size and moved less than
    ``max_shift`` face sizes (see :meth:`_best`), and report ``face_lost`` when none does.
    """

    def __init__(self, detect: Callable[..., list[faces.Face]], opts: FaceCropOptions) -> None:
        self.detect, self.opts = detect, opts
        self.last: np.ndarray | None = None
        #: with a confidence rule the detector reports every face (``min_score=0``) and the tracker splits
        #: them at ``min_confidence``; without one the backend's own floor applies, as it always did
        self.detect_kwargs = {} if opts.min_confidence is None else {"min_score": 0.0}

    def _detect(self, rgb: np.ndarray, window: np.ndarray | None = None) -> list[faces.Face]:
        """Faces in ``rgb`` (or in ``window`` of it), in full-frame coordinates.

        The full frame is downscaled to ``detect_max_side``; a tracking window is downscaled so the
        tracked face is about ``TRACK_FACE_PX`` wide (MTCNN's last stage sees faces at 48 px anyway)
        and faces under half the tracked size are not searched for.
        """
        x0 = y0 = 0
        s, min_size = 1.0, self.opts.min_face
        h, w = rgb.shape[:2]
        if window is not None:
            x0, y0, x1, y1 = (int(v) for v in window)
            rgb = rgb[y0:y1, x0:x1]
            h, w = rgb.shape[:2]
            side = float(min(self.last[2] - self.last[0], self.last[3] - self.last[1]))
            s = min(1.0, TRACK_FACE_PX / max(side, 1.0))
            min_size = max(self.opts.min_face, int(0.5 * side * s))
        else:
            s = min(1.0, self.opts.detect_max_side / max(h, w))
        small = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA) if s < 1 else rgb
        found = [
            _shift(f, x0, y0, 1.0 / s) for f in self.detect(small, min_size=min_size, **self.detect_kwargs)
        ]
        return [f for f in found if min(f.box[2] - f.box[0], f.box[3] - f.box[1]) >= self.opts.min_face]

    def _split(self, found: list[faces.Face]) -> tuple[list[faces.Face], list[faces.Face]]:
        """``(faces at or above min_confidence, faces below it)``; all faces count without the rule."""
        floor = self.opts.min_confidence
        if floor is None:
            return found, []
        return [f for f in found if f.score >= floor], [f for f in found if f.score < floor]

    def _window(self, shape: tuple[int, ...]) -> np.ndarray:
        x1, y1, x2, y2 = self.last
        bw, bh = x2 - x1, y2 - y1
        h, w = shape[:2]
        k = self.opts.max_shift + 0.5  # room for a face that moved ``max_shift`` face sizes
        return np.array([max(0, x1 - k * bw), max(0, y1 - k * bh), min(w, x2 + k * bw), min(h, y2 + k * bh)])

    def __call__(self, rgb: np.ndarray, mask: np.ndarray | None = None) -> tuple[faces.Face | None, str]:
        """``(face, "ok")`` for the tracked face; ``(None, "no_face" | "face_lost")``; with a confidence rule,
        ``(the low-scoring face, "low_confidence")`` when the person is found only below the threshold
        (such a face never moves the tracker)."""
        if self.last is None:
            cands, low = self._split(self._detect(rgb))
            if not cands:
                return (max(low, key=lambda f: f.area), "low_confidence") if low else (None, "no_face")
            pick = cands[0]
            if mask is not None and len(cands) > 1:
                cover = [mask_coverage(mask, f.box) for f in cands]
                if max(cover) > 0:
                    pick = cands[int(np.argmax(cover))]
            self.last = pick.box
            return pick, "ok"
        in_window, low_window = self._split(self._detect(rgb, self._window(rgb.shape)))
        best = self._best(in_window)
        if best is None:  # the window may miss a fast move: look at the whole frame
            cands, low = self._split(self._detect(rgb))
            best = self._best(cands)
            if best is None:
                weak = self._best(low_window + low)
                if weak is not None:
                    return weak, "low_confidence"
                return None, "face_lost" if cands else "no_face"
        self.last = best.box
        return best, "ok"

    def _best(self, cands: list[faces.Face]) -> faces.Face | None:
        """The candidate that is the tracked person: overlapping it (IoU >= ``min_iou``), or, for a
        face that moved further between two sampled frames, a face of similar size (ratio within
        1.5x) whose centre moved at most ``max_shift`` face sizes; the closest such face wins."""
        lx1, ly1, lx2, ly2 = self.last
        lsize = float(np.sqrt(max(1.0, (lx2 - lx1) * (ly2 - ly1))))
        lc = np.array([lx1 + lx2, ly1 + ly2]) / 2
        best, best_key = None, None
        for f in cands:
            o = iou(f.box, self.last)
            size = float(np.sqrt(max(1.0, f.area)))
            shift = float(np.linalg.norm((f.box[:2] + f.box[2:]) / 2 - lc)) / lsize
            same = o >= self.opts.min_iou or (shift <= self.opts.max_shift and 1 / 1.5 <= size / lsize <= 1.5)
            if same and (best_key is None or (-o, shift) < best_key):
                best, best_key = f, (-o, shift)
        return best


_NO_FACE_REASON = {"no_face": "no face detected", "face_lost": "no face overlaps the tracked face"}


def box_size(box: np.ndarray) -> tuple[float, float]:
    """``(width, height)`` of an ``(x1, y1, x2, y2)`` box, in its own pixels."""
    return float(box[2] - box[0]), float(box[3] - box[1])


def excluded(face: faces.Face | None, status: str, opts: FaceCropOptions) -> tuple[str, str] | None:
    """``(status, reason)`` when a protocol rule or a failed detection excludes the frame, else None."""
    if status == "low_confidence" and face is not None:
        return status, f"face confidence {face.score:.3f} < {opts.min_confidence:g} (protocol rule)"
    if status != "ok" or face is None:
        return status, _NO_FACE_REASON.get(status, status)
    w, h = box_size(face.box)
    if opts.min_face_side and min(w, h) < opts.min_face_side:
        side = opts.min_face_side
        return "small_face", f"face box {w:.0f}x{h:.0f} source px, smaller than {side}x{side} (protocol rule)"
    return None


def track_and_crop(
    frames: Iterable[tuple[int, np.ndarray | None, str]],
    opts: FaceCropOptions,
    masks: Iterable[np.ndarray | None] | None = None,
    mask_name: str | None = None,
) -> Iterator[FaceCrop]:
    """Follow one face through ``frames`` and yield each frame's aligned crop (or why there is none).

    Args:
        frames: ``(frame_index, rgb uint8 or None, reason)`` in video order (``datamodules.media.video``).
        opts: detector backend, detection scale, tracking thresholds, crop side and margin.
        masks: the forgery-mask frame of each frame (grey uint8, or None when unreadable); the tracker
            picks the masked face and the mask is warped with the crop.
        mask_name: the mask file's name, when the video has one: an ok frame whose mask frame is None
            then says so in its ``reason``.

    A failure inside one frame yields an ``error`` crop and the next frame is tried; a failure of the
    ``frames`` iterator itself (a decoder dying mid-stream) propagates.
    """
    if opts.min_confidence is not None and faces.resolve_backend(opts.backend) == "dlib":
        raise ValueError(
            "a confidence rule needs a backend whose score is a probability (mtcnn, insightface)"
        )
    tracker = FaceTracker(faces.get_detector(opts.backend), opts)
    mask_iter: Iterable[np.ndarray | None] = masks if masks is not None else iter(lambda: None, 0)
    for (fi, rgb, reason), mask in zip(frames, mask_iter, strict=False):
        if rgb is None:
            yield FaceCrop(fi, "decode_error", reason)
            continue
        try:
            face, status = tracker(rgb, mask)
            out = excluded(face, status, opts)
            if out is not None:
                yield FaceCrop(fi, *out)
                continue
            m = align.alignment_matrix(face.points5, opts.size, opts.margin)
            crop = align.warp(rgb, m, opts.size)
            lm = faces.landmarks68(crop, align.box_in_crop(face.box, m)).astype(np.float32)
            warped, note = None, ""
            if mask is not None:
                warped = np.where(align.warp(mask, m, opts.size) > 127, 255, 0).astype(np.uint8)
            elif mask_name is not None:
                note = f"mask frame {fi} unreadable in {mask_name}"
            block = confounds.source_blockiness(rgb, face.box)
            yield FaceCrop(fi, "ok", note, crop, lm, warped, np.asarray(face.box, np.float64), block)
        except Exception as e:  # noqa: BLE001  (one bad frame must not stop the video)
            yield FaceCrop(fi, "error", f"{type(e).__name__}: {e}")

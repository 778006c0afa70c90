"""Short clips with smooth head motion, lighting drift and camera noise, and atomic video writing.

A clip moves the identity's portrait by a smooth random similarity transform per frame (sums of two
low-frequency sinusoids per parameter), scales its brightness, left-right shading and tint along slow
drifts, then sends every frame through the domain's camera (:meth:`Domain.capture`). Fakes reuse their
target clip's motion, lighting and noise (the manipulation is applied to the captured original, as
real forgeries are made from a recorded video), so a fake differs from its original only inside its mask
before compression.

Videos are ``mp4v`` MPEG-4 files written by ``cv2.VideoWriter``, first under a staging folder, checked by
decoding every frame back, and only then renamed into place: a file at its final path is complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from datamodules.atomic import atomic_path, write_text
from datamodules.demo_gen.domains import Domain
from datamodules.demo_gen.manipulations import MASK_THRESHOLD, StaticFake

FPS = 25


class VideoWriteError(OSError):
    """A video could not be written completely (disk full, codec missing, ...)."""


@dataclass(frozen=True)
class Clip:
    """Per-frame 2x3 similarity ``motion [T, 2, 3]`` (frame pixels), ``gain [T]``, ``shade [T]``, ``tint [T, 3]``."""

    motion: np.ndarray
    gain: np.ndarray
    shade: np.ndarray
    tint: np.ndarray


def _drift(rng: np.random.Generator, t: np.ndarray, amplitude: float) -> np.ndarray:
    """A smooth signal in [-amplitude, amplitude]: two sinusoids of 0.2-1.2 cycles per clip."""
    out = np.zeros_like(t)
    for weight in (0.65, 0.35):
        freq, phase = rng.uniform(0.2, 1.2), rng.uniform(0, 2 * np.pi)
        out += weight * np.sin(2 * np.pi * freq * t + phase)
    return amplitude * out


def random_clip(rng: np.random.Generator, frames: int, size: int, light: float) -> Clip:
    """Draw one clip's head motion and lighting drift."""
    t = np.linspace(0.0, 1.0, frames)
    angle = _drift(rng, t, 7.0)
    scale = 1.0 + _drift(rng, t, 0.05)
    tx, ty = _drift(rng, t, 0.05 * size), _drift(rng, t, 0.04 * size)
    motion = np.stack(
        [
            cv2.getRotationMatrix2D((size / 2, size / 2), float(a), float(s))
            for a, s in zip(angle, scale, strict=True)
        ]
    )
    motion[:, 0, 2] += tx
    motion[:, 1, 2] += ty
    gain = 1.0 + _drift(rng, t, light)
    shade = _drift(rng, t, light)
    tint = 1.0 + np.stack([_drift(rng, t, 0.03) for _ in range(3)], axis=1)
    return Clip(motion=motion, gain=gain, shade=shade, tint=tint)


def render_frames(
    portrait: np.ndarray,
    clip: Clip,
    domain: Domain,
    rng: np.random.Generator,
    fake: StaticFake | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The uint8 RGB frames of one clip (after the domain's camera and compression) and, for a fake, its
    uint8 {0, 255} masks. ``rng`` drives the camera noise: pass the same seed for a fake and its original.
    """
    size = domain.size
    base = cv2.resize(portrait, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    ramp = np.linspace(-1.0, 1.0, size, dtype=np.float32)[None, :, None]
    frames, masks = [], []
    for i in range(clip.motion.shape[0]):
        scene = cv2.warpAffine(
            base, clip.motion[i], (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        scene = (
            scene
            * np.float32(clip.gain[i])
            * (1 + np.float32(clip.shade[i]) * ramp)
            * clip.tint[i].astype(np.float32)
        )
        captured = domain.capture(scene, rng)
        if fake is not None:
            captured, alpha = fake.apply(captured, clip.motion[i], domain.blur)
            masks.append(np.where(alpha > MASK_THRESHOLD, 255, 0).astype(np.uint8))
        frames.append(domain.compress(captured))
    return frames, masks


def read_video(path: Path | str) -> list[np.ndarray]:
    """Every frame of a video as uint8 RGB."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(np.ascontiguousarray(frame[:, :, ::-1]))
    finally:
        cap.release()
    return frames


def write_video_atomic(frames: list[np.ndarray], final: Path, staging: Path) -> None:
    """Write ``frames`` (uint8 RGB, or uint8 gray masks) to ``final`` through ``staging``.

    The staged file is decoded back; only a file with every frame is renamed to ``final``
    (``datamodules.atomic``: fsync, rename, folder fsync; the staged file is removed on failure).
    """
    h, w = frames[0].shape[:2]
    with atomic_path(final, tmp_dir=staging, suffix=".mp4") as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (w, h), True)
        if not writer.isOpened():
            raise VideoWriteError(f"cv2.VideoWriter cannot open {tmp} with the mp4v codec")
        try:
            for f in frames:
                bgr = (
                    cv2.cvtColor(f, cv2.COLOR_GRAY2BGR)
                    if f.ndim == 2
                    else np.ascontiguousarray(f[:, :, ::-1])
                )
                writer.write(bgr)
        finally:
            writer.release()
        n = len(read_video(tmp)) if tmp.is_file() else 0
        if n != len(frames):
            raise VideoWriteError(
                f"writing {final} failed: {n} of {len(frames)} frames decode back (disk full?); nothing was kept"
            )


def write_text_atomic(text: str, final: Path, staging: Path) -> None:
    """Write a small UTF-8 text file through the staging folder (``datamodules.atomic``)."""
    write_text(final, text, tmp_dir=staging)

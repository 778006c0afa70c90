"""The three capture domains: camera pipeline, compression and manipulation mix of each.

The domains differ the way real datasets differ (resolution, optics, sensor, grading, codec strength,
and who made the fakes how well), so a detector trained on ``demo-FF`` meets a shifted score
distribution on the others:

* ``demo-FF`` (FaceForensics++-like): sharp, low noise, neutral colour, light compression (c23-like);
  four methods with visible blending seams and decoder artifacts. Real faces here are the cleanest.
* ``demo-CDF`` (Celeb-DF-v2-like): softer optics, more noise, warm high-contrast grading, stronger
  compression; face swaps with careful blending (wide feather, colour transfer, camera-matched blur),
  as Celeb-DF improved on the first DeepFakes.
* ``demo-DFDC`` (DFDC-like): low resolution, heavy sensor noise, cool desaturated grading, strongest
  compression; a mix of every manipulation with random, often poor, blending quality.

Real videos of CDF and DFDC therefore carry the blur / noise / compression cues that FF's fakes carry
and FF's reals lack: an FF-trained detector scores them higher (the shift Cross-AUC exposes).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from datamodules.demo_gen.manipulations import FakeSpec

FF_METHODS: tuple[str, ...] = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
"""FF++ method folder names used by demo-FF, each with the demo algorithm closest to the original:
Deepfakes = swap + decoder upsampling artifacts, Face2Face = eyes/mouth region replacement (an
expression edit), FaceSwap = the graphics landmark swap, NeuralTextures = self-blend of the mouth/lower
face with a smoothed re-render. They are analogues, not the original methods."""


@dataclass(frozen=True)
class Domain:
    """A capture pipeline. Frame values are float32 RGB in 0..255."""

    name: str
    layout: str
    size: int
    blur: float
    noise: float
    gains: tuple[float, float, float]
    contrast: float
    saturation: float
    gamma: float
    jpeg: int
    light: float

    def capture(self, scene: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Optics (blur), sensor (signal-dependent Gaussian noise), then colour grading; rounded to 8 bit."""
        img = scene
        if self.blur > 0:
            img = cv2.GaussianBlur(img, (0, 0), self.blur)
        sigma = self.noise * (0.5 + 0.5 * np.clip(img, 0, 255) / 255.0)
        img = img + sigma * rng.standard_normal(img.shape, dtype=np.float32)
        x = np.clip(img / 255.0, 0, 1)
        x = x ** np.float32(self.gamma)
        x = x * np.float32(self.gains)
        grey = x.mean(axis=2, keepdims=True)
        x = grey + (x - grey) * np.float32(self.saturation)
        x = (x - 0.5) * np.float32(self.contrast) + 0.5
        return np.round(np.clip(x, 0, 1) * 255.0).astype(np.float32)

    def compress(self, frame: np.ndarray) -> np.ndarray:
        """The domain's codec strength as a JPEG round trip (deterministic); returns uint8 RGB."""
        u8 = np.clip(np.round(frame), 0, 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", u8[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, self.jpeg])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed in domain {self.name}")
        return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])

    def fake_spec(self, method: str, rng: np.random.Generator) -> FakeSpec:
        """Draw one fake's manipulation and blending quality (``method`` only matters for demo-FF)."""
        return _MIXES[self.name](method, rng)


def _ff(method: str, rng: np.random.Generator) -> FakeSpec:
    if method == "Deepfakes":
        return FakeSpec(
            "swap", feather=rng.uniform(0.02, 0.04), erode=0.03, upsample=2, artifact=rng.uniform(0.12, 0.25)
        )
    if method == "FaceSwap":
        return FakeSpec("swap", feather=rng.uniform(0.005, 0.015))
    if method == "Face2Face":
        return FakeSpec("region", region=str(rng.choice(["eyes", "mouth"])), feather=rng.uniform(0.01, 0.03))
    if method == "NeuralTextures":
        return FakeSpec(
            "selfblend",
            region=str(rng.choice(["mouth", "lower"])),
            colour=0.0,
            feather=rng.uniform(0.01, 0.03),
            upsample=2,
            artifact=rng.uniform(0.1, 0.2),
            jitter=_sbi_jitter(rng, blur_only=True),
        )
    raise ValueError(f"unknown demo-FF method {method!r}; known: {', '.join(FF_METHODS)}")


def _cdf(method: str, rng: np.random.Generator) -> FakeSpec:
    return FakeSpec(
        "swap",
        feather=rng.uniform(0.05, 0.08),
        erode=0.05,
        match_blur=True,
        upsample=2,
        artifact=rng.uniform(0.08, 0.15),
    )


def _dfdc(method: str, rng: np.random.Generator) -> FakeSpec:
    kind = str(rng.choice(["swap", "region", "selfblend", "upsample"], p=[0.4, 0.2, 0.2, 0.2]))
    feather = rng.uniform(0.005, 0.06)
    # most DFDC fakes come from autoencoders/GANs: decoder upsampling artifacts of varying strength
    art = {"upsample": 2, "artifact": rng.uniform(0.1, 0.3)}
    if kind == "swap":
        return FakeSpec(
            "swap", colour=rng.uniform(0.3, 1.0), feather=feather, match_blur=bool(rng.random() < 0.5), **art
        )
    if kind == "region":
        return FakeSpec("region", region=str(rng.choice(["eyes", "mouth"])), feather=feather, **art)
    if kind == "selfblend":
        return FakeSpec(
            "selfblend",
            region=str(rng.choice(["face", "lower"])),
            colour=0.0,
            feather=feather,
            opacity=rng.uniform(0.6, 1.0),
            jitter=_sbi_jitter(rng, blur_only=False),
            **art,
        )
    return FakeSpec(
        "upsample",
        colour=0.0,
        feather=feather,
        upsample=int(rng.integers(2, 4)),
        artifact=rng.uniform(0.1, 0.3),
    )


def _sbi_jitter(rng: np.random.Generator, blur_only: bool) -> tuple[float, ...]:
    shift = rng.uniform(-10, 10, size=3)
    contrast = rng.uniform(0.88, 1.12)
    freq = rng.uniform(0.8, 1.6) if blur_only or rng.random() < 0.5 else -rng.uniform(0.5, 1.5)
    dx, dy = rng.uniform(-0.015, 0.015, size=2)
    scale = rng.uniform(1.0, 1.03)
    return (*map(float, shift), float(contrast), float(freq), float(dx), float(dy), float(scale))


_MIXES = {"demo-FF": _ff, "demo-CDF": _cdf, "demo-DFDC": _dfdc}

DOMAINS: dict[str, Domain] = {
    "demo-FF": Domain("demo-FF", "ffpp", 128, 0.0, 1.5, (1.0, 1.0, 1.0), 1.0, 1.0, 1.0, jpeg=92, light=0.10),
    "demo-CDF": Domain(
        "demo-CDF", "celebdf_v2", 112, 0.9, 3.5, (1.07, 1.0, 0.9), 1.15, 1.1, 0.95, jpeg=55, light=0.15
    ),
    "demo-DFDC": Domain(
        "demo-DFDC", "dfdc", 96, 0.6, 5.0, (0.94, 1.0, 1.08), 0.9, 0.75, 1.1, jpeg=50, light=0.2
    ),
}

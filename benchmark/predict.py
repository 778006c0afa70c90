"""``python -m benchmark.predict CHECKPOINT PATH...``: score images or videos with a trained detector.

Each frame goes through preprocessing's face pipeline (``datamodules.media.crop.track_and_crop``, the
function ``datamodules.preprocess`` calls): the tracker picks the face (the largest in the first frame,
then the same person) with the same detector backend, the 5-point similarity aligns it to the same
256-px crop with the same margin, dlib finds its 68 landmarks. The crop then becomes the detector's input
exactly as in the runner's test loader (``datamodules.loading.transforms.SampleTransform`` without
augmentation: resize, the normalisation lookup table, region masks painted from the transformed
landmarks at the mask size), so a crop gets the same probability here and in a benchmark cell. A video
is sampled evenly (``--frames``); its probability is the mean of its frame probabilities (the
leaderboards' video aggregation). Scoring is the detector's own ``predict_step`` (the LightningModule's:
probabilities and the inference maps of its typed ``aux``, :class:`detectors.base.DetectorAux`).

Output: a rich table, or ``--json``. For detectors whose output carries a patch map
(``DetectorAux.patch_fakeness``, SFAM), ``--overlay DIR`` writes one PNG per input: the face crop of its
most fake-looking frame with the patch map overlaid and the region scores (``DetectorAux.region_scores``).

Examples::

    python -m benchmark.predict runs/cells/<id>/checkpoints/best-*.ckpt face.jpg clip.mp4 --json
    python -m benchmark.predict sfam.ckpt clip.mp4 --detector sfam --overlay overlays/
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from datamodules.media.crop import FaceCrop, FaceCropOptions

if TYPE_CHECKING:
    from detectors.base import DetectorAux

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
CROP_SIZE = FaceCropOptions.size  # preprocessing's default crop side
MARGIN = FaceCropOptions.margin  # preprocessing's default alignment margin


class PredictInputError(ValueError):
    """An input path is missing or is neither an image nor a video."""


@dataclass
class Prediction:
    """The p(fake) of one input file: per-frame scores, the video score and the overlay written, if any."""

    path: str
    kind: str
    frames: list[dict[str, Any]] = field(default_factory=list)
    video_score: float | None = None
    overlay: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The prediction as a JSON-ready dict (with frame counts)."""
        return {
            "path": self.path,
            "kind": self.kind,
            "video_score": self.video_score,
            "n_frames": len(self.frames),
            "n_scored": sum(f["score"] is not None for f in self.frames),
            "frames": self.frames,
            "overlay": self.overlay,
        }


def read_frames(path: Path, n_frames: int) -> tuple[str, list[tuple[int, np.ndarray | None, str]]]:
    """``("image"|"video", [(frame_index, rgb or None, reason)])`` for an image or a video file."""
    from datamodules.media.video import open_video, read_image, read_video_frames, sample_indices

    if not path.is_file():
        raise PredictInputError(f"input not found: {path}")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        img = read_image(path)
        return "image", [(0, img, "" if img is not None else f"cannot decode image {path}")]
    try:
        cap, count = open_video(path)
    except OSError as e:
        raise PredictInputError(
            f"{path} is neither an image ({', '.join(sorted(IMAGE_SUFFIXES))}) nor a video: {e}"
        ) from e
    try:
        return "video", list(read_video_frames(cap, sample_indices(count, n_frames)))
    finally:
        cap.release()


def face_frames(
    path: Path, n_frames: int, crop_size: int = CROP_SIZE, margin: float = MARGIN, backend: str = "auto"
) -> tuple[str, list[FaceCrop]]:
    """Sampled frames of ``path`` with their face crops, made by preprocessing's own function.

    ``datamodules.media.crop.track_and_crop`` with preprocessing's detection and tracking defaults and
    the given crop side, margin and detector backend.
    """
    from datamodules.media.crop import track_and_crop

    kind, frames = read_frames(path, n_frames)
    opts = FaceCropOptions(size=crop_size, margin=margin, backend=backend)
    return kind, list(track_and_crop(frames, opts))


def make_batch(frames: list[FaceCrop], spec: Any, video_id: str, soft_regions: bool = True) -> Any:
    """A Batch of face crops for ``spec``, built as the test loader builds it (same transform and masks).

    ``soft_regions``: soft or one-hot region masks, as the datamodule's option of that name (default soft).
    """
    from datamodules.batch import collate
    from datamodules.loading.transforms import SampleTransform
    from datamodules.manifest import sample_id

    transform = SampleTransform(spec, augment=False, soft_regions=soft_regions)
    items = []
    for f in frames:
        if f.crop is None:
            raise ValueError(f"frame {f.frame_index} of {video_id} has no face crop ({f.status})")
        item: dict[str, Any] = {
            "label": 0,  # unknown; not used for scoring
            "sample_id": sample_id(video_id, f.frame_index),
            "video_id": video_id,
            "dataset": "predict",
            "method": "unknown",
        }
        item.update(transform(f.crop, f.landmarks if spec.region_masks else None))
        items.append(item)
    return collate(items)


def overlay_png(
    crop: np.ndarray, patch: np.ndarray, regions: np.ndarray | None, score: float, path: Path
) -> Path:
    """The crop with the patch fakeness map on top, and the region scores as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from datamodules.media.regions import REGIONS

    ncols = 2 if regions is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(4.2 * ncols, 4.0), squeeze=False)
    ax = axes[0, 0]
    ax.imshow(crop)
    h, w = crop.shape[:2]
    im = ax.imshow(
        patch, cmap="inferno", alpha=0.45, vmin=0, vmax=1, extent=(0, w, h, 0), interpolation="nearest"
    )
    ax.set_title(f"patch fakeness (p(fake) = {score:.3f})", fontsize=9)
    ax.axis("off")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if regions is not None:
        names = list(REGIONS)[: len(regions)]
        axes[0, 1].barh(names, regions, color="tab:red")
        axes[0, 1].set_xlim(0, 1)
        axes[0, 1].invert_yaxis()
        axes[0, 1].set_title("region scores", fontsize=9)
    fig.tight_layout()
    from datamodules.atomic import atomic_path

    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100, metadata={"Software": None})
    finally:
        plt.close(fig)
    return path


@torch.no_grad()
def predict_path(
    model: Any,
    path: Path,
    n_frames: int = 8,
    overlay_dir: Path | None = None,
    batch_size: int = 16,
    backend: str = "auto",
) -> Prediction:
    """Score one image or video."""
    kind, frames = face_frames(path, n_frames, backend=backend)
    pred = Prediction(str(path), kind)
    ok = [f for f in frames if f.status == "ok"]
    scores: dict[int, float] = {}
    best: tuple[float, FaceCrop, DetectorAux] | None = None
    dev = next(model.parameters()).device
    for start in range(0, len(ok), batch_size):
        chunk = ok[start : start + batch_size]
        scored = model.predict_step(
            make_batch(chunk, model.data_spec, path.stem).to(dev), start // batch_size
        )
        for i, (f, p) in enumerate(zip(chunk, scored.score.tolist(), strict=True)):
            scores[f.frame_index] = float(p)
            if best is None or p > best[0]:
                best = (float(p), f, scored.aux.sample(i))
    for f in frames:
        s = scores.get(f.frame_index) if f.status == "ok" else None
        pred.frames.append({"frame_index": f.frame_index, "status": f.status, "score": s, "reason": f.reason})
    if scores:
        pred.video_score = float(np.mean(list(scores.values())))
    if overlay_dir is not None and best is not None and best[2].patch_fakeness is not None:
        p, f, aux = best
        assert f.crop is not None and aux.patch_fakeness is not None  # the best frame is an ``ok`` one
        target = Path(overlay_dir) / f"{path.stem}-overlay.png"
        regions = aux.region_scores.numpy() if aux.region_scores is not None else None
        pred.overlay = str(overlay_png(f.crop, aux.patch_fakeness.numpy(), regions, p, target))
    return pred


def print_table(preds: list[Prediction]) -> None:
    """Print one row per input: its p(fake), frames scored, per-frame scores and overlay path."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title="p(fake) per input (video: mean over frames with a face)")
    for col in ("input", "kind", "p(fake)", "frames scored", "per-frame p(fake)", "overlay"):
        t.add_column(col)
    for p in preds:
        per = ", ".join(
            f"{f['frame_index']}:{f['score']:.3f}"
            if f["score"] is not None
            else f"{f['frame_index']}:{f['status']}"
            for f in p.frames
        )
        n_ok = sum(f["score"] is not None for f in p.frames)
        score = f"{p.video_score:.3f}" if p.video_score is not None else "no face"
        t.add_row(p.path, p.kind, score, f"{n_ok}/{len(p.frames)}", per, p.overlay or "")
    Console().print(t)


def main(argv: list[str] | None = None) -> int:
    """Command line: score images and videos with a trained checkpoint; returns the exit code."""
    ap = argparse.ArgumentParser(prog="python -m benchmark.predict", description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("paths", type=Path, nargs="+", help="images and/or videos")
    ap.add_argument("--detector", help="refuse a checkpoint of any other detector")
    ap.add_argument("--frames", type=int, default=8, help="frames sampled evenly per video (default 8)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--overlay", type=Path, help="folder for patch-map overlays (detectors with a patch map)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--backend",
        default="auto",
        help="face detector backend, as preprocessing (auto|mtcnn|dlib|insightface)",
    )
    args = ap.parse_args(argv)

    from datamodules.errors import format_user_error, user_error
    from detectors import load_detector

    try:
        model = load_detector(args.checkpoint, expected=args.detector, map_location=args.device)
    except (FileNotFoundError, ValueError, KeyError) as e:
        hint = (
            "pass a checkpoint this suite wrote (runs/cells/<id>/checkpoints/) or one detectors.convert wrote"
        )
        print("\n".join(format_user_error(user_error(e, hint))), file=sys.stderr)
        return 2
    model.eval().to(args.device)
    preds = []
    try:
        for p in args.paths:
            preds.append(predict_path(model, p, args.frames, args.overlay, backend=args.backend))
    except PredictInputError as e:
        hint = "pass image files (.png, .jpg, ...) or videos (.mp4, .avi, ...)"
        print("\n".join(format_user_error(user_error(e, hint))), file=sys.stderr)
        return 2
    if args.json:
        print(
            json.dumps(
                {
                    "detector": model.name,
                    "checkpoint": str(args.checkpoint),
                    "inputs": [p.to_dict() for p in preds],
                },
                indent=2,
            )
        )
    else:
        print_table(preds)
    return 0


if __name__ == "__main__":
    from datamodules.errors import run_cli

    sys.exit(run_cli(main))

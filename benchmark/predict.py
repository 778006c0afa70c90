"""``python -m benchmark.predict CHECKPOINT PATH...``: score images or videos with a trained detector.

Each frame goes through the same face pipeline as preprocessing (``datamodules.preprocess``): its
``FaceTracker`` picks the face (the largest in the first frame, then the same person) with the same
detector backend, the 5-point similarity aligns it to the same 256-px crop with the same margin, then it
is resized and normalised for the detector's ``DataSpec``; region masks come from the 68 dlib
landmarks of the crop when the detector needs them. A video is sampled evenly (``--frames``); its
probability is the mean of its frame probabilities (the leaderboards' video aggregation).

Output: a rich table, or ``--json``. For detectors whose output carries a patch map
(``aux["patch_fakeness"]``, SFAM), ``--overlay DIR`` writes one PNG per input: the face crop of its most
fake-looking frame with the patch map overlaid and the region scores (``aux["region_scores"]``).

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
from typing import Any

import numpy as np
import torch

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
CROP_SIZE = 256  # preprocessing's default crop side
MARGIN = 1.3  # preprocessing's default alignment margin


class PredictInputError(ValueError):
    """An input path is missing or is neither an image nor a video."""


@dataclass
class FaceFrame:
    """One sampled frame: its aligned face crop (RGB uint8) and 68 landmarks, or why there is none."""

    frame_index: int
    status: str  # ok | no_face | decode_error
    crop: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    reason: str = ""


@dataclass
class Prediction:
    path: str
    kind: str
    frames: list[dict[str, Any]] = field(default_factory=list)
    video_score: float | None = None
    overlay: str | None = None

    def to_dict(self) -> dict[str, Any]:
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
) -> tuple[str, list[FaceFrame]]:
    """Sampled frames of ``path`` with their face crops, exactly as preprocessing makes them.

    The same ``FaceTracker`` (detector backend, downscaling for detection, following one person through
    a video) and the same 5-point alignment, crop side and margin as ``datamodules.preprocess``.
    """
    from datamodules.media import align, faces
    from datamodules.preprocess import FaceTracker, Options

    kind, frames = read_frames(path, n_frames)
    opts = Options(size=crop_size, margin=margin, backend=backend)
    tracker = FaceTracker(faces.get_detector(backend), opts)
    out = []
    for idx, rgb, reason in frames:
        if rgb is None:
            out.append(FaceFrame(idx, "decode_error", reason=reason))
            continue
        face, status = tracker(rgb)
        if face is None:
            out.append(FaceFrame(idx, status, reason="no face detected" if status == "no_face" else status))
            continue
        m = align.alignment_matrix(face.points5, opts.size, opts.margin)
        crop = align.warp(rgb, m, opts.size)
        lm = faces.landmarks68(crop, align.box_in_crop(face.box, m))
        out.append(FaceFrame(idx, "ok", crop, lm.astype(np.float32)))
    return kind, out


def make_batch(frames: list[FaceFrame], spec: Any, video_id: str) -> Any:
    """A Batch of the frames with a face, resized and normalised for ``spec`` (region masks if asked)."""
    import cv2

    from datamodules.batch import collate

    items = []
    mean = np.asarray(spec.mean, np.float32)[:, None, None]
    std = np.asarray(spec.std, np.float32)[:, None, None]
    for f in frames:
        assert f.crop is not None
        img = cv2.resize(f.crop, (spec.input_size, spec.input_size), interpolation=cv2.INTER_AREA)
        x = (img.astype(np.float32).transpose(2, 0, 1) / 255.0 - mean) / std
        item: dict[str, Any] = {
            "image": torch.from_numpy(np.ascontiguousarray(x)),
            "label": 0,  # unknown; not used for scoring
            "sample_id": f"{video_id}/{f.frame_index}",
            "video_id": video_id,
            "dataset": "predict",
            "method": "unknown",
        }
        if spec.region_masks:
            from datamodules.media.regions import region_masks

            m = region_masks(f.landmarks, spec.mask_side, src_size=f.crop.shape[0])
            item["region_masks"] = torch.from_numpy(m)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
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
    best: tuple[float, FaceFrame, dict[str, np.ndarray]] | None = None
    for start in range(0, len(ok), batch_size):
        chunk = ok[start : start + batch_size]
        batch = make_batch(chunk, model.data_spec, path.stem)
        dev = next(model.parameters()).device
        batch.image = batch.image.to(dev)
        if batch.region_masks is not None:
            batch.region_masks = batch.region_masks.to(dev)
        out = model(batch)
        probs = torch.sigmoid(out.logits.float()).cpu().numpy()
        for i, (f, p) in enumerate(zip(chunk, probs, strict=True)):
            scores[f.frame_index] = float(p)
            if best is None or p > best[0]:
                aux = {
                    k: v[i].float().cpu().numpy() for k, v in out.aux.items() if isinstance(v, torch.Tensor)
                }
                best = (float(p), f, aux)
    for f in frames:
        s = scores.get(f.frame_index) if f.status == "ok" else None
        pred.frames.append({"frame_index": f.frame_index, "status": f.status, "score": s, "reason": f.reason})
    if scores:
        pred.video_score = float(np.mean(list(scores.values())))
    if overlay_dir is not None and best is not None and "patch_fakeness" in best[2]:
        p, f, aux = best
        target = Path(overlay_dir) / f"{path.stem}-overlay.png"
        pred.overlay = str(overlay_png(f.crop, aux["patch_fakeness"], aux.get("region_scores"), p, target))
    return pred


def print_table(preds: list[Prediction]) -> None:
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

    from detectors import load_detector

    try:
        model = load_detector(args.checkpoint, expected=args.detector, map_location=args.device)
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    model.eval().to(args.device)
    preds = []
    try:
        for p in args.paths:
            preds.append(predict_path(model, p, args.frames, args.overlay, backend=args.backend))
    except PredictInputError as e:
        print(f"error: {e}", file=sys.stderr)
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
    sys.exit(main())

"""Preprocessing throughput: our pipeline against DeepfakeBench's approach, on the same videos, same run.

Videos: short 640x480 clips (a real face photo panning over a larger canvas, mp4v), written once to a
temporary folder in the UADFV layout. Figures are sampled frames per second (a frame counts once it
has a crop, landmarks and a manifest row).

* ``naive baseline``: DeepfakeBench's ``preprocessing/preprocess.py`` approach, re-implemented here:
  decode EVERY frame to RGB, and on each sampled frame run dlib's HOG detector (1 upsample) on the
  full-resolution frame, keep the largest face, align with 5 points from dlib's landmarks, run dlib
  again on the crop and save PNG + ``.npy``. (Fairer than the original: the dlib models are loaded
  once, not once per video.)
* ``ours (mtcnn)``: ``preprocess_dataset`` with the default backend: only sampled frames converted
  (grab/seek), detection on a downscaled frame, then inside a window around the tracked face.
* ``ours (dlib)``: the same pipeline with dlib's detector, to separate the pipeline's gain from the
  detector's.

Target (issue 4): ours >= 2x the naive baseline.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from benchmark.perf.timing import Figure, measure, throughput, with_ratio

TOPIC = "preprocess"


def _face(name: str) -> np.ndarray:
    if name == "astronaut":
        import skimage.data

        return skimage.data.astronaut()
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    img = cv2.imread(str(path))
    if img is None:
        raise FileNotFoundError(f"cannot read matplotlib's sample photo {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def make_videos(root: Path, n_videos: int, n_frames: int, size: tuple[int, int] = (640, 480)) -> list[Path]:
    """``n_videos`` clips of ``n_frames`` frames: a face photo (320 px) moving over a gray canvas at up to
    3 px per frame (a face of ~60-120 px: FF++-like at 480p)."""
    w, h = size
    out = []
    for v in range(n_videos):
        p = 320
        face = cv2.resize(_face(("astronaut", "grace_hopper")[v % 2]), (p, p), interpolation=cv2.INTER_AREA)
        path = root / "real" / f"{v:03d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        wr = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 25, (w, h))
        for i in range(n_frames):
            canvas = np.full((h, w, 3), 90, np.uint8)
            x = (w - p) // 2 + int(75 * np.sin(i / 25))
            y = (h - p) // 2 + int(20 * np.cos(i / 30))
            canvas[y : y + p, x : x + p] = face
            wr.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
        wr.release()
        out.append(path)
    return out


def naive_preprocess(videos: list[Path], out: Path, n: int, size: int = 256, margin: float = 1.3) -> int:
    """DeepfakeBench-style: decode every frame, full-frame dlib HOG on sampled ones. Returns frames done."""
    from datamodules.media import align, faces

    detector = faces._dlib_detector()
    done = 0
    for video in videos:
        cap = cv2.VideoCapture(str(video))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        wanted = set(np.linspace(0, count - 1, n).astype(int).tolist())
        i = 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)  # every frame converted, as in the original
            if i in wanted:
                rects = detector(rgb, 1)
                if len(rects):
                    r = max(rects, key=lambda r: r.width() * r.height())
                    box = np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32)
                    p5 = faces.points5_from_68(faces.landmarks68(rgb, box))
                    crop = align.warp(rgb, align.alignment_matrix(p5, size, margin), size)
                    again = detector(crop, 1)  # the original detects again on the crop
                    cbox = (
                        np.array([again[0].left(), again[0].top(), again[0].right(), again[0].bottom()])
                        if len(again)
                        else np.array([0, 0, size, size])
                    )
                    lm = faces.landmarks68(crop, cbox)
                    dst = out / video.stem
                    dst.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(dst / f"{i:03d}.png"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
                    np.save(dst / f"{i:03d}.npy", lm)
                    done += 1
            i += 1
        cap.release()
    return done


def run(quick: bool = False) -> list[Figure]:
    """Time preprocessing synthetic videos with each face backend (model loading not timed)."""
    from datamodules.manifest import read_manifest
    from datamodules.media import faces
    from datamodules.preprocess import preprocess_dataset

    n_videos, n_frames, n_sample, repeat = (2, 60, 8, 1) if quick else (3, 240, 16, 3)
    faces._mtcnn(), faces._dlib_detector(), faces._dlib_predictor()  # model loading is not timed
    tmp = Path(tempfile.mkdtemp(prefix="perf_preprocess_"))
    try:
        videos = make_videos(tmp / "data", n_videos, n_frames)
        (tmp / "data" / "fake").mkdir()  # the UADFV layout wants both folders: one fake, a copy
        videos.append(Path(shutil.copy(videos[0], tmp / "data" / "fake" / "f000.mp4")))
        total = len(videos) * n_sample
        counter = iter(range(10**6))
        ok: dict[str, int] = {}

        def ours(backend: str):
            def go() -> None:
                out = tmp / f"out{next(counter)}"
                m = preprocess_dataset("perf", "uadfv", tmp / "data", out, frames=n_sample, backend=backend,
                                       progress=False)  # fmt: skip
                ok[backend] = int((read_manifest(m, "perf").status == "ok").sum())
                shutil.rmtree(out)

            return go

        def naive() -> None:
            out = tmp / f"naive{next(counter)}"
            ok["naive"] = naive_preprocess(videos, out, n_sample)
            shutil.rmtree(out)

        note = f"{len(videos)} videos x {n_frames} frames 640x480, {n_sample} sampled per video"
        t = measure(naive, repeat)
        base = throughput(TOPIC, "naive baseline (decode all, full-frame dlib)", total, t, "frames/s",
                          note=f"{note}; {ok['naive']}/{total} frames with a face")  # fmt: skip
        figs = [base]
        for backend in ("mtcnn", "dlib"):
            t = measure(ours(backend), repeat)
            f = throughput(TOPIC, f"ours ({backend})", total, t, "frames/s", target=">= 2x baseline",
                           note=f"{note}; {ok[backend]}/{total} frames ok")  # fmt: skip
            figs.append(with_ratio(f, base))
        for f in figs:
            print(f"{f.name}: {f.note}")
        return figs
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

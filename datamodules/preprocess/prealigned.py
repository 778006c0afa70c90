"""Importing frames that are already aligned face crops (DeepfakeBench's ``rgb`` frames) instead of
detecting the face again: resized to ``size``, with the dataset's landmarks and masks when it has them
(else dlib's 68 points inside the alignment template's box). Their confound features are the crop's and the
frame file's: the source face box is unknown, so face size, resize and blockiness are missing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from datamodules.datasets.base import VideoRecord
from datamodules.media import align, confounds, faces
from datamodules.media.video import frame_number, list_frame_files, read_image, sample_indices
from datamodules.preprocess.files import write_frame
from datamodules.preprocess.options import Options
from datamodules.preprocess.rows import json_safe, row


def _template_box(size: int, margin: float) -> np.ndarray:
    """Where the face is in an aligned crop: the 5-point template's bounds, padded by 60 % of its width."""
    c = align.template(size, margin)
    pad = (c[:, 0].max() - c[:, 0].min()) * 0.6
    return np.array([c[:, 0].min() - pad, c[:, 1].min() - pad, c[:, 0].max() + pad, c[:, 1].max() + pad])


def import_prealigned(rec: VideoRecord, opts: Options, base: Path, key: Path) -> list[dict]:
    """Sample ``opts.frames`` of the video's aligned frames and write them like detected crops."""
    files = list(rec.frames) or list_frame_files(rec.path)
    rows = []
    for p in sample_indices(len(files), opts.frames):
        f, fi = files[p], frame_number(files[p], int(p))
        img = read_image(f)
        if img is None:
            rows.append(row(rec, fi, "decode_error", f"unreadable {f}"))
            continue
        h, w = img.shape[:2]
        crop = (
            cv2.resize(img, (opts.size, opts.size), interpolation=cv2.INTER_AREA)
            if (h, w) != (opts.size,) * 2
            else img
        )
        if rec.landmarks and rec.landmarks[p].is_file():
            lm = np.load(rec.landmarks[p]).astype(np.float32).reshape(-1, 2)[:68] * [
                opts.size / w,
                opts.size / h,
            ]
        else:
            lm = faces.landmarks68(crop, _template_box(opts.size, opts.margin))
        mask = None
        if rec.masks and rec.masks[p].is_file():
            m = read_image(rec.masks[p])
            if m is not None:
                m = cv2.resize(
                    cv2.cvtColor(m, cv2.COLOR_RGB2GRAY), (opts.size,) * 2, interpolation=cv2.INTER_NEAREST
                )
                mask = np.where(m > 127, 255, 0).astype(np.uint8)
        cp, lp, mp = write_frame(base, key, fi, crop, lm, mask, opts.png_compression)
        feats = confounds.frame_features(
            crop,
            lm,
            source_file=f,
            reasons=dict.fromkeys(
                ("face_px", "resize", "blockiness"), "pre-aligned frame (no source face box)"
            ),
        )
        rows.append(row(rec, fi, "ok", "", cp, lp, mp, features=json_safe(feats)))
    return rows

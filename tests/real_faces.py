"""Real face photos shipped inside installed packages, detected, aligned and landmarked once per session.

skimage's astronaut (``skimage.data.astronaut()``) and matplotlib's grace_hopper
(``mpl-data/sample_data/grace_hopper.jpg``), sample images of installed dependencies. The crop is a 5-point
similarity alignment (ArcFace template, margin 1.3) to 256 px; 68 landmarks are then found on the crop.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from datamodules.media import faces

_ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)


def photo(name: str) -> np.ndarray:
    if name == "astronaut":
        import skimage.data

        return faces.to_rgb(skimage.data.astronaut())
    if name == "grace_hopper":
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        return faces.to_rgb(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB))
    raise ValueError(f"unknown photo {name!r}; known: astronaut, grace_hopper")


@lru_cache(maxsize=4)
def aligned_face(name: str, size: int = 256, margin: float = 1.3) -> tuple[np.ndarray, np.ndarray]:
    """``(crop uint8 [size, size, 3], landmarks float32 [68, 2] in crop pixels)``."""
    img = photo(name)
    found = faces.detect_faces(img)
    assert found, f"no face found in {name}"
    face = found[0]
    template = (_ARCFACE_112 - 56.0) / margin * (size / 112.0) + size / 2.0
    matrix, _ = cv2.estimateAffinePartial2D(face.points5, template, method=cv2.LMEDS)
    crop = cv2.warpAffine(img, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    corners = np.array([face.box[[0, 1]], face.box[[2, 1]], face.box[[2, 3]], face.box[[0, 3]]])
    warped = corners @ matrix[:, :2].T + matrix[:, 2]
    box = np.concatenate([warped.min(0), warped.max(0)])
    return crop, faces.landmarks68(crop, box)

"""Named preprocessing protocols: which detected faces a dataset keeps (``--protocol``, ``protocol:``).

A protocol changes no pixel of a kept crop: it only turns frames into excluded rows with a status and a
reason (nothing is dropped silently), and its thresholds are pinned in ``preprocess.json`` with the other
options, so a resumed run cannot mix two protocols and a cell record can say which one its data used.

* ``default``: this suite's preprocessing; every face the backend reports (MTCNN: confidence >= 0.9, its
  own floor; side >= ``min_face`` px) can be cropped.
* ``sfam``: the data filtering SFAM's authors state for their experiments (Luo, Chen, Liu, "Rethinking
  Cross-Domain Evaluation for Face Forgery Detection with Semantic Fine-grained Alignment and
  Mixture-of-Experts", arXiv 2604.21478v1, 2026): the official splits, a face detector confidence of at
  least 0.9, and faces smaller than 128 x 128 pixels excluded. Only the title page and abstract of the
  paper could be retrieved here (arxiv.org/html/2604.21478v1); the three rules are the authors' as quoted in
  this project's issue "The data path meets the owners' real files", and the precise readings below are
  ours.

Our readings (``datamodules.media.crop`` applies them to the TRACKED face of each sampled frame):

* **Official splits**: the layouts already use the official splits where a dataset has them
  (``datamodules.datasets``); the protocol adds nothing there.
* **Confidence >= 0.9** (status ``low_confidence``): a face the detector reports below 0.9 is not a face
  for this protocol. Tracking sees only faces at or above 0.9 (for MTCNN exactly the faces the default
  sees, since 0.9 is also its default floor), so the kept crops equal the default protocol's; a frame in
  which the tracked person (before tracking starts: any face) is found only below 0.9 is
  ``low_confidence`` instead of ``no_face``, with the score in its reason. Needs a backend whose score is a
  probability (MTCNN, SCRFD); dlib's HOG margin is not, so ``sfam`` with ``--backend dlib`` is refused.
* **Smaller than 128 x 128** (status ``small_face``): the face detector's box, in pixels of the source
  frame (full resolution, after undoing the detection downscale), must be at least 128 wide AND at least
  128 high: ``min(width, height) >= 128``. "Smaller than 128 x 128" compares two sizes; a box narrower or
  shorter than 128 px does not contain a 128 x 128 face, and the rule's purpose (no upsampled low-resolution
  faces) fails along that side whatever the area. An area reading (``w * h >= 128**2``) would keep a
  200 x 90 box. MTCNN's boxes are nearly square, so the two readings rarely differ in practice. The box
  is the detector's, not our aligned crop (whose side and margin are our choices). A small face still
  moves the tracker (it is the tracked person), so later frames are cropped exactly as by default.

Frames already aligned by another pipeline (DeepfakeBench's ``rgb`` frames, ``prealigned``) carry neither a
detector score nor a source-pixel box: the ``sfam`` protocol refuses them rather than pretend.
"""

from __future__ import annotations

from dataclasses import dataclass

from datamodules.errors import user_error
from datamodules.preprocess.options import PreprocessConfigError


@dataclass(frozen=True)
class Protocol:
    """A named set of face filters (pinned in ``preprocess.json`` through :class:`Options`)."""

    name: str
    min_confidence: float | None  # detector confidence the tracked face needs (None: the backend's own floor)
    min_face_side: int  # both sides of the detector box in source pixels must be >= this (0: no rule)
    source: str  # where the rules come from

    @property
    def filters(self) -> bool:
        """Whether the protocol excludes anything the default keeps."""
        return self.min_confidence is not None or self.min_face_side > 0

    def describe(self) -> str:
        """``sfam (detector confidence >= 0.9, face box >= 128x128 source px)``."""
        rules = []
        if self.min_confidence is not None:
            rules.append(f"detector confidence >= {self.min_confidence:g}")
        if self.min_face_side:
            rules.append(f"face box >= {self.min_face_side}x{self.min_face_side} source px")
        return f"{self.name} ({', '.join(rules)})" if rules else self.name


DEFAULT = "default"
PROTOCOLS: dict[str, Protocol] = {
    DEFAULT: Protocol(DEFAULT, None, 0, "this suite's preprocessing (README 'Datasets')"),
    "sfam": Protocol(
        "sfam",
        0.9,
        128,
        "Luo, Chen, Liu, SFAM, arXiv 2604.21478 (2026): official splits, face detector confidence >= 0.9, "
        "faces smaller than 128 x 128 pixels excluded",
    ),
}
#: backends whose face score is a probability (the confidence rule needs one)
PROBABILITY_BACKENDS = ("mtcnn", "insightface")


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; an unknown name raises :class:`PreprocessConfigError` listing the known."""
    if name not in PROTOCOLS:
        raise user_error(
            PreprocessConfigError(
                f"unknown preprocessing protocol {name!r}; known protocols: {', '.join(PROTOCOLS)}"
            ),
            "datamodules/preprocess/protocols.py defines each protocol (README 'Datasets')",
        )
    return PROTOCOLS[name]

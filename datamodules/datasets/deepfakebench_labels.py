"""DeepfakeBench label names -> the suite's canonical method names, and the dataset family they belong to.

The label names are ``label_dict`` of DeepfakeBench's ``training/config/train_config.yaml`` (SCLBD/
DeepfakeBench, commit 8a4a7bf): every JSON written by ``preprocessing/rearrange.py`` uses them. The
canonical names are the ones the video layouts of this package give the same videos (``ffpp``: the
manipulation folder names; ``celebdf_v*``, ``dfdc``, ``uadfv``: ``fake``; ``dfdc_preview``: the method
folder; ``dfd``: ``DeepFakeDetection``), so a leaderboard reads the same whichever way the data came in.
DF40's JSONs (YZY-stack/DF40, ``DeepfakeBench_DF40/training/config/train_config.yaml``) name a set
``<method>_Fake`` / ``<method>_Real``; their method is DF40's method folder, read from the frame path
(``.../DF40/<method>/...``) when it is there, else the label without ``_Fake``.
"""

from __future__ import annotations

import re

# label -> (family, canonical method); "real" for reals
LABELS: dict[str, tuple[str, str]] = {
    "FF-real": ("ffpp", "real"),
    "FF-DF": ("ffpp", "Deepfakes"),
    "FF-F2F": ("ffpp", "Face2Face"),
    "FF-FS": ("ffpp", "FaceSwap"),
    "FF-NT": ("ffpp", "NeuralTextures"),
    "FF-FH": ("ffpp", "FaceShifter"),
    "FF-SH": ("ffpp", "FaceShifter"),
    "DFD_real": ("dfd", "real"),
    "DFD_fake": ("dfd", "DeepFakeDetection"),
    "CelebDFv1_real": ("celebdf", "real"),
    "CelebDFv1_fake": ("celebdf", "fake"),
    "CelebDFv2_real": ("celebdf", "real"),
    "CelebDFv2_fake": ("celebdf", "fake"),
    "DFDCP_Real": ("dfdc_preview", "real"),
    "DFDCP_FakeA": ("dfdc_preview", "method_A"),
    "DFDCP_FakeB": ("dfdc_preview", "method_B"),
    "DFDC_Real": ("dfdc", "real"),
    "DFDC_Fake": ("dfdc", "fake"),
    "DF_real": ("deeperforensics", "real"),
    "DF_fake": ("deeperforensics", "fake"),
    "UADFV_Real": ("uadfv", "real"),
    "UADFV_Fake": ("uadfv", "fake"),
    "roop_Real": ("roop", "real"),
    "roop_Fake": ("roop", "roop"),
}
_FAKE_SUFFIX = re.compile(r"[_-]?fake$", re.IGNORECASE)


def is_real(label: str) -> bool:
    """DeepfakeBench's real labels all end in ``real``/``Real`` (``FF-real``, ``DFDCP_Real``...)."""
    return label.lower().endswith("real")


def canonical(label: str, frame: str = "") -> tuple[str, str]:
    """``(family, method)`` of a label; ``frame`` (one frame path) names DF40's method folder."""
    if label in LABELS:
        return LABELS[label]
    if is_real(label):
        return "", "real"
    parts = [p for p in frame.replace("\\", "/").split("/") if p]
    for i, p in enumerate(parts[:-1]):
        if p in ("DF40", "DF40_train"):
            return "df40", parts[i + 1]
    return "", _FAKE_SUFFIX.sub("", label) or label

"""Export a detector checkpoint whole (``--full``: it travels alone) or lean (frozen backbone by reference).

    python -m detectors.export --full runs/cells/<id>/checkpoints/best-*.ckpt release/sfam.ckpt
    python -m detectors.export old_full.ckpt sfam_lean.ckpt

Both read any checkpoint :func:`detectors.load_detector` reads (lean ones are rebuilt and hash-checked
first) and write the weights only: the registry name, the constructor arguments, the state dict and the
pretrained flag, the format :func:`detectors.load_detector` reads. A full export holds every tensor, so it
loads where the frozen backbone cannot be rebuilt (another machine without the pretrained weights, other
code); it keeps, under ``exported_from``, what the lean checkpoint said of its backbone. A lean export
stores the frozen backbone by reference (:mod:`detectors.frozen_backbone`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from datamodules.atomic import atomic_path
from detectors.base import Detector
from detectors.frozen_backbone import LEAN_KEY, constructor_arguments, lean_summary, slim_checkpoint
from detectors.registry import load_detector


def checkpoint_of(model: Detector, full: bool) -> dict[str, Any]:
    """The weights-only checkpoint of ``model``: every tensor (``full``) or lean."""
    ckpt: dict[str, Any] = {
        "detector_name": model.name,
        "hyper_parameters": constructor_arguments(model.hparams),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "pretrained_loaded": bool(model.pretrained_loaded),
    }
    if not full:
        slim_checkpoint(model, ckpt)
    return ckpt


def export(src: str | Path, dst: str | Path, full: bool, expected: str | None = None) -> dict[str, Any]:
    """Read ``src`` (full or lean), write ``dst`` (full or lean); returns what was written."""
    model = load_detector(src, expected=expected)  # validates src (safe loading, backbone hash)
    section = torch.load(src, map_location="cpu", weights_only=True).get(LEAN_KEY)
    ckpt = checkpoint_of(model, full)
    if full and section:
        ckpt["exported_from"] = {k: v for k, v in section.items() if k in ("sha256", "sources")}
    with atomic_path(dst) as tmp:
        torch.save(ckpt, tmp)
    return ckpt


def main(argv: list[str] | None = None) -> int:
    """Command line: export a checkpoint (lean or ``--full``); returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m detectors.export", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path, help="a checkpoint detectors.load_detector reads (full or lean)")
    p.add_argument("out", type=Path, help="where to write the export")
    p.add_argument("--full", action="store_true", help="every tensor (a checkpoint that travels alone)")
    p.add_argument("--detector", help="refuse a checkpoint of any other detector")
    args = p.parse_args(argv)
    try:
        ckpt = export(args.checkpoint, args.out, args.full, args.detector)
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 1e6:.1f} MB): {lean_summary(ckpt)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

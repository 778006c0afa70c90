"""The command line of ``python -m datamodules.preprocess`` (see the package docstring)."""

from __future__ import annotations

import argparse
import json
import os

from datamodules.datasets.base import UnknownLayoutError, get_adapter, list_layouts
from datamodules.media import faces
from datamodules.preprocess.dataset import preprocess_dataset
from datamodules.preprocess.protocols import PROTOCOLS


def _parse_option(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option {text!r} must look like KEY=VALUE")
    k, v = text.split("=", 1)
    try:
        return k, json.loads(v)
    except ValueError:
        return k, v


def main(argv: list[str] | None = None) -> int:
    """Command line: preprocess one dataset (or list the layouts); returns the exit code."""
    p = argparse.ArgumentParser(
        prog="python -m datamodules.preprocess",
        description="Face crops, landmarks, masks and a Parquet manifest for one dataset.",
    )
    p.add_argument("--list-layouts", action="store_true", help="print every layout's expected files and exit")
    p.add_argument("--dataset", help="dataset name used in video ids, e.g. FF++")
    p.add_argument("--layout", help=f"one of: {', '.join(list_layouts())} (default: guessed from --dataset)")
    p.add_argument("--root", help="the dataset's root folder (see README 'Datasets')")
    p.add_argument("--out", help="processed root; writes OUT/<dataset>/manifest.parquet")
    p.add_argument("--frames", type=int, default=32, help="frames per video, spread over the whole video")
    p.add_argument("--size", type=int, default=256, help="side of the aligned square crop, pixels")
    p.add_argument("--margin", type=float, default=1.3, help="context around the 5-point face template")
    p.add_argument(
        "--backend", default="auto", choices=faces.BACKENDS, help="face detector (auto: see README)"
    )
    p.add_argument(
        "--png-compression",
        type=int,
        default=0,
        choices=range(10),
        metavar="0-9",
        help="zlib level of the lossless crop PNGs: 0 reads ~10x faster, 1-9 take about half the disk",
    )
    p.add_argument(
        "--protocol",
        default="default",
        choices=list(PROTOCOLS),
        help="which faces are kept: default, or sfam (SFAM's filtering: detector confidence >= 0.9, face box "
        ">= 128x128 source px; excluded frames keep rows low_confidence / small_face)",
    )
    p.add_argument("--workers", type=int, default=max(1, min(4, (os.cpu_count() or 2) - 1)), help="processes")
    p.add_argument("--limit", type=int, help="only the first N videos (smoke run)")
    p.add_argument("--overwrite", action="store_true", help="redo everything if options changed")
    p.add_argument(
        "--pack",
        action="store_true",
        help="then pack the crops, landmarks and masks into memory-mapped shards (python -m datamodules.pack)",
    )
    p.add_argument(
        "--backfill-confounds",
        action="store_true",
        help="only add the confound features an existing manifest's crops and landmarks give (with --dataset, "
        "--out); the features that need the source are marked missing; a current pack stays current",
    )
    p.add_argument("--remap", action="append", help="deepfakebench_json: OLD_PREFIX=NEW_PREFIX (repeatable)")
    p.add_argument(
        "--option", action="append", type=_parse_option, default=[], help="adapter option KEY=VALUE"
    )
    args = p.parse_args(argv)
    if args.list_layouts:
        import inspect

        for name in list_layouts():
            print(f"== {name}\n{inspect.getdoc(type(get_adapter(name)))}\n")
        return 0
    if args.backfill_confounds:
        missing = [f"--{a}" for a in ("dataset", "out") if not getattr(args, a)]
        if missing:
            p.error(f"--backfill-confounds needs {', '.join(missing)}")
        from datamodules.preprocess.backfill import backfill_confounds

        print(backfill_confounds(args.out, args.dataset))
        return 0
    missing = [f"--{a}" for a in ("dataset", "root", "out") if not getattr(args, a)]
    if missing:
        p.error(f"the following arguments are required: {', '.join(missing)}")
    layout = args.layout or _guess_layout(args.dataset)
    opts = dict(args.option)
    if args.remap:
        opts["remap"] = args.remap
    get_adapter(layout)  # unknown layout: the error lists the known ones before any work
    path = preprocess_dataset(
        args.dataset,
        layout,
        args.root,
        args.out,
        frames=args.frames,
        size=args.size,
        margin=args.margin,
        backend=args.backend,
        png_compression=args.png_compression,
        protocol=args.protocol,
        workers=args.workers,
        limit=args.limit,
        overwrite=args.overwrite,
        **opts,
    )
    print(path)
    if args.pack:
        from datamodules.pack.writer import describe, pack_dataset

        print(describe(pack_dataset(path.parent, args.dataset, progress=True)))
    return 0


_GUESS = {"ff++": "ffpp", "ffpp": "ffpp", "dfd": "dfd", "cdf-v1": "celebdf_v1", "cdf-v2": "celebdf_v2",
          "celeb-df-v1": "celebdf_v1", "celeb-df-v2": "celebdf_v2", "dfdc": "dfdc", "dfdcp": "dfdc_preview",
          "dfdc-p": "dfdc_preview", "uadfv": "uadfv"}  # fmt: skip


def _guess_layout(dataset: str) -> str:
    key = dataset.lower()
    if key in _GUESS:
        return _GUESS[key]
    if key in list_layouts():
        return key
    raise UnknownLayoutError(
        f"cannot guess the layout of dataset {dataset!r} (known names: {', '.join(sorted(_GUESS))}); "
        f"pass --layout, one of: {', '.join(list_layouts())}"
    )

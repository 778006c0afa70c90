"""``python -m benchmark.perf <topic>|all [--quick]``: run perf scripts and print their figures."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import tempfile
from pathlib import Path

import benchmark.perf as pkg
from benchmark.perf.timing import Figure, print_figures

_NOT_TOPICS = {"timing", "report", "flops", "gpu_cost"}  # helpers, not topics


def topics() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.iter_modules(pkg.__path__)
        if m.name not in _NOT_TOPICS and not m.name.startswith("_")
    )


def run_topic(name: str, quick: bool) -> list[Figure]:
    return importlib.import_module(f"benchmark.perf.{name}").run(quick=quick)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.perf", description=__doc__)
    p.add_argument("topic", help=f"one of: all, {', '.join(topics())}")
    p.add_argument("--quick", action="store_true", help="fewer repeats and smaller sizes (smoke run)")
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        help="page written by `all` (default docs/PERFORMANCE.md; with --quick, a temp file, so a smoke run never "
        "replaces the committed page)",
    )
    p.add_argument(
        "--update-report",
        action="store_true",
        help="with one topic: replace its figures on the page (default docs/PERFORMANCE.md) written by the last "
        "full run, keeping the others (read from the page's .json sidecar)",
    )
    args = p.parse_args(argv)
    known = topics()
    if args.topic != "all" and args.topic not in known:
        p.error(f"unknown topic {args.topic!r}; known: all, {', '.join(known)}")
    if args.update_report and args.topic == "all":
        p.error("--update-report takes one topic (`all` rewrites the whole page anyway)")
    figs: list[Figure] = []
    for t in known if args.topic == "all" else [args.topic]:
        figs += run_topic(t, args.quick)
    print_figures(figs)
    if args.topic == "all":
        from benchmark.perf.report import DEFAULT_PATH, write_report

        path = args.report or (
            Path(tempfile.gettempdir()) / "PERFORMANCE.quick.md" if args.quick else DEFAULT_PATH
        )
        print(f"wrote {write_report(figs, path, quick=args.quick)}")
    elif args.update_report:
        from benchmark.perf.report import DEFAULT_PATH, update_report

        try:
            out = update_report(args.topic, figs, args.report or DEFAULT_PATH, quick=args.quick)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"updated {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

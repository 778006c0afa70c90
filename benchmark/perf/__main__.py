"""``python -m benchmark.perf <topic>|all [--quick]``: run perf scripts and print their figures."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import benchmark.perf as pkg
from benchmark.perf.timing import Figure, print_figures

_NOT_TOPICS = {"timing", "report"}


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
    args = p.parse_args(argv)
    known = topics()
    if args.topic != "all" and args.topic not in known:
        p.error(f"unknown topic {args.topic!r}; known: all, {', '.join(known)}")
    figs: list[Figure] = []
    for t in known if args.topic == "all" else [args.topic]:
        figs += run_topic(t, args.quick)
    print_figures(figs)
    if args.topic == "all":
        try:
            from benchmark.perf.report import write_report
        except ImportError:
            return 0
        write_report(figs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

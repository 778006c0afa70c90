"""Perf topic ``demo``: generating, re-using and resuming the embedded demo benchmark.

Figures (each generation in a fresh temporary folder):

* ``generate (cold)``: ``python -m datamodules.demo --out NEW`` as a subprocess, end to end: interpreter
  and imports (torch for MTCNN), sources, every video, manifest. Target (issue 5): < 120 s on a 2-core
  CPU for the ``full`` config (152 videos); ``--quick`` times the test-only config.
* ``sources (10 faces)``: photo loading, MTCNN detection and dlib landmarks alone, in-process with the
  models already built (the process cache is cleared before each run).
* ``verified re-run``: the same command again on the complete output (checksums only); ratio against
  the cold generation (the speed-up of reusing the demo).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmark.perf.timing import Figure, duration, measure, with_ratio

TOPIC = "demo"


def run(quick: bool) -> list[Figure]:
    """Time generating the embedded demo benchmark from scratch (cold) and again with its outputs present."""
    from datamodules import demo
    from datamodules.demo_gen import sources

    config = "quick" if quick else "full"
    tmp = Path(tempfile.mkdtemp(prefix="perf-demo-"))
    runs = {"n": 0}

    def cold() -> None:
        runs["n"] += 1
        cmd = [
            sys.executable,
            "-m",
            "datamodules.demo",
            "--out",
            str(tmp / f"cold{runs['n']}"),
            "--config",
            config,
        ]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def sources_only() -> None:
        sources.load_identities.cache_clear()
        sources.load_identities()

    try:
        repeat = 1 if quick else 2
        gen = duration(
            TOPIC,
            f"generate (cold, config {config})",
            measure(cold, repeat=repeat),
            target="< 120 s (full, 2-core CPU)",
        )
        src = duration(TOPIC, "sources (10 faces: MTCNN + dlib)", measure(sources_only, repeat=repeat))
        done = tmp / "cold1"
        rerun = duration(
            TOPIC,
            "verified re-run (no-op)",
            measure(lambda: demo.generate(done, config=config, log=lambda s: None), repeat=3),
            target="a small fraction of the cold generation",
        )
        size = sum(p.stat().st_size for p in done.rglob("*") if p.is_file()) / 1e6
        gen.note = f"{len(demo.read_manifest(done))} files, {size:.1f} MB"
        return [gen, src, with_ratio(rerun, gen)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

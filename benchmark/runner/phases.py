"""Where a ``python -m benchmark.run`` command spends its wall time: ``--timings-json PATH``.

The runner times its own phases (:class:`PhaseClock`) and, after the sweep, splits each cell's wall time
with the ``timings`` its record holds (``fit_s``, ``test_s``; written by :mod:`benchmark.runner.cell`).
The file is what ``python -m benchmark.perf bench_demo`` reads to profile ``make bench DETECTOR=sfam``::

    {"process_started": 1733380000.1,   # epoch s when this process started (Linux /proc), else null
     "started": 1733380004.3,           # epoch s when main() began (after the imports)
     "ended": 1733380700.0,
     "phases": {"startup": 4.2, "demo": 25.0, "plan": 1.1, "preprocess": 70.2, "cells": 420.0,
                "perturbed": 130.5, "shortcut": 1.5, "leaderboards": 12.0},
     "cells": [{"cell_id": "...", "label": "...", "derived": false, "status": "done",
                "wall_s": 420.0, "fit_s": 300.1, "test_s": 90.3}]}

``phases`` keys are in the order they ran; a phase that did not run is absent. ``startup`` is the
interpreter and the imports before ``main`` (absent when the process start time is unknown).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from datamodules.atomic import write_text


def process_start_time() -> float | None:
    """Epoch seconds at which this process started (Linux: ``/proc``, to 10 ms), else ``None``.

    The age comes from two clocks since boot (the process's ``starttime`` in ``/proc/self/stat`` and
    ``/proc/uptime``); ``btime`` of ``/proc/stat`` is whole seconds, too coarse for a start-up of seconds.
    """
    try:
        stat = Path(f"/proc/{os.getpid()}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22 (starttime), after the command name
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


class PhaseClock:
    """Wall seconds per named phase of one command, in the order they ran (a repeated name adds up)."""

    def __init__(self) -> None:
        self.started = time.time()
        self.process_started = process_start_time()
        self.phases: dict[str, float] = {}
        if self.process_started is not None and self.process_started <= self.started:
            self.phases["startup"] = round(self.started - self.process_started, 3)
        self.cells: list[dict[str, Any]] = []
        self._current: tuple[str, float] | None = None

    def start(self, name: str) -> None:
        """End the phase running (if any) and start ``name``."""
        self.stop()
        self._current = (name, time.time())

    def stop(self) -> None:
        """End the phase running, if any (adding its seconds to its name's)."""
        if self._current is not None:
            name, t = self._current
            self.phases[name] = round(self.phases.get(name, 0.0) + time.time() - t, 3)
            self._current = None

    def add_cells(self, jobs: list[Any], store: Any) -> None:
        """Record each job that ran in this command (``started`` set) with its record's fit and test seconds."""
        for job in jobs:
            if job.started is None:
                continue
            row: dict[str, Any] = {
                "cell_id": job.cell.cell_id,
                "label": job.cell.label,
                "derived": bool(job.cell.config.perturbed),
                "status": job.status,
                "wall_s": round((job.ended or time.time()) - job.started, 3),
            }
            try:
                timings = store.record(job.cell.cell_id).get("timings") or {}
            except (KeyError, OSError, ValueError):
                timings = {}
            for key in ("fit_s", "test_s"):
                if key in timings:
                    row[key] = float(timings[key])
            self.cells.append(row)

    def to_dict(self) -> dict[str, Any]:
        """The record (the module docstring's format); ends the phase running."""
        self.stop()
        return {
            "process_started": self.process_started,
            "started": self.started,
            "ended": time.time(),
            "phases": dict(self.phases),
            "cells": list(self.cells),
        }

    def write(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` to ``path`` as JSON (atomically); returns the path."""
        return write_text(Path(path), json.dumps(self.to_dict(), indent=1) + "\n")

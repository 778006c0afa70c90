"""The sweep's live table of cells (rich) and its final summary.

On a terminal the table is live. Otherwise (output to a file, a pipe, CI) the sweep prints one line per
event instead: a cell's state changes (``[running]``, ``[done]``, ``[failed]``) and, copied from the log of
a cell running in its own process, its ``[epoch]`` and ``[scored]`` lines (:mod:`benchmark.runner.progress`;
a cell running in this process prints those itself).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from benchmark.runner.cells import Cell
from benchmark.runner.progress import is_event_line

#: the header the local launcher writes into ``cell.log`` before each attempt
ATTEMPT_HEADER = "===== attempt started"

QUEUED, RUNNING, DONE, FAILED, SKIPPED = "queued", "running", "done", "failed", "skipped (done)"
_STYLE = {QUEUED: "dim", RUNNING: "yellow", DONE: "green", FAILED: "bold red", SKIPPED: "cyan"}


@dataclass
class Job:
    """A cell's state during a sweep."""

    cell: Cell
    status: str = QUEUED
    started: float | None = None
    ended: float | None = None
    error: str = ""
    log: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def elapsed(self) -> str:
        """The time the job ran (or has run so far) as ``m:ss``; empty before it starts."""
        if self.started is None:
            return ""
        s = int((self.ended or time.time()) - self.started)
        return f"{s // 60}:{s % 60:02d}"

    def progress(self) -> str:
        """A running job's stage from its ``progress.json`` (the epoch while fitting); empty otherwise."""
        if self.status != RUNNING:
            return ""
        path = self.cell.cell_dir / "progress.json"
        try:
            p = json.loads(path.read_text())
        except (OSError, ValueError):
            return "starting"
        if p.get("stage") == "fit":
            return f"fit epoch {p.get('epoch', 0) + 1}/{p.get('max_epochs', '?')}"
        return str(p.get("stage", ""))


def jobs_table(jobs: list[Job], title: str = "") -> Table:
    """A console table of the jobs: detector, training set, seed, cell, status, progress and time."""
    t = Table(title=title or None)
    derived = any(j.cell.config.perturbed for j in jobs)  # test-time conditions: one more column
    cols = ("#", "detector", "train set", "seed", *(("condition",) if derived else ()), "cell", "status")
    for col in (*cols, "progress", "time"):
        t.add_column(col, no_wrap=col in {"cell", "status"}, min_width=16 if col == "cell" else None)
    for i, j in enumerate(jobs, 1):
        style = _STYLE.get(j.status, "")
        t.add_row(
            str(i),
            j.cell.detector,
            j.cell.train_set,
            str(j.cell.seed),
            *((j.cell.config.condition.tag,) if derived else ()),
            j.cell.cell_id,
            f"[{style}]{j.status}[/]" if style else j.status,
            j.progress(),
            j.elapsed(),
        )
    return t


class Monitor:
    """A rich Live table when the console is a terminal; one line per state change otherwise."""

    def __init__(
        self, jobs: list[Job], title: str, console: Console | None = None, live: bool = True
    ) -> None:
        """``live=False`` when cells run in this process: their rich progress bar is a Live display
        too, and rich allows one at a time."""
        self.jobs, self.title = jobs, title
        self.console = console or Console()
        self.live = live
        self._live: Live | None = None
        self._log_pos: dict[int, int] = {}  # id(job) -> bytes of its log already read

    def __enter__(self) -> Monitor:
        if self.live and self.console.is_terminal:
            self._live = Live(self._render(), console=self.console, refresh_per_second=2)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(*exc)
            self._live = None

    def _render(self) -> Table:
        return jobs_table(self.jobs, self.title)

    def update(self, job: Job | None = None) -> None:
        """Show a job's new state (one console line, or a redraw of the live table) and copy its events."""
        if self._live is not None:
            self._live.update(self._render())
            return
        for j in [job] if job is not None else [j for j in self.jobs if j.status == RUNNING]:
            self._copy_events(j)
        if job is not None:
            extra = f" ({job.error})" if job.status == FAILED and job.error else ""
            took = "" if job.status == RUNNING else f" {job.elapsed()}"  # a start has no duration yet
            line = f"[{job.status}] {job.cell.label} {job.cell.cell_id}{took}{extra}"
            self.console.print(escape(line), soft_wrap=True)

    def _copy_events(self, job: Job) -> None:
        """Print the event lines a cell process added to its log since the last look (whole lines only)."""
        if job.log is None or job.status == QUEUED or not job.log.is_file():
            return
        key = id(job)
        with open(job.log, "rb") as f:
            if key not in self._log_pos:  # this attempt's output starts after the launcher's last header
                head = f.read()
                at = head.rfind(ATTEMPT_HEADER.encode())
                self._log_pos[key] = head.find(b"\n", at) + 1 if at >= 0 else 0
            f.seek(self._log_pos[key])
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        self._log_pos[key] += end
        for line in chunk[:end].decode("utf-8", "replace").splitlines():
            if is_event_line(line):
                self.console.print(escape(line), soft_wrap=True)


def summary(jobs: list[Job], console: Console, table: bool = True) -> None:
    """Print the final summary: counts by status and every failed cell with its error and log."""
    counts: dict[str, int] = {}
    for j in jobs:
        counts[j.status] = counts.get(j.status, 0) + 1
    if table:
        console.print(jobs_table(jobs, "sweep summary"))
    console.print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no cells")
    for j in jobs:
        if j.status == FAILED:
            where = f"; log: {j.log}" if j.log else ""
            console.print(
                f"[bold red]FAILED[/] {escape(f'{j.cell.label} ({j.cell.cell_id}): {j.error}{where}')}"
            )

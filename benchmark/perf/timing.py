"""Timing helpers shared by the perf scripts: median of several runs, with min and max."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass
class Figure:
    """One measured figure. ``value`` is the median of ``runs``; ``ratio`` compares it to ``baseline``.

    Attributes:
        topic: the perf module that measured it.
        name: what was measured.
        unit: ``s``, ``img/s``, ``samples/s``, ...
        higher_is_better: True for throughputs, False for durations.
        baseline: name of the figure it is compared with (measured in the same run), if any.
        target: the target, in words (e.g. "< 5 s", ">= 2x baseline").
    """

    topic: str
    name: str
    unit: str
    value: float
    min: float
    max: float
    runs: int
    higher_is_better: bool = False
    baseline: str | None = None
    ratio: float | None = None
    target: str = ""
    note: str = ""

    def to_dict(self) -> dict:
        """The figure as a JSON-ready dict."""
        return asdict(self)


def measure(fn: Callable[[], object], repeat: int = 3, warmup: int = 0) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls of ``fn`` (after ``warmup`` untimed calls)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def duration(topic: str, name: str, times: list[float], **kw) -> Figure:
    """A duration figure (seconds, lower is better) from raw times."""
    return Figure(topic, name, "s", statistics.median(times), min(times), max(times), len(times), False, **kw)


def throughput(topic: str, name: str, items: int, times: list[float], unit: str = "img/s", **kw) -> Figure:
    """A throughput figure (items per second, higher is better) from raw times."""
    rates = [items / t for t in times]
    return Figure(topic, name, unit, statistics.median(rates), min(rates), max(rates), len(rates), True, **kw)


def with_ratio(fig: Figure, base: Figure) -> Figure:
    """Set ``fig.ratio`` as the speed-up of ``fig`` over ``base`` (>1 means ``fig`` is better)."""
    fig.baseline = base.name
    fig.ratio = (fig.value / base.value) if fig.higher_is_better else (base.value / fig.value)
    return fig


def print_figures(figs: list[Figure]) -> None:
    """Print the figures as a console table (median, range, ratio to baseline, target)."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title="performance")
    for col in ("topic", "figure", "median", "min", "max", "runs", "x baseline", "target"):
        t.add_column(col)
    for f in figs:
        ratio = f"{f.ratio:.2f}x vs {f.baseline}" if f.ratio is not None else ""
        t.add_row(
            f.topic,
            f.name,
            f"{f.value:.3g} {f.unit}",
            f"{f.min:.3g}",
            f"{f.max:.3g}",
            str(f.runs),
            ratio,
            f.target,
        )
    Console(width=200).print(t)

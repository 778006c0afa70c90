"""The summary table printed at the end of a preprocessing run (rich, on stderr)."""

from __future__ import annotations

from collections import Counter


def summarize(rows: list[dict], n_videos: int, n_resumed: int, seconds: float) -> None:
    """Videos, resumed videos, frames per status and the run's seconds."""
    from rich.console import Console
    from rich.table import Table

    counts = Counter(r["status"] for r in rows)
    t = Table(title="preprocessing summary")
    t.add_column("item")
    t.add_column("count", justify="right")
    t.add_row("videos", str(n_videos))
    t.add_row("videos resumed (already done)", str(n_resumed))
    t.add_row("frames ok", str(counts.get("ok", 0)))
    for status in sorted(counts):
        if status != "ok":
            t.add_row(f"frames {status}", str(counts[status]))
    t.add_row("seconds", f"{seconds:.1f}")
    Console(stderr=True).print(t)

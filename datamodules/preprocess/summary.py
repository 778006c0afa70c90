"""The summary printed at the end of a preprocessing run (rich, on stderr): totals, then frames per status
and split, so every frame a rule or a failure excluded is counted where it was excluded."""

from __future__ import annotations

from collections import Counter

from datamodules.datasets.base import SPLITS


def status_counts(rows: list[dict]) -> dict[str, dict[str, int]]:
    """Frames per status and split: ``{"small_face": {"train": 3, "test": 1}, "ok": {...}}``.

    A row without a ``split`` counts under ``"?"``.
    """
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        per = out.setdefault(str(r["status"]), {})
        split = str(r.get("split", "?"))
        per[split] = per.get(split, 0) + 1
    return out


def summarize(
    rows: list[dict],
    n_videos: int,
    n_resumed: int,
    seconds: float,
    dataset: str = "",
    protocol: str = "default",
) -> dict[str, dict[str, int]]:
    """Print videos, resumed videos, frames per status and the run's seconds, then (when any row has a
    split) frames per status and split; returns :func:`status_counts`."""
    from rich.console import Console
    from rich.table import Table

    from datamodules.preprocess.protocols import PROTOCOLS

    console = Console(stderr=True)
    counts = Counter(r["status"] for r in rows)
    t = Table(title=f"preprocessing summary{f': {dataset}' if dataset else ''}")
    t.add_column("item")
    t.add_column("count", justify="right")
    t.add_row("videos", str(n_videos))
    t.add_row("videos resumed (already done)", str(n_resumed))
    t.add_row("frames ok", str(counts.get("ok", 0)))
    for status in sorted(counts):
        if status != "ok":
            t.add_row(f"frames {status}", str(counts[status]))
    t.add_row("seconds", f"{seconds:.1f}")
    if protocol != "default":
        t.add_row("protocol", PROTOCOLS[protocol].describe() if protocol in PROTOCOLS else protocol)
    console.print(t)
    per = status_counts(rows)
    splits = [s for s in (*SPLITS, "?") if any(s in v for v in per.values())]
    if splits and splits != ["?"]:
        t = Table(title="frames per status and split (failed and excluded frames keep their rows)")
        t.add_column("status")
        for s in splits:
            t.add_column(s, justify="right")
        for status in sorted(per, key=lambda s: (s != "ok", s)):
            t.add_row(status, *(str(per[status].get(s, 0)) for s in splits))
        console.print(t)
    return per

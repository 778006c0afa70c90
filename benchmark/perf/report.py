"""Write docs/PERFORMANCE.md from the figures of ``python -m benchmark.perf all`` and the GPU cost estimate.

The page holds: the machine and package versions, every figure (median of its runs with min and max,
its ratio against the baseline measured in the same run, its target and whether it is met), and the
FLOP-based estimate of the `cross` grid on A100/H100 GPUs with the loader rate that keeps them busy.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from benchmark.perf import bench_demo, gpu_cost
from benchmark.perf.flops import DetectorFlops
from benchmark.perf.timing import Figure
from datamodules.atomic import write_text

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "docs" / "PERFORMANCE.md"
PACKAGES = ("torch", "lightning", "timm", "open_clip_torch", "torchmetrics", "numpy", "opencv-python")
_TARGET = re.compile(r"^\s*(<=|>=|<|>)\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*(x\b)?\s*([^\s(]*)")


def target_met(f: Figure) -> str:
    """``yes`` / ``NO`` for a target of the form ``< 5 s``, ``>= 2x baseline`` or ``>= 200 samples/s``;
    ``-`` without a target; ``not machine-checked`` for a target in words or a unit that differs."""
    if not f.target:
        return "-"
    m = _TARGET.match(f.target)
    if not m:
        return "not machine-checked"
    op, num, is_ratio, unit = m.group(1), float(m.group(2).replace(",", "")), m.group(3), m.group(4)
    same_unit = not unit or unit == f.unit
    value = f.ratio if is_ratio else (f.value if same_unit else None)
    if value is None or not math.isfinite(value):
        return "not machine-checked"
    ok = {"<": value < num, "<=": value <= num, ">": value > num, ">=": value >= num}[op]
    return "yes" if ok else "NO"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GB"
    except OSError:
        pass
    return "unknown"


def _gpu() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:  # noqa: BLE001 - a broken CUDA install must not stop the report
        pass
    return "none"


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine_md() -> list[str]:
    """The machine section of the performance page: CPU, RAM, GPU, load, Python and package versions."""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    versions = ", ".join(f"{p} {_version(p)}" for p in PACKAGES)
    return [
        f"- CPU: {_cpu_model()}, {os.cpu_count()} logical cores",
        f"- RAM: {_ram_gb()}",
        f"- GPU: {_gpu()}",
        f"- Load average when the page was written (1, 5, 15 min): {load}",
        f"- Python {platform.python_version()} ({platform.platform()})",
        f"- {versions}",
    ]


def _g(x: float) -> str:
    return f"{x:,.3g}" if abs(x) < 1e4 else f"{x:,.0f}"


def figures_md(figs: Sequence[Figure]) -> list[str]:
    """One markdown table per topic: each figure's median, range, ratio to its baseline and target."""
    out: list[str] = []
    for topic in dict.fromkeys(f.topic for f in figs):
        out += [
            f"### `{topic}`",
            "",
            "| figure | median | min | max | runs | vs baseline (same run) | target | met | note |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for f in (f for f in figs if f.topic == topic):
            ratio = (
                f"{f.ratio:.2f}x vs {f.baseline}"
                if f.ratio is not None
                else "baseline"
                if _is_base(f, figs)
                else ""
            )
            out.append(
                f"| {f.name} | {_g(f.value)} {f.unit} | {_g(f.min)} | {_g(f.max)} | {f.runs} | {ratio} | "
                f"{f.target} | {target_met(f)} | {f.note} |"
            )
        out.append("")
    return out


def _is_base(f: Figure, figs: Sequence[Figure]) -> bool:
    return any(g.baseline == f.name and g.topic == f.topic for g in figs)


def summary_md(figs: Sequence[Figure]) -> list[str]:
    """A one-line count of the machine-checked targets met, then one line per target not met."""
    verdicts = [(f, target_met(f)) for f in figs]
    checked = [(f, v) for f, v in verdicts if v in ("yes", "NO")]
    missed = [f for f, v in checked if v == "NO"]
    lines = [
        f"{len(figs)} figures; {len(checked)} with a machine-checked target: "
        f"{len(checked) - len(missed)} met, {len(missed)} not met."
    ]
    lines += [
        f"- NOT MET: `{f.topic}` / {f.name}: {_g(f.value)} {f.unit} (target {f.target})" for f in missed
    ]
    return lines


def _workers(figs: Sequence[Figure]) -> Figure | None:
    """The measured per-worker training-loader figure, if the `loader` topic ran: the packed store's
    (the loader a multi-GPU run should use) when it was measured, else the PNG store's."""
    measured = [f for f in figs if f.topic == "loader" and f.unit == "samples/s" and f.value > 0]
    for f in measured:
        if "from the packed store (in-process)" in f.name:
            return f
    for f in measured:
        if "1 worker" in f.name:
            return f
    return None


def gpu_md(flops: Sequence[DetectorFlops], figs: Sequence[Figure]) -> list[str]:
    """The GPU-cost section: the full ``cross`` grid's FLOPs per detector turned into GPU hours (an
    estimate)."""
    a100, h100 = gpu_cost.GPUS
    out = [
        "## GPU cost of the full `cross` grid (estimate from FLOPs, not a measurement)",
        "",
        "Assumptions (constants in `benchmark/perf/gpu_cost.py`):",
        "",
        *gpu_cost.assumptions_md(),
        "",
        "FLOPs per image counted with `torch.utils.flop_counter.FlopCounterMode` on one call of each "
        "detector (`benchmark/perf/flops.py`: random init, multiply-add = 2 FLOPs; grouped-convolution "
        "backward corrected):",
        "",
        "| detector | config | input px | params (trainable) | inference GFLOP/img | train step GFLOP/img | "
        "step / forward (3x rule) | epochs | frames/video train, test | train images/epoch |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f in flops:
        out.append(
            f"| `{f.detector}` | {f.config} | {f.input_size} | {f.total_params / 1e6:.1f}M "
            f"({f.trainable_params / 1e6:.2f}M) | {f.forward / 1e9:.2f} | {f.train_step / 1e9:.2f} | "
            f"{f.train_step / f.forward:.2f} | {f.epochs} | {f.frames_train}, {f.frames_test} | "
            f"{gpu_cost.images_per_epoch(f):,} |"
        )
    costs = [gpu_cost.cell_cost(f) for f in flops]
    out += [
        "",
        "GPU-hours of one seed of the `cross` grid (train on FF++, test on every test set), per detector:",
        "",
        f"| detector | train images | eval images | train PFLOP | eval PFLOP | {a100.name}, 1 GPU (h) | "
        f"{a100.name}, 8 GPUs (h) | {h100.name}, 1 GPU (h) | {h100.name}, 8 GPUs (h) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in costs:
        out.append(
            f"| `{c.detector}` | {c.train_images:,} | {c.eval_images:,} | {_g(c.train_pflop)} | "
            f"{_g(c.eval_pflop)} | {c.hours(a100):.2f} | {c.hours(a100, 8):.2f} | {c.hours(h100):.2f} | "
            f"{c.hours(h100, 8):.2f} |"
        )
    grid = [c for c in costs if c.detector in gpu_cost.cross_detectors()]
    if grid:
        hours = [sum(c.hours(g, n) for c in grid) for g in (a100, h100) for n in (1, 8)]
        out.append(
            f"| **`cross` grid ({len(grid)} detectors)** | {sum(c.train_images for c in grid):,} | "
            f"{sum(c.eval_images for c in grid):,} | {_g(sum(c.train_pflop for c in grid))} | "
            f"{_g(sum(c.eval_pflop for c in grid))} | " + " | ".join(f"{h:.2f}" for h in hours) + " |"
        )
        others = [c.detector for c in costs if c not in grid]
        if others:
            out += [
                "",
                f"Not in the `cross` grid (shown for comparison): {', '.join(f'`{d}`' for d in others)}.",
            ]
    loader = _workers(figs)
    per_worker = (
        f"; CPU workers at the measured {_g(loader.value)} {loader.unit} per worker of this machine "
        f"(`loader` / {loader.name})"
        if loader
        else " (run the `loader` topic to add the CPU workers this needs)"
    )
    out += [
        "",
        "What the data loader must deliver to keep the GPUs busy at the assumed utilisation (images/s = "
        f"peak x utilisation / FLOPs per image; each at the detector's input size, augmented for training){per_worker}:",
        "",
        f"| detector | train, 1 {a100.name} | train, 8 {a100.name} | train, 1 {h100.name} | "
        f"train, 8 {h100.name} | inference, 1 {h100.name} |"
        + (" CPU workers for 8 H100 (train) |" if loader else ""),
        "| --- | --- | --- | --- | --- | --- |" + (" --- |" if loader else ""),
    ]
    for f in flops:
        ta, th = gpu_cost.loader_rate(f.train_step, a100), gpu_cost.loader_rate(f.train_step, h100)
        row = (
            f"| `{f.detector}` | {ta:,.0f} | {8 * ta * gpu_cost.SCALING_8:,.0f} | {th:,.0f} | "
            f"{8 * th * gpu_cost.SCALING_8:,.0f} | {gpu_cost.loader_rate(f.forward, h100):,.0f} |"
        )
        if loader:
            row += f" {math.ceil(8 * th * gpu_cost.SCALING_8 / loader.value):,} |"
        out.append(row)
    out.append("")
    return out


def render(
    figs: Sequence[Figure],
    flops: Sequence[DetectorFlops],
    *,
    quick: bool = False,
    now: datetime | None = None,
    remeasured: dict[str, str] | None = None,
) -> str:
    """The markdown page (pure: no file written). ``remeasured`` maps a topic re-run alone after the full
    run (:func:`update_report`) to when and under which load it ran."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Performance",
        "",
        f"Generated by `make perf` (`python -m benchmark.perf all`) on {stamp}. Do not edit by hand: re-run it.",
        "Each figure is the median of its runs, with min and max; its ratio compares it with a baseline "
        "measured in the same run (>1 means better than the baseline). Targets are checked here, never by "
        "timed assertions in tests.",
        "",
    ]
    if remeasured:
        lines += [
            "Topics re-measured alone after that run (`python -m benchmark.perf TOPIC --update-report`; every "
            "ratio still compares figures of one run):",
            "",
            *(f"- `{t}`: {when}" for t, when in sorted(remeasured.items())),
            "",
        ]
    if quick:
        lines += [
            "> **Quick smoke run (`--quick`)**: the timings use few repeats, small inputs and tiny detector",
            "> configs; they show that the scripts run and give rough ratios, nothing to quote. The FLOP counts",
            "> and the GPU estimate below are at the papers' full sizes in every mode.",
            "",
        ]
    lines += ["## Machine", "", *machine_md(), "", "## Summary", "", *summary_md(figs), "", "## Figures", ""]
    lines += figures_md(figs)
    lines += bench_demo.section_md()
    lines += gpu_md(flops, figs)
    return "\n".join(lines).rstrip() + "\n"


def write_report(
    figs: Sequence[Figure],
    path: str | Path = DEFAULT_PATH,
    *,
    flops: Sequence[DetectorFlops] | None = None,
    quick: bool = False,
) -> Path:
    """Write the page to ``path`` atomically; counts every detector's FLOPs unless ``flops`` is given.

    FLOPs are always counted at the papers' input sizes and full configurations, also with ``quick``:
    the GPU estimate means nothing for tiny test configs, and counting costs seconds, not a benchmark run.
    """
    if flops is None:
        from benchmark.perf.flops import count_all

        flops = count_all(tiny=False)
    now = datetime.now(UTC)
    return _write(Path(path), figs, flops, quick=quick, now=now, remeasured={})


def sidecar(path: str | Path) -> Path:
    """The JSON file beside the page that keeps its figures, so one topic can be re-run later."""
    return Path(path).with_suffix(".json")


def _write(
    path: Path,
    figs: Sequence[Figure],
    flops: Sequence[DetectorFlops],
    *,
    quick: bool,
    now: datetime,
    remeasured: dict[str, str],
) -> Path:
    record = {
        "generated": now.isoformat(),
        "quick": quick,
        "remeasured": remeasured,
        "figures": [f.to_dict() for f in figs],
    }
    write_text(sidecar(path), json.dumps(record, indent=1) + "\n")
    return write_text(path, render(figs, flops, quick=quick, now=now, remeasured=remeasured))


def update_report(
    topic: str,
    figs: Sequence[Figure],
    path: str | Path = DEFAULT_PATH,
    *,
    quick: bool = False,
    flops: Sequence[DetectorFlops] | None = None,
) -> Path:
    """Replace ``topic``'s figures on the page written by the last full run (read from its
    :func:`sidecar`) with ``figs`` and re-render it, saying when the topic was re-measured.

    Raises:
        ValueError: no sidecar (run ``make perf`` first), or a quick run would update a full page.
    """
    path = Path(path)
    try:
        record = json.loads(sidecar(path).read_text())
    except FileNotFoundError:
        raise ValueError(
            f"{sidecar(path)} does not exist: run `make perf` (all topics) once before updating one topic"
        ) from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{sidecar(path)} is not valid JSON ({e}): run `make perf` again") from None
    if bool(record.get("quick")) != quick:
        kind = "quick" if quick else "full"
        raise ValueError(
            f"{path} was written by a {'full' if quick else 'quick'} run; a {kind} run cannot update it"
        )
    old = [Figure(**d) for d in record["figures"]]
    topics = list(dict.fromkeys([f.topic for f in old] + [topic]))
    merged = [f for t in topics for f in (figs if t == topic else [g for g in old if g.topic == t])]
    if flops is None:
        from benchmark.perf.flops import count_all

        flops = count_all(tiny=False)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    remeasured = {**record.get("remeasured", {}), topic: f"{when} (load average {load})"}
    generated = datetime.fromisoformat(record["generated"])
    return _write(path, merged, flops, quick=quick, now=generated, remeasured=remeasured)

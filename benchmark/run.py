"""``python -m benchmark.run``: run a train x test grid, resumably, then render the leaderboards.

Examples::

    python -m benchmark.run --grid cross --detectors xception         # what `make bench DETECTOR=xception` runs
    python -m benchmark.run --grid demo --dry-run                     # list the cells and what is done
    python -m benchmark.run --grid cross --devices 2                  # DDP over 2 devices inside each cell
    python -m benchmark.run --grid cross --launcher slurm --slurm-partition gpu
    python -m benchmark.run --grid cross --launcher slurm --num-nodes 2 --devices 8   # 16 GPUs per cell
    python -m benchmark.run --grid cross --weights released --weights-dir weights   # no training
    python -m benchmark.run --grid cross --perturb deeperforensics   # finished cells under distortions

``--weights released`` scores each detector's published checkpoint (``<weights dir>/<published file
name>``, listed by ``python -m detectors.convert --released``) under the whole protocol instead of
training; its cells have their own ids. A detector without one, or a missing file, is an error (exit 2)
before any cell runs.

After the cells, the shortcut detector (:mod:`benchmark.runner.shortcut`: a logistic regression on the
frames' confound features alone) is fitted in this process once per (grid, training set) that has a
finished cell, and stored as detector ``shortcut``; current ones are skipped. ``--backfill-confounds``
first adds the confound features to existing manifests that lack them.

``--perturb SWEEP...`` trains nothing: it scores every finished cell's checkpoint under each condition of
the sweeps (``deeperforensics``: seven distortions x five levels; ``sensitivity``: preprocessing views;
``grid``: the grid's ``perturb`` section; or a YAML file), one derived cell per (cell, condition)
(:mod:`benchmark.runner.perturbed`); unfinished cells are reported and skipped. Without it, a run ends
with the grid's own ``perturb`` section (the demo grid's small subset) on the cells that finished.

Finished cells (``status: done`` in the store) are skipped; an unfinished cell restarts from its last
checkpoint (``--no-resume``: from scratch); ``--force`` redoes finished cells too. The exit code is 1 when
any cell failed (each is recorded with its traceback; the sweep goes on), 2 for bad input: every dataset
the cells to run need is checked before anything is preprocessed or trained
(:mod:`benchmark.runner.precheck`), and every problem is reported at once, one line each. ``--debug`` (or
``FORGERY_BENCH_DEBUG=1``) shows the traceback of a bad-input error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchmark.runner.cell_data import reads_manifests
from benchmark.runner.cells import DEFAULT_DATAMODULE, Cell, Runtime
from benchmark.runner.data_config import (
    DEMO_PREFIX,
    DataConfigError,
    ensure_demo,
    load_data_config,
    parse_data_config,
)
from benchmark.runner.grid import GridError
from benchmark.runner.launchers import InlineLauncher, LocalLauncher, NoFreeDeviceError, SlurmLauncher
from benchmark.runner.monitor import FAILED, QUEUED, SKIPPED, Job, Monitor, summary
from benchmark.runner.perturbed import conditions_by_detector, perturbed_jobs, plan_perturbed, print_perturbed
from benchmark.runner.phases import PhaseClock
from benchmark.runner.plan import DEFAULT_WEIGHTS_DIR, WEIGHTS_MODES, WeightsError, plan_cells, resolve_grid
from benchmark.runner.precheck import check_data
from benchmark.runner.prepare import missing_datasets, prepare_manifests
from benchmark.runner.sweeps import NAMED as SWEEPS
from benchmark.runner.sweeps import SweepError
from datamodules.errors import debug_enabled, format_user_error, is_user_error, run_cli, user_error

#: how the final ``phases:`` line names each phase of :class:`PhaseClock`
PHASE_NAMES = {
    "startup": "start-up",
    "data": "data (demo generation when missing)",
    "plan": "planning",
    "preprocess": "preprocessing",
    "cells": "cells",
    "perturbed": "perturbed cells",
    "backfill": "confound backfill",
    "shortcut": "shortcut detector",
}


def _names(values: list[str] | None) -> list[str] | None:
    """Accept both ``--x a b`` and ``--x a,b``."""
    if not values:
        return None
    return [v for item in values for v in item.split(",") if v]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line of ``python -m benchmark.run``."""
    p = argparse.ArgumentParser(prog="python -m benchmark.run", description=__doc__.split("\n")[0])
    p.add_argument("--grid", default="cross", help="grid name (benchmark/grids/*.yaml) or path")
    p.add_argument("--detectors", nargs="+", help="detectors to run (default: the grid's)")
    p.add_argument("--datasets", nargs="+", help="restrict training and test sets to these")
    p.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the grid's)")
    p.add_argument("--devices", type=int, default=1, help="devices per cell and node (DDP when > 1)")
    p.add_argument(
        "--num-nodes", type=int, default=1, help="nodes per cell (DDP across nodes; needs --launcher slurm)"
    )
    p.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu"])
    p.add_argument("--launcher", default="local", choices=["local", "slurm", "inline"])
    p.add_argument("--dry-run", action="store_true", help="print the cells and what is done; run nothing")
    p.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="restart unfinished cells from their last checkpoint (default on)",
    )
    p.add_argument("--force", action="store_true", help="redo finished cells from scratch")
    p.add_argument("--data", help="data config YAML (default: $FORGERY_BENCH_DATA or data/datasets.yaml)")
    p.add_argument("--out", type=Path, default=Path("runs"), help="store and cell folders (default runs/)")
    p.add_argument("--leaderboards", type=Path, default=Path("leaderboards"), help="leaderboard folder")
    p.add_argument("--no-leaderboard", action="store_true", help="do not render leaderboards at the end")
    p.add_argument(
        "--wandb", action="store_true", help="also log to Weights & Biases (WANDB_MODE=offline works)"
    )
    p.add_argument(
        "--weights",
        default="trained",
        choices=WEIGHTS_MODES,
        help="train each cell (default) or score the detectors' released checkpoints without training",
    )
    p.add_argument(
        "--weights-dir",
        type=Path,
        default=DEFAULT_WEIGHTS_DIR,
        help="where released checkpoints are, under their published file names (default weights/)",
    )
    p.add_argument(
        "--perturb",
        nargs="+",
        metavar="SWEEP",
        help=f"train nothing; score every finished cell under test-time conditions: {', '.join(SWEEPS)} "
        "(the grid's perturb section) or a sweep YAML file",
    )
    p.add_argument(
        "--frozen-cache",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="reuse frozen-backbone outputs across seeds, cells and re-scorings (sfam, clip_linear; "
        "<out>/cache/frozen; default on; identical scores either way)",
    )
    p.add_argument(
        "--frozen-cache-max-gb",
        type=float,
        default=None,
        help="bound the frozen cache (least recently used go)",
    )
    p.add_argument(
        "--timings-json",
        type=Path,
        default=None,
        metavar="PATH",
        help="write the command's wall seconds per phase (start-up, data, preprocessing, cells, ...) to PATH "
        "(benchmark/runner/phases.py)",
    )
    p.add_argument(
        "--backfill-confounds",
        action="store_true",
        help="first add the confound features to every existing manifest of the grid that lacks them "
        "(what the stored crops and landmarks give; python -m datamodules.preprocess --backfill-confounds)",
    )
    p.add_argument("--datamodule", default=DEFAULT_DATAMODULE, help=argparse.SUPPRESS)
    p.add_argument("--slurm-cluster", default=None, help="submitit cluster: slurm (auto), local or debug")
    p.add_argument("--slurm-partition", default=None)
    p.add_argument("--slurm-timeout-min", type=int, default=24 * 60)
    return p.parse_args(argv)


def cell_state(cell: Cell, store: Any) -> str:
    """``done``, ``failed``, ``partial (last.ckpt)`` or ``todo``."""
    work = cell.cell_dir
    if store.is_done(cell.cell_id):
        return "done"
    if (work / "failure.txt").is_file():
        return "failed"
    if (work / "checkpoints" / "last.ckpt").is_file():
        return "partial (last.ckpt)"
    return "todo"


def _unwritable(out: Path) -> str | None:
    """Why ``out`` cannot hold the store and cell folders (``None`` if it can), checked before any cell runs."""
    try:
        for sub in ("store", "cells"):
            (out / sub).mkdir(parents=True, exist_ok=True)
            probe = out / sub / f".write-probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    return None


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


def print_plan(cells: list[Cell], store: Any, console: Console, title: str) -> None:
    """Print the planned cells with their state in the store."""
    t = Table(title=title)
    for col in ("#", "cell", "detector", "train set", "seed", "test sets", "state"):
        t.add_column(col)
    for i, c in enumerate(cells, 1):
        tests = ", ".join(s.name for s in c.config.test_sets)
        t.add_row(str(i), c.cell_id, c.detector, c.train_set, str(c.seed), tests, cell_state(c, store))
    console.print(t)


def _report(console: Console, exc: BaseException) -> int:
    """Print a bad-input error as its message and hint (no traceback unless debugging); return 2."""
    if debug_enabled():
        raise exc
    for i, line in enumerate(format_user_error(exc)):
        style = "bold red" if i == 0 else "yellow" if line.startswith("hint:") else ""
        console.print(f"[{style}]{escape(line)}[/]" if style else escape(line), soft_wrap=True)
    return 2


def main(argv: list[str] | None = None, console: Console | None = None) -> int:
    """Command line: plan the grid's cells, run those not done and report; returns the exit code."""
    args = parse_args(argv)
    clock = PhaseClock()
    try:
        return _main(args, console or Console(), clock)
    finally:
        if args.timings_json is not None:
            clock.write(args.timings_json)


def _main(args: argparse.Namespace, console: Console, clock: PhaseClock) -> int:
    started = time.perf_counter()
    clock.start("data")  # the data config; the demo is generated here when it is missing
    try:
        data = load_data_config(args.data)
        grid, grid_note = resolve_grid(args.grid, data)
        if data.origin != "demo" and all(d.startswith(DEMO_PREFIX) for d in grid.datasets()):
            demo_cfg = ensure_demo()
            note = (
                f"grid {grid.name!r} uses the demo datasets: running on the embedded demo data ({demo_cfg})"
            )
            data = parse_data_config(demo_cfg, origin="demo", note=note)
        clock.start("plan")  # cells, perturbed conditions, the data check
        runtime = Runtime(
            store_root=args.out / "store",
            work_root=args.out / "cells",
            devices=args.devices,
            num_nodes=args.num_nodes,
            accelerator=args.accelerator,
            wandb=args.wandb,
            frozen_cache=args.frozen_cache,
            frozen_cache_max_gb=args.frozen_cache_max_gb,
        )
        cells = plan_cells(
            grid,
            data,
            detectors=_names(args.detectors),
            datasets=_names(args.datasets),
            seeds=args.seeds,
            datamodule=args.datamodule,
            runtime=runtime,
            weights=args.weights,
            weights_dir=args.weights_dir,
        )
        detectors = [c.detector for c in cells]
        sweeps = conditions_by_detector(
            args.perturb or ["grid"], grid, detectors, required=bool(args.perturb)
        )
    except (GridError, DataConfigError, WeightsError, SweepError, KeyError) as e:
        return _report(console, e)
    for note in (data.note, grid_note):
        if note:
            console.print(f"[bold yellow]note:[/] {note}")
    if args.devices < 1:
        console.print("[bold red]error:[/] --devices must be >= 1")
        return 2
    if args.num_nodes < 1:
        return _report(
            console,
            user_error(
                ValueError(f"--num-nodes {args.num_nodes}: a cell needs at least one node"),
                hint="give --num-nodes 1 or more",
            ),
        )
    if args.num_nodes > 1 and args.launcher != "slurm":
        msg = (
            f"--num-nodes {args.num_nodes} needs --launcher slurm (a cell spans nodes only as a SLURM job); "
            f"got --launcher {args.launcher}"
        )
        return _report(
            console,
            user_error(
                ValueError(msg),
                hint="add --launcher slurm, or leave --num-nodes out to run each cell on one node",
            ),
        )

    from benchmark.store import ScoreStore

    if not args.dry_run:
        problem = _unwritable(args.out)
        if problem:
            console.print(f"[bold red]error:[/] output folder {args.out} is not writable ({problem})")
            return 2
    store = ScoreStore(args.out / "store")
    released = ", released weights, no training" if args.weights == "released" else ""
    title = f"grid {grid.name}: {len(cells)} cells ({data.origin} data, {data.path}{released})"
    if args.dry_run:
        if not args.perturb:
            print_plan(cells, store, console, title)
        planned = plan_perturbed(cells, sweeps, store)  # what the finished cells add now
        print_perturbed(planned, store, console, f"{title}: perturbed cells", notes=bool(args.perturb))
        to_run = [] if args.perturb else [c for c in cells if args.force or not store.is_done(c.cell_id)]
        return _check_data(to_run, args, console)

    # --perturb trains nothing: its derived cells read the manifests their finished parents were scored on
    to_run = [] if args.perturb else [c for c in cells if args.force or not store.is_done(c.cell_id)]
    code = _check_data(to_run, args, console)  # before any preprocessing or training
    if code:
        return code
    if args.backfill_confounds and reads_manifests(args.datamodule):
        clock.start("backfill")
        _backfill(cells, console)
    jobs = []
    for cell in [] if args.perturb else cells:  # --perturb: score finished cells, train nothing
        job = Job(cell)
        work = cell.cell_dir
        if store.is_done(cell.cell_id) and not args.force:
            job.status = SKIPPED
        elif args.force or not args.resume:
            shutil.rmtree(work / "checkpoints", ignore_errors=True)
        jobs.append(job)

    launcher: Any
    if args.launcher == "inline":
        launcher = InlineLauncher()
    elif args.launcher == "slurm":
        launcher = SlurmLauncher(
            args.out / "slurm",
            devices=args.devices,
            num_nodes=args.num_nodes,
            accelerator=args.accelerator,
            cluster=args.slurm_cluster,
            parameters={
                k: v
                for k, v in {
                    "slurm_partition": args.slurm_partition,
                    "timeout_min": args.slurm_timeout_min,
                }.items()
                if v is not None
            },
        )
    else:
        launcher = LocalLauncher(devices=args.devices, accelerator=args.accelerator)

    if args.launcher == "local" and reads_manifests(args.datamodule):
        # Preprocess missing manifests once, here, so parallel cells never preprocess the same dataset;
        # their videos in one shared process pool (benchmark.runner.prepare), the same bytes as in one process.
        clock.start("preprocess")
        try:
            prepare_manifests(
                missing_datasets((j.cell.config, j.cell.runtime) for j in jobs if j.status == QUEUED)
            )
        except Exception as e:
            if is_user_error(e):
                return _report(console, e)
            if debug_enabled():
                raise
            console.print(f"[bold red]preprocessing failed:[/] {type(e).__name__}: {e}")
            return 1

    def launch(batch: list[Job], what: str) -> int | None:
        """Run ``batch``; an exit code when the sweep must stop (no device, interrupted), else None."""
        todo = sum(j.status == QUEUED for j in batch)
        console.print(f"{what}: {todo} to run, {len(batch) - todo} already done ({launcher.name} launcher)")
        try:
            in_process = args.launcher == "inline" or (
                args.launcher == "slurm" and args.slurm_cluster == "debug"
            )
            monitor = Monitor(batch, what, console, live=not in_process)
            with monitor:
                launcher.run(batch, monitor)
        except NoFreeDeviceError as e:
            console.print(f"[bold red]error:[/] {e}")
            return 2
        except KeyboardInterrupt:
            summary(batch, console)
            console.print("[bold yellow]interrupted[/]: run the same command again to resume")
            return 130
        summary(batch, console, table=not (monitor.live and console.is_terminal))
        return None

    clock.start("cells")
    stop = None if args.perturb else launch(jobs, title)
    clock.stop()
    clock.add_cells(jobs, store)
    if stop is not None:
        return stop
    # Test-time conditions on the cells that are finished now (--perturb, or the grid's perturb section).
    clock.start("perturbed")
    plan = plan_perturbed(cells, sweeps, store)
    for note in plan.notes():
        console.print(f"[bold yellow]note:[/] {note}")
    if args.perturb and not plan.parents:
        states = ", ".join(sorted({s for _, s in plan.unfinished}))
        console.print(
            f"[bold red]error:[/] grid {grid.name!r} has no finished cell to score under {' '.join(args.perturb)} "
            f"({states}); run `python -m benchmark.run --grid {grid.name}` first"
        )
        return 2
    pjobs = perturbed_jobs(plan, force=args.force)
    stop = launch(pjobs, f"{title}: perturbed cells") if pjobs else None
    clock.stop()
    clock.add_cells(pjobs, store)
    if stop is not None:
        return stop
    jobs += pjobs
    if reads_manifests(args.datamodule):  # the shortcut detector of each (grid, training set): this process
        clock.start("shortcut")
        from benchmark.runner.shortcut import schedule

        done = schedule(
            cells, store, force=args.force, say=lambda m: console.print(f"[bold yellow]note:[/] {m}")
        )
        fitted = sum(v == "written" for v in done.values())
        if fitted:
            console.print(f"shortcut detector: {fitted} cell(s) written (confound features alone)")
    clock.stop()
    todo = sum(j.status != SKIPPED for j in jobs)
    if not args.no_leaderboard:
        clock.start("leaderboards")
        try:
            from benchmark.report.leaderboard import render

            written = render(args.out / "store", args.leaderboards)
            console.print(f"leaderboards: {len(written)} files in {args.leaderboards}/")
        except Exception as e:  # a leaderboard problem must not hide the sweep's own result
            console.print(f"[bold red]leaderboard rendering failed:[/] {type(e).__name__}: {e}")
            return 1
    clock.stop()
    console.print(
        f"wall time {_clock(time.perf_counter() - started)}: the whole command ({todo} cells run, data "
        "preparation such as demo generation and preprocessing when needed, leaderboards)"
    )
    console.print(
        "phases: " + ", ".join(f"{PHASE_NAMES.get(k, k)} {_clock(v)}" for k, v in clock.phases.items())
    )
    return 1 if any(j.status == FAILED for j in jobs) else 0


def _backfill(cells: list[Cell], console: Console) -> None:
    """``--backfill-confounds``: every existing manifest the cells read gains its computable confounds."""
    from benchmark.runner.cell_data import manifest_paths
    from datamodules.preprocess.backfill import backfill_confounds

    seen: set[Path] = set()
    for cell in cells:
        for name, path in manifest_paths(cell.config, cell.runtime).items():
            if path in seen or not path.is_file():
                continue
            seen.add(path)
            console.print(str(backfill_confounds(path.parent.parent, name)), soft_wrap=True)


def _check_data(cells: list[Cell], args: argparse.Namespace, console: Console) -> int:
    """Check the data of ``cells`` when their datamodule reads manifests: 0, or 2 after printing every
    problem (:mod:`benchmark.runner.precheck`)."""
    if not cells or not reads_manifests(args.datamodule):
        return 0
    report = check_data(cells)
    for note in report.notes:
        console.print(f"[bold yellow]note:[/] {escape(note)}", soft_wrap=True)
    error = report.error()
    return 0 if error is None else _report(console, error)


if __name__ == "__main__":
    sys.exit(run_cli(main))

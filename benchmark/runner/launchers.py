"""Launchers: run the cells of a sweep in this process, in local processes, or as SLURM jobs.

* ``inline`` runs cells one after the other in this process (tests, debugging).
* ``local`` runs each cell in its own process (``python -m benchmark.runner.cell SPEC``): one at a time on a
  CPU, or one per free group of ``devices`` GPUs in parallel. A cell with ``devices > 1`` runs Lightning
  DDP inside its process group. A process that dies without writing its record (SIGKILL, OOM) is
  recorded as failed by the launcher, with the tail of its log.
* ``slurm`` submits one submitit job per cell, which may span several nodes (``cluster="local"`` or
  ``"debug"`` runs without a cluster).

Every launcher uses the same store and the same rules: a cell counts as done only when the store says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmark.runner.cell import CellFailed, record_failure, run_cell
from benchmark.runner.cells import Cell
from benchmark.runner.monitor import DONE, FAILED, QUEUED, RUNNING, Job, Monitor
from benchmark.runner.plan import write_spec
from datamodules.errors import UserError


class NoFreeDeviceError(UserError, RuntimeError):
    """The sweep asks for more devices per cell than are free."""

    hint = "free a GPU, ask for fewer with --devices, or run on the CPU with --accelerator cpu"


def _store(cell: Cell) -> Any:
    from benchmark.store import ScoreStore

    return ScoreStore(cell.runtime.store_root)


def _error_of(cell: Cell, fallback: str) -> str:
    f = cell.cell_dir / "failure.txt"
    if f.is_file():
        lines = f.read_text().strip().splitlines()
        return lines[-1] if lines else fallback
    return fallback


def free_gpus(max_used_fraction: float = 0.05) -> list[int]:
    """Indices of GPUs whose memory is (almost) unused, by ``nvidia-smi``; all visible ones without it."""
    try:
        import torch

        n = torch.cuda.device_count()
    except Exception:
        n = 0
    if n == 0:
        return []
    if shutil.which("nvidia-smi") is None:
        return list(range(n))
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index,memory.used,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return list(range(n))
    free = []
    for line in out.strip().splitlines():
        idx, used, total = (float(x) for x in line.split(","))
        if total > 0 and used / total <= max_used_fraction:
            free.append(int(idx))
    return free


def device_slots(devices: int, accelerator: str) -> list[list[int] | None]:
    """Parallel slots: groups of ``devices`` free GPUs, or one CPU slot (``[None]``)."""
    if accelerator == "cpu":
        return [None]
    gpus = free_gpus()
    if not gpus:
        if accelerator in {"gpu", "cuda"}:
            raise NoFreeDeviceError("no free GPU: every visible GPU is busy or none is visible")
        return [None]
    if len(gpus) < devices:
        raise NoFreeDeviceError(f"no free device: each cell asks for {devices} GPUs, free GPUs: {gpus}")
    return [gpus[i : i + devices] for i in range(0, len(gpus) - devices + 1, devices)]


class InlineLauncher:
    """Cells one after another in this process."""

    name = "inline"

    def __init__(self, callbacks: list[Any] | None = None) -> None:
        self.callbacks = callbacks or []

    def run(self, jobs: list[Job], monitor: Monitor) -> None:
        """Run the queued jobs one after another in this process."""
        for job in jobs:
            if job.status != QUEUED:
                continue
            if job.cell.runtime.devices > 1:
                raise ValueError("the inline launcher runs one device per cell; use --launcher local for DDP")
            job.status, job.started = RUNNING, time.time()
            monitor.update(job)
            try:
                run_cell(job.cell, callbacks=self.callbacks)
                job.status = DONE
            except CellFailed as e:
                job.status, job.error = FAILED, str(e.__cause__ or e)
            job.ended = time.time()
            monitor.update(job)


class LocalLauncher:
    """One process per cell; parallel over free GPU groups, sequential on CPU."""

    name = "local"

    def __init__(self, devices: int = 1, accelerator: str = "auto", poll_s: float = 0.5) -> None:
        self.devices, self.accelerator, self.poll_s = devices, accelerator, poll_s

    def _start(self, job: Job, slot: list[int] | None) -> subprocess.Popen:
        work = job.cell.cell_dir
        spec = write_spec(job.cell, work / "cell.json")
        (work / "failure.txt").unlink(missing_ok=True)
        env = dict(os.environ)
        if slot is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, slot))
        job.log = work / "cell.log"
        log = open(job.log, "a")  # noqa: SIM115 - closed when the process ends
        log.write(f"\n===== attempt started {time.strftime('%Y-%m-%d %H:%M:%S')} =====\n")
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmark.runner.cell", str(spec)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        job.extra.update(proc=proc, logfile=log, slot=slot)
        job.status, job.started = RUNNING, time.time()
        return proc

    def _finish(self, job: Job, code: int) -> None:
        job.extra["logfile"].close()
        job.ended = time.time()
        if _store(job.cell).is_done(job.cell.cell_id):
            job.status = DONE
            return
        job.status = FAILED
        if (job.cell.cell_dir / "failure.txt").is_file():
            job.error = _error_of(job.cell, f"exit code {code}")
            return
        # The process died without recording why (signal, OOM killer): record it here.
        tail = job.log.read_text().splitlines()[-40:] if job.log and job.log.is_file() else []
        why = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        record_failure(
            job.cell, _store(job.cell), f"cell process {why}\n" + "\n".join(tail), job.started or 0
        )
        job.error = f"cell process {why}"

    def run(self, jobs: list[Job], monitor: Monitor) -> None:
        """Run the queued jobs as subprocesses, one per free device slot, until all have ended."""
        for job in jobs:
            job.cell = job.cell.with_runtime(devices=self.devices, accelerator=self.accelerator)
        free = device_slots(self.devices, self.accelerator)
        queue = [j for j in jobs if j.status == QUEUED]
        running: list[Job] = []
        try:
            while queue or running:
                while queue and free:
                    job = queue.pop(0)
                    self._start(job, free.pop(0))
                    running.append(job)
                    monitor.update(job)
                for job in list(running):
                    code = job.extra["proc"].poll()
                    if code is not None:
                        self._finish(job, code)
                        free.append(job.extra["slot"])
                        running.remove(job)
                        monitor.update(job)
                monitor.update()
                time.sleep(self.poll_s)
        except KeyboardInterrupt:
            for job in running:
                job.extra["proc"].terminate()
            for job in running:
                job.extra["proc"].wait(timeout=60)
                self._finish(job, -2)
            raise


def run_cell_job(spec: dict[str, Any]) -> str:
    """The function a SLURM job runs: one cell; returns ``done`` or ``failed`` (recorded in the store)."""
    cell = Cell.from_json(spec)
    try:
        run_cell(cell)
    except CellFailed:
        return FAILED
    return DONE


class SlurmLauncher:
    """One submitit job per cell (``cluster=None`` auto-detects SLURM; ``local``/``debug`` run here).

    On SLURM a cell's job spans ``num_nodes`` nodes with one task per device on each
    (``--nodes=num_nodes --ntasks-per-node=devices --gpus-per-node=devices``, no GPU asked for with
    ``accelerator="cpu"``); ``srun`` starts every task, and Lightning's ``SLURMEnvironment`` reads the
    ranks from SLURM's variables and drives DDP over all ``devices x num_nodes`` processes. Off SLURM
    (``local``, ``debug``) a cell runs as one process on the CPU.
    """

    name = "slurm"

    def __init__(
        self,
        folder: Path,
        devices: int = 1,
        cluster: str | None = None,
        parameters: dict[str, Any] | None = None,
        poll_s: float = 2.0,
        num_nodes: int = 1,
        accelerator: str = "auto",
    ) -> None:
        self.folder, self.devices, self.cluster = Path(folder), devices, cluster
        self.parameters, self.poll_s = dict(parameters or {}), poll_s
        self.num_nodes, self.accelerator = num_nodes, accelerator

    def executor(self) -> Any:
        """The submitit executor every cell is submitted with, parameters set (see the class docstring)."""
        from datamodules.optional import require

        submitit = require("submitit", "--launcher slurm")

        ex = submitit.AutoExecutor(folder=str(self.folder / "%j"), cluster=self.cluster)
        params: dict[str, Any] = {"timeout_min": 24 * 60, "name": "forgery-bench"}
        if ex.cluster == "slurm":
            params.update(
                nodes=self.num_nodes,
                tasks_per_node=self.devices,  # Lightning's SLURM DDP: one task per device on every node
                cpus_per_task=4,
            )
            if self.accelerator != "cpu":
                params["gpus_per_node"] = self.devices
        params.update(self.parameters)
        ex.update_parameters(**params)
        return ex

    def run(self, jobs: list[Job], monitor: Monitor) -> None:
        """Submit the queued jobs to SLURM with submitit and follow them until all have ended."""
        ex = self.executor()
        on_slurm = ex.cluster == "slurm"
        runtime = (
            {"devices": self.devices, "num_nodes": self.num_nodes, "accelerator": self.accelerator}
            if on_slurm
            else {"devices": 1, "num_nodes": 1, "accelerator": "cpu"}
        )
        pending = []
        for job in jobs:
            if job.status != QUEUED:
                continue
            job.cell = job.cell.with_runtime(**runtime)
            job.extra["job"] = ex.submit(run_cell_job, job.cell.to_json())
            job.status, job.started = RUNNING, time.time()
            job.log = Path(str(job.extra["job"].paths.stdout))
            monitor.update(job)
            pending.append(job)
        while pending:
            for job in list(pending):
                sj = job.extra["job"]
                if ex.cluster == "debug" or sj.done():
                    try:
                        sj.results()  # every task's (one per device and node)
                    except Exception as e:  # the job itself died (not a recorded cell failure)
                        if not (job.cell.cell_dir / "failure.txt").is_file():
                            record_failure(
                                job.cell, _store(job.cell), f"SLURM job failed: {e}", job.started or 0
                            )
                    job.ended = time.time()
                    job.status = DONE if _store(job.cell).is_done(job.cell.cell_id) else FAILED
                    if job.status == FAILED:
                        job.error = _error_of(job.cell, f"job {sj.job_id} failed")
                    pending.remove(job)
                    monitor.update(job)
            monitor.update()
            if pending:
                time.sleep(self.poll_s)

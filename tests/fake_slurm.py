"""A one-machine stand-in for SLURM's ``sbatch``, ``srun``, ``sacct`` and ``scancel``, for the launcher tests.

It reproduces what a job sees according to the sbatch(1) and srun(1) manuals (OUTPUT ENVIRONMENT
VARIABLES, filename patterns), with every "node" being this machine:

* ``sbatch FILE``: numbers the job, prints ``Submitted batch job <id>`` and returns while the job runs
  in the background: the script, with ``SLURM_JOB_ID``, ``SLURM_JOB_NAME``, ``SLURM_JOB_NUM_NODES`` =
  ``SLURM_NNODES``, ``SLURM_JOB_NODELIST``, ``SLURM_NTASKS`` and ``SLURM_NTASKS_PER_NODE`` from its
  ``#SBATCH`` options ``--nodes``, ``--ntasks-per-node`` and ``--job-name``, its output where
  ``--output`` and ``--error`` say. :func:`jobs_ended` waits for the jobs at the end of a test.
* ``srun [--unbuffered] [--output F] [--error F] CMD...``: starts ``nodes x ntasks-per-node`` copies of
  CMD at once, each with ``SLURM_PROCID`` (its rank in the job), ``SLURM_LOCALID`` (its rank on its node)
  and ``SLURM_NODEID``; ``%j`` and ``%t`` in F become the job id and the task's rank. It waits for every
  copy and fails if one fails.
* ``sacct ... -j ID``: ``JobID|State|NodeList`` (``--parsable2``) of the jobs it ran.
* ``scancel``: does nothing.

State (job counter, job states) lives in ``$FAKE_SLURM_STATE``. Standard library only: the commands are
run as ``python fake_slurm.py <command> ...`` by the shims :func:`install` writes.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

COMMANDS = ("sbatch", "srun", "sacct", "scancel")


def install(bin_dir: Path, state_dir: Path) -> dict[str, str]:
    """Write the four commands into ``bin_dir``; returns the environment that puts them first on PATH."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    for name in COMMANDS:
        shim = bin_dir / name
        shim.write_text(
            f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).resolve()))} "
            f'{name} "$@"\n'
        )
        shim.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_SLURM_STATE": str(state_dir)}


def _state() -> Path:
    return Path(os.environ["FAKE_SLURM_STATE"])


def _directives(script: str) -> dict[str, str]:
    out = {}
    for line in script.splitlines():
        m = re.match(r"#SBATCH\s+--([\w-]+)(?:=(.*))?$", line.strip())
        if m:
            out[m.group(1)] = (m.group(2) or "").strip()
    return out


def _pattern(path: str, job_id: str, task: int = 0) -> str:
    return path.replace("%j", job_id).replace("%t", str(task))


def sbatch(args: list[str]) -> int:
    """Number the job, start it in the background (its own process group) and return, as sbatch does."""
    script = Path(args[-1])
    counter = _state() / "last_job_id"
    job_id = str(int(counter.read_text()) + 1 if counter.is_file() else 1000)
    counter.write_text(job_id)
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "_job", job_id, str(script)],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    (_state() / f"{job_id}.pid").write_text(str(proc.pid))
    print(f"Submitted batch job {job_id}")
    return 0


def _job(args: list[str]) -> int:
    """The batch job itself: the script with the job's variables, its output where ``#SBATCH`` says."""
    job_id, script = args[0], Path(args[1])
    opts = _directives(script.read_text())
    nodes, per_node = int(opts.get("nodes", 1)), int(opts.get("ntasks-per-node", 1))
    env = {
        **os.environ,
        "SLURM_JOB_ID": job_id,
        "SLURM_JOBID": job_id,
        "SLURM_JOB_NAME": opts.get("job-name", script.name),
        "SLURM_JOB_NUM_NODES": str(nodes),
        "SLURM_NNODES": str(nodes),
        "SLURM_JOB_NODELIST": "localhost",
        "SLURM_NODELIST": "localhost",
        "SLURM_NTASKS": str(nodes * per_node),
        "SLURM_NTASKS_PER_NODE": str(per_node),
    }
    out = Path(_pattern(opts.get("output", f"slurm-{job_id}.out"), job_id))
    err = Path(_pattern(opts.get("error", str(out)), job_id))
    out.parent.mkdir(parents=True, exist_ok=True)
    err.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as o, open(err, "a") as e:
        code = subprocess.run(["bash", str(script)], env=env, stdout=o, stderr=e).returncode
    (_state() / f"{job_id}.state").write_text("COMPLETED" if code == 0 else "FAILED")
    return code


def jobs_ended(state_dir: Path, timeout_s: float = 60.0) -> None:
    """Wait for the jobs started under ``state_dir`` to end; a job still running after ``timeout_s``
    has its process group (the one sbatch started) killed."""
    import signal
    import time

    deadline = time.time() + timeout_s
    for pid_file in state_dir.glob("*.pid"):
        pid = int(pid_file.read_text())
        while time.time() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (sbatch's job is no child of ours: init reaps it)."""
    try:
        os.kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def srun(args: list[str]) -> int:
    opts: dict[str, str] = {}
    while args and args[0].startswith("--"):
        flag, _, value = args.pop(0)[2:].partition("=")
        if flag in ("output", "error"):
            opts[flag] = value or args.pop(0)
    out, err = opts.get("output"), opts.get("error")
    job_id = os.environ["SLURM_JOB_ID"]
    nodes, per_node = int(os.environ["SLURM_NNODES"]), int(os.environ["SLURM_NTASKS_PER_NODE"])
    procs, files = [], []
    for node in range(nodes):
        for local in range(per_node):
            rank = node * per_node + local
            env = {
                **os.environ,
                "SLURM_PROCID": str(rank),
                "SLURM_LOCALID": str(local),
                "SLURM_NODEID": str(node),
                "SLURM_STEP_NUM_TASKS": os.environ["SLURM_NTASKS"],
            }
            o = open(_pattern(out, job_id, rank), "a") if out else None  # noqa: SIM115 - closed below
            e = open(_pattern(err, job_id, rank), "a") if err else None  # noqa: SIM115
            files += [f for f in (o, e) if f]
            procs.append(subprocess.Popen(args, env=env, stdout=o, stderr=e))
    codes = [p.wait() for p in procs]
    for f in files:
        f.close()
    return max(codes, key=abs)


def sacct(args: list[str]) -> int:
    ids = [args[i + 1] for i, a in enumerate(args) if a == "-j"]
    print("JobID|State|NodeList")
    for job_id in ids:
        state = _state() / f"{job_id}.state"
        print(f"{job_id}|{state.read_text() if state.is_file() else 'RUNNING'}|localhost")
    return 0


def main(argv: list[str]) -> int:
    command, args = argv[0], list(argv[1:])
    if command == "scancel":
        return 0
    return {"sbatch": sbatch, "srun": srun, "sacct": sacct, "_job": _job}[command](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

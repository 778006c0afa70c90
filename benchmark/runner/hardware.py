"""The machine a cell ran on, for its record: the same cell id trained on two machines can score
differently (other kernels, other float rounding), and the reader must be able to see why."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The CPU's model name (Linux ``/proc/cpuinfo``, else :func:`platform.processor`); None when unknown."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def hardware() -> dict[str, Any]:
    """``cpu`` model, ``gpu`` name(s) and ``gpu_count`` visible to torch, the ``cuda`` version torch was
    built with and the ``cudnn`` version it loads; None (``gpu_count`` 0) when absent."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    names = list(dict.fromkeys(torch.cuda.get_device_name(i) for i in range(count)))
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "cpu": cpu_model(),
        "gpu": ", ".join(names) or None,
        "gpu_count": count,
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
    }

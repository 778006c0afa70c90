"""Optional dependencies: what only some users need is an extra, and a missing one is a clear error.

``pip install forgery-bench`` installs the core; the extras add
``slurm`` (submitit: ``--launcher slurm``), ``wandb`` (``--wandb`` logging) and ``insightface`` (the
SCRFD face backend and the face photos the embedded demo is made from). ``make install`` installs all of
them (the ``dev`` extra includes them).
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: import name -> (extra, distribution)
EXTRAS: dict[str, tuple[str, str]] = {
    "submitit": ("slurm", "submitit"),
    "wandb": ("wandb", "wandb"),
    "insightface": ("insightface", "insightface"),
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` saying which extra ``purpose`` needs."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        extra, dist = EXTRAS.get(module.split(".")[0], ("", module.split(".")[0]))
        how = f"pip install 'forgery-bench[{extra}]'" if extra else f"pip install {dist}"
        raise MissingExtraError(f"{purpose} needs the optional package {dist!r} ({e}): {how}") from e

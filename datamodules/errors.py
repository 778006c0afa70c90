"""User errors: bad input a person can fix (a layout, a configuration, a name), as opposed to a bug.

Every command-line entry point (``python -m benchmark.run``, ``datamodules.preprocess``,
``benchmark.predict``, ``benchmark.leaderboard``, ``detectors.convert``) runs its ``main`` through
:func:`run_cli`: a user error reaches the user as ``error: <the message>`` plus ``hint: <what to do>`` and
exit code 2, never as a traceback; any other exception is a bug and keeps its traceback. ``--debug`` on any
of those commands (or ``FORGERY_BENCH_DEBUG=1``) shows the traceback of a user error too.

Which exceptions are user errors: every class that mixes in :class:`UserError` (the data side's
``DatasetLayoutError`` / ``MissingSplitError``, ``UnknownLayoutError``, ``DataError``,
``PreprocessConfigError``, ``FaceBackendError``; the detectors' ``UnknownDetectorError``
and ``UnknownSettingError``; the runner's ``GridError``, ``DataConfigError``, ``DataCheckError`` and
``NoFreeDeviceError``), plus single instances of a built-in type marked with :func:`user_error` where
callers rely on the exact built-in class (an unknown adapter option stays a ``TypeError``).

This module lives in the lowest layer (``datamodules``) so every layer can mark its own classes.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TypeVar

DEBUG_ENV = "FORGERY_BENCH_DEBUG"
DEBUG_FLAG = "--debug"
EXIT_USER_ERROR = 2
TRACEBACK_NOTE = f"traceback: {DEBUG_FLAG} or {DEBUG_ENV}=1"

E = TypeVar("E", bound=BaseException)


class UserError(Exception):
    """Mixin: the exception is bad input, reported as one line plus :attr:`hint` by :func:`run_cli`.

    Mix it in FIRST (``class DatasetLayoutError(UserError, FileNotFoundError)``) so the class keeps its
    built-in base for callers that catch that.
    """

    #: what the user can do about it (one sentence); a class default, overridable per instance
    hint: str = ""


def user_error(exc: E, hint: str = "") -> E:
    """Mark one exception instance of a built-in type as a user error (its class stays exactly the same)."""
    exc.user_error = True  # type: ignore[attr-defined]
    if hint:
        exc.hint = hint  # type: ignore[attr-defined]
    return exc


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is bad input (a :class:`UserError` class or an instance marked by :func:`user_error`)."""
    return isinstance(exc, UserError) or bool(getattr(exc, "user_error", False))


def debug_enabled() -> bool:
    """``FORGERY_BENCH_DEBUG`` is set to anything but ``""``/``0``."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def one_line(text: str, limit: int = 400) -> str:
    """``text``'s lines joined into one (for lists of problems), cut at ``limit`` characters."""
    joined = " ".join(line.strip() for line in str(text).splitlines() if line.strip())
    return joined if len(joined) <= limit else joined[: limit - 1] + "…"


def format_user_error(exc: BaseException) -> list[str]:
    """The lines a user sees: ``error: <message>`` (a multi-line message keeps its lines, indented) and
    ``hint: <hint> (traceback: --debug or FORGERY_BENCH_DEBUG=1)``."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    out = [f"error: {lines[0]}", *(f"  {line.strip()}" for line in lines[1:] if line.strip())]
    hint = getattr(exc, "hint", "")
    out.append(f"hint: {hint} ({TRACEBACK_NOTE})" if hint else f"hint: {TRACEBACK_NOTE}")
    return out


def run_cli(main: Callable[[list[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run a command-line ``main(argv)`` and return its exit code; a user error prints
    :func:`format_user_error` on stderr and returns 2.

    ``--debug`` is taken out of ``argv`` (so no parser needs to know it) and, like ``FORGERY_BENCH_DEBUG=1``,
    lets a user error raise with its traceback.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debug_enabled() or DEBUG_FLAG in args
    if DEBUG_FLAG in args:
        args = [a for a in args if a != DEBUG_FLAG]
        os.environ[DEBUG_ENV] = "1"  # subprocesses (cells) and nested helpers see it too
    try:
        code = main(args)
    except Exception as e:
        if debug or not is_user_error(e):
            raise
        sys.stdout.flush()
        print("\n".join(format_user_error(e)), file=sys.stderr)
        return EXIT_USER_ERROR
    return 0 if code is None else int(code)


def print_traceback_if_debug(exc: BaseException) -> None:
    """Print ``exc``'s traceback on stderr when debugging is on (for callers that report and go on)."""
    if debug_enabled():
        traceback.print_exception(exc, file=sys.stderr)

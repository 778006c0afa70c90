"""User errors reach command-line users as one ``error:`` line plus a ``hint:`` line and exit code 2
(``datamodules.errors.run_cli``); ``--debug`` or ``FORGERY_BENCH_DEBUG=1`` shows the traceback; a bug keeps
its traceback. The bad inputs of each entry point are in tests/test_bad_inputs.py's ``CLI_CASES``."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.runner.data_config import DataConfigError
from benchmark.runner.grid import GridError
from benchmark.runner.launchers import NoFreeDeviceError
from benchmark.runner.precheck import DataCheckError
from datamodules.datasets.base import DatasetLayoutError, MissingSplitError, UnknownLayoutError
from datamodules.errors import DEBUG_ENV, UserError, is_user_error, run_cli, user_error
from datamodules.manifest import DataError
from datamodules.media.faces import FaceBackendError
from datamodules.preprocess import PreprocessConfigError
from detectors.registry import UnknownDetectorError
from detectors.settings import UnknownSettingError

ROOT = Path(__file__).resolve().parents[1]
#: every command-line entry point: the file whose ``__main__`` block must run ``main`` through run_cli
ENTRY_POINTS = {
    "benchmark.run": "benchmark/run.py",
    "datamodules.preprocess": "datamodules/preprocess/__main__.py",
    "benchmark.predict": "benchmark/predict.py",
    "benchmark.leaderboard": "benchmark/leaderboard.py",
    "benchmark.report.leaderboard": "benchmark/report/leaderboard.py",
    "detectors.convert": "detectors/convert.py",
}
USER_ERRORS = (DatasetLayoutError, MissingSplitError, UnknownLayoutError, DataError, PreprocessConfigError,
               FaceBackendError, GridError, DataConfigError, DataCheckError, NoFreeDeviceError,
               UnknownDetectorError, UnknownSettingError)  # fmt: skip


@pytest.mark.parametrize("cls", USER_ERRORS, ids=[c.__name__ for c in USER_ERRORS])
def test_user_error_classes_keep_their_builtin_base_and_have_a_hint(cls: type) -> None:
    assert issubclass(cls, UserError)
    builtin = [
        b for b in cls.__mro__ if b.__module__ == "builtins" and b not in (Exception, BaseException, object)
    ]
    assert builtin, f"{cls.__name__} lost its built-in base (callers catch ValueError, KeyError, OSError...)"
    assert cls.hint, f"{cls.__name__} has no hint"
    assert is_user_error(cls("x"))


def _raiser(exc: BaseException):
    def main(argv: list[str]) -> int:
        raise exc

    return main


def test_run_cli_prints_the_error_and_its_hint_and_returns_2(capsys, monkeypatch) -> None:
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    assert run_cli(_raiser(DataError("manifest of dataset 'X' not found: /p")), []) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: manifest of dataset 'X' not found: /p"
    assert err[1].startswith("hint: re-run preprocessing") and err[1].endswith(
        "(traceback: --debug or FORGERY_BENCH_DEBUG=1)"
    )
    assert len(err) == 2
    # a marked built-in exception is a user error, its class unchanged; the message's lines are kept
    assert run_cli(_raiser(user_error(TypeError("bad option\n  details"), "fix it")), []) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: bad option",
        "  details",
        "hint: fix it (traceback: --debug or FORGERY_BENCH_DEBUG=1)",
    ]
    assert run_cli(lambda argv: None, []) == 0 and run_cli(lambda argv: 3, []) == 3


def test_debug_shows_the_traceback_and_bugs_always_do(monkeypatch) -> None:
    monkeypatch.setenv(DEBUG_ENV, "")  # off; recorded, so the variable --debug sets is removed afterwards
    seen = []
    with pytest.raises(DataError):
        run_cli(lambda argv: seen.append(argv) or _raiser(DataError("x"))(argv), ["--out", "o", "--debug"])
    assert seen == [["--out", "o"]]  # --debug is taken out before the parser sees it
    assert os.environ[DEBUG_ENV] == "1"  # and passed on to cell processes
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(GridError):
        run_cli(_raiser(GridError("x")), [])
    monkeypatch.setenv(DEBUG_ENV, "0")
    assert run_cli(_raiser(GridError("x")), []) == 2
    with pytest.raises(ZeroDivisionError):  # not bad input: a bug keeps its traceback
        run_cli(_raiser(ZeroDivisionError("bug")), [])
    with pytest.raises(TypeError):  # an unmarked built-in error is not bad input either
        run_cli(_raiser(TypeError("x")), [])


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_every_entry_point_runs_main_through_run_cli(module: str) -> None:
    tree = ast.parse((ROOT / ENTRY_POINTS[module]).read_text())
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "run_cli" and n.args
        and getattr(n.args[0], "id", "") == "main"
    ]  # fmt: skip
    assert calls, f"python -m {module} does not run main through datamodules.errors.run_cli"


def test_the_real_command_line_with_and_without_debug(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(DEBUG_ENV, None)
    args = [sys.executable, "-m", "datamodules.preprocess", "--dataset", "CDF-v2", "--root", str(tmp_path / "nope"),
            "--out", str(tmp_path / "o")]  # fmt: skip
    plain = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    lines = plain.stderr.strip().splitlines()
    assert lines[0] == f"error: layout 'celebdf_v2': missing folder {tmp_path / 'nope'} (Celeb-DF root)"
    assert lines[1].startswith("hint: compare the folder with README 'Datasets'") and len(lines) == 2
    debug = subprocess.run([*args, "--debug"], env=env, capture_output=True, text=True, timeout=300)
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("datamodules.datasets.base.DatasetLayoutError: ")

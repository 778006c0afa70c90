"""Lint policy: ruff (style and the public docstrings) passes on the repository, and its docstring rules fire.

mypy is not run here: a cold run over the configured paths takes about a minute on a loaded two-core
machine, so ``make lint`` runs it (ruff check, ruff format --check, mypy).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is not installed")


def _ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ruff_check_passes_on_the_repository():
    r = _ruff(".")
    assert r.returncode == 0, r.stdout + r.stderr


def test_docstring_rules_fire_on_a_public_function_and_spare_private_modules(tmp_path):
    code = "def score(x: float) -> float:\n    return 2 * x\n"
    (tmp_path / "public.py").write_text('"""A module."""\n\n' + code)
    (tmp_path / "_private.py").write_text(code)
    r = _ruff("--config", str(ROOT / "pyproject.toml"), "--output-format", "concise", ".", cwd=tmp_path)
    assert "public.py:3:5: D103" in r.stdout, r.stdout + r.stderr
    assert "_private.py" not in r.stdout, r.stdout


def test_mypy_is_configured_on_the_contracts():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    files = cfg["tool"]["mypy"]["files"]
    for path in ("benchmark", "detectors/base.py", "datamodules/batch.py", "datamodules/spec.py"):
        assert path in files, path
        assert (ROOT / path).exists(), path
    assert any(d.startswith("mypy") for d in cfg["project"]["optional-dependencies"]["dev"])
    assert "mypy" in (ROOT / "Makefile").read_text().split("\nlint:")[1].split("\n\n")[0]

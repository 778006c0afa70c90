"""Optional extras: a missing one is a one-line error naming the extra that installs it."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from datamodules.optional import EXTRAS, MissingExtraError, require

ROOT = Path(__file__).resolve().parents[1]


def _hide(monkeypatch, name: str) -> None:
    """Make ``import name`` (and its submodules) fail as if the package were not installed."""
    for mod in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, name, None)  # import of a None entry raises ImportError


@pytest.mark.parametrize("module", sorted(EXTRAS))
def test_missing_extra_names_the_extra(monkeypatch, module):
    _hide(monkeypatch, module)
    extra = EXTRAS[module][0]
    with pytest.raises(
        MissingExtraError, match=rf"needs the optional package .*pip install 'forgery-bench\[{extra}\]'"
    ):
        require(module, "something")


def test_present_package_is_returned():
    assert require("json", "anything").dumps([1]) == "[1]"


def test_extras_are_declared_and_dev_installs_them():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = meta["optional-dependencies"]
    core = " ".join(meta["dependencies"])
    for extra, dist in EXTRAS.values():
        assert any(d.startswith(dist) for d in extras[extra]), (extra, dist)
        assert dist not in core, f"{dist} is an extra, not a core dependency"
        assert extra in extras["dev"][0]


def test_slurm_launcher_without_submitit_is_a_clear_error(monkeypatch, tmp_path):
    from benchmark.runner.launchers import SlurmLauncher

    _hide(monkeypatch, "submitit")
    with pytest.raises(MissingExtraError, match=r"--launcher slurm needs .*forgery-bench\[slurm\]"):
        SlurmLauncher(tmp_path).run([], None)

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


def test_license_is_an_spdx_string_with_a_setuptools_that_reads_it():
    """A license table makes setuptools print a deprecation warning at every install (PEP 639)."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert isinstance(cfg["project"]["license"], str), "license must be an SPDX expression, not a table"
    req = [r for r in cfg["build-system"]["requires"] if r.startswith("setuptools")]
    assert req and req[0].replace(" ", "").startswith("setuptools>="), req
    major = int(req[0].split(">=")[1].split(".")[0])
    assert major >= 77, f"setuptools {major} predates SPDX license strings (77)"


def test_wandb_logging_without_wandb_is_a_clear_error(monkeypatch, tmp_path):
    from benchmark.runner.cell import _trainer
    from benchmark.runner.cells import Cell, CellConfig, DatasetSpec, Runtime, SetSpec
    from detectors import get_detector_class

    recipe = get_detector_class("xception").resolve_settings().recipe
    config = CellConfig(
        grid="g",
        detector="xception",
        seed=0,
        train_set=SetSpec("A", "A"),
        test_sets=(SetSpec("A", "A"),),
        recipe=recipe,
        datasets={"A": DatasetSpec("folder")},
        origin="demo",
    )
    cell = Cell(config, Runtime(work_root=tmp_path, wandb=True, progress_bar=False))
    _hide(monkeypatch, "wandb")
    with pytest.raises(MissingExtraError, match=r"--wandb logging needs .*forgery-bench\[wandb\]"):
        _trainer(cell, tmp_path, [])


def test_insightface_backend_without_insightface_is_a_clear_error(monkeypatch):
    from datamodules.media import faces

    faces._insightface_app.cache_clear()
    _hide(monkeypatch, "insightface")
    try:
        with pytest.raises(
            MissingExtraError, match=r"insightface face backend needs .*forgery-bench\[insightface\]"
        ):
            faces._insightface_app("buffalo_l")
    finally:
        faces._insightface_app.cache_clear()

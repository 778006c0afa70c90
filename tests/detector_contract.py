"""The contract every registered detector passes, as reusable checks ``check(name, tmp_path)``.

``tests/test_detector_contract.py`` runs every check of :data:`CHECKS` over ``list_detectors()``, so a new
detector is tested the day it is registered; ``tests/test_extending.py`` runs the same checks on the toy
detector that docs/EXTENDING.md builds. A new check added to :data:`CHECKS` applies to both.
"""

from __future__ import annotations

import inspect
import json
import warnings
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import torch

from benchmark.runner.score_writer import ScoreWriter
from detectors import (
    DetectorOutput,
    Recipe,
    create_detector,
    get_detector_class,
    load_detector,
)
from tests.helpers import SyntheticDataModule, make_batch, quiet_trainer


def tiny(name: str):
    """Detector ``name`` built with its ``tiny_config`` (offline: random weights, warnings silenced)."""
    cls = get_detector_class(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_detector(name, **cls.tiny_config)


def _json(v):
    return json.loads(json.dumps(v, default=str))


def check_builds_offline_in_tiny_config(name: str, tmp_path: Path) -> None:
    model = tiny(name)
    assert model.name == name
    assert model.num_trainable_parameters() > 0
    assert model.default_recipe.source, f"{name}: the paper recipe must cite its source"


def check_forward_shape_and_finite_loss(name: str, tmp_path: Path) -> None:
    model = tiny(name).eval()
    batch = make_batch(model.data_spec, n=4)
    with torch.no_grad():
        out = model(batch)
    assert isinstance(out, DetectorOutput)
    assert out.logits.shape == (4,)
    assert torch.isfinite(out.logits).all()
    model.train()
    losses = model.loss(batch, model(batch))
    assert "loss" in losses and losses["loss"].ndim == 0 and torch.isfinite(losses["loss"])


def check_one_step_updates_trainable_and_not_frozen(name: str, tmp_path: Path) -> None:
    model = tiny(name)
    model.train()
    batch = make_batch(model.data_spec, n=4)
    opt = model.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    frozen_buffers = {n: b.detach().clone() for m in model._frozen for n, b in m.named_buffers()}
    opt.zero_grad()
    model.loss(batch, model(batch))["loss"].backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not no_grad, f"{name}: trainable parameters that receive no gradient: {no_grad[:10]}"
    opt.step()
    # A parameter with a non-zero gradient must move (a zero gradient can happen legitimately, e.g. dead ReLUs).
    stuck = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and p.grad.abs().sum() > 0 and torch.equal(p, trainable[n])
    ]
    assert not stuck, f"{name}: parameters with a gradient did not change after a step: {stuck[:10]}"
    assert any(not torch.equal(p, trainable[n]) for n, p in model.named_parameters() if p.requires_grad)
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), f"{name}: frozen parameter {n} changed"
    for m in model._frozen:
        for n, b in m.named_buffers():
            assert torch.equal(b, frozen_buffers[n]), f"{name}: frozen buffer {n} changed"


def check_checkpoint_round_trip(name: str, tmp_path: Path) -> None:
    model = tiny(name)
    dm = SyntheticDataModule(model.data_spec, n=4, batch_size=4)
    trainer = quiet_trainer(max_steps=1, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = load_detector(path, expected=name)
    model.eval(), again.eval()
    batch = make_batch(model.data_spec, n=4)
    with torch.no_grad():
        assert torch.equal(model(batch).logits, again(batch).logits)


def check_fast_dev_run_fit_and_test(name: str, tmp_path: Path) -> None:
    model = tiny(name)
    dm = SyntheticDataModule(model.data_spec, n=4, batch_size=4, test_sets=("a", "b"))
    writer = ScoreWriter()
    trainer = quiet_trainer(fast_dev_run=True, callbacks=[writer])
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm)
    rows = writer.rows
    assert {r["dataset"] for r in rows} == {"a", "b"}
    assert all(0.0 <= r["score"] <= 1.0 for r in rows)
    assert set(rows[0]) >= {"sample_id", "video_id", "dataset", "method", "label", "score"}


def check_resolved_settings_are_what_the_constructor_receives(name: str, tmp_path: Path) -> None:
    """The reference for "what a detector is built with" is the detector itself: Lightning's saved
    hyper-parameters are the arguments every ``__init__`` of the class chain actually received."""
    cls = get_detector_class(name)
    over = {**cls.tiny_config, "lr": 3e-5, "epochs": 3}
    settings = cls.resolve_settings(**over)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_detector(name, **over)
    hparams = dict(model.hparams)
    assert {k: _json(hparams[k]) for k in settings.arch} == _json(settings.arch)
    assert set(hparams) <= set(settings.arch) | {f.name for f in fields(Recipe)}
    assert settings.recipe == model.recipe and settings.paper_recipe == cls.default_recipe
    assert settings.recipe_overrides == {"lr": 3e-5, "epochs": 3}
    assert settings.arch_overrides == cls.tiny_config
    assert settings.recipe_changes() == model.recipe.diff(cls.default_recipe)


def check_architecture_defaults_are_concrete_in_the_signature(name: str, tmp_path: Path) -> None:
    """No ``None`` that means "look at a class attribute": the built detector matches the signature."""
    cls = get_detector_class(name)
    _, defaults = cls.constructor_arguments()
    params = inspect.signature(cls).parameters
    for key in ("arch", "input_size", "mean", "std", "encoder_arch", "clip_model", "model_name"):
        if key in defaults:
            assert defaults[key] is not None, f"{name}.{key}"
            if key in params:
                assert params[key].default == defaults[key]


def check_every_reference_resolves(name: str, tmp_path: Path) -> None:
    """Each reference (``paper``, and ``released`` when declared) resolves to its own recipe, which cites its
    source, sets only constructor arguments the detector has, and is what the built detector trains with."""
    cls = get_detector_class(name)
    arch_keys, _ = cls.constructor_arguments()
    if len(cls.references()) > 1:
        assert "reference" in arch_keys, f"{name} declares released_recipe but takes no reference argument"
    for reference in cls.references():
        over = {"reference": reference} if reference != "paper" else {}
        settings = cls.resolve_settings(**cls.tiny_config, **over)
        assert settings.reference == reference
        assert settings.reference_recipe == cls.recipe_for(reference), (name, reference)
        assert settings.reference_recipe.source, f"{name}: the {reference} recipe must cite its source"
        ref_args = cls.reference_arguments.get(reference, {})
        unknown = set(ref_args) - arch_keys
        assert not unknown, f"{name}: reference_arguments[{reference!r}] sets unknown arguments {unknown}"
        # the reference's arguments are reported as defaults; an explicit override (tiny_config) wins
        assert {k: settings.arch[k] for k in ref_args} == {
            k: settings.arch_overrides.get(k, v) for k, v in ref_args.items()
        }
        # built as the reference says (its own arguments over the tiny config, which targets the paper build)
        build = {k: v for k, v in cls.tiny_config.items() if k not in ref_args}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = create_detector(name, **build, **over)
        assert model.reference == reference and model.recipe == cls.recipe_for(reference), (name, reference)
        assert all(_json(model.hparams[k]) == _json(v) for k, v in ref_args.items()), (name, reference)


def check_flops_and_parameter_count(name: str, tmp_path: Path) -> None:
    """The cost model's counter (``benchmark.perf.flops.count``) runs on the detector and agrees with its
    trainable-parameter count."""
    from benchmark.perf.flops import count

    f = count(name, tiny=True)
    model = tiny(name)
    assert f.detector == name and f.input_size == model.data_spec.input_size
    assert f.trainable_params == model.num_trainable_parameters() > 0
    assert f.total_params >= f.trainable_params
    assert f.forward > 0 and f.train_step > 0
    assert (f.epochs, f.batch_size) == (model.recipe.epochs, model.recipe.batch_size)


def check_the_runner_plans_a_grid_with_it(name: str, tmp_path: Path) -> None:
    """A grid naming the detector (with its tiny config) plans one cell per seed carrying exactly the
    resolved recipe (its hashed part: not the descriptive ``source``), the overrides and the detector's
    ``data_defaults`` under the grid's data section."""
    from benchmark.runner.data_config import parse_data_config
    from benchmark.runner.grid import load_grid
    from benchmark.runner.plan import plan_cells
    from tests.runner_fixtures import write_data_config, write_grid

    cls = get_detector_class(name)
    tiny_cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in cls.tiny_config.items()}
    write_data_config(tmp_path)
    grid = write_grid(
        tmp_path,
        "contract",
        detectors=[name],
        seeds=[0, 1],
        defaults={"detector": {**tiny_cfg, "epochs": 1}, "data": {"num_workers": 0}},
    )
    cells = plan_cells(load_grid(grid), parse_data_config(tmp_path / "datasets.yaml"))
    assert [(c.config.detector, c.config.seed) for c in cells] == [(name, 0), (name, 1)]
    assert len({c.cell_id for c in cells}) == 2
    settings = cls.resolve_settings(**tiny_cfg, epochs=1)
    for c in cells:
        assert _json(c.config.recipe.experiment_dict()) == _json(settings.recipe.experiment_dict())
        assert _json(c.config.arch_overrides) == _json(settings.arch_overrides)
        assert c.config.data == _json({**cls.data_defaults, "num_workers": 0})


#: every check of the contract, in the order they run
CHECKS: tuple[Callable[[str, Path], None], ...] = (
    check_builds_offline_in_tiny_config,
    check_forward_shape_and_finite_loss,
    check_one_step_updates_trainable_and_not_frozen,
    check_checkpoint_round_trip,
    check_fast_dev_run_fit_and_test,
    check_resolved_settings_are_what_the_constructor_receives,
    check_architecture_defaults_are_concrete_in_the_signature,
    check_every_reference_resolves,
    check_flops_and_parameter_count,
    check_the_runner_plans_a_grid_with_it,
)


def check_id(check: Callable) -> str:
    return check.__name__.removeprefix("check_")

"""SBI (detectors.timm_cnn.sbi): the released architecture's size, recipe and schedule, SAM through Lightning,
and training batches of reals paired with their own self-blends.

References: the parameter count is derived from EfficientNet-B4's layer table (tests/deepfakebench_reference)
plus the released ``Linear(1792, 2)``; the schedule from ``src/utils/scheduler.py``'s formula; the SAM step
from the paper's equations (as in tests/test_sam.py), not from our module.
"""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch

from benchmark.runner.data_config import parse_data_config
from benchmark.runner.grid import GridError, load_grid
from benchmark.runner.plan import data_settings, plan_cells
from datamodules.loading.datamodule import ForgeryDataModule
from datamodules.spec import IMAGENET_MEAN
from detectors import create_detector, get_detector_class
from detectors.sam import SAM
from tests.deepfakebench_reference import efficientnet_b4_shapes
from tests.helpers import SyntheticDataModule, quiet_trainer
from tests.runner_fixtures import write_data_config, write_grid
from tests.test_datamodule import _write_dataset


def _tiny(**over):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {"arch": "test_efficientnet", "pretrained": False, "input_size": 32, "drop_rate": 0.0}
        return create_detector("sbi", **{**kw, "drop_path_rate": 0.0, **over})


def test_parameter_count_is_the_released_networks_with_one_logit():
    shapes = efficientnet_b4_shapes("net")
    features = sum(math.prod(s) for k, s in shapes.items() if k.endswith((".weight", ".bias")))
    released = features + 1792 * 2 + 2  # efficientnet_pytorch B4 + _fc = Linear(1792, 2)
    model = create_detector("sbi", pretrained=False)
    assert model.num_trainable_parameters() == released - (1792 + 1)  # one row of the 2-way head fewer
    assert released == 17_552_202


def test_defaults_follow_the_released_code():
    cls = get_detector_class("sbi")
    r, arch = cls.default_recipe, cls.resolve_settings().arch
    assert (r.optimizer, r.lr, r.momentum, r.weight_decay, r.epochs, r.batch_size) == (
        "sgd",
        1e-3,
        0.9,
        0.0,
        100,
        32,
    )
    assert (r.frames_train, r.frames_test, r.scheduler) == (8, 32, None)
    assert arch["sam_rho"] == 0.05 and arch["lr_decay_start"] == 0.75 and arch["input_size"] == 380
    assert arch["arch"] == "tf_efficientnet_b4.ap_in1k" and arch["mean"] == (0.0, 0.0, 0.0)
    assert arch["std"] == (1.0, 1.0, 1.0) and arch["drop_rate"] == 0.4 and arch["bn_momentum"] == 0.01
    assert cls.data_defaults == {"train_methods": [], "sbi_prob": 1.0}
    m = _tiny()
    assert m.data_spec.paired and m.net.backbone.bn1.momentum == 0.01
    dfb = get_detector_class("sbi_deepfakebench")
    a = dfb.resolve_settings().arch
    assert a["sam_rho"] == 0.0 and a["deepfakebench_compat"] and a["mean"] == IMAGENET_MEAN
    assert (dfb.default_recipe.optimizer, dfb.default_recipe.epochs, dfb.default_recipe.batch_size) == (
        "adam",
        50,
        48,
    )


def _released_lr(base: float, n_epoch: int, epoch: int) -> float:
    """``LinearDecayLR(optimizer, n_epoch, int(n_epoch / 4 * 3)).get_lr()`` after ``epoch`` scheduler steps."""
    start_decay = int(n_epoch / 4 * 3)
    if epoch > start_decay:
        return base - base / (n_epoch - start_decay) * (epoch - start_decay)
    return base


def test_learning_rate_schedule_is_the_released_linear_decay():
    model = _tiny(epochs=100)
    conf = model.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]["scheduler"]
    assert isinstance(opt, SAM) and conf["lr_scheduler"]["interval"] == "epoch"
    seen = []
    with warnings.catch_warnings():  # stepping the schedule alone, without optimiser steps
        warnings.simplefilter("ignore")
        for _ in range(100):
            seen.append(opt.param_groups[0]["lr"])
            sched.step()
    assert seen == pytest.approx([_released_lr(1e-3, 100, e) for e in range(100)], rel=1e-12, abs=1e-15)
    assert seen[75] == 1e-3 and seen[99] == pytest.approx(1e-3 / 25)


def test_sam_runs_inside_lightning_as_the_papers_two_step_update():
    model = _tiny(lr=0.5)
    dm = SyntheticDataModule(model.data_spec, n=4, batch_size=4)
    batch = next(iter(dm.train_dataloader()))
    assert batch.label.tolist() == [0, 0, 1, 1]
    ref = copy.deepcopy(model).train()

    # the reference: g at w, e = rho g / ||g||, g_sam at w + e, then SGD (first step: w -= lr * g_sam)
    params = [p for p in ref.parameters() if p.requires_grad]
    loss_w = ref.loss(batch, ref(batch))["loss"]
    g = torch.autograd.grad(loss_w, params)
    norm = torch.sqrt(sum((gi**2).sum() for gi in g))
    with torch.no_grad():
        e = [0.05 * gi / norm for gi in g]
        for p, ei in zip(params, e, strict=True):
            p.add_(ei)
    loss_we = ref.loss(batch, ref(batch))["loss"]
    g_sam = torch.autograd.grad(loss_we, params)
    with torch.no_grad():
        for p, ei, gs in zip(params, e, g_sam, strict=True):
            p.sub_(ei).sub_(0.5 * gs)

    trainer = quiet_trainer(max_steps=1, limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=dm)
    assert isinstance(trainer.optimizers[0], SAM) and not trainer.optimizers[0].perturbed
    for (name, a), b in zip(model.state_dict().items(), ref.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)  # BN statistics too: two passes
    # the logged training loss is the one at w (the first pass), as in the released loop
    logged = float(trainer.callback_metrics["train/loss_step"])
    assert logged == pytest.approx(float(loss_w.detach()), rel=1e-5) and logged != pytest.approx(
        float(loss_we.detach()), rel=1e-5
    )


def test_sam_refuses_gradient_accumulation():
    model = _tiny()
    dm = SyntheticDataModule(model.data_spec, n=4, batch_size=4)
    trainer = quiet_trainer(max_steps=1, limit_val_batches=0, accumulate_grad_batches=2)
    with pytest.raises(ValueError, match="accumulate_grad_batches must be 1"):
        trainer.fit(model, datamodule=dm)


def test_training_batches_are_reals_each_with_its_own_blend(tmp_path):
    manifest = _write_dataset(
        tmp_path,
        "src",
        {"train": {"real": 2, "A": 2}, "val": {"real": 1, "A": 1}, "test": {"real": 1, "A": 1}},
    )
    model = _tiny(input_size=64)
    settings = data_settings("sbi", {"num_workers": 0})
    assert settings == {"train_methods": [], "sbi_prob": 1.0, "num_workers": 0}
    dm = ForgeryDataModule(model.data_spec, "src", ["src"], {"src": manifest}, batch_size=6, **settings)
    batch = next(iter(dm.train_dataloader()))
    assert batch.label.tolist() == [0, 0, 0, 1, 1, 1] and set(batch.method[3:]) == {"sbi"}
    assert [v + "#sbi" for v in batch.video_id[:3]] == batch.video_id[3:]  # fake i = blend of real i
    assert all(m == "real" for m in batch.method[:3])  # no real fake of the training split
    assert set(dm.val_set.rows["method"]) == {"real", "A"}  # validation on the source's real fakes


def test_planner_applies_the_detectors_data_defaults_under_the_grid(tmp_path):
    write_data_config(tmp_path)
    data = parse_data_config(tmp_path / "datasets.yaml")
    grid = load_grid(write_grid(tmp_path, detectors=["sbi", "resnet34"]))
    sbi, resnet = plan_cells(grid, data)
    assert sbi.config.data == {"train_methods": [], "sbi_prob": 1.0, "num_workers": 0}
    assert resnet.config.data == {"num_workers": 0}  # other detectors: unchanged (and so are their ids)
    over = load_grid(
        write_grid(tmp_path, "over", detectors=["sbi"], per_detector={"sbi": {"data": {"sbi_prob": 0.5}}})
    )
    assert plan_cells(over, data)[0].config.data["sbi_prob"] == 0.5


def test_unknown_data_default_is_a_grid_error(monkeypatch):
    monkeypatch.setattr(get_detector_class("sbi"), "data_defaults", {"sbi_probability": 1.0})
    with pytest.raises(GridError, match=r"detector sbi: data_defaults \['sbi_probability'\]"):
        data_settings("sbi", {})

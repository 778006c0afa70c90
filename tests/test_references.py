"""``reference="paper"`` vs ``reference="released"``: what each builds and trains, checked against the
released code's facts (not against our own modules).

* Epochs: DeepfakeBench's ``training/train.py`` (8a4a7bf) and Forensics Adapter's ``train.py`` (a4cc94f)
  loop ``for epoch in range(config['start_epoch'], config['nEpochs'] + 1)`` with ``start_epoch: 0``:
  ``nEpochs + 1`` epochs; the Trainer a cell builds runs exactly the recipe's count.
* EfficientNet-B4: DeepfakeBench's ``training/networks/efficientnetb4.py`` builds ``efficientnet_pytorch``
  0.7.1's B4 (``Conv2dStaticSamePadding`` computed for ``image_size=380``, batch norm
  ``momentum = 1 - 0.99``, ``eps = 1e-3``) and replaces its stem with ``nn.Conv2d(inc, 48, 3, stride=2,
  bias=False)``; timm's ``efficientnet_b4`` is PyTorch-padded with batch norm eps 1e-5 / momentum 0.1.
* Forensics Adapter's fusion: ``Adapter.fuse`` builds ``Fusion(clip_dim, num_features)`` inside the
  forward, so the released code never trains it (frozen here); the paper trains it.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn

from benchmark.runner.cell import _trainer
from benchmark.runner.cells import Runtime
from benchmark.runner.data_config import parse_data_config
from benchmark.runner.grid import load_grid
from benchmark.runner.plan import plan_cells
from datamodules.spec import HALF
from detectors import create_detector, get_detector_class
from tests.helpers import SyntheticDataModule, make_batch
from tests.runner_fixtures import write_data_config, write_grid

N_EPOCHS = {"xception": 10, "ucf": 5, "forensics_adapter": 60}  # the configs' nEpochs


class _Epochs(L.Callback):
    def __init__(self) -> None:
        self.started = 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.started += 1


@pytest.mark.parametrize(
    "detector", ["ucf", "xception", pytest.param("forensics_adapter", marks=pytest.mark.slow)]
)
def test_the_trainer_runs_the_references_epochs(tmp_path: Path, detector: str):
    write_data_config(tmp_path)
    tiny = {
        k: list(v) if isinstance(v, tuple) else v for k, v in get_detector_class(detector).tiny_config.items()
    }
    runs = {}
    for reference in ("paper", "released"):
        grid = write_grid(
            tmp_path,
            f"g-{reference}",
            detectors=[detector],
            defaults={
                "detector": {**tiny, "reference": reference, "batch_size": 4, "eval_batch_size": 4},
                "trainer": {"limit_train_batches": 1, "limit_val_batches": 1},
            },
        )
        data = parse_data_config(tmp_path / "datasets.yaml")
        rt = Runtime(store_root=tmp_path / "store", work_root=tmp_path / "cells", progress_bar=False)
        (cell,) = plan_cells(load_grid(grid), data, runtime=rt)
        counter = _Epochs()
        trainer, _ = _trainer(cell, cell.cell_dir, [counter])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = create_detector(detector, **cell.config.overrides)
            trainer.fit(model, datamodule=SyntheticDataModule(model.data_spec, n=8, batch_size=4))
        runs[reference] = counter.started
    assert runs == {"paper": N_EPOCHS[detector], "released": N_EPOCHS[detector] + 1}


def _tf_same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    """efficientnet_pytorch's Conv2dStaticSamePadding for a square ``size`` input: (left/top, right/bottom)."""
    total = max((math.ceil(size / s) - 1) * s + (k - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def _efficientnet(reference: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_detector("efficientnet_b4", reference=reference, pretrained=False, input_size=64)


def test_efficientnet_paper_build_is_timms():
    m = _efficientnet("paper")
    bb = m.net.backbone
    assert m.hparams["arch"] == "efficientnet_b4" and m.data_spec.mean != HALF
    assert type(bb.conv_stem) is nn.Conv2d and bb.conv_stem.padding == (1, 1)
    bns = [x for x in bb.modules() if isinstance(x, nn.BatchNorm2d)]
    assert bns and all(b.eps == 1e-5 and b.momentum == 0.1 for b in bns)


def test_efficientnet_released_build_is_deepfakebenchs():
    m = _efficientnet("released")
    bb = m.net.backbone
    assert m.hparams["arch"] == "tf_efficientnet_b4.aa_in1k" and m.data_spec.mean == m.data_spec.std == HALF
    x = torch.zeros(1, 48, 9, 9)
    stem = bb.conv_stem  # DeepfakeBench's nn.Conv2d(3, 48, 3, stride=2, bias=False): no padding
    assert stem(torch.zeros(1, 3, 9, 9)).shape[-1] == 4 and stem.bias is None
    size = math.ceil(380 / 2)  # efficientnet_pytorch's bookkeeping after its stride-2 stem
    for stage in bb.blocks:
        for block in stage:
            conv = block.conv_dw
            k, s = conv.kernel_size[0], conv.stride[0]
            lo, hi = _tf_same_pad(size, k, s)
            x = torch.zeros(1, conv.in_channels, 16, 16)
            out = conv(x).shape[-1]
            assert out == (16 + lo + hi - k) // s + 1, (size, k, s)  # the static padding for 380 px
            size = math.ceil(size / s)
    bns = [x for x in bb.modules() if isinstance(x, nn.BatchNorm2d)]
    assert bns and all(b.eps == 1e-3 and b.momentum == 0.01 for b in bns)


def test_deepfakebench_build_keeps_the_pretrained_depthwise_weights():
    import timm

    from detectors.timm_cnn.blocks import make_deepfakebench_compatible

    net = timm.create_model("tf_efficientnet_b4", pretrained=False, num_classes=0)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    make_deepfakebench_compatible(net)
    after = dict(net.named_parameters())
    changed = [n for n, p in before.items() if not torch.equal(p, after[n])]
    assert changed == ["conv_stem.weight"]  # only the stem is new, as DeepfakeBench's


@pytest.mark.parametrize("reference,trainable", [("paper", True), ("released", False)])
def test_forensics_adapter_fusion_trainability(reference: str, trainable: bool):
    cls = get_detector_class("forensics_adapter")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = create_detector("forensics_adapter", **cls.tiny_config, reference=reference)
    fusion = list(m.adapter.fusions.parameters())
    assert fusion and all(p.requires_grad is trainable for p in fusion)
    grouped = {id(p) for g in m._checked_param_groups() for p in g["params"]}
    assert all((id(p) in grouped) is trainable for p in fusion)
    before = [p.detach().clone() for p in fusion]
    m.train()
    batch = make_batch(m.data_spec, n=4, paired=True)
    opt = torch.optim.SGD([p for g in m._checked_param_groups() for p in g["params"]], lr=0.1)
    m.loss(batch, m(batch))["loss"].backward()
    opt.step()
    moved = [not torch.equal(a, b) for a, b in zip(before, fusion, strict=True)]
    assert all(moved) if trainable else not any(moved)
    assert m.patch_rule.counting == ("stated" if reference == "paper" else "released")
    assert m.boundary_decoder.mask_output is (reference == "paper")


def test_unknown_reference_is_refused():
    with pytest.raises(ValueError, match=r"unknown reference 'github'.*\['paper', 'released'\]"):
        get_detector_class("xception").resolve_settings(reference="github")

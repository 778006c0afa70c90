"""Forensics Adapter throughput against a bare frozen-CLIP forward of the same backbone.

Figures (images/s, fp32 and bf16 autocast): the baseline is one ``visual(image)`` forward of the frozen
CLIP under ``no_grad`` at CLIP's input size; FA inference runs pass 1 (up to the last fusion layer), the
adapter, and pass 2 through all blocks with the query tokens; an FA training step adds the loss, the
backward through the adapter and through pass 2's activations (never CLIP's weights), and an Adam step.
The ratios make the cost of the two CLIP passes visible (the paper's ViT-L/14 needs 15 + 24 blocks).

Full mode: ViT-L/14 (the paper's backbone), batch 8, on CUDA; on a CPU-only machine ViT-B/16, batch 4
(ViT-L/14 training steps take minutes per image there). ``FA_PERF_BACKBONE=ViT-L-14-quickgelu`` forces a
backbone. Quick mode: the tiny test CLIP (L/14-shaped: patch 14, CLIP input 56 < adapter input 64), batch
4, a smoke run of the code path whose ratios say little about the real backbones. Weights are random
(timing does not depend on them). bf16 autocast on a CPU without native bf16 matmuls is much slower than
fp32; that figure is measured anyway so the table shows it.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable

import torch

from benchmark.perf.timing import Figure, measure, throughput, with_ratio
from datamodules.loading.synthetic import make_batch
from detectors import create_detector
from detectors.forensics_adapter.detector import ForensicsAdapter

TOPIC = "detectors_fa"


def _autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(quick: bool) -> list[Figure]:
    """Time Forensics Adapter (Cui et al., CVPR 2025) inference and training against the bare frozen CLIP."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if quick:
        kw, n, repeat = dict(ForensicsAdapter.tiny_config), 4, 3
        kw.update(tiny_vision={"image_size": 56, "patch_size": 14}, adapter_patch=16)
        backbone = "tiny CLIP"
    else:
        default = "ViT-L-14-quickgelu" if device.type == "cuda" else "ViT-B-16-quickgelu"
        backbone = os.environ.get("FA_PERF_BACKBONE", default)
        kw, n, repeat = {"clip_model": backbone, "clip_pretrained": None}, (8 if "L-14" in backbone else 4), 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = create_detector("forensics_adapter", **kw)
    if not isinstance(built, ForensicsAdapter):
        raise TypeError(f"'forensics_adapter' built a {type(built).__name__}, not a ForensicsAdapter")
    model = built.to(device)
    batch = make_batch(model.data_spec, n).to(device)
    clip_size = model.geometry.image_size
    clip_image = torch.nn.functional.interpolate(batch.image, size=clip_size, mode="bilinear")
    opt = model.configure_optimizers()
    tag = f"{backbone} b{n} {device.type}"
    figs: list[Figure] = []

    for bf16 in (False, True):
        prec = "bf16" if bf16 else "fp32"

        def timed(fn: Callable[[], object], bf16: bool = bf16) -> list[float]:
            def call() -> None:
                with _autocast(device, bf16):
                    fn()
                _sync(device)

            return measure(call, repeat=repeat, warmup=1)

        def bare() -> None:
            with torch.no_grad():
                model.visual(clip_image)

        def infer() -> None:
            model.eval()
            with torch.no_grad():
                model(batch)

        def train_step() -> None:
            model.train()
            opt.zero_grad(set_to_none=True)
            model.loss(batch, model(batch))["loss"].backward()
            opt.step()

        base = throughput(TOPIC, f"bare frozen CLIP forward, {prec}, {tag}", n, timed(bare))
        inf = throughput(TOPIC, f"FA inference, {prec}, {tag}", n, timed(infer))
        trn = throughput(TOPIC, f"FA training step, {prec}, {tag}", n, timed(train_step))
        g, q = model.geometry, model.num_queries
        inf.note = f"{max(model.fusion_map.values())} + {g.layers} CLIP blocks, pass 2 with {q} extra tokens"
        figs += [base, with_ratio(inf, base), with_ratio(trn, base)]
    return figs

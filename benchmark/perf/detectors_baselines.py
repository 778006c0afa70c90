"""Training throughput of the baselines: the suite's Lightning step against the bare model.

For Xception, EfficientNet-B4 and UCF (full-size networks, random init) and each numeric option
(fp32; bf16 autocast where the device supports it; channels_last), two figures on the SAME tensors:

* ``bare``: ``forward -> loss -> zero_grad -> backward -> Adam step`` in a plain loop;
* ``lightning``: ``Trainer.fit`` on a loader that yields the same pre-built batch, timed per step from
  one ``on_train_batch_start`` to the next (so batch transfer, the batch checks, logging and every hook are
  inside), with its ratio to ``bare``. Target: >= 0.90x bare, i.e. the suite costs under 10%.

Bare and Lightning alternate over several rounds (the load of a shared machine drifts). Quick mode (smoke
run): fp32 only, 64 px inputs, batch 4, 2 rounds of 1 timed step. Full mode: every option, 256 px (the
recipes' size), batch 16, 3 rounds of 3 timed steps. Warm-up steps are never timed.
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
import warnings
from collections.abc import Iterator

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from benchmark.perf.timing import Figure, throughput, with_ratio
from datamodules.batch import Batch
from detectors import Detector, create_detector

TOPIC = "detectors_baselines"
DETECTORS = ("xception", "efficientnet_b4", "ucf")


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bf16_supported(device: torch.device) -> bool:
    """bf16 autocast is measured on GPUs that support it and on CPUs whose oneDNN has native bf16."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def make_paired_batch(size: int, n: int, num_methods: int = 4, seed: int = 0) -> Batch:
    """``n`` random images ``[reals; fakes]`` with method ids (valid for every detector, UCF included)."""
    g = torch.Generator().manual_seed(seed)
    half = n // 2
    label = torch.tensor([0] * half + [1] * (n - half))
    method_id = torch.tensor([0] * half + [1 + i % num_methods for i in range(n - half)])
    ids = [f"perf/{i}" for i in range(n)]
    return Batch(
        image=torch.randn(n, 3, size, size, generator=g) * 0.5,
        label=label,
        sample_id=ids,
        video_id=ids,
        dataset=["perf"] * n,
        method=["real" if v == 0 else "fake" for v in label.tolist()],
        method_id=method_id,
    )


class _Repeat(Dataset):
    def __init__(self, batch: Batch, n: int) -> None:
        self.batch, self.n = batch, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Batch:
        return self.batch


class _StepTimer(L.Callback):
    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.stamps: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        _sync(self.device)
        self.stamps.append(time.perf_counter())


def _autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager:
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def bare_step_times(
    model: Detector, batch: Batch, device: torch.device, bf16: bool, steps: int, warmup: int
) -> list[float]:
    """Seconds per training step of ``model`` on ``batch`` in a plain PyTorch loop (after ``warmup``
    steps)."""
    opt = model.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    model.train()
    times = []
    for i in range(warmup + steps):
        _sync(device)
        t0 = time.perf_counter()
        with _autocast(device, bf16):
            loss = model.loss(batch, model(batch))["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def lightning_step_times(
    model: Detector, batch: Batch, device: torch.device, bf16: bool, steps: int, warmup: int
) -> list[float]:
    """Seconds per training step of ``model`` on ``batch`` under a Lightning ``Trainer`` (after
    ``warmup``)."""
    timer = _StepTimer(device)
    n_steps = warmup + steps + 1  # intervals between consecutive step starts
    loader = DataLoader(_Repeat(batch, n_steps), batch_size=None, collate_fn=lambda b: b)
    trainer = L.Trainer(
        accelerator=device.type,
        devices=1,
        precision="bf16-mixed" if bf16 else "32-true",
        max_steps=n_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[timer],
    )
    trainer.fit(model, train_dataloaders=loader)
    # n_steps starts give n_steps - 1 whole steps (the last step's end is mixed with fit's teardown)
    intervals = [b - a for a, b in zip(timer.stamps, timer.stamps[1:], strict=False)]
    if len(intervals) < warmup + steps:
        raise RuntimeError(f"expected {warmup + steps} timed Lightning steps, got {len(intervals)}")
    return intervals[warmup : warmup + steps]


def _variants(device: torch.device, quick: bool) -> Iterator[tuple[str, bool, bool]]:
    yield "fp32", False, False
    if quick:  # a smoke run: the numeric options are measured in full mode only
        return
    if bf16_supported(device):
        yield "bf16", True, False
    yield "channels_last", False, True


def _setup(name: str, size: int, n: int, device: torch.device, channels_last: bool) -> tuple[Detector, Batch]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        model = create_detector(name, pretrained=False, input_size=size).to(device)
    batch = make_paired_batch(size, n).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        batch.image = batch.image.contiguous(memory_format=torch.channels_last)
    return model, batch


def run(quick: bool) -> list[Figure]:
    """Compare each baseline's training step in a bare loop and under Lightning, rounds interleaved."""
    device = _device()
    # rounds alternate bare and Lightning so that drifting load on a shared machine hits both alike
    size, n, steps, warmup, rounds = (64, 4, 1, 2, 2) if quick else (256, 16, 3, 2, 3)
    figs: list[Figure] = []
    for name in DETECTORS:
        for variant, bf16, channels_last in _variants(device, quick):
            models = {mode: _setup(name, size, n, device, channels_last) for mode in ("bare", "lightning")}
            times: dict[str, list[float]] = {"bare": [], "lightning": []}
            for r in range(rounds):
                for mode, timer in (("bare", bare_step_times), ("lightning", lightning_step_times)):
                    print(
                        f"[{TOPIC}] {name} {variant} {mode} round {r + 1}/{rounds}",
                        file=sys.stderr,
                        flush=True,
                    )
                    model, batch = models[mode]
                    # every Trainer.fit starts afresh (new optimiser, hooks): its first steps are warm-up
                    w = warmup if (r == 0 or mode == "lightning") else 0
                    times[mode] += timer(model, batch, device, bf16, steps, w)
            per_mode = {
                mode: throughput(
                    TOPIC,
                    f"{name} {variant} {mode} train",
                    n,
                    t,
                    note=f"{device.type}, {size}px, batch {n}, median step {statistics.median(t):.3f}s",
                )
                for mode, t in times.items()
            }
            base = per_mode["bare"]
            lit = with_ratio(per_mode["lightning"], base)
            lit.target = ">= 0.90x bare (suite overhead < 10%)"
            figs += [base, lit]
    return figs

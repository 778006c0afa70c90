"""SFAM throughput against a bare frozen-CLIP forward of the same backbone (ViT-B/16, 224 px).

Target: SFAM's modules add less than 25% on top of CLIP, i.e. SFAM's images/s >= 0.8x the bare CLIP
forward, for inference (forward) and for training (forward, loss, backward, AdamW step; CLIP itself
runs without gradients in both). Measured in fp32 and under bf16 autocast, on CUDA when available.
Weights are random (``pretrained=None``): speed does not depend on them.

Two more figures time SFAM's modules alone on cached CLIP outputs (inference; training = forward, loss,
backward, step), against the same CLIP forward: they isolate the modules' cost from the noise of a
shared machine (target >= 4x, i.e. the modules take < 25% of CLIP's time; the projection of the two
token maps into the joint space is counted with CLIP there).

The workloads are timed interleaved (CLIP, inference, training, CLIP, ...) so that load from
other processes on a shared machine hits all three alike. CPUs without native bf16 run bf16 about 10x
slower than fp32; ``--quick`` on CPU therefore measures fp32 only.
"""

from __future__ import annotations

import contextlib
import warnings

import torch

from benchmark.perf.timing import Figure, measure, throughput, with_ratio
from datamodules.loading.synthetic import make_batch

TOPIC = "detectors_sfam"
TARGET = ">= 0.80x bare CLIP (modules add < 25%)"
TARGET_MODULES = ">= 4x bare CLIP (modules < 25% of CLIP)"


def run(quick: bool) -> list[Figure]:
    """Time SFAM inference and training, and its modules alone on cached CLIP outputs, against bare CLIP."""
    from detectors import create_detector
    from sfam.detector import SFAMDetector

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cuda":
        n, repeat = (8, 3) if quick else (32, 10)
    else:
        n, repeat = (4, 2) if quick else (8, 3)
    precisions = ("fp32",) if quick and device.type == "cpu" else ("fp32", "bf16")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = create_detector("sfam", pretrained=None)
    if not isinstance(built, SFAMDetector):
        raise TypeError(f"'sfam' built a {type(built).__name__}, not an SFAMDetector")
    det = built.to(device)
    batch = make_batch(det.data_spec, n).to(device)
    opt = torch.optim.AdamW(det.trainable_parameters(), lr=1e-4)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def clip_forward() -> None:
        with torch.no_grad():
            det.model.visual(batch.image)
        sync()

    def sfam_inference() -> None:
        with torch.no_grad():
            det(batch)
        sync()

    def sfam_train_step() -> None:
        opt.zero_grad(set_to_none=True)
        det.loss(batch, det(batch))["loss"].backward()
        opt.step()
        sync()

    cached: tuple[torch.Tensor, torch.Tensor | None]  # CLIP's outputs, set per precision below

    def modules_inference() -> None:
        with torch.no_grad():
            det.output(det.model.forward_features(*cached, batch.region_masks))
        sync()

    def modules_train_step() -> None:
        opt.zero_grad(set_to_none=True)
        out = det.output(det.model.forward_features(*cached, batch.region_masks))
        det.loss(batch, out)["loss"].backward()
        opt.step()
        sync()

    work = {
        "clip": clip_forward,
        "infer": sfam_inference,
        "train": sfam_train_step,
        "mod_infer": modules_inference,
        "mod_train": modules_train_step,
    }
    figs: list[Figure] = []
    for precision in precisions:
        autocast = (
            torch.autocast(device.type, dtype=torch.bfloat16)
            if precision == "bf16"
            else contextlib.nullcontext()
        )
        times: dict[str, list[float]] = {k: [] for k in work}
        with autocast:
            cached = det.model.clip_features(batch.image)
            for i in range(repeat + 1):  # the first round warms up
                for k, fn in work.items():
                    det.train(k in ("train", "mod_train"))
                    t = measure(fn, 1)
                    if i:
                        times[k] += t
        base = throughput(TOPIC, f"bare frozen CLIP ViT-B/16 forward, {precision}", n, times["clip"])
        infer = throughput(TOPIC, f"SFAM inference, {precision}", n, times["infer"])
        train = throughput(TOPIC, f"SFAM training step, {precision}", n, times["train"])
        mod_infer = throughput(TOPIC, f"SFAM modules only, inference, {precision}", n, times["mod_infer"])
        mod_train = throughput(TOPIC, f"SFAM modules only, training step, {precision}", n, times["mod_train"])
        note = f"batch {n}, {device.type}, {det.num_trainable_parameters():,} trainable parameters"
        base.note = note
        for f, target in (
            (infer, TARGET),
            (train, TARGET),
            (mod_infer, TARGET_MODULES),
            (mod_train, TARGET_MODULES),
        ):
            with_ratio(f, base)
            f.target, f.note = target, note
        figs += [base, infer, train, mod_infer, mod_train]
    return figs

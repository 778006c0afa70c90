"""The baselines' perf script measures what it says: whole steps, both paths, every numeric option."""

from __future__ import annotations

import warnings

import pytest
import torch

from benchmark.perf.detectors_baselines import (
    bare_step_times,
    bf16_supported,
    lightning_step_times,
    make_paired_batch,
)
from detectors import create_detector, get_detector_class


def tiny(name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_detector(name, **get_detector_class(name).tiny_config)


def test_paired_batch_is_valid_for_ucf():
    batch = make_paired_batch(64, 6)
    assert batch.is_paired() and batch.method_id.tolist() == [0, 0, 0, 1, 2, 3]
    tiny("ucf").check_training_batch(batch)


@pytest.mark.parametrize("name", ["xception", "ucf"])
def test_both_paths_time_the_requested_number_of_steps(name):
    cpu = torch.device("cpu")
    batch = make_paired_batch(64, 4)
    bare = bare_step_times(tiny(name), batch, cpu, bf16=False, steps=2, warmup=1)
    lit = lightning_step_times(tiny(name), batch, cpu, bf16=False, steps=2, warmup=1)
    assert len(bare) == 2 and len(lit) == 2 and min(bare + lit) > 0


@pytest.mark.skipif(not bf16_supported(torch.device("cpu")), reason="no native bf16 on this CPU")
def test_ucf_trains_under_bf16_autocast_and_channels_last():
    m = tiny("ucf").to(memory_format=torch.channels_last)
    batch = make_paired_batch(64, 4)
    batch.image = batch.image.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = m.loss(batch, m(batch))
    assert all(torch.isfinite(v) for v in losses.values())

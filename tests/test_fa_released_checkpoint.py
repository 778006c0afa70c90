"""Forensics Adapter's released checkpoint loads strictly into ``forensics_adapter`` (``reference="released"``)
and scores as the released ``DS.forward`` does.

The checkpoint is built by ``tests/forensics_adapter_reference.py`` with the released key names and shapes
(derived from the released code, not from our ``state_dict``); the expected outputs come from that
module's plain-functional transcription of the released forward, with the boundary flags computed by
``split_images_by_patch``'s own OpenCV calls.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from datamodules.batch import Batch
from detectors.convert import ConversionError, load_converted, save_converted, sources
from detectors.forensics_adapter.released import DROPPED, FRESH, convert_released
from detectors.registry import load_detector
from tests.forensics_adapter_reference import (
    Sizes,
    released_forward,
    released_patch_labels,
    released_state_dict,
)

Z = Sizes()
# our tiny build for the released sizes above; queries, widths, patch and pos grid are read from the checkpoint
OVERRIDES = {"tiny_clip": True, "tiny_vision": {"image_size": Z.clip_image, "patch_size": Z.clip_patch}}


def convert(sd=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_converted(
            "forensics_adapter", "forensics_adapter", sd or released_state_dict(Z), **{**OVERRIDES, **kw}
        )


def masks_255(n: int, side: int) -> np.ndarray:
    """Reals all zero; fakes with a partly covered region (0/255 values and a soft 128 band)."""
    rng = np.random.default_rng(3)
    m = np.zeros((n, side, side), np.float32)
    for i in range(n // 2, n):
        y, x = rng.integers(0, side // 3, 2)
        m[i, y : y + side // 2 + i, x : x + side // 2] = 255.0
        m[i, y + side // 2 + i : y + side // 2 + i + 2, x : x + side // 2] = 128.0
    return m


@pytest.fixture(scope="module")
def converted():
    return convert()


def test_conversion_is_registered_and_builds_the_released_reference(converted):
    assert "forensics_adapter" in sources()["forensics_adapter"]
    m = converted
    assert m.reference == "released" and m.pretrained_loaded
    assert m.num_queries == Z.queries and m.adapter.grid == Z.grid
    assert all(not p.requires_grad for p in m.adapter.fusions.parameters())  # frozen released init


def test_mapping_keeps_what_the_forward_uses_and_drops_the_rest():
    sd = released_state_dict(Z)
    out = convert_released(sd)
    # every released key is either mapped or dropped on purpose
    kept_blocks = {k.split(".")[2] for k in out if k.startswith("adapter.blocks.")}
    assert kept_blocks == {str(i) for i in range(8)}  # blocks 9-12 are built but never run
    assert not any(k.startswith(("text", "transformer", "token_embedding")) for k in out)
    dropped = [k for k in sd if k.startswith(DROPPED)]
    assert any(k.startswith("rec_attn_clip.vit.") for k in dropped)
    assert any(k.startswith("clip_model.transformer.") for k in dropped)
    n_unused_blocks = sum(k.startswith(f"adapter.vit_model.blocks.{i}.") for k in sd for i in range(8, 12))
    assert len(out) == len(sd) - len(dropped) - n_unused_blocks
    assert out["clip_bottleneck.down.weight"].shape == (Z.bottleneck, Z.clip_width)
    assert out["classifier.head.layers.2.weight"].shape == (2, Z.embed // 4)
    assert FRESH == ("adapter.fusions.",)


def test_outputs_equal_the_released_forward(converted):
    m = converted.eval()
    n, side = 4, m.data_spec.input_size
    g = torch.Generator().manual_seed(0)
    image = torch.randn(n, 3, side, side, generator=g)
    m255 = masks_255(n, side)
    flags = torch.tensor([released_patch_labels(mk, Z.patch)[1] for mk in m255])
    assert flags[n // 2 :].any() and not flags[: n // 2].any()
    batch = Batch(
        image=image,
        label=torch.tensor([0] * (n // 2) + [1] * (n - n // 2)),
        sample_id=[str(i) for i in range(n)],
        video_id=[str(i) for i in range(n)],
        dataset=["d"] * n,
        method=["real"] * (n // 2) + ["fake"] * (n - n // 2),
        forgery_mask=torch.from_numpy(m255 / 255.0).float()[:, None],
    )
    fus = {
        int(k): (f.norm.weight.detach(), f.norm.bias.detach(), f.proj.weight.detach(), f.proj.bias.detach())
        for k, f in m.adapter.fusions.items()
    }
    with torch.no_grad():
        out = m(batch)
        cls, xray = released_forward(
            released_state_dict(Z), fus, image, flags, Z, m.fusion_map, m.intra_after
        )
    torch.testing.assert_close(out.aux.logits2, cls, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(out.logits, cls[:, 1] - cls[:, 0], atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(out.aux.boundary, xray, atol=2e-5, rtol=1e-4)
    # the released decoder zeroes only its input: non-boundary patches predict a constant, not zero
    assert out.aux.boundary[0].abs().max() > 0


def test_conversion_is_deterministic_and_round_trips(tmp_path, converted):
    again = convert()
    for (k, a), b in zip(converted.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), k  # the fresh fusion draw too (seeded)
    path = save_converted(converted, tmp_path / "fa.ckpt")
    back = load_detector(path, expected="forensics_adapter")
    assert back.reference == "released"
    for k, v in converted.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k


def test_ddp_prefix_is_accepted():
    sd = {f"module.{k}": v for k, v in released_state_dict(Z).items()}
    assert convert(sd).reference == "released"


@pytest.mark.parametrize(
    "edit,error,pattern",
    [
        (lambda sd: sd.update({"adapter.extra.weight": torch.zeros(1)}), ConversionError, r"unknown layout.*adapter\.extra"),
        (lambda sd: sd.pop("clip_post_process.second_process.4.bias"), ValueError, r"missing keys \['classifier\.head\.layers\.2\.bias'\]"),
        (lambda sd: sd.update({"rec_attn_clip.proj": sd["rec_attn_clip.proj"] + 1}), ConversionError, r"rec_attn_clip\.proj should repeat clip_model\.visual\.proj"),
        (lambda sd: sd.update({"adapter.ln_pre.weight": torch.ones(Z.width + 1)}), ValueError, r"shape mismatches \[\('adapter\.ln_pre\.weight'"),
    ],
    ids=["unexpected", "missing", "duplicate_differs", "shape"],
)  # fmt: skip
def test_anything_else_is_refused_naming_the_keys(edit, error, pattern):
    sd = released_state_dict(Z)
    edit(sd)
    with pytest.raises(error, match=pattern):
        convert(sd)

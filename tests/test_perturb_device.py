"""``perturb_on_device``: the device forms of the DeeperForensics-1.0 distortions and OpenCV's resizes in torch.

References are OpenCV itself (``cv2.resize``, the only definition of its fixed-point arithmetic) and the
suite's CPU distortions, which tests/test_perturb.py checks against the released definitions; the images
are real faces (``tests/real_faces.py``). The device path must give the CPU path's batch: the same
masks, labels and ids bit for bit, the same image up to float rounding order of the distortion.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

import datamodules.media.perturb as P
from datamodules.loading.datamodule import ForgeryDataModule, ManifestDataset
from datamodules.loading.device_perturb import PERTURB, moves_to_device
from datamodules.media.perturb import device as D
from datamodules.spec import CLIP_MEAN, CLIP_STD, DataSpec
from tests.real_faces import aligned_face
from tests.test_perturb import _manifest

FORMS = sorted(D.DEVICE_FORMS)


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    a, g = aligned_face("astronaut")[0], aligned_face("grace_hopper")[0]
    return [a, g, cv2.resize(g, (300, 300), interpolation=cv2.INTER_CUBIC)]


def _t(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float()


def _u8(x: torch.Tensor) -> np.ndarray:
    assert torch.equal(x, x.round()) and x.min() >= 0 and x.max() <= 255  # uint8 values held in float
    return x[0].permute(1, 2, 0).numpy().astype(np.uint8)


@pytest.mark.parametrize("name", FORMS)
@pytest.mark.parametrize("level", [1, 2, 3, 4, 5])
def test_device_form_is_the_cpu_distortion_up_to_one_grey_level(faces, name, level):
    p = P.get_perturbation(name, level)
    form = D.device_form(p)
    for img in faces:
        cpu = p.apply(img, "k").astype(int)
        dev = _u8(form(_t(img))).astype(int)
        diff = np.abs(cpu - dev)
        assert diff.max() <= 1, (p.tag, img.shape)
        # float rounding order only: a handful of values per image
        assert (diff > 0).mean() < 1e-3, (p.tag, img.shape, (diff > 0).mean())
        if name in ("color_contrast", "jpeg_compression"):  # integer arithmetic: exact
            assert diff.max() == 0, (p.tag, img.shape)


@pytest.mark.parametrize("src", [(256, 256), (300, 300), (85, 85), (51, 51), (256, 200)])
@pytest.mark.parametrize("dst", [(128, 128), (42, 42), (224, 224), (320, 320), (51, 85)])
def test_fixed_point_linear_resize_is_opencvs(faces, src, dst):
    img = cv2.resize(faces[1], (src[1], src[0]), interpolation=cv2.INTER_AREA)
    want = cv2.resize(img, (dst[1], dst[0]), interpolation=cv2.INTER_LINEAR)
    got = _u8(D.resize_linear_u8(_t(img), dst))
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("src", [256, 300, 448, 512])
@pytest.mark.parametrize("side", [224, 128, 112, 256, 336])
def test_evaluation_resize_is_opencvs_area_or_linear(faces, src, side):
    img = cv2.resize(faces[0], (src, src), interpolation=cv2.INTER_CUBIC)
    if side == src:
        want = img
    else:
        want = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA if side < src else cv2.INTER_LINEAR)
    np.testing.assert_array_equal(_u8(D.resize_u8(_t(img), side)), want)


@pytest.mark.parametrize(
    "src, side", [(320, 224), (380, 299), (257, 224), (1000, 224), (300, 112), (256, 85)]
)
def test_evaluation_resize_is_opencvs_on_noise(src, side):
    """Noise has no smooth neighbourhood to hide a different order of float sums (one level off)."""
    img = np.random.default_rng(src * side).integers(0, 256, (src, src, 3), dtype=np.uint8)
    want = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(_u8(D.resize_u8(_t(img), side)), want)
    grown = cv2.resize(img[:side, :side], (src, src), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(_u8(D.resize_u8(_t(img[:side, :side]), src)), grown)


def test_area_weights_are_a_partition_of_each_source_pixel():
    for n_src, n_dst in [(256, 224), (300, 224), (256, 112), (7, 3)]:
        m = D.area_matrix(n_src, n_dst).astype(np.float64)
        np.testing.assert_allclose(m.sum(1), 1.0, atol=1e-6)  # each output: a mean
        np.testing.assert_allclose(m.sum(0), n_dst / n_src, atol=1e-6)  # each input counted once in all


def test_which_conditions_move():
    assert moves_to_device(P.get_perturbation("GB", 3), None)
    assert moves_to_device(P.get_perturbation("CS", 1), P.CropView())  # the identity view
    assert not moves_to_device(P.get_perturbation("GB", 3), P.CropView(zoom=1.2))
    for code in ("BW", "GNC", "VC"):
        assert not moves_to_device(P.get_perturbation(code, 2), None)
    assert not moves_to_device(P.get_perturbation("clean", 0), None)
    assert not moves_to_device(None, None)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return _manifest(tmp_path_factory.mktemp("perturbed_device"))


def _batches(manifest, on_device: bool, p, workers: int = 0, spec: DataSpec | None = None):
    spec = spec or DataSpec(input_size=224, mean=CLIP_MEAN, std=CLIP_STD, region_masks=True)
    dm = ForgeryDataModule(
        spec,
        "t",
        ["t"],
        {"t": manifest},
        eval_batch_size=3,
        frames_test=4,
        num_workers=workers,
        test_perturbation=p,
        perturb_on_device=on_device,
    )
    dm.setup("test")
    out = []
    for b in dm.test_dataloader()[0]:
        if on_device and moves_to_device(p, None):
            assert PERTURB in b.extra and b.image.dtype == torch.uint8  # the worker only read
        out.append(dm.on_after_batch_transfer(b, 0))
    return out


@pytest.mark.parametrize(("code", "level"), [("GB", 5), ("CS", 2), ("CC", 4), ("JPEG", 3)])
def test_datamodule_on_device_gives_the_cpu_batch(manifest, code, level):
    p = P.get_perturbation(code, level, seed=3)
    cpu, dev = _batches(manifest, False, p), _batches(manifest, True, p)
    std = torch.tensor(CLIP_STD)[:, None, None] * 255
    for a, b in zip(cpu, dev, strict=True):
        assert PERTURB not in b.extra
        assert a.sample_id == b.sample_id and torch.equal(a.label, b.label)
        assert torch.equal(a.region_masks, b.region_masks)
        assert a.image.shape == b.image.shape and b.image.dtype == torch.float32
        grey = ((a.image - b.image).abs() * std).round()  # back to grey levels
        assert grey.max() <= 1 and (grey > 0).float().mean() < 1e-3
        assert a.input_key != b.input_key  # other pixels may differ: other frozen-cache keys
    again = _batches(manifest, True, p, workers=2)  # workers do not change it; scoring twice is identical
    for a, b in zip(dev, again, strict=True):
        assert torch.equal(a.image, b.image) and a.input_key == b.input_key


def test_conditions_without_a_device_form_stay_on_the_workers(manifest):
    p = P.get_perturbation("GNC", 2, seed=1)
    for a, b in zip(_batches(manifest, False, p), _batches(manifest, True, p), strict=True):
        assert PERTURB not in b.extra and torch.equal(a.image, b.image) and a.input_key == b.input_key


def test_single_items_and_bad_requests(manifest):
    import pandas as pd

    rows = pd.read_parquet(manifest)
    spec = DataSpec(input_size=128)
    p = P.get_perturbation("GB", 4)
    cpu = ManifestDataset(rows, manifest.parent, spec, False, [], False, perturbation=p)
    dev = ManifestDataset(rows, manifest.parent, spec, False, [], False, perturbation=p, device_perturb=True)
    for i in range(3):  # a single item gets the device step on the CPU
        grey = (
            (cpu[i]["image"] - dev[i]["image"]).abs() * torch.tensor(spec.std)[:, None, None] * 255
        ).round()
        assert grey.max() <= 1
    with pytest.raises(ValueError, match="device_perturb needs .* got block_wise@2"):
        ManifestDataset(
            rows,
            manifest.parent,
            spec,
            False,
            [],
            False,
            perturbation=P.get_perturbation("BW", 2),
            device_perturb=True,
        )


def test_the_setting_enters_only_the_ids_of_cells_it_changes(tmp_path):
    from dataclasses import replace

    from benchmark.runner.cells import config_hash
    from benchmark.runner.data_config import parse_data_config
    from benchmark.runner.grid import DATA_KEYS, load_grid
    from benchmark.runner.plan import plan_cells
    from tests.runner_fixtures import write_data_config, write_grid

    assert "perturb_on_device" in DATA_KEYS  # a grid may set it
    write_data_config(tmp_path)
    (cell,) = plan_cells(load_grid(write_grid(tmp_path)), parse_data_config(tmp_path / "datasets.yaml"))
    base = cell.config
    on = replace(base, data={**base.data, "perturb_on_device": True})
    assert config_hash(on.to_json()) == config_hash(base.to_json())  # a trained cell: same checkpoint
    for p, changes in ((P.get_perturbation("GB", 3), True), (P.get_perturbation("BW", 3), False)):
        plain, moved = replace(base, perturbation=p), replace(on, perturbation=p)
        assert config_hash(plain.parent().to_json()) == config_hash(moved.parent().to_json())
        assert (config_hash(plain.to_json()) != config_hash(moved.to_json())) is changes, p.tag


def test_a_resize_that_shrinks_one_side_and_grows_the_other_is_refused():
    with pytest.raises(ValueError, match="32x16 crop to 24 px"):
        D.resize_u8(torch.zeros(1, 3, 32, 16), 24)
    assert D.resize_u8(torch.zeros(1, 3, 32, 24), 24).shape == (1, 3, 24, 24)  # one side kept: area

"""docs/PERFORMANCE.md writer on synthetic figures, the target checker, and the FLOP counter's correction."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import pytest
import torch

from benchmark.perf import gpu_cost
from benchmark.perf.flops import DetectorFlops, _counter, count
from benchmark.perf.report import render, target_met, write_report
from benchmark.perf.timing import Figure, duration, throughput, with_ratio
from detectors import list_detectors


def _figs() -> list[Figure]:
    base = duration("toy", "naive loop", [4.0, 5.0, 6.0])
    fast = with_ratio(duration("toy", "vectorised", [0.9, 1.0, 1.5], target="< 2 s"), base)
    slow = duration("toy", "too slow", [3.0, 3.5, 4.0], target="< 2 s")
    bare = throughput("toy2", "bare model", 100, [1.0, 1.0, 1.0])
    suite = with_ratio(throughput("toy2", "suite step", 100, [0.8, 1.0, 1.25], target=">= 0.90x bare"), bare)
    words = duration("toy2", "cold start", [7.0], target="a small fraction of the cold generation")
    return [base, fast, slow, bare, suite, words]


FLOPS = [
    DetectorFlops("toy_cnn", 256, forward=1e10, train_step=3e10, trainable_params=2_000_000,
                  total_params=2_000_000, epochs=10, batch_size=32, frames_train=32, frames_test=32),
    DetectorFlops("toy_clip", 224, forward=2e10, train_step=2.2e10, trainable_params=500_000,
                  total_params=90_000_000, epochs=2, batch_size=32, frames_train=8, frames_test=32),
]  # fmt: skip


@pytest.mark.parametrize(
    ("target", "value", "ratio", "unit", "expected"),
    [
        ("< 5 s", 4.0, None, "s", "yes"),
        ("< 5 s", 6.0, None, "s", "NO"),
        (">= 2x baseline", 1.0, 2.5, "s", "yes"),
        (">= 0.90x bare (suite overhead < 10%)", 1.0, 0.8, "img/s", "NO"),
        (">= 200 samples/s per worker", 250.0, None, "samples/s", "yes"),
        (">= 200 samples/s per worker", 250.0, None, "img/s", "not machine-checked"),  # unit differs
        (">= 2x baseline", 1.0, None, "s", "not machine-checked"),  # no ratio measured
        ("a small fraction of the cold generation", 1.0, None, "s", "not machine-checked"),
        ("", 1.0, None, "s", "-"),
    ],
)
def test_target_met(target, value, ratio, unit, expected) -> None:
    f = Figure("t", "f", unit, value, value, value, 1, ratio=ratio, target=target)
    assert target_met(f) == expected


def test_page_holds_machine_figures_ratios_and_verdicts() -> None:
    page = render(_figs(), FLOPS, now=datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    assert "2026-01-02 03:04 UTC" in page
    for key in ("CPU:", "logical cores", "RAM:", "GPU:", "Python 3.", "torch ", "lightning ", "timm ",
                "open_clip_torch "):  # fmt: skip
        assert key in page, key
    # median with min and max, the ratio against the same-run baseline, the target and its verdict
    row = next(line for line in page.splitlines() if line.startswith("| vectorised "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:5] == ["1 s", "0.9", "1.5", "3"]
    assert cells[5] == "5.00x vs naive loop" and cells[6:8] == ["< 2 s", "yes"]
    assert re.search(r"^\| too slow \| 3\.5 s .*\| < 2 s \| NO \|", page, re.M)
    assert re.search(
        r"^\| suite step \| 100 img/s \| 80 \| 125 \| 3 \| 1\.00x vs bare model \| >= 0\.90x bare \| yes \|",
        page,
        re.M,
    )
    assert re.search(r"^\| naive loop \| 5 s .*\| baseline \|", page, re.M)
    assert "6 figures; 3 with a machine-checked target: 2 met, 1 not met." in page
    assert "NOT MET: `toy` / too slow" in page
    assert "Quick smoke run" not in page
    assert "Quick smoke run" in render(_figs(), FLOPS, quick=True)


def test_gpu_section_states_assumptions_and_adds_up() -> None:
    page = render([], FLOPS)
    for g in gpu_cost.GPUS:
        assert g.name in page and f"{g.peak_tflops:,.0f} TFLOPS" in page
    assert f"{gpu_cost.UTILISATION:.0%}" in page
    for k, v in gpu_cost.TEST_VIDEOS.items():
        assert f"{k} {v:,}" in page
    # toy_cnn: 10 epochs x 720 videos x 5 versions x 32 frames of 3e10 FLOPs
    train_imgs = 10 * 720 * 5 * 32
    eval_imgs = 10 * 140 * 5 * 32 + (700 + 518 + 5000 + 780 + 3400) * 32
    pflop = (train_imgs * 3e10 + eval_imgs * 1e10) / 1e15
    a100 = gpu_cost.GPUS[0]
    hours1 = pflop * 1e15 / (a100.peak_tflops * 1e12 * gpu_cost.UTILISATION) / 3600
    row = next(line for line in page.splitlines() if line.startswith("| `toy_cnn` |") and "PFLOP" not in line
               and f"{train_imgs:,}" in line)  # fmt: skip
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:3] == [f"{train_imgs:,}", f"{eval_imgs:,}"]
    assert float(cells[5]) == pytest.approx(hours1, abs=0.006)
    assert float(cells[6]) == pytest.approx(hours1 / (8 * gpu_cost.SCALING_8), abs=0.006)
    # the frozen-tower model's step is far below 3x its forward and the page says so
    assert re.search(r"^\| `toy_clip` \|.*\| 1\.10 \| 2 \| 8, 32 \| 28,800 \|", page, re.M)
    # loader rate: images/s = peak x utilisation / FLOPs per training image
    rate = a100.peak_tflops * 1e12 * gpu_cost.UTILISATION / 3e10
    assert re.search(rf"^\| `toy_cnn` \| {rate:,.0f} \|", page, re.M)
    assert "run the `loader` topic" in page
    loader = throughput("loader", "loader: aug @224 (1 worker)", 100, [1.0, 1.0], unit="samples/s")
    assert "CPU workers for 8 H100" in render([loader], FLOPS)


def test_write_report_is_atomic_and_complete(tmp_path) -> None:
    out = write_report(_figs(), tmp_path / "docs" / "PERFORMANCE.md", flops=FLOPS)
    assert out.read_text().startswith("# Performance\n") and out.read_text().endswith("|\n")
    # the page and its figures' sidecar, no temp file left
    assert sorted(p.name for p in out.parent.iterdir()) == ["PERFORMANCE.json", "PERFORMANCE.md"]


def test_grouped_convolution_backward_counted_per_group() -> None:
    c, hw, k = 16, 12, 3
    conv = torch.nn.Conv2d(c, c, k, padding=1, groups=c, bias=False)
    x = torch.randn(1, c, hw, hw, requires_grad=True)
    fwd = 2 * c * hw * hw * k * k  # one multiply-add per output pixel, channel and kernel tap
    with _counter() as fc:
        y = conv(x)
    assert fc.get_total_flops() == fwd
    with _counter() as fc:
        y.sum().backward()
    assert fc.get_total_flops() == 2 * fwd  # grad input + grad weight (stock torch counts 16x this)


def test_counted_training_step_of_a_plain_cnn_is_about_three_forwards() -> None:
    f = count("resnet34", tiny=True)
    assert f.input_size == 64 and f.forward > 0
    assert 2.5 < f.train_step / f.forward < 3.5


def test_cross_grid_total_adds_the_grid_detectors_only(monkeypatch) -> None:
    monkeypatch.setattr(gpu_cost, "cross_detectors", lambda: ("toy_cnn",))
    page = render([], FLOPS)
    row = next(line for line in page.splitlines() if line.startswith("| **`cross` grid (1 detectors)**"))
    cnn = gpu_cost.cell_cost(FLOPS[0])
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == f"{cnn.train_images:,}"
    assert [float(x) for x in cells[5:9]] == pytest.approx(
        [cnn.hours(g, n) for g in gpu_cost.GPUS for n in (1, 8)], abs=0.006
    )
    assert "Not in the `cross` grid (shown for comparison): `toy_clip`." in page


def test_cross_detectors_follow_the_grid_file() -> None:
    names = gpu_cost.cross_detectors()
    assert names and set(names) <= set(list_detectors())


def test_gpu_section_sizes_cpu_workers_from_the_packed_loader_when_measured() -> None:
    png = throughput(
        "loader", "loader: aug + soft masks @224 (1 worker's work, in-process)", 100, [1.0], unit="samples/s"
    )
    packed = throughput("loader", "loader: same, from the packed store (in-process)", 400, [1.0],
                        unit="samples/s")  # fmt: skip
    h100 = gpu_cost.GPUS[1]
    demand = 8 * gpu_cost.loader_rate(3e10, h100) * gpu_cost.SCALING_8

    def workers(page: str) -> int:
        row = next(line for line in page.splitlines() if line.startswith("| `toy_cnn` |") and "CPU" not in line
                   and line.count("|") == 8)  # fmt: skip
        return int(row.strip("|").split("|")[-1].strip().replace(",", ""))

    assert workers(render([png], FLOPS)) == math.ceil(demand / 100)
    assert workers(render([png, packed], FLOPS)) == math.ceil(demand / 400)
    assert "packed store" in render([png, packed], FLOPS)


def test_one_topic_rerun_replaces_only_its_figures_and_says_so(tmp_path) -> None:
    from benchmark.perf.report import sidecar, update_report

    page = tmp_path / "PERF.md"
    write_report(_figs(), page, flops=FLOPS)
    assert sidecar(page).exists()
    again = duration("toy", "naive loop", [8.0, 9.0, 10.0])
    update_report("toy", [again], page, flops=FLOPS)
    text = page.read_text()
    assert "| naive loop | 9 s |" in text or re.search(r"\| naive loop \| 9(\.0+)? s \|", text)
    assert "vectorised" not in text  # the topic's old figures are gone, not mixed with the new run's
    assert "bare model" in text and "suite step" in text  # other topics kept
    assert re.search(r"^- `toy`: \d{4}-\d\d-\d\d \d\d:\d\d UTC \(load average ", text, re.M)
    with pytest.raises(ValueError, match="quick run cannot update"):
        update_report("toy", [again], page, quick=True, flops=FLOPS)
    with pytest.raises(ValueError, match="does not exist"):
        update_report("toy", [again], tmp_path / "other.md", flops=FLOPS)

"""What the full ``cross`` grid costs on modern GPUs, estimated from counted FLOPs (an estimate, not a run).

Every assumption is a named constant below and is printed on docs/PERFORMANCE.md beside the numbers:
change one here and the page follows.

Model: a cell = train ``epochs`` epochs on FF++ c23 (validate on FF++ val after each), then score every
test set once. GPU time = FLOPs / (peak x utilisation). Eight GPUs: one cell runs Lightning DDP over all
eight with ``SCALING_8`` efficiency (the grid has one cell per detector with one seed, so cells cannot
fill eight GPUs on their own). The loader must deliver, per GPU, the images/s the GPU consumes:
``peak x utilisation / FLOPs per image``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmark.perf.flops import DetectorFlops


@dataclass(frozen=True)
class GPU:
    """A GPU model and the dense bf16 peak the cost estimate divides by (``source``: its datasheet)."""

    name: str
    peak_tflops: float  # dense bf16 tensor-core peak, vendor datasheet
    source: str


GPUS = (
    GPU("A100 SXM 80GB", 312.0, "NVIDIA A100 datasheet: 312 TFLOPS dense BF16 tensor core"),
    GPU("H100 SXM", 989.0, "NVIDIA H100 datasheet: 989 TFLOPS dense BF16 tensor core (1,979 with sparsity)"),
)
UTILISATION = 0.35  # sustained fraction of peak (model FLOPs utilisation) for bf16 vision training
SCALING_8 = 0.90  # DDP efficiency of one cell on 8 GPUs of one node (gradient all-reduce, stragglers)

# FF++ c23 as the `cross` grid trains on it (official split: 720 train / 140 val / 140 test videos,
# each source video with 4 manipulated versions: Deepfakes, Face2Face, FaceSwap, NeuralTextures).
FFPP_TRAIN_VIDEOS = 720
FFPP_VAL_VIDEOS = 140
FFPP_TEST_VIDEOS = 140
FFPP_VERSIONS = 5  # 1 real + 4 fakes per source video
# Test sets of the `cross` grid: videos (official test lists; DFD has no split, all ~3,400 videos).
TEST_VIDEOS = {
    "FF++ c23 test": FFPP_TEST_VIDEOS * FFPP_VERSIONS,
    "Celeb-DF v2": 518,
    "DFDC": 5000,
    "DFDC-Preview": 780,
    "DFD": 3400,
}
SEEDS = 1  # cross.yaml: seeds [0]; the cost scales linearly with seeds
_CROSS_FALLBACK = ("xception", "efficientnet_b4", "ucf", "forensics_adapter", "sfam")


def cross_detectors() -> tuple[str, ...]:
    """The detectors of ``benchmark/grids/cross.yaml`` (its list as of this writing if the file is absent)."""
    import yaml

    path = Path(__file__).resolve().parents[1] / "grids" / "cross.yaml"
    try:
        return tuple(yaml.safe_load(path.read_text())["detectors"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return _CROSS_FALLBACK


@dataclass(frozen=True)
class CellCost:
    """FLOPs and image counts of one detector's cell of the ``cross`` grid (all seeds)."""

    detector: str
    train_images: int
    eval_images: int
    train_pflop: float
    eval_pflop: float

    @property
    def total_pflop(self) -> float:
        """Training plus evaluation PFLOP."""
        return self.train_pflop + self.eval_pflop

    def hours(self, gpu: GPU, n_gpus: int = 1) -> float:
        """Estimated hours on ``n_gpus`` of ``gpu`` at the assumed utilisation (and multi-GPU scaling)."""
        rate = gpu.peak_tflops * 1e12 * UTILISATION * (n_gpus * SCALING_8 if n_gpus > 1 else 1.0)
        return self.total_pflop * 1e15 / rate / 3600


def images_per_epoch(f: DetectorFlops) -> int:
    """Training images per epoch: FF++ training videos x manipulation versions x frames per video."""
    return FFPP_TRAIN_VIDEOS * FFPP_VERSIONS * f.frames_train


def cell_cost(f: DetectorFlops) -> CellCost:
    """The FLOPs of one detector's cell: training epochs, validation and every test set, for every seed."""
    train_imgs = f.epochs * images_per_epoch(f)
    val_imgs = f.epochs * FFPP_VAL_VIDEOS * FFPP_VERSIONS * f.frames_test
    test_imgs = sum(TEST_VIDEOS.values()) * f.frames_test
    return CellCost(
        detector=f.detector,
        train_images=train_imgs * SEEDS,
        eval_images=(val_imgs + test_imgs) * SEEDS,
        train_pflop=train_imgs * f.train_step * SEEDS / 1e15,
        eval_pflop=(val_imgs + test_imgs) * f.forward * SEEDS / 1e15,
    )


def loader_rate(flops_per_image: float, gpu: GPU) -> float:
    """Images/s one GPU consumes at the assumed utilisation (what the loader must deliver per GPU)."""
    return gpu.peak_tflops * 1e12 * UTILISATION / flops_per_image


def assumptions_md() -> list[str]:
    """The assumptions, as markdown bullet lines."""
    tests = ", ".join(f"{k} {v:,}" for k, v in TEST_VIDEOS.items())
    return [
        *(f"- {g.name}: {g.peak_tflops:,.0f} TFLOPS peak ({g.source})." for g in GPUS),
        f"- Sustained utilisation {UTILISATION:.0%} of peak for every detector (typical bf16 model-FLOPs "
        "utilisation of vision training; depthwise convolutions (EfficientNet, Xception) usually reach "
        "less, large ViTs more, so CNN figures are optimistic).",
        f"- Eight GPUs: one cell on 8 GPUs of one node with DDP at {SCALING_8:.0%} scaling efficiency.",
        f"- Training set: FF++ c23, {FFPP_TRAIN_VIDEOS} train videos x {FFPP_VERSIONS} versions (1 real + 4 "
        "fakes) x the recipe's `frames_train` frames per epoch, for the recipe's `epochs`.",
        f"- Validation after every epoch: FF++ val, {FFPP_VAL_VIDEOS} x {FFPP_VERSIONS} videos x "
        "`frames_test` frames (inference).",
        f"- Test sets, videos x `frames_test` frames, scored once: {tests}.",
        f"- One training set (FF++) and {SEEDS} seed per detector, as `benchmark/grids/cross.yaml` ships; "
        "cost scales linearly with seeds.",
        "- Training FLOPs per image = the counted training step (forward + loss + backward; frozen towers "
        "compute no weight gradients); optimiser update, data loading, checkpointing and start-up are not "
        "counted.",
    ]

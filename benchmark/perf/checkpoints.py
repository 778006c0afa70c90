"""Perf topic ``checkpoints``: what a cell's checkpoints weigh, lean against the former full ones.

Each CLIP detector at its demo-grid size (ViT-B/16, random initialisation as offline, 224 px) trains one
step with the cell's own checkpoint callback (:func:`benchmark.runner.checkpointing.cell_checkpoint`), which
writes the best checkpoint (lean, weights only) and ``last.ckpt`` (lean weights + optimiser state). The
baseline is what a cell wrote before: every tensor plus the optimiser state, in BOTH files (Lightning's
``ModelCheckpoint`` wrote the same full checkpoint as best and as last). Sizes are of the files on disk.

Targets (issue "Scale and cost", item 1): an SFAM / clip_linear checkpoint under 5 % of its former size,
Forensics Adapter's under 10 %; the cell's two files together are compared with the former two.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from pathlib import Path

from benchmark.perf.timing import Figure

TOPIC = "checkpoints"
CONFIGS = {
    "sfam": ({}, "< 5 %"),
    "clip_linear": ({}, "< 5 %"),
    "forensics_adapter": ({"clip_model": "ViT-B-16-quickgelu"}, "< 10 %"),
}


def _mb(path: Path) -> float:
    return path.stat().st_size / 1e6


def _figure(name: str, unit: str, value: float, target: str = "", note: str = "") -> Figure:
    return Figure(TOPIC, name, unit, value, value, value, 1, False, target=target, note=note)


def measure_detector(name: str, over: dict, folder: Path) -> dict[str, float]:
    """Train ``name`` one step with the cell's callback; sizes (MB) of best, last and a former full file."""
    import lightning as L

    from benchmark.runner.checkpointing import cell_checkpoint
    from datamodules.loading.synthetic import SyntheticDataModule
    from detectors import create_detector

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = create_detector(name, batch_size=2, eval_batch_size=2, **over)
    dm = SyntheticDataModule(model.data_spec, n=2, batch_size=2)
    ckpt = cell_checkpoint(folder)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[ckpt],
    )
    t = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    fit_s = time.perf_counter() - t
    model.lean_checkpoints = False  # the former format: every tensor, optimiser state included
    trainer.save_checkpoint(folder / "former.ckpt", weights_only=False)
    return {
        "best": _mb(Path(ckpt.best_model_path)),
        "last": _mb(folder / "last.ckpt"),
        "former": _mb(folder / "former.ckpt"),
        "fit_s": fit_s,
    }


def run(quick: bool) -> list[Figure]:
    """Time a short fit of each detector and report its checkpoint sizes: former full format vs lean."""
    names = ["sfam"] if quick else list(CONFIGS)
    figs: list[Figure] = []
    for name in names:
        over, target = CONFIGS[name]
        folder = Path(tempfile.mkdtemp(prefix=f"perf-ckpt-{name}-"))
        try:
            s = measure_detector(name, over, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        former = s["former"]
        base = _figure(f"{name}: former checkpoint (full, optimiser state)", "MB", former, note="ViT-B/16")
        best = _figure(f"{name}: best checkpoint (lean, weights only)", "MB", s["best"])
        last = _figure(f"{name}: last.ckpt (lean + optimiser state)", "MB", s["last"])
        for f in (best, last):
            f.baseline, f.ratio = base.name, former / f.value
        share = _figure(
            f"{name}: best checkpoint as a share of the former",
            "%",
            100 * s["best"] / former,
            target=target,
            note="the checkpoint a cell scores and keeps",
        )
        pair = _figure(
            f"{name}: best + last as a share of the former two",
            "%",
            100 * (s["best"] + s["last"]) / (2 * former),
            note="a cell used to write the same full file twice (best and last)",
        )
        figs += [base, best, last, share, pair]
    return figs

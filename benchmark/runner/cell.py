"""Run one cell: preprocess if needed -> fit -> load the best checkpoint -> test -> write to the store.

``python -m benchmark.runner.cell SPEC.json`` runs the cell described by a spec file (written by the launchers);
Lightning's DDP launcher re-runs this same command for the other ranks, so a cell with ``devices > 1``
runs DDP inside its own process group. Only global rank 0 writes to the store.

Protocol: the checkpoint is selected on ``val/auc`` of the SOURCE validation split, never on a test set.
The best checkpoint is then scored, in one ``Trainer.test`` call, on the evaluation sets of
:func:`benchmark.runner.cell_data.eval_sets`: the source validation split (``split="val"``, whose
threshold the leaderboard transfers to the test sets) and every test set (``split="test"``), one
dataloader each; :class:`~benchmark.runner.score_writer.ScoreWriter` collects the rows (``dataset`` = the
manifest's dataset, ``test_set`` = the set's name).

Released weights (``CellConfig.weights``): the detector is built from the owners' published checkpoint
(``Runtime.weights_path``, converted strictly by :func:`detectors.convert.load_converted`, its SHA-256
checked against the planned one), nothing is trained, and the source validation split and every test set
are scored as above; the record carries ``weights`` (source, file, SHA-256, path) and no fit timing.

Checkpoints (:mod:`benchmark.runner.checkpointing`): the best one is weights-only, ``last.ckpt`` keeps
the training state; both are lean (a frozen backbone stored by reference, :mod:`detectors.frozen_backbone`).
Resume: a cell that was killed restarts from ``last.ckpt`` (or from scratch when there is none).

Frozen-feature cache (:mod:`detectors.frozen_cache`, ``Runtime.frozen_cache``): detectors with a separable
frozen forward (``sfam``, ``clip_linear``) reuse the frozen backbone's outputs of evaluation batches (and of
training batches when the recipe does not augment) across seeds, cells and re-scorings; the record's
``frozen_cache`` says which (``off``, ``eval``, ``train+eval``). Scores are identical either way.

Derived cells (``CellConfig.perturbation`` / ``view``, :mod:`benchmark.runner.perturbed`): nothing is
trained; the parent's checkpoint (its best one, or its released weights) is scored on the test sets with
the datamodule's test-time perturbation / view, through the same ``Trainer.test`` and ``ScoreWriter``;
the rows carry the condition's tag in a ``perturbation`` column, the record its parent and checkpoint.

Scores and the record reach the store only at the
very end, through one atomic ``write_cell`` whose status is written last, so a killed cell never leaves a
result that looks finished and a redone cell replaces, never adds to, what was there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
from lightning.pytorch.callbacks import Callback

from benchmark.runner.cells import Cell, jsonable
from benchmark.runner.hardware import hardware
from benchmark.runner.score_writer import ROW_COLUMNS, ScoreWriter
from benchmark.store import SCORE_COLUMNS as STORE_SCORE_COLUMNS
from benchmark.store import VERSIONED, file_sha256, git_commit, package_versions
from datamodules import atomic

SCORE_COLUMNS = [*STORE_SCORE_COLUMNS, "seed"]


class CellFailed(RuntimeError):
    """A cell raised; its record (status ``failed``, traceback) is in the store."""


def base_record(cell: Cell) -> dict[str, Any]:
    """The record fields every cell writes: ids, configuration, versions, git commit and host."""
    c = cell.config
    git = git_commit(Path(__file__).resolve().parents[2])
    return {
        "cell_id": cell.cell_id,
        "grid": c.grid,
        "detector": c.detector,
        "train_set": c.train_set.name,
        "seed": c.seed,
        "origin": c.origin,
        "config": c.to_json(),
        "versions": package_versions((*VERSIONED, "torchmetrics", "albumentations")),
        "git_commit": (git or {}).get("commit"),
        "git_dirty": (git or {}).get("dirty"),
        "host": platform.node(),
        "hardware": hardware(),
        "devices": cell.runtime.devices,
        "num_nodes": cell.runtime.num_nodes,
    }


def write_progress(path: Path, **info: Any) -> None:
    """Atomically write the cell's progress (read by the launcher's live table)."""
    atomic.write_text(path, json.dumps({**info, "time": time.time()}))


def record_failure(cell: Cell, store: Any, exc: BaseException | str, started: float) -> dict[str, Any]:
    """Write a ``failed`` record (no scores) with the traceback; the cell stays not-done."""
    tb = exc if isinstance(exc, str) else "".join(traceback.format_exception(exc))
    record = {
        **base_record(cell),
        "status": "failed",
        "error": tb.strip().splitlines()[-1] if tb.strip() else "failed",
        "traceback": tb,
        "timings": {"total_s": round(time.time() - started, 3)},
    }
    store.write_record(cell.cell_id, record, "failed")
    work = cell.cell_dir
    work.mkdir(parents=True, exist_ok=True)
    (work / "failure.txt").write_text(tb)
    return record


def make_frame(cell: Cell, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The store's rows from a :class:`ScoreWriter`'s: ``dataset`` is the manifest's dataset name,
    ``test_set`` the evaluation set's name (the Cross-AUC axis, see ``ScoreStore.read_scores``)."""
    df = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    df["cell_id"] = cell.cell_id
    df["detector"] = cell.detector
    df["train_set"] = cell.train_set
    df["seed"] = cell.seed
    df["label"] = df["label"].astype("int64")
    df["score"] = df["score"].astype("float64")
    return df[SCORE_COLUMNS]


def _trainer(cell: Cell, work: Path, callbacks: list[Any]) -> Any:
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    from benchmark.runner.checkpointing import cell_checkpoint
    from benchmark.runner.guards import FiniteLossGuard
    from benchmark.runner.progress import progress_callbacks

    rt = cell.runtime
    devices = rt.devices
    ckpt = cell_checkpoint(work / "checkpoints")
    loggers: list[Any] = [CSVLogger(str(work), name="logs")]
    if rt.wandb:
        from lightning.pytorch.loggers import WandbLogger

        from datamodules.optional import require

        require("wandb", "--wandb logging")

        loggers.append(
            WandbLogger(
                project=os.environ.get("WANDB_PROJECT", "forgery-bench"),
                name=f"{cell.grid}/{cell.label}",
                group=cell.grid,
                id=cell.cell_id,
                resume="allow",
                save_dir=str(work),
                config=cell.config.to_json(),
                offline=os.environ.get("WANDB_MODE") == "offline",
            )
        )
    bars = progress_callbacks(rt.progress_bar, f"{cell.label} {cell.cell_id}")  # a tty: rich bar; else lines
    trainer = L.Trainer(
        max_epochs=cell.config.recipe.epochs,
        accelerator=rt.accelerator,
        devices=devices,
        num_nodes=rt.num_nodes,
        strategy="ddp" if devices > 1 or rt.num_nodes > 1 else "auto",
        logger=loggers,
        callbacks=[ckpt, FiniteLossGuard(), _ProgressCallback(work / "progress.json"), *bars, *callbacks],
        default_root_dir=str(work),
        enable_progress_bar=bool(bars),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **{"log_every_n_steps": 10, **cell.config.trainer},
    )
    return trainer, ckpt


class _ProgressCallback(Callback):
    """Writes ``progress.json`` (stage, epoch) so the sweep's live table can show it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.is_global_zero:
            write_progress(self.path, stage="fit", epoch=trainer.current_epoch, max_epochs=trainer.max_epochs)

    def on_test_start(self, trainer: Any, pl_module: Any) -> None:
        if trainer.is_global_zero:
            write_progress(self.path, stage="test")


def global_rank() -> int:
    """This process's rank before the Trainer exists (torchrun, SLURM or Lightning's DDP launcher)."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(var):
            return int(os.environ[var])
    return 0


def run_cell(cell: Cell, callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Run ``cell`` to completion and write it to the store; returns its record.

    A failure is recorded (status ``failed``, traceback) and re-raised as :class:`CellFailed`.
    ``callbacks`` are extra Lightning callbacks (tests use one to crash a fit half-way).
    """
    from benchmark.store import ScoreStore

    started = time.time()
    store = ScoreStore(cell.runtime.store_root)
    work = cell.cell_dir
    rank = global_rank()
    if rank == 0:
        (work / "failure.txt").unlink(missing_ok=True)
    try:
        return _run(cell, store, work, callbacks or [], started)
    except (KeyboardInterrupt, SystemExit) as e:
        if rank == 0:
            record_failure(cell, store, f"interrupted ({type(e).__name__})", started)
        raise
    except Exception as e:
        if rank == 0:
            record_failure(cell, store, e, started)
        raise CellFailed(f"cell {cell.cell_id} ({cell.label}) failed: {type(e).__name__}: {e}") from e


def score_sets(
    cell: Cell, trainer: Any, model: Any, dm: Any, writer: ScoreWriter, ckpt_path: str | None
) -> pd.DataFrame:
    """Score ``ckpt_path`` (``None``: the model as it is) on every evaluation set of the datamodule in one
    ``Trainer.test`` call; ``writer`` (one of the trainer's callbacks) gathers the rows across ranks and
    drops DDP padding repeats. Returns the store's rows, sets in the order of the evaluation sets."""
    trainer.test(model, datamodule=dm, ckpt_path=ckpt_path, verbose=False)
    return make_frame(cell, writer.rows)


def _readable_checkpoint(path: Path) -> bool:
    """False (and the file moved aside) when a kill left ``path`` truncated: the cell restarts from scratch."""
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=False, mmap=True)
        return True
    except Exception as e:
        bad = path.with_name(path.name + ".unreadable")
        path.replace(bad)
        print(f"{path} is unreadable ({type(e).__name__}: {e}); moved to {bad.name}, starting from scratch")
        return False


def released_model(cell: Cell) -> Any:
    """The detector of a released-weights cell: its published checkpoint, converted and loaded strictly."""
    from detectors.convert import load_converted

    c, path = cell.config, cell.runtime.weights_path
    if c.weights is None:
        raise ValueError(f"cell {cell.cell_id} ({cell.label}) scores no released weights")
    if path is None or not Path(path).is_file():
        raise FileNotFoundError(f"{c.detector}: released weights file not found: {path}")
    sha = file_sha256(path)
    if sha != c.weights.sha256:
        raise ValueError(
            f"{c.detector}: {path} changed since the cell was planned (sha256 {sha[:12]} != "
            f"{c.weights.sha256[:12]}); plan the run again"
        )
    return load_converted(c.weights.source, c.detector, path, **c.overrides)


def attach_frozen_cache(cell: Cell, model: Any) -> str:
    """Give ``model`` the shared frozen-feature cache (``Runtime.frozen_cache_dir``) unless the runtime
    turns it off; training batches use it only without augmentation (their images are then fixed).
    Returns the mode the record states: ``off``, ``eval`` or ``train+eval``."""
    rt = cell.runtime
    if not rt.frozen_cache:
        return model.attach_frozen_cache(None)
    from detectors.frozen_cache import FrozenFeatureCache

    bound = None if rt.frozen_cache_max_gb is None else int(rt.frozen_cache_max_gb * 1e9)
    cache = FrozenFeatureCache(rt.frozen_cache_dir, max_bytes=bound)
    return model.attach_frozen_cache(cache, train=not cell.config.recipe.augment)


def _run(cell: Cell, store: Any, work: Path, callbacks: list[Any], started: float) -> dict[str, Any]:
    import lightning as L

    from benchmark.runner import perturbed
    from benchmark.runner.cell_data import (
        check_conditions,
        check_eval_sets,
        data_protocols,
        ensure_manifests,
        eval_sets,
        load_factory,
        reads_manifests,
    )
    from detectors import create_detector, get_detector_class

    work.mkdir(parents=True, exist_ok=True)
    c = cell.config
    parent = perturbed.parent_record(cell, store) if c.perturbed else None
    parent_ckpt = None if parent is None else perturbed.parent_checkpoint(cell, parent)
    settings = get_detector_class(c.detector).resolve_settings(**c.overrides)
    timings: dict[str, float] = {}
    t = time.time()
    manifests = ensure_manifests(c, cell.runtime) if reads_manifests(c.datamodule) else {}
    timings["preprocess_s"] = round(time.time() - t, 3)

    L.seed_everything(cell.seed, workers=True, verbose=False)
    model = create_detector(c.detector, **c.overrides) if c.weights is None else released_model(cell)
    cache_mode = attach_frozen_cache(cell, model)
    dm = load_factory(c.datamodule)(c, model.data_spec, manifests)
    check_eval_sets(dm, c)
    if parent is not None:
        check_conditions(dm, c)
    writer = ScoreWriter(eval_sets(c))
    trainer, ckpt = _trainer(cell, work, [*callbacks, writer])
    resumed, best = False, None
    if parent is not None:  # a derived cell: the parent's checkpoint (None: released weights), no training
        best = None if parent_ckpt is None else str(parent_ckpt)
    elif c.weights is None:
        last = work / "checkpoints" / "last.ckpt"
        resumed = last.is_file() and _readable_checkpoint(last)
        if not resumed:  # a fresh start: an abandoned attempt's checkpoints must not linger (nor rename -v1)
            for stale in (work / "checkpoints").glob("*.ckpt"):
                stale.unlink()
        t = time.time()
        trainer.fit(model, datamodule=dm, ckpt_path=str(last) if resumed else None)
        if trainer.interrupted:
            raise RuntimeError("training was interrupted")
        timings["fit_s"] = round(time.time() - t, 3)
        best = ckpt.best_model_path or str(last)
        if not best or not Path(best).is_file():
            raise RuntimeError(f"no checkpoint was written in {work / 'checkpoints'}")

    tested = best or cell.runtime.weights_path  # no best checkpoint: released weights are scored
    if tested is None:
        raise RuntimeError(
            f"cell {cell.cell_id} ({cell.label}): neither a checkpoint nor released weights to score"
        )
    t = time.time()
    scores = score_sets(cell, trainer, model, dm, writer, best)
    if parent is not None:
        scores[perturbed.TAG_COLUMN] = c.condition.tag
    timings["test_s"] = round(time.time() - t, 3)
    timings["total_s"] = round(time.time() - started, 3)

    record = {
        **base_record(cell),
        "status": "done",
        "checkpoint": str(Path(tested).resolve()),
        "best_val_auc": float(ckpt.best_model_score) if ckpt.best_model_score is not None else None,
        "resumed": resumed,
        "pretrained_loaded": bool(model.pretrained_loaded),
        "reference": settings.reference,
        "recipe_source": settings.recipe.source,
        "recipe_overrides": {k: list(v) for k, v in settings.recipe_changes().items()},
        "arch_overrides": c.arch_overrides,
        "arch_defaults": jsonable(settings.overridden_defaults()),
        "manifest_hash": {n: file_sha256(p) for n, p in manifests.items() if Path(p).is_file()},
        "data_protocols": data_protocols(manifests),
        "n_scores": len(scores),
        "timings": timings,
        "frozen_cache": cache_mode,
    }
    if model.frozen_cache is not None:
        record["frozen_cache_stats"] = model.frozen_cache.stats.to_dict()
    if c.weights is not None:
        record["weights"] = {
            "mode": "released",
            **asdict(c.weights),
            "label": c.weights.label,
            "path": str(Path(tested).resolve()),
        }
    if parent is not None:
        record.update(perturbed.record_fields(cell, parent, Path(record["checkpoint"])))
    if trainer.is_global_zero:
        store.write_cell(cell.cell_id, scores, record)
        write_progress(work / "progress.json", stage="done")
    return record


def main(argv: list[str] | None = None) -> int:
    """Command line: run the cell of a spec file; returns 1 when it failed."""
    p = argparse.ArgumentParser(
        prog="python -m benchmark.runner.cell", description="Run one cell from a spec file."
    )
    p.add_argument("spec", type=Path)
    args = p.parse_args(argv)
    cell = Cell.from_json(json.loads(args.spec.read_text()))
    try:
        run_cell(cell)
    except CellFailed as e:
        print(str(e), file=sys.stderr)
        traceback.print_exception(e.__cause__ or e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

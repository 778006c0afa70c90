"""Run a sweep (``benchmark.run.main``) that SIGKILLs itself at one named point, for the fault-injection tests.

    python -m tests.fault_driver POINT MARKER -- <benchmark.run arguments>

Before killing, the driver appends ``POINT`` to the file ``MARKER``, so a test can tell a kill that
happened from a point that was never reached. Kills are ``SIGKILL`` (no cleanup, no ``finally``, no atexit)
and hit real code paths: a Lightning callback inside ``fit``/``test``, the temp-file commit of Lightning's
checkpoint writer (fsspec), the score store's atomic writer and the leaderboard writer are wrapped so the
process dies in the middle of what they do. Cells must run in this process: pass ``--launcher inline``.
``preprocess`` kills inside the sweep's preprocessing stage (``benchmark.runner.cell_data.ensure_manifests`` ->
``preprocess_dataset``) after the first video's files are written.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

POINTS = (
    "preprocess",  # after the first video's crop files, before its rows file (the resume marker)
    "epoch0",  # mid-epoch, before any checkpoint exists
    "epoch1",  # mid-epoch after last.ckpt of epoch 0 was written
    "checkpoint",  # a checkpoint fully written to its temp file, not yet moved into place
    "checkpoint_torn",  # half of last.ckpt copied into place (an interrupted cross-device move)
    "testing",  # while the best checkpoint scores the second evaluation set (the first test set)
    "scores",  # half of scores.parquet written to its temp file
    "record",  # scores.parquet in place, the `done` record not yet written
    "leaderboard",  # README.md rendered, half of the first detector page written
)


def die(point: str, marker: Path) -> None:
    with open(marker, "a") as f:
        f.write(point + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


class _KillIn(Callback):
    def __init__(self, point: str, marker: Path) -> None:
        self.point, self.marker = point, marker

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx == 1 and self.point == f"epoch{trainer.current_epoch}":
            die(self.point, self.marker)

    def on_test_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if self.point == "testing" and dataloader_idx == 1:
            die(self.point, self.marker)


def install(point: str, marker: Path) -> None:
    """Wrap the code of ``point`` so this process SIGKILLs itself in the middle of it."""
    if point not in POINTS:
        raise SystemExit(f"unknown kill point {point!r}; known: {', '.join(POINTS)}")
    import benchmark.runner.cell as cell_mod

    make_trainer = cell_mod._trainer

    def trainer_with_killer(cell: Any, work: Path, callbacks: list[Any]) -> Any:
        return make_trainer(cell, work, [*callbacks, _KillIn(point, marker)])

    cell_mod._trainer = trainer_with_killer

    if point.startswith("checkpoint"):
        import shutil

        from fsspec.implementations.local import LocalFileOpener

        commit = LocalFileOpener.commit

        def killing_commit(self: LocalFileOpener) -> None:
            if str(self.path).endswith("last.ckpt") and Path(self.path).exists():  # the 2nd save of last.ckpt
                self.f.close()
                if point == "checkpoint_torn":
                    data = Path(self.temp).read_bytes()
                    Path(self.path).write_bytes(data[: len(data) // 2])
                die(point, marker)
            commit(self)

        LocalFileOpener.commit = killing_commit
        del shutil

    if point in ("scores", "record"):
        import benchmark.store as store_mod

        write = store_mod._atomic_write_bytes

        def killing_write(path: Path, data: bytes) -> None:
            if point == "scores" and path.name == "scores.parquet":
                from datamodules.atomic import temp_path

                temp_path(path).write_bytes(data[: len(data) // 2])  # where the atomic writer puts it
                die(point, marker)
            if point == "record" and path.name == "record.json" and b'"status": "done"' in data:
                die(point, marker)
            write(path, data)

        store_mod._atomic_write_bytes = killing_write

    if point == "leaderboard":
        import benchmark.report.leaderboard as lb

        lb_write = lb._write
        calls = []

        def killing_lb_write(path: Path, text: str) -> Path:
            from datamodules.atomic import temp_path

            calls.append(path)
            if len(calls) == 2:  # half of the page in the temporary file the atomic writer would use
                temp_path(path).write_text(text[: len(text) // 2])
                die(point, marker)
            return lb_write(path, text)

        lb._write = killing_lb_write

    if point == "preprocess":
        import datamodules.atomic as atomic_mod  # every file preprocessing writes goes through write_bytes

        write_bytes = atomic_mod.write_bytes
        writes = []

        def killing_write_bytes(path: Path, data: bytes, **kw: Any) -> Path:
            out = write_bytes(path, data, **kw)
            writes.append(Path(path))
            if Path(path).suffix == ".png" and len([p for p in writes if p.suffix == ".png"]) == 2:
                die(point, marker)
            return out

        atomic_mod.write_bytes = killing_write_bytes


def main(argv: list[str]) -> int:
    point, marker, sep, *rest = argv
    if sep != "--":
        raise SystemExit("usage: python -m tests.fault_driver POINT MARKER -- <benchmark.run args>")
    if point != "none":
        install(point, Path(marker))
    if point == "preprocess" and rest[0] == "ensure_manifests":
        import json

        from benchmark.runner.cell_data import ensure_manifests
        from benchmark.runner.cells import Cell

        cell = Cell.from_json(json.loads(Path(rest[1]).read_text()))
        ensure_manifests(cell.config, cell.runtime)
        return 0
    from benchmark.run import main as run_main

    return run_main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

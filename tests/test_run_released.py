"""``python -m benchmark.run --weights released``: published checkpoints scored under the whole protocol,
without training, end to end on the synthetic datamodule (tests/runner_fixtures.py).

The checkpoint is written in DeepfakeBench's format (``backbone.*`` and the 2-way ``backbone.last_linear``,
see tests/deepfakebench_reference.py) for the tiny grid's network, as DeepfakeBench's trainer saves it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from rich.console import Console

from benchmark.report.leaderboard import render
from benchmark.run import main
from benchmark.runner.cell import CellFailed, run_cell
from benchmark.runner.cells import Runtime
from benchmark.runner.data_config import parse_data_config
from benchmark.runner.grid import load_grid
from benchmark.runner.plan import WeightsError, plan_cells
from benchmark.store import ScoreStore
from detectors import create_detector
from detectors.convert import load_converted
from tests.helpers import SyntheticDataModule
from tests.runner_fixtures import write_data_config, write_grid

TINY = {"arch": "test_resnet", "pretrained": False, "input_size": 32}  # the tiny grid's network
N = 8  # synthetic samples per split and set


def _console() -> Console:
    return Console(record=True, width=300, force_terminal=False)


def _args(root: Path, *extra: str) -> list[str]:
    return [
        "--grid",
        str(root / "tiny.yaml"),
        "--data",
        str(root / "datasets.yaml"),
        "--out",
        str(root / "out"),
        "--datamodule",
        "tests.runner_fixtures:synthetic",
        "--no-leaderboard",
        "--launcher",
        "inline",
        *extra,
    ]


def write_deepfakebench_xception(path: Path, seed: int = 0) -> Path:
    """``xception_best.pth`` for the tiny network: DeepfakeBench's names, a 2-way head, DDP's prefix."""
    torch.manual_seed(seed)
    ours = create_detector("xception", **TINY).state_dict()
    prefix = "net.backbone."
    state = {f"module.backbone.{k[len(prefix) :]}": v for k, v in ours.items() if k.startswith(prefix)}
    w, b = ours["net.head.fc.weight"], ours["net.head.fc.bias"]
    real_w, real_b = torch.randn_like(w), torch.randn_like(b)
    state["module.backbone.last_linear.weight"] = torch.cat([real_w, real_w + 3 * w])
    state["module.backbone.last_linear.bias"] = torch.cat([real_b, real_b + b])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    write_data_config(tmp_path)
    write_grid(tmp_path, detectors=["xception"])
    write_deepfakebench_xception(tmp_path / "weights" / "xception_best.pth")
    return tmp_path


def _cells(root: Path, **kw):
    data = parse_data_config(root / "datasets.yaml")
    rt = Runtime(store_root=root / "out/store", work_root=root / "out/cells", progress_bar=False)
    grid = load_grid(root / "tiny.yaml")
    return plan_cells(grid, data, datamodule="tests.runner_fixtures:synthetic", runtime=rt, **kw)


def test_released_weights_are_scored_without_training(tiny: Path) -> None:
    path = tiny / "weights" / "xception_best.pth"
    con = _console()
    assert (
        main(_args(tiny, "--weights", "released", "--weights-dir", str(tiny / "weights")), console=con) == 0
    )
    assert "released weights, no training" in con.export_text()
    store = ScoreStore(tiny / "out" / "store")
    [cid] = store.cell_ids("done")
    rec = store.record(cid)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert rec["weights"]["mode"] == "released" and rec["weights"]["sha256"] == sha
    assert rec["weights"]["source"] == "deepfakebench" and rec["weights"]["file"] == "xception_best.pth"
    assert rec["config"]["weights"] == {"source": "deepfakebench", "file": "xception_best.pth", "sha256": sha}
    # no training happened: no fit timing, no selected checkpoint, no checkpoint file written
    assert "fit_s" not in rec["timings"] and rec["best_val_auc"] is None and rec["pretrained_loaded"]
    assert rec["checkpoint"] == str(path.resolve())
    assert not list((tiny / "out" / "cells" / cid).rglob("*.ckpt"))

    scores = store.read_scores()
    assert sorted(set(zip(scores["split"], scores["test_set"], strict=True))) == [
        ("test", "a"),
        ("test", "b"),
        ("val", "train"),
    ]
    assert len(scores) == 3 * N
    # the scores are the converted released network's, on the same synthetic samples
    model = load_converted("deepfakebench", "xception", path, **TINY).eval()
    dm = SyntheticDataModule(model.data_spec, n=N, batch_size=4, test_sets=("a", "b"))
    expected = {}
    with torch.no_grad():
        for batch in dm.test_dataloader()[0]:
            expected |= dict(zip(batch.sample_id, torch.sigmoid(model(batch).logits).tolist(), strict=True))
    got = scores[scores.test_set == "a"].set_index("sample_id")["score"].to_dict()
    assert got.keys() == expected.keys()
    assert all(abs(got[k] - expected[k]) < 1e-6 for k in got)
    assert len({round(v, 6) for v in got.values()}) > 1  # the weights really score, not a constant

    # a trained cell of the same grid is another cell; both are rows of the leaderboard, not supersessions
    [trained] = _cells(tiny)
    [released] = _cells(tiny, weights="released", weights_dir=tiny / "weights")
    assert released.cell_id == cid != trained.cell_id
    run_cell(trained)
    written = render(tiny / "out" / "store", tiny / "lb", n_boot=20)
    readme = (tiny / "lb" / "README.md").read_text()
    assert f"released weights (deepfakebench xception_best.pth, sha256 {sha[:12]})" in readme
    assert "no (random init)" in readme and readme.count("[xception](") == 2
    page = (tiny / "lb" / "tiny" / "xception.md").read_text()
    assert "## Trained on `train` (released weights, not trained here)" in page
    assert "Superseded" not in page
    assert any(p.name.startswith("xception-train-released") for p in written)  # figures of their own


def test_missing_or_undeclared_released_weights_stop_before_any_cell_runs(tiny: Path) -> None:
    con = _console()
    empty = tiny / "nothing-here"
    assert main(_args(tiny, "--weights", "released", "--weights-dir", str(empty)), console=con) == 2
    text = con.export_text()
    expected = f"xception: released weights not found at {empty / 'xception_best.pth'}"
    assert expected in text and "releases/download/v1.0.1/xception_best.pth" in text
    assert len([line for line in text.splitlines() if "error:" in line]) == 1
    assert not (tiny / "out" / "cells").exists() or not any((tiny / "out" / "cells").iterdir())

    write_grid(tiny, detectors=["sbi_deepfakebench", "xception"])
    with pytest.raises(WeightsError, match=r"'sbi_deepfakebench' has no released checkpoint declared; .*sbi"):
        _cells(tiny, weights="released", weights_dir=tiny / "weights")
    with pytest.raises(WeightsError, match="--weights must be one of trained, released"):
        _cells(tiny, weights="finetuned")


def test_a_checkpoint_changed_after_planning_fails_its_cell(tiny: Path) -> None:
    [cell] = _cells(tiny, weights="released", weights_dir=tiny / "weights")
    write_deepfakebench_xception(tiny / "weights" / "xception_best.pth", seed=1)
    with pytest.raises(CellFailed, match="changed since the cell was planned"):
        run_cell(cell)
    rec = ScoreStore(tiny / "out" / "store").record(cell.cell_id)
    assert rec["status"] == "failed"


# ---------------------------------------------------------------------------------------------- Effort, GenD
# the published files, as their owners name them: Effort's README (YZY-stack/Effort-AIGI-Detection at 96f5dea)
# links the FF++ checkpoint on Google Drive, loaded as effort_clip_L14_trainOn_FaceForensic.pth by GenD's
# src/model/Effort.py; GenD's README (yermandy/GenD at e03532d) loads "yermandy/GenD_CLIP_L_14" from the hub,
# whose weights file is model.safetensors (transformers' save_pretrained), downloaded from the hub's resolve URL
EFFORT_FILE = "effort_clip_L14_trainOn_FaceForensic.pth"
EFFORT_URL = "https://drive.google.com/file/d/1m4fyJecABU-Yk3bJ4b1WhUwQa0xCkMLI/view"
GEND_FILE = "model.safetensors"
GEND_URL = "https://huggingface.co/yermandy/GenD_CLIP_L_14/resolve/main/model.safetensors"


def test_effort_and_gend_checkpoints_are_listed(capsys) -> None:
    from detectors.convert import main as convert

    assert convert(["--released"]) == 0
    rows = {r.split("\t")[0]: r.split("\t") for r in capsys.readouterr().out.splitlines()}
    assert rows["effort"][1:4] == ["effort", EFFORT_FILE, EFFORT_URL]
    assert rows["gend"][1:4] == ["gend", GEND_FILE, GEND_URL]


def _write_clip_releases(weights: Path) -> dict[str, Path]:
    """Tiny checkpoints in the released layouts (tests/clip_hf_reference.py), under the published names."""
    from safetensors.torch import save_file

    from detectors.clip_backbone import TINY_CLIP_CFG
    from tests.clip_hf_reference import effort_shapes, gend_shapes, materialise

    v = TINY_CLIP_CFG["vision_cfg"]
    geom = {"width": v["width"], "layers": v["layers"], "patch": v["patch_size"], "image": v["image_size"]}
    paths = {"effort": weights / EFFORT_FILE, "gend": weights / GEND_FILE}
    weights.mkdir(parents=True)
    torch.save(materialise(effort_shapes(**geom, principal=True), seed=1), paths["effort"])
    gend = materialise(gend_shapes(**geom, proj_dim=TINY_CLIP_CFG["embed_dim"]), seed=2)
    save_file(gend, paths["gend"], metadata={"format": "pt"})
    (paths["gend"].parent / "config.json").write_text(
        '{"backbone": "openai/clip-vit-large-patch14", "head": "LinearNorm", "model_type": "GenD"}'
    )
    return paths


def test_effort_and_gend_released_weights_are_found_and_scored(tmp_path: Path) -> None:
    write_data_config(tmp_path)
    write_grid(
        tmp_path,
        detectors=["effort", "gend"],
        defaults={"detector": {"tiny": True, "eval_batch_size": 4}, "data": {"num_workers": 0}},
    )
    weights = tmp_path / "weights"
    paths = _write_clip_releases(weights)
    planned = {
        c.detector: c.config.weights for c in _cells(tmp_path, weights="released", weights_dir=weights)
    }
    assert {d: (w.source, w.file) for d, w in planned.items()} == {
        "effort": ("effort", EFFORT_FILE),
        "gend": ("gend", GEND_FILE),
    }
    assert all(planned[d].sha256 == hashlib.sha256(p.read_bytes()).hexdigest() for d, p in paths.items())

    assert (
        main(_args(tmp_path, "--weights", "released", "--weights-dir", str(weights)), console=_console()) == 0
    )
    store = ScoreStore(tmp_path / "out" / "store")
    scores = store.read_scores()
    for det, path in paths.items():
        model = load_converted(det, det, path, tiny=True).eval()
        dm = SyntheticDataModule(model.data_spec, n=N, batch_size=4, test_sets=("a", "b"))
        with torch.no_grad():
            expected = {
                sid: float(p)
                for batch in dm.test_dataloader()[0]
                for sid, p in zip(batch.sample_id, torch.sigmoid(model(batch).logits), strict=True)
            }
        got = scores[(scores.detector == det) & (scores.test_set == "a")].set_index("sample_id")["score"]
        assert got.to_dict().keys() == expected.keys()
        assert all(abs(got[k] - expected[k]) < 1e-5 for k in expected), det
        assert len({round(s, 6) for s in expected.values()}) > 1  # the weights really score

    (weights / GEND_FILE).unlink()
    with pytest.raises(
        WeightsError, match=rf"gend: released weights not found at .*{GEND_FILE} \(published at {GEND_URL}\)"
    ):
        _cells(tmp_path, weights="released", weights_dir=weights)

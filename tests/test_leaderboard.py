"""Leaderboards: rendered from the store alone, deterministic, with the numbers of benchmark.metrics."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.metrics import auc, cross_auc_matrix
from benchmark.report.leaderboard import main, render
from benchmark.store import ScoreStore

SETS = ["dom-A", "dom-B", "dom-C"]
SHIFT = {"dom-A": 0.0, "dom-B": 0.25, "dom-C": -0.2}


def _frames(cell_id: str, seed: int, rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for split, sets in (("val", ["dom-A"]), ("test", SETS)):
        for ds in sets:
            for v in range(12):
                label = v % 2
                for f in range(3):
                    base = 0.3 + 0.4 * label + (SHIFT[ds] if split == "test" else 0.0)
                    rows.append(
                        {
                            "cell_id": cell_id,
                            "detector": "resnet34",
                            "train_set": "dom-A",
                            "test_set": ds,
                            "split": split,
                            "dataset": ds,
                            "video_id": f"{ds}/{split}/{label}/v{v}",
                            "sample_id": f"{ds}/{split}/{label}/v{v}/{f}",
                            "label": label,
                            "method": "fake" if label else "real",
                            "score": float(np.clip(base + rng.normal(0, 0.15), 0, 1)),
                            "seed": seed,
                        }
                    )
    return pd.DataFrame(rows)


def fill_store(root: Path, seeds: tuple[int, ...] = (0, 1), origin: str = "demo") -> ScoreStore:
    store = ScoreStore(root)
    for seed in seeds:
        cid = f"cell{seed:04d}"
        config = {
            "grid": "g1",
            "detector": "resnet34",
            "seed": seed,
            "train_set": {"name": "dom-A", "dataset": "dom-A", "methods": []},
            "test_sets": [{"name": s, "dataset": s, "methods": []} for s in SETS],
            "origin": origin,
        }
        record = {
            "grid": "g1",
            "detector": "resnet34",
            "train_set": "dom-A",
            "seed": seed,
            "config": config,
            "pretrained_loaded": False,
            "recipe_source": "test recipe",
            "recipe_overrides": {"epochs": [10, 2]},
            "arch_overrides": {"input_size": 32},
            "best_val_auc": 0.9,
            "checkpoint": f"/x/{cid}/best.ckpt",
            "versions": {"torch": "2.x"},
            "timings": {"fit_s": 1.0, "test_s": 0.5},
        }
        store.write_cell(cid, _frames(cid, seed, np.random.default_rng(seed)), record)
    store.write_record("crashed0", {"config": {}}, "failed")  # failed cells never reach a leaderboard
    return store


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_leaderboard_is_byte_identical_on_re_render(tmp_path: Path) -> None:
    fill_store(tmp_path / "store")
    first = render(tmp_path / "store", tmp_path / "lb", n_boot=200)
    d1 = _digest(tmp_path / "lb")
    assert {p.name for p in first} >= {"README.md", "resnet34.md", "resnet34-dom-A-cross_auc.png"}
    render(tmp_path / "store", tmp_path / "lb2", n_boot=200)
    render(tmp_path / "store", tmp_path / "lb", n_boot=200)
    assert _digest(tmp_path / "lb") == d1
    assert _digest(tmp_path / "lb2") == d1


def test_leaderboard_content_matches_the_metrics(tmp_path: Path) -> None:
    store = fill_store(tmp_path / "store", seeds=(0,))
    render(tmp_path / "store", tmp_path / "lb", n_boot=100)
    readme = (tmp_path / "lb" / "README.md").read_text()
    page = (tmp_path / "lb" / "g1" / "resnet34.md").read_text()
    assert "Cross-AUC (real_i vs fake_j)" in readme and "demo" in readme
    assert "[resnet34](g1/resnet34.md)" in readme and "no (random init)" in readme
    test = store.read_scores(split="test")
    m = cross_auc_matrix(test, datasets=SETS)
    # every Cross-AUC cell of the page is the metric's number
    for i in SETS:
        row = next(line for line in page.splitlines() if line.startswith(f"| **{i}** |"))
        cells = [c.strip() for c in row.strip("|").split("|")][1:]
        assert [c.split(" ")[0] for c in cells] == [f"{m.loc[i, j]:.3f}" for j in SETS]
    # per-test-set frame AUC, independently from the frames
    for ds in SETS:
        d = test[test.dataset == ds]
        assert f"| {ds} | 6/6 | {auc(d.label, d.score):.3f} |" in page
    worst = min((m.loc[i, j], i, j) for i in SETS for j in SETS if i != j)
    assert f"({worst[1]} -> {worst[2]})" in readme
    assert "| epochs | 10 | 2 |" in page and "| input_size | (default) | 32 |" in page
    assert "crashed0" not in readme + page


def test_two_seeds_are_averaged(tmp_path: Path) -> None:
    store = fill_store(tmp_path / "store", seeds=(0, 1))
    render(tmp_path / "store", tmp_path / "lb", n_boot=100)
    page = (tmp_path / "lb" / "g1" / "resnet34.md").read_text()
    test = store.read_scores(split="test")
    per_seed = [cross_auc_matrix(test[test.seed == s], datasets=SETS).loc["dom-B", "dom-C"] for s in (0, 1)]
    row = next(line for line in page.splitlines() if line.startswith("| **dom-B** |"))
    assert row.split("|")[4].strip().startswith(f"{np.mean(per_seed):.3f}")
    assert "| 0 | `cell0000` |" in page and "| 1 | `cell0001` |" in page


def test_leaderboard_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--store", str(tmp_path / "none"), "--out", str(tmp_path / "lb")]) == 2
    fill_store(tmp_path / "store", seeds=(0,))
    assert main(["--store", str(tmp_path / "store"), "--out", str(tmp_path / "lb"), "--bootstrap", "50"]) == 0
    assert (tmp_path / "lb" / "README.md").is_file()


def test_cells_of_other_settings_are_listed_not_averaged(tmp_path: Path) -> None:
    """A grid edited between two runs leaves cells of the old settings in the store: the page scores only
    the latest settings and lists the older cell with what differs, instead of calling it another seed."""
    store = fill_store(tmp_path / "store", seeds=(0,))
    old = store.record("cell0000")
    new_config = {**old["config"], "overrides": {"epochs": 1}}
    new = {**old, "config": new_config, "finished_at": "2026-01-02T00:00:00+00:00"}
    frames = _frames("cellnew0", 0, np.random.default_rng(7))
    store.write_cell("cellnew0", frames, new)
    store.write_record("cell0000", {**old, "finished_at": "2026-01-01T00:00:00+00:00"}, "done")
    render(tmp_path / "store", tmp_path / "lb", n_boot=50)
    page = (tmp_path / "lb" / "g1" / "resnet34.md").read_text()
    readme = (tmp_path / "lb" / "README.md").read_text()
    assert "Seeds: 0." in page and "Seeds: 0, 0" not in page
    m = cross_auc_matrix(frames[frames.split == "test"], datasets=SETS)
    row = next(line for line in page.splitlines() if line.startswith("| **dom-B** |"))
    assert row.split("|")[4].strip().startswith(f"{m.loc['dom-B', 'dom-C']:.3f}")
    assert "### Superseded cells" in page
    assert "| 0 | `cell0000` | 2026-01-01T00:00:00+00:00 | overrides.epochs = null |" in page
    assert "| demo | 0 |" in readme  # one seed in the README row too


def test_the_page_header_names_the_reference(tmp_path: Path) -> None:
    """``paper`` or ``released`` (``detectors.settings``); records written before references were paper."""
    store = fill_store(tmp_path / "store", seeds=(0,))
    render(tmp_path / "store", tmp_path / "lb", n_boot=20)
    assert "Reference: paper." in (tmp_path / "lb" / "g1" / "resnet34.md").read_text()
    store.write_record("cell0000", {**store.record("cell0000"), "reference": "released"}, "done")
    render(tmp_path / "store", tmp_path / "lb", n_boot=20)
    page = (tmp_path / "lb" / "g1" / "resnet34.md").read_text()
    assert "Reference: released." in page and "### Overrides from the reference's recipe" in page

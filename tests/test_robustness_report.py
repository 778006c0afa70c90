"""Robustness pages: derived cells (test-time conditions) are kept out of the clean groups, and their
tables hold what independent references compute from the stored scores (brute-force AUCs over exact video
means, ``tests/test_leaderboard.Reference``), printed from the column declarations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark.report import columns
from benchmark.report.analysis import analyse
from benchmark.report.groups import collect
from benchmark.report.leaderboard import md_table, render
from benchmark.report.robustness import robustness
from benchmark.store import ScoreStore
from tests.test_leaderboard import CONDITIONS, DEEPERFORENSICS, SETS, Reference, fill_store, stored_children

N_BOOT = 40


def _references(root: Path, records: list[dict]) -> list[tuple[Reference, dict[str, Reference]]]:
    """Per seed: the clean test's reference and one per derived cell, from the store's files."""
    store = ScoreStore(root)
    out = []
    for r in records:
        test = store.read_scores(cell_id=r["cell_id"], split="test").reset_index(drop=True)
        kids = stored_children(root, r["cell_id"])
        out.append((Reference(test), {tag: Reference(f) for tag, f in kids.items()}))
    return out


def _row_reference(refs, tag: str | None) -> dict[str, float]:
    """Seed means of the condition's video-level numbers, its change from clean and its worst pair."""

    def pick(clean, kids):
        return clean if tag is None else kids[tag]

    stats = [pick(*r).summary("video") for r in refs]
    clean = [c.summary("video")["diag_mean"] for c, _ in refs]
    mats = [np.array([[pick(*r).entry("video", i, j) for j in SETS] for i in SETS]) for r in refs]
    m = sum(mats) / len(mats)
    off = {(SETS[i], SETS[j]): m[i, j] for i in range(3) for j in range(3) if i != j}
    return {
        "video_auc": np.mean([s["diag_mean"] for s in stats]),
        "auc_change": np.mean([s["diag_mean"] for s in stats]) - np.mean(clean),
        "pair_mean": np.mean([s["pair_mean"] for s in stats]),
        "worst": np.mean([s["worst"] for s in stats]),
        "worst_pair": min(off, key=off.get),
    }


#: one reference per column of the robustness tables (key -> what the row reference holds)
ROBUSTNESS_REFERENCES = {"video_auc", "auc_change", "pair_mean", "worst"}


def test_every_robustness_column_has_a_reference() -> None:
    for table in (columns.ROBUSTNESS, columns.ROBUSTNESS_MEAN, columns.SENSITIVITY):
        assert {c.key for c in table.columns} <= ROBUSTNESS_REFERENCES


def test_derived_cells_are_never_a_group_or_a_seed(tmp_path: Path) -> None:
    store = fill_store(tmp_path / "store", seeds=(0, 1))
    (group,) = collect(store)
    assert [r["cell_id"] for r in group.records] == ["cell0000", "cell0001"] and group.superseded == []
    assert set(group.scores) == {"cell0000", "cell0001"}
    assert {p: sorted(k) for p, k in group.perturbed.items()} == {
        "cell0000": sorted(CONDITIONS),
        "cell0001": sorted(CONDITIONS),
    }
    assert sorted(group.perturbed_scores) == sorted(f"cell000{s}-c{k}" for s in (0, 1) for k in range(4))
    assert set(store.read_scores().cell_id) == {"cell0000", "cell0001"}  # clean reads: parents only
    a = analyse(group, n_boot=N_BOOT)
    assert a.conditions == ["gaussian_blur@1", "gaussian_blur@3", "jpeg_compression@3", "zoom1.2"]
    assert a.incomplete == []


@pytest.mark.parametrize("seeds", [(0,), (0, 1)])
def test_robustness_rows_match_independent_references(tmp_path: Path, seeds) -> None:
    fill_store(tmp_path / "store", seeds=seeds, decimals=2)
    (group,) = collect(ScoreStore(tmp_path / "store"))
    a = analyse(group, n_boot=N_BOOT)
    rob = robustness(a)
    refs = _references(tmp_path / "store", group.records)

    def check(row, tag):
        want = _row_reference(refs, tag)
        for key in ROBUSTNESS_REFERENCES:
            assert row.values[key].value == pytest.approx(want[key], abs=1e-12), (tag, key)
        assert row.worst_pair == want["worst_pair"], tag

    assert [r.labels for r in rob.distortions] == [
        ("clean", "0"), ("gaussian_blur", "1"), ("gaussian_blur", "3"), ("jpeg_compression", "3"),
    ]  # fmt: skip
    for row in rob.distortions:
        check(row, row.condition)
    assert [r.labels for r in rob.views] == [("stored crops",), ("zoom1.2",)]
    for row in rob.views:
        check(row, row.condition)
    # the mean over the distortions scored at each level
    by_level = {0: [None], 1: ["gaussian_blur@1"], 3: ["gaussian_blur@3", "jpeg_compression@3"]}
    assert [r.labels for r in rob.means] == [("0", "clean"), ("1", "1: GB"), ("3", "2: GB, JPEG")]
    for row, (level, tags) in zip(rob.means, by_level.items(), strict=True):
        for key in ROBUSTNESS_REFERENCES:
            want = np.mean([_row_reference(refs, t)[key] for t in tags])
            assert row.values[key].value == pytest.approx(want, abs=1e-12), (level, key)
    # the README column: LipForensics' summary over the DeeperForensics distortions (the view left out)
    want = np.mean([r.robust()[0] for r in (Reference(c.units["frame"], perturbed={
        t: k.units["frame"] for t, k in kids.items()}) for c, kids in refs)])  # fmt: skip
    assert a.summary["robust_auc"].value == pytest.approx((want, 3.0), abs=1e-12)
    gb = np.mean([(kids["gaussian_blur@1"].summary("video")["diag_mean"] + kids["gaussian_blur@3"].summary(
        "video")["diag_mean"]) / 2 for _, kids in refs])  # fmt: skip
    jpeg = np.mean([kids["jpeg_compression@3"].summary("video")["diag_mean"] for _, kids in refs])
    assert want == pytest.approx((gb + jpeg) / 2, abs=1e-12)  # per distortion first, then over distortions
    assert "gaussian_blur" in DEEPERFORENSICS


def test_the_page_prints_the_declared_tables_and_the_readme_the_column(tmp_path: Path) -> None:
    fill_store(tmp_path / "store", seeds=(0, 1))
    render(tmp_path / "store", tmp_path / "lb", n_boot=N_BOOT)
    page = (tmp_path / "lb" / "g1" / "resnet34.md").read_text()
    readme = (tmp_path / "lb" / "README.md").read_text()
    (group,) = collect(ScoreStore(tmp_path / "store"))
    a = analyse(group, n_boot=N_BOOT)
    rob = robustness(a)
    for table, rows in ((columns.ROBUSTNESS, rob.distortions), (columns.ROBUSTNESS_MEAN, rob.means),
                        (columns.SENSITIVITY, rob.views)):  # fmt: skip
        assert md_table(table.headers, [table.row(r, r.values, r) for r in rows]) in page
    assert "![robustness curves](figures/resnet34-dom-A-robustness.png)" in page
    assert (tmp_path / "lb" / "g1" / "figures" / "resnet34-dom-A-robustness.png").is_file()
    value = columns.robust_value(a.summary["robust_auc"], a)
    assert value.endswith(" (3/35)") and f"| {value} |" in readme
    assert "*robust AUC*" in columns.cross_auc_note() and "LipForensics" in columns.cross_auc_note()
    assert "| gaussian_blur | 3 |" in page and "| zoom1.2 |" in page


def test_incomplete_and_stale_conditions_are_left_out(tmp_path: Path) -> None:
    store = fill_store(tmp_path / "store", seeds=(0, 1))
    store.write_record("cell0001-c1", store.record("cell0001-c1"), "failed")  # seed 1 lacks blur@3
    stale = store.record("cell0000-c2")  # seed 0's jpeg@3 scored an earlier run of its parent
    store.write_record(
        "cell0000-c2", {**stale, "parent": {"finished_at": "2000-01-01T00:00:00+00:00"}}, "done"
    )
    (group,) = collect(store)
    assert "jpeg_compression@3" not in group.perturbed["cell0000"]
    a = analyse(group, n_boot=N_BOOT)
    assert a.conditions == ["gaussian_blur@1", "zoom1.2"]
    assert a.incomplete == ["gaussian_blur@3", "jpeg_compression@3"]
    assert a.summary["robust_auc"].value[1] == 1.0  # only blur@1 counts
    render(tmp_path / "store", tmp_path / "lb", n_boot=N_BOOT)
    page = (tmp_path / "lb" / "g1" / "resnet34.md").read_text()
    assert "Scored for some seeds only, left out above: gaussian_blur@3, jpeg_compression@3." in page
    assert "| gaussian_blur | 3 |" not in page


def test_a_group_without_derived_cells_renders_as_before(tmp_path: Path) -> None:
    fill_store(tmp_path / "store", seeds=(0,), conditions={})
    render(tmp_path / "store", tmp_path / "lb", n_boot=N_BOOT)
    page = (tmp_path / "lb" / "g1" / "resnet34.md").read_text()
    readme = (tmp_path / "lb" / "README.md").read_text()
    assert "### Robustness" not in page and "robustness curves" not in page
    (row,) = [line for line in readme.splitlines() if line.startswith("| [resnet34]")]
    assert row.endswith("| n/a |")
    assert not list((tmp_path / "lb").rglob("*robustness*"))

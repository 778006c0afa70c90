"""Confounds on the leaderboard: the matched Cross-AUC of every pair against an independent reference, the
shortcut detector's cells beside a detector's, the confounded verdict, and the runner's shortcut cells."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.report import columns
from benchmark.report.analysis import SHORTCUT, analyse, wins
from benchmark.report.groups import collect
from benchmark.report.leaderboard import analyse_groups, render
from benchmark.runner import shortcut
from benchmark.store import ScoreStore
from datamodules.manifest import CONFOUNDS
from tests.test_leaderboard import REFERENCES, SETS, SMALL_NORMALISATION, Reference, fill_store

N_BOOT = 40


def _features(frames: pd.DataFrame) -> pd.DataFrame:
    """Per-video confound features (constant over a video's frames but for a little noise): in dom-B the
    fakes are larger faces (a confound), elsewhere the sizes are alike; sharpness is noise; the rest missing."""
    rng = np.random.default_rng(7)
    vids = frames["video_id"].unique()
    size = dict(zip(vids, rng.normal(120, 10, len(vids)), strict=True))
    sharp = dict(zip(vids, rng.gamma(2, 50, len(vids)), strict=True))
    out = frames.copy()
    fake_b = (out["dataset"] == "dom-B") & (out["label"] == 1)
    out["face_px"] = out["video_id"].map(size) + np.where(fake_b, 60.0, 0.0)
    out["sharpness"] = out["video_id"].map(sharp) + rng.normal(0, 1, len(out))
    for c in CONFOUNDS:
        if c not in ("face_px", "sharpness"):
            out[c] = np.nan
    return out


def add_shortcut(root: Path) -> pd.DataFrame:
    """A shortcut cell as the runner writes it: the seed-0 cell's frames, its confound features, and a score
    from the face size alone."""
    store = ScoreStore(root)
    base = store.read_scores(cell_id="cell0000", axis="dataset")
    frames = _features(base)
    z = (frames["face_px"] - 140) / 20
    frames = frames.assign(score=1 / (1 + np.exp(-z)), cell_id="shortcut-x", detector=SHORTCUT)
    rec = store.record("cell0000")
    record = {
        **{k: rec[k] for k in ("grid", "train_set", "seed")},
        "detector": SHORTCUT,
        "config": {**rec["config"], "detector": SHORTCUT},
        "template_cell_id": "cell0000",
    }
    store.write_cell("shortcut-x", frames, record)
    return frames


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    fill_store(root, seeds=(0, 1), conditions={})
    feats = add_shortcut(root)
    groups = collect(ScoreStore(root))
    analyses = analyse_groups(groups, N_BOOT, SMALL_NORMALISATION)
    by = {g.detector: (g, analyses[i]) for i, g in enumerate(groups)}
    return root, by, feats


def test_matched_cross_auc_of_every_pair_matches_the_reference(analysed):
    """Every CONFOUNDS column against its entry in tests/test_leaderboard.py::REFERENCES."""
    root, by, feats = analysed
    g, a = by["resnet34"]
    sg, _ = by[SHORTCUT]
    assert a.confound_features == ("face_px", "sharpness")
    keys = ["dataset", "split", "sample_id"]
    short = sg.scores[sg.records[0]["cell_id"]]
    short_ref = Reference(short[short.split == "test"].reset_index(drop=True))
    refs = []
    for r in g.records:
        f = g.scores[r["cell_id"]].drop(columns=list(CONFOUNDS))  # all NaN: the store-wide read
        test = f[f.split == "test"].merge(feats[keys + list(CONFOUNDS)], on=keys, how="left")
        refs.append(Reference(test.reset_index(drop=True), shortcut=short_ref, features=tuple(CONFOUNDS)))
    assert len(a.confounds) == len(SETS) ** 2
    for c in columns.CONFOUNDS.columns:
        for row, values in a.confounds.items():
            vals = [REFERENCES["confounds", c.key](r, row.pair) for r in refs]
            want = (
                tuple(np.mean(np.array(vals, float), axis=0)) if isinstance(vals[0], tuple) else np.mean(vals)
            )
            assert values[c.key].value == pytest.approx(want, abs=1e-9), (c.key, row)
    for row, values in a.confounds.items():  # the raw column's interval is the matrix's
        assert (values["raw_auc"].lo, values["raw_auc"].hi) == (
            a.matrix_lo.loc[row.pair],
            a.matrix_hi.loc[row.pair],
        )


def test_the_shortcut_is_scored_like_a_detector_and_flags_the_pairs_it_also_wins(analysed):
    _, by, _ = analysed
    (_, a), (_, s) = by["resnet34"], by[SHORTCUT]
    assert a.shortcut is s
    # the shortcut reads face size only: it separates the pairs whose fakes are dom-B's larger faces
    for i in SETS:
        assert s.matrix.loc[i, "dom-B"] > 0.9
        assert abs(s.matrix.loc[i, "dom-A"] - 0.5) < 0.3
    for row, values in a.confounds.items():
        assert values["shortcut_auc"].value == pytest.approx(s.matrix.loc[row.pair], abs=1e-12)
        both = wins(a.matrix_lo.loc[row.pair]) and wins(s.matrix_lo.loc[row.pair])
        assert row.confounded == both == (row.pair in a.confounded)
    assert any(j == "dom-B" for _, j in a.confounded)
    assert all(j == "dom-B" for _, j in a.confounded)
    # the shortcut's own page matches on its features but judges nothing
    assert s.confounds and not s.confounded and s.shortcut is None
    assert by[SHORTCUT][0].pretrained == "n/a (confound features only)"


def test_without_features_the_section_says_how_to_get_them(tmp_path):
    fill_store(tmp_path / "store", seeds=(0,), conditions={})
    (g,) = collect(ScoreStore(tmp_path / "store"))
    a = analyse(g, N_BOOT, SMALL_NORMALISATION)
    assert a.confounds == {} and a.confounded == [] and a.shortcut is None
    written = render(tmp_path / "store", tmp_path / "lb", n_boot=N_BOOT, normalisation=SMALL_NORMALISATION)
    page = next(p for p in written if p.name == "resnet34.md").read_text()
    assert columns.CONFOUNDS_MISSING in page


def test_the_page_prints_the_confounds_section(analysed, tmp_path):
    root, by, _ = analysed
    written = render(root, tmp_path / "lb", n_boot=N_BOOT, normalisation=SMALL_NORMALISATION)
    page = next(p for p in written if p.name == "resnet34.md").read_text()
    assert "#### Confounds: matched Cross-AUC and the shortcut detector" in page
    assert columns.CONFOUNDS_INTRO in page and "**confounded**" in page
    assert any(p.name == f"{SHORTCUT}.md" for p in written)  # the shortcut has its own page and row


def test_shortcut_name_cannot_collide_with_a_registered_detector():
    from detectors import list_detectors

    assert shortcut.NAME == SHORTCUT
    assert shortcut.NAME not in list_detectors()


# --------------------------------------------------------------------------- the runner's shortcut cells


def _planned(tmp_path: Path):
    from benchmark.runner.data_config import parse_data_config
    from benchmark.runner.grid import load_grid
    from benchmark.runner.plan import plan_cells
    from tests.runner_fixtures import write_data_config, write_grid

    write_data_config(tmp_path)
    (cell,) = plan_cells(load_grid(write_grid(tmp_path)), parse_data_config(tmp_path / "datasets.yaml"))
    return cell


def _template_rows(cell, processed: Path) -> pd.DataFrame:
    """What a finished cell stores: the source val split and each test set's test split, one row per ok frame."""
    from datamodules.manifest import read_ok_rows

    rows = []
    for set_name, split in (
        (cell.config.train_set.name, "val"),
        *((t.name, "test") for t in cell.config.test_sets),
    ):
        ok, _ = read_ok_rows(processed / set_name / "manifest.parquet", set_name)
        ok = ok[ok.split == split]
        rows.append(
            pd.DataFrame(
                {
                    "sample_id": ok.video_id + "/" + ok.frame_index.astype(str),
                    "video_id": ok.video_id,
                    "dataset": set_name,
                    "method": ok.method,
                    "label": ok.label,
                    "score": 0.5,
                    "test_set": set_name,
                    "split": split,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_runner_writes_one_shortcut_cell_per_training_set_from_the_manifests(tmp_path, capsys):
    from datamodules.preprocess.backfill import backfill_confounds
    from tests.test_datamodule import _write_dataset

    cell = _planned(tmp_path)
    processed = cell.runtime.processed_root
    splits = {"train": {"real": 2, "A": 2}, "val": {"real": 1, "A": 1}, "test": {"real": 1, "A": 1}}
    for name in ("train", "a", "b"):
        _write_dataset(processed, name, splits)
    store = ScoreStore(tmp_path / "store")
    record = {"config": cell.config.to_json(), "detector": cell.detector, "train_set": "train", "seed": 0}
    store.write_cell(cell.cell_id, _template_rows(cell, processed), record)

    # manifests without features: skipped, the note names the backfill command
    out = shortcut.schedule([cell], store)
    assert list(out.values())[0].startswith("skipped") and "--backfill-confounds" in capsys.readouterr().out

    for name in ("train", "a", "b"):
        backfill_confounds(processed, name)
    ((cid, outcome),) = shortcut.schedule([cell], store).items()
    assert outcome == "written" and cid == shortcut.shortcut_cell_id(cell.config.grid, "train")
    rec = store.record(cid)
    assert rec["detector"] == rec["config"]["detector"] == SHORTCUT and rec["config"]["weights"] is None
    mine = store.read_scores(cell_id=cid).sort_values("sample_id").reset_index(drop=True)
    theirs = store.read_scores(cell_id=cell.cell_id).sort_values("sample_id").reset_index(drop=True)
    assert mine.sample_id.tolist() == theirs.sample_id.tolist()  # exactly the frames the detector scored
    assert mine[["sharpness", "brightness"]].notna().all().all() and mine.face_px.isna().all()
    # the features are the manifest's, frame by frame
    man = pd.read_parquet(processed / "a/manifest.parquet").query("status == 'ok'")
    man = man.assign(sample_id=man.video_id + "/" + man.frame_index.astype(str)).set_index("sample_id")
    a_rows = mine[mine.test_set == "a"].set_index("sample_id")
    assert a_rows.brightness.to_numpy() == pytest.approx(
        man.loc[a_rows.index, "brightness"].to_numpy(), rel=1e-6
    )
    assert ((mine.score > 0) & (mine.score < 1)).all()
    assert shortcut.schedule([cell], store) == {cid: "current"}  # same manifests: nothing to do


def test_leaderboard_cli_matches_by_inverse_propensity_on_request(analysed, tmp_path):
    from benchmark.report.leaderboard import main

    root, _, _ = analysed
    out = tmp_path / "lb"
    assert main(["--store", str(root), "--out", str(out), "--bootstrap", "20", "--calibration-videos", "6",
                 "--calibration-repeats", "2", "--matching", "ipw"]) == 0  # fmt: skip
    assert (
        "Matched by inverse propensity weights on: face_px, sharpness"
        in (out / "g1" / "resnet34.md").read_text()
    )
    with pytest.raises(SystemExit):
        main(["--store", str(root), "--matching", "nearest"])

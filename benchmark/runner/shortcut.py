"""The shortcut detector: how far the nuisance features alone get, scored like any detector.

A logistic regression (scikit-learn ``LogisticRegression`` after a mean imputation with missing-value
indicators and standardisation) on the per-frame confound features of ``datamodules.media.confounds``
(face size, resize factor, sharpness, brightness, contrast, JPEG quality, blockiness, head pose), fitted on
the ``ok`` frames of the training set's ``train`` split (its fake methods only, as the detectors train),
then applied to exactly the frames a finished cell of the same (grid, training set) scored: the source
validation split and every test set. It reads no pixel, so an AUC it reaches is reached by nuisance alone.

Its rows go to the score store as a cell of their own (detector :data:`NAME`, one cell per (grid,
training set), id :func:`shortcut_cell_id`), carrying the confound features of every frame as extra
columns, so the leaderboard analyses it like any detector (a README row and a page) and matches every
detector's Cross-AUC on the same features (``benchmark.report.analysis``). It is not a registered torch
detector (nothing to train on a GPU, no checkpoint): ``benchmark.run`` fits it in its own process (rank
0, one process) after the grid's cells, skips it when it is current (same manifests) and says so when
the manifests hold no confound feature (``--backfill-confounds`` adds them).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.runner.cells import Cell
from datamodules.manifest import CONFOUNDS, read_manifest, sample_ids

#: the shortcut detector's name in the store (guarded against a registered detector of the same name)
NAME = "shortcut"
BACKFILL_HINT = "python -m benchmark.run --grid {grid} --backfill-confounds"


def shortcut_cell_id(grid: str, train_set: str) -> str:
    """``shortcut-<12 hex>``: one cell per (grid, training set)."""
    return f"{NAME}-" + hashlib.sha256(f"{grid}\0{train_set}".encode()).hexdigest()[:12]


def manifest_features(path: Path, name: str) -> pd.DataFrame:
    """The ``ok`` rows of a manifest: ``split, label, method, key`` and the confound columns (NaN if absent)."""
    df = read_manifest(path, name)
    df = df[df["status"] == "ok"]
    out = pd.DataFrame(
        {
            "split": df["split"].astype(str).to_numpy(),
            "label": df["label"].astype(int).to_numpy(),
            "method": df["method"].astype(str).to_numpy(),
            "key": sample_ids(df).to_numpy(),
        }
    )
    for c in CONFOUNDS:
        out[c] = pd.to_numeric(df[c], errors="coerce").to_numpy(np.float64) if c in df.columns else np.nan
    return out


def attach_features(
    rows: pd.DataFrame, manifests: dict[str, pd.DataFrame], suffixes: dict[str, str]
) -> pd.DataFrame:
    """``rows`` (a cell's scores: ``manifest_dataset``, ``test_set``, ``sample_id``) with the confound
    columns of their manifest rows (``suffixes``: the ``@<set>`` tag each set's ids carry)."""
    out = rows.drop(columns=[c for c in CONFOUNDS if c in rows.columns]).copy()
    key = out["sample_id"].astype(str).to_numpy().copy()
    for set_name, tag in suffixes.items():
        m = (out["test_set"] == set_name).to_numpy()
        if tag:
            key[m] = [k[: -len(tag)] if k.endswith(tag) else k for k in key[m]]
    feats = np.full((len(out), len(CONFOUNDS)), np.nan)
    for name, table in manifests.items():
        m = (out["manifest_dataset"] == name).to_numpy()
        if not m.any():
            continue
        pos = pd.Index(table["key"]).get_indexer(key[m])
        found = pos >= 0
        vals = table[list(CONFOUNDS)].to_numpy(np.float64)
        sub = np.full((int(m.sum()), len(CONFOUNDS)), np.nan)
        sub[found] = vals[pos[found]]
        feats[m] = sub
    for f, c in enumerate(CONFOUNDS):
        out[c] = feats[:, f]
    return out


def fit(train: pd.DataFrame) -> tuple[Any, list[str]]:
    """The shortcut model on the features the train frames have: impute (mean, with missing-value
    indicators), standardise, logistic regression. Returns it and the features it reads."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        SimpleImputer(strategy="mean", add_indicator=True),
        StandardScaler(),
        LogisticRegression(max_iter=1000),
    )
    used = [c for c in CONFOUNDS if train[c].notna().any()]
    return model.fit(train[used].to_numpy(np.float64), train["label"].to_numpy()), used


def train_frames(source: pd.DataFrame, methods: Iterable[str]) -> pd.DataFrame:
    """The source's ``train`` split, restricted like the detectors' training to the set's fake methods."""
    t = source[source["split"] == "train"]
    methods = tuple(methods)
    if methods:
        t = t[(t["label"] == 0) | t["method"].isin(methods)]
    return t


def run_shortcut(
    template: Cell, store: Any, manifests: dict[str, Path], force: bool = False, say: Callable = print
) -> str:
    """Fit and score the shortcut of ``template``'s (grid, training set) from its scored frames; returns
    ``written``, ``current`` (already done from the same manifests) or ``skipped: <why>``."""
    from benchmark.runner.cell import base_record
    from benchmark.runner.cell_data import eval_sets
    from benchmark.store import file_sha256

    c = template.config
    cid = shortcut_cell_id(c.grid, c.train_set.name)
    hashes = {n: file_sha256(p) for n, p in sorted(manifests.items()) if Path(p).is_file()}
    if not force and store.is_done(cid) and store.record(cid).get("manifest_hash") == hashes:
        return "current"
    started = time.time()
    tables = {n: manifest_features(p, n) for n, p in manifests.items() if Path(p).is_file()}
    source = tables.get(c.train_set.dataset)
    train = train_frames(source, c.train_set.methods) if source is not None else None
    if train is None or not len(train) or not np.isfinite(train[list(CONFOUNDS)].to_numpy()).any():
        why = (
            f"the manifest of {c.train_set.dataset!r} holds no confound feature; add them with "
            f"`{BACKFILL_HINT.format(grid=c.grid)}`"
        )
        say(f"shortcut detector of {c.grid}/{c.train_set.name} skipped: {why}")
        return f"skipped: {why}"
    if train["label"].nunique() < 2:
        return f"skipped: the train split of {c.train_set.name!r} has one class"
    rows = store.read_scores(cell_id=template.cell_id)
    suffixes = {s.name: s.id_suffix for s in eval_sets(c)}
    rows = attach_features(rows, tables, suffixes)
    model, used = fit(train)
    scores = rows.drop(columns=["manifest_dataset"]).assign(
        dataset=rows["manifest_dataset"].to_numpy(),
        score=model.predict_proba(rows[used].to_numpy(np.float64))[:, 1].astype(np.float64),
        cell_id=cid,
        detector=NAME,
    )
    config = {**c.to_json(), "detector": NAME, "overrides": {}, "arch_overrides": {}, "weights": None}
    record = {
        **base_record(template),
        "cell_id": cid,
        "detector": NAME,
        "config": config,
        "template_cell_id": template.cell_id,
        "manifest_hash": hashes,
        "n_train_frames": len(train),
        "features": used,
        "reference": "logistic regression on the confound features alone (benchmark.runner.shortcut)",
        "recipe_source": "scikit-learn LogisticRegression, mean imputation with indicators, standardised",
        "pretrained_loaded": False,
        "n_scores": len(scores),
        "timings": {"fit_s": 0.0, "total_s": round(time.time() - started, 3)},
    }
    store.write_cell(cid, scores, record)
    return "written"


def schedule(cells: list[Cell], store: Any, force: bool = False, say: Callable = print) -> dict[str, str]:
    """One shortcut per (grid, training set) of ``cells`` that has a finished trained (or released) cell,
    from the first such cell in plan order; derived cells never serve. Returns the outcome per cell id."""
    from benchmark.runner.cell_data import manifest_paths

    out: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    for cell in cells:
        c = cell.config
        key = (c.grid, c.train_set.name)
        if key in seen or c.perturbed or not store.is_done(cell.cell_id):
            continue
        seen.add(key)
        cid = shortcut_cell_id(*key)
        out[cid] = run_shortcut(cell, store, manifest_paths(c, cell.runtime), force=force, say=say)
    return out

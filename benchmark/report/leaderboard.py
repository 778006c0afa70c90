"""``python -m benchmark.leaderboard``: markdown leaderboards rendered from the score store alone.

Writes ``<out>/README.md`` (one row per grid, detector and training set) and one page per grid and
detector (``<out>/<grid>/<detector>.md`` with figures under ``<out>/<grid>/figures/``). Rendering is
deterministic: the same store gives byte-identical files (sorted groups, fixed bootstrap seed, fixed
number formats, PNGs without timestamps).

Statistics (all from ``benchmark.metrics``): video level = mean of frame probabilities per video.
Intervals are 95 % percentile bootstrap intervals resampling videos within each test set
(``benchmark.metrics.resample``). With several seeds a number is the mean over seeds, and its interval
comes from the same resamples applied to every seed (the seeds score the same videos, and the bootstrap
draws depend only on its seed and the videos), averaged resample by resample.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.metrics import (
    bootstrap,
    cell_name,
    cross_auc_summary,
    dataset_metrics,
    threshold_transfer,
)
from benchmark.report import figures
from benchmark.store import ScoreStore
from datamodules import atomic

CROSS_AUC_NOTE = (
    "**Cross-AUC (real_i vs fake_j)** is the AUC of dataset i's REAL samples against dataset j's FAKE "
    "samples, all scored by the same model, for every ordered pair of test sets. The diagonal is the usual "
    "per-dataset AUC. A detector whose scores shift between domains (reals of one dataset scored as "
    "fake as the fakes of another) keeps a high diagonal while its off-diagonal cells fall: one threshold "
    "cannot serve every domain. *Pair mean* averages C = (A[i,j] + A[j,i]) / 2 over unordered pairs; "
    "*worst* is the lowest ordered pair; *shift gap* = mean diagonal - mean off-diagonal."
)
N_BOOT = 1000
BOOT_SEED = 0


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "x"


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return f"{x:.{digits}f}"


def fmt_ci(est: float, lo: float, hi: float) -> str:
    if not np.isfinite(est):
        return "n/a"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return fmt(est)
    return f"{est:.3f} [{lo:.3f}, {hi:.3f}]"


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    def esc(s: str) -> str:
        return str(s).replace("|", "\\|")

    out = ["| " + " | ".join(map(esc, headers)) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(out)


@dataclass
class Group:
    """The done cells of one (grid, detector, training set) and one configuration: one per seed.

    ``superseded`` holds the done cells of the same (grid, detector, training set) run with OTHER
    settings (an edited grid file, another recipe): they are listed on the page, never averaged in.
    """

    grid: str
    detector: str
    train_set: str
    records: list[dict[str, Any]]
    scores: dict[str, pd.DataFrame] = field(default_factory=dict)
    superseded: list[dict[str, Any]] = field(default_factory=list)

    @property
    def test_order(self) -> list[str]:
        return [t["name"] for t in self.records[0]["config"]["test_sets"]]


@dataclass
class Analysis:
    """Numbers of one group (means over seeds with intervals)."""

    summary: dict[str, tuple[float, float, float]]  # name -> (estimate, lo, hi)
    worst_pair: tuple[str, str] | None
    matrix: pd.DataFrame  # video-level Cross-AUC, mean over seeds
    matrix_lo: pd.DataFrame
    matrix_hi: pd.DataFrame
    per_set: pd.DataFrame  # one row per test set
    per_seed: pd.DataFrame
    datasets: list[str]


def _settings(rec: dict[str, Any]) -> str:
    """A cell's configuration without its seed: cells that share it are seeds of one experiment."""
    return json.dumps({k: v for k, v in rec["config"].items() if k != "seed"}, sort_keys=True, default=str)


def _current(recs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split one (grid, detector, training set)'s cells into the latest configuration's and the rest.

    The latest configuration is that of the most recently finished cell; cells of older settings would
    otherwise be averaged in as if they were more seeds of the same experiment.
    """
    latest = max(recs, key=lambda r: (str(r.get("finished_at", "")), r["cell_id"]))
    key = _settings(latest)
    same = {r["cell_id"]: _settings(r) == key for r in recs}
    return [r for r in recs if same[r["cell_id"]]], [r for r in recs if not same[r["cell_id"]]]


def collect(store: ScoreStore) -> list[Group]:
    """Done cells grouped by (grid, detector, training set), sorted; scores attached.

    Only the latest configuration of each group is scored; the others are kept as ``superseded``.
    """
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for cid in store.cell_ids("done"):
        rec = store.record(cid)
        if "config" not in rec:  # a store shared with cells not written by the runner
            continue
        key = (rec["config"]["grid"], rec["config"]["detector"], rec["config"]["train_set"]["name"])
        groups.setdefault(key, []).append(rec)
    scores = store.read_scores()
    by_cell = {cid: df.reset_index(drop=True) for cid, df in scores.groupby("cell_id", sort=True)}
    out = []
    for (g, d, t), recs in sorted(groups.items()):
        recs = sorted(recs, key=lambda r: (int(r["config"]["seed"]), r["cell_id"]))
        cur, old = _current(recs)  # both keep the seed order
        out.append(Group(g, d, t, cur, {r["cell_id"]: by_cell[r["cell_id"]] for r in cur}, old))
    return out


def _combine(boots: list[Any], names: list[str]) -> pd.DataFrame:
    """Seed-mean estimate and the percentile interval of the resample-wise seed mean."""
    est = np.mean([b.table.loc[names, "estimate"].to_numpy(dtype=float) for b in boots], axis=0)
    samples = np.mean([b.samples[names].to_numpy(dtype=float) for b in boots], axis=0)
    alpha = (1 - boots[0].ci) / 2
    lo, hi = np.full(len(names), np.nan), np.full(len(names), np.nan)
    for c in range(len(names)):
        v = samples[:, c][np.isfinite(samples[:, c])]
        if len(v):
            lo[c], hi[c] = np.percentile(v, [100 * alpha, 100 * (1 - alpha)])
    return pd.DataFrame({"estimate": est, "lo": lo, "hi": hi}, index=names)


def analyse(group: Group, n_boot: int = N_BOOT) -> Analysis:
    order = group.test_order
    boots_v, boots_f, sets, seeds = [], [], [], []
    for rec in group.records:
        df = group.scores[rec["cell_id"]]
        test = df[df["split"] == "test"].reset_index(drop=True)
        val = df[df["split"] == "val"].reset_index(drop=True)
        bv = bootstrap(test, "cross_auc", n=n_boot, seed=BOOT_SEED, level="video", datasets=order)
        bf = bootstrap(test, "cross_auc", n=n_boot, seed=BOOT_SEED, level="frame", datasets=order)
        boots_v.append(bv)
        boots_f.append(bf)
        vid = dataset_metrics(test, level="video")
        frm = dataset_metrics(test, level="frame")
        t = vid.rename(columns={"auc": "video_auc"})
        t["frame_auc"] = frm["auc"]
        t["n_real_frames"], t["n_fake_frames"] = frm["n_real"], frm["n_fake"]
        try:
            tt = threshold_transfer(val, test, level="video")
            t["acc_val_thr"], t["val_thr"] = tt["acc"], tt["threshold"]
        except ValueError:  # a source val split with one class has no EER threshold
            t["acc_val_thr"], t["val_thr"] = np.nan, np.nan
        sets.append(t.reindex(order))
        summ = cross_auc_summary(bv.matrix())
        seeds.append(
            {
                "seed": int(rec["config"]["seed"]),
                "cell": rec["cell_id"],
                "video_auc": summ["diag_mean"],
                "frame_auc": cross_auc_summary(bf.matrix())["diag_mean"],
                "pair_mean": summ["pair_mean"],
                "worst": summ["worst"],
                "shift_gap": summ["shift_gap"],
                "val_auc": rec.get("best_val_auc"),
            }
        )
    cells = [cell_name(i, j) for i in order for j in order]
    keys = ["diag_mean", "pair_mean", "worst", "shift_gap", "offdiag_mean"]
    cv, cf = _combine(boots_v, cells + keys), _combine(boots_f, ["diag_mean"])
    summary = {k: tuple(cv.loc[k]) for k in keys}
    summary["frame_auc"] = tuple(cf.loc["diag_mean"])
    summary["video_auc"] = summary.pop("diag_mean")

    def mat(col: str) -> pd.DataFrame:
        m = [[cv.loc[cell_name(i, j), col] for j in order] for i in order]
        return pd.DataFrame(m, index=pd.Index(order, name="real"), columns=pd.Index(order, name="fake"))

    matrix = mat("estimate")
    per_set = pd.concat(sets).groupby(level=0, sort=False).mean(numeric_only=True).reindex(order)
    return Analysis(
        summary=summary,
        worst_pair=cross_auc_summary(matrix)["worst_pair"],
        matrix=matrix,
        matrix_lo=mat("lo"),
        matrix_hi=mat("hi"),
        per_set=per_set,
        per_seed=pd.DataFrame(seeds),
        datasets=order,
    )


def _origin(group: Group) -> str:
    origins = sorted({r["config"]["origin"] for r in group.records})
    return "/".join(origins)


def _pretrained(group: Group) -> str:
    vals = {bool(r.get("pretrained_loaded", False)) for r in group.records}
    return "yes" if vals == {True} else "no (random init)" if vals == {False} else "mixed"


def _reference(group: Group) -> str:
    """``paper`` or ``released`` (see ``detectors.settings``); records written before references existed
    trained as the paper describes."""
    return "/".join(sorted({str(r.get("reference", "paper")) for r in group.records}))


def _seeds(group: Group) -> str:
    return ", ".join(str(r["config"]["seed"]) for r in group.records)


def _ci(a: Analysis, key: str) -> str:
    return fmt_ci(*a.summary[key])


def page_path(grid: str, detector: str) -> Path:
    return Path(slug(grid)) / f"{slug(detector)}.md"


def render_readme(groups: list[Group], analyses: dict[int, Analysis], store_root: Path, n_boot: int) -> str:
    lines = [
        "# Leaderboards",
        "",
        f"Generated by `python -m benchmark.leaderboard` from the score store (`{store_root.name}/`) alone; "
        "do not edit by hand. Video level: mean of frame probabilities per video. Brackets: 95 % bootstrap "
        f"intervals ({n_boot} resamples of videos within each test set, seed {BOOT_SEED}). Several seeds: "
        "the mean over seeds. Checkpoints are selected on the SOURCE validation split, never on a test set.",
        "",
        "> " + CROSS_AUC_NOTE,
        "",
    ]
    if any(_origin(g) != "real" for g in groups):
        lines += [
            "> Rows whose data is **demo** come from the embedded synthetic demo benchmark: they show that "
            "the pipeline runs end to end, not how detectors perform on real deepfakes.",
            "",
        ]
    if not groups:
        lines += ["No finished cells in the store yet: run `python -m benchmark.run`.", ""]
    for grid in sorted({g.grid for g in groups}):
        lines += [f"## Grid `{grid}`", ""]
        rows = []
        for i, g in enumerate(groups):
            if g.grid != grid:
                continue
            a = analyses[i]
            worst = f"{_ci(a, 'worst')} ({a.worst_pair[0]} -> {a.worst_pair[1]})" if a.worst_pair else "n/a"
            rows.append(
                [
                    f"[{g.detector}]({page_path(g.grid, g.detector).as_posix()})",
                    g.train_set,
                    _origin(g),
                    _seeds(g),
                    _pretrained(g),
                    _ci(a, "video_auc"),
                    _ci(a, "frame_auc"),
                    _ci(a, "pair_mean"),
                    worst,
                    _ci(a, "shift_gap"),
                ]
            )
        headers = [
            "detector",
            "train set",
            "data",
            "seeds",
            "pretrained",
            "mean video AUC",
            "mean frame AUC",
            "Cross-AUC (real_i vs fake_j) pair mean",
            "worst ordered pair (real -> fake)",
            "shift gap",
        ]
        lines += [md_table(headers, rows), ""]
    return "\n".join(lines)


def _overrides(rec: dict[str, Any]) -> list[list[str]]:
    rows = [[k, str(v[0]), str(v[1])] for k, v in sorted((rec.get("recipe_overrides") or {}).items())]
    defaults = rec.get("arch_defaults") or {}
    rows += [
        [k, str(defaults.get(k, "(default)")), str(v)]
        for k, v in sorted((rec.get("arch_overrides") or {}).items())
    ]
    return rows


def render_page(grid: str, detector: str, items: list[tuple[Group, Analysis]], out: Path) -> str:
    fig_dir = out / slug(grid) / "figures"
    lines = [
        f"# `{detector}` on grid `{grid}`",
        "",
        "[All leaderboards](../README.md)",
        "",
        CROSS_AUC_NOTE,
        "",
    ]
    for g, a in items:
        rec0 = g.records[0]
        base = f"{slug(detector)}-{slug(g.train_set)}"
        lines += [
            f"## Trained on `{g.train_set}`",
            "",
            f"Data: **{_origin(g)}**. Seeds: {_seeds(g)}. Pretrained weights: {_pretrained(g)}. "
            f"Reference: {_reference(g)}. Recipe: {rec0.get('recipe_source') or 'n/a'}.",
            "",
            "### Per test set (video level unless stated; mean over seeds)",
            "",
        ]
        rows = []
        for name in a.datasets:
            r = a.per_set.loc[name]
            ci = fmt_ci(a.matrix.loc[name, name], a.matrix_lo.loc[name, name], a.matrix_hi.loc[name, name])
            rows.append(
                [
                    name,
                    f"{int(r['n_real'])}/{int(r['n_fake'])}",
                    fmt(r["frame_auc"]),
                    ci,
                    fmt(r["eer"]),
                    fmt(r["ap"]),
                    fmt(r["acc"]),
                    f"{fmt(r['acc_val_thr'])} (t={fmt(r['val_thr'])})",
                ]
            )
        headers = ["test set", "real/fake videos", "frame AUC", "video AUC", "EER", "AP", "acc@0.5"]
        lines += [md_table([*headers, "acc@source-val threshold"], rows), ""]

        lines += [
            "### Cross-AUC (real_i vs fake_j), video level",
            "",
            "Rows: REAL samples from; columns: FAKE samples from.",
            "",
        ]
        mrows = [
            [f"**{i}**"]
            + [fmt_ci(a.matrix.loc[i, j], a.matrix_lo.loc[i, j], a.matrix_hi.loc[i, j]) for j in a.datasets]
            for i in a.datasets
        ]
        lines += [md_table(["real \\ fake", *a.datasets], mrows), ""]
        heat = figures.heatmap(
            a.matrix, fig_dir / f"{base}-cross_auc.png", f"{detector} trained on {g.train_set}: Cross-AUC"
        )
        lines += [f"![Cross-AUC heatmap](figures/{heat.name})", ""]
        s = a.summary
        lines += [
            f"Pair mean {_ci(a, 'pair_mean')}; worst {_ci(a, 'worst')}"
            + (f" ({a.worst_pair[0]} reals vs {a.worst_pair[1]} fakes)" if a.worst_pair else "")
            + f"; off-diagonal mean {fmt_ci(*s['offdiag_mean'])}; shift gap {_ci(a, 'shift_gap')}.",
            "",
        ]

        first = g.scores[rec0["cell_id"]]
        test = first[first["split"] == "test"]
        vids = test.groupby("video_id", sort=True).agg(
            dataset=("dataset", "first"), label=("label", "first"), score=("score", "mean")
        )
        dist = figures.score_distributions(
            vids,
            a.datasets,
            fig_dir / f"{base}-scores.png",
            f"{detector} trained on {g.train_set} (seed {rec0['config']['seed']}): video scores",
        )
        lines += [
            f"### Score distributions (seed {rec0['config']['seed']})",
            "",
            f"![score distributions](figures/{dist.name})",
            "",
        ]

        lines += ["### Per seed", ""]
        srows = [
            [
                str(r.seed),
                f"`{r.cell}`",
                fmt(r.video_auc),
                fmt(r.frame_auc),
                fmt(r.pair_mean),
                fmt(r.worst),
                fmt(r.shift_gap),
                fmt(r.val_auc),
            ]
            for r in a.per_seed.itertuples()
        ]
        sh = [
            "seed",
            "cell",
            "video AUC",
            "frame AUC",
            "pair mean",
            "worst",
            "shift gap",
            "best source-val AUC",
        ]
        lines += [md_table(sh, srows), ""]

        lines += ["### Overrides from the reference's recipe", ""]
        ov = _overrides(rec0)
        lines += [
            md_table(["setting", "reference", "used"], ov)
            if ov
            else "None: the reference's recipe as published.",
            "",
        ]
        if any(_overrides(r) != ov for r in g.records[1:]):
            lines += ["(Seeds differ in their overrides; the first seed's are shown.)", ""]

        lines += ["### Run metadata", ""]
        meta = []
        for r in g.records:
            v = r.get("versions") or {}
            tm = r.get("timings") or {}
            meta.append(
                [
                    str(r["config"]["seed"]),
                    f"`{r['cell_id']}`",
                    str(r.get("git_commit") or "n/a")[:12],
                    str(r.get("devices", "n/a")),
                    f"{fmt(tm.get('fit_s'), 1)} / {fmt(tm.get('test_s'), 1)}",
                    Path(str(r.get("checkpoint", ""))).name or "n/a",
                    ", ".join(f"{k} {v[k]}" for k in sorted(v) if k in {"torch", "lightning", "timm"}),
                ]
            )
        mh = ["seed", "cell", "git commit", "devices", "fit / test s", "checkpoint", "versions"]
        if any("hardware" in r for r in g.records):  # records before hardware was recorded: no column
            mh.append("hardware")
            for row, r in zip(meta, g.records, strict=True):
                row.append(_hardware(r.get("hardware")))
        lines += [md_table(mh, meta), ""]
        tests = ", ".join(f"{t['name']}" for t in rec0["config"]["test_sets"])
        lines += [f"Test sets: {tests}. Source validation split: `{g.train_set}` (split `val`).", ""]
        if g.superseded:
            lines += _superseded(g), ""
    return "\n".join(lines)


def _hardware(hw: dict[str, Any] | None) -> str:
    """``CPU model; N x GPU (CUDA x, cuDNN y)`` of a cell record's ``hardware`` (n/a when not recorded)."""
    if not hw:
        return "n/a"
    cpu = hw.get("cpu") or "unknown CPU"
    if not hw.get("gpu_count"):
        return f"{cpu}; no GPU"
    soft = ", ".join(f"{k} {hw[k.lower()]}" for k in ("CUDA", "cuDNN") if hw.get(k.lower()) is not None)
    return f"{cpu}; {hw['gpu_count']}x {hw.get('gpu') or 'GPU'}" + (f" ({soft})" if soft else "")


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _superseded(g: Group) -> str:
    """The cells of earlier settings, with what differs from the settings shown above."""
    now = _flat(g.records[0]["config"])
    rows = []
    for r in g.superseded:
        theirs = _flat(r["config"])
        diff = [
            f"{k} = {json.dumps(theirs.get(k), default=str)}"
            for k in sorted(set(now) | set(theirs))
            if k != "seed" and theirs.get(k) != now.get(k)
        ]
        rows.append(
            [str(r["config"]["seed"]), f"`{r['cell_id']}`", str(r.get("finished_at", "n/a")), "; ".join(diff)]
        )
    table = md_table(["seed", "cell", "finished", "settings that differ (theirs)"], rows)
    return (
        "### Superseded cells\n\nDone cells of this detector and training set run with other settings; "
        "the numbers above use only the latest settings.\n\n" + table
    )


def _write(path: Path, text: str) -> Path:
    return atomic.write_text(path, text if text.endswith("\n") else text + "\n")


def render(store_root: str | Path, out: str | Path, n_boot: int = N_BOOT) -> list[Path]:
    """Render every leaderboard file from the store at ``store_root`` into ``out``; return the paths."""
    store_root, out = Path(store_root), Path(out)
    groups = collect(ScoreStore(store_root))
    analyses = {i: analyse(g, n_boot) for i, g in enumerate(groups)}
    written = [_write(out / "README.md", render_readme(groups, analyses, store_root, n_boot))]
    pages: dict[tuple[str, str], list[tuple[Group, Analysis]]] = {}
    for i, g in enumerate(groups):
        pages.setdefault((g.grid, g.detector), []).append((g, analyses[i]))
    for (grid, det), items in sorted(pages.items()):
        written.append(_write(out / page_path(grid, det), render_page(grid, det, items, out)))
        written += sorted((out / slug(grid) / "figures").glob(f"{slug(det)}-*.png"))
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmark.leaderboard", description=__doc__.split("\n")[0])
    p.add_argument(
        "--store", type=Path, default=Path("runs/store"), help="score store root (default runs/store)"
    )
    p.add_argument(
        "--out", type=Path, default=Path("leaderboards"), help="output folder (default leaderboards/)"
    )
    p.add_argument("--bootstrap", type=int, default=N_BOOT, help="bootstrap resamples (default 1000)")
    args = p.parse_args(argv)
    if not args.store.is_dir():
        print(f"error: no score store at {args.store} (run python -m benchmark.run first)", file=sys.stderr)
        return 2
    written = render(args.store, args.out, args.bootstrap)
    print(f"wrote {len(written)} files under {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Leaderboard figures (matplotlib, Agg): the Cross-AUC heatmap and the score distributions.

PNGs are deterministic: a fixed size and dpi, no timestamp and no software string in the metadata, so
the same scores give byte-identical files (with the same matplotlib version).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from datamodules.atomic import atomic_path  # noqa: E402

_META = {"Software": None}


def _save(fig: plt.Figure, path: Path) -> Path:
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100, metadata=_META)
    finally:
        plt.close(fig)
    return path


def heatmap(matrix: pd.DataFrame, path: Path, title: str) -> Path:
    """Cross-AUC matrix as a heatmap: rows = dataset of the REALS, columns = dataset of the FAKES."""
    k = len(matrix)
    fig, ax = plt.subplots(figsize=(1.2 * k + 2.5, 1.0 * k + 2.0))
    vals = matrix.to_numpy(dtype=float)
    im = ax.imshow(np.ma.masked_invalid(vals), vmin=0.0, vmax=1.0, cmap="RdYlGn")
    ax.set_xticks(range(k), [str(c) for c in matrix.columns], rotation=30, ha="right")
    ax.set_yticks(range(k), [str(r) for r in matrix.index])
    ax.set_xlabel("fake samples from")
    ax.set_ylabel("real samples from")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, "n/a" if np.isnan(vals[i, j]) else f"{vals[i, j]:.3f}", ha="center", va="center")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def score_distributions(frames: pd.DataFrame, order: list[str], path: Path, title: str) -> Path:
    """Per dataset: histograms of the video scores of reals and fakes (the score shift, made visible)."""
    k = max(1, len(order))
    fig, axes = plt.subplots(k, 1, figsize=(6.0, 1.6 * k + 0.8), sharex=True, squeeze=False)
    bins = np.linspace(0.0, 1.0, 26)
    for ax, name in zip(axes[:, 0], order, strict=False):
        d = frames[frames["dataset"] == name]
        for label, color, text in ((0, "tab:blue", "real"), (1, "tab:red", "fake")):
            s = d.loc[d["label"] == label, "score"].to_numpy(dtype=float)
            if len(s):
                ax.hist(s, bins=bins, alpha=0.55, color=color, label=f"{text} (n={len(s)})")
        ax.set_ylabel(str(name), rotation=0, ha="right", va="center", fontsize=8)
        ax.legend(fontsize=7, loc="upper center")
    axes[-1, 0].set_xlabel("video score (probability of fake)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def robustness_curves(
    curves: dict[str, list[tuple[int, dict[str, float]]]],
    mean_curve: list[tuple[int, dict[str, float]]],
    panels: list[tuple[str, str]],
    path: Path,
    title: str,
) -> Path:
    """One panel per statistic (``panels``: ``(key, axis label)``) against the distortion level: a line per
    distortion (level 0 = the clean test) and, thick and dashed, the mean over distortions."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    colors = plt.get_cmap("tab10")
    for ax, (key, label) in zip(axes[0], panels, strict=True):
        for k, (name, pts) in enumerate(curves.items()):
            x = [lv for lv, _ in pts]
            ax.plot(x, [v[key] for _, v in pts], marker="o", ms=3, lw=1.2, color=colors(k % 10), label=name)
        if mean_curve:
            x = [lv for lv, _ in mean_curve]
            y = [v[key] for _, v in mean_curve]
            ax.plot(x, y, color="black", lw=2.2, ls="--", marker="s", ms=4, label="mean over distortions")
        ax.set_xlabel("level (0 = clean)")
        ax.set_ylabel(label)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xticks(range(0, 6))
        ax.axhline(0.5, color="grey", lw=0.6, ls=":")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)

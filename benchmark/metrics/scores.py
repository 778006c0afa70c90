"""The per-frame score table every metric reads: validation, video aggregation, grouping by dataset.

A *frames* table is a DataFrame with one row per scored frame and at least the columns
``dataset, label, score`` (``label`` 0 real / 1 fake, ``score`` = probability of fake), plus ``video_id``
for video-level metrics and, when present, ``sample_id`` (checked for duplicates) and ``cell_id``.
The store (``benchmark.store``) writes and reads exactly such tables.

Bad input is never turned into a number: NaN/inf scores, labels outside {0, 1}, duplicated sample ids,
a video whose frames carry different labels (or datasets), an empty table or an empty dataset each raise
``ValueError`` naming the column and the first offending rows (DataFrame index labels).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

AGGREGATIONS = ("mean", "median", "max")
LEVELS = ("video", "frame")
_SHOW = 8  # how many offending rows an error message lists


def rows_text(index: Sequence | np.ndarray | pd.Index) -> str:
    """``rows [3, 17, 20] (3 in total)``: the first offending rows, for error messages."""
    idx = list(index)
    shown = ", ".join(repr(i) if isinstance(i, str) else str(i) for i in idx[:_SHOW])
    more = ", ..." if len(idx) > _SHOW else ""
    return f"rows [{shown}{more}] ({len(idx)} in total)"


def check_labels(values: np.ndarray, index: Sequence | np.ndarray | pd.Index, column: str = "label") -> None:
    """Raise ``ValueError`` naming ``column`` and the rows whose label is not 0 or 1 (NaN included)."""
    vals = np.asarray(values)
    if vals.dtype == bool:
        return
    if vals.dtype.kind in "iuf":
        bad = ~np.isin(vals, (0, 1))
    else:
        bad = ~pd.Series(vals, dtype=object).isin([0, 1, True, False]).to_numpy()
    if bad.any():
        where = np.flatnonzero(bad)
        seen = pd.unique(pd.Series(vals[where], dtype=object))[:_SHOW]
        raise ValueError(
            f"column {column!r} must hold 0 (real) or 1 (fake); found {list(seen)} in "
            f"{rows_text(np.asarray(index)[where])}"
        )


def check_scores(values: np.ndarray, index: Sequence | np.ndarray | pd.Index, column: str = "score") -> None:
    """Raise ``ValueError`` naming ``column`` and the rows whose score is NaN, infinite or not a number."""
    vals = np.asarray(values)
    if vals.dtype.kind not in "iuf":
        try:
            vals = vals.astype(np.float64)
        except (TypeError, ValueError) as e:
            raise ValueError(f"column {column!r} must be numeric (probability of fake); got {e}") from None
    bad = ~np.isfinite(vals)
    if bad.any():
        where = np.flatnonzero(bad)
        raise ValueError(
            f"column {column!r} has NaN or infinite values in {rows_text(np.asarray(index)[where])}; "
            "a detector must score every frame it was given"
        )


def validate_frames(frames: pd.DataFrame, need_video: bool = False) -> None:
    """Check a frames table; raise ``ValueError`` naming the column and rows of the first problem found.

    Checks: required columns, non-empty, ``label`` in {0, 1}, finite numeric ``score``, non-empty
    ``dataset``, ``sample_id`` unique per dataset over the whole table (so two models' scores of the
    same frame are never mixed into one number; the message names the cell ids involved), and when
    ``video_id`` is present (required if ``need_video``) every video has one label and one dataset.
    """
    if not isinstance(frames, pd.DataFrame):
        raise TypeError(f"frames must be a pandas DataFrame, got {type(frames).__name__}")
    need = ["dataset", "label", "score"] + (["video_id"] if need_video else [])
    missing = [c for c in need if c not in frames.columns]
    if missing:
        raise ValueError(f"frames lacks column(s) {missing}; it has {list(frames.columns)}")
    if len(frames) == 0:
        raise ValueError("frames is empty: no rows to compute a metric from")
    check_labels(frames["label"].to_numpy(), frames.index)
    check_scores(frames["score"].to_numpy(), frames.index)
    nulls = frames["dataset"].isna().to_numpy()
    if nulls.any():
        raise ValueError(f"column 'dataset' is empty in {rows_text(frames.index[nulls])}")
    if "sample_id" in frames.columns:
        _check_unique_samples(frames)
    if "video_id" in frames.columns:
        _check_videos(frames)


def _check_unique_samples(frames: pd.DataFrame) -> None:
    if not frames["sample_id"].duplicated().any():  # the common case, one column: fast
        return
    dup = frames.duplicated(["dataset", "sample_id"], keep=False).to_numpy()
    if not dup.any():
        return
    first = frames["sample_id"].to_numpy()[dup][0]
    where = ""
    if "cell_id" in frames.columns:
        cells = sorted(pd.unique(frames.loc[frames["sample_id"] == first, "cell_id"]).tolist(), key=str)
        where = (
            f" within cell_id {cells[0]!r}"
            if len(cells) == 1
            else f" across cell_id {cells}: the same frame scored twice (two models or runs?)"
        )
    raise ValueError(
        f"column 'sample_id' has duplicates (e.g. {first!r}){where} in {rows_text(frames.index[dup])}; "
        "a metric needs each frame once: filter the table to one model (detector, train set, seed) first"
    )


def _check_videos(frames: pd.DataFrame) -> None:
    vid = frames["video_id"]
    if vid.isna().any():
        raise ValueError(f"column 'video_id' is empty in {rows_text(frames.index[vid.isna().to_numpy()])}")
    vcodes, vnames = pd.factorize(vid)
    labels = frames["label"].to_numpy().astype(np.int64)
    n = np.bincount(vcodes, minlength=len(vnames))
    fakes = np.bincount(vcodes, weights=labels, minlength=len(vnames))
    mixed = (fakes > 0) & (fakes < n)
    if mixed.any():
        v = vnames[np.flatnonzero(mixed)[0]]
        rows = frames.index[(vid == v).to_numpy()]
        raise ValueError(
            f"column 'label' differs between frames of video_id {v!r} ({rows_text(rows)}); "
            f"{int(mixed.sum())} video(s) have mixed labels. video_id must be globally unique "
            "(<dataset>/<label name>/<source video>)"
        )
    dcodes, _ = pd.factorize(frames["dataset"])
    g = pd.Series(dcodes).groupby(vcodes)
    spread = (g.max() != g.min()).to_numpy()
    if spread.any():
        v = vnames[np.flatnonzero(spread)[0]]
        rows = frames.index[(vid == v).to_numpy()]
        raise ValueError(
            f"column 'dataset' differs between frames of video_id {v!r} ({rows_text(rows)}); "
            "video_id must be globally unique (<dataset>/<label name>/<source video>)"
        )


def video_scores(frames: pd.DataFrame, agg: str = "mean") -> pd.DataFrame:
    """One row per ``video_id``: ``video_id, dataset, label, score, n_frames`` (+ ``method`` if present).

    Args:
        frames: a frames table (validated here).
        agg: how frame probabilities become the video score: ``mean`` (the protocol's default),
            ``median`` or ``max``.

    Rows are sorted by ``video_id``. Raises ``ValueError`` for a video whose frames disagree on the
    label or the dataset, and for every other bad input listed in :func:`validate_frames`.
    """
    if agg not in AGGREGATIONS:
        raise ValueError(f"agg={agg!r} is not one of {list(AGGREGATIONS)}")
    validate_frames(frames, need_video=True)
    return _video_table(frames, agg)


def _video_table(frames: pd.DataFrame, agg: str) -> pd.DataFrame:
    vcodes, vnames = pd.factorize(frames["video_id"], sort=True)
    first = np.unique(vcodes, return_index=True)[1]
    scores = frames["score"].to_numpy(dtype=np.float64)
    if agg == "mean":
        n = np.bincount(vcodes, minlength=len(vnames))
        score = np.bincount(vcodes, weights=scores, minlength=len(vnames)) / n
    else:
        g = pd.Series(scores).groupby(vcodes)
        score = (g.median() if agg == "median" else g.max()).to_numpy()
        n = g.size().to_numpy()
    out = {
        "video_id": np.asarray(vnames),
        "dataset": frames["dataset"].to_numpy()[first],
        "label": frames["label"].to_numpy().astype(np.int64)[first],
        "score": score,
        "n_frames": n,
    }
    if "method" in frames.columns:
        out["method"] = frames["method"].to_numpy()[first]
    return pd.DataFrame(out)


@dataclass
class Units:
    """The scored units (frames or videos) of a validated table, as arrays grouped by dataset.

    ``dataset_code[k]`` indexes ``datasets``; ``video_code[k]`` numbers the unit's video *within its
    dataset* in ``video_id`` order (0..n_videos[d]-1; at video level each unit is its own video), the
    same numbering at both levels. The bootstrap uses it to resample whole videos.
    """

    datasets: list[str]
    dataset_code: np.ndarray
    label: np.ndarray
    score: np.ndarray
    video_code: np.ndarray | None
    n_videos: np.ndarray | None


def units(
    frames: pd.DataFrame,
    level: str = "video",
    agg: str = "mean",
    datasets: Iterable[str] | None = None,
    need_video: bool = False,
) -> Units:
    """Validate ``frames`` and return its units at ``level`` (``video`` or ``frame``).

    ``datasets`` fixes which datasets are used and in which order (default: sorted names). A name
    with no rows is an "empty dataset": ``ValueError`` listing the datasets present.
    """
    if level not in LEVELS:
        raise ValueError(f"level={level!r} is not one of {list(LEVELS)}")
    if agg not in AGGREGATIONS:
        raise ValueError(f"agg={agg!r} is not one of {list(AGGREGATIONS)}")
    validate_frames(frames, need_video=need_video or level == "video")
    table = _video_table(frames, agg) if level == "video" else frames
    present = sorted(pd.unique(table["dataset"]).tolist(), key=str)
    if datasets is None:
        names = present
    else:
        names = list(datasets)
        empty = [d for d in names if d not in set(present)]
        if empty:
            raise ValueError(
                f"dataset(s) {empty} have no rows in column 'dataset' (an empty dataset); "
                f"datasets present: {present}"
            )
        if len(set(names)) != len(names):
            raise ValueError(f"datasets={names} lists a dataset twice")
    dcode, dnames = pd.factorize(table["dataset"])
    code = pd.Index(names).get_indexer(dnames)[dcode]
    keep = code >= 0
    if not keep.all():
        table, code = table[keep], code[keep]
    vcode = nvid = None
    if "video_id" in table.columns:
        if level == "video":
            vcode = np.empty(len(table), dtype=np.int64)
            nvid = np.bincount(code, minlength=len(names))
            for d in range(len(names)):
                m = code == d
                vcode[m] = np.arange(int(m.sum()))
        else:  # a video belongs to one dataset (validated): sorted global codes, renumbered per dataset
            g = pd.factorize(table["video_id"], sort=True)[0]
            vcode = np.empty(len(table), dtype=np.int64)
            nvid = np.zeros(len(names), dtype=np.int64)
            for d in range(len(names)):
                m = code == d
                uniq, vcode[m] = np.unique(g[m], return_inverse=True)
                nvid[d] = len(uniq)
    return Units(
        datasets=names,
        dataset_code=code.astype(np.int64),
        label=table["label"].to_numpy().astype(np.int64),
        score=table["score"].to_numpy(dtype=np.float64),
        video_code=vcode,
        n_videos=nvid,
    )

"""Validation of a frames table: every bad input becomes a ``ValueError`` naming the column and the rows.

Bad input is never turned into a number: NaN/inf scores, labels outside {0, 1}, duplicated sample ids,
a video whose frames carry different labels (or datasets), an empty table or an empty dataset each raise
``ValueError`` naming the column and the first offending rows (DataFrame index labels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

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

"""The per-frame score table every metric reads, validated once: :class:`Scores`.

A *frames* table is a DataFrame with one row per scored frame and at least the columns
``dataset, label, score`` (``label`` 0 real / 1 fake, ``score`` = probability of fake), plus ``video_id``
for video-level metrics and, when present, ``sample_id`` (checked for duplicates) and ``cell_id``.
The store (``benchmark.store``) writes and reads exactly such tables.

``Scores.from_frames(frames)`` validates the table (``benchmark.metrics.validation``: bad input raises
``ValueError`` naming the column and rows), fixes the datasets and their order, and numbers the frames'
videos; the units a metric ranks (frames, or videos with their aggregated score) are then derived from it
on demand and kept. Every metric accepts a ``Scores`` or a frames table; given a table it builds the
``Scores`` itself, so one analysis that scores many metrics should build it once and pass it on.

Video score (``agg="mean"``, the protocol's default): the float64 nearest to the EXACT mean of the video's
frame scores (``benchmark.metrics.means``), so videos with equal means tie whatever the order or the
values of their frames, and an AUC over videos is exactly its pairwise definition on those scores.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from benchmark.metrics.means import exact_group_means
from benchmark.metrics.validation import check_labels, check_scores, rows_text, validate_frames

AGGREGATIONS = ("mean", "median", "max")
LEVELS = ("video", "frame")

__all__ = [
    "AGGREGATIONS",
    "LEVELS",
    "Scores",
    "Units",
    "as_scores",
    "check_labels",
    "check_scores",
    "rows_text",
    "units",
    "validate_frames",
    "video_scores",
]


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

    def video_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(video_code, n_videos)``; a ValueError when these units were built without ``video_id``."""
        if self.video_code is None or self.n_videos is None:
            raise ValueError("these units have no videos: the frames table lacks column(s) ['video_id']")
        return self.video_code, self.n_videos


@dataclass(frozen=True, eq=False)
class Scores:
    """A validated frames table: datasets in order, frame arrays, videos numbered. Build it once.

    Attributes:
        frames: the validated rows of ``datasets`` (the caller's table itself when no row is left out).
        datasets: the datasets used, in matrix order.
        present: every dataset of the validated table, sorted (error messages of :meth:`select`).
        dataset_code, label, score: per row of ``frames``: index into ``datasets``, 0/1, float64.
        video_ids: the sorted distinct ``video_id`` values (None without a ``video_id`` column).
        video_code: per row, its index into ``video_ids`` (None without ``video_id``).
    """

    frames: pd.DataFrame
    datasets: tuple[str, ...]
    present: tuple[str, ...]
    dataset_code: np.ndarray
    label: np.ndarray
    score: np.ndarray
    video_ids: np.ndarray | None
    video_code: np.ndarray | None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_frames(
        cls, frames: pd.DataFrame, datasets: Iterable[str] | None = None, need_video: bool = False
    ) -> Scores:
        """Validate ``frames`` (:func:`validate_frames`) and keep the rows of ``datasets`` in that order.

        ``datasets`` defaults to every dataset, sorted by name; a listed name with no rows is an "empty
        dataset" error listing the datasets present. ``need_video`` requires a ``video_id`` column.
        """
        validate_frames(frames, need_video=need_video)
        present = tuple(sorted(pd.unique(frames["dataset"]).tolist(), key=str))
        names = _checked_names(present, datasets)
        dcode, dnames = pd.factorize(frames["dataset"])
        code = pd.Index(names).get_indexer(dnames)[dcode]
        keep = code >= 0
        table, code = (frames, code) if keep.all() else (frames[keep], code[keep])
        vids = vcode = None
        if "video_id" in table.columns:
            vcode, vids = pd.factorize(table["video_id"], sort=True)
            vids = np.asarray(vids)
        return cls(
            frames=table,
            datasets=tuple(names),
            present=present,
            dataset_code=code.astype(np.int64),
            label=table["label"].to_numpy().astype(np.int64),
            score=table["score"].to_numpy(dtype=np.float64),
            video_ids=vids,
            video_code=vcode,
        )

    @property
    def has_video(self) -> bool:
        """Whether the table has a ``video_id`` column (video-level statistics need one)."""
        return self.video_ids is not None

    def require_video(self) -> tuple[np.ndarray, np.ndarray]:
        """``(video_ids, video_code)``, or the error :func:`validate_frames` gives a table without
        ``video_id``."""
        if self.video_ids is None or self.video_code is None:
            raise ValueError(f"frames lacks column(s) ['video_id']; it has {list(self.frames.columns)}")
        return self.video_ids, self.video_code

    def select(self, datasets: Iterable[str] | None) -> Scores:
        """The same scores restricted to ``datasets``, in that order (no re-validation; ``None``: self)."""
        if datasets is None:
            return self
        names = _checked_names(self.present, datasets)
        if tuple(names) == self.datasets:
            return self
        missing = [d for d in names if d not in self.datasets]
        if missing:  # left out when this Scores was built: its rows are gone
            raise ValueError(
                f"dataset(s) {missing} were left out of these scores; they hold {list(self.datasets)}"
            )
        return self._subset(names)

    def _subset(self, names: list[str]) -> Scores:
        remap = np.array([names.index(d) if d in names else -1 for d in self.datasets], dtype=np.int64)
        code = remap[self.dataset_code]
        keep = code >= 0
        table = self.frames if keep.all() else self.frames[keep]
        vids = vcode = None
        if self.video_ids is not None and self.video_code is not None:
            vcode, vids = pd.factorize(self.video_code[keep], sort=True)  # renumber the kept videos
            vids = self.video_ids[vids]
        return Scores(
            frames=table,
            datasets=tuple(names),
            present=self.present,
            dataset_code=code[keep],
            label=self.label[keep],
            score=self.score[keep],
            video_ids=vids,
            video_code=vcode,
        )

    # ----------------------------------------------------------------------------------- units

    def units(self, level: str = "video", agg: str = "mean") -> Units:
        """The units at ``level`` (``video`` or ``frame``); video scores aggregated with ``agg``."""
        _check_level_agg(level, agg)
        key = (level, agg if level == "video" else None)
        if key not in self._cache:
            self._cache[key] = self._video_units(agg) if level == "video" else self._frame_units()
        return self._cache[key]

    def _videos(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per video (``video_ids`` order): first row, dataset code, number within its dataset, counts."""
        if "videos" not in self._cache:
            _, video_code = self.require_video()
            first = np.unique(video_code, return_index=True)[1]
            vdataset = self.dataset_code[first]
            within = np.empty(len(first), dtype=np.int64)
            for d in range(len(self.datasets)):
                m = vdataset == d
                within[m] = np.arange(int(m.sum()))
            n_videos = np.bincount(vdataset, minlength=len(self.datasets))
            self._cache["videos"] = (first, vdataset, within, n_videos)
        return self._cache["videos"]

    def _frame_units(self) -> Units:
        vcode = nvid = None
        if self.has_video:
            _, _, within, nvid = self._videos()
            vcode = within[self.video_code]
        return Units(
            datasets=list(self.datasets),
            dataset_code=self.dataset_code,
            label=self.label,
            score=self.score,
            video_code=vcode,
            n_videos=nvid,
        )

    def _video_units(self, agg: str) -> Units:
        first, vdataset, within, nvid = self._videos()
        return Units(
            datasets=list(self.datasets),
            dataset_code=vdataset,
            label=self.label[first],
            score=self.video_score(agg),
            video_code=within,
            n_videos=nvid,
        )

    def video_score(self, agg: str = "mean") -> np.ndarray:
        """One score per video (``video_ids`` order): ``mean`` (exact, then rounded once), ``median``, ``max``."""
        _check_level_agg("video", agg)
        key = ("video_score", agg)
        if key not in self._cache:
            video_ids, video_code = self.require_video()
            n = len(video_ids)
            if agg == "mean":
                score = exact_group_means(self.score, video_code, n)
            else:
                g = pd.Series(self.score).groupby(video_code)
                score = (g.median() if agg == "median" else g.max()).to_numpy()
            self._cache[key] = score
        return self._cache[key]

    def video_table(self, agg: str = "mean") -> pd.DataFrame:
        """One row per video, sorted by ``video_id``: ``video_id, dataset, label, score, n_frames`` (+ ``method``)."""
        first = self._videos()[0]
        video_ids, video_code = self.require_video()
        out = {
            "video_id": video_ids,
            "dataset": self.frames["dataset"].to_numpy()[first],
            "label": self.label[first],
            "score": self.video_score(agg),
            "n_frames": np.bincount(video_code, minlength=len(video_ids)),
        }
        if "method" in self.frames.columns:
            out["method"] = self.frames["method"].to_numpy()[first]
        return pd.DataFrame(out)


def _check_level_agg(level: str, agg: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"level={level!r} is not one of {list(LEVELS)}")
    if agg not in AGGREGATIONS:
        raise ValueError(f"agg={agg!r} is not one of {list(AGGREGATIONS)}")


def _checked_names(present: tuple[str, ...], datasets: Iterable[str] | None) -> list[str]:
    if datasets is None:
        return list(present)
    names = list(datasets)
    empty = [d for d in names if d not in set(present)]
    if empty:
        raise ValueError(
            f"dataset(s) {empty} have no rows in column 'dataset' (an empty dataset); "
            f"datasets present: {list(present)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"datasets={names} lists a dataset twice")
    return names


def as_scores(
    frames: pd.DataFrame | Scores,
    datasets: Iterable[str] | None = None,
    need_video: bool = False,
) -> Scores:
    """``frames`` as :class:`Scores` (validated here when it is a table), restricted to ``datasets``."""
    if isinstance(frames, Scores):
        if need_video:
            frames.require_video()
        return frames.select(datasets)
    return Scores.from_frames(frames, datasets=datasets, need_video=need_video)


def units(
    frames: pd.DataFrame | Scores,
    level: str = "video",
    agg: str = "mean",
    datasets: Iterable[str] | None = None,
    need_video: bool = False,
) -> Units:
    """Validate ``frames`` and return its units at ``level`` (``video`` or ``frame``).

    ``datasets`` fixes which datasets are used and in which order (default: sorted names). A name
    with no rows is an "empty dataset": ``ValueError`` listing the datasets present.
    """
    _check_level_agg(level, agg)
    s = as_scores(frames, datasets=datasets, need_video=need_video or level == "video")
    return s.units(level, agg)


def video_scores(frames: pd.DataFrame | Scores, agg: str = "mean") -> pd.DataFrame:
    """One row per ``video_id``: ``video_id, dataset, label, score, n_frames`` (+ ``method`` if present).

    Args:
        frames: a frames table (validated here) or :class:`Scores`.
        agg: how frame probabilities become the video score: ``mean`` (the protocol's default; the
            float64 nearest to the exact mean), ``median`` or ``max``.

    Rows are sorted by ``video_id``. Raises ``ValueError`` for a video whose frames disagree on the
    label or the dataset, and for every other bad input listed in :func:`validate_frames`.
    """
    if agg not in AGGREGATIONS:
        raise ValueError(f"agg={agg!r} is not one of {list(AGGREGATIONS)}")
    return as_scores(frames, need_video=True).video_table(agg)

"""Every unit's score sorted ONCE (all datasets, both labels), equal scores grouped: :class:`Ranking`.

The ranking metrics count pairs: a Cross-AUC entry needs, for each fake of dataset ``j``, how many reals
of dataset ``i`` score below it and how many tie with it. With all units sorted together and numbered by
tie group, those counts are a cumulative count over the groups read at each fake's group
(:meth:`Ranking.reals_below`), exact integers for every pair of datasets from the one sort
(``benchmark.metrics.cross_auc``, ``benchmark.metrics.resample``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.metrics.scores import Units


@dataclass(frozen=True)
class Ranking:
    """All units sorted by score ONCE (every dataset, both labels), equal scores grouped.

    Class ``c = 2 * dataset + label`` (reals of dataset ``d``: ``2d``, its fakes: ``2d + 1``) occupies
    ``by_class[bounds[c]:bounds[c + 1]]``: positions in the sorted order, in score order.

    Attributes:
        n_groups: the number of distinct scores (tie groups, numbered in ascending score order).
        order: the unit indices in ascending score order (within a tie group in no particular order).
        by_class, bounds: the sorted positions grouped by class, as above.
        groups: the tie group of each position of ``by_class`` (non-decreasing within a class).
    """

    n_groups: int
    order: np.ndarray
    by_class: np.ndarray
    bounds: np.ndarray
    groups: np.ndarray

    def _part(self, d: int, label: int) -> slice:
        c = 2 * d + label
        return slice(int(self.bounds[c]), int(self.bounds[c + 1]))

    def class_groups(self, d: int, label: int) -> np.ndarray:
        """The tie groups of the units of dataset ``d`` with ``label``, in score order."""
        return self.groups[self._part(d, label)]

    def class_units(self, d: int, label: int) -> np.ndarray:
        """The unit indices of dataset ``d`` with ``label``, in score order."""
        return self.order[self.by_class[self._part(d, label)]]

    def reals_below(self, i: int) -> np.ndarray:
        """``b[g]`` = the number of reals of dataset ``i`` in groups below ``g`` (length ``n_groups + 1``).

        For a unit of group ``g``: ``b[g]`` reals of ``i`` score strictly below it and ``b[g + 1]`` below
        or equal (``b[g + 1] - b[g]`` tie with it).
        """
        b = np.zeros(self.n_groups + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.class_groups(i, 0), minlength=self.n_groups), out=b[1:])
        return b


def sort_scores(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(order, score[order])``: indices sorting finite float64 ``score`` ascending (equal scores in any
    order) and the sorted scores.

    One sort of VALUES, cheaper than an index sort (``argsort``): each score becomes a 64-bit integer of
    the same order whose low bits are replaced by the unit's index, so sorting these integers sorts by
    score and carries the index along. Scores that agree on the kept high bits (sign, exponent and the
    leading mantissa bits: 32 of 52 for a million units) but differ below them are then put in order by
    their full value (rare: never for float32 scores nor for scores rounded to a few decimals).
    """
    n = len(score)
    if n < 2:
        return np.arange(n), score.copy()
    idx_bits = (n - 1).bit_length()
    low = np.uint64((1 << idx_bits) - 1)
    packed = _ordered_key(score)
    packed &= ~low
    packed |= np.arange(n, dtype=np.uint64)
    packed.sort()
    order = (packed & low).astype(np.int64)
    s = score[order]
    high = packed >> np.uint64(idx_bits)
    same_high = high[1:] == high[:-1]
    mixed = same_high & (s[1:] != s[:-1])  # a run of equal kept bits holding different scores
    if mixed.any():
        # every position of such a run, sorted by full value: the runs themselves are in order already
        run = np.cumsum(np.r_[True, ~same_high])
        sub = np.flatnonzero(np.isin(run, run[1:][mixed]))
        fix = np.argsort(s[sub], kind="stable")
        order[sub], s[sub] = order[sub][fix], s[sub][fix]
    return order, s


def _ordered_key(score: np.ndarray) -> np.ndarray:
    """uint64 keys in the order of the float64 scores (``-0.0`` and ``0.0`` get the same key)."""
    bits = (np.asarray(score, dtype=np.float64) + 0.0).view(np.int64)  # + 0.0 turns -0.0 into 0.0
    # non-negative: set the sign bit; negative: flip every bit (larger magnitude, smaller key)
    return (bits ^ ((bits >> 63) | np.int64(-(1 << 63)))).view(np.uint64)


def rank_units(u: Units) -> Ranking:
    """Sort every unit's score once and group the ties (see :class:`Ranking`)."""
    k = len(u.datasets)
    order, s = sort_scores(u.score)
    first = np.ones(len(s), dtype=bool)
    np.not_equal(s[1:], s[:-1], out=first[1:])
    group = np.cumsum(first) - 1
    # class of each sorted unit; a stable sort of these small integers (a radix sort) keeps each class in
    # score order
    small = np.uint16 if 2 * k <= 1 << 16 else np.int64
    code = (2 * u.dataset_code + u.label).astype(small)[order]
    by = np.argsort(code, kind="stable")
    return Ranking(
        n_groups=int(group[-1]) + 1 if len(group) else 0,
        order=order,
        by_class=by,
        bounds=np.r_[0, np.cumsum(np.bincount(code, minlength=2 * k))],
        groups=group[by],
    )

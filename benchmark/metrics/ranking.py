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
    """``(order, keys)``: indices sorting finite float64 ``score`` ascending (equal scores in any order),
    and :func:`ordered_key` of ``score[order]`` (non-decreasing; equal keys = equal scores).

    One sort of VALUES, cheaper than an index sort (``argsort``): each score's key has its low bits
    replaced by the unit's index, so sorting these integers sorts by score and carries the index along.
    Scores that agree on the kept high bits (sign, exponent and the leading mantissa bits: 32 of 52 for
    a million units) but differ below them come out in index order; where that is not their score order,
    those runs are sorted again by full key (rare: never for float32 scores nor for scores rounded to a
    few decimals).
    """
    n = len(score)
    key = ordered_key(score)
    if n < 2:
        return np.arange(n), key
    idx_bits = (n - 1).bit_length()
    low = np.uint64((1 << idx_bits) - 1)
    lost = (key & low).astype(np.uint32 if idx_bits <= 32 else np.uint64)  # the bits the index replaces
    key &= ~low
    key |= np.arange(n, dtype=np.uint64)
    key.sort()
    order = (key & low).view(np.int64)  # indices < 2**63: the same bits
    key &= ~low
    key |= np.take(lost, order)  # the full keys in sorted order: a gather of the small lost bits only
    down = key[1:] < key[:-1]
    if down.any():  # runs of equal kept bits not in score order: sort each by its full key
        high = key >> np.uint64(idx_bits)
        run = np.cumsum(np.r_[True, high[1:] != high[:-1]])
        sub = np.flatnonzero(np.isin(run, run[1:][down]))
        fix = np.argsort(key[sub], kind="stable")
        order[sub], key[sub] = order[sub][fix], key[sub][fix]
    return order, key


def ordered_key(score: np.ndarray) -> np.ndarray:
    """uint64 keys in the order of the float64 scores: ``key(a) < key(b)`` iff ``a < b``, equal iff equal
    (``-0.0`` and ``0.0`` get one key)."""
    bits = np.add(score, 0.0, dtype=np.float64).view(np.int64)  # a copy; + 0.0 turns -0.0 into 0.0
    # non-negative: set the sign bit; negative: flip every bit (larger magnitude, smaller key)
    sign = bits >> 63
    sign |= np.int64(-(1 << 63))
    bits ^= sign
    return bits.view(np.uint64)


def rank_units(u: Units) -> Ranking:
    """Sort every unit's score once and group the ties (see :class:`Ranking`)."""
    k = len(u.datasets)
    order, key = sort_scores(u.score)
    first = np.ones(len(key), dtype=bool)
    np.not_equal(key[1:], key[:-1], out=first[1:])
    group = np.cumsum(first) - 1
    # class of each sorted unit; a stable sort of these small integers (a radix sort) keeps each class in
    # score order
    code = 2 * u.dataset_code + u.label
    bounds = np.r_[0, np.cumsum(np.bincount(code, minlength=2 * k))]
    small = np.uint8 if 2 * k <= 1 << 8 else np.uint16 if 2 * k <= 1 << 16 else np.int64
    by = np.argsort(np.take(code.astype(small), order), kind="stable")
    return Ranking(
        n_groups=int(group[-1]) + 1 if len(group) else 0,
        order=order,
        by_class=by,
        bounds=bounds,
        groups=np.take(group, by),
    )

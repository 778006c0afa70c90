"""Paired comparisons of the detectors of one grid, from their analyses (no new bootstrap).

Detectors of one grid and training set are scored on the same test videos, and every cell's bootstrap
draws depend only on the bootstrap seed and those videos (``benchmark.metrics.resample``), so resample
``b`` of detector a and resample ``b`` of detector b are the SAME videos: each ``COMPARED`` statistic's
difference is taken resample by resample (``benchmark.metrics.paired``), after averaging each detector's
seeds resample by resample as its leaderboard row does. A pair whose cells were not scored on the same
videos (or with another number of resamples) is listed as not comparable instead.

Family: every (pair, statistic) of the grid, all training sets together, Holm-adjusted. With several
seeds, the comparison over seeds: each detector's mean and standard deviation over its seeds, and the
paired t-test over the seeds both detectors ran (``scipy.stats.ttest_rel``), Holm-adjusted over the grid's
t-tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from benchmark.metrics import PairedDifference, different_videos, holm, paired_difference, seed_ttest
from benchmark.report import columns
from benchmark.report.analysis import Analysis, View, _seed_mean
from benchmark.report.groups import Group

Key = tuple[str, str, str]  # (train set, detector a, detector b)


@dataclass(frozen=True)
class Compared:
    """One paired difference a - b: seed-mean estimate, percentile interval, bootstrap p, Holm p."""

    estimate: float
    lo: float
    hi: float
    p: float
    p_holm: float
    n_valid: int

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval of the difference excludes zero."""
        return bool(self.lo > 0 or self.hi < 0)


@dataclass(frozen=True)
class SeedTest:
    """The comparison over seeds: difference of seed means, paired t-test over the common seeds."""

    delta: float
    t: float
    p: float
    p_holm: float
    seeds: tuple[int, ...]


@dataclass
class GridComparisons:
    """Every comparison of one grid.

    Attributes:
        grid: its name.
        pairs: per (train set, a, b), per ``COMPARED`` key, the paired bootstrap difference.
        not_paired: per (train set, a, b) that cannot be compared paired, why.
        seed_stats: per (train set, detector), per key, ``(mean, std, n seeds)`` over its seeds' estimates.
        seed_tests: per (train set, a, b) with at least two common seeds, per key, the t-test.
        n_family: how many p-values the bootstrap Holm adjustment covers.
    """

    grid: str
    pairs: dict[Key, dict[str, Compared]] = field(default_factory=dict)
    not_paired: dict[Key, str] = field(default_factory=dict)
    seed_stats: dict[tuple[str, str], dict[str, tuple[float, float, int]]] = field(default_factory=dict)
    seed_tests: dict[Key, dict[str, SeedTest]] = field(default_factory=dict)
    n_family: int = 0

    @property
    def several_seeds(self) -> bool:
        """Whether any detector of the grid has more than one seed (the seed columns are then shown)."""
        return any(n > 1 for stats in self.seed_stats.values() for _, _, n in stats.values())


def _why_not_paired(a: Analysis, b: Analysis) -> str | None:
    for ca in a.cells:
        for cb in b.cells:
            why = different_videos(ca.test, cb.test)
            if why:
                return why
            if ca.boot["video"].n != cb.boot["video"].n or ca.boot["video"].seed != cb.boot["video"].seed:
                return "other bootstrap settings"
    return None


def _per_seed(g: Group, a: Analysis, c: columns.Column) -> dict[int, float]:
    return {
        int(r["config"]["seed"]): float(c.fn(View(cell, c.level)))
        for r, cell in zip(g.records, a.cells, strict=True)
    }


def compare_grid(grid: str, items: list[tuple[Group, Analysis]]) -> GridComparisons:
    """The paired comparisons of every two detectors of ``grid`` trained on the same set."""
    out = GridComparisons(grid)
    raw: dict[Key, dict[str, PairedDifference]] = {}
    for g, a in items:
        out.seed_stats[g.train_set, g.detector] = {}
        for c in columns.COMPARED:
            vals = list(_per_seed(g, a, c).values())
            sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan
            out.seed_stats[g.train_set, g.detector][c.key] = (float(np.mean(vals)), sd, len(vals))
    by_train: dict[str, list[tuple[Group, Analysis]]] = {}
    for g, a in items:
        by_train.setdefault(g.train_set, []).append((g, a))
    tests: dict[Key, dict[str, tuple]] = {}
    for train, members in sorted(by_train.items()):
        members = sorted(members, key=lambda m: m[0].detector)
        for (ga, aa), (gb, ab) in combinations(members, 2):
            key = (train, ga.detector, gb.detector)
            why = _why_not_paired(aa, ab)
            if why:
                out.not_paired[key] = why
                continue
            raw[key] = {}
            for c in columns.COMPARED:
                sa = _seed_mean([c.fn(View(cell, c.level, resampled=True)) for cell in aa.cells])
                sb = _seed_mean([c.fn(View(cell, c.level, resampled=True)) for cell in ab.cells])
                d = paired_difference(aa.summary[c.key].value, ab.summary[c.key].value, sa, sb)
                raw[key][c.key] = d
            seeds_a, seeds_b = (
                {c.key: _per_seed(ga, aa, c) for c in columns.COMPARED},
                {c.key: _per_seed(gb, ab, c) for c in columns.COMPARED},
            )
            common = sorted(set(seeds_a[columns.COMPARED[0].key]) & set(seeds_b[columns.COMPARED[0].key]))
            if len(common) >= 2:
                tests[key] = {}
                for c in columns.COMPARED:
                    xa = [seeds_a[c.key][s] for s in common]
                    xb = [seeds_b[c.key][s] for s in common]
                    t, p = seed_ttest(xa, xb)
                    tests[key][c.key] = (float(np.mean(xa) - np.mean(xb)), t, p, tuple(common))
    flat = [(k, s) for k in raw for s in raw[k]]
    adjusted = holm([raw[k][s].p for k, s in flat])
    out.n_family = len(flat)
    for (k, s), p_adj in zip(flat, adjusted, strict=True):
        d = raw[k][s]
        out.pairs.setdefault(k, {})[s] = Compared(d.estimate, d.lo, d.hi, d.p, float(p_adj), d.n_valid)
    tflat = [(k, s) for k in tests for s in tests[k]]
    tadj = holm([tests[k][s][2] for k, s in tflat])
    for (k, s), p_adj in zip(tflat, tadj, strict=True):
        delta, t, p, common = tests[k][s]
        out.seed_tests.setdefault(k, {})[s] = SeedTest(delta, t, p, float(p_adj), common)
    return out

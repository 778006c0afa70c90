"""Exact group means: the float64 nearest to the exact mean of each group's values (round half to even).

Why exact: a float sum depends on the order of its terms, so two videos whose frame scores have the same
mean (the same scores in another order, or other scores with the same total) could end up one bit apart,
stop tying, and move an AUC, whose ties count one half, by a whole ``1 / (n_real * n_fake)``. Rounding the
EXACT mean once gives equal means equal floats, and keeps the order of unequal means (rounding is
monotone).

Every finite float64 is ``M * 2**E`` with an integer ``M`` (at most 53 bits). Within a group the terms are
put on the group's finest binary grid (the smallest ``E``) and summed as integers, which is exact:
* in numpy (int64, vectorised) when the aligned terms and their sum fit in 62 bits, which covers float32
  probabilities (24-bit mantissas) and most float64 data; the quotient by the group size is then one
  correctly rounded float division when the sum has at most 53 bits, else one Python ``int / int``
  (correctly rounded by CPython) per group;
* with Python integers, term by term, for the rare group spanning more bits (e.g. a score of 1e-30 beside
  a score of 0.9).
"""

from __future__ import annotations

import numpy as np

_INT_BITS = 62  # aligned terms and their group sum stay below 2**62 on the vectorised path


def exact_group_means(values: np.ndarray, group: np.ndarray, n_groups: int) -> np.ndarray:
    """``out[g]`` = the float64 nearest to the exact mean of ``values[group == g]`` (NaN for an empty group).

    Args:
        values: finite float64 values (validated by the caller).
        group: the group number of each value, in ``0 .. n_groups - 1``.
        n_groups: number of groups.
    """
    values = np.asarray(values, dtype=np.float64)
    group = np.asarray(group, dtype=np.int64)
    out = np.full(n_groups, np.nan)
    if len(values) == 0:
        return out
    order = np.argsort(group, kind="stable")
    g = group[order]
    x = values[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    gid = g[starts]
    n = np.diff(np.r_[starts, len(g)])

    mant, expo = _integer_form(x)
    nonzero = mant != 0
    big = np.iinfo(np.int64).max
    base = np.minimum.reduceat(np.where(nonzero, expo, big), starts)  # the group's finest grid
    base = np.where(base == big, 0, base)  # an all-zero group
    shift = np.where(nonzero, expo - np.repeat(base, n), 0)
    width = np.where(nonzero, shift + _bit_length(np.abs(mant)), 0)
    sum_bits = np.maximum.reduceat(width, starts) + _bit_length(n)
    fits = sum_bits <= _INT_BITS

    # vectorised: groups whose aligned terms and sum fit in int64
    small = np.repeat(fits, n)
    aligned = np.where(small, mant << np.where(small, shift, 0), 0)
    total = np.add.reduceat(aligned, starts)
    res = np.full(len(starts), np.nan)
    with np.errstate(over="ignore", under="ignore"):
        q = np.ldexp(total / n, base)  # total / n: one rounding when total has at most 53 bits
    # ldexp is exact unless the mean falls in the subnormal range, where it would round a second time
    direct = fits & (total != 0) & (np.abs(total) < 2**53) & (np.abs(q) >= np.finfo(np.float64).tiny)
    res[direct] = q[direct]
    res[fits & (total == 0)] = 0.0
    rest = np.flatnonzero(fits & ~direct & (total != 0))
    if len(rest):
        q, done = _round_quotient(total[rest], n[rest], base[rest])
        res[rest[done]] = q[done]
        for k in rest[~done]:
            res[k] = _divide(int(total[k]), int(base[k]), int(n[k]))
    # Python integers, term by term: groups too wide for int64
    if not fits.all():
        bounds = np.r_[starts, len(g)]
        for k in np.flatnonzero(~fits):
            lo, hi = bounds[k], bounds[k + 1]
            m, e = mant[lo:hi].tolist(), expo[lo:hi].tolist()
            nz = [ei for mi, ei in zip(m, e, strict=True) if mi]
            e0 = min(nz) if nz else 0
            tot = sum(mi << (ei - e0) for mi, ei in zip(m, e, strict=True) if mi)
            res[k] = _divide(tot, e0, int(n[k]))
    out[gid] = res
    return out


def _round_quotient(total: np.ndarray, n: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``total * 2**base / n`` correctly rounded, vectorised, for ``|total| < 2**62`` and ``n < 128``.

    The quotient is taken to 55-56 bits with integer division, its remainder folded into the lowest bit
    (a sticky bit: below the rounding bit, it only says "above the halfway point or not"), and the
    conversion to float64 rounds once, to nearest even. Returns the values and where they were computed
    (``n`` too large or a subnormal result: not done here).
    """
    mag = np.abs(total)
    t = _bit_length(mag) - _bit_length(n) - 55  # the quotient mag / (n * 2**t) lies in (2**54, 2**56)
    done = _bit_length(n) <= 7
    t = np.where(done, t, 0)
    num = np.where(t < 0, mag << np.clip(-t, 0, 62), mag)
    den = np.where(t > 0, n << np.clip(t, 0, 62), n)
    quot, rem = np.divmod(num, den)
    q = np.ldexp((quot | (rem != 0)).astype(np.float64), t + base) * np.sign(total)
    done &= np.abs(q) >= np.finfo(np.float64).tiny  # ldexp into the subnormal range would round again
    return q, done


def _divide(total: int, base: int, n: int) -> float:
    """``total * 2**base / n`` correctly rounded (CPython's int true division rounds correctly)."""
    return (total << base) / n if base >= 0 else total / (n << -base)


def _integer_form(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x = mant * 2**expo`` exactly, ``mant`` an odd int64 (0 for zeros): trailing zero bits removed."""
    frac, e = np.frexp(x)  # x = frac * 2**e, 0.5 <= |frac| < 1; subnormals too
    mant = np.ldexp(frac, 53).astype(np.int64)  # exact: at most 53 significant bits
    expo = e.astype(np.int64) - 53
    low = mant & -mant  # lowest set bit (0 for zeros)
    tz = np.where(mant != 0, _bit_length(low) - 1, 0)
    return mant >> tz, expo + tz


def _bit_length(v: np.ndarray) -> np.ndarray:
    """``int.bit_length`` of non-negative int64 values below 2**62 (0 for 0), exactly."""
    v = np.asarray(v, dtype=np.int64)
    # frexp of a float can round v up to the next power of two; correct with an integer comparison
    e = np.frexp(v.astype(np.float64))[1].astype(np.int64)
    e = np.where(v > 0, e, 0)
    over = (e > 0) & ((np.int64(1) << np.clip(e - 1, 0, 62)) > v)
    return e - over

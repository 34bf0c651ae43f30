"""Ranks with ties, as the scores use them.

A cell's place in a ranking is an interval when it ties with others (many empty cells, plateaus of a
smoothed map): [a, b] = shares of cells strictly denser / at least as dense. Crediting the part of
that interval that lies in the top q (ties broken at random, in expectation) makes the chance
baseline exact for any map: uniformly placed events land in the top q share with weight q.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]


def rank_interval(values: F64, v: F64) -> tuple[F64, F64]:
    """Shares of `values` strictly greater than each v, and greater or equal."""
    row = np.sort(np.asarray(values, np.float64))
    n = len(row)
    lo = n - np.searchsorted(row, v, "right")
    hi = n - np.searchsorted(row, v, "left")
    return np.asarray(lo / n, np.float64), np.asarray(hi / n, np.float64)


def top_weight(rank_lo: F64, rank_hi: F64, q: float | F64) -> F64:
    """How much of each ranked item lies in the top-q share (fractional for ties)."""
    span = np.maximum(rank_hi - rank_lo, 1e-12)
    return np.asarray(np.clip((np.asarray(q) - rank_lo) / span, 0.0, 1.0), np.float64)


def average_ranks(x: F64) -> F64:
    """Ranks 1..n, tied values sharing the mean of their ranks."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], len(xs)]
    mean_rank = (starts + ends + 1) / 2.0  # ranks starts+1 .. ends, averaged
    ranks = np.empty(len(x))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def spearman(x: F64, y: F64) -> float:
    """Spearman's rank correlation (average ranks for ties); 0 when either side is constant (no
    ranking to agree with) or has fewer than two values."""
    if len(x) < 2:
        return 0.0
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = float(np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / den) if den > 0 else 0.0

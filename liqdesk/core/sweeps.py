"""When does price first reach a level? A range-minimum search over bar lows (and maximum over highs).

For a long level at price p created at bar c, the sweep bar is the first j > c with low[j] <= p
(inclusive); for a short, the first j > c with high[j] >= p. A per-bar loop over all alive levels
is O(bars × levels); here a sparse table of block minima lets each level jump over clean blocks
of 2^s bars (binary lifting), O(levels × log bars) in total.

Two implementations of the same algorithm:
- `first_crossing_xp`: whole-array operations on any NumPy-like module (NumPy, CuPy);
- `_first_crossing_numba`: the same jumps per level in a compiled loop, faster on the CPU
  because it avoids 2·log2(N) temporary arrays. Tests compare the two.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

NEVER = np.iinfo(np.int32).max  # sweep bar of a level that is still alive


def _levels(n: int) -> int:
    return max(1, int(np.ceil(np.log2(max(n, 1) + 1))))


def block_table(series: Any, *, minimum: bool, xp: Any = np) -> Any:
    """Table t[s, i] = min (or max) of series[i : i + 2**s], ±inf past the end."""
    n = int(series.shape[0])
    depth = _levels(n)
    fill = np.inf if minimum else -np.inf
    table = xp.full((depth, n), fill, dtype=xp.float64)
    table[0] = series
    reduce = xp.minimum if minimum else xp.maximum
    for s in range(1, depth):
        half = 1 << (s - 1)
        table[s, : n - half] = reduce(table[s - 1, : n - half], table[s - 1, half:])
        table[s, n - half :] = table[s - 1, n - half :]
    return table


def first_crossing_xp(table: Any, start: Any, threshold: Any, *, minimum: bool, xp: Any = np) -> Any:
    """First bar >= start whose value crosses threshold (<= for minima, >= for maxima); n if none."""
    depth, n = table.shape
    pos = xp.asarray(start, dtype=xp.int64).copy()
    thr = xp.asarray(threshold, dtype=xp.float64)
    for s in range(depth - 1, -1, -1):
        step = 1 << s
        inside = pos + step <= n
        block = table[s, xp.minimum(pos, n - 1)]
        clean = (block > thr) if minimum else (block < thr)
        pos = xp.where(inside & clean, pos + step, pos)
    # pos is now the end of the longest clean run; a clean run reaching the end means "never".
    return xp.minimum(pos, n)


@numba.njit(cache=True, nogil=True)
def _first_crossing_numba(table, start, threshold, minimum):  # pragma: no cover - compiled
    depth, n = table.shape
    out = np.empty(start.shape[0], np.int64)
    for i in range(start.shape[0]):
        pos = start[i]
        thr = threshold[i]
        for s in range(depth - 1, -1, -1):
            step = 1 << s
            if pos + step <= n:
                b = table[s, pos]
                if (b > thr) if minimum else (b < thr):
                    pos += step
        out[i] = min(pos, n)
    return out


def first_crossing(table: Any, start: Any, threshold: Any, *, minimum: bool, xp: Any = np) -> Any:
    if xp is np:
        return _first_crossing_numba(
            table, np.ascontiguousarray(start, np.int64), np.ascontiguousarray(threshold, np.float64), minimum
        )
    return first_crossing_xp(table, start, threshold, minimum=minimum, xp=xp)


def sweep_bars(
    low: Any, high: Any, created: Any, price: Any, side: Any, *, xp: Any = np, tables: tuple[Any, Any] | None = None
) -> Any:
    """Sweep bar of every level (NEVER where no bar in the series reaches it).

    created: creation bar (sweepable from created + 1); side: +1 long (swept by low), −1 short.
    """
    n = int(low.shape[0])
    lo_t, hi_t = tables if tables is not None else (
        block_table(low, minimum=True, xp=xp),
        block_table(high, minimum=False, xp=xp),
    )
    out = xp.full(created.shape[0], NEVER, dtype=xp.int64)
    for s, table, is_min in ((1, lo_t, True), (-1, hi_t, False)):
        idx = xp.nonzero(side == s)[0]
        if idx.shape[0] == 0:
            continue
        hit = first_crossing(table, created[idx] + 1, price[idx], minimum=is_min, xp=xp)
        out[idx] = xp.where(hit >= n, NEVER, hit)
    return out

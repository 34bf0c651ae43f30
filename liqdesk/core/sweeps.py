"""When does price first reach a level? A range-minimum search over bar lows (and maximum over highs).

For a long level at price p created at bar c, the sweep bar is the first j > c with low[j] <= p
(inclusive); for a short, the first j > c with high[j] >= p. A per-bar loop over all alive levels
is O(bars × levels); here a sparse table of block minima lets each level jump over clean blocks
of 2^s bars (binary lifting), O(levels × log bars) in total.

Two implementations, compared by the tests:
- `first_crossing_xp`: binary lifting as whole-array operations on any NumPy-like module
  (NumPy, CuPy): the device path.
- `_sweep_by_records` (CPU, numba): walks bars from the end keeping the chain of successive
  new lows after each bar (a monotonic stack); a level's sweep bar is found by binary search in
  that short, cache-resident chain. Levels must be in creation order (the engine's order).
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


@numba.njit(cache=True, nogil=True)
def _sweep_by_records(series, created, price, is_low, out):  # pragma: no cover - compiled
    """First j > created[i] with series[j] <= price[i] (is_low) or >= price[i]; n if none.

    `created` must be non-decreasing. After pushing bar c+1 the stack holds the bars after c
    where the series makes a new extreme (walking forward); their values are monotonic, so the
    first bar that reaches a price is found by bisection.
    """
    n = series.shape[0]
    m = created.shape[0]
    st_idx = np.empty(n + 1, np.int64)
    st_val = np.empty(n + 1, np.float64)
    top = 0
    k = m - 1
    for c in range(n - 1, -2, -1):
        # push bar c + 1 (the first bar that can sweep levels created at c)
        j = c + 1
        if j < n:
            v = series[j] if is_low else -series[j]
            while top > 0 and st_val[top - 1] >= v:
                top -= 1
            st_idx[top] = j
            st_val[top] = v
            top += 1
        while k >= 0 and created[k] == c:
            p = price[k] if is_low else -price[k]
            # st_val increases from bottom (0) to top; want the highest position with st_val <= p
            lo, hi = 0, top
            while lo < hi:
                mid = (lo + hi) >> 1
                if st_val[mid] <= p:
                    lo = mid + 1
                else:
                    hi = mid
            out[k] = st_idx[lo - 1] if lo > 0 else n
            k -= 1
        if k < 0:
            break


def sweep_bars(
    low: Any,
    high: Any,
    created: Any,
    price: Any,
    side: Any,
    *,
    xp: Any = np,
    tables: tuple[Any, Any] | None = None,
) -> Any:
    """Sweep bar of every level (NEVER where no bar in the series reaches it).

    created: creation bar (sweepable from created + 1); side: +1 long (swept by low), −1 short.
    """
    n = int(low.shape[0])
    if xp is np and tables is None:
        return _sweep_bars_cpu(low, high, created, price, side)
    lo_t, hi_t = (
        tables
        if tables is not None
        else (
            block_table(low, minimum=True, xp=xp),
            block_table(high, minimum=False, xp=xp),
        )
    )
    out = xp.full(created.shape[0], NEVER, dtype=xp.int64)
    for s, table, is_min in ((1, lo_t, True), (-1, hi_t, False)):
        idx = xp.nonzero(side == s)[0]
        if idx.shape[0] == 0:
            continue
        hit = first_crossing(table, created[idx] + 1, price[idx], minimum=is_min, xp=xp)
        out[idx] = xp.where(hit >= n, NEVER, hit)
    return out


def _sweep_bars_cpu(
    low: np.ndarray, high: np.ndarray, created: np.ndarray, price: np.ndarray, side: np.ndarray
) -> np.ndarray:
    n = len(low)
    out = np.full(len(created), NEVER, np.int64)
    if len(created) and np.any(np.diff(created) < 0):
        raise ValueError("levels must be in creation order")
    for s, series, is_low in ((1, low, True), (-1, high, False)):
        idx = np.nonzero(side == s)[0]
        if not len(idx):
            continue
        hit = np.empty(len(idx), np.int64)
        _sweep_by_records(
            np.ascontiguousarray(series, np.float64), np.ascontiguousarray(created[idx], np.int64),
            np.ascontiguousarray(price[idx], np.float64), is_low, hit,
        )  # fmt: skip
        out[idx] = np.where(hit >= n, NEVER, hit)
    return out

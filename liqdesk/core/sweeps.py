"""When does price first reach a level?

The rule: a bar sweeps a long level when its (mark-price) low is at or below the level, a short
level when its high is at or above it (inclusive), from the bar after the level's creation on.
`reached` is that rule for one bar (the engine's live update); `sweep_bars` finds the first such
bar for every level of a series at once.

A per-bar loop over all alive levels is O(bars × levels). `sweep_bars` (compiled) walks bars from
the end keeping the chain of successive new lows after each bar (a monotonic stack); a level's
sweep bar is found by binary search in that short, cache-resident chain. The device path answers
the same question by binary lifting over sparse tables (cuda_kernels.py); the tests hold the two
to the same answers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liqdesk.core import hostmem
from liqdesk.core.jit import compiled
from liqdesk.core.series import LONG, SHORT

NEVER = np.iinfo(np.int32).max  # sweep bar of a level that is still alive


def reached(price: Any, side: int, sweep_low: float, sweep_high: float) -> Any:
    """Which levels of one side (prices on any array module) one bar sweeps."""
    return price >= sweep_low if side == LONG else price <= sweep_high


def sweep_bars(
    low: np.ndarray, high: np.ndarray, created: np.ndarray, price: np.ndarray, side: np.ndarray
) -> np.ndarray:
    """Sweep bar of every level (NEVER where no bar in the series reaches it).

    created: creation bar (sweepable from created + 1), non-decreasing; side: LONG (swept by low)
    or SHORT (swept by high).
    """
    # each side searched in place among all levels (no per-side copies: a month of levels is ~3 MB a column)
    created = np.ascontiguousarray(created, np.int64)
    if not _non_decreasing(created):
        raise ValueError("levels must be in creation order")
    out = hostmem.empty(len(created), np.int64)  # a level column: a mapping of its own when big
    out.fill(NEVER)
    price = np.ascontiguousarray(price, np.float64)
    side = np.ascontiguousarray(side, np.int8)
    stack = np.empty(len(low) + 1, np.int64), np.empty(len(low) + 1, np.float64)  # one for both sides
    for s, series, is_low in ((LONG, low, True), (SHORT, high, False)):
        _sweep_by_records(
            np.ascontiguousarray(series, np.float64), created, price, side, s, is_low, out, NEVER, *stack
        )
    return out


@compiled
def _non_decreasing(a: np.ndarray) -> bool:  # pragma: no cover - compiled
    for i in range(1, a.shape[0]):  # noqa: SIM110 - a loop compiles; all() over a generator does not
        if a[i] < a[i - 1]:
            return False
    return True


@compiled
def _sweep_by_records(
    series: np.ndarray,
    created: np.ndarray,
    price: np.ndarray,
    side: np.ndarray,
    want: int,
    is_low: bool,
    out: np.ndarray,
    never: int,
    st_idx: np.ndarray,
    st_val: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """For the levels of side `want`: first j > created[i] with series[j] <= price[i] (is_low) or
    >= price[i]; `never` if none. Other levels are left as they are. st_idx, st_val: room for the stack
    (n + 1 each).

    `created` must be non-decreasing. After pushing bar c+1 the stack holds the bars after c
    where the series makes a new extreme (walking forward); their values are monotonic, so the
    first bar that reaches a price is found by bisection.
    """
    n = series.shape[0]
    m = created.shape[0]
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
            if side[k] == want:
                p = price[k] if is_low else -price[k]
                # st_val increases from bottom (0) to top; want the highest position with st_val <= p
                lo, hi = 0, top
                while lo < hi:
                    mid = (lo + hi) >> 1
                    if st_val[mid] <= p:
                        lo = mid + 1
                    else:
                        hi = mid
                out[k] = st_idx[lo - 1] if lo > 0 else never
            k -= 1
        if k < 0:
            break

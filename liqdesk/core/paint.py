"""The heatmap painter on the CPU: alive notional of one side per (time column, price bin).

Each level lives over a run of columns [first column whose end ≥ its creation bar, first column
whose end ≥ its sweep bar). Painting every level over its lifetime would cost levels × columns;
instead the columns are swept once, in time order, with one running sum per price bin: at each
column the levels that start there are added to their bin and the levels swept there removed,
and the column is the running sums. Levels are in creation order, so their first columns come in
order; their last columns are put in order by one counting sort. The running sums (a few KB) stay
in cache: the only grid-sized memory touched is the output, once per cell.

Closes and decay scale all alive levels together, so weights are kept in "factor space"
(deposit / factor at creation) and each column is multiplied by its own factor as it is written.
An integer count of alive levels per bin runs alongside: cells it says are empty are left at
exactly zero, so floating-point residue from add/remove never shows as faint colour.

The device path paints with the same quantities in CUDA (cuda_kernels.py: difference arrays and
prefix sums, the parallel form of the same sweep). Both are held by the tests to the plain
definition, a column at a time: `heatmap.column_at`.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from liqdesk.core import hostmem
from liqdesk.core.jit import compiled

_local = threading.local()
EXP_CLIP = 700.0  # exp() overflows just above 709


def paint_side(
    levels: dict[str, np.ndarray],
    log_factor: np.ndarray,
    last: np.ndarray,
    lo: float,
    width: float,
    nbins: int,
    side: int,
    *,
    transposed: bool = False,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """(T, P) float32 USD of one side's alive levels at the end of each column's `last` bar, or
    with `transposed` the same as a row-major (P, T) array (an image's layout, painted straight
    into it: no second grid for the transpose). With `out` (a (T, P) float32 array, any strides,
    e.g. the transpose of an image) the notional is added to what it holds: several engines paint
    into one buffer. The scratch is kept per thread until release_scratch."""
    if out is not None:
        if out.shape != (len(last), nbins) or out.dtype != np.float32:
            raise ValueError(f"out must be a ({len(last)}, {nbins}) float32 array")
        grid = target = out
    else:
        grid = hostmem.zeros((nbins, len(last)) if transposed else (len(last), nbins), np.float32)
        target = grid.T if transposed else grid
    created = levels["created"]
    _paint_levels(
        created, levels["sweep"], levels["price"], levels["deposit"], levels["side"], log_factor,
        np.asarray(last, np.int64), lo, width, nbins, side, target, *_workspace(len(created)),
    )  # fmt: skip
    return grid


def release_scratch() -> None:
    """Free this thread's painter scratch (8 bytes a level)."""
    _local.ws = None


def _workspace(levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Room for each level's bin and for the levels' order by last column, kept per thread and grown as
    needed: re-rendering then touches no fresh memory."""
    ws: Any = getattr(_local, "ws", None)
    if ws is None or len(ws[0]) < levels:
        n = max(levels + levels // 8, 1024)
        ws = _local.ws = (hostmem.empty(n, np.int32), hostmem.empty(n, np.int32))
    return ws[0], ws[1]


@compiled
def _paint_levels(
    created: np.ndarray,
    sweep: np.ndarray,
    price: np.ndarray,
    deposit: np.ndarray,
    side: np.ndarray,
    log_factor: np.ndarray,
    last: np.ndarray,
    lo: float,
    width: float,
    nbins: int,
    want: int,
    out: np.ndarray,
    level_bin: np.ndarray,
    ends: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Sweep the columns in time order, added into `out` ((T, P); any strides)."""
    t = last.shape[0]
    m = created.shape[0]
    final = last[t - 1]
    ref = log_factor[last[0]]
    # per bar b ≤ final: the first column whose end bar is ≥ b (later bars: t), and what a level created at
    # the end of b weighs in factor space
    first_col = np.empty(final + 2, np.int32)
    weight = np.empty(final + 1, np.float64)
    k = 0
    for b in range(final + 2):
        while k < t and last[k] < b:
            k += 1
        first_col[b] = k
        if b <= final:
            weight[b] = np.exp(min(ref - log_factor[b], EXP_CLIP))
    # each level's bin (−1: not shown), and the shown levels counted by the column that removes them
    ptr = np.zeros(t + 2, np.int64)
    stop = m  # levels from here on are created after the last column
    for i in range(m):
        c = created[i]
        if c > final:
            stop = i
            break
        level_bin[i] = -1
        if side[i] != want:
            continue
        e = first_col[min(sweep[i], final + 1)]
        if first_col[c] >= e:
            continue  # swept before any column shows it
        b = int(np.floor((price[i] - lo) / width))
        if b < 0 or b >= nbins:
            continue
        level_bin[i] = b
        if e < t:
            ptr[e + 1] += 1
    for k in range(1, t + 2):
        ptr[k] += ptr[k - 1]
    fill = ptr.copy()
    for i in range(stop):
        if level_bin[i] >= 0:
            e = first_col[min(sweep[i], final + 1)]
            if e < t:
                ends[fill[e]] = i
                fill[e] += 1
    run = np.zeros(nbins, np.float64)
    run_n = np.zeros(nbins, np.int64)
    i = 0
    for k in range(t):
        while i < stop and first_col[created[i]] <= k:  # the levels that start at column k
            b = level_bin[i]
            if b >= 0:
                run[b] += deposit[i] * weight[created[i]]
                run_n[b] += 1
            i += 1
        for q in range(ptr[k], ptr[k + 1]):  # the levels swept by column k's end
            j = ends[q]
            b = level_bin[j]
            run[b] -= deposit[j] * weight[created[j]]
            run_n[b] -= 1
        scale = np.exp(log_factor[last[k]] - ref)
        for b in range(nbins):
            if run_n[b] > 0 and run[b] > 0.0:
                out[k, b] += run[b] * scale

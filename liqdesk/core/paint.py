"""The heatmap painter on the CPU: alive notional of one side per (time column, price bin).

Each level lives over a run of columns [first column whose end ≥ its creation bar, first column
whose end ≥ its sweep bar). Painting every level over its lifetime would cost levels × columns;
instead each level adds its weight at its start column and removes it at its end column (a
difference array), and one running sum down the time axis gives every cell at once.

Closes and decay scale all alive levels together, so weights are kept in "factor space"
(deposit / factor at creation) and each column is multiplied by its own factor after the sum.
An integer count of alive levels per cell runs alongside: cells it says are empty are set to
exactly zero, so floating-point residue from add/remove never shows as faint colour.

The device path paints with the same steps in CUDA (cuda_kernels.py). Both are held by the tests
to the plain definition, a column at a time: `heatmap.column_at`.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from liqdesk.core.jit import compiled

_local = threading.local()
# Scratch per render: 12 bytes a cell (float64 sum + int32 count) for at most this many cells
# (~12 MB); larger grids are painted in column blocks (1 M cells paints as fast as 2 M: cache).
SCRATCH_CELLS = 1_000_000
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
    block = max(1, min(len(last), SCRATCH_CELLS // nbins))
    val, cnt = _workspace(block + 1, nbins)
    if out is not None:
        if out.shape != (len(last), nbins) or out.dtype != np.float32:
            raise ValueError(f"out must be a ({len(last)}, {nbins}) float32 array")
        grid = target = out
    else:
        grid = np.zeros((nbins, len(last)) if transposed else (len(last), nbins), np.float32)
        target = grid.T if transposed else grid
    _paint_levels(
        levels["created"], levels["sweep"], levels["price"], levels["deposit"], levels["side"], log_factor,
        np.asarray(last, np.int64), lo, width, nbins, val, cnt, side, target,
    )  # fmt: skip
    return grid


def release_scratch() -> None:
    """Free this thread's painter scratch (~12 bytes a cell of one column block)."""
    _local.ws = None


def _workspace(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Scratch difference arrays, kept per thread: re-rendering the same view size then touches
    no fresh memory (page faults on ~50 MB cost more than the painting itself)."""
    ws: Any = getattr(_local, "ws", None)
    if ws is None or ws[0].shape != (rows, cols):
        ws = (np.zeros((rows, cols), np.float64), np.zeros((rows, cols), np.int32))
        _local.ws = ws
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
    val: np.ndarray,
    cnt: np.ndarray,
    want: int,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Scatter starts/ends, then sum down the time axis, added into `out` ((T, P); any strides).

    The columns are done in blocks of val.shape[0] − 1, so the scratch stays small for big grids:
    each block scatters only the events that fall inside it and the running sums carry over, which
    adds the same numbers in the same order as one pass over all columns.
    """
    t = last.shape[0]
    block = val.shape[0] - 1
    ref = log_factor[last[0]]
    first_end = last[0]
    run = np.zeros(nbins, np.float64)
    run_n = np.zeros(nbins, np.int64)
    for c0 in range(0, t, block):
        c1 = min(c0 + block, t)
        val[:] = 0.0
        cnt[:] = 0
        block_end = last[c1 - 1]
        start_col = 0
        for i in range(created.shape[0]):
            c = created[i]
            if c > block_end:
                break  # levels are in creation order: later ones start after this block
            if side[i] != want or sweep[i] <= first_end:
                continue
            b = int(np.floor((price[i] - lo) / width))
            if b < 0 or b >= nbins:
                continue
            while last[start_col] < c:  # c is non-decreasing, so the start column only moves forward
                start_col += 1
            a, z = start_col, t  # end column: first column whose end bar >= sweep
            while a < z:
                mid = (a + z) >> 1
                if last[mid] < sweep[i]:
                    a = mid + 1
                else:
                    z = mid
            if start_col >= a or a < c0:
                continue  # never visible, or its whole life is in earlier blocks
            w = deposit[i] * np.exp(min(ref - log_factor[c], EXP_CLIP))
            if start_col >= c0:
                val[start_col - c0, b] += w
                cnt[start_col - c0, b] += 1
            if a < c1:
                val[a - c0, b] -= w
                cnt[a - c0, b] -= 1
        for k in range(c0, c1):
            scale = np.exp(log_factor[last[k]] - ref)
            for b in range(nbins):
                run[b] += val[k - c0, b]
                run_n[b] += cnt[k - c0, b]
                if run_n[b] > 0 and run[b] > 0.0:
                    out[k, b] += run[b] * scale

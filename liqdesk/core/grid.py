"""The heatmap: USD notional of alive levels per (time column, price bin).

Each level lives over a run of columns [first column whose end ≥ creation bar, first column whose
end ≥ sweep bar). Painting every level over its lifetime would cost levels × columns; instead each
level adds its weight at its start column and removes it at its end column (a difference array),
and one cumulative sum down the time axis gives every cell at once.

Closes and decay scale all alive levels together, so weights are kept in "factor space"
(deposit / factor at creation) and each column is multiplied by its own factor after the sum.
An integer count of alive levels per cell runs alongside: cells it says are empty are set to
exactly zero, so floating-point residue from add/remove never shows as faint colour.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numba
import numpy as np

from liqdesk.core.series import LONG, SHORT

if TYPE_CHECKING:
    from liqdesk.core.engine import LiquidationEngine

_EXP_CLIP = 700.0  # exp() overflows just above 709


@dataclass(frozen=True)
class PriceBins:
    lo: float
    hi: float
    n: int

    def __post_init__(self) -> None:
        if not (np.isfinite(self.lo) and np.isfinite(self.hi) and self.hi > self.lo > 0):
            raise ValueError(f"bad price range {self.lo}..{self.hi}")
        if self.n < 1:
            raise ValueError("need at least one price bin")

    @property
    def width(self) -> float:
        return (self.hi - self.lo) / self.n

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(self.lo, self.hi, self.n + 1)

    @property
    def centers(self) -> np.ndarray:
        return self.lo + (np.arange(self.n) + 0.5) * self.width

    def index(self, price: np.ndarray) -> np.ndarray:
        """Bin of each price; −1 outside [lo, hi)."""
        i = np.floor((np.asarray(price) - self.lo) / self.width).astype(np.int64)
        return np.where((i >= 0) & (i < self.n), i, -1)


@dataclass(frozen=True)
class HeatmapGrid:
    time_ms: np.ndarray  # (T,) open time of each column's first bar
    first_bar: np.ndarray  # (T,)
    last_bar: np.ndarray  # (T,) the column shows the state at the end of this bar
    bins: PriceBins
    long: np.ndarray  # (T, P) float32 USD
    short: np.ndarray  # (T, P) float32 USD

    @property
    def price(self) -> np.ndarray:
        return self.bins.centers

    @property
    def total(self) -> np.ndarray:
        return self.long + self.short


def column_bars(start_bar: int, end_bar: int, columns: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Split bars [start_bar, end_bar) into at most `columns` runs of near-equal length."""
    n = end_bar - start_bar
    if n <= 0:
        raise ValueError("empty bar range")
    if columns is None or columns >= n:
        first = np.arange(start_bar, end_bar)
        return first, first.copy()
    if columns < 1:
        raise ValueError("need at least one time column")
    edges = start_bar + (np.arange(columns + 1) * n) // columns
    return edges[:-1], edges[1:] - 1


def render_grid(
    engine: LiquidationEngine,
    bins: PriceBins,
    start_bar: int = 0,
    end_bar: int | None = None,
    columns: int | None = None,
    *,
    xp: Any = np,
    keep_scratch: bool = True,
) -> HeatmapGrid:
    """keep_scratch=False frees the per-thread scratch arrays afterwards (a caller that renders
    rarely, or watches its memory, trades ~10 ms of page faults for ~12 bytes per cell)."""
    end_bar = engine.n_bars if end_bar is None else end_bar
    first, last = column_bars(start_bar, end_bar, columns)
    if xp is np:
        long_, short_ = (paint_side(engine, bins, last, side) for side in (LONG, SHORT))
        if not keep_scratch:
            release_scratch()
    else:
        long_, short_ = paint_levels_xp(engine.levels(), engine.log_factor, last, bins, xp)
    return HeatmapGrid(
        time_ms=engine.open_time[first], first_bar=first, last_bar=last, bins=bins, long=long_, short=short_
    )


def paint_side(
    engine: LiquidationEngine, bins: PriceBins, last: np.ndarray, side: int, *, transposed: bool = False
) -> np.ndarray:
    """(T, P) float32 USD of one side's alive levels at the end of each column's `last` bar, or
    with `transposed` the same as a row-major (P, T) array (an image's layout, painted straight
    into it: no second grid for the transpose). The compiled painter's scratch is kept per thread
    until release_scratch."""
    lv = engine.levels()
    block = max(1, min(len(last), SCRATCH_CELLS // bins.n))
    val, cnt = _workspace(block + 1, bins.n)
    grid = np.zeros((bins.n, len(last)) if transposed else (len(last), bins.n), np.float32)
    _paint_levels(
        lv["created"], lv["sweep"], lv["price"], lv["deposit"], lv["side"], engine.log_factor,
        np.asarray(last, np.int64), bins.lo, bins.width, bins.n, val, cnt, side, grid.T if transposed else grid,
    )  # fmt: skip
    return grid


def release_scratch() -> None:
    """Free this thread's painter scratch (~12 bytes a cell of one column block)."""
    _local.ws = None


_local = threading.local()
# Scratch per render: 12 bytes a cell (float64 sum + int32 count) for at most this many cells
# (~12 MB); larger grids are painted in column blocks (1 M cells paints as fast as 2 M: cache).
SCRATCH_CELLS = 1_000_000


def _workspace(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Scratch difference arrays, kept per thread: re-rendering the same view size then touches
    no fresh memory (page faults on ~50 MB cost more than the painting itself)."""
    ws = getattr(_local, "ws", None)
    if ws is None or ws[0].shape != (rows, cols):
        ws = (np.zeros((rows, cols), np.float64), np.zeros((rows, cols), np.int32))
        _local.ws = ws
    return ws


@numba.njit(cache=True, nogil=True)
def _paint_levels(
    created, sweep, price, deposit, side, log_c, last, lo, width, nbins, val, cnt, want, out
):  # pragma: no cover
    """CPU twin of paint_levels_xp for one side: scatter starts/ends, then sum down the time axis,
    into `out` ((T, P), zeros; any strides).

    The columns are done in blocks of val.shape[0] − 1, so the scratch stays small for big grids:
    each block scatters only the events that fall inside it and the running sums carry over, which
    adds the same numbers in the same order as one pass over all columns.
    """
    t = last.shape[0]
    block = val.shape[0] - 1
    ref = log_c[last[0]]
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
            w = deposit[i] * np.exp(min(ref - log_c[c], 700.0))
            if start_col >= c0:
                val[start_col - c0, b] += w
                cnt[start_col - c0, b] += 1
            if a < c1:
                val[a - c0, b] -= w
                cnt[a - c0, b] -= 1
        for k in range(c0, c1):
            scale = np.exp(log_c[last[k]] - ref)
            for b in range(nbins):
                run[b] += val[k - c0, b]
                run_n[b] += cnt[k - c0, b]
                if run_n[b] > 0 and run[b] > 0.0:
                    out[k, b] = run[b] * scale


def paint_levels_xp(lv: dict, lc: Any, last: Any, bins: PriceBins, xp: Any) -> tuple[Any, Any]:
    """Whole-array version (NumPy or CuPy) of the same painting."""
    created, sweep, price = lv["created"], lv["sweep"], lv["price"]
    t = len(last)

    # Levels alive at some column end and inside the price range.
    upto = int(xp.searchsorted(created, last[-1], "right"))
    idx = xp.nonzero(sweep[:upto] > last[0])[0]
    b = xp.floor((price[idx] - bins.lo) / bins.width).astype(xp.int64)
    inside = (b >= 0) & (b < bins.n)
    idx, b = idx[inside], b[inside]
    c = created[idx]
    start_col = xp.searchsorted(last, c, "left")
    end_col = xp.searchsorted(last, sweep[idx], "left")
    vis = start_col < end_col
    idx, b, start_col, end_col, c = idx[vis], b[vis], start_col[vis], end_col[vis], c[vis]

    ref = lc[last[0]]
    w = lv["deposit"][idx] * xp.exp(xp.minimum(ref - lc[c], _EXP_CLIP))
    col_scale = xp.exp(lc[last] - ref)[:, None]
    side = lv["side"][idx]
    p = bins.n
    out = []
    for s in (LONG, SHORT):
        m = side == s
        cells = _accumulate(start_col[m], end_col[m], b[m], w[m], t, p, xp)
        out.append((cells * col_scale).astype(xp.float32))
    return out[0], out[1]


def _accumulate(start: Any, end: Any, b: Any, w: Any, t: int, p: int, xp: Any) -> Any:
    size = (t + 1) * p
    flat_on, flat_off = start * p + b, end * p + b
    value = xp.bincount(flat_on, weights=w, minlength=size) - xp.bincount(flat_off, weights=w, minlength=size)
    count = xp.bincount(flat_on, minlength=size) - xp.bincount(flat_off, minlength=size)
    value = xp.cumsum(value.reshape(t + 1, p)[:t], axis=0)
    count = xp.cumsum(count.reshape(t + 1, p)[:t], axis=0)
    value[count == 0] = 0.0
    return xp.maximum(value, 0.0)

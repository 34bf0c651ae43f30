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

from dataclasses import dataclass
from typing import TYPE_CHECKING

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
) -> HeatmapGrid:
    end_bar = engine.n_bars if end_bar is None else end_bar
    first, last = column_bars(start_bar, end_bar, columns)
    t = len(last)
    lv = engine.levels()
    created, sweep, price = lv["created"], lv["sweep"], lv["price"]
    lc = engine.log_factor

    # Levels alive at some column end and inside the price range.
    upto = int(np.searchsorted(created, last[-1], "right"))
    idx = np.nonzero(sweep[:upto] > last[0])[0]
    b = bins.index(price[idx])
    idx, b = idx[b >= 0], b[b >= 0]
    c = created[idx]
    start_col = np.searchsorted(last, c, "left")
    end_col = np.searchsorted(last, sweep[idx], "left")
    vis = start_col < end_col
    idx, b, start_col, end_col, c = idx[vis], b[vis], start_col[vis], end_col[vis], c[vis]

    ref = lc[last[0]]
    w = lv["deposit"][idx] * np.exp(np.minimum(ref - lc[c], _EXP_CLIP))
    col_scale = np.exp(lc[last] - ref)[:, None]
    side = lv["side"][idx]
    p = bins.n
    out = []
    for s in (LONG, SHORT):
        m = side == s
        cells = _accumulate(start_col[m], end_col[m], b[m], w[m], t, p)
        out.append((cells * col_scale).astype(np.float32))
    return HeatmapGrid(
        time_ms=engine.open_time[first], first_bar=first, last_bar=last, bins=bins, long=out[0], short=out[1]
    )


def _accumulate(start: np.ndarray, end: np.ndarray, b: np.ndarray, w: np.ndarray, t: int, p: int) -> np.ndarray:
    size = (t + 1) * p
    flat_on, flat_off = start * p + b, end * p + b
    value = np.bincount(flat_on, weights=w, minlength=size) - np.bincount(flat_off, weights=w, minlength=size)
    count = np.bincount(flat_on, minlength=size) - np.bincount(flat_off, minlength=size)
    value = np.cumsum(value.reshape(t + 1, p)[:t], axis=0)
    count = np.cumsum(count.reshape(t + 1, p)[:t], axis=0)
    value[count == 0] = 0.0
    return np.maximum(value, 0.0)

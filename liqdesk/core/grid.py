"""Price bins, time columns and the heatmap as float USD grids.

`render_grid` gives the USD notional of alive levels per (time column, price bin), long and short,
for exports and numbers (the CPU engine's painter, paint.py); the chart's uint8 pictures come from
heatmap.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from liqdesk.core.paint import paint_side, release_scratch
from liqdesk.core.series import LONG, SHORT

if TYPE_CHECKING:
    from liqdesk.core.engine import LiquidationEngine


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
        out: np.ndarray = self.lo + (np.arange(self.n) + 0.5) * self.width
        return out

    def index(self, price: Any, xp: Any = np) -> Any:
        """Bin of each price (an array of `xp`); −1 outside [lo, hi)."""
        i = xp.floor((xp.asarray(price) - self.lo) / self.width).astype(xp.int64)
        return xp.where((i >= 0) & (i < self.n), i, -1)


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
        out: np.ndarray = self.long + self.short
        return out


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
    keep_scratch: bool = True,
) -> HeatmapGrid:
    """USD grids of a CPU engine. keep_scratch=False frees the painter's per-thread scratch afterwards
    (8 bytes a level: a caller that renders rarely, or watches its memory)."""
    if engine.backend.is_gpu:
        raise ValueError("float USD grids come from the CPU engine")
    end_bar = engine.n_bars if end_bar is None else end_bar
    first, last = column_bars(start_bar, end_bar, columns)
    lv, lf = engine.levels(), engine.log_factor
    long_, short_ = (paint_side(lv, lf, last, bins.lo, bins.width, bins.n, side) for side in (LONG, SHORT))
    if not keep_scratch:
        release_scratch()
    return HeatmapGrid(
        time_ms=engine.open_time[first], first_bar=first, last_bar=last, bins=bins, long=long_, short=short_
    )

"""The heatmap as the chart draws it: a uint8 picture of a range of bars, and its live update.

`render_view` paints a view (grid → value transform → colour levels → frame values → uint8) where
the engine's levels live, NumPy or CuPy, and only the uint8 image comes to the host; the frame
values stay beside it on the engine's array module, so that new levels re-colour the view
(`quantise_image`) and a live bar repaints only the newest column (`patch_newest_column`).

`column_at` is the plain definition of one heatmap column: the notional of the levels alive at
the end of a bar, per price bin. The live update uses it for the newest column; the tests hold the
compiled painters (paint.py, cuda_kernels.py) to it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from liqdesk.core import display
from liqdesk.core.backend import Backend
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import PriceBins, column_bars
from liqdesk.core.series import LONG, SHORT


@dataclass(frozen=True)
class HeatmapView:
    time_ms: np.ndarray  # (T,) open time of each column's first bar
    first_bar: np.ndarray  # (T,)
    last_bar: np.ndarray  # (T,) a column shows the state at the end of its last bar
    end_bar: int  # bars [first_bar[0], end_bar) are drawn
    bins: PriceBins
    transform: str
    two_tone: bool
    levels: tuple[float, float]
    values: Any  # (P, T) float32 frame values (display.frame_values), on the engine's array module
    image: np.ndarray  # (P, T) uint8 codes on the host, C-contiguous


def render_view(
    engine: LiquidationEngine,
    bins: PriceBins,
    start_bar: int,
    end_bar: int,
    columns: int | None,
    *,
    transform: str = "sqrt",
    levels: tuple[float, float] | None = None,
    two_tone: bool = False,
    visible_bars: tuple[int, int] | None = None,
    visible_prices: tuple[float, float] | None = None,
) -> HeatmapView:
    """The view of bars [start_bar, end_bar) in at most `columns` columns. levels None: percentile
    levels of the cells on screen (visible_bars × visible_prices; all cells when not given or when
    none there is positive): colour is relative to the visible data."""
    display.check_transform(transform)
    xp = engine.xp
    first, last = column_bars(start_bar, end_bar, columns)
    tlong, tshort = engine.kernels.paint(
        engine.levels(), engine.log_factor, xp.asarray(last), bins.lo, bins.width, bins.n, transform
    )
    if levels is None:
        levels = visible_levels(tlong, tshort, last, bins, visible_bars, visible_prices, xp)
    values = display.frame_values(tlong, tshort, two_tone, xp, out=tlong)
    del tshort
    image = engine.backend.download(display.quantise_values(values, levels, two_tone, xp))
    return HeatmapView(
        time_ms=engine.open_time[first], first_bar=first, last_bar=last, end_bar=end_bar, bins=bins,
        transform=transform, two_tone=two_tone, levels=(float(levels[0]), float(levels[1])), values=values,
        image=image,
    )  # fmt: skip


def visible_levels(
    tlong: Any,
    tshort: Any,
    last_bar: np.ndarray,
    bins: PriceBins,
    visible_bars: tuple[int, int] | None,
    visible_prices: tuple[float, float] | None,
    xp: Any,
) -> tuple[float, float]:
    """Percentile levels of the positive cells of max(tlong, tshort) inside the visible window."""
    nz = xp.zeros(0, tlong.dtype)
    if visible_bars is not None and visible_prices is not None:
        c0 = int(np.searchsorted(last_bar, visible_bars[0], "left"))
        c1 = int(np.searchsorted(last_bar, visible_bars[1], "left")) + 1
        p0, p1 = (int(np.clip(i, 0, bins.n)) for i in _bin_span(bins, *visible_prices))
        nz = _positive_max(tlong[p0:p1, c0:c1], tshort[p0:p1, c0:c1], xp)
    if not nz.size:
        nz = _positive_max(tlong, tshort, xp)
    return display.default_levels(nz, xp=xp, positive=True)


def quantise_image(values: Any, levels: tuple[float, float], two_tone: bool, backend: Backend) -> np.ndarray:
    """New codes for new levels from a view's kept values (no engine work), on the host."""
    return backend.download(display.quantise_values(values, levels, two_tone, backend.xp))


def column_at(engine: LiquidationEngine, bins: PriceBins, bar: int) -> tuple[Any, Any]:
    """(long, short) float64 USD per price bin of the levels alive at the end of bar index `bar`.
    An engine that sums other engines (core.aggregate_engine) answers with its own `column_at`: the
    sum of its venues' columns, each by this definition or stepped from the one before it."""
    own = getattr(engine, "column_at", None)
    if own is not None:
        return own(bins, bar)  # type: ignore[no-any-return]
    xp = engine.xp
    idx, usd = engine.alive_at(bar)
    lv = engine.levels()
    b = bins.index(lv["price"][idx], xp)
    side = lv["side"][idx]
    out = []
    for s in (LONG, SHORT):
        m = (side == s) & (b >= 0)
        out.append(xp.bincount(b[m], weights=usd[m], minlength=bins.n))
    return out[0], out[1]


def patch_newest_column(
    engine: LiquidationEngine, view: HeatmapView, changed_from: int | None = None
) -> HeatmapView | None:
    """The view after a live bar: its newest column recomputed (one column appended for a new bar
    when each column is one bar), other columns as they were, but for those showing a bar from
    `changed_from` on (the engine's `changed_from`: a late bar of one of the venues an aggregate
    sums changes an older column).

    A column shows the state at the end of its last bar, so a new or revised bar of one engine
    changes only the newest one. None when nothing shown changed (the view is in the past) or the
    view's values are gone (a newer view superseded it)."""
    n = engine.n_bars
    if view.end_bar < n - 1 or view.end_bar > n or view.values is None:
        return None
    xp = engine.xp
    if n > view.end_bar and bool(np.all(view.first_bar == view.last_bar)):
        keep, first = len(view.last_bar), n - 1  # append a column for the new bar
    else:
        keep, first = len(view.last_bar) - 1, int(view.first_bar[-1])  # recompute the last column
    redo = keep if changed_from is None else int(np.searchsorted(view.last_bar[:keep], changed_from, "left"))
    bars = [int(b) for b in view.last_bar[redo:keep]] + [n - 1]
    values, codes = [], []
    for bar in bars:
        long_, short_ = column_at(engine, view.bins, bar)
        tl = display.transform(long_.astype(xp.float32), view.transform, xp, inplace=True)
        ts = display.transform(short_.astype(xp.float32), view.transform, xp, inplace=True)
        column = display.frame_values(tl[:, None], ts[:, None], view.two_tone, xp)
        values.append(column)
        codes.append(engine.backend.download(display.quantise_values(column, view.levels, view.two_tone, xp)))
    return dataclasses.replace(
        view,
        time_ms=np.r_[view.time_ms[:keep], engine.open_time[first]],
        first_bar=np.r_[view.first_bar[:keep], first],
        last_bar=np.r_[view.last_bar[:keep], n - 1],
        end_bar=n,
        values=xp.ascontiguousarray(xp.hstack([view.values[:, :redo], *values])),
        image=np.ascontiguousarray(np.hstack([view.image[:, :redo], *codes])),
    )


def _bin_span(bins: PriceBins, lo: float, hi: float) -> tuple[int, int]:
    return int(np.floor((lo - bins.lo) / bins.width)), int(np.ceil((hi - bins.lo) / bins.width))


def _positive_max(a: Any, b: Any, xp: Any) -> Any:
    """The positive cells of max(a, b) (both ≥ 0), a block of rows at a time, counted first so
    that they are gathered straight into one array (no list of parts joined into a second copy).
    Smaller blocks than elsewhere: this runs while both sides' grids are alive, at a frame's peak."""
    step = max(1, display.row_step(a) // 8)
    blocks = [slice(r0, r0 + step) for r0 in range(0, a.shape[0], step)]
    counts = [int(xp.count_nonzero((a[r] > 0) | (b[r] > 0))) for r in blocks]
    out = xp.empty(sum(counts), xp.result_type(a, b))
    i = 0
    for r, n in zip(blocks, counts, strict=True):
        m = xp.maximum(a[r], b[r])
        out[i : i + n] = m[m > 0]
        i += n
    return out

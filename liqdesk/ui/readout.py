"""The crosshair readout: the box over the chart that says what is under the pointer.

The box is the lines every registered chart layer gives for the point (`ChartContext.readout_lines`), in
registration order. The window registers two layers first: `CandleReadout` (the bar's time, OHLC, change
and volume) and `LiquidityReadout` (at the pointer's price: long and short notional alive, the tier
breakdown, and the cumulative notional between the current price and the pointer, from the liquidation map
at the hovered bar, asked of the engine off the UI thread).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import PriceBins
from liqdesk.core.liqmap import LiquidationMap, liquidation_map
from liqdesk.core.series import SHORT
from liqdesk.ui import format as fmt
from liqdesk.ui import theme
from liqdesk.ui.context import ChartContext, ChartLayer, ReadoutPoint
from liqdesk.ui.frames import CursorValues, Frame, cursor_values

if TYPE_CHECKING:
    from liqdesk.ui.chart import ChartWidget


@dataclass(frozen=True)
class ReadoutValues:
    """The numbers the readout shows (tests compare them with the engine's)."""

    bar: int
    time_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    liquidity: CursorValues | None = None  # at the pointer's price, once the map of the bar is in


class CandleReadout(ChartLayer):
    """The hovered bar: time and timeframe, OHLC coloured by direction, change, volume."""

    def readout_lines(self, point: ReadoutPoint) -> list[str]:
        c, bar = point.candles, point.bar
        change = (c.close[bar] - c.open[bar]) / c.open[bar] * 100.0
        color = theme.CANDLE_UP if c.close[bar] >= c.open[bar] else theme.CANDLE_DOWN
        return [
            f"<b>{fmt.timestamp(int(c.open_time[bar]), point.utc)}</b> · {c.timeframe}",
            f"O <span style='color:{color}'>{fmt.price(c.open[bar])}</span> "
            f"H <span style='color:{color}'>{fmt.price(c.high[bar])}</span> "
            f"L <span style='color:{color}'>{fmt.price(c.low[bar])}</span> "
            f"C <span style='color:{color}'>{fmt.price(c.close[bar])}</span> "
            f"<span style='color:{color}'>{change:+.2f}%</span>",
            f"Vol {fmt.volume(c.volume[bar])}",
        ]


@dataclass(frozen=True)
class _BarMap:
    generation: int  # the data generation of the engine it came from
    bar: int
    lmap: LiquidationMap


class LiquidityReadout(ChartLayer):
    """At the pointer's price: the liquidation map of the hovered bar, on the frame's price bins."""

    def __init__(self, chart: ChartContext) -> None:
        self.chart = chart
        self.bar_map: _BarMap | None = None
        self.values: CursorValues | None = None  # what the last readout showed

    def ask(self, bar: int) -> None:
        """Make sure the map of `bar` on the frame's bins is there or on its way."""
        frame = self.chart.frame
        if frame is None or self._current(bar, frame):
            return
        bins, generation = frame.request.bins, self.chart.data_generation
        self.chart.query(
            lambda engine: _map_at(engine, bins, bar, generation), self._arrived, supersede="cursor"
        )

    def _current(self, bar: int, frame: Frame) -> bool:
        m = self.bar_map
        return (m is not None and m.generation == self.chart.data_generation and m.bar == bar
                and m.lmap.bins == frame.request.bins)  # fmt: skip

    def _arrived(self, found: _BarMap | None) -> None:
        if found is not None:
            self.bar_map = found
            self.chart.refresh_readout()

    def readout_lines(self, point: ReadoutPoint) -> list[str]:
        self.values = None
        if not point.has_price:
            return []
        lines = [f"<br><b>at {fmt.price(point.price)}</b>"]
        frame = self.chart.frame
        if frame is not None and self._current(point.bar, frame):
            assert self.bar_map is not None
            self.values = cursor_values(self.bar_map.lmap, point.price)
            if self.values is not None:
                lines += liquidity_lines(self.values)
        else:
            lines.append(f"<span style='color:{theme.TEXT_DIM}'>computing…</span>")
            self.ask(point.bar)  # a new frame (zoom, pan, live bar) came since: ask again
        return lines


def _map_at(engine: LiquidationEngine, bins: PriceBins, bar: int, generation: int) -> _BarMap | None:
    if not 0 <= bar < engine.n_bars:
        return None
    return _BarMap(generation, bar, liquidation_map(engine, bins, bar))


def liquidity_lines(v: CursorValues) -> list[str]:
    out = [
        f"<span style='color:{theme.LONG_COLOR}'>est. longs alive {fmt.usd(v.long_usd)}</span> · "
        f"<span style='color:{theme.SHORT_COLOR}'>shorts alive {fmt.usd(v.short_usd)}</span>"
    ]
    tiers = v.long_tiers if v.long_usd >= v.short_usd else v.short_tiers
    parts = [f"{k} {fmt.usd(u)}" for k, u in tiers.items() if u > 0]
    if parts:
        out.append("tiers: " + " · ".join(parts))
    side = "shorts" if v.cumulative_side == SHORT else "longs"
    color = theme.SHORT_COLOR if v.cumulative_side == SHORT else theme.LONG_COLOR
    out.append(
        f"Σ {side} from price to here ({v.distance_pct:+.2f}%): "
        f"<span style='color:{color}'><b>{fmt.usd(v.cumulative_usd)}</b></span>"
    )
    return out


def readout_values(point: ReadoutPoint, liquidity: CursorValues | None) -> ReadoutValues:
    c, bar = point.candles, point.bar
    return ReadoutValues(
        bar=bar,
        time_ms=int(c.open_time[bar]),
        open=float(c.open[bar]),
        high=float(c.high[bar]),
        low=float(c.low[bar]),
        close=float(c.close[bar]),
        volume=float(c.volume[bar]),
        liquidity=liquidity,
    )


def point_at(x: float, y: float, chart: ChartContext) -> ReadoutPoint | None:
    """The readout point for chart coordinates (bar index x, price y), or None without bars."""
    c = chart.candles
    if c is None or not len(c):
        return None
    return ReadoutPoint(int(np.clip(x, 0, len(c) - 1)), y, c, chart.settings.utc)


class Readout:
    """Keeps the readout box current: the pointer moved or left, a frame or a map arrived."""

    def __init__(self, chart: ChartWidget, context: ChartContext) -> None:
        self.chart, self.context = chart, context
        self.candle = CandleReadout()
        self.liquidity = LiquidityReadout(context)
        self.values: ReadoutValues | None = None  # what the box shows now
        chart.cursor_moved.connect(self.pointer_at)
        chart.cursor_left.connect(self.pointer_left)

    def pointer_at(self, x: float, y: float) -> None:
        self.context.cursor = (x, y)
        point = point_at(x, y, self.context)
        if point is None:
            return
        if point.has_price:
            self.liquidity.ask(point.bar)
        self.refresh()

    def pointer_left(self) -> None:
        self.context.cursor = None

    def refresh(self) -> None:
        """Rewrite the box for the point under the pointer (nothing when it is not over the chart)."""
        cursor = self.context.cursor
        point = None if cursor is None else point_at(cursor[0], cursor[1], self.context)
        if point is None:
            return
        lines = self.context.readout_lines(point)
        self.values = readout_values(point, self.liquidity.values)
        self.chart.set_readout("<br>".join(lines))

    def refresh_or_hide(self) -> None:
        """The box as it should be now: gone when the pointer is not over the chart (a screenshot never shows
        a stale one), else rewritten."""
        if self.context.cursor is None:
            self.chart.hide_crosshair()
        else:
            self.refresh()

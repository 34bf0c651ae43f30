"""Liquidations inferred from sampled positions, drawn apart from the exchange's tape.

Nobody reported them: a sampled Hyperliquid position vanished (or shrank) while price crossed its liquidation price
(liqdesk.core.inferred_liquidations). They are evidence, not records, so they get their own marker (a hollow
diamond in the side's colour, where the tape's are filled) and their own legend entry, and never join the market's
tape (the model check and the alerts count recorded liquidations only).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from liqdesk.core.series import LONG, Candles, Liquidations
from liqdesk.feeds.market_data import MarketData
from liqdesk.ui import theme
from liqdesk.ui.actual_positions import PositionsHub, covers
from liqdesk.ui.context import ChartContext, ChartLayer

LEGEND = "inferred liquidation (sampled positions)"


class InferredMarkers(ChartLayer):
    def __init__(self, chart: ChartContext, hub: PositionsHub) -> None:
        self.chart, self.hub = chart, hub
        self.shown = Liquidations.empty()  # the events drawn (inside the bars shown)
        self._pens = (pg.mkPen(theme.REAL_LONG, width=1.8), pg.mkPen(theme.REAL_SHORT, width=1.8))
        self.scatter = pg.ScatterPlotItem(pxMode=True, symbol="d", hoverable=False)
        self.scatter.setZValue(16)
        chart.price_plot.addItem(self.scatter)
        self.sample = pg.PlotDataItem([0], [0], pen=None, symbol="d", symbolPen=pg.mkPen(theme.REAL_LONG, width=1.8),
                                      symbolBrush=None, symbolSize=9)  # fmt: skip
        self._in_legend = False
        hub.changed.connect(self.redraw)

    def redraw(self) -> None:
        snap, c = self.hub.snapshot, self.chart.candles
        liq = snap.inferred if snap is not None and covers(snap, self.chart.market) else Liquidations.empty()
        self._legend(len(liq) > 0)
        if c is None or not len(c) or not len(liq):
            self.shown = Liquidations.empty()
            self.scatter.setData([], [])
            return
        inside = (liq.time >= c.open_time[0]) & (liq.time < c.close_time[-1])
        self.shown = liq.take(inside)
        s = self.shown
        if not len(s):
            self.scatter.setData([], [])
            return
        i = np.clip(np.searchsorted(c.open_time, s.time, "right") - 1, 0, len(c) - 1)
        x = i - 0.5 + (s.time - c.open_time[i]) / c.interval_ms
        size = 7.0 + 12.0 * np.sqrt(s.usd / max(float(s.usd.max()), 1.0))
        pens = [self._pens[0] if side == LONG else self._pens[1] for side in s.side]
        self.scatter.setData(x=x, y=s.price, size=size, pen=pens, brush=pg.mkBrush(None), symbol="d")

    def _legend(self, on: bool) -> None:
        if on != self._in_legend:
            if on:
                self.chart.add_legend_item(self.sample, LEGEND)
            else:
                self.chart.remove_legend_item(self.sample)
            self._in_legend = on

    def market_changed(self, market: MarketData | None) -> None:
        self.redraw()

    def bars_loaded(self, candles: Candles) -> None:
        self.redraw()

    def bar_updated(self, candles: Candles, appended: bool) -> None:
        if appended:
            self.redraw()

"""Real liquidations (the exchange's tape) as diamond markers over the candles, sized by USD.

A chart layer: the bars loaded bring a full draw of the market's tape inside them; liquidations arriving live
are appended incrementally with cached brushes (a full redraw costs ~10 µs per marker), and everything is
redrawn only when a new largest event changes the size scale or nothing is drawn yet. On an aggregated market
each venue's events are drawn in the venue's colour (long liquidations ▼, short ones ▲) with a legend per venue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg

from liqdesk.core.series import LONG, Candles, Liquidations
from liqdesk.feeds.venue_market import VenueSetMarket, venue_title
from liqdesk.ui import theme
from liqdesk.ui.context import ChartContext, ChartLayer

if TYPE_CHECKING:
    from liqdesk.ui.chart import ChartWidget


class LiquidationMarkers(ChartLayer):
    def __init__(self, chart: ChartWidget, context: ChartContext) -> None:
        self.chart, self.context = chart, context
        self.scale = 0.0  # the largest real liquidation (USD) the markers are sized by
        self._style: tuple[object, object, object] | None = None  # cached brushes (long, short) and pen

    def bars_loaded(self, candles: Candles) -> None:
        self.redraw()

    def redraw(self) -> None:
        """Every liquidation of the market's tape inside the bars shown."""
        market, c = self.context.market, self.context.candles
        if market is None or c is None:
            return
        liq = market.liquidations
        has = len(liq) > 0
        venues = market.names if isinstance(market, VenueSetMarket) else None
        if venues is not None:
            self.chart.set_venue_legend(
                [(venue_title(n), theme.venue_color(n, i)) for i, n in enumerate(venues)]
            )
        else:
            self.chart.set_real_legend(has)
        if not has or not len(c):
            self.scale = 0.0
            self.chart.set_real_liquidations(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, np.int8))
            return
        liq = liq.take(self._inside(liq, c))
        self.scale = float(liq.usd.max()) if len(liq) else 0.0
        if venues is not None:
            self.chart.real_liqs.setData([], [])
            if len(liq):
                self._add_by_venue(liq, c, venues)
            return
        self.chart.set_real_liquidations(self._x(liq, c), liq.price, liq.usd, liq.side)

    def add(self, liquidations: Liquidations) -> Liquidations:
        """Draw new events (already stored with the market); returns those inside the bars shown."""
        c = self.context.candles
        if c is None or not len(c):
            return liquidations.take(np.zeros(len(liquidations), bool))
        shown = liquidations.take(self._inside(liquidations, c))
        if not len(shown):
            return shown
        market = self.context.market
        if float(shown.usd.max()) > self.scale or len(self.chart.real_liqs.data) == 0:
            self.redraw()
        elif isinstance(market, VenueSetMarket):
            self._add_by_venue(shown, c, market.names)
        else:
            long_brush, short_brush, pen = self.style()
            size = 6.0 + 12.0 * np.sqrt(shown.usd / max(self.scale, 1.0))  # as the chart sizes them
            brushes = [long_brush if s == LONG else short_brush for s in shown.side]
            self.chart.real_liqs.addPoints(
                x=self._x(shown, c), y=shown.price, size=size, brush=brushes, pen=pen, symbol="d"
            )  # the legend already says "real liquidations" (set by the full draw before)
        return shown

    def _add_by_venue(self, liq: Liquidations, c: Candles, venues: tuple[str, ...]) -> None:
        """Events drawn in their venue's colour: ▼ a long liquidated, ▲ a short."""
        brushes = {n: pg.mkBrush(theme.venue_color(n, i)) for i, n in enumerate(venues)}
        other = pg.mkBrush(theme.TEXT_DIM)
        size = 6.0 + 12.0 * np.sqrt(liq.usd / max(self.scale, 1.0))
        self.chart.real_liqs.addPoints(
            x=self._x(liq, c), y=liq.price, size=size, pen=pg.mkPen("k", width=0.6),
            brush=[brushes.get(str(e), other) for e in liq.exchange],
            symbol=["t" if s == LONG else "t1" for s in liq.side],
        )  # fmt: skip

    def style(self) -> tuple[object, object, object]:
        if self._style is None:
            self._style = (
                pg.mkBrush(theme.REAL_LONG),
                pg.mkBrush(theme.REAL_SHORT),
                pg.mkPen("w", width=0.8),
            )
        return self._style

    @staticmethod
    def _inside(liq: Liquidations, c: Candles) -> np.ndarray:
        inside: np.ndarray = (liq.time >= c.open_time[0]) & (liq.time < c.close_time[-1])
        return inside

    @staticmethod
    def _x(liq: Liquidations, c: Candles) -> np.ndarray:
        """Chart x of each event: its bar index plus the fraction of the bar elapsed."""
        i = np.clip(np.searchsorted(c.open_time, liq.time, "right") - 1, 0, len(c) - 1)
        x: np.ndarray = (i - 0.5 + (liq.time - c.open_time[i]) / c.interval_ms).astype(np.float64)
        return x

"""Hyperliquid's actual positions on the chart, beside the estimate: the map panel's "actual" layer, the
actual density as the heatmap's newest columns, the crosshair readout's actual line, and under the map the
coverage and the sampler's status (accounts known, sampled in the last hour, request budget used).

What the position sampler knows reaches the window as a `PositionsSnapshot` (each sampled account's newest
answer, the venue's open interest, the sampler's status, the liquidations it inferred) published on the window's
`PositionsHub` by whoever runs the sampler (the app, on the asyncio loop); the hub says `changed` and the layers
redraw. Nothing here asks the network or the database.

Only sampled accounts are in it: the note under the map always says how many and what share of open interest they
hold. Its bars grow from the panel's right edge (the estimate's grow from the left) in white, a colour no leverage
tier has, on a scale of their own (the widest actual bar reaches 45 % of the panel; the note says what it holds),
because a sample holding a few per cent of open interest would be invisible next to an estimate of all of it; the
readout gives the actual USD.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from liqdesk.core.actual_map import ActualMap, PositionSamples, actual_map
from liqdesk.core.display import transform
from liqdesk.core.series import Liquidations
from liqdesk.feeds.market_data import MarketData
from liqdesk.ui import format as fmt
from liqdesk.ui import theme
from liqdesk.ui.context import ChartContext, ChartLayer, ReadoutPoint
from liqdesk.ui.frames import Frame, quantise

if TYPE_CHECKING:  # the sampler's module brings ccxt: not imported for a type
    from liqdesk.feeds.position_sampler import SamplerStatus

ACTUAL_COLOR = "#ffffff"  # white: no leverage tier, side or sweep is drawn in it
ACTUAL_BRUSH = (255, 255, 255, 200)
ACTUAL_SHARE = 0.45  # the widest actual bar reaches this share of the map panel, from its right edge
VENUE = "hyperliquid"
MIN_HEAT_BARS = 2  # the actual columns are at least this wide, so they are seen on a wide view


@dataclass(frozen=True, eq=False)
class PositionsSnapshot:
    """What the sampler knows now about one market's positions."""

    exchange: str
    symbol: str  # the sampled market (ccxt form)
    state: PositionSamples  # each account's newest answer in the last hour, its positions in the coin
    open_interest_usd: float  # NaN: not known yet
    time_ms: int  # the newest answer
    status: SamplerStatus | None  # None: read from the store, no sampler running
    inferred: Liquidations  # liquidations inferred from the samples (all marked inferred)

    @property
    def coin(self) -> str:
        return self.symbol.split("/")[0]


def covers(snapshot: PositionsSnapshot, market: MarketData | None) -> bool:
    """The snapshot is about the market shown: the same venue and coin, or an aggregate holding the venue."""
    if market is None:
        return False
    venues = {v.strip() for v in market.exchange.replace("+", ",").split(",")}
    return snapshot.exchange in venues and market_coin(market) == snapshot.coin


def market_coin(market: MarketData) -> str:
    """The coin a market trades: BTC of "BTC/USDC:USDC", and of an aggregate's "BTC · 4 venues"."""
    return market.symbol.split("/")[0].split(" ")[0]


def applies_to(market: MarketData | None) -> bool:
    """The market shown is Hyperliquid's or an aggregate holding it (the only venue with public positions)."""
    return market is not None and VENUE in {v.strip() for v in market.exchange.replace("+", ",").split(",")}


class PositionsHub(QtCore.QObject):
    """The window's mailbox for sampled positions: the app publishes, the layers and the model check read."""

    changed = QtCore.Signal()

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.snapshot: PositionsSnapshot | None = None
        # Every stored answer of the coin in [start, end): called on the model check's thread (it opens its own
        # connection); None when no store is known.
        self.history: Callable[[str, int, int], PositionSamples] | None = None

    def publish(self, snapshot: PositionsSnapshot | None) -> None:
        self.snapshot = snapshot
        self.changed.emit()


def coverage_text(amap: ActualMap) -> str:
    cov = amap.coverage
    share = "OI not known yet" if not math.isfinite(cov) else f"{cov * 100:.2f} % of OI"
    return f"actual (sampled {amap.n_accounts:,} accounts, {share})"


def status_text(status: SamplerStatus | None, snapshot: PositionsSnapshot | None) -> str:
    if status is None:
        if snapshot is None:
            return "sampler: waiting for the live connection"
        return "sampler: not running (positions from the store)"
    return (
        f"sampler: {status.accounts_known:,} known · {status.sampled_last_hour:,} sampled/h · budget "
        f"{status.budget_used:g}/{status.budget:g} a min"
    )


class ActualPositionsLayer(ChartLayer):
    """The actual map in the map panel with its coverage and the sampler's status under it, the actual density as
    the heatmap's newest columns (when `settings.show_actual_heat`) and the readout's actual line."""

    def __init__(self, chart: ChartContext, hub: PositionsHub) -> None:
        self.chart, self.hub = chart, hub
        self.amap: ActualMap | None = None  # on the frame's bins
        self.scale = 1.0  # map panel x per actual USD
        self.heat_bars: tuple[int, int] | None = None  # the bars the actual columns cover, when shown
        pen = pg.mkPen(None)
        self.bars = pg.BarGraphItem(
            x0=[0], y=[0], width=[0], height=[0], brush=pg.mkBrush(*ACTUAL_BRUSH), pen=pen
        )
        self.bars.setZValue(5)  # over the estimated tier bars, under the magnet labels
        self.bars.hide()
        chart.map_plot.addItem(self.bars)
        self.note = ""  # the note under the map, plain text ("" when none is shown)
        self.heat = pg.ImageItem(axisOrder="row-major")
        self.heat.setZValue(-9)  # over the heatmap (-10), under candles and markers
        self.heat.hide()
        chart.price_plot.addItem(self.heat)
        self.heat_edge = pg.InfiniteLine(
            angle=90, movable=False, pen=pg.mkPen(ACTUAL_COLOR, width=1, style=QtCore.Qt.PenStyle.DashLine),
            label="actual", labelOpts={"position": 0.97, "color": ACTUAL_COLOR, "anchors": [(1, 0), (1, 0)]},
        )  # fmt: skip
        self.heat_edge.setZValue(12)
        self.heat_edge.hide()
        chart.price_plot.addItem(self.heat_edge, ignoreBounds=True)
        hub.changed.connect(self.refresh)

    # ------------------------------------------------------------------ what is shown

    @property
    def snapshot(self) -> PositionsSnapshot | None:
        s = self.hub.snapshot
        return s if s is not None and covers(s, self.chart.market) else None

    def set_heat(self, on: bool) -> None:
        """Show or hide the actual density as the heatmap's newest columns (a view setting)."""
        self.chart.settings.show_actual_heat = bool(on)
        self._draw_heat()

    def refresh(self) -> None:
        """Recompute on the frame's bins and redraw everything (a new snapshot or frame)."""
        frame, snap = self.chart.frame, self.snapshot
        self.amap = None
        if frame is not None and snap is not None and snap.state.n_samples > 0:
            self.amap = actual_map(snap.state, frame.request.bins, snap.open_interest_usd)
        self._draw_map()
        self._draw_heat()
        if self.chart.cursor is not None:  # the readout's actual line follows
            self.chart.refresh_readout()

    def _draw_map(self) -> None:
        amap = self.amap
        applies = applies_to(self.chart.market)
        if amap is None or not applies:
            self.bars.hide()
            self._set_note(["actual: no sampled positions yet"] if applies else [])
            return
        total = amap.long + amap.short
        nz = total > 0
        centers = amap.bins.centers
        x_max = float(self.chart.map_plot.getViewBox().viewRange()[0][1])
        widest = float(total.max()) if nz.any() else 0.0
        self.scale = x_max * ACTUAL_SHARE / widest if widest > 0 else 1.0
        if nz.any():
            width = total[nz] * self.scale
            self.bars.setOpts(x0=x_max - width, y=centers[nz], width=width, height=amap.bins.width * 0.92)
            self.bars.show()
        else:
            self.bars.hide()
        detail = f"own scale, widest bar {fmt.usd(widest)}" if widest > 0 else "no liquidation price in view"
        if amap.n_without_price:
            detail += f" · {amap.n_without_price} without a price"
        self._set_note([f"▮ {coverage_text(amap)}", detail])

    def _sampler_line(self) -> str:
        snap = self.hub.snapshot
        return status_text(snap.status if snap is not None else None, snap)

    def _set_note(self, lines: list[str]) -> None:
        if lines:
            lines.append(self._sampler_line())
        self.note = "\n".join(lines)
        if not lines:
            self.chart.set_map_note("")
            return
        html = f"<span style='color:{ACTUAL_COLOR}'>{escape(lines[0])}</span>"
        html += "".join(f"<br><span style='color:{theme.TEXT_DIM}'>{escape(x)}</span>" for x in lines[1:])
        self.chart.set_map_note(html)

    def _draw_heat(self) -> None:
        frame, amap, candles = self.chart.frame, self.amap, self.chart.candles
        self.heat_bars = None
        if (not self.chart.settings.show_actual_heat or frame is None or amap is None or candles is None
                or not len(candles) or amap.total_usd <= 0):  # fmt: skip
            self.heat.hide()
            self.heat_edge.hide()
            return
        kind = frame.request.transform
        tl, ts = transform(amap.long, kind), transform(amap.short, kind)
        two_tone = frame.request.two_tone
        top = float(max(tl.max(), ts.max()))
        codes = quantise(tl[:, None], ts[:, None], (0.0, top), two_tone)
        rgba = theme.lut(frame.request.colormap)[codes]  # the colours of the frame beside it
        # From the bar of the oldest answer used to the frame's right edge (its columns past the newest bar show
        # the state now too), and at least MIN_HEAT_BARS or 2 % of the view wide, so a wide view still shows it.
        n = len(candles)
        first = amap.first_ms if amap.first_ms is not None else int(candles.open_time[-1])
        start = min(int(np.searchsorted(candles.close_time, first, "right")), n - 1)
        right = max(n - 0.5, frame.rect[0] + frame.rect[2])
        v0, v1 = frame.request.visible_bars
        left = min(start - 0.5, right - max(MIN_HEAT_BARS, 0.02 * (v1 - v0)))
        self.heat_bars = (max(int(math.ceil(left + 0.5)), 0), n - 1)
        b = amap.bins
        self.heat.setImage(np.ascontiguousarray(rgba), autoLevels=False)
        self.heat.setRect(left, b.lo, right - left, b.hi - b.lo)
        self.heat.show()
        self.heat_edge.setPos(left)
        self.heat_edge.show()

    def values_at(self, price: float) -> tuple[float, float] | None:
        """(long USD, short USD) of the actual map in the bin holding `price` (None outside or without one)."""
        amap = self.amap
        if amap is None:
            return None
        b = int(amap.bins.index(np.array([price]))[0])
        if b < 0:
            return None
        return float(amap.long[b]), float(amap.short[b])

    # ------------------------------------------------------------------ chart layer

    def market_changed(self, market: MarketData | None) -> None:
        self.refresh()

    def frame_applied(self, frame: Frame) -> None:
        self.refresh()

    def bar_updated(self, candles: object, appended: bool) -> None:
        if appended:
            self._draw_heat()

    def readout_lines(self, point: ReadoutPoint) -> list[str]:
        if not point.has_price or self.amap is None:
            return []
        v = self.values_at(point.price)
        if v is None:
            return []
        return [
            f"<span style='color:{ACTUAL_COLOR}'><b>actual now</b>: longs {fmt.usd(v[0])} · shorts {fmt.usd(v[1])}"
            f"</span> <span style='color:{theme.TEXT_DIM}'>{coverage_text(self.amap).removeprefix('actual ')}</span>"
        ]

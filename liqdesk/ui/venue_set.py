"""An aggregated market in the chart (several venues of one coin summed): its engine, the venue toggles and
status, and the per-venue breakdown.

- `venue_engine_maker`: what the model worker runs to make the engine of a `VenueSetMarket`: each venue's
  engine on its own bars, read as one (core.aggregate_engine.VenueSetEngine). A toggle makes a new sum over the
  engines already built (on the worker, never on the UI thread); another market, timeframe or preset builds
  them again.
- `VenuePanel` (a dock and a chart layer): a check box per venue in its colour (the legend of its liquidation
  markers) that takes it in or out of the sum; per venue, which model covers which span of the bars shown (OI
  model / volume model) and which spans have no bars, what its tape is (Hyperliquid publishes no liquidation
  stream), what its live feed did last; and the nearest clusters with the venues that hold them.
- `VenueBreakdown` (a chart layer): each venue's longs and shorts at the crosshair's price in the readout, and
  each venue's notional per price as a line in its colour over the liquidation map.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from liqdesk.core.aggregate import AggregateMap, aggregate_coverage, build_venues
from liqdesk.core.aggregate_engine import VenueSetEngine
from liqdesk.core.grid import PriceBins
from liqdesk.core.liqmap import Magnet
from liqdesk.core.params import ModelParams
from liqdesk.core.series import LONG, Candles, Liquidations
from liqdesk.feeds.market_data import MarketData
from liqdesk.feeds.venue_market import VenueSetMarket, venue_title
from liqdesk.ui import format as fmt
from liqdesk.ui import theme
from liqdesk.ui.context import ChartContext, ChartLayer, ReadoutPoint
from liqdesk.ui.frames import Frame

BUILD_WORKERS = 2  # venues built side by side (the compiled loops release the GIL)


def venue_engine_maker(
    market: VenueSetMarket, candles: Candles, timeframe: str, params: ModelParams
) -> Callable[[Any], VenueSetEngine]:
    """The job that makes the market's engine on the model worker: the venues' engines of the previous one when
    they were built for this market, timeframe and parameters (a toggle), else built now."""
    inputs = market.venue_inputs(timeframe, params, candles)
    enabled = market.summed()
    key = (id(market), timeframe, params)

    def make(previous: Any) -> VenueSetEngine:
        if isinstance(previous, VenueSetEngine) and getattr(previous, "build_key", None) == key:
            engine = previous.with_enabled(enabled)
        else:
            engine = VenueSetEngine(build_venues(inputs, BUILD_WORKERS), market.chart_venue, enabled)
        engine.build_key = key  # type: ignore[attr-defined]
        return engine

    return make


def venue_colors(names: tuple[str, ...]) -> dict[str, str]:
    return {n: theme.venue_color(n, i) for i, n in enumerate(names)}


@dataclass(frozen=True)
class VenueMap:
    generation: int
    bar: int
    bins: PriceBins
    amap: AggregateMap
    enabled: tuple[str, ...]


def _venue_map(engine: Any, bins: PriceBins, bar: int, generation: int) -> VenueMap | None:
    if not isinstance(engine, VenueSetEngine) or not 0 <= bar < engine.n_bars:
        return None
    return VenueMap(generation, bar, bins, engine.venue_map(bins, bar), engine.enabled)


# ---------------------------------------------------------------------------------------------- breakdown


class VenueBreakdown(ChartLayer):
    """Per venue: the crosshair readout's longs and shorts at the pointer's price, and lines over the map."""

    def __init__(self, chart: ChartContext) -> None:
        self.chart = chart
        self.at_cursor: VenueMap | None = None
        self.at_map: VenueMap | None = None
        self.curves: dict[str, pg.PlotDataItem] = {}

    @staticmethod
    def _market(market: MarketData | None) -> VenueSetMarket | None:
        return market if isinstance(market, VenueSetMarket) else None

    def market_changed(self, market: MarketData | None) -> None:
        self.at_cursor = self.at_map = None
        for curve in self.curves.values():
            self.chart.map_plot.removeItem(curve)
        self.curves = {}
        vs = self._market(market)
        if vs is None:
            return
        for name, color in venue_colors(vs.names).items():
            curve = pg.PlotDataItem(pen=pg.mkPen(color, width=1.3))
            curve.setZValue(20)
            self.chart.map_plot.addItem(curve)
            self.curves[name] = curve

    # -- the map panel ------------------------------------------------------------------------------------------
    def frame_applied(self, frame: Frame) -> None:
        if not self.curves:
            return
        bins, bar, gen = frame.request.bins, frame.request.map_bar, self.chart.data_generation
        self.chart.query(lambda e: _venue_map(e, bins, bar, gen), self._map_arrived, supersede="venue-map")

    def _map_arrived(self, found: VenueMap | None) -> None:
        if found is None:
            return
        self.at_map = found
        centers = found.bins.centers
        for name, by_l, by_s in zip(found.amap.venues, found.amap.long_by_venue, found.amap.short_by_venue,
                                    strict=True):  # fmt: skip
            curve = self.curves.get(name)
            if curve is None:
                continue
            total = by_l + by_s
            if name not in found.enabled or not total.any():
                curve.setData([], [])
                continue
            curve.setData(total, centers)
        for layer in self.chart.layers:
            if isinstance(layer, VenuePanel):
                layer.show_clusters(found, self.chart.frame.magnets if self.chart.frame is not None else [])

    # -- the readout --------------------------------------------------------------------------------------------
    def _current(self, bar: int, frame: Frame) -> bool:
        m = self.at_cursor
        return (m is not None and m.generation == self.chart.data_generation and m.bar == bar
                and m.bins == frame.request.bins)  # fmt: skip

    def readout_lines(self, point: ReadoutPoint) -> list[str]:
        vs = self._market(self.chart.market)
        frame = self.chart.frame
        if vs is None or frame is None or not point.has_price:
            return []
        if not self._current(point.bar, frame):
            bins, bar, gen = frame.request.bins, point.bar, self.chart.data_generation
            self.chart.query(
                lambda e: _venue_map(e, bins, bar, gen), self._cursor_arrived, supersede="venue-cursor"
            )
            return [f"<span style='color:{theme.TEXT_DIM}'>by venue: computing…</span>"]
        assert self.at_cursor is not None
        return breakdown_lines(self.at_cursor, point.price)

    def _cursor_arrived(self, found: VenueMap | None) -> None:
        if found is not None:
            self.at_cursor = found
            self.chart.refresh_readout()


def breakdown_lines(vm: VenueMap, price: float) -> list[str]:
    """Each venue's longs and shorts alive in the pointer's price bin, and its share of the venues summed."""
    b = int(vm.bins.index(np.array([price]))[0])
    if b < 0:
        return []
    amap = vm.amap
    colors = venue_colors(amap.venues)
    longs = amap.long_by_venue[:, b]
    shorts = amap.short_by_venue[:, b]
    on = np.array([n in vm.enabled for n in amap.venues])
    total = float((longs + shorts)[on].sum())
    out = ["<b>by venue</b>"]
    for i, name in enumerate(amap.venues):
        usd = float(longs[i] + shorts[i])
        share = f"{usd / total * 100:.0f}%" if on[i] and total > 0 else ("off" if not on[i] else "–")
        out.append(
            f"<span style='color:{colors[name]}'>■</span> {html.escape(venue_title(name))}: "
            f"<span style='color:{theme.LONG_COLOR}'>L {fmt.usd(float(longs[i]))}</span> · "
            f"<span style='color:{theme.SHORT_COLOR}'>S {fmt.usd(float(shorts[i]))}</span> · {share}"
        )
    return out


def cluster_holders(vm: VenueMap, magnet: Magnet) -> list[tuple[str, float]]:
    """The venues summed that hold a cluster, largest share first: (venue, share 0..1)."""
    held = {n: u for n, u in vm.amap.magnet_holders(magnet).items() if n in vm.enabled}
    total = sum(held.values())
    if total <= 0:
        return []
    return sorted(((n, u / total) for n, u in held.items() if u / total >= 0.005), key=lambda x: -x[1])


# ---------------------------------------------------------------------------------------------- the panel


class VenuePanel(QtWidgets.QDockWidget, ChartLayer):
    """The venues of an aggregated market: toggles, what covers each, its tape and feed, who holds the
    nearest clusters. Hidden for a single-venue market."""

    toggled = QtCore.Signal(tuple)  # the venues summed now

    def __init__(self, chart: ChartContext) -> None:
        super().__init__("Venues", chart.widget)
        self.setObjectName("VenuePanel")
        self.chart = chart
        self.market: VenueSetMarket | None = None
        self.checks: dict[str, QtWidgets.QCheckBox] = {}
        self.details: dict[str, QtWidgets.QLabel] = {}
        self.live_text: dict[str, str] = {}
        self.coverage: dict[str, str] = {}
        body = QtWidgets.QWidget()
        self.layout_ = QtWidgets.QVBoxLayout(body)
        self.layout_.setContentsMargins(6, 4, 6, 4)
        self.venue_box = QtWidgets.QVBoxLayout()
        self.layout_.addLayout(self.venue_box)
        self.clusters = QtWidgets.QLabel("")
        self.clusters.setWordWrap(True)
        self.clusters.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.layout_.addWidget(self.clusters)
        note = QtWidgets.QLabel(
            "Heatmap, map and sweep circles are estimated per venue from its own candles, open interest and taker "
            "flow and summed; the triangles are liquidations the venues published (recorded)."
        )
        note.setWordWrap(True)
        note.setStyleSheet(f"color: {theme.TEXT_DIM}")
        self.layout_.addWidget(note)
        self.layout_.addStretch(1)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.setWidget(scroll)
        self.setMinimumWidth(280)

    # -- layer hooks --------------------------------------------------------------------------------------------
    def market_changed(self, market: MarketData | None) -> None:
        vs = market if isinstance(market, VenueSetMarket) else None
        if vs is self.market and vs is not None:
            return
        self.market = vs
        self.coverage = {}
        self._rebuild_rows()
        if vs is None:
            self.hide()
            return
        self.setWindowTitle(f"Venues · {vs.symbol}")
        self.show()

    def engine_built(self) -> None:
        c = self.chart.candles
        if self.market is None or c is None or not len(c):
            return
        t0, t1 = int(c.open_time[0]), int(c.close_time[-1])

        def coverage(engine: Any) -> dict[str, str] | None:
            if not isinstance(engine, VenueSetEngine):
                return None
            cov = aggregate_coverage(engine.models, t0, t1)
            out = {}
            for v in cov.venues:
                missing = "; ".join(f"{_when(a)}→{_when(b)}" for a, b in v.missing[:3])
                more = f" (+{len(v.missing) - 3})" if len(v.missing) > 3 else ""
                out[v.venue] = _runs_text(v.runs) + (f"<br>no bars {missing}{more}" if missing else "")
            return out

        self.chart.query(coverage, self._coverage_arrived)

    def _coverage_arrived(self, found: dict[str, str] | None) -> None:
        if found is not None:
            self.coverage = found
            self._refresh_details()

    def liquidations_added(self, liquidations: Liquidations) -> None:
        self._refresh_details()

    # -- toggles -----------------------------------------------------------------------------------------------
    def _rebuild_rows(self) -> None:
        while self.venue_box.count():
            item = self.venue_box.takeAt(0)
            w = item.widget() if item is not None else None
            if w is not None:
                w.deleteLater()
        self.checks, self.details = {}, {}
        vs = self.market
        if vs is None:
            return
        summed = vs.summed()
        for name, color in venue_colors(vs.names).items():
            check = QtWidgets.QCheckBox(venue_title(name))
            check.setChecked(name in summed)
            check.setIcon(_swatch(color))
            check.setToolTip(
                f"{venue_title(name)} in the sum (its liquidations: ▼ long, ▲ short in this colour)"
            )
            check.toggled.connect(lambda on, n=name: self.set_venue(n, on))
            detail = QtWidgets.QLabel("")
            detail.setWordWrap(True)
            detail.setTextFormat(QtCore.Qt.TextFormat.RichText)
            detail.setStyleSheet("margin-left: 22px")
            self.venue_box.addWidget(check)
            self.venue_box.addWidget(detail)
            self.checks[name], self.details[name] = check, detail
        self._refresh_details()

    def set_venue(self, name: str, on: bool) -> None:
        """Take a venue into the sum or out of it; the engine is made again on the worker."""
        vs = self.market
        if vs is None:
            return
        summed = [n for n in vs.names if (n == name and on) or (n != name and n in vs.summed())]
        if not summed:
            self.chart.flash("at least one venue stays in the sum")
            check = self.checks[name]
            check.blockSignals(True)
            check.setChecked(True)
            check.blockSignals(False)
            return
        if tuple(summed) == vs.summed():
            return
        vs.enabled = tuple(summed)
        self.chart.flash(f"{venue_title(name)} {'added to' if on else 'left'} the sum: "
                         + ", ".join(venue_title(n) for n in summed))  # fmt: skip
        self.toggled.emit(vs.enabled)
        self.chart.rebuild_model()

    # -- status --------------------------------------------------------------------------------------------------
    def set_live(self, venue: str, text: str) -> None:
        """A line about the venue's live feed (its last bar, a reconnect)."""
        if self.live_text.get(venue) != text:
            self.live_text[venue] = text
            self._refresh_details()

    def status_lines(self) -> list[str]:
        """One plain line per venue: the model per span, what is missing, the tape, the feed."""
        vs = self.market
        if vs is None:
            return []
        out = []
        for p in vs.parts:
            parts = [self.coverage.get(p.name, "model: building…").replace("<br>", "; "), self._tape(p.name)]
            if self.live_text.get(p.name):
                parts.append(self.live_text[p.name])
            out.append(f"{venue_title(p.name)}: " + "; ".join(parts))
        return out

    def _tape(self, name: str) -> str:
        vs = self.market
        assert vs is not None
        n = int(np.count_nonzero(vs.liquidations.exchange == name)) if len(vs.liquidations) else 0
        text = vs.part(name).tape_text()
        return text if vs.part(name).tape == "none" and not n else f"{text}, {n:,} recorded"

    def _refresh_details(self) -> None:
        vs = self.market
        if vs is None:
            return
        for p in vs.parts:
            label = self.details.get(p.name)
            if label is None:
                continue
            dim = theme.TEXT_DIM
            lines = [self.coverage.get(p.name, "model: building…"), html.escape(self._tape(p.name))]
            if self.live_text.get(p.name):
                lines.append(html.escape(self.live_text[p.name]))
            label.setText(f"<span style='color:{dim}'>" + "<br>".join(lines) + "</span>")

    def show_clusters(self, vm: VenueMap, magnets: list[Magnet]) -> None:
        """The nearest clusters (the map's magnets) with the venues that hold them."""
        colors = venue_colors(vm.amap.venues)
        rows = []
        for mg in sorted(magnets, key=lambda m: -m.price)[:6]:
            arrow = "▼" if mg.side == LONG else "▲"
            color = theme.LONG_COLOR if mg.side == LONG else theme.SHORT_COLOR
            held = cluster_holders(vm, mg)
            who = ", ".join(f"<span style='color:{colors[n]}'>{html.escape(venue_title(n))} {s * 100:.0f}%</span>"
                            for n, s in held[:3])  # fmt: skip
            rows.append(
                f"<span style='color:{color}'>{arrow} {fmt.price(mg.price)} {fmt.usd(mg.usd)}</span>: {who}"
            )
        self.clusters.setText("<b>Clusters by venue</b><br>" + "<br>".join(rows) if rows else "")


def _runs_text(runs: tuple[tuple[int, int, str], ...]) -> str:
    """Which model covers which span, short: one name when one model covers it all."""
    names = {name for _, _, name in runs}
    if not runs:
        return "no bars"
    if len(names) == 1:
        only = next(iter(names))
        return only if only == "OI model" else "volume model (no open interest)"
    return "<br>".join(f"{name} {_when(a)}→{_when(b)}" for a, b, name in runs[-3:])


def _swatch(color: str) -> QtGui.QIcon:
    pix = QtGui.QPixmap(12, 12)
    pix.fill(QtGui.QColor(color))
    return QtGui.QIcon(pix)


def _when(ms: int) -> str:
    return fmt.timestamp(ms, True)[5:16].replace(" UTC", "")

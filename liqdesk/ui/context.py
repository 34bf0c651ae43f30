"""The chart as tools and layers see it: the one contract between a chart pane and what it hosts.

A tool (price lines, alerts, screenshots and export, the model check, the position form) or a layer (the
readout's candle and liquidity text, the real liquidation markers) gets a `ChartContext`, never the window.
Through it, it

- draws on the plots it is given (`price_plot`, `price_vb`, `price_axis`, `map_plot`) and grabs the chart
  (`chart_widget`, for screenshots);
- reads what is shown: `market`, `candles`, `frame`, `market_key`, `tick`, `last_price`, `cursor_price()`,
  `settings`, `model_ready`, `model_text()`, `params()`;
- asks the current engine something off the UI thread with `query(fn, on_result)`: `fn(engine)` runs on the
  model worker in order with the engine's updates, `on_result` on the UI thread, and a result for data no
  longer shown is dropped;
- says things (`flash`), refreshes the crosshair readout, switches the model preset (`use_preset`) or has the
  model built again (`rebuild_model`: the venues of an aggregated market were toggled);
- adds entries to the chart's legend (`add_legend_item`), a note under the liquidation map (`set_map_note`) and
  one to every magnet label (`set_magnet_note`).

A `ChartLayer` registered with `add_layer` hears, in registration order, when another market is shown, when
the bars are loaded or a live bar moves, when the model is built, when a frame is on screen, when the price
ticks and when real liquidations arrive, and may add lines to the crosshair readout (the readout asks every
layer, vnpy-style). `close()` is called when the chart closes. Every hook does nothing by default.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from PySide6 import QtCore, QtWidgets

from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.params import ModelParams
from liqdesk.core.series import Candles, Liquidations
from liqdesk.feeds.market_data import MarketData
from liqdesk.ui.frames import Frame
from liqdesk.ui.results import ResultInbox
from liqdesk.ui.view_settings import ViewSettings

if TYPE_CHECKING:
    import pyqtgraph as pg

    from liqdesk.ui.chart import ChartWidget
    from liqdesk.ui.worker import ModelWorker

T = TypeVar("T")


@dataclass(frozen=True)
class MarketKey:
    """Which market a chart shows (what lines and settings are kept per)."""

    exchange: str
    symbol: str


@dataclass(frozen=True)
class ReadoutPoint:
    """Where the crosshair is: a bar of the candles shown and a price (NaN over the volume pane)."""

    bar: int
    price: float
    candles: Candles
    utc: bool

    @property
    def has_price(self) -> bool:
        return math.isfinite(self.price)


class ChartLayer:
    """A tool or layer on the chart: override the hooks it needs (all do nothing by default)."""

    def market_changed(self, market: MarketData | None) -> None:
        """Another market is shown (None: the symbol asked for has no data here)."""

    def bars_loaded(self, candles: Candles) -> None:
        """The bars shown were replaced (a market, a timeframe)."""

    def bar_updated(self, candles: Candles, appended: bool) -> None:
        """A live bar moved (`appended`: a new bar began); `candles` includes it."""

    def engine_built(self) -> None:
        """The model of the bars shown is built: queries answer from now on."""

    def frame_applied(self, frame: Frame) -> None:
        """A new frame (heatmap, map, bubbles) is on screen."""

    def price_ticked(self, price: float, time_ms: int) -> None:
        """A live price (a trade tick or a bar update)."""

    def liquidations_added(self, liquidations: Liquidations) -> None:
        """Real liquidations arrived from the exchange (already stored with the market)."""

    def readout_lines(self, point: ReadoutPoint) -> list[str]:
        """HTML lines this layer adds to the crosshair readout at `point`."""
        return []

    def chart_closing(self) -> None:
        """The chart is closing: write what is pending, stop what runs."""


class ChartHost(Protocol):
    """What the window does for its tools (the window implements it)."""

    settings: ViewSettings

    def flash(self, text: str) -> None: ...

    def params(self) -> ModelParams: ...

    def model_text(self) -> str: ...

    def use_preset(self, name: str) -> None: ...

    def refresh_readout(self) -> None: ...

    def rebuild_model(self) -> None: ...


class ChartContext:
    """One chart pane's state as tools see it; the window owns it and keeps it current (see the module)."""

    def __init__(
        self, host: ChartHost, widget: QtWidgets.QWidget, chart: ChartWidget, worker: ModelWorker
    ) -> None:
        self._host = host
        self.widget = widget  # the pane: the parent for a tool's dialogs, menus and docks
        self._chart = chart
        self._worker = worker
        self._inbox = ResultInbox(widget)
        self._layers: list[ChartLayer] = []
        self.market: MarketData | None = None
        self.candles: Candles | None = None
        self.frame: Frame | None = None
        self.symbol = ""  # the symbol shown or asked for (also when it has no data)
        self.tick = 0.01
        self.last_price: float | None = None
        self.cursor: tuple[float, float] | None = None  # (bar, price) under the pointer
        self.model_ready = False
        self.data_generation = 0

    # ------------------------------------------------------------------ what tools draw on

    @property
    def price_plot(self) -> pg.PlotItem:
        return self._chart.price_plot

    @property
    def price_vb(self) -> pg.ViewBox:
        return self._chart.price_vb

    @property
    def price_axis(self) -> pg.AxisItem:
        return self._chart.price_plot.getAxis("right")

    @property
    def map_plot(self) -> pg.PlotItem:
        return self._chart.map_plot

    @property
    def chart_widget(self) -> QtWidgets.QWidget:
        """The chart area as a widget (screenshots grab it)."""
        return self._chart

    @property
    def overlays_changed(self) -> QtCore.SignalInstance:
        """The readout box appeared or went: labels drawn over the plot move out of its way."""
        return self._chart.readout_toggled

    def overlay_rects(self) -> list[QtCore.QRectF]:
        """Scene rectangles of what is drawn over the price plot (legend, readout box)."""
        rects = []
        if self._chart.legend.isVisible():
            rects.append(self._chart.legend.sceneBoundingRect())
        readout = self._chart.readout
        if readout.isVisible():
            rects.append(self._chart.mapToScene(readout.geometry()).boundingRect())
        return rects

    # ------------------------------------------------------------------ what is shown

    @property
    def settings(self) -> ViewSettings:
        return self._host.settings

    @property
    def market_key(self) -> MarketKey | None:
        m = self.market
        return None if m is None else MarketKey(m.exchange, m.symbol)

    def cursor_price(self) -> float | None:
        """The price under the pointer, when it is over the chart."""
        if self.cursor is None or not math.isfinite(self.cursor[1]):
            return None
        return float(self.cursor[1])

    def model_text(self) -> str:
        """The model label shown (OI model / volume model, or an error)."""
        return self._host.model_text()

    def params(self) -> ModelParams:
        return self._host.params()

    # ------------------------------------------------------------------ what tools do

    def flash(self, text: str) -> None:
        self._host.flash(text)

    def refresh_readout(self) -> None:
        self._host.refresh_readout()

    def use_preset(self, name: str) -> None:
        self._host.use_preset(name)

    def rebuild_model(self) -> None:
        """Build the model of the market shown again, on the worker (a tool changed what it is built from)."""
        self._host.rebuild_model()

    def add_legend_item(self, item: pg.GraphicsObject, name: str) -> None:
        """An entry in the chart's legend (a sample item and its words) for what a layer draws."""
        self._chart.legend.addItem(item, name)

    def remove_legend_item(self, item: pg.GraphicsObject) -> None:
        self._chart.legend.removeItem(item)

    def set_map_note(self, html: str) -> None:
        """Rich text under the liquidation map (what a layer drawn on the map is; "" for none)."""
        self._chart.set_map_note(html)

    def set_magnet_note(self, note: str) -> None:
        """A few words every magnet label carries after its numbers ("" for none)."""
        self._chart.set_magnet_note(note)

    def query(
        self,
        fn: Callable[[LiquidationEngine], T],
        on_result: Callable[[T], object],
        *,
        supersede: str | None = None,
        on_error: Callable[[BaseException], object] | None = None,
    ) -> bool:
        """Run `fn(engine)` on the model worker, in order with the engine's builds and live bars, and call
        `on_result(value)` on the UI thread, unless the data shown changed meanwhile. `supersede`: a kind of
        request; the one of that kind still queued is dropped. An error is shown in the status bar by the
        worker; `on_error` hears it too. False when no model is built yet (nothing asked)."""
        if not self.model_ready:
            return False
        generation = self.data_generation

        def fresh(value: T) -> None:
            if generation == self.data_generation:
                on_result(value)

        future = self._worker.query(fn, generation, supersede=supersede)
        self._inbox.deliver(future, fresh, on_error)
        return True

    # ------------------------------------------------------------------ layers

    def add_layer(self, layer: ChartLayer) -> None:
        if layer not in self._layers:
            self._layers.append(layer)

    def remove_layer(self, layer: ChartLayer) -> None:
        if layer in self._layers:
            self._layers.remove(layer)

    @property
    def layers(self) -> tuple[ChartLayer, ...]:
        return tuple(self._layers)

    def readout_lines(self, point: ReadoutPoint) -> list[str]:
        return [line for layer in self._layers for line in layer.readout_lines(point)]

    # ------------------------------------------------------------------ the window keeps it current

    def show_market(self, market: MarketData | None, symbol: str, tick: float) -> None:
        self.market, self.symbol, self.tick = market, symbol, tick
        self.candles, self.frame, self.model_ready = None, None, False
        for layer in self.layers:
            layer.market_changed(market)

    def load_bars(self, candles: Candles) -> None:
        self.candles = candles
        if len(candles):
            self.last_price = float(candles.close[-1])
        for layer in self.layers:
            layer.bars_loaded(candles)

    def update_bar(self, candles: Candles, appended: bool) -> None:
        self.candles = candles
        for layer in self.layers:
            layer.bar_updated(candles, appended)

    def new_model(self, generation: int) -> None:
        """A new engine is being built for the data shown (queries wait for it)."""
        self.data_generation, self.model_ready, self.frame = generation, False, None

    def model_built(self) -> None:
        self.model_ready = True
        for layer in self.layers:
            layer.engine_built()

    def model_lost(self) -> None:
        self.model_ready = False

    def frame_shown(self, frame: Frame) -> None:
        self.frame = frame
        for layer in self.layers:
            layer.frame_applied(frame)

    def tick_price(self, price: float, time_ms: int) -> None:
        self.last_price = price
        for layer in self.layers:
            layer.price_ticked(price, time_ms)

    def add_liquidations(self, liquidations: Liquidations) -> None:
        for layer in self.layers:
            layer.liquidations_added(liquidations)

    def close(self) -> None:
        self.model_ready = False
        for layer in self.layers:
            layer.chart_closing()

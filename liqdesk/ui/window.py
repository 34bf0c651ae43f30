"""A chart pane: one market at a time, the user's view settings, and the parts that do the rest.

The window loads a market from its `DataSource` (candles for the chosen timeframe go to the chart at once,
the engine is built in the model worker) and answers the toolbar, the keys and the live hooks. It owns:

- the chart widget, its toolbar (liqdesk.ui.toolbar), status bar (liqdesk.ui.statusbar) and menus
  (liqdesk.ui.menus);
- the model worker and the frame pipeline (liqdesk.ui.frame_presenter, whose decisions are the Qt-free
  liqdesk.ui.frame_policy);
- the chart context (liqdesk.ui.context) through which every tool and layer sees the chart: the readout's
  layers (liqdesk.ui.readout), the real liquidation markers, the price lines, alerts, screenshots and
  export, the model check and the position form.

Live hooks (for a controller that streams the market): `apply_bar(candles_row, is_closed, oi_close)`,
`add_liquidations(liquidations)`, `set_last_price(price, time_ms)`, `set_tick_size(tick)`,
`set_status_source(text)`, `set_last_update(ms)`, `show_notice(text)`. A controller that owns the market sets
`market_controlled` and answers `symbol_requested` / `timeframe_requested`. The window is also a pane of
liqdesk.ui.workspace.Workspace (tabs, one menu bar, the state file).
"""

from __future__ import annotations

import logging
import time

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from liqdesk.core.params import ModelParams
from liqdesk.core.series import Candles, Liquidations
from liqdesk.core.timespan import span_text
from liqdesk.feeds.market_data import MarketData
from liqdesk.feeds.markets import tick_size
from liqdesk.feeds.venue_market import VenueSetMarket
from liqdesk.ui import data as data_mod
from liqdesk.ui import theme
from liqdesk.ui.actual_positions import ActualPositionsLayer, PositionsHub
from liqdesk.ui.alerts import AlertCenter, AlertDock
from liqdesk.ui.capture import Capture
from liqdesk.ui.chart import ChartWidget
from liqdesk.ui.context import ChartContext
from liqdesk.ui.frame_presenter import FramePresenter
from liqdesk.ui.frames import TWO_TONE, Frame
from liqdesk.ui.gui_gc import collect_on_gui_thread
from liqdesk.ui.inferred_markers import InferredMarkers
from liqdesk.ui.lines import LinesController
from liqdesk.ui.liquidation_markers import LiquidationMarkers
from liqdesk.ui.menus import build_menus
from liqdesk.ui.model_check import ModelCheckDock
from liqdesk.ui.position import PositionDock
from liqdesk.ui.readout import Readout
from liqdesk.ui.replay import (
    ReplayBanner,
    ReplayController,
    ReplayToolbar,
    build_replay_menu,
    install_toolbar_button,
)
from liqdesk.ui.statusbar import ChartStatusBar
from liqdesk.ui.toolbar import ChartToolbar, ToolbarHandlers
from liqdesk.ui.venue_set import VenueBreakdown, VenuePanel, venue_engine_maker
from liqdesk.ui.view_settings import DEFAULT_PRESET, ViewSettings
from liqdesk.ui.worker import ModelWorker

log = logging.getLogger(__name__)

__all__ = ["MainWindow", "ViewSettings"]


class MainWindow(QtWidgets.QMainWindow):
    frame_applied = QtCore.Signal(object)  # the Frame now on screen (tests and snapshots wait on it)
    # The user picked a symbol / timeframe (toolbar). With `market_controlled` False the window loads it
    # itself from its DataSource; a live controller sets it True and answers these (restarting its streams).
    symbol_requested = QtCore.Signal(str)
    timeframe_requested = QtCore.Signal(str)

    def __init__(self, source: data_mod.DataSource, settings: ViewSettings | None = None,
                 params: ModelParams | None = None) -> None:  # fmt: skip
        super().__init__()
        collect_on_gui_thread()
        self.setWindowTitle("liqdesk — liquidation heatmap")
        self.setStyleSheet(theme.stylesheet(settings.theme if settings else None))
        self.source = source
        self.settings = settings or ViewSettings(theme=theme.current_theme())
        self._explicit_params = params  # fixed params from the command line (overrides presets)
        self.model_overrides: dict[str, object] = dict(self.settings.model_overrides)
        self.market: MarketData | None = None
        self.candles: Candles | None = None
        self._pending_range_reset = True
        self.market_controlled = False  # True: symbol/timeframe requests are answered by a controller

        self.worker = ModelWorker(self)
        self.chart = ChartWidget(self)
        self.setCentralWidget(self.chart)
        self.toolbar = ChartToolbar(source.symbols(), self._toolbar_handlers(), self)
        self.addToolBar(self.toolbar)
        self.status = ChartStatusBar(self.statusBar(), self.worker.backend)
        self.context = ChartContext(self, self, self.chart, self.worker)
        self.frames = FramePresenter(self.chart, self.worker, self.context, self.status, self.settings,
                                     on_applied=self._frame_applied)  # fmt: skip
        self.readout = Readout(self.chart, self.context)
        self.markers = LiquidationMarkers(self.chart, self.context)
        self.chart.levels_changed.connect(self._on_levels_dragged)
        self.chart.reset_requested.connect(self.reset_view)
        self.chart.scene().sigMouseClicked.connect(self._on_chart_click)

        persist = self.settings.persist
        self.lines = LinesController(self.context, persist=persist)
        self.alerts = AlertCenter(self.lines, self, persist=persist)
        self.capture = Capture(self.context, persist=persist)
        self.alert_dock = AlertDock(self.alerts, self.settings.utc, self)
        self.position_dock = PositionDock(self.lines, self)
        # Sampled positions (Hyperliquid): published on the hub by the app's sampler, drawn by these layers.
        self.positions = PositionsHub(self)
        self.actual = ActualPositionsLayer(self.context, self.positions)
        self.inferred = InferredMarkers(self.context, self.positions)
        self.model_check = ModelCheckDock(self.context, self.positions)
        self.venue_breakdown = VenueBreakdown(self.context)  # an aggregated market's venues
        self.venue_panel = VenuePanel(self.context)
        for layer in (self.readout.candle, self.readout.liquidity, self.venue_breakdown, self.actual, self.markers,
                      self.inferred, self.lines, self.alerts, self.model_check, self.venue_panel):  # fmt: skip
            self.context.add_layer(layer)  # in this order: the readout's text, then what draws and listens
        area = QtCore.Qt.DockWidgetArea
        for dock in (self.position_dock, self.alert_dock, self.model_check, self.venue_panel):
            dock.setObjectName(dock.objectName() or type(dock).__name__)  # saveState() needs names
            sides = area.RightDockWidgetArea | area.LeftDockWidgetArea
            dock.setAllowedAreas(sides | area.BottomDockWidgetArea if dock is self.model_check else sides)
            self.addDockWidget(area.RightDockWidgetArea, dock)
            dock.hide()
        self.alerts.fired.connect(lambda e: self.flash(f"⚑ {e.message}"))
        self.alert_dock.visibilityChanged.connect(self._size_docks)
        self.menus = build_menus(self, self.toolbar, self.capture, self.lines, self.alert_dock, self.model_check,
                                 self.open_position_form, self.actual)  # fmt: skip
        self.replay = ReplayController(self, self)
        self.replay_banner = ReplayBanner(self.chart, self.replay)
        self.replay_toolbar = ReplayToolbar(self.replay, self)
        self.addToolBarBreak()
        self.addToolBar(self.replay_toolbar)
        install_toolbar_button(self.toolbar, build_replay_menu(self, self.replay))

        self.resize(1600, 900)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        if self.settings.theme != "dark":  # the chart's items are built dark
            self.apply_theme(self.settings.theme)
        symbols = source.symbols()
        self.settings.symbol = self.settings.symbol if self.settings.symbol in symbols else symbols[0]
        self._sync_controls()
        self.load_symbol(self.settings.symbol)

    # ------------------------------------------------------------------ what tools see (ChartHost)

    @property
    def frame(self) -> Frame | None:
        """The frame on screen."""
        return self.frames.frame

    @property
    def errors_shown(self) -> list[str]:
        """Each model error the user was shown (once each)."""
        return self.frames.scheduler.errors_shown

    def params(self) -> ModelParams:
        if self._explicit_params is not None:
            return self._explicit_params
        params = data_mod.params_for(self.settings.preset)
        return params.with_(**self.model_overrides) if self.model_overrides else params

    def model_text(self) -> str:
        return self.status.model_label.text()

    def use_preset(self, name: str) -> None:
        self.set_preset(name)
        i = self.toolbar.preset_box.findData(name)
        if i >= 0:
            self.toolbar.preset_box.setCurrentIndex(i)

    def refresh_readout(self) -> None:
        """The crosshair box as it should be now: gone when the pointer is not over the chart, else the bar
        and price under it (a screenshot never shows a stale one)."""
        self.readout.refresh_or_hide()

    def flash(self, text: str) -> None:
        self.status.flash(text)

    # ------------------------------------------------------------------ controls

    def _toolbar_handlers(self) -> ToolbarHandlers:
        return ToolbarHandlers(
            symbol=self.request_symbol, timeframe=self.request_timeframe, range_name=self.set_range,
            preset=self.set_preset, colormap=self.set_colormap, transform=self.set_transform,
            lock_levels=self.set_lock_levels, auto_y=self.set_auto_y, utc=self.set_utc,
            sweeps=lambda on: self.chart.sweeps.setVisible(on),
            real_liquidations=lambda on: self.chart.real_liqs.setVisible(on),
        )  # fmt: skip

    def _sync_controls(self) -> None:
        s = self.settings
        self.toolbar.show_settings(s)
        self.chart.set_auto_y(s.auto_y)
        self.chart.time_axis.set_utc(s.utc)
        self.chart.set_colormap(s.colormap)
        self.chart.set_transform(s.transform)
        self.chart.sweeps.setVisible(s.show_sweeps)
        self.chart.real_liqs.setVisible(s.show_real)

    def open_position_form(self, price: float | None = None) -> None:
        self.position_dock.prefill(price)
        self.position_dock.show()
        self.position_dock.raise_()
        self._size_docks()

    def _size_docks(self, *_: object) -> None:
        if self.alert_dock.isVisible() and self.position_dock.isVisible():  # the form needs little height
            self.resizeDocks(
                [self.position_dock, self.alert_dock], [260, 600], QtCore.Qt.Orientation.Vertical
            )

    def _on_chart_click(self, ev: object) -> None:
        """Right-click on the chart (not on a line, not during a drag): add a line there. A left click while the
        replay's start is being chosen starts it at that bar."""
        vb = self.chart.price_vb
        pos = ev.scenePos()  # type: ignore[attr-defined]
        left = ev.button() == QtCore.Qt.MouseButton.LeftButton  # type: ignore[attr-defined]
        if left and self.replay.picking and vb.sceneBoundingRect().contains(pos):
            ev.accept()  # type: ignore[attr-defined]
            self.replay.clicked_bar(float(vb.mapSceneToView(pos).x()))
            return
        if ev.button() != QtCore.Qt.MouseButton.RightButton or ev.isAccepted():  # type: ignore[attr-defined]
            return
        if not vb.sceneBoundingRect().contains(pos):
            return
        price = float(vb.mapSceneToView(pos).y())
        if price <= 0:
            return
        ev.accept()  # type: ignore[attr-defined]
        screen = ev.screenPos()  # type: ignore[attr-defined]
        self.lines.chart_menu(price, QtCore.QPoint(int(screen.x()), int(screen.y())),
                              extra=[("Position from here…", lambda: self.open_position_form(price))])  # fmt: skip

    # ------------------------------------------------------------------ user actions

    def request_symbol(self, symbol: str) -> None:
        """The user's choice of symbol: announced, and loaded here unless a controller answers it."""
        self.symbol_requested.emit(symbol)
        if not self.market_controlled:
            self.set_symbol(symbol)

    def request_timeframe(self, timeframe: str) -> None:
        self.timeframe_requested.emit(timeframe)
        if not self.market_controlled:
            self.set_timeframe(timeframe)

    def set_symbol(self, symbol: str) -> None:
        self.load_symbol(symbol)

    def set_timeframe(self, timeframe: str) -> None:
        if self.market is None:
            return
        ok, why = self.market.timeframe_status(timeframe)
        if not ok:
            self.flash(why)
            self._sync_controls()
            return
        self.replay.stop()
        self.settings.timeframe = timeframe
        self._pending_range_reset = True
        self._load_candles()

    def set_range(self, range_name: str) -> None:
        self.settings.range_name = range_name
        self.reset_view()

    def set_preset(self, preset: str) -> None:
        self.settings.preset = preset
        self._explicit_params = None
        self._rebuild_engine()

    def set_colormap(self, name: str) -> None:
        self.settings.colormap = name
        if self.frame is not None and self.frame.request.two_tone != (name == TWO_TONE):
            # A frame keeps only the values of its own colour mode: a new frame brings the new map, so the
            # image is never shown under a map of the other mode meanwhile.
            self.request_frame(force=True)
        else:
            self.chart.set_colormap(name)

    def set_transform(self, kind: str) -> None:
        self.settings.transform = kind
        self.settings.levels = None  # levels are in transformed units: start again from defaults
        self.chart.set_transform(kind)
        self.request_frame(force=True)

    def set_lock_levels(self, on: bool) -> None:
        self.settings.lock_levels = on
        self.settings.levels = self.frame.levels if (on and self.frame is not None) else None
        if not on:
            self.request_frame(force=True)

    def set_auto_y(self, on: bool) -> None:
        self.settings.auto_y = on
        self.chart.set_auto_y(on)

    def set_utc(self, on: bool) -> None:
        self.settings.utc = on
        self.chart.time_axis.set_utc(on)
        self.chart.price_plot.getAxis("bottom").set_utc(on)
        self.alert_dock.utc = on
        self.status.set_utc(on)
        if self.frame is not None:
            self.chart.apply_frame(self.frame)
        self.readout.refresh()

    def _on_levels_dragged(self, lo: float, hi: float) -> None:
        # Dragging the colour bar fixes the levels: lock them so panning keeps the user's choice.
        self.settings.levels = (lo, hi)
        if not self.settings.lock_levels:
            self.settings.lock_levels = True
            self.toolbar.set_checked(self.toolbar.lock_box, True)
        self.frames.requantise((lo, hi))

    def reset_view(self) -> None:
        if self.candles is None or not len(self.candles) or self.market is None:
            return
        span = data_mod.RANGE_MS.get(self.settings.range_name, data_mod.RANGE_MS[data_mod.DEFAULT_RANGE])
        bars = max(int(span // self.candles.interval_ms), 10)
        n = len(self.candles)
        self.chart.show_bars(max(n - bars, 0), n - 1)
        if bars > n:
            self.flash(f"{self.settings.range_name}: the data holds only {span_text(self.market.span_ms())}; "
                       "showing all of it")  # fmt: skip

    def show_time_range(self, start_ms: int, end_ms: int) -> None:
        """Show the bars with start_ms <= open time < end_ms."""
        if self.candles is None or not len(self.candles):
            return
        t = self.candles.open_time
        i0 = int(np.searchsorted(t, start_ms, "left"))
        i1 = int(np.searchsorted(t, end_ms, "left"))
        self.chart.show_bars(min(i0, len(t) - 1), max(i1 - 1, i0))

    def point_crosshair_at(self, time_ms: int, price: float) -> None:
        """Put the crosshair on the bar holding time_ms at `price` (as a mouse hover would)."""
        if self.candles is None or not len(self.candles):
            return
        bar = int(
            np.clip(np.searchsorted(self.candles.open_time, time_ms, "right") - 1, 0, len(self.candles) - 1)
        )
        self.chart.move_crosshair(float(bar), float(price))

    def keyPressEvent(self, ev: QtGui.QKeyEvent) -> None:
        key = ev.key()
        K = QtCore.Qt.Key
        if key == K.Key_Left:
            self.chart.pan(-0.1)
        elif key == K.Key_Right:
            self.chart.pan(0.1)
        elif key in (K.Key_Plus, K.Key_Equal):
            self.chart.zoom(0.8)
        elif key in (K.Key_Minus, K.Key_Underscore):
            self.chart.zoom(1.25)
        elif key == K.Key_End:
            self.chart.jump_to_end()
        elif key == K.Key_Home:
            self.reset_view()
        elif key in (K.Key_Up, K.Key_Down) and self.lines.selected is not None:
            step = 10 if ev.modifiers() & QtCore.Qt.KeyboardModifier.ShiftModifier else 1
            self.lines.nudge(step if key == K.Key_Up else -step)
        elif key == K.Key_Backspace and self.lines.selected is not None:
            self.lines.remove()
        elif key == K.Key_Escape and self.lines.selected is not None:
            self.lines.select(None)
        elif key == K.Key_Escape and self.replay.picking:
            self.replay.cancel_pick()
        else:
            super().keyPressEvent(ev)
            return
        ev.accept()

    # ------------------------------------------------------------------ data

    def load_symbol(self, symbol: str) -> None:
        self.replay.stop()  # another market: the replay of this one ends
        try:
            market = self.source.load(symbol)
        except Exception as exc:
            self.show_no_data(symbol, str(exc))
            return
        self.settings.symbol = symbol
        self.market = market
        tfs = {tf: market.timeframe_status(tf) for tf in data_mod.TIMEFRAMES}
        self.toolbar.enable_items(self.toolbar.timeframe_box, tfs)
        if not tfs.get(self.settings.timeframe, (False, ""))[0]:
            self.settings.timeframe = market.native_timeframe
        ranges = data_mod.ranges_available(market)
        self.toolbar.enable_items(
            self.toolbar.range_box,
            {r: (r in ranges, "" if r in ranges else "longer than the loaded data") for r in data_mod.RANGES},
        )
        if self.settings.range_name not in ranges:
            self.settings.range_name = ranges[-1] if ranges else data_mod.DEFAULT_RANGE
        self.set_status_source(market.label)
        if market.offline and market.source_kind == "sample":
            self.show_notice("OFFLINE · bundled sample data")
        elif market.offline:
            self.show_notice("OFFLINE · data from files")
        else:
            self.show_notice(None)
        self._pending_range_reset = True
        self._sync_controls()
        last = float(market.candles.close[-1]) if len(market.candles) else None
        tick = market.tick_size or tick_size(market.exchange, market.symbol, last)
        self.context.show_market(market, symbol, float(tick))
        self._load_candles()

    def show_no_data(self, symbol: str, why: str) -> None:
        """A market without data to show: an empty chart that says so, under the market's own name, never
        another market's data (or its lines) under this one's label."""
        self.settings.symbol = symbol
        self.market = None
        self.candles = None
        self.frames.forget_data()  # results for the data shown before are dropped
        self.chart.clear_data()
        self.chart.show_notice(f"no {symbol} data · {why}")
        self.context.show_market(None, symbol, self.context.tick)  # no lines: nothing to draw them on
        self.status.set_model("")
        self.set_status_source(f"{symbol}: no data")
        self.set_last_update(None)
        self.flash(why)
        self._sync_controls()

    def _load_candles(self) -> None:
        assert self.market is not None
        tf = self.settings.timeframe
        self.candles = self.market.candles_for(tf)
        _, note = self.market.timeframe_status(tf)
        self.flash(note)
        self.chart.set_candles(self.candles)
        self.set_last_update(int(self.candles.close_time[-1]) if len(self.candles) else None)
        self.context.load_bars(self.candles)
        if self._pending_range_reset:
            self._pending_range_reset = False
            self.reset_view()
        self._rebuild_engine()

    def set_model_overrides(self, overrides: dict[str, object]) -> None:
        """Model parameters over the preset's (taker floor, half-life, churn…): the engine is rebuilt in the
        worker, off the UI thread."""
        if overrides == self.model_overrides:
            return
        self.model_overrides = dict(overrides)
        self._rebuild_engine()

    def rebuild_model(self) -> None:
        """Build the engine again with the current parameters (the settings changed them)."""
        self._rebuild_engine()

    def set_max_bins(self, bins: int) -> None:
        self.settings.max_bins = int(bins)
        self.request_frame(force=True)

    def reload_presets(self) -> None:
        """Refill the preset box (a user preset was saved)."""
        try:
            presets = data_mod.preset_names()
        except Exception as exc:
            self.flash(f"presets: {exc}")
            return
        self.toolbar.set_presets(presets)
        self._sync_controls()

    def apply_theme(self, name: str) -> None:
        """Dark or light, live: stylesheet, chart panels, axes and labels (the heatmap keeps its colour map)."""
        palette = theme.set_theme(name)
        self.settings.theme = name
        self.setStyleSheet(theme.stylesheet(name))
        self.chart.apply_theme(palette)
        self.model_check.apply_theme()

    def _rebuild_engine(self) -> None:
        if self.candles is None or self.market is None or self.frames.scheduler.closed:
            return
        if self.replay.active:
            self.replay.rebuild()  # the replay's engine, at its bar, with the new parameters
            return
        try:
            params = self.params()
        except Exception as exc:
            if self.settings.preset == DEFAULT_PRESET:
                self.flash(f"preset {self.settings.preset}: {exc}")
                return
            # an unknown or broken preset (a removed user preset, a bad state file): the default one draws
            self.flash(f"preset {self.settings.preset!r}: {exc}; using {DEFAULT_PRESET}")
            self.settings.preset = DEFAULT_PRESET
            self._sync_controls()
            self._rebuild_engine()
            return
        if isinstance(self.market, VenueSetMarket):
            try:
                make = venue_engine_maker(self.market, self.candles, self.settings.timeframe, params)
            except ValueError as exc:
                self.flash(str(exc))
                return
            self.frames.rebuild_with(make)
            return
        self.frames.rebuild(self.candles, self.market.open_interest, params)

    # ------------------------------------------------------------------ frames

    def request_frame(self, force: bool = False) -> None:
        self.frames.request_frame(force)

    def frame_covers_view(self) -> bool:
        return self.frames.covers_view()

    def _frame_applied(self, frame: Frame) -> None:
        self.readout.refresh()
        self.frame_applied.emit(frame)

    # ------------------------------------------------------------------ live-data hooks

    def apply_bar(self, candles_row: Candles, is_closed: bool, oi_close: float | None = None) -> None:
        """A live candle update: moves/appends the last candle now, the engine and newest heatmap
        column follow in the worker. `is_closed` is informational: a later row with the same open
        time revises, a newer one appends."""
        if self.replay.active:
            self.replay.hold_bar(candles_row)  # shown when the replay ends
            self.set_last_update(int(time.time() * 1000))
            return
        if (
            self.candles is None
            or len(candles_row) != 1
            or candles_row.interval_ms != self.candles.interval_ms
        ):
            return
        t = int(candles_row.open_time[0])
        last = int(self.candles.open_time[-1])
        if t < last:
            return
        revise = t == last
        if revise:
            self.candles = self.candles.take(slice(0, len(self.candles) - 1)).concat(candles_row)
        else:
            self.candles = self.candles.concat(candles_row)
        self.chart.update_last_bar(candles_row, append=not revise)
        self.chart.set_times(self.candles.open_time, self.candles.interval_ms)
        self.context.update_bar(self.candles, appended=not revise)
        if not self.frames.send_bar(candles_row, oi_close, revise):
            self._rebuild_engine()  # the retry: a new engine from the bars shown, this one included
        now_ms = int(time.time() * 1000)
        self.set_last_update(now_ms)
        self.set_last_price(float(candles_row.close[0]), now_ms)

    def apply_venue_bar(self, venue: str, candles_row: Candles, oi_close: float | None = None) -> None:
        """A live bar of another venue than the chart's of an aggregated market: kept with the market (a rebuild
        starts from it) and applied to its engine in the worker; the newest column sums it in."""
        market = self.market
        if not isinstance(market, VenueSetMarket) or venue not in market.names or len(candles_row) != 1:
            return
        if self.candles is None or candles_row.interval_ms != self.candles.interval_ms:
            return
        market.add_bar(venue, candles_row)
        if not self.frames.send_bar(candles_row, oi_close, False, venue):
            self._rebuild_engine()

    def add_liquidations(self, liquidations: Liquidations) -> Liquidations:
        """Real liquidation events (live stream): stored with the market, drawn as markers (those inside the
        loaded bars, which are returned) and given to the layers (alerts)."""
        if self.market is None or not len(liquidations):
            return liquidations.take(np.zeros(len(liquidations), bool))
        self.market.with_liquidations(liquidations)
        if self.replay.active:  # stored; drawn when the replay ends (they are after its instant)
            return liquidations.take(np.zeros(len(liquidations), bool))
        shown = self.markers.add(liquidations)
        self.context.add_liquidations(liquidations)
        return shown

    def set_last_price(self, price: float, time_ms: int | None = None) -> None:
        """The latest traded/mark price (a live tick or bar update): price tag, line labels, alerts."""
        if not (np.isfinite(price) and price > 0):
            return
        if self.replay.active:
            self.replay.hold_price(price, int(time_ms if time_ms is not None else time.time() * 1000))
            return
        self.show_price(price, int(time_ms if time_ms is not None else time.time() * 1000))

    def show_price(self, price: float, time_ms: int) -> None:
        """A price on the chart now (live, or the replay's): price tag, line labels, alerts."""
        self.chart.price_line.setPos(price)
        self.chart.map_price_line.setPos(price)
        self.context.tick_price(price, time_ms)

    def show_live(self, candles: Candles) -> None:
        """The live bars again (a replay ended): drawn, the view at the newest bar, the live engine built."""
        self.candles = candles
        self.chart.set_candles(candles)
        self.set_last_update(int(candles.close_time[-1]) if len(candles) else None)
        self.context.load_bars(candles)
        self.chart.jump_to_end()
        m = self.market
        self.show_notice(None if m is None or not m.offline else
                         "OFFLINE · bundled sample data" if m.source_kind == "sample" else "OFFLINE · data from files")  # fmt: skip
        self._rebuild_engine()

    def set_tick_size(self, tick: float) -> None:
        """The market's exact tick (ccxt market['precision']['price']): lines snap to it."""
        self.context.tick = float(tick)
        self.lines.set_tick(float(tick))

    def set_status_source(self, text: str) -> None:
        self.status.set_source(text)

    def set_last_update(self, ms: int | None) -> None:
        self.status.set_last_update(ms)

    def show_notice(self, text: str | None) -> None:
        self.status.show_notice(text)

    # ------------------------------------------------------------------ lifecycle

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:
        self.replay.abandon()  # lines drawn in a replay are not written unasked
        self.context.close()  # tools write what is pending (a nudged line) and stop their threads
        self.frames.close()  # results still queued to this window ask the worker for nothing more
        self.worker.shutdown()
        super().closeEvent(ev)

"""The main window: toolbar, chart, status bar, and the controller logic between them.

Data flow: a DataSource gives MarketData → candles for the chosen timeframe go to the chart at
once; the engine is built in the worker; view changes ask the worker for a frame (heatmap, map,
bubbles) covering the view plus a margin; frames come back as uint8 images and small arrays.

Hooks for the live-data step: `apply_bar(candles_row, is_closed, oi_close)`,
`add_liquidations(liquidations)`, `set_last_price(price, time_ms)` (trade ticks between bars: lines
and alerts follow), `set_tick_size(tick)` (from ccxt's market precision); `set_status_source(text)` /
`set_last_update(ms)`.

Trader tools (issue 5): price lines (`self.lines`, liqdesk.ui.lines), alerts (`self.alerts` and the
alert log dock), the position form dock, screenshots and data export (`self.capture`), reached from
the File / Lines / Alerts menus, the toolbar's Lines button, the chart's right-click menu and keys.

Desktop product (issue 7): the window is also a pane of liqdesk.ui.workspace.Workspace (tabs, one menu bar, the
state file). A controller that owns the market sets `market_controlled` and answers `symbol_requested` /
`timeframe_requested`; `apply_theme(name)` switches dark/light live; `model_overrides` and `settings.max_bins`
come from the settings dialog.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from liqdesk.core.grid import PriceBins
from liqdesk.core.params import ModelParams
from liqdesk.core.series import LONG, SHORT, Candles, Liquidations
from liqdesk.feeds.markets import tick_size
from liqdesk.ui import data as data_mod
from liqdesk.ui import format as fmt
from liqdesk.ui import theme
from liqdesk.ui.actions import add_action
from liqdesk.ui.alerts import AlertCenter, AlertDock
from liqdesk.ui.capture import Capture
from liqdesk.ui.chart import ChartWidget
from liqdesk.ui.frames import TWO_TONE, CursorInfo, Frame, FrameRequest, cursor_values
from liqdesk.ui.gui_gc import collect_on_gui_thread
from liqdesk.ui.lines import KINDS, LinesController
from liqdesk.ui.position import PositionDock
from liqdesk.ui.worker import ModelWorker

log = logging.getLogger(__name__)

# Render this fraction of the view beyond each side, so a pan shows no edge before the next frame;
# more costs memory and paint time (the whole image is drawn every frame).
RENDER_MARGIN = 0.3
RENDER_MARGIN_Y = 0.15  # y re-fits to the candles while panning, so its margin matters less
MAX_COLUMNS = 3200
MAX_BINS = 1000
DEFAULT_PRESET = "coinglass"


@dataclass
class ViewSettings:
    symbol: str = ""
    timeframe: str = "5m"
    range_name: str = data_mod.DEFAULT_RANGE
    preset: str = DEFAULT_PRESET
    colormap: str = theme.DEFAULT_COLORMAP
    transform: str = "sqrt"
    lock_levels: bool = False
    levels: tuple[float, float] | None = None
    utc: bool = False
    auto_y: bool = True
    bin_px: float = 3.0  # screen pixels per price bin: Coinglass-like blocks, not 1-px lines
    show_sweeps: bool = True
    show_real: bool = True
    theme: str = "dark"  # theme.THEMES
    max_bins: int = MAX_BINS  # price bins of the visible heatmap at most (settings: Model → bins)
    persist: bool = True  # price lines and trader prefs from/to the state file (off: snapshots, tests)
    # ModelParams fields over the preset's (settings dialog, state file): known before the first build, so the
    # engine is built once at start
    model_overrides: dict[str, object] = field(default_factory=dict)


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
        self.market: data_mod.MarketData | None = None
        self.candles: Candles | None = None
        self.data_generation = 0
        self.frame_generation = 0
        self.frame: Frame | None = None
        self.cursor_info: CursorInfo | None = None
        self._cursor: tuple[float, float] | None = None
        self.engine_ready = False
        self.readout_values: dict[str, object] = {}
        self._pending_range_reset = True
        self.market_controlled = False  # True: symbol/timeframe requests are answered by a controller
        self._closed = False  # closeEvent ran: the worker is shut down
        self._liq_scale = 0.0  # the largest real liquidation (USD) the markers are sized by
        self._liq_style: tuple[object, object, object] | None = None  # cached marker brushes and pen
        self._last_update_ms: int | None = None

        self.worker = ModelWorker(self)
        self.worker.engine_ready.connect(self._on_engine_ready)
        self.worker.frame_ready.connect(self._on_frame)
        self.worker.image_ready.connect(self._on_image)
        self.worker.cursor_ready.connect(self._on_cursor_info)
        self.worker.failed.connect(self._on_worker_failed)
        self.worker.engine_lost.connect(self._on_engine_lost)
        self.worker.bar_applied.connect(self._on_bar_applied)
        self._bars_in_flight = 0  # live bars sent to the worker, not yet applied to its engine
        self._model_error = ""  # the model/frame error on screen ("" when the last frame came through)
        self._engine_lost = False  # a live bar broke the worker's engine: the next bar rebuilds it
        self.errors_shown: list[str] = []  # model errors the user was shown (once each; tests read them)

        self.chart = ChartWidget(self)
        self.setCentralWidget(self.chart)
        self.chart.view_changed.connect(self._on_view_changed)
        self.chart.cursor_moved.connect(self._on_cursor)
        self.chart.cursor_left.connect(self._on_cursor_left)
        self.chart.levels_changed.connect(self._on_levels_dragged)
        self.chart.reset_requested.connect(self.reset_view)
        self._build_toolbar()
        self._build_statusbar()
        self._build_trader_tools()
        self.resize(1600, 900)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        if self.settings.theme != "dark":  # the chart's items are built dark
            self.apply_theme(self.settings.theme)

        symbols = source.symbols()
        self.settings.symbol = self.settings.symbol if self.settings.symbol in symbols else symbols[0]
        self._sync_controls()
        self.load_symbol(self.settings.symbol)
        from liqdesk.ui.model_check import install_model_check  # here: model_check imports window types

        self.model_check = install_model_check(self)

    # ------------------------------------------------------------------ controls

    def _combo(self, label: str, items: list[tuple[str, str]], slot: object, tip: str) -> QtWidgets.QComboBox:
        if label:
            self.toolbar.addWidget(QtWidgets.QLabel(label))
        box = QtWidgets.QComboBox()
        box.setToolTip(tip)
        box.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        for value, text in items:
            box.addItem(text, value)
        box.activated.connect(lambda i, b=box, s=slot: s(b.itemData(i)))  # type: ignore[misc]
        self.toolbar.addWidget(box)
        return box

    def _build_toolbar(self) -> None:
        tb = self.toolbar = QtWidgets.QToolBar("Chart")
        tb.setObjectName("chart_toolbar")  # saveState()/restoreState() need names
        tb.setMovable(False)
        self.addToolBar(tb)
        symbols = self.source.symbols()
        self.symbol_box = self._combo("", [(s, s) for s in symbols], self.request_symbol, "Market")
        self.timeframe_box = self._combo(
            "TF", [(t, t) for t in data_mod.TIMEFRAMES], self.request_timeframe, "Bar interval"
        )
        self.range_box = self._combo(
            "Range", [(r, r) for r in data_mod.RANGES], self.set_range, "Visible time range"
        )
        tb.addSeparator()
        try:
            presets = data_mod.preset_names()
        except Exception as exc:  # a broken user preset file must not stop the window
            log.warning("presets: %s", exc)
            presets = [("coinglass", "Coinglass-like")]
        self.preset_box = self._combo("Lev", presets, self.set_preset, "Leverage preset (model tiers)")
        tb.addSeparator()
        cmaps = [(k, v[0]) for k, v in theme.COLORMAPS.items()]
        self.colormap_box = self._combo("Map", cmaps, self.set_colormap, "Heatmap colour map")
        self.transform_box = self._combo(
            "Scale",
            [("sqrt", "sqrt"), ("log", "log"), ("linear", "linear")],
            self.set_transform,
            "Value transform",
        )
        self.lock_box = QtWidgets.QCheckBox("Lock")
        self.lock_box.setToolTip(
            "Keep the colour levels when the view changes (else relative to the visible data)"
        )
        self.lock_box.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        self.lock_box.toggled.connect(self.set_lock_levels)
        tb.addWidget(self.lock_box)
        tb.addSeparator()
        self.auto_y_box = QtWidgets.QCheckBox("Auto Y")
        self.auto_y_box.setToolTip("Fit the price axis to the visible candles (off: drag pans price too)")
        self.auto_y_box.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        self.auto_y_box.toggled.connect(self.set_auto_y)
        tb.addWidget(self.auto_y_box)
        self.utc_box = QtWidgets.QCheckBox("UTC")
        self.utc_box.setToolTip("Time axis in UTC (off: local time)")
        self.utc_box.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        self.utc_box.toggled.connect(self.set_utc)
        tb.addWidget(self.utc_box)
        self.sweeps_box = QtWidgets.QCheckBox("Sweeps")
        self.sweeps_box.setToolTip("Estimated sweep bubbles (model)")
        self.sweeps_box.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        self.sweeps_box.toggled.connect(lambda on: self.chart.sweeps.setVisible(on))
        tb.addWidget(self.sweeps_box)
        self.real_box = QtWidgets.QCheckBox("Real liqs")
        self.real_box.setToolTip("Real liquidation events from the exchange")
        self.real_box.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        self.real_box.toggled.connect(lambda on: self.chart.real_liqs.setVisible(on))
        tb.addWidget(self.real_box)

    def _build_statusbar(self) -> None:
        sb = self.statusBar()
        sb.setSizeGripEnabled(False)
        self.source_label = QtWidgets.QLabel("")
        self.model_label = QtWidgets.QLabel("")
        self.update_label = QtWidgets.QLabel("")
        self.message_label = QtWidgets.QLabel("")
        # Offline / not-live notice: first thing in the status bar, where it is always visible.
        self.notice = QtWidgets.QLabel("")
        self.notice.setObjectName("notice")
        self.notice.hide()
        sb.addWidget(self.notice)
        sb.addWidget(self.source_label, 1)
        sb.addWidget(self.message_label)
        sb.addPermanentWidget(self.model_label)
        sb.addPermanentWidget(self.update_label)
        # The compute backend of this process (issue 6), with the fallback reason in its tooltip.
        from liqdesk.ui.worker import backend_note, backend_status

        text, tip = backend_status(self.worker.backend)
        note = backend_note()
        self.backend_label = QtWidgets.QLabel(text)
        self.backend_label.setObjectName("backend")
        self.backend_label.setToolTip(f"{note}\n{tip}" if note else tip)
        if note:
            self.backend_label.setStyleSheet("color: #ef5350;")
        sb.addPermanentWidget(self.backend_label)

    def _build_trader_tools(self) -> None:
        persist = self.settings.persist
        self.lines = LinesController(self, persist=persist)
        self.alerts = AlertCenter(self.lines, self, persist=persist)
        self.capture = Capture(self, persist=persist)
        self.alert_dock = AlertDock(self.alerts, self.settings.utc, self)
        self.position_dock = PositionDock(self.lines, self)
        for dock in (self.position_dock, self.alert_dock):
            dock.setObjectName(dock.objectName() or type(dock).__name__)
            dock.setAllowedAreas(
                QtCore.Qt.DockWidgetArea.RightDockWidgetArea | QtCore.Qt.DockWidgetArea.LeftDockWidgetArea
            )
            self.addDockWidget(QtCore.Qt.DockWidgetArea.RightDockWidgetArea, dock)
            dock.hide()
        self.alerts.fired.connect(lambda e: self.flash(f"⚑ {e.message}"))
        self.alert_dock.visibilityChanged.connect(self._size_docks)
        self.frame_applied.connect(lambda _f: self.lines.request_map(live=True))
        self.chart.scene().sigMouseClicked.connect(self._on_chart_click)
        self._build_menus()

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("File")
        add_action(self, file, "Save screenshot", self.capture.save_screenshot, "Ctrl+S",
                     "Save the chart as PNG in the last folder used")  # fmt: skip
        add_action(self, file, "Save screenshot as…", self.capture.save_screenshot_as, "Ctrl+Shift+S")
        add_action(self, file, "Copy screenshot", self.capture.copy_screenshot, "Ctrl+Shift+C")
        self.hires_action = QtGui.QAction("High-resolution screenshots (2×)", self)
        self.hires_action.setCheckable(True)
        self.hires_action.setChecked(self.capture.scale >= 2)
        self.hires_action.toggled.connect(lambda on: self.capture.set_scale(2.0 if on else 1.0))
        file.addAction(self.hires_action)
        file.addSeparator()
        add_action(self, file, "Export visible heatmap…", self.capture.export_heatmap_dialog, "Ctrl+E",
                     "The visible bars and prices as .npz or .csv (same format as liqdesk export)")  # fmt: skip
        add_action(self, file, "Export liquidation map…", self.capture.export_map_dialog, "Ctrl+Shift+E")
        file.addSeparator()
        add_action(self, file, "Quit", lambda: self.window().close(), "Ctrl+Q")  # the workspace, when in one

        lines = self.lines_menu = bar.addMenu("Lines")
        self.line_actions: dict[str, QtGui.QAction] = {}
        for kind, key in (("stop", "Alt+S"), ("target", "Alt+T"), ("entry", "Alt+E"), ("alert", "Alt+A")):
            self.line_actions[kind] = add_action(
                self,
                lines,
                f"Add {KINDS[kind].name.lower()} line",
                lambda k=kind: self.lines.add_line(k),
                key,
                "At the price under the mouse, else near the last price",
            )
        lines.addSeparator()
        add_action(self, lines, "Position…", self.open_position_form, "Alt+P",
                     "Side, entry, leverage, size: your liquidation price and the stop's risk")  # fmt: skip
        add_action(self, lines, "Move stop beyond cluster", lambda: self.lines.move_beyond(), "Alt+B")
        add_action(self, lines, "Edit selected line price…", self._edit_selected, "F2")
        add_action(self, lines, "Delete selected line", lambda: self.lines.remove(), "Del")
        add_action(self, lines, "Remove all lines", self.lines.clear)

        alerts = bar.addMenu("Alerts")
        toggle = self.alert_dock.toggleViewAction()
        toggle.setText("Alert log and thresholds")
        toggle.setShortcut(QtGui.QKeySequence("Ctrl+L"))
        alerts.addAction(toggle)
        self.addAction(toggle)
        add_action(self, alerts, "Add alert line", lambda: self.lines.add_line("alert"))

        # Toolbar: one button with the same actions (room is short there).
        self.toolbar.addSeparator()
        button = QtWidgets.QToolButton()
        button.setText("Lines ▾")
        button.setToolTip("Add a stop, target, entry or alert line; position form")
        button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        button.setMenu(lines)
        self.toolbar.addWidget(button)

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

    def _edit_selected(self) -> None:
        if self.lines.selected is not None:
            self.lines.edit(self.lines.selected)

    def _on_chart_click(self, ev: object) -> None:
        """Right-click on the chart (not on a line, not during a drag): add a line there."""
        if ev.button() != QtCore.Qt.MouseButton.RightButton or ev.isAccepted():  # type: ignore[attr-defined]
            return
        vb = self.chart.price_vb
        pos = ev.scenePos()  # type: ignore[attr-defined]
        if not vb.sceneBoundingRect().contains(pos):
            return
        price = float(vb.mapSceneToView(pos).y())
        if price <= 0:
            return
        ev.accept()  # type: ignore[attr-defined]
        screen = ev.screenPos()  # type: ignore[attr-defined]
        self.lines.chart_menu(price, QtCore.QPoint(int(screen.x()), int(screen.y())),
                              extra=[("Position from here…", lambda p=price: self.open_position_form(p))])  # fmt: skip

    def _sync_controls(self) -> None:
        s = self.settings
        for box, value in ((self.symbol_box, s.symbol), (self.timeframe_box, s.timeframe),
                           (self.range_box, s.range_name), (self.preset_box, s.preset),
                           (self.colormap_box, s.colormap), (self.transform_box, s.transform)):  # fmt: skip
            i = box.findData(value)
            if i >= 0:
                box.setCurrentIndex(i)
        for box, on in ((self.lock_box, s.lock_levels), (self.auto_y_box, s.auto_y), (self.utc_box, s.utc),
                        (self.sweeps_box, s.show_sweeps), (self.real_box, s.show_real)):  # fmt: skip
            box.blockSignals(True)
            box.setChecked(on)
            box.blockSignals(False)
        self.chart.set_auto_y(s.auto_y)
        self.chart.time_axis.set_utc(s.utc)
        self.chart.set_colormap(s.colormap)
        self.chart.set_transform(s.transform)
        self.chart.sweeps.setVisible(s.show_sweeps)
        self.chart.real_liqs.setVisible(s.show_real)

    def _enable_items(self, box: QtWidgets.QComboBox, enabled: dict[str, tuple[bool, str]]) -> None:
        model = box.model()
        for i in range(box.count()):
            ok, why = enabled.get(box.itemData(i), (True, ""))
            item = model.item(i)  # type: ignore[attr-defined]
            item.setEnabled(ok)
            item.setToolTip(why)

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
            # A frame keeps only the values of its own colour mode: a new frame brings the new map
            # (_on_frame), so the image is never shown under a map of the other mode meanwhile.
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
        self.set_last_update(self._last_update_ms)  # in the zone now chosen
        if self.frame is not None:
            self.chart.apply_frame(self.frame)
        self._refresh_readout()

    def _on_levels_dragged(self, lo: float, hi: float) -> None:
        # Dragging the colour bar fixes the levels: lock them so panning keeps the user's choice.
        self.settings.levels = (lo, hi)
        if not self.settings.lock_levels:
            self.settings.lock_levels = True
            self.lock_box.blockSignals(True)
            self.lock_box.setChecked(True)
            self.lock_box.blockSignals(False)
        self._requantise((lo, hi))

    def reset_view(self) -> None:
        if self.candles is None or not len(self.candles):
            return
        span = data_mod.RANGE_MS.get(self.settings.range_name, data_mod.RANGE_MS[data_mod.DEFAULT_RANGE])
        bars = max(int(span // self.candles.interval_ms), 10)
        n = len(self.candles)
        self.chart.show_bars(max(n - bars, 0), n - 1)
        if bars > n:
            self.flash(
                f"{self.settings.range_name}: the data holds only {fmt_span(self.market.span_ms())}; showing all of it"
            )  # type: ignore[union-attr]

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
        else:
            super().keyPressEvent(ev)
            return
        ev.accept()

    # ------------------------------------------------------------------ data

    def load_symbol(self, symbol: str) -> None:
        try:
            market = self.source.load(symbol)
        except Exception as exc:
            self.show_no_data(symbol, str(exc))
            return
        self.settings.symbol = symbol
        self.market = market
        tfs = {tf: market.timeframe_status(tf) for tf in data_mod.TIMEFRAMES}
        self._enable_items(self.timeframe_box, tfs)
        if not tfs.get(self.settings.timeframe, (False, ""))[0]:
            self.settings.timeframe = market.native_timeframe
        ranges = market.ranges_available()
        self._enable_items(
            self.range_box,
            {r: (r in ranges, "" if r in ranges else "longer than the loaded data") for r in data_mod.RANGES},
        )
        if self.settings.range_name not in ranges:
            self.settings.range_name = ranges[-1] if ranges else data_mod.DEFAULT_RANGE
        self.set_status_source(market.label + ("" if not market.offline else ""))
        if market.offline and market.source_kind == "sample":
            self.show_notice("OFFLINE · bundled sample data")
        elif market.offline:
            self.show_notice("OFFLINE · data from files")
        else:
            self.show_notice(None)
        self._pending_range_reset = True
        self._sync_controls()
        last = float(market.candles.close[-1]) if len(market.candles) else None
        tick = getattr(market, "tick_size", None) or tick_size(market.exchange, market.symbol, last)
        self.lines.set_market(market.exchange, market.symbol, float(tick), last)
        self._load_candles()

    def show_no_data(self, symbol: str, why: str) -> None:
        """A market without data to show: an empty chart that says so, under the market's own name, never
        another market's data (or its lines) under this one's label."""
        self.settings.symbol = symbol
        self.market = None
        self.candles = None
        self.data_generation += 1  # results for the data shown before are dropped
        self.engine_ready = False
        self.frame = None
        self.cursor_info = None
        self._bars_in_flight = 0
        self.chart.clear_data()
        self.chart.show_notice(f"no {symbol} data · {why}")
        self.lines.set_market("", symbol, self.lines.tick, None)  # no lines: nothing to draw them on
        self.model_label.setText("")
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
        self._set_real_liquidations()
        self.set_last_update(int(self.candles.close_time[-1]) if len(self.candles) else None)
        if len(self.candles):
            self.lines.set_last_price(float(self.candles.close[-1]), int(self.candles.close_time[-1]))
        if self._pending_range_reset:
            self._pending_range_reset = False
            self.reset_view()
        self._rebuild_engine()

    def params(self) -> ModelParams:
        if self._explicit_params is not None:
            return self._explicit_params
        params = data_mod.params_for(self.settings.preset)
        return params.with_(**self.model_overrides) if self.model_overrides else params

    def set_model_overrides(self, overrides: dict[str, object]) -> None:
        """Model parameters over the preset's (taker floor, half-life, churn…): the engine is rebuilt in the
        worker, off the UI thread."""
        if overrides == self.model_overrides:
            return
        self.model_overrides = dict(overrides)
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
        box = self.preset_box
        box.blockSignals(True)
        box.clear()
        for value, text in presets:
            box.addItem(text, value)
        box.blockSignals(False)
        self._sync_controls()

    def apply_theme(self, name: str) -> None:
        """Dark or light, live: stylesheet, chart panels, axes and labels (the heatmap keeps its colour map)."""
        import pyqtgraph as pg

        p = theme.set_theme(name)
        self.settings.theme = name
        self.setStyleSheet(theme.stylesheet(name))
        ch = self.chart
        ch.setBackground(p["window"])
        ch.price_vb.setBackgroundColor(p["chart"])
        ch.map_vb.setBackgroundColor(p["map"])
        axis_pen = pg.mkPen(p["axis"], width=1, cosmetic=True)
        for plot in (ch.price_plot, ch.volume_plot, ch.map_plot):
            for side in ("left", "right", "bottom", "top"):
                ax = plot.getAxis(side)
                ax.setPen(axis_pen)
                ax.setTextPen(p["axis"])
        ch.colorbar.axis.setPen(axis_pen)
        ch.colorbar.axis.setTextPen(p["axis"])
        for label in (ch.map_plot.titleLabel, ch.cum_label, ch.tier_legend, ch._colorbar_label):
            label.opts["color"] = p["text_dim"]
            label.setText(label.text)
        ch.set_legend_theme(p)
        model_check = getattr(self, "model_check", None)  # installed after the first apply_theme
        if model_check is not None:
            model_check.apply_theme()
        if self.frame is not None:
            ch.apply_frame(self.frame)  # labels drawn with the theme's colours

    def _rebuild_engine(self) -> None:
        if self.candles is None or self.market is None or self._closed:
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
        self.data_generation += 1
        self.engine_ready = False
        self._engine_lost = False
        self._bars_in_flight = 0
        self.frame = None
        self.cursor_info = None
        self.model_label.setText("building model…")
        if self.chart._frame is None:  # nothing drawn yet: say what is coming instead of an empty plot
            self.chart.show_notice("building the liquidation model…")
        self.worker.build(self.data_generation, self.candles, self.market.open_interest, params)

    def _on_engine_ready(self, generation: int, engine: object) -> None:
        if generation != self.data_generation or self._closed:
            return
        self.engine_ready = True
        self.request_frame(force=True)

    def _set_real_liquidations(self) -> None:
        assert self.market is not None and self.candles is not None
        liq = self.market.liquidations
        c = self.candles
        has = len(liq) > 0
        self.chart.set_real_legend(has)
        if not has or not len(c):
            self._liq_scale = 0.0
            self.chart.set_real_liquidations(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, np.int8))
            return
        liq = liq.take(self._liq_inside(liq))
        self._liq_scale = float(liq.usd.max()) if len(liq) else 0.0
        self.chart.set_real_liquidations(self._liq_x(liq), liq.price, liq.usd, liq.side)

    def _liq_inside(self, liq: Liquidations) -> np.ndarray:
        c = self.candles
        assert c is not None
        return (liq.time >= c.open_time[0]) & (liq.time < c.close_time[-1])

    def _liq_x(self, liq: Liquidations) -> np.ndarray:
        """Chart x of each event: its bar index plus the fraction of the bar elapsed."""
        c = self.candles
        assert c is not None
        i = np.clip(np.searchsorted(c.open_time, liq.time, "right") - 1, 0, len(c) - 1)
        return (i - 0.5 + (liq.time - c.open_time[i]) / c.interval_ms).astype(np.float64)

    # ------------------------------------------------------------------ live-data hooks

    def apply_bar(self, candles_row: Candles, is_closed: bool, oi_close: float | None = None) -> None:
        """A live candle update: moves/appends the last candle now, the engine and newest heatmap
        column follow in the worker. `is_closed` is informational: a later row with the same open
        time revises, a newer one appends."""
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
        if self._engine_lost:
            self._rebuild_engine()  # the retry: a new engine from the bars shown, this one included
        else:
            self._bars_in_flight += 1
            self.worker.apply_bar(self.data_generation, candles_row, oi_close, revise)
            if self._model_error:
                self.request_frame(force=True)  # the retry of a failed frame
        now_ms = int(time.time() * 1000)
        self.set_last_update(now_ms)
        self.set_last_price(float(candles_row.close[0]), now_ms)

    def add_liquidations(self, liquidations: Liquidations) -> Liquidations:
        """Real liquidation events (live stream): stored with the market and added to the markers.

        Incremental: only the new events are appended to the marker item, with cached brushes (a full
        redraw costs ~10 µs per marker). Everything is redrawn only when the size scale changes (a new
        largest event) or nothing is drawn yet. Returns the events now drawn (inside the loaded bars)."""
        if self.market is None or not len(liquidations):
            return liquidations.take(np.zeros(len(liquidations), bool))
        self.market.with_liquidations(liquidations)
        c = self.candles
        if c is None or not len(c):
            self.alerts.on_liquidations(liquidations)
            return liquidations.take(np.zeros(len(liquidations), bool))
        shown = liquidations.take(self._liq_inside(liquidations))
        if len(shown):
            if float(shown.usd.max()) > self._liq_scale or len(self.chart.real_liqs.data) == 0:
                self._set_real_liquidations()
            else:
                long_brush, short_brush, pen = self._liq_marker_style()
                size = 6.0 + 12.0 * np.sqrt(shown.usd / max(self._liq_scale, 1.0))  # as the chart sizes them
                brushes = [long_brush if s == LONG else short_brush for s in shown.side]
                self.chart.real_liqs.addPoints(
                    x=self._liq_x(shown), y=shown.price, size=size, brush=brushes, pen=pen, symbol="d"
                )  # the legend already says "real liquidations" (set by the full draw before)
        self.alerts.on_liquidations(liquidations)
        return shown

    def _liq_marker_style(self) -> tuple[object, object, object]:
        if self._liq_style is None:
            import pyqtgraph as pg

            self._liq_style = (pg.mkBrush(theme.REAL_LONG), pg.mkBrush(theme.REAL_SHORT),
                               pg.mkPen("w", width=0.8))  # fmt: skip
        return self._liq_style

    def set_last_price(self, price: float, time_ms: int | None = None) -> None:
        """The latest traded/mark price (a live tick or bar update): price tag, line labels, alerts."""
        if not (np.isfinite(price) and price > 0):
            return
        self.chart.price_line.setPos(price)
        self.chart.map_price_line.setPos(price)
        self.lines.set_last_price(price, time_ms)
        self.alerts.on_price(price, int(time_ms if time_ms is not None else time.time() * 1000))

    def set_tick_size(self, tick: float) -> None:
        """The market's exact tick (ccxt market['precision']['price']): lines snap to it."""
        self.lines.set_tick(float(tick))

    def set_status_source(self, text: str) -> None:
        self.source_label.setText(text)

    def set_last_update(self, ms: int | None) -> None:
        self._last_update_ms = ms
        self.update_label.setText("" if ms is None else "last update " + fmt.timestamp(ms, self.settings.utc))

    def show_notice(self, text: str | None) -> None:
        self.notice.setText(text or "")
        self.notice.setVisible(bool(text))

    def flash(self, text: str) -> None:
        self.message_label.setText(text)

    # ------------------------------------------------------------------ frames

    def _on_view_changed(self) -> None:
        self.request_frame()

    def frame_request(self) -> FrameRequest | None:
        """What the view needs: its bars and prices plus a margin, at about screen resolution."""
        if self.candles is None or not len(self.candles):
            return None
        n = len(self.candles)
        x0, x1 = self.chart.visible_bars()
        y0, y1 = self.chart.visible_prices()
        if not (np.isfinite(y0) and np.isfinite(y1)) or y1 <= y0 or y0 <= 0:
            return None
        w_px, h_px = self.chart.plot_size_px()
        width = x1 - x0
        start = int(np.clip(np.floor(x0 - width * RENDER_MARGIN), 0, n - 1))
        end = int(np.clip(np.ceil(x1 + width * RENDER_MARGIN) + 1, start + 1, n))
        columns = int(min(end - start, MAX_COLUMNS, max(w_px * (end - start) / max(width, 1.0), 1)))
        span_y = y1 - y0
        lo, hi = max(y0 - span_y * RENDER_MARGIN_Y, y0 * 0.2), y1 + span_y * RENDER_MARGIN_Y
        bins_n = int(
            np.clip(
                h_px / self.settings.bin_px * (hi - lo) / span_y,
                16,
                self.settings.max_bins * (1 + 2 * RENDER_MARGIN_Y),
            )
        )
        vis0 = int(np.clip(np.floor(x0 + 0.5), 0, n - 1))
        vis1 = int(np.clip(np.ceil(x1 - 0.5), vis0 + 1, n))
        self.frame_generation += 1
        levels = self.settings.levels if self.settings.lock_levels else None
        return FrameRequest(
            generation=self.frame_generation,
            start_bar=start,
            end_bar=end,
            columns=max(columns, 1),
            bins=PriceBins(lo, hi, bins_n),
            visible_bars=(vis0, vis1),
            visible_prices=(y0, y1),
            map_bar=vis1 - 1,
            transform=self.settings.transform,
            levels=levels,
            colormap=self.settings.colormap,
        )

    def _frame_covers_view(self) -> bool:
        f = self.frame
        if f is None or self.candles is None:
            return False
        r = f.request
        n = len(self.candles)
        x0, x1 = self.chart.visible_bars()
        y0, y1 = self.chart.visible_prices()
        w_px, h_px = self.chart.plot_size_px()
        covered_x = r.start_bar <= max(x0, 0) + 0.5 and r.end_bar >= min(x1, n - 1) - 0.5
        covered_y = r.bins.lo <= y0 and r.bins.hi >= y1
        # Re-render when zoom changed enough that columns or bins are off screen resolution.
        cols_per_px = r.columns / max(r.end_bar - r.start_bar, 1) * (x1 - x0) / w_px
        bins_per_px = r.bins.n / (r.bins.hi - r.bins.lo) * (y1 - y0) / h_px * self.settings.bin_px
        sharp = 0.5 < cols_per_px < 2.0 or r.columns == r.end_bar - r.start_bar
        last_visible = int(np.clip(np.ceil(x1 - 0.5), 1, n)) - 1
        # A frame that followed the live edge for long: its left margin has grown (memory), or its newest
        # column has taken in several new bars while the image spreads columns evenly (misaligned).
        lean = r.start_bar == 0 or r.start_bar >= x0 - (x1 - x0) * (RENDER_MARGIN + 0.5)
        cols = f.columns
        per = int(cols.last_bar[0] - cols.first_bar[0]) + 1 if len(cols) else 1
        even = not len(cols) or int(cols.last_bar[-1] - cols.first_bar[-1]) + 1 <= per + max(1, per // 2)
        return (covered_x and covered_y and sharp and lean and even and 0.6 < bins_per_px < 1.7
                and r.map_bar == last_visible)  # fmt: skip

    def request_frame(self, force: bool = False) -> None:
        if not self.engine_ready or self._closed:
            return
        if not force and (self._frame_covers_view() or self._patch_pending()):
            return
        req = self.frame_request()
        if req is not None:
            self.worker.request_frame(self.data_generation, req)

    def _patch_pending(self) -> bool:
        """A live bar is on its way through the worker and the frame shown reaches the live edge: the
        patched frame will bring the new column and map (a full frame now would be thrown away)."""
        f = self.frame
        return self._bars_in_flight > 0 and f is not None and f.request.end_bar >= self.chart._n_bars - 1

    def _on_bar_applied(self, generation: int, _n_bars: int) -> None:
        if generation != self.data_generation:
            return
        self._bars_in_flight = max(self._bars_in_flight - 1, 0)
        if not self._bars_in_flight:
            self.request_frame()  # the patched frame (sent before this signal) is in; anything else to draw?

    def _on_frame(self, generation: int, frame: Frame) -> None:
        # Stale: another data set, or an older request than one already shown.
        if generation != self.data_generation:
            return
        if self.frame is not None and frame.request.generation < self.frame.request.generation:
            return
        if self._model_error:
            self._model_error = ""  # recovered
            self.model_label.setStyleSheet("")
            self.model_label.setToolTip("")
        self.frame = frame
        if self.settings.lock_levels and self.settings.levels is None:
            self.settings.levels = frame.levels
        same_mode = frame.request.two_tone == (self.settings.colormap == TWO_TONE)
        cmap = self.settings.colormap if same_mode else frame.request.colormap
        if cmap != self.chart.colormap:
            self.chart.set_colormap(cmap)
        self.chart.apply_frame(frame)
        locked = self.settings.levels if self.settings.lock_levels else None
        if locked is not None and locked != frame.levels:
            # requested before the user set the levels (a colour bar drag while it was computed)
            self._requantise(locked)
        self.model_label.setText(frame.model_label)
        self.chart.show_notice(None if frame.image.size else "no data in this range")
        self._refresh_readout()
        self.frame_applied.emit(frame)
        # The view may have moved while this frame was computed.
        if not self._frame_covers_view():
            QtCore.QTimer.singleShot(0, self.request_frame)

    def _requantise(self, levels: tuple[float, float]) -> None:
        if self.frame is None:
            return
        if self.frame.request.two_tone != (self.settings.colormap == TWO_TONE):
            self.request_frame(force=True)  # the colour mode is changing: the new frame has the levels
            return
        self.worker.request_requantise(
            self.data_generation, self.frame.request.generation, levels, self.settings.colormap
        )

    def _on_image(
        self, generation: int, frame_generation: int, image: np.ndarray, levels: tuple[float, float]
    ) -> None:
        if (
            generation != self.data_generation
            or self.frame is None
            or self.frame.request.generation != frame_generation
        ):
            return
        self.chart.apply_image(image, levels)

    def _on_worker_failed(self, message: str) -> None:
        """Shown once (the worker logs it once), kept in the status bar until a frame comes through; the next
        live bar retries, so the heatmap never silently stops."""
        if message == self._model_error:
            return
        self._model_error = message
        self.errors_shown.append(message)
        retry = "retrying with the next bar" if self.market is not None and not self.market.offline else (
            "change the view to retry")  # fmt: skip
        self.flash(f"model error: {message[:160]} · {retry}")
        self.model_label.setText("model error")
        self.model_label.setToolTip(f"{message}\n{retry}")
        self.model_label.setStyleSheet("color: #ef5350;")

    def _on_engine_lost(self, generation: int) -> None:
        if generation != self.data_generation:
            return
        self.engine_ready = False
        self._engine_lost = True
        self._bars_in_flight = 0

    # ------------------------------------------------------------------ crosshair readout

    def _on_cursor(self, x: float, y: float) -> None:
        self._cursor = (x, y)
        if self.candles is None or not len(self.candles):
            return
        bar = int(np.clip(x, 0, len(self.candles) - 1))
        if self.frame is not None and np.isfinite(y):
            info = self.cursor_info
            if info is None or info.bar != bar or info.lmap.bins != self.frame.request.bins:
                self.worker.request_cursor(self.data_generation, bar, self.frame.request.bins)
        self._refresh_readout()

    def _on_cursor_left(self) -> None:
        self._cursor = None

    def refresh_readout(self) -> None:
        """The crosshair box as it should be now: gone when the pointer is not over the chart, else the bar
        and price under it (a screenshot never shows a stale one)."""
        if self._cursor is None:
            self.chart.hide_crosshair()
        else:
            self._refresh_readout()

    def _on_cursor_info(self, generation: int, info: CursorInfo) -> None:
        if generation != self.data_generation:
            return
        self.cursor_info = info
        self._refresh_readout()

    def _refresh_readout(self) -> None:
        if self._cursor is None or self.candles is None or not len(self.candles):
            return
        x, y = self._cursor
        c = self.candles
        bar = int(np.clip(x, 0, len(c) - 1))
        utc = self.settings.utc
        values: dict[str, object] = {
            "bar": bar,
            "time_ms": int(c.open_time[bar]),
            "open": float(c.open[bar]),
            "high": float(c.high[bar]),
            "low": float(c.low[bar]),
            "close": float(c.close[bar]),
            "volume": float(c.volume[bar]),
        }
        change = (c.close[bar] - c.open[bar]) / c.open[bar] * 100.0
        color = theme.CANDLE_UP if c.close[bar] >= c.open[bar] else theme.CANDLE_DOWN
        lines = [
            f"<b>{fmt.timestamp(int(c.open_time[bar]), utc)}</b> · {c.timeframe}",
            f"O <span style='color:{color}'>{fmt.price(c.open[bar])}</span> "
            f"H <span style='color:{color}'>{fmt.price(c.high[bar])}</span> "
            f"L <span style='color:{color}'>{fmt.price(c.low[bar])}</span> "
            f"C <span style='color:{color}'>{fmt.price(c.close[bar])}</span> "
            f"<span style='color:{color}'>{change:+.2f}%</span>",
            f"Vol {fmt.volume(c.volume[bar])}",
        ]
        info = self.cursor_info
        if np.isfinite(y):
            lines.append(f"<br><b>at {fmt.price(y)}</b>")
            if (
                info is not None
                and info.bar == bar
                and self.frame is not None
                and info.lmap.bins == self.frame.request.bins
            ):
                v = cursor_values(info.lmap, y)
                values.update(v)
                if v.get("inside"):
                    lines += self._liquidity_lines(v)
            else:
                lines.append(f"<span style='color:{theme.TEXT_DIM}'>computing…</span>")
                if self.frame is not None:  # a new frame (zoom, pan, live bar) came since: ask again
                    self.worker.request_cursor(self.data_generation, bar, self.frame.request.bins)
        self.readout_values = values
        self.chart.set_readout("<br>".join(lines))

    @staticmethod
    def _liquidity_lines(v: dict[str, object]) -> list[str]:
        long_usd, short_usd = float(v["long_usd"]), float(v["short_usd"])  # type: ignore[arg-type]
        out = [
            f"<span style='color:{theme.LONG_COLOR}'>longs alive {fmt.usd(long_usd)}</span> · "
            f"<span style='color:{theme.SHORT_COLOR}'>shorts alive {fmt.usd(short_usd)}</span>"
        ]
        tiers = v["long_tiers"] if long_usd >= short_usd else v["short_tiers"]
        parts = [f"{k} {fmt.usd(u)}" for k, u in tiers.items() if u > 0]  # type: ignore[union-attr]
        if parts:
            out.append("tiers: " + " · ".join(parts))
        side = "shorts" if v["cumulative_side"] == SHORT else "longs"
        color = theme.SHORT_COLOR if v["cumulative_side"] == SHORT else theme.LONG_COLOR
        out.append(
            f"Σ {side} from price to here ({float(v['distance_pct']):+.2f}%): "  # type: ignore[arg-type]
            f"<span style='color:{color}'><b>{fmt.usd(float(v['cumulative_usd']))}</b></span>"  # type: ignore[arg-type]
        )
        return out

    # ------------------------------------------------------------------ lifecycle

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:
        if self.lines._save_timer.isActive():  # a nudge not written yet
            self.lines._save_timer.stop()
            self.lines.save()
        self._closed = True  # results still queued to this window ask the worker for nothing more
        self.engine_ready = False
        self.worker.shutdown()
        super().closeEvent(ev)


def fmt_span(ms: int) -> str:
    days = ms / 86_400_000
    return f"{days:.1f} days" if days >= 1 else f"{ms / 3_600_000:.0f} hours"

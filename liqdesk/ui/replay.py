"""Bar replay in the chart pane: the market as it stood at a past bar, stepped, played and stepped back.

The window's bars become the bars closed by the replay's instant, and the model worker's engine becomes a
`core.replay.ReplaySession`'s engine on them (built, stepped and cut back on the worker thread only):

- start or jump (a click on the chart in "choose start" mode, or a typed time) and step back: a new data
  generation, the session seeks there (`truncate` back, a rebuild or appends forward) and the frame follows;
- step forward (also each tick of play, `PlayClock` at 1–100 bars per second): the bar goes to the chart as a
  live bar would and the session appends it on the worker, whose patched frame brings the new heatmap column,
  map, magnets and sweeps; the real liquidations of the bar are drawn, and the bar's path (open, low/high,
  close) goes to the alerts, so a line crossed in replay alerts (tagged REPLAY);
- nothing after the instant reaches the chart: the bars, the frame (each jump and step back is a new data
  generation: results made before it are dropped), the colour levels (locked levels are taken again from the first replay frame),
  the price axis (fitted to the replayed bars) and the real liquidations;
- the live feed keeps coming: its bars and prices are held here and shown when the replay ends;
- lines are a sandbox while replaying (`LinesController.begin_sandbox`): at the end the trader keeps the
  lines drawn in replay or gets the live ones back.

The REPLAY state shows in a banner over the chart, in the status bar notice and in the replay toolbar.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PySide6 import QtCore, QtWidgets

from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.params import ModelParams
from liqdesk.core.replay import PlayClock, ReplaySession, bars_closed_by
from liqdesk.core.series import Candles
from liqdesk.core.timespan import utc_text
from liqdesk.feeds.market_data import MarketData
from liqdesk.ui.actions import add_action
from liqdesk.ui.alerts import AlertCenter
from liqdesk.ui.chart import ChartWidget
from liqdesk.ui.context import ChartContext
from liqdesk.ui.frame_presenter import FramePresenter
from liqdesk.ui.lines import LinesController
from liqdesk.ui.liquidation_markers import LiquidationMarkers
from liqdesk.ui.statusbar import ChartStatusBar
from liqdesk.ui.view_settings import ViewSettings

SPEEDS = (1, 2, 5, 10, 20, 50, 100)  # bars per second offered
DEFAULT_SPEED = 10
MAX_STEPPED = 10  # a forward move of more bars seeks (a rebuild or appends in one job) instead of stepping
REPLAY_STYLE = "background: #ff9800; color: #111; font-weight: bold; padding: 2px 8px; border-radius: 3px;"


class ReplayHost(Protocol):
    """What the window does for the replay (the window implements it)."""

    chart: ChartWidget
    frames: FramePresenter
    context: ChartContext
    lines: LinesController
    alerts: AlertCenter
    markers: LiquidationMarkers
    status: ChartStatusBar
    settings: ViewSettings
    market: MarketData | None
    candles: Candles | None

    def params(self) -> ModelParams: ...

    def flash(self, text: str) -> None: ...

    def show_price(self, price: float, time_ms: int) -> None: ...

    def show_live(self, candles: Candles) -> None: ...


@dataclass
class _SessionBox:
    """The session, made and used on the worker thread only (jobs hold the box, not the controller)."""

    history: Candles
    market: MarketData
    params: ModelParams
    session: ReplaySession | None = None

    def seek(self, bars: int) -> LiquidationEngine:
        if self.session is None:
            m = self.market
            self.session = ReplaySession(self.history, m.open_interest, m.liquidations, self.params)
        self.session.seek(bars)
        assert self.session.engine is not None
        return self.session.engine

    def step(self) -> LiquidationEngine:
        assert self.session is not None
        self.session.step(1)
        assert self.session.engine is not None
        return self.session.engine


class ReplayController(QtCore.QObject):
    """The replay of one chart pane (see the module)."""

    changed = QtCore.Signal()  # started, moved, played, paused or ended (the toolbar and banner follow)

    def __init__(self, host: ReplayHost, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.picking = False  # the next click on the chart chooses the start
        self.active = False
        self.bars = 0  # bars known at the replay's instant
        self.speed = float(DEFAULT_SPEED)
        self.history: Candles | None = None  # the bars loaded when the replay began
        self._box: _SessionBox | None = None
        self._live: Candles | None = None  # the live bars: those at the start and what the feed sent since
        self._live_price: tuple[float, int] | None = None
        self._live_levels: tuple[bool, tuple[float, float] | None] = (False, None)
        self._clock = PlayClock(self.speed)
        self._timer = QtCore.QTimer(self)
        self._timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._tick)
        self.step_times_ms: list[float] = []  # UI-thread time of each step forward (what play costs here)
        self.changed.connect(self._show_state)

    # ------------------------------------------------------------------ state

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    @property
    def time_ms(self) -> int | None:
        """The replay's instant: the close of its newest bar."""
        if not self.active or self.history is None or not self.bars:
            return None
        return int(self.history.close_time[self.bars - 1])

    @property
    def at_end(self) -> bool:
        return self.history is not None and self.bars >= len(self.history)

    def state_text(self) -> str:
        t = self.time_ms
        if t is None:
            return "click on the chart where the replay starts (Esc: cancel)" if self.picking else ""
        state = f"playing {self.speed:g} bars/s" if self.playing else "paused"
        end = " · end of the loaded bars" if self.at_end else ""
        return f"REPLAY · {utc_text(t)} UTC · {state}{end} · not live"

    def _show_state(self) -> None:
        """The status bar's notice says REPLAY while replaying (in the replay's colour)."""
        if self.active:
            self.host.status.show_notice(self.state_text())
            self.host.status.notice.setStyleSheet(REPLAY_STYLE)

    # ------------------------------------------------------------------ start

    def choose_start(self) -> None:
        """The next left click on the chart starts the replay at that bar."""
        if not self._can_start():
            return
        self.picking = True
        self.host.chart.setCursor(QtCore.Qt.CursorShape.CrossCursor)
        self.host.flash("replay: click on the chart where the replay starts (Esc: cancel)")
        self.changed.emit()

    def cancel_pick(self) -> None:
        if self.picking:
            self.picking = False
            self.host.chart.unsetCursor()
            self.changed.emit()

    def clicked_bar(self, x: float) -> bool:
        """A left click at chart x while choosing: the replay starts with that bar closed. True when taken."""
        if not self.picking:
            return False
        self.cancel_pick()
        history = self.history if self.active else self.host.candles
        if history is None or not len(history):
            return True
        bar = int(np.clip(round(x), 0, len(history) - 1))
        self.start_at_bar(bar + 1)
        return True

    def ask_time(self) -> None:
        """A dialog for the start instant (UTC)."""
        if not self._can_start():
            return
        c = self.history if self.active else self.host.candles
        assert c is not None
        default = utc_text(
            self.time_ms if self.time_ms is not None else int(c.close_time[max(len(c) - 289, 0)])
        )
        text, ok = QtWidgets.QInputDialog.getText(
            self.host.chart, "Replay from",
            f"Start the replay at (UTC, e.g. 2025-10-10 20:30; data {utc_text(int(c.open_time[0]))} – "
            f"{utc_text(int(c.close_time[-1]))}):", text=default,
        )  # fmt: skip
        if ok and text.strip():
            self.start_at_text(text)

    def start_at_text(self, text: str) -> bool:
        from liqdesk.errors import ConfigError
        from liqdesk.feeds.timeparse import parse_time

        try:
            at = parse_time(text.strip().replace(" ", "T", 1), what="replay start")
        except ConfigError as exc:
            self.host.flash(str(exc))
            return False
        return self.start_at_time(at)

    def start_at_time(self, at_ms: int) -> bool:
        """Start (or jump) at the instant `at_ms`: the bars closed by then."""
        history = self.history if self.active else self.host.candles
        if history is None or not len(history):
            return False
        n = bars_closed_by(history, at_ms)
        if n < 1:
            self.host.flash(f"replay: no bar closed by {utc_text(at_ms)} UTC in the loaded data")
            return False
        self.start_at_bar(n)
        return True

    def start_at_bar(self, bars: int) -> None:
        """Show the first `bars` bars of the loaded ones (begins the replay when not running)."""
        if not self.active and not self._begin():
            return
        assert self.history is not None
        bars = int(np.clip(bars, 1, len(self.history)))
        self._seek(bars, keep_view=False)

    def _can_start(self) -> bool:
        c, m = self.host.candles, self.host.market
        if m is None or c is None or len(c) < 2:
            self.host.flash("replay: no market with bars to replay")
            return False
        return True

    def _begin(self) -> bool:
        h = self.host
        if not self._can_start():
            return False
        assert h.candles is not None and h.market is not None
        try:
            params = h.params()
        except Exception as exc:
            h.flash(f"replay: {exc}")
            return False
        self.active = True
        self.history = h.candles
        self._live = h.candles
        self._live_price = None
        self._box = _SessionBox(h.candles, h.market, params)
        s = h.settings
        self._live_levels = (s.lock_levels, s.levels)
        if s.lock_levels:
            # live levels were set on data after the replay's instant: taken again from the replay's frame
            s.levels = None
        h.lines.begin_sandbox()
        h.alerts.tag = "REPLAY"
        self.step_times_ms.clear()
        return True

    # ------------------------------------------------------------------ moves

    def step(self, bars: int = 1) -> None:
        """Forward by `bars` bars (each drawn and alerted as it closes)."""
        if not self.active or self.history is None or bars <= 0:
            return
        target = min(self.bars + bars, len(self.history))
        if target - self.bars > MAX_STEPPED:
            self._seek(target, keep_view=True)
            return
        count = target - self.bars
        if count <= 0:
            return
        for _ in range(count):
            self._show_bar()
        assert self._box is not None
        self.host.frames.send_step(self._box.step, count)  # one worker job, one frame
        self._after_move()

    def step_back(self, bars: int = 1) -> None:
        if not self.active or bars <= 0:
            return
        self.pause()
        self._seek(max(self.bars - bars, 1), keep_view=True)

    def play(self) -> None:
        if not self.active:
            self.host.flash("replay: choose a start first (Replay → Choose start, Alt+R)")
            return
        if self.at_end:
            self.host.flash("replay: at the newest loaded bar")
            return
        self._clock = PlayClock(self.speed)
        self._clock.start(time.monotonic())
        self._timer.start(self._clock.interval_ms())
        self.changed.emit()

    def pause(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            self.changed.emit()

    def toggle_play(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def set_speed(self, bars_per_s: float) -> None:
        self.speed = float(np.clip(bars_per_s, SPEEDS[0], SPEEDS[-1]))
        if self.playing:
            self.play()  # the clock starts again at the new speed
        else:
            self.changed.emit()

    def faster(self) -> None:
        self.set_speed(next((s for s in SPEEDS if s > self.speed), SPEEDS[-1]))

    def slower(self) -> None:
        self.set_speed(next((s for s in reversed(SPEEDS) if s < self.speed), SPEEDS[0]))

    def _tick(self) -> None:
        due = self._clock.due(time.monotonic())
        if due:
            self.step(due)
        if self.at_end:
            self.pause()
            self.host.flash("replay: reached the newest loaded bar (Back to live: Alt+L)")

    def _show_bar(self) -> None:
        h, history = self.host, self.history
        assert history is not None
        t0 = time.perf_counter()
        j = self.bars
        row = history.take(slice(j, j + 1))
        self.bars = j + 1
        h.candles = history.take(slice(0, self.bars))
        h.chart.update_last_bar(row, append=True)
        h.context.update_bar(h.candles, appended=True)
        self._bar_liquidations(int(row.open_time[0]), int(row.close_time[0]))
        self._bar_path(row)
        self.step_times_ms.append((time.perf_counter() - t0) * 1000.0)
        del self.step_times_ms[:-2000]

    def _seek(self, bars: int, keep_view: bool) -> None:
        h, box, history = self.host, self._box, self.history
        assert box is not None and history is not None
        old_view = h.chart.visible_bars()
        self.bars = bars
        cut = history.take(slice(0, bars))
        h.candles = cut
        h.chart.set_candles(cut)
        h.context.load_bars(cut)  # the real liquidations before the instant are drawn again
        width = old_view[1] - old_view[0]
        if not keep_view or not (old_view[0] <= bars - 1 <= old_view[1]):
            end = bars - 1 + max(3.0, width * 0.04)
            h.chart.price_vb.setXRange(end - width, end, padding=0)
        h.chart.fit_y()  # the price axis from the replayed bars only
        h.frames.adopt(lambda: box.seek(bars))
        price, t = float(cut.close[-1]), int(cut.close_time[-1])
        h.alerts.rebase(price)  # a jump is not a crossing
        h.show_price(price, t)
        self._after_move()

    def _after_move(self) -> None:
        h = self.host
        assert self.history is not None
        h.chart.set_times(h.candles.open_time if h.candles is not None else self.history.open_time,
                          self.history.interval_ms)  # fmt: skip
        self.changed.emit()

    def _bar_liquidations(self, start_ms: int, end_ms: int) -> None:
        m = self.host.market
        if m is None or not len(m.liquidations):
            return
        liq = m.liquidations
        inside = (liq.time >= start_ms) & (liq.time < end_ms)
        if inside.any():
            self.host.markers.add(liq.take(inside))

    def _bar_path(self, row: Candles) -> None:
        """The bar's prices in the order they most likely came (open, the far extreme first, close): a line
        the bar went through alerts even when the close is back on the same side."""
        o, hi, lo, c = float(row.open[0]), float(row.high[0]), float(row.low[0]), float(row.close[0])
        t0, t1 = int(row.open_time[0]), int(row.close_time[0])
        path = (o, lo, hi, c) if c >= o else (o, hi, lo, c)
        for i, p in enumerate(path):
            self.host.show_price(p, t0 + (t1 - t0) * i // 3)

    # ------------------------------------------------------------------ the live feed while replaying

    def hold_bar(self, row: Candles) -> None:
        """A live bar that came during the replay: kept, shown when the replay ends."""
        live = self._live
        if live is None or len(row) != 1 or row.interval_ms != live.interval_ms:
            return
        t, last = int(row.open_time[0]), int(live.open_time[-1])
        if t < last:
            return
        self._live = live.take(slice(0, len(live) - 1)).concat(row) if t == last else live.concat(row)

    def hold_price(self, price: float, time_ms: int) -> None:
        self._live_price = (price, time_ms)

    # ------------------------------------------------------------------ end

    def stop(self, keep_lines: bool | None = None) -> None:
        """Back to live: the live bars (with those that came meanwhile), the live engine, the lines kept or put
        back (`keep_lines` None: ask when the lines changed in replay)."""
        self.cancel_pick()
        if not self.active:
            return
        self.pause()
        h = self.host
        if keep_lines is None:
            keep_lines = h.lines.sandbox_changed() and self._ask_keep_lines()
        self.active = False
        live = self._live
        self._box = None
        self.history = None
        self.bars = 0
        h.alerts.tag = ""
        h.lines.end_sandbox(keep_lines)
        lock, levels = self._live_levels
        h.settings.lock_levels, h.settings.levels = lock, levels
        h.status.notice.setStyleSheet("")
        if live is not None:
            h.show_live(live)
            price, t = float(live.close[-1]), int(live.close_time[-1])
            if self._live_price is not None:
                price, t = self._live_price
            h.alerts.rebase(price)
            h.show_price(price, t)
        self.changed.emit()

    def abandon(self) -> None:
        """The pane closes: the replay stops where it is and the lines from before it are put back unwritten."""
        self.pause()
        if self.active:
            self.host.lines.end_sandbox(False)
            self.active = False

    def _ask_keep_lines(self) -> bool:
        box = QtWidgets.QMessageBox(self.host.chart)
        box.setWindowTitle("End replay")
        box.setText("Keep the lines drawn or moved during the replay?")
        box.setInformativeText("Discard puts back the live lines as they were before the replay.")
        keep = box.addButton("Keep replay lines", QtWidgets.QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Discard", QtWidgets.QMessageBox.ButtonRole.RejectRole)
        box.exec()
        return box.clickedButton() is keep

    # ------------------------------------------------------------------ what the window asks

    def rebuild(self) -> None:
        """The model parameters changed: the replay's engine again, at the same bar."""
        if not self.active or self._box is None:
            return
        box = self._box
        try:
            box.params = self.host.params()
        except Exception as exc:
            self.host.flash(f"replay: {exc}")
            return
        box.session = None  # made again with the new parameters, on the worker
        bars = self.bars
        self.host.frames.adopt(lambda: box.seek(bars))


class ReplayBanner(QtWidgets.QLabel):
    """The REPLAY banner over the chart's top edge, in a colour nothing else uses."""

    def __init__(self, chart: ChartWidget, controller: ReplayController) -> None:
        super().__init__(chart)
        self.chart, self.controller = chart, controller
        self.setStyleSheet(REPLAY_STYLE + "font-size: 13px;")
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.hide()
        controller.changed.connect(self.follow)
        chart.installEventFilter(self)

    def follow(self) -> None:
        text = self.controller.state_text()
        self.setText(text)
        self.setVisible(bool(text))
        if text:
            self.adjustSize()
            self.place()
            self.raise_()

    def place(self) -> None:
        self.move(max((self.chart.width() - self.width()) // 2, 0), 6)

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:  # noqa: N802
        if ev.type() == QtCore.QEvent.Type.Resize and self.isVisible():
            self.place()
        return False


class ReplayToolbar(QtWidgets.QToolBar):
    """Step back, play/pause, step, speed, go to a time, back to live; shown while choosing or replaying."""

    def __init__(self, controller: ReplayController, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Replay", parent)
        self.setObjectName("ReplayToolbar")
        self.controller = controller
        self.label = QtWidgets.QLabel(" REPLAY ")
        self.label.setStyleSheet(REPLAY_STYLE)
        self.addWidget(self.label)
        self.back_button = self._button("◀ Back", controller.step_back, "One bar back (Alt+Left)")
        self.play_button = self._button("▶ Play", controller.toggle_play, "Play / pause (Shift+Space)")
        self.step_button = self._button("Step ▶", controller.step, "One bar forward (Alt+Right)")
        self.speed_box = QtWidgets.QComboBox()
        for s in SPEEDS:
            self.speed_box.addItem(f"{s} bars/s", s)
        self.speed_box.setToolTip("Play speed (Alt+Up / Alt+Down)")
        self.speed_box.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.speed_box.activated.connect(lambda i: controller.set_speed(float(self.speed_box.itemData(i))))
        self.addWidget(self.speed_box)
        self._button("Start…", controller.choose_start, "Choose the start on the chart (Alt+R)")
        self._button("Go to time…", controller.ask_time, "Jump to a time (Alt+Shift+R)")
        self._button("Back to live", lambda: controller.stop(), "End the replay (Alt+L)")
        self.time_label = QtWidgets.QLabel("")
        self.addWidget(self.time_label)
        controller.changed.connect(self.follow)
        self.follow()

    def _button(self, text: str, slot: Callable[[], object], tip: str) -> QtWidgets.QToolButton:
        b = QtWidgets.QToolButton()
        b.setText(text)
        b.setToolTip(tip)
        b.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        b.clicked.connect(lambda _c=False: slot())
        self.addWidget(b)
        return b

    def follow(self) -> None:
        c = self.controller
        self.setVisible(c.active or c.picking)
        self.play_button.setText("❚❚ Pause" if c.playing else "▶ Play")
        i = self.speed_box.findData(int(c.speed))
        if i >= 0:
            self.speed_box.setCurrentIndex(i)
        for b in (self.back_button, self.play_button, self.step_button):
            b.setEnabled(c.active)
        t = c.time_ms
        if t is None or c.history is None:
            self.time_label.setText("")
            return
        opened = utc_text(int(c.history.open_time[c.bars - 1]))[-5:]
        self.time_label.setText(
            f"  the {opened} bar has closed: {utc_text(t)} UTC · bar {c.bars:,} of {len(c.history):,}"
        )


def build_replay_menu(window: QtWidgets.QMainWindow, controller: ReplayController) -> QtWidgets.QMenu:
    """The pane's Replay menu (its shortcuts work while the menu bar is hidden)."""
    menu = window.menuBar().addMenu("Replay")
    c = controller
    add_action(window, menu, "Choose start on the chart", c.choose_start, "Alt+R",
               "Click a bar: the chart as it stood when that bar closed")  # fmt: skip
    add_action(window, menu, "Replay from time…", c.ask_time, "Alt+Shift+R")
    menu.addSeparator()
    add_action(window, menu, "Play / pause", c.toggle_play, "Shift+Space")
    add_action(window, menu, "Step one bar", c.step, "Alt+Right")
    add_action(window, menu, "Step one bar back", c.step_back, "Alt+Left")
    add_action(window, menu, "Faster", c.faster, "Alt+Up")
    add_action(window, menu, "Slower", c.slower, "Alt+Down")
    menu.addSeparator()
    add_action(window, menu, "Back to live", lambda: c.stop(), "Alt+L",
               "End the replay; choose whether the lines drawn in it are kept")  # fmt: skip
    return menu


def install_toolbar_button(toolbar: QtWidgets.QToolBar, menu: QtWidgets.QMenu) -> None:
    """A "Replay ▾" button on the pane's toolbar with the Replay menu."""
    button = QtWidgets.QToolButton()
    button.setText("Replay ▾")
    button.setToolTip("Bar replay: the chart as it stood at a past bar, stepped or played (Alt+R)")
    button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
    button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
    button.setMenu(menu)
    toolbar.addWidget(button)

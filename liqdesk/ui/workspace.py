"""The desktop product around the chart: tabs of chart panes, one menu bar, the state file, theme, dialogs.

``Workspace`` is the top-level window. Each tab is a ``MainWindow`` (a chart pane with its own symbol, timeframe,
worker and, in the app, its own ``LiveController``); the panes' own menu bars are hidden and the workspace's
menu bar shows the current pane's menus (File, Lines, Alerts) followed by Tabs, View and Help, so there is one
menu bar acting on the current tab.

State (liqdesk.feeds.state): loaded once by the caller (tolerantly; its warnings are shown once, in the status
bar of the first pane), applied to the panes, and written back debounced after a change and on close. Writes are
read-modify-write of the state file, so lines, alerts and capture preferences written by other parts stay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PySide6 import QtCore, QtGui, QtWidgets

from liqdesk.feeds.state import AppState, load_state, save_state
from liqdesk.ui import data as data_mod
from liqdesk.ui import theme
from liqdesk.ui.actions import add_action
from liqdesk.ui.dialogs import AboutDialog, SettingsDialog, ShortcutsDialog
from liqdesk.ui.gui_gc import collect_on_gui_thread
from liqdesk.ui.screener_dock import install_screener
from liqdesk.ui.state_settings import model_overrides, settings_from_state
from liqdesk.ui.symbol_search import SymbolSearch
from liqdesk.ui.view_settings import DEFAULT_PRESET
from liqdesk.ui.window import MainWindow, ViewSettings

log = logging.getLogger(__name__)

SAVE_DELAY_MS = 800
MAX_TABS = 16
# Keys handled in MainWindow.keyPressEvent (not QActions): listed in Help → Keyboard shortcuts.
CHART_KEYS = [
    ("Pan left / right", "Left / Right"),
    ("Zoom in / out", "+ / -"),
    ("Back to the newest bar and follow it (or the Go live button)", "End"),
    ("Reset the view to the chosen range", "Home"),
    ("Nudge the selected line by one tick (×10 with Shift)", "Up / Down"),
    ("Delete the selected line", "Backspace"),
    ("Deselect the line", "Esc"),
    ("Reset the view", "Double-click on the chart"),
    ("Add a line at the mouse", "Right-click on the chart"),
]


class PaneController(Protocol):
    """What streams a pane's market (the app's LiveController)."""

    @property
    def mode(self) -> str: ...

    @property
    def cache_path(self) -> Path | None: ...

    def start(self) -> None: ...

    def detach(self) -> None: ...

    async def close(self, timeout_s: float = 5.0) -> None: ...


@dataclass
class Pane:
    window: MainWindow
    controller: PaneController | None = None  # None: sample or files, nothing streams
    exchange: str = "binanceusdm"


# (pane spec from the state file, view settings) -> (the pane's window, its controller or None)
PaneFactory = Callable[[dict[str, Any], ViewSettings], tuple[MainWindow, PaneController | None]]


class Workspace(QtWidgets.QMainWindow):
    """Tabs of chart panes; one menu bar; the state file; theme; settings, shortcuts and about dialogs."""

    pane_added = QtCore.Signal(object)  # Pane
    state_saved = QtCore.Signal()

    def __init__(self, factory: PaneFactory, state: AppState | None = None, *, state_path: Path | None = None,
                 persist: bool = True) -> None:  # fmt: skip
        super().__init__()
        from liqdesk import __version__
        from liqdesk.ui.icons import app_icon

        collect_on_gui_thread()

        self.factory = factory
        self.state_path = state_path
        self.persist = persist
        self.state = state if state is not None else load_state(state_path)
        self.started = False  # set by the app once the event loop runs: new panes' controllers start at once
        self.closing: list[asyncio.Future[Any]] = []  # controllers of closed tabs, closing
        self.panes: list[Pane] = []
        self.recent_markets: list[tuple[str, str]] = []  # opened from the symbol search, newest first
        self.symbol_search: SymbolSearch | None = None
        self.settings_dialog: SettingsDialog | None = None
        self._closing_pane: MainWindow | None = None
        self._last_saved: str = ""
        self.setWindowTitle(f"liqdesk {__version__} — liquidation heatmap")
        self.setWindowIcon(app_icon())
        theme.set_theme(self.state.get("appearance", "theme"))
        self.setStyleSheet(theme.stylesheet())

        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(True)
        self.tabs.tabCloseRequested.connect(lambda i: self.close_tab(i))
        self.tabs.currentChanged.connect(self._on_current_changed)
        self.tabs.tabBar().tabMoved.connect(lambda *_: self.schedule_save())
        new_button = QtWidgets.QToolButton()
        new_button.setText("+")
        new_button.setToolTip("New tab (Ctrl+T)")
        new_button.setAutoRaise(True)
        new_button.clicked.connect(lambda: self.new_tab())
        self.tabs.setCornerWidget(new_button, QtCore.Qt.Corner.TopRightCorner)
        self.setCentralWidget(self.tabs)

        self._save_timer = QtCore.QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(SAVE_DELAY_MS)
        self._save_timer.timeout.connect(self.save)
        self._build_actions()
        self.screener = install_screener(
            self, self.view_menu, data_mod.params_for(DEFAULT_PRESET), self.show_symbol,
            offline=lambda: all(p.window.market is None or p.window.market.offline for p in self.panes),
        )  # fmt: skip
        self.pane_added.connect(
            lambda p: self.screener.add_tab(p.window.context, lambda: p.window.replay.active)
        )

        for spec in self.state.data["panes"]:
            self._add_pane(spec)
        self.tabs.setCurrentIndex(min(int(self.state.get("window", "current_tab")), self.tabs.count() - 1))
        self._restore_geometry()
        self._rebuild_menu_bar()
        self._show_state_warnings()

    # ------------------------------------------------------------------ panes
    @property
    def current(self) -> MainWindow:
        w = self.tabs.currentWidget()
        assert isinstance(w, MainWindow)
        return w

    def pane_of(self, window: MainWindow) -> Pane:
        return next(p for p in self.panes if p.window is window)

    def current_settings(self) -> ViewSettings:
        return self.current.settings

    def current_exchange(self) -> str:
        return self.pane_of(self.current).exchange

    def cache_path(self) -> Path:
        """The cache file the tabs use (their controllers', else the default one)."""
        from liqdesk.feeds.cache import default_path

        for p in self.panes:
            path = p.controller.cache_path if p.controller is not None else None
            if path is not None:
                return path
        return default_path()

    def _add_pane(self, spec: dict[str, Any]) -> Pane:
        settings = settings_from_state(self.state, spec)
        window, controller = self.factory(spec, settings)
        window.setWindowFlags(QtCore.Qt.WindowType.Widget)
        window.menuBar().setVisible(False)  # the workspace's menu bar shows its menus
        if self.state.get("appearance", "theme") != window.settings.theme:
            window.apply_theme(self.state.get("appearance", "theme"))
        window.set_model_overrides(model_overrides(self.state))
        pane = Pane(window, controller, str(spec.get("exchange", "binanceusdm")))
        self.panes.append(pane)
        window.installEventFilter(self)
        self.tabs.addTab(window, self._tab_title(window))
        bar = window.toolbar
        for box in (bar.symbol_box, bar.timeframe_box, bar.range_box, bar.preset_box, bar.colormap_box,
                    bar.transform_box):  # fmt: skip
            box.activated.connect(lambda *_: self.schedule_save())
        for check in (bar.lock_box, bar.utc_box):
            check.toggled.connect(lambda *_: self.schedule_save())
        window.frame_applied.connect(lambda _f, w=window: self._on_pane_frame(w))
        if self.started and controller is not None:
            controller.start()
        self.pane_added.emit(pane)
        return pane

    def new_tab(self, symbol: str | None = None, timeframe: str | None = None) -> Pane | None:
        """A new chart pane: the given symbol, else the first watched symbol not open yet."""
        if len(self.panes) >= MAX_TABS:
            self.current.flash(f"at most {MAX_TABS} tabs")
            return None
        cur = self.current
        if symbol is None:
            open_ = {p.window.settings.symbol for p in self.panes}
            symbol = next((s for s in cur.source.symbols() if s not in open_), cur.settings.symbol)
        spec = {"exchange": self.pane_of(cur).exchange, "symbol": symbol,
                "timeframe": timeframe or cur.settings.timeframe, "range": cur.settings.range_name}  # fmt: skip
        pane = self._add_pane(spec)
        self.tabs.setCurrentWidget(pane.window)
        self.schedule_save()
        return pane

    def open_market(self, exchange: str, symbol: str) -> Pane | None:
        """A new tab on a market of one venue, or of several (a comma list: aggregated)."""
        if len(self.panes) >= MAX_TABS:
            self.current.flash(f"at most {MAX_TABS} tabs")
            return None
        cur = self.current
        self.recent_markets = [(exchange, symbol)] + [
            k for k in self.recent_markets if k != (exchange, symbol)
        ]
        spec = {"exchange": exchange, "symbol": symbol, "timeframe": cur.settings.timeframe,
                "range": cur.settings.range_name}  # fmt: skip
        pane = self._add_pane(spec)
        self.tabs.setCurrentWidget(pane.window)
        self.schedule_save()
        return pane

    def open_symbol_search(self) -> SymbolSearch:
        """The symbol search over the venues' cached market lists (recent and open markets first)."""
        from liqdesk.feeds.market_list import load_market_lists

        recent = self.recent_markets + [(p.exchange, p.window.settings.symbol) for p in self.panes]
        watched = [(self.current_exchange(), s) for s in self.current.source.symbols()]
        dialog = SymbolSearch(self, load_market_lists(), self.open_market, recent, watched)
        dialog.show()
        self.symbol_search = dialog
        return dialog

    def show_symbol(self, symbol: str) -> bool:
        """The tab showing `symbol`, else a new tab of it (the screener's double-click); False when this workspace
        has no data source for it."""
        for p in self.panes:
            if p.window.settings.symbol == symbol and p.window.market is not None:
                self.tabs.setCurrentWidget(p.window)
                return True
        if symbol not in self.current.source.symbols():
            self.current.flash(
                f"{symbol}: not offered here (open it with liqdesk --symbol, or --sample for a sample)"
            )
            return False
        return self.new_tab(symbol) is not None

    def close_tab(self, index: int | None = None) -> bool:
        """Close a tab (the current one by default); the last tab stays."""
        index = self.tabs.currentIndex() if index is None else index
        if self.tabs.count() <= 1:
            self.current.flash("the last tab stays open (Ctrl+Q quits)")
            return False
        window = self.tabs.widget(index)
        assert isinstance(window, MainWindow)
        pane = self.pane_of(window)
        self.panes.remove(pane)
        if pane.controller is not None:
            pane.controller.detach()  # nothing it still does may reach the window being deleted
        self.tabs.removeTab(index)
        self._closing_pane = window
        window.close()  # its closeEvent stops its worker and writes pending lines
        self._closing_pane = None
        if pane.controller is not None:
            with contextlib.suppress(RuntimeError):  # no running loop (tests without qasync)
                self.closing.append(asyncio.ensure_future(pane.controller.close()))
        window.deleteLater()
        self.schedule_save()
        return True

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:  # noqa: N802
        # A pane closed by itself (its Quit, a test closing "the window"): the app ends, as it did without tabs.
        if (
            ev.type() == QtCore.QEvent.Type.Close
            and isinstance(obj, MainWindow)
            and obj is not self._closing_pane
        ):
            QtCore.QTimer.singleShot(0, self.close)
        return False

    def flash(self, text: str) -> None:
        """A message in the current tab's status bar (the app's loop exception handler uses it)."""
        if self.tabs.count():
            self.current.flash(text)

    def _tab_title(self, w: MainWindow) -> str:
        return f"{w.settings.symbol.split(':')[0]} · {w.settings.timeframe}"

    def _update_title(self) -> None:
        from liqdesk import __version__

        if self.tabs.count():
            s = self.current.settings
            self.setWindowTitle(f"{s.symbol} {s.timeframe} — liqdesk {__version__}")

    def _on_pane_frame(self, w: MainWindow) -> None:
        i = self.tabs.indexOf(w)
        if i >= 0:
            title = self._tab_title(w)
            if self.tabs.tabText(i) != title:
                self.tabs.setTabText(i, title)
                self._update_title()
                self.schedule_save()
            tip = w.status.source_label.text()
            if self.tabs.tabToolTip(i) != tip:
                self.tabs.setTabToolTip(i, tip)
        if w is self.tabs.currentWidget():
            self.schedule_save()  # cheap: written only when something changed

    def _on_current_changed(self, _index: int) -> None:
        if self.tabs.count():
            self._rebuild_menu_bar()
            self._update_title()
            self.schedule_save()

    # ------------------------------------------------------------------ menus
    def _build_actions(self) -> None:
        self.tabs_menu = QtWidgets.QMenu("Tabs", self)
        add_action(
            self, self.tabs_menu, "New tab", self.new_tab, "Ctrl+T", "A chart of another symbol in a new tab"
        )
        add_action(self, self.tabs_menu, "Open symbol…", self.open_symbol_search, "Ctrl+K",
                   "Search every venue's markets (cached): one venue, or the coin on every venue aggregated")  # fmt: skip
        add_action(self, self.tabs_menu, "Close tab", self.close_tab, "Ctrl+W")
        add_action(self, self.tabs_menu, "Next tab", lambda: self._step_tab(1), "Ctrl+PgDown")
        add_action(self, self.tabs_menu, "Previous tab", lambda: self._step_tab(-1), "Ctrl+PgUp")
        self.view_menu = QtWidgets.QMenu("View", self)
        add_action(self, self.view_menu, "Settings…", self.open_settings, "Ctrl+,",
                  "Model parameters and presets, exchange options and cache, appearance")  # fmt: skip
        self.view_menu.addSeparator()
        group = QtGui.QActionGroup(self)
        self.theme_actions: dict[str, QtGui.QAction] = {}
        for name, label in (("dark", "Dark theme"), ("light", "Light theme")):
            a = QtGui.QAction(label, self, checkable=True)
            a.setChecked(name == self.state.get("appearance", "theme"))
            a.triggered.connect(lambda _c=False, n=name: self.set_theme(n))
            group.addAction(a)
            self.view_menu.addAction(a)
            self.theme_actions[name] = a
        add_action(self, self.view_menu, "Toggle dark / light", self.toggle_theme, "Ctrl+Shift+L")
        self.help_menu = QtWidgets.QMenu("Help", self)
        add_action(self, self.help_menu, "Keyboard shortcuts", self.open_shortcuts, "F1")
        add_action(self, self.help_menu, "About liqdesk", self.open_about)

    def _rebuild_menu_bar(self) -> None:
        bar = self.menuBar()
        bar.clear()
        if self.tabs.count():
            for action in self.current.menuBar().actions():  # the pane's File, Lines, Alerts
                bar.addAction(action)
        for menu in (self.tabs_menu, self.view_menu, self.help_menu):
            bar.addMenu(menu)

    def _step_tab(self, step: int) -> None:
        n = self.tabs.count()
        if n:
            self.tabs.setCurrentIndex((self.tabs.currentIndex() + step) % n)

    def all_actions(self) -> list[tuple[str, str, str]]:
        """(menu, action, shortcut) of every QAction reachable from the menu bar, then the chart's keys."""
        rows: list[tuple[str, str, str]] = []

        def walk(menu: QtWidgets.QMenu, path: str) -> None:
            for a in menu.actions():
                if a.isSeparator():
                    continue
                if a.menu() is not None:
                    walk(a.menu(), f"{path} › {a.text()}")  # type: ignore[arg-type]
                    continue
                keys = ", ".join(
                    k.toString(QtGui.QKeySequence.SequenceFormat.NativeText) for k in a.shortcuts()
                )
                rows.append((path, a.text().replace("&", ""), keys))

        for top in self.menuBar().actions():
            if top.menu() is not None:
                walk(top.menu(), top.text().replace("&", ""))  # type: ignore[arg-type]
        rows += [("Chart", what, key) for what, key in CHART_KEYS]
        return rows

    # ------------------------------------------------------------------ theme and settings
    def set_theme(self, name: str) -> None:
        theme.set_theme(name)
        self.setStyleSheet(theme.stylesheet(name))
        for p in self.panes:
            p.window.apply_theme(name)
        self.theme_actions[name].setChecked(True)
        self.state.set("appearance", "theme", name)
        if self.settings_dialog is not None and self.settings_dialog.isVisible():
            self.settings_dialog.refresh()
        self.schedule_save()

    def toggle_theme(self) -> None:
        self.set_theme("light" if theme.current_theme() == "dark" else "dark")

    def set_utc(self, on: bool) -> None:
        for p in self.panes:
            p.window.toolbar.utc_box.setChecked(on)  # toggled → set_utc
        self.schedule_save()

    def apply_model(self, *, preset: str | None = None, overrides: dict[str, Any] | None = None,
                    bins: int | None = None) -> None:  # fmt: skip
        """Model changes to every pane: the engines rebuild in the workers (never on the UI thread)."""
        for p in self.panes:
            w = p.window
            if overrides is not None:
                w.model_overrides = dict(overrides)
            if bins is not None:
                w.settings.max_bins = int(bins)
            if preset is not None and preset != w.settings.preset:
                w.use_preset(preset)  # rebuilds
            elif overrides is not None:
                w.rebuild_model()
            elif bins is not None:
                w.request_frame(force=True)
        self.schedule_save()

    def reload_presets(self) -> None:
        for p in self.panes:
            p.window.reload_presets()

    def open_settings(self) -> SettingsDialog:
        if self.settings_dialog is None:
            self.settings_dialog = SettingsDialog(self, self)
        self.settings_dialog.refresh()
        # Non-modal (the chart stays usable and shows each change): show(), returning at once. open() would
        # make it window-modal; exec() would nest an event loop inside qasync's, which qasync does not survive.
        self.settings_dialog.show()
        self.settings_dialog.raise_()
        self.settings_dialog.activateWindow()
        return self.settings_dialog

    def open_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self.all_actions(), self)
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()  # non-modal: a reference to keep open while working
        return dialog

    def open_about(self) -> AboutDialog:
        dialog = AboutDialog(self)
        dialog.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()  # window-modal, returns at once (never exec())
        return dialog

    # ------------------------------------------------------------------ state
    def _show_state_warnings(self) -> None:
        """The load's warnings, once: a label in the first pane's status bar (the list in its tooltip)."""
        warnings = list(self.state.warnings)
        self.warning_label = QtWidgets.QLabel("")
        self.warning_label.setObjectName("settingsWarning")
        self.warning_label.hide()
        if not warnings or not self.panes:
            return
        n = len(warnings)
        first = warnings[0].split(": ", 1)[-1]
        text = (
            f"⚠ settings: {first}"
            if n == 1
            else f"⚠ settings: {n} problems, defaults used (hover for details)"
        )
        self.warning_label.setText(text[:140])
        self.warning_label.setToolTip("\n".join(warnings))
        self.panes[0].window.statusBar().insertWidget(0, self.warning_label)
        self.warning_label.show()
        QtCore.QTimer.singleShot(60_000, self.warning_label.hide)

    def _restore_geometry(self) -> None:
        import base64

        geo = self.state.get("window", "geometry")
        restored = False
        if geo:
            with contextlib.suppress(ValueError):
                restored = self.restoreGeometry(QtCore.QByteArray(base64.b64decode(geo)))
        self.geometry_restored = restored
        if not restored:
            self.resize(1600, 900)
        dock = self.state.get("window", "dock_state")
        if dock and self.panes:
            with contextlib.suppress(ValueError):
                for p in self.panes:
                    p.window.restoreState(QtCore.QByteArray(base64.b64decode(dock)))

    def collect(self) -> None:
        """The current layout and settings into self.state."""
        import base64

        s = self.state
        cur = self.current
        v = cur.settings
        panes = []
        for i in range(self.tabs.count()):
            w = self.tabs.widget(i)
            assert isinstance(w, MainWindow)
            panes.append({"exchange": self.pane_of(w).exchange, "symbol": w.settings.symbol,
                          "timeframe": w.settings.timeframe, "range": w.settings.range_name})  # fmt: skip
        s.data["panes"] = panes
        s.set("window", "current_tab", self.tabs.currentIndex())
        s.set("window", "geometry", base64.b64encode(self.saveGeometry().data()).decode())
        s.set("window", "dock_state", base64.b64encode(cur.saveState().data()).decode())
        s.set("market", "exchange", self.pane_of(cur).exchange)
        for key, value in (("symbol", v.symbol), ("timeframe", v.timeframe), ("range", v.range_name)):
            with contextlib.suppress(ValueError):
                s.set("market", key, value)
        s.set("model", "preset", v.preset)
        s.set("colors", "colormap", v.colormap)
        s.set("colors", "transform", v.transform)
        s.set("colors", "levels_locked", bool(v.lock_levels))
        levels = [float(v.levels[0]), float(v.levels[1])] if v.lock_levels and v.levels else None
        with contextlib.suppress(ValueError):
            s.set("colors", "levels", levels)
        s.set("appearance", "utc", bool(v.utc))
        s.set("appearance", "actual_heat", bool(v.show_actual_heat))
        s.set("appearance", "theme", theme.current_theme())

    def schedule_save(self) -> None:
        if self.persist:
            self._save_timer.start()

    def save(self) -> None:
        """Write what changed (read-modify-write: lines and trader prefs written elsewhere stay)."""
        self._save_timer.stop()
        if not self.persist or not self.tabs.count():
            return
        self.collect()
        import json

        mine = {k: v for k, v in self.state.data.items() if k != "lines"}
        text = json.dumps(mine, sort_keys=True, default=str)
        if text == self._last_saved:
            return
        try:
            disk = load_state(self.state_path)
            for key, value in mine.items():
                if key in ("alerts", "capture"):  # written by the alert and capture code
                    continue
                disk.data[key] = value
            save_state(disk, self.state_path)
            self.state.source_version = disk.source_version
        except OSError as exc:
            self.current.flash(f"cannot save settings: {exc}")
            return
        self._last_saved = text
        self.state_saved.emit()

    def resizeEvent(self, ev: QtGui.QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(ev)
        self.schedule_save()

    def moveEvent(self, ev: QtGui.QMoveEvent) -> None:  # noqa: N802
        super().moveEvent(ev)
        self.schedule_save()

    def closeEvent(self, ev: QtGui.QCloseEvent) -> None:  # noqa: N802
        self.save()
        for p in self.panes:
            self._closing_pane = p.window
            p.window.close()
        self._closing_pane = None
        super().closeEvent(ev)

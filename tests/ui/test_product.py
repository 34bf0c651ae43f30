"""The desktop product: state round-trip through the real workspace, tolerant loading with a visible
warning, the settings dialog applying live, dark/light themes, tabs and their saved layout, Help and About,
and the window hooks the live controller uses (signals, incremental liquidation markers)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from liqdesk.core.series import LONG, SHORT, Liquidations
from liqdesk.ui import theme
from liqdesk.ui.data import SampleSource
from liqdesk.ui.session import wait_until_drawn
from liqdesk.ui.window import MainWindow, ViewSettings
from liqdesk.ui.workspace import Workspace

SYMBOLS = SampleSource().symbols()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    yield tmp_path / "config"
    theme.set_theme("dark")


def factory(spec: dict[str, Any], settings: ViewSettings) -> tuple[MainWindow, None]:
    return MainWindow(SampleSource(), settings), None


def open_ws(qapp: QtWidgets.QApplication) -> Workspace:
    ws = Workspace(factory)
    ws.show()
    for p in ws.panes:
        assert wait_until_drawn(p.window, 30.0)
    return ws


def settle(qapp: QtWidgets.QApplication, ms: int = 50) -> None:
    QtCore.QThread.msleep(ms)
    qapp.processEvents()


def test_state_round_trip_through_the_window(qapp: QtWidgets.QApplication, config: Path) -> None:
    ws = open_ws(qapp)
    w = ws.current
    assert w.settings.symbol == SYMBOLS[0]
    from liqdesk.ui.icons import app_icon

    icon = ws.windowIcon()  # the app's icon, not Qt's blank default
    assert not icon.isNull() and icon.pixmap(32, 32).toImage() == app_icon().pixmap(32, 32).toImage()
    # change what a trader changes: symbol, timeframe, preset, map transform, theme, UTC, window size
    w.toolbar.symbol_box.activated.emit(w.toolbar.symbol_box.findData(SYMBOLS[0]))
    w.toolbar.timeframe_box.activated.emit(w.toolbar.timeframe_box.findData("1h"))
    w.toolbar.preset_box.activated.emit(w.toolbar.preset_box.findData("high"))
    w.toolbar.transform_box.activated.emit(w.toolbar.transform_box.findData("log"))
    w.toolbar.utc_box.setChecked(True)
    w.menus.actual_heat_action.setChecked(True)  # sampled positions as the newest heatmap columns
    ws.set_theme("light")
    ws.resize(1111, 777)
    assert wait_until_drawn(w, 30.0)
    ws.close()
    saved = json.loads((config / "state.json").read_text())
    assert saved["version"] == 1 and saved["panes"][0]["timeframe"] == "1h"
    assert saved["model"]["preset"] == "high" and saved["appearance"] == {
        "theme": "light",
        "utc": True,
        "actual_heat": True,
    }
    assert saved["window"]["geometry"]

    theme.set_theme("dark")
    ws2 = open_ws(qapp)
    w2 = ws2.current
    s = w2.settings
    assert (s.symbol, s.timeframe, s.preset, s.transform, s.utc) == (SYMBOLS[0], "1h", "high", "log", True)
    assert w2.toolbar.timeframe_box.currentData() == "1h" and w2.toolbar.preset_box.currentData() == "high"
    assert s.show_actual_heat and w2.menus.actual_heat_action.isChecked()
    assert theme.current_theme() == "light" and theme.PALETTES["light"]["window"] in ws2.styleSheet()
    assert ws2.geometry_restored and abs(ws2.height() - 777) < 30  # (offscreen clamps it to its screen)
    assert not ws2.warning_label.isVisible()  # a good file: nothing to say
    ws2.close()


@pytest.mark.parametrize(
    "content, says",
    [
        ("{not json", "unreadable"),
        (
            json.dumps({"version": 1, "market": {"timeframe": "7m"}, "appearance": {"theme": "pink"}}),
            "2 problems",
        ),
        (json.dumps({"version": 99, "appearance": {"theme": "light"}, "future": {"x": 1}}), "newer liqdesk"),
    ],
    ids=["corrupt", "partial-bad", "future"],
)
def test_bad_state_files_open_with_defaults_and_a_warning(
    qapp: QtWidgets.QApplication, config: Path, content: str, says: str
) -> None:
    config.mkdir(parents=True)
    (config / "state.json").write_text(content)
    ws = open_ws(qapp)
    label = ws.warning_label
    assert label.isVisible() and label.text().startswith("⚠ settings")
    assert says in label.text() + label.toolTip()
    assert label.parent() is not None  # in the status bar of the first pane
    assert ws.current.settings.timeframe == "5m"  # defaults where the file was bad
    if "newer" in says:
        assert theme.current_theme() == "light"  # what it understood is used
    ws.save()
    assert json.loads((config / "state.json").read_text())["version"] == 1  # written again, current version
    if content.startswith("{not"):
        assert list(config.glob("state.json.corrupt-*"))  # kept aside
    ws.close()


def test_settings_dialog_applies_live(qapp: QtWidgets.QApplication, config: Path) -> None:
    ws = open_ws(qapp)
    w = ws.current
    d = ws.open_settings()
    assert d.isVisible() and not d.isModal()
    gen = w.frames.scheduler.data_generation
    d.preset_box.activated.emit(d.preset_box.findData("all"))  # preset change → rebuild in the worker
    assert w.frames.scheduler.data_generation == gen + 1 and w.settings.preset == "all"
    assert wait_until_drawn(w, 30.0)
    assert len(w.worker.engine.params.tiers) == 8  # type: ignore[union-attr]
    # model parameters: debounced, then the engine is rebuilt with them
    d.taker_floor.setValue(0.35)
    d.half_life.setValue(12.0)
    d._apply_model()
    assert w.params().taker_floor == pytest.approx(0.35) and w.params().half_life_h == pytest.approx(12.0)
    assert wait_until_drawn(w, 30.0)
    assert w.worker.engine.params.taker_floor == pytest.approx(0.35)  # type: ignore[union-attr]
    # custom tiers saved as a user preset (presets.json in the config dir) and selected
    d.tiers.setRowCount(0)
    d._add_tier_row("20", "60%")
    d._add_tier_row("75", "40%")
    d.preset_name.setText("mine")
    d.save_preset()
    presets = json.loads((config / "presets.json").read_text())
    assert presets["mine"]["tiers"] == {"20": 0.6, "75": 0.4}
    assert w.toolbar.preset_box.findData("mine") >= 0 and w.settings.preset == "mine"
    d.preset_name.setText("bad")
    d._add_tier_row("1", "x")
    d.save_preset()
    assert "not saved" in d.message.text()
    # exchange options: validated JSON
    d.options.setPlainText("[1, 2]")
    assert not d.save_options() and "must be a JSON object" in d.message.text()
    d.options.setPlainText('{"options": {"adjustForTimeDifference": true}}')
    assert d.save_options()
    assert json.loads((config / "config.json").read_text())["exchanges"]["binanceusdm"]["options"]
    # appearance: the theme switches the palette live
    before = w.chart.backgroundBrush().color().name()
    d.theme_light.setChecked(True)
    assert theme.current_theme() == "light" and w.chart.backgroundBrush().color().name() != before
    assert theme.PALETTES["light"]["window"] in w.styleSheet()
    axis = w.chart.price_plot.getAxis("right")
    assert axis.pen().isCosmetic() and axis.textPen().color().name() == theme.PALETTES["light"]["axis"]
    # the Model check panel follows too: its styles, the plot's frame and axes, the table's headings
    mc = w.model_check
    light = theme.PALETTES["light"]
    assert (
        light["warning_bg"] in mc.styleSheet() and theme.PALETTES["dark"]["warning_bg"] not in mc.styleSheet()
    )
    assert mc.plot.backgroundBrush().color().name() == light["window"]
    assert mc.plot.getPlotItem().getAxis("bottom").textPen().color().name() == light["axis"]
    headings = [mc.table.item(i, 0) for i in range(mc.table.rowCount()) if mc.table.columnSpan(i, 0) > 1]
    assert headings and all(h.foreground().color().name() == light["heading"] for h in headings)
    d.theme_dark.setChecked(True)
    assert theme.current_theme() == "dark"
    assert theme.PALETTES["dark"]["warning_bg"] in mc.styleSheet()
    d.close()
    ws.close()


def test_clear_cache_with_confirmation(qapp: QtWidgets.QApplication, config: Path, tmp_path: Path) -> None:
    from liqdesk.feeds.cache import Cache, default_path
    from liqdesk.feeds.venues.base import LiquidationRecord
    from liqdesk.ui.dialogs import SettingsDialog, cache_size

    with Cache() as cache:
        cache.put_liquidations([LiquidationRecord("binanceusdm", "BTC/USDT:USDT", 1_700_000_000_000, LONG,
                                                  60_000.0, 1.0, 60_000.0)])  # fmt: skip
    ws = open_ws(qapp)
    d = ws.open_settings()
    assert isinstance(d, SettingsDialog)
    assert d.cache_path.text() == str(default_path()) and "B" in d.cache_size.text()
    box = d.ask_clear_cache()
    assert box.isVisible()
    box.done(QtWidgets.QMessageBox.StandardButton.Cancel)  # cancelled: nothing deleted
    with Cache() as cache:
        assert cache.count("liquidations") == 1
    box = d.ask_clear_cache()
    box.done(QtWidgets.QMessageBox.StandardButton.Yes)
    deadline = time.monotonic() + 10  # cleared in a background thread; the UI keeps running
    while d.message.text() != "cache cleared" and time.monotonic() < deadline:
        qapp.processEvents()
        time.sleep(0.01)
    with Cache() as cache:
        assert cache.count("liquidations") == 0
    assert d.message.text() == "cache cleared" and cache_size(default_path()) > 0
    # another folder for the cache: checked, kept in the state file
    d.cache_dir.setText(str(tmp_path / "elsewhere"))
    assert d.set_cache_dir() and (tmp_path / "elsewhere").is_dir()
    ws.save()
    assert json.loads((config / "state.json").read_text())["data"]["cache_dir"] == str(tmp_path / "elsewhere")
    ws.close()


def test_tabs_layout_saved_and_restored(qapp: QtWidgets.QApplication, config: Path) -> None:
    ws = open_ws(qapp)
    assert ws.tabs.count() == 1 and not ws.current.menuBar().isVisible()
    pane = ws.new_tab(symbol=SYMBOLS[2])
    assert pane is not None and wait_until_drawn(pane.window, 30.0)
    assert ws.tabs.count() == 2 and ws.current is pane.window and pane.window.settings.symbol == SYMBOLS[2]
    assert ws.tabs.tabText(1).endswith("1h")
    # one menu bar, acting on the current tab: its File menu is the current pane's
    titles = [a.text() for a in ws.menuBar().actions()]
    assert titles[:3] == ["File", "Lines", "Alerts"] and titles[-3:] == ["Tabs", "View", "Help"]
    assert ws.menuBar().actions()[0] in pane.window.menuBar().actions()
    ws.new_tab(symbol=SYMBOLS[1])
    assert ws.tabs.count() == 3
    assert ws.close_tab(2) and ws.tabs.count() == 2
    ws.tabs.setCurrentIndex(1)
    ws.close()
    saved = json.loads((config / "state.json").read_text())
    assert [p["symbol"] for p in saved["panes"]] == [SYMBOLS[0], SYMBOLS[2]]
    assert saved["window"]["current_tab"] == 1

    ws2 = open_ws(qapp)
    assert [p.window.settings.symbol for p in ws2.panes] == [SYMBOLS[0], SYMBOLS[2]]
    assert ws2.tabs.currentIndex() == 1
    assert ws2.close_tab(0) and ws2.tabs.count() == 1
    assert [p.window.settings.symbol for p in ws2.panes] == [SYMBOLS[2]]
    assert not ws2.close_tab() and ws2.tabs.count() == 1  # the last tab stays
    ws2.close()


def test_help_lists_real_shortcuts_and_about_says_estimate(
    qapp: QtWidgets.QApplication, config: Path
) -> None:
    ws = open_ws(qapp)
    help_ = ws.open_shortcuts()
    listed = set(help_.shortcuts())  # type: ignore[attr-defined]
    native = QtGui.QKeySequence.SequenceFormat.NativeText
    real = {
        a.shortcut().toString(native)
        for a in ws.findChildren(QtGui.QAction) + ws.current.findChildren(QtGui.QAction)
        if not a.shortcut().isEmpty()
    }
    assert {"Ctrl+T", "Ctrl+W", "Alt+S", "Ctrl+S", "F1"} <= listed
    assert real <= listed  # every action with a shortcut is in the table
    about = ws.open_about()
    text = about.plain_text()  # type: ignore[attr-defined]
    from liqdesk import __version__

    assert "estimate" in text.lower() and __version__ in text and "PROVENANCE" in text
    assert "open interest" in text.lower() and "volume model" in text.lower() and "brackets" in text.lower()
    help_.close()
    about.close()
    ws.close()


def test_window_hooks_signals_and_incremental_markers(window: MainWindow) -> None:
    w = window
    asked: list[str] = []
    w.symbol_requested.connect(asked.append)
    w.timeframe_requested.connect(asked.append)
    w.market_controlled = True  # a controller answers: the window only announces
    try:
        tf = w.settings.timeframe
        w.toolbar.timeframe_box.activated.emit(w.toolbar.timeframe_box.findData("1h"))
        w.toolbar.symbol_box.activated.emit(0)
        assert asked == ["1h", w.toolbar.symbol_box.itemData(0)] and w.settings.timeframe == tf
    finally:
        w.market_controlled = False
        w.symbol_requested.disconnect(asked.append)
        w.timeframe_requested.disconnect(asked.append)
    c = w.candles
    assert c is not None
    before = len(w.chart.real_liqs.data)
    t = int(c.open_time[-5])

    def liqs(usd: list[float], dt: int = 0) -> Liquidations:
        n = len(usd)
        price = float(c.close[-5])
        return Liquidations(np.arange(n, dtype=np.int64) * 1000 + t + dt, np.array(["binanceusdm"] * n),
                            np.array(["BTC/USDT:USDT"] * n), np.array([LONG if i % 2 == 0 else SHORT for i in range(n)], np.int8),
                            np.full(n, price), np.ones(n), np.array(usd, float))  # fmt: skip

    w.add_liquidations(liqs([1e9]))  # the first/biggest: full draw, sets the size scale
    scale = w.markers.scale
    assert scale >= 1e9 and len(w.chart.real_liqs.data) == before + 1
    shown = w.add_liquidations(liqs([1e3, 2e3], dt=10_000))  # smaller: appended, nothing redrawn
    assert len(shown) == 2 and len(w.chart.real_liqs.data) == before + 3 and w.markers.scale == scale
    sizes = w.chart.real_liqs.data["size"][-2:]
    assert np.all(sizes >= 6.0) and np.all(sizes < 7.0)  # sized against the existing scale
    assert w.chart.real_liqs.data["brush"][-1] is w.markers.style()[1]  # cached brushes
    w.add_liquidations(liqs([5e9], dt=20_000))  # a new largest: everything redrawn at the new scale
    assert w.markers.scale == pytest.approx(5e9) and len(w.chart.real_liqs.data) == before + 4


def test_liqdesk_command_restores_its_tabs(qapp: QtWidgets.QApplication, config: Path) -> None:
    """`liqdesk --offline` end to end: a tab opened and a timeframe chosen come back at the next start."""
    import asyncio

    from liqdesk.app import desktop
    from liqdesk.app.cli import build_parser

    seen: dict[str, Any] = {}

    async def first(w: MainWindow, c: Any) -> None:
        await asyncio.sleep(0.05)
        w.toolbar.timeframe_box.activated.emit(
            w.toolbar.timeframe_box.findData("1h")
        )  # answered by the controller
        ws = w.window()
        assert isinstance(ws, Workspace)
        ws.new_tab(symbol="ETH/USDT:USDT")
        seen["tabs"] = ws.tabs.count()
        await asyncio.sleep(0.05)
        ws.close()

    assert desktop.run(build_parser().parse_args(["--offline"]), after_start=first) == 0
    saved = json.loads((config / "state.json").read_text())
    assert seen["tabs"] == 2 and [p["symbol"] for p in saved["panes"]] == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert saved["panes"][0]["timeframe"] == "1h"

    async def second(w: MainWindow, c: Any) -> None:
        await asyncio.sleep(0.05)
        ws = w.window()
        seen["again"] = [(p.window.settings.symbol, p.window.settings.timeframe) for p in ws.panes]
        seen["controllers"] = [p.controller.mode for p in ws.panes]
        QtWidgets.QApplication.quit()

    assert desktop.run(build_parser().parse_args(["--offline"]), after_start=second) == 0
    assert seen["again"][0] == ("BTC/USDT:USDT", "1h") and seen["again"][1][0] == "ETH/USDT:USDT"
    assert seen["controllers"] == ["sample", "sample"]


def test_two_live_tabs_each_with_its_controller(
    qapp: QtWidgets.QApplication, config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`liqdesk` against the loopback exchange: a second tab gets its own controller, goes live, and every
    controller (the closed tab's too) is closed at shutdown."""
    import warnings
    from dataclasses import replace

    from liqdesk.app import desktop
    from liqdesk.app.cli import build_parser
    from tests._live_helpers import SYMBOL
    from tests.ui.test_live_app import SETTINGS, ServerThread, drawn, until

    seen: dict[str, Any] = {}
    with ServerThread() as st:
        s = st.server
        args = build_parser().parse_args(["--symbol", SYMBOL, "--timeframe", "1h",
                                          "--ccxt-options", json.dumps(s.ccxt_options())])  # fmt: skip
        cfg = replace(desktop.config_from_args(args), feed=SETTINGS)

        async def drive(w: MainWindow, c: Any) -> None:
            await until(lambda: c.mode == "live", what="first tab live")
            ws = w.window()
            assert isinstance(ws, Workspace)
            second = ws.new_tab(symbol=SYMBOL, timeframe="1h")
            assert second is not None and second.controller is not c
            await until(lambda: second.controller.mode == "live", what="second tab live")
            await drawn(second.window)
            third = ws.new_tab(symbol=SYMBOL, timeframe="1h")
            assert third is not None
            ws.close_tab(ws.tabs.indexOf(third.window))
            seen["controllers"] = [c, second.controller, third.controller]
            seen["labels"] = [p.window.status.source_label.text() for p in ws.panes]
            ws.close()

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert desktop.run(args, clock=lambda: s.now_ms, config=cfg, after_start=drive) == 0
    assert all(lb.startswith("LIVE · Binance USD-M BTC/USDT:USDT 1h") for lb in seen["labels"])
    assert all(c.venue is None and c.cache is None and c.feed is None for c in seen["controllers"])
    assert not [x for x in caught if issubclass(x.category, ResourceWarning)]
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    saved = json.loads((config / "state.json").read_text())
    assert [(p["symbol"], p["timeframe"]) for p in saved["panes"]] == [(SYMBOL, "1h"), (SYMBOL, "1h")]

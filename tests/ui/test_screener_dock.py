"""The magnet screener dock: a row per watched market (the tabs' markets, the bundled samples offline) with the
same values `liqdesk screen` computes, sortable by any column, a live bar refreshing its market's row, a market
whose feed stopped marked STALE, a tab in replay not feeding it, and a double-click opening the market."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6 import QtWidgets

from liqdesk.core.market_watch import MarketWatch, WatchBudget
from liqdesk.core.screener import rank
from liqdesk.core.series import Candles
from liqdesk.feeds.sample import list_samples, load_sample
from liqdesk.ui.data import SampleSource, params_for
from liqdesk.ui.screener_dock import HEADERS
from liqdesk.ui.session import wait_until_drawn
from liqdesk.ui.view_settings import DEFAULT_PRESET
from liqdesk.ui.window import MainWindow
from liqdesk.ui.workspace import Workspace
from tests.ui.conftest import dispose


@pytest.fixture
def workspace(qapp: QtWidgets.QApplication, config_dir: Path) -> Iterator[Any]:
    ws = Workspace(lambda spec, settings: (MainWindow(SampleSource(), settings), None), persist=False)
    ws.resize(1500, 1000)
    ws.show()
    assert wait_until_drawn(ws.current, 60.0)
    yield ws
    dispose(ws)


def wait_rows(dock: Any, cond: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        QtWidgets.QApplication.processEvents()
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"rows not as expected: {[r.market for r in dock.rows]}")


def cells(dock: Any) -> list[list[str]]:
    t = dock.table
    return [[t.item(i, j).text() for j in range(t.columnCount())] for i in range(t.rowCount())]


def test_offline_the_samples_are_screened_as_liqdesk_screen_does(workspace: Any) -> None:
    dock = workspace.screener
    assert not dock.isVisible()
    dock.toggle_action.trigger()
    assert dock.isVisible()
    names = {f"sample {n}" for n in list_samples()}
    wait_rows(dock, lambda: {r.market for r in dock.rows} == names and dock.table.rowCount() == len(names))
    # the reference: a MarketWatch of the same budget on each sample, as `liqdesk screen --sample` makes
    ref = MarketWatch(params_for(DEFAULT_PRESET), WatchBudget())
    for n in list_samples():
        s = load_sample(n)
        ref.load(f"sample {n}", s.exchange, s.symbol, s.candles, s.open_interest, now_ms=0)
    expected = {r.market: r for r in ref.rows(0)}
    for r in dock.rows:
        e = expected[r.market]
        assert (r.price, r.nearest_long, r.nearest_short, r.largest, r.model) == (
            e.price, e.nearest_long, e.nearest_short, e.largest, e.model,
        )  # fmt: skip
    table = cells(dock)
    assert [row[0] for row in table] == [r.market for r in rank(dock.rows)]  # largest cluster first
    assert all(row[-1].startswith("offline · to") for row in table)  # samples are not stale
    assert len(table[0]) == len(HEADERS)


def test_sorting_by_header(workspace: Any) -> None:
    dock = workspace.screener
    dock.toggle_action.trigger()
    wait_rows(dock, lambda: dock.table.rowCount() == len(list_samples()))
    col = next(i for i, h in enumerate(HEADERS) if h[1] == "long_dist")
    dock.table.horizontalHeader().sectionClicked.emit(col)
    first = [row[0] for row in cells(dock)]
    assert first == [r.market for r in rank(dock.rows, "long_dist")]
    dists = [abs(r.nearest_long.distance_pct) for r in rank(dock.rows, "long_dist") if r.nearest_long]
    assert dists == sorted(dists)  # nearest first
    dock.table.horizontalHeader().sectionClicked.emit(col)  # again: the other way
    assert [row[0] for row in cells(dock)] == [r.market for r in rank(dock.rows, "long_dist", True)]
    assert [row[0] for row in cells(dock)] != first
    price = next(i for i, h in enumerate(HEADERS) if h[1] == "price")
    dock.table.horizontalHeader().sectionClicked.emit(price)
    prices = [float(row[1].replace(",", "")) for row in cells(dock)]
    assert prices == sorted(prices, reverse=True)


def test_double_click_opens_the_market_in_a_tab_or_shows_its_tab(workspace: Any) -> None:
    dock = workspace.screener
    dock.toggle_action.trigger()
    wait_rows(dock, lambda: dock.table.rowCount() == len(list_samples()))
    first_tab = workspace.current
    target = next(i for i, row in enumerate(cells(dock)) if row[0] == "sample btcusdt-5m-2025-10-10")
    dock.table.cellDoubleClicked.emit(target, 3)
    assert workspace.tabs.count() == 2
    assert workspace.current.settings.symbol == SampleSource.display_name("btcusdt-5m-2025-10-10")
    mine = next(
        i
        for i, row in enumerate(cells(dock))
        if row[0] == f"sample {first_tab.settings.symbol.split(' · ')[-1]}"
    )
    dock.table.cellDoubleClicked.emit(mine, 0)
    assert workspace.tabs.count() == 2 and workspace.current is first_tab


def test_a_live_bar_refreshes_the_row_and_a_silent_feed_goes_stale(workspace: Any) -> None:
    dock = workspace.screener
    clock = [0]
    dock.clock = lambda: clock[0]
    w = workspace.current
    w.market.offline = False  # as a live market: its age counts
    live = w.candles
    clock[0] = int(live.close_time[-1])
    dock.add_tab(w.context, lambda: w.replay.active)  # fed again, now as a live market
    name = f"sample {w.settings.symbol.split(' · ')[-1]}"
    dock.show()
    wait_rows(dock, lambda: any(r.market == name for r in dock.rows))
    before = next(r for r in dock.rows if r.market == name)
    new = live.take(slice(len(live) - 1, None))
    row = Candles(new.open_time + live.interval_ms, new.close, new.close * 1.02, new.close, new.close * 1.02,
                  new.volume, live.interval_ms)  # fmt: skip
    clock[0] += 2_000
    w.apply_bar(row, True)
    dock.executor.wait_idle(10)
    dock.refresh()
    wait_rows(
        dock,
        lambda: next(r for r in dock.rows if r.market == name).price == pytest.approx(float(row.close[0])),
    )
    after = next(r for r in dock.rows if r.market == name)
    assert after.price != before.price and not dock.stale[name]
    clock[0] += 3 * live.interval_ms  # no bar for three intervals
    dock.refresh()
    wait_rows(dock, lambda: dock.stale.get(name, False))
    text = next(row for row in cells(dock) if row[0] == name)[-1]
    assert text.startswith("STALE") and "15m" in text
    assert "1 stale" in dock.summary.text()


def test_a_tab_in_replay_does_not_feed_the_screener(workspace: Any) -> None:
    dock = workspace.screener
    w = workspace.current
    name = f"sample {w.settings.symbol.split(' · ')[-1]}"
    dock.show()
    wait_rows(dock, lambda: any(r.market == name for r in dock.rows))
    live_price = next(r for r in dock.rows if r.market == name).price
    w.replay.start_at_bar(len(w.candles) - 300)
    w.replay.step(3)
    dock.executor.wait_idle(10)
    dock.refresh()
    wait_rows(dock, lambda: dock.row_ms and True)
    time.sleep(0.1)
    QtWidgets.QApplication.processEvents()
    assert next(r for r in dock.rows if r.market == name).price == live_price

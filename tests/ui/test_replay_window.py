"""Bar replay in the window: at replay time t the chart shows what was known at t and nothing after it (bars,
heatmap, map, magnets, sweep bubbles, real liquidations, price axis, colour levels), the frame equals one
made from an engine built on the data cut at t, stepping forward and back, play, lines and alerts in
replay kept apart from the live ones, the live feed held, and a REPLAY state nobody can miss."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.replay import cut_at
from liqdesk.feeds.timeparse import parse_time
from liqdesk.ui import frames
from tests.ui.conftest import dispose

CRASH = "BTCUSDT · btcusdt-5m-2025-10-10"
TAPE = "BTCUSDT · btcusdt-1m-2025-05"  # a sample with real liquidations


def open_window(symbol: str, **settings: Any) -> Any:
    from liqdesk.ui.data import SampleSource
    from liqdesk.ui.session import wait_until_drawn
    from liqdesk.ui.window import MainWindow, ViewSettings

    w = MainWindow(SampleSource(), ViewSettings(symbol=symbol, range_name="24h", **settings))
    w.resize(1280, 760)
    w.show()
    assert wait_until_drawn(w, 60.0)
    return w


@pytest.fixture
def crash(qapp: QtWidgets.QApplication, config_dir: Path) -> Iterator[Any]:
    w = open_window(CRASH)
    yield w
    dispose(w)


def settle(w: Any, timeout_s: float = 30.0) -> None:
    """Until the worker is idle and the frame on screen is of the bars shown."""
    app = QtWidgets.QApplication.instance()
    assert app is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
        f = w.frame
        if w.worker.wait_idle(0) and f is not None and f.request.end_bar == w.chart.bar_count():
            app.processEvents()
            if w.worker.wait_idle(0):
                return
        time.sleep(0.005)
    raise AssertionError("the replayed frame did not arrive")


def fresh_frame(w: Any) -> frames.Frame:
    w.request_frame(force=True)
    gen = w.frames.scheduler.frame_generation
    deadline = time.monotonic() + 30
    while w.frame is None or w.frame.request.generation < gen:
        QtWidgets.QApplication.processEvents()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    settle(w)
    return w.frame  # type: ignore[no-any-return]


def built_at(w: Any, t: int) -> LiquidationEngine:
    """The engine a fresh build makes on what was known at t (the reference, not the window's path)."""
    m = w.market
    cut = cut_at(w.replay.history, m.open_interest, m.liquidations, t, w.params().oi_max_gap_bars)
    return LiquidationEngine.build(cut.candles, cut.open_interest, w.params())


def test_the_replayed_frame_is_the_frame_of_an_engine_built_on_the_data_cut_at_t(crash: Any) -> None:
    w = crash
    assert w.replay.start_at_text("2025-10-10 20:00")
    settle(w)
    for _ in range(15):  # through the start of the crash, one bar at a time (patched frames)
        w.replay.step()
    settle(w)
    w.replay.step_back(2)  # truncated
    settle(w)
    t = w.replay.time_ms
    assert t == parse_time("2025-10-10T21:05")
    patched = w.frame
    reference = built_at(w, t)
    assert reference.n_bars == w.replay.bars == len(w.candles)
    assert int(w.candles.close_time[-1]) == t
    ref = frames.compute_frame(reference, patched.request)
    np.testing.assert_array_equal(patched.lmap.long_by_tier, ref.lmap.long_by_tier)
    np.testing.assert_array_equal(patched.lmap.short_by_tier, ref.lmap.short_by_tier)
    f = fresh_frame(w)
    ref = frames.compute_frame(reference, f.request)
    np.testing.assert_array_equal(np.asarray(f.values), np.asarray(ref.values))
    np.testing.assert_array_equal(f.image, ref.image)
    assert f.levels == ref.levels
    np.testing.assert_array_equal(f.lmap.long_by_tier, ref.lmap.long_by_tier)
    assert [(m.side, m.price, m.usd) for m in f.magnets] == [(m.side, m.price, m.usd) for m in ref.magnets]
    np.testing.assert_array_equal(f.bubbles.x, ref.bubbles.x)
    np.testing.assert_array_equal(f.bubbles.usd, ref.bubbles.usd)
    assert f.model_label == ref.model_label


def test_nothing_after_t_reaches_the_chart(crash: Any) -> None:
    w = crash
    live_frame = w.frame
    w.set_lock_levels(True)  # levels taken from the live view (which saw the crash)
    live_levels = w.settings.levels
    history = w.candles
    assert w.replay.start_at_text("2025-10-10 20:30")
    settle(w)
    t, n = w.replay.time_ms, w.replay.bars
    after = history.take(slice(n, None))
    crash_low = float(after.low.min())
    assert crash_low < 0.9 * float(history.close[n - 1])  # the crash is after t
    f = w.frame
    assert len(w.candles) == n and int(w.candles.close_time[-1]) == t
    assert w.chart.bar_count() == n and f.request.end_bar <= n
    assert f.lmap.bar == n - 1 and f.request.map_bar == n - 1
    assert f.columns.last_bar.max() <= n - 1
    assert np.all(f.bubbles.x <= n - 1)
    assert f is not live_frame and f.levels != live_levels  # colour levels of the replay's own frame
    assert w.settings.levels == f.levels
    lo, hi = w.chart.visible_prices()
    assert lo > crash_low * 1.05  # the price axis does not make room for the crash to come
    visible = history.take(slice(max(int(w.chart.visible_bars()[0]), 0), n))
    assert lo <= float(visible.low.min()) and hi >= float(visible.high.max())
    x0, x1 = w.chart.visible_bars()
    assert x1 < n + 0.1 * (x1 - x0)  # the view ends at t (room for the price tag only)
    assert all(m.distance_pct > -10 for m in f.magnets)  # magnets near the price at t
    w.replay.stop(keep_lines=False)
    settle(w)
    assert len(w.candles) == len(history) and w.settings.levels == live_levels


def test_real_liquidations_up_to_t_only_and_added_as_bars_close(
    qapp: QtWidgets.QApplication, config_dir: Path
) -> None:
    w = open_window(TAPE)
    try:
        liq = w.market.liquidations
        c = w.candles
        mid = int(np.searchsorted(c.close_time, int(liq.time[len(liq) // 2])))  # half the tape is after t
        w.replay.start_at_bar(mid)
        settle(w)
        t = w.replay.time_ms
        x, _y = w.chart.real_liqs.getData()
        before = int(((liq.time >= c.open_time[0]) & (liq.time < t)).sum())
        assert 0 < len(x) == before < len(liq)
        assert np.all(np.asarray(x) < mid - 0.5)
        k = next(
            j
            for j in range(mid, len(c))
            if ((liq.time >= c.open_time[j]) & (liq.time < c.close_time[j])).any()
        )
        w.replay.step(k + 1 - mid)
        settle(w)
        x2, _ = w.chart.real_liqs.getData()
        assert len(x2) == int(((liq.time >= c.open_time[0]) & (liq.time < w.replay.time_ms)).sum()) > len(x)
        w.replay.step_back(k + 1 - mid)
        settle(w)
        x3, _ = w.chart.real_liqs.getData()
        assert len(x3) == len(x)
    finally:
        dispose(w)


def test_step_forward_back_and_play(crash: Any) -> None:
    w = crash
    w.replay.start_at_text("2025-10-10 18:00")
    settle(w)
    n = w.replay.bars
    w.replay.step()
    w.replay.step()
    settle(w)
    assert w.replay.bars == len(w.candles) == w.frame.request.end_bar == n + 2
    assert w.worker.engine.n_bars == n + 2
    w.replay.step_back()
    settle(w)
    assert w.replay.bars == w.worker.engine.n_bars == w.frame.request.end_bar == n + 1
    w.replay.step(40)  # more than stepping bar by bar is worth: one seek
    settle(w)
    assert w.replay.bars == w.worker.engine.n_bars == n + 41
    w.replay.set_speed(100)
    w.replay.play()
    assert w.replay.playing
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        QtWidgets.QApplication.processEvents()
        time.sleep(0.002)
    w.replay.pause()
    settle(w)
    assert w.replay.bars > n + 41 + 20  # it moved (at most 100 bars in the second)
    assert w.replay.bars <= n + 41 + 110
    assert w.worker.engine.n_bars == w.replay.bars == w.frame.request.end_bar
    assert w.replay.step_times_ms


def test_alert_fires_when_the_replayed_price_crosses_a_line_and_replay_lines_stay_apart(crash: Any) -> None:
    from liqdesk.feeds.lines_store import load_lines

    w = crash
    live = w.lines.add_line("stop", float(w.candles.close[-1]) * 0.97)
    assert live is not None
    stored = [(x.kind, x.price) for x in load_lines(w.market.exchange, w.market.symbol)]
    assert stored == [("stop", live.price())]
    w.replay.start_at_text("2025-10-10 20:55")
    settle(w)
    c, n = w.replay.history, w.replay.bars
    low_ahead = float(c.low[n : n + 6].min())
    level = (float(c.close[n - 1]) + low_ahead) / 2  # the crash goes through it in the next bars
    assert low_ahead < level < float(c.close[n - 1])
    events: list[Any] = []
    w.alerts.fired.connect(events.append)
    w.lines.add_line("alert", level)
    assert not events  # drawing it is not a crossing
    w.replay.step(6)
    assert any(e.kind == "cross" and e.message.startswith("REPLAY") for e in events)
    # nothing of the replay was written; the live lines come back
    assert [(x.kind, x.price) for x in load_lines(w.market.exchange, w.market.symbol)] == stored
    w.replay.stop(keep_lines=False)
    assert [(x.kind, x.price()) for x in w.lines.items] == stored
    assert not w.alerts.tag
    # again, keeping what was drawn
    w.replay.start_at_text("2025-10-10 20:55")
    added = w.lines.add_line("target", level)
    assert added is not None
    w.replay.stop(keep_lines=True)
    kept = [(x.kind, x.price) for x in load_lines(w.market.exchange, w.market.symbol)]
    assert ("target", added.price()) in kept and stored[0] in kept


def test_live_bars_during_replay_wait_for_its_end(crash: Any) -> None:
    w = crash
    live = w.candles
    w.replay.start_at_text("2025-10-10 12:00")
    settle(w)
    n = w.replay.bars
    shown = w.frame
    new = live.take(slice(len(live) - 1, None))
    from liqdesk.core.series import Candles

    row = Candles(new.open_time + live.interval_ms, new.open, new.high * 1.01, new.low, new.close * 1.01,
                  new.volume, live.interval_ms)  # fmt: skip
    w.apply_bar(row, True)
    w.set_last_price(float(row.close[0]), int(row.close_time[0]))
    QtWidgets.QApplication.processEvents()
    assert len(w.candles) == n and w.chart.bar_count() == n and w.worker.engine.n_bars == n
    assert w.frame is shown
    assert w.chart.price_line.value() == pytest.approx(float(live.close[n - 1]))
    w.replay.stop(keep_lines=False)
    settle(w)
    assert len(w.candles) == len(live) + 1 and w.worker.engine.n_bars == len(live) + 1
    assert w.chart.price_line.value() == pytest.approx(float(row.close[0]))


def test_replay_state_is_visible_and_a_click_chooses_the_start(crash: Any) -> None:
    w = crash
    assert not w.replay_banner.isVisible() and not w.replay_toolbar.isVisible()
    w.replay.choose_start()
    assert w.replay.picking and w.replay_toolbar.isVisible()
    bar = len(w.candles) - 200
    assert w.replay.clicked_bar(float(bar))
    settle(w)
    assert w.replay.active and w.replay.bars == bar + 1
    assert w.replay_banner.isVisible() and w.replay_banner.text().startswith("REPLAY")
    assert "not live" in w.replay_banner.text()
    assert w.status.notice.isVisible() and w.status.notice.text().startswith("REPLAY")
    assert "ff9800" in w.status.notice.styleSheet()
    w.replay.play()
    assert "playing" in w.status.notice.text() and "playing" in w.replay_banner.text()
    w.replay.pause()
    assert "paused" in w.status.notice.text() and "paused" in w.replay_banner.text()
    shot = w.chart.grab().toImage()  # the banner is in what a screenshot shows
    p = w.replay_banner.geometry().center()
    assert QtGui.QColor(shot.pixel(p.x(), p.y() - 5)).name() == "#ff9800"
    w.replay.stop(keep_lines=False)
    settle(w)
    assert not w.replay_banner.isVisible() and not w.replay_toolbar.isVisible()
    assert not w.status.notice.text().startswith("REPLAY")


def test_replay_shortcuts_do_not_clash(crash: Any) -> None:
    w = crash
    keys: dict[str, str] = {}
    for a in w.actions():
        for k in a.shortcuts():
            text = k.toString()
            assert text not in keys, f"{text}: {keys.get(text)} and {a.text()}"
            keys[text] = a.text()
    for key in (
        "Alt+R",
        "Alt+Shift+R",
        "Shift+Space",
        "Alt+Right",
        "Alt+Left",
        "Alt+Up",
        "Alt+Down",
        "Alt+L",
    ):
        assert key in keys
    by_text = {a.text(): a for a in w.actions()}
    by_text["Replay from time…"].shortcut()
    w.replay.start_at_bar(len(w.candles) - 100)
    settle(w)
    n = w.replay.bars
    by_text["Step one bar"].trigger()
    by_text["Step one bar"].trigger()
    by_text["Step one bar back"].trigger()
    settle(w)
    assert w.replay.bars == n + 1
    by_text["Faster"].trigger()
    assert w.replay.speed == 20
    by_text["Back to live"].trigger()
    assert not w.replay.active


def test_liqdesk_sample_opens_the_window_on_that_sample(
    qapp: QtWidgets.QApplication, config_dir: Path
) -> None:
    import argparse

    from liqdesk.app import desktop
    from liqdesk.app.live_source import LiveController
    from liqdesk.errors import DataError

    parser = argparse.ArgumentParser()
    desktop.add_window_options(parser)
    config = desktop.config_from_args(parser.parse_args(["--sample", "btcusdt-5m-2025-10-10"]))
    assert config.offline and config.sample == "btcusdt-5m-2025-10-10"
    data = LiveController(config).source.load(config.symbol)
    assert data.candles.close_time[-1] == parse_time("2025-10-13T00:00")
    with pytest.raises(DataError, match="unknown sample 'nope'"):
        desktop.config_from_args(parser.parse_args(["--sample", "nope"]))

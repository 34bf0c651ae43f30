"""The live chart follows the market: new bars scroll the view while the newest bar is in view, the x limits
grow with the data, End (or the "Go live" button) returns to the live edge, and a model or frame error is shown
once and retried with the next bar instead of stopping the heatmap."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.series import Candles, Liquidations
from liqdesk.feeds.market_data import MarketData
from liqdesk.feeds.sample import load_sample
from liqdesk.ui import frames
from liqdesk.ui.data import FixedSource
from liqdesk.ui.session import wait_until_drawn
from liqdesk.ui.window import MainWindow, ViewSettings
from liqdesk.ui.worker import ModelWorker

N_BARS = 400


def small_market(n: int = N_BARS) -> MarketData:
    s = load_sample()
    c = s.candles.take(slice(-n, None))
    oi = s.open_interest
    assert oi is not None
    keep = (oi.time >= c.open_time[0]) & (oi.time <= c.close_time[-1])
    oi = type(oi)(oi.time[keep], oi.usd[keep])
    return MarketData(c, oi, Liquidations.empty(), s.symbol, s.exchange,
                      "live test", offline=False, source_kind="live")  # fmt: skip


@pytest.fixture
def live(qapp: QtWidgets.QApplication, tmp_path, monkeypatch) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path))
    w = MainWindow(FixedSource(small_market()), ViewSettings(range_name="12h", persist=False))
    w.resize(1280, 760)
    w.show()
    assert wait_until_drawn(w, 30.0)
    yield w
    w.close()


def next_bar(w: MainWindow, move: float = 0.001) -> Candles:
    c = w.candles
    assert c is not None
    t = int(c.open_time[-1]) + c.interval_ms
    o = float(c.close[-1])
    close = o * (1 + move)
    return Candles(open_time=[t], open=[o], high=[max(o, close) * 1.0005], low=[min(o, close) * 0.9995],
                   close=[close], volume=[10.0], interval_ms=c.interval_ms)  # fmt: skip


def append(w: MainWindow, k: int, qtbot, move: float = 0.001) -> None:  # type: ignore[no-untyped-def]
    for _ in range(k):
        w.apply_bar(next_bar(w, move), is_closed=True, oi_close=None)
        qtbot.wait(1)


def settled(w: MainWindow, qtbot) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: w.worker.wait_idle(0), timeout=20_000)
    assert wait_until_drawn(w, 30.0)


def newest_in_view(w: MainWindow) -> bool:
    x0, x1 = w.chart.visible_bars()
    y0, y1 = w.chart.visible_prices()
    n = len(w.candles)
    return x0 <= n - 1 <= x1 and y0 <= float(w.candles.close[-1]) <= y1


def test_new_bars_scroll_the_view_heatmap_and_map_while_the_newest_bar_is_in_view(live, qtbot) -> None:  # type: ignore[no-untyped-def]
    w = live
    width = np.subtract(*w.chart.visible_bars()[::-1])
    # beyond the old 20-bar x limit, and a steady climb out of the old y range
    append(w, 60, qtbot, move=0.002)
    settled(w, qtbot)
    n = len(w.candles)
    assert n == N_BARS + 60
    assert newest_in_view(w)
    assert np.subtract(*w.chart.visible_bars()[::-1]) == pytest.approx(width)  # the zoom is kept
    f = w.frame
    assert f is not None and f.request.end_bar == n
    assert f.lmap.bar == n - 1 and f.lmap.time_ms == w.worker.engine.open_time[n - 1]  # the map follows
    assert w.chart.price_line.value() == pytest.approx(float(w.candles.close[-1]))
    assert not w.chart.live_button.isVisible()
    assert w.errors_shown == []


def test_after_panning_back_the_view_stays_and_end_returns_to_the_live_edge(live, qtbot) -> None:  # type: ignore[no-untyped-def]
    w = live
    for _ in range(6):
        qtbot.keyClick(w, QtCore.Qt.Key.Key_Left)
    settled(w, qtbot)
    before = w.chart.visible_bars()
    assert not newest_in_view(w)
    assert w.chart.live_button.isVisible()
    append(w, 80, qtbot)  # more than the 20-bar margin the x limits had at load
    settled(w, qtbot)
    assert w.chart.visible_bars() == pytest.approx(before)  # the trader's view stays put
    qtbot.keyClick(w, QtCore.Qt.Key.Key_End)
    settled(w, qtbot)
    assert newest_in_view(w)
    assert not w.chart.live_button.isVisible()
    append(w, 5, qtbot)
    settled(w, qtbot)
    assert newest_in_view(w)  # following again
    assert w.frame.lmap.bar == len(w.candles) - 1
    # the button does what End does
    w.chart.pan(-1.0)
    settled(w, qtbot)
    assert w.chart.live_button.isVisible()
    w.chart.live_button.click()
    settled(w, qtbot)
    assert newest_in_view(w)


def test_a_frame_request_never_overtakes_a_live_bar_queued_before_it(qapp: QtWidgets.QApplication) -> None:
    """A newer frame request replaced a queued one in its place in the queue, ahead of a bar queued after that
    one: the frame for n + 1 bars ran on an engine with n (IndexError in compute_frame)."""
    market = small_market(200)
    worker = ModelWorker()
    failures: list[str] = []
    frames_seen: list[frames.Frame] = []
    worker.failed.connect(failures.append)
    worker.frame_ready.connect(lambda _g, f: frames_seen.append(f))
    from liqdesk.core.grid import PriceBins
    from liqdesk.ui import data as data_mod

    c = market.candles
    worker.build(1, c, market.open_interest, data_mod.params_for("coinglass"))
    assert worker.wait_idle(30_000)
    bins = PriceBins(float(c.low.min()) * 0.9, float(c.high.max()) * 1.1, 100)

    def request(n: int, gen: int) -> frames.FrameRequest:
        return frames.FrameRequest(generation=gen, start_bar=0, end_bar=n, columns=n, bins=bins,
                                   visible_bars=(0, n), visible_prices=(bins.lo, bins.hi), map_bar=n - 1)  # fmt: skip

    gate = threading.Event()
    worker.run_in_order(lambda: gate.wait(10))  # the worker is busy
    worker.request_frame(1, request(len(c), 1))
    t = int(c.open_time[-1]) + c.interval_ms
    row = Candles(open_time=[t], open=[c.close[-1]], high=[c.close[-1] * 1.001], low=[c.close[-1] * 0.999],
                  close=[c.close[-1]], volume=[5.0], interval_ms=c.interval_ms)  # fmt: skip
    worker.apply_bar(1, row, None, revise=False)
    worker.request_frame(1, request(len(c) + 1, 2))  # made for the data after the bar
    gate.set()
    assert worker.wait_idle(30_000)
    QtWidgets.QApplication.processEvents()
    worker.shutdown()
    assert failures == []
    assert frames_seen and frames_seen[-1].request.end_bar == len(c) + 1


def test_a_frame_error_is_shown_once_and_the_next_bar_retries(live, qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    w = live
    real = frames.compute_frame
    calls = {"n": 0}

    def broken(engine: LiquidationEngine, req: frames.FrameRequest, **kw: object) -> frames.Frame:
        calls["n"] += 1
        raise IndexError("index 1816 is out of bounds for axis 0 with size 1816")

    monkeypatch.setattr(frames, "compute_frame", broken)
    w.request_frame(force=True)
    qtbot.waitUntil(lambda: calls["n"] >= 1 and w.worker.wait_idle(0), timeout=10_000)
    w.request_frame(force=True)  # fails again: not shown twice
    qtbot.waitUntil(lambda: calls["n"] >= 2 and w.worker.wait_idle(0), timeout=10_000)
    qtbot.wait(20)
    assert len(w.errors_shown) == 1 and "IndexError" in w.errors_shown[0]
    assert "model error" in w.status.model_label.text() and "retrying" in w.status.message_label.text()
    monkeypatch.setattr(frames, "compute_frame", real)
    for_the_view = w.frame.request.generation
    w.chart.pan(-0.5)  # a view the old frame does not cover: only a new frame can show it
    settled(w, qtbot)
    w.chart.jump_to_end()
    append(w, 1, qtbot)  # the retry
    settled(w, qtbot)
    assert w.frame.request.generation > for_the_view
    assert w.frame.request.end_bar == len(w.candles)
    assert "model error" not in w.status.model_label.text()
    assert len(w.errors_shown) == 1


def test_a_bar_the_engine_cannot_take_rebuilds_it_with_the_next_bar(live, qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    w = live
    real = LiquidationEngine.append_bar

    def broken(self: LiquidationEngine, bar: Candles, oi_close: float | None = None) -> None:
        self._bars["open_time"].extend(bar.open_time)  # half done, as an exception midway leaves it
        raise ValueError("bad bar")

    monkeypatch.setattr(LiquidationEngine, "append_bar", broken)
    append(w, 1, qtbot)
    qtbot.waitUntil(lambda: bool(w.errors_shown), timeout=10_000)
    monkeypatch.setattr(LiquidationEngine, "append_bar", real)
    append(w, 1, qtbot)
    settled(w, qtbot)
    n = len(w.candles)
    assert w.worker.engine is not None and w.worker.engine.n_bars == n
    assert w.frame.request.end_bar == n and w.frame.lmap.bar == n - 1
    assert len(w.errors_shown) == 1


def test_a_burst_of_revisions_draws_the_newest_not_every_step(live, qtbot) -> None:  # type: ignore[no-untyped-def]
    """Revisions queued behind each other: only the newest is patched and drawn (each was a frame before), and
    the labels' advice map is asked for at most every MAP_INTERVAL_S while the live bar moves."""
    from liqdesk.ui import lines as lines_mod

    w = live
    append(w, 1, qtbot)
    settled(w, qtbot)
    frames_seen: list[frames.Frame] = []
    w.worker.frame_ready.connect(lambda _g, f: frames_seen.append(f))
    maps: list[int] = []
    real_query = w.context.query

    def counted(fn: Any, on_result: Any, **kw: Any) -> bool:
        if kw.get("supersede") == "advice-map":
            maps.append(1)
        return real_query(fn, on_result, **kw)

    w.context.query = counted  # type: ignore[method-assign]
    gate = threading.Event()
    w.worker.run_in_order(lambda: gate.wait(10))
    maps.clear()
    c = w.candles
    for k in range(6):  # the live bar moves six times while the worker is busy
        row = Candles(open_time=[c.open_time[-1]], open=[c.open[-1]], high=[c.high[-1] * (1 + k / 1e4)],
                      low=[c.low[-1]], close=[c.close[-1] * (1 + k / 1e4)], volume=[20.0 + k],
                      interval_ms=c.interval_ms)  # fmt: skip
        w.apply_bar(row, is_closed=False, oi_close=None)
    gate.set()
    settled(w, qtbot)
    assert len(frames_seen) == 1  # the newest revision's patch only
    assert w.worker.engine.close[-1] == pytest.approx(c.close[-1] * 1.0005)
    assert w.frame.lmap.price_now == pytest.approx(c.close[-1] * 1.0005)
    for _ in range(10):  # frames applied in a quick row: one map now, one more after the interval
        w.context.frame_shown(w.frame)
        w.apply_bar(Candles(open_time=[c.open_time[-1]], open=[c.open[-1]], high=[c.high[-1] * 1.001],
                            low=[c.low[-1]], close=[w.candles.close[-1] + 1.0], volume=[40.0],
                            interval_ms=c.interval_ms), is_closed=False, oi_close=None)  # fmt: skip
    settled(w, qtbot)
    qtbot.wait(int(lines_mod.MAP_INTERVAL_S * 1000) + 100)
    settled(w, qtbot)
    assert 1 <= len(maps) <= 4, len(maps)
    assert w.lines.lmap is not None and w.lines._map_key[2] == float(
        w.candles.close[-1]
    )  # the newest in the end


def test_following_the_live_edge_needs_no_full_frames(live, qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Each new bar is drawn by patching the newest column: the view's own check must not see the frame of the
    bar before (the worker told the bar was applied before it had sent the patched frame) and ask for a full
    frame on every bar."""
    real = frames.compute_frame
    full: list[int] = []

    def counted(engine: LiquidationEngine, req: frames.FrameRequest, **kw: Any) -> frames.Frame:
        full.append(req.generation)
        return real(engine, req, **kw)

    monkeypatch.setattr(frames, "compute_frame", counted)
    for _ in range(20):
        append(live, 1, qtbot, move=0.0002)
        qtbot.wait(60)  # the view's throttled check runs between bars, as in a live stream
    settled(live, qtbot)
    assert newest_in_view(live) and live.frame.request.end_bar == len(live.candles)
    assert len(full) <= 2, len(full)

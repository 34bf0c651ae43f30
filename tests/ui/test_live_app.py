"""The window on live data: LiveController against the fake Binance (real ccxt client, own thread), on qasync.

Covers: backfill shows the served candles; a pushed kline moves the last candle and patches the newest heatmap
column exactly as a full rebuild would; a pushed liquidation becomes a marker; a dropped websocket recovers with
no gap; a timeframe change restarts the streams; an unreachable endpoint leaves the window on the sample or the
cache with an OFFLINE note; `liqdesk` (desktop.run) goes live and shuts down with no unclosed session.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import socket
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import qasync
from PySide6 import QtWidgets

from liqdesk.app import desktop
from liqdesk.app.cli import build_parser
from liqdesk.app.live_source import LiveConfig, LiveController
from liqdesk.core.engine import LiquidationEngine
from liqdesk.feeds.cache import Cache
from liqdesk.feeds.live import StatusEvent
from liqdesk.feeds.loop_errors import is_orphaned_heartbeat
from liqdesk.feeds.sample import load_sample
from liqdesk.ui import frames
from liqdesk.ui.window import MainWindow, ViewSettings
from tests._live_helpers import FAST, SYMBOL, FakeBinance, ServerThread, force_order_event, force_orders

H = 3_600_000
KLINES = "btcusdt@kline_1h"
# The fake serves 1h bars and pushes klines only when told: a long watchdog keeps the feed from resubscribing
# while a test is busy elsewhere (dropped connections raise at once and need no watchdog).
SETTINGS = replace(FAST, candle_stale_s=5.0, liquidation_stale_s=5.0, candle_silent_s=60.0)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    yield tmp_path


def run_qasync(coro: Awaitable[None]) -> list[str]:
    """Run on qasync's loop; returns what reached the loop's exception handler (must stay empty)."""
    errors: list[str] = []

    async def main() -> None:
        def on_error(_loop: asyncio.AbstractEventLoop, ctx: dict[str, Any]) -> None:
            if not is_orphaned_heartbeat(ctx):  # what the app's own handler lets through
                errors.append(f"{ctx.get('message')} {ctx.get('exception')!r} {ctx.get('future')!r}")

        asyncio.get_running_loop().set_exception_handler(on_error)
        await coro

    with asyncio.Runner(loop_factory=qasync.QEventLoop) as runner:
        runner.run(main())
    return errors


async def until(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def drawn(w: MainWindow) -> None:
    """The worker is idle and the frame on screen is the newest."""
    await until(lambda: w.frame is not None and w.context.model_ready and w.worker.wait_idle(0), what="frame")
    await asyncio.sleep(0.05)
    await until(lambda: w.worker.wait_idle(0), what="worker idle")
    await asyncio.sleep(0.05)


def make(config: LiveConfig, clock: Callable[[], int]) -> tuple[LiveController, MainWindow]:
    c = LiveController(config, clock=clock)
    w = MainWindow(c.source, ViewSettings(**c.initial_settings()))  # type: ignore[arg-type]
    w.resize(1280, 760)
    c.attach(w)
    w.show()
    return c, w


def closed_port_options() -> dict[str, Any]:
    """ccxt options pointing at a localhost port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    fake = FakeBinance()
    fake.port = port
    return fake.ccxt_options()


def test_live_window_backfills_streams_and_recovers(qapp: QtWidgets.QApplication, env: Path) -> None:
    with ServerThread() as st:
        s = st.server
        config = LiveConfig(timeframe="1h", ccxt_options=s.ccxt_options(), feed=SETTINGS)
        c, w = make(config, lambda: s.now_ms)
        # the window is up before any network: on the sample, saying it is connecting
        assert w.market is not None and w.market.source_kind == "sample"
        assert w.status.notice.isVisible() and w.status.notice.text().startswith("CONNECTING")

        async def scenario() -> None:
            c.start()
            await until(lambda: c.mode == "live", what="live")
            await drawn(w)
            assert w.market is not None and w.market.source_kind == "live"
            assert (
                w.status.source_label.text().startswith("LIVE · Binance") and not w.status.notice.isVisible()
            )
            # the tick comes from the exchange's market (PRICE_FILTER tickSize), and lines snap to it
            assert w.market.tick_size == pytest.approx(0.1) and w.lines.tick == pytest.approx(0.1)
            served = s.served_klines(int(w.candles.open_time[0]), s.now_ms)
            assert w.candles.open_time.tolist() == [r[0] for r in served]  # the backfill, exactly
            np.testing.assert_array_equal(w.candles.close, [float(r[4]) for r in served])
            np.testing.assert_array_equal(w.candles.quote_volume, [float(r[7]) for r in served])

            # a live kline: the live bar appears, then moves; the newest column follows
            await st.call_async(s.wait_subscribed(KLINES))
            live_i = s.closed_count()
            await st.call_async(s.push_kline(live_i, final=False, fraction=0.3))
            await until(
                lambda: int(w.candles.open_time[-1]) == int(s.klines.open_time[live_i]), what="live bar"
            )
            await drawn(w)
            before = w.frame.values[:, -1].copy()  # type: ignore[union-attr,index]
            candles_before = len(w.candles)
            await st.call_async(s.push_kline(live_i, final=True))
            final = s._kline_row(live_i, final=True)
            await until(lambda: w.candles.volume[-1] == float(final[5]), what="revised live bar")
            await drawn(w)
            assert len(w.candles) == candles_before  # revised, not appended
            assert w.candles.close[-1] == float(final[4]) and w.candles.high[-1] == float(final[2])
            f = w.frame
            assert f is not None and f.request.end_bar == len(w.candles)
            assert f.values is not None and not np.array_equal(
                f.values[:, -1], before
            )  # the newest column changed
            # … exactly as a full rebuild over the same bars and open interest draws it
            eng = w.worker.engine
            assert eng is not None and eng.n_bars == len(w.candles)
            ref_engine = LiquidationEngine.build(w.candles, None, w.params(), oi_close=eng._oi_close.a.copy())
            ref = frames.compute_frame(ref_engine, f.request)
            assert int(ref.columns.first_bar[-1]) == int(f.columns.first_bar[-1])
            assert ref.values is not None
            np.testing.assert_allclose(f.values[:, -1], ref.values[:, -1], rtol=1e-9, atol=1e-6)
            assert np.array_equal(w.chart.heatmap.image, f.image)  # what the ImageItem shows

            # a real liquidation: stored, and a marker where it happened
            row = next(r for r in force_orders() if r["symbol"] == "BTC")
            event = force_order_event(row, trade_time=s.now_ms - 1_000)
            price = float(event["o"]["ap"])
            await st.call_async(s.wait_subscribed("btcusdt@forceOrder"))
            await st.call_async(s.push_liquidation(event))
            await until(lambda: len(w.market.liquidations) > 0, what="liquidation")  # type: ignore[union-attr]
            x, y = w.chart.real_liqs.getData()
            assert len(x) == 1 and y[0] == pytest.approx(price) and x[0] > len(w.candles) - 1.5
            # a smaller one is added to the markers incrementally; one stamped in the next bar (its kline has
            # not come yet) waits for that bar
            rows = [r for r in force_orders() if r["symbol"] == "BTC"]
            small = min(
                rows, key=lambda r: float(r["average_price"]) * float(r["filled_accumulated_quantity"])
            )
            await st.call_async(s.push_liquidation(force_order_event(small, trade_time=s.now_ms - 500)))
            early = force_order_event(rows[1], trade_time=int(s.klines.open_time[live_i + 1]) + 60_000)
            await st.call_async(s.push_liquidation(early))
            await until(lambda: len(w.market.liquidations) == 2, what="one more")  # type: ignore[union-attr]
            await until(lambda: len(w.chart.real_liqs.getData()[0]) == 2, what="incremental marker")
            await until(lambda: len(c._liq_waiting) == 1, what="the early one waits for its bar")
            assert len(w.chart.real_liqs.getData()[0]) == 2 and len(w.market.liquidations) == 2  # type: ignore[union-attr]

            # the websocket drops while three bars close; after reconnecting the series has no gap
            s.fail_next("/fapi/v1/klines", 429)  # and the gap backfill is rate limited once
            assert await st.call_async(s.drop_websockets()) >= 1
            await until(lambda: w.status.notice.isVisible(), what="a notice")
            assert w.status.notice.text().startswith(("RECONNECTING", "RATE LIMITED"))
            await st.call_async(s.advance(3))
            await st.call_async(s.wait_subscribed(KLINES))
            await st.call_async(s.advance(1, revisions=2))
            await until(lambda: int(w.candles.open_time[-1]) == int(s.klines.open_time[s.closed_count()]),
                        what="bars after the drop")  # fmt: skip
            await drawn(w)
            t = w.candles.open_time
            assert np.all(np.diff(t) == H)  # no gap, no duplicate
            served = s.served_klines(int(t[0]), s.now_ms)
            assert t[:-1].tolist() == [r[0] for r in served]  # every closed bar, with its final values
            np.testing.assert_array_equal(w.candles.volume[:-1], [float(r[5]) for r in served])
            assert w.worker.engine.n_bars == len(t)  # type: ignore[union-attr]
            assert any("rate limited" in line for line in c.status_log)
            assert not w.status.notice.isVisible()  # data flows again: the notice is gone
            x, y = w.chart.real_liqs.getData()
            assert len(x) == 3 and y[-1] == pytest.approx(float(early["o"]["ap"]))
            t_early = int(early["o"]["T"])
            j = int(np.searchsorted(t, t_early, "right")) - 1
            assert int(t[j]) == int(s.klines.open_time[live_i + 1])
            assert x[-1] == pytest.approx(j - 0.5 + (t_early - int(t[j])) / H)  # where the window puts it

            # the timeframe box restarts the streams: 4h (the fake has no 4h bars: not live), then 1h again
            old_feed = c.feed
            box = w.toolbar.timeframe_box
            box.activated.emit(box.findData("4h"))
            await until(lambda: c.mode == "offline", what="4h refused")
            assert old_feed is not None and old_feed._closed and c.feed is None
            assert w.status.notice.text().startswith("OFFLINE")
            box.activated.emit(box.findData("1h"))
            await until(lambda: c.mode == "live" and c.feed is not None, what="1h live again")
            await st.call_async(s.wait_subscribed(KLINES))
            await st.call_async(s.advance(1))
            await until(lambda: int(w.candles.open_time[-1]) == int(s.klines.open_time[s.closed_count()]),
                        what="live after restart")  # fmt: skip
            assert np.all(np.diff(w.candles.open_time) == H)

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                await c.close()
                gc.collect()
                await asyncio.sleep(0.05)
            assert not [x for x in caught if issubclass(x.category, ResourceWarning)]
            assert c.venue is None and c.cache is None

        async def guarded() -> None:
            try:
                await scenario()
            finally:
                await c.close()  # on failure too: no exchange left open

        errors = run_qasync(guarded())
        w.close()
    assert errors == []
    assert not c.errors[:-1], c.errors  # only the refused 4h


def test_unreachable_exchange_opens_on_the_sample_and_says_offline(
    qapp: QtWidgets.QApplication, env: Path
) -> None:
    config = LiveConfig(timeframe="5m", ccxt_options=closed_port_options(), feed=SETTINGS, retry_base_s=30)
    c, w = make(config, lambda: 1_754_000_000_000)

    async def scenario() -> None:
        t0 = time.monotonic()
        c.start()
        await until(lambda: c.mode == "offline", timeout=8, what="offline")
        assert time.monotonic() - t0 < 8
        await c.close()

    assert run_qasync(scenario()) == []
    assert w.market is not None and w.market.source_kind == "sample"
    assert w.status.notice.isVisible() and w.status.notice.text().startswith("OFFLINE")
    assert "unreachable" in w.status.notice.text() and "bundled sample" in w.status.notice.text()
    assert "not live" in w.status.source_label.text()
    w.close()


def test_offline_tab_for_another_symbol_names_the_data_it_shows(
    qapp: QtWidgets.QApplication, env: Path
) -> None:
    config = LiveConfig(symbol="ETH/USDT:USDT", timeframe="5m", ccxt_options=closed_port_options(), feed=SETTINGS,
                        retry_base_s=30)  # fmt: skip
    c, w = make(config, lambda: 1_754_000_000_000)

    async def scenario() -> None:
        c.start()
        await until(lambda: c.mode == "offline", timeout=8, what="offline")
        await c.close()

    assert run_qasync(scenario()) == []
    assert w.market is None and w.settings.symbol == "ETH/USDT:USDT"  # never the BTC sample under ETH
    assert "no ETH/USDT:USDT data here" in w.status.notice.text() and "unreachable" in w.status.notice.text()
    assert w.chart.empty_notice.isVisible() and "no ETH/USDT:USDT data" in w.chart.empty_notice.text()
    w.close()


def test_unreachable_exchange_shows_the_cache(qapp: QtWidgets.QApplication, env: Path) -> None:
    bars = load_sample("btcusdt-1h-2025").candles.take(slice(-300, None))
    with Cache() as db:
        db.put_candles("binanceusdm", SYMBOL, "1h", bars)
    now = int(bars.close_time[-1]) + 600_000
    config = LiveConfig(timeframe="1h", ccxt_options=closed_port_options(), feed=SETTINGS, retry_base_s=30)
    c, w = make(config, lambda: now)
    # straight from the cache, before any connection attempt
    assert w.market is not None and w.market.source_kind == "cache"
    assert w.candles.open_time.tolist() == bars.open_time.tolist()

    async def scenario() -> None:
        c.start()
        await until(lambda: c.mode == "offline", timeout=8, what="offline")
        await c.close()

    assert run_qasync(scenario()) == []
    assert w.status.notice.text().startswith("OFFLINE") and "cached data" in w.status.notice.text()
    assert "from the cache" in w.status.source_label.text()
    w.close()


@pytest.mark.parametrize("how", ["close", "quit"])
def test_liqdesk_command_goes_live_and_shuts_down_cleanly(
    qapp: QtWidgets.QApplication,
    env: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    how: str,
) -> None:
    seen: dict[str, Any] = {}
    with ServerThread() as st:
        s = st.server
        args = build_parser().parse_args(
            ["--exchange", "binanceusdm", "--symbol", SYMBOL, "--timeframe", "1h",
             "--ccxt-options", json.dumps(s.ccxt_options())]
        )  # fmt: skip
        config = replace(desktop.config_from_args(args), feed=SETTINGS)

        async def drive(w: MainWindow, c: LiveController) -> None:
            await until(lambda: c.mode == "live", what="live")
            await drawn(w)
            seen.update(status=w.status.source_label.text(), controller=c, window=w)
            png = os.environ.get("LIQDESK_LIVE_SNAPSHOT")  # set it to look at the live window
            if png:
                w.grab().save(png)
            if how == "close":
                w.close()  # like the user: the window's close ends the app, after the cleanup
            else:
                QtWidgets.QApplication.quit()  # a Quit menu: Qt's loop ends under the feed; cleanup follows

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rc = desktop.run(args, clock=lambda: s.now_ms, config=config, after_start=drive)
            gc.collect()
    assert rc == 0
    assert seen["status"].startswith("LIVE · Binance USD-M BTC/USDT:USDT 1h")
    c = seen["controller"]
    assert c.venue is None and c.cache is None and c.feed is None  # everything closed
    assert not [x for x in caught if issubclass(x.category, ResourceWarning)], [
        str(x.message) for x in caught
    ]
    assert qapp.quitOnLastWindowClosed()  # restored
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    assert "Unclosed" not in caplog.text
    # ccxt prints this when an exchange is garbage-collected unclosed
    assert "release all resources" not in capfd.readouterr().out


def test_liqdesk_offline_flag_and_app_quit(qapp: QtWidgets.QApplication, env: Path) -> None:
    args = build_parser().parse_args(["--offline"])
    seen: dict[str, Any] = {}

    async def drive(w: MainWindow, c: LiveController) -> None:
        await asyncio.sleep(0.05)
        seen.update(notice=w.status.notice.text(), mode=c.mode, kind=w.market.source_kind)  # type: ignore[union-attr]
        QtWidgets.QApplication.quit()  # quit from elsewhere (a menu): Qt's loop ends under the coroutine

    assert desktop.run(args, after_start=drive) == 0
    assert seen == {"notice": "OFFLINE · bundled sample data (--offline)", "mode": "sample", "kind": "sample"}


def test_reconnecting_clears_when_the_stream_is_back_even_if_the_exchange_clock_is_behind(
    qapp: QtWidgets.QApplication, env: Path
) -> None:
    """The exchange came back with its clock behind the newest bar shown: its bars are all older, none reach the
    chart, and RECONNECTING used to stay on screen until its clock passed the chart (minutes)."""
    with ServerThread() as st:
        s = st.server
        config = LiveConfig(timeframe="1h", ccxt_options=s.ccxt_options(), feed=SETTINGS)
        c, w = make(config, lambda: s.now_ms)

        async def scenario() -> None:
            c.start()
            await until(lambda: c.mode == "live", what="live")
            await drawn(w)
            await st.call_async(s.wait_subscribed(KLINES))
            await st.call_async(s.advance(2))
            await until(lambda: int(w.candles.open_time[-1]) == int(s.klines.open_time[s.closed_count()]),
                        what="bars")  # fmt: skip
            newest = int(w.candles.open_time[-1])
            s.now_ms -= 3 * H  # the exchange restarts behind the chart
            assert await st.call_async(s.drop_websockets()) >= 1
            await until(lambda: w.status.notice.text().startswith("RECONNECTING"), what="RECONNECTING")
            await st.call_async(s.wait_subscribed(KLINES))
            await until(
                lambda: not w.status.notice.text().startswith("RECONNECTING"),
                timeout=15,  # both streams reconnect, each after its backoff (a busy machine stretches it)
                what="notice updated",
            )
            assert (
                w.status.notice.text().startswith("WAITING")
                and "behind the newest bar" in w.status.notice.text()
            )
            assert int(w.candles.open_time[-1]) == newest  # nothing older overwrote the chart
            s.now_ms += 3 * H  # its clock passes the chart: bars flow, the notice goes
            await st.call_async(s.advance(1))
            await until(lambda: int(w.candles.open_time[-1]) > newest, what="a new bar")
            await until(lambda: not w.status.notice.isVisible(), what="notice gone")
            await c.close()

        async def guarded() -> None:
            try:
                await scenario()
            finally:
                await c.close()

        errors = run_qasync(guarded())
        w.close()
    assert errors == []


@pytest.mark.parametrize("behind", [True, False])
def test_the_notice_waits_for_every_dropped_stream_whatever_order_they_come_back_in(
    qapp: QtWidgets.QApplication, env: Path, behind: bool
) -> None:
    """Both streams dropped; the one whose warning came last reconnected first. The notice used to go then (the
    candles still down), and the candles' own reconnect, no longer 'the stream behind the notice', never said
    that the exchange's clock was behind the chart."""

    newest = int(load_sample().candles.open_time[-1])
    now = newest - 3 * H if behind else newest + H
    c, w = make(LiveConfig(), lambda: now)
    try:
        down = "NetworkError: Connection closed by remote server; reconnecting in 0.0 s"
        c._on_status(StatusEvent(down, "warning", "binanceusdm", SYMBOL, "candles"))
        c._on_status(StatusEvent(down, "warning", "binanceusdm", SYMBOL, "liquidations"))
        c._on_status(StatusEvent("liquidations connected", "info", "binanceusdm", SYMBOL, "liquidations"))
        assert w.status.notice.text().startswith("RECONNECTING")  # the candles are still down
        c._on_status(StatusEvent("candles connected", "info", "binanceusdm", SYMBOL, "candles"))
        if behind:
            assert (
                w.status.notice.text().startswith("WAITING")
                and "behind the newest bar" in w.status.notice.text()
            )
        else:
            assert not w.status.notice.isVisible()
    finally:
        w.close()
        run_qasync(c.close())

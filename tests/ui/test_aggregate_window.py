"""The aggregated market in the window: four venues live at once (the real ccxt client against the four fake
venues, on their own thread), each venue's bars and tape flowing into the tab; the venue toggles; the per-venue
breakdown in the readout."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6 import QtWidgets

from liqdesk.app.aggregate_live import AggregateController
from liqdesk.app.live_source import LiveConfig
from liqdesk.core.aggregate_engine import VenueSetEngine
from liqdesk.core.heatmap import column_at
from liqdesk.feeds.sample import load_sample
from liqdesk.feeds.venue_market import VenuePart, VenueSetMarket
from liqdesk.ui.data import FixedSource
from liqdesk.ui.window import MainWindow, ViewSettings
from tests._live_helpers import FAST
from tests._venue_fakes import VENUES, ThreadedFakes
from tests.fake_exchange.data import force_order_event, force_orders
from tests.fake_exchange.venue_data import recorded_liquidations
from tests.ui.test_live_app import drawn, run_qasync, until

SETTINGS = replace(FAST, candle_stale_s=5.0, liquidation_stale_s=5.0, candle_silent_s=60.0)
H = 3_600_000


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    yield tmp_path


def test_four_venues_live_in_one_tab(qapp: QtWidgets.QApplication, env: Path) -> None:
    threaded = ThreadedFakes(ping_interval=0.05)
    with threaded as fakes:

        async def call(coro: Any) -> Any:  # on the fakes' own loop; the qasync loop keeps running meanwhile
            return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, threaded.loop))

        config = LiveConfig(exchange=",".join(VENUES), timeframe="1h", ccxt_options=fakes.ccxt_options(),
                            feed=SETTINGS)  # fmt: skip
        c = AggregateController(config, clock=lambda: fakes.now_ms)
        w = MainWindow(c.source, ViewSettings(**c.initial_settings()))  # type: ignore[arg-type]
        w.resize(1400, 800)
        c.attach(w)
        w.show()
        assert w.market is None and w.status.notice.text().startswith("CONNECTING")

        async def scenario() -> None:
            c.start()
            await until(lambda: c.mode == "live", timeout=30, what="live")
            await drawn(w)
            engine = w.worker.engine
            assert isinstance(engine, VenueSetEngine) and engine.names == VENUES
            assert isinstance(w.market, VenueSetMarket) and w.market.symbol == "BTC · 4 venues"
            assert w.venue_panel.isVisible() and list(w.venue_panel.checks) == list(VENUES)
            assert w.status.model_label.text().startswith("4 venues · OI model")
            await until(
                lambda: "model: building" not in " ".join(w.venue_panel.status_lines()), what="coverage"
            )
            lines = w.venue_panel.status_lines()
            assert any("OI model" in x for x in lines)
            assert lines[3].startswith("Hyperliquid: ") and "no public liquidation stream" in lines[3]
            before = {vm.name: vm.engine.n_bars for vm in engine.models}

            await call(fakes.binance.wait_subscribed("btcusdt@kline_1h"))
            await call(fakes.bybit.wait_subscribed("kline.60.BTCUSDT"))
            await call(fakes.okx.wait_subscribed("candle1H:BTC-USDT-SWAP"))
            await call(fakes.hyperliquid.wait_subscribed("candle:BTC:1h"))
            await call(fakes.binance.wait_subscribed("btcusdt@forceOrder"))
            await call(fakes.bybit.wait_subscribed("allLiquidation.BTCUSDT"))
            await call(fakes.okx.wait_subscribed("liquidation-orders:SWAP"))
            await call(fakes.advance(2, revisions=2))
            tape = recorded_liquidations(start_ms=fakes.now_ms - 2 * H)
            await call(fakes.bybit.push_liquidations(tape[:10]))
            await call(fakes.okx.push_liquidations(tape[10:20]))
            rows = [r for r in force_orders() if r["symbol"] == "BTC"][:5]
            for i, r in enumerate(rows):
                await call(fakes.binance.push_liquidation(
                    force_order_event(r, trade_time=fakes.now_ms - 2 * H + 1000 * i)))  # fmt: skip
            # every venue's bars reached its engine (the chart venue's also the chart)
            await until(lambda: all(vm.engine.n_bars >= before[vm.name] + 2 for vm in engine.models),
                        timeout=20, what="two new bars on every venue")  # fmt: skip
            # the chart moves a candle at once and hands the bar to the worker: the engine has it once the jobs
            # queued before now ran (a query runs after them), not when the engines' bar counts are read here
            shown = int(w.candles.open_time[-1])

            def chart_venue_last(e: Any) -> int:
                return int(e.model_of("binanceusdm").engine.open_time[-1])

            assert w.worker.query(chart_venue_last, w.context.data_generation).result(20) == shown
            # every venue's tape reached the chart, coloured by venue
            want = {"binanceusdm": 5, "bybit": 10, "okx": 10}

            def counts() -> dict[str, int]:
                liq = w.market.liquidations  # type: ignore[union-attr]
                return {v: int(np.count_nonzero(liq.exchange == v)) for v in want}

            await until(lambda: counts() == want, timeout=20, what=f"the tapes {want}")
            await drawn(w)
            assert len(w.chart.real_liqs.data) >= 25
            # the newest column on screen is the sum of every venue at its newest bar
            frame = w.frame
            assert frame is not None
            bins = frame.request.bins

            def expected(e: Any) -> Any:
                return column_at(e, bins, e.n_bars - 1)

            col = w.worker.query(expected, w.context.data_generation).result(20)
            direct = sum(
                np.asarray(column_at(vm.engine, bins, vm.engine.n_bars - 1)[0]) for vm in engine.models
            )
            np.testing.assert_allclose(col[0], direct, rtol=1e-9)
            assert (
                w.market.part("bybit").candles.open_time[-1] == engine.model_of("bybit").engine.open_time[-1]
            )
            # a venue off: the sum without it, the same engines (no rebuild), the others' bars still flow
            okx = engine.model_of("okx").engine
            w.venue_panel.set_venue("okx", False)
            await until(lambda: w.worker.engine is not engine and w.context.model_ready, what="the new sum")
            await drawn(w)
            now = w.worker.engine
            assert isinstance(now, VenueSetEngine) and now.enabled == ("binanceusdm", "bybit", "hyperliquid")
            assert now.model_of("okx").engine is okx
            assert w.status.model_label.text().startswith("3 venues")
            await c.close()

        errors = run_qasync(scenario())
        w.close()
        assert errors == []


# ------------------------------------------------------------------------------------------- offline parts


def two_venue_market() -> VenueSetMarket:
    """The bundled sample as two venues (one without open interest) with a tape each."""
    s = load_sample("btcusdt-5m")
    c = s.candles.take(slice(-2000, None))
    parts = (VenuePart("binanceusdm", "BTC/USDT:USDT", c, s.open_interest, "sample"),
             VenuePart("bybit", "BTC/USDT:USDT", c, None, "complete"))  # fmt: skip
    from liqdesk.core.series import Liquidations

    t = c.open_time[-50:-40]
    liqs = Liquidations(t, np.array(["binanceusdm"] * 5 + ["bybit"] * 5), np.array(["BTC/USDT:USDT"] * 10),
                        np.array([1, -1] * 5, np.int8), c.close[-50:-40], np.ones(10), c.close[-50:-40])  # fmt: skip
    return VenueSetMarket(c, s.open_interest, liqs, "BTC · 2 venues", "binanceusdm,bybit", "two venues",
                          parts=parts, chart_venue="binanceusdm")  # fmt: skip


def wait_drawn(w: MainWindow, app: QtWidgets.QApplication) -> None:
    from liqdesk.ui.session import wait_until_drawn

    assert wait_until_drawn(w, 60)
    for _ in range(5):
        app.processEvents()


def test_venue_toggle_takes_a_venue_out_of_the_sum_without_building_again(
    qapp: QtWidgets.QApplication,
) -> None:
    m = two_venue_market()
    w = MainWindow(FixedSource(m), ViewSettings(symbol=m.symbol))
    w.resize(1200, 700)
    w.show()
    wait_drawn(w, qapp)
    both = w.worker.engine
    assert isinstance(both, VenueSetEngine) and both.enabled == ("binanceusdm", "bybit")
    total_both = w.frame.lmap.total_long  # type: ignore[union-attr]
    w.venue_panel.checks["bybit"].setChecked(False)  # the user's click
    wait_drawn(w, qapp)
    one = w.worker.engine
    assert isinstance(one, VenueSetEngine) and one.enabled == ("binanceusdm",)
    assert one.model_of("bybit") is both.model_of("bybit")  # the engines were kept
    assert w.frame.lmap.total_long < total_both  # type: ignore[union-attr]
    bars = w.frame.request.map_bar  # type: ignore[union-attr]
    want = one.model_of("binanceusdm").engine
    from liqdesk.core.liqmap import liquidation_map

    alone = liquidation_map(want, w.frame.request.bins, bars)  # type: ignore[union-attr]
    assert w.frame.lmap.total_long == pytest.approx(alone.total_long)  # type: ignore[union-attr]
    # the last venue stays in
    w.venue_panel.checks["binanceusdm"].setChecked(False)
    assert w.venue_panel.checks["binanceusdm"].isChecked() and m.summed() == ("binanceusdm",)
    # the markers: one per event, in the venue's colour
    assert len(w.chart.real_liqs.data) == 10
    w.close()


def test_readout_breaks_the_liquidity_down_by_venue(qapp: QtWidgets.QApplication) -> None:
    m = two_venue_market()
    w = MainWindow(FixedSource(m), ViewSettings(symbol=m.symbol))
    w.resize(1200, 700)
    w.show()
    wait_drawn(w, qapp)
    c = m.candles
    price = float(c.close[-100]) * 0.99
    w.point_crosshair_at(int(c.open_time[-100]), price)
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (
        w.readout.values is None or w.readout.values.liquidity is None or w.venue_breakdown.at_cursor is None
    ):
        qapp.processEvents()
        time.sleep(0.01)
    w.readout.refresh()
    v = w.readout.values
    assert v is not None and v.liquidity is not None
    vm = w.venue_breakdown.at_cursor
    assert vm is not None
    b = v.liquidity.bin
    # each venue's part in the pointer's bin adds up to what the readout says is alive there
    assert vm.amap.long_by_venue[:, b].sum() == pytest.approx(v.liquidity.long_usd)
    assert vm.amap.short_by_venue[:, b].sum() == pytest.approx(v.liquidity.short_usd)
    assert vm.amap.long_by_venue[:, b].min() > 0 or vm.amap.short_by_venue[:, b].min() > 0
    text = w.chart.readout.text()
    assert "by venue" in text and "Binance:" in text and "Bybit:" in text
    w.close()

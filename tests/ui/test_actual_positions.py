"""Hyperliquid's actual positions in the window, against the fake Hyperliquid (info endpoint and websocket) with the
real ccxt client, on qasync: accounts discovered from the trades stream are sampled beside the live feed; the map
panel shows the actual layer with its coverage; the toggle paints it as the newest heatmap columns; the readout gives
the estimate and the actual at the pointer; a position the fake liquidates becomes an inferred marker; the model check
scores the estimate against the positions."""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6 import QtWidgets

from liqdesk.app.live_positions import LivePositions
from liqdesk.app.live_source import LiveConfig, LiveController
from liqdesk.core.actual_map import PositionSamples
from liqdesk.core.display import transform
from liqdesk.core.series import LONG, Liquidations
from liqdesk.feeds.market_data import MarketData
from liqdesk.feeds.position_sampler import SamplerSettings
from liqdesk.feeds.sample import load_sample
from liqdesk.ui import format as fmt
from liqdesk.ui import theme
from liqdesk.ui.actual_positions import PositionsSnapshot, applies_to, covers
from liqdesk.ui.inferred_markers import LEGEND
from liqdesk.ui.window import MainWindow, ViewSettings
from tests._live_helpers import FAST
from tests._positions_helpers import addr
from tests.fake_exchange.hyperliquid import FakeHyperliquid, HlPosition, HlTrade
from tests.fake_exchange.venue_data import bar_values
from tests.ui.test_live_app import drawn, run_qasync, until

SYMBOL = "BTC/USDC:USDC"
SETTINGS = replace(
    FAST, candle_stale_s=5.0, liquidation_stale_s=5.0, trades_stale_s=5.0, candle_silent_s=60.0
)
SAMPLER = SamplerSettings(budget=400, window_s=1.0, market_poll_s=0.3, idle_s=0.02, flush_s=0.05,
                          rate_limit_base_s=0.3, backoff_base_s=0.05, backoff_cap_s=1.0)  # fmt: skip


class HlThread:
    """The fake Hyperliquid on its own loop in a thread, like a remote server."""

    def __init__(self, fake: FakeHyperliquid) -> None:
        self.server = fake
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> HlThread:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    async def call(self, coro: Any) -> Any:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    yield tmp_path


def accounts_near(fake: FakeHyperliquid) -> dict[str, list[HlPosition]]:
    """Five accounts around the live price; the first one's long is crossed by the live bar's final low."""
    mark = fake.mark_price()
    i = fake.closed_count()
    low = float(bar_values(fake.bars, i, final=True).low)
    doomed = low * 1.0005
    assert doomed < mark * 0.9995, "the live bar must dip below the first account's liquidation price"
    return {
        addr(0xD1): [HlPosition("BTC", 0.8, mark, 25, liquidation_px=round(doomed, 1))],
        addr(0xD2): [HlPosition("BTC", 2.0, mark, 10, "isolated", liquidation_px=round(mark * 0.955, 1))],
        addr(0xD3): [HlPosition("BTC", -1.5, mark, 20, liquidation_px=round(mark * 1.035, 1))],
        addr(0xD4): [HlPosition("BTC", -3.0, mark, 15, liquidation_px=round(mark * 1.06, 1))],
        addr(0xD5): [HlPosition("BTC", 1.0, mark, 3, liquidation_px=None)],  # hedged cross account: no price
    }


def test_the_window_shows_actual_positions_beside_the_estimate(
    qapp: QtWidgets.QApplication, env: Path
) -> None:
    probe = FakeHyperliquid(auto_liquidate=True)
    crafted = accounts_near(probe)
    with HlThread(FakeHyperliquid(accounts=crafted, auto_liquidate=True, ping_interval=0.2)) as st:
        s = st.server
        config = LiveConfig(exchange="hyperliquid", symbol=SYMBOL, timeframe="1h", ccxt_options=s.ccxt_options(),
                            feed=SETTINGS, symbols=(SYMBOL,), cache_path=str(env / "store.sqlite3"))  # fmt: skip
        c = LiveController(config, clock=lambda: s.now_ms)
        w = MainWindow(c.source, ViewSettings(**c.initial_settings(), persist=False))  # type: ignore[arg-type]
        w.resize(1400, 800)
        c.attach(w)
        positions = LivePositions(w.positions, config.cache_path, settings=SAMPLER, clock=lambda: s.now_ms,
                                  say=w.flash, publish_every_s=0.05)  # fmt: skip
        c.listeners.append(positions)
        w.show()
        assert not w.actual.bars.isVisible()

        async def scenario() -> None:
            c.start()
            await until(lambda: c.mode == "live", 20, what="live")
            await drawn(w)
            assert "trades" in c.feed.streams  # type: ignore[union-attr]
            # the sampler runs, nothing sampled yet: the note under the map says so
            await until(lambda: w.positions.snapshot is not None, what="first snapshot")
            await until(lambda: w.actual.note.startswith("actual: no sampled positions yet\nsampler: 0 known"),
                        what="the note before any sample")  # fmt: skip
            # accounts come from the public trades stream (both counterparties of each trade)
            await st.call(s.wait_subscribed("trades:BTC"))
            users = list(crafted)
            trades = [
                HlTrade(s.now_ms, s.mark_price(), 0.01, "B", users[k], users[(k + 1) % 5]) for k in range(5)
            ]
            await st.call(s.push_trades(trades))
            await until(lambda: w.positions.snapshot is not None and w.positions.snapshot.state.n_samples == 5,
                        15, what="five accounts sampled")  # fmt: skip
            await until(
                lambda: w.actual.amap is not None and w.actual.amap.n_accounts == 5, what="actual map"
            )
            amap = w.actual.amap
            assert amap is not None and w.frame is not None and amap.bins == w.frame.request.bins
            # the exact map of the crafted positions on the frame's bins: notional = |size| × liquidation price
            expect_long, expect_short = np.zeros(amap.bins.n), np.zeros(amap.bins.n)
            for positions_ in crafted.values():
                for p in positions_:
                    if p.liquidation_px is None:
                        continue
                    b = int(amap.bins.index(np.array([p.liquidation_px]))[0])
                    assert b >= 0, "every crafted price is inside the frame's price range"
                    (expect_long if p.szi > 0 else expect_short)[b] += abs(p.szi) * p.liquidation_px
            np.testing.assert_allclose(amap.long, expect_long, rtol=1e-12)
            np.testing.assert_allclose(amap.short, expect_short, rtol=1e-12)
            assert amap.n_without_price == 1
            # coverage: Σ|size| of the sample over both sides of open interest (coins)
            coverage = (0.8 + 2.0 + 1.5 + 3.0 + 1.0) / (2 * s.open_interest_coins())
            assert amap.coverage == pytest.approx(coverage, rel=1e-3)
            label = w.actual.note
            assert f"actual (sampled 5 accounts, {coverage * 100:.2f} % of OI)" in label
            assert "1 without a price" in label
            assert w.actual.bars.isVisible() and "sampled 5 accounts" in w.chart.cum_label.text
            sampler = label.splitlines()[-1]  # the sampler's status, under the map too
            assert sampler.startswith("sampler: 5 known · 5 sampled/h · budget ")
            assert sampler.endswith("/400 a min")

            # the readout gives both, in the same bin: the estimate and the actual
            long_px = crafted[addr(0xD2)][0].liquidation_px
            assert long_px is not None
            w.point_crosshair_at(int(w.candles.open_time[-1]), long_px)  # type: ignore[union-attr]
            await until(lambda: "est. longs alive" in w.chart.readout.text(), what="estimate in the readout")
            text = w.chart.readout.text()
            assert (
                f"<b>actual now</b>: longs {fmt.usd(2.0 * long_px)}" in text and "sampled 5 accounts" in text
            )
            assert w.readout.liquidity.values is not None
            assert w.actual.values_at(long_px) == (pytest.approx(2.0 * long_px), 0.0)

            # the toggle (Model menu) paints the actual density as the newest columns, and back
            action = w.menus.actual_heat_action
            assert action is not None and not action.isChecked()
            action.setChecked(True)
            assert (
                w.settings.show_actual_heat and w.actual.heat.isVisible() and w.actual.heat_edge.isVisible()
            )
            first, last = w.actual.heat_bars  # type: ignore[misc]
            assert last == len(w.candles) - 1 and last - first + 1 >= 2  # type: ignore[arg-type]
            img = w.actual.heat.image
            lut = theme.lut(w.frame.request.colormap)
            top = int(np.argmax(transform(amap.long + amap.short, w.frame.request.transform)))
            np.testing.assert_array_equal(img[top, 0], lut[255])  # the densest actual bin: the top colour
            np.testing.assert_array_equal(img[int(np.flatnonzero(amap.long + amap.short == 0)[0]), 0], lut[0])
            action.setChecked(False)
            assert not w.settings.show_actual_heat and not w.actual.heat.isVisible()

            # the live bar closes below the first account's liquidation price: the fake liquidates it, the
            # sampler sees it gone on its next answer and infers the liquidation, drawn as an inferred marker
            await st.call(s.advance(1))
            await until(lambda: w.positions.snapshot is not None and len(w.positions.snapshot.inferred) == 1,
                        15, what="inferred liquidation")  # fmt: skip
            await until(lambda: len(w.inferred.shown) == 1, what="inferred marker")
            ev = w.inferred.shown
            doomed = crafted[addr(0xD1)][0]
            assert ev.side[0] == LONG and ev.price[0] == doomed.liquidation_px and bool(ev.inferred[0])
            assert ev.usd[0] == pytest.approx(0.8 * doomed.liquidation_px)  # type: ignore[operator]
            assert len(w.inferred.scatter.data) == 1
            assert LEGEND in [label.text for _, label in w.chart.legend.items]
            assert len(w.market.liquidations) == 0  # type: ignore[union-attr]  # never mixed into the tape

            # the model check scores the estimate against the sampled positions
            assert w.model_check.run()
            await until(lambda: w.model_check.outcome is not None, 60, what="model check")
            o = w.model_check.outcome
            assert o is not None and list(o.actual) == [w.settings.preset]
            summary = o.actual[w.settings.preset]
            assert summary.n_snapshots >= 1
            assert 0.0 <= summary.top_share[0.1].value <= 1.0 and np.isfinite(summary.w1_pct.value)
            assert "sampled 5 accounts" not in o.positions_note and "of 5 accounts" in o.positions_note
            assert not w.model_check.actual_label.isHidden()  # the dock itself is closed here
            assert "Estimate vs actual" in w.model_check.actual_label.text()
            await c.close()

        try:
            errors = run_qasync(scenario())
        finally:
            w.close()
        assert errors == []
        assert positions.errors == []


@pytest.mark.parametrize(
    "exchange, symbol, shown",
    [
        ("hyperliquid", "BTC/USDC:USDC", True),
        ("binanceusdm,bybit,okx,hyperliquid", "BTC · 4 venues", True),  # an aggregate holding it
        ("binanceusdm+hyperliquid", "BTC/USDT:USDT", True),
        ("hyperliquid", "ETH/USDC:USDC", False),  # another coin
        ("binanceusdm", "BTC/USDT:USDT", False),  # a venue whose positions are not public
    ],
)
def test_the_layer_shows_the_sampled_coin_on_hyperliquid_and_aggregates_holding_it(
    exchange: str, symbol: str, shown: bool
) -> None:
    snap = PositionsSnapshot(
        "hyperliquid", SYMBOL, PositionSamples.empty(), math.nan, 0, None, Liquidations.empty()
    )
    market = MarketData(load_sample().candles, None, Liquidations.empty(), symbol, exchange, "x")
    assert covers(snap, market) is shown
    assert applies_to(market) is ("hyperliquid" in exchange)


def test_nothing_is_drawn_on_a_market_without_public_positions(win: Any) -> None:
    """The bundled sample is Binance's: a Hyperliquid snapshot on the hub draws nothing there and says nothing."""
    state = PositionSamples(["a"], [0], ["a"], ["BTC"], [0], [1.0], [60_000.0], [10.0], [True], [61_000.0], [6e3],
                            [6e4])  # fmt: skip
    win.positions.publish(PositionsSnapshot("hyperliquid", "BTC/USDC:USDC", state, 1e9, 0, None,
                                            Liquidations.empty()))  # fmt: skip
    win.menus.actual_heat_action.setChecked(True)
    assert win.actual.amap is None and not win.actual.bars.isVisible() and not win.actual.heat.isVisible()
    assert win.actual.note == "" and "actual" not in win.chart.cum_label.text
    assert len(win.inferred.shown) == 0 and LEGEND not in [label.text for _, label in win.chart.legend.items]


def test_the_sampler_follows_the_tabs_market_and_closes_cleanly(
    qapp: QtWidgets.QApplication, env: Path
) -> None:
    """Another symbol on the tab: the old market's positions go from the window at once and the sampler asks
    for the new coin; a reconnect to the same market keeps the sampler running; close stores what was found."""
    from liqdesk.feeds.venues import create_venue
    from liqdesk.ui.actual_positions import PositionsHub

    async def main() -> None:
        fake = FakeHyperliquid(coins=("ETH",))
        fake.accounts = {addr(0xE1): [HlPosition("ETH", 3.0, 3_000.0, 10, liquidation_px=2_800.5)],
                         addr(0xE2): [HlPosition("BTC", 0.5, 70_000.0, 10, liquidation_px=65_000.5)]}  # fmt: skip
        async with fake as s:
            venue = create_venue("hyperliquid", s.ccxt_options())
            hub = PositionsHub()
            lp = LivePositions(hub, str(env / "store.sqlite3"), settings=SAMPLER, clock=lambda: s.now_ms,
                               publish_every_s=0.05)  # fmt: skip
            try:
                lp.live(venue, SYMBOL)
                assert lp.sampler is not None
                lp.sampler.import_addresses(list(fake.accounts))
                await until(
                    lambda: hub.snapshot is not None and hub.snapshot.state.n_samples == 2, what="BTC"
                )
                assert (
                    hub.snapshot is not None and hub.snapshot.coin == "BTC" and len(hub.snapshot.state) == 1
                )
                first = lp.sampler
                lp.live(venue, SYMBOL)  # a reconnect: the same sampler goes on
                assert lp.sampler is first
                lp.live(venue, "ETH/USDC:USDC")
                assert hub.snapshot is None and lp.sampler is not first  # nothing of BTC stays drawn
                # each answer is stored with every coin it lists: the ETH map reads the answers the BTC sampler
                # got at once, without waiting for the accounts to be asked again
                await until(lambda: hub.snapshot is not None and len(hub.snapshot.state) == 1, what="ETH")
                assert hub.snapshot is not None and hub.snapshot.coin == "ETH"
                assert hub.snapshot.state.liquidation_px.tolist() == [2_800.5]
                assert hub.history is not None and len(hub.history("ETH", 0, 2**62)) >= 1
            finally:
                await lp.close()
                await venue.close()
            assert lp.store is None and lp.sampler is None and lp.errors == []

    asyncio.run(main())

"""Four venues live at once (Qt-free): the real ccxt client against the four fakes, each venue's history through
the cache into its engine, then one LiveFeed per venue streaming bars and tapes into the engines and the summed
newest column and map."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from liqdesk.core.aggregate import AggregateModel, VenueInput, build_venues
from liqdesk.core.heatmap import column_at
from liqdesk.core.liqmap import auto_bins, liquidation_map
from liqdesk.feeds.cache import Cache
from liqdesk.feeds.live import LiquidationEvent, StatusEvent
from liqdesk.feeds.live_aggregate import LiveAggregate
from liqdesk.feeds.presets import params_for
from liqdesk.feeds.venue_set import load_histories_async, tape_kind
from tests._live_helpers import FAST, until
from tests._venue_fakes import SYMBOLS, VENUES, FourFakes
from tests.fake_exchange.data import force_order_event, force_orders
from tests.fake_exchange.venue_data import recorded_liquidations

H = 3_600_000


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


def test_four_venues_stream_bars_and_tapes_into_their_engines_and_the_sum(env: Path) -> None:
    async def main() -> None:
        async with FourFakes(ping_interval=0.05) as fakes:
            opts = fakes.ccxt_options()
            now = fakes.now_ms
            hists = await load_histories_async(
                [(v, SYMBOLS[v]) for v in VENUES], "1h", now - 5 * 86_400_000, now,
                ccxt_options=lambda ex: opts[ex], now_ms=now,
            )  # fmt: skip
            for v, h in zip(VENUES, hists, strict=True):
                assert len(h.candles) >= 100, (v, h.notes)
            inputs = [
                VenueInput(v, SYMBOLS[v], h.candles, h.open_interest, params_for("coinglass", venue=v),
                           h.liquidations, h.label, tape_kind(v))
                for v, h in zip(VENUES, hists, strict=True)
            ]  # fmt: skip
            venues = build_venues(inputs)
            before = {vm.name: vm.engine.n_bars for vm in venues}
            c = hists[0].candles
            model = AggregateModel(venues, auto_bins(c.low, c.high, 200))
            updates: list[str] = []
            seen: list[tuple[str, object]] = []
            with Cache() as db:
                async with LiveAggregate(
                    model, SYMBOLS, "1h", ccxt_options=opts, cache=db, settings=FAST, clock=lambda: fakes.now_ms,
                    on_update=lambda u: updates.append(u.venue), on_event=lambda v, e: seen.append((v, e)),
                ) as live:  # fmt: skip
                    await fakes.binance.wait_subscribed("btcusdt@kline_1h")
                    await fakes.bybit.wait_subscribed("kline.60.BTCUSDT")
                    await fakes.okx.wait_subscribed("candle1H:BTC-USDT-SWAP")
                    await fakes.hyperliquid.wait_subscribed("candle:BTC:1h")
                    await fakes.binance.wait_subscribed("btcusdt@forceOrder")
                    await fakes.bybit.wait_subscribed("allLiquidation.BTCUSDT")
                    await fakes.okx.wait_subscribed("liquidation-orders:SWAP")
                    await fakes.advance(3, revisions=2)
                    tape = recorded_liquidations(start_ms=fakes.now_ms - 600_000)
                    await fakes.bybit.push_liquidations(tape[:10])
                    await fakes.okx.push_liquidations(tape[10:20])
                    rows = [r for r in force_orders() if r["symbol"] == "BTC"][:5]
                    for i, r in enumerate(rows):
                        await fakes.binance.push_liquidation(
                            force_order_event(r, trade_time=fakes.now_ms - 300_000 + 1000 * i)
                        )
                    last = {
                        v: int(s.bars.open_time[s.closed_count() - 1]) if v != "binanceusdm"
                        else int(s.klines.open_time[s.closed_count() - 1])
                        for v, s in fakes.servers.items()
                    }  # fmt: skip
                    await until(
                        lambda: all(live.state[v].closed >= 3 for v in VENUES),
                        timeout=15,
                        what="3 closed bars each",
                    )
                    await until(
                        lambda: len(live.state["bybit"].tape) == 10 and len(live.state["okx"].tape) == 10
                        and len(live.state["binanceusdm"].tape) == 5, timeout=15, what="the tapes",
                    )  # fmt: skip
                    await until(lambda: all(live.state[v].last_open_ms is not None and live.state[v].last_open_ms
                                            > last[v] for v in VENUES), what="the live bars")  # fmt: skip
                    lines = live.status_lines()
            # every venue's engine took the closed bars (and the live bar after them)
            for vm in venues:
                e = vm.engine
                assert e.n_bars >= before[vm.name] + 3, vm.name
                t = e.open_time
                assert np.all(np.diff(t) == H), vm.name  # no hole, no duplicate
                assert last[vm.name] in t.tolist()
                assert int(t[-1]) == last[vm.name] + H  # the live bar, revised in place
            assert set(updates) == set(VENUES)
            # the summed newest column is each venue's newest column added
            long_, short = model.newest_column()
            want_l = sum(
                np.asarray(column_at(vm.engine, model.bins, vm.engine.n_bars - 1)[0]) for vm in venues
            )
            want_s = sum(
                np.asarray(column_at(vm.engine, model.bins, vm.engine.n_bars - 1)[1]) for vm in venues
            )
            np.testing.assert_allclose(long_, want_l, rtol=1e-9, atol=1e-6)
            np.testing.assert_allclose(short, want_s, rtol=1e-9, atol=1e-6)
            # the summed map is each venue's map added
            amap = model.map()
            for i, vm in enumerate(venues):
                m = liquidation_map(vm.engine, model.bins, vm.engine.n_bars - 1)
                np.testing.assert_allclose(amap.long_by_venue[i], m.long)
            np.testing.assert_allclose(amap.total.long, sum(m.long for m in amap.maps if m is not None))
            assert amap.total.total_long > 0 and amap.total.total_short > 0
            # tapes: each venue's own; Hyperliquid publishes none and says so
            assert {e.record.exchange for v, e in seen if isinstance(e, LiquidationEvent)} == {
                "binanceusdm",
                "bybit",
                "okx",
            }
            assert any(v == "hyperliquid" and isinstance(e, StatusEvent) and "no liquidation stream" in e.text
                       for v, e in seen)  # fmt: skip
            assert (
                len(lines) == 4 and lines[1].startswith("bybit: last bar") and "10 liquidations" in lines[1]
            )
            assert all(len(st.apply_ms) == st.bars for st in live.state.values())

    asyncio.run(main())


def test_bars_reach_the_engines_or_the_callers_hook_without_a_network() -> None:
    """Feed events as the feeds emit them: a live revision (OHLCV only, the last taker share carried), the closed
    bar, an open interest too old to use, a late revision (ignored), and the hook that hands bars elsewhere."""
    from liqdesk.core.aggregate import VenueModel
    from liqdesk.core.engine import LiquidationEngine
    from liqdesk.feeds.live import CandleUpdate, OpenInterestUpdate
    from liqdesk.feeds.live_aggregate import candle_row, oi_for_close
    from liqdesk.feeds.sample import load_sample

    s = load_sample("btcusdt-5m")
    c = s.candles.take(slice(-600, -1))
    vm = VenueModel(
        "bybit", "BTC/USDT:USDT", LiquidationEngine.build(c, None, params_for("coinglass", venue="bybit"))
    )
    model = AggregateModel([vm], auto_bins(c.low, c.high, 100))
    live = LiveAggregate(model, {"bybit": "BTC/USDT:USDT"}, "5m")
    t = int(c.open_time[-1]) + 300_000

    def bar(closed: bool, volume: float, taker: float | None = None) -> CandleUpdate:
        return CandleUpdate("bybit", "BTC/USDT:USDT", "5m", t, 60_000.0, 60_100.0, 59_900.0, 60_050.0, volume,
                            6e6 if closed else None, taker, closed)  # fmt: skip

    live._on_event("bybit", OpenInterestUpdate("bybit", "BTC/USDT:USDT", t - 86_400_000, 5e9))  # a day old
    assert oi_for_close(live.state["bybit"].oi, t + 300_000, "bybit", "5m") is None  # too old: volume model
    assert oi_for_close((t, 5e9), t + 300_000, "bybit", "5m") == 5e9
    live._on_event("bybit", bar(False, 40.0))
    assert (
        vm.engine.n_bars == len(c) + 1 and live.state["bybit"].bars == 1 and live.state["bybit"].closed == 0
    )
    live._on_event("bybit", bar(True, 100.0, 60.0))
    assert vm.engine.n_bars == len(c) + 1 and live.state["bybit"].closed == 1  # the same bar, revised
    row, share = candle_row(bar(False, 50.0), 0.6)
    assert (
        share == 0.6 and row.taker_buy_volume is not None and row.taker_buy_volume[0] == pytest.approx(30.0)
    )
    late = CandleUpdate(
        "bybit", "BTC/USDT:USDT", "5m", t - 300_000, 1.0, 1.0, 1.0, 1.0, 1.0, None, None, False
    )
    live._on_event("bybit", late)
    assert live.state["bybit"].bars == 2  # older than the newest bar: not applied, not counted
    handed: list[tuple[str, int]] = []
    other = LiveAggregate(model, {"bybit": "BTC/USDT:USDT"}, "5m",
                          apply=lambda v, r, oi: handed.append((v, int(r.open_time[0]))))  # type: ignore[func-returns-value]  # fmt: skip
    other._on_event("bybit", bar(True, 100.0, 60.0))
    assert handed == [("bybit", t)] and other.state["bybit"].closed == 1


def test_a_listener_of_the_aggregate_gets_hyperliquids_trades_with_addresses(env: Path) -> None:
    """The position sampler beside an aggregate: Hyperliquid's feed also subscribes to trades (its trades carry
    both addresses), the other venues' feeds do not, and the trades reach the listener."""
    from liqdesk.feeds.live import TradeEvent
    from tests.fake_exchange.hyperliquid import HlTrade

    async def main() -> None:
        async with FourFakes(ping_interval=0.05) as fakes:
            seen: list[tuple[str, object]] = []
            with Cache() as db:
                async with LiveAggregate(
                    None, SYMBOLS, "1h", ccxt_options=fakes.ccxt_options(), cache=db, settings=FAST,
                    clock=lambda: fakes.now_ms, on_event=lambda v, e: seen.append((v, e)),
                    apply=lambda v, row, oi: None, extra_streams={"hyperliquid": ["trades"]},
                ) as live:  # fmt: skip
                    assert live.feeds["hyperliquid"].streams[-1] == "trades"
                    assert all("trades" not in f.streams for v, f in live.feeds.items() if v != "hyperliquid")
                    await fakes.hyperliquid.wait_subscribed("trades:BTC")
                    buyer, seller = "0x" + "ab" * 20, "0x" + "cd" * 20
                    trade = HlTrade(fakes.now_ms - 1_000, 70_000.0, 0.5, "B", buyer, seller)
                    await fakes.hyperliquid.push_trades([trade])
                    await until(lambda: any(isinstance(e, TradeEvent) for _, e in seen), what="the trade")
            trades = [(v, e) for v, e in seen if isinstance(e, TradeEvent)]
            assert [v for v, _ in trades] == ["hyperliquid"]
            record = trades[0][1].record  # type: ignore[attr-defined]
            assert {record.buyer, record.seller} == {buyer, seller}

    asyncio.run(main())

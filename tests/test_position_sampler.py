"""The position sampler against the fake Hyperliquid with the real ccxt client: the crafted accounts give the exact
map and its coverage, accounts are discovered from the trades stream, the request budget holds and a 429 pauses
every request, positions that vanish while price crosses them become inferred liquidations, bad answers cost one
line."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from liqdesk.core.actual_map import actual_map
from liqdesk.core.grid import PriceBins
from liqdesk.core.sampling_schedule import SamplingRule
from liqdesk.feeds.cache import Cache
from liqdesk.feeds.history import RetryPolicy
from liqdesk.feeds.live import CandleUpdate, FeedEvent, LiveFeed, LiveSettings, TradeEvent
from liqdesk.feeds.position_sampler import PositionSampler, SamplerSettings
from liqdesk.feeds.positions_store import PositionsStore
from liqdesk.feeds.venues import create_venue
from liqdesk.feeds.venues.hyperliquid import Hyperliquid
from tests._live_helpers import until
from tests._positions_helpers import (
    A1,
    A2,
    A6,
    BINS,
    BTC_SIZES,
    CRAFTED,
    EXPECTED_ROWS,
    LONG_SIZES,
    PRICES,
    SHORT_SIZES,
    addr,
)
from tests.fake_exchange.hyperliquid import FakeHyperliquid, HlPosition, HlTrade

SYMBOL = "BTC/USDC:USDC"
FAST = SamplerSettings(budget=400, window_s=1.0, market_poll_s=0.3, idle_s=0.02, flush_s=0.05,
                       rate_limit_base_s=0.3, backoff_base_s=0.05, backoff_cap_s=1.0)  # fmt: skip
FAST_LIVE = LiveSettings(backoff_base_s=0.02, backoff_cap_s=0.1, rate_limit_base_s=0.05, candle_stale_s=2.0,
                         candle_silent_s=60.0, trades_stale_s=2.0, oi_poll_s=0.2, history_bars=5,
                         rest=RetryPolicy(attempts=4, base_s=0.01, cap_s=0.05, rate_limit_base_s=0.02),
                         close_timeout_s=2.0)  # fmt: skip

Body = Callable[[FakeHyperliquid, Hyperliquid, PositionsStore], Awaitable[None]]


def run(fake: FakeHyperliquid, body: Body, tmp_path: Path) -> None:
    async def main() -> None:
        async with fake as s:
            venue = create_venue("hyperliquid", s.ccxt_options())
            assert isinstance(venue, Hyperliquid)
            venue.clock = lambda: s.now_ms
            try:
                with PositionsStore(tmp_path / "liqdesk.sqlite3") as store:
                    await body(s, venue, store)
            finally:
                await venue.close()

    asyncio.run(main())


async def running(
    sampler: PositionSampler, until_: Callable[[], bool], what: str, timeout: float = 10.0
) -> None:
    task = asyncio.ensure_future(sampler.run())
    try:
        await until(lambda: until_() or task.done(), timeout, what)
        if task.done():
            task.result()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_the_crafted_accounts_give_the_exact_map_and_its_coverage(tmp_path: Path) -> None:
    async def body(s: FakeHyperliquid, venue: Hyperliquid, store: PositionsStore) -> None:
        sampler = PositionSampler(venue, store, SYMBOL, settings=FAST, clock=lambda: s.now_ms)
        assert sampler.import_addresses(list(CRAFTED)) == 9
        await running(sampler, lambda: store.count("position_samples") == 9, "every account sampled")
        state = store.state_at("BTC", s.now_ms)
        m = actual_map(state, PriceBins(*PRICES, BINS), s.open_interest_usd())
        got = {float(m.price[i]): (float(m.long[i]), float(m.short[i]))
               for i in np.flatnonzero((m.long > 0) | (m.short > 0))}  # fmt: skip
        assert got == EXPECTED_ROWS  # exact: no tolerance
        assert (m.n_accounts, m.n_positions, m.n_without_price, m.n_outside) == (9, 8, 1, 1)
        mark = s.mark_price()
        assert m.long_value_usd == pytest.approx(sum(LONG_SIZES) * mark, rel=1e-12)
        assert m.short_value_usd == pytest.approx(sum(SHORT_SIZES) * mark, rel=1e-12)
        # coverage = both sides of the sample against twice the open interest: Σ|size| / (2 × OI in coins)
        assert m.coverage == pytest.approx(sum(BTC_SIZES) / (2 * s.open_interest_coins()), rel=1e-6)
        status = sampler.status()
        assert status.coverage == pytest.approx(m.coverage, rel=1e-6) and status.accounts_known == 9
        assert status.sampled_last_hour == 9 and status.positions_without_price == 1
        assert "coverage" in status.line() and status.bad_answers == 0 and status.rate_limited == 0
        # every coin of each answer is kept (the answer is the account's whole state): the 8 BTC positions and
        # the account with many coins' 4 others, so a map of ETH reads the same answers
        assert store.count("positions") == 8 + 4
        eth = store.samples("ETH")
        assert len(set(eth.sample_account.tolist())) == 9 and eth.coin.tolist() == ["ETH"]

    run(FakeHyperliquid(accounts=copy.deepcopy(CRAFTED)), body, tmp_path)


def test_accounts_are_discovered_from_the_trades_stream_and_sampled(tmp_path: Path) -> None:
    new1, new2 = addr(0xC1), addr(0xC2)

    async def body(s: FakeHyperliquid, venue: Hyperliquid, store: PositionsStore) -> None:
        s.accounts[new1] = [HlPosition("BTC", 0.3, 70_000.0, 10, liquidation_px=63_500.5)]
        sampler = PositionSampler(venue, store, SYMBOL, settings=FAST, clock=lambda: s.now_ms)
        events: list[FeedEvent] = []

        def on_event(e: FeedEvent) -> None:
            events.append(e)
            if isinstance(e, TradeEvent):
                sampler.observe_trade(e.record)

        with Cache(tmp_path / "liqdesk.sqlite3") as cache:
            async with LiveFeed("hyperliquid", SYMBOL, "1h", streams=("trades",), venue=venue, cache=cache,
                                settings=FAST_LIVE, clock=lambda: s.now_ms, on_event=on_event):  # fmt: skip
                await s.wait_subscribed("trades:BTC")
                t = s.now_ms
                trades = [HlTrade(t, 70_000.0, 0.5, "B", A1, new1), HlTrade(t + 5, 70_010.0, 1.0, "A", new1.upper()
                          .replace("0X", "0x"), new2)]  # fmt: skip
                await s.push_trades(trades)
                await s.push_trades(
                    trades[:1]
                )  # the same trade again (a new trade id: the venue's own repeat)
                await until(lambda: sampler.book.trades_seen == 3, what="trades")
                await running(
                    sampler, lambda: store.count("position_samples") == 3, "discovered accounts sampled"
                )
        rows = {r.address: r for r in store.accounts()}
        assert set(rows) == {A1, new1, new2}
        r1 = rows[new1]
        assert (r1.first_seen, r1.last_seen, r1.trades) == (t, t + 5, 3)
        assert r1.notional == pytest.approx(2 * 35_000.0 + 70_010.0)
        assert all(r.last_sampled == s.now_ms for r in rows.values())
        (liq,) = store.state_at("BTC", s.now_ms).liquidation_px.tolist()
        assert liq == 63_500.5

    run(FakeHyperliquid(ping_interval=0.05), body, tmp_path)


def test_the_budget_holds_and_a_429_pauses_every_request(tmp_path: Path) -> None:
    many = [f"0x{i:040x}" for i in range(1, 301)]

    async def body(s: FakeHyperliquid, venue: Hyperliquid, store: PositionsStore) -> None:
        budget = SamplerSettings(budget=40, window_s=1.0, market_poll_s=100.0, idle_s=0.02, flush_s=0.05)
        sampler = PositionSampler(venue, store, SYMBOL, settings=budget, clock=lambda: s.now_ms)
        sampler.import_addresses(many)
        task = asyncio.ensure_future(sampler.run())
        await asyncio.sleep(3.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        log = [(t, w) for t, _, status, w in s.info_log if status == 200]
        times = np.array([t for t, _ in log])
        weights = np.array([w for _, w in log])
        # every window of (a little under: requests travel) one second holds at most the budget, at the server
        worst = max(weights[(times > t - 0.9) & (times <= t)].sum() for t in times)
        assert worst <= 40
        # and the budget is used: about 40 a second for 3 s (the first second has the open-interest poll)
        assert weights.sum() >= 0.5 * 40 * 3 and s.rate_limited == 0

    run(FakeHyperliquid(), body, tmp_path)


def test_a_429_pauses_every_request_and_the_sampler_goes_on(tmp_path: Path) -> None:
    many = [f"0x{i:040x}" for i in range(1, 61)]

    async def body(s: FakeHyperliquid, venue: Hyperliquid, store: PositionsStore) -> None:
        # the venue allows less than our budget (another client on the same address, say)
        settings = SamplerSettings(budget=400, window_s=1.0, market_poll_s=100.0, idle_s=0.02, flush_s=0.05,
                                   rate_limit_base_s=0.4)  # fmt: skip
        lines: list[tuple[str, str]] = []
        sampler = PositionSampler(venue, store, SYMBOL, settings=settings, clock=lambda: s.now_ms,
                                  on_status=lambda t, lv: lines.append((t, lv)))  # fmt: skip
        sampler.import_addresses(many)
        await running(sampler, lambda: store.count("position_samples") == 60, "every account sampled", 20.0)
        refused = [t for t, _, status, _ in s.info_log if status == 429]
        assert refused and sampler.stats.rate_limited == len(refused)
        first = refused[0]
        after = [t for t, *_ in s.info_log if t > first]
        # nothing asked during the pause (0.75 × 0.4 s at least)
        assert after and after[0] - first >= 0.75 * 0.4 - 0.02
        assert any("rate limited" in t and lv == "warning" for t, lv in lines)

    run(FakeHyperliquid(weight_limit=40, weight_window_s=1.0), body, tmp_path)


def test_bad_answers_cost_one_line_and_the_others_are_sampled(tmp_path: Path) -> None:
    async def body(s: FakeHyperliquid, venue: Hyperliquid, store: PositionsStore) -> None:
        s.answers[A6.lower()] = {"assetPositions": [{"position": {"coin": "BTC", "szi": "lots"}}]}
        s.answers[A2.lower()] = ["not", "an", "answer"]
        lines: list[tuple[str, str]] = []
        sampler = PositionSampler(venue, store, SYMBOL, settings=FAST, clock=lambda: s.now_ms,
                                  on_status=lambda t, lv: lines.append((t, lv)))  # fmt: skip
        sampler.import_addresses(list(CRAFTED))
        await running(sampler, lambda: store.count("position_samples") == 7 and sampler.stats.bad_answers == 2,
                      "the good accounts sampled")  # fmt: skip
        bad = [t for t, _ in lines if t.startswith("skipped")]
        assert len(bad) == 2 and all("\n" not in t for t in bad)
        assert any("szi is not a number" in t for t in bad) and any("not an object" in t for t in bad)
        assert any(A6[:8] in t for t in bad)  # which account, shortened
        keys = set(store.samples("BTC").sample_account.tolist())
        assert store.account_key(A6) not in keys and store.account_key(A2) not in keys

    run(FakeHyperliquid(accounts=copy.deepcopy(CRAFTED)), body, tmp_path)


def test_positions_gone_while_price_crossed_them_become_inferred_liquidations(tmp_path: Path) -> None:
    x, y, z, w = (addr(n) for n in (0xD1, 0xD2, 0xD3, 0xD4))

    async def body(s: FakeHyperliquid, venue: Hyperliquid, store: PositionsStore) -> None:
        i = s.closed_count()  # the live bar, which closes on advance()
        low, high = float(s.bars.low[i]), float(s.bars.high[i])
        s.accounts.update({
            x: [HlPosition("BTC", 1.5, low + 200, 25, liquidation_px=low + 10.5)],  # crossed by the bar's low
            y: [HlPosition("BTC", -2.0, high - 200, 25, "isolated", liquidation_px=high - 10.5)],  # by its high
            z: [HlPosition("BTC", 1.0, low + 100, 10, liquidation_px=low - 500.5)],  # not crossed; closed by hand
            w: [HlPosition("BTC", -0.5, high, 10, liquidation_px=high + 500.5)],  # not crossed; stays
        })  # fmt: skip
        now = [s.now_ms]
        sampler = PositionSampler(venue, store, SYMBOL, settings=FAST, clock=lambda: now[0])
        sampler.import_addresses([x, y, z, w])
        events: list[FeedEvent] = []

        def on_event(e: FeedEvent) -> None:
            events.append(e)
            if isinstance(e, CandleUpdate):
                sampler.observe_candle(e.open_time, 3_600_000, e.low, e.high)

        with Cache(tmp_path / "liqdesk.sqlite3") as cache:
            async with LiveFeed("hyperliquid", SYMBOL, "1h", streams=("candles",), venue=venue, cache=cache,
                                settings=FAST_LIVE, clock=lambda: s.now_ms, on_event=on_event):  # fmt: skip
                await s.wait_subscribed("candle:BTC:1h")
                await running(sampler, lambda: store.count("position_samples") == 4, "first answers")
                t1 = s.now_ms
                await s.advance(1)  # the bar closes: the fake liquidates x and y as the venue would
                assert sorted(a for _, a, _ in s.liquidated) == sorted([x.lower(), y.lower()])
                s.accounts[z] = []  # z closes its own position; price never reached its liquidation price
                closed_at = int(s.bars.open_time[i])
                await until(lambda: any(isinstance(e, CandleUpdate) and e.open_time == closed_at and e.low == low
                                        for e in events), what="the closed bar")  # fmt: skip
                now[0] = s.now_ms  # the sampler's clock moves on: every account is due again
                await running(sampler, lambda: store.count("inferred_liquidations") == 2
                              and store.count("position_samples") == 8, "inferred liquidations")  # fmt: skip
        got = store.inferred(SYMBOL)
        assert got.inferred.tolist() == [True, True]
        assert sorted(zip(got.side.tolist(), got.price.tolist(), got.quantity.tolist(), strict=True)) == [
            (-1, high - 10.5, 2.0), (1, low + 10.5, 1.5)]  # fmt: skip
        assert all(t1 < t <= s.now_ms for t in got.time.tolist())
        assert got.usd.tolist() == (got.price * got.quantity).tolist()
        assert sampler.stats.inferred == 2
        # the recorded tape in the cache holds none of them
        with Cache(tmp_path / "liqdesk.sqlite3") as cache:
            assert cache.count("liquidations") == 0

    run(FakeHyperliquid(ping_interval=0.05, auto_liquidate=True), body, tmp_path)


def test_the_sampler_resumes_from_the_store(tmp_path: Path) -> None:
    async def body(s: FakeHyperliquid, venue: Hyperliquid, store: PositionsStore) -> None:
        rule = SamplingRule(open_s=3600.0, active_s=3600.0)
        first = PositionSampler(venue, store, SYMBOL, settings=FAST, clock=lambda: s.now_ms)
        first.import_addresses(list(CRAFTED))
        await running(first, lambda: store.count("position_samples") == 9, "first run")
        again = PositionSampler(venue, store, SYMBOL, settings=SamplerSettings(
            budget=400, window_s=1.0, market_poll_s=100.0, idle_s=0.02, rule=rule), clock=lambda: s.now_ms)  # fmt: skip
        asked = len(s.requests_for("clearinghouseState"))
        task = asyncio.ensure_future(again.run())
        await asyncio.sleep(0.5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # every account was answered just now: nothing is due, nothing asked again
        assert len(s.requests_for("clearinghouseState")) == asked
        assert len(again._accounts) == 9

    run(FakeHyperliquid(accounts=copy.deepcopy(CRAFTED)), body, tmp_path)


def test_the_trades_stream_reconnects_after_a_drop_and_a_silence(tmp_path: Path) -> None:
    a, b = addr(0xE1), addr(0xE2)

    async def body(s: FakeHyperliquid, venue: Hyperliquid, store: PositionsStore) -> None:
        got: list[TradeEvent] = []
        settings = LiveSettings(
            backoff_base_s=0.02, backoff_cap_s=0.1, trades_stale_s=0.4, close_timeout_s=2.0
        )
        with Cache(tmp_path / "liqdesk.sqlite3") as cache:
            async with LiveFeed("hyperliquid", SYMBOL, "1h", streams=("trades",), venue=venue, cache=cache,
                                settings=settings, clock=lambda: s.now_ms,
                                on_event=lambda e: isinstance(e, TradeEvent) and got.append(e)) as feed:  # fmt: skip
                await s.wait_subscribed("trades:BTC")
                await s.push_trades([HlTrade(s.now_ms, 70_000.0, 0.1, "B", a, b)])
                await until(lambda: len(got) == 1, what="first trade")
                await s.drop_websockets()
                await s.wait_subscribed("trades:BTC")
                await s.push_trades([HlTrade(s.now_ms + 1, 70_001.0, 0.2, "A", b, a)])
                await until(lambda: len(got) == 2, what="a trade after the drop")
                s.silence_websockets()  # open but mute: only the watchdog notices
                await until(lambda: feed.stats[(SYMBOL, "trades")].stale_reconnects >= 1, what="watchdog")
                await s.wait_subscribed("trades:BTC")
                bad = '{"channel":"trades","data":[{"coin":"BTC","side":"B","px":"1","sz":"1","time":1,"tid":7}]}'
                await s.send_raw("trades:BTC", bad)  # no users: counted, not delivered
                await s.push_trades([HlTrade(s.now_ms + 2, 70_002.0, 0.3, "B", a, b)])
                await until(lambda: len(got) == 3, what="a trade after the silence")
                st = feed.stats[(SYMBOL, "trades")]
                assert st.reconnects >= 2 and st.malformed >= 1
        assert [(e.record.buyer, e.record.seller, e.record.size) for e in got] == [(a, b, 0.1), (b, a, 0.2),
                                                                                  (a, b, 0.3)]  # fmt: skip

    run(FakeHyperliquid(ping_interval=0.05), body, tmp_path)

"""LiveFeed against the fake Binance: reconnects, gap backfill, dedupe, malformed frames, rate limits, shutdown."""

from __future__ import annotations

import asyncio
import gc
import json
import warnings
from pathlib import Path

import numpy as np

from liqdesk.core.series import LONG, SHORT
from liqdesk.feeds.cache import Cache
from liqdesk.feeds.live import (
    CandleUpdate,
    FeedEvent,
    LiquidationEvent,
    LiveFeed,
    LiveSettings,
    OpenInterestUpdate,
    StatusEvent,
)
from tests._live_helpers import FAST, SYMBOL, FakeBinance, force_order_event, force_orders, until

H = 3_600_000
KLINES = "btcusdt@kline_1h"
LIQS = "btcusdt@forceOrder"


def _feed(
    s: FakeBinance, db: Cache, events: list[FeedEvent], settings: LiveSettings = FAST, **kw: object
) -> LiveFeed:
    return LiveFeed("binanceusdm", SYMBOL, "1h", ccxt_options=s.ccxt_options(), cache=db, settings=settings,
                    clock=lambda: s.now_ms, on_event=events.append, **kw)  # type: ignore[arg-type]  # fmt: skip


def _closed(events: list[FeedEvent]) -> list[int]:
    return [e.open_time for e in events if isinstance(e, CandleUpdate) and e.closed]


def _assert_cache_equals_served(s: FakeBinance, db: Cache) -> None:
    c = db.get_candles("binanceusdm", SYMBOL, "1h")
    served = s.served_klines(int(c.open_time[0]), s.now_ms)
    assert c.open_time.tolist() == [r[0] for r in served]  # no hole, no duplicate
    np.testing.assert_array_equal(c.volume, [float(r[5]) for r in served])  # final values, not revisions
    np.testing.assert_array_equal(c.quote_volume, [float(r[7]) for r in served])


def test_dropped_connection_leaves_no_gap_and_no_duplicate(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance(ping_interval=0.05) as s:
            events: list[FeedEvent] = []
            with Cache(tmp_path / "c.db") as db:
                async with _feed(s, db, events, streams=("candles",)) as feed:
                    await s.wait_subscribed(KLINES)
                    await until(lambda: len(_closed(events)) == FAST.history_bars, what="initial backfill")
                    for _ in range(4):
                        await s.advance(1, revisions=2)
                        await asyncio.sleep(0.02)
                    await s.drop_websockets()
                    await s.advance(5)  # five bars close while nobody listens
                    await s.wait_subscribed(KLINES)
                    for _ in range(3):
                        await s.advance(1)
                    last = s.closed_count() - 1
                    await until(
                        lambda: _closed(events)[-1:] == [int(s.klines.open_time[last])], what="last bar"
                    )
                    await feed.close()  # idempotent; the context manager closes on failure too
                _assert_cache_equals_served(s, db)
                closed = _closed(events)
                assert closed == sorted(set(closed)) and np.all(np.diff(closed) == H)  # each bar emitted once
                st = feed.stats[(SYMBOL, "candles")]
                assert st.reconnects >= 1 and st.backfilled == FAST.history_bars + 12
                assert any(isinstance(e, StatusEvent) and e.level == "warning" for e in events)
                live = [e for e in events if isinstance(e, CandleUpdate) and not e.closed]
                assert live and all(e.quote_volume is None for e in live)

    asyncio.run(main())


def test_out_of_order_and_stale_kline_messages_are_skipped(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance(ping_interval=0.05) as s:
            events: list[FeedEvent] = []
            with Cache(tmp_path / "c.db") as db:
                async with _feed(s, db, events, streams=("candles",)) as feed:
                    await s.wait_subscribed(KLINES)
                    await until(lambda: len(_closed(events)) == FAST.history_bars)
                    await s.advance(2, revisions=2)
                    live_i = s.closed_count()
                    await until(lambda: any(isinstance(e, CandleUpdate) and not e.closed
                                            and e.open_time == int(s.klines.open_time[live_i]) for e in events))  # fmt: skip
                    n_events = len(events)
                    st = feed.stats[(SYMBOL, "candles")]
                    await s.push_kline(live_i - 3, final=True)  # an old, closed bar arrives late
                    await until(lambda: st.out_of_order == 1, what="old bar skipped")
                    await s.push_kline(
                        live_i, final=False, fraction=0.1
                    )  # a revision older than one already seen
                    await until(lambda: st.out_of_order == 2, what="stale revision skipped")
                    await s.push_kline(live_i, final=False, fraction=0.9)  # a newer revision: delivered
                    await until(lambda: any(isinstance(e, CandleUpdate) and e.volume > 0 and not e.closed
                                            and e.open_time == int(s.klines.open_time[live_i])
                                            for e in events[n_events:]))  # fmt: skip
                    await feed.close()  # idempotent; the context manager closes on failure too
                assert st.out_of_order >= 2
                new = [e for e in events[n_events:] if isinstance(e, CandleUpdate)]
                assert all(e.open_time == int(s.klines.open_time[live_i]) for e in new)
                _assert_cache_equals_served(s, db)

    asyncio.run(main())


def test_every_valid_liquidation_stored_once_malformed_counted(tmp_path: Path) -> None:
    rows = [r for r in force_orders() if r["symbol"] == "BTC"]

    async def main() -> None:
        async with FakeBinance() as s:
            events: list[FeedEvent] = []
            with Cache(tmp_path / "c.db") as db:
                async with _feed(s, db, events, streams=("liquidations",)) as feed:
                    await s.wait_subscribed(LIQS)
                    malformed = [
                        json.dumps({"e": "forceOrder", "E": 1, "o": {"s": "BTCUSDT", "S": "SELL", "p": "abc", "q": "x",
                                                                     "T": "zz"}}),
                        json.dumps({"e": "forceOrder", "E": 1, "o": "nope"}),  # breaks ccxt's own parser
                        json.dumps({"e": "forceOrder", "E": 1}),
                        json.dumps({"e": "forceOrder", "E": 1, "o": {"s": "BTCUSDT", "S": "MAYBE", "p": "1", "ap": "1",
                                                                     "z": "1", "T": 1737996728214}}),
                        json.dumps([1, 2, 3]),
                        '{"e":"forceOrder","E":1737996728216,"o":{"s":"BTCUSDT","S":"SE',  # truncated frame
                    ]  # fmt: skip
                    for i, row in enumerate(rows):
                        await s.push_liquidation(force_order_event(row))
                        if i % 5 == 0:
                            await s.push_liquidation(force_order_event(row))  # duplicate
                        if i % 5 == 2 and malformed:
                            await s.send_raw(LIQS, malformed.pop())
                        if i == 20:
                            await s.push_liquidation(
                                force_order_event(rows[3])
                            )  # late duplicate, out of order
                    assert not malformed
                    await until(lambda: db.count("liquidations") == len(rows), what="all liquidations")
                    await until(lambda: feed.total("malformed") == 6, what="malformed count")
                    await feed.close()  # idempotent; the context manager closes on failure too
                st = feed.stats[(SYMBOL, "liquidations")]
                assert st.duplicates == 8 and st.stored == len(rows)
                got = db.get_liquidations("binanceusdm", SYMBOL)
                want = sorted(int(r["trade_time_ms"]) for r in rows)
                assert sorted(got.time.tolist()) == want
                sides = {int(r["trade_time_ms"]): LONG if r["side"] == "SELL" else SHORT for r in rows}
                assert all(sides[int(t)] == sd for t, sd in zip(got.time, got.side, strict=True))
                liq_events = [e for e in events if isinstance(e, LiquidationEvent)]
                assert len(liq_events) == len(rows)

    asyncio.run(main())


def test_a_liquidation_that_woke_no_waiting_watch_is_still_stored(tmp_path: Path) -> None:
    """ccxt resolves only a watch that is waiting: a forceOrder taken while the feed was storing the previous ones
    (between reading ccxt's cache and waiting again) lands in the cache and wakes nobody. Under load the last
    event of a burst stayed unstored until the next liquidation, or for good if the app closed first."""
    rows = [r for r in force_orders() if r["symbol"] == "BTC"][:2]

    async def main() -> None:
        async with FakeBinance() as s:
            events: list[FeedEvent] = []
            with Cache(tmp_path / "c.db") as db:
                async with _feed(s, db, events, streams=("liquidations",)) as feed:
                    await s.wait_subscribed(LIQS)
                    await s.push_liquidation(force_order_event(rows[0]))
                    await until(lambda: db.count("liquidations") == 1, what="the first liquidation")
                    await asyncio.sleep(0.05)  # the feed waits on its next watch call again
                    # the race, made deterministic: the second event reaches ccxt's cache with no future resolved
                    ex = feed.venue.exchange
                    raw = force_order_event(rows[1])["o"]
                    ex.liquidations.append(ex.parse_ws_liquidation(raw, ex.market(SYMBOL)))
                    await until(
                        lambda: db.count("liquidations") == 2, timeout=3, what="the one that woke nobody"
                    )
                    await feed.close()
                assert [e.record.time for e in events if isinstance(e, LiquidationEvent)] == [
                    int(r["trade_time_ms"]) for r in rows
                ]

    asyncio.run(main())


def test_silent_connection_is_detected_and_gap_backfilled(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance(ping_interval=0.05) as s:
            events: list[FeedEvent] = []
            with Cache(tmp_path / "c.db") as db:
                async with _feed(s, db, events, streams=("candles", "liquidations")) as feed:
                    await s.wait_subscribed(KLINES)
                    await s.wait_subscribed(LIQS)
                    await until(lambda: len(_closed(events)) == FAST.history_bars)
                    s.silence_websockets()  # connections stay open but nothing arrives: ccxt raises nothing
                    await s.advance(3)
                    await s.wait_subscribed(KLINES, timeout=5)
                    await s.wait_subscribed(LIQS, timeout=5)
                    await s.advance(1)
                    row = next(r for r in force_orders() if r["symbol"] == "BTC")
                    await s.push_liquidation(force_order_event(row))
                    last = int(s.klines.open_time[s.closed_count() - 1])
                    await until(lambda: _closed(events)[-1:] == [last], what="bars after the stall")
                    await until(lambda: db.count("liquidations") == 1, what="liquidation after the stall")
                    await feed.close()  # idempotent; the context manager closes on failure too
                assert feed.stats[(SYMBOL, "candles")].stale_reconnects >= 1
                assert feed.stats[(SYMBOL, "liquidations")].stale_reconnects >= 1
                _assert_cache_equals_served(s, db)

    asyncio.run(main())


def test_rate_limit_during_live_backfill_backs_off_and_recovers(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance() as s:
            events: list[FeedEvent] = []
            with Cache(tmp_path / "c.db") as db:
                async with _feed(s, db, events, streams=("candles", "open_interest")) as feed:
                    await s.wait_subscribed(KLINES)
                    await until(lambda: len(_closed(events)) == FAST.history_bars)
                    s.fail_next("/fapi/v1/klines", 429, count=6)  # more than one call's retries
                    s.fail_next("/futures/data/openInterestHist", 418, count=6)
                    await s.advance(2)
                    last = int(s.klines.open_time[s.closed_count() - 1])
                    await until(lambda: _closed(events)[-1:] == [last], what="recovery after 429")
                    await until(
                        lambda: any(isinstance(e, OpenInterestUpdate) for e in events), what="open interest"
                    )
                    await feed.close()  # idempotent; the context manager closes on failure too
                texts = [e.text for e in events if isinstance(e, StatusEvent)]
                assert any("rate limited" in t for t in texts)
                assert feed.total("rate_limited") >= 1
                _assert_cache_equals_served(s, db)

    asyncio.run(main())


def test_shutdown_closes_everything_without_warnings(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance(ping_interval=0.05) as s:
            events: list[FeedEvent] = []
            q: asyncio.Queue[FeedEvent] = asyncio.Queue()
            with Cache(tmp_path / "c.db") as db:
                async with _feed(s, db, events, queue=q) as feed:
                    await s.wait_subscribed(KLINES)
                    await s.wait_subscribed(LIQS)
                    await s.advance(1)
                    await until(lambda: any(isinstance(e, OpenInterestUpdate) for e in events))
                    await feed.close()  # idempotent; the context manager closes on failure too
                assert all(t.done() for t in asyncio.all_tasks() if "LiveFeed" in repr(t.get_coro()))
                assert q.qsize() == len(events)

    loop_errors: list[dict] = []

    async def guarded() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: loop_errors.append(ctx))
        await main()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(guarded())
        gc.collect()
    bad = [w for w in caught if issubclass(w.category, ResourceWarning) or "nclosed" in str(w.message)]
    assert not bad, [str(w.message) for w in bad]
    assert not loop_errors, loop_errors


def test_a_stream_that_worked_reconnects_at_the_base_delay_after_a_later_drop(tmp_path: Path) -> None:
    """The backoff grows while a stream keeps failing, and starts afresh once it has worked again: a recorder that
    has reconnected a few times in its life does not sit out later drops for up to a minute while the exchange
    keeps publishing liquidations nobody can fetch again."""
    rows = [r for r in force_orders() if r["symbol"] == "BTC"][:5]
    settings = LiveSettings(**{**FAST.__dict__, "backoff_base_s": 0.2, "backoff_cap_s": 30.0,
                               "liquidation_stale_s": 30.0})  # fmt: skip

    async def main() -> None:
        async with FakeBinance() as s:
            events: list[FeedEvent] = []
            with Cache(tmp_path / "c.db") as db:
                async with _feed(s, db, events, settings, streams=("liquidations",)) as feed:
                    for n, row in enumerate(rows, 1):
                        await s.wait_subscribed(LIQS)
                        await s.push_liquidation(force_order_event(row))
                        await until(lambda n=n: db.count("liquidations") == n, what=f"liquidation {n}")
                        if n < len(rows):
                            await s.drop_websockets()
                    await feed.close()
            waits = [
                float(e.text.rsplit("reconnecting in ", 1)[1].split()[0])
                for e in events
                if isinstance(e, StatusEvent) and "reconnecting in" in e.text
            ]
            assert len(waits) == len(rows) - 1
            assert max(waits) <= 0.2, waits  # each drop came after the stream had delivered again

    asyncio.run(main())


def test_a_failed_catch_up_is_done_again_from_what_the_stream_showed(tmp_path: Path) -> None:
    """The exchange's REST fails when a new bar opens (every retry), and no later update comes: the bar that closed
    is still fetched and stored after the backoff, from the update already received. The feed's clock stays behind
    the exchange's (a slow local clock; in the load test the fakes run hours ahead of the real clock), so the
    catch-up on reconnecting cannot rely on it."""

    async def main() -> None:
        async with FakeBinance(ping_interval=0.05) as s:
            events: list[FeedEvent] = []
            start_clock = s.now_ms
            with Cache(tmp_path / "c.db") as db:
                feed = LiveFeed("binanceusdm", SYMBOL, "1h", ccxt_options=s.ccxt_options(), cache=db,
                                settings=FAST, clock=lambda: start_clock, on_event=events.append,
                                streams=("candles",))  # fmt: skip
                async with feed:
                    await s.wait_subscribed(KLINES)
                    await until(lambda: len(_closed(events)) == FAST.history_bars, what="initial backfill")
                    s.fail_next("/fapi/v1/klines", 500, count=FAST.rest.attempts + 1)  # one catch-up gives up
                    await s.advance(2)  # no update after the second bar's first revision
                    last = int(s.klines.open_time[s.closed_count() - 1])
                    await until(lambda: _closed(events)[-1:] == [last], what="the bar whose catch-up failed")
                    await feed.close()
                assert feed.stats[(SYMBOL, "candles")].reconnects >= 1
                _assert_cache_equals_served(s, db)

    asyncio.run(main())

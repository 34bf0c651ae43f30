"""Each venue end to end against its fake: history backfill into a real cache, then the LiveFeed streaming live
bars (and liquidations where the venue publishes them), with faults on the way. The real ccxt client speaks to
loopback servers in the venues' own wire formats."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from liqdesk.app.cli import main as cli_main
from liqdesk.core.series import LONG, SHORT
from liqdesk.errors import DataError
from liqdesk.feeds.cache import Cache
from liqdesk.feeds.history import load_history_async
from liqdesk.feeds.live import (
    CandleUpdate,
    FeedEvent,
    LiquidationEvent,
    LiveFeed,
    OpenInterestUpdate,
    StatusEvent,
)
from tests._live_helpers import FAST, FAST_REST, until
from tests.fake_exchange.bybit import FakeBybit
from tests.fake_exchange.hyperliquid import FakeHyperliquid
from tests.fake_exchange.okx import FakeOkx
from tests.fake_exchange.venue_base import FakeVenue
from tests.fake_exchange.venue_data import recorded_liquidations

H = 3_600_000


def _closed(events: list[FeedEvent]) -> list[int]:
    return [e.open_time for e in events if isinstance(e, CandleUpdate) and e.closed]


def _assert_cache_equals_served(
    s: FakeVenue, db: Cache, exchange: str, symbol: str, *, quote: bool, taker_from: int | None = None
) -> None:
    """The cache holds exactly the closed bars served; taker volume (where given) from bar ``taker_from`` on."""
    c = db.get_candles(exchange, symbol, "1h")
    served = s.served_closed(int(c.open_time[0]), s.now_ms)
    assert c.open_time.tolist() == [b.open_time for b in served]  # no hole, no duplicate, no live bar
    for col in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(getattr(c, col), [float(getattr(b, col)) for b in served], err_msg=col)
    if quote:
        assert c.quote_volume is not None
        np.testing.assert_allclose(c.quote_volume, [float(b.quote or "nan") for b in served])
    else:
        assert c.quote_volume is None
    if taker_from is None:
        assert c.taker_buy_volume is None
    else:
        assert c.taker_buy_volume is not None
        taker = [float(b.taker_base or "nan") if b.open_time >= taker_from else np.nan for b in served]
        np.testing.assert_allclose(c.taker_buy_volume, taker)


# -- Bybit -------------------------------------------------------------------------------------------------------
BYBIT = "BTC/USDT:USDT"


def test_bybit_backfill_then_live_bars_and_liquidations_with_faults(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBybit(ping_interval=0.05) as s:
            opts = s.ccxt_options()
            start = (
                int(s.bars.open_time[s.closed_count() - 1500]) + 123
            )  # more than one 1,000-bar page, unaligned
            s.fail_next("/v5/market/kline", 429)  # Bybit's "Too many visits!" (retCode 10006)
            s.fail_next("/v5/market/open-interest", 500)  # retCode 10016: a system error, retried
            s.fail_next("/v5/market/mark-price-kline", 503)  # a gateway page, not JSON
            msgs: list[str] = []
            with Cache(tmp_path / "c.db") as db:
                h = await load_history_async(
                    "bybit", BYBIT, "1h", start, s.now_ms, ccxt_options=opts, cache=db, now_ms=s.now_ms,
                    policy=FAST_REST, progress=lambda d, t, m: msgs.append(m),
                )  # fmt: skip
                assert not h.notes, h.notes
                assert sum("rate limited" in m for m in msgs) == 1
                assert sum("server error" in m for m in msgs) >= 2  # 10016 and the 503 are retried
                _assert_cache_equals_served(s, db, "bybit", BYBIT, quote=True)
                assert len(h.candles) == 1500 and h.candles.mark_high is not None
                klines = s.requests_for("/v5/market/kline")
                assert all(1 <= int(q["limit"]) <= 1000 for q in klines)
                # every request spans one page: Bybit answers a wider range with its newest bars
                assert all((int(q["end"]) - int(q["start"])) // H < int(q["limit"]) for q in klines)
                # open interest: Bybit's coins, valued at the open of the bar starting at each snapshot
                oi = h.open_interest
                assert oi is not None and len(oi) > 24
                want = s.served_open_interest("1h", int(h.candles.open_time[0]), s.now_ms - s.now_ms % H)
                opens = dict(zip(s.bars.open_time.tolist(), map(float, s.bars.open), strict=True))
                assert oi.time.tolist() == [t for t, _ in want]
                np.testing.assert_allclose(oi.usd, [base * opens[t] for t, base in want])
                assert all(int(q["limit"]) <= 200 for q in s.requests_for("/v5/market/open-interest"))

                # live: bars, a dropped connection, a malformed frame, liquidations in 500 ms batches
                events: list[FeedEvent] = []
                async with LiveFeed("bybit", BYBIT, "1h", ccxt_options=opts, cache=db, settings=FAST,
                                    clock=lambda: s.now_ms, on_event=events.append) as feed:  # fmt: skip
                    await s.wait_subscribed("kline.60.BTCUSDT")
                    await s.wait_subscribed("allLiquidation.BTCUSDT")
                    await s.advance(2, revisions=2)
                    await s.drop_websockets()
                    await s.advance(3)  # three bars close while nobody listens
                    await s.wait_subscribed("kline.60.BTCUSDT")
                    await s.wait_subscribed("allLiquidation.BTCUSDT")
                    await s.advance(1)
                    liqs = recorded_liquidations(start_ms=s.now_ms - 600_000)
                    await s.push_liquidations(liqs[:12])
                    await s.send_raw(
                        "allLiquidation.BTCUSDT", '{"topic":"allLiquidation.BTCUSDT","data":[{"T":'
                    )
                    await s.push_liquidations(liqs[12:20])
                    await s.push_liquidations(liqs[10:14])  # a repeated batch: stored once
                    await s.push_liquidations(liqs[20:])
                    last = s.closed_count() - 1
                    await until(
                        lambda: _closed(events)[-1:] == [int(s.bars.open_time[last])], what="last bar"
                    )
                    await until(lambda: db.count("liquidations") == len(liqs), what="all liquidations")
                    assert feed.total("malformed") >= 1
                _assert_cache_equals_served(s, db, "bybit", BYBIT, quote=True)
                closed = _closed(events)
                assert closed == sorted(set(closed)) and np.all(np.diff(closed) == H)
                live = [e for e in events if isinstance(e, CandleUpdate) and not e.closed]
                assert live and all(e.quote_volume is None for e in live)
                got = db.get_liquidations("bybit", BYBIT)
                assert sorted(got.time.tolist()) == sorted(e.time for e in liqs)
                by_time = {e.time: e for e in liqs}
                for t, side, price, qty in zip(got.time, got.side, got.price, got.quantity, strict=True):
                    e = by_time[int(t)]
                    assert side == (LONG if e.long else SHORT)  # Bybit's S is the position side
                    assert price == float(e.order_price) and qty == float(e.base)  # bankruptcy price, coins
                assert len([e for e in events if isinstance(e, LiquidationEvent)]) == len(liqs)
                assert any(isinstance(e, OpenInterestUpdate) for e in events)
                assert not any(isinstance(e, StatusEvent) and e.level == "error" for e in events)

    asyncio.run(main())


def test_bybit_open_interest_follows_the_cursor(tmp_path: Path) -> None:
    """A window holding more snapshots than a page comes back in pages linked by nextPageCursor."""

    async def main() -> None:
        from liqdesk.feeds.venues import create_venue

        async with FakeBybit() as s:
            v = create_venue("bybit", s.ccxt_options())
            try:
                t0 = int(s.oi_time[0]) + 300_000 * 7  # a 5-minute-aligned start inside the week
                t0 -= t0 % H
                page = await v.open_interest_page(BYBIT, "1h", t0, t0 + 450 * H, 50)
            finally:
                await v.close()
            cursor_requests = [q for q in s.requests_for("/v5/market/open-interest") if "cursor" in q]
            want = s.served_open_interest("1h", t0, t0 + 450 * H)
            assert len(want) > 100 and len(cursor_requests) == -(-len(want) // 50) - 1
            assert page.time.tolist() == [t for t, _ in want]

    asyncio.run(main())


def test_bybit_malformed_payload_is_a_clear_error(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBybit() as s:
            s.fail_next("/v5/market/open-interest", 200, body=json.dumps({"retCode": 0, "retMsg": "OK",
                                                                          "result": {"list": None}}))  # fmt: skip
            from liqdesk.feeds.venues import create_venue

            v = create_venue("bybit", s.ccxt_options())
            try:
                with pytest.raises(ValueError, match="bybit open interest: no result list"):
                    await v.open_interest_page(BYBIT, "1h", int(s.oi_time[-100]), int(s.oi_time[-1]), 200)
            finally:
                await v.close()

    asyncio.run(main())


def test_a_malformed_answer_is_one_clear_error(tmp_path: Path) -> None:
    """Rows the venue sends that cannot be read stop the load with a DataError naming the venue, not a traceback."""

    async def main() -> None:
        async with FakeBybit() as s:
            t = s.now_ms - s.now_ms % H - 2 * H  # a closed bar inside the range asked for
            rows = [[str(t), "abc", "1", "1", "1", "1", "1"]]
            garbage = {
                "retCode": 0,
                "retMsg": "OK",
                "time": s.now_ms,
                "result": {"category": "linear", "list": rows},
            }
            s.fail_next("/v5/market/kline", 200, body=json.dumps(garbage))
            with (
                Cache(tmp_path / "c.db") as db,
                pytest.raises(DataError, match="bybit sent candles that cannot be used"),
            ):
                await load_history_async("bybit", BYBIT, "1h", s.now_ms - 10 * H, s.now_ms, ccxt_options=s.ccxt_options(),
                                         cache=db, now_ms=s.now_ms, policy=FAST_REST, with_open_interest=False)  # fmt: skip

    asyncio.run(main())


# -- OKX ---------------------------------------------------------------------------------------------------------
OKX = "BTC/USDT:USDT"


def test_okx_backfill_then_live_bars_and_liquidations_with_faults(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeOkx(ping_interval=0.05) as s:
            opts = s.ccxt_options()
            start = int(s.bars.open_time[s.closed_count() - 1500])  # older than the latest 1,440 bars too
            taker_from = int(s.bars.open_time[s.taker_available()[0]])
            s.fail_next("/api/v5/market/history-candles", 429)  # code 50011
            s.fail_next("/api/v5/rubik/stat/contracts/open-interest-history", 503)  # code 50001
            s.fail_next("/api/v5/rubik/stat/taker-volume-contract", 500)  # code 50026
            msgs: list[str] = []
            with Cache(tmp_path / "c.db") as db:
                h = await load_history_async(
                    "okx", OKX, "1h", start, s.now_ms, ccxt_options=opts, cache=db, now_ms=s.now_ms,
                    policy=FAST_REST, progress=lambda d, t, m: msgs.append(m),
                )  # fmt: skip
                assert not h.notes, h.notes
                assert sum("rate limited" in m for m in msgs) == 1
                assert sum("server error" in m for m in msgs) == 2
                _assert_cache_equals_served(s, db, "okx", OKX, quote=True, taker_from=taker_from)
                assert len(h.candles) == 1500 and h.candles.mark_high is not None
                # old bars from history-candles (<= 100), the latest 1,440 from candles (<= 300)
                old, recent = (
                    s.requests_for("/api/v5/market/history-candles"),
                    s.requests_for("/api/v5/market/candles"),
                )
                assert old and recent and len(recent) <= 6
                assert all(int(q["limit"]) <= 100 for q in old) and all(
                    int(q["limit"]) <= 300 for q in recent
                )
                assert all(
                    int(q["limit"]) <= 100
                    for q in s.requests_for("/api/v5/market/history-mark-price-candles")
                )
                # open interest in USD straight from the venue (oiUsd), <= 100 a call
                oi = h.open_interest
                assert oi is not None and len(oi) > 24
                want = s.served_open_interest("1H", int(h.candles.open_time[0]), s.now_ms - s.now_ms % H)
                assert list(zip(oi.time.tolist(), oi.usd.tolist(), strict=True)) == want
                oi_requests = s.requests_for("/api/v5/rubik/stat/contracts/open-interest-history")
                assert all(int(q["limit"]) <= 100 for q in oi_requests)

                events: list[FeedEvent] = []
                async with LiveFeed("okx", OKX, "1h", ccxt_options=opts, cache=db, settings=FAST,
                                    clock=lambda: s.now_ms, on_event=events.append) as feed:  # fmt: skip
                    await s.wait_subscribed("candle1H:BTC-USDT-SWAP")
                    await s.wait_subscribed("liquidation-orders:SWAP")
                    await s.advance(2, revisions=2)
                    await s.drop_websockets()
                    await s.advance(3)
                    await s.wait_subscribed("candle1H:BTC-USDT-SWAP")
                    await s.wait_subscribed("liquidation-orders:SWAP")
                    await s.advance(1)
                    liqs = recorded_liquidations(start_ms=s.now_ms - 600_000)
                    for i, e in enumerate(liqs):
                        await s.push_liquidations([e], net=i % 3 == 0)  # some one-way-mode positions
                        if i == 5:
                            await s.send_raw(
                                "liquidation-orders:SWAP", '{"arg":{"channel":"liquidation-orders"'
                            )
                        if i == 9:
                            await s.push_liquidations([liqs[2]])  # a repeat: stored once
                    last = s.closed_count() - 1
                    await until(
                        lambda: _closed(events)[-1:] == [int(s.bars.open_time[last])], what="last bar"
                    )
                    await until(lambda: db.count("liquidations") == len(liqs), what="all liquidations")
                    assert feed.total("malformed") >= 1
                _assert_cache_equals_served(s, db, "okx", OKX, quote=True, taker_from=taker_from)
                closed = _closed(events)
                assert closed == sorted(set(closed)) and np.all(np.diff(closed) == H)
                live_closed = [e for e in events if isinstance(e, CandleUpdate) and e.closed][-6:]
                assert all(
                    e.taker_buy_volume is not None for e in live_closed
                )  # fresh bars carry taker volume
                got = db.get_liquidations("okx", OKX)
                by_time = {e.time: e for e in liqs}
                assert sorted(got.time.tolist()) == sorted(by_time)
                for t, side, price, qty in zip(got.time, got.side, got.price, got.quantity, strict=True):
                    e = by_time[int(t)]
                    assert side == (LONG if e.long else SHORT)  # posSide, or the order side in net mode
                    assert price == float(e.order_price)  # bkPx
                    assert qty == pytest.approx(float(e.base))  # contracts x ctVal 0.01
                assert not any(isinstance(e, StatusEvent) and e.level == "error" for e in events)

    asyncio.run(main())


def test_okx_silent_connections_are_replaced_and_slow_answers_retried(tmp_path: Path) -> None:
    """Candles and liquidations ride two OKX connections (/business and /public): the watchdog finds each
    silent one; an answer slower than the client's timeout is retried."""

    async def main() -> None:
        async with FakeOkx(ping_interval=0.05) as s:
            opts = {**s.ccxt_options(), "timeout": 400}
            s.delay_next("/api/v5/market/candles", 1.0)
            events: list[FeedEvent] = []
            with Cache(tmp_path / "c.db") as db:
                async with LiveFeed("okx", OKX, "1h", ccxt_options=opts, cache=db, settings=FAST,
                                    clock=lambda: s.now_ms, on_event=events.append,
                                    streams=("candles", "liquidations")) as feed:  # fmt: skip
                    await until(lambda: len(_closed(events)) == FAST.history_bars, what="initial backfill")
                    assert any(isinstance(e, StatusEvent) and "RequestTimeout" in e.text for e in events)
                    await s.wait_subscribed("candle1H:BTC-USDT-SWAP")
                    await s.wait_subscribed("liquidation-orders:SWAP")
                    assert s.silence_websockets() == 2
                    st = feed.stats
                    await until(lambda: st[(OKX, "candles")].stale_reconnects >= 1
                                and st[(OKX, "liquidations")].stale_reconnects >= 1, what="both found silent")  # fmt: skip
                    await s.wait_subscribed("candle1H:BTC-USDT-SWAP")
                    await s.wait_subscribed("liquidation-orders:SWAP")
                    await s.advance(2)
                    await s.push_liquidations(recorded_liquidations(start_ms=s.now_ms - 60_000)[:3])
                    last = s.closed_count() - 1
                    await until(
                        lambda: _closed(events)[-1:] == [int(s.bars.open_time[last])], what="last bar"
                    )
                    await until(lambda: db.count("liquidations") == 3, what="liquidations after the silence")
                _assert_cache_equals_served(s, db, "okx", OKX, quote=True,
                                            taker_from=int(s.bars.open_time[s.taker_available()[0]]))  # fmt: skip

    asyncio.run(main())


# -- Hyperliquid -------------------------------------------------------------------------------------------------
HL = "BTC/USDC:USDC"


def test_hyperliquid_backfill_records_open_interest_from_first_use_and_streams_live(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeHyperliquid(ping_interval=0.05) as s:
            opts = s.ccxt_options()
            start = int(
                s.bars.open_time[s.closed_count() - 6000]
            )  # older than the 5,000 candles the venue keeps
            s.fail_next("candleSnapshot", 429)
            msgs: list[str] = []
            with Cache(tmp_path / "c.db") as db:
                h = await load_history_async(
                    "hyperliquid", HL, "1h", start, s.now_ms, ccxt_options=opts, cache=db, now_ms=s.now_ms,
                    policy=FAST_REST, progress=lambda d, t, m: msgs.append(m),
                )  # fmt: skip
                assert sum("rate limited" in m for m in msgs) == 1
                assert any("keeps only its latest 5,000 1h candles" in w for w in h.notes), h.notes
                assert any("no open-interest history" in w and "1 point since" in w for w in h.notes)
                _assert_cache_equals_served(s, db, "hyperliquid", HL, quote=False)
                assert len(h.candles) == 4999  # the latest 5,000 include the live one
                assert h.candles.mark_high is None  # no mark-price candles on this venue
                # the 429, then one answer: the latest 5,000 of the 6,000 asked for
                assert len(s.requests_for("candleSnapshot")) == 2
                oi = h.open_interest
                assert oi is not None and oi.time.tolist() == [s.now_ms]
                assert oi.usd[0] == pytest.approx(s.open_interest_usd())

                events: list[FeedEvent] = []
                s.fail_next("metaAndAssetCtxs", 500, count=2)  # markets and open interest come from it
                async with LiveFeed("hyperliquid", HL, "1h", ccxt_options=opts, cache=db, settings=FAST,
                                    clock=lambda: s.now_ms, on_event=events.append) as feed:  # fmt: skip
                    assert (HL, "liquidations") not in feed.stats  # nothing to watch
                    await s.wait_subscribed("candle:BTC:1h")
                    for _ in range(3):
                        await s.advance(1, revisions=2)
                        await asyncio.sleep(3 * FAST.oi_poll_s)  # an open-interest poll in each new hour
                    await s.drop_websockets()
                    await s.advance(2)
                    await s.wait_subscribed("candle:BTC:1h")
                    await s.send_raw("candle:BTC:1h", '{"channel":"candle","data":{"t":')
                    await s.advance(1)
                    last = s.closed_count() - 1
                    await until(
                        lambda: _closed(events)[-1:] == [int(s.bars.open_time[last])], what="last bar"
                    )
                    await until(
                        lambda: len(db.get_open_interest("hyperliquid", HL, "1h")) >= 5, what="OI points"
                    )
                _assert_cache_equals_served(s, db, "hyperliquid", HL, quote=False)
                closed = _closed(events)
                assert closed == sorted(set(closed)) and np.all(np.diff(closed) == H)
                assert any(
                    isinstance(e, StatusEvent) and "publishes no liquidation stream" in e.text for e in events
                )
                assert not any(isinstance(e, LiquidationEvent) for e in events)
                # one point per hour, each the value observed then
                stored = db.get_open_interest("hyperliquid", HL, "1h")
                hours = stored.time // H
                assert len(set(hours.tolist())) == len(hours)
                for t, usd in zip(stored.time, stored.usd, strict=True):
                    assert usd == pytest.approx(s.open_interest_usd(int(t)))
                assert [e.time for e in events if isinstance(e, OpenInterestUpdate)] == stored.time.tolist()

    asyncio.run(main())


def test_hyperliquid_open_interest_answered_after_the_hour_turned_is_that_hour_s_point(
    tmp_path: Path,
) -> None:
    """The current open interest is asked for in one hour and answered in the next (a slow answer): the point is
    the new hour's, with the value the venue gave then, not the old hour's with a value it never had."""

    async def main() -> None:
        async with FakeHyperliquid(ping_interval=0.05) as s:
            events: list[FeedEvent] = []
            with Cache(tmp_path / "c.db") as db:
                async with LiveFeed("hyperliquid", HL, "1h", ccxt_options=s.ccxt_options(), cache=db, settings=FAST,
                                    clock=lambda: s.now_ms, on_event=events.append,
                                    streams=("open_interest",)):  # fmt: skip
                    await until(
                        lambda: len(db.get_open_interest("hyperliquid", HL, "1h")) == 1, what="first point"
                    )
                    asked = s.requests["metaAndAssetCtxs"]
                    s.delay_next("metaAndAssetCtxs", 0.5)
                    await s.advance(1)  # a new hour: the next poll asks for its point
                    await until(lambda: s.requests["metaAndAssetCtxs"] > asked, what="the slow request")
                    await s.advance(1)  # the hour turns again while the answer is on its way
                    await until(
                        lambda: len(db.get_open_interest("hyperliquid", HL, "1h")) == 2, what="second point"
                    )
                stored = db.get_open_interest("hyperliquid", HL, "1h")
                assert stored.time[-1] // H == s.now_ms // H
                for t, usd in zip(stored.time, stored.usd, strict=True):
                    assert usd == pytest.approx(s.open_interest_usd(int(t)))
                assert [e.time for e in events if isinstance(e, OpenInterestUpdate)] == stored.time.tolist()

    asyncio.run(main())


# -- the command line on each venue ---------------------------------------------------------------------------------
class _Threaded:
    """A fake venue on its own loop in a thread, like a remote server, for synchronous command-line runs."""

    def __init__(self, make: Callable[[], FakeVenue]) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = make()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> FakeVenue:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.mark.parametrize(
    ("make", "exchange", "symbol"),
    [(FakeBybit, "bybit", BYBIT), (FakeOkx, "okx", OKX), (FakeHyperliquid, "hyperliquid", HL)],
)
def test_export_from_each_venue_on_the_command_line(
    make: Callable[..., FakeVenue], exchange: str, symbol: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """``liqdesk export --exchange …`` reads the system clock, so the fake's bars are moved onto it."""
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    with _Threaded(lambda: make(wall_clock=True)) as s:
        out = tmp_path / "h.npz"
        rc = cli_main(["export", "--exchange", exchange, "--symbol", symbol, "--timeframe", "1h",
                       "--ccxt-options", json.dumps(s.ccxt_options()), "--range", "3d", "--bins", "100",
                       "--out", str(out)])  # fmt: skip
        err = capsys.readouterr().err
        assert rc == 0, err
        z = np.load(out)
        assert z["long"].shape[1] == 100 and z["long"].sum() > 0 and z["short"].sum() > 0
        assert z["time_ms"][-1] == s.now_ms - s.now_ms % H - H  # the last closed bar
        assert json.loads(str(z["params"]))["exchange"] == exchange

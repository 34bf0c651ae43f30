"""The fake Bybit, OKX and Hyperliquid speak the venues' wire formats: the real ccxt client (ccxt.pro) reads them
as it reads the venues (markets, candles, paging limits, open interest, positions, websocket acknowledgements,
errors mapped to ccxt's exception classes)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import ccxt.pro as ccxtpro
import pytest
from ccxt.base import errors as ccxt_errors

from liqdesk.feeds.venues import create_venue
from liqdesk.feeds.venues.hyperliquid import Hyperliquid
from tests.fake_exchange.bybit import FakeBybit
from tests.fake_exchange.hyperliquid import FakeHyperliquid, HlPosition, HlTrade
from tests.fake_exchange.okx import FakeOkx
from tests.fake_exchange.venue_base import FakeVenue

H = 3_600_000
ALICE = "0x" + "a1" * 20
BOB = "0x" + "b2" * 20


def _run(
    fake: FakeVenue, exchange_id: str, body: Callable[[Any, Any], Awaitable[None]], **options: Any
) -> None:
    """Start ``fake``, build the plain ccxt.pro exchange against it and run ``body(server, exchange)``."""

    async def main() -> None:
        async with fake as s:
            ex = getattr(ccxtpro, exchange_id)({**s.ccxt_options(), **options})
            try:
                await body(s, ex)
            finally:
                await ex.close()

    asyncio.run(main())


async def _ws(url: str) -> aiohttp.ClientWebSocketResponse:
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(url)
    ws._test_session = session  # type: ignore[attr-defined]
    return ws


async def _ws_close(ws: aiohttp.ClientWebSocketResponse) -> None:
    await ws.close()
    await ws._test_session.close()  # type: ignore[attr-defined]


# -- Bybit -------------------------------------------------------------------------------------------------------
def test_bybit_markets_candles_and_limits_through_ccxt() -> None:
    async def body(s: FakeBybit, ex: Any) -> None:
        markets = await ex.load_markets()
        linear = {m["symbol"] for m in markets.values()}
        assert {"BTC/USDT:USDT", "SOL/USDT:USDT", "BTC/USDC:USDC", "SOLV/USDT:USDT"} <= linear
        assert (
            ex.market("BTC/USDC:USDC")["id"] == "BTCPERP" and ex.market("BTC/USDT:USDT")["contractSize"] == 1
        )
        assert not ex.market("NEWCOIN/USDT:USDT")["active"]  # pre-launch
        t = int(s.bars.open_time[100])
        # a range wider than `limit`: Bybit answers with its newest bars
        rows = await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", t, 5, {"until": t + 20 * H})
        assert [r[0] for r in rows] == [t + k * H for k in range(16, 21)]  # end is inclusive
        assert rows[-1][5] == float(s.bars.volume[120])
        with pytest.raises(ccxt_errors.BadRequest, match="limit"):
            await ex.publicGetV5MarketKline({"category": "linear", "symbol": "BTCUSDT", "interval": "60",
                                             "limit": 1001})  # fmt: skip
        with pytest.raises(ccxt_errors.BadSymbol):
            await ex.fetch_ohlcv("ETH/USDT:USDT", "1h", t, 5, {"symbol": "NOPEUSDT"})
        oi = await ex.fetch_open_interest_history("BTC/USDT:USDT", "1h", int(s.oi_time[0]), 200)
        assert len(oi) > 100 and all(x["openInterestAmount"] > 0 for x in oi)
        with pytest.raises(ccxt_errors.BadRequest, match="limit"):
            await ex.publicGetV5MarketOpenInterest({"category": "linear", "symbol": "BTCUSDT", "intervalTime": "1h",
                                                    "limit": 201})  # fmt: skip
        s.fail_next("/v5/market/kline", 429)
        with pytest.raises(ccxt_errors.RateLimitExceeded):
            await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", t, 5)
        s.fail_next("/v5/market/kline", 500)
        with pytest.raises(ccxt_errors.ExchangeError, match="10016"):  # plain ccxt: not a network error
            await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", t, 5)
        s.fail_next("/v5/market/kline", 502)
        with pytest.raises(ccxt_errors.ExchangeNotAvailable):
            await ex.fetch_ohlcv("BTC/USDT:USDT", "1h", t, 5)

    _run(FakeBybit(), "bybit", body, options={"defaultType": "swap", "fetchMarkets": {"types": ["linear"]}})


def test_bybit_venue_retries_system_errors_as_network_errors() -> None:
    async def main() -> None:
        async with FakeBybit() as s:
            v = create_venue("bybit", s.ccxt_options())
            try:
                s.fail_next("/v5/market/kline", 500)
                with pytest.raises(ccxt_errors.ExchangeNotAvailable):  # so the history backfill retries it
                    await v.candles_page(
                        "BTC/USDT:USDT", "1h", int(s.bars.open_time[0]), int(s.bars.open_time[9]), 9
                    )
            finally:
                await v.close()

    asyncio.run(main())


def test_bybit_websocket_acknowledges_and_refuses_like_the_venue() -> None:
    async def main() -> None:
        async with FakeBybit() as s:
            ws = await _ws(f"{s.ws_url}/v5/public/linear")
            try:
                await ws.send_str(
                    json.dumps({"op": "subscribe", "req_id": "7", "args": ["kline.60.BTCUSDT"]})
                )
                ack = json.loads(await ws.receive_str())
                assert ack["success"] and ack["op"] == "subscribe" and ack["req_id"] == "7"
                await ws.send_str(json.dumps({"op": "subscribe", "args": ["kline.60.NOPEUSDT"]}))
                assert not json.loads(await ws.receive_str())["success"]
                await ws.send_str(json.dumps({"op": "ping", "req_id": "8"}))
                assert json.loads(await ws.receive_str())["ret_msg"] == "pong"
                await s.advance(1)
                push = json.loads(await ws.receive_str())
                assert push["topic"] == "kline.60.BTCUSDT" and push["data"][0]["confirm"] is True
            finally:
                await _ws_close(ws)

    asyncio.run(main())


# -- OKX ---------------------------------------------------------------------------------------------------------
def test_okx_markets_candles_limits_and_statistics_through_ccxt() -> None:
    async def body(s: FakeOkx, ex: Any) -> None:
        await ex.load_markets()
        btc = ex.market("BTC/USDT:USDT")
        assert btc["id"] == "BTC-USDT-SWAP" and btc["contractSize"] == 0.01 and btc["linear"]
        assert ex.market("SOL/USD:SOL")["inverse"] and not ex.market("LUNA/USDT:USDT")["active"]
        inst = {"instId": "BTC-USDT-SWAP", "bar": "1H"}
        live = await ex.publicGetMarketCandles({**inst, "limit": 300})
        assert (
            len(live["data"]) == 300 and live["data"][0][8] == "0"
        )  # newest first, the live bar unconfirmed
        row = next(r for r in live["data"] if r[8] == "1")
        assert float(row[5]) == pytest.approx(float(row[6]) / 0.01)  # vol in contracts, volCcy in coins
        with pytest.raises(ccxt_errors.BadRequest):
            await ex.publicGetMarketHistoryCandles({**inst, "limit": 101})
        old = int(s.bars.open_time[s.available_count() - 1500])
        assert (await ex.publicGetMarketCandles({**inst, "before": old - 1, "after": old + 10 * H}))[
            "data"
        ] == []
        hist = await ex.publicGetMarketHistoryCandles({**inst, "before": old - 1, "after": old + 10 * H})
        assert [int(r[0]) for r in hist["data"]] == [old + k * H for k in range(9, -1, -1)]
        # open interest history through ccxt's own window handling, in USD (oiUsd)
        start = int(s.oi_time[0])
        oi = await ex.fetch_open_interest_history("BTC/USDT:USDT", "1h", start - start % H + H, 50)
        want = s.served_open_interest("1H", 0, s.now_ms)[:50]
        assert [(x["timestamp"], x["openInterestValue"]) for x in oi] == want
        taker = await ex.publicGetRubikStatTakerVolumeContract(
            {"instId": "BTC-USDT-SWAP", "period": "1H", "unit": "0"}
        )
        ts, sell, buy = taker["data"][0]
        i = int(s.bars.open_time.searchsorted(int(ts)))
        assert s.bars.taker_base is not None and i == s.closed_count() - 1  # closed periods only
        assert float(buy) == float(s.bars.taker_base[i]) and float(sell) == pytest.approx(
            float(s.bars.volume[i]) - float(s.bars.taker_base[i])
        )
        s.fail_next("/api/v5/market/candles", 429)
        with pytest.raises(ccxt_errors.RateLimitExceeded):
            await ex.publicGetMarketCandles(inst)
        s.fail_next("/api/v5/market/candles", 503)
        with pytest.raises(ccxt_errors.OnMaintenance):
            await ex.publicGetMarketCandles(inst)
        with pytest.raises(ccxt_errors.BadSymbol):
            await ex.publicGetMarketCandles({"instId": "NOPE-USDT-SWAP", "bar": "1H"})

    _run(FakeOkx(), "okx", body, options={"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}})


def test_okx_websocket_channels_live_where_the_venue_puts_them() -> None:
    async def main() -> None:
        async with FakeOkx() as s:
            public = await _ws(f"{s.ws_url}/ws/v5/public")
            business = await _ws(f"{s.ws_url}/ws/v5/business")
            try:
                candle = {"channel": "candle1H", "instId": "BTC-USDT-SWAP"}
                await public.send_str(json.dumps({"op": "subscribe", "args": [candle]}))
                err = json.loads(await public.receive_str())
                assert err["event"] == "error" and err["code"] == "60018"  # candles are on /business
                await business.send_str(json.dumps({"op": "subscribe", "args": [candle]}))
                assert json.loads(await business.receive_str())["event"] == "subscribe"
                await public.send_str("ping")
                assert await public.receive_str() == "pong"
                await s.advance(1)
                push = json.loads(await business.receive_str())
                assert push["arg"] == candle and push["data"][0][8] == "1"
            finally:
                await _ws_close(public)
                await _ws_close(business)

    asyncio.run(main())


# -- Hyperliquid -------------------------------------------------------------------------------------------------
ACCOUNTS = {
    ALICE: [HlPosition("BTC", 0.5, 90_000.0, 20, liquidation_px=86_100.5),
            HlPosition("ETH", -2.0, 3_600.0, 10, "isolated", liquidation_px=3_905.25)],
    BOB: [HlPosition("BTC", -1.25, 70_000.0, 5, liquidation_px=None)],  # a hedged cross account: no price
}  # fmt: skip


def test_hyperliquid_markets_candles_open_interest_and_positions_through_ccxt() -> None:
    async def body(s: FakeHyperliquid, ex: Any) -> None:
        await ex.load_markets()
        btc = ex.market("BTC/USDC:USDC")
        assert (
            btc["baseName"] == "BTC" and btc["contractSize"] == 1 and btc["limits"]["leverage"]["max"] == 40
        )
        assert not ex.market("MATIC/USDC:USDC")["active"]  # delisted
        # only the latest 5,000 candles exist, the live one included
        rows = await ex.fetch_ohlcv("BTC/USDC:USDC", "1h", 0, None, {"until": s.now_ms})
        assert len(rows) == 5000 and rows[-1][0] == int(s.bars.open_time[s.closed_count()])
        oi = await ex.fetch_open_interest("BTC/USDC:USDC")
        assert oi["openInterestAmount"] * float(oi["info"]["markPx"]) == pytest.approx(s.open_interest_usd())
        alice = await ex.fetch_positions(None, {"user": ALICE})
        got = {(p["symbol"], p["side"], p["contracts"], p["liquidationPrice"], p["leverage"], p["marginMode"])
               for p in alice}  # fmt: skip
        assert got == {("BTC/USDC:USDC", "long", 0.5, 86_100.5, 20, "cross"),
                       ("ETH/USDC:USDC", "short", 2.0, 3_905.25, 10, "isolated")}  # fmt: skip
        (bob,) = await ex.fetch_positions(None, {"user": BOB})
        assert bob["liquidationPrice"] is None and bob["notional"] == pytest.approx(1.25 * s.mark_price())
        assert await ex.fetch_positions(None, {"user": "0x" + "00" * 20}) == []
        with pytest.raises(ccxt_errors.ExchangeError):  # HTTP 422: not an address
            await ex.fetch_positions(None, {"user": "alice"})
        with pytest.raises(ccxt_errors.ExchangeError):  # HTTP 422: no such info type
            await ex.publicPostInfo({"type": "noSuchThing"})
        s.fail_next("candleSnapshot", 500)
        with pytest.raises(ccxt_errors.ExchangeNotAvailable):
            await ex.fetch_ohlcv("BTC/USDC:USDC", "1h", s.now_ms - 10 * H, None, {"until": s.now_ms})

    fake = FakeHyperliquid(accounts=ACCOUNTS)
    _run(fake, "hyperliquid", body, options={"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}})


def test_hyperliquid_weight_budget_answers_429() -> None:
    """clearinghouseState weighs 2 of 1,200 a minute: the 601st in a minute is refused, and ccxt says so."""

    async def body(s: FakeHyperliquid, ex: Any) -> None:
        await ex.load_markets()  # spotMeta + metaAndAssetCtxs: 20 each
        assert s.weight_used() == 40
        for _ in range((1200 - 40) // 2):
            await ex.publicPostInfo({"type": "clearinghouseState", "user": ALICE})
        assert s.weight_used() == 1200 and s.rate_limited == 0
        with pytest.raises(ccxt_errors.RateLimitExceeded):
            await ex.publicPostInfo({"type": "clearinghouseState", "user": ALICE})
        assert s.rate_limited == 1

    _run(
        FakeHyperliquid(accounts=ACCOUNTS), "hyperliquid", body, options={"fetchMarkets": {"types": ["swap"]}}
    )


def test_hyperliquid_trades_keep_both_addresses() -> None:
    async def main() -> None:
        async with FakeHyperliquid() as s:
            v = create_venue("hyperliquid", s.ccxt_options())
            assert isinstance(v, Hyperliquid)
            try:
                task = asyncio.ensure_future(v.exchange.watch_trades("BTC/USDC:USDC"))
                await s.wait_subscribed("trades:BTC")
                await s.push_trades([HlTrade(s.now_ms, 66_900.5, 0.25, "B", ALICE, BOB),
                                     HlTrade(s.now_ms + 1, 66_899.0, 1.5, "A", BOB.upper(), ALICE)])  # fmt: skip
                await task
                trades = [v.normalise_trade(t, "BTC/USDC:USDC") for t in v.exchange.trades["BTC/USDC:USDC"]]
            finally:
                await v.close()
            assert [(t.buyer, t.seller, t.taker_side, t.size) for t in trades] == [
                (ALICE, BOB, 1, 0.25), ("0x" + "b2" * 20, ALICE, -1, 1.5)]  # fmt: skip
            with pytest.raises(ValueError, match="two users"):
                v.normalise_trade(
                    {"info": {"side": "B", "px": "1", "sz": "1", "time": s.now_ms}}, "BTC/USDC:USDC"
                )

    asyncio.run(main())


def test_hyperliquid_websocket_subscriptions() -> None:
    async def main() -> None:
        async with FakeHyperliquid() as s:
            ws = await _ws(f"{s.ws_url}/ws")
            try:
                sub = {"type": "candle", "coin": "BTC", "interval": "1h"}
                await ws.send_str(json.dumps({"method": "subscribe", "subscription": sub}))
                assert json.loads(await ws.receive_str()) == {
                    "channel": "subscriptionResponse", "data": {"method": "subscribe", "subscription": sub}}  # fmt: skip
                await ws.send_str(json.dumps({"method": "subscribe", "subscription": sub}))
                assert "Already subscribed" in json.loads(await ws.receive_str())["data"]
                await ws.send_str(json.dumps({"method": "ping"}))
                assert json.loads(await ws.receive_str()) == {"channel": "pong"}
                await s.advance(1)
                push = json.loads(await ws.receive_str())
                assert (
                    push["channel"] == "candle" and push["data"]["s"] == "BTC" and push["data"]["i"] == "1h"
                )
            finally:
                await _ws_close(ws)

    asyncio.run(main())

"""A loopback fake Bybit v5 (linear perpetuals): REST and websocket wire formats, real bundled data, faults.

Formats follow Bybit's v5 documentation (bybit-exchange.github.io/docs/v5: market/instrument, market/kline,
market/mark-kline, market/open-interest, websocket/public/kline, websocket/public/all-liquidation) and what
ccxt 4.5.90 reads from them (ccxt/bybit.py, ccxt/pro/bybit.py). The real ccxt client is pointed at it with
``FakeBybit.ccxt_options()``.

REST (GET, envelope ``{"retCode", "retMsg", "result", "retExtInfo", "time"}``):
- ``/v5/market/instruments-info?category=linear`` (also ``status=PreLaunch``; other categories are empty): a
  short list of USDT and USDC perpetuals with Bybit's real field names (tick sizes and limits representative);
- ``/v5/market/time``;
- ``/v5/market/kline`` and ``/v5/market/mark-price-kline``: interval ``60`` only (the bundled bars are 1h),
  ``limit`` 1..1000 (default 200), ``start``/``end`` inclusive on the bar start, newest first. More bars in
  [start, end] than ``limit``: the newest ``limit`` are returned (as the venue's own mark-kline example shows);
  ``start`` alone: the oldest ``limit`` from it. Rows ``[start, open, high, low, close, volume, turnover]``
  (mark: the first five; no mark data is bundled, so mark bars replay the trade-price bars: plumbing only). No
  taker volume: Bybit's klines have none;
- ``/v5/market/open-interest``: ``intervalTime`` 5min/15min/30min/1h/4h/1d, ``limit`` 1..200 (default 50),
  ``startTime``/``endTime`` inclusive, newest first, ``nextPageCursor`` for the next (older) page; amounts in
  base coin (linear contracts are 1 coin).

Websocket ``/v5/public/linear``: ``{"op": "subscribe", "args": [...]}`` / ``unsubscribe`` / ``ping`` with Bybit's
acknowledgements; topics ``kline.60.BTCUSDT`` (``confirm`` true on the closing push) and
``allLiquidation.BTCUSDT`` (``S`` is the liquidated POSITION's side: Buy = a long; ``v`` the size in coins, ``p``
the bankruptcy price; the venue pushes batches every 500 ms: ``push_liquidations`` sends one batch per call).

Data: Binance's BTCUSDT bars and the shifted 2024-05 open-interest week (see venue_data.py); only BTCUSDT has
bars, the other listed markets answer with empty lists.

Errors: HTTP 429 → retCode 10006 "Too many visits!"; 500 → retCode 10016 (system error); other statuses a
plain-text gateway page. A bad symbol is retCode 10001 "Not supported symbols", bad parameters 10001 too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from aiohttp import web

from .loopback import Fault, WsConn
from .venue_base import FakeVenue
from .venue_data import (
    RecordedLiquidation,
    bar_values,
    binance_klines_2025,
    binance_open_interest_5m,
    snapshots_known,
)

OI_INTERVALS = {"5min": 300_000, "15min": 900_000, "30min": 1_800_000, "1h": 3_600_000, "4h": 14_400_000,
                "1d": 86_400_000}  # fmt: skip


def _instrument(symbol: str, base: str, quote: str, tick: str, step: str, max_lev: str, *,
                status: str = "Trading", launch: str = "1585526400000") -> dict[str, Any]:  # fmt: skip
    return {
        "symbol": symbol, "contractType": "LinearPerpetual", "status": status, "baseCoin": base,
        "quoteCoin": quote, "launchTime": launch, "deliveryTime": "0", "deliveryFeeRate": "",
        "priceScale": str(max(0, len(tick.split(".")[1]) if "." in tick else 0)),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": max_lev, "leverageStep": "0.01"},
        "priceFilter": {"minPrice": tick, "maxPrice": "1999999.80", "tickSize": tick},
        "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": step, "qtyStep": step,
                          "postOnlyMaxOrderQty": "1190.000", "maxMktOrderQty": "500.000", "minNotionalValue": "5"},
        "unifiedMarginTrade": True, "fundingInterval": 480, "settleCoin": quote, "copyTrading": "both",
        "upperFundingRate": "0.005", "lowerFundingRate": "-0.005", "isPreListing": False, "preListingInfo": None,
    }  # fmt: skip


INSTRUMENTS = [
    _instrument("BTCUSDT", "BTC", "USDT", "0.10", "0.001", "100.00"),
    _instrument("ETHUSDT", "ETH", "USDT", "0.01", "0.01", "100.00"),
    _instrument("SOLUSDT", "SOL", "USDT", "0.010", "0.1", "100.00"),
    _instrument("SOLVUSDT", "SOLV", "USDT", "0.00001", "1", "25.00", launch="1737014400000"),
    _instrument("DOGEUSDT", "DOGE", "USDT", "0.00001", "1", "75.00"),
    _instrument("1000PEPEUSDT", "1000PEPE", "USDT", "0.0000001", "100", "50.00"),
    _instrument("BTCPERP", "BTC", "USDC", "0.50", "0.001", "100.00"),
    _instrument("SOLPERP", "SOL", "USDC", "0.010", "0.1", "50.00"),
]
PRELAUNCH = [_instrument("NEWCOINUSDT", "NEWCOIN", "USDT", "0.0001", "1", "5.00", status="PreLaunch")]


class FakeBybit(FakeVenue):
    name = "bybit"
    symbol = "BTCUSDT"
    ws_paths = ("/v5/public/linear",)

    def __init__(
        self,
        *,
        live_index: int | None = None,
        ping_interval: float | None = None,
        wall_clock: bool = False,
        coins: Sequence[str] = (),
    ) -> None:
        """``coins``: more USDT perpetuals served with bars (BTC's, prices scaled: venue_data.coin_scale)."""
        super().__init__(binance_klines_2025(), live_index=live_index, ping_interval=ping_interval,
                         wall_clock=wall_clock)  # fmt: skip
        oi = binance_open_interest_5m()
        self.oi_time = oi.time + self.time_shift_ms
        self.oi_base = oi.base
        self._conn_ids = 0
        self.serve_markets(self.symbol, [(f"{coin.upper()}USDT", coin) for coin in coins])
        self.instruments = list(INSTRUMENTS)
        for coin in coins:
            sym = f"{coin.upper()}USDT"
            if sym not in {i["symbol"] for i in self.instruments}:
                self.instruments.append(_instrument(sym, coin.upper(), "USDT", "0.0001", "0.001", "50.00"))

    def ccxt_options(self) -> dict[str, Any]:
        """ccxt constructor options pointing bybit (REST and websocket) at this server."""
        h, w = self.http_url, self.ws_url
        return {
            "urls": {"api": {
                "public": h, "private": h, "spot": h, "futures": h, "v2": h,
                "ws": {"public": {k: f"{w}/v5/public/{k}" for k in ("linear", "spot", "inverse", "option")}},
            }},
            "timeout": 5000,
            "rateLimit": 1,  # ccxt's own throttle would only slow the tests
        }  # fmt: skip

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/v5/market/instruments-info", self._instruments)
        app.router.add_get("/v5/market/time", self._time)
        app.router.add_get("/v5/market/kline", self._kline)
        app.router.add_get("/v5/market/mark-price-kline", self._mark_kline)
        app.router.add_get("/v5/market/open-interest", self._open_interest)

    # -- what a client should end up with ----------------------------------------------------------------------
    def served_open_interest(self, interval: str, start: int, end: int) -> list[tuple[int, float]]:
        """(time, base amount) of the snapshots at ``interval`` with start <= time < end, up to now."""
        step = OI_INTERVALS[interval]
        t = self.oi_time
        mask = (t >= start) & (t < end) & (t <= self.now_ms) & (t % step == 0)
        return [(int(t[i]), float(self.oi_base[i])) for i in np.flatnonzero(mask)]

    # -- envelope and errors -----------------------------------------------------------------------------------
    def _ok(self, result: dict[str, Any]) -> web.Response:
        return web.json_response(
            {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": self.now_ms}
        )

    def _err(self, code: int, msg: str, status: int = 200) -> web.Response:
        return web.json_response(
            {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": self.now_ms},
            status=status,
        )

    def error_fault(self, status: int) -> Fault:
        if status == 429:
            body = {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "retExtInfo": {},
                    "time": self.now_ms}  # fmt: skip
            return Fault(429, json.dumps(body))
        if status == 500:
            body = {"retCode": 10016, "retMsg": "Internal server error.", "result": {}, "retExtInfo": {},
                    "time": self.now_ms}  # fmt: skip
            return Fault(500, json.dumps(body))
        return Fault(status, f"<html><body><h1>{status}</h1>gateway error</body></html>", "text/html")

    async def _enter(self, request: web.Request) -> web.Response | None:
        return await self.gate(request.path, dict(request.query))

    # -- REST ----------------------------------------------------------------------------------------------------
    async def _instruments(self, request: web.Request) -> web.Response:
        if (r := await self._enter(request)) is not None:
            return r
        q = request.query
        category = q.get("category", "linear")
        if category not in ("linear", "inverse", "spot", "option"):
            return self._err(10001, "params error: category invalid")
        items: list[dict[str, Any]] = []
        if category == "linear":
            items = PRELAUNCH if q.get("status") == "PreLaunch" else self.instruments
        return self._ok({"category": category, "list": items, "nextPageCursor": ""})

    async def _time(self, request: web.Request) -> web.Response:
        if (r := await self._enter(request)) is not None:
            return r
        return self._ok({"timeSecond": str(self.now_ms // 1000), "timeNano": str(self.now_ms * 1_000_000)})

    def _kline_rows(self, request: web.Request, *, mark: bool) -> web.Response:
        q = request.query
        if q.get("category", "linear") != "linear":
            return self._err(10001, "params error: category invalid")
        symbol = q.get("symbol")
        if symbol not in {i["symbol"] for i in self.instruments}:
            return self._err(10001, "Not supported symbols")
        if q.get("interval") != "60":
            return self._err(10001, "params error: Invalid interval")
        try:
            limit = int(q.get("limit", "200"))
            start = int(q["start"]) if "start" in q else None
            end = int(q["end"]) if "end" in q else None
        except ValueError:
            return self._err(10001, "params error: invalid number")
        if not 1 <= limit <= 1000:
            return self._err(10001, "params error: limit must be in [1, 1000]")
        if start is not None and end is not None and start > end:
            return self._err(10001, "params error: start must be before end")
        rows: list[list[str]] = []
        bars = self.coin_bars.get(str(symbol))
        if bars is not None:
            lo, hi = self.index_range(start, end)
            if start is not None and end is None:
                hi = min(hi, lo + limit)
            else:
                lo = max(lo, hi - limit)
            closed = self.closed_count()
            for i in range(hi - 1, lo - 1, -1):  # newest first
                b = bar_values(bars, i, final=i < closed)
                row = [str(b.open_time), b.open, b.high, b.low, b.close]
                if not mark:
                    row += [b.volume, b.quote or "0"]
                rows.append(row)
        return self._ok({"symbol": symbol, "category": "linear", "list": rows})

    async def _kline(self, request: web.Request) -> web.Response:
        if (r := await self._enter(request)) is not None:
            return r
        return self._kline_rows(request, mark=False)

    async def _mark_kline(self, request: web.Request) -> web.Response:
        if (r := await self._enter(request)) is not None:
            return r
        return self._kline_rows(request, mark=True)

    async def _open_interest(self, request: web.Request) -> web.Response:
        if (r := await self._enter(request)) is not None:
            return r
        q = request.query
        symbol = q.get("symbol")
        if symbol not in {i["symbol"] for i in self.instruments}:
            return self._err(10001, "Not supported symbols")
        interval = q.get("intervalTime")
        if interval not in OI_INTERVALS:
            return self._err(10001, "params error: intervalTime invalid")
        try:
            limit = int(q.get("limit", "50"))
            start = int(q["startTime"]) if "startTime" in q else None
            end = int(q["endTime"]) if "endTime" in q else None
            below = int(q["cursor"].removeprefix("older_than_")) if q.get("cursor") else None
        except ValueError:
            return self._err(10001, "params error: invalid number or cursor")
        if not 1 <= limit <= 200:
            return self._err(10001, "params error: limit must be in [1, 200]")
        rows: list[dict[str, str]] = []
        cursor = ""
        if symbol in self.coin_bars:
            t = self.oi_time
            idx = snapshots_known(t, self.now_ms, OI_INTERVALS[interval], start, end)
            if below is not None:
                idx = idx[t[idx] < below]
            idx = idx[::-1]  # newest first
            page, rest = idx[:limit], idx[limit:]
            rows = [{"openInterest": self.oi_base[i], "timestamp": str(int(t[i]))} for i in page]
            if len(rest):
                cursor = f"older_than_{int(t[page[-1]])}"
        return self._ok({"symbol": symbol, "category": "linear", "list": rows, "nextPageCursor": cursor})

    # -- websocket -----------------------------------------------------------------------------------------------
    def _topic_ok(self, topic: str) -> bool:
        parts = topic.split(".")
        symbols = {i["symbol"] for i in self.instruments}
        if parts[0] == "kline" and len(parts) == 3:
            return parts[1] in (
                "1",
                "3",
                "5",
                "15",
                "30",
                "60",
                "120",
                "240",
                "360",
                "720",
                "D",
                "W",
                "M",
            ) and (parts[2] in symbols)
        return parts[0] in ("allLiquidation", "liquidation") and len(parts) == 2 and parts[1] in symbols

    async def on_ws_text(self, conn: WsConn, text: str) -> None:
        self._conn_ids += 1
        conn_id = f"fake-{self._conn_ids}"
        try:
            req = json.loads(text)
            op, args, req_id = req.get("op"), req.get("args") or [], req.get("req_id")
        except (ValueError, AttributeError):
            await self.send(conn, json.dumps({"success": False, "ret_msg": "error:invalid op", "conn_id": conn_id,
                                              "request": {"op": "", "args": None}}))  # fmt: skip
            return
        ack: dict[str, Any] = {"success": True, "ret_msg": "", "conn_id": conn_id, "op": op}
        if req_id is not None:
            ack["req_id"] = req_id
        if op == "ping":
            ack["ret_msg"] = "pong"
        elif op == "subscribe":
            bad = [a for a in args if not self._topic_ok(str(a))]
            if bad:
                ack.update(success=False, ret_msg=f"error:handler not found,topic:{bad[0]}")
            else:
                conn.topics.update(str(a) for a in args)
        elif op == "unsubscribe":
            conn.topics.difference_update(str(a) for a in args)
        else:
            ack.update(success=False, ret_msg="error:invalid op")
        await self.send(conn, json.dumps(ack))

    async def push_bar(
        self, index: int, *, final: bool, fraction: float = 0.5, market: str | None = None
    ) -> int:
        symbol = market or self.symbol
        b = bar_values(self.coin_bars[symbol], index, final=final, fraction=fraction)
        msg = {
            "topic": f"kline.60.{symbol}",
            "data": [{"start": b.open_time, "end": b.open_time + self.interval_ms - 1, "interval": "60",
                      "open": b.open, "close": b.close, "high": b.high, "low": b.low, "volume": b.volume,
                      "turnover": b.quote or "0", "confirm": final, "timestamp": self.now_ms}],
            "ts": self.now_ms, "type": "snapshot",
        }  # fmt: skip
        return await self.broadcast(f"kline.60.{symbol}", json.dumps(msg))

    async def push_liquidations(self, events: list[RecordedLiquidation], symbol: str = "BTCUSDT") -> int:
        """One ``allLiquidation`` push carrying ``events`` (the venue batches every 500 ms)."""
        msg = {
            "topic": f"allLiquidation.{symbol}", "type": "snapshot", "ts": self.now_ms,
            "data": [{"T": e.time, "s": symbol, "S": "Buy" if e.long else "Sell", "v": e.base,
                      "p": e.order_price}
                     for e in events],
        }  # fmt: skip
        return await self.broadcast(f"allLiquidation.{symbol}", json.dumps(msg))

"""A loopback fake Binance USDⓈ-M: real REST and websocket wire formats, real bundled data, injectable faults.

The real ccxt client is pointed at it with ``FakeBinance.ccxt_options()`` (a ``urls`` override); nothing inside
ccxt is mocked. The server keeps a virtual clock ``now_ms``: bars with ``open_time + interval <= now`` are
closed, the bar containing ``now`` is live (served, and pushed on the kline stream, as a partial revision).

REST: /fapi/v1/exchangeInfo, /fapi/v1/time, /fapi/v1/klines and /fapi/v1/markPriceKlines (limit ≤ 1500,
startTime/endTime on open time, inclusive, as Binance), /futures/data/openInterestHist (limit ≤ 500, period,
last 30 days only). Websocket: ``/ws``, ``/ws/<n>``, ``/market/ws/<n>``, ``/public/ws/<n>`` with SUBSCRIBE /
UNSUBSCRIBE; streams ``<symbol>@kline_<interval>``, ``<symbol>@forceOrder``, ``!forceOrder@arr``.

Faults (Python API): ``fail_next`` (HTTP status such as 429/418 with Binance's error body and Retry-After),
``delay_next`` (slow response), ``drop_websockets`` (abrupt disconnect), ``send_raw`` (malformed / truncated
frames), and pushing duplicates or old revisions is just calling ``push_*`` again.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from aiohttp import web

from . import data as fdata
from .clock import BarClock
from .loopback import Fault, LoopbackServer, WsConn
from .venue_data import coin_scale, scale_text, snapshots_known

INTERVALS_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000,
                "2h": 7_200_000, "4h": 14_400_000, "1d": 86_400_000}  # fmt: skip
OI_PERIODS = {"5m": 300_000, "15m": 900_000, "30m": 1_800_000, "1h": 3_600_000, "2h": 7_200_000,
              "4h": 14_400_000, "6h": 21_600_000, "12h": 43_200_000, "1d": 86_400_000}  # fmt: skip
THIRTY_DAYS_MS = 30 * 86_400_000


def _paging(q: Any, default_limit: int) -> tuple[int, int | None, int | None] | None:
    """limit, startTime, endTime of a Binance paging query; None when one is not an integer."""
    try:
        limit = int(q.get("limit", str(default_limit)))
        start = int(q["startTime"]) if "startTime" in q else None
        end = int(q["endTime"]) if "endTime" in q else None
    except ValueError:
        return None
    return limit, start, end


def _filters(tick: str, step: str) -> list[dict[str, Any]]:
    return [
        {"filterType": "PRICE_FILTER", "minPrice": "261.10", "maxPrice": "809484", "tickSize": tick},
        {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "1000", "stepSize": step},
        {"filterType": "MARKET_LOT_SIZE", "minQty": step, "maxQty": "120", "stepSize": step},
        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
        {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
        {"filterType": "MIN_NOTIONAL", "notional": "100"},
        {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
         "multiplierDecimal": "4"},
    ]  # fmt: skip


def _symbol_info(symbol: str, base: str, tick: str, step: str) -> dict[str, Any]:
    return {
        "symbol": symbol, "pair": symbol, "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000, "status": "TRADING", "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000", "baseAsset": base, "quoteAsset": "USDT", "marginAsset": "USDT",
        "pricePrecision": 2, "quantityPrecision": 3, "baseAssetPrecision": 8, "quotePrecision": 8,
        "underlyingType": "COIN", "underlyingSubType": ["PoW"], "triggerProtect": "0.0500",
        "liquidationFee": "0.012500", "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
        "filters": _filters(tick, step),
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                       "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"], "permissionSets": ["GRID", "COPY"],
    }  # fmt: skip


class FakeBinance(LoopbackServer, BarClock):
    """Start with ``await server.start()``; stop with ``await server.close()``."""

    symbol = "BTCUSDT"
    ws_paths = ("/ws", "/ws/{n}", "/market/ws", "/market/ws/{n}", "/public/ws", "/public/ws/{n}")

    def __init__(
        self,
        *,
        live_index: int | None = None,
        ping_interval: float | None = None,
        klines: fdata.KlineTable | None = None,
        oi_shift_ms: int | None = None,
        revision_path: bool = False,
        coins: Sequence[str] = (),
        wall_clock: bool = False,
    ) -> None:
        """``klines``: the bars served (default the 1h table; ``fdata.klines_5m()`` for the 5-minute replay week);
        ``oi_shift_ms``: added to the open-interest times (default: the whole days that put the 2024 week inside
        the 1h table's last day; 0 for the 5m week, recorded at the same time); ``revision_path``: partial
        revisions move from the open towards the recorded bar (interpolated: close, wicks and volume grow with
        the bar's elapsed share) instead of sitting at the open price. ``coins``: more USDT perpetuals served with
        klines (BTC's bars, prices scaled: venue_data.coin_scale), open interest and liquidation streams;
        ``wall_clock``: every series moves by whole bars so that the live bar is the real current one (for clients
        that read the system clock, such as `liqdesk record`; values untouched)."""
        super().__init__(ping_interval=ping_interval)
        k = klines if klines is not None else fdata.klines_1h()
        live = len(k.open_time) - 48 if live_index is None else live_index
        shift = 0
        if wall_clock:
            real = time.time_ns() // 1_000_000
            shift = real - real % k.interval_ms - int(k.open_time[live])
            k = fdata.KlineTable(k.open_time + shift, k.rows, k.interval_ms)
        self.klines = k
        self.interval = next(name for name, ms in INTERVALS_MS.items() if ms == k.interval_ms)
        self.interval_ms = k.interval_ms
        oi = fdata.open_interest_5m_raw()
        self.oi_time = (
            oi.time + (fdata.open_interest_shift_ms() if oi_shift_ms is None else oi_shift_ms) + shift
        )
        self.oi_rows = oi.rows
        self.revision_path = revision_path
        # by default the last 48 bars are "future": they are pushed live by advance()
        self.live_index = len(k.open_time) - 48 if live_index is None else live_index
        self.now_ms = int(k.open_time[self.live_index]) + self.interval_ms // 2
        self.subscribed = asyncio.Event()
        self.scales: dict[str, float] = {self.symbol: 1.0}  # venue id → price factor of its bars
        for coin in coins:
            self.scales.setdefault(f"{coin.upper()}USDT", coin_scale(coin))

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/fapi/v1/exchangeInfo", self._exchange_info)
        app.router.add_get("/fapi/v1/time", self._time)
        app.router.add_get("/fapi/v1/ping", self._ping)
        app.router.add_get("/fapi/v1/klines", self._klines)
        app.router.add_get("/fapi/v1/markPriceKlines", self._mark_klines)
        app.router.add_get("/futures/data/openInterestHist", self._oi_hist)

    def ccxt_options(self) -> dict[str, Any]:
        """ccxt constructor options pointing binanceusdm at this server."""
        h = self.http_url
        return {
            "urls": {
                "api": {
                    "fapiPublic": f"{h}/fapi/v1", "fapiPublicV2": f"{h}/fapi/v2", "fapiPublicV3": f"{h}/fapi/v3",
                    "fapiPrivate": f"{h}/fapi/v1", "fapiPrivateV2": f"{h}/fapi/v2",
                    "fapiPrivateV3": f"{h}/fapi/v3", "fapiData": f"{h}/futures/data",
                    "ws": {"linear": f"{self.ws_url}/ws"},
                }
            },
            "timeout": 5000,
            "rateLimit": 1,  # ccxt's own throttle (50 ms per weight unit for Binance) would slow the tests
        }  # fmt: skip

    # -- the served series (what a client should end up with) -----------------------------------------------
    def bar_open_times(self) -> np.ndarray:
        return self.klines.open_time

    def served_klines(self, start: int, end: int, symbol: str | None = None) -> list[list[Any]]:
        """Closed 1h klines with start <= open_time < end, as Binance rows (of ``symbol``, a venue id)."""
        return [self._kline_row(i, final=True, symbol=symbol) for i in self.closed_range(start, end)]

    def market_ids(self) -> list[str]:
        """The venue ids of every market served with klines (BTCUSDT first)."""
        return list(self.scales)

    def served_oi(self, start: int, end: int) -> list[tuple[int, float]]:
        mask = (self.oi_time >= start) & (self.oi_time < end) & (self.oi_time <= self.now_ms)
        return [(int(self.oi_time[i]), float(self.oi_rows[i][1])) for i in np.flatnonzero(mask)]

    # -- faults ---------------------------------------------------------------------------------------------
    def fail_next(self, path: str, status: int = 429, count: int = 1, *, retry_after: int | None = 1) -> None:
        """The next ``count`` requests to ``path`` (e.g. "/fapi/v1/klines") answer ``status``."""
        body = {
            429: {"code": -1003, "msg": "Too many requests; current limit of IP(127.0.0.1) is 2400 requests per "
                  "minute. Please use the websocket for live updates to avoid polling the API."},
            418: {"code": -1003, "msg": "Way too many requests; IP(127.0.0.1) banned until 1700000000000. Please "
                  "use the websocket for live updates to avoid bans."},
        }.get(status, {"code": -1000, "msg": "An unknown error occured while processing the request."})  # fmt: skip
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        self.add_faults(path, Fault(status, json.dumps(body), headers=headers), count)

    async def drop_websockets(self) -> int:
        n = await super().drop_websockets()
        self.subscribed.clear()
        return n

    # -- live data ------------------------------------------------------------------------------------------
    async def replay(
        self,
        bars: int,
        bars_per_s: float,
        *,
        revisions: int = 3,
        tape: list[dict[str, str]] | None = None,
        on_bar: Any = None,
        stop: asyncio.Event | None = None,
    ) -> int:
        """Replay the next ``bars`` bars in real time at ``bars_per_s``: the live bar is pushed as ``revisions``
        partial revisions, then closed (final kline) and the clock moves on; liquidations of ``tape`` (capture
        rows) are pushed when the clock passes their trade time. ``on_bar(index)`` is called after each bar
        closes. Returns the bars closed."""
        tape = sorted(tape or [], key=lambda r: int(r["trade_time_ms"]))
        k = 0
        while k < len(tape) and int(tape[k]["trade_time_ms"]) <= self.now_ms:
            k += 1  # already in the past
        steps = revisions + 1
        pace = 1.0 / (bars_per_s * steps)
        due = time.perf_counter()
        closed = 0
        for _ in range(bars):
            i = self.closed_count()
            if i >= len(self.klines.open_time) or (stop is not None and stop.is_set()):
                break
            t_open = int(self.klines.open_time[i])
            for r in range(1, steps + 1):
                now = t_open + self.interval_ms * r // steps
                if now <= self.now_ms:
                    continue  # the part of the live bar already served before the replay began
                due += pace
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                while k < len(tape) and int(tape[k]["trade_time_ms"]) < now:
                    await self.push_liquidation(fdata.force_order_event(tape[k]))
                    k += 1
                self.now_ms = now
                await self.push_kline(i, final=r == steps, fraction=r / steps)
            closed += 1
            if on_bar is not None:
                on_bar(i)
        return closed

    async def push_bar(
        self, index: int, *, final: bool, fraction: float = 0.5, market: str | None = None
    ) -> int:
        return await self.push_kline(index, final=final, fraction=fraction, symbol=market)

    async def push_kline(
        self, index: int, *, final: bool, fraction: float = 0.5, symbol: str | None = None
    ) -> int:
        sym = symbol or self.symbol
        k = self._kline_row(index, final=final, fraction=fraction, symbol=sym)
        msg = {
            "e": "kline", "E": self.now_ms, "s": sym,
            "k": {"t": k[0], "T": k[6], "s": sym, "i": self.interval, "f": 100 * index,
                  "L": 100 * index + k[8], "o": k[1], "c": k[4], "h": k[2], "l": k[3], "v": k[5], "n": k[8],
                  "x": final, "q": k[7], "V": k[9], "Q": k[10], "B": "0"},
        }  # fmt: skip
        return await self.broadcast(f"{sym.lower()}@kline_{self.interval}", json.dumps(msg))

    async def push_liquidation(self, event: dict[str, Any]) -> int:
        """Send a forceOrder event to its symbol stream and to ``!forceOrder@arr``."""
        text = json.dumps(event)
        sym = str(event.get("o", {}).get("s", "")).lower()
        n = await self.broadcast(f"{sym}@forceOrder", text)
        return n + await self.broadcast("!forceOrder@arr", text)

    def _kline_row(
        self, i: int, *, final: bool, fraction: float = 0.5, symbol: str | None = None
    ) -> list[Any]:
        t = int(self.klines.open_time[i])
        o, h, low, c, v, q, n, tb, tq = self.klines.rows[i]
        k = self.scales.get(symbol or self.symbol, 1.0)
        if k != 1.0:  # another coin: BTC's bar, prices (and quote volumes) scaled
            o, h, low, c, q, tq = (scale_text(x, k) or "0" for x in (o, h, low, c, q, tq))
        if not final and self.revision_path:
            f = fraction
            fo, fh, fl, fc = (float(x) for x in (o, h, low, c))
            close = fo + (fc - fo) * f
            h = f"{max(fo, close) + (fh - max(fo, fc)) * f:.2f}"
            low = f"{min(fo, close) - (min(fo, fc) - fl) * f:.2f}"
            c = f"{close:.2f}"
            v, q, tb, tq = (f"{float(x) * f:.3f}" for x in (v, q, tb, tq))
            n = int(n * f)
        elif not final:
            # a partial revision: the bar so far (open price, a share of the volume)
            f = fraction
            h = low = c = o
            v, q, tb, tq = (f"{float(x) * f:.3f}" for x in (v, q, tb, tq))
            n = int(n * f)
        return [t, o, h, low, c, v, t + self.interval_ms - 1, q, n, tb, tq, "0"]

    # -- REST handlers ----------------------------------------------------------------------------------------
    async def _gate(self, request: web.Request) -> web.Response | None:
        return await self.gate(request.path, dict(request.query))

    @staticmethod
    def _error(code: int, msg: str, status: int = 400) -> web.Response:
        return web.json_response({"code": code, "msg": msg}, status=status)

    async def _exchange_info(self, request: web.Request) -> web.Response:
        if (r := await self._gate(request)) is not None:
            return r
        return web.json_response({
            "timezone": "UTC", "serverTime": self.now_ms, "futuresType": "U_MARGINED",
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
                {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            ],
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": [_symbol_info("BTCUSDT", "BTC", "0.10", "0.001"),
                        _symbol_info("ETHUSDT", "ETH", "0.01", "0.001")]
                       + [_symbol_info(sym, sym.removesuffix("USDT"), "0.0001", "0.001") for sym in self.scales
                          if sym not in ("BTCUSDT", "ETHUSDT")],
        })  # fmt: skip

    async def _time(self, request: web.Request) -> web.Response:
        if (r := await self._gate(request)) is not None:
            return r
        return web.json_response({"serverTime": self.now_ms})

    async def _ping(self, request: web.Request) -> web.Response:
        if (r := await self._gate(request)) is not None:
            return r
        return web.json_response({})

    def _kline_query(self, request: web.Request) -> tuple[int, int, int] | web.Response:
        q = request.query
        if q.get("symbol") not in self.scales:
            return self._error(-1121, "Invalid symbol.")
        if q.get("interval") != self.interval:
            return self._error(-1120, "Invalid interval.")
        parsed = _paging(q, 500)
        if parsed is None:
            return self._error(-1100, "Illegal characters found in a parameter.")
        limit, start, end = parsed
        if not 1 <= limit <= 1500:
            return self._error(-1130, "Data sent for parameter 'limit' is not valid.")
        if start is not None and end is not None and start > end:
            return self._error(-1023, "Start time is greater than end time.")
        lo, hi = self.index_range(start, end)
        if start is None:
            lo = max(lo, hi - limit)  # the most recent `limit` up to endTime
        else:
            hi = min(hi, lo + limit)
        return lo, max(lo, hi), self.closed_count()

    async def _kline_rows(self, request: web.Request) -> list[list[Any]] | web.Response:
        """The klines a kline request asks for (closed ones final), or the answer to a fault or a bad query."""
        if (r := await self._gate(request)) is not None:
            return r
        sel = self._kline_query(request)
        if isinstance(sel, web.Response):
            return sel
        lo, hi, closed = sel
        sym = request.query.get("symbol")
        return [self._kline_row(i, final=i < closed, symbol=sym) for i in range(lo, hi)]

    async def _klines(self, request: web.Request) -> web.Response:
        rows = await self._kline_rows(request)
        return rows if isinstance(rows, web.Response) else web.json_response(rows)

    async def _mark_klines(self, request: web.Request) -> web.Response:
        # No mark-price data is bundled: the mark klines replay the trade-price OHLC (plumbing only).
        rows = await self._kline_rows(request)
        if isinstance(rows, web.Response):
            return rows
        return web.json_response(
            [[k[0], k[1], k[2], k[3], k[4], "0", k[6], "0", 0, "0", "0", "0"] for k in rows]
        )

    async def _oi_hist(self, request: web.Request) -> web.Response:
        if (r := await self._gate(request)) is not None:
            return r
        q = request.query
        if q.get("symbol") not in self.scales:
            return self._error(-1121, "Invalid symbol.")
        period = q.get("period")
        if period not in OI_PERIODS:
            return self._error(
                -1102, "Mandatory parameter 'period' was not sent, was empty/null, or malformed."
            )
        parsed = _paging(q, 30)
        if parsed is None:
            return self._error(-1100, "Illegal characters found in a parameter.")
        limit, start, end = parsed
        if not 1 <= limit <= 500:
            return self._error(-1130, "Data sent for parameter 'limit' is not valid.")
        if start is not None and start < self.now_ms - THIRTY_DAYS_MS:
            return self._error(-1130, "parameter 'startTime' is invalid.")
        t = self.oi_time
        idx = snapshots_known(t, self.now_ms, OI_PERIODS[period], start, end)
        idx = idx[:limit] if start is not None else idx[-limit:]
        k = self.scales[str(q.get("symbol"))]
        return web.json_response([
            {"symbol": q.get("symbol"), "sumOpenInterest": self.oi_rows[i][0],
             "sumOpenInterestValue": scale_text(self.oi_rows[i][1], k), "CMCCirculatingSupply": "19690000.000",
             "timestamp": int(t[i])}
            for i in idx
        ])  # fmt: skip

    # -- websocket ----------------------------------------------------------------------------------------------
    async def on_ws_text(self, conn: WsConn, text: str) -> None:
        ws = conn.ws
        try:
            req = json.loads(text)
        except ValueError:
            await ws.send_str(json.dumps({"code": 3, "msg": "Invalid JSON", "id": None}))
            return
        method, params, rid = req.get("method"), req.get("params") or [], req.get("id")
        if method == "SUBSCRIBE":
            conn.topics.update(params)
            await ws.send_str(json.dumps({"result": None, "id": rid}))
            self.subscribed.set()
        elif method == "UNSUBSCRIBE":
            conn.topics.difference_update(params)
            await ws.send_str(json.dumps({"result": None, "id": rid}))
        elif method == "LIST_SUBSCRIPTIONS":
            await ws.send_str(json.dumps({"result": sorted(conn.topics), "id": rid}))

"""A loopback fake OKX v5 (perpetual swaps): REST and websocket wire formats, real bundled data, faults.

Formats follow OKX's v5 documentation (www.okx.com/docs-v5: public-data get-instruments, market-data
get-candlesticks / get-candlesticks-history / mark-price candles, trading-statistics contract open-interest
history and contract taker volume, websocket candlesticks and liquidation-orders channels) and what ccxt 4.5.90
reads from them (ccxt/okx.py, ccxt/pro/okx.py). Point the real ccxt client at it with ``FakeOkx.ccxt_options()``.

REST (GET, envelope ``{"code": "0", "msg": "", "data": [...]}``):
- ``/api/v5/public/instruments?instType=SWAP``: a short list of USDT, USDC and one inverse swap with OKX's field
  names; ``ctVal`` is the contract size (BTC-USDT-SWAP: 0.01 BTC); other instrument types are empty;
- ``/api/v5/public/time``;
- ``/api/v5/market/candles`` (≤ 300 a call, default 100; only the latest 1,440 bars) and
  ``/api/v5/market/history-candles`` (≤ 100): ``bar=1H`` only (the bundled bars are 1h); ``after`` = older
  than, ``before`` = newer than (both exclusive); the newest ``limit`` bars of that window, newest first; rows
  ``[ts, o, h, l, c, vol (contracts), volCcy (base), volCcyQuote (quote), confirm]``;
- ``/api/v5/market/mark-price-candles`` / ``history-mark-price-candles`` (≤ 100): ``[ts, o, h, l, c, confirm]``;
  no mark data is bundled, so they replay the trade-price bars (plumbing only);
- ``/api/v5/rubik/stat/contracts/open-interest-history``: ``period`` 5m / 1H / 1D, ``begin``/``end`` exclusive,
  newest first, ≤ 100 a call, only the latest 1,440 entries of a period; rows
  ``[ts, oi (contracts), oiCcy (base), oiUsd]``;
- ``/api/v5/rubik/stat/taker-volume-contract``: ``period=1H``, ``unit`` 0 coin / 1 contracts / 2 USD, same
  window rules; rows ``[ts, sellVol, buyVol]`` for closed periods.

Websocket ``/ws/v5/public`` (``liquidation-orders`` with ``instType``) and ``/ws/v5/business`` (``candle1H``;
candle channels live only there, as on the venue): ``{"op": "subscribe", "args": [{...}]}`` answered with
``{"event": "subscribe", ...}`` or ``{"event": "error", "code": "60018", ...}``; text ``ping`` → ``pong``.
Liquidation details carry ``posSide`` (the liquidated position), the order ``side``, ``sz`` in contracts and
``bkPx`` (bankruptcy price). The venue shows at most one liquidation order per contract per second: a sample.

Data: Binance's BTCUSDT bars and the shifted 2024-05 open-interest week (venue_data.py), converted to contracts
with ctVal 0.01; taker volume from the bars' taker-buy columns. Only BTC-USDT-SWAP has data.

Errors: HTTP 429 → code 50011; 500 → 50026 (system error); 503 → 50001 (service unavailable); other statuses a
plain-text gateway page. Unknown instrument: 51001; bad parameters: 51000.
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
    coin_scale,
    scale_text,
    snapshots_known,
)

LIVE_DEPTH = 1440  # bars (market/candles) and entries (trading statistics) the venue keeps
OI_PERIODS = {"5m": 300_000, "1H": 3_600_000, "1D": 86_400_000}


def _swap(inst_id: str, settle: str, ct_val: str, ct_val_ccy: str, tick: str, lot: str, lever: str,
          *, ct_type: str = "linear", state: str = "live") -> dict[str, Any]:  # fmt: skip
    family = inst_id.removesuffix("-SWAP")
    return {
        "alias": "", "baseCcy": "", "category": "1", "ctMult": "1", "ctType": ct_type, "ctVal": ct_val,
        "ctValCcy": ct_val_ccy, "expTime": "", "instFamily": family, "instId": inst_id, "instType": "SWAP",
        "lever": lever, "listTime": "1611916828000", "lotSz": lot, "maxIcebergSz": "100000000.0000000000000000",
        "maxLmtAmt": "20000000", "maxLmtSz": "100000000", "maxMktAmt": "", "maxMktSz": "12000",
        "maxStopSz": "12000", "maxTriggerSz": "100000000", "maxTwapSz": "100000000", "minSz": lot, "optType": "",
        "quoteCcy": "", "ruleType": "normal", "settleCcy": settle, "state": state, "stk": "", "tickSz": tick,
        "uly": family,
    }  # fmt: skip


INSTRUMENTS = [
    _swap("BTC-USDT-SWAP", "USDT", "0.01", "BTC", "0.1", "0.01", "100"),
    _swap("ETH-USDT-SWAP", "USDT", "0.1", "ETH", "0.01", "0.01", "100"),
    _swap("SOL-USDT-SWAP", "USDT", "1", "SOL", "0.01", "0.01", "50"),
    _swap("DOGE-USDT-SWAP", "USDT", "1000", "DOGE", "0.00001", "0.01", "50"),
    _swap("PEPE-USDT-SWAP", "USDT", "10000000", "PEPE", "0.0000000001", "0.1", "50"),
    _swap("BTC-USDC-SWAP", "USDC", "0.0001", "BTC", "0.1", "0.01", "100"),
    _swap("SOL-USD-SWAP", "SOL", "10", "USD", "0.001", "1", "50", ct_type="inverse"),
    _swap("LUNA-USDT-SWAP", "USDT", "1", "LUNA", "0.0001", "1", "20", state="suspend"),
]
CT_VAL = 0.01  # BTC-USDT-SWAP


def _fmt(x: float) -> str:
    return f"{x:.8f}".rstrip("0").rstrip(".")


class FakeOkx(FakeVenue):
    name = "okx"
    inst_id = "BTC-USDT-SWAP"
    ws_paths = ("/ws/v5/public", "/ws/v5/business")

    def __init__(
        self,
        *,
        live_index: int | None = None,
        ping_interval: float | None = None,
        wall_clock: bool = False,
        coins: Sequence[str] = (),
    ) -> None:
        """``coins``: more USDT swaps served with bars (BTC's, prices scaled: venue_data.coin_scale; a new
        instrument's contract is 0.01 coin)."""
        super().__init__(binance_klines_2025(), live_index=live_index, ping_interval=ping_interval,
                         wall_clock=wall_clock)  # fmt: skip
        oi = binance_open_interest_5m()
        self.oi_time = oi.time + self.time_shift_ms
        self.oi_base = oi.base
        self.oi_usd = oi.usd
        self._conn_ids = 0
        self.serve_markets(self.inst_id, [(f"{coin.upper()}-USDT-SWAP", coin) for coin in coins])
        self.instruments = list(INSTRUMENTS)
        for coin in coins:
            inst = f"{coin.upper()}-USDT-SWAP"
            if inst not in {i["instId"] for i in self.instruments}:
                self.instruments.append(_swap(inst, "USDT", "0.01", coin.upper(), "0.0001", "0.01", "50"))

    def ct_val(self, inst_id: str) -> float:
        """The contract size of an instrument, in coins."""
        return float(next(i["ctVal"] for i in self.instruments if i["instId"] == inst_id))

    def ccxt_options(self) -> dict[str, Any]:
        """ccxt constructor options pointing okx (REST and websocket) at this server."""
        return {
            "urls": {"api": {"rest": self.http_url, "ws": f"{self.ws_url}/ws/v5"}},
            "timeout": 5000,
            "rateLimit": 1,  # ccxt's own throttle would only slow the tests
        }

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v5/public/instruments", self._instruments)
        app.router.add_get("/api/v5/public/time", self._time)
        for path in ("candles", "history-candles", "mark-price-candles", "history-mark-price-candles"):
            app.router.add_get(f"/api/v5/market/{path}", self._candles)
        app.router.add_get("/api/v5/rubik/stat/contracts/open-interest-history", self._open_interest)
        app.router.add_get("/api/v5/rubik/stat/taker-volume-contract", self._taker_volume)

    # -- what a client should end up with ----------------------------------------------------------------------
    def served_open_interest(self, period: str, start: int, end: int) -> list[tuple[int, float]]:
        """(time, USD) of the snapshots at ``period`` with start <= time < end that the venue still serves."""
        idx = self._oi_available(period)
        t = self.oi_time
        return [(int(t[i]), float(self.oi_usd[i])) for i in idx if start <= t[i] < end]

    def _oi_available(self, period: str) -> np.ndarray:
        return snapshots_known(self.oi_time, self.now_ms, OI_PERIODS[period])[-LIVE_DEPTH:]

    def taker_available(self) -> tuple[int, int]:
        """Indices [lo, hi) of the bars whose taker volume the venue serves (closed, latest 1,440)."""
        hi = self.closed_count()
        return max(0, hi - LIVE_DEPTH), hi

    # -- envelope and errors -----------------------------------------------------------------------------------
    @staticmethod
    def _ok(data: list[Any]) -> web.Response:
        return web.json_response({"code": "0", "msg": "", "data": data})

    @staticmethod
    def _err(code: str, msg: str) -> web.Response:
        return web.json_response({"code": code, "msg": msg, "data": []})

    def error_fault(self, status: int) -> Fault:
        known = {429: ("50011", "Too Many Requests"), 500: ("50026", "System error. Try again later"),
                 503: ("50001", "Service temporarily unavailable. Please try again later")}  # fmt: skip
        if status in known:
            code, msg = known[status]
            return Fault(status, json.dumps({"code": code, "msg": msg, "data": []}))
        return Fault(status, f"{status} gateway error", "text/plain")

    async def _enter(self, request: web.Request) -> web.Response | None:
        return await self.gate(request.path, dict(request.query))

    @staticmethod
    def _window(q: Any, default_limit: int, max_limit: int) -> tuple[int, int | None, int | None] | str:
        """limit, after (older than), before (newer than) of a paging query; a message when invalid."""
        try:
            limit = int(q.get("limit", str(default_limit)))
            after = int(q["after"]) if q.get("after") else None
            before = int(q["before"]) if q.get("before") else None
        except ValueError:
            return "Parameter after/before/limit error"
        if not 1 <= limit <= max_limit:
            return "Parameter limit error"
        return limit, after, before

    # -- REST ----------------------------------------------------------------------------------------------------
    async def _instruments(self, request: web.Request) -> web.Response:
        if (r := await self._enter(request)) is not None:
            return r
        inst_type = request.query.get("instType")
        if inst_type not in ("SPOT", "MARGIN", "SWAP", "FUTURES", "OPTION"):
            return self._err("51000", "Parameter instType error")
        return self._ok(self.instruments if inst_type == "SWAP" else [])

    async def _time(self, request: web.Request) -> web.Response:
        if (r := await self._enter(request)) is not None:
            return r
        return self._ok([{"ts": str(self.now_ms)}])

    async def _candles(self, request: web.Request) -> web.Response:
        if (r := await self._enter(request)) is not None:
            return r
        endpoint = request.path.rsplit("/", 1)[1]
        mark = "mark-price" in endpoint
        live = not endpoint.startswith("history")
        q = request.query
        if q.get("instId") not in {i["instId"] for i in self.instruments}:
            return self._err("51001", "Instrument ID does not exist")
        if q.get("bar", "1m") != "1H":
            return self._err("51000", "Parameter bar error")
        w = self._window(q, 100, 300 if live and not mark else 100)
        if isinstance(w, str):
            return self._err("51000", w)
        limit, after, before = w
        rows: list[list[str]] = []
        bars = self.coin_bars.get(q["instId"])
        if bars is not None:
            ct = self.ct_val(q["instId"])
            lo, hi = 0, self.available_count()
            if live:
                lo = max(0, hi - LIVE_DEPTH)
            t = self.bars.open_time
            if before is not None:
                lo = max(lo, int(np.searchsorted(t, before, "right")))
            if after is not None:
                hi = min(hi, int(np.searchsorted(t, after, "left")))
            lo = max(lo, hi - limit)
            closed = self.closed_count()
            for i in range(hi - 1, lo - 1, -1):  # newest first
                b = bar_values(bars, i, final=i < closed)
                confirm = "1" if i < closed else "0"
                if mark:
                    rows.append([str(b.open_time), b.open, b.high, b.low, b.close, confirm])
                else:
                    contracts = _fmt(float(b.volume) / ct)
                    rows.append([str(b.open_time), b.open, b.high, b.low, b.close, contracts, b.volume,
                                 b.quote or "0", confirm])  # fmt: skip
        return self._ok(rows)

    @staticmethod
    def _begin_end(q: Any) -> tuple[int | None, int | None, int] | str:
        try:
            begin = int(q["begin"]) if q.get("begin") else None
            end = int(q["end"]) if q.get("end") else None
            limit = int(q.get("limit", "100"))
        except ValueError:
            return "Parameter begin/end/limit error"
        if not 1 <= limit <= 100:
            return "Parameter limit error"
        return begin, end, limit

    async def _open_interest(self, request: web.Request) -> web.Response:
        if (r := await self._enter(request)) is not None:
            return r
        q = request.query
        if q.get("instId") not in {i["instId"] for i in self.instruments}:
            return self._err("51001", "Instrument ID does not exist")
        period = q.get("period", "5m")
        if period not in OI_PERIODS:
            return self._err("51000", "Parameter period error")
        w = self._begin_end(q)
        if isinstance(w, str):
            return self._err("51000", w)
        begin, end, limit = w
        rows: list[list[str]] = []
        if q["instId"] in self.coin_bars:
            t = self.oi_time
            ct, k = self.ct_val(q["instId"]), coin_scale(q["instId"].split("-")[0])
            idx = [i for i in self._oi_available(period)
                   if (begin is None or t[i] > begin) and (end is None or t[i] < end)]  # fmt: skip
            for i in idx[::-1][:limit]:  # newest first
                base = float(self.oi_base[i])
                rows.append([str(int(t[i])), _fmt(base / ct), self.oi_base[i], scale_text(self.oi_usd[i], k)])
        return self._ok(rows)

    async def _taker_volume(self, request: web.Request) -> web.Response:
        if (r := await self._enter(request)) is not None:
            return r
        q = request.query
        if q.get("instId") not in {i["instId"] for i in self.instruments}:
            return self._err("51001", "Instrument ID does not exist")
        if q.get("period", "5m") != "1H":
            return self._err("51000", "Parameter period error")
        unit = q.get("unit", "1")
        if unit not in ("0", "1", "2"):
            return self._err("51000", "Parameter unit error")
        w = self._begin_end(q)
        if isinstance(w, str):
            return self._err("51000", w)
        begin, end, limit = w
        rows: list[list[str]] = []
        bars = self.coin_bars.get(q["instId"])
        if bars is not None:
            ct = self.ct_val(q["instId"])
            lo, hi = self.taker_available()
            t = self.bars.open_time
            picked = [
                i for i in range(lo, hi) if (begin is None or t[i] > begin) and (end is None or t[i] < end)
            ]
            for i in picked[::-1][:limit]:
                b = bar_values(bars, i, final=True)
                buy, total = float(b.taker_base or 0), float(b.volume)
                if unit == "0":
                    sell_s, buy_s = _fmt(total - buy), b.taker_base or "0"
                elif unit == "1":
                    sell_s, buy_s = _fmt((total - buy) / ct), _fmt(buy / ct)
                else:
                    buy_q = float(b.taker_quote or 0)
                    sell_s, buy_s = _fmt(float(b.quote or 0) - buy_q), _fmt(buy_q)
                rows.append([str(int(t[i])), sell_s, buy_s])
        return self._ok(rows)

    # -- websocket -----------------------------------------------------------------------------------------------
    async def on_ws_text(self, conn: WsConn, text: str) -> None:
        if text == "ping":
            await self.send(conn, "pong")
            return
        self._conn_ids += 1
        conn_id = f"fake{self._conn_ids:04d}"
        try:
            req = json.loads(text)
            op, args = req["op"], req.get("args") or []
        except (ValueError, KeyError, TypeError):
            await self.send(conn, json.dumps({"event": "error", "code": "60012",
                                              "msg": f"Illegal request: {text}", "connId": conn_id}))  # fmt: skip
            return
        business = conn.path.endswith("/business")
        for arg in args:
            channel = str(arg.get("channel", "")) if isinstance(arg, dict) else ""
            if channel.startswith("candle"):
                ok = business and arg.get("instId") in {i["instId"] for i in self.instruments}
                topic = f"{channel}:{arg.get('instId')}"
            elif channel == "liquidation-orders":
                ok = not business and arg.get("instType") in ("SWAP", "FUTURES", "MARGIN", "OPTION")
                topic = f"{channel}:{arg.get('instType')}"
            else:
                ok, topic = False, ""
            if not ok:
                msg = f"Wrong URL or channel:{channel},instId:{arg.get('instId') if isinstance(arg, dict) else ''}"
                await self.send(conn, json.dumps({"event": "error", "code": "60018", "msg": msg + " doesn't exist",
                                                  "connId": conn_id}))  # fmt: skip
                continue
            if op == "subscribe":
                conn.topics.add(topic)
            elif op == "unsubscribe":
                conn.topics.discard(topic)
            await self.send(conn, json.dumps({"event": op, "arg": arg, "connId": conn_id}))

    async def push_bar(
        self, index: int, *, final: bool, fraction: float = 0.5, market: str | None = None
    ) -> int:
        inst = market or self.inst_id
        b = bar_values(self.coin_bars[inst], index, final=final, fraction=fraction)
        row = [str(b.open_time), b.open, b.high, b.low, b.close, _fmt(float(b.volume) / self.ct_val(inst)), b.volume,
               b.quote or "0", "1" if final else "0"]  # fmt: skip
        msg = {"arg": {"channel": "candle1H", "instId": inst}, "data": [row]}
        return await self.broadcast(f"candle1H:{inst}", json.dumps(msg))

    async def push_liquidations(
        self, events: list[RecordedLiquidation], *, net: bool = False, inst_id: str | None = None
    ) -> int:
        """One ``liquidation-orders`` push for BTC-USDT-SWAP carrying ``events`` as details (``net``: one-way
        mode positions, whose ``posSide`` is "net" and whose side only the order ``side`` tells); ``inst_id``:
        another instrument's (sizes converted with its contract size)."""
        inst = inst_id or self.inst_id
        ct = self.ct_val(inst)
        details = [
            {"bkLoss": "0", "bkPx": e.order_price, "ccy": "", "posSide": "net" if net else ("long" if e.long else "short"),
             "side": "sell" if e.long else "buy", "sz": _fmt(float(e.base) / ct), "ts": str(e.time)}
            for e in events
        ]  # fmt: skip
        family = inst.removesuffix("-SWAP")
        msg = {
            "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
            "data": [{"details": details, "instFamily": family, "instId": inst, "instType": "SWAP",
                      "uly": family}],
        }  # fmt: skip
        return await self.broadcast("liquidation-orders:SWAP", json.dumps(msg))

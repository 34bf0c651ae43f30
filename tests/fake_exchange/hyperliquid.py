"""A loopback fake Hyperliquid: the info endpoint and the websocket, real bundled data, rate limits and faults.

Formats follow Hyperliquid's API documentation (hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api:
info endpoint, perpetuals, rate limits, websocket subscriptions) and what ccxt 4.5.90 reads from them
(ccxt/hyperliquid.py, ccxt/pro/hyperliquid.py). Point the real ccxt client at it with
``FakeHyperliquid.ccxt_options()``.

``POST /info`` with a JSON body ``{"type": ...}``:
- ``meta``, ``metaAndAssetCtxs`` (``[meta, [asset context…]]``; the context carries ``openInterest`` in coins and
  ``markPx``: this is how ccxt's ``fetch_open_interest`` reads it; the venue keeps no open-interest history),
  ``spotMeta`` (USDC only), ``perpDexs``;
- ``candleSnapshot`` (``req``: coin, interval, startTime, endTime): candles ``{t, T, s, i, o, c, h, l, v, n}``
  of ``1h`` (the bundled bars; other valid intervals are refused with HTTP 400 naming the limitation), the live
  one included; only the latest 5,000 candles of an interval exist, as on the venue;
- ``clearinghouseState`` (``user``): the positions of a configurable set of accounts (``HlPosition``): ``coin``,
  ``szi`` (signed size), ``entryPx``, ``leverage {type, value}`` (``rawUsd`` for isolated), ``liquidationPx``
  (null on hedged cross accounts), ``positionValue``, ``marginUsed``, ``unrealizedPnl``…; an unknown address
  has no positions; a malformed one is HTTP 422.
Anything else is HTTP 422 ("Failed to deserialize the JSON body into the target type"), as the venue answers.

The market moves: ``mark_overrides`` sets a coin's mark price (BTC's is otherwise the live bar's close);
``auto_liquidate=True`` makes the fake act as the venue's liquidation engine: when a bar closes (``advance``), every
position whose liquidation price that bar's low (longs) or high (shorts) reached is removed from its account and
logged in ``liquidated``. ``answers`` replaces an account's ``clearinghouseState`` answer with any JSON value (bad
payloads).

Rate limit: an aggregated weight of 1,200 per minute per IP (configurable): weight 2 for ``clearinghouseState``
(and the venue's other light requests), 20 for the rest, ``candleSnapshot`` plus 1 per 60 candles returned.
Over the budget: HTTP 429. ``fail_next`` keys are info types.

Websocket ``/ws``: ``{"method": "subscribe", "subscription": {"type": "candle", "coin", "interval"}}`` and
``{"type": "trades", "coin"}`` answered with ``subscriptionResponse``; ``{"method": "ping"}`` → ``{"channel":
"pong"}``. Trades carry ``users: [buyer, seller]`` and ``side`` (B = the buyer was the taker, A = the seller).
The venue publishes no liquidation stream.

Data: one year of Binance BTC 1h bars (Hyperliquid's BTC trades within a few basis points of it) and
Hyperliquid's own hourly BTC open interest in USD, on the same dates (venue_data.py). The candle trade count ``n``
is not in the bundled data: 0. Other coins' contexts are static, representative values.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import web

from .loopback import Fault, WsConn
from .venue_base import FakeVenue
from .venue_data import (
    bar_values,
    binance_year_1h,
    hyperliquid_open_interest_1h,
)

CANDLE_DEPTH = 5000
LIGHT_INFO = {
    "l2Book",
    "allMids",
    "clearinghouseState",
    "orderStatus",
    "spotClearinghouseState",
    "exchangeStatus",
}
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "1w", "1M")
ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
# name, szDecimals, maxLeverage, static mark price for the coins without bundled bars; delisted entries stay listed
UNIVERSE: list[tuple[str, int, int, float | None, bool]] = [
    ("BTC", 5, 40, None, False),
    ("ETH", 4, 25, 3520.4, False),
    ("SOL", 2, 20, 171.23, False),
    ("HYPE", 2, 10, 38.125, False),
    ("kPEPE", 0, 10, 0.011203, False),
    ("MATIC", 1, 20, 0.37844, True),
]


@dataclass(frozen=True)
class HlPosition:
    """One open position as ``clearinghouseState`` reports it. ``szi`` > 0 is long. ``margin_used`` defaults to
    position value / leverage."""

    coin: str
    szi: float
    entry_px: float
    leverage: int
    margin_type: str = "cross"  # or "isolated"
    liquidation_px: float | None = None
    margin_used: float | None = None


@dataclass(frozen=True)
class HlTrade:
    time: int
    px: float
    sz: float
    side: str  # "B": the buyer took liquidity, "A": the seller did
    buyer: str
    seller: str


def _num(x: float) -> str:
    return f"{x:.8f}".rstrip("0").rstrip(".") or "0"


class FakeHyperliquid(FakeVenue):
    name = "hyperliquid"
    coin = "BTC"
    ws_paths = ("/ws",)

    def __init__(
        self,
        *,
        live_index: int | None = None,
        ping_interval: float | None = None,
        accounts: dict[str, list[HlPosition]] | None = None,
        weight_limit: int = 1200,
        weight_window_s: float = 60.0,
        wall_clock: bool = False,
        auto_liquidate: bool = False,
        coins: Sequence[str] = (),
    ) -> None:
        """``coins``: more coins served with candles (BTC's bars, prices scaled: venue_data.coin_scale)."""
        super().__init__(
            binance_year_1h(), live_index=live_index, ping_interval=ping_interval, wall_clock=wall_clock
        )
        self.serve_markets(self.coin, [(c.upper(), c) for c in coins])
        listed = {u[0] for u in UNIVERSE}
        self.universe = list(UNIVERSE) + [(c, 2, 20, None, False) for c in self.coin_bars if c not in listed]
        oi_time, self.oi_usd = hyperliquid_open_interest_1h()
        self.oi_time = oi_time + self.time_shift_ms
        self.accounts: dict[str, list[HlPosition]] = {k.lower(): v for k, v in (accounts or {}).items()}
        self.weight_limit = weight_limit
        self.weight_window_s = weight_window_s
        self._weights: deque[tuple[float, int]] = deque()
        self.rate_limited = 0  # requests answered 429 for the weight budget
        self._tid = 1_000_000
        self.mark_overrides: dict[str, float] = {}
        self.auto_liquidate = auto_liquidate
        self.liquidated: list[tuple[int, str, HlPosition]] = []  # (bar close time, address, position)
        self.answers: dict[str, Any] = {}  # address → the clearinghouseState answer to send instead
        # (monotonic time, info type, HTTP status, weight) of every info request that reached the weight budget
        self.info_log: list[tuple[float, str, int, int]] = []

    def ccxt_options(self) -> dict[str, Any]:
        """ccxt constructor options pointing hyperliquid (info endpoint and websocket) at this server."""
        h = self.http_url
        return {
            "urls": {"api": {"public": h, "private": h, "ws": {"public": f"{self.ws_url}/ws"}}},
            "timeout": 5000,
            "rateLimit": 1,  # ccxt's own throttle would only slow the tests
        }

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/info", self._info)

    # -- the market now ------------------------------------------------------------------------------------------
    def mark_price(self, coin: str = "BTC") -> float:
        if coin in self.mark_overrides:
            return self.mark_overrides[coin]
        bars = self.coin_bars.get(coin)
        for name, _, _, px, _ in self.universe:
            if name == coin and px is not None and bars is None:
                return px
        i = min(self.closed_count(), len(self.bars) - 1)
        return float(bar_values(bars or self.bars, i, final=i < self.closed_count()).close)

    def open_interest_coins(self) -> float:
        """BTC open interest now, in coins: the latest hourly USD snapshot at or before now, over the price at
        that snapshot (the close of the bar ending then; before the series starts, its first value)."""
        k = max(0, int(np.searchsorted(self.oi_time, self.now_ms, "right")) - 1)
        t = int(self.oi_time[k])
        j = max(0, int(np.searchsorted(self.bars.open_time, t, "left")) - 1)
        return float(self.oi_usd[k]) / float(self.bars.close[j])

    def open_interest_usd(self, at_ms: int | None = None) -> float:
        """What a client should compute at ``at_ms`` (default now): coins × mark price, both as served."""
        now = self.now_ms
        if at_ms is not None:
            self.now_ms = at_ms
        try:
            return float(_num(self.open_interest_coins())) * float(_num(self.mark_price()))
        finally:
            self.now_ms = now

    # -- rate limit, errors --------------------------------------------------------------------------------------
    def weight_used(self) -> int:
        cutoff = time.monotonic() - self.weight_window_s
        while self._weights and self._weights[0][0] < cutoff:
            self._weights.popleft()
        return sum(w for _, w in self._weights)

    def error_fault(self, status: int) -> Fault:
        if status == 422:
            return Fault(422, "Failed to deserialize the JSON body into the target type", "text/plain")
        if status == 429:
            return Fault(429, "Too Many Requests", "text/plain")
        return Fault(
            status, f"{status} Internal Server Error" if status == 500 else f"{status} error", "text/plain"
        )

    def _fault(self, status: int) -> web.Response:
        f = self.error_fault(status)
        return web.Response(text=f.body, status=f.status, content_type=f.content_type)

    # -- the info endpoint ---------------------------------------------------------------------------------------
    async def _info(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            kind = str(body["type"])
        except (ValueError, KeyError, TypeError):
            self.request_log.append(("info:<bad>", {}))
            return self._fault(422)
        if (r := await self.gate(kind, body)) is not None:
            return r
        handler = {
            "meta": self._meta, "metaAndAssetCtxs": self._meta_and_ctxs, "spotMeta": self._spot_meta,
            "perpDexs": self._perp_dexs, "candleSnapshot": self._candles, "clearinghouseState": self._clearinghouse,
        }.get(kind)  # fmt: skip
        if handler is None:
            return self._fault(422)
        result = handler(body)
        if isinstance(result, web.Response):
            return result
        weight = 2 if kind in LIGHT_INFO else 20
        if kind == "candleSnapshot":
            weight += len(result) // 60
        now = time.monotonic()
        if self.weight_used() + weight > self.weight_limit:
            self.rate_limited += 1
            self.info_log.append((now, kind, 429, weight))
            return self._fault(429)
        self._weights.append((now, weight))
        self.info_log.append((now, kind, 200, weight))
        return web.json_response(result)

    def _universe(self) -> list[dict[str, Any]]:
        out = []
        for name, sz_dec, lev, _, delisted in self.universe:
            entry: dict[str, Any] = {
                "szDecimals": sz_dec,
                "name": name,
                "maxLeverage": lev,
                "marginTableId": lev,
            }
            if delisted:
                entry["isDelisted"] = True
            out.append(entry)
        return out

    def _meta(self, body: dict[str, Any]) -> Any:
        return {"universe": self._universe(), "marginTables": []}

    def _meta_and_ctxs(self, body: dict[str, Any]) -> Any:
        ctxs = []
        for name, _, _, _, _ in self.universe:
            mark = self.mark_price(name)
            oi = self.open_interest_coins() if name in self.coin_bars else 1000.0
            ctxs.append({
                "funding": "0.0000125", "openInterest": _num(oi), "prevDayPx": _num(mark), "dayNtlVlm": "0.0",
                "premium": "0.0", "oraclePx": _num(mark), "markPx": _num(mark), "midPx": _num(mark),
                "impactPxs": [_num(mark), _num(mark)], "dayBaseVlm": "0.0",
            })  # fmt: skip
        return [self._meta(body), ctxs]

    def _spot_meta(self, body: dict[str, Any]) -> Any:
        usdc = {"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0, "isCanonical": True,
                "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054", "evmContract": None, "fullName": None}  # fmt: skip
        return {"tokens": [usdc], "universe": []}

    def _perp_dexs(self, body: dict[str, Any]) -> Any:
        return [None]

    def _candles(self, body: dict[str, Any]) -> Any:
        req = body.get("req")
        if (
            not isinstance(req, dict)
            or not isinstance(req.get("coin"), str)
            or req.get("interval") not in INTERVALS
        ):
            return self._fault(422)
        try:
            start, end = int(req["startTime"]), int(req.get("endTime", self.now_ms))
        except (KeyError, TypeError, ValueError):
            return self._fault(422)
        if req["interval"] != "1h":
            return web.Response(status=400, text="this fake serves 1h candles only (the bundled bars)")
        bars = self.coin_bars.get(req["coin"])
        if bars is None:
            return []
        lo, hi = self.index_range(start, end)
        lo = max(lo, self.available_count() - CANDLE_DEPTH)
        out = []
        closed = self.closed_count()
        for i in range(lo, hi):
            b = bar_values(bars, i, final=i < closed)
            out.append({"t": b.open_time, "T": b.open_time + self.interval_ms - 1, "s": req["coin"], "i": "1h",
                        "o": b.open, "c": b.close, "h": b.high, "l": b.low, "v": b.volume, "n": 0})  # fmt: skip
        return out

    def clearinghouse_state(self, user: str) -> dict[str, Any]:
        """``clearinghouseState`` for ``user`` at the current mark prices."""
        positions = []
        total_ntl = total_margin = 0.0
        for p in self.accounts.get(user.lower(), []):
            mark = self.mark_price(p.coin)
            value = abs(p.szi) * mark
            upnl = p.szi * (mark - p.entry_px)
            margin = p.margin_used if p.margin_used is not None else value / p.leverage
            lev: dict[str, Any] = {"type": p.margin_type, "value": p.leverage}
            if p.margin_type == "isolated":
                lev["rawUsd"] = _num(-p.szi * p.entry_px + margin)
            positions.append({"type": "oneWay", "position": {
                "coin": p.coin, "szi": _num(p.szi), "entryPx": _num(p.entry_px), "leverage": lev,
                "liquidationPx": None if p.liquidation_px is None else _num(p.liquidation_px),
                "positionValue": _num(value), "marginUsed": _num(margin), "unrealizedPnl": _num(upnl),
                "returnOnEquity": _num(upnl / (abs(p.szi) * p.entry_px / p.leverage)),
                "maxLeverage": next(lv for n, _, lv, _, _ in self.universe if n == p.coin),
                "cumFunding": {"allTime": "0.0", "sinceChange": "0.0", "sinceOpen": "0.0"},
            }})  # fmt: skip
            total_ntl += value
            total_margin += margin
        summary = {"accountValue": _num(total_margin * 2 + 1000.0), "totalNtlPos": _num(total_ntl),
                   "totalRawUsd": _num(total_margin * 2 + 1000.0), "totalMarginUsed": _num(total_margin)}  # fmt: skip
        return {"assetPositions": positions, "marginSummary": summary, "crossMarginSummary": summary,
                "crossMaintenanceMarginUsed": _num(total_margin / 2), "withdrawable": _num(total_margin),
                "time": self.now_ms}  # fmt: skip

    def _clearinghouse(self, body: dict[str, Any]) -> Any:
        user = body.get("user")
        if not isinstance(user, str) or not ADDRESS.match(user):
            return self._fault(422)
        if user.lower() in self.answers:
            return self.answers[user.lower()]
        return self.clearinghouse_state(user)

    def liquidate_crossed(self, time_ms: int, low: float, high: float, coin: str = "BTC") -> int:
        """Remove every ``coin`` position whose liquidation price [low, high] reached; returns how many."""
        n = 0
        for address, positions in self.accounts.items():
            keep = []
            for p in positions:
                liq = p.liquidation_px
                hit = p.coin == coin and liq is not None and (low <= liq if p.szi > 0 else high >= liq)
                if hit:
                    self.liquidated.append((time_ms, address, p))
                    n += 1
                else:
                    keep.append(p)
            self.accounts[address] = keep
        return n

    # -- websocket -----------------------------------------------------------------------------------------------
    async def on_ws_text(self, conn: WsConn, text: str) -> None:
        try:
            req = json.loads(text)
            method = req["method"]
        except (ValueError, KeyError, TypeError):
            await self.send(conn, json.dumps({"channel": "error", "data": f"Error parsing JSON into valid websocket "
                                                                          f"request: {text}"}))  # fmt: skip
            return
        if method == "ping":
            await self.send(conn, json.dumps({"channel": "pong"}))
            return
        sub = req.get("subscription")
        topic = self._topic(sub)
        if method not in ("subscribe", "unsubscribe") or topic is None:
            await self.send(
                conn, json.dumps({"channel": "error", "data": f"Invalid subscription {json.dumps(sub)}"})
            )
            return
        if method == "subscribe":
            if topic in conn.topics:
                await self.send(
                    conn, json.dumps({"channel": "error", "data": f"Already subscribed: {json.dumps(sub)}"})
                )
                return
            conn.topics.add(topic)
        else:
            conn.topics.discard(topic)
        await self.send(conn, json.dumps({"channel": "subscriptionResponse", "data": {"method": method,
                                                                                       "subscription": sub}}))  # fmt: skip

    @staticmethod
    def _topic(sub: Any) -> str | None:
        if not isinstance(sub, dict) or not isinstance(sub.get("coin"), str):
            return None
        if sub.get("type") == "trades":
            return f"trades:{sub['coin']}"
        if sub.get("type") == "candle" and sub.get("interval") in INTERVALS:
            return f"candle:{sub['coin']}:{sub['interval']}"
        return None

    async def push_bar(
        self, index: int, *, final: bool, fraction: float = 0.5, market: str | None = None
    ) -> int:
        coin = market or self.coin
        b = bar_values(self.coin_bars[coin], index, final=final, fraction=fraction)
        if final and self.auto_liquidate:
            self.liquidate_crossed(b.open_time + self.interval_ms, float(b.low), float(b.high), coin)
        data = {"t": b.open_time, "T": b.open_time + self.interval_ms - 1, "s": coin, "i": "1h", "o": b.open,
                "c": b.close, "h": b.high, "l": b.low, "v": b.volume, "n": 0}  # fmt: skip
        return await self.broadcast(f"candle:{coin}:1h", json.dumps({"channel": "candle", "data": data}))

    async def push_trades(self, trades: list[HlTrade], coin: str = "BTC") -> int:
        """One ``trades`` message carrying ``trades`` (each with both counterparties' addresses)."""
        data = []
        for t in trades:
            self._tid += 1
            data.append({"coin": coin, "side": t.side, "px": _num(t.px), "sz": _num(t.sz), "time": t.time,
                         "hash": f"0x{self._tid:064x}", "tid": self._tid, "users": [t.buyer, t.seller]})  # fmt: skip
        return await self.broadcast(f"trades:{coin}", json.dumps({"channel": "trades", "data": data}))

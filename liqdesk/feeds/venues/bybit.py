"""Bybit linear perpetuals (USDT- and USDC-settled), v5 API.

Candles from the raw kline endpoint (``/v5/market/kline``, ≤ 1,000 a call) so that ``turnover`` is kept as quote
volume; Bybit's klines have no taker volume (the model's taker share falls back to neutral). A range holding more
bars than ``limit`` comes back as its newest bars, so every request spans at most one page. Mark-price wicks from
``/v5/market/mark-price-kline``.

Open interest from ``/v5/market/open-interest`` (periods 5m, 15m, 30m, 1h, 4h, 1d; ≤ 200 a page, newest first,
older pages through ``nextPageCursor``). Bybit counts it in coins: each snapshot is valued at the open of the
venue's own bar starting at that time (one kline request per page).

Liquidations (``allLiquidation.<symbol>``: every liquidation, pushed in 500 ms batches; also the older
``liquidation.<symbol>``, one a second): ``S`` / ``side`` is the POSITION side, so Buy = a long was liquidated;
``v`` / ``size`` is in coins (linear contracts are one coin); ``p`` is the bankruptcy price.

Errors: retCode 10016 ("system error, try again later") is retried like a gateway error (ccxt would make it a
plain ExchangeError, which is not retried).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from ccxt.base import errors as ccxt_errors

from liqdesk.core.series import LONG, SHORT, Candles, OpenInterest, timeframe_ms
from liqdesk.feeds.venues.base import (
    OI_PERIODS_MS,
    LiquidationFeed,
    LiquidationRecord,
    Venue,
    as_time_ms,
    candle_rows_in,
    candles_from_rows,
    finite_positive,
    mark_wicks,
)

# ccxt timeframe → Bybit kline interval, and OI period → Bybit intervalTime
KLINE_INTERVALS = {"1m": "1", "3m": "3", "5m": "5", "15m": "15", "30m": "30", "1h": "60", "2h": "120",
                   "4h": "240", "1d": "D"}  # fmt: skip
OI_INTERVALS = {"5m": "5min", "15m": "15min", "30m": "30min", "1h": "1h", "4h": "4h", "1d": "1d"}
MAX_CURSOR_PAGES = 50  # one window never needs more; a venue that keeps answering with cursors is stopped


def _result_list(response: Any, what: str) -> tuple[list[Any], str]:
    """(result.list, result.nextPageCursor) of a v5 response; ValueError if the shape is wrong."""
    result = response.get("result") if isinstance(response, dict) else None
    rows = result.get("list") if isinstance(result, dict) else None
    if not isinstance(rows, list) or not isinstance(result, dict):
        raise ValueError(f"bybit {what}: no result list in the answer")
    cursor = result.get("nextPageCursor")
    return rows, cursor if isinstance(cursor, str) else ""


class Bybit(Venue):
    id: ClassVar[str] = "bybit"
    label: ClassVar[str] = "Bybit linear"
    kline_limit: ClassVar[int] = 1000
    oi_limit: ClassVar[int] = 200
    oi_periods: ClassVar[tuple[str, ...]] = tuple(OI_INTERVALS)
    has_mark_candles: ClassVar[bool] = True
    full_candles: ClassVar[bool] = False
    quote_volume: ClassVar[bool] = True
    taker_volume: ClassVar[bool] = False
    liquidation_feed: ClassVar[LiquidationFeed | None] = LiquidationFeed(
        "allLiquidation.<symbol>",
        complete=True,
        note="every liquidation, pushed in 500 ms batches; price is the bankruptcy price",
    )
    data_notes: ClassVar[tuple[str, ...]] = (
        "candles: quote volume (turnover), no taker volume (Bybit's klines have none)",
        "open interest history in coins, valued at the price of the bar opening at each snapshot",
    )
    ccxt_defaults: ClassVar[dict[str, Any]] = {
        "options": {"defaultType": "swap", "fetchMarkets": {"types": ["linear"]}},
        "exceptions": {"exact": {"10016": ccxt_errors.ExchangeNotAvailable}},
    }

    # -- candles ---------------------------------------------------------------------------------------------
    async def _klines(
        self, method: str, symbol: str, timeframe: str, since: int, until: int, limit: int
    ) -> list[list[Any]]:
        market = await self.market(symbol)
        interval = timeframe_ms(timeframe)
        end = min(until, since + interval * limit) - 1  # at most one page in the range: see the module notes
        request = {
            "category": "linear",
            "symbol": market["id"],
            "interval": KLINE_INTERVALS[timeframe],
            "start": since,
            "end": end,
            "limit": limit,
        }
        rows, _ = _result_list(await getattr(self.exchange, method)(request), method)
        return candle_rows_in(rows, since, until)

    async def candles_page(self, symbol: str, timeframe: str, since: int, until: int, limit: int) -> Candles:
        # [start, open, high, low, close, volume (coins), turnover (quote)], newest first
        raw = await self._klines("publicGetV5MarketKline", symbol, timeframe, since, until, limit)
        rows = [[float(x) for x in r[:7]] for r in raw]
        return candles_from_rows(rows, timeframe_ms(timeframe), full=False, quote=True)

    async def mark_page(
        self, symbol: str, timeframe: str, since: int, until: int, limit: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raw = await self._klines("publicGetV5MarketMarkPriceKline", symbol, timeframe, since, until, limit)
        return mark_wicks(raw)

    # -- open interest ---------------------------------------------------------------------------------------
    async def open_interest_page(
        self, symbol: str, period: str, since: int, until: int, limit: int
    ) -> OpenInterest:
        market = await self.market(symbol)
        request: dict[str, Any] = {
            "category": "linear",
            "symbol": market["id"],
            "intervalTime": OI_INTERVALS[period],
            "startTime": since,
            "endTime": until - 1,
            "limit": limit,
        }
        amounts: dict[int, float] = {}
        for _ in range(MAX_CURSOR_PAGES):
            rows, cursor = _result_list(
                await self.exchange.publicGetV5MarketOpenInterest(request), "open interest"
            )
            for r in rows:
                t = as_time_ms(
                    r.get("timestamp") if isinstance(r, dict) else None, "bybit open interest time"
                )
                if since <= t < until:
                    amounts[t] = finite_positive(r.get("openInterest"), "bybit openInterest")
            if not cursor or not rows:
                break
            request["cursor"] = cursor
        if not amounts:
            return OpenInterest(np.zeros(0, np.int64), np.zeros(0))
        first, last = min(amounts), max(amounts)
        price = await self._prices_at(symbol, period, first, last + OI_PERIODS_MS[period])
        size = self.contract_size(market)
        kept = sorted(t for t in amounts if t in price)  # a snapshot without its bar cannot be valued
        usd = [amounts[t] * size * price[t] for t in kept]
        return OpenInterest(np.asarray(kept, np.int64), np.asarray(usd, np.float64))

    async def _prices_at(self, symbol: str, period: str, start: int, end: int) -> dict[int, float]:
        """Open price of each bar of ``period`` starting in [start, end): the price at that moment."""
        step = OI_PERIODS_MS[period]
        out: dict[int, float] = {}
        since = start
        while since < end:
            n = max(1, min(self.kline_limit, -(-(end - since) // step)))
            raw = await self._klines("publicGetV5MarketKline", symbol, period, since, end, n)
            if not raw:
                break
            for r in raw:
                out[int(r[0])] = finite_positive(r[1], "bybit kline open")
            since = max(int(r[0]) for r in raw) + step
        return out

    # -- liquidations ----------------------------------------------------------------------------------------
    def normalise_raw(
        self, raw: dict[str, Any], symbol: str, market: dict[str, Any]
    ) -> list[LiquidationRecord]:
        side_raw = str(raw.get("S", raw.get("side", "")))
        if side_raw.lower() == "buy":
            side = LONG  # position side: a long position was liquidated
        elif side_raw.lower() == "sell":
            side = SHORT
        else:
            raise ValueError(f"bybit liquidation side {side_raw!r} is neither Buy nor Sell")
        price = finite_positive(raw.get("p", raw.get("price")), "bybit liquidation price")
        qty = finite_positive(raw.get("v", raw.get("size")), "bybit liquidation size")
        qty *= self.contract_size(market) if market else 1.0
        t = as_time_ms(raw.get("T", raw.get("updatedTime")), "bybit liquidation time")
        return [LiquidationRecord(self.id, symbol, t, side, price, qty, price * qty, price, side_raw)]

"""Binance USDⓈ-M perpetuals.

Candles come from the raw kline endpoint (``fapiPublicGetKlines``, up to 1,500 a call) because ccxt's unified
OHLCV drops quote and taker-buy volume; mark-price wicks from ``fapiPublicGetMarkPriceKlines``; open interest
from ``/futures/data/openInterestHist`` (≤ 500 a call, last 30 days only).

Liquidations (``forceOrder``): ``S`` is the liquidation ORDER's side, so SELL = a long was liquidated.
``ap`` is the average fill, ``p`` the order's limit price; ``z`` the filled total (ccxt's ``contracts`` is only the
last fill ``l``). The stream sends at most one liquidation per symbol per second: the tape is a sample.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from liqdesk.core.series import LONG, SHORT, Candles, timeframe_ms
from liqdesk.feeds.venues.base import (
    LiquidationFeed,
    LiquidationRecord,
    Venue,
    VenueDataError,
    as_time_ms,
    candles_from_rows,
    finite_positive,
    mark_wicks,
)


class BinanceUsdm(Venue):
    id: ClassVar[str] = "binanceusdm"
    label: ClassVar[str] = "Binance USDⓈ-M"
    kline_limit: ClassVar[int] = 1500
    oi_limit: ClassVar[int] = 500
    oi_max_age_ms: ClassVar[int | None] = 30 * 86_400_000
    has_mark_candles: ClassVar[bool] = True
    full_candles: ClassVar[bool] = True
    quote_volume: ClassVar[bool] = True
    taker_volume: ClassVar[bool] = True
    liquidation_feed: ClassVar[LiquidationFeed | None] = LiquidationFeed(
        "<symbol>@forceOrder",
        complete=False,
        note="at most one liquidation per symbol per second (the latest): a sample",
    )
    data_notes: ClassVar[tuple[str, ...]] = (
        "candles: quote and taker-buy volume",
        "open interest history: the last 30 days only",
    )

    async def _klines(
        self, method: str, symbol: str, timeframe: str, since: int, until: int, limit: int
    ) -> list[list[Any]]:
        market = await self.market(symbol)
        request = {
            "symbol": market["id"],
            "interval": self.exchange.safe_string(self.exchange.timeframes, timeframe, timeframe),
            "startTime": since,
            "endTime": until - 1,
            "limit": limit,
        }
        rows = await getattr(self.exchange, method)(request)
        if not isinstance(rows, list):
            raise VenueDataError(f"{self.id} {method} returned {type(rows).__name__}, not a list")
        return rows

    async def candles_page(self, symbol: str, timeframe: str, since: int, until: int, limit: int) -> Candles:
        # [open time, o, h, l, c, volume, close time, quote volume, trades, taker buy base, taker buy quote, -]
        raw = await self._klines("fapiPublicGetKlines", symbol, timeframe, since, until, limit)
        rows = [
            [
                float(k[0]),
                float(k[1]),
                float(k[2]),
                float(k[3]),
                float(k[4]),
                float(k[5]),
                float(k[7]),
                float(k[9]),
            ]
            for k in raw
            if since <= int(k[0]) < until
        ]
        return candles_from_rows(rows, timeframe_ms(timeframe), full=True)

    async def mark_page(
        self, symbol: str, timeframe: str, since: int, until: int, limit: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raw = await self._klines("fapiPublicGetMarkPriceKlines", symbol, timeframe, since, until, limit)
        return mark_wicks(k for k in raw if since <= int(k[0]) < until)

    def normalise_raw(
        self, raw: dict[str, Any], symbol: str, market: dict[str, Any]
    ) -> list[LiquidationRecord]:
        # ccxt's `info` is the order object; a whole event carries it under "o"
        o = raw["o"] if isinstance(raw.get("o"), dict) else raw
        side_raw = str(o.get("S", "")).upper()
        if side_raw == "SELL":
            side = LONG  # a sell order closes a long
        elif side_raw == "BUY":
            side = SHORT
        else:
            raise ValueError(f"forceOrder side {o.get('S')!r} is neither BUY nor SELL")
        order_price = finite_positive(o.get("p"), "forceOrder price p")
        try:
            price = finite_positive(o.get("ap"), "forceOrder average price ap")
        except ValueError:
            price = order_price
        try:
            qty = finite_positive(o.get("z"), "forceOrder filled quantity z")
        except ValueError:
            qty = finite_positive(o.get("q"), "forceOrder quantity q")
        qty *= self.contract_size(market) if market else 1.0
        t = as_time_ms(o.get("T", raw.get("E")), "forceOrder time T")
        return [LiquidationRecord(self.id, symbol, t, side, price, qty, price * qty, order_price, side_raw)]

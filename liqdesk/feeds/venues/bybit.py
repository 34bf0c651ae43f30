"""Bybit linear (USDT) perpetuals.

History through ccxt's unified OHLCV (1,000 bars a call; quote volume is ``turnover`` in the raw row, taker
volume is not offered) and open interest (200 a call). Mark-price candles through ``price: mark``.

Liquidations (``allLiquidation.<symbol>`` and the older ``liquidation.<symbol>``): ``S`` / ``side`` is the
POSITION side, so Buy = a long was liquidated. ``v`` / ``size`` is in base units for linear contracts.
"""

from __future__ import annotations

from typing import Any, ClassVar

from liqdesk.core.series import LONG, SHORT
from liqdesk.feeds.venues.base import LiquidationRecord, Venue, as_time_ms, finite_positive


class Bybit(Venue):
    id: ClassVar[str] = "bybit"
    label: ClassVar[str] = "Bybit linear"
    kline_limit: ClassVar[int] = 1000
    oi_limit: ClassVar[int] = 200
    has_mark_candles: ClassVar[bool] = True
    full_candles: ClassVar[bool] = False
    ccxt_defaults: ClassVar[dict[str, Any]] = {"options": {"defaultType": "swap"}}

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
        return [LiquidationRecord(self.id, symbol, t, side, price, qty, price * qty, None, side_raw)]

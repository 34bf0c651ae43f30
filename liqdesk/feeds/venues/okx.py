"""OKX USDT-margined perpetual swaps.

History through ccxt's unified OHLCV (OKX pages 100 rows on history-candles; ccxt asks 100/300 a call) and open
interest history (100 a call). Mark-price candles through ``price: mark``.

Liquidations (``liquidation-orders``, instType SWAP): each message carries ``details``; ``posSide`` is the
liquidated position (long/short; ``net`` mode falls back to the order ``side``: sell closes a long), ``sz`` is in
contracts (× the market's contract value ``ctVal``), ``bkPx`` the bankruptcy price. ccxt parses only the first
detail, so liqdesk reads all of them from the raw message.
"""

from __future__ import annotations

from typing import Any, ClassVar

from liqdesk.core.series import LONG, SHORT
from liqdesk.feeds.venues.base import LiquidationRecord, Venue, as_time_ms, finite_positive


class Okx(Venue):
    id: ClassVar[str] = "okx"
    label: ClassVar[str] = "OKX swap"
    kline_limit: ClassVar[int] = 100
    oi_limit: ClassVar[int] = 100
    has_mark_candles: ClassVar[bool] = True
    full_candles: ClassVar[bool] = False
    ccxt_defaults: ClassVar[dict[str, Any]] = {"options": {"defaultType": "swap"}}

    def normalise_raw(
        self, raw: dict[str, Any], symbol: str, market: dict[str, Any]
    ) -> list[LiquidationRecord]:
        details = raw.get("details")
        if not isinstance(details, list) or not details:
            raise ValueError("okx liquidation without details")
        ct_val = self.contract_size(market) if market else 1.0
        out: list[LiquidationRecord] = []
        for d in details:
            if not isinstance(d, dict):
                raise ValueError("okx liquidation detail is not an object")
            pos = str(d.get("posSide", "")).lower()
            order_side = str(d.get("side", "")).lower()
            if pos == "long" or (pos in ("net", "") and order_side == "sell"):
                side = LONG
            elif pos == "short" or (pos in ("net", "") and order_side == "buy"):
                side = SHORT
            else:
                raise ValueError(f"okx liquidation posSide {d.get('posSide')!r} / side {d.get('side')!r}")
            price = finite_positive(d.get("bkPx"), "okx liquidation bkPx")
            qty = finite_positive(d.get("sz"), "okx liquidation sz") * ct_val
            t = as_time_ms(d.get("ts"), "okx liquidation ts")
            out.append(
                LiquidationRecord(self.id, symbol, t, side, price, qty, price * qty, price, pos or order_side)
            )
        return out

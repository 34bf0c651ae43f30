"""Hyperliquid perpetuals (``hyperliquid`` in ccxt; symbols like BTC/USDC:USDC), through the info endpoint.

Candles from ``candleSnapshot`` (ccxt's unified OHLCV, up to 5,000 a call): base volume only, no quote or taker
volume, and only the latest 5,000 candles of an interval exist (1m: about three and a half days), so history
starts there (a request for older candles comes back empty and the pager moves on).

Open interest: the venue publishes the current value only (``metaAndAssetCtxs``, in coins, valued here at the mark
price it comes with) and no history endpoint. It is polled live and stored in the cache as it comes, one point per
open-interest period, so the history grows from first use; before that the volume model applies.

Trades (the public ``trades`` stream) carry both counterparties' addresses, ``users: [buyer, seller]``;
``normalise_trade`` keeps them. There is no public liquidation stream, so the tape stays empty.

Rate limits: the info endpoint weighs requests against 1,200 per minute per IP (2 for light requests such as
``clearinghouseState``, 20 for the rest, ``candleSnapshot`` more for long answers); HTTP 429 when over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from liqdesk.core.series import timeframe_ms
from liqdesk.feeds.venues.base import LiquidationFeed, LiquidationRecord, Venue, as_time_ms, finite_positive

CANDLE_DEPTH = 5000


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One public trade with both counterparties. ``taker_side`` is +1 when the buyer took liquidity, -1 when
    the seller did; ``size`` is in coins."""

    exchange: str
    symbol: str
    time: int
    price: float
    size: float
    taker_side: int
    trade_id: str
    buyer: str
    seller: str


class Hyperliquid(Venue):
    id: ClassVar[str] = "hyperliquid"
    label: ClassVar[str] = "Hyperliquid"
    kline_limit: ClassVar[int] = CANDLE_DEPTH
    has_oi_history: ClassVar[bool] = False
    has_mark_candles: ClassVar[bool] = False
    full_candles: ClassVar[bool] = False
    quote_volume: ClassVar[bool] = False
    taker_volume: ClassVar[bool] = False
    liquidation_feed: ClassVar[LiquidationFeed | None] = None
    data_notes: ClassVar[tuple[str, ...]] = (
        "candles: base volume only (no quote or taker volume); only the latest 5,000 candles of an interval",
        "no open-interest history: the current value is recorded from first use",
        "no public liquidation stream: no tape",
        "trades carry both counterparties' addresses",
    )
    ccxt_defaults: ClassVar[dict[str, Any]] = {
        "options": {"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}}
    }

    @classmethod
    def candle_depth_ms(cls, timeframe: str) -> int | None:
        return CANDLE_DEPTH * timeframe_ms(timeframe)

    def normalise_raw(
        self, raw: dict[str, Any], symbol: str, market: dict[str, Any]
    ) -> list[LiquidationRecord]:
        raise ValueError("hyperliquid publishes no liquidation stream")

    def normalise_trade(self, trade: dict[str, Any], symbol: str) -> TradeRecord:
        """A ccxt trade from ``watch_trades`` (its raw ``info``) with both addresses. ValueError if malformed."""
        info = trade.get("info") if isinstance(trade, dict) else None
        if not isinstance(info, dict):
            raise ValueError("hyperliquid trade without raw info")
        users = info.get("users")
        if not (isinstance(users, list) and len(users) == 2 and all(isinstance(u, str) and u for u in users)):
            raise ValueError(f"hyperliquid trade without its two users: {users!r}")
        side = info.get("side")
        if side not in ("B", "A"):
            raise ValueError(f"hyperliquid trade side {side!r} is neither B nor A")
        return TradeRecord(
            self.id, symbol, as_time_ms(info.get("time"), "hyperliquid trade time"),
            finite_positive(info.get("px"), "hyperliquid trade px"), finite_positive(info.get("sz"), "hyperliquid trade sz"),
            1 if side == "B" else -1, str(info.get("tid", "")), users[0].lower(), users[1].lower(),
        )  # fmt: skip

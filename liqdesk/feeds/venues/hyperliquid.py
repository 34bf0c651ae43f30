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

Positions: ``clearinghouseState`` returns any account's open positions (public data) with the venue's own
liquidation price. They are read from the raw answer (``fetch_account``), not through ccxt's ``fetch_positions``:
ccxt keeps ``liquidationPx``, leverage, ``marginUsed`` and ``positionValue`` only inside each position's ``info``
and drops the answer's ``time``, and the raw answer is what a recording must keep. ``parse_clearinghouse_state``
reads that answer wherever it comes from (the sampler, a recorded file). Open interest and mark price of every
coin come from one ``metaAndAssetCtxs`` answer (``fetch_market_contexts``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from liqdesk.core.series import timeframe_ms
from liqdesk.feeds.venues.base import (
    LiquidationFeed,
    LiquidationRecord,
    Venue,
    as_time_ms,
    finite_positive,
    reads,
)

CANDLE_DEPTH = 5000
# The venue's request weights (per IP, per minute) for what the position sampler sends.
WEIGHT_LIMIT_PER_MINUTE = 1200
WEIGHT_CLEARINGHOUSE_STATE = 2
WEIGHT_META_AND_ASSET_CTXS = 20
# The sampler's default share: a third, so the window and other tools on the same address keep room.
DEFAULT_SAMPLER_BUDGET = WEIGHT_LIMIT_PER_MINUTE / 3
MARGIN_TYPES = ("cross", "isolated")


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


# -- positions ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PositionRecord:
    """One open position from ``clearinghouseState``. ``size`` is signed (> 0 long) in coins;
    ``liquidation_px`` None where the venue gives none (hedged cross accounts; a non-positive value, which price
    can never reach, reads the same); ``position_value`` = |size| × mark."""

    coin: str
    size: float
    entry_px: float
    leverage: float
    margin_type: str  # "cross" or "isolated"
    liquidation_px: float | None
    margin_used: float
    position_value: float


@dataclass(frozen=True, slots=True)
class AccountState:
    """One ``clearinghouseState`` answer: the positions of ``user`` at ``time`` (the venue's, None if absent)."""

    user: str
    time: int | None
    positions: tuple[PositionRecord, ...]


@dataclass(frozen=True, slots=True)
class MarketContext:
    """A coin's open interest (coins) and mark price from ``metaAndAssetCtxs``."""

    open_interest: float
    mark_px: float

    @property
    def open_interest_usd(self) -> float:
        return self.open_interest * self.mark_px


def _number(value: Any, what: str, *, minimum: float | None = None, exclusive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{what} is not a number: {value!r:.60}")
    try:
        f = float(value)
    except ValueError:
        raise ValueError(f"{what} is not a number: {value!r:.60}") from None
    if not math.isfinite(f):
        raise ValueError(f"{what} is not finite: {value!r:.60}")
    if minimum is not None and (f < minimum or (exclusive and f == minimum)):
        raise ValueError(f"{what} must be {'>' if exclusive else '≥'} {minimum:g}: {value!r:.60}")
    return f


def _position(entry: Any, i: int) -> PositionRecord | None:
    where = f"assetPositions[{i}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("position"), dict):
        raise ValueError(f"{where} has no position object")
    p = entry["position"]
    coin = p.get("coin")
    if not isinstance(coin, str) or not coin or len(coin) > 40:
        raise ValueError(f"{where}.coin is not a coin name: {coin!r:.60}")
    where = f"{where} ({coin})"
    size = _number(p.get("szi"), f"{where} szi")
    if size == 0:
        return None  # nothing held
    lev = p.get("leverage")
    if not isinstance(lev, dict) or lev.get("type") not in MARGIN_TYPES:
        raise ValueError(f"{where} leverage is not {{type: cross|isolated, value}}: {lev!r:.80}")
    liq_raw = p.get("liquidationPx")
    liq = None if liq_raw is None else _number(liq_raw, f"{where} liquidationPx")
    return PositionRecord(
        coin=coin,
        size=size,
        entry_px=_number(p.get("entryPx"), f"{where} entryPx", minimum=0.0, exclusive=True),
        leverage=_number(lev.get("value"), f"{where} leverage value", minimum=1.0),
        margin_type=str(lev["type"]),
        liquidation_px=liq if liq is not None and liq > 0 else None,
        margin_used=_number(p.get("marginUsed"), f"{where} marginUsed", minimum=0.0),
        position_value=_number(p.get("positionValue"), f"{where} positionValue", minimum=0.0),
    )


def parse_clearinghouse_state(response: Any, user: str) -> AccountState:
    """Read a ``clearinghouseState`` answer. ValueError (saying what and where) if any part of it cannot be
    used: an answer is taken whole or not at all, since a position missing from it would read as closed."""
    if not isinstance(response, dict):
        raise ValueError(f"clearinghouseState answer is not an object: {type(response).__name__}")
    items = response.get("assetPositions")
    if not isinstance(items, list):
        raise ValueError("clearinghouseState answer has no assetPositions list")
    t_raw = response.get("time")
    t = None if t_raw is None else as_time_ms(t_raw, "clearinghouseState time")
    positions = tuple(p for i, e in enumerate(items) if (p := _position(e, i)) is not None)
    coins = [p.coin for p in positions]
    if len(set(coins)) != len(coins):
        raise ValueError("clearinghouseState answer lists a coin twice")
    return AccountState(user.lower(), t, positions)


def parse_asset_contexts(response: Any) -> dict[str, MarketContext]:
    """Read a ``metaAndAssetCtxs`` answer: coin → open interest and mark. A coin whose context cannot be read
    is left out; an answer of the wrong shape is a ValueError."""
    if not (isinstance(response, list) and len(response) == 2 and isinstance(response[0], dict)):
        raise ValueError("metaAndAssetCtxs answer is not [meta, contexts]")
    universe, ctxs = response[0].get("universe"), response[1]
    if not isinstance(universe, list) or not isinstance(ctxs, list) or len(universe) != len(ctxs):
        raise ValueError("metaAndAssetCtxs answer: universe and contexts differ")
    out: dict[str, MarketContext] = {}
    for meta, ctx in zip(universe, ctxs, strict=True):
        if not (isinstance(meta, dict) and isinstance(ctx, dict) and isinstance(meta.get("name"), str)):
            continue
        try:
            oi = _number(ctx.get("openInterest"), "openInterest", minimum=0.0)
            mark = _number(ctx.get("markPx"), "markPx", minimum=0.0, exclusive=True)
        except ValueError:
            continue
        out[meta["name"]] = MarketContext(oi, mark)
    return out


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
    settles: ClassVar[tuple[str, ...]] = ("USDC",)
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

    # -- positions (the info endpoint, raw) -----------------------------------------------------------------------
    @reads("an account's positions (clearinghouseState)")
    async def fetch_account(self, user: str) -> tuple[Any, AccountState]:
        """(raw answer, parsed) for ``user``. Weighs ``WEIGHT_CLEARINGHOUSE_STATE``."""
        raw = await self.exchange.publicPostInfo({"type": "clearinghouseState", "user": user})
        return raw, parse_clearinghouse_state(raw, user)

    @reads("asset contexts (metaAndAssetCtxs)")
    async def fetch_market_contexts(self) -> dict[str, MarketContext]:
        """Open interest and mark of every coin. Weighs ``WEIGHT_META_AND_ASSET_CTXS``."""
        return parse_asset_contexts(await self.exchange.publicPostInfo({"type": "metaAndAssetCtxs"}))

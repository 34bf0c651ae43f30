"""OKX perpetual swaps (USDT- and USDC-margined), v5 API.

Candles from the raw endpoints so that base and quote volume are kept: ``market/candles`` serves only the latest
1,440 bars (≤ 300 a call), ``market/history-candles`` everything (≤ 100 a call); a page inside the latest 1,440
bars by the venue's clock uses the first. ``after`` / ``before`` are exclusive and the newest bars of a window
come back first, so every window spans at most one page. Volume is ``volCcy`` (coins), not ``vol`` (contracts).
Mark-price wicks from ``mark-price-candles`` / ``history-mark-price-candles`` (≤ 100).

Taker volume is not on OKX candles: it comes from the trading statistics (``rubik/stat/taker-volume-contract``,
``unit=0`` = coins, periods 5m … 4H and 1D), which keep only the latest 1,440 periods; older bars have none (the
model's taker share falls back to neutral there). Open interest history from
``rubik/stat/contracts/open-interest-history`` (periods 5m, 1H, 1D as ccxt supports them; ≤ 100 a call; the
latest 1,440 entries of a period), in USD (``oiUsd``).

Liquidations (``liquidation-orders``, instType SWAP): the venue shows at most one liquidation order per contract
per second, so the tape is a sample. Each message carries ``details``; ``posSide`` is the liquidated position
(long/short; ``net`` mode falls back to the order ``side``: sell closes a long), ``sz`` is in contracts (× the
market's contract value ``ctVal``), ``bkPx`` the bankruptcy price. ccxt parses only the first detail, so liqdesk
reads all of them from the raw message.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from liqdesk.core.series import LONG, SHORT, Candles, timeframe_ms
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

LIVE_DEPTH = 1440  # bars on market/candles, entries on the trading statistics
LIVE_LIMIT = 300  # market/candles; history and mark endpoints take 100
STATS_LIMIT = 100
TAKER_PERIODS = {"5m": "5m", "15m": "15m", "30m": "30m", "1h": "1H", "2h": "2H", "4h": "4H", "1d": "1Dutc"}


def _data(response: Any, what: str) -> list[Any]:
    data = response.get("data") if isinstance(response, dict) else None
    if not isinstance(data, list):
        raise ValueError(f"okx {what}: no data list in the answer")
    return data


class Okx(Venue):
    id: ClassVar[str] = "okx"
    label: ClassVar[str] = "OKX swap"
    kline_limit: ClassVar[int] = 100
    oi_limit: ClassVar[int] = STATS_LIMIT
    oi_periods: ClassVar[tuple[str, ...]] = ("5m", "1h", "1d")
    has_mark_candles: ClassVar[bool] = True
    full_candles: ClassVar[bool] = False
    quote_volume: ClassVar[bool] = True
    taker_volume: ClassVar[bool] = True
    liquidation_feed: ClassVar[LiquidationFeed | None] = LiquidationFeed(
        "liquidation-orders (SWAP)",
        complete=False,
        note="at most one liquidation order per contract per second: a sample; price is the bankruptcy price",
    )
    data_notes: ClassVar[tuple[str, ...]] = (
        "candles: quote volume; taker volume from the trading statistics, for the latest 1,440 periods only",
        "open interest history: periods 5m, 1h, 1d, the latest 1,440 entries of each",
    )
    ccxt_defaults: ClassVar[dict[str, Any]] = {
        "options": {"defaultType": "swap", "fetchMarkets": {"types": ["swap"]}}
    }

    @classmethod
    def oi_history_depth_ms(cls, period: str) -> int | None:
        return LIVE_DEPTH * OI_PERIODS_MS[period]

    def _bar(self, timeframe: str) -> str:
        bar = str(self.exchange.timeframes.get(timeframe, timeframe))
        # candles of 6 hours and more open at Hong Kong midnight unless asked for UTC
        return bar + "utc" if timeframe_ms(timeframe) >= 21_600_000 else bar

    def _current_bar(self, interval: int) -> int:
        now = self.clock()
        return now - now % interval

    def _is_recent(self, since: int, interval: int) -> bool:
        """Inside the latest 1,440 bars (the current one included) that market/candles serves."""
        return since >= self._current_bar(interval) - (LIVE_DEPTH - 1) * interval

    async def _candles(
        self, kind: str, symbol: str, timeframe: str, since: int, until: int
    ) -> list[list[Any]]:
        """Rows of ``kind`` ("" or "mark-price-") candles with since <= ts < until, newest first."""
        market = await self.market(symbol)
        interval = timeframe_ms(timeframe)
        recent = self._is_recent(since, interval)
        # the page size is the endpoint's own (the pager's ``limit`` is the history endpoints' 100)
        n = max(1, min(LIVE_LIMIT if recent and not kind else STATS_LIMIT, -(-(until - since) // interval)))
        request = {
            "instId": market["id"],
            "bar": self._bar(timeframe),
            "before": since - 1,  # exclusive bounds
            "after": min(until, since + n * interval),
            "limit": n,
        }
        path = f"{'' if recent else 'History'}{'MarkPrice' if kind else ''}Candles"
        rows = _data(await getattr(self.exchange, f"publicGetMarket{path}")(request), f"{kind}candles")
        return candle_rows_in(rows, since, until)

    async def candles_page(self, symbol: str, timeframe: str, since: int, until: int, limit: int) -> Candles:
        # [ts, o, h, l, c, vol (contracts), volCcy (coins), volCcyQuote, confirm]
        raw = await self._candles("", symbol, timeframe, since, until)
        if not raw:
            return candles_from_rows([], timeframe_ms(timeframe), full=True)
        times = [int(r[0]) for r in raw]
        taker = await self._taker_buy(symbol, timeframe, min(times), max(times) + timeframe_ms(timeframe))
        rows = [
            [float(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[6]), float(r[7]),
             taker.get(int(r[0]), float("nan"))]
            for r in raw
        ]  # fmt: skip
        return candles_from_rows(rows, timeframe_ms(timeframe), full=True)

    async def _taker_buy(self, symbol: str, timeframe: str, start: int, end: int) -> dict[int, float]:
        """Taker-buy volume in coins per period start in [start, end), where the venue still keeps it."""
        period = TAKER_PERIODS.get(timeframe)
        interval = timeframe_ms(timeframe)
        start = max(start, self._current_bar(interval) - LIVE_DEPTH * interval)  # the latest 1,440 closed
        if period is None or start >= end:
            return {}
        market = await self.market(symbol)
        out: dict[int, float] = {}
        since = start
        while since < end:
            until = min(end, since + STATS_LIMIT * interval)
            request = {"instId": market["id"], "period": period, "unit": "0", "begin": since - 1, "end": until,
                       "limit": STATS_LIMIT}  # fmt: skip
            for r in _data(
                await self.exchange.publicGetRubikStatTakerVolumeContract(request), "taker volume"
            ):
                if isinstance(r, list) and len(r) >= 3 and since <= int(r[0]) < until:
                    out[int(r[0])] = float(r[2])  # [ts, sellVol, buyVol]
            since = until
        return out

    async def mark_page(
        self, symbol: str, timeframe: str, since: int, until: int, limit: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raw = await self._candles("mark-price-", symbol, timeframe, since, until)
        return mark_wicks(raw)

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

"""The venue interface: everything exchange-specific about one ccxt exchange, behind one small class.

A venue builds its ccxt (pro) exchange from user options, pages history with the venue's own limits, and turns
the venue's raw liquidation messages into ``LiquidationRecord`` with a normalised side (LONG = a long position
was liquidated). The rest of liqdesk never looks at an exchange's raw formats.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, cast

import numpy as np

from liqdesk.core.series import Candles, OpenInterest, timeframe_ms
from liqdesk.errors import ConfigError, DataError
from liqdesk.feeds.exchange_config import deep_merge

Progress = Callable[[int, int, str], None]

DEFAULT_CCXT_CONFIG: dict[str, Any] = {"enableRateLimit": True, "timeout": 20_000}

OI_PERIODS_MS: dict[str, int] = {
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "12h": 43_200_000,
    "1d": 86_400_000,
}


class VenueDataError(DataError, ValueError):
    """A venue's answer that cannot be used (wrong shape or values): a DataError naming the venue and what was
    read, and still a ValueError for code that catches malformed messages."""


AsyncMethod = TypeVar("AsyncMethod", bound=Callable[..., Awaitable[Any]])


def reads(what: str) -> Callable[[AsyncMethod], AsyncMethod]:
    """Decorate a Venue method that reads the venue's answers: a malformed answer (ValueError, TypeError,
    KeyError or IndexError while reading it) becomes one VenueDataError naming the venue and ``what``."""

    def wrap(fn: AsyncMethod) -> AsyncMethod:
        @functools.wraps(fn)
        async def inner(self: Venue, *args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(self, *args, **kwargs)
            except VenueDataError:
                raise
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                raise VenueDataError(
                    f"{self.id} sent {what} that cannot be used ({type(exc).__name__}: {exc})"
                ) from None

        return cast(AsyncMethod, inner)

    return wrap


@dataclass(frozen=True, slots=True)
class LiquidationFeed:
    """A venue's public liquidation stream: its channel, whether it carries every liquidation (``complete``) or
    only a sample, and the quirk a user should know."""

    channel: str
    complete: bool
    note: str


@dataclass(frozen=True, slots=True)
class LiquidationRecord:
    """One real liquidation. ``side`` is LONG (+1) when a long position was liquidated, SHORT (-1) for a short.
    ``price`` is the fill (average) price where the venue gives one, ``order_price`` the order's limit or
    bankruptcy price; ``quantity`` is in base units; ``usd`` = quantity × price."""

    exchange: str
    symbol: str
    time: int
    side: int
    price: float
    quantity: float
    usd: float
    order_price: float | None = None
    raw_side: str = ""

    def key(self) -> tuple[str, str, int, int, float, float]:
        return (self.exchange, self.symbol, self.time, self.side, self.price, self.quantity)


def finite_positive(value: Any, what: str) -> float:
    """float(value) if finite and > 0, else ValueError naming ``what``."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not a number: {value!r}") from None
    if not math.isfinite(f) or f <= 0:
        raise ValueError(f"{what} must be a positive number: {value!r}")
    return f


def as_time_ms(value: Any, what: str = "time") -> int:
    try:
        t = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not an integer: {value!r}") from None
    if t < 10**11 or t > 10**14:
        raise ValueError(f"{what} is not epoch milliseconds: {value!r}")
    return t


def candle_rows_in(rows: Iterable[Any], since: int, until: int) -> list[list[Any]]:
    """The raw candle rows (lists of at least five fields, the open time first) opening in [since, until)."""
    return [r for r in rows if isinstance(r, list) and len(r) >= 5 and since <= int(r[0]) < until]


def mark_wicks(rows: Iterable[Sequence[Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw mark-price candle rows [open time, open, high, low, ...] → (open_time, high, low), by time."""
    out = sorted((int(k[0]), float(k[2]), float(k[3])) for k in rows)
    if not out:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    t, h, low = zip(*out, strict=True)
    return np.asarray(t, np.int64), np.asarray(h, float), np.asarray(low, float)


def empty_candles(interval_ms: int, *, full: bool = True) -> Candles:
    z = np.zeros(0)
    return Candles(
        np.zeros(0, np.int64), z, z, z, z, z, interval_ms,
        quote_volume=z if full else None, taker_buy_volume=z if full else None,
    )  # fmt: skip


def candles_from_rows(
    rows: list[list[float]],
    interval_ms: int,
    *,
    full: bool,
    quote: bool | None = None,
    taker: bool | None = None,
) -> Candles:
    """Rows [t, o, h, l, c, v(, quote, taker_buy)] → Candles, sorted by time, duplicates dropped (last wins).
    ``quote``/``taker`` (default: ``full``) say which of the two optional columns the rows carry; a row without
    taker volume may omit it."""
    has_quote = full if quote is None else quote
    has_taker = full if taker is None else taker
    if not rows:
        z = np.zeros(0)
        return Candles(
            np.zeros(0, np.int64), z, z, z, z, z, interval_ms,
            quote_volume=z if has_quote else None, taker_buy_volume=z if has_taker else None,
        )  # fmt: skip
    a = np.asarray(rows, dtype=np.float64)
    t = a[:, 0].astype(np.int64)
    order = np.argsort(t, kind="stable")
    a, t = a[order], t[order]
    keep = np.ones(len(t), bool)
    keep[:-1] = t[1:] != t[:-1]
    a, t = a[keep], t[keep]
    return Candles(
        t, a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5], interval_ms,
        quote_volume=a[:, 6] if has_quote else None, taker_buy_volume=a[:, 7] if has_taker else None,
    )  # fmt: skip


class Venue:
    """Base class; one subclass per exchange. Instances wrap one ccxt.pro exchange object.

    The class attributes say what the venue's public data gives (for status lines and the README): quote and
    taker-buy volume on candles, open-interest history (periods, page size, how far back), mark-price candles,
    and its liquidation stream (``liquidation_feed``; None = the venue publishes none)."""

    id: ClassVar[str]
    label: ClassVar[str]
    kline_limit: ClassVar[int] = 1000
    oi_limit: ClassVar[int] = 100
    oi_max_age_ms: ClassVar[int | None] = None
    oi_periods: ClassVar[tuple[str, ...]] = tuple(OI_PERIODS_MS)
    has_oi_history: ClassVar[bool] = True  # False: open interest is polled live and stored from first use
    has_mark_candles: ClassVar[bool] = False
    full_candles: ClassVar[bool] = False  # quote and taker-buy volume available
    quote_volume: ClassVar[bool] = False  # candles carry quote (USD) volume
    taker_volume: ClassVar[bool] = False  # candles carry taker-buy volume
    liquidation_feed: ClassVar[LiquidationFeed | None] = None
    settles: ClassVar[tuple[str, ...]] = ("USDT", "USDC")  # settle currencies of its linear perpetuals
    data_notes: ClassVar[tuple[str, ...]] = ()  # what a user should know about this venue's data
    ccxt_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, exchange: Any) -> None:
        self.exchange = exchange
        self.bad_frames = 0  # websocket frames ccxt could not handle (malformed JSON, unexpected shapes)
        self.last_bad_frame = ""
        # the venue's "now" in epoch ms; a LiveFeed or a test with a virtual clock replaces it
        self.clock: Callable[[], int] = lambda: time.time_ns() // 1_000_000
        if hasattr(exchange, "client"):
            self._guard_ws_frames()

    def _guard_ws_frames(self) -> None:
        """Make one bad websocket frame cost one message, not the connection.

        ccxt runs its receive loop from a done-callback: a frame that fails to decode or to parse raises out of
        that callback and the loop silently stops (every watch on the connection hangs). Each new
        ccxt client gets its ``handle_message`` wrapped so the exception is counted and the loop goes on."""
        ex = self.exchange
        make_client = ex.client

        def client(url: str) -> Any:
            c = make_client(url)
            if not getattr(c, "_liqdesk_guarded", False):
                inner = c.handle_message

                def guarded(message: Any, inner: Any = inner, url: str = url) -> None:
                    try:
                        inner(message)
                    except Exception as exc:
                        self.bad_frames += 1
                        self.last_bad_frame = f"{url}: {type(exc).__name__}: {exc}"

                c.handle_message = guarded
                c._liqdesk_guarded = True
            return c

        ex.client = client

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def ccxt_config(cls, options: dict[str, Any] | None) -> dict[str, Any]:
        return deep_merge(deep_merge(DEFAULT_CCXT_CONFIG, cls.ccxt_defaults), options or {})

    @classmethod
    def create(cls, options: dict[str, Any] | None = None) -> Venue:
        """A venue with a fresh ccxt.pro exchange (REST and websocket). Close it with ``await venue.close()``."""
        import ccxt.pro as ccxtpro

        klass = getattr(ccxtpro, cls.id, None)
        if klass is None:
            raise ConfigError(f"this ccxt has no websocket exchange {cls.id!r}")
        try:
            exchange = klass(cls.ccxt_config(options))
        except Exception as exc:  # ccxt raises assorted errors on bad config
            raise ConfigError(f"bad ccxt options for {cls.id}: {exc}") from None
        return cls(exchange)

    async def close(self) -> None:
        await self.exchange.close()

    # -- markets --------------------------------------------------------------------------------------
    async def market(self, symbol: str) -> dict[str, Any]:
        if not self.exchange.markets:
            await self.exchange.load_markets()
        try:
            return self.exchange.market(symbol)
        except Exception:
            raise DataError(
                f"{self.id} has no market {symbol!r} (use ccxt form, e.g. BTC/USDT:USDT)"
            ) from None

    def contract_size(self, market: dict[str, Any]) -> float:
        size = market.get("contractSize")
        try:
            f = float(size)
        except (TypeError, ValueError):
            return 1.0
        return f if math.isfinite(f) and f > 0 else 1.0

    # -- history, one page ----------------------------------------------------------------------------
    async def candles_page(self, symbol: str, timeframe: str, since: int, until: int, limit: int) -> Candles:
        """Bars with since <= open_time < until, at most ``limit``, from ccxt's unified OHLCV (no quote or
        taker volume); a venue with a richer raw endpoint overrides this."""
        rows = await self.exchange.fetch_ohlcv(symbol, timeframe, since, limit, {"until": until - 1})
        out = [[float(x) for x in r[:6]] for r in rows if r and r[0] is not None and since <= r[0] < until]
        return candles_from_rows(out, timeframe_ms(timeframe), full=False)

    async def mark_page(
        self, symbol: str, timeframe: str, since: int, until: int, limit: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(open_time, mark_high, mark_low) from the venue's mark-price candles."""
        rows = await self.exchange.fetch_ohlcv(
            symbol, timeframe, since, limit, {"price": "mark", "until": until - 1}
        )
        rows = [r for r in rows if r and r[0] is not None and since <= r[0] < until]
        a = np.asarray(rows, dtype=np.float64).reshape(-1, 6)
        return a[:, 0].astype(np.int64), a[:, 2], a[:, 3]

    async def open_interest_page(
        self, symbol: str, period: str, since: int, until: int, limit: int
    ) -> OpenInterest:
        rows = await self.exchange.fetch_open_interest_history(
            symbol, period, since, limit, {"until": until - 1}
        )
        market = await self.market(symbol)
        return self.open_interest_from_ccxt(rows, market, since, until)

    def open_interest_from_ccxt(
        self, rows: list[dict[str, Any]], market: dict[str, Any], since: int, until: int
    ) -> OpenInterest:
        times: list[int] = []
        usd: list[float] = []
        for r in rows:
            t = r.get("timestamp")
            if t is None or not (since <= t < until):
                continue
            value = r.get("openInterestValue")
            if value is None and r.get("openInterestAmount") is not None:
                price = (r.get("info") or {}).get("markPx") or market.get("info", {}).get("markPrice")
                value = float(r["openInterestAmount"]) * float(price) if price else None
            if value is None:
                continue
            times.append(int(t))
            usd.append(float(value))
        order = np.argsort(np.asarray(times, np.int64), kind="stable")
        return OpenInterest(np.asarray(times, np.int64)[order], np.asarray(usd, np.float64)[order])

    @classmethod
    def oi_period(cls, timeframe: str) -> str:
        """The open-interest period used for a candle timeframe: the finest the venue offers that is not finer
        than it (its finest for timeframes below that)."""
        tf = timeframe_ms(timeframe)
        periods = sorted(cls.oi_periods, key=OI_PERIODS_MS.__getitem__)
        best = periods[0]
        for name in periods:
            if OI_PERIODS_MS[name] <= tf:
                best = name
        return best

    @classmethod
    def candle_depth_ms(cls, timeframe: str) -> int | None:
        """How far back the venue serves candles of ``timeframe`` (None: no known limit)."""
        return None

    @classmethod
    def oi_history_depth_ms(cls, period: str) -> int | None:
        """How far back the venue serves open interest at ``period`` (None: no known limit)."""
        return cls.oi_max_age_ms

    @reads("its open interest")
    async def current_open_interest(self, symbol: str) -> float:
        """The open interest now, in USD (ccxt's ``fetch_open_interest``; a coin amount is valued at the mark
        price the venue gives with it)."""
        market = await self.market(symbol)
        r = await self.exchange.fetch_open_interest(symbol)
        if not isinstance(r, dict):
            raise ValueError(f"{self.id} open interest is not an object: {r!r}")
        value = r.get("openInterestValue")
        if value is None and r.get("openInterestAmount") is not None:
            info = r.get("info") or {}
            price = info.get("markPx") or info.get("markPrice")
            if price is None:
                raise ValueError(f"{self.id} open interest without a price to value it")
            value = float(r["openInterestAmount"]) * self.contract_size(market) * float(price)
        return finite_positive(value, f"{self.id} open interest")

    # -- history, paged --------------------------------------------------------------------------------
    @reads("candles")
    async def fetch_candles(
        self,
        symbol: str,
        timeframe: str,
        start_ms: int,
        end_ms: int,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> Candles:
        interval = timeframe_ms(timeframe)
        return await _page_candles(
            lambda since, limit: self.candles_page(symbol, timeframe, since, end_ms, limit),
            start_ms, end_ms, interval, self.kline_limit, self.full_candles, progress,
        )  # fmt: skip

    @reads("mark-price candles")
    async def fetch_mark(
        self, symbol: str, timeframe: str, start_ms: int, end_ms: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        interval = timeframe_ms(timeframe)
        ts: list[np.ndarray] = []
        hs: list[np.ndarray] = []
        ls: list[np.ndarray] = []
        since = start_ms
        while since < end_ms:
            t, h, low = await self.mark_page(symbol, timeframe, since, end_ms, self.kline_limit)
            if len(t) == 0:
                break
            ts.append(t)
            hs.append(h)
            ls.append(low)
            since = int(t[-1]) + interval
        if not ts:
            return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
        return np.concatenate(ts), np.concatenate(hs), np.concatenate(ls)

    @reads("open-interest history")
    async def fetch_open_interest(
        self,
        symbol: str,
        timeframe: str,
        start_ms: int,
        end_ms: int,
        *,
        now_ms: int,
        progress: Callable[[int], None] | None = None,
    ) -> OpenInterest:
        period = self.oi_period(timeframe)
        step = OI_PERIODS_MS[period]
        depth = self.oi_history_depth_ms(period)
        if depth is not None:
            # the venue keeps only recent history; one period of margin for clock skew
            start_ms = max(start_ms, now_ms - depth + step)
        out = OpenInterest(np.zeros(0, np.int64), np.zeros(0))
        since = start_ms
        while since < end_ms:
            until = min(end_ms, since + step * self.oi_limit)
            page = await self.open_interest_page(symbol, period, since, until, self.oi_limit)
            if len(page):
                out = out.concat(page)
            if progress:
                progress(len(page))
            since = int(page.time[-1]) + step if len(page) and page.time[-1] >= since else until
        if len(out) > 1:
            keep = np.ones(len(out), bool)
            keep[1:] = out.time[1:] != out.time[:-1]
            out = out.take(keep)
        return out

    # -- liquidations ----------------------------------------------------------------------------------
    def normalise_liquidation(self, liquidation: dict[str, Any], symbol: str) -> list[LiquidationRecord]:
        """The records in one ccxt liquidation structure (its raw ``info``). Raises ValueError if malformed."""
        info = liquidation.get("info") if isinstance(liquidation, dict) else None
        if not isinstance(info, dict):
            raise ValueError("liquidation without raw info")
        market = self.exchange.markets.get(symbol) if self.exchange.markets else None
        return self.normalise_raw(info, symbol, market or {})

    def normalise_raw(
        self, raw: dict[str, Any], symbol: str, market: dict[str, Any]
    ) -> list[LiquidationRecord]:
        raise NotImplementedError


async def _page_candles(
    fetch: Callable[[int, int], Awaitable[Candles]],
    start_ms: int,
    end_ms: int,
    interval: int,
    limit: int,
    full: bool,
    progress: Callable[[int], None] | None,
) -> Candles:
    parts: list[Candles] = []
    since = start_ms - start_ms % interval if start_ms % interval else start_ms
    while since < end_ms:
        # ask for no more than the span needs: venues weigh big pages more (Binance: 1 below 100 bars, 10 at 1500)
        page = await fetch(since, max(1, min(limit, -(-(end_ms - since) // interval))))
        if progress:
            progress(len(page))
        if len(page) == 0:
            # the venue has nothing from `since` on within one page span: skip the span (listing gaps)
            since += interval * limit
            continue
        parts.append(page)
        since = int(page.open_time[-1]) + interval
    if not parts:
        return empty_candles(interval, full=full)
    out = parts[0]
    for p in parts[1:]:
        out = out.concat(p)
    if len(out) > 1:
        keep = np.ones(len(out), bool)
        keep[1:] = out.open_time[1:] > out.open_time[:-1]
        out = out.take(keep)
    return out

"""History for one market: the cache first, the exchange for what is missing, everything stored.

``load_history`` (sync, for the CLI) and ``load_history_async`` (for the app's asyncio/qasync loop) return a
``MarketData`` of closed candles (with quote/taker volume and mark wicks where the venue offers them), open
interest, and the recorded real liquidations. With no network the cache is returned, marked offline, and its
``notes`` say so (the first one starting with "offline:").
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from ccxt.base import errors as ccxt_errors

from liqdesk.core.series import Candles, OpenInterest, timeframe_ms
from liqdesk.errors import DataError, LiqdeskError
from liqdesk.feeds.cache import CacheError
from liqdesk.feeds.market_data import MarketData
from liqdesk.feeds.store import MarketStore, open_store
from liqdesk.feeds.venues import Venue, create_venue, venue_class
from liqdesk.feeds.venues.base import OI_PERIODS_MS, empty_candles

log = logging.getLogger(__name__)

Progress = Callable[[int, int, str], None]
T = TypeVar("T")

RATE_LIMIT_ERRORS: tuple[type[BaseException], ...] = (
    ccxt_errors.RateLimitExceeded,
    ccxt_errors.DDoSProtection,
)
# Transient: worth a retry. OperationFailed covers ccxt's NetworkError and what HTTP 500/502/503 come as
# (ExchangeNotAvailable, or OperationFailed for Binance's -1000 "unknown error" body).
NETWORK_ERRORS: tuple[type[BaseException], ...] = (ccxt_errors.OperationFailed, OSError, asyncio.TimeoutError)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: delay_n = uniform(0.5, 1) × min(cap, base × 2^n)."""

    attempts: int = 5
    base_s: float = 1.0
    cap_s: float = 60.0
    rate_limit_base_s: float = 5.0  # HTTP 429/418: start slower

    def delay(self, attempt: int, *, rate_limited: bool = False) -> float:
        base = self.rate_limit_base_s if rate_limited else self.base_s
        return min(self.cap_s, base * 2.0**attempt) * random.uniform(0.5, 1.0)


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    what: str,
    *,
    policy: RetryPolicy,
    report: Callable[[str, str], None] | None = None,
) -> T:
    """Await ``fn()``; on network errors and rate limits back off and retry ``policy.attempts`` times, telling
    ``report(text, level)``. The last error propagates."""
    attempt = 0
    while True:
        try:
            return await fn()
        except RATE_LIMIT_ERRORS as exc:
            if attempt + 1 >= policy.attempts:
                raise
            d = policy.delay(attempt, rate_limited=True)
            if report:
                report(f"rate limited while {what} ({type(exc).__name__}); retrying in {d:.1f} s", "warning")
        except ccxt_errors.ExchangeError:
            raise  # a real answer from the exchange (bad symbol, bad request): retrying will not help
        except NETWORK_ERRORS as exc:
            if attempt + 1 >= policy.attempts:
                raise
            d = policy.delay(attempt)
            if report:
                report(
                    f"{error_kind(exc)} while {what} ({short_error(exc)}); retrying in {d:.1f} s", "warning"
                )
        attempt += 1
        await asyncio.sleep(d)


def error_kind(exc: BaseException) -> str:
    """What kind of failure an exchange call met, in words."""
    if isinstance(exc, RATE_LIMIT_ERRORS):
        return "rate limited"
    if isinstance(exc, ccxt_errors.ExchangeNotAvailable) or (
        isinstance(exc, ccxt_errors.OperationFailed) and not isinstance(exc, ccxt_errors.NetworkError)
    ):
        return "exchange unavailable (server error)"
    if isinstance(exc, ccxt_errors.ExchangeError):
        return "exchange error"
    return "network error"


def short_error(exc: BaseException) -> str:
    """``Type: first line of the message`` (ccxt messages carry whole response bodies)."""
    text = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def merge_candles(stored: Candles, extra: Candles) -> Candles:
    """The bars of both, by time, one per open time (``extra``'s where both have one)."""
    if not len(extra):
        return stored
    both = extra.concat(stored) if len(stored) else extra
    _, first = np.unique(both.open_time, return_index=True)
    return both.take(first)


def merge_open_interest(stored: OpenInterest, extra: OpenInterest) -> OpenInterest:
    if not len(extra):
        return stored
    both = extra.concat(stored)
    _, first = np.unique(both.time, return_index=True)
    return both.take(first)


_NOT_STORED = "not stored in the cache"


def _keeper(
    tolerant: bool, report: Callable[[str, str], None] | None
) -> Callable[[str, Callable[[], object]], bool]:
    """A cache write runner. Tolerant, a CacheError (lock, full disk, damage) is reported and False returned:
    the data fetched stays in memory for this run and its range stays unmarked, so it is fetched again later.
    Otherwise the error propagates."""

    def keep(what: str, fn: Callable[[], object]) -> bool:
        if not tolerant:
            fn()
            return True
        try:
            fn()
            return True
        except CacheError as exc:
            if report:
                report(f"{_NOT_STORED} (used for this run only): {what}: {exc}", "warning")
            return False

    return keep


def _floor(t: int, step: int) -> int:
    return t - t % step


async def backfill_candles(
    venue: Venue,
    cache: MarketStore,
    symbol: str,
    timeframe: str,
    start_ms: int,
    end_ms: int,
    *,
    with_mark: bool = True,
    policy: RetryPolicy = RetryPolicy(),
    report: Callable[[str, str], None] | None = None,
    on_page: Callable[[int, str], None] | None = None,
    unstored: list[Candles] | None = None,
) -> Candles:
    """Fetch the closed bars of [start_ms, end_ms) the cache lacks, store them (and their coverage). Returns
    what was fetched. ``end_ms`` must not be later than the current bar's open time. With ``unstored`` (a list),
    a cache that cannot take the bars (CacheError) is reported and the bars appended there instead of raising."""
    ex = venue.id
    interval = timeframe_ms(timeframe)
    fetched: list[Candles] = []
    for gap_start, gap_end in cache.missing("candles", ex, symbol, timeframe, start_ms, end_ms):
        label = f"candles {timeframe} from {time.strftime('%Y-%m-%d %H:%M', time.gmtime(gap_start / 1000))}"
        page_cb = (lambda n, lb=label: on_page(n, lb)) if on_page else None
        got = await call_with_retries(
            lambda s=gap_start, e=gap_end, cb=page_cb: venue.fetch_candles(
                symbol, timeframe, s, e, progress=cb
            ),
            f"fetching {label}",
            policy=policy,
            report=report,
        )
        got = got.between(gap_start, gap_end)
        keep = _keeper(unstored is not None, report)
        stored = keep(
            f"{len(got):,} fetched {timeframe} bars",
            lambda g=got: cache.put_candles(ex, symbol, timeframe, g),
        )
        if with_mark and venue.has_mark_candles and len(got):
            try:
                t, h, low = await call_with_retries(
                    lambda s=gap_start, e=gap_end: venue.fetch_mark(symbol, timeframe, s, e),
                    "fetching mark-price candles",
                    policy=policy,
                    report=report,
                )
                if not stored or not keep(
                    "mark-price wicks",
                    lambda t=t, h=h, lo=low: cache.put_mark(ex, symbol, timeframe, t, h, lo),
                ):
                    got, stored = _with_mark(got, t, h, low), False
            except (ccxt_errors.BaseError, ValueError) as exc:
                if report:
                    report(f"no mark-price candles from {ex}: {exc}", "info")
        if stored:
            keep(
                "the fetched range",
                lambda s=gap_start, e=gap_end: cache.add_coverage("candles", ex, symbol, timeframe, s, e),
            )
        elif unstored is not None:
            unstored.append(got)
        if len(got):
            fetched.append(got)
    out = fetched[0] if fetched else empty_candles(interval, full=venue.full_candles)
    for c in fetched[1:]:
        out = out.concat(c)
    return out


def _with_mark(c: Candles, t: np.ndarray, high: np.ndarray, low: np.ndarray) -> Candles:
    """Mark wicks on the bars they belong to (bars without one get their own high/low)."""
    pos = np.searchsorted(t, c.open_time)
    pos = np.minimum(pos, max(len(t) - 1, 0))
    hit = (t[pos] == c.open_time) if len(t) else np.zeros(len(c), bool)
    return c.with_mark(np.where(hit, high[pos], c.high), np.where(hit, low[pos], c.low))


async def backfill_open_interest(
    venue: Venue,
    cache: MarketStore,
    symbol: str,
    timeframe: str,
    start_ms: int,
    end_ms: int,
    *,
    now_ms: int,
    policy: RetryPolicy = RetryPolicy(),
    report: Callable[[str, str], None] | None = None,
    on_page: Callable[[int, str], None] | None = None,
    unstored: list[OpenInterest] | None = None,
    clock: Callable[[], int] | None = None,
) -> int:
    """Fetch the open interest of [start_ms, end_ms) the cache lacks and store it; returns how many points
    were fetched. ``unstored`` as in backfill_candles; ``clock`` as in record_open_interest."""
    ex = venue.id
    if not venue.has_oi_history:
        return await record_open_interest(venue, cache, symbol, timeframe, now_ms=now_ms, policy=policy,
                                          report=report, clock=clock)  # fmt: skip
    period = venue.oi_period(timeframe)
    step = OI_PERIODS_MS[period]
    end = min(end_ms, _floor(now_ms, step) + 1)
    depth = venue.oi_history_depth_ms(period)
    if depth is not None:
        start_ms = max(start_ms, _floor(now_ms - depth, step) + step)
    n = 0
    for gap_start, gap_end in cache.missing("oi", ex, symbol, period, start_ms, end):
        oi = await call_with_retries(
            lambda s=gap_start, e=gap_end: venue.fetch_open_interest(
                symbol, timeframe, s, e, now_ms=now_ms,
                progress=(lambda k: on_page(k, f"open interest {period}")) if on_page else None,
            ),
            f"fetching open interest {period}",
            policy=policy,
            report=report,
        )  # fmt: skip
        n += len(oi)
        keep = _keeper(unstored is not None, report)
        if not keep(
            f"{len(oi):,} fetched open-interest points",
            lambda o=oi: cache.put_open_interest(ex, symbol, period, o),
        ):
            unstored.append(oi)  # type: ignore[union-attr]
            continue
        # the newest period may still be published later: leave it uncovered
        covered_end = min(gap_end, _floor(now_ms, step) - step + 1)
        keep(
            "the fetched range",
            lambda s=gap_start, e=covered_end: cache.add_coverage("oi", ex, symbol, period, s, e),
        )
    return n


async def record_open_interest(
    venue: Venue,
    cache: MarketStore,
    symbol: str,
    timeframe: str,
    *,
    now_ms: int,
    policy: RetryPolicy = RetryPolicy(),
    report: Callable[[str, str], None] | None = None,
    clock: Callable[[], int] | None = None,
) -> int:
    """For a venue with no open-interest history: store the current open interest, observed now, as the one
    point of the current period (a period that already has one is left alone and nothing is fetched). Polled
    regularly, this grows the history from first use. Returns the number of points stored (0 or 1).

    ``clock`` (a live feed's): the point is dated when the answer came, not when it was asked for, so that an
    answer that arrives after the period turned is the new period's point, with the value the venue gave then."""
    period = venue.oi_period(timeframe)
    step = OI_PERIODS_MS[period]

    def has_point(t: int) -> bool:
        bucket = _floor(t, step)
        return len(cache.get_open_interest(venue.id, symbol, period, bucket, bucket + step)) > 0

    if has_point(now_ms):
        return 0
    usd = await call_with_retries(
        lambda: venue.current_open_interest(symbol), "fetching the current open interest", policy=policy,
        report=report,
    )  # fmt: skip
    observed = now_ms if clock is None else max(now_ms, clock())
    if _floor(observed, step) != _floor(now_ms, step) and has_point(observed):
        return 0
    return cache.put_open_interest(
        venue.id, symbol, period, OpenInterest(np.array([observed]), np.array([usd]))
    )


async def load_history_async(
    exchange_id: str,
    symbol: str,
    timeframe: str,
    start_ms: int | None,
    end_ms: int | None,
    *,
    span_ms: int | None = None,
    ccxt_options: dict[str, Any] | None = None,
    progress: Progress | None = None,
    cache: MarketStore | None = None,
    store: str | None = None,
    venue: Venue | None = None,
    now_ms: int | None = None,
    with_open_interest: bool = True,
    with_mark: bool = True,
    offline_ok: bool = True,
    policy: RetryPolicy = RetryPolicy(),
) -> MarketData:
    """Closed bars with start_ms <= open_time < end_ms (cache first, missing parts fetched and stored), open
    interest over the range where the venue keeps it, and the recorded liquidations.

    ``now_ms`` (default: the clock) decides which bars are closed. ``venue``/``cache`` may be shared with a
    LiveFeed; otherwise they are opened and closed here (the cache: the store at ``store``, a URL; None: the
    default, see ``liqdesk.feeds.store``). With ``offline_ok`` a network failure yields the cache
    with a warning; otherwise it raises DataError. ``end_ms=None`` means now; ``start_ms=None`` means
    ``end - span_ms``."""
    interval = timeframe_ms(timeframe)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if end_ms is None:
        end_ms = now
    if start_ms is None:
        if span_ms is None:
            raise DataError("give a start time or a span (--range) for the history")
        start_ms = end_ms - span_ms
    if end_ms <= start_ms:
        raise DataError(f"empty time range: start {start_ms} is not before end {end_ms}")
    start = _floor(start_ms, interval)
    end_closed = min(end_ms, _floor(now, interval))
    own_cache = cache is None
    # Our own cache is for this run: it never repairs (moves) a damaged file, and a cache that cannot be
    # written (full disk, a lock, damage) is still read, with what is fetched kept in memory.
    db = open_store(store, repair=False, fallback_read_only=True) if cache is None else cache
    own_venue = venue is None
    warnings: list[str] = []
    if db.damaged:
        warnings.append(db.damaged)
    unstored_candles: list[Candles] = []
    unstored_oi: list[OpenInterest] = []
    fetched_bars = 0
    done = 0

    def report(text: str, level: str) -> None:
        if text.startswith(_NOT_STORED):
            if not any(w.startswith(_NOT_STORED) for w in warnings):  # one line: the cause is the same
                warnings.append(text)
        else:
            log.log(logging.WARNING if level == "warning" else logging.INFO, "%s", text)
        if progress:
            progress(done, max(done, total), text)

    # a rough page count for the progress indicator
    missing = (
        db.missing("candles", exchange_id, symbol, timeframe, start, end_closed) if end_closed > start else []
    )
    vc = venue_class(exchange_id)
    total = sum(math.ceil((e - s) / interval / vc.kline_limit) for s, e in missing)
    if with_open_interest:
        total += math.ceil((end_closed - start) / OI_PERIODS_MS[vc.oi_period(timeframe)] / vc.oi_limit)
    total = max(total, 1)

    def on_page(n: int, label: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(min(done, total), total, label)

    v: Venue | None = venue
    try:
        if end_closed > start and (missing or with_open_interest):
            try:
                if v is None:
                    v = create_venue(exchange_id, ccxt_options)
                    v.clock = lambda: now
                await v.market(symbol)
                if missing:
                    got = await backfill_candles(
                        v, db, symbol, timeframe, start, end_closed, with_mark=with_mark, policy=policy,
                        report=report, on_page=on_page, unstored=unstored_candles,
                    )  # fmt: skip
                    fetched_bars = len(got)
                if with_open_interest:
                    try:
                        await backfill_open_interest(
                            v, db, symbol, timeframe, start, end_closed, now_ms=now, policy=policy,
                            report=report, on_page=on_page, unstored=unstored_oi,
                        )  # fmt: skip
                    except (ccxt_errors.NotSupported, ccxt_errors.BadRequest) as exc:
                        warnings.append(f"no open-interest history from {exchange_id}: {exc}")
            except LiqdeskError:
                raise
            except ccxt_errors.BadSymbol as exc:
                raise DataError(f"{exchange_id} does not list {symbol!r}: {exc}") from None
            except (*NETWORK_ERRORS, ccxt_errors.ExchangeError) as exc:
                text = (
                    f"offline: {exchange_id} unreachable, {error_kind(exc)} ({short_error(exc)}); "
                    "showing cached data"
                )
                if not offline_ok:
                    raise DataError(f"cannot load history from {exchange_id}: {short_error(exc)}") from None
                warnings.append(text)
                log.warning("%s", text)
    finally:
        if own_venue and v is not None:
            await v.close()
    try:
        candles = db.get_candles(exchange_id, symbol, timeframe, start, end_ms)
        period = vc.oi_period(timeframe)
        # a range ending now includes what was observed now (venues without history record it then)
        oi_end = end_ms + 1 if end_ms == now else end_ms
        oi = db.get_open_interest(exchange_id, symbol, period, start, oi_end) if with_open_interest else None
        liqs = db.get_liquidations(exchange_id, symbol, start, end_ms)
    finally:
        if own_cache:
            db.close()
    for extra in unstored_candles:
        candles = merge_candles(candles, extra.between(start, end_ms))
    if oi is not None:
        for extra_oi in unstored_oi:
            oi = merge_open_interest(oi, extra_oi.between(start, end_ms))
    if progress:
        progress(total, total, "done")
    depth = vc.candle_depth_ms(timeframe)
    if depth is not None and start < _floor(now, interval) - depth + interval:
        first = time.strftime(
            "%Y-%m-%d %H:%M", time.gmtime((_floor(now, interval) - depth + interval) / 1000)
        )
        warnings.append(
            f"{exchange_id} keeps only its latest {depth // interval:,} {timeframe} candles: none before {first} UTC"
        )
    if with_open_interest and not vc.has_oi_history:
        recorded = "none yet"
        if oi is not None and len(oi):
            first = time.strftime("%Y-%m-%d %H:%M", time.gmtime(int(oi.time[0]) / 1000))
            recorded = f"{len(oi):,} point{'' if len(oi) == 1 else 's'} since {first} UTC"
        warnings.append(
            f"{exchange_id} has no open-interest history: it is recorded from first use ({recorded}); "
            "the volume model covers the time before"
        )
    cached = len(candles) - fetched_bars
    offline = any(w.startswith("offline") for w in warnings)
    label = f"{exchange_id}: {cached:,} bars from the cache, {fetched_bars:,} fetched"
    if offline:
        label = f"{exchange_id} (offline): {len(candles):,} bars from the cache"
    return MarketData(
        candles, oi if oi is not None and len(oi) else None, liqs, symbol, exchange_id, label, offline=offline,
        source_kind="cache" if offline else "exchange", notes=tuple(warnings), fetched_bars=fetched_bars,
    )  # fmt: skip


def load_history(
    exchange_id: str,
    symbol: str,
    timeframe: str,
    start_ms: int | None,
    end_ms: int | None,
    *,
    ccxt_options: dict[str, Any] | None = None,
    progress: Progress | None = None,
    **kwargs: Any,
) -> MarketData:
    """Synchronous wrapper of ``load_history_async`` for the command line (runs its own event loop)."""
    return asyncio.run(
        load_history_async(
            exchange_id,
            symbol,
            timeframe,
            start_ms,
            end_ms,
            ccxt_options=ccxt_options,
            progress=progress,
            **kwargs,
        )
    )

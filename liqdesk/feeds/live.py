"""Live market data from one exchange: candles, open interest and real liquidations, into the cache and out as
small typed events. Pure asyncio (no Qt): run it in any loop (plain asyncio in the CLI, qasync in the app).

One asyncio task per (symbol, stream). Each task reconnects forever with exponential backoff and jitter, keeps a
staleness watchdog (a dead connection that raises nothing is closed and watched again), and after every
(re)connect backfills the candle gap by REST so the stored series has no holes and no duplicates. Rate limits
(HTTP 429/418 → ccxt ``DDoSProtection`` or ``RateLimitExceeded``) back off longer and are reported.

Candles: the websocket gives the live bar's revisions (``CandleUpdate(closed=False)``, OHLCV only); a bar is
closed when a newer bar appears (or the clock passes its end), and closed bars are then taken from REST with
quote and taker-buy volume where the venue has them (``CandleUpdate(closed=True)``), stored, and emitted once.
Out-of-order bars and stale revisions (less volume than one already seen) are skipped and counted.

Liquidations: read from ccxt's ``exchange.liquidations`` cache after each wake-up (``watch_liquidations`` returns
only the newest), and before waiting and every READY_POLL_S while waiting (an event taken while no watch call waited
wakes nobody), normalised per venue, deduplicated on (time, side, price, quantity), stored, emitted.

A cache that cannot take a write (full disk, a lock, an I/O error, damage) stops nothing: liquidations are kept in
memory and stored again with backoff (said in StatusEvents) until the cache takes them; fetched bars and open
interest are emitted anyway and fetched again later. What is still unstored at ``close()`` is in
``unstored_liquidations``.
Trades (asked for by name, not a default stream; venues whose trades carry both counterparties, see
``Venue.normalise_trade``): read from ccxt's trade cache the same way, deduplicated on the trade id, emitted as
``TradeEvent`` (not stored: the position sampler keeps the addresses it needs).

Usage::

    feed = LiveFeed("binanceusdm", "BTC/USDT:USDT", "1m", on_event=print)
    await feed.start()
    ...
    await feed.close()   # cancels every task, closes the exchange and the cache
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from ccxt.base import errors as ccxt_errors

from liqdesk.core.series import Candles, timeframe_ms
from liqdesk.feeds.cache import CacheCorrupt, CacheError
from liqdesk.feeds.history import (
    NETWORK_ERRORS,
    RATE_LIMIT_ERRORS,
    RetryPolicy,
    backfill_candles,
    backfill_open_interest,
    merge_candles,
    merge_open_interest,
)
from liqdesk.feeds.store import MarketStore, open_store
from liqdesk.feeds.venues import Venue, create_venue
from liqdesk.feeds.venues.base import LiquidationRecord
from liqdesk.feeds.venues.hyperliquid import TradeRecord

log = logging.getLogger(__name__)

Level = Literal["info", "warning", "error"]
StreamKind = Literal["candles", "open_interest", "liquidations", "trades"]
ALL_STREAMS: tuple[StreamKind, ...] = ("candles", "open_interest", "liquidations")  # the default set
KNOWN_STREAMS: tuple[StreamKind, ...] = (*ALL_STREAMS, "trades")


# -- events --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CandleUpdate:
    """A bar: ``closed=False`` is a live revision of the current bar (quote/taker volume None), ``closed=True``
    the final bar as stored."""

    exchange: str
    symbol: str
    timeframe: str
    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    quote_volume: float | None
    taker_buy_volume: float | None
    closed: bool
    received: float = field(default_factory=time.perf_counter, compare=False)


@dataclass(frozen=True, slots=True)
class OpenInterestUpdate:
    exchange: str
    symbol: str
    time: int
    usd: float
    received: float = field(default_factory=time.perf_counter, compare=False)


@dataclass(frozen=True, slots=True)
class LiquidationEvent:
    """A real liquidation (``record.side``: LONG = a long was liquidated)."""

    record: LiquidationRecord
    received: float = field(default_factory=time.perf_counter, compare=False)


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """A public trade with both counterparties' addresses."""

    record: TradeRecord
    received: float = field(default_factory=time.perf_counter, compare=False)


@dataclass(frozen=True, slots=True)
class StatusEvent:
    text: str
    level: Level = "info"
    exchange: str = ""
    symbol: str = ""
    stream: str = ""
    received: float = field(default_factory=time.perf_counter, compare=False)


FeedEvent = CandleUpdate | OpenInterestUpdate | LiquidationEvent | TradeEvent | StatusEvent


@dataclass
class StreamStats:
    messages: int = 0  # updates delivered by the exchange
    malformed: int = 0  # skipped: could not be parsed / normalised
    duplicates: int = 0  # skipped: already seen
    out_of_order: int = 0  # skipped: older than what was already delivered
    reconnects: int = 0
    rate_limited: int = 0
    stale_reconnects: int = 0  # watchdog closed a silent connection
    backfilled: int = 0  # bars or points fetched by REST
    stored: int = 0  # rows newly written to the cache
    # time.monotonic() of the last delivered update; starts at creation so a stream that has not
    # spoken yet gets the full silence allowance before the watchdog resubscribes it
    last_message: float = field(default_factory=time.monotonic)


READY_POLL_S = 0.25  # how often a waiting liquidation watch looks in ccxt's cache for what woke nobody


@dataclass(frozen=True)
class LiveSettings:
    """Timings; tests shrink them."""

    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    rate_limit_base_s: float = 10.0
    candle_stale_s: float = 30.0  # connection check: kline streams update several times a second
    candle_silent_s: float = 120.0  # no kline update at all on a live connection: resubscribe
    liquidation_stale_s: float = 300.0  # quiet streams: the connection must still show pings/pongs
    trades_stale_s: float = 60.0  # trades can pause too: the connection check, like liquidations
    oi_poll_s: float = 60.0
    history_bars: int = 500  # bars fetched on first start when the cache has none
    dedupe_capacity: int = 20_000
    rest: RetryPolicy = RetryPolicy(attempts=3)
    close_timeout_s: float = 5.0


class _Seen:
    """A bounded set (oldest forgotten first)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._d: OrderedDict[Any, None] = OrderedDict()

    def add(self, key: Any) -> bool:
        """True if new."""
        if key in self._d:
            return False
        self._d[key] = None
        if len(self._d) > self.capacity:
            self._d.popitem(last=False)
        return True


class _StaleConnection(Exception):
    pass


# -- the feed ------------------------------------------------------------------------------------------------
class LiveFeed:
    """Live data for one exchange and one or more symbols.

    Deliver events with ``on_event`` (called in the loop's thread; keep it quick) and/or ``queue`` (an
    ``asyncio.Queue`` you read from). ``cache``: a store to write to (``liqdesk.feeds.store``; default: the user's
    store, opened and closed here). ``clock``: epoch-ms now (tests use the fake exchange's clock). ``venue``: an existing venue to
    use (not closed by the feed)."""

    def __init__(
        self,
        exchange_id: str,
        symbols: str | Sequence[str],
        timeframe: str = "1m",
        *,
        ccxt_options: dict[str, Any] | None = None,
        streams: Sequence[StreamKind] = ALL_STREAMS,
        on_event: Callable[[FeedEvent], None] | None = None,
        queue: asyncio.Queue[FeedEvent] | None = None,
        cache: MarketStore | None = None,
        settings: LiveSettings = LiveSettings(),
        clock: Callable[[], int] | None = None,
        venue: Venue | None = None,
    ) -> None:
        self.exchange_id = exchange_id
        self.symbols = [symbols] if isinstance(symbols, str) else list(symbols)
        self.timeframe = timeframe
        self.interval = timeframe_ms(timeframe)
        self.streams = tuple(streams)
        for s in self.streams:
            if s not in KNOWN_STREAMS:
                raise ValueError(f"unknown stream {s!r}; expected one of {', '.join(KNOWN_STREAMS)}")
        self.ccxt_options = ccxt_options
        self.on_event = on_event
        self.queue = queue
        self.settings = settings
        self.clock = clock or (lambda: time.time_ns() // 1_000_000)
        self._cache = cache
        self._own_cache = cache is None
        self._venue = venue
        self._own_venue = venue is None
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.stats: dict[tuple[str, str], StreamStats] = {}
        self._last_closed: dict[str, int | None] = {}  # symbol → newest closed bar emitted/stored
        # symbol → the oldest fetched bar the store refused (fetched and stored again)
        self._refused_from: dict[str, int] = {}
        self._live: dict[str, tuple[int, float]] = {}  # symbol → (open_time, volume) of the live bar
        self._seen_bars: dict[
            str, OrderedDict[Any, float]
        ] = {}  # symbol → recent (open_time → volume) handled
        self._closed = False
        self._unstored: list[LiquidationRecord] = []  # received, not yet in the cache (it refused the write)
        self._store_retry: asyncio.Task[None] | None = None
        self._trade_seen: dict[str, _Seen] = {}  # symbol → trade ids delivered
        self._trade_last: dict[str, Any] = {}  # symbol → the last ccxt trade object processed
        # symbol → what the liquidation stream has taken: kept across its reconnects (ccxt's cache outlives them,
        # so a restart from nothing would emit the cache's old events again)
        self._liq_seen: dict[str, _Seen] = {}
        self._liq_last: dict[str, Any] = {}

    # -- lifecycle ---------------------------------------------------------------------------------------------
    @property
    def venue(self) -> Venue:
        if self._venue is None:
            raise RuntimeError("LiveFeed not started")
        return self._venue

    @property
    def cache(self) -> MarketStore:
        if self._cache is None:
            raise RuntimeError("LiveFeed not started")
        return self._cache

    async def start(self) -> None:
        """Open the exchange and cache and start one task per (symbol, stream). Returns at once; connection
        problems are reported as StatusEvents and retried forever."""
        if self._tasks:
            return
        if self._cache is None:
            self._cache = open_store()
        if self._venue is None:
            self._venue = create_venue(self.exchange_id, self.ccxt_options)
            self._venue.clock = self.clock
        runners = {"candles": self._run_candles, "open_interest": self._run_open_interest,
                   "liquidations": self._run_liquidations, "trades": self._run_trades}  # fmt: skip
        for sym in self.symbols:
            for kind in self.streams:
                if kind == "liquidations" and self._venue.liquidation_feed is None:
                    self._status(f"{self._venue.label} publishes no liquidation stream: no tape is recorded",
                                 "info", sym, kind)  # fmt: skip
                    continue
                if kind == "trades" and not callable(getattr(self._venue, "normalise_trade", None)):
                    self._status(
                        f"{self._venue.label} trades carry no addresses: not watched", "info", sym, kind
                    )
                    continue
                self.stats[(sym, kind)] = StreamStats()
                self._tasks[(sym, kind)] = asyncio.ensure_future(self._guard(sym, kind, runners[kind]))

    async def close(self) -> None:
        """Cancel every task (awaited, with a timeout), close the exchange (all its sessions) and the cache."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks.values())
        if self._store_retry is not None:
            tasks.append(self._store_retry)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self.settings.close_timeout_s)
        self._tasks.clear()
        if self._unstored and self._cache is not None:
            self._try_store_unstored(final=True)
        if self._venue is not None and self._own_venue:
            with contextlib.suppress(Exception):
                await self._venue.close()
        if self._cache is not None and self._own_cache:
            self._cache.close()

    async def __aenter__(self) -> LiveFeed:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait(self) -> None:
        """Until every task ends (they run until ``close()``)."""
        if self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    @property
    def unstored_liquidations(self) -> list[LiquidationRecord]:
        """Liquidations received that the cache has not taken (yet): never dropped, retried until close()."""
        return list(self._unstored)

    def total(self, counter: str) -> int:
        n = sum(int(getattr(s, counter)) for s in self.stats.values())
        if counter == "malformed" and self._venue is not None:
            n += self._venue.bad_frames
        return n

    # -- delivery ----------------------------------------------------------------------------------------------
    def _emit(self, event: FeedEvent) -> None:
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("LiveFeed event callback failed on %r", type(event).__name__)
        if self.queue is not None:
            try:
                self.queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("LiveFeed queue full: dropped a %s", type(event).__name__)

    def _status(self, text: str, level: Level = "info", symbol: str = "", stream: str = "") -> None:
        log.log({"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}[level],
                "%s %s %s: %s", self.exchange_id, symbol, stream, text)  # fmt: skip
        self._emit(StatusEvent(text, level, self.exchange_id, symbol, stream))

    # -- the reconnect loop shared by every stream ----------------------------------------------------------------
    async def _guard(self, symbol: str, kind: str, body: Callable[[str, StreamStats], Any]) -> None:
        st = self.stats[(symbol, kind)]
        attempt = 0
        s = self.settings
        while True:
            began, delivered = time.monotonic(), st.messages
            try:
                try:
                    await body(symbol, st)
                    attempt = 0
                except Exception:
                    # A stream that worked since its last error (it delivered, or ran longer than the longest wait)
                    # starts its backoff afresh: the waits grow only while it keeps failing, so a long-running
                    # recorder does not sit out a later drop for a minute while liquidations go by unheard.
                    if st.messages > delivered or time.monotonic() - began >= s.backoff_cap_s:
                        attempt = 0
                    raise
            except asyncio.CancelledError:
                raise
            except RATE_LIMIT_ERRORS as exc:
                st.rate_limited += 1
                delay = min(s.backoff_cap_s, s.rate_limit_base_s * 2**attempt) * random.uniform(0.5, 1.0)
                self._status(f"rate limited by {self.exchange_id} ({type(exc).__name__}); backing off "
                             f"{delay:.1f} s, the cached chart stays", "warning", symbol, kind)  # fmt: skip
            except _StaleConnection as exc:
                st.stale_reconnects += 1
                delay = 0.0
                self._status(f"{exc}; reconnecting", "warning", symbol, kind)
            except (ccxt_errors.BadSymbol, ccxt_errors.NotSupported, ccxt_errors.AuthenticationError) as exc:
                self._status(f"{kind} stopped: {type(exc).__name__}: {exc}", "error", symbol, kind)
                return
            except CacheError as exc:  # the store cannot be read right now (a server away, a lock): try again
                delay = min(s.backoff_cap_s, s.backoff_base_s * 2**attempt) * random.uniform(0.5, 1.0)
                self._status(f"{exc}; {kind} paused, retrying in {delay:.1f} s", "warning", symbol, kind)
            except (*NETWORK_ERRORS, ccxt_errors.ExchangeError) as exc:
                delay = min(s.backoff_cap_s, s.backoff_base_s * 2**attempt) * random.uniform(0.5, 1.0)
                level: Level = "error" if attempt >= 2 else "warning"
                self._status(f"{type(exc).__name__}: {str(exc)[:200]}; reconnecting in {delay:.1f} s",
                             level, symbol, kind)  # fmt: skip
            except Exception as exc:  # a bug or an unexpected shape: never let the task die silently
                delay = min(s.backoff_cap_s, s.backoff_base_s * 2**attempt) * random.uniform(0.5, 1.0)
                log.exception("%s %s %s failed", self.exchange_id, symbol, kind)
                self._status(f"unexpected {type(exc).__name__}: {exc}; restarting in {delay:.1f} s",
                             "error", symbol, kind)  # fmt: skip
            st.reconnects += 1
            attempt = min(attempt + 1, 16)
            await asyncio.sleep(delay)

    async def _watch(
        self,
        make: Callable[[], Any],
        symbol: str,
        kind: str,
        stale_s: float,
        st: StreamStats,
        ready: Callable[[], bool] | None = None,
    ) -> Any:
        """Await one ccxt watch call under the staleness watchdog: every ``stale_s`` without a result, the
        connections carrying this stream are checked; one with no inbound frame (data, ping or pong) for
        ``stale_s`` is closed (ccxt rejects its futures with NetworkError) and _StaleConnection raised.
        ``ready``: checked every READY_POLL_S meanwhile; True returns None at once (data that reached ccxt's
        cache while no watch call was waiting wakes nobody: ccxt resolves only a waiting future)."""
        task = asyncio.ensure_future(make())
        tick = stale_s if ready is None else min(stale_s, READY_POLL_S)
        waited = 0.0
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=tick)
                if done:
                    return task.result()
                if ready is not None and ready():
                    return None
                waited += tick
                if waited < stale_s:
                    continue
                waited = 0.0
                now = time.time() * 1000
                for client in self._clients_for(symbol, kind):
                    last = client.last_message_at or getattr(client, "connectionEstablished", None) or 0
                    if now - last > stale_s * 1000:
                        client.on_error(ccxt_errors.NetworkError(f"no data for {stale_s:g} s"))
                        with contextlib.suppress(BaseException):
                            await asyncio.wait_for(task, 1.0)
                        raise _StaleConnection(f"{kind} connection silent for {stale_s:g} s")
                silent_s = self.settings.candle_silent_s
                if kind == "candles" and time.monotonic() - st.last_message > silent_s:
                    for client in self._clients_for(symbol, kind):
                        client.on_error(ccxt_errors.NetworkError("stream silent"))
                    with contextlib.suppress(BaseException):
                        await asyncio.wait_for(task, 1.0)
                    raise _StaleConnection(f"{kind} stream silent for {silent_s:g} s")
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    def _clients_for(self, symbol: str, kind: str) -> list[Any]:
        words = {"candles": ("ohlcv", "kline", "candle"), "trades": ("trade",)}.get(
            kind, ("liquidation", "forceorder")
        )
        ex = self.venue.exchange
        market = (ex.markets or {}).get(symbol) or {}
        ids = {symbol.lower(), str(market.get("id", "")).lower(), str(market.get("lowercaseId", "")).lower()}
        ids.discard("")
        by_kind, by_symbol = [], []
        for client in list((ex.clients or {}).values()):
            keys = [str(k).lower() for k in list(client.subscriptions) + list(client.futures)]
            if any(w in k for k in keys for w in words):
                by_kind.append(client)
                if any(i in k for k in keys for i in ids):
                    by_symbol.append(client)
        return by_symbol or by_kind

    # -- candles -------------------------------------------------------------------------------------------------
    async def _sync_closed(self, symbol: str, upto: int, st: StreamStats) -> None:
        """Fetch, store and emit closed bars after the newest one we have, up to (excluding) ``upto``. Bars that an
        earlier call fetched and the store refused (a lock, a full disk) are fetched and stored again, not emitted
        again: the catch-up goes on from the newest bar, so nothing else would ever fetch them."""
        last = self._last_closed.get(symbol)
        if last is None:
            last = self.cache.last_candle_time(self.exchange_id, symbol, self.timeframe)
        start = upto - self.settings.history_bars * self.interval if last is None else last + self.interval
        if start >= upto:
            self._last_closed[symbol] = last
            return
        refused = self._refused_from.get(symbol)
        unstored: list[Candles] = []
        got = await backfill_candles(
            self.venue, self.cache, symbol, self.timeframe, start if refused is None else min(start, refused), upto,
            with_mark=False, policy=self.settings.rest,
            report=lambda text, level: self._status(text, "warning" if level == "warning" else "info",
                                                    symbol, "candles"),
            unstored=unstored,
        )  # fmt: skip
        still_refused = [int(c.open_time[0]) for c in unstored if len(c)]
        if still_refused:
            self._refused_from[symbol] = min(still_refused)
        else:
            self._refused_from.pop(symbol, None)
        # what the cache holds now is the truth (fetched bars, or bars stored by another process), plus the
        # fetched bars it could not take
        stored = self.cache.get_candles(self.exchange_id, symbol, self.timeframe, start, upto)
        for extra in unstored:
            stored = merge_candles(stored, extra.between(start, upto))
        st.backfilled += len(got)
        st.stored += len(got) - sum(len(c) for c in unstored)
        self._emit_closed(symbol, stored)
        if len(stored):
            self._last_closed[symbol] = int(stored.open_time[-1])
        else:
            self._last_closed[symbol] = last

    def _emit_closed(self, symbol: str, c: Candles) -> None:
        q, tb = c.quote_volume, c.taker_buy_volume
        for i in range(len(c)):
            self._emit(CandleUpdate(
                self.exchange_id, symbol, self.timeframe, int(c.open_time[i]), float(c.open[i]), float(c.high[i]),
                float(c.low[i]), float(c.close[i]), float(c.volume[i]),
                None if q is None or not np.isfinite(q[i]) else float(q[i]),
                None if tb is None or not np.isfinite(tb[i]) else float(tb[i]), True,
            ))  # fmt: skip

    async def _run_candles(self, symbol: str, st: StreamStats) -> None:
        ex = self.venue.exchange
        await self.venue.market(symbol)
        # (re)connected: subscribe first, then fill the gap by REST, so nothing falls between the two
        first = asyncio.ensure_future(ex.watch_ohlcv(symbol, self.timeframe))
        try:
            await self._sync_closed(symbol, self.clock() - self.clock() % self.interval, st)
            # What the stream showed before and was not handled (a catch-up that failed) is handled now, not when
            # the exchange next sends an update: the clock alone may be behind the exchange's bars.
            while await self._on_bars(symbol, self._ohlcv_tail(symbol), st):
                pass
        except BaseException:
            first.cancel()
            with contextlib.suppress(BaseException):
                await first
            raise
        pending: Any = first
        self._status("candles connected", "info", symbol, "candles")
        while True:
            if pending is None:
                await self._watch(lambda: ex.watch_ohlcv(symbol, self.timeframe), symbol, "candles",
                                  self.settings.candle_stale_s, st)  # fmt: skip
            else:
                p, pending = pending, None
                await self._watch(lambda p=p: p, symbol, "candles", self.settings.candle_stale_s, st)
            st.last_message = time.monotonic()
            # The watch is only a wake-up: updates that arrive while we are busy (a REST backfill) resolve no
            # future and would wait for the next message, so read ccxt's candle cache until nothing is new.
            while await self._on_bars(symbol, self._ohlcv_tail(symbol), st):
                pass

    def _ohlcv_tail(self, symbol: str, n: int = 8) -> list[list[Any]]:
        ohlcvs = getattr(self.venue.exchange, "ohlcvs", None) or {}
        stored = (ohlcvs.get(symbol) or {}).get(self.timeframe)
        return list(stored[-n:]) if stored else []

    async def _on_bars(self, symbol: str, bars: list[list[Any]], st: StreamStats) -> int:
        """Process the bars not seen before; returns how many were new."""
        seen = self._seen_bars.setdefault(symbol, OrderedDict())
        new = 0
        for bar in bars:
            try:
                t = int(bar[0])
                o, h, low, c, v = (float(x) for x in bar[1:6])
                if not all(np.isfinite([o, h, low, c, v])) or v < 0 or t % self.interval:
                    raise ValueError(bar)
            except (TypeError, ValueError, IndexError):
                key = repr(bar[:6]) if isinstance(bar, list) else repr(bar)
                if seen.get(key) is None:
                    seen[key] = 0.0
                    st.malformed += 1
                continue
            if seen.get(t) == v:
                continue  # already handled (the cache is re-read) or an exact duplicate
            last_closed = self._last_closed.get(symbol)
            live_t, live_v = self._live.get(symbol, (None, 0.0))
            stale = (last_closed is not None and t <= last_closed) or (live_t is not None and t < live_t)
            stale = stale or (t == live_t and v < live_v)  # an old bar, or an old revision of the live one
            if not stale and (
                (live_t is not None and t > live_t)
                or (live_t is None and last_closed is not None and t > last_closed + self.interval)
            ):
                # bars before t are closed: take them (final values, full columns) from REST; when that fails,
                # the update stays unhandled and is taken again from ccxt's cache once the stream is back
                await self._sync_closed(symbol, t, st)
            seen[t] = v
            seen.move_to_end(t)
            while len(seen) > 64:
                seen.popitem(last=False)
            new += 1
            st.messages += 1
            if stale:
                st.out_of_order += 1  # never overwrite newer data
                continue
            self._live[symbol] = (t, v)
            self._emit(
                CandleUpdate(self.exchange_id, symbol, self.timeframe, t, o, h, low, c, v, None, None, False)
            )
        return new

    # -- open interest -----------------------------------------------------------------------------------------
    async def _run_open_interest(self, symbol: str, st: StreamStats) -> None:
        await self.venue.market(symbol)
        period = self.venue.oi_period(self.timeframe)
        last_t: int | None = None
        while True:
            now = self.clock()
            since = now - self.settings.history_bars * self.interval
            unstored: list[Any] = []
            stored = await backfill_open_interest(
                self.venue, self.cache, symbol, self.timeframe, since, now + 1, now_ms=now,
                policy=self.settings.rest, unstored=unstored, clock=self.clock,
            )  # fmt: skip
            st.backfilled += stored
            # up to the clock now: a point observed is dated when the answer came
            oi = self.cache.get_open_interest(
                self.exchange_id, symbol, period, since, max(now, self.clock()) + 1
            )
            for extra in unstored:
                oi = merge_open_interest(oi, extra)
            if last_t is None and len(oi):
                last_t = int(oi.time[-1])
                self._emit(OpenInterestUpdate(self.exchange_id, symbol, last_t, float(oi.usd[-1])))
            else:
                for t, u in zip(oi.time, oi.usd, strict=True):
                    if last_t is None or t > last_t:
                        st.messages += 1
                        last_t = int(t)
                        self._emit(OpenInterestUpdate(self.exchange_id, symbol, last_t, float(u)))
            st.last_message = time.monotonic()
            await asyncio.sleep(self.settings.oi_poll_s)

    # -- liquidations ------------------------------------------------------------------------------------------
    async def _run_liquidations(self, symbol: str, st: StreamStats) -> None:
        ex = self.venue.exchange
        await self.venue.market(symbol)
        seen = self._liq_seen.setdefault(symbol, _Seen(self.settings.dedupe_capacity))
        self._status("liquidations connected", "info", symbol, "liquidations")

        def left_over() -> bool:  # in ccxt's cache but not processed yet
            return bool(_after(ex.liquidations or [], self._liq_last.get(symbol)))

        while True:
            # A message ccxt took while we were storing the last ones resolved no waiting future: without
            # this check it would wait in the cache for the next liquidation (or be lost at close).
            if not left_over():
                await self._watch(lambda: ex.watch_liquidations(symbol), symbol, "liquidations",
                                  self.settings.liquidation_stale_s, st, ready=left_over)  # fmt: skip
            st.last_message = time.monotonic()
            # everything after the last item we processed (watch_liquidations returns only the newest one)
            fresh = _after(ex.liquidations or [], self._liq_last.get(symbol))
            if fresh:
                self._liq_last[symbol] = fresh[-1]
            records: list[LiquidationRecord] = []
            for liq in fresh:
                if not isinstance(liq, dict) or liq.get("symbol") != symbol:
                    continue  # another market's, or the residue of a frame ccxt failed on (counted there)
                try:
                    recs = self.venue.normalise_liquidation(liq, symbol)
                except (ValueError, TypeError, KeyError):
                    st.malformed += 1
                    continue
                for r in recs:
                    st.messages += 1
                    if seen.add(r.key()):
                        records.append(r)
                    else:
                        st.duplicates += 1
            if records:
                self._store_liquidations(records, symbol, st)
                for r in records:
                    self._emit(LiquidationEvent(r))

    # -- storing the tape when the cache refuses ------------------------------------------------------------
    def _store_liquidations(self, records: list[LiquidationRecord], symbol: str, st: StreamStats) -> None:
        if self._unstored:  # earlier ones are waiting: keep the order, the retry stores them all
            self._unstored.extend(records)
            return
        try:
            st.stored += self.cache.put_liquidations(records)
        except CacheError as exc:
            self._unstored.extend(records)
            self._status(f"{len(records)} liquidation(s) not stored: {exc}; kept in memory, retrying",
                         "error", symbol, "liquidations")  # fmt: skip
            if self._store_retry is None or self._store_retry.done():
                self._store_retry = asyncio.ensure_future(self._retry_store(symbol, st))

    async def _retry_store(self, symbol: str, st: StreamStats) -> None:
        s = self.settings
        attempt = 0
        while self._unstored:
            delay = min(s.backoff_cap_s, s.backoff_base_s * 2**attempt)
            await asyncio.sleep(delay)
            n = len(self._unstored)
            stored = self._try_store_unstored()
            if stored is not None:
                st.stored += stored
                self._status(f"stored the {n} liquidation(s) kept in memory", "info", symbol, "liquidations")
                return
            attempt = min(attempt + 1, 16)
            next_delay = min(s.backoff_cap_s, s.backoff_base_s * 2**attempt)
            self._status(f"{len(self._unstored)} liquidation(s) still waiting for the cache; retrying in "
                         f"{next_delay:.0f} s", "warning", symbol, "liquidations")  # fmt: skip

    def _try_store_unstored(self, *, final: bool = False) -> int | None:
        """Store the waiting liquidations; how many were new, or None when the cache still refuses."""
        cache = self.cache
        try:
            if cache.write_error is not None or cache.damaged is not None:
                cache.reopen()  # full disk freed, lock gone, or a damaged file to salvage
            n = cache.put_liquidations(self._unstored)
        except CacheCorrupt as exc:
            with contextlib.suppress(CacheError):
                cache.reopen()
            self._refused(exc, final)
            return None
        except CacheError as exc:
            self._refused(exc, final)
            return None
        self._unstored.clear()
        return n

    def _refused(self, exc: CacheError, final: bool) -> None:
        if final:
            self._status(f"{len(self._unstored)} liquidation(s) could not be stored in the cache: {exc}", "error",
                         stream="liquidations")  # fmt: skip
        else:
            log.info("cache still refuses: %s", exc)

    # -- trades ----------------------------------------------------------------------------------------------------
    async def _run_trades(self, symbol: str, st: StreamStats) -> None:
        ex = self.venue.exchange
        normalise = getattr(self.venue, "normalise_trade")  # noqa: B009 (checked in start)
        await self.venue.market(symbol)
        # kept across reconnects: ccxt's trade cache outlives the connection, and its old trades are not new
        seen = self._trade_seen.setdefault(symbol, _Seen(self.settings.dedupe_capacity))
        self._status("trades connected", "info", symbol, "trades")
        pending: asyncio.Future[Any] | None = None
        try:
            while True:
                # The next watch is registered before the cache is read: a message handled between reading and
                # registering would otherwise resolve no future and wait in the cache for the one after it.
                if pending is None:
                    pending = asyncio.ensure_future(ex.watch_trades(symbol))
                    await asyncio.sleep(0)
                fresh = _after((ex.trades or {}).get(symbol) or [], self._trade_last.get(symbol))
                if not fresh:
                    p, pending = pending, None
                    await self._watch(lambda p=p: p, symbol, "trades", self.settings.trades_stale_s, st)
                    st.last_message = time.monotonic()
                    continue
                self._trade_last[symbol] = fresh[-1]
                for raw in fresh:
                    try:
                        rec = normalise(raw, symbol)
                    except (ValueError, TypeError, KeyError):
                        st.malformed += 1
                        continue
                    st.messages += 1
                    if seen.add(rec.trade_id or (rec.time, rec.price, rec.size, rec.buyer, rec.seller)):
                        self._emit(TradeEvent(rec))
                    else:
                        st.duplicates += 1
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending


def _after(cache: Sequence[Any], last_obj: Any) -> list[Any]:
    """The items of a ccxt cache after ``last_obj`` (all of them when it is gone or None)."""
    if last_obj is not None:
        for i in range(len(cache) - 1, -1, -1):
            if cache[i] is last_obj:
                return list(cache[i + 1 :])
    return list(cache)

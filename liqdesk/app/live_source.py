"""Live exchange data in the chart window: history backfill through the cache, then a LiveFeed.

Two objects:

* ``LiveSource`` is the window's ``DataSource``. It lists the exchange's symbols and hands the window whatever
  is best right now: the live data set once the history is loaded, else the cache, else the bundled sample.
* ``LiveController`` runs on the window's asyncio loop (qasync). It probes the exchange with a short timeout,
  backfills history (``load_history_async``, through the cache, progress in the status bar), loads it into the
  window, then runs one ``LiveFeed`` and routes its events to the window's live hooks:
  ``CandleUpdate`` → ``apply_bar``, ``OpenInterestUpdate`` → the OI used for the next bar, ``LiquidationEvent``
  → ``add_liquidations``, ``StatusEvent`` → status bar and notice. Unreachable: the window stays on the cache or
  the sample with an OFFLINE notice and the controller retries with backoff. Symbol/timeframe changes in the
  toolbar restart the streams (the old feed is closed and awaited first).

One ccxt exchange (``Venue``) and one cache for the controller's life, shared by history and feeds, closed once
in ``close()`` (one exchange per venue: every ccxt instance opens its own aiohttp session, and one not closed
leaks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from ccxt.base import errors as ccxt_errors

from liqdesk.core.series import Candles, Liquidations, timeframe_ms
from liqdesk.errors import DataError, LiqdeskError
from liqdesk.feeds.cache import CacheError
from liqdesk.feeds.history import NETWORK_ERRORS, RetryPolicy, load_history_async
from liqdesk.feeds.live import (
    ALL_STREAMS,
    CandleUpdate,
    FeedEvent,
    LiquidationEvent,
    LiveFeed,
    LiveSettings,
    OpenInterestUpdate,
    StatusEvent,
    StreamKind,
)
from liqdesk.feeds.market_data import MarketData
from liqdesk.feeds.markets import tick_from_market
from liqdesk.feeds.store import MarketStore, open_store
from liqdesk.feeds.venues import Venue, create_venue, venue_class
from liqdesk.feeds.venues.base import LiquidationRecord
from liqdesk.ui import data as data_mod

if TYPE_CHECKING:
    from liqdesk.ui.window import MainWindow

log = logging.getLogger(__name__)

DEFAULT_EXCHANGE = "binanceusdm"
DEFAULT_SYMBOL = "BTC/USDT:USDT"
DEFAULT_TIMEFRAME = "5m"
DAY_MS = 86_400_000
# Symbols offered in the toolbar (ccxt form; the same ids work on every supported venue's linear perpetuals).
WATCHLIST = ("BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT", "BNB/USDT:USDT", "XRP/USDT:USDT",
             "DOGE/USDT:USDT")  # fmt: skip
# Plain ASCII: "USDⓈ-M" needs a glyph that common UI fonts lack (it showed as a box in the status bar).
VENUE_NAMES = {"binanceusdm": "Binance USD-M", "bybit": "Bybit", "okx": "OKX"}
MIN_CACHED_BARS = 50  # fewer cached bars than this: the sample says more than the cache


@dataclass(frozen=True)
class Target:
    symbol: str
    timeframe: str


@dataclass(frozen=True)
class LiveConfig:
    exchange: str = DEFAULT_EXCHANGE
    symbol: str = DEFAULT_SYMBOL
    timeframe: str = DEFAULT_TIMEFRAME
    ccxt_options: dict[str, Any] | None = None
    symbols: tuple[str, ...] = WATCHLIST
    offline: bool = False  # --offline: never touch the network
    sample: str | None = None  # --sample NAME: the bundled sample shown offline (None: the default one)
    probe_timeout_s: float = 8.0  # the first request (markets): longer than this counts as unreachable
    retry_base_s: float = 5.0  # offline: try again after this, doubling …
    retry_cap_s: float = 60.0  # … up to this
    min_bars: int = 600  # history: at least this many bars (the model needs a warm-up) …
    max_bars: int = 12_000  # … and at most this many (first start on 1m)
    feed: LiveSettings = field(default_factory=LiveSettings)
    history_policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=3))
    cache_path: str | None = (
        None  # the store's URL or file (--store); None: $LIQDESK_STORE, else the user's cache
    )

    def __post_init__(self) -> None:
        for exchange in self.exchange.split(","):  # a comma list: the venues of an aggregated market
            venue_class(exchange.strip())  # ConfigError for an unknown exchange, before any window opens
        timeframe_ms(self.timeframe)


def history_span_ms(range_name: str, timeframe: str, min_bars: int, max_bars: int) -> int:
    """What to backfill for a view of ``range_name``: the view again as a warm-up (at least a day; levels opened
    before the view still matter), clamped to [min_bars, max_bars] bars."""
    view = data_mod.RANGE_MS.get(range_name, data_mod.RANGE_MS[data_mod.DEFAULT_RANGE])
    interval = timeframe_ms(timeframe)
    bars = int(np.clip((view + max(view, DAY_MS)) // interval, min_bars, max_bars))
    return bars * interval


def venue_name(exchange: str) -> str:
    return VENUE_NAMES.get(exchange, exchange)


def liquidations_from_records(records: list[LiquidationRecord]) -> Liquidations:
    return Liquidations(
        np.array([r.time for r in records], np.int64), np.array([r.exchange for r in records], str),
        np.array([r.symbol for r in records], str), np.array([r.side for r in records], np.int8),
        np.array([r.price for r in records]), np.array([r.quantity for r in records]),
        np.array([r.usd for r in records]),
    )  # fmt: skip


# -- the data source -------------------------------------------------------------------------------------------
class LiveSource:
    """DataSource for the window: the live data set when there is one, else the cache, else the sample."""

    def __init__(self, config: LiveConfig) -> None:
        self.config = config
        self._symbols = [config.symbol] + [s for s in config.symbols if s != config.symbol]
        self._live: MarketData | None = None
        self._fallback: MarketData | None = None  # the cache's data for the symbol last asked for
        self._sample: MarketData | None = None

    def symbols(self) -> list[str]:
        return list(self._symbols)

    def load(self, symbol: str) -> MarketData:
        """The best data for ``symbol``; DataError when there is none here (never another symbol's data:
        a tab titled ETH must not show the BTC sample)."""
        if self._live is not None and self._live.symbol == symbol:
            return self._live
        if self._fallback is not None and self._fallback.symbol == symbol:
            return self._fallback
        if self._sample is None:
            self._sample = sample_market(self.config.sample)
        if self._sample.symbol == symbol:
            return self._sample
        where = "--offline" if self.config.offline else "not in the local cache"
        raise DataError(f"{where}, and the bundled sample is {self._sample.symbol} only")

    def set_live(self, data: MarketData | None) -> None:
        self._live = data

    def set_fallback(self, data: MarketData) -> None:
        self._fallback = data

    @property
    def live(self) -> MarketData | None:
        return self._live


def sample_market(name: str | None = None) -> MarketData:
    return data_mod.SampleSource().load(data_mod.SampleSource.display_name(name or _default_sample()))


def _default_sample() -> str:
    from liqdesk.feeds.sample import DEFAULT_SAMPLE

    return DEFAULT_SAMPLE


def cached_market(cache: MarketStore, exchange: str, target: Target, span_ms: int) -> MarketData | None:
    """What the cache holds for the target: ``span_ms`` up to its newest bar (None if too little to draw)."""
    tf_ms = timeframe_ms(target.timeframe)
    last = cache.last_candle_time(exchange, target.symbol, target.timeframe)
    if last is None:
        return None
    end = last + tf_ms  # offline, "now" is the newest cached bar
    start = end - span_ms
    candles = cache.get_candles(exchange, target.symbol, target.timeframe, start, end)
    if len(candles) < MIN_CACHED_BARS:
        return None
    period = venue_class(exchange).oi_period(target.timeframe)
    oi = cache.get_open_interest(exchange, target.symbol, period, start, end)
    liqs = cache.get_liquidations(exchange, target.symbol, start, end)
    from liqdesk.feeds.timeparse import format_time

    label = (f"{venue_name(exchange)} {target.symbol} {target.timeframe} from the cache: {len(candles):,} bars "
             f"up to {format_time(int(candles.close_time[-1]))[:16]}Z")  # fmt: skip
    return MarketData(candles, oi if len(oi) >= 2 else None, liqs, target.symbol, exchange, label,
                      offline=True, source_kind="cache")  # fmt: skip


class FeedListener(Protocol):
    """Something that runs beside a tab's live feed (the position sampler): the streams it needs on top of the
    chart's, every event of the current feed, the venue once the tab is live, and a close at the end."""

    streams: tuple[StreamKind, ...]

    def on_event(self, e: FeedEvent) -> None: ...

    def live(self, venue: Venue, symbol: str) -> None: ...

    async def close(self) -> None: ...


# -- the controller --------------------------------------------------------------------------------------------
class LiveController:
    """Connects a MainWindow to an exchange. ``attach(window)``, ``start()``, and ``await close()`` at the end.

    ``mode``: "connecting" → "live" (history loaded, feed running) or "offline" (unreachable; retrying), or
    "sample" (--offline). ``clock``: epoch-ms now (tests use the fake exchange's clock)."""

    def __init__(self, config: LiveConfig, *, clock: Callable[[], int] | None = None) -> None:
        self.config = config
        self.clock = clock or (lambda: time.time_ns() // 1_000_000)
        self.source = LiveSource(config)
        self.target = Target(config.symbol, config.timeframe)
        self.window: MainWindow | None = None
        self.mode = "sample" if config.offline else "connecting"
        self.cache: MarketStore | None = None
        self.store_text = (
            ""  # "store: sqlite ~/…" or "store: postgresql user@host/db", shown in the status bar
        )
        self.venue: Venue | None = None
        self.feed: LiveFeed | None = None
        self.generation = 0  # bumps on every (re)start; events of older feeds are dropped
        self.errors: list[str] = []  # user-facing error lines (tests read them)
        self.status_log: deque[str] = deque(maxlen=200)  # recent status lines (tests read them)
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._pending_bars: list[CandleUpdate] = []
        self._pending_liqs: list[LiquidationRecord] = []
        self._flush_handle: asyncio.Handle | None = None
        self._oi: tuple[int, float] | None = None  # newest open interest seen (time, usd)
        self._taker_share = float("nan")  # last closed bar's taker share, for live revisions
        self._liq_waiting: list[LiquidationRecord] = []  # received before the kline of their bar
        # Called with the liquidations just drawn as markers (the latency benchmark listens here).
        self.on_liquidations_shown: Callable[[list[LiquidationRecord]], None] | None = None
        self._offline_reason = ""
        # The streams a RECONNECTING / RATE LIMITED notice is about, each with its notice: the notice stays
        # until every one of them is back, whatever order they come back in.
        self._streams_down: dict[str, str] = {}
        self.listeners: list[
            FeedListener
        ] = []  # run beside the feed (the position sampler of a Hyperliquid tab)
        if not config.offline:
            try:
                # a cache that cannot be written (full disk, a lock) is still read; the feed keeps what it
                # cannot store in memory and retries
                self.cache = open_store(config.cache_path or None, fallback_read_only=True)
                self.store_text = f"store: {self.cache.location}"
                if self.cache.salvage is not None:
                    self.errors.append(
                        f"the cache was damaged and has been salvaged: {self.cache.salvage.summary()}"
                    )
                if self.cache.write_error is not None:
                    self.errors.append(str(self.cache.write_error))
            except (OSError, sqlite3.Error, CacheError) as exc:  # e.g. a read-only data directory: still open
                self._offline_reason = f"cannot open the local cache: {exc}"
                self.errors.append(self._offline_reason)
                log.error("%s", self._offline_reason)
            self._prepare_fallback(self.target)

    @property
    def cache_path(self) -> Path | None:
        """The cache file in use (None: none could be opened, --offline, or a store that is no file)."""
        path = getattr(self.cache, "path", None)  # only the SQLite store is a file
        return None if path is None else Path(path)

    # -- wiring --------------------------------------------------------------------------------------------
    def initial_settings(self) -> dict[str, Any]:
        return {"symbol": self.target.symbol, "timeframe": self.target.timeframe}

    def attach(self, window: MainWindow) -> None:
        """Answer the window's symbol/timeframe requests (a live change restarts the streams instead of
        resampling the loaded bars): the window announces them and leaves loading to the controller."""
        self.window = window
        window.market_controlled = True
        window.symbol_requested.connect(self.request_symbol)
        window.timeframe_requested.connect(self.request_timeframe)
        self._show_mode()

    def detach(self) -> None:
        """Give the window its own symbol/timeframe handling back (the controller is going away)."""
        w, self.window = self.window, None
        if w is None:
            return
        w.market_controlled = False
        with contextlib.suppress(RuntimeError, TypeError):
            w.symbol_requested.disconnect(self.request_symbol)
            w.timeframe_requested.disconnect(self.request_timeframe)

    def start(self) -> None:
        """Start connecting in the background (returns at once; the window is already usable)."""
        if self.config.offline or self._closed:
            self._show_mode()
            return
        self._restart(self.target)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop the streams (awaited, with a timeout), then close the exchange and the cache. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=timeout_s)
        if self.feed is not None:  # normally closed by the task's finally
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.feed.close(), timeout_s)
        for listener in self.listeners:  # before the exchange they use closes
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.close(), timeout_s)
        if self.venue is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.venue.close(), timeout_s)
            self.venue = None
        if self.cache is not None:
            self.cache.close()
            self.cache = None

    # -- user requests ---------------------------------------------------------------------------------------
    def request_symbol(self, symbol: str) -> None:
        self._request(Target(symbol, self.target.timeframe))

    def request_timeframe(self, timeframe: str) -> None:
        self._request(Target(self.target.symbol, timeframe))

    def _request(self, target: Target) -> None:
        w = self.window
        if self._closed or w is None:
            return
        if self.mode == "sample":
            # --offline: the window's own behaviour (the sample is resampled, or a finer interval refused).
            self.target = target
            if target.symbol != w.settings.symbol:
                w.set_symbol(target.symbol)
            w.set_timeframe(target.timeframe)
            self._show_mode()
            return
        if target == self.target and self.mode == "live":
            return
        if self.mode == "offline":
            # Show what the cache has for the new choice at once (or resample what is shown), then try again.
            if self._prepare_fallback(target):
                self.source.set_live(None)
                self._show_in_window(target)
            elif target.symbol == w.settings.symbol:
                w.set_timeframe(target.timeframe)
            else:  # the window says so under the new symbol (never the old symbol's chart under it)
                self.source.set_live(None)
                self._show_in_window(target)
        self._restart(target)

    # -- the connection task ---------------------------------------------------------------------------------
    def _restart(self, target: Target) -> None:
        self.generation += 1
        self.target = target
        old, self._task = self._task, None
        self._task = asyncio.ensure_future(self._run(target, self.generation, old))
        self._task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:  # a bug: never let the connection die silently
            log.error("live data task failed", exc_info=exc)
            self.errors.append(f"live data stopped: {_short(exc)}")
            if self.window is not None:
                self.window.show_notice(f"LIVE DATA STOPPED · {_short(exc)}")

    async def _run(self, target: Target, gen: int, old: asyncio.Task[None] | None) -> None:
        if old is not None and not old.done():
            old.cancel()  # its finally closes its feed; wait so two feeds never overlap
            await asyncio.wait({old}, timeout=self.config.feed.close_timeout_s + 1)
        self._pending_bars.clear()
        self._pending_liqs.clear()
        self._oi = None
        attempt = 0
        while True:
            state = await self._load(target, gen)
            if state == "ok":
                break
            if state == "stop":
                return
            delay = min(self.config.retry_cap_s, self.config.retry_base_s * 2**attempt)
            attempt = min(attempt + 1, 10)
            self._flash(f"no live data: {self._offline_reason}; retrying in {delay:.0f} s")
            await asyncio.sleep(delay)
        assert self.venue is not None and self.cache is not None
        streams = tuple(dict.fromkeys((*ALL_STREAMS, *(s for x in self.listeners for s in x.streams))))
        feed = LiveFeed(
            self.config.exchange, target.symbol, target.timeframe, venue=self.venue, cache=self.cache,
            settings=self.config.feed, clock=self.clock, on_event=functools.partial(self._on_event, gen),
            streams=streams,
        )  # fmt: skip
        self.feed = feed
        try:
            await feed.start()
            await feed.wait()
        finally:
            await feed.close()
            if self.feed is feed:
                self.feed = None

    async def _load(self, target: Target, gen: int) -> str:
        """Probe, backfill and show the history: "ok"; "retry" when offline (the window keeps the cache or the
        sample); "stop" when retrying cannot help (no such market, bad options)."""
        cfg = self.config
        w = self.window
        if self.cache is None:
            self._go_offline(target, self._offline_reason or "no local cache")
            return "stop"
        self.mode = "connecting"
        if self.source.live is None:
            self._show_mode()
        self._flash(f"connecting to {venue_name(cfg.exchange)}…")
        try:
            if self.venue is None:
                self.venue = create_venue(cfg.exchange, cfg.ccxt_options)
            market = await asyncio.wait_for(self.venue.market(target.symbol), cfg.probe_timeout_s)
            tick = tick_from_market(market, getattr(self.venue.exchange, "precisionMode", None))
            range_name = w.settings.range_name if w is not None else data_mod.DEFAULT_RANGE
            span = history_span_ms(range_name, target.timeframe, cfg.min_bars, cfg.max_bars)

            def progress(done: int, total: int, text: str) -> None:
                if gen == self.generation:
                    self._flash(f"loading {target.symbol} {target.timeframe} from {venue_name(cfg.exchange)}: "
                                f"{done}/{total} · {text}")  # fmt: skip

            hist = await load_history_async(
                cfg.exchange, target.symbol, target.timeframe, None, None, span_ms=span, venue=self.venue,
                cache=self.cache, progress=progress, now_ms=self.clock(), policy=cfg.history_policy,
                offline_ok=True,
            )  # fmt: skip
        except (*NETWORK_ERRORS, ccxt_errors.ExchangeError) as exc:
            self._go_offline(target, f"{venue_name(cfg.exchange)} unreachable ({_short(exc)})")
            return "retry"
        except CacheError as exc:  # the store cannot be used right now (a database server away, a lock)
            self._go_offline(target, str(exc))
            return "retry"
        except LiqdeskError as exc:  # no such market, bad ccxt options: say so, stay where we are
            self._go_offline(target, str(exc))
            return "stop"
        if hist.offline:
            self._go_offline(target, hist.notes[0].removeprefix("offline: "))
            return "retry"
        if len(hist.candles) < 2:
            reason = f"{cfg.exchange} returned no {target.timeframe} bars for {target.symbol}"
            self._go_offline(target, reason)
            return "retry"
        label = (f"LIVE · {venue_name(cfg.exchange)} {target.symbol} {target.timeframe} · "
                 f"{len(hist.candles):,} bars ({len(hist.candles) - hist.fetched_bars:,} cached, "
                 f"{hist.fetched_bars:,} fetched)")  # fmt: skip
        notes = hist.notes
        if hist.open_interest is None:
            notes += ("no open-interest history: volume model",)
        data = MarketData(hist.candles, hist.open_interest, hist.liquidations, target.symbol, cfg.exchange, label,
                          offline=False, source_kind="live", notes=notes, tick_size=tick)  # fmt: skip
        self._taker_share = _last_taker_share(hist.candles)
        if hist.open_interest is not None and len(hist.open_interest):
            self._oi = (int(hist.open_interest.time[-1]), float(hist.open_interest.usd[-1]))
        self.source.set_live(data)
        self.mode = "live"
        self._liq_waiting = []
        self._show_in_window(target)
        self._flash(f"{hist.label}; streaming")
        for listener in self.listeners:
            listener.live(self.venue, target.symbol)
        return "ok"

    def _go_offline(self, target: Target, reason: str) -> None:
        self.mode = "offline"
        self._offline_reason = reason
        self.errors.append(reason)
        log.warning("live data: %s", reason)
        live = self.source.live
        if live is None or live.symbol != target.symbol or live.native_timeframe != target.timeframe:
            # The best offline data for the choice: the cache if it holds enough, else what is shown already.
            self.source.set_live(None)
            if self._prepare_fallback(target):
                self._show_in_window(target)
        self._show_mode()

    def _prepare_fallback(self, target: Target) -> bool:
        """Put the cache's data for the target (if enough) in the source as the fallback. True if it did."""
        if self.cache is None:
            return False
        span = history_span_ms(data_mod.DEFAULT_RANGE, target.timeframe, self.config.min_bars,
                               self.config.max_bars)  # fmt: skip
        try:
            data = cached_market(self.cache, self.config.exchange, target, span)
        except Exception as exc:  # a damaged cache must not keep the window from opening
            log.warning("cache: %s", exc)
            data = None
        if data is None:
            return False
        self.source.set_fallback(data)
        return True

    # -- window updates ----------------------------------------------------------------------------------------
    def _show_in_window(self, target: Target) -> None:
        w = self.window
        if w is None:
            return
        w.settings.timeframe = target.timeframe
        w.load_symbol(target.symbol)
        if self.mode == "live":
            # Every timeframe can be streamed: undo the window's "not in this data" greying-out.
            w.toolbar.enable_all(w.toolbar.timeframe_box)
        self._show_mode()

    def _show_mode(self) -> None:
        w = self.window
        if w is None:
            return
        market = w.market
        if self.mode == "live":
            w.show_notice(None)
            if market is not None:
                w.set_status_source(" · ".join(t for t in (market.label, self.store_text) if t))
            return
        kind = market.source_kind if market is not None else "sample"
        what = {"sample": "the bundled sample", "cache": "cached data", "live": "the last live data"}.get(
            kind, "data from files"
        )
        shown = f"showing {what}" if market is not None else f"no {self.target.symbol} data here"
        if self.mode == "sample":
            w.show_notice("OFFLINE · bundled sample data (--offline)" if market is not None else
                          f"OFFLINE · {shown} (--offline)")  # fmt: skip
        elif self.mode == "connecting":
            w.show_notice(f"CONNECTING to {venue_name(self.config.exchange)} · {shown}")
        else:
            w.show_notice(f"OFFLINE · {self._offline_reason or 'no connection'} · {shown}")
        if market is not None and kind != "live":
            w.set_status_source(" · ".join(t for t in (market.label + " · not live", self.store_text) if t))

    def _flash(self, text: str) -> None:
        self.status_log.append(text)
        if self.window is not None:
            self.window.flash(text)

    # -- feed events (loop thread) -------------------------------------------------------------------------------
    def _on_event(self, gen: int, e: FeedEvent) -> None:
        if gen != self.generation or self._closed:
            return  # a feed that is being replaced
        for listener in self.listeners:
            listener.on_event(e)
        if isinstance(e, CandleUpdate):
            if e.symbol != self.target.symbol or e.timeframe != self.target.timeframe:
                return
            # Only the newest revision of the live bar matters; closed bars are all kept, in order.
            p = self._pending_bars
            if p and not p[-1].closed and p[-1].open_time == e.open_time:
                p[-1] = e
            else:
                p.append(e)
            self._schedule_flush()
        elif isinstance(e, LiquidationEvent):
            if e.record.symbol == self.target.symbol:
                self._pending_liqs.append(e.record)
                self._schedule_flush()
        elif isinstance(e, OpenInterestUpdate):
            if e.symbol == self.target.symbol and (self._oi is None or e.time >= self._oi[0]):
                self._oi = (e.time, e.usd)
        elif isinstance(e, StatusEvent):
            self._on_status(e)

    def _schedule_flush(self) -> None:
        # Events that arrive in one loop turn (a ccxt wake-up delivers several) are applied together.
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        w = self.window
        bars, self._pending_bars = self._pending_bars, []
        liqs, self._pending_liqs = self._pending_liqs, []
        if w is None or self.mode != "live":
            return
        appended = False
        for e in bars:
            appended |= self._apply_bar(w, e)
        if liqs or (appended and self._liq_waiting):
            self._show_liquidations(w, liqs)
        flowing = ("RECONNECTING", "RATE") if not appended else ("RECONNECTING", "RATE", "WAITING")
        if (bars or liqs) and w.status.notice.isVisible() and w.status.notice.text().startswith(flowing):
            w.show_notice(None)  # data flows again
            self._streams_down.clear()

    def _show_liquidations(self, w: MainWindow, records: list[LiquidationRecord]) -> None:
        """New real liquidations to the window (``add_liquidations`` appends only the new markers and feeds the
        alerts); an event that arrives before the kline of its bar waits for that bar."""
        c = w.candles
        if w.market is None or c is None or not len(c):
            return
        end = int(c.close_time[-1])
        pending = self._liq_waiting + records
        self._liq_waiting = [r for r in pending if r.time >= end]
        ready = [r for r in pending if r.time < end]
        if not ready:
            return
        w.add_liquidations(liquidations_from_records(ready))
        start = int(c.open_time[0])
        self._shown([r for r in ready if r.time >= start])

    def _shown(self, records: list[LiquidationRecord]) -> None:
        if records and self.on_liquidations_shown is not None:
            self.on_liquidations_shown(records)

    def _apply_bar(self, w: MainWindow, e: CandleUpdate) -> bool:
        interval = timeframe_ms(e.timeframe)
        if e.closed:
            quote = np.nan if e.quote_volume is None else e.quote_volume
            taker = np.nan if e.taker_buy_volume is None else e.taker_buy_volume
            if e.taker_buy_volume is not None and e.volume > 0:
                self._taker_share = e.taker_buy_volume / e.volume
        else:
            # A live revision has OHLCV only: VWAP falls back to the typical price (NaN quote volume), and
            # the taker split carries the last closed bar's share until the closed bar (from REST) replaces it.
            quote = np.nan
            taker = e.volume * self._taker_share if np.isfinite(self._taker_share) else np.nan
        row = Candles(
            np.array([e.open_time], np.int64), np.array([e.open]), np.array([e.high]), np.array([e.low]),
            np.array([e.close]), np.array([e.volume]), interval,
            quote_volume=np.array([quote]), taker_buy_volume=np.array([taker]),
        )  # fmt: skip
        n = len(w.candles) if w.candles is not None else 0
        w.apply_bar(row, e.closed, self._oi_for(e.open_time + interval))
        return w.candles is not None and len(w.candles) > n  # a new bar (waiting liquidations may fit now)

    def _oi_for(self, close_ms: int) -> float | None:
        """Open interest to use at a bar's close: the newest value seen, unless it is too old to say anything
        about this bar (then None: the engine's volume model covers the bar)."""
        if self._oi is None:
            return None
        t, usd = self._oi
        period = venue_class(self.config.exchange).oi_period(self.target.timeframe)
        from liqdesk.feeds.venues.base import OI_PERIODS_MS

        max_age = 2 * OI_PERIODS_MS[period] + timeframe_ms(self.target.timeframe)
        return usd if close_ms - t <= max_age else None

    def _on_status(self, e: StatusEvent) -> None:
        w = self.window
        text = f"{e.stream}: {e.text}" if e.stream else e.text
        self.status_log.append(f"{e.level}: {text}")
        if w is None:
            return
        if e.level == "info":
            w.flash(text)
            if e.text.endswith("connected") and self._streams_down.pop(e.stream, None) is not None:
                self._reconnected(w, e)
            return
        low = e.text.lower()
        if "not stored" in low or "waiting for the cache" in low:
            notice = f"CACHE · {_first_clause(e.text)} · the chart keeps drawing"
        elif "rate limited" in low:
            notice = (
                f"RATE LIMITED by {venue_name(e.exchange or self.config.exchange)} · backing off, chart kept"
            )
        elif "stopped" in low:
            notice = f"STOPPED · {e.stream}: {_first_clause(e.text)}"
        else:
            notice = f"RECONNECTING · {e.stream or 'stream'}: {_first_clause(e.text)}"
        w.show_notice(notice)
        self._streams_down[e.stream] = notice
        w.flash(text)

    def _reconnected(self, w: MainWindow, e: StatusEvent) -> None:
        """A stream behind the notice is back. Another still down: the notice says that one. All back: the
        notice goes (bars may not flow at once: an exchange whose clock is behind the newest bar shown sends
        bars the chart already has, and says so)."""
        if not w.status.notice.text().startswith(("RECONNECTING", "RATE")):
            return
        if self._streams_down:
            w.show_notice(next(reversed(self._streams_down.values())))
            return
        c = w.candles
        now = self.clock()
        if c is not None and len(c) and int(c.open_time[-1]) > now:
            from liqdesk.feeds.timeparse import format_time

            w.show_notice(f"WAITING · {venue_name(e.exchange or self.config.exchange)} is at "
                          f"{format_time(now)[:16]}Z, behind the newest bar shown "
                          f"({format_time(int(c.open_time[-1]))[:16]}Z): new bars come once it passes")  # fmt: skip
        else:
            w.show_notice(None)


def _last_taker_share(c: Candles) -> float:
    if c.taker_buy_volume is None or not len(c):
        return float("nan")
    ok = np.isfinite(c.taker_buy_volume) & (c.volume > 0)
    if not ok.any():
        return float("nan")
    i = int(np.flatnonzero(ok)[-1])
    return float(c.taker_buy_volume[i] / c.volume[i])


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _first_clause(text: str) -> str:
    return text.split(";")[0][:100]

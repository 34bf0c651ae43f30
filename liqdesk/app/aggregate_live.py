"""An aggregated market live in a chart tab: several venues of one coin, each venue's history through the cache,
then every venue's live feed (feeds.live_aggregate.LiveAggregate) into the window.

``AggregateSource`` is the tab's ``DataSource`` (one market, "BTC · 4 venues", once its history is loaded).
``AggregateController`` runs on the window's asyncio loop: it names each venue's symbol (the cached market lists,
no network), loads the venues' histories side by side, shows them as one ``VenueSetMarket`` (the first venue with
bars is the chart's: its candles are drawn; every venue's engine is built and summed on the worker), then streams:
the chart venue's bars go to ``MainWindow.apply_bar``, another venue's to ``MainWindow.apply_venue_bar``, every
venue's liquidations to ``add_liquidations`` (each waits for the chart bar it falls in), its statuses to the
venue panel. A venue that cannot be reached gives its cached bars and says so; when no venue has bars the tab
says so and tries again with backoff. A timeframe change loads and streams again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liqdesk.app.live_source import FeedListener, LiveConfig, history_span_ms, liquidations_from_records
from liqdesk.core.series import Candles, Liquidations
from liqdesk.errors import DataError, LiqdeskError
from liqdesk.feeds.live import FeedEvent, LiquidationEvent, StatusEvent
from liqdesk.feeds.live_aggregate import LiveAggregate
from liqdesk.feeds.market_data import MarketData
from liqdesk.feeds.market_list import load_market_lists
from liqdesk.feeds.store import MarketStore, open_store
from liqdesk.feeds.venue_market import VenuePart, VenueSetMarket, aggregate_name, coin_of, venue_title
from liqdesk.feeds.venue_set import load_histories_async, parse_exchanges, tape_kind, venue_symbols
from liqdesk.feeds.venues import venue_class
from liqdesk.feeds.venues.base import LiquidationRecord
from liqdesk.ui import data as data_mod

if TYPE_CHECKING:
    from liqdesk.ui.window import MainWindow

log = logging.getLogger(__name__)


def is_aggregate(exchange: str) -> bool:
    return "," in exchange


def symbol_for(config: LiveConfig) -> str:
    """The coin's symbol in ccxt form from what a tab was given ("BTC · 4 venues" or "BTC/USDT:USDT")."""
    s = config.symbol
    return s if "/" in s or "=" in s else f"{coin_of(s)}/USDT:USDT"


class AggregateSource:
    """The tab's DataSource: the aggregated market once loaded."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.market: VenueSetMarket | None = None
        self.waiting = "connecting to the venues…"

    def symbols(self) -> list[str]:
        return [self.name]

    def load(self, symbol: str) -> MarketData:
        if self.market is None:
            raise DataError(self.waiting)
        return self.market


class AggregateController:
    """Connects a MainWindow to several venues at once (see the module). ``attach(window)``, ``start()``,
    ``await close()``. ``mode``: connecting → live, or offline (retrying)."""

    def __init__(self, config: LiveConfig, *, clock: Callable[[], int] | None = None) -> None:
        self.config = config
        self.exchanges = parse_exchanges(config.exchange)
        self.clock = clock or (lambda: time.time_ns() // 1_000_000)
        lists = load_market_lists(self.exchanges).lists  # cached lists only: no network to name the symbols
        self.symbols = venue_symbols(symbol_for(config), self.exchanges, lists)
        self.coin = coin_of(next(iter(self.symbols.values())))
        self.name = aggregate_name(self.coin, len(self.exchanges))
        self.source = AggregateSource(self.name)
        self.timeframe = config.timeframe
        self.window: MainWindow | None = None
        self.mode = "sample" if config.offline else "connecting"
        self.live: LiveAggregate | None = None
        self.errors: list[str] = []
        self.status_log: list[str] = []
        self.generation = 0
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._waiting: list[LiquidationRecord] = []  # liquidations before the chart bar they fall in
        # run beside the venues' feeds (the position sampler, on an aggregate with Hyperliquid): each hears its
        # venue's events and is told that venue's exchange once the feeds are up
        self.listeners: list[FeedListener] = []
        self.cache: MarketStore | None = None
        if config.offline:
            self.source.waiting = "--offline: an aggregated market needs its venues' history"

    @property
    def cache_path(self) -> Path | None:
        """The cache file in use (None: none open yet, or a store that is no file)."""
        path = getattr(self.cache, "path", None)
        return None if path is None else Path(path)

    def _store(self) -> MarketStore:
        """The store the feeds write to (--store, else the default), opened once; still read when it cannot be
        written (a full disk, a lock): the feeds keep what they could not store and retry."""
        if self.cache is None:
            self.cache = open_store(self.config.cache_path or None, fallback_read_only=True)
        return self.cache

    def initial_settings(self) -> dict[str, Any]:
        return {"symbol": self.name, "timeframe": self.timeframe}

    def options(self, exchange: str) -> dict[str, Any]:
        opts = self.config.ccxt_options or {}
        value = opts.get(exchange)
        return dict(value) if isinstance(value, dict) else {}

    # -- wiring ------------------------------------------------------------------------------------------------
    def attach(self, window: MainWindow) -> None:
        self.window = window
        window.market_controlled = True
        window.timeframe_requested.connect(self.request_timeframe)
        self._notice()

    def detach(self) -> None:
        w, self.window = self.window, None
        if w is None:
            return
        w.market_controlled = False
        with contextlib.suppress(RuntimeError, TypeError):
            w.timeframe_requested.disconnect(self.request_timeframe)

    def start(self) -> None:
        if self.config.offline or self._closed:
            self._notice()
            return
        self._restart()

    def request_timeframe(self, timeframe: str) -> None:
        if timeframe != self.timeframe:
            self.timeframe = timeframe
            self._restart()

    async def close(self, timeout_s: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=timeout_s)
        for listener in self.listeners:  # before the exchanges they use close
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.close(), timeout_s)
        if self.live is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.live.close(), timeout_s)
            self.live = None
        if self.cache is not None:
            self.cache.close()
            self.cache = None

    def _restart(self) -> None:
        self.generation += 1
        old, self._task = self._task, None
        self._task = asyncio.ensure_future(self._run(self.generation, old))

    # -- loading and streaming ------------------------------------------------------------------------------------
    async def _run(self, gen: int, old: asyncio.Task[None] | None) -> None:
        if old is not None and not old.done():
            old.cancel()
            await asyncio.wait({old}, timeout=5.0)
        delay = self.config.retry_base_s
        while not self._closed and gen == self.generation:
            try:
                loaded = await self._load(gen)
            except LiqdeskError as exc:
                self._offline(str(exc))
                return
            if loaded:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.config.retry_cap_s)
        if self._closed or gen != self.generation:
            return
        live = LiveAggregate(
            None, self.symbols, self.timeframe, ccxt_options={ex: self.options(ex) for ex in self.exchanges},
            settings=self.config.feed, clock=self.clock, on_event=lambda v, e: self._on_event(gen, v, e),
            apply=lambda v, row, oi: self._apply(gen, v, row, oi), cache=self._store(),
            extra_streams={ex: [k for x in self.listeners for k in x.streams] for ex in self.exchanges
                           if callable(getattr(venue_class(ex), "normalise_trade", None))},  # trades with addresses
        )  # fmt: skip
        self.live = live
        try:
            await live.start()
            for ex, feed in live.feeds.items():
                for listener in self.listeners:
                    listener.live(feed.venue, self.symbols[ex])
            await asyncio.Event().wait()  # until cancelled (a restart or close)
        finally:
            await live.close()
            if self.live is live:
                self.live = None

    async def _load(self, gen: int) -> bool:
        """Every venue's history into the window: True when shown, False when no venue has bars (retry)."""
        w = self.window
        self.mode = "connecting"
        self._notice()
        range_name = w.settings.range_name if w is not None else data_mod.DEFAULT_RANGE
        span = history_span_ms(range_name, self.timeframe, self.config.min_bars, self.config.max_bars)
        now = self.clock()

        def progress(done: int, total: int, text: str) -> None:
            if gen == self.generation:
                self._flash(f"loading {self.name} {self.timeframe}: {done}/{total} · {text}")

        hists = await load_histories_async(
            [(ex, self.symbols[ex]) for ex in self.exchanges], self.timeframe, now - span, now,
            ccxt_options=self.options, progress=progress, now_ms=now, store=self.config.cache_path or None,
        )  # fmt: skip
        if gen != self.generation or self._closed:
            return True
        parts, tapes, notes = [], [], []
        for ex, h in zip(self.exchanges, hists, strict=True):
            for note in h.notes:
                notes.append(f"{ex}: {note}")
            parts.append(VenuePart(ex, self.symbols[ex], h.candles, h.open_interest, tape_kind(ex), h.label,
                                   tuple(h.notes)))  # fmt: skip
            if len(h.liquidations):
                tapes.append(h.liquidations)
        chart = next((p for p in parts if len(p.candles) >= 2), None)
        if chart is None:
            self._offline("no venue gave bars (" + "; ".join(notes[:4]) + ")")
            return False
        liqs = Liquidations.empty()
        for t in tapes:
            liqs = liqs.concat(t)
        bars = ", ".join(f"{venue_title(p.name)} {len(p.candles):,}" for p in parts)
        label = f"LIVE · {self.name} {self.timeframe} · chart: {venue_title(chart.name)} · bars {bars}"
        market = VenueSetMarket(
            chart.candles, chart.open_interest, liqs.sorted(), self.name, ",".join(self.exchanges), label,
            offline=False, source_kind="live", notes=tuple(notes), parts=tuple(parts), chart_venue=chart.name,
        )  # fmt: skip
        self.source.market = market
        self.mode = "live"
        self._waiting = []
        if w is not None:
            w.settings.timeframe = self.timeframe
            w.load_symbol(self.name)
            w.toolbar.enable_all(w.toolbar.timeframe_box)
        self._notice()
        for note in notes:
            log.info("%s: %s", self.name, note)
        return True

    def _apply(self, gen: int, venue: str, row: Candles, oi: float | None) -> None:
        """A venue's bar, handed to the window (the worker applies it to the venue's engine)."""
        w = self.window
        market = self.source.market
        if gen != self.generation or w is None or market is None or w.market is not market:
            return None
        if venue == market.chart_venue:
            n = len(w.candles) if w.candles is not None else 0
            w.apply_bar(row, False, oi)
            if w.candles is not None and len(w.candles) > n and self._waiting:
                self._show_liquidations([])
        else:
            w.apply_venue_bar(venue, row, oi)
        if self.live is not None:  # its state counts the bar once this returns
            asyncio.get_running_loop().call_soon(self._show_state, venue)
        return None

    def _show_state(self, venue: str) -> None:
        w, live = self.window, self.live
        if w is not None and live is not None:
            st = live.state[venue]
            when = (
                "no bar yet"
                if st.last_open_ms is None
                else time.strftime("%H:%M", time.gmtime(st.last_open_ms / 1000))
            )
            status = f" · {st.status}" if st.status and st.level != "info" else ""
            w.venue_panel.set_live(venue, f"live: bar {when} UTC, {st.closed} closed{status}")

    def _on_event(self, gen: int, venue: str, e: FeedEvent) -> None:
        if gen != self.generation or self._closed:
            return
        for listener in self.listeners:
            listener.on_event(e)
        w = self.window
        if isinstance(e, LiquidationEvent):
            if e.record.symbol == self.symbols[venue]:
                self._show_liquidations([e.record])
        elif isinstance(e, StatusEvent):
            text = f"{e.stream}: {e.text}" if e.stream else e.text
            self.status_log.append(f"{venue} {e.level}: {text}")
            if w is not None:
                if e.level != "info":
                    w.venue_panel.set_live(venue, f"{e.level}: {text}")
                w.flash(f"{venue_title(venue)}: {text}")

    def _show_liquidations(self, records: list[LiquidationRecord]) -> None:
        w = self.window
        c = w.candles if w is not None else None
        if w is None or c is None or not len(c) or w.market is not self.source.market:
            self._waiting += records
            return
        end = int(c.close_time[-1])
        pending = self._waiting + records
        self._waiting = [r for r in pending if r.time >= end]
        ready = [r for r in pending if r.time < end]
        if ready:
            w.add_liquidations(liquidations_from_records(ready))

    # -- what the tab says -----------------------------------------------------------------------------------------
    def _offline(self, reason: str) -> None:
        self.mode = "offline"
        self.errors.append(reason)
        self.source.waiting = reason
        log.warning("%s: %s", self.name, reason)
        w = self.window
        if w is not None and w.market is None:
            w.load_symbol(self.name)  # the empty chart says why
        self._notice(reason)

    def _notice(self, reason: str = "") -> None:
        w = self.window
        if w is None:
            return
        venues = ", ".join(venue_title(x) for x in self.exchanges)
        if self.mode == "live":
            w.show_notice(None)
            if w.market is not None:
                w.set_status_source(w.market.label)
        elif self.mode == "connecting":
            w.show_notice(f"CONNECTING to {venues}")
        elif self.mode == "sample":
            w.show_notice("OFFLINE · an aggregated market needs its venues (--offline)")
        else:
            w.show_notice(f"OFFLINE · {reason[:160]} · retrying")

    def _flash(self, text: str) -> None:
        self.status_log.append(text)
        if self.window is not None:
            self.window.flash(text)

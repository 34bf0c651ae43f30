"""The position sampler of a Hyperliquid tab: runs on the app's asyncio loop (qasync) beside the tab's live feed and
publishes what it knows to the window.

A `LiveController` feed listener: the controller adds the ``trades`` stream to its feed (both counterparties of every
trade: the accounts to sample) and hands every feed event over (trades for discovery, candles for the price path
that inferred liquidations are judged on); once the history is loaded it calls ``live(venue, symbol)`` with its own
ccxt exchange (one exchange per venue: the sampler's requests share its session and throttle). The sampler
(liqdesk.feeds.position_sampler) stores every answer in the positions tables of the tab's store; every
``publish_every_s`` the newest answer of each account in the last hour, the open interest, the sampler's status and
the inferred liquidations go to the window's `PositionsHub` (its layers redraw). Nothing waits on the network in the
UI: the sampler's requests are asyncio and its store writes are small; what is published is read on a thread of its
own with a connection of its own (each account's newest answer is a grouped query over the hour's answers: 0.2 s
for 60,000 answers on a shared 2-core machine, too long for the UI thread every few seconds).

Only sampled accounts are ever in the actual map; their addresses are public data (the venue's trades stream) and
stay in the local store; nothing is sent anywhere but the venue's public info requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from liqdesk.core.actual_map import PositionSamples
from liqdesk.errors import DataError
from liqdesk.feeds.cache import CacheError
from liqdesk.feeds.live import FeedEvent, StreamKind
from liqdesk.feeds.venues import Venue
from liqdesk.feeds.venues.hyperliquid import Hyperliquid
from liqdesk.ui.actual_positions import PositionsHub, PositionsSnapshot
from liqdesk.ui.jobs import SerialExecutor

if TYPE_CHECKING:
    from liqdesk.feeds.position_sampler import PositionSampler, SamplerSettings, SamplerStatus
    from liqdesk.feeds.positions_store import PositionsStore

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
INFERRED_SPAN_MS = 30 * 24 * HOUR_MS  # inferred liquidations drawn: those of the last 30 days


@dataclass(frozen=True)
class _Counters:
    """The sampler's in-memory counters, taken on the loop's thread for a snapshot read elsewhere."""

    budget_used: float
    budget: float
    requests: int
    rate_limited: int
    bad_answers: int
    inferred: int


class LivePositions:
    """Samples the tab's market on Hyperliquid while it is live. ``store_url``: the tab's store (None: the default
    one); ``say``: one line to the user (the status bar); ``clock``: epoch-ms now (tests use the fake's)."""

    streams: tuple[StreamKind, ...] = ("trades",)

    def __init__(
        self,
        hub: PositionsHub,
        store_url: str | None,
        *,
        settings: SamplerSettings | None = None,
        clock: Callable[[], int] | None = None,
        say: Callable[[str], None] | None = None,
        publish_every_s: float = 5.0,
        window_ms: int = HOUR_MS,
    ) -> None:
        self.hub = hub
        self.store_url = store_url
        self.settings = settings
        self.clock = clock or (lambda: time.time_ns() // 1_000_000)
        self.say = say
        self.publish_every_s = publish_every_s
        self.window_ms = window_ms
        self.sampler: PositionSampler | None = None
        self.store: PositionsStore | None = None
        self.errors: list[str] = []  # what stopped the sampler (tests read them)
        self._task: asyncio.Task[None] | None = None
        self._reader: SerialExecutor | None = None  # one thread: reads what is published, own connection
        self._read_store: PositionsStore | None = None  # used on that thread only
        hub.history = self.read_history

    # -- feed listener ---------------------------------------------------------------------------------------------
    def on_event(self, e: FeedEvent) -> None:
        if self.sampler is not None:
            self.sampler.observe_event(e)

    def live(self, venue: Venue, symbol: str) -> None:
        """The tab is live on ``symbol``: (re)start sampling it."""
        if not isinstance(venue, Hyperliquid):
            return
        running = self._task is not None and not self._task.done()
        if self.sampler is not None and self.sampler.symbol == symbol and running:
            return  # the same market again (a reconnect): it goes on
        self._stop_task()
        from liqdesk.feeds.position_sampler import PositionSampler, SamplerSettings

        try:
            if self.store is None:
                from liqdesk.feeds.store import open_positions

                self.store = open_positions(self.store_url)
        except (DataError, CacheError, OSError) as exc:
            self._stopped(f"positions not sampled: {exc}")
            return
        self._finish_sampler()
        self.sampler = PositionSampler(venue, self.store, symbol, settings=self.settings or SamplerSettings(),
                                       clock=self.clock, on_status=self._on_status)  # fmt: skip
        self.hub.publish(None)  # another market: nothing of the old one stays drawn
        self._task = asyncio.ensure_future(self._run(self.sampler))

    async def close(self) -> None:
        task = self._stop_task()
        if task is not None:
            await asyncio.wait({task}, timeout=5.0)
        self._finish_sampler()
        if self.store is not None:
            self.store.close()
            self.store = None
        reader, self._reader = self._reader, None
        if reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.wrap_future(reader.submit(self._close_read_store)), 5.0)
            reader.shutdown(0.0)

    # -- running -----------------------------------------------------------------------------------------------------
    async def _run(self, sampler: PositionSampler) -> None:
        work = asyncio.ensure_future(sampler.run())
        try:
            while not work.done():
                await self.publish()
                await asyncio.wait({work}, timeout=self.publish_every_s)
            if not work.cancelled() and work.exception() is not None:
                exc = work.exception()
                self._stopped(f"the position sampler stopped: {type(exc).__name__}: {exc}")
        finally:
            work.cancel()
            with contextlib.suppress(BaseException):
                await work

    async def publish(self) -> None:
        """What the sampler knows now, to the window (read off the UI thread)."""
        sampler = self.sampler
        if sampler is None:
            return
        try:
            sampler.flush()  # discovered accounts count at once
        except (DataError, CacheError) as exc:
            log.warning("positions: %s", exc)
        st = sampler.stats
        counters = _Counters(sampler.budget.used(), sampler.settings.budget, st.requests, st.rate_limited,
                             st.bad_answers, st.inferred)  # fmt: skip
        if self._reader is None:
            self._reader = SerialExecutor("liqdesk-positions")
        now = self.clock()
        try:
            snap = await asyncio.wrap_future(
                self._reader.submit(
                    lambda: self._read_snapshot(sampler.symbol, now, counters), supersede="snapshot"
                )
            )
        except (DataError, CacheError) as exc:
            log.warning("positions: %s", exc)
            return
        if self.sampler is sampler:  # not replaced meanwhile
            self.hub.publish(snap)

    def _read_snapshot(self, symbol: str, now: int, c: _Counters) -> PositionsSnapshot:
        """On the reader thread: each account's newest answer in the window, open interest, the status."""
        from liqdesk.feeds.position_sampler import SamplerStatus
        from liqdesk.feeds.store import open_positions

        if self._read_store is None:
            self._read_store = open_positions(self.store_url)
        store, coin = self._read_store, symbol.split("/")[0]
        state = store.state_at(coin, now, self.window_ms)
        market = store.market_at(coin, now)
        oi = market[1].open_interest_usd if market is not None else math.nan
        value = float(state.position_value.sum())
        status: SamplerStatus = SamplerStatus(
            accounts_known=store.count_accounts(), sampled_last_hour=store.count_sampled_since(now - HOUR_MS),
            coverage=value / (2 * oi) if math.isfinite(oi) and oi > 0 else math.nan, sampled_value_usd=value,
            open_interest_usd=oi, budget_used=c.budget_used, budget=c.budget, requests=c.requests,
            rate_limited=c.rate_limited, bad_answers=c.bad_answers, inferred=c.inferred,
            positions_without_price=int((~np.isfinite(state.liquidation_px)).sum()),
        )  # fmt: skip
        newest = int(state.sample_time.max()) if state.n_samples else now
        inferred = store.inferred(symbol, now - INFERRED_SPAN_MS)
        return PositionsSnapshot("hyperliquid", symbol, state, oi, newest, status, inferred)

    def _close_read_store(self) -> None:
        store, self._read_store = self._read_store, None
        if store is not None:
            store.close()

    def read_history(self, coin: str, start_ms: int, end_ms: int) -> PositionSamples:
        """Every stored answer of ``coin`` in [start, end): for the model check, on its own thread (a connection
        of its own)."""
        from liqdesk.feeds.store import open_positions

        with open_positions(self.store_url) as store:
            return store.samples(coin, start_ms, end_ms)

    def _on_status(self, text: str, level: str) -> None:
        if self.say is not None:
            self.say(f"positions: {text}")

    def _stopped(self, text: str) -> None:
        self.errors.append(text)
        log.error("%s", text)
        if self.say is not None:
            self.say(text)

    def _stop_task(self) -> asyncio.Task[None] | None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
        return task

    def _finish_sampler(self) -> None:
        """Store what was discovered and compare pending answers (the sampler is being replaced or closed)."""
        sampler, self.sampler = self.sampler, None
        if sampler is None:
            return
        try:
            sampler.flush()
            sampler.decide(final=True)
        except (DataError, CacheError) as exc:
            log.warning("positions: %s", exc)

"""The position sampler of a Hyperliquid tab: runs on the app's asyncio loop (qasync) beside the tab's live feed and
publishes what it knows to the window.

A `LiveController` feed listener: the controller adds the ``trades`` stream to its feed (both counterparties of every
trade: the accounts to sample) and hands every feed event over (trades for discovery, candles for the price path
that inferred liquidations are judged on); once the history is loaded it calls ``live(venue, symbol)`` with its own
ccxt exchange (one exchange per venue: the sampler's requests share its session and throttle). The sampler
(liqdesk.feeds.position_sampler) stores every answer in the positions tables of the tab's store; every
``publish_every_s`` the newest answer of each account in the last hour, the open interest, the sampler's status and
the inferred liquidations go to the window's `PositionsHub` (its layers redraw). Nothing waits on the network in the
UI: the sampler's requests are asyncio, and its store writes are small.

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
from typing import TYPE_CHECKING

from liqdesk.core.actual_map import PositionSamples
from liqdesk.errors import DataError
from liqdesk.feeds.cache import CacheError
from liqdesk.feeds.live import FeedEvent, StreamKind
from liqdesk.feeds.venues import Venue
from liqdesk.feeds.venues.hyperliquid import Hyperliquid
from liqdesk.ui.actual_positions import PositionsHub, PositionsSnapshot

if TYPE_CHECKING:
    from liqdesk.feeds.position_sampler import PositionSampler, SamplerSettings
    from liqdesk.feeds.positions_store import PositionsStore

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
INFERRED_SPAN_MS = 30 * 24 * HOUR_MS  # inferred liquidations drawn: those of the last 30 days


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
        hub.history = self.read_history

    # -- feed listener ---------------------------------------------------------------------------------------------
    def on_event(self, e: FeedEvent) -> None:
        if self.sampler is not None:
            self.sampler.observe_event(e)

    def live(self, venue: Venue, symbol: str) -> None:
        """The tab is live on ``symbol``: (re)start sampling it."""
        if not isinstance(venue, Hyperliquid):
            return
        if self.sampler is not None and self.sampler.symbol == symbol and self._task is not None:
            return
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

    # -- running -----------------------------------------------------------------------------------------------------
    async def _run(self, sampler: PositionSampler) -> None:
        work = asyncio.ensure_future(sampler.run())
        try:
            while not work.done():
                self.publish()
                await asyncio.wait({work}, timeout=self.publish_every_s)
            if not work.cancelled() and work.exception() is not None:
                exc = work.exception()
                self._stopped(f"the position sampler stopped: {type(exc).__name__}: {exc}")
        finally:
            work.cancel()
            with contextlib.suppress(BaseException):
                await work

    def publish(self) -> None:
        """What the sampler knows now, to the window."""
        sampler, store = self.sampler, self.store
        if sampler is None or store is None:
            return
        try:
            sampler.flush()  # discovered accounts count in the status at once
            status = sampler.status()
            now = self.clock()
            state = store.state_at(sampler.coin, now, self.window_ms)
            inferred = store.inferred(sampler.symbol, now - INFERRED_SPAN_MS)
        except (DataError, CacheError) as exc:
            log.warning("positions: %s", exc)
            return
        newest = int(state.sample_time.max()) if state.n_samples else now
        oi = status.open_interest_usd
        self.hub.publish(PositionsSnapshot("hyperliquid", sampler.symbol, state, oi if math.isfinite(oi) else math.nan,
                                           newest, status, inferred))  # fmt: skip

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

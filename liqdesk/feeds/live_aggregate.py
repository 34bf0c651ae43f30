"""Several venues live at once, feeding their engines (Qt-free): one LiveFeed per venue, the aggregate updated
per venue bar.

Each venue's feed runs its own streams (candles, open interest, liquidations where published) with its own
reconnects, into one shared cache. A bar of a venue (a live revision or the closed bar from REST) becomes a
one-row Candles (`candle_row`) with the open interest then (`oi_for_close`) and is applied to that venue's engine
through `AggregateModel.apply_bar`, which updates only that venue's newest column and re-adds the sum;
`on_update` receives what changed. Liquidations go to each venue's tape, statuses to its status line
(`status_lines`). Run it in any asyncio loop (plain asyncio in a command, qasync in the app); keep the engine
work where the engines live (the caller's `apply` hook can hand bars to a worker thread instead).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liqdesk.core.aggregate import AggregateModel, AggregateUpdate
from liqdesk.core.series import Candles, timeframe_ms
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
from liqdesk.feeds.store import MarketStore, open_store
from liqdesk.feeds.venues import venue_class
from liqdesk.feeds.venues.base import OI_PERIODS_MS, LiquidationRecord

log = logging.getLogger(__name__)


def candle_row(e: CandleUpdate, taker_share: float) -> tuple[Candles, float]:
    """A feed's bar as a one-row Candles, and the taker share to carry on. A closed bar brings its quote and
    taker volume (where the venue has them); a live revision has OHLCV only: its VWAP falls back to the typical
    price and its taker split is the last closed bar's share until the closed bar replaces it."""
    interval = timeframe_ms(e.timeframe)
    if e.closed:
        quote = np.nan if e.quote_volume is None else e.quote_volume
        taker = np.nan if e.taker_buy_volume is None else e.taker_buy_volume
        if e.taker_buy_volume is not None and e.volume > 0:
            taker_share = e.taker_buy_volume / e.volume
    else:
        quote = np.nan
        taker = e.volume * taker_share if math.isfinite(taker_share) else np.nan
    row = Candles(
        np.array([e.open_time], np.int64), np.array([e.open]), np.array([e.high]), np.array([e.low]),
        np.array([e.close]), np.array([e.volume]), interval,
        quote_volume=np.array([quote]), taker_buy_volume=np.array([taker]),
    )  # fmt: skip
    return row, taker_share


def oi_for_close(
    latest: tuple[int, float] | None, close_ms: int, exchange: str, timeframe: str
) -> float | None:
    """The open interest to use at a bar's close: the newest value seen, unless it is too old to say anything
    about the bar (two of the venue's periods and one bar; then None and the volume model covers the bar)."""
    if latest is None:
        return None
    t, usd = latest
    period = venue_class(exchange).oi_period(timeframe)
    max_age = 2 * OI_PERIODS_MS[period] + timeframe_ms(timeframe)
    return usd if close_ms - t <= max_age else None


@dataclass
class VenueLiveState:
    """What one venue's feed has brought so far."""

    venue: str
    symbol: str
    bars: int = 0  # bars applied to its engine (revisions included)
    closed: int = 0  # closed bars applied
    last_open_ms: int | None = None
    oi: tuple[int, float] | None = None  # newest open interest seen (time, USD)
    taker_share: float = math.nan
    tape: list[LiquidationRecord] = field(default_factory=list)
    status: str = ""
    level: str = "info"
    apply_ms: list[float] = field(default_factory=list)  # engine + aggregate update per bar, milliseconds

    def line(self) -> str:
        when = (
            "no bar yet"
            if self.last_open_ms is None
            else time.strftime("%H:%M", time.gmtime(self.last_open_ms / 1000))
        )
        tape = f"{len(self.tape)} liquidations" if self.tape else "no liquidations yet"
        status = f" · {self.status}" if self.status and self.level != "info" else ""
        return f"{self.venue}: last bar {when} UTC, {self.closed} closed, {tape}{status}"


class LiveAggregate:
    """One LiveFeed per venue of an AggregateModel, their bars applied to the venues' engines.

    `symbols`: each venue's symbol; `ccxt_options`: each venue's ccxt options; `cache`: shared by the feeds
    (default: the user's cache, opened and closed here); `clock`: epoch-ms now for every feed (tests: the fakes'
    clock); `on_update`: called after each venue bar with what the aggregate's newest column became;
    `on_event`: every feed event with its venue; `extra_streams`: streams a venue's feed also subscribes to (the
    position sampler's trades on Hyperliquid); `apply(venue, row, oi)`: what applies a bar (default: the
    model's `apply_bar`, here in the loop's thread; the window hands bars to the thread its engines live in,
    returns None and reports the updates itself; then `model` may be None: the venues are the symbols' keys)."""

    def __init__(
        self,
        model: AggregateModel | None,
        symbols: Mapping[str, str],
        timeframe: str,
        *,
        ccxt_options: Mapping[str, dict[str, Any]] | None = None,
        cache: MarketStore | None = None,
        settings: LiveSettings | None = None,
        clock: Callable[[], int] | None = None,
        on_update: Callable[[AggregateUpdate], None] | None = None,
        on_event: Callable[[str, FeedEvent], None] | None = None,
        apply: Callable[[str, Candles, float | None], AggregateUpdate | None] | None = None,
        extra_streams: Mapping[str, Sequence[StreamKind]] | None = None,
    ) -> None:
        names = model.names if model is not None else tuple(symbols)
        missing = [n for n in names if n not in symbols]
        if missing:
            raise ValueError(f"no symbol for {', '.join(missing)}")
        if model is None and apply is None:
            raise ValueError("without a model, give `apply` (what takes the bars)")
        self.model = model
        self.timeframe = timeframe
        self.interval_ms = timeframe_ms(timeframe)
        self.ccxt_options = dict(ccxt_options or {})
        self.settings = settings or LiveSettings()
        self.clock = clock
        self.on_update = on_update
        self.on_event = on_event
        self._handed_off = (
            apply is not None
        )  # bars go elsewhere: None from `apply` does not mean an older bar
        if apply is None:
            assert model is not None
            apply = model.apply_bar
        self.apply = apply
        self.state = {n: VenueLiveState(n, symbols[n]) for n in names}
        self._cache = cache
        self._own_cache = cache is None
        self.feeds: dict[str, LiveFeed] = {}
        self.extra_streams = {k: tuple(v) for k, v in (extra_streams or {}).items()}

    async def start(self) -> None:
        """Open the cache and start every venue's feed (returns at once; each feed reconnects on its own)."""
        if self.feeds:
            return
        if self._cache is None:
            self._cache = open_store()
        for name, st in self.state.items():
            feed = LiveFeed(
                name, st.symbol, self.timeframe, ccxt_options=self.ccxt_options.get(name), cache=self._cache,
                settings=self.settings, clock=self.clock, on_event=self._handler(name),
                streams=tuple(dict.fromkeys((*ALL_STREAMS, *self.extra_streams.get(name, ())))),
            )  # fmt: skip
            self.feeds[name] = feed
            await feed.start()

    async def close(self) -> None:
        """Close every feed (their tasks and exchanges), then the cache if it was opened here."""
        for feed in self.feeds.values():
            await feed.close()
        if self._cache is not None and self._own_cache:
            self._cache.close()
            self._cache = None

    async def __aenter__(self) -> LiveAggregate:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def status_lines(self) -> list[str]:
        return [st.line() for st in self.state.values()]

    # -- events -----------------------------------------------------------------------------------------------
    def _handler(self, venue: str) -> Callable[[FeedEvent], None]:
        def handle(e: FeedEvent) -> None:
            self._on_event(venue, e)

        return handle

    def _on_event(self, venue: str, e: FeedEvent) -> None:
        st = self.state[venue]
        if isinstance(e, CandleUpdate):
            if e.symbol == st.symbol and e.timeframe == self.timeframe:
                self._apply(st, e)
        elif isinstance(e, OpenInterestUpdate):
            if e.symbol == st.symbol and (st.oi is None or e.time >= st.oi[0]):
                st.oi = (e.time, e.usd)
        elif isinstance(e, LiquidationEvent):
            if e.record.symbol == st.symbol:
                st.tape.append(e.record)
        elif isinstance(e, StatusEvent):
            st.status, st.level = (f"{e.stream}: {e.text}" if e.stream else e.text), e.level
        if self.on_event is not None:
            self.on_event(venue, e)

    def _apply(self, st: VenueLiveState, e: CandleUpdate) -> None:
        row, st.taker_share = candle_row(e, st.taker_share)
        t0 = time.perf_counter()
        try:
            update = self.apply(st.venue, row, oi_for_close(st.oi, e.open_time + self.interval_ms, st.venue,
                                                            self.timeframe))  # fmt: skip
        except ValueError as exc:  # a bar the engine cannot take: said, never silently dropped
            st.status, st.level = f"bar {e.open_time} not applied: {exc}", "warning"
            log.warning("%s: bar %s not applied: %s", st.venue, e.open_time, exc)
            return
        if update is None and not self._handed_off:
            return  # older than the venue's newest bar (a late revision)
        st.apply_ms.append((time.perf_counter() - t0) * 1000)
        del st.apply_ms[:-1000]
        st.bars += 1
        st.closed += int(e.closed)
        st.last_open_ms = e.open_time
        if self.on_update is not None and update is not None:
            self.on_update(update)

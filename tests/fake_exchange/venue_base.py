"""What the fake Bybit, OKX and Hyperliquid servers share beyond ``loopback.LoopbackServer``: a virtual clock over
real 1h bars and faults answered with the venue's own error body.

Each venue module adds its own routes, wire formats and error bodies. Faults work like the fake Binance's:
``fail_next(key, status)`` answers the next requests for ``key`` (a REST path, or a Hyperliquid info type) with
that HTTP status and the venue's own error body, ``delay_next`` makes them slow, ``drop_websockets`` cuts every
connection without a close frame, ``silence_websockets`` leaves them open but mute, ``send_raw`` pushes any text
(malformed or truncated frames) to a topic's subscribers.

The clock: bars with ``open_time + interval <= now_ms`` are closed, the bar containing ``now_ms`` is live (served
as a partial revision: its open price as high/low/close and a share of its volume); ``advance()`` closes it,
pushes the final bar and revisions of the next one. ``wall_clock=True`` moves every served series by whole bars
so that the live bar is the real current hour (data values untouched).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from .loopback import Fault, LoopbackServer
from .venue_data import Bars, BarValues, bar_values


class FakeVenue(LoopbackServer):
    """Subclasses implement ``add_routes``, ``error_fault``, ``on_ws_text`` and ``push_bar``."""

    name = "venue"

    def __init__(
        self,
        bars: Bars,
        *,
        live_index: int | None = None,
        ping_interval: float | None = None,
        wall_clock: bool = False,
    ) -> None:
        super().__init__(ping_interval=ping_interval)
        self.interval_ms = bars.interval_ms
        # by default the last 48 bars are "future": advance() pushes them live
        self.live_index = len(bars) - 48 if live_index is None else live_index
        # wall_clock: every series moves by whole bars so that the live bar is the real current one (for clients
        # that read the system clock, such as the command line); the clock itself still moves by advance()
        self.time_shift_ms = 0
        if wall_clock:
            real = time.time_ns() // 1_000_000
            self.time_shift_ms = real - real % self.interval_ms - int(bars.open_time[self.live_index])
            bars = replace(bars, open_time=bars.open_time + self.time_shift_ms)
        self.bars = bars
        self.now_ms = int(bars.open_time[self.live_index]) + self.interval_ms // 2

    def ccxt_options(self) -> dict[str, Any]:
        """ccxt constructor options pointing the venue's ccxt exchange at this server."""
        raise NotImplementedError

    # -- the clock and the bars ------------------------------------------------------------------------------
    def closed_count(self) -> int:
        """Bars closed at ``now_ms`` (the index of the live bar)."""
        return int(np.searchsorted(self.bars.open_time, self.now_ms - self.interval_ms, "right"))

    def available_count(self) -> int:
        """Closed bars plus the live one."""
        n = self.closed_count()
        return n + (1 if n < len(self.bars) else 0)

    def bar(self, i: int, *, fraction: float = 0.5) -> BarValues:
        """Bar ``i`` as served now: final if closed, a partial revision if live."""
        return bar_values(self.bars, i, final=i < self.closed_count(), fraction=fraction)

    def index_range(self, start: int | None, end: int | None) -> tuple[int, int]:
        """Indices of the available bars with start <= open_time <= end (either bound optional)."""
        t = self.bars.open_time
        lo = 0 if start is None else int(np.searchsorted(t, start, "left"))
        hi = (
            self.available_count()
            if end is None
            else min(self.available_count(), int(np.searchsorted(t, end, "right")))
        )
        return lo, max(lo, hi)

    def served_closed(self, start: int, end: int) -> list[BarValues]:
        """Closed bars with start <= open_time < end (what a client should end up with)."""
        lo = int(np.searchsorted(self.bars.open_time, start, "left"))
        hi = min(self.closed_count(), int(np.searchsorted(self.bars.open_time, end, "left")))
        return [bar_values(self.bars, i, final=True) for i in range(lo, hi)]

    async def advance(self, bars: int = 1, *, revisions: int = 1) -> None:
        """Close the live bar (pushed final), move the clock into the next bar and push ``revisions`` partial
        revisions of it. Repeated ``bars`` times."""
        for _ in range(bars):
            i = self.closed_count()
            if i >= len(self.bars):
                return
            self.now_ms = int(self.bars.open_time[i]) + self.interval_ms
            await self.push_bar(i, final=True)
            if i + 1 < len(self.bars):
                self.now_ms = int(self.bars.open_time[i + 1]) + self.interval_ms // 2
                for r in range(revisions):
                    await self.push_bar(i + 1, final=False, fraction=(r + 1) / (revisions + 1))

    async def push_bar(
        self, index: int, *, final: bool, fraction: float = 0.5, market: str | None = None
    ) -> int:
        """Push bar ``index`` of ``market`` (a venue id such as BTCUSDT; default the main market)."""
        raise NotImplementedError

    def market_ids(self) -> list[str]:
        """The venue ids of every market served with bars (the main one first)."""
        return [next(iter(self.coin_bars))] if getattr(self, "coin_bars", None) else []

    async def advance_all(self, bars: int = 1, *, revisions: int = 1) -> None:
        """``advance`` for every market served with bars (``coins=`` in the venue's constructor)."""
        for _ in range(bars):
            i = self.closed_count()
            if i >= len(self.bars):
                return
            self.now_ms = int(self.bars.open_time[i]) + self.interval_ms
            for m in self.market_ids():
                await self.push_bar(i, final=True, market=m)
            if i + 1 < len(self.bars):
                self.now_ms = int(self.bars.open_time[i + 1]) + self.interval_ms // 2
                for r in range(revisions):
                    for m in self.market_ids():
                        await self.push_bar(i + 1, final=False, fraction=(r + 1) / (revisions + 1), market=m)

    # -- faults -------------------------------------------------------------------------------------------------
    def error_fault(self, status: int) -> Fault:
        """The venue's answer for an HTTP error status."""
        raise NotImplementedError

    def fail_next(self, key: str, status: int = 429, count: int = 1, *, body: str | None = None) -> None:
        """The next ``count`` requests for ``key`` answer ``status`` with the venue's error body (or ``body``)."""
        f = self.error_fault(status)
        if body is not None:
            f = Fault(status, body, f.content_type, f.headers)
        self.add_faults(key, f, count)

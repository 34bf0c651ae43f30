"""What the fake Bybit, OKX and Hyperliquid servers share beyond the loopback server (``loopback``) and the bar clock
(``clock``): real 1h bars (and scaled copies for more coins) and faults answered with the venue's own error body.

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
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .clock import BarClock
from .loopback import Fault, LoopbackServer
from .venue_data import Bars, BarValues, bar_values, coin_scale, scaled_bars


class FakeVenue(LoopbackServer, BarClock):
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
        self.coin_bars: dict[str, Bars] = {}  # venue id → the bars served (serve_markets)

    def ccxt_options(self) -> dict[str, Any]:
        """ccxt constructor options pointing the venue's ccxt exchange at this server."""
        raise NotImplementedError

    # -- the clock and the bars ------------------------------------------------------------------------------
    def bar_open_times(self) -> np.ndarray:
        return self.bars.open_time

    def bar(self, i: int, *, fraction: float = 0.5) -> BarValues:
        """Bar ``i`` as served now: final if closed, a partial revision if live."""
        return bar_values(self.bars, i, final=i < self.closed_count(), fraction=fraction)

    def served_closed(self, start: int, end: int) -> list[BarValues]:
        """Closed bars with start <= open_time < end (what a client should end up with)."""
        return [bar_values(self.bars, i, final=True) for i in self.closed_range(start, end)]

    def serve_markets(self, main: str, more: Sequence[tuple[str, str]]) -> None:
        """Serve the bars as market ``main`` and, per (venue id, coin) of ``more``, BTC's bars with prices scaled
        (venue_data.coin_scale)."""
        self.coin_bars = {main: self.bars}
        for market, coin in more:
            if market not in self.coin_bars:
                self.coin_bars[market] = scaled_bars(self.bars, coin_scale(coin))

    def market_ids(self) -> list[str]:
        return list(self.coin_bars)

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

"""The virtual clock every fake exchange keeps over its bars.

Bars with ``open_time + interval <= now_ms`` are closed, the bar containing ``now_ms`` is live (served as a
partial revision); ``advance()`` closes it (pushed final), moves the clock into the next bar and pushes partial
revisions of that one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class BarClock:
    """Subclasses set ``interval_ms`` and ``now_ms`` and implement ``bar_open_times``, ``push_bar`` and
    ``market_ids``."""

    interval_ms: int
    now_ms: int

    def bar_open_times(self) -> np.ndarray:
        """The open times of the bars served (ascending)."""
        raise NotImplementedError

    async def push_bar(
        self, index: int, *, final: bool, fraction: float = 0.5, market: str | None = None
    ) -> int:
        """Push bar ``index`` of ``market`` (a venue id such as BTCUSDT; default the main market)."""
        raise NotImplementedError

    def market_ids(self) -> list[str]:
        """The venue ids of every market served with bars (the main one first)."""
        raise NotImplementedError

    def closed_count(self) -> int:
        """Bars closed at ``now_ms`` (the index of the live bar)."""
        return int(np.searchsorted(self.bar_open_times(), self.now_ms - self.interval_ms, "right"))

    def available_count(self) -> int:
        """Closed bars plus the live one."""
        n = self.closed_count()
        return n + (1 if n < len(self.bar_open_times()) else 0)

    def index_range(self, start: int | None, end: int | None) -> tuple[int, int]:
        """Indices of the available bars with start <= open_time <= end (either bound optional)."""
        t = self.bar_open_times()
        lo = 0 if start is None else int(np.searchsorted(t, start, "left"))
        hi = (
            self.available_count()
            if end is None
            else min(self.available_count(), int(np.searchsorted(t, end, "right")))
        )
        return lo, max(lo, hi)

    def closed_range(self, start: int, end: int) -> range:
        """Indices of the closed bars with start <= open_time < end (what a client should end up with)."""
        t = self.bar_open_times()
        lo = int(np.searchsorted(t, start, "left"))
        hi = min(self.closed_count(), int(np.searchsorted(t, end, "left")))
        return range(lo, hi)

    async def advance(self, bars: int = 1, *, revisions: int = 1) -> None:
        """Close the live bar of the main market (pushed final), move the clock into the next bar and push
        ``revisions`` partial revisions of it. Repeated ``bars`` times."""
        await self._advance(bars, revisions, [None])

    async def advance_all(self, bars: int = 1, *, revisions: int = 1) -> None:
        """``advance`` for every market served with bars (``coins=`` in the fake's constructor)."""
        await self._advance(bars, revisions, self.market_ids())

    async def _advance(self, bars: int, revisions: int, markets: Sequence[str | None]) -> None:
        t = self.bar_open_times()
        for _ in range(bars):
            i = self.closed_count()
            if i >= len(t):
                return
            self.now_ms = int(t[i]) + self.interval_ms
            for m in markets:
                await self.push_bar(i, final=True, market=m)
            if i + 1 < len(t):
                self.now_ms = int(t[i + 1]) + self.interval_ms // 2
                for r in range(revisions):
                    for m in markets:
                        await self.push_bar(i + 1, final=False, fraction=(r + 1) / (revisions + 1), market=m)

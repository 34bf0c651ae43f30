"""Bar replay: the model as it stood at a past instant, stepped bar by bar, never looking ahead.

At replay time t the chart may know only what was known at t: the bars closed by t, the open
interest reported by t, the real liquidations before t. `cut_at` gives those inputs, and a
`ReplaySession` keeps an engine on them while the replay moves:

- forward one bar: `LiquidationEngine.append_bar` (the live update; well under a millisecond);
- back one bar or a jump back: `LiquidationEngine.truncate` (the state at any earlier bar is
  still in the arrays: one pass over the levels, about a millisecond for a year of 5-minute bars);
- a longer jump forward: a rebuild on the bars up to there, once appending the bars one by one
  would cost more (`APPEND_VS_REBUILD`; measured in tests/benchmarks/replay.py).

Open interest in a replay is the value known at each bar's close (`open_interest_known_at_close`):
the newest snapshot at or before the close. The plain model interpolates between the snapshots
around a close, which for bars that close between two snapshots (1-minute bars with 5-minute open
interest) uses the later one, a value from the future at that bar. Where every close has its own
snapshot (5-minute bars and up, with Binance's 5-minute history) both give the same numbers.

The session holds arrays only (no Qt, no clock of its own): a window drives it (`start`, `step`,
`step_back`, `jump`, and `PlayClock` for play at N bars per second on the window's timer) and
draws what it exposes (`candles`, `liquidations`, `engine`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liqdesk.core.backend import Backend
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.params import ModelParams
from liqdesk.core.series import Candles, Liquidations, OpenInterest

# One append costs about as much as a full build of this many bars (tests/benchmarks/replay.py: one
# append ~0.08 ms, a build of 53,000 bars ~50 ms): a forward jump of k bars over a history of n
# rebuilds when k × APPEND_VS_REBUILD > n, and always appends up to MIN_APPENDS bars.
APPEND_VS_REBUILD = 70
MIN_APPENDS = 8


@dataclass(frozen=True)
class CausalInputs:
    """What was known at `at_ms`."""

    at_ms: int
    candles: Candles  # bars closed by at_ms
    open_interest: OpenInterest | None  # per bar close, the value known then (NaN: none recent enough)
    liquidations: Liquidations  # events before at_ms


def bars_closed_by(candles: Candles, at_ms: int) -> int:
    """How many bars had closed at `at_ms` (a bar still open then is not one of them)."""
    return int(np.searchsorted(candles.close_time, at_ms, "right"))


def open_interest_known_at_close(
    candles: Candles, oi: OpenInterest | None, max_gap_bars: float
) -> OpenInterest | None:
    """Open interest at each bar's close as it was known then, one entry per bar (NaN where the
    newest snapshot at or before the close is older than `max_gap_bars` × the larger of the bar
    interval and that snapshot's spacing to the one before it). None when there is no open
    interest at all. Every bar has its own entry, so the model reads each close's value exactly
    and never interpolates toward a later snapshot."""
    if oi is None or len(oi) < 2:
        return None
    ts, v = oi.time, oi.usd
    close = candles.close_time
    last = np.searchsorted(ts, close, "right") - 1  # newest snapshot at or before each close
    have = last >= 0
    li = np.clip(last, 0, len(ts) - 1)
    spacing = np.where(li > 0, ts[li] - ts[np.maximum(li - 1, 0)], 0)
    tolerance = max_gap_bars * np.maximum(spacing, candles.interval_ms)
    known = have & (close - ts[li] <= tolerance)
    return OpenInterest(close.copy(), np.where(known, v[li], np.nan))


def cut_at(
    candles: Candles,
    open_interest: OpenInterest | None,
    liquidations: Liquidations,
    at_ms: int,
    max_gap_bars: float,
) -> CausalInputs:
    """The inputs as they stood at `at_ms`: the bars closed by then, the open interest known at
    each of their closes, the liquidations before it."""
    n = bars_closed_by(candles, at_ms)
    cut = candles.take(slice(0, n))
    oi = open_interest.between(None, at_ms + 1) if open_interest is not None else None
    return CausalInputs(
        at_ms=at_ms,
        candles=cut,
        open_interest=open_interest_known_at_close(cut, oi, max_gap_bars),
        liquidations=liquidations.between(None, at_ms),
    )


@dataclass(frozen=True)
class ReplayPosition:
    """Where a replay stands: the first `bars` bars are known, the last one closed at `time_ms`."""

    bars: int
    time_ms: int  # close of the newest known bar: the replay's instant
    price: float  # its close
    at_end: bool  # no later bar in the loaded history (the replay has caught up with it)


class ReplaySession:
    """An engine on the bars up to the replay's instant, moved forward, back and by jumps.

    The session's engine is its own (the window's live engine stays as it is). After every move
    `engine` equals `LiquidationEngine.build` on `cut_at(...)` at the new instant (tested).
    """

    def __init__(
        self,
        candles: Candles,
        open_interest: OpenInterest | None,
        liquidations: Liquidations | None,
        params: ModelParams,
        *,
        backend: Backend | None = None,
        append_vs_rebuild: int = APPEND_VS_REBUILD,
    ) -> None:
        if len(candles) < 2:
            raise ValueError("a replay needs at least two bars")
        self.history = candles
        self.params = params
        self.backend = backend
        self.append_vs_rebuild = append_vs_rebuild
        known = open_interest_known_at_close(candles, open_interest, params.oi_max_gap_bars)
        self._has_oi = known is not None
        self._oi_close = known.usd if known is not None else np.full(len(candles), np.nan)
        liq = liquidations if liquidations is not None else Liquidations.empty()
        self._liquidations = liq.sorted()
        self.engine: LiquidationEngine | None = None
        self.rebuilds = 0  # full builds so far (what jumps cost)

    # ------------------------------------------------------------------ moves

    @property
    def bars(self) -> int:
        return 0 if self.engine is None else self.engine.n_bars

    def start(self, at_ms: int) -> ReplayPosition:
        """Begin (or move) at the instant `at_ms`: the bars closed by then (at least one)."""
        return self.seek(max(bars_closed_by(self.history, at_ms), 1))

    def seek(self, bars: int) -> ReplayPosition:
        """Show the first `bars` bars (clipped to 1..all loaded)."""
        bars = int(np.clip(bars, 1, len(self.history)))
        eng = self.engine
        ahead = bars - (0 if eng is None else eng.n_bars)
        if eng is None or (ahead > MIN_APPENDS and ahead * self.append_vs_rebuild > bars):
            self._rebuild(bars)
        elif bars < eng.n_bars:
            eng.truncate(bars)
        else:
            for j in range(eng.n_bars, bars):
                self._append(j)
        return self.position()

    def step(self, bars: int = 1) -> ReplayPosition:
        """Forward by `bars` bars (not past the newest loaded one)."""
        return self.seek(self.bars + bars)

    def step_back(self, bars: int = 1) -> ReplayPosition:
        """Back by `bars` bars (not before the first one)."""
        return self.seek(self.bars - bars)

    def jump(self, at_ms: int) -> ReplayPosition:
        """To the instant `at_ms`, forward or back."""
        return self.start(at_ms)

    def extend(self, candles: Candles, open_interest: OpenInterest | None = None) -> None:
        """Newer history (live bars that arrived while replaying; shown once the replay gets there):
        the bars of `candles` after the loaded ones, with `open_interest` (the snapshots known so far;
        None: none for the new bars). Bars already loaded are never changed."""
        new = candles.between(int(self.history.open_time[-1]) + 1, None)
        if not len(new):
            return
        self.history = self.history.concat(new)
        oi_new = np.full(len(new), np.nan)
        known = open_interest_known_at_close(new, open_interest, self.params.oi_max_gap_bars)
        if known is not None:
            oi_new, self._has_oi = known.usd, True
        self._oi_close = np.r_[self._oi_close, oi_new]

    def add_liquidations(self, more: Liquidations) -> None:
        self._liquidations = self._liquidations.concat(more).sorted()

    def _rebuild(self, bars: int) -> None:
        self.engine = LiquidationEngine.build(
            self.history.take(slice(0, bars)),
            params=self.params,
            oi_close=self._oi_close[:bars],
            backend=self.backend,
        )
        self.rebuilds += 1

    def _append(self, j: int) -> None:
        assert self.engine is not None
        oi = float(self._oi_close[j])
        self.engine.append_bar(self.history.take(slice(j, j + 1)), oi if oi == oi else None)

    # ------------------------------------------------------------------ what the chart shows

    def position(self) -> ReplayPosition:
        n = self.bars
        if n == 0:
            raise ValueError("the replay has not started")
        return ReplayPosition(
            bars=n,
            time_ms=int(self.history.close_time[n - 1]),
            price=float(self.history.close[n - 1]),
            at_end=n == len(self.history),
        )

    @property
    def time_ms(self) -> int:
        return self.position().time_ms

    def inputs(self) -> CausalInputs:
        """The inputs as they stood at the replay's instant (what a fresh build would use)."""
        n = self.bars
        closes = self.history.close_time[:n]
        oi = OpenInterest(closes, self._oi_close[:n]) if self._has_oi else None
        return CausalInputs(
            at_ms=self.time_ms,
            candles=self.history.take(slice(0, n)),
            open_interest=oi,
            liquidations=self._liquidations.between(None, self.time_ms),
        )

    @property
    def candles(self) -> Candles:
        """The bars known at the replay's instant."""
        return self.history.take(slice(0, self.bars))

    @property
    def liquidations(self) -> Liquidations:
        """The real liquidations before the replay's instant."""
        t = self.time_ms
        return self._liquidations.take(slice(0, int(np.searchsorted(self._liquidations.time, t, "left"))))


@dataclass
class PlayClock:
    """Play at `speed` bars per second on a timer the window owns: each tick asks how many bars
    are due, so a late tick catches up instead of slowing the replay down, and a jam (a busy
    machine) never queues more than `max_burst` bars at once."""

    speed: float  # bars per second
    started_s: float = 0.0
    played: int = 0
    max_burst: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.speed <= 1000:
            raise ValueError("replay speed must be in (0, 1000] bars per second")

    def start(self, now_s: float) -> None:
        self.started_s, self.played = now_s, 0

    def due(self, now_s: float) -> int:
        """Bars to step now; counts them as played."""
        total = int((now_s - self.started_s) * self.speed + 1e-9)
        n = max(total - self.played, 0)
        if n > self.max_burst:  # fell behind: drop the backlog rather than racing through it
            self.played = total - self.max_burst
            n = self.max_burst
        self.played += n
        return n

    def interval_ms(self) -> int:
        """A timer period that asks about once per bar (at most about 60 times a second)."""
        return max(int(1000.0 / self.speed), 16)

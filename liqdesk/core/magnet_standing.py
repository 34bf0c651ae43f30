"""The measured standing of a market's magnets, from its own candles: "hit 3 of last 10".

* **Magnets as the chart shows them.** At clock-aligned instants (`every_ms`) the liquidation map at the
  last bar closed by then (liqmap.liquidation_map) is cut into magnets by liqmap.find_magnets, the
  largest `per_side` clusters on each side of price, over the range the calibration shows: the
  lookback's low–high widened to at least spot ± `range_pct` %, in `n_bins` cells.
* **One magnet, one count.** A cluster shown at several instants is one magnet while it stays on its
  side and its centre moves by less than its width (the alert's rule, liqdesk.core.alerts); it is dated
  by the instant it was first shown.
* **Hit** = price reached its centre (the mark or trade wick that sweeps levels: the bar's sweep low for
  a long cluster below, the sweep high for a short cluster above) within `horizon_ms` of its first
  showing. A magnet is *resolved* once it was hit or its horizon has passed in the data; the standing
  counts the last `last_n` resolved magnets, newest first in time of showing.
* **Model check.** The calibration's magnet test (price reached the largest cluster within reach vs the
  same distance on a random side, block-bootstrap interval) on the same candles: "better", "worse",
  "random" (the interval holds 0) or "unscored" (too few snapshots to say).

Nothing here needs a liquidation tape: only bars. "unscored" means no magnet resolved yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from liqdesk.core.calibration import CalibrationConfig, magnet_test
from liqdesk.core.density_snapshots import density_snapshots, snapshot_times
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import PriceBins
from liqdesk.core.intervals import NAN, Estimate
from liqdesk.core.liqmap import Magnet, find_magnets, liquidation_map
from liqdesk.core.series import LONG

HOUR_MS = 3_600_000
CHECK_BETTER = "better"
CHECK_WORSE = "worse"
CHECK_RANDOM = "random"
UNSCORED = "unscored"


@dataclass(frozen=True)
class StandingConfig:
    horizon_ms: int = 24 * HOUR_MS
    every_ms: int = HOUR_MS  # instants the map is read at
    span_ms: int = 14 * 24 * HOUR_MS  # how far back magnets are looked for
    last_n: int = 10
    per_side: int = 3  # as many as the chart labels on each side
    n_bins: int = 400
    range_pct: float = 5.0
    lookback_ms: int = 24 * HOUR_MS
    check_span_ms: int = 14 * 24 * HOUR_MS  # candles the model check scores (the latest ones)

    def __post_init__(self) -> None:
        if min(self.horizon_ms, self.every_ms, self.span_ms, self.lookback_ms, self.check_span_ms) <= 0:
            raise ValueError("horizon, spacing and spans must be positive")
        if self.last_n < 1 or self.per_side < 1 or self.n_bins < 10 or self.range_pct <= 0:
            raise ValueError("need last_n ≥ 1, per_side ≥ 1, at least 10 bins and a positive range")


@dataclass(frozen=True)
class MagnetOutcome:
    shown_ms: int  # first instant it was shown
    side: int  # LONG (a long cluster below price) / SHORT
    price: float  # its centre when first shown
    distance_pct: float  # from price then
    usd: float
    hit_ms: int | None  # open time of the bar that reached it; None = not within the horizon


@dataclass(frozen=True)
class MagnetCheck:
    verdict: str  # CHECK_BETTER / CHECK_WORSE / CHECK_RANDOM / UNSCORED
    difference: Estimate  # touched − same distance on a random side (share, with its interval)
    n_snapshots: int
    n_blocks: int


@dataclass(frozen=True)
class MagnetStanding:
    outcomes: tuple[MagnetOutcome, ...]  # the last resolved magnets, oldest first
    horizon_ms: int
    check: MagnetCheck

    @property
    def n(self) -> int:
        return len(self.outcomes)

    @property
    def hits(self) -> int:
        return sum(o.hit_ms is not None for o in self.outcomes)

    @property
    def scored(self) -> bool:
        return self.n > 0

    @property
    def label(self) -> str:
        """'hit 3 of last 10' (fewer when fewer resolved), or 'unscored'."""
        if not self.scored:
            return UNSCORED
        return f"hit {self.hits} of last {self.n}"

    @property
    def near_random(self) -> bool:
        """The model check cannot tell the largest cluster from a random side on this market."""
        return self.check.verdict == CHECK_RANDOM


def standing_bins(engine: LiquidationEngine, bar: int, config: StandingConfig) -> PriceBins:
    """The range a snapshot shows at `bar`: the lookback's low–high, at least spot ± range_pct %."""
    n_lb = max(1, config.lookback_ms // engine.interval_ms)
    a = max(0, bar - n_lb + 1)
    spot = float(engine.close[bar])
    r = config.range_pct / 100.0
    lo = min(float(engine.bar_column("low")[a : bar + 1].min()), spot * (1 - r))
    hi = max(float(engine.bar_column("high")[a : bar + 1].max()), spot * (1 + r))
    return PriceBins(max(lo, spot * 1e-6), hi, config.n_bins)


@dataclass
class _Tracked:
    outcome: MagnetOutcome
    price: float  # latest centre
    width: float
    last_shown: int


def magnet_outcomes(engine: LiquidationEngine, config: StandingConfig) -> list[MagnetOutcome]:
    """Every distinct magnet shown in the last span, with whether price reached it within the horizon
    (unresolved ones, whose horizon runs past the data without a hit, are left out)."""
    if engine.n_bars == 0:
        return []
    end = int(engine.open_time[-1]) + engine.interval_ms
    close_time = engine.open_time + engine.interval_ms
    first = max(int(engine.open_time[0]) + engine.interval_ms, end - config.span_ms)
    t0 = -(-first // config.every_ms) * config.every_ms
    times = np.arange(t0, end + 1, config.every_ms, dtype=np.int64)
    bars = np.unique(np.searchsorted(close_time, times, "right") - 1)
    bars = bars[bars >= 0]
    low, high = engine.sweep_low, engine.sweep_high
    open_time = engine.open_time
    tracked: list[_Tracked] = []
    for b in bars.tolist():
        mags = find_magnets(liquidation_map(engine, standing_bins(engine, b, config), b), config.per_side)
        shown = int(close_time[b])
        # a magnet already reached, or not shown for a horizon, is done: a cluster there later is a new one
        active = [t for t in tracked if _active(t, shown, config.horizon_ms)]
        for m in mags:
            width = max(m.high - m.low, m.price * 1e-4)
            same = _match(active, m)
            if same is not None:
                same.price, same.width, same.last_shown = m.price, width, shown
                continue
            t = _Tracked(
                _outcome(m, shown, b, low, high, open_time, config.horizon_ms), m.price, width, shown
            )
            tracked.append(t)
            active.append(t)
    return [
        t.outcome
        for t in tracked
        if t.outcome.hit_ms is not None or t.outcome.shown_ms + config.horizon_ms <= end
    ]


def _active(t: _Tracked, now: int, horizon_ms: int) -> bool:
    hit = t.outcome.hit_ms
    return (hit is None or hit >= now) and now - t.last_shown < horizon_ms


def _match(tracked: list[_Tracked], m: Magnet) -> _Tracked | None:
    best, gap_best = None, math.inf
    for t in tracked:
        if t.outcome.side != m.side:
            continue
        gap = abs(t.price - m.price)
        if gap < max(t.width, m.high - m.low) and gap < gap_best:
            best, gap_best = t, gap
    return best


def _outcome(
    m: Magnet, shown: int, bar: int, low: np.ndarray, high: np.ndarray, open_time: np.ndarray, horizon_ms: int
) -> MagnetOutcome:
    stop = int(np.searchsorted(open_time, shown + horizon_ms, "left"))
    ahead = slice(bar + 1, stop)
    reached = low[ahead] <= m.price if m.side == LONG else high[ahead] >= m.price
    hit = np.flatnonzero(reached)
    return MagnetOutcome(
        shown_ms=shown, side=m.side, price=m.price, distance_pct=m.distance_pct, usd=m.usd,
        hit_ms=int(open_time[bar + 1 + int(hit[0])]) if len(hit) else None,
    )  # fmt: skip


def magnet_check(engine: LiquidationEngine, config: StandingConfig, n_boot: int = 1000) -> MagnetCheck:
    """The calibration's magnet test on the latest `check_span_ms` of candles, at the standing's horizon."""
    cal = CalibrationConfig(horizon_ms=config.horizon_ms, lookback_ms=config.lookback_ms, n_boot=n_boot,
                            range_pct=config.range_pct)  # fmt: skip
    if engine.n_bars == 0:
        return MagnetCheck(UNSCORED, NAN, 0, 0)
    end = int(engine.open_time[-1]) + engine.interval_ms
    times = snapshot_times(engine.open_time, engine.interval_ms, cal, end - config.check_span_ms)
    # only instants whose horizon lies inside the data can be scored
    times = times[times + config.horizon_ms <= end]
    if len(times) == 0:
        return MagnetCheck(UNSCORED, NAN, 0, 0)
    score = magnet_test(density_snapshots(engine, times, cal), engine.sweep_high, engine.sweep_low, cal)
    d = score.difference
    if not score.enough:
        verdict = UNSCORED
    elif d.above(0.0):
        verdict = CHECK_BETTER
    elif d.below(0.0):
        verdict = CHECK_WORSE
    else:
        verdict = CHECK_RANDOM
    return MagnetCheck(verdict, d, score.n_snapshots, score.n_blocks)


def magnet_standing(engine: LiquidationEngine, config: StandingConfig | None = None) -> MagnetStanding:
    """The last `last_n` resolved magnets and the model check, from the engine's own bars."""
    config = config or StandingConfig()
    outcomes = magnet_outcomes(engine, config)
    outcomes.sort(key=lambda o: o.shown_ms)
    return MagnetStanding(tuple(outcomes[-config.last_n :]), config.horizon_ms, magnet_check(engine, config))

"""The model's map at scoring instants: alive long/short notional per price cell, and what a trader
knew at that instant (spot, recent range, ATR, lookback mean). Nothing after the instant is used.

A snapshot at time t shows the state at the end of the last bar that closed by t, binned into
`n_bins` equal cells over the *shown range*: the lookback's low/high, widened to at least spot ±
`range_pct` %. Every density scored on a snapshot (the model's and the nulls') lives on that grid and
is averaged over ±tolerance around each price (see `smooth`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from liqdesk.core.calibration_config import CalibrationConfig
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.series import LONG, SHORT

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Snapshots:
    """The model's density at snapshot instants, on a per-snapshot price grid."""

    time_ms: I64  # (S,) snapshot instant
    bar: I64  # (S,) bar whose end state is shown (closed by time_ms)
    spot: F64  # (S,) close of that bar
    lo: F64  # (S,) shown range
    hi: F64
    long: F64  # (S, P) USD of alive long levels per cell
    short: F64  # (S, P)
    atr: F64  # (S,) mean true range over the lookback (price units)
    mean_price: F64  # (S,) mean close over the lookback
    day_lo: F64  # (S,) low and high over the range null's window (the last day by default)
    day_hi: F64
    interval_ms: int  # bar interval

    def __len__(self) -> int:
        return len(self.time_ms)

    @property
    def n_bins(self) -> int:
        return int(self.long.shape[1])

    @property
    def width(self) -> F64:
        return np.asarray((self.hi - self.lo) / self.n_bins, np.float64)

    @property
    def edges(self) -> F64:
        """(S, P + 1) cell edges."""
        return np.asarray(
            self.lo[:, None] + np.arange(self.n_bins + 1)[None, :] * self.width[:, None], np.float64
        )

    @property
    def centers(self) -> F64:
        """(S, P) cell centres."""
        return np.asarray(
            self.lo[:, None] + (np.arange(self.n_bins)[None, :] + 0.5) * self.width[:, None], np.float64
        )

    def cell(self, snap: I64, price: F64) -> I64:
        """Cell of each price in its snapshot's grid; −1 outside the range."""
        i = np.floor((price - self.lo[snap]) / self.width[snap]).astype(np.int64)
        return np.asarray(np.where((i >= 0) & (i < self.n_bins), i, -1), np.int64)

    def kernel_cells(self, tolerance_pct: float) -> I64:
        """Half-width of the ±tolerance window in cells, per snapshot."""
        return np.asarray(np.rint(tolerance_pct / 100.0 * self.spot / self.width), np.int64)


def snapshot_times(
    open_time: I64,
    interval_ms: int,
    config: CalibrationConfig,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> I64:
    """Clock-aligned instants (multiples of every_ms) in [start, end) after the warm-up and before the last
    bar's close (nothing follows that in the data), each showing the last bar closed by then."""
    if len(open_time) == 0:
        return np.zeros(0, np.int64)
    first = int(open_time[0]) + config.warmup_ms
    last = int(open_time[-1]) + interval_ms
    lo = first if start_ms is None else max(first, int(start_ms))
    hi = last if end_ms is None else min(last, int(end_ms))
    every = config.every_ms
    t0 = -(-lo // every) * every  # first multiple ≥ lo
    if t0 >= hi:
        return np.zeros(0, np.int64)
    times = np.arange(t0, hi, every, dtype=np.int64)
    # Several instants inside one gap in the candles would show the same bar: keep the first.
    bars = np.searchsorted(np.asarray(open_time) + interval_ms, times, "right") - 1
    keep = np.r_[True, np.diff(bars) > 0] & (bars >= 0)
    return np.asarray(times[keep], np.int64)


def _window_start(close_time: I64, bars: I64, span_ms: int) -> I64:
    """First bar whose close lies after (close of bars[i]) − span: the bars of the last span."""
    start = np.searchsorted(close_time, close_time[bars] - span_ms, "right")
    return np.asarray(np.minimum(start, bars), np.int64)


def density_snapshots(engine: LiquidationEngine, times_ms: I64, config: CalibrationConfig) -> Snapshots:
    """Alive long/short notional per cell at each instant, with spot, ATR, lookback mean and recent range."""
    times_ms = np.asarray(times_ms, np.int64)
    close_time = np.asarray(engine.open_time + engine.interval_ms, np.int64)
    bars = np.asarray(np.searchsorted(close_time, times_ms, "right") - 1, np.int64)
    if np.any(bars < 0):
        raise ValueError("a snapshot instant lies before the first bar closes")
    high = np.asarray(engine.bar_column("high"), np.float64)
    low = np.asarray(engine.bar_column("low"), np.float64)
    close = np.asarray(engine.close, np.float64)
    prev = np.r_[close[0], close[:-1]]
    tr = np.maximum(high, prev) - np.minimum(low, prev)
    n_lb = max(1, config.lookback_ms // engine.interval_ms)
    ctr, cclose = np.r_[0.0, np.cumsum(tr)], np.r_[0.0, np.cumsum(close)]
    day_start = _window_start(close_time, bars, config.range_null_ms)
    lv = engine.levels()
    s_n, p_n = len(bars), config.n_bins
    out = {k: np.zeros(s_n) for k in ("spot", "lo", "hi", "atr", "mean", "day_lo", "day_hi")}
    dens = np.zeros((2, s_n, p_n))
    r = config.range_pct / 100.0
    for s, b in enumerate(bars.tolist()):
        a = max(0, b - n_lb + 1)
        spot = float(close[b])
        lo = min(float(low[a : b + 1].min()), spot * (1 - r))
        hi = max(float(high[a : b + 1].max()), spot * (1 + r))
        out["spot"][s], out["lo"][s], out["hi"][s] = spot, lo, hi
        out["atr"][s] = (ctr[b + 1] - ctr[a]) / (b + 1 - a)
        out["mean"][s] = (cclose[b + 1] - cclose[a]) / (b + 1 - a)
        d = int(day_start[s])
        out["day_lo"][s], out["day_hi"][s] = float(low[d : b + 1].min()), float(high[d : b + 1].max())
        idx, usd = engine.alive_at(b)
        cell = np.floor((lv["price"][idx] - lo) / ((hi - lo) / p_n)).astype(np.int64)
        inside = (cell >= 0) & (cell < p_n)
        side = lv["side"][idx]
        for k, want in enumerate((LONG, SHORT)):
            m = inside & (side == want)
            dens[k, s] = np.bincount(cell[m], weights=usd[m], minlength=p_n)
    return Snapshots(
        time_ms=times_ms, bar=bars, spot=out["spot"], lo=out["lo"], hi=out["hi"], long=dens[0], short=dens[1],
        atr=out["atr"], mean_price=out["mean"], day_lo=out["day_lo"], day_hi=out["day_hi"],
        interval_ms=engine.interval_ms,
    )  # fmt: skip


def smooth(dens: F64, half: I64) -> F64:
    """Mean of each row over cells [i − half, i + half] (in range only); half per row."""
    s_n, p_n = dens.shape
    c = np.zeros((s_n, p_n + 1))
    np.cumsum(dens, axis=1, out=c[:, 1:])  # non-decreasing for dens ≥ 0, so window sums stay ≥ 0
    i = np.arange(p_n)[None, :]
    left = np.clip(i - half[:, None], 0, p_n)
    right = np.clip(i + half[:, None] + 1, 0, p_n)
    sums = np.take_along_axis(c, right, 1) - np.take_along_axis(c, left, 1)
    return np.asarray(np.maximum(sums, 0.0) / (right - left), np.float64)


def normalise(dens: F64) -> F64:
    """Rows scaled to sum to 1; an empty row becomes the uniform."""
    total = dens.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = dens / total
    return np.asarray(np.where(total > 0, p, 1.0 / dens.shape[1]), np.float64)

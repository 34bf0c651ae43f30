"""New positions per bar: from open-interest increases where open interest is known, from traded
volume (the "volume model") where it is not.

Every new contract is one long and one short; the leveraged speculator is usually the taker, so
the notional is split by taker share with a floor f:  r' = f + (1 − 2f)·r,
long_new = 2·ΔOI·r', short_new = 2·ΔOI·(1 − r').  The volume model uses ΔOI ≈ churn × traded
notional and, since it cannot see closes, decays levels with its own half-life.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liqdesk.core.params import ModelParams
from liqdesk.core.series import Candles, OpenInterest

MODEL_NONE = 0  # no openings (first bar: nothing to difference against)
MODEL_OI = 1
MODEL_VOLUME = 2

_HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Openings:
    long_usd: np.ndarray  # per bar
    short_usd: np.ndarray
    model: np.ndarray  # int8, MODEL_* per bar
    oi_delta: np.ndarray  # USD per bar, NaN where unknown (drives pro-rata closes)
    decay_rate: np.ndarray  # per bar, in log units (λ·Δt)


def open_interest_at_close(candles: Candles, oi: OpenInterest | None, max_gap_bars: float) -> np.ndarray:
    """Open interest at each bar's close, linearly interpolated between snapshots; NaN in gaps."""
    n = len(candles)
    out = np.full(n, np.nan)
    if oi is None or len(oi) < 2:
        return out
    t = candles.close_time
    ts, v = oi.time, oi.usd
    step = float(np.median(np.diff(ts))) if len(ts) > 1 else float(candles.interval_ms)
    tolerance = max_gap_bars * max(step, float(candles.interval_ms))
    right = np.searchsorted(ts, t, "left")  # first snapshot at or after the close
    exact = (right < len(ts)) & (ts[np.minimum(right, len(ts) - 1)] == t)
    left = np.where(exact, right, right - 1)
    ok = (left >= 0) & (right < len(ts))
    li, ri = np.clip(left, 0, len(ts) - 1), np.clip(right, 0, len(ts) - 1)
    gap = (ts[ri] - ts[li]).astype(np.float64)
    ok &= gap <= tolerance
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(gap > 0, (t - ts[li]) / np.where(gap > 0, gap, 1.0), 0.0)
    val = v[li] + w * (v[ri] - v[li])
    out[ok] = val[ok]
    return out


def compute_openings(
    candles: Candles, oi_delta: np.ndarray, params: ModelParams, *, starts_series: bool
) -> Openings:
    """Openings per bar. oi_delta: change of open interest over each bar (NaN = unknown, volume model).

    starts_series: the first bar is the first of the series and opens nothing (no previous state).
    """
    n = len(candles)
    has_oi = np.isfinite(oi_delta)
    volume_opened = params.churn * candles.quote_volume_usd()
    opened = np.where(has_oi, np.maximum(np.where(has_oi, oi_delta, 0.0), 0.0), volume_opened)
    opened = np.where(np.isfinite(opened), opened, 0.0)
    model = np.where(has_oi, MODEL_OI, MODEL_VOLUME).astype(np.int8)
    if n and starts_series:
        opened[0] = 0.0
        model[0] = MODEL_NONE

    f = params.taker_floor
    r = f + (1.0 - 2.0 * f) * candles.taker_buy_share()
    bar_hours = candles.interval_ms / _HOUR_MS
    decay = np.zeros(n)
    if params.half_life_h is not None:
        decay[:] = np.log(2.0) * bar_hours / params.half_life_h
    decay[model == MODEL_VOLUME] = np.log(2.0) * bar_hours / params.volume_half_life_h
    return Openings(
        long_usd=2.0 * opened * r,
        short_usd=2.0 * opened * (1.0 - r),
        model=model,
        oi_delta=np.asarray(oi_delta, np.float64),
        decay_rate=decay,
    )


def entry_points(candles: Candles, points: int) -> tuple[np.ndarray, np.ndarray]:
    """Entry prices (bars × points) and weights summing to 1 per bar.

    One point: the bar VWAP. Several: spread over [low, high] with triangular weights peaking at
    the VWAP, so wide bars put their openings where the volume traded.
    """
    ep = candles.entry_price()
    if points == 1:
        return ep[:, None], np.ones((len(candles), 1))
    lo, hi = candles.low[:, None], candles.high[:, None]
    frac = (np.arange(points) + 0.5) / points
    prices = lo + (hi - lo) * frac[None, :]
    half = np.maximum(np.maximum(ep[:, None] - lo, hi - ep[:, None]), 1e-12)
    w = np.maximum(1.0 - np.abs(prices - ep[:, None]) / (half * (1.0 + 1.0 / points)), 0.0)
    w_sum = w.sum(axis=1, keepdims=True)
    w = np.where(w_sum > 0, w / np.where(w_sum > 0, w_sum, 1.0), 1.0 / points)
    return prices, w


def describe_coverage(
    open_time: np.ndarray, model: np.ndarray, interval_ms: int
) -> list[tuple[int, int, str]]:
    """Runs of bars by model: (start_ms, end_ms, "OI model" | "volume model")."""
    names = {MODEL_OI: "OI model", MODEL_VOLUME: "volume model"}
    runs: list[tuple[int, int, str]] = []
    m = model.copy()
    if len(m) > 1 and m[0] == MODEL_NONE:
        m[0] = m[1]
    if len(m) == 0:
        return runs
    change = np.nonzero(np.diff(m))[0] + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(m)]])
    for s, e in zip(starts, ends, strict=True):
        name = names.get(int(m[s]), "no openings")
        runs.append((int(open_time[s]), int(open_time[e - 1]) + interval_ms, name))
    return runs

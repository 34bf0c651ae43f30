"""Resample candles to a coarser interval (e.g. 5m → 15m / 1h / 4h).

Buckets are aligned to the epoch (UTC), as exchanges align their own bars, so a resampled 1h bar
covers the same minutes as the exchange's 1h bar. A bucket with missing source bars is still
emitted from the bars that are there; `complete_only` drops buckets that are not full (such as
a live last bar).
"""

from __future__ import annotations

import numpy as np

from liqdesk.core.series import Candles


def can_resample(source_interval_ms: int, target_interval_ms: int) -> bool:
    """True when target bars are whole multiples of source bars (and not finer)."""
    return target_interval_ms >= source_interval_ms and target_interval_ms % source_interval_ms == 0


def resample_candles(candles: Candles, interval_ms: int, *, complete_only: bool = False) -> Candles:
    """OHLCV aggregated into `interval_ms` buckets: first open, max high, min low, last close, sums."""
    if not can_resample(candles.interval_ms, interval_ms):
        raise ValueError(
            f"cannot resample {candles.interval_ms} ms bars to {interval_ms} ms: "
            "the target must be a whole multiple of the source interval"
        )
    bucket = candles.open_time - np.mod(candles.open_time, interval_ms)
    if len(candles):
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        ends = np.r_[starts[1:], len(candles)].astype(np.int64)
    else:
        starts = ends = np.zeros(0, np.int64)
    if complete_only:
        full = (ends - starts) == interval_ms // candles.interval_ms
        starts, ends = starts[full], ends[full]

    def runs(ufunc: np.ufunc, a: np.ndarray) -> np.ndarray:
        return _reduce_runs(ufunc, a, starts, ends)

    def runs_of(ufunc: np.ufunc, a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else runs(ufunc, a)

    return Candles(
        open_time=bucket[starts],
        open=candles.open[starts],
        high=runs(np.maximum, candles.high),
        low=runs(np.minimum, candles.low),
        close=candles.close[ends - 1],
        volume=runs(np.add, candles.volume),
        interval_ms=interval_ms,
        quote_volume=runs_of(np.add, candles.quote_volume),
        taker_buy_volume=runs_of(np.add, candles.taker_buy_volume),
        mark_high=runs_of(np.maximum, candles.mark_high),
        mark_low=runs_of(np.minimum, candles.mark_low),
    )


def _reduce_runs(ufunc: np.ufunc, a: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """ufunc.reduce over each run a[starts[k]:ends[k]] (runs non-empty, ascending, may skip rows)."""
    if len(starts) == 0:
        return a[:0].copy()
    # reduceat over the pairs (start, end) reduces a[start:end] at even positions; a padding row
    # keeps every `end` a valid index.
    padded = np.concatenate([a, a[-1:]])
    bounds = np.empty(2 * len(starts), np.int64)
    bounds[0::2] = starts
    bounds[1::2] = ends
    return ufunc.reduceat(padded, bounds)[0::2]

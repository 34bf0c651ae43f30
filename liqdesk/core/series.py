"""Columnar market-data containers: candles, open interest and liquidation events.

Each container holds parallel NumPy arrays (one per field), never lists of objects, so the
engine can hand them straight to vectorised code. Times are epoch milliseconds (int64, UTC).
Containers are immutable by convention: methods return new containers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, cast

import numpy as np

LONG = 1
SHORT = -1

_MINUTE_MS = 60_000

TIMEFRAME_MS: dict[str, int] = {
    "1m": _MINUTE_MS,
    "3m": 3 * _MINUTE_MS,
    "5m": 5 * _MINUTE_MS,
    "15m": 15 * _MINUTE_MS,
    "30m": 30 * _MINUTE_MS,
    "1h": 60 * _MINUTE_MS,
    "2h": 120 * _MINUTE_MS,
    "4h": 240 * _MINUTE_MS,
    "1d": 1440 * _MINUTE_MS,
}


def timeframe_ms(timeframe: str) -> int:
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        raise ValueError(
            f"unknown timeframe {timeframe!r}; expected one of {', '.join(TIMEFRAME_MS)}"
        ) from None


def timeframe_name(interval_ms: int) -> str:
    for name, ms in TIMEFRAME_MS.items():
        if ms == interval_ms:
            return name
    return f"{interval_ms // 1000}s"


def _f64(a: Any) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _opt_f64(a: Any) -> np.ndarray | None:
    return None if a is None else _f64(a)


@dataclass(frozen=True, eq=False)
class Candles:
    """OHLCV bars of one symbol at one interval, sorted by open time, unique times."""

    open_time: np.ndarray  # int64 ms, bar open
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # base asset
    interval_ms: int
    quote_volume: np.ndarray | None = None  # USD; gives VWAP = quote / base
    taker_buy_volume: np.ndarray | None = None  # base; gives taker share
    mark_high: np.ndarray | None = None  # mark-price wicks trigger real liquidations
    mark_low: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.open_time)
        object.__setattr__(self, "open_time", np.ascontiguousarray(self.open_time, dtype=np.int64))
        for name in ("open", "high", "low", "close", "volume"):
            object.__setattr__(self, name, _f64(getattr(self, name)))
        for name in ("quote_volume", "taker_buy_volume", "mark_high", "mark_low"):
            object.__setattr__(self, name, _opt_f64(getattr(self, name)))
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray) and len(v) != n:
                raise ValueError(f"Candles.{f.name} has {len(v)} rows, open_time has {n}")
        if (self.mark_high is None) != (self.mark_low is None):
            raise ValueError("mark_high and mark_low must be given together")
        if self.interval_ms <= 0:
            raise ValueError("interval_ms must be positive")

    def __len__(self) -> int:
        return len(self.open_time)

    @property
    def close_time(self) -> np.ndarray:
        return self.open_time + self.interval_ms

    @property
    def timeframe(self) -> str:
        return timeframe_name(self.interval_ms)

    def _columns(self) -> dict[str, np.ndarray | None]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "interval_ms"}

    def take(self, index: Any) -> Candles:
        """Rows selected by a slice, boolean mask or index array."""
        cols = {k: (None if v is None else v[index]) for k, v in self._columns().items()}
        return Candles(interval_ms=self.interval_ms, **cast(dict[str, Any], cols))

    def between(self, start_ms: int | None = None, end_ms: int | None = None) -> Candles:
        """Bars with start_ms <= open_time < end_ms."""
        lo = 0 if start_ms is None else int(np.searchsorted(self.open_time, start_ms, "left"))
        hi = len(self) if end_ms is None else int(np.searchsorted(self.open_time, end_ms, "left"))
        return self.take(slice(lo, hi))

    def concat(self, other: Candles) -> Candles:
        if other.interval_ms != self.interval_ms:
            raise ValueError("cannot join candles of different intervals")
        a, b = self._columns(), other._columns()
        cols: dict[str, np.ndarray | None] = {}
        for k in a:
            if a[k] is None and b[k] is None:
                cols[k] = None
            else:
                left = a[k] if a[k] is not None else np.full(len(self), np.nan)
                right = b[k] if b[k] is not None else np.full(len(other), np.nan)
                cols[k] = np.concatenate([left, right])
        return Candles(interval_ms=self.interval_ms, **cast(dict[str, Any], cols))

    def with_mark(self, mark_high: np.ndarray, mark_low: np.ndarray) -> Candles:
        return replace(self, mark_high=mark_high, mark_low=mark_low)

    def entry_price(self) -> np.ndarray:
        """Bar VWAP (quote / base) where it is usable, typical price (H+L+C)/3 elsewhere."""
        typical: np.ndarray = (self.high + self.low + self.close) / 3.0
        if self.quote_volume is None:
            return typical
        with np.errstate(divide="ignore", invalid="ignore"):
            vwap = self.quote_volume / self.volume
        ok = np.isfinite(vwap) & (vwap >= self.low) & (vwap <= self.high)
        return _f64(np.where(ok, vwap, typical))

    def quote_volume_usd(self) -> np.ndarray:
        """Traded notional in USD; base volume times the entry price where quote volume is missing."""
        if self.quote_volume is not None:
            q = np.where(np.isfinite(self.quote_volume), self.quote_volume, np.nan)
            est = self.volume * self.entry_price()
            return _f64(np.where(np.isfinite(q), q, est))
        return _f64(self.volume * self.entry_price())

    def taker_buy_share(self) -> np.ndarray:
        """Share of base volume bought by takers, 0.5 where unknown."""
        if self.taker_buy_volume is None:
            return np.full(len(self), 0.5)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = self.taker_buy_volume / self.volume
        return np.where(np.isfinite(r), np.clip(r, 0.0, 1.0), 0.5)

    def sweep_low(self) -> np.ndarray:
        """The price that sweeps long levels: the mark-price low when known, else the low."""
        if self.mark_low is None:
            return self.low
        return np.where(np.isfinite(self.mark_low), self.mark_low, self.low)

    def sweep_high(self) -> np.ndarray:
        if self.mark_high is None:
            return self.high
        return np.where(np.isfinite(self.mark_high), self.mark_high, self.high)


@dataclass(frozen=True, eq=False)
class OpenInterest:
    """Open interest snapshots in USD notional, sorted by time."""

    time: np.ndarray  # int64 ms, moment of the snapshot
    usd: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "time", np.ascontiguousarray(self.time, dtype=np.int64))
        object.__setattr__(self, "usd", _f64(self.usd))
        if len(self.time) != len(self.usd):
            raise ValueError("OpenInterest.time and .usd differ in length")

    def __len__(self) -> int:
        return len(self.time)

    def take(self, index: Any) -> OpenInterest:
        return OpenInterest(self.time[index], self.usd[index])

    def between(self, start_ms: int | None = None, end_ms: int | None = None) -> OpenInterest:
        lo = 0 if start_ms is None else int(np.searchsorted(self.time, start_ms, "left"))
        hi = len(self) if end_ms is None else int(np.searchsorted(self.time, end_ms, "left"))
        return self.take(slice(lo, hi))

    def concat(self, other: OpenInterest) -> OpenInterest:
        return OpenInterest(np.concatenate([self.time, other.time]), np.concatenate([self.usd, other.usd]))


@dataclass(frozen=True, eq=False)
class Liquidations:
    """Real liquidation events reported by an exchange (ground truth, sampled by the venue).

    ``inferred`` marks events nobody reported: a sampled position that vanished while price crossed its
    liquidation price. They are evidence, not records; keep them apart wherever the two are compared."""

    time: np.ndarray  # int64 ms
    exchange: np.ndarray  # str
    symbol: np.ndarray  # str
    side: np.ndarray  # int8: LONG (+1) = a long position was liquidated, SHORT (-1) = a short
    price: np.ndarray
    quantity: np.ndarray  # base
    usd: np.ndarray
    # bool per event; left out (empty), every event is a recorded one
    inferred: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def __post_init__(self) -> None:
        object.__setattr__(self, "time", np.ascontiguousarray(self.time, dtype=np.int64))
        object.__setattr__(self, "exchange", np.asarray(self.exchange, dtype=str))
        object.__setattr__(self, "symbol", np.asarray(self.symbol, dtype=str))
        object.__setattr__(self, "side", np.ascontiguousarray(self.side, dtype=np.int8))
        for name in ("price", "quantity", "usd"):
            object.__setattr__(self, name, _f64(getattr(self, name)))
        n = len(self.time)
        flags = np.ascontiguousarray(self.inferred, dtype=bool)
        object.__setattr__(self, "inferred", np.zeros(n, bool) if len(flags) == 0 else flags)
        for f in fields(self):
            if len(getattr(self, f.name)) != n:
                raise ValueError(f"Liquidations.{f.name} has {len(getattr(self, f.name))} rows, time has {n}")

    @staticmethod
    def empty() -> Liquidations:
        return Liquidations(
            np.zeros(0, np.int64), np.zeros(0, str), np.zeros(0, str), np.zeros(0, np.int8),
            np.zeros(0), np.zeros(0), np.zeros(0),
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.time)

    def take(self, index: Any) -> Liquidations:
        return Liquidations(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def between(self, start_ms: int | None = None, end_ms: int | None = None) -> Liquidations:
        mask = np.ones(len(self), bool)
        if start_ms is not None:
            mask &= self.time >= start_ms
        if end_ms is not None:
            mask &= self.time < end_ms
        return self.take(mask)

    def concat(self, other: Liquidations) -> Liquidations:
        return Liquidations(
            **{f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self)}
        )

    def sorted(self) -> Liquidations:
        return self.take(np.argsort(self.time, kind="stable"))

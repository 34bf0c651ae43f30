"""Real bundled data for the fake Bybit, OKX and Hyperliquid servers (provenance: tests/data/README.md).

No venue other than Binance is bundled with candles, so the fakes reuse Binance's BTCUSDT prices (Hyperliquid's
and Bybit's and OKX's BTC perpetuals trade within a few basis points of Binance's). Where a venue counts in
contracts the fake converts base units with the contract size (OKX BTC-USDT-SWAP: 0.01 BTC).

- Bybit and OKX: the 2025 1h klines with quote and taker-buy volume (the same file as the fake Binance) and the
  2024-05 week of 5-minute open interest, shifted by whole days onto the klines' clock like the fake Binance does.
- Hyperliquid: one year of 1h OHLCV (2025-03 → 2026-03, no quote or taker volume: Hyperliquid has none either)
  and Hyperliquid's own hourly open interest (2025-12 → 2026-03, real, not shifted: the dates overlap).
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import data as fdata

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class Bars:
    """1h bars as decimal strings (as venues send them); ``quote`` and ``taker_base`` may be missing."""

    open_time: np.ndarray  # int64 ms
    open: list[str]
    high: list[str]
    low: list[str]
    close: list[str]
    volume: list[str]  # base units
    quote: list[str] | None
    taker_base: list[str] | None
    taker_quote: list[str] | None
    interval_ms: int
    source: str

    def __len__(self) -> int:
        return len(self.open_time)


@dataclass(frozen=True)
class BarValues:
    """One bar as the venue would serve it at a moment: final, or a partial revision of the live bar."""

    open_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote: str | None
    taker_base: str | None
    taker_quote: str | None


def bar_values(bars: Bars, i: int, *, final: bool, fraction: float = 0.5) -> BarValues:
    """Bar ``i``; a partial revision (``final=False``) is the bar so far: its open price as high, low and close,
    ``fraction`` of its volumes."""
    t = int(bars.open_time[i])
    o, h, low, c, v = bars.open[i], bars.high[i], bars.low[i], bars.close[i], bars.volume[i]
    q = bars.quote[i] if bars.quote is not None else None
    tb = bars.taker_base[i] if bars.taker_base is not None else None
    tq = bars.taker_quote[i] if bars.taker_quote is not None else None
    if not final:
        h = low = c = o
        v = f"{float(v) * fraction:.3f}"
        q = None if q is None else f"{float(q) * fraction:.4f}"
        tb = None if tb is None else f"{float(tb) * fraction:.3f}"
        tq = None if tq is None else f"{float(tq) * fraction:.4f}"
    return BarValues(t, o, h, low, c, v, q, tb, tq)


@lru_cache(maxsize=1)
def binance_klines_2025() -> Bars:
    k = fdata.klines_1h()
    cols = list(zip(*k.rows, strict=True))  # o h l c v quote trades taker_base taker_quote
    return Bars(
        k.open_time, list(cols[0]), list(cols[1]), list(cols[2]), list(cols[3]), list(cols[4]), list(cols[5]),
        list(cols[7]), list(cols[8]), k.interval_ms, "Binance USDⓈ-M BTCUSDT 1h, 2025-05-11 → 2025-08-10",
    )  # fmt: skip


@lru_cache(maxsize=1)
def binance_year_1h() -> Bars:
    times: list[int] = []
    rows: list[tuple[str, str, str, str, str]] = []
    with gzip.open(fdata.DATA / "fake_hyperliquid_BTC_1h_candles.csv.gz", "rt", newline="") as f:
        for r in csv.DictReader(f):
            times.append(int(r["open_time"]))
            rows.append((r["open"], r["high"], r["low"], r["close"], r["volume"]))
    cols = list(zip(*rows, strict=True))
    return Bars(
        np.asarray(times, np.int64), list(cols[0]), list(cols[1]), list(cols[2]), list(cols[3]), list(cols[4]),
        None, None, None, HOUR_MS, "Binance BTC 1h, 2025-03-06 → 2026-03-05",
    )  # fmt: skip


@dataclass(frozen=True)
class OpenInterestSeries:
    """Open interest snapshots: time (int64 ms), amount in base units and value in USD (as decimal strings)."""

    time: np.ndarray
    base: list[str]
    usd: list[str]


@lru_cache(maxsize=1)
def binance_open_interest_5m() -> OpenInterestSeries:
    """The fake Binance's 5-minute week, on the 2025 klines' clock (see data.open_interest_shift_ms)."""
    raw = fdata.open_interest_5m_raw()
    base, usd = zip(*raw.rows, strict=True)
    return OpenInterestSeries(raw.time + fdata.open_interest_shift_ms(), list(base), list(usd))


def snapshots_known(
    times: np.ndarray, now_ms: int, step_ms: int, start: int | None = None, end: int | None = None
) -> np.ndarray:
    """Indices of the open-interest snapshots on the ``step_ms`` grid taken by ``now_ms``, with
    start <= time <= end (either bound optional)."""
    mask = (times <= now_ms) & (times % step_ms == 0)
    if start is not None:
        mask &= times >= start
    if end is not None:
        mask &= times <= end
    return np.flatnonzero(mask)


@lru_cache(maxsize=1)
def hyperliquid_open_interest_1h() -> tuple[np.ndarray, np.ndarray]:
    """Hyperliquid BTC open interest, hourly: (time ms, USD)."""
    times: list[int] = []
    usd: list[float] = []
    with gzip.open(fdata.DATA / "fake_hyperliquid_BTC_1h_open_interest.csv.gz", "rt", newline="") as f:
        for r in csv.DictReader(f):
            times.append(int(r["timestamp"]))
            usd.append(float(r["sum_open_interest_value"]))
    return np.asarray(times, np.int64), np.asarray(usd, np.float64)


@dataclass(frozen=True)
class RecordedLiquidation:
    """A real liquidation from the Binance capture, venue-neutral: ``long`` is True when a long position was
    liquidated (Binance order side SELL); ``base`` the filled quantity; ``price`` the fill, ``order_price`` the
    liquidation order's price (the bankruptcy price)."""

    time: int
    long: bool
    base: str
    price: str
    order_price: str


def recorded_liquidations(symbol: str = "BTC", *, start_ms: int | None = None) -> list[RecordedLiquidation]:
    """The capture's events for ``symbol``, in time order; ``start_ms`` moves them (gaps kept) to start there."""
    rows = [r for r in fdata.force_orders() if r["symbol"] == symbol]
    if not rows:
        return []
    t0 = int(rows[0]["trade_time_ms"])
    shift = 0 if start_ms is None else start_ms - t0
    return [
        RecordedLiquidation(
            int(r["trade_time_ms"]) + shift, r["side"] == "SELL", r["filled_accumulated_quantity"],
            r["average_price"], r["price"],
        )
        for r in rows
    ]  # fmt: skip


# -- many symbols (load tests) ------------------------------------------------------------------------------------
# Twenty coins for a fake serving many markets. Only BTC has real bundled bars: every other coin is served with
# the SAME recorded BTC bars, prices multiplied by a fixed factor per coin (``coin_scale``: 1 / (1 + its place in
# this list)), base volumes unchanged and quote volumes scaled with the price. Plumbing and load, not markets.
LOAD_COINS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "AVAX", "LINK", "DOT", "LTC", "BCH", "TRX", "ATOM",
              "NEAR", "APT", "ARB", "OP", "SUI", "FIL", "INJ")  # fmt: skip


def coin_scale(coin: str) -> float:
    """The price factor of a coin served from the BTC bars (BTC: 1)."""
    coin = coin.upper()
    return 1.0 / (1 + LOAD_COINS.index(coin)) if coin in LOAD_COINS else 1.0


def scale_text(value: str | None, k: float, digits: int = 6) -> str | None:
    """A decimal string times ``k``, as a venue would print it."""
    if value is None or k == 1.0:
        return value
    return f"{float(value) * k:.{digits}f}".rstrip("0").rstrip(".") or "0"


def scaled_bars(bars: Bars, k: float) -> Bars:
    """``bars`` with prices (and quote volumes) times ``k``; the same bars when ``k`` is 1."""
    if k == 1.0:
        return bars

    def col(values: list[str] | None) -> list[str] | None:
        return None if values is None else [scale_text(v, k) or "0" for v in values]

    return Bars(
        bars.open_time, col(bars.open) or [], col(bars.high) or [], col(bars.low) or [], col(bars.close) or [],
        bars.volume, col(bars.quote), bars.taker_base, col(bars.taker_quote), bars.interval_ms,
        f"{bars.source}, prices × {k:g}",
    )  # fmt: skip

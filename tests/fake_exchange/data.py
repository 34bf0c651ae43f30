"""The real data the fake exchange serves, read from tests/data (see tests/data/README.md for provenance)."""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"
DAY_MS = 86_400_000


@dataclass(frozen=True)
class KlineTable:
    """Binance 1h klines: open_time (int64) and the string columns exactly as Binance sends them."""

    open_time: np.ndarray
    rows: list[
        tuple[str, str, str, str, str, str, int, str, str]
    ]  # o h l c v quote trades taker_base taker_quote
    interval_ms: int


@dataclass(frozen=True)
class OiTable:
    time: np.ndarray
    rows: list[tuple[str, str]]  # sumOpenInterest, sumOpenInterestValue


@lru_cache(maxsize=1)
def klines_1h() -> KlineTable:
    times: list[int] = []
    rows = []
    with gzip.open(DATA / "fake_binance_BTCUSDT_1h_klines.csv.gz", "rt", newline="") as f:
        for r in csv.DictReader(f):
            times.append(int(r["open_time"]))
            rows.append(
                (r["open"], r["high"], r["low"], r["close"], r["volume"], r["quote_volume"], int(r["trades"]),
                 r["taker_buy_base"], r["taker_buy_quote"])
            )  # fmt: skip
    return KlineTable(np.asarray(times, np.int64), rows, 3_600_000)


@lru_cache(maxsize=1)
def open_interest_5m_raw() -> OiTable:
    times: list[int] = []
    rows = []
    with open(DATA / "fake_binance_BTCUSDT_5m_open_interest.csv", newline="") as f:
        for r in csv.DictReader(f):
            times.append(int(r["timestamp_ms"]))
            rows.append((r["sum_open_interest"], r["sum_open_interest_value"]))
    return OiTable(np.asarray(times, np.int64), rows)


def open_interest_shift_ms() -> int:
    """Whole days added to the 2024 open-interest week so that it ends inside the last day of the 2025 klines
    (the fake serves both on one clock; values are untouched)."""
    k, oi = klines_1h(), open_interest_5m_raw()
    return int((k.open_time[-1] - oi.time[-1]) // DAY_MS) * DAY_MS


@lru_cache(maxsize=1)
def force_orders() -> list[dict[str, str]]:
    with open(DATA / "fake_binance_forceOrder_events.csv", newline="") as f:
        return list(csv.DictReader(f))


def force_order_event(
    row: dict[str, str], *, event_time: int | None = None, trade_time: int | None = None
) -> dict:
    """A recorded liquidation as Binance's forceOrder websocket event (the capture stripped `USDT`)."""
    t = int(row["trade_time_ms"]) if trade_time is None else trade_time
    return {
        "e": "forceOrder",
        "E": (t + 2) if event_time is None else event_time,
        "o": {
            "s": row["symbol"] + "USDT",
            "S": row["side"],
            "o": row["order_type"],
            "f": row["time_in_force"],
            "q": row["original_quantity"],
            "p": row["price"],
            "ap": row["average_price"],
            "X": row["order_status"],
            "l": row["last_filled_quantity"],
            "z": row["filled_accumulated_quantity"],
            "T": t,
        },
    }


FIVE_MINUTES_MS = 300_000


@lru_cache(maxsize=1)
def klines_5m() -> KlineTable:
    """Binance USDⓈ-M BTCUSDT 5m bars, 2024-05-10 20:25 → 05-16 19:30, the week whose open interest is bundled.

    OHLCV and taker-buy volume are recorded (see tests/data/README.md). Not in the source, so derived here and
    sent as Binance sends them: quote volume and taker-buy quote volume = base volume × typical price
    (high + low + close) / 3; trade count 0."""
    times: list[int] = []
    rows = []
    with gzip.open(DATA / "fake_binance_BTCUSDT_5m_klines_2024-05.csv.gz", "rt", newline="") as f:
        for r in csv.DictReader(f):
            times.append(int(r["open_time"]))
            typical = (float(r["high"]) + float(r["low"]) + float(r["close"])) / 3.0
            quote = f"{float(r['volume']) * typical:.4f}"
            taker_quote = f"{float(r['taker_buy_base']) * typical:.4f}"
            rows.append((r["open"], r["high"], r["low"], r["close"], r["volume"], quote, 0, r["taker_buy_base"],
                         taker_quote))  # fmt: skip
    return KlineTable(np.asarray(times, np.int64), rows, FIVE_MINUTES_MS)


def synthetic_force_orders(k: KlineTable, first: int, last: int, seed: int = 7) -> list[dict[str, str]]:
    """A liquidation tape SYNTHESISED on recorded prices (no liquidations were recorded for this week): for bars
    [first, last), Binance forceOrder rows in the capture's format (``force_order_event`` turns them into
    websocket events). More events in wide bars; longs liquidated (SELL) near the low of falling bars and shorts
    (BUY) near the high of rising ones; average fill inside the bar, the order price 35 bp beyond it (as Binance
    prices its liquidation orders); sizes log-normal around $15k, a few above $1M; at most one event per second
    (the stream's own limit). Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    out: list[dict[str, str]] = []
    for i in range(first, min(last, len(k.open_time))):
        o, h, low, c = (float(x) for x in k.rows[i][:4])
        span = max(h - low, o * 1e-5)
        n = int(rng.poisson(0.5 + 600.0 * span / o))
        if not n:
            continue
        down = float(np.clip(0.5 + (o - c) / o * 150.0, 0.1, 0.9))
        seconds = np.sort(rng.choice(np.arange(1, k.interval_ms // 1000), size=min(n, 250), replace=False))
        for s in seconds:
            long_liquidated = rng.random() < down
            fill = low + span * rng.uniform(0.0, 0.3) if long_liquidated else h - span * rng.uniform(0.0, 0.3)
            usd = float(min(rng.lognormal(np.log(15_000.0), 1.3), 3e6))
            qty = max(round(usd / fill, 3), 0.001)
            limit = fill * (0.9965 if long_liquidated else 1.0035)
            out.append({
                "symbol": "BTC", "side": "SELL" if long_liquidated else "BUY", "order_type": "LIMIT",
                "time_in_force": "IOC", "original_quantity": f"{qty:.3f}", "price": f"{limit:.2f}",
                "average_price": f"{fill:.2f}", "order_status": "FILLED", "last_filled_quantity": f"{qty:.3f}",
                "filled_accumulated_quantity": f"{qty:.3f}", "trade_time_ms": str(int(k.open_time[i]) + int(s) * 1000),
            })  # fmt: skip
    return out

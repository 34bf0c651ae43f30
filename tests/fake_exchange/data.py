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

"""Small hand-made market data for engine tests."""

from __future__ import annotations

import numpy as np

from liqdesk.core.series import Candles, OpenInterest

BAR = 300_000  # 5 minutes


def candles(
    rows: list[tuple[float, float, float, float]], *, volume: float = 10.0, taker: float | None = None
) -> Candles:
    """Candles from (open, high, low, close) rows; quote volume = volume × close so VWAP = close."""
    a = np.array(rows, dtype=float)
    n = len(a)
    vol = np.full(n, volume)
    return Candles(
        open_time=np.arange(n) * BAR,
        open=a[:, 0],
        high=a[:, 1],
        low=a[:, 2],
        close=a[:, 3],
        volume=vol,
        interval_ms=BAR,
        quote_volume=vol * a[:, 3],
        taker_buy_volume=None if taker is None else vol * taker,
    )


def oi_at_closes(values: list[float]) -> OpenInterest:
    """Open interest snapshots at each bar's close."""
    v = np.asarray(values, dtype=float)
    return OpenInterest(time=(np.arange(len(v)) + 1) * BAR, usd=v)


def random_market(
    n: int, seed: int = 0, *, oi: bool = True, taker: bool = True
) -> tuple[Candles, OpenInterest | None]:
    rng = np.random.default_rng(seed)
    c = 100_000 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    o = np.r_[c[0], c[:-1]]
    h = np.maximum(o, c) * (1 + np.abs(rng.normal(0, 0.001, n)))
    low = np.minimum(o, c) * (1 - np.abs(rng.normal(0, 0.001, n)))
    v = rng.uniform(100, 200, n)
    cd = Candles(
        np.arange(n) * BAR, o, h, low, c, v, BAR,
        quote_volume=v * (h + low + c) / 3,
        taker_buy_volume=v * rng.uniform(0.3, 0.7, n) if taker else None,
    )  # fmt: skip
    if not oi:
        return cd, None
    return cd, OpenInterest((np.arange(n) + 1) * BAR, 5e9 + np.cumsum(rng.normal(0, 5e6, n)))

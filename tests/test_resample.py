"""Candle resampling (liqdesk.core.resample)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqdesk.core.resample import can_resample, resample_candles
from liqdesk.core.series import TIMEFRAME_MS, Candles

M5 = TIMEFRAME_MS["5m"]
H1 = TIMEFRAME_MS["1h"]


def _candles(n: int, start_ms: int = 1_700_000_000_000 - 1_700_000_000_000 % H1, seed: int = 1) -> Candles:
    rng = np.random.default_rng(seed)
    close = 100 + np.cumsum(rng.normal(0, 1, n))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) + rng.random(n)
    low = np.minimum(open_, close) - rng.random(n)
    vol = rng.random(n) * 10
    return Candles(
        open_time=start_ms + np.arange(n) * M5,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=vol,
        interval_ms=M5,
        quote_volume=vol * close,
        taker_buy_volume=vol * 0.5,
    )


def test_five_minute_to_hour_matches_hand_aggregation() -> None:
    c = _candles(36)
    h = resample_candles(c, H1)
    assert h.interval_ms == H1 and len(h) == 3
    for k in range(3):
        s = slice(12 * k, 12 * k + 12)
        assert h.open_time[k] == c.open_time[s][0]
        assert h.open[k] == c.open[s][0]
        assert h.close[k] == c.close[s][-1]
        assert h.high[k] == c.high[s].max()
        assert h.low[k] == c.low[s].min()
        assert h.volume[k] == pytest.approx(c.volume[s].sum())
        assert h.quote_volume[k] == pytest.approx(c.quote_volume[s].sum())
        assert h.taker_buy_volume[k] == pytest.approx(c.taker_buy_volume[s].sum())


def test_buckets_align_to_epoch_and_partial_buckets() -> None:
    c = _candles(30, start_ms=1_700_000_000_000 - 1_700_000_000_000 % H1 + 7 * M5)  # starts at :35
    h = resample_candles(c, H1)
    assert np.all(h.open_time % H1 == 0)
    assert len(h) == 4  # 5 + 12 + 12 + 1 bars: partial first and last buckets
    full = resample_candles(c, H1, complete_only=True)
    assert len(full) == 2 and np.array_equal(full.open_time, h.open_time[1:3])


def test_gaps_and_identity() -> None:
    c = _candles(48).take(np.r_[0:10, 30:48])  # the second hour missing, the third partial
    h = resample_candles(c, H1)
    assert len(h) == 3
    assert np.array_equal(h.open_time, c.open_time[0] + np.array([0, 2, 3]) * H1)
    assert h.volume.sum() == pytest.approx(c.volume.sum())
    same = resample_candles(c, M5)
    assert np.array_equal(same.close, c.close)


def test_rejects_finer_or_non_multiple() -> None:
    assert can_resample(M5, H1) and not can_resample(H1, M5) and not can_resample(TIMEFRAME_MS["3m"], M5)
    with pytest.raises(ValueError):
        resample_candles(_candles(5), TIMEFRAME_MS["1m"])


def test_empty() -> None:
    assert len(resample_candles(_candles(5).take(slice(0, 0)), H1)) == 0


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 200), factor=st.sampled_from([1, 3, 12, 48]), seed=st.integers(0, 1000))
def test_conservation(n: int, factor: int, seed: int) -> None:
    c = _candles(n, seed=seed)
    r = resample_candles(c, M5 * factor)
    assert r.volume.sum() == pytest.approx(c.volume.sum())
    assert r.high.max() == c.high.max() and r.low.min() == c.low.min()
    assert r.open[0] == c.open[0] and r.close[-1] == c.close[-1]
    assert np.all(np.diff(r.open_time) > 0)

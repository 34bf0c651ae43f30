"""Bundled samples: contents, spans, caching, speed, provenance."""

from __future__ import annotations

import numpy as np
import pytest

from liqdesk.core.series import LONG
from liqdesk.errors import DataError
from liqdesk.feeds import sample as sample_mod
from liqdesk.feeds.resources import resource_path
from liqdesk.feeds.sample import DEFAULT_SAMPLE, list_samples, load_sample, sample_description

MIN5 = 300_000


def ms(iso: str) -> int:
    return int(np.datetime64(iso, "ms").astype(np.int64))


def test_list_samples() -> None:
    assert list_samples() == [
        "btcusdt-5m", "btcusdt-1m-2025-01", "btcusdt-1h-2025", "btcusdt-1m-2025-05", "btcusdt-5m-2025-10-10",
    ]  # fmt: skip
    assert list_samples()[0] == DEFAULT_SAMPLE
    assert all(sample_description(n) for n in list_samples())
    with pytest.raises(DataError, match="unknown sample 'nope'; available: btcusdt-5m"):
        load_sample("nope")


def test_default_sample_5m_with_open_interest_week() -> None:
    s = load_sample()
    assert s.candles is load_sample("btcusdt-5m").candles  # read once however it is named
    assert s.label == "Bundled sample: Binance BTCUSDT 5m, 2023-11-01 → 2024-05-16 (real data)"
    assert (s.symbol, s.exchange, len(s.liquidations)) == ("BTC/USDT:USDT", "binanceusdm", 0)
    assert (s.offline, s.source_kind) == (True, "sample")
    c, oi = s.candles, s.open_interest
    assert oi is not None
    assert len(c) == 56_971 and c.interval_ms == MIN5
    assert c.open_time[0] == ms("2023-11-01T00:00") and c.open_time[-1] == ms("2024-05-16T19:30")
    assert np.all(np.diff(c.open_time) == MIN5)
    # cut at the end of the OI week: the last bar closes at the last OI snapshot
    assert c.close_time[-1] == oi.time[-1]
    assert len(oi) == 2_005 and np.all(np.diff(oi.time) == MIN5)
    assert oi.time[0] == ms("2024-05-09T20:35") and oi.time[-1] == ms("2024-05-16T19:35")
    assert c.open_time[0] <= oi.time[0] and oi.time[-1] == c.close_time[-1]
    # taker buy volume only where the metrics file has it: 2024-05-10 20:25 .. 05-16 19:30
    tb = c.taker_buy_volume
    assert tb is not None and c.quote_volume is None
    known = np.flatnonzero(np.isfinite(tb))
    assert len(known) == 1_718
    assert c.open_time[known[0]] == ms("2024-05-10T20:25") and c.open_time[known[-1]] == ms(
        "2024-05-16T19:30"
    )
    assert np.all(np.diff(known) == 1)
    share = c.taker_buy_share()
    assert np.all(share[: known[0]] == 0.5)
    assert 0.3 < float(np.median(share[known])) < 0.7
    assert np.all(tb[known] <= c.volume[known] * 1.01)
    assert s.notes == ()


def test_sample_1m_with_real_liquidations() -> None:
    s = load_sample("btcusdt-1m-2025-01")
    c, liq = s.candles, s.liquidations
    assert s.open_interest is None and liq is not None
    assert s.label == "Bundled sample: Binance BTCUSDT 1m, 2025-01-27 → 2025-02-26 (real data)"
    assert len(c) == 43_199 and c.timeframe == "1m" and np.all(np.diff(c.open_time) == 60_000)
    assert c.open_time[0] == ms("2025-01-27T13:02") and c.open_time[-1] == ms("2025-02-26T13:00")
    assert len(liq) == 31 and liq.usd.sum() == pytest.approx(510_994.21, abs=0.01)
    assert (liq.side == LONG).sum() == 26
    assert set(liq.symbol.tolist()) == {"BTC/USDT:USDT"}
    # every event's average fill lies inside its 1-minute candle (perpetual, same market)
    bar = (liq.time - c.open_time[0]) // 60_000
    assert np.all(c.open_time[bar] <= liq.time) and np.all(liq.time < c.close_time[bar])
    assert np.all((c.low[bar] <= liq.price) & (liq.price <= c.high[bar]))
    assert any("1673 duplicate rows dropped" in n for n in s.notes)


def test_sample_1h_klines_with_quote_and_taker_volume() -> None:
    s = load_sample("btcusdt-1h-2025")
    c = s.candles
    assert s.open_interest is None and len(s.liquidations) == 0
    assert s.label == "Bundled sample: Binance BTCUSDT 1h, 2025-05-11 → 2025-08-10 (real data)"
    assert len(c) == 2_208 and c.timeframe == "1h"
    assert np.all(np.diff(c.open_time) == 3_600_000)
    assert c.quote_volume is not None and c.taker_buy_volume is not None
    vwap = c.quote_volume / c.volume
    assert np.all((c.low <= vwap) & (vwap <= c.high))
    assert np.all(c.taker_buy_volume <= c.volume)
    assert len(s.notes) == 1 and "3 duplicate rows dropped" in s.notes[0]


def test_sample_of_the_2025_10_10_crash_with_two_weeks_of_history() -> None:
    s = load_sample("btcusdt-5m-2025-10-10")
    c = s.candles
    assert s.open_interest is None and len(s.liquidations) == 0
    assert s.label == (
        "Bundled sample: Binance BTCUSDT 5m, 2025-09-26 → 2025-10-12 (real data; no open interest: volume model)"
    )
    assert len(c) == 17 * 288 and c.timeframe == "5m" and np.all(np.diff(c.open_time) == MIN5)
    assert c.open_time[0] == ms("2025-09-26T00:00") and c.open_time[-1] == ms("2025-10-12T23:55")
    day = c.between(ms("2025-10-10T00:00"), ms("2025-10-11T00:00"))
    assert float(day.low.min()) == 101_516.5 and float(day.high.max()) == 122_497.0
    assert c.quote_volume is None and c.taker_buy_volume is None and s.notes == ()


def test_samples_are_read_once_shared_read_only_and_each_caller_gets_its_own_bundle() -> None:
    s = load_sample("btcusdt-1m-2025-01")
    again = load_sample("btcusdt-1m-2025-01")
    assert again.candles is s.candles  # read once per process, the arrays shared
    with pytest.raises(ValueError, match="read-only"):
        s.candles.close[0] = 1.0
    # new containers built from a shared sample are writable copies where numpy copies
    assert (s.candles.close * 2).flags.writeable
    # a window adding live liquidations to its bundle leaves the sample as it is for everyone else
    n = len(s.liquidations)
    s.with_liquidations(s.liquidations.take(slice(0, 2)))
    assert len(s.liquidations) == n + 2 and len(load_sample("btcusdt-1m-2025-01").liquidations) == n


def test_provenance_covers_every_bundled_file() -> None:
    folder = resource_path("sample")
    text = (folder / "PROVENANCE.md").read_text()
    files = sorted(p.name for p in folder.iterdir() if p.name != "PROVENANCE.md")
    assert files == sorted(
        [
            sample_mod.CANDLES_5M,
            sample_mod.METRICS_5M,
            sample_mod.CANDLES_1M,
            sample_mod.FORCE_ORDERS,
            sample_mod.KLINES_1H,
            sample_mod.CANDLES_1M_2025_05,
            sample_mod.HYPERLIQUID_FILLS,
            sample_mod.CANDLES_5M_2025_10,
        ]
    )
    for name in files:
        assert f"## {name}" in text
    assert text.count(" @ ") >= len(files)  # a repository @ commit for each
    assert sum(p.stat().st_size for p in folder.iterdir()) < 8_000_000

"""Liquidation fills without a trustworthy side: the side inferred from the price path, the file
reader, and the bundled Hyperliquid sample."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from liqdesk.core.series import LONG, SHORT, Candles
from liqdesk.errors import DataError
from liqdesk.feeds.fills import infer_sides, read_fills_report
from liqdesk.feeds.resources import resource_path
from liqdesk.feeds.sample import CANDLES_1M_2025_05, HYPERLIQUID_FILLS, load_sample

M = 60_000
T0 = 1_748_000_000_000 // M * M


def path_candles(closes: list[float]) -> Candles:
    c = np.asarray(closes, float)
    o = np.r_[c[0], c[:-1]]
    n = len(c)
    return Candles(T0 + np.arange(n, dtype=np.int64) * M, o, np.maximum(o, c) + 1, np.minimum(o, c) - 1, c,
                   np.full(n, 10.0), M)  # fmt: skip


def test_a_fill_below_a_falling_path_is_a_long_and_above_a_rising_one_a_short():
    falling = path_candles([100_000.0] * 40 + list(np.linspace(100_000, 99_000, 20)))
    rising = path_candles([100_000.0] * 40 + list(np.linspace(100_000, 101_000, 20)))
    t = np.array([T0 + 55 * M + 5_000])
    usd = np.array([1_000.0])
    assert infer_sides(t, np.array([99_200.0]), usd, falling)[0] == LONG
    assert infer_sides(t, np.array([100_800.0]), usd, rising)[0] == SHORT
    # Below the path while price rises, above it while price falls: not what a forced order does.
    assert infer_sides(t, np.array([99_200.0]), usd, rising)[0] == 0
    assert infer_sides(t, np.array([100_800.0]), usd, falling)[0] == 0


def test_a_fill_close_to_the_path_or_without_history_stays_ambiguous():
    flat = path_candles([100_000.0] * 30 + [99_990.0] * 30)
    t = np.array([T0 + 50 * M])
    usd = np.array([10.0])
    # 0.05 % below the recent path: inside the 0.10 % threshold.
    assert infer_sides(t, np.array([99_950.0]), usd, flat)[0] == 0
    assert infer_sides(t, np.array([99_850.0]), usd, flat)[0] == LONG
    assert infer_sides(t, np.array([99_850.0]), usd, flat, threshold=0.002)[0] == 0
    # Fewer than 30 minutes of candles before the fill, or after the last bar: no path to judge by.
    early = np.array([T0 + 10 * M, T0 + 61 * M])
    assert infer_sides(early, np.array([90_000.0, 90_000.0]), np.ones(2), flat).tolist() == [0, 0]


def test_fills_of_one_liquidation_share_one_side_from_their_usd_weighted_price():
    falling = path_candles([100_000.0] * 40 + list(np.linspace(100_000, 99_500, 20)))
    t = np.full(3, T0 + 55 * M + 1)
    ref = float(np.median(falling.close[25:55]))
    # One tiny piece alone would be ambiguous (0.01 % below); the big pieces put the order 0.2 % below.
    price = np.array([ref * 0.9999, ref * 0.998, ref * 0.998])
    usd = np.array([5.0, 50_000.0, 40_000.0])
    assert infer_sides(t, price, usd, falling).tolist() == [LONG, LONG, LONG]
    alone = infer_sides(t[:1], price[:1], usd[:1], falling)
    assert alone.tolist() == [0]


def test_reader_rejects_bad_rows_by_line_and_refuses_other_files(tmp_path):
    candles = path_candles([100_000.0] * 40 + list(np.linspace(100_000, 99_000, 20)))
    t = T0 + 55 * M
    good = [f"{t + i},BTC,{99_200 + i},{1000 + i}" for i in range(20)]
    text = "time_ms,coin,price,size_usd\n" + "\n".join(
        [*good[:5], f"{t},BTC,-5,10", *good[5:], f"{t},BTC,99100"]
    )
    p = tmp_path / "fills.csv.gz"
    p.write_bytes(gzip.compress(text.encode()))
    liq, report, counts = read_fills_report(p, candles)
    assert len(liq) == 20 and set(liq.side.tolist()) == {LONG} and counts.long == 20 and counts.ambiguous == 0
    assert set(liq.exchange.tolist()) == {"hyperliquid"} and set(liq.symbol.tolist()) == {"BTC/USDC:USDC"}
    np.testing.assert_allclose(liq.quantity * liq.price, liq.usd)
    msgs = report.messages()
    assert any(":7: price -5 is not a positive price" in m for m in msgs), msgs
    assert any(":23: 3 fields, expected 4" in m for m in msgs), msgs
    other = tmp_path / "candles.csv"
    other.write_text("open_time,open,high,low,close,volume\n1,2,3,4,5,6\n")
    with pytest.raises(
        DataError, match="not a liquidation fills file: no time_ms, coin, price, size_usd column"
    ):
        read_fills_report(other, candles)
    with pytest.raises(DataError, match="file not found"):
        read_fills_report(tmp_path / "missing.csv", candles)


def test_the_bundled_hyperliquid_fills_get_their_sides_from_the_path():
    candles = load_sample("btcusdt-1m-2025-05").candles
    liq, report, counts = read_fills_report(resource_path("sample", HYPERLIQUID_FILLS), candles)
    assert (counts.long, counts.short, counts.ambiguous) == (27, 437, 4)
    assert counts.usd_ambiguous == pytest.approx(3_750, abs=1) and counts.no_path == 0
    assert report.rows == 468 and len(liq) == 464 and not report.rejected
    assert "27 long, 437 short, 4 ambiguous" in report.summary()
    hour = (liq.time // 3_600_000) % 24
    # The 15:21 dip liquidated longs; the evening rise to 109k shorts (the data notes' reading).
    assert set(liq.side[hour == 15].tolist()) == {LONG}
    assert set(liq.side[(hour >= 22) | (hour <= 1)].tolist()) == {SHORT}
    assert liq.usd.sum() == pytest.approx(6_127_765 - 3_750, rel=1e-4)


def test_the_sample_pairs_the_fills_with_candles_that_cover_them():
    s = load_sample("btcusdt-1m-2025-05")
    c, liq = s.candles, s.liquidations
    assert liq is not None and len(liq) == 464 and s.open_interest is None
    assert len(c) == 2_667 and np.all(np.diff(c.open_time) == M)
    assert c.open_time[0] == np.datetime64("2025-05-25T10:33", "ms").astype(np.int64)
    assert c.close_time[-1] == np.datetime64("2025-05-27T07:00", "ms").astype(np.int64)
    # Every fill within 24 h of candles after it (the default scoring horizon) and near its bar's range:
    # within 0.6 %, not inside it: Hyperliquid's own wick at 22:11:54 reached 109,082, 0.5 % above the
    # Binance bar's high (65 fills lie more than 0.35 % above their Binance bar).
    assert liq.time[-1] + 24 * 3_600_000 <= c.close_time[-1]
    bar = np.searchsorted(c.open_time, liq.time, "right") - 1
    assert np.all(liq.price >= c.low[bar] * 0.994) and np.all(liq.price <= c.high[bar] * 1.006)
    assert np.count_nonzero(liq.price > c.high[bar] * 1.0035) == 65
    assert any("4 ambiguous" in n for n in s.notes)
    assert "Hyperliquid" in s.label and CANDLES_1M_2025_05.startswith("binance_um_BTCUSDT_1m")

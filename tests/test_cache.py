from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from liqdesk.core.series import LONG, SHORT, Candles, OpenInterest
from liqdesk.feeds.cache import Cache, data_dir, default_path
from liqdesk.feeds.store_tables import subtract_ranges
from liqdesk.feeds.venues.base import LiquidationRecord

H = 3_600_000
T0 = 1_746_921_600_000


def _candles(n: int, start: int = T0, *, quote: bool = True) -> Candles:
    t = start + np.arange(n, dtype=np.int64) * H
    x = np.linspace(100.0, 110.0, n)
    return Candles(t, x, x + 1, x - 1, x + 0.5, x * 10, H,
                   quote_volume=x * 1000 if quote else None, taker_buy_volume=x * 4 if quote else None)  # fmt: skip


def test_data_dir_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "d"))
    assert data_dir() == tmp_path / "d"
    with Cache() as c:
        assert c.path == default_path() and c.path.parent == tmp_path / "d"
        assert c._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_candles_round_trip_and_idempotent(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.db") as c:
        k = _candles(50)
        c.put_candles("binanceusdm", "BTC/USDT:USDT", "1h", k)
        c.put_candles("binanceusdm", "BTC/USDT:USDT", "1h", k.between(T0 + 10 * H, T0 + 20 * H))
        assert c.count("candles") == 50
        got = c.get_candles("binanceusdm", "BTC/USDT:USDT", "1h")
        np.testing.assert_array_equal(got.open_time, k.open_time)
        np.testing.assert_array_equal(got.quote_volume, k.quote_volume)
        np.testing.assert_array_equal(got.taker_buy_volume, k.taker_buy_volume)
        assert got.mark_high is None
        # a revised bar replaces the stored one; stored optional columns survive a row without them
        rev = _candles(1, T0, quote=False)
        rev = Candles(rev.open_time, rev.open, rev.high + 5, rev.low, rev.close, rev.volume, H)
        c.put_candles("binanceusdm", "BTC/USDT:USDT", "1h", rev)
        again = c.get_candles("binanceusdm", "BTC/USDT:USDT", "1h", T0, T0 + H)
        assert again.high[0] == k.high[0] + 5 and again.quote_volume[0] == k.quote_volume[0]
        # mark wicks
        c.put_mark("binanceusdm", "BTC/USDT:USDT", "1h", k.open_time, k.high + 2, k.low - 2)
        m = c.get_candles("binanceusdm", "BTC/USDT:USDT", "1h")
        np.testing.assert_array_equal(m.mark_low, k.low - 2)
        # other series are separate
        assert len(c.get_candles("binanceusdm", "ETH/USDT:USDT", "1h")) == 0
        assert len(c.get_candles("binanceusdm", "BTC/USDT:USDT", "1m")) == 0


def test_gap_detection_and_coverage_merge(tmp_path: Path) -> None:
    assert subtract_ranges(0, 100, [(10, 20), (15, 30), (50, 60)]) == [(0, 10), (30, 50), (60, 100)]
    assert subtract_ranges(0, 100, [(0, 100)]) == []
    assert subtract_ranges(0, 100, []) == [(0, 100)]
    with Cache(tmp_path / "c.db") as c:
        key = ("candles", "binanceusdm", "BTC/USDT:USDT", "1h")
        c.add_coverage(*key, 0, 100)
        c.add_coverage(*key, 200, 300)
        c.add_coverage(*key, 100, 150)  # touches the first: merged
        assert c.covered(*key) == [(0, 150), (200, 300)]
        assert c.missing(*key, 50, 400) == [(150, 200), (300, 400)]
        c.add_coverage(*key, 140, 260)
        assert c.covered(*key) == [(0, 300)]


def test_open_interest_upsert(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.db") as c:
        oi = OpenInterest(np.array([T0, T0 + H]), np.array([1e9, 2e9]))
        c.put_open_interest("binanceusdm", "BTC/USDT:USDT", "1h", oi)
        c.put_open_interest(
            "binanceusdm", "BTC/USDT:USDT", "1h", OpenInterest(np.array([T0 + H]), np.array([3e9]))
        )
        got = c.get_open_interest("binanceusdm", "BTC/USDT:USDT", "1h")
        assert got.time.tolist() == [T0, T0 + H] and got.usd.tolist() == [1e9, 3e9]


def test_liquidations_stored_once(tmp_path: Path) -> None:
    r1 = LiquidationRecord("binanceusdm", "BTC/USDT:USDT", T0, LONG, 100.0, 2.0, 200.0, 99.0, "SELL")
    r2 = LiquidationRecord("binanceusdm", "BTC/USDT:USDT", T0 + 5, SHORT, 101.0, 1.0, 101.0, 102.0, "BUY")
    with Cache(tmp_path / "c.db") as c:
        assert c.put_liquidations([r1, r2]) == 2
        assert c.put_liquidations([r1, r2, r1]) == 0
        liq = c.get_liquidations("binanceusdm", "BTC/USDT:USDT")
        assert liq.side.tolist() == [LONG, SHORT] and liq.usd.tolist() == [200.0, 101.0]
        assert len(c.get_liquidations(start=T0 + 1)) == 1
        assert c.liquidation_rows()[0][7:] == (99.0, "SELL")


def test_corrupt_file_moved_aside_and_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    p = tmp_path / "liqdesk.sqlite3"
    p.write_bytes(b"this is not a database\0" * 500)
    with caplog.at_level(logging.WARNING), Cache(p) as c:
        assert c.moved_aside is not None and c.moved_aside.exists()
        assert c.moved_aside.read_bytes().startswith(b"this is not")
        c.put_candles("binanceusdm", "BTC/USDT:USDT", "1h", _candles(3))
        assert c.count("candles") == 3
    assert "salvaged into a fresh database" in caplog.text and f"kept as {c.moved_aside}" in caplog.text


def test_foreign_database_moved_aside(tmp_path: Path) -> None:
    p = tmp_path / "liqdesk.sqlite3"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE accounts (id INTEGER, name TEXT)")
    con.commit()
    con.close()
    with Cache(p) as c:
        assert c.moved_aside is not None
        assert c.count("candles") == 0
    with Cache(p) as c:  # our own file opens as is
        assert c.moved_aside is None


def test_truncated_database_moved_aside(tmp_path: Path) -> None:
    p = tmp_path / "liqdesk.sqlite3"
    with Cache(p) as c:
        c.put_candles("binanceusdm", "BTC/USDT:USDT", "1h", _candles(2000))
        c._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 3] + b"\xff" * 4096 + data[len(data) // 3 + 4096 :])
    with Cache(p) as c:  # whatever happened, the cache opens and works
        c.put_candles("binanceusdm", "BTC/USDT:USDT", "1h", _candles(2))
        assert len(c.get_candles("binanceusdm", "BTC/USDT:USDT", "1h", T0, T0 + 2 * H)) == 2

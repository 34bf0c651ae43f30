"""The storage interface: one suite run on both stores (SQLite and a real PostgreSQL), then what only PostgreSQL
has (a server that goes away, another session's lock, several recorders at once) and the store URLs."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from liqdesk.core.series import LONG, SHORT, Candles, OpenInterest
from liqdesk.errors import ConfigError
from liqdesk.feeds.cache import Cache, CacheError, CacheForeign, CacheLocked, CacheUnreachable
from liqdesk.feeds.store import (
    MARKET_TABLES,
    open_positions,
    open_store,
    parse_store_url,
    resolve_store_url,
    save_store_url,
    saved_store_url,
    strip_password,
    url_for_saving,
)
from liqdesk.feeds.venues.base import LiquidationRecord
from tests._postgres import PgCluster

H = 3_600_000
T0 = 1_746_921_600_000
ROOT = Path(__file__).resolve().parents[1]


def _candles(n: int, start: int = T0, *, quote: bool = True) -> Candles:
    t = start + np.arange(n, dtype=np.int64) * H
    x = np.linspace(100.0, 110.0, n)
    return Candles(t, x, x + 1, x - 1, x + 0.5, x * 10, H,
                   quote_volume=x * 1000 if quote else None, taker_buy_volume=x * 4 if quote else None)  # fmt: skip


def _liq(
    exchange: str, t: int, side: int = LONG, price: float = 100.0, qty: float = 1.0
) -> LiquidationRecord:
    return LiquidationRecord(
        exchange, "BTC/USDT:USDT", t, side, price, qty, price * qty, price * 0.99, "SELL"
    )


# -- the same semantics on both stores ------------------------------------------------------------------------------
def test_candles_written_twice_are_stored_once_and_come_back_equal(store_url: str) -> None:
    with open_store(store_url) as s:
        k = _candles(50)
        assert s.put_candles("binanceusdm", "BTC/USDT:USDT", "1h", k) == 50
        s.put_candles("binanceusdm", "BTC/USDT:USDT", "1h", k.between(T0 + 10 * H, T0 + 20 * H))
        assert s.count("candles") == 50
        got = s.get_candles("binanceusdm", "BTC/USDT:USDT", "1h")
        for name in (
            "open_time",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "quote_volume",
            "taker_buy_volume",
        ):
            np.testing.assert_array_equal(getattr(got, name), getattr(k, name))
        assert (
            got.mark_high is None and s.last_candle_time("binanceusdm", "BTC/USDT:USDT", "1h") == T0 + 49 * H
        )
        # a revised bar replaces the stored one; stored optional columns survive a bar without them
        rev = Candles(k.open_time[:1], k.open[:1], k.high[:1] + 5, k.low[:1], k.close[:1], k.volume[:1], H)
        s.put_candles("binanceusdm", "BTC/USDT:USDT", "1h", rev)
        again = s.get_candles("binanceusdm", "BTC/USDT:USDT", "1h", T0, T0 + H)
        assert again.high[0] == k.high[0] + 5 and again.quote_volume is not None
        assert again.quote_volume[0] == k.quote_volume[0]  # type: ignore[index]
        s.put_mark("binanceusdm", "BTC/USDT:USDT", "1h", k.open_time, k.high + 2, k.low - 2)
        np.testing.assert_array_equal(s.get_candles("binanceusdm", "BTC/USDT:USDT", "1h").mark_low, k.low - 2)
        # a range, and other series apart
        assert len(s.get_candles("binanceusdm", "BTC/USDT:USDT", "1h", T0 + 5 * H, T0 + 8 * H)) == 3
        assert len(s.get_candles("binanceusdm", "ETH/USDT:USDT", "1h")) == 0
        assert s.last_candle_time("bybit", "BTC/USDT:USDT", "1h") is None


def test_open_interest_is_upserted(store_url: str) -> None:
    with open_store(store_url) as s:
        oi = OpenInterest(np.array([T0, T0 + 300_000]), np.array([1e9, 1.1e9]))
        s.put_open_interest("binanceusdm", "BTC/USDT:USDT", "5m", oi)
        s.put_open_interest(
            "binanceusdm", "BTC/USDT:USDT", "5m", OpenInterest(np.array([T0]), np.array([2e9]))
        )
        got = s.get_open_interest("binanceusdm", "BTC/USDT:USDT", "5m")
        assert got.time.tolist() == [T0, T0 + 300_000] and got.usd.tolist() == [2e9, 1.1e9]
        assert s.count("open_interest") == 2


def test_the_tape_keeps_two_venues_in_one_second_and_one_event_received_twice_once(store_url: str) -> None:
    with open_store(store_url) as s:
        same_second = [_liq("binanceusdm", T0), _liq("bybit", T0), _liq("okx", T0)]
        other = [
            _liq("binanceusdm", T0, SHORT),
            _liq("binanceusdm", T0, LONG, 100.5),
            _liq("binanceusdm", T0 + 1),
        ]
        assert s.put_liquidations(same_second + other) == 6
        assert s.put_liquidations(same_second) == 0  # a reconnect, a second recorder: stored once
        assert s.put_liquidations([*other, _liq("okx", T0 + 5)]) == 1
        assert s.count("liquidations") == 7
        tape = s.get_liquidations(start=T0, end=T0 + 1)  # the whole tape in a range, every venue
        assert sorted(tape.exchange.tolist()) == ["binanceusdm"] * 3 + ["bybit", "okx"]
        rows = s.liquidation_rows("binanceusdm", "BTC/USDT:USDT")
        assert [r[2] for r in rows] == [T0, T0, T0, T0 + 1] and rows[0][7] == pytest.approx(99.0)
        assert rows[0][8] == "SELL"
        assert len(s.get_liquidations("okx", "BTC/USDT:USDT", T0 + 1, T0 + 10)) == 1


def test_coverage_merges_and_gaps_are_what_was_never_fetched(store_url: str) -> None:
    with open_store(store_url) as s:
        args = ("candles", "binanceusdm", "BTC/USDT:USDT", "1h")
        assert s.missing(*args, 0, 100) == [(0, 100)]
        s.add_coverage(*args, 10, 20)
        s.add_coverage(*args, 20, 30)  # touching: merged
        s.add_coverage(*args, 50, 60)
        s.add_coverage(*args, 55, 70)  # overlapping: merged
        s.add_coverage(*args, 5, 5)  # empty: nothing
        assert s.covered(*args) == [(10, 30), (50, 70)]
        assert s.missing(*args, 0, 100) == [(0, 10), (30, 50), (70, 100)]
        s.add_coverage(*args, 25, 55)
        assert s.covered(*args) == [(10, 70)] and s.count("coverage") == 1
        assert s.covered("oi", "binanceusdm", "BTC/USDT:USDT", "1h") == []


def test_a_read_only_store_reads_nothing_stored_as_empty_and_writes_nothing(store_url: str) -> None:
    with open_store(store_url, read_only=True) as s:
        assert s.exists is False and s.count("liquidations") == 0
        assert len(s.get_candles("binanceusdm", "BTC/USDT:USDT", "1h")) == 0
        assert s.liquidation_rows() == [] and s.covered("candles", "x", "y", "1h") == []
        with pytest.raises(CacheError):
            s.put_liquidations([_liq("okx", T0)])
    with open_store(store_url) as w:
        w.put_liquidations([_liq("okx", T0)])
        with open_store(store_url, read_only=True) as r:  # a reader beside a writer
            assert r.count("liquidations") == 1 and r.read_only


def test_a_store_written_by_a_newer_liqdesk_is_refused_and_left_alone(store_url: str) -> None:
    with open_store(store_url) as s:
        s.put_liquidations([_liq("okx", T0)])
    target = parse_store_url(store_url)
    if target.kind == "sqlite":
        assert target.path is not None
        with sqlite3.connect(target.path) as c:
            c.execute("PRAGMA user_version = 99")
        c.close()
    else:
        import psycopg

        with psycopg.connect(store_url, autocommit=True) as c:
            c.execute("UPDATE liqdesk.schema_version SET version = 99 WHERE component = 'market'")
    for kw in ({}, {"read_only": True}):
        with pytest.raises(CacheForeign, match="newer liqdesk"):
            open_store(store_url, **kw)  # type: ignore[arg-type]


def test_positions_live_in_both_stores(store_url: str) -> None:
    from liqdesk.feeds.addresses import Activity
    from liqdesk.feeds.venues.hyperliquid import MarketContext, parse_clearinghouse_state

    alice = "0x" + "a1" * 20
    answer = {"marginSummary": {"accountValue": "1000"}, "withdrawable": "0", "assetPositions": [
        {"type": "oneWay", "position": {"coin": "BTC", "szi": "0.5", "entryPx": "70000", "positionValue": "35000",
                                        "unrealizedPnl": "0", "returnOnEquity": "0", "liquidationPx": "66520.5",
                                        "marginUsed": "1750", "maxLeverage": 40, "leverage": {"type": "cross",
                                                                                              "value": 20}}}]}  # fmt: skip
    state = parse_clearinghouse_state(answer, alice)
    with open_positions(store_url) as st:
        assert st.add_accounts({alice: Activity(T0 + 10, T0 + 20, 2, 100.0)}) == 1
        assert st.add_accounts({alice: Activity(T0, T0 + 5, 1, 50.0)}, imported=True) == 0
        (row,) = st.accounts()
        assert (row.first_seen, row.last_seen, row.trades, row.notional, row.imported) == (T0, T0 + 20, 3, 150.0,
                                                                                          True)  # fmt: skip
        assert st.put_sample(alice, state, T0, ["BTC"]) is True
        assert st.put_sample(alice, state, T0, ["BTC"]) is False  # written twice, stored once
        now = st.state_at("BTC", T0 + 1)
        assert now.liquidation_px.tolist() == [66_520.5] and st.accounts()[0].last_sampled == T0
        assert st.put_markets(T0, {"BTC": MarketContext(100.0, 70_000.0)}) == 1
        assert st.put_markets(T0, {"BTC": MarketContext(100.0, 70_000.0)}) == 0
        assert st.market_at("BTC", T0 + 5) == (T0, MarketContext(100.0, 70_000.0))
        key = st.account_key(alice)
    with open_positions(store_url, account_keys="address") as st:
        assert st.account_key(alice) == key  # the salt and the key stay with the store
        assert st.count("positions") == 1 and st.count_sampled_since(T0) == 1


def test_a_tape_is_copied_between_stores_idempotently_with_counts(
    store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from liqdesk.app.cli import main

    src = f"sqlite://{(tmp_path / 'desk.sqlite3').as_posix()}"
    with open_store(src) as s:
        s.put_candles("binanceusdm", "BTC/USDT:USDT", "1h", _candles(30))
        s.put_open_interest(
            "binanceusdm", "BTC/USDT:USDT", "5m", OpenInterest(np.array([T0]), np.array([1e9]))
        )
        s.put_liquidations([_liq("binanceusdm", T0 + i) for i in range(25)] + [_liq("bybit", T0)])
        s.add_coverage("candles", "binanceusdm", "BTC/USDT:USDT", "1h", T0, T0 + 30 * H)
    with open_positions(src) as p:
        from liqdesk.feeds.venues.hyperliquid import MarketContext

        p.put_markets(T0, {"BTC": MarketContext(100.0, 70_000.0), "ETH": MarketContext(5.0, 3000.0)})
    if parse_store_url(store_url).kind == "sqlite":
        store_url = f"sqlite://{(tmp_path / 'other.sqlite3').as_posix()}"
    with open_store(store_url) as t:  # the target already holds part of it
        t.put_liquidations([_liq("binanceusdm", T0 + i) for i in range(5)])
    assert main(["store", "copy", "--from", src, "--to", store_url, "--batch", "7", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "liquidations                       26 read           21 new" in out, out
    assert "candles                            30 read           30 new" in out
    assert "position_markets                    2 read            2 new" in out
    assert main(["store", "copy", "--from", src, "--to", store_url, "--quiet"]) == 0
    again = capsys.readouterr().out
    assert "liquidations                       26 read            0 new" in again  # idempotent
    assert "candles                            30 read            0 new" in again
    with open_store(store_url, read_only=True) as t:
        assert t.count("liquidations") == 26 and t.count("candles") == 30 and t.count("open_interest") == 1
        assert t.covered("candles", "binanceusdm", "BTC/USDT:USDT", "1h") == [(T0, T0 + 30 * H)]
        src_rows = Cache(tmp_path / "desk.sqlite3", read_only=True).liquidation_rows()
        assert t.liquidation_rows() == src_rows
    assert main(["store", "info", "--store", store_url]) == 0
    assert "liquidations" in capsys.readouterr().out
    assert main(["store", "copy", "--from", src, "--to", src]) == 2


def test_an_sqlite_file_without_the_time_index_gets_it_when_opened_for_writing(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    with Cache(db) as c:
        c.put_liquidations([_liq("okx", T0)])
    with sqlite3.connect(db) as c:  # as an earlier liqdesk wrote it: no index on time
        c.execute("DROP INDEX liquidations_time")
    c.close()

    def indexes() -> set[str]:
        with sqlite3.connect(db) as c:
            names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
            assert c.execute("PRAGMA user_version").fetchone()[0] == 1  # an older liqdesk still opens it
        c.close()
        return names

    with Cache(db, read_only=True) as r:  # a reader changes nothing
        assert r.count("liquidations") == 1
    assert "liquidations_time" not in indexes()
    with Cache(db) as w:
        assert len(w.get_liquidations(start=T0, end=T0 + 1)) == 1
    assert "liquidations_time" in indexes()


# -- PostgreSQL only ------------------------------------------------------------------------------------------------
def test_postgres_schema_is_versioned_and_a_foreign_schema_is_left_alone(
    pg_url: str, pg_cluster: PgCluster
) -> None:
    import psycopg

    with open_store(pg_url) as s:
        assert s.exists and s.location.startswith("postgresql liqdesk@")
    with psycopg.connect(pg_url, autocommit=True) as c:
        rows = c.execute("SELECT component, version FROM liqdesk.schema_version").fetchall()
        indexes = {r[0] for r in c.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'liqdesk'")}
    assert rows == [("market", 1)]
    assert {"candles_pkey", "liquidations_pkey", "liquidations_time", "coverage_pkey"} <= indexes
    other = pg_cluster.database("foreign")
    with psycopg.connect(other, autocommit=True) as c:
        c.execute("CREATE SCHEMA liqdesk")
        c.execute("CREATE TABLE liqdesk.candles (x int)")
    with pytest.raises(CacheForeign, match="did not create"):
        open_store(other)
    pg_cluster.drop(other)


def test_postgres_lock_held_by_another_session_is_a_clear_cache_locked(pg_url: str) -> None:
    import psycopg

    with open_store(pg_url, busy_timeout_s=0.3) as s:
        s.put_liquidations([_liq("okx", T0)])
        holder = psycopg.connect(pg_url)
        try:
            holder.execute("LOCK TABLE liqdesk.liquidations IN ACCESS EXCLUSIVE MODE")
            t = time.monotonic()
            with pytest.raises(CacheLocked, match="locked by another session"):
                s.put_liquidations([_liq("okx", T0 + 1)])
            assert time.monotonic() - t < 5
        finally:
            holder.rollback()
            holder.close()
        assert s.put_liquidations([_liq("okx", T0 + 1)]) == 1  # the same store goes on
        assert s.count("liquidations") == 2


def test_postgres_gone_and_back_unreachable_then_stored(pg_url: str, pg_cluster: PgCluster) -> None:
    from liqdesk.feeds import store_pg

    with open_store(pg_url) as s:
        s.put_liquidations([_liq("okx", T0)])
        pg_cluster.pg_ctl("stop", "-m", "fast")
        try:
            with pytest.raises(CacheUnreachable, match="cannot be reached"):
                s.put_liquidations([_liq("okx", T0 + 1)])
            with pytest.raises(CacheUnreachable):
                s.count("liquidations")
            assert s.write_error is not None
            # opened while the server is away: with fallback_read_only it opens, disconnected
            away = open_store(pg_url, fallback_read_only=True)
            assert isinstance(away.write_error, CacheUnreachable)
            with pytest.raises(CacheUnreachable):
                open_store(pg_url)
        finally:
            pg_cluster.pg_ctl("start")
        s.reopen()  # what the live feed's retry does
        assert s.put_liquidations([_liq("okx", T0 + 1)]) == 1 and s.count("liquidations") == 2
        store_pg_store = away
        store_pg_store._session._next_try = 0.0  # type: ignore[attr-defined]
        assert store_pg_store.count("liquidations") == 2 and isinstance(store_pg_store, store_pg.PgStore)
        away.close()


_RECORDER = textwrap.dedent("""
    import sys
    import numpy as np
    from liqdesk.core.series import Candles
    from liqdesk.feeds.store import open_store
    from liqdesk.feeds.venues.base import LiquidationRecord

    url, who = sys.argv[1], int(sys.argv[2])
    H, T0 = 3_600_000, 1_746_921_600_000
    # both recorders see the same events and bars, in batches of different sizes, overlapping
    events = [LiquidationRecord(ex, "BTC/USDT:USDT", T0 + (i // 3) * 1000, 1 if i % 2 else -1, 100.0 + i % 7,
                                1.0 + (i % 5), 100.0, None, "") for i in range(1500)
              for ex in ("binanceusdm", "bybit")]
    step = 37 if who == 0 else 53
    with open_store(url) as s:
        new = 0
        for i in range(0, len(events), step):
            new += s.put_liquidations(events[i:i + step])
            j = i // step
            t = T0 + np.arange(j * 3, j * 3 + 5, dtype=np.int64) * H
            x = np.full(5, 100.0 + who)
            s.put_candles("binanceusdm", "BTC/USDT:USDT", "1h", Candles(t, x, x, x, x, x, H))
            s.add_coverage("candles", "binanceusdm", "BTC/USDT:USDT", "1h", int(t[0]), int(t[-1]) + H)
    print(new)
""")


def test_two_recorders_writing_the_same_tape_at_once_store_each_row_once(pg_url: str, tmp_path: Path) -> None:
    script = tmp_path / "recorder.py"
    script.write_text(_RECORDER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, str(script), pg_url, str(k)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for k in (0, 1)]  # fmt: skip
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    new = [int(o[0].strip()) for o in outs]
    with open_store(pg_url, read_only=True) as s:
        assert s.count("liquidations") == 3000  # none lost, none twice
        assert sum(new) == 3000  # each row was new to exactly one of them
        assert len(s.get_liquidations(start=T0, end=T0 + 1000)) == 6  # two venues, same second: six rows
        bars = s.get_candles("binanceusdm", "BTC/USDT:USDT", "1h")
        assert len(bars) == len(np.unique(bars.open_time)) and s.count("candles") == len(bars)
        assert len(s.covered("candles", "binanceusdm", "BTC/USDT:USDT", "1h")) == 1  # merged, not overlapping


# -- URLs and credentials -------------------------------------------------------------------------------------------
def test_store_urls_and_the_password_never_saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("LIQDESK_STORE", raising=False)
    d = parse_store_url(None)
    assert d.kind == "sqlite" and d.path == tmp_path / "data" / "liqdesk.sqlite3"
    f = parse_store_url(f"sqlite://{tmp_path}/x.db")
    assert f.path == tmp_path / "x.db" and f.location == f"sqlite {tmp_path}/x.db"
    assert parse_store_url(str(tmp_path / "y.db")).path == tmp_path / "y.db"
    pg = parse_store_url("postgresql://desk:s3cret@db.example:5433/liqdesk?sslmode=require")
    assert pg.kind == "postgresql" and pg.had_password and "s3cret" not in pg.safe + pg.location
    assert pg.location == "postgresql desk@db.example:5433/liqdesk"
    assert pg.safe == "postgresql://desk@db.example:5433/liqdesk?sslmode=require"
    assert strip_password("postgres://u@h/db?password=x&sslmode=require") == (
        "postgres://u@h/db?sslmode=require",
        True,
    )
    assert url_for_saving("postgresql://u@h/db") == ("postgresql://u@h/db", "")
    for bad in ("mysql://u@h/db", "postgresql://u@h:port/db", "sqlite://remote-host/x"):
        with pytest.raises(ConfigError):
            parse_store_url(bad)
    # the window's saved store: no password in config.json, and the user is told
    said = save_store_url("postgresql://desk:s3cret@db.example/liqdesk")
    assert "password was not saved" in said and "~/.pgpass" in said
    text = (tmp_path / "config" / "config.json").read_text()
    assert "s3cret" not in text and json.loads(text)["store"] == "postgresql://desk@db.example/liqdesk"
    assert saved_store_url() == "postgresql://desk@db.example/liqdesk"
    # --store, then $LIQDESK_STORE, then the saved one
    assert resolve_store_url(None, saved_store_url()) == "postgresql://desk@db.example/liqdesk"
    monkeypatch.setenv("LIQDESK_STORE", "sqlite:///tmp/env.db")
    assert resolve_store_url(None, saved_store_url()) == "sqlite:///tmp/env.db"
    assert resolve_store_url("postgresql://a@b/c", saved_store_url()) == "postgresql://a@b/c"
    save_store_url("")
    assert saved_store_url() is None


def test_a_password_from_pgpass_connects(
    pg_cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL carries no password; libpq finds it in the .pgpass file (here the server also checks it)."""
    import psycopg

    url = pg_cluster.database("pgpass")
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("DROP ROLE IF EXISTS desk")
        c.execute("CREATE ROLE desk LOGIN PASSWORD 'desk-pw'")
        c.execute(f'ALTER DATABASE "{pg_cluster.dbname(url)}" OWNER TO desk')
    hba = pg_cluster.socket_dir / "data" / "pg_hba.conf"
    original = hba.read_text()
    try:
        hba.write_text("local all desk scram-sha-256\n" + original)
        pg_cluster.pg_ctl("reload")
        time.sleep(0.3)
        desk_url = url.replace("liqdesk@", "desk@")
        monkeypatch.setenv("PGPASSFILE", str(tmp_path / "nowhere"))
        with pytest.raises(CacheError, match="refused the login.*pgpass"):
            open_store(desk_url)
        pgpass = tmp_path / "pgpass"
        pgpass.write_text("*:*:*:desk:desk-pw\n")
        pgpass.chmod(0o600)
        monkeypatch.setenv("PGPASSFILE", str(pgpass))
        with open_store(desk_url) as s:
            assert s.put_liquidations([_liq("okx", T0)]) == 1
            assert "desk-pw" not in s.url + s.location
    finally:
        hba.write_text(original)
        pg_cluster.pg_ctl("reload")
        pg_cluster.drop(url)
        with psycopg.connect(pg_cluster.url(), autocommit=True) as c:
            c.execute("DROP ROLE IF EXISTS desk")


def test_every_market_table_is_listed() -> None:
    assert MARKET_TABLES[0] == "liquidations"  # copied first: the tape cannot be fetched again


def test_a_read_only_role_reads_the_tape_and_is_told_it_cannot_write(
    pg_url: str, pg_cluster: PgCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    from liqdesk.app.cli import main

    with open_store(pg_url) as s:
        s.put_liquidations([_liq("okx", T0), _liq("bybit", T0)])
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("DROP ROLE IF EXISTS trader")
        c.execute("CREATE ROLE trader LOGIN")
        c.execute("GRANT USAGE ON SCHEMA liqdesk TO trader")
        c.execute("GRANT SELECT ON ALL TABLES IN SCHEMA liqdesk TO trader")
    reader = pg_url.replace("liqdesk@", "trader@")
    try:
        assert (
            main(
                ["liquidations", "--exchange", "okx", "--symbol", "BTC/USDT:USDT", "--csv", "--store", reader]
            )
            == 0
        )
        assert len(capsys.readouterr().out.splitlines()) == 2
        with open_store(reader) as s:  # opened for writing: the schema is current, nothing to create
            assert s.count("liquidations") == 2
            with pytest.raises(CacheError, match="does not allow this user"):
                s.put_liquidations([_liq("okx", T0 + 1)])
    finally:
        with psycopg.connect(pg_url, autocommit=True) as c:
            c.execute("DROP OWNED BY trader")
            c.execute("DROP ROLE trader")

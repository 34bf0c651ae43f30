"""Exchange and cache failures on the live paths: HTTP 500/503 are retried like 429 and end in one clear line; a
cache that refuses writes (a real lock held by another process) loses no liquidation and stops no command."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from liqdesk.app.cli import main
from liqdesk.app.commands.record import keep_unstored
from liqdesk.feeds import cache as cache_mod
from liqdesk.feeds.cache import Cache
from liqdesk.feeds.history import RetryPolicy, load_history_async
from liqdesk.feeds.live import CandleUpdate, FeedEvent, LiquidationEvent, LiveFeed, StatusEvent
from liqdesk.feeds.venues.base import LiquidationRecord
from tests._live_helpers import (
    FAST,
    FAST_REST,
    SYMBOL,
    FakeBinance,
    ServerThread,
    force_order_event,
    force_orders,
    until,
)

H = 3_600_000

_HOLD = textwrap.dedent("""
    import sqlite3, sys
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO coverage VALUES ('x', 'x', 'x', 'x', 1, 2)")
    print("locked", flush=True)
    sys.stdin.readline()
    con.execute("ROLLBACK")
""")


class Lock:
    """A write lock held by another process until release()."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("\n")
            self.proc.stdin.flush()
            self.proc.wait(10)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


def test_http_500_and_503_are_retried_like_429(tmp_path: Path) -> None:
    async def main_() -> None:
        async with FakeBinance() as s:
            s.fail_next("/fapi/v1/klines", 500, count=2)
            s.fail_next("/futures/data/openInterestHist", 503, count=1)
            msgs: list[str] = []
            with Cache(tmp_path / "c.db") as db:
                h = await load_history_async(
                    "binanceusdm", SYMBOL, "1h", int(s.klines.open_time[-300]), s.now_ms,
                    ccxt_options=s.ccxt_options(), cache=db, now_ms=s.now_ms, policy=FAST_REST,
                    progress=lambda d, t, m: msgs.append(m),
                )  # fmt: skip
            assert len(h.candles) == len(s.served_klines(int(s.klines.open_time[-300]), s.now_ms))
            assert sum("server error" in m for m in msgs) == 3, msgs
            assert not h.warnings

    asyncio.run(main_())


def test_a_server_that_keeps_failing_gives_one_clear_line(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(RetryPolicy, "delay", lambda self, attempt, rate_limited=False: 0.01)
    with ServerThread() as st:
        st.server.fail_next("/fapi/v1/klines", 500, count=100)
        opts = json.dumps(st.server.ccxt_options())
        rc = main(["export", "--exchange", "binanceusdm", "--symbol", SYMBOL, "--timeframe", "1h",
                   "--ccxt-options", opts, "--end", "2025-06-01T00:00Z", "--range", "3d", "--bins", "50",
                   "--out", str(env / "h.npz")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("liqdesk: error: cannot load history from binanceusdm") and "server error" in last
    assert "OperationFailed" in last and not (env / "h.npz").exists()


def test_export_goes_on_when_the_cache_is_locked(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = env / "data" / "liqdesk.sqlite3"
    db.parent.mkdir()
    Cache(db).close()
    monkeypatch.setattr(cache_mod, "BUSY_TIMEOUT_S", 0.2)
    lock = Lock(db)
    try:
        with ServerThread() as st:
            opts = json.dumps(st.server.ccxt_options())
            out = env / "h.npz"
            rc = main(["export", "--exchange", "binanceusdm", "--symbol", SYMBOL, "--timeframe", "1h",
                       "--ccxt-options", opts, "--end", "2025-06-01T00:00Z", "--range", "3d", "--bins", "50",
                       "--out", str(out)])  # fmt: skip
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "not stored in the cache (used for this run only)" in err and "locked by another program" in err
    assert out.exists() and not list(db.parent.glob("*.corrupt-*"))
    with Cache(db, read_only=True) as c:
        assert c.count("candles") == 0  # nothing half-written while it was locked


def test_liquidations_wait_in_memory_while_another_process_holds_the_cache(tmp_path: Path) -> None:
    rows = [r for r in force_orders() if r["symbol"] == "BTC"][:12]
    path = tmp_path / "c.db"
    Cache(path).close()

    async def main_() -> None:
        async with FakeBinance() as s:
            events: list[FeedEvent] = []
            with Cache(path, busy_timeout_s=0.05) as db:
                feed = LiveFeed("binanceusdm", SYMBOL, "1h", ccxt_options=s.ccxt_options(), cache=db, settings=FAST,
                                clock=lambda: s.now_ms, on_event=events.append, streams=("liquidations",))  # fmt: skip
                async with feed:
                    await s.wait_subscribed("btcusdt@forceOrder")
                    lock = Lock(path)
                    try:
                        for r in rows[:8]:
                            await s.push_liquidation(force_order_event(r))
                        await until(lambda: sum(isinstance(e, LiquidationEvent) for e in events) == 8,
                                    what="liquidations delivered while the cache is locked")  # fmt: skip
                        await until(lambda: len(feed.unstored_liquidations) == 8, what="kept in memory")
                        await asyncio.sleep(0.3)  # retries fail meanwhile
                        assert db.count("liquidations") == 0
                    finally:
                        lock.release()
                    for r in rows[8:]:
                        await s.push_liquidation(force_order_event(r))
                    await until(lambda: db.count("liquidations") == len(rows), what="stored after the lock")
                    assert feed.unstored_liquidations == []
            texts = [e.text for e in events if isinstance(e, StatusEvent)]
            assert any(
                "not stored" in t and "locked by another program" in t and "kept in memory" in t
                for t in texts
            )
            assert any(
                t.startswith("stored the 8 liquidation(s) kept in memory") or "stored the" in t for t in texts
            )

    asyncio.run(main_())


def test_liquidations_the_cache_never_took_are_written_beside_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recs = [LiquidationRecord("binanceusdm", SYMBOL, 1_737_000_000_000 + i, 1, 100.5, 2.0, 201.0, None, "SELL")
            for i in range(3)]  # fmt: skip
    keep_unstored(recs, tmp_path / "liqdesk.sqlite3")
    written = list(tmp_path.glob("unstored-liquidations-*.csv"))
    assert len(written) == 1 and len(written[0].read_text().splitlines()) == 4
    assert (
        f"3 liquidation(s) could not be stored in the cache; written to {written[0]}"
        in capsys.readouterr().err
    )
    # where even that file cannot be written, stdout gets them
    keep_unstored(recs, Path("/dev/null/liqdesk.sqlite3"))
    out, err = capsys.readouterr()
    assert out.splitlines()[0].startswith("time_ms,exchange") and len(out.splitlines()) == 4
    assert "printed on stdout" in err


_RECORD_ON_A_FULL_DISK = textwrap.dedent("""
    import contextlib, io, json, os, threading, time
    from pathlib import Path
    from liqdesk.app.cli import main
    from liqdesk.feeds.cache import Cache
    from tests._fullfs import fill
    from tests._live_helpers import ServerThread, force_order_event, force_orders

    fs = Path(os.environ["FS"])
    os.environ["LIQDESK_DATA_DIR"] = str(fs / "data")
    os.environ["LIQDESK_CONFIG_DIR"] = str(fs / "config")
    Cache().close()
    filler = fill(fs)
    rows = [r for r in force_orders() if r["symbol"] == "BTC"][:10]
    with ServerThread() as st:
        s = st.server

        def push():
            deadline = time.monotonic() + 10
            while s.subscribers("btcusdt@forceOrder") == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            for r in rows[:5]:
                st.call(s.push_liquidation(force_order_event(r)))
            time.sleep(1.0)
            filler.unlink()  # space again, while recording
            for r in rows[5:]:
                st.call(s.push_liquidation(force_order_event(r)))

        pusher = threading.Thread(target=push)
        pusher.start()
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = main(["record", "--exchange", "binanceusdm", "--symbol", "BTC/USDT:USDT", "--timeframe", "1h",
                       "--duration", "4s", "--ccxt-options", json.dumps(s.ccxt_options())])
        pusher.join()
    with Cache(read_only=True) as c:
        stored = c.count("liquidations")
    print(json.dumps({"rc": rc, "stored": stored, "err": err.getvalue()}))
""")


def test_record_on_a_full_disk_keeps_recording_and_stores_when_space_returns(tmp_path: Path) -> None:
    from tests._fullfs import run_on_small_fs

    r = run_on_small_fs(_RECORD_ON_A_FULL_DISK, tmp_path, size_kb=1024)
    err = r["err"]
    assert r["rc"] == 0 and "Traceback" not in err, err
    assert "no space left on the disk" in err and "recording into memory and retrying" in err
    assert r["stored"] == 10, err  # every liquidation received, none lost
    assert "could not be stored" not in err


def test_bars_fetched_while_the_cache_refused_them_are_stored_once_it_takes_writes(tmp_path: Path) -> None:
    """Bars that close while another process holds the cache's lock are emitted (the chart goes on) and stored
    later: a recorder leaves no hole behind in the stored series (its catch-up goes on from the newest bar, so
    without this the bars in between were never fetched again)."""
    path = tmp_path / "c.db"
    Cache(path).close()

    async def main() -> None:
        async with FakeBinance(ping_interval=0.05) as s:
            events: list[FeedEvent] = []
            with Cache(path, busy_timeout_s=0.05) as db:
                feed = LiveFeed("binanceusdm", SYMBOL, "1h", ccxt_options=s.ccxt_options(), cache=db, settings=FAST,
                                clock=lambda: s.now_ms, on_event=events.append, streams=("candles",))  # fmt: skip

                def closed() -> list[int]:
                    return [e.open_time for e in events if isinstance(e, CandleUpdate) and e.closed]

                async with feed:
                    await s.wait_subscribed("btcusdt@kline_1h")
                    await until(lambda: len(closed()) == FAST.history_bars, what="initial backfill")
                    lock = Lock(path)
                    try:
                        for _ in range(3):
                            await s.advance(1)
                        locked_last = int(s.klines.open_time[s.closed_count() - 1])
                        await until(lambda: closed()[-1:] == [locked_last], what="bars emitted while locked")
                    finally:
                        lock.release()
                    for _ in range(2):
                        await s.advance(1)
                    last = int(s.klines.open_time[s.closed_count() - 1])
                    await until(lambda: closed()[-1:] == [last], what="bars after the lock")
                    await feed.close()
                got = db.get_candles("binanceusdm", SYMBOL, "1h")
                served = s.served_klines(int(got.open_time[0]), s.now_ms)
                assert got.open_time.tolist() == [r[0] for r in served]  # no hole
                assert (
                    db.missing("candles", "binanceusdm", SYMBOL, "1h", int(got.open_time[0]), last + H) == []
                )
                emitted = closed()
                assert emitted == sorted(set(emitted))  # each bar emitted once

    asyncio.run(main())

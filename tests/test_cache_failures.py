"""The cache under real failures: a lock held by another process, a full file system, damaged files.

Every case uses a real SQLite file. Only a file SQLite itself reports as malformed is treated as damaged; a
damaged file is salvaged (every row still readable, the tape first) when opened for repair, and never moved or
rewritten by a reader.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import random
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from liqdesk.app.cli import main
from liqdesk.core.series import Candles
from liqdesk.feeds import cache as cache_mod
from liqdesk.feeds.cache import (
    Cache,
    CacheForeign,
    CacheLocked,
    _sql_rows,
)
from liqdesk.feeds.store_tables import TABLES
from liqdesk.feeds.venues.base import LiquidationRecord
from tests._fullfs import run_on_small_fs

SYMBOL = "BTC/USDT:USDT"
T0 = 1_737_000_000_000
PAGE = 4096


def tape(n: int, seed: int = 1) -> list[LiquidationRecord]:
    rng = random.Random(seed)
    return [
        LiquidationRecord("binanceusdm", SYMBOL, T0 + i * 1000, rng.choice([1, -1]), 100_000 + rng.random() * 1000,
                          round(rng.random(), 3) + 0.001, 0.0, None, "SELL")
        for i in range(n)
    ]  # fmt: skip


def keys(rows: object) -> set[tuple[object, ...]]:
    return {tuple(r[:6]) for r in rows}  # type: ignore[attr-defined]


def record_keys(recs: list[LiquidationRecord]) -> set[tuple[object, ...]]:
    return {(r.exchange, r.symbol, r.time, r.side, r.price, r.quantity) for r in recs}


def candles(n: int) -> Candles:
    t = T0 + np.arange(n, dtype=np.int64) * 60_000
    x = np.linspace(100.0, 110.0, n)
    return Candles(t, x, x + 1, x - 1, x, x * 10, 60_000, quote_volume=x * 1000, taker_buy_volume=x)


def build(path: Path, n_liqs: int = 500, n_candles: int = 0, *, checkpoint: bool = True):  # type: ignore[no-untyped-def]
    """A cache file with ``n_liqs`` liquidations (and candles); returns the records and {page: (table, kind,
    cells)} from SQLite's own dbstat table, the ground truth of where rows live."""
    recs = tape(n_liqs)
    c = Cache(path)
    if n_candles:
        c.put_candles("binanceusdm", SYMBOL, "1m", candles(n_candles))
        c.add_coverage("candles", "binanceusdm", SYMBOL, "1m", T0, T0 + n_candles * 60_000)
    c.put_liquidations(recs)
    if checkpoint:
        c._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    pages = {
        pg: (name, kind, n)
        for name, pg, kind, n in con.execute("SELECT name, pageno, pagetype, ncell FROM dbstat")
    }
    con.close()
    if checkpoint:
        c.close()
    else:
        c._conn.close()  # closing would checkpoint the log into the file; leave it in the -wal
    return recs, pages


def overwrite(path: Path, offset: int, data: bytes) -> None:
    b = bytearray(path.read_bytes())
    b[offset : offset + len(data)] = data
    path.write_bytes(bytes(b))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_state(folder: Path) -> dict[str, str]:
    return {p.name: digest(p) for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


# -- locks ---------------------------------------------------------------------------------------------------
_HOLD = textwrap.dedent("""
    import sqlite3, sys, time
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    if sys.argv[2] == "exclusive":
        con.execute("PRAGMA locking_mode = EXCLUSIVE")
        con.execute("BEGIN EXCLUSIVE")
    else:
        con.execute("BEGIN IMMEDIATE")
    con.execute("INSERT INTO coverage VALUES ('x', 'x', 'x', 'x', 1, 2)")
    print("locked", flush=True)
    time.sleep(float(sys.argv[3]))
    con.execute("ROLLBACK")
""")


def hold_lock(path: Path, mode: str, seconds: float) -> subprocess.Popen[str]:
    """Another process holding a write transaction on the file (what the sqlite3 shell does with BEGIN)."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(path), mode, str(seconds)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_write_lock_held_by_another_process_neither_moves_nor_empties_the_tape(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = env / "data" / "liqdesk.sqlite3"
    db.parent.mkdir()
    recs, _ = build(db, 50)
    before = folder_state(db.parent)
    proc = hold_lock(db, "immediate", 20)
    try:
        started = time.monotonic()
        rc = main(["liquidations", "--exchange", "binanceusdm", "--symbol", SYMBOL, "--csv"])
        out = capsys.readouterr().out
        assert rc == 0
        assert time.monotonic() - started < 5  # a reader does not wait for the writer (WAL)
        assert len(list(csv.DictReader(io.StringIO(out)))) == 50
        # a writer waits the busy timeout, then says the cache is locked; nothing is moved or changed
        c = Cache(db, busy_timeout_s=0.3)
        assert c.moved_aside is None and c.salvage is None
        with pytest.raises(CacheLocked, match="locked by another program"):
            c.put_liquidations(tape(3, seed=9))
        c.close()
    finally:
        proc.kill()
        proc.wait()
    assert not any(".corrupt-" in p.name for p in db.parent.iterdir())
    assert folder_state(db.parent)["liqdesk.sqlite3"] == before["liqdesk.sqlite3"]
    with Cache(db) as c:
        assert keys(c.liquidation_rows()) == record_keys(recs)


def test_an_exclusive_lock_is_waited_out_then_one_clear_line(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = env / "data" / "liqdesk.sqlite3"
    db.parent.mkdir()
    build(db, 20)
    before = folder_state(db.parent)
    monkeypatch.setattr(cache_mod, "BUSY_TIMEOUT_S", 0.5)
    proc = hold_lock(db, "exclusive", 20)
    try:
        started = time.monotonic()
        rc = main(["liquidations", "--exchange", "binanceusdm", "--symbol", SYMBOL])
        waited = time.monotonic() - started
    finally:
        proc.kill()
        proc.wait()
    err = capsys.readouterr().err.strip()
    assert rc == 2 and 0.4 < waited < 10
    assert (
        err.startswith("liqdesk: error: the cache") and "locked by another program" in err and "\n" not in err
    )
    assert folder_state(db.parent)["liqdesk.sqlite3"] == before["liqdesk.sqlite3"]
    assert not any(".corrupt-" in p.name for p in db.parent.iterdir())


# -- a full file system --------------------------------------------------------------------------------------
_FULL_DISK = textwrap.dedent("""
    import contextlib, csv, hashlib, io, json, os, sys
    from pathlib import Path
    from liqdesk.app.cli import main
    from liqdesk.feeds.cache import Cache, CacheError, CacheFull
    from tests._fullfs import fill
    from tests.test_cache_failures import SYMBOL, build, tape

    fs = Path(os.environ["FS"])
    os.environ["LIQDESK_DATA_DIR"] = str(fs / "data")
    os.environ["LIQDESK_CONFIG_DIR"] = str(fs / "config")
    db = fs / "data" / "liqdesk.sqlite3"
    db.parent.mkdir()
    build(db, 200)
    out = {}
    filler = fill(fs)
    listing = sorted(p.name for p in db.parent.iterdir())
    main_sha = hashlib.sha256(db.read_bytes()).hexdigest()

    # the read-only command works on a full disk and creates, moves or truncates nothing
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        out["liquidations_rc"] = main(["liquidations", "--exchange", "binanceusdm", "--symbol", SYMBOL, "--csv"])
    out["liquidations_rows"] = len(list(csv.DictReader(io.StringIO(buf.getvalue()))))
    out["listing_unchanged"] = sorted(p.name for p in db.parent.iterdir()) == listing
    out["listing"] = [(p.name, p.stat().st_size) for p in db.parent.iterdir()]

    # opening for writing says the disk is full; with the read-only fallback the stored rows stay readable
    # and a write fails cleanly with CacheFull, the stored rows unchanged
    try:
        Cache(db).close()
        out["open_for_writing"] = "opened"
    except CacheError as exc:
        out["open_for_writing"] = type(exc).__name__ + ": " + str(exc)
    c = Cache(db, fallback_read_only=True)
    out["fallback"] = [c.read_only, c.count("liquidations")]
    try:
        c.put_liquidations(tape(50, seed=7))
        out["write"] = "stored?!"
    except CacheFull as exc:
        out["write"] = "CacheFull: " + str(exc)
    c.close()
    with Cache(db, read_only=True) as c:
        out["rows_after_failed_write"] = c.count("liquidations")
    out["main_file_unchanged"] = hashlib.sha256(db.read_bytes()).hexdigest() == main_sha
    out["listing_unchanged_after_writes"] = sorted(p.name for p in db.parent.iterdir()) == listing

    # a new cache on a full disk: a clear error and no empty file left behind
    other = fs / "data2" / "liqdesk.sqlite3"
    try:
        Cache(other).close()
        out["new_cache"] = "created"
    except CacheError as exc:
        out["new_cache"] = type(exc).__name__
    out["new_cache_files"] = sorted(p.name for p in other.parent.iterdir()) if other.parent.exists() else []

    # space again: the same cache takes the write
    filler.unlink()
    with Cache(db) as c:
        out["stored_after_space_freed"] = c.put_liquidations(tape(50, seed=7))
        out["rows_final"] = c.count("liquidations")
    print(json.dumps(out))
""")


def test_a_full_file_system_changes_nothing_and_says_so(tmp_path: Path) -> None:
    out = run_on_small_fs(_FULL_DISK, tmp_path, size_kb=1024)
    assert out["liquidations_rc"] == 0 and out["liquidations_rows"] == 200
    assert out["listing_unchanged"], out["listing"]
    assert out["open_for_writing"].startswith("CacheFull: no space left on the disk for the cache")
    assert out["fallback"] == [True, 200]
    assert out["write"].startswith("CacheFull: no space left on the disk for the cache")
    assert "stored data is unchanged" in out["write"]
    assert out["rows_after_failed_write"] == 200 and out["main_file_unchanged"]
    assert out["listing_unchanged_after_writes"]
    assert out["new_cache"] in ("CacheFull", "CacheIOError") and out["new_cache_files"] == []
    assert out["stored_after_space_freed"] == 50 and out["rows_final"] == 250


# -- damaged files: salvage ------------------------------------------------------------------------------------
def _hit(offset: int, length: int) -> set[int]:
    return set(range(offset // PAGE + 1, (offset + length - 1) // PAGE + 2))


def _truth(
    recs: list[LiquidationRecord], pages: dict[int, tuple[str, str, int]], lost_pages: set[int]
) -> int:
    """Rows of the liquidations table that live on pages the damage did not touch."""
    return len(recs) - sum(
        n for pg, (name, _k, n) in pages.items() if name == "liquidations" and pg in lost_pages
    )


def _damage(case: str, db: Path, pages: dict[int, tuple[str, str, int]]) -> tuple[set[int], bool]:
    """Damage the file; returns the pages destroyed and whether that set is exact (page-aligned damage)."""
    size = db.stat().st_size
    rng = random.Random(case)
    garbage = bytes(rng.getrandbits(8) for _ in range(8192))
    if case == "garbage mid-file (8 KiB, as measured in the issue)":
        overwrite(db, size // 2, garbage)
        return _hit(size // 2, 8192), False
    if case == "garbage over two whole pages":
        leaves = sorted(pg for pg, (n, k, _c) in pages.items() if n == "liquidations" and k == "leaf")
        first = leaves[len(leaves) // 2]
        overwrite(db, (first - 1) * PAGE, garbage)
        return {first, first + 1}, True
    if case == "garbage over the tape's root page":
        root = next(pg for pg, (n, k, _c) in pages.items() if n == "liquidations" and k == "internal")
        overwrite(db, (root - 1) * PAGE, garbage[:PAGE])
        return {root}, True
    if case == "garbage in the header":
        overwrite(db, 0, garbage[:100])
        return set(), True
    if case == "page 1 destroyed":
        overwrite(db, 0, garbage[:PAGE])
        return {1}, True
    if case == "truncated to two thirds":
        keep = (size * 2 // 3) // PAGE * PAGE
        db.write_bytes(db.read_bytes()[:keep])
        return set(range(keep // PAGE + 1, size // PAGE + 1)), True
    raise AssertionError(case)


DAMAGE = [
    "garbage mid-file (8 KiB, as measured in the issue)",
    "garbage over two whole pages",
    "garbage over the tape's root page",
    "garbage in the header",
    "page 1 destroyed",
    "truncated to two thirds",
]
SALVAGED: dict[str, str] = {}  # case → summary (printed with -s)


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_file_is_salvaged_row_by_row(tmp_path: Path, case: str) -> None:
    db = tmp_path / "liqdesk.sqlite3"
    recs, pages = build(db, 500)
    lost_pages, exact = _damage(case, db, pages)
    damaged_bytes = db.read_bytes()
    sqlite_alone = sum(len(batch) for batch in _sql_rows(db, TABLES[0]))
    truth = _truth(recs, pages, lost_pages)

    with Cache(db) as c:
        assert c.salvage is not None and c.moved_aside is not None
        kept = keys(c.liquidation_rows())
        assert kept <= record_keys(recs)  # nothing invented from garbage
        if exact:
            assert len(kept) == truth  # every row on an undamaged page, no more
        else:
            assert len(kept) >= truth
        assert len(kept) > sqlite_alone  # more than SQLite itself still reads
        assert c.salvage.kept["liquidations"] == len(kept)
        lost = c.salvage.lost["liquidations"]
        assert lost is None or abs(lost - (500 - len(kept))) <= 0.3 * (500 - len(kept)) + 5
        # the damaged file is kept aside exactly as it was, and the fresh cache works
        assert c.moved_aside.read_bytes() == damaged_bytes
        assert c.put_liquidations(tape(3, seed=5)) == 3
        SALVAGED[case] = f"{len(kept)} of 500 kept (SQLite alone reads {sqlite_alone}); {c.salvage.summary()}"
    with Cache(db) as c:  # the fresh file is healthy: no second salvage
        assert c.salvage is None and c.count("liquidations") == len(kept) + 3
    print(f"\n{case}: {SALVAGED[case]}")


def test_rows_still_in_the_write_ahead_log_are_salvaged(tmp_path: Path) -> None:
    live = tmp_path / "live" / "liqdesk.sqlite3"
    live.parent.mkdir()
    recs = tape(700)
    c = Cache(live)
    c.put_liquidations(recs[:500])
    c._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    first_leaf, cells = c._conn.execute(
        "SELECT pageno, ncell FROM dbstat WHERE name = 'liquidations' AND pagetype = 'leaf' ORDER BY pageno"
    ).fetchone()
    c.put_liquidations(recs[500:])  # these 200 are only in the -wal (with the pages they changed)
    db = tmp_path / "liqdesk.sqlite3"
    for suffix in ("", "-wal"):  # the files as a crash (kill -9) leaves them
        Path(f"{db}{suffix}").write_bytes(Path(f"{live}{suffix}").read_bytes())
    c.close()
    assert Path(f"{db}-wal").stat().st_size > 0
    overwrite(db, (first_leaf - 1) * PAGE, b"\xff" * PAGE)  # a page of the oldest rows destroyed
    with Cache(db) as c:
        assert c.salvage is not None
        kept = keys(c.liquidation_rows())
        assert record_keys(recs[500:]) <= kept <= record_keys(recs)  # every row of the log is kept
        assert len(kept) == 700 - cells
        aside = c.moved_aside
        assert aside is not None and Path(f"{aside}-wal").exists()  # the log is kept with the damaged file


def test_fetched_ranges_are_forgotten_only_when_candles_were_lost(tmp_path: Path) -> None:
    db = tmp_path / "liqdesk.sqlite3"
    build(db, 200, n_candles=3000)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        candle_leaf = next(pg for pg, n, k in con.execute("SELECT pageno, name, pagetype FROM dbstat")
                           if n == "candles" and k == "leaf")  # fmt: skip
    overwrite(db, (candle_leaf - 1) * PAGE, b"\x00" * PAGE)
    with Cache(db) as c:
        assert c.salvage is not None and c.salvage.coverage_reset
        assert (
            c.count("liquidations") == 200 and c.count("coverage") == 0
        )  # bars lost → they are fetched again
        assert 0 < c.count("candles") < 3000

    db2 = tmp_path / "b" / "liqdesk.sqlite3"
    db2.parent.mkdir()
    _recs, pages = build(db2, 500, n_candles=100)
    leaf = next(pg for pg, (n, k, _c) in pages.items() if n == "liquidations" and k == "leaf")
    overwrite(db2, (leaf - 1) * PAGE, b"\x00" * PAGE)
    with Cache(db2) as c:
        assert c.salvage is not None and not c.salvage.coverage_reset
        assert c.count("candles") == 100 and c.count("coverage") == 1


def test_a_reader_never_moves_or_rewrites_a_damaged_file(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = env / "data" / "liqdesk.sqlite3"
    db.parent.mkdir()
    recs, pages = build(db, 500)
    leaf = sorted(pg for pg, (n, k, _c) in pages.items() if n == "liquidations" and k == "leaf")[3]
    overwrite(db, (leaf - 1) * PAGE, b"\x00" * PAGE)
    before = folder_state(db.parent)
    rc = main(["liquidations", "--exchange", "binanceusdm", "--symbol", SYMBOL, "--csv"])
    out, err = capsys.readouterr()
    assert rc == 0
    shown = list(csv.DictReader(io.StringIO(out)))
    assert len(shown) == _truth(recs, pages, {leaf})  # every readable row is shown
    assert "warning:" in err and "damaged" in err and "not changed" in err
    after = folder_state(db.parent)
    # same files, same bytes (a SQLite reader may add its shared-memory companions, never change the file)
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before) <= {"liqdesk.sqlite3-wal", "liqdesk.sqlite3-shm"}


def test_a_foreign_or_newer_database_is_never_touched(tmp_path: Path) -> None:
    p = tmp_path / "liqdesk.sqlite3"
    with sqlite3.connect(p) as con:
        con.execute("CREATE TABLE accounts (id INTEGER, name TEXT)")
    before = digest(p)
    with pytest.raises(CacheForeign, match="not a liqdesk cache"):
        Cache(p, read_only=True)
    with pytest.raises(CacheForeign):
        Cache(p, repair=False)
    assert digest(p) == before

    newer = tmp_path / "newer.sqlite3"
    with Cache(newer) as c:
        c.put_liquidations(tape(5))
    with sqlite3.connect(newer) as con:
        con.execute("PRAGMA user_version = 99")
    before = digest(newer)
    for kwargs in ({}, {"read_only": True}):
        with pytest.raises(CacheForeign, match="newer liqdesk"):
            Cache(newer, **kwargs)  # type: ignore[arg-type]
    assert digest(newer) == before and not list(tmp_path.glob("newer.sqlite3.corrupt-*"))


def test_a_writer_follows_a_file_salvaged_by_another_process(tmp_path: Path) -> None:
    db = tmp_path / "liqdesk.sqlite3"
    build(db, 10)
    running = Cache(db)  # e.g. `liqdesk record`, open while the window salvages the file
    replacement = tmp_path / "fresh.sqlite3"
    with Cache(replacement) as c:
        c.put_liquidations(tape(4, seed=3))
    for side in ("-wal", "-shm"):
        Path(f"{db}{side}").unlink(missing_ok=True)
    os.replace(replacement, db)
    assert running.put_liquidations(tape(2, seed=8)) == 2
    running.close()
    with Cache(db, read_only=True) as c:
        assert c.count("liquidations") == 6  # the writes went to the file now named liqdesk.sqlite3


def test_a_missing_file_reads_as_an_empty_cache_and_is_not_created(tmp_path: Path) -> None:
    p = tmp_path / "none" / "liqdesk.sqlite3"
    with Cache(p, read_only=True) as c:
        assert not c.exists and c.count("liquidations") == 0 and c.liquidation_rows() == []
    assert not p.parent.exists()


def test_open_does_not_write_a_healthy_database(tmp_path: Path) -> None:
    db = tmp_path / "liqdesk.sqlite3"
    build(db, 10)
    before = folder_state(tmp_path)
    Cache(db).close()
    Cache(db, read_only=True).close()
    after = folder_state(tmp_path)
    assert after["liqdesk.sqlite3"] == before["liqdesk.sqlite3"]

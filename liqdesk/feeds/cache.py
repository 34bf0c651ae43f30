"""The local market-data cache: one SQLite database (stdlib sqlite3, WAL) in the user's data directory.

Tables: candles (per exchange, symbol, timeframe), open interest (per exchange, symbol, period), liquidations
(every real one received: exchanges keep no liquidation history, so this is the only ground truth), and
``coverage``: the time ranges already fetched per series, so a restart fetches only what is missing even where
the exchange itself has no bars (halts, pre-listing). Writes are idempotent (primary keys + upsert).

A file that is not a liqdesk database, or is corrupt, is moved aside (``<name>.corrupt-<time>``) with a logged
warning, and a fresh database is created; the cache never stops the app.

One ``Cache`` object per thread (sqlite3 connections are not shared across threads); several processes may
open the same file (WAL, busy timeout).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from liqdesk.core.series import Candles, Liquidations, OpenInterest
from liqdesk.errors import DataError
from liqdesk.feeds.paths import data_dir
from liqdesk.feeds.venues.base import LiquidationRecord

log = logging.getLogger(__name__)

APP_ID = 0x4C51444B  # "LQDK" in PRAGMA application_id
SCHEMA_VERSION = 1
DB_NAME = "liqdesk.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS candles (
    exchange TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, open_time INTEGER NOT NULL,
    open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL,
    quote_volume REAL, taker_buy_volume REAL, mark_high REAL, mark_low REAL,
    PRIMARY KEY (exchange, symbol, timeframe, open_time)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS open_interest (
    exchange TEXT NOT NULL, symbol TEXT NOT NULL, period TEXT NOT NULL, time INTEGER NOT NULL, usd REAL NOT NULL,
    PRIMARY KEY (exchange, symbol, period, time)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS liquidations (
    exchange TEXT NOT NULL, symbol TEXT NOT NULL, time INTEGER NOT NULL, side INTEGER NOT NULL,
    price REAL NOT NULL, quantity REAL NOT NULL, usd REAL NOT NULL, order_price REAL, raw_side TEXT,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (exchange, symbol, time, side, price, quantity)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS coverage (
    kind TEXT NOT NULL, exchange TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL,
    start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, exchange, symbol, timeframe, start_ms)
) WITHOUT ROWID;
"""


def default_path() -> Path:
    return data_dir() / DB_NAME


Range = tuple[int, int]


def subtract_ranges(start: int, end: int, covered: Iterable[Range]) -> list[Range]:
    """The parts of [start, end) not inside any covered [s, e)."""
    gaps: list[Range] = []
    cur = start
    for s, e in sorted(covered):
        if e <= cur:
            continue
        if s >= end:
            break
        if s > cur:
            gaps.append((cur, min(s, end)))
        cur = max(cur, e)
        if cur >= end:
            break
    if cur < end:
        gaps.append((cur, end))
    return gaps


class CacheError(Exception):
    pass


class Cache:
    """The SQLite cache. ``Cache()`` opens (or creates) the default file; ``Cache(path)`` another one."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.moved_aside: Path | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._open()
        except (sqlite3.DatabaseError, CacheError) as exc:
            self.moved_aside = self._move_aside(exc)
            self._conn = self._open()

    # -- opening -----------------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and app_id != APP_ID:
                raise CacheError(
                    f"not a liqdesk database (application_id {app_id:#x}, tables {sorted(tables)})"
                )
            if app_id == APP_ID and version > SCHEMA_VERSION:
                raise CacheError(f"written by a newer liqdesk (schema {version} > {SCHEMA_VERSION})")
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise CacheError(f"integrity check failed: {check}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA application_id = {APP_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _move_aside(self, exc: BaseException) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        os.replace(self.path, target)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.replace(side, target.with_name(target.name + suffix))
        log.warning(
            "the cache database %s could not be used (%s); moved it to %s and started a new one",
            self.path, exc, target,
        )  # fmt: skip
        return target

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- coverage ----------------------------------------------------------------------------------------
    def covered(self, kind: str, exchange: str, symbol: str, timeframe: str) -> list[Range]:
        rows = self._conn.execute(
            "SELECT start_ms, end_ms FROM coverage WHERE kind=? AND exchange=? AND symbol=? AND timeframe=? "
            "ORDER BY start_ms",
            (kind, exchange, symbol, timeframe),
        ).fetchall()
        return [(int(s), int(e)) for s, e in rows]

    def missing(
        self, kind: str, exchange: str, symbol: str, timeframe: str, start: int, end: int
    ) -> list[Range]:
        """Gap detection: the parts of [start, end) never fetched for this series."""
        return subtract_ranges(start, end, self.covered(kind, exchange, symbol, timeframe))

    def add_coverage(
        self, kind: str, exchange: str, symbol: str, timeframe: str, start: int, end: int
    ) -> None:
        """Mark [start, end) as fetched, merging with touching or overlapping ranges."""
        if end <= start:
            return
        with self._tx():
            rows = self._conn.execute(
                "SELECT start_ms, end_ms FROM coverage WHERE kind=? AND exchange=? AND symbol=? AND timeframe=? "
                "AND end_ms >= ? AND start_ms <= ?",
                (kind, exchange, symbol, timeframe, start, end),
            ).fetchall()
            lo = min([start] + [int(r[0]) for r in rows])
            hi = max([end] + [int(r[1]) for r in rows])
            self._conn.executemany(
                "DELETE FROM coverage WHERE kind=? AND exchange=? AND symbol=? AND timeframe=? AND start_ms=?",
                [(kind, exchange, symbol, timeframe, int(r[0])) for r in rows],
            )
            self._conn.execute(
                "INSERT INTO coverage VALUES (?, ?, ?, ?, ?, ?)", (kind, exchange, symbol, timeframe, lo, hi)
            )

    # -- candles -----------------------------------------------------------------------------------------
    def put_candles(self, exchange: str, symbol: str, timeframe: str, candles: Candles) -> int:
        """Upsert bars (a re-received bar replaces the stored one). Returns the number of rows written."""
        n = len(candles)
        if n == 0:
            return 0

        def col(a: np.ndarray | None) -> list[float | None]:
            if a is None:
                return [None] * n
            return [None if not np.isfinite(v) else float(v) for v in a]

        cols = [
            candles.open_time.tolist(), candles.open.tolist(), candles.high.tolist(), candles.low.tolist(),
            candles.close.tolist(), candles.volume.tolist(), col(candles.quote_volume),
            col(candles.taker_buy_volume), col(candles.mark_high), col(candles.mark_low),
        ]  # fmt: skip
        rows = [(exchange, symbol, timeframe, *r) for r in zip(*cols, strict=True)]
        with self._tx():
            # mark columns are filled separately (mark candles come from another endpoint): keep stored ones
            self._conn.executemany(
                "INSERT INTO candles VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (exchange, symbol, timeframe, open_time) DO UPDATE SET "
                "open=excluded.open, high=excluded.high, low=excluded.low, close=excluded.close, "
                "volume=excluded.volume, quote_volume=coalesce(excluded.quote_volume, quote_volume), "
                "taker_buy_volume=coalesce(excluded.taker_buy_volume, taker_buy_volume), "
                "mark_high=coalesce(excluded.mark_high, mark_high), mark_low=coalesce(excluded.mark_low, mark_low)",
                rows,
            )
        return n

    def put_mark(
        self,
        exchange: str,
        symbol: str,
        timeframe: str,
        open_time: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
    ) -> None:
        rows = [
            (float(h), float(lo), exchange, symbol, timeframe, int(t))
            for t, h, lo in zip(open_time, high, low, strict=True)
        ]
        with self._tx():
            self._conn.executemany(
                "UPDATE candles SET mark_high=?, mark_low=? "
                "WHERE exchange=? AND symbol=? AND timeframe=? AND open_time=?",
                rows,
            )

    def get_candles(
        self, exchange: str, symbol: str, timeframe: str, start: int | None = None, end: int | None = None
    ) -> Candles:
        """Stored bars with start <= open_time < end. Optional columns are None when no bar has them."""
        from liqdesk.core.series import timeframe_ms

        rows = self._conn.execute(
            "SELECT open_time, open, high, low, close, volume, quote_volume, taker_buy_volume, mark_high, mark_low "
            "FROM candles WHERE exchange=? AND symbol=? AND timeframe=? AND open_time >= ? AND open_time < ? "
            "ORDER BY open_time",
            (
                exchange,
                symbol,
                timeframe,
                -(2**62) if start is None else start,
                2**62 if end is None else end,
            ),
        ).fetchall()
        interval = timeframe_ms(timeframe)
        if not rows:
            z = np.zeros(0)
            return Candles(np.zeros(0, np.int64), z, z, z, z, z, interval)
        a = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float64)

        def opt(i: int) -> np.ndarray | None:
            c = a[:, i]
            return None if np.isnan(c).all() else c

        mh, ml = opt(8), opt(9)
        if mh is None or ml is None:
            mh = ml = None
        return Candles(
            a[:, 0].astype(np.int64), a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5], interval,
            quote_volume=opt(6), taker_buy_volume=opt(7), mark_high=mh, mark_low=ml,
        )  # fmt: skip

    def last_candle_time(self, exchange: str, symbol: str, timeframe: str) -> int | None:
        row = self._conn.execute(
            "SELECT max(open_time) FROM candles WHERE exchange=? AND symbol=? AND timeframe=?",
            (exchange, symbol, timeframe),
        ).fetchone()
        return None if row[0] is None else int(row[0])

    # -- open interest -----------------------------------------------------------------------------------
    def put_open_interest(self, exchange: str, symbol: str, period: str, oi: OpenInterest) -> int:
        rows = [(exchange, symbol, period, int(t), float(u)) for t, u in zip(oi.time, oi.usd, strict=True)]
        with self._tx():
            self._conn.executemany(
                "INSERT INTO open_interest VALUES (?,?,?,?,?) "
                "ON CONFLICT (exchange, symbol, period, time) DO UPDATE SET usd=excluded.usd",
                rows,
            )
        return len(rows)

    def get_open_interest(
        self, exchange: str, symbol: str, period: str, start: int | None = None, end: int | None = None
    ) -> OpenInterest:
        rows = self._conn.execute(
            "SELECT time, usd FROM open_interest WHERE exchange=? AND symbol=? AND period=? AND time >= ? "
            "AND time < ? ORDER BY time",
            (exchange, symbol, period, -(2**62) if start is None else start, 2**62 if end is None else end),
        ).fetchall()
        if not rows:
            return OpenInterest(np.zeros(0, np.int64), np.zeros(0))
        t, u = zip(*rows, strict=True)
        return OpenInterest(np.asarray(t, np.int64), np.asarray(u, np.float64))

    # -- liquidations ------------------------------------------------------------------------------------
    def put_liquidations(self, records: Sequence[LiquidationRecord]) -> int:
        """Insert records; ones already stored (same exchange, symbol, time, side, price, quantity) are ignored.
        Returns how many were new."""
        if not records:
            return 0
        now = int(time.time() * 1000)
        rows = [
            (r.exchange, r.symbol, r.time, r.side, r.price, r.quantity, r.usd, r.order_price, r.raw_side, now)
            for r in records
        ]
        with self._tx():
            before = self._conn.total_changes
            self._conn.executemany("INSERT OR IGNORE INTO liquidations VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            return self._conn.total_changes - before

    def get_liquidations(
        self,
        exchange: str | None = None,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> Liquidations:
        rows = self.liquidation_rows(exchange, symbol, start, end)
        if not rows:
            return Liquidations.empty()
        ex, sym, t, side, price, qty, usd = zip(*[r[:7] for r in rows], strict=True)
        return Liquidations(
            np.asarray(t, np.int64), np.asarray(ex, str), np.asarray(sym, str), np.asarray(side, np.int8),
            np.asarray(price, float), np.asarray(qty, float), np.asarray(usd, float),
        )  # fmt: skip

    def liquidation_rows(
        self,
        exchange: str | None = None,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> list[tuple[str, str, int, int, float, float, float, float | None, str | None]]:
        """Raw rows (exchange, symbol, time, side, price, quantity, usd, order_price, raw_side) by time."""
        where = ["time >= ?", "time < ?"]
        args: list[object] = [-(2**62) if start is None else start, 2**62 if end is None else end]
        if exchange is not None:
            where.append("exchange = ?")
            args.append(exchange)
        if symbol is not None:
            where.append("symbol = ?")
            args.append(symbol)
        return self._conn.execute(
            "SELECT exchange, symbol, time, side, price, quantity, usd, order_price, raw_side FROM liquidations "
            f"WHERE {' AND '.join(where)} ORDER BY time, exchange, symbol",
            args,
        ).fetchall()

    def count(self, table: str) -> int:
        if table not in ("candles", "open_interest", "liquidations", "coverage"):
            raise ValueError(table)
        return int(self._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    # -- transactions ------------------------------------------------------------------------------------
    def _tx(self) -> _Tx:
        return _Tx(self._conn)


class _Tx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.outer = False

    def __enter__(self) -> None:
        self.outer = not self.conn.in_transaction
        if self.outer:
            self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        if not self.outer:
            return
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


def clear_cache_file(path: Path) -> None:
    """Empty every table of a cache file, then compact it. Safe while other connections hold it open
    (they see empty tables); slow on a big file, so callers run it off the UI thread."""
    if not path.exists():
        return
    try:
        conn = sqlite3.connect(path, timeout=10)
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            with conn:
                for t in tables:
                    if not t.startswith("sqlite_"):
                        conn.execute(f'DELETE FROM "{t}"')  # noqa: S608 (names from sqlite_master)
            conn.execute("VACUUM")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise DataError(f"cannot clear the cache {path}: {exc}") from None

"""The local market-data cache: one SQLite database (stdlib sqlite3, WAL) in the user's data directory.

Tables: candles (per exchange, symbol, timeframe), open interest (per exchange, symbol, period), liquidations
(every real one received: exchanges keep no liquidation history, so this is the only ground truth: the *tape*),
and ``coverage``: the time ranges already fetched per series, so a restart fetches only what is missing even where
the exchange itself has no bars (halts, pre-listing). Writes are idempotent (primary keys + upsert).

What can go wrong, and what the cache does (each a ``CacheError`` subclass with a message for the user):

* ``CacheLocked`` — another program holds the database: SQLite waits (busy timeout), then this is raised. The
  database is untouched; try again later.
* ``CacheFull`` / ``CacheIOError`` — no space left, or the disk fails: the write is rolled back, the stored data is
  unchanged, and the caller decides (the window keeps drawing, ``liqdesk record`` keeps the rows and retries).
* ``CacheCorrupt`` — SQLite itself reports the file malformed ("file is not a database", a failed integrity
  check, SQLITE_CORRUPT / SQLITE_NOTADB). Only then is a database treated as damaged. Opened for writing with
  ``repair=True`` (the window, ``liqdesk record``), it is **salvaged**: every row that can still be read (the tape
  first; ``liqdesk.feeds.salvage`` reads page by page past damaged pages) goes into a fresh database, the damaged
  file is kept aside as ``<name>.corrupt-<time>``, and ``salvage`` reports the rows kept and lost per table.
  Opened otherwise, the file is never moved or rewritten: reads are served from the rows still readable
  (salvaged into memory) with ``damaged`` saying so, and writes raise ``CacheCorrupt``.
* ``CacheForeign`` — a database of another program, or of a newer liqdesk: never touched. (Opened for repair, a
  foreign database where liqdesk's own file should be is moved aside and a fresh one started.)

Read-only users (``liqdesk liquidations``, and any reader) open with ``read_only=True``: ``file:…?mode=ro``, no
write of any kind, and a missing file reads as an empty cache. One ``Cache`` object per thread (sqlite3
connections are not shared across threads); several processes may open the same file (WAL, busy timeout).

``Cache`` is the SQLite implementation of ``liqdesk.feeds.store.MarketStore``; the PostgreSQL one
(``liqdesk.feeds.store_pg``) shares the error classes defined here, and both share the tables, rows and reads of
``liqdesk.feeds.store_tables``. The schema version is ``PRAGMA user_version``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from liqdesk.errors import DataError, LiqdeskError
from liqdesk.feeds.paths import data_dir
from liqdesk.feeds.salvage import PageScan, Table, TableRows, read_tables
from liqdesk.feeds.store_tables import (
    TABLE_NAMES,
    TABLES,
    SqlStore,
    liquidation_rows_of,
    merge_coverage_rows,
    table_spec,
)
from liqdesk.feeds.venues.base import LiquidationRecord

log = logging.getLogger(__name__)

APP_ID = 0x4C51444B  # "LQDK" in PRAGMA application_id
SCHEMA_VERSION = 1
DB_NAME = "liqdesk.sqlite3"
BUSY_TIMEOUT_S = 10.0
# A damaged file opened without repair is read from memory (the rows still readable); larger ones are refused.
MAX_IN_MEMORY_SALVAGE_BYTES = 512 << 20

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
CREATE INDEX IF NOT EXISTS liquidations_time ON liquidations (time);
"""
# The primary keys serve "a market's candles (open interest, tape) in a range"; this index "the whole tape in a
# range". It is added to a file that lacks it when opened for writing, without a new schema version: an older
# liqdesk still opens the file (it only ignores the index).
_TIME_INDEX = "CREATE INDEX IF NOT EXISTS liquidations_time ON liquidations (time)"


T = TypeVar("T")


def default_path() -> Path:
    return data_dir() / DB_NAME


# -- errors ------------------------------------------------------------------------------------------------
class CacheError(LiqdeskError):
    """The cache cannot do what was asked right now; the message says why and what the user can do."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class CacheLocked(CacheError):
    """Another program held the database longer than the busy timeout."""


class CacheFull(CacheError):
    """No space left on the disk (or over a quota): nothing was written."""


class CacheIOError(CacheError):
    """The disk or the file system failed (I/O error, read-only, permissions)."""


class CacheCorrupt(CacheError):
    """SQLite reports the database file malformed or not a database."""


class CacheUnreachable(CacheIOError):
    """The store's server cannot be reached (connection refused, the server gone, a timeout): nothing was
    written; the caller keeps what it has and tries again later."""


class CacheForeign(CacheError):
    """Not liqdesk's database, or one written by a newer liqdesk."""


# SQLite primary result codes (https://www.sqlite.org/rescode.html)
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 3, 5, 6, 8, 10, 11, 13, 14, 26


def classify(
    exc: sqlite3.Error, path: Path, doing: str, busy_timeout_s: float = BUSY_TIMEOUT_S
) -> CacheError:
    """The CacheError a sqlite3 error means, with a message naming the file and what was being done."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc) or type(exc).__name__
    low = text.lower()
    if primary in (_CORRUPT, _NOTADB) or "malformed" in low or "not a database" in low:
        return CacheCorrupt(f"the cache {path} is damaged ({text}) while {doing}", path)
    if primary in (_BUSY, _LOCKED) or "database is locked" in low or "table is locked" in low:
        return CacheLocked(
            f"the cache {path} is locked by another program (waited {busy_timeout_s:g} s while {doing}); "
            "nothing was changed: try again when it has finished",
            path,
        )
    if primary == _FULL or "disk is full" in low or (primary == _IOERR and _no_space(path)):
        return CacheFull(
            f"no space left on the disk for the cache {path} ({text}) while {doing}; nothing was written and the "
            "stored data is unchanged: free some space",
            path,
        )
    if primary in (_IOERR, _READONLY, _CANTOPEN, _PERM) or "i/o error" in low or "readonly" in low:
        return CacheIOError(f"cannot use the cache {path} while {doing}: {text}", path)
    return CacheError(f"the cache {path} failed while {doing}: {text}", path)


def _no_space(path: Path) -> bool:
    """An I/O error on a disk with (almost) no free space is a full disk (SQLite says only "disk I/O error"
    when it cannot grow its shared-memory file)."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free < 256 << 10
    except OSError:
        return False


@dataclass(frozen=True)
class SalvageReport:
    """What the salvage of a damaged database kept: rows per table, and about how many were lost (None: the
    damage hides which table the lost pages belonged to)."""

    damaged: Path  # where the damaged file was kept (or the damaged file itself, salvaged into memory)
    reason: str
    kept: dict[str, int]
    lost: dict[str, int | None]
    unreadable_pages: int
    coverage_reset: bool

    def summary(self) -> str:
        parts = []
        for name in TABLE_NAMES:
            lost = self.lost.get(name)
            lost_text = "lost: unknown" if lost is None else f"about {lost:,} lost" if lost else "none lost"
            parts.append(f"{name} {self.kept.get(name, 0):,} kept, {lost_text}")
        text = "; ".join(parts)
        if self.unreadable_pages:
            text += f"; {self.unreadable_pages} page(s) unreadable"
        if self.coverage_reset:
            text += "; the record of fetched ranges was reset, so missing bars are fetched again"
        return text


# -- the cache ---------------------------------------------------------------------------------------------
class Cache(SqlStore):
    """The SQLite cache. ``Cache()`` opens (or creates) the default file; ``Cache(path)`` another one.

    ``read_only``: open with ``mode=ro``, write nothing (a missing file reads as empty). ``repair``: a damaged file
    opened for writing is salvaged into a fresh one (the window and ``record``); without it the damaged file is
    left alone and only read. ``busy_timeout_s``: how long to wait for another program's lock (default
    ``BUSY_TIMEOUT_S``). ``fallback_read_only``: when the file cannot be opened for writing (full disk, I/O
    error, a lock), read it anyway; writes then raise that error until ``reopen()`` succeeds."""

    MARK: ClassVar[str] = "?"

    @property
    def read_only(self) -> bool:
        return not self._want_write or self.write_error is not None

    @property
    def url(self) -> str:
        return f"sqlite://{self.path.absolute().as_posix()}"

    @property
    def location(self) -> str:
        home = str(Path.home())
        text = str(self.path.absolute())
        if home not in ("", "/") and text.startswith(home + "/"):
            text = "~" + text[len(home) :]
        return f"sqlite {text}"

    @property
    def unstored_dir(self) -> Path:
        return self.path.parent

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        read_only: bool = False,
        repair: bool = True,
        busy_timeout_s: float | None = None,
        fallback_read_only: bool = False,
    ) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._want_write = not read_only
        self.fallback_read_only = fallback_read_only
        self.repair = repair and not read_only
        self.busy_timeout_s = BUSY_TIMEOUT_S if busy_timeout_s is None else busy_timeout_s
        self.moved_aside: Path | None = None  # a foreign or damaged file kept aside by this open
        self.salvage: SalvageReport | None = None  # set when a damaged file was salvaged
        self.damaged: str | None = None  # set when reads come from a damaged file's readable rows (in memory)
        self.exists = True
        self.write_error: CacheError | None = None  # why a cache opened for writing can only be read now
        self._identity: tuple[int, int] | None = None
        self._conn = self._connect()

    # -- opening -----------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        self.write_error = None
        if not self._want_write:
            return self._open_read_only()
        try:
            return self._open_for_writing()
        except (CacheFull, CacheIOError, CacheLocked) as exc:
            if not self.fallback_read_only:
                raise
            # keep reading what is stored; every write raises this until reopen() succeeds
            self.write_error = exc
            log.warning("%s; reading it only for now", exc)
            return self._open_read_only()

    def _open_for_writing(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheIOError(
                f"cannot create the cache folder {self.path.parent}: {exc.strerror or exc}", self.path
            ) from None
        try:
            return self._open_writable()
        except CacheCorrupt as exc:
            if self.repair:
                return self._salvage(str(exc))
            return self._damaged_view(str(exc))
        except _NotOurs as exc:
            if self.repair and not exc.newer:
                self.moved_aside = self._keep_aside(f"not a liqdesk database ({exc})")
                return self._open_writable()
            raise CacheForeign(exc.message(self.path), self.path) from None

    def _open_read_only(self) -> sqlite3.Connection:
        if not self.path.exists():
            self.exists = False
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            conn.executescript(_SCHEMA)
            return conn
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        wal = self.path.with_name(self.path.name + "-wal")
        had = self._companions()
        try:
            try:
                return self._checked(uri)
            except (CacheIOError, CacheFull):
                # SQLite could not make its shared-memory file (full disk, read-only folder). With no log to
                # apply, the file alone is the whole database: read it as immutable.
                self._remove_stubs(had)
                if wal.exists() and wal.stat().st_size > 0:
                    raise
                return self._checked(uri + "&immutable=1")
        except CacheCorrupt as exc:
            return self._damaged_view(str(exc))
        except _NotOurs as exc:
            raise CacheForeign(exc.message(self.path), self.path) from None

    def _companions(self) -> dict[Path, bool]:
        return {self.path.with_name(self.path.name + s): False for s in ("-wal", "-shm")} | {
            p: True for p in _files_of(self.path)
        }

    def _remove_stubs(self, had: dict[Path, bool]) -> None:
        """Remove the -wal/-shm a failed open left behind: files that were not there before and are too small to
        be in use by anyone (SQLite creates them, then fails to grow them on a full disk)."""
        for p, existed in had.items():
            minimum = 32768 if p.name.endswith("-shm") else 1
            if not existed and p != self.path and p.exists() and p.stat().st_size < minimum:
                with contextlib.suppress(OSError):
                    p.unlink()

    def _checked(self, uri: str) -> sqlite3.Connection:
        conn = self._sqlite(uri, uri=True)
        try:
            with self._errors("opening it read-only"):
                self._check_ours(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_writable(self) -> sqlite3.Connection:
        created = not self.path.exists()
        had = self._companions()
        conn = self._sqlite(str(self.path))
        try:
            with self._errors("opening it"):
                tables = self._check_ours(conn)
                if self.repair and tables:
                    check = conn.execute("PRAGMA quick_check").fetchall()[0][0]
                    if check != "ok":
                        raise CacheCorrupt(
                            f"the cache {self.path} is damaged (integrity check: {check})", self.path
                        )
                # nothing below writes unless it must: a healthy database opens while another program holds a lock
                if str(conn.execute("PRAGMA journal_mode").fetchall()[0][0]).lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                if not set(TABLE_NAMES) <= tables:
                    conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
                elif not conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'liquidations_time'"
                ).fetchall():
                    conn.execute(_TIME_INDEX)
                if conn.execute("PRAGMA application_id").fetchall()[0][0] != APP_ID:
                    conn.execute(f"PRAGMA application_id = {APP_ID}")
                if conn.execute("PRAGMA user_version").fetchall()[0][0] != SCHEMA_VERSION:
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            conn.close()
            if created:  # leave no empty file behind (a full disk, a failed start)
                for p in _files_of(self.path):
                    with contextlib.suppress(OSError):
                        p.unlink()
            else:
                self._remove_stubs(had)
            raise
        st = os.stat(self.path)
        self._identity = (st.st_dev, st.st_ino)
        return conn

    def _sqlite(self, target: str, *, uri: bool = False) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(target, timeout=self.busy_timeout_s, isolation_level=None,
                                   check_same_thread=False, uri=uri)  # fmt: skip
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
        except sqlite3.Error as exc:
            raise classify(exc, self.path, "opening it", self.busy_timeout_s) from None
        return conn

    def _check_ours(self, conn: sqlite3.Connection) -> set[str]:
        app_id = conn.execute("PRAGMA application_id").fetchall()[0][0]
        version = conn.execute("PRAGMA user_version").fetchall()[0][0]
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and app_id != APP_ID:
            raise _NotOurs(f"application_id {app_id:#x}, tables {', '.join(sorted(tables))}")
        if app_id == APP_ID and version > SCHEMA_VERSION:
            raise _NotOurs(f"written by a newer liqdesk: schema {version} > {SCHEMA_VERSION}", newer=True)
        return tables

    def _damaged_view(self, reason: str) -> sqlite3.Connection:
        """The rows still readable from the damaged file, in memory; the file itself is not touched."""
        size = sum(p.stat().st_size for p in _files_of(self.path))
        if size > MAX_IN_MEMORY_SALVAGE_BYTES:
            raise CacheCorrupt(
                f"{reason}; it was not changed. It is too large ({size >> 20} MiB) to read around the damage "
                "here: open the window or run `liqdesk record`, which salvage it into a fresh database",
                self.path,
            )
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn.executescript(_SCHEMA)
        report = _copy_rows(self.path, conn, reason)
        self.damaged = (
            f"{reason}; it was not changed: using the rows still readable ({report.summary()}). The window or "
            "`liqdesk record` salvage it into a fresh database"
        )
        self.salvage = report
        log.warning("%s", self.damaged)
        return conn

    def _salvage(self, reason: str) -> sqlite3.Connection:
        """Copy every readable row into a fresh file, keep the damaged one aside, open the fresh one."""
        fresh = self.path.with_name(f"{self.path.name}.salvage-{os.getpid()}")
        for p in _files_of(fresh):
            p.unlink()
        try:
            conn = sqlite3.connect(fresh, isolation_level=None)
            try:
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA application_id = {APP_ID}")
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                report = _copy_rows(self.path, conn, reason)
            finally:
                conn.close()
            fd = os.open(fresh, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            aside = self._keep_aside(reason, keep_linked=True)
            os.replace(fresh, self.path)
        except sqlite3.Error as exc:
            for p in _files_of(fresh):
                with contextlib.suppress(OSError):
                    p.unlink()
            raise classify(exc, self.path, "salvaging the damaged database (it was not changed)") from None
        except OSError as exc:
            for p in _files_of(fresh):
                with contextlib.suppress(OSError):
                    p.unlink()
            raise CacheIOError(
                f"cannot salvage the damaged cache {self.path} ({exc.strerror or exc}); it was not changed",
                self.path,
            ) from None
        self.moved_aside = aside
        self.salvage = replace(report, damaged=aside)
        log.warning("%s; salvaged into a fresh database: %s; the damaged file is kept as %s",
                    reason, self.salvage.summary(), aside)  # fmt: skip
        return self._open_writable()

    def _keep_aside(self, why: str, *, keep_linked: bool = False) -> Path:
        """Move the file (and its -wal/-shm) to ``<name>.corrupt-<time>``. With ``keep_linked`` the main file is
        hard-linked there first, so ``path`` never disappears before its replacement is renamed over it."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while any(p.exists() for p in _files_of(target)):
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        for suffix in ("-wal", "-shm"):  # never leave an old log beside a new database
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.replace(side, target.with_name(target.name + suffix))
        linked = False
        if keep_linked:
            with contextlib.suppress(OSError):
                os.link(self.path, target)
                linked = True
        if not linked:
            os.replace(self.path, target)
        if not keep_linked:
            log.warning("the cache database %s could not be used (%s); moved it to %s and started a new one",
                        self.path, why, target)  # fmt: skip
        return target

    def reopen(self) -> None:
        """Close and open again (after an error: a damaged file is then salvaged, a vanished one recreated)."""
        with contextlib.suppress(Exception):
            self._conn.close()
        self.damaged = None
        self._conn = self._connect()

    def close(self) -> None:
        self._conn.close()

    # -- error handling shared by every operation -----------------------------------------------------------
    # (reads use fetchall(): a statement left half-stepped keeps a read snapshot open, and a connection holding
    # an old snapshot can never take the write lock again)
    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise classify(exc, self.path, doing, self.busy_timeout_s) from None

    def _read(self, doing: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            with self._errors(doing):
                return fn(self._conn)
        except CacheCorrupt as exc:
            if self.repair or self.damaged is not None:
                raise
            # found only now (the damage is in a table's pages): read around it, leave the file alone
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = self._damaged_view(str(exc))
            with self._errors(doing):
                return fn(self._conn)

    def _select(self, doing: str, sql: str, args: Sequence[object]) -> list[Any]:
        return self._read(doing, _fetch_all(sql, args))

    def _execute_many(self, doing: str, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._write(doing, lambda c: c.executemany(sql, rows))

    def _write(self, doing: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self.write_error is not None:
            raise type(self.write_error)(str(self.write_error), self.path)
        if not self._want_write:
            raise CacheError(f"the cache {self.path} was opened read-only (while {doing})", self.path)
        if self.damaged is not None:
            raise CacheCorrupt(f"{self.damaged}; nothing is written to it (while {doing})", self.path)
        self._follow_replacement()
        with self._errors(doing), _Tx(self._conn):
            return fn(self._conn)

    def _follow_replacement(self) -> None:
        """Another process may have salvaged the file (a fresh one now has our name): write to that one."""
        try:
            st = os.stat(self.path)
            current: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            current = None
        if self._identity is not None and current != self._identity:
            log.info("the cache %s was replaced by another process; reopening it", self.path)
            self.reopen()

    # -- coverage ----------------------------------------------------------------------------------------
    def add_coverage(
        self, kind: str, exchange: str, symbol: str, timeframe: str, start: int, end: int
    ) -> None:
        """Mark [start, end) as fetched, merging with touching or overlapping ranges."""
        if end <= start:
            return

        def merge(conn: sqlite3.Connection) -> None:
            rows = conn.execute(
                "SELECT start_ms, end_ms FROM coverage WHERE kind=? AND exchange=? AND symbol=? AND timeframe=? "
                "AND end_ms >= ? AND start_ms <= ?",
                (kind, exchange, symbol, timeframe, start, end),
            ).fetchall()
            lo = min([start] + [int(r[0]) for r in rows])
            hi = max([end] + [int(r[1]) for r in rows])
            conn.executemany(
                "DELETE FROM coverage WHERE kind=? AND exchange=? AND symbol=? AND timeframe=? AND start_ms=?",
                [(kind, exchange, symbol, timeframe, int(r[0])) for r in rows],
            )
            conn.execute(
                "INSERT INTO coverage VALUES (?, ?, ?, ?, ?, ?)", (kind, exchange, symbol, timeframe, lo, hi)
            )

        self._write("recording a fetched range", merge)

    # -- liquidations ------------------------------------------------------------------------------------
    def put_liquidations(self, records: Sequence[LiquidationRecord]) -> int:
        """Insert records; ones already stored (same exchange, symbol, time, side, price, quantity) are ignored.
        Returns how many were new. On an error nothing is stored (the caller keeps the records)."""
        if not records:
            return 0
        rows = liquidation_rows_of(records)

        def insert(conn: sqlite3.Connection) -> int:
            before = conn.total_changes
            conn.executemany("INSERT OR IGNORE INTO liquidations VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
            return conn.total_changes - before

        return self._write("storing liquidations", insert)

    def insert_rows(self, table: str, rows: Sequence[tuple[object, ...]]) -> int:
        """Insert whole rows (``table_rows``' columns); rows whose key is stored already are left as stored.
        Coverage rows are merged into the stored ranges. Returns how many rows were new."""
        spec = table_spec(table)
        if not rows:
            return 0
        if table == "coverage":
            return merge_coverage_rows(self, rows)
        marks = ", ".join("?" * len(spec.columns))

        def insert(conn: sqlite3.Connection) -> int:
            cur = conn.executemany(f"INSERT OR IGNORE INTO {table} VALUES ({marks})", rows)
            return max(cur.rowcount, 0)

        return self._write(f"storing {table}", insert)


class _NotOurs(Exception):
    def __init__(self, why: str, *, newer: bool = False) -> None:
        super().__init__(why)
        self.newer = newer

    def message(self, path: Path) -> str:
        if self.newer:
            return (
                f"the cache {path} was {self}; it was not changed: use that liqdesk, or set LIQDESK_DATA_DIR"
            )
        return f"{path} is not a liqdesk cache ({self}); it was not changed: set LIQDESK_DATA_DIR to another folder"


class _Tx:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on any error: a failed write leaves the stored data as it was)."""

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
        elif self.conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")


def _fetch_all(sql: str, args: Sequence[object]) -> Callable[[sqlite3.Connection], list[Any]]:
    return lambda conn: conn.execute(sql, args).fetchall()


def _files_of(path: Path) -> list[Path]:
    """The database file and its -wal / -shm companions that exist."""
    return [
        p
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
        if p.exists()
    ]


def _sql_rows(path: Path, table: Table, batch: int = 20_000) -> Iterator[list[tuple[object, ...]]]:
    """What SQLite itself still reads of a table (up to the first damaged page), in batches."""
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return
    rows: list[tuple[object, ...]] = []
    try:
        for row in conn.execute(f"SELECT {', '.join(c.name for c in table.columns)} FROM {table.name}"):
            rows.append(row)  # one at a time: the rows before a damaged page are kept
            if len(rows) >= batch:
                yield rows
                rows = []
    except sqlite3.Error:
        pass
    finally:
        conn.close()
    if rows:
        yield rows


def _copy_rows(damaged: Path, conn: sqlite3.Connection, reason: str) -> SalvageReport:
    """Every readable row of the damaged file into ``conn`` (a fresh database), streamed in committed batches:
    first what SQLite itself reads of each table (the tape first), then what the page reader finds past the
    damage. Coverage (the record of fetched ranges) is kept only when no candle or open-interest row can have
    been lost: otherwise it would claim bars the fresh database lacks, and they would never be fetched again."""
    coverage: list[tuple[object, ...]] = []

    def insert(table: Table, rows: list[tuple[object, ...]]) -> None:
        if table.name == "coverage":
            coverage.extend(rows)  # decided at the end
            return
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            f"INSERT OR IGNORE INTO {table.name} VALUES ({', '.join('?' * len(table.columns))})", rows
        )
        conn.execute("COMMIT")

    for table in TABLES:
        for rows in _sql_rows(damaged, table):
            insert(table, rows)
    try:
        scan: PageScan | None = read_tables(damaged, list(TABLES), insert)
    except OSError:
        scan = None
    kept: dict[str, int] = {}
    lost: dict[str, int | None] = {}
    unreadable = scan.unreadable_pages if scan is not None else 0
    for table in TABLES:
        found = scan.tables[table.name] if scan is not None else None
        lost[table.name] = _lost_estimate(found, unreadable if scan is not None else 1)
    coverage_reset = scan is None or unreadable > 0 or any(lost[n] != 0 for n in ("candles", "open_interest"))
    if coverage_reset:
        lost["coverage"] = None
    elif coverage:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR IGNORE INTO coverage VALUES (?, ?, ?, ?, ?, ?)", coverage)
        conn.execute("COMMIT")
    for table in TABLES:
        kept[table.name] = int(conn.execute(f"SELECT count(*) FROM {table.name}").fetchall()[0][0])
    return SalvageReport(damaged, reason, kept, lost, unreadable, coverage_reset)


def _lost_estimate(found: TableRows | None, unreadable_pages: int) -> int | None:
    if found is None:
        return None
    if not found.root_found:
        return None if unreadable_pages else found.bad_cells
    per_page = found.rows / found.pages_read if found.pages_read else None
    if found.bad_pages and per_page is None:
        return None
    return found.bad_cells + round(found.bad_pages * (per_page or 0))


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
        raise DataError(str(classify(exc, path, "clearing it"))) from None

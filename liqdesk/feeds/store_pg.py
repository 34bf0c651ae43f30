"""The market-data store on PostgreSQL (psycopg 3): a desk's shared tape, candles, open interest and coverage.

The same tables, keys and semantics as the SQLite cache (``liqdesk.feeds.cache``), in the schema ``liqdesk`` of the
database the URL names, so that one database can host it beside other things:

* ``candles`` keyed (exchange, symbol, timeframe, open_time): "a market's candles in a range" is that key's index;
  a bar written again replaces the stored one (its mark columns kept when the new one has none).
* ``liquidations`` keyed (exchange, symbol, time, side, price, quantity): the event's own identity with its venue,
  so two venues reporting the same second are two rows and one event received twice (by two recorders, or after
  a reconnect) is one. Inserted with ON CONFLICT DO NOTHING, in key order (two recorders writing the same events
  concurrently lock them in the same order: no deadlock); an index on time serves "the tape in a range".
* ``open_interest`` keyed (exchange, symbol, period, time); ``coverage`` keyed (kind, exchange, symbol, timeframe,
  start_ms): a new range is merged with the ranges it touches under a per-series advisory lock, so two recorders
  adding ranges of one series at once still leave one merged range.
* ``schema_version`` (component, version, migrated_at): liqdesk creates the schema and migrates it (``MIGRATIONS``,
  under an advisory lock, in one transaction). A database whose version is newer than this liqdesk's is refused
  (``CacheForeign``) and never changed; so is a ``liqdesk`` schema that liqdesk did not create.

Errors map to the cache's classes: connection refused, the server gone or a timeout → ``CacheUnreachable`` (a
``CacheIOError``; the connection is dropped and made again by the next call, at most every few seconds, with a
doubling pause while the server stays away); a lock held longer than the busy timeout, a deadlock or a
serialization failure → ``CacheLocked`` (deadlocks and serialization failures are retried here first); disk full
→ ``CacheFull``; I/O errors, permissions, authentication → ``CacheIOError``; data or index corruption →
``CacheCorrupt``. Credentials come from the URL, ``~/.pgpass`` (``PGPASSFILE``) or the environment (``PGPASSWORD``,
``PGUSER``, ``PGHOST``, ``PGSSLMODE``…): libpq reads them; liqdesk stores none.

One ``PgStore`` per thread (its one connection is used by one thread at a time).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import psycopg
from psycopg import conninfo as pg_conninfo

from liqdesk.feeds.cache import (
    BUSY_TIMEOUT_S,
    CacheCorrupt,
    CacheError,
    CacheForeign,
    CacheFull,
    CacheIOError,
    CacheLocked,
    CacheUnreachable,
    SalvageReport,
)
from liqdesk.feeds.paths import data_dir
from liqdesk.feeds.store_tables import (
    SqlStore,
    key_columns,
    liquidation_rows_of,
    merge_coverage_rows,
    table_spec,
)
from liqdesk.feeds.venues.base import LiquidationRecord

if TYPE_CHECKING:
    from liqdesk.feeds.store_url import StoreUrl

log = logging.getLogger(__name__)

SCHEMA = "liqdesk"
MARKET_VERSION = 1
CONNECT_TIMEOUT_S = 10
# After a failed connection, the next attempt waits this long (doubling up to the cap): a server that is away
# costs one quick error per call meanwhile, not a connection timeout on every write.
RECONNECT_PAUSE_S = 1.0
RECONNECT_PAUSE_CAP_S = 30.0
T = TypeVar("T")

_VERSION_TABLE = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_version (
    component TEXT PRIMARY KEY, version INTEGER NOT NULL, migrated_at TIMESTAMPTZ NOT NULL DEFAULT now()
)"""

# component "market": the market tables (the column order is ``store_tables.TABLES``, the same in SQLite)
MIGRATIONS: dict[int, str] = {
    1: f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.candles (
    exchange TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, open_time BIGINT NOT NULL,
    open DOUBLE PRECISION NOT NULL, high DOUBLE PRECISION NOT NULL, low DOUBLE PRECISION NOT NULL,
    close DOUBLE PRECISION NOT NULL, volume DOUBLE PRECISION NOT NULL, quote_volume DOUBLE PRECISION,
    taker_buy_volume DOUBLE PRECISION, mark_high DOUBLE PRECISION, mark_low DOUBLE PRECISION,
    PRIMARY KEY (exchange, symbol, timeframe, open_time)
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.open_interest (
    exchange TEXT NOT NULL, symbol TEXT NOT NULL, period TEXT NOT NULL, time BIGINT NOT NULL,
    usd DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (exchange, symbol, period, time)
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.liquidations (
    exchange TEXT NOT NULL, symbol TEXT NOT NULL, time BIGINT NOT NULL, side SMALLINT NOT NULL,
    price DOUBLE PRECISION NOT NULL, quantity DOUBLE PRECISION NOT NULL, usd DOUBLE PRECISION NOT NULL,
    order_price DOUBLE PRECISION, raw_side TEXT, received_at BIGINT NOT NULL,
    PRIMARY KEY (exchange, symbol, time, side, price, quantity)
);
CREATE INDEX IF NOT EXISTS liquidations_time ON {SCHEMA}.liquidations (time);
CREATE TABLE IF NOT EXISTS {SCHEMA}.coverage (
    kind TEXT NOT NULL, exchange TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL,
    start_ms BIGINT NOT NULL, end_ms BIGINT NOT NULL,
    PRIMARY KEY (kind, exchange, symbol, timeframe, start_ms)
);
"""
}


# -- connecting and errors ---------------------------------------------------------------------------------------
def connect(
    url: str, *, read_only: bool = False, busy_timeout_s: float = BUSY_TIMEOUT_S
) -> psycopg.Connection[Any]:
    """A connection in autocommit mode (writes use explicit transactions), named ``liqdesk``, with the lock wait
    bounded by ``busy_timeout_s``; read-only sessions refuse every write. psycopg errors propagate."""
    given = pg_conninfo.conninfo_to_dict(url)
    extra: dict[str, Any] = {}
    for key, value in (("connect_timeout", CONNECT_TIMEOUT_S), ("application_name", "liqdesk"), ("keepalives", 1),
                       ("keepalives_idle", 30), ("keepalives_interval", 10), ("keepalives_count", 3)):  # fmt: skip
        if key not in given:
            extra[key] = value
    conn = psycopg.connect(url, autocommit=True, **extra)
    try:
        conn.execute(f"SET lock_timeout = {max(1, int(busy_timeout_s * 1000))}")
        if read_only:
            conn.execute("SET default_transaction_read_only = on")
    except BaseException:
        conn.close()
        raise
    return conn


def classify_pg(
    exc: BaseException, location: str, doing: str, busy_timeout_s: float = BUSY_TIMEOUT_S
) -> CacheError:
    """The CacheError a psycopg error means, with a message naming the store and what was being done."""
    state = str(getattr(exc, "sqlstate", None) or "")
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    low = text.lower()
    where = f"the store {location}"
    if any(
        w in low for w in ("password authentication failed", "no password supplied", "authentication failed")
    ) or (state.startswith("28")):
        return CacheIOError(
            f"{where} refused the login while {doing} ({text}); the password comes from the URL, ~/.pgpass "
            "(host:port:database:user:password, mode 600) or PGPASSWORD"
        )
    if state == "3D000" or ("database" in low and "does not exist" in low):
        return CacheIOError(
            f"{where} cannot be used while {doing}: {text} (create it, e.g. createdb -O USER DB)"
        )
    if state in ("42501", "25006") or "permission denied" in low:
        return CacheIOError(f"{where} does not allow this user to {doing}: {text}")
    if state == "55P03" or state.startswith("40"):
        return CacheLocked(
            f"{where} is locked by another session (waited {busy_timeout_s:g} s while {doing}); nothing was "
            "changed: try again when it has finished"
        )
    if state == "53100":
        return CacheFull(
            f"no space left on the database server of {where} ({text}) while {doing}; nothing was written and "
            "the stored data is unchanged"
        )
    if state in ("XX001", "XX002"):
        return CacheCorrupt(f"{where} reports damaged data ({text}) while {doing}")
    if state.startswith("58"):
        return CacheIOError(f"cannot use {where} while {doing}: {text}")
    if (
        isinstance(exc, psycopg.OperationalError)
        and (not state or state.startswith("08") or state in ("57P01", "57P02", "57P03", "53300"))
    ) or isinstance(exc, psycopg.InterfaceError):
        return CacheUnreachable(f"{where} cannot be reached while {doing} ({text}); nothing was written")
    return CacheError(f"{where} failed while {doing}: {text}")


def _retryable(exc: BaseException) -> bool:
    """Deadlocks and serialization failures: the transaction was rolled back and may simply run again."""
    return str(getattr(exc, "sqlstate", None) or "") in ("40P01", "40001")


def lock_key(text: str) -> int:
    """A signed 64-bit advisory-lock key for ``text`` (stable across processes and versions)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def schema_version(conn: psycopg.Connection[Any], component: str) -> int | None:
    """The stored version of ``component`` (0: none yet), or None when the schema is there without liqdesk's
    version table (not ours)."""
    has_versions, has_tables = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL, EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = %s)",
        (f"{SCHEMA}.schema_version", SCHEMA),
    ).fetchone() or (False, False)
    if not has_versions:
        return None if has_tables else 0
    row = conn.execute(
        f"SELECT version FROM {SCHEMA}.schema_version WHERE component = %s", (component,)
    ).fetchone()
    return 0 if row is None else int(row[0])


def ensure_schema(
    conn: psycopg.Connection[Any], component: str, migrations: dict[int, str], version: int, location: str
) -> None:
    """Create or migrate ``component``'s tables to ``version`` (under an advisory lock, in one transaction).
    CacheForeign when the schema is not liqdesk's or is newer. Nothing is written when it is current."""
    current = schema_version(conn, component)
    if current == version:
        return
    _check_version(current, component, version, location)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(f"{SCHEMA}:schema"),))
        current = schema_version(conn, component)  # another process may have done it meanwhile
        _check_version(current, component, version, location)
        if current == version:
            return
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.execute(_VERSION_TABLE)
        for step in range((current or 0) + 1, version + 1):
            conn.execute(migrations[step])
        conn.execute(
            f"INSERT INTO {SCHEMA}.schema_version (component, version) VALUES (%s, %s) "
            "ON CONFLICT (component) DO UPDATE SET version = excluded.version, migrated_at = now()",
            (component, version),
        )
    log.info("%s: %s tables at version %d", location, component, version)


def _check_version(current: int | None, component: str, version: int, location: str) -> None:
    if current is None:
        raise CacheForeign(
            f"the store {location} has a schema {SCHEMA!r} that liqdesk did not create; it was not changed: use "
            "another database"
        )
    if current > version:
        raise CacheForeign(
            f"the store {location} was written by a newer liqdesk ({component} schema {current} > {version}); it "
            "was not changed: use that liqdesk"
        )


class PgSession:
    """One lazily (re)connected PostgreSQL connection with liqdesk's error mapping: ``run(doing, fn, write=…)``
    calls ``fn(conn)`` (in a transaction when writing), reconnects once when the connection was lost (every
    write is idempotent, so a write whose answer was lost may run again), retries deadlocks, and raises the
    mapped CacheError otherwise. ``on_connect(conn)`` runs after each new connection (schema checks)."""

    def __init__(
        self,
        url: str,
        location: str,
        *,
        read_only: bool,
        busy_timeout_s: float,
        on_connect: Callable[[psycopg.Connection[Any]], None],
    ) -> None:
        self.url = url
        self.location = location
        self.read_only = read_only
        self.busy_timeout_s = busy_timeout_s
        self.on_connect = on_connect
        self.conn: psycopg.Connection[Any] | None = None
        self.last_error: CacheError | None = None
        self._pause_s = 0.0
        self._next_try = 0.0

    def connection(self, doing: str) -> psycopg.Connection[Any]:
        if self.conn is not None and not self.conn.closed and not self.conn.broken:
            return self.conn
        self.drop()
        now = time.monotonic()
        if now < self._next_try and self.last_error is not None:
            wait = self._next_try - now
            raise type(self.last_error)(f"{self.last_error} (next attempt in {wait:.0f} s)")
        try:
            conn = connect(self.url, read_only=self.read_only, busy_timeout_s=self.busy_timeout_s)
        except psycopg.Error as exc:
            self._failed(classify_pg(exc, self.location, f"connecting ({doing})", self.busy_timeout_s))
            raise self.last_error from None  # type: ignore[misc]
        try:
            self.on_connect(conn)
        except psycopg.Error as exc:
            conn.close()
            self._failed(
                classify_pg(exc, self.location, f"checking its schema ({doing})", self.busy_timeout_s)
            )
            raise self.last_error from None  # type: ignore[misc]
        except BaseException:
            conn.close()
            raise
        if self.last_error is not None:
            log.warning("%s is reachable again", self.location)
        self.conn, self.last_error, self._pause_s = conn, None, 0.0
        return conn

    def _failed(self, err: CacheError) -> None:
        self.last_error = err
        if isinstance(err, CacheUnreachable):
            self._pause_s = min(RECONNECT_PAUSE_CAP_S, max(RECONNECT_PAUSE_S, self._pause_s * 2))
            self._next_try = time.monotonic() + self._pause_s

    def run(self, doing: str, fn: Callable[[psycopg.Connection[Any]], T], *, write: bool = False) -> T:
        attempt = 0
        while True:
            fresh = self.conn is None or self.conn.closed or self.conn.broken
            conn = self.connection(doing)
            try:
                if write:
                    with conn.transaction():
                        return fn(conn)
                return fn(conn)
            except psycopg.Error as exc:
                err = classify_pg(exc, self.location, doing, self.busy_timeout_s)
                lost = conn.broken or conn.closed or isinstance(err, CacheUnreachable)
                if lost:
                    self.drop()
                attempt += 1
                if attempt < 4 and (_retryable(exc) or (lost and not fresh)):
                    if lost:
                        log.info("%s: connection lost while %s; connecting again", self.location, doing)
                    continue
                if lost:
                    self._failed(err)
                raise err from None

    def drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(psycopg.Error):
                self.conn.close()
            self.conn = None

    def close(self) -> None:
        self.drop()


# -- the store -----------------------------------------------------------------------------------------------
class PgStore(SqlStore):
    """The PostgreSQL implementation of ``liqdesk.feeds.store.MarketStore``. Opening connects and creates or
    migrates the schema (``read_only``: only checks it; nothing stored yet reads as empty). A server that cannot be
    reached at open raises ``CacheUnreachable``, unless ``fallback_read_only``: then the store opens disconnected
    (``write_error`` says why) and every call tries again (at most every few seconds)."""

    MARK: ClassVar[str] = "%s"
    PREFIX: ClassVar[str] = f"{SCHEMA}."
    damaged: str | None = None
    salvage: SalvageReport | None = None
    moved_aside: Path | None = None

    def __init__(
        self,
        target: StoreUrl,
        *,
        read_only: bool = False,
        fallback_read_only: bool = False,
        busy_timeout_s: float | None = None,
    ) -> None:
        self.target = target
        self._want_write = not read_only
        self.busy_timeout_s = BUSY_TIMEOUT_S if busy_timeout_s is None else busy_timeout_s
        self.exists = True
        self.write_error: CacheError | None = None
        self._session = PgSession(target.url, target.location, read_only=read_only,
                                  busy_timeout_s=self.busy_timeout_s, on_connect=self._on_connect)  # fmt: skip
        try:
            self._session.connection("opening it")
        except CacheUnreachable as exc:
            if not fallback_read_only:
                raise
            self.write_error = exc
            log.warning("%s; retrying on every use", exc)

    def _on_connect(self, conn: psycopg.Connection[Any]) -> None:
        if self._want_write:
            ensure_schema(conn, "market", MIGRATIONS, MARKET_VERSION, self.location)
            self.exists = True
        else:
            current = schema_version(conn, "market")
            _check_version(current, "market", MARKET_VERSION, self.location)
            self.exists = bool(current)

    # -- what it is --------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.target.safe

    @property
    def location(self) -> str:
        return self.target.location

    @property
    def unstored_dir(self) -> Path:
        return data_dir()

    @property
    def read_only(self) -> bool:
        return not self._want_write

    def reopen(self) -> None:
        """Connect again now (after an error); raises the CacheError when the server still cannot be used."""
        self._session.drop()
        self._session._next_try = 0.0
        self._session.connection("connecting again")
        self.write_error = None

    def close(self) -> None:
        self._session.close()

    # -- running statements ------------------------------------------------------------------------------------
    def _read(self, doing: str, fn: Callable[[psycopg.Connection[Any]], T], empty: T) -> T:
        def guarded(conn: psycopg.Connection[Any]) -> T:
            if not self.exists:  # read-only on a database liqdesk has not written to yet: look again
                self.exists = bool(schema_version(conn, "market"))
                if not self.exists:
                    return empty
            return fn(conn)

        return self._session.run(doing, guarded)

    def _select(self, doing: str, sql: str, args: Sequence[object]) -> list[Any]:
        return self._read(doing, lambda c: c.execute(sql, args).fetchall(), [])

    def _execute_many(self, doing: str, sql: str, rows: Sequence[Sequence[object]]) -> None:
        self._write(doing, lambda c: c.cursor().executemany(sql, rows))

    def _write(self, doing: str, fn: Callable[[psycopg.Connection[Any]], T]) -> T:
        if not self._want_write:
            raise CacheError(f"the store {self.location} was opened read-only (while {doing})")
        try:
            result = self._session.run(doing, fn, write=True)
        except CacheUnreachable as exc:
            self.write_error = exc
            raise
        self.write_error = None
        return result

    # -- coverage ------------------------------------------------------------------------------------------------
    def add_coverage(
        self, kind: str, exchange: str, symbol: str, timeframe: str, start: int, end: int
    ) -> None:
        """Mark [start, end) as fetched, merged with the touching or overlapping ranges (one series at a time
        across every session: an advisory lock)."""
        if end <= start:
            return
        key = (kind, exchange, symbol, timeframe)

        def merge(conn: psycopg.Connection[Any]) -> None:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("coverage:" + "\x1f".join(key)),))
            rows = conn.execute(
                f"SELECT start_ms, end_ms FROM {SCHEMA}.coverage WHERE kind=%s AND exchange=%s AND symbol=%s "
                "AND timeframe=%s AND end_ms >= %s AND start_ms <= %s",
                (*key, start, end),
            ).fetchall()
            lo = min([start] + [int(r[0]) for r in rows])
            hi = max([end] + [int(r[1]) for r in rows])
            if rows:
                conn.execute(
                    f"DELETE FROM {SCHEMA}.coverage WHERE kind=%s AND exchange=%s AND symbol=%s AND timeframe=%s "
                    "AND start_ms = ANY(%s)",
                    (*key, [int(r[0]) for r in rows]),
                )
            conn.execute(f"INSERT INTO {SCHEMA}.coverage VALUES (%s, %s, %s, %s, %s, %s)", (*key, lo, hi))

        self._write("recording a fetched range", merge)

    # -- liquidations ------------------------------------------------------------------------------------------
    def put_liquidations(self, records: Sequence[LiquidationRecord]) -> int:
        """Insert records; ones already stored (same exchange, symbol, time, side, price, quantity) are ignored.
        Returns how many were new. On an error nothing is stored (the caller keeps the records)."""
        if not records:
            return 0
        rows = sorted(liquidation_rows_of(records), key=lambda r: r[:6])  # type: ignore[arg-type,return-value]

        def insert(conn: psycopg.Connection[Any]) -> int:
            cur = conn.cursor()
            cur.executemany(
                f"INSERT INTO {SCHEMA}.liquidations VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                rows,
            )
            return max(cur.rowcount, 0)

        return self._write("storing liquidations", insert)

    def insert_rows(self, table: str, rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert whole rows; rows whose key is stored already are left as stored; coverage is merged. Returns
        how many rows were new."""
        spec = table_spec(table)
        if not rows:
            return 0
        if table == "coverage":
            return merge_coverage_rows(self, rows)
        marks = ", ".join(["%s"] * len(spec.columns))
        width = len(key_columns(table))
        ordered = sorted(rows, key=lambda r: tuple(r[:width]))

        def insert(conn: psycopg.Connection[Any]) -> int:
            cur = conn.cursor()
            cur.executemany(f"INSERT INTO {SCHEMA}.{table} VALUES ({marks}) ON CONFLICT DO NOTHING", ordered)
            return max(cur.rowcount, 0)

        return self._write(f"storing {table}", insert)

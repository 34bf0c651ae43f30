"""Sampled positions in the local database: accounts, their answers, open interest and inferred liquidations.

The tables live in the same store as the market data, on either backend: the SQLite file of the cache
(``liqdesk.feeds.cache.default_path()``), beside its tables and created here (``CREATE TABLE IF NOT EXISTS``) with
their own schema version in ``position_meta``; or a PostgreSQL store (``postgresql://…``, the schema ``liqdesk``,
created and migrated as the component "positions" of ``liqdesk.feeds.store_pg``). The statements are the same on
both (``?`` placeholders become ``%s``, ``GREATEST``/``LEAST`` are SQLite's scalar ``MAX``/``MIN``). Every write is
idempotent (primary keys; a snapshot written twice is stored once).

* ``position_accounts``: every address known (from the trades stream or imported), first and last seen, trades
  and their notional, when it was last sampled, and the key its snapshots are stored under: by default a salted
  hash of the address (the salt is random per database), or the address itself if the user chose so when the
  account was first stored. The address itself stays here: the sampler needs it to ask for the positions again.
* ``position_samples``: one row per answer (account key, time, how many positions it listed in any coin); an
  answer with no position is a sample too (it says the account held nothing).
* ``positions``: the positions of the coins sampled, one row per (account key, time, coin): signed size,
  entry, leverage and margin type, liquidation price (NULL when the venue gave none), margin used, position value.
* ``position_markets``: open interest (coins) and mark price per coin and time, from ``metaAndAssetCtxs``.
* ``inferred_liquidations``: liquidations inferred from two samples (never mixed with the recorded tape).

"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np

from liqdesk.core.actual_map import PositionSamples
from liqdesk.core.inferred_liquidations import InferredLiquidations
from liqdesk.core.series import Liquidations
from liqdesk.errors import DataError
from liqdesk.feeds import cache as cache_mod
from liqdesk.feeds.addresses import Activity
from liqdesk.feeds.venues.hyperliquid import AccountState, MarketContext

if TYPE_CHECKING:
    from liqdesk.feeds.store_url import StoreUrl

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
AccountKeys = Literal["hash", "address"]
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS position_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS position_accounts (
    exchange TEXT NOT NULL, address TEXT NOT NULL, account TEXT NOT NULL,
    first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, trades INTEGER NOT NULL, notional REAL NOT NULL,
    imported INTEGER NOT NULL, last_sampled INTEGER,
    PRIMARY KEY (exchange, address)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS position_samples (
    exchange TEXT NOT NULL, account TEXT NOT NULL, time INTEGER NOT NULL, positions INTEGER NOT NULL,
    PRIMARY KEY (exchange, account, time)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS position_samples_time ON position_samples (exchange, time);
CREATE TABLE IF NOT EXISTS positions (
    exchange TEXT NOT NULL, account TEXT NOT NULL, time INTEGER NOT NULL, coin TEXT NOT NULL,
    size REAL NOT NULL, entry_px REAL NOT NULL, leverage REAL NOT NULL, margin_type TEXT NOT NULL,
    liquidation_px REAL, margin_used REAL NOT NULL, position_value REAL NOT NULL,
    PRIMARY KEY (exchange, account, time, coin)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS position_markets (
    exchange TEXT NOT NULL, coin TEXT NOT NULL, time INTEGER NOT NULL, open_interest REAL NOT NULL,
    mark_px REAL NOT NULL,
    PRIMARY KEY (exchange, coin, time)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inferred_liquidations (
    exchange TEXT NOT NULL, symbol TEXT NOT NULL, account TEXT NOT NULL, seen_before INTEGER NOT NULL,
    seen_after INTEGER NOT NULL, side INTEGER NOT NULL, time INTEGER NOT NULL, price REAL NOT NULL,
    quantity REAL NOT NULL, usd REAL NOT NULL,
    PRIMARY KEY (exchange, symbol, account, seen_before, seen_after, side)
) WITHOUT ROWID;
"""
# The same tables on PostgreSQL (schema "liqdesk"; the component "positions" of its version table).
_PG_MIGRATIONS = {
    1: """
CREATE TABLE IF NOT EXISTS liqdesk.position_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS liqdesk.position_accounts (
    exchange TEXT NOT NULL, address TEXT NOT NULL, account TEXT NOT NULL,
    first_seen BIGINT NOT NULL, last_seen BIGINT NOT NULL, trades BIGINT NOT NULL, notional DOUBLE PRECISION NOT NULL,
    imported INTEGER NOT NULL, last_sampled BIGINT,
    PRIMARY KEY (exchange, address)
);
CREATE TABLE IF NOT EXISTS liqdesk.position_samples (
    exchange TEXT NOT NULL, account TEXT NOT NULL, time BIGINT NOT NULL, positions INTEGER NOT NULL,
    PRIMARY KEY (exchange, account, time)
);
CREATE INDEX IF NOT EXISTS position_samples_time ON liqdesk.position_samples (exchange, time);
CREATE TABLE IF NOT EXISTS liqdesk.positions (
    exchange TEXT NOT NULL, account TEXT NOT NULL, time BIGINT NOT NULL, coin TEXT NOT NULL,
    size DOUBLE PRECISION NOT NULL, entry_px DOUBLE PRECISION NOT NULL, leverage DOUBLE PRECISION NOT NULL,
    margin_type TEXT NOT NULL, liquidation_px DOUBLE PRECISION, margin_used DOUBLE PRECISION NOT NULL,
    position_value DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (exchange, account, time, coin)
);
CREATE TABLE IF NOT EXISTS liqdesk.position_markets (
    exchange TEXT NOT NULL, coin TEXT NOT NULL, time BIGINT NOT NULL, open_interest DOUBLE PRECISION NOT NULL,
    mark_px DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (exchange, coin, time)
);
CREATE TABLE IF NOT EXISTS liqdesk.inferred_liquidations (
    exchange TEXT NOT NULL, symbol TEXT NOT NULL, account TEXT NOT NULL, seen_before BIGINT NOT NULL,
    seen_after BIGINT NOT NULL, side SMALLINT NOT NULL, time BIGINT NOT NULL, price DOUBLE PRECISION NOT NULL,
    quantity DOUBLE PRECISION NOT NULL, usd DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (exchange, symbol, account, seen_before, seen_after, side)
);
"""
}
# The tables ``liqdesk store copy`` moves, with how many leading columns make each one's key (the salt in
# position_meta stays with its store: copied rows keep the account keys they were stored under).
POSITION_TABLES: dict[str, tuple[tuple[str, ...], int]] = {
    "position_accounts": (("exchange", "address", "account", "first_seen", "last_seen", "trades", "notional",
                           "imported", "last_sampled"), 2),
    "position_samples": (("exchange", "account", "time", "positions"), 3),
    "positions": (("exchange", "account", "time", "coin", "size", "entry_px", "leverage", "margin_type",
                   "liquidation_px", "margin_used", "position_value"), 4),
    "position_markets": (("exchange", "coin", "time", "open_interest", "mark_px"), 3),
    "inferred_liquidations": (("exchange", "symbol", "account", "seen_before", "seen_after", "side", "time", "price",
                               "quantity", "usd"), 6),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class AccountRow:
    address: str
    account: str  # the key its snapshots are stored under
    first_seen: int
    last_seen: int
    trades: int
    notional: float
    imported: bool
    last_sampled: int | None


class PositionsStore:
    """The position tables of the store at ``path`` (default: the cache's file; a ``StoreUrl`` or a
    ``postgresql://`` URL for PostgreSQL). ``account_keys`` says how accounts stored from now on are keyed in the
    snapshots: "hash" (default) or "address"."""

    def __init__(
        self,
        path: Path | str | StoreUrl | None = None,
        *,
        exchange: str = "hyperliquid",
        account_keys: AccountKeys = "hash",
    ) -> None:
        if account_keys not in ("hash", "address"):
            raise ValueError(f"account_keys must be 'hash' or 'address', not {account_keys!r}")
        self.exchange = exchange
        self.account_keys: AccountKeys = account_keys
        self._conn: sqlite3.Connection | None = None
        self._pg: Any = None  # a store_pg.PgSession on PostgreSQL
        target = _target(path)
        if target is not None and target.kind == "postgresql":
            self.path: Path | None = None
            self.location = target.location
            self._open_pg(target)
        else:
            self.path = (
                target.path if target is not None and target.path is not None else cache_mod.default_path()
            )
            self.location = f"sqlite {self.path}"
            self._open_sqlite()
        self._salt = self._meta("salt")
        self._keys: dict[str, str] = {}

    # -- opening -------------------------------------------------------------------------------------------------
    def _open_sqlite(self) -> None:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = self._open()
        except (sqlite3.OperationalError, _Unusable) as exc:
            raise DataError(f"cannot open the database {self.path}: {exc}") from None
        except (sqlite3.DatabaseError, cache_mod.CacheError):
            # not a database, not ours, or damaged: the cache moves such a file aside and starts a new one
            cache_mod.Cache(self.path).close()
            try:
                self._conn = self._open()
            except (sqlite3.DatabaseError, cache_mod.CacheError, _Unusable) as exc:
                raise DataError(f"cannot open the database {self.path}: {exc}") from None

    def _open_pg(self, target: StoreUrl) -> None:
        from liqdesk.feeds import store_pg

        def prepare(conn: Any) -> None:
            store_pg.ensure_schema(conn, "positions", _PG_MIGRATIONS, SCHEMA_VERSION, target.location)
            conn.execute("SET search_path TO liqdesk")
            conn.execute(
                "INSERT INTO position_meta VALUES ('schema_version', %s), ('salt', %s) ON CONFLICT DO NOTHING",
                (str(SCHEMA_VERSION), secrets.token_hex(16)),
            )

        self._pg = store_pg.PgSession(target.url, target.location, read_only=False,
                                      busy_timeout_s=cache_mod.BUSY_TIMEOUT_S, on_connect=prepare)  # fmt: skip
        try:
            self._pg.connection("opening its position tables")
        except cache_mod.CacheError as exc:
            raise DataError(str(exc)) from None

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)  # type: ignore[arg-type]
        try:
            conn.execute("PRAGMA busy_timeout = 10000")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and app_id != cache_mod.APP_ID:
                raise cache_mod.CacheError(f"not a liqdesk database (application_id {app_id:#x})")
            if "position_meta" in tables:
                row = conn.execute("SELECT value FROM position_meta WHERE key = 'schema_version'").fetchone()
                if row is not None and int(row[0]) > SCHEMA_VERSION:
                    raise _Unusable(f"its position tables were written by a newer liqdesk (schema {row[0]})")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
            if not tables:
                conn.execute(f"PRAGMA application_id = {cache_mod.APP_ID}")
            conn.execute(
                "INSERT OR IGNORE INTO position_meta VALUES ('schema_version', ?), ('salt', ?)",
                (str(SCHEMA_VERSION), secrets.token_hex(16)),
            )
        except BaseException:
            conn.close()
            raise
        return conn

    def _meta(self, key: str) -> str:
        row = self._one("reading position_meta", "SELECT value FROM position_meta WHERE key = ?", (key,))
        if row is None:
            raise DataError(f"the position tables of {self.location} have no {key}")
        return str(row[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._pg is not None:
            self._pg.close()

    def __enter__(self) -> PositionsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- statements on either backend ------------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        if self._pg is not None:
            return sql.replace("?", "%s")
        return sql.replace("GREATEST(", "MAX(").replace("LEAST(", "MIN(")

    def _read(self, doing: str, fn: Callable[[Any], T]) -> T:
        if self._pg is not None:
            try:
                return self._pg.run(doing, fn)  # type: ignore[no-any-return]
            except cache_mod.CacheError as exc:
                raise DataError(str(exc)) from None
        return fn(self._conn)

    def _write(self, doing: str, fn: Callable[[Any], T]) -> T:
        if self._pg is not None:
            try:
                return self._pg.run(doing, fn, write=True)  # type: ignore[no-any-return]
            except cache_mod.CacheError as exc:
                raise DataError(str(exc)) from None
        assert self._conn is not None
        with _Tx(self._conn):
            return fn(self._conn)

    def _all(self, doing: str, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        q = self._sql(sql)
        return self._read(doing, lambda c: [tuple(r) for r in c.execute(q, tuple(args)).fetchall()])

    def _one(self, doing: str, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self._all(doing, sql, args)
        return rows[0] if rows else None

    def _many(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        cur = conn.cursor()
        cur.executemany(self._sql(sql), rows)
        return max(int(cur.rowcount), 0)

    def _exec(self, conn: Any, sql: str, args: Sequence[Any] = ()) -> int:
        return max(int(conn.execute(self._sql(sql), tuple(args)).rowcount), 0)

    # -- accounts ------------------------------------------------------------------------------------------------
    def hash_address(self, address: str) -> str:
        digest = hashlib.sha256(f"{self._salt}:{address.lower()}".encode()).hexdigest()
        return f"h{digest[:20]}"

    def account_key(self, address: str) -> str:
        """The key ``address``'s snapshots are stored under (fixed when the account was first stored)."""
        a = address.lower()
        key = self._keys.get(a)
        if key is None:
            row = self._one("reading accounts", "SELECT account FROM position_accounts WHERE exchange = ? AND "
                            "address = ?", (self.exchange, a))  # fmt: skip
            key = str(row[0]) if row else (self.hash_address(a) if self.account_keys == "hash" else a)
            self._keys[a] = key
        return key

    def add_accounts(self, seen: Mapping[str, Activity], *, imported: bool = False) -> int:
        """Store addresses with what was seen of them (merged into what is stored). Returns how many are new."""
        before = self.count_accounts()
        rows = sorted(
            (self.exchange, a, self.account_key(a), act.first_seen, act.last_seen, act.trades, act.notional,
             int(imported))
            for a, act in seen.items()
        )  # fmt: skip
        self._write("storing accounts", lambda c: self._many(c,
            """INSERT INTO position_accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)
               ON CONFLICT (exchange, address) DO UPDATE SET
                 first_seen = LEAST(position_accounts.first_seen, excluded.first_seen),
                 last_seen = GREATEST(position_accounts.last_seen, excluded.last_seen),
                 trades = position_accounts.trades + excluded.trades,
                 notional = position_accounts.notional + excluded.notional,
                 imported = GREATEST(position_accounts.imported, excluded.imported)""",
            rows,
        ))  # fmt: skip
        return self.count_accounts() - before

    def accounts(self) -> list[AccountRow]:
        rows = self._all("reading accounts",
            "SELECT address, account, first_seen, last_seen, trades, notional, imported, last_sampled "
            "FROM position_accounts WHERE exchange = ? ORDER BY address",
            (self.exchange,),
        )  # fmt: skip
        return [AccountRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7]) for r in rows]

    def count_accounts(self) -> int:
        row = self._one("counting accounts", "SELECT COUNT(*) FROM position_accounts WHERE exchange = ?",
                        (self.exchange,))  # fmt: skip
        return int(row[0]) if row else 0

    def count_sampled_since(self, since_ms: int) -> int:
        """Accounts with a sample at or after ``since_ms``."""
        row = self._one("counting samples",
            "SELECT COUNT(DISTINCT account) FROM position_samples WHERE exchange = ? AND time >= ?",
            (self.exchange, since_ms),
        )  # fmt: skip
        return int(row[0]) if row else 0

    # -- samples ---------------------------------------------------------------------------------------------------
    def put_sample(self, address: str, state: AccountState, time_ms: int, coins: Iterable[str]) -> bool:
        """Store one answer: the sample, and its positions in ``coins``. False if it was stored already."""
        key = self.account_key(address)
        wanted = set(coins)
        rows = [
            (self.exchange, key, time_ms, p.coin, p.size, p.entry_px, p.leverage, p.margin_type, p.liquidation_px,
             p.margin_used, p.position_value)
            for p in state.positions
            if p.coin in wanted
        ]  # fmt: skip

        def write(c: Any) -> bool:
            # an account sampled before it was stored (a direct call) gets its row, so its key stays fixed
            self._exec(c, "INSERT INTO position_accounts VALUES (?, ?, ?, ?, ?, 0, 0.0, 0, NULL) "
                       "ON CONFLICT DO NOTHING", (self.exchange, address.lower(), key, time_ms, time_ms))  # fmt: skip
            new = self._exec(c, "INSERT INTO position_samples VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                             (self.exchange, key, time_ms, len(state.positions))) == 1  # fmt: skip
            self._many(c, "INSERT INTO positions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                       rows)  # fmt: skip
            self._exec(c,
                "UPDATE position_accounts SET last_sampled = GREATEST(COALESCE(last_sampled, 0), ?) "
                "WHERE exchange = ? AND address = ?",
                (time_ms, self.exchange, address.lower()),
            )  # fmt: skip
            return new

        return self._write("storing a sample", write)

    def samples(self, coin: str, start_ms: int | None = None, end_ms: int | None = None) -> PositionSamples:
        """Samples with start <= time < end, with their positions in ``coin``."""
        lo = -(2**62) if start_ms is None else start_ms
        hi = 2**62 if end_ms is None else end_ms
        s = self._all("reading samples",
            "SELECT account, time FROM position_samples WHERE exchange = ? AND time >= ? AND time < ? "
            "ORDER BY time, account",
            (self.exchange, lo, hi),
        )  # fmt: skip
        p = self._all("reading positions",
            "SELECT account, coin, time, size, entry_px, leverage, margin_type, liquidation_px, margin_used, "
            "position_value FROM positions WHERE exchange = ? AND coin = ? AND time >= ? AND time < ? "
            "ORDER BY time, account",
            (self.exchange, coin, lo, hi),
        )  # fmt: skip
        return _samples(s, p)

    def state_at(self, coin: str, at_ms: int, max_age_ms: int | None = None) -> PositionSamples:
        """Each account's newest sample at or before ``at_ms`` (no older than ``max_age_ms``), with its positions
        in ``coin``."""
        lo = -(2**62) if max_age_ms is None else at_ms - max_age_ms
        s = self._all("reading samples",
            "SELECT account, MAX(time) FROM position_samples WHERE exchange = ? AND time <= ? AND time >= ? "
            "GROUP BY account ORDER BY account",
            (self.exchange, at_ms, lo),
        )  # fmt: skip
        p = self._all("reading positions",
            """SELECT p.account, p.coin, p.time, p.size, p.entry_px, p.leverage, p.margin_type, p.liquidation_px,
                      p.margin_used, p.position_value
               FROM positions p JOIN (
                   SELECT account, MAX(time) AS t FROM position_samples
                   WHERE exchange = ? AND time <= ? AND time >= ? GROUP BY account
               ) s ON p.account = s.account AND p.time = s.t
               WHERE p.exchange = ? AND p.coin = ? ORDER BY p.account""",
            (self.exchange, at_ms, lo, self.exchange, coin),
        )  # fmt: skip
        return _samples(s, p)

    # -- markets -----------------------------------------------------------------------------------------------------
    def put_markets(self, time_ms: int, contexts: Mapping[str, MarketContext]) -> int:
        rows = sorted((self.exchange, c, time_ms, m.open_interest, m.mark_px) for c, m in contexts.items())
        return self._write("storing markets", lambda c: self._many(
            c, "INSERT INTO position_markets VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows
        ))  # fmt: skip

    def market_at(self, coin: str, at_ms: int) -> tuple[int, MarketContext] | None:
        """The newest open interest and mark of ``coin`` at or before ``at_ms``."""
        row = self._one("reading markets",
            "SELECT time, open_interest, mark_px FROM position_markets WHERE exchange = ? AND coin = ? "
            "AND time <= ? ORDER BY time DESC LIMIT 1",
            (self.exchange, coin, at_ms),
        )  # fmt: skip
        return None if row is None else (int(row[0]), MarketContext(float(row[1]), float(row[2])))

    def marks(self, coin: str, start_ms: int, end_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """(time, mark) of ``coin`` with start <= time < end."""
        rows = self._all("reading marks",
            "SELECT time, mark_px FROM position_markets WHERE exchange = ? AND coin = ? AND time >= ? AND time < ? "
            "ORDER BY time",
            (self.exchange, coin, start_ms, end_ms),
        )  # fmt: skip
        a = np.asarray(rows, np.float64).reshape(-1, 2)
        return a[:, 0].astype(np.int64), a[:, 1]

    # -- inferred liquidations ---------------------------------------------------------------------------------
    def put_inferred(self, found: InferredLiquidations) -> int:
        e = found.events
        rows = sorted(
            (str(e.exchange[i]), str(e.symbol[i]), str(found.account[i]), int(found.seen_before_ms[i]),
             int(found.seen_after_ms[i]), int(e.side[i]), int(e.time[i]), float(e.price[i]), float(e.quantity[i]),
             float(e.usd[i]))
            for i in range(len(e))
        )  # fmt: skip
        return self._write("storing inferred liquidations", lambda c: self._many(
            c, "INSERT INTO inferred_liquidations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", rows
        ))  # fmt: skip

    def inferred(self, symbol: str, start_ms: int | None = None, end_ms: int | None = None) -> Liquidations:
        """Inferred liquidations of ``symbol`` with start <= time < end, oldest first (all marked inferred)."""
        rows = self._all("reading inferred liquidations",
            "SELECT time, exchange, symbol, side, price, quantity, usd FROM inferred_liquidations "
            "WHERE exchange = ? AND symbol = ? AND time >= ? AND time < ? ORDER BY time, side, price",
            (
                self.exchange,
                symbol,
                -(2**62) if start_ms is None else start_ms,
                2**62 if end_ms is None else end_ms,
            ),
        )  # fmt: skip
        n = len(rows)
        cols: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [() for _ in range(7)]
        return Liquidations(
            np.asarray(cols[0], np.int64), np.asarray(cols[1], str), np.asarray(cols[2], str),
            np.asarray(cols[3], np.int8), np.asarray(cols[4], np.float64), np.asarray(cols[5], np.float64),
            np.asarray(cols[6], np.float64), inferred=np.ones(n, bool),
        )  # fmt: skip

    # -- whole tables (``liqdesk store copy``) ----------------------------------------------------------------------
    def count(self, table: str) -> int:
        if table not in POSITION_TABLES:
            raise ValueError(f"no position table {table!r}")
        row = self._one(f"counting {table}", f"SELECT COUNT(*) FROM {table}")
        return int(row[0]) if row else 0

    def table_rows(self, table: str, batch: int = 20_000) -> Iterator[list[tuple[Any, ...]]]:
        """Every row of a position table (all exchanges), in key order, in batches."""
        names, width = POSITION_TABLES[table]
        key = ", ".join(names[:width])
        after: tuple[Any, ...] | None = None
        while True:
            if after is None:
                rows = self._all(f"reading {table}", f"SELECT {', '.join(names)} FROM {table} ORDER BY {key} "
                                 "LIMIT ?", (batch,))  # fmt: skip
            else:
                marks = ", ".join("?" * width)
                rows = self._all(f"reading {table}", f"SELECT {', '.join(names)} FROM {table} WHERE ({key}) > "
                                 f"({marks}) ORDER BY {key} LIMIT ?", (*after, batch))  # fmt: skip
            if not rows:
                return
            yield rows
            if len(rows) < batch:
                return
            after = rows[-1][:width]

    def insert_rows(self, table: str, rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert whole rows (``table_rows``' columns); rows whose key is stored already stay as stored. Returns
        how many were new."""
        if table not in POSITION_TABLES:
            raise ValueError(f"no position table {table!r}")
        names, width = POSITION_TABLES[table]
        ordered = sorted(rows, key=lambda r: tuple(r[:width]))
        marks = ", ".join("?" * len(names))
        return self._write(f"storing {table}", lambda c: self._many(
            c, f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks}) ON CONFLICT DO NOTHING", ordered
        ))  # fmt: skip


class _Unusable(Exception):
    pass


def has_positions(target: StoreUrl) -> bool:
    """Whether the store holds position tables (looked at read-only: nothing is created)."""
    if target.kind == "sqlite":
        path = target.path if target.path is not None else cache_mod.default_path()
        if not path.exists():
            return False
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
            try:
                row = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'position_samples'"
                ).fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise DataError(str(cache_mod.classify(exc, path, "looking for position tables"))) from None
        return bool(row and row[0])
    from liqdesk.feeds import store_pg

    session = store_pg.PgSession(target.url, target.location, read_only=True,
                                 busy_timeout_s=cache_mod.BUSY_TIMEOUT_S, on_connect=lambda conn: None)  # fmt: skip
    try:
        return bool(
            session.run("looking for position tables", lambda c: store_pg.schema_version(c, "positions"))
        )
    except cache_mod.CacheError as exc:
        raise DataError(str(exc)) from None
    finally:
        session.close()


def _target(path: Path | str | StoreUrl | None) -> StoreUrl | None:
    from liqdesk.feeds.store_url import StoreUrl, parse_store_url

    if path is None or isinstance(path, StoreUrl):
        return path
    return parse_store_url(path)


class _Tx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _samples(s: list[tuple[object, ...]], p: list[tuple[object, ...]]) -> PositionSamples:
    sc: list[tuple[Any, ...]] = list(zip(*s, strict=True)) if s else [(), ()]
    pc: list[tuple[Any, ...]] = list(zip(*p, strict=True)) if p else [() for _ in range(10)]

    def f(i: int) -> np.ndarray:
        return np.asarray([np.nan if v is None else v for v in pc[i]], np.float64)

    return PositionSamples(
        np.asarray(sc[0], str), np.asarray(sc[1], np.int64), np.asarray(pc[0], str), np.asarray(pc[1], str),
        np.asarray(pc[2], np.int64), f(3), f(4), f(5), np.asarray([v == "cross" for v in pc[6]], bool), f(7), f(8),
        f(9),
    )  # fmt: skip

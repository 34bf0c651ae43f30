"""Sampled positions in the local database: accounts, their answers, open interest and inferred liquidations.

The tables live in the same SQLite file as the market-data cache (``liqdesk.feeds.cache.default_path()``), beside
its tables and created here (``CREATE TABLE IF NOT EXISTS``), with their own schema version in
``position_meta``. Every write is idempotent (primary keys; a snapshot written twice is stored once).

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

The public methods are few and small so that they can move behind a storage interface as they are.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from liqdesk.core.actual_map import PositionSamples
from liqdesk.core.inferred_liquidations import InferredLiquidations
from liqdesk.core.series import Liquidations
from liqdesk.errors import DataError
from liqdesk.feeds import cache as cache_mod
from liqdesk.feeds.addresses import Activity
from liqdesk.feeds.venues.hyperliquid import AccountState, MarketContext

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
AccountKeys = Literal["hash", "address"]

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
    """The position tables of the database at ``path`` (default: the cache's file). ``account_keys`` says how
    accounts stored from now on are keyed in the snapshots: "hash" (default) or "address"."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        exchange: str = "hyperliquid",
        account_keys: AccountKeys = "hash",
    ) -> None:
        if account_keys not in ("hash", "address"):
            raise ValueError(f"account_keys must be 'hash' or 'address', not {account_keys!r}")
        self.path = Path(path) if path is not None else cache_mod.default_path()
        self.exchange = exchange
        self.account_keys: AccountKeys = account_keys
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
        self._salt = self._meta("salt")
        self._keys: dict[str, str] = {}

    # -- opening -------------------------------------------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
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
        row = self._conn.execute("SELECT value FROM position_meta WHERE key = ?", (key,)).fetchone()
        return str(row[0])

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> PositionsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- accounts ------------------------------------------------------------------------------------------------
    def hash_address(self, address: str) -> str:
        digest = hashlib.sha256(f"{self._salt}:{address.lower()}".encode()).hexdigest()
        return f"h{digest[:20]}"

    def account_key(self, address: str) -> str:
        """The key ``address``'s snapshots are stored under (fixed when the account was first stored)."""
        a = address.lower()
        key = self._keys.get(a)
        if key is None:
            row = self._conn.execute(
                "SELECT account FROM position_accounts WHERE exchange = ? AND address = ?", (self.exchange, a)
            ).fetchone()
            key = str(row[0]) if row else (self.hash_address(a) if self.account_keys == "hash" else a)
            self._keys[a] = key
        return key

    def add_accounts(self, seen: Mapping[str, Activity], *, imported: bool = False) -> int:
        """Store addresses with what was seen of them (merged into what is stored). Returns how many are new."""
        before = self.count_accounts()
        rows = [
            (self.exchange, a, self.account_key(a), act.first_seen, act.last_seen, act.trades, act.notional,
             int(imported))
            for a, act in seen.items()
        ]  # fmt: skip
        with self._tx():
            self._conn.executemany(
                """INSERT INTO position_accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)
                   ON CONFLICT (exchange, address) DO UPDATE SET
                     first_seen = MIN(first_seen, excluded.first_seen),
                     last_seen = MAX(last_seen, excluded.last_seen),
                     trades = trades + excluded.trades, notional = notional + excluded.notional,
                     imported = MAX(imported, excluded.imported)""",
                rows,
            )
        return self.count_accounts() - before

    def accounts(self) -> list[AccountRow]:
        cur = self._conn.execute(
            "SELECT address, account, first_seen, last_seen, trades, notional, imported, last_sampled "
            "FROM position_accounts WHERE exchange = ? ORDER BY address",
            (self.exchange,),
        )
        return [AccountRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7]) for r in cur]

    def count_accounts(self) -> int:
        row = self._conn.execute(
            "SELECT COUNT(*) FROM position_accounts WHERE exchange = ?", (self.exchange,)
        )
        return int(row.fetchone()[0])

    def count_sampled_since(self, since_ms: int) -> int:
        """Accounts with a sample at or after ``since_ms``."""
        row = self._conn.execute(
            "SELECT COUNT(DISTINCT account) FROM position_samples WHERE exchange = ? AND time >= ?",
            (self.exchange, since_ms),
        )
        return int(row.fetchone()[0])

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
        with self._tx():
            # an account sampled before it was stored (a direct call) gets its row, so its key stays fixed
            self._conn.execute(
                "INSERT OR IGNORE INTO position_accounts VALUES (?, ?, ?, ?, ?, 0, 0.0, 0, NULL)",
                (self.exchange, address.lower(), key, time_ms, time_ms),
            )
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO position_samples VALUES (?, ?, ?, ?)",
                (self.exchange, key, time_ms, len(state.positions)),
            )
            new = cur.rowcount == 1
            self._conn.executemany(
                "INSERT OR IGNORE INTO positions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            self._conn.execute(
                "UPDATE position_accounts SET last_sampled = MAX(COALESCE(last_sampled, 0), ?) "
                "WHERE exchange = ? AND address = ?",
                (time_ms, self.exchange, address.lower()),
            )
        return new

    def samples(self, coin: str, start_ms: int | None = None, end_ms: int | None = None) -> PositionSamples:
        """Samples with start <= time < end, with their positions in ``coin``."""
        lo = -(2**62) if start_ms is None else start_ms
        hi = 2**62 if end_ms is None else end_ms
        s = self._conn.execute(
            "SELECT account, time FROM position_samples WHERE exchange = ? AND time >= ? AND time < ? "
            "ORDER BY time, account",
            (self.exchange, lo, hi),
        ).fetchall()
        p = self._conn.execute(
            "SELECT account, coin, time, size, entry_px, leverage, margin_type, liquidation_px, margin_used, "
            "position_value FROM positions WHERE exchange = ? AND coin = ? AND time >= ? AND time < ? "
            "ORDER BY time, account",
            (self.exchange, coin, lo, hi),
        ).fetchall()
        return _samples(s, p)

    def state_at(self, coin: str, at_ms: int, max_age_ms: int | None = None) -> PositionSamples:
        """Each account's newest sample at or before ``at_ms`` (no older than ``max_age_ms``), with its positions
        in ``coin``."""
        lo = -(2**62) if max_age_ms is None else at_ms - max_age_ms
        s = self._conn.execute(
            "SELECT account, MAX(time) FROM position_samples WHERE exchange = ? AND time <= ? AND time >= ? "
            "GROUP BY account ORDER BY account",
            (self.exchange, at_ms, lo),
        ).fetchall()
        p = self._conn.execute(
            """SELECT p.account, p.coin, p.time, p.size, p.entry_px, p.leverage, p.margin_type, p.liquidation_px,
                      p.margin_used, p.position_value
               FROM positions p JOIN (
                   SELECT account, MAX(time) AS t FROM position_samples
                   WHERE exchange = ? AND time <= ? AND time >= ? GROUP BY account
               ) s ON p.account = s.account AND p.time = s.t
               WHERE p.exchange = ? AND p.coin = ? ORDER BY p.account""",
            (self.exchange, at_ms, lo, self.exchange, coin),
        ).fetchall()
        return _samples(s, p)

    # -- markets -----------------------------------------------------------------------------------------------------
    def put_markets(self, time_ms: int, contexts: Mapping[str, MarketContext]) -> int:
        rows = [(self.exchange, c, time_ms, m.open_interest, m.mark_px) for c, m in contexts.items()]
        with self._tx():
            before = self._conn.total_changes
            self._conn.executemany("INSERT OR IGNORE INTO position_markets VALUES (?, ?, ?, ?, ?)", rows)
            return self._conn.total_changes - before

    def market_at(self, coin: str, at_ms: int) -> tuple[int, MarketContext] | None:
        """The newest open interest and mark of ``coin`` at or before ``at_ms``."""
        row = self._conn.execute(
            "SELECT time, open_interest, mark_px FROM position_markets WHERE exchange = ? AND coin = ? "
            "AND time <= ? ORDER BY time DESC LIMIT 1",
            (self.exchange, coin, at_ms),
        ).fetchone()
        return None if row is None else (int(row[0]), MarketContext(float(row[1]), float(row[2])))

    def marks(self, coin: str, start_ms: int, end_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """(time, mark) of ``coin`` with start <= time < end."""
        rows = self._conn.execute(
            "SELECT time, mark_px FROM position_markets WHERE exchange = ? AND coin = ? AND time >= ? AND time < ? "
            "ORDER BY time",
            (self.exchange, coin, start_ms, end_ms),
        ).fetchall()
        a = np.asarray(rows, np.float64).reshape(-1, 2)
        return a[:, 0].astype(np.int64), a[:, 1]

    # -- inferred liquidations ---------------------------------------------------------------------------------
    def put_inferred(self, found: InferredLiquidations) -> int:
        e = found.events
        rows = [
            (str(e.exchange[i]), str(e.symbol[i]), str(found.account[i]), int(found.seen_before_ms[i]),
             int(found.seen_after_ms[i]), int(e.side[i]), int(e.time[i]), float(e.price[i]), float(e.quantity[i]),
             float(e.usd[i]))
            for i in range(len(e))
        ]  # fmt: skip
        with self._tx():
            before = self._conn.total_changes
            self._conn.executemany(
                "INSERT OR IGNORE INTO inferred_liquidations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            return self._conn.total_changes - before

    def inferred(self, symbol: str, start_ms: int | None = None, end_ms: int | None = None) -> Liquidations:
        """Inferred liquidations of ``symbol`` with start <= time < end, oldest first (all marked inferred)."""
        rows = self._conn.execute(
            "SELECT time, exchange, symbol, side, price, quantity, usd FROM inferred_liquidations "
            "WHERE exchange = ? AND symbol = ? AND time >= ? AND time < ? ORDER BY time, side, price",
            (
                self.exchange,
                symbol,
                -(2**62) if start_ms is None else start_ms,
                2**62 if end_ms is None else end_ms,
            ),
        ).fetchall()
        n = len(rows)
        cols: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [() for _ in range(7)]
        return Liquidations(
            np.asarray(cols[0], np.int64), np.asarray(cols[1], str), np.asarray(cols[2], str),
            np.asarray(cols[3], np.int8), np.asarray(cols[4], np.float64), np.asarray(cols[5], np.float64),
            np.asarray(cols[6], np.float64), inferred=np.ones(n, bool),
        )  # fmt: skip

    def count(self, table: str) -> int:
        if table not in ("position_accounts", "position_samples", "positions", "position_markets",
                         "inferred_liquidations"):  # fmt: skip
            raise ValueError(f"no position table {table!r}")
        return int(self._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    def _tx(self) -> _Tx:
        return _Tx(self._conn)


class _Unusable(Exception):
    pass


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

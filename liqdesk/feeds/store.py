"""Where the market data and the tape are kept: the storage interface, and choosing a store by URL.

Two implementations behind one interface (``MarketStore``), with the same semantics:

* **SQLite** (the default): ``liqdesk.feeds.cache.Cache``, one file in the user's data directory (``sqlite:///path``
  or a plain path for another file). Lock, full disk, I/O error, damage and salvage as that module describes.
* **PostgreSQL**: ``liqdesk.feeds.store_pg.PgStore`` (``postgresql://user@host/db``), for a desk: one recorder on a
  server, every desktop reading the same tape. Tables in the schema ``liqdesk`` of that database.

Both: idempotent writes (a candle or liquidation written twice is stored once; a liquidation is keyed by venue,
symbol, its own time, side, price and quantity, so two venues reporting the same second are two rows), coverage
(the time ranges fetched, merged) and gap detection, a schema created and migrated by liqdesk with a version, and
the same error classes (``CacheError`` and its subclasses: locked, full, I/O or unreachable, corrupt, foreign).

Choosing: ``--store URL`` on the command line, else ``$LIQDESK_STORE``, else (the window) the store saved in
Settings → Data (``config.json``), else the SQLite file in ``LIQDESK_DATA_DIR``. Credentials for PostgreSQL come
from the URL, a ``.pgpass`` file (``PGPASSFILE``) or the environment (``PGPASSWORD``, ``PGUSER``, ``PGHOST``…, as
libpq reads them); liqdesk never writes a password into its own files: ``url_for_saving`` strips it and says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from liqdesk.feeds.store_tables import TABLE_NAMES, CoverageStore
from liqdesk.feeds.store_url import StoreUrl, parse_store_url, strip_password

if TYPE_CHECKING:
    from liqdesk.core.series import Candles, Liquidations, OpenInterest
    from liqdesk.feeds.cache import CacheError, SalvageReport
    from liqdesk.feeds.positions_store import AccountKeys, PositionsStore
    from liqdesk.feeds.store_tables import LiquidationRow
    from liqdesk.feeds.venues.base import LiquidationRecord

ENV_VAR = "LIQDESK_STORE"
CONFIG_KEY = "store"  # in config.json
# The tables a store holds, in the order a copy moves them (the tape first: it cannot be fetched again).
MARKET_TABLES = TABLE_NAMES


class MarketStore(CoverageStore, Protocol):
    """Candles, open interest, the liquidation tape and coverage (``CoverageStore``: the fetched ranges and the
    gaps), in SQLite or PostgreSQL."""

    write_error: CacheError | None  # why a store opened for writing can only be read now (None: it can write)
    damaged: str | None  # set when reads come from a damaged file's readable rows (SQLite)
    salvage: SalvageReport | None  # set when a damaged file was salvaged at open (SQLite)
    exists: bool  # False: nothing stored there yet (reads are empty)

    @property
    def url(self) -> str:
        """The store's URL without a password."""
        ...

    @property
    def location(self) -> str:
        """For people: "sqlite ~/.local/share/liqdesk/liqdesk.sqlite3" or "postgresql desk@db-host/liqdesk"."""
        ...

    @property
    def unstored_dir(self) -> Path:
        """A local folder for liquidations the store never took (written there as CSV at the end of a run)."""
        ...

    @property
    def read_only(self) -> bool: ...

    def reopen(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> MarketStore: ...
    def __exit__(self, *exc: object) -> None: ...

    # candles
    def put_candles(self, exchange: str, symbol: str, timeframe: str, candles: Candles) -> int: ...
    def put_mark(
        self, exchange: str, symbol: str, timeframe: str, open_time: Any, high: Any, low: Any
    ) -> None: ...
    def get_candles(
        self, exchange: str, symbol: str, timeframe: str, start: int | None = None, end: int | None = None
    ) -> Candles: ...
    def last_candle_time(self, exchange: str, symbol: str, timeframe: str) -> int | None: ...

    # open interest
    def put_open_interest(self, exchange: str, symbol: str, period: str, oi: OpenInterest) -> int: ...
    def get_open_interest(
        self, exchange: str, symbol: str, period: str, start: int | None = None, end: int | None = None
    ) -> OpenInterest: ...

    # the tape
    def put_liquidations(self, records: Sequence[LiquidationRecord]) -> int: ...
    def get_liquidations(
        self,
        exchange: str | None = None,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> Liquidations: ...
    def liquidation_rows(
        self,
        exchange: str | None = None,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> list[LiquidationRow]: ...

    # whole tables (``liqdesk store copy``)
    def count(self, table: str) -> int: ...
    def table_rows(self, table: str, batch: int = 20_000) -> Iterator[list[tuple[Any, ...]]]: ...
    def insert_rows(self, table: str, rows: Sequence[tuple[Any, ...]]) -> int: ...


def url_for_saving(url: str) -> tuple[str, str]:
    """What may be written into liqdesk's own files for ``url`` (never a password), and a note for the user
    ("" when nothing was removed)."""
    parsed = parse_store_url(url)
    if parsed.kind != "postgresql" or not parsed.had_password:
        return (parsed.safe if parsed.kind == "postgresql" else url.strip()), ""
    return parsed.safe, (
        "the password was not saved (liqdesk never writes one into its files): put it in ~/.pgpass "
        "(host:port:database:user:password, mode 600) or PGPASSWORD"
    )


def resolve_store_url(given: str | None, saved: str | None = None) -> str | None:
    """The store to use: ``given`` (``--store``), else ``$LIQDESK_STORE``, else ``saved`` (the window's
    setting), else None (the default SQLite file)."""
    for candidate in (given, os.environ.get(ENV_VAR), saved):
        if candidate is not None and str(candidate).strip():
            return str(candidate).strip()
    return None


def saved_store_url() -> str | None:
    """The store saved in Settings → Data (``config.json``), or None."""
    from liqdesk.feeds.exchange_config import load_config_file

    value = load_config_file().get(CONFIG_KEY)
    return value.strip() if isinstance(value, str) and value.strip() else None


def save_store_url(url: str) -> str:
    """Save the window's store in ``config.json`` (atomically; "" removes it). Returns what was saved, with a
    note when a password was left out."""
    from liqdesk.feeds.atomic import write_json_atomic
    from liqdesk.feeds.exchange_config import CONFIG_FILE, load_config_file
    from liqdesk.feeds.paths import config_dir

    text = url.strip()
    note = ""
    if text:
        parse_store_url(text)  # ConfigError for a bad URL, before anything is written
        text, note = url_for_saving(text)
    config = load_config_file()
    if text:
        config[CONFIG_KEY] = text
    else:
        config.pop(CONFIG_KEY, None)
    write_json_atomic(config_dir() / CONFIG_FILE, config)
    return f"store {text or 'default (local SQLite)'} saved" + (f"; {note}" if note else "")


# -- opening ---------------------------------------------------------------------------------------------------
def open_store(
    url: str | os.PathLike[str] | None = None,
    *,
    read_only: bool = False,
    repair: bool = True,
    fallback_read_only: bool = False,
    busy_timeout_s: float | None = None,
) -> MarketStore:
    """Open the store at ``url`` (None: ``$LIQDESK_STORE``, else the default SQLite file). The options mean the
    same for both kinds (see ``Cache``): ``read_only`` writes nothing; ``fallback_read_only`` keeps a store that
    cannot be written right now (full disk, a lock; for PostgreSQL also a server that cannot be reached) open
    for reads, and its writes raise the reason until it can; ``repair`` salvages a damaged SQLite file."""
    target = parse_store_url(resolve_store_url(None if url is None else os.fspath(url)))
    if target.kind == "postgresql":
        from liqdesk.feeds.store_pg import PgStore

        return PgStore(
            target, read_only=read_only, fallback_read_only=fallback_read_only, busy_timeout_s=busy_timeout_s
        )
    from liqdesk.feeds.cache import Cache

    return Cache(
        target.path,
        read_only=read_only,
        repair=repair,
        fallback_read_only=fallback_read_only,
        busy_timeout_s=busy_timeout_s,
    )


def open_positions(
    url: str | os.PathLike[str] | None = None,
    *,
    exchange: str = "hyperliquid",
    account_keys: AccountKeys = "hash",
) -> PositionsStore:
    """The position tables of the store at ``url`` (same rules as ``open_store``)."""
    from liqdesk.feeds.positions_store import PositionsStore

    target = parse_store_url(resolve_store_url(None if url is None else os.fspath(url)))
    return PositionsStore(target, exchange=exchange, account_keys=account_keys)


__all__ = [
    "CONFIG_KEY",
    "ENV_VAR",
    "MARKET_TABLES",
    "MarketStore",
    "StoreUrl",
    "open_positions",
    "open_store",
    "parse_store_url",
    "resolve_store_url",
    "save_store_url",
    "saved_store_url",
    "strip_password",
    "url_for_saving",
]

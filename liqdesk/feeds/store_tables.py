"""The market store's tables, whatever database holds them: their columns and keys, rows in and out, fetched ranges,
and the reads and upserts both SQL stores make (``SqlStore``: the SQLite ``Cache`` and the PostgreSQL ``PgStore``
differ there only in the placeholder, the tables' schema and how a statement is run)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Protocol, Self

import numpy as np

from liqdesk.core.series import Candles, Liquidations, OpenInterest, timeframe_ms
from liqdesk.feeds.salvage import Column, Table
from liqdesk.feeds.venues.base import LiquidationRecord

Range = tuple[int, int]
LiquidationRow = tuple[str, str, int, int, float, float, float, float | None, str | None]
_LOW, _HIGH = -(2**62), 2**62  # "no bound" in a time range


def _cols(spec: str) -> tuple[Column, ...]:
    """'name:kind[?]' words → columns (? = nullable), in the order the tables store them."""
    out = []
    for word in spec.split():
        name, _, kind = word.partition(":")
        out.append(Column(name, kind.rstrip("?"), nullable=kind.endswith("?")))
    return tuple(out)


# The tables in salvage order: the tape first (it cannot be fetched again), coverage last.
TABLES: tuple[Table, ...] = (
    Table("liquidations", _cols("exchange:text symbol:text time:integer side:integer price:real quantity:real "
                                "usd:real order_price:real? raw_side:text? received_at:integer")),
    Table("candles", _cols("exchange:text symbol:text timeframe:text open_time:integer open:real high:real "
                           "low:real close:real volume:real quote_volume:real? taker_buy_volume:real? "
                           "mark_high:real? mark_low:real?")),
    Table("open_interest", _cols("exchange:text symbol:text period:text time:integer usd:real")),
    Table("coverage", _cols("kind:text exchange:text symbol:text timeframe:text start_ms:integer end_ms:integer")),
)  # fmt: skip
TABLE_NAMES = tuple(t.name for t in TABLES)
# How many leading columns of each table make its primary key.
KEY_WIDTH = {"liquidations": 6, "candles": 4, "open_interest": 4, "coverage": 5}


def table_spec(name: str) -> Table:
    for t in TABLES:
        if t.name == name:
            return t
    raise ValueError(f"no table {name!r}; the store's tables are {', '.join(TABLE_NAMES)}")


def key_columns(name: str) -> tuple[str, ...]:
    """The primary key of a table, in column order."""
    return tuple(c.name for c in table_spec(name).columns[: KEY_WIDTH[name]])


# -- rows in and out ---------------------------------------------------------------------------------------
def _finite_or_none(a: np.ndarray | None, n: int) -> list[float | None]:
    if a is None:
        return [None] * n
    return [None if not np.isfinite(v) else float(v) for v in a]


def candle_rows(exchange: str, symbol: str, timeframe: str, candles: Candles) -> list[tuple[object, ...]]:
    """Rows of the candles table (non-finite optional values stored as NULL)."""
    n = len(candles)
    cols = [
        candles.open_time.tolist(), candles.open.tolist(), candles.high.tolist(), candles.low.tolist(),
        candles.close.tolist(), candles.volume.tolist(), _finite_or_none(candles.quote_volume, n),
        _finite_or_none(candles.taker_buy_volume, n), _finite_or_none(candles.mark_high, n),
        _finite_or_none(candles.mark_low, n),
    ]  # fmt: skip
    return [(exchange, symbol, timeframe, *r) for r in zip(*cols, strict=True)]


def candles_from_rows(rows: Sequence[Sequence[object]], timeframe: str) -> Candles:
    """Rows (open_time, open, high, low, close, volume, quote_volume, taker_buy_volume, mark_high, mark_low) →
    Candles; optional columns are None when no bar has them."""
    interval = timeframe_ms(timeframe)
    if not rows:
        z = np.zeros(0)
        return Candles(np.zeros(0, np.int64), z, z, z, z, z, interval)
    a = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=np.float64)
    t = np.array([r[0] for r in rows], dtype=np.int64)

    def opt(i: int) -> np.ndarray | None:
        c = a[:, i]
        return None if np.isnan(c).all() else c

    mh, ml = opt(8), opt(9)
    if mh is None or ml is None:
        mh = ml = None
    return Candles(
        t, a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5], interval,
        quote_volume=opt(6), taker_buy_volume=opt(7), mark_high=mh, mark_low=ml,
    )  # fmt: skip


def open_interest_from_rows(rows: Sequence[Sequence[object]]) -> OpenInterest:
    if not rows:
        return OpenInterest(np.zeros(0, np.int64), np.zeros(0))
    t, u = zip(*rows, strict=True)
    return OpenInterest(np.asarray(t, np.int64), np.asarray(u, np.float64))


def open_interest_rows(exchange: str, symbol: str, period: str, oi: OpenInterest) -> list[tuple[object, ...]]:
    return [(exchange, symbol, period, int(t), float(u)) for t, u in zip(oi.time, oi.usd, strict=True)]


def mark_rows(
    exchange: str, symbol: str, timeframe: str, open_time: Any, high: Any, low: Any
) -> list[tuple[object, ...]]:
    """Parameters of the mark-wick update: (mark_high, mark_low, exchange, symbol, timeframe, open_time)."""
    return [
        (float(h), float(lo), exchange, symbol, timeframe, int(t))
        for t, h, lo in zip(open_time, high, low, strict=True)
    ]


def liquidation_rows_of(records: Sequence[LiquidationRecord]) -> list[tuple[object, ...]]:
    """Rows of the liquidations table, received now."""
    now = int(time.time() * 1000)
    return [
        (r.exchange, r.symbol, r.time, r.side, r.price, r.quantity, r.usd, r.order_price, r.raw_side, now)
        for r in records
    ]


def liquidations_from_rows(rows: Sequence[Sequence[object]]) -> Liquidations:
    """Rows starting (exchange, symbol, time, side, price, quantity, usd) → Liquidations."""
    if not rows:
        return Liquidations.empty()
    ex, sym, t, side, price, qty, usd = zip(*[r[:7] for r in rows], strict=True)
    return Liquidations(
        np.asarray(t, np.int64), np.asarray(ex, str), np.asarray(sym, str), np.asarray(side, np.int8),
        np.asarray(price, float), np.asarray(qty, float), np.asarray(usd, float),
    )  # fmt: skip


# -- fetched ranges ----------------------------------------------------------------------------------------
class CoverageStore(Protocol):
    """What a store says and records about the time ranges already fetched per series."""

    def covered(self, kind: str, exchange: str, symbol: str, timeframe: str) -> list[Range]: ...
    def missing(
        self, kind: str, exchange: str, symbol: str, timeframe: str, start: int, end: int
    ) -> list[Range]: ...
    def add_coverage(
        self, kind: str, exchange: str, symbol: str, timeframe: str, start: int, end: int
    ) -> None: ...


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


def merge_coverage_rows(store: CoverageStore, rows: Sequence[Sequence[object]]) -> int:
    """Merge coverage rows (kind, exchange, symbol, timeframe, start, end) into a store's; returns how many
    covered something the store did not."""
    new = 0
    for kind, exchange, symbol, timeframe, start, end in rows:
        k, ex, sym, tf = str(kind), str(exchange), str(symbol), str(timeframe)
        lo, hi = int(start), int(end)  # type: ignore[call-overload]
        if store.missing(k, ex, sym, tf, lo, hi):
            new += 1
        store.add_coverage(k, ex, sym, tf, lo, hi)
    return new


# -- the reads and upserts ---------------------------------------------------------------------------------
class SqlStore:
    """The reads and upserts of the market tables, in the SQL both stores speak. A store gives its placeholder
    (``MARK``), the prefix of its tables' names (``PREFIX``, e.g. a schema), ``_select``, which runs one query
    under its own error handling and returns every row, ``_execute_many``, which runs one statement for
    every row in one write transaction, and ``close``."""

    MARK: ClassVar[str]
    PREFIX: ClassVar[str] = ""

    def _select(self, doing: str, sql: str, args: Sequence[object]) -> list[Any]:
        raise NotImplementedError

    def _execute_many(self, doing: str, sql: str, rows: Sequence[Sequence[object]]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _marks(self, n: int) -> str:
        return ", ".join([self.MARK] * n)

    def covered(self, kind: str, exchange: str, symbol: str, timeframe: str) -> list[Range]:
        m = self.MARK
        rows = self._select(
            "reading fetched ranges",
            f"SELECT start_ms, end_ms FROM {self.PREFIX}coverage WHERE kind={m} AND exchange={m} AND symbol={m} "
            f"AND timeframe={m} ORDER BY start_ms",
            (kind, exchange, symbol, timeframe),
        )
        return [(int(s), int(e)) for s, e in rows]

    def missing(
        self, kind: str, exchange: str, symbol: str, timeframe: str, start: int, end: int
    ) -> list[Range]:
        """Gap detection: the parts of [start, end) never fetched for this series."""
        return subtract_ranges(start, end, self.covered(kind, exchange, symbol, timeframe))

    def put_candles(self, exchange: str, symbol: str, timeframe: str, candles: Candles) -> int:
        """Upsert bars (a re-received bar replaces the stored one; stored optional columns are kept when the new
        bar lacks them: mark candles come from another endpoint). Returns the number of rows written."""
        if len(candles) == 0:
            return 0
        rows = candle_rows(exchange, symbol, timeframe, candles)
        self._execute_many(
            "storing candles",
            f"INSERT INTO {self.PREFIX}candles AS c VALUES ({self._marks(13)}) "
            "ON CONFLICT (exchange, symbol, timeframe, open_time) DO UPDATE SET "
            "open=excluded.open, high=excluded.high, low=excluded.low, close=excluded.close, "
            "volume=excluded.volume, quote_volume=coalesce(excluded.quote_volume, c.quote_volume), "
            "taker_buy_volume=coalesce(excluded.taker_buy_volume, c.taker_buy_volume), "
            "mark_high=coalesce(excluded.mark_high, c.mark_high), mark_low=coalesce(excluded.mark_low, c.mark_low)",
            rows,
        )
        return len(rows)

    def put_mark(
        self, exchange: str, symbol: str, timeframe: str, open_time: Any, high: Any, low: Any
    ) -> None:
        m = self.MARK
        self._execute_many(
            "storing mark-price wicks",
            f"UPDATE {self.PREFIX}candles SET mark_high={m}, mark_low={m} "
            f"WHERE exchange={m} AND symbol={m} AND timeframe={m} AND open_time={m}",
            mark_rows(exchange, symbol, timeframe, open_time, high, low),
        )

    def get_candles(
        self, exchange: str, symbol: str, timeframe: str, start: int | None = None, end: int | None = None
    ) -> Candles:
        """Stored bars with start <= open_time < end. Optional columns are None when no bar has them."""
        m = self.MARK
        rows = self._select(
            "reading candles",
            "SELECT open_time, open, high, low, close, volume, quote_volume, taker_buy_volume, mark_high, mark_low "
            f"FROM {self.PREFIX}candles WHERE exchange={m} AND symbol={m} AND timeframe={m} AND open_time >= {m} "
            f"AND open_time < {m} ORDER BY open_time",
            (exchange, symbol, timeframe, _LOW if start is None else start, _HIGH if end is None else end),
        )
        return candles_from_rows(rows, timeframe)

    def last_candle_time(self, exchange: str, symbol: str, timeframe: str) -> int | None:
        m = self.MARK
        rows = self._select(
            "reading candles",
            f"SELECT max(open_time) FROM {self.PREFIX}candles WHERE exchange={m} AND symbol={m} AND timeframe={m}",
            (exchange, symbol, timeframe),
        )
        return None if not rows or rows[0][0] is None else int(rows[0][0])

    def put_open_interest(self, exchange: str, symbol: str, period: str, oi: OpenInterest) -> int:
        rows = open_interest_rows(exchange, symbol, period, oi)
        if not rows:
            return 0
        self._execute_many(
            "storing open interest",
            f"INSERT INTO {self.PREFIX}open_interest VALUES ({self._marks(5)}) "
            "ON CONFLICT (exchange, symbol, period, time) DO UPDATE SET usd=excluded.usd",
            rows,
        )
        return len(rows)

    def get_open_interest(
        self, exchange: str, symbol: str, period: str, start: int | None = None, end: int | None = None
    ) -> OpenInterest:
        m = self.MARK
        rows = self._select(
            "reading open interest",
            f"SELECT time, usd FROM {self.PREFIX}open_interest WHERE exchange={m} AND symbol={m} AND period={m} "
            f"AND time >= {m} AND time < {m} ORDER BY time",
            (exchange, symbol, period, _LOW if start is None else start, _HIGH if end is None else end),
        )
        return open_interest_from_rows(rows)

    def get_liquidations(
        self,
        exchange: str | None = None,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> Liquidations:
        return liquidations_from_rows(self.liquidation_rows(exchange, symbol, start, end))

    def liquidation_rows(
        self,
        exchange: str | None = None,
        symbol: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> list[LiquidationRow]:
        """Raw rows (exchange, symbol, time, side, price, quantity, usd, order_price, raw_side) by time."""
        m = self.MARK
        where = [f"time >= {m}", f"time < {m}"]
        args: list[object] = [_LOW if start is None else start, _HIGH if end is None else end]
        for column, value in (("exchange", exchange), ("symbol", symbol)):
            if value is not None:
                where.append(f"{column} = {m}")
                args.append(value)
        rows = self._select(
            "reading liquidations",
            "SELECT exchange, symbol, time, side, price, quantity, usd, order_price, raw_side "
            f"FROM {self.PREFIX}liquidations WHERE {' AND '.join(where)} "
            "ORDER BY time, exchange, symbol, side, price, quantity",
            args,
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]

    def count(self, table: str) -> int:
        if table not in TABLE_NAMES:
            raise ValueError(table)
        rows = self._select(f"counting {table}", f"SELECT count(*) FROM {self.PREFIX}{table}", ())
        return int(rows[0][0]) if rows else 0

    def table_rows(self, table: str, batch: int = 20_000) -> Iterator[list[tuple[Any, ...]]]:
        """Every row of a table in its stored column order (``TABLES``), in primary-key order, in batches."""
        names = ", ".join(c.name for c in table_spec(table).columns)
        key_names = key_columns(table)
        key, width = ", ".join(key_names), len(key_names)
        after: tuple[Any, ...] | None = None
        while True:
            args: tuple[Any, ...]
            if after is None:
                sql = f"SELECT {names} FROM {self.PREFIX}{table} ORDER BY {key} LIMIT {self.MARK}"
                args = (batch,)
            else:
                sql = (
                    f"SELECT {names} FROM {self.PREFIX}{table} WHERE ({key}) > ({self._marks(width)}) "
                    f"ORDER BY {key} LIMIT {self.MARK}"
                )
                args = (*after, batch)
            rows = self._select(f"reading {table}", sql, args)
            if not rows:
                return
            yield [tuple(r) for r in rows]
            if len(rows) < batch:
                return
            after = tuple(rows[-1][:width])

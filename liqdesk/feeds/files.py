"""Readers for market-data files: candles, open interest, taker volume and liquidation captures.

Layouts are recognised from the content, not the file name: gzip/zip by magic bytes (or a .gz
name), JSON by its first character, CSV header or no header by whether the first line holds any
number. Every reader validates rows (see `liqdesk.feeds.validate`): `read_x_report` returns the data
and a `ReadReport` (file:line: reason for every rejected or dropped row); `read_x` returns the data
and emits the report's summary as a `DataWarning`. Unusable files raise `DataError` naming the file.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import select
import stat
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from itertools import repeat
from pathlib import Path
from typing import IO, Literal

import numpy as np

from liqdesk.core.series import LONG, SHORT, Candles, Liquidations, OpenInterest
from liqdesk.errors import DataError
from liqdesk.feeds.validate import (
    MAX_BAD_FRACTION,
    WICK_SPAN,
    DataWarning,
    ReadReport,
    RowChecker,
    RowProblem,
    count_gaps,
    drop_duplicate_times,
    flag_implausible_prices,
    flag_implausible_sizes,
    flag_mixed_durations,
    infer_step,
    mixed_intervals,
    parse_floats,
    parse_optional_floats,
    parse_times,
    sort_by_time,
)

PathLike = str | os.PathLike[str]

__all__ = [
    "DataWarning",
    "ReadReport",
    "TakerVolume",
    "detect_kind",
    "merge_taker_volume",
    "read_any",
    "read_candles",
    "read_candles_report",
    "read_liquidations",
    "read_liquidations_report",
    "read_open_interest",
    "read_open_interest_report",
    "read_taker_volume",
    "read_taker_volume_report",
    "to_ccxt_symbol",
]


# --------------------------------------------------------------------------------------------
# Opening files and splitting them into columns


# The most data liqdesk reads from one file, after decompression: a 5-million-row 1-minute kline CSV is
# about 0.75 GiB. Anything larger is refused (gzip/zip members are read in chunks, never expanded past it).
MAX_INPUT_BYTES = 1 << 30
FIFO_WAIT_S = 10.0  # a named pipe must start delivering within this long
_CHUNK = 1 << 20


def _size(n: int) -> str:
    return f"{n / (1 << 30):g} GiB" if n >= 1 << 30 else f"{n / (1 << 20):g} MiB"


def _read_capped(fh: IO[bytes] | gzip.GzipFile, name: str, what: str) -> bytearray:
    """Read a stream to the end, refusing more than MAX_INPUT_BYTES (returned as is: no second copy)."""
    cap = MAX_INPUT_BYTES
    buf = bytearray()
    while chunk := fh.read(min(_CHUNK, cap + 1 - len(buf))):
        buf += chunk
        if len(buf) > cap:
            raise DataError(
                f"{name}: {what} more than {_size(cap)}, the most liqdesk reads from one file "
                "(cut it to the span you need or split it)"
            )
    return buf


def _read_fifo(p: Path, name: str) -> bytes | bytearray:
    """A named pipe: wait a while for a writer (a pipe nobody writes to would hang forever), then stream it."""
    fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
    try:
        ready, _, _ = select.select([fd], [], [], FIFO_WAIT_S)
        if not ready:
            raise DataError(f"{name}: a named pipe (FIFO) that nothing wrote to within {FIFO_WAIT_S:g} s")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return _read_capped(fh, name, "delivered")
    finally:
        os.close(fd)


def _read_raw(path: PathLike) -> tuple[str, bytes | bytearray]:
    """(path as text, bytes as stored). Only regular files and pipes: a device or socket would never end."""
    p = Path(path)
    name = str(p)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise DataError(f"{name}: file not found") from None
    except OSError as e:
        raise DataError(f"{name}: cannot read ({e.strerror or e})") from None
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise DataError(f"{name}: is a folder, not a data file")
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        raise DataError(f"{name}: is a device, not a data file")
    if stat.S_ISSOCK(mode):
        raise DataError(f"{name}: is a socket, not a data file")
    try:
        if stat.S_ISFIFO(mode):
            return name, _read_fifo(p, name)
        if st.st_size > MAX_INPUT_BYTES:
            raise DataError(
                f"{name}: {_size(st.st_size)} is more than {_size(MAX_INPUT_BYTES)}, the most liqdesk reads "
                "from one file (cut it to the span you need or split it)"
            )
        with open(p, "rb") as fh:
            return name, fh.read()  # its size was checked above
    except OSError as e:
        raise DataError(f"{name}: cannot read ({e.strerror or e})") from None


def _read_text(path: PathLike) -> tuple[str, str]:
    """(path as text, decoded content). gzip and single-member zip are unpacked (streamed, capped)."""
    name, data = _read_raw(path)
    if data[:2] == b"\x1f\x8b" or name.lower().endswith(".gz"):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as g:
                data = _read_capped(g, name, "expands to")  # streamed: a bomb stops at the cap
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{name}: unreadable gzip data ({e})") from e
    elif data[:4] == b"PK\x03\x04":  # data.binance.vision ships one CSV per zip
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                members = [m for m in z.namelist() if not m.endswith("/")]
                if len(members) != 1:
                    raise DataError(f"{name}: zip holds {len(members)} files; expected one data file")
                with z.open(members[0]) as member:
                    data = _read_capped(member, name, "expands to")
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as e:
            raise DataError(f"{name}: unreadable zip data ({e})") from e
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{name}: not a text data file (byte {e.start} is not UTF-8)") from e
    if "\x00" in text:
        raise DataError(f"{name}: not a text data file (contains NUL bytes)")
    if not text.strip():
        raise DataError(f"{name}: empty file, no data rows")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return name, text


def _norm_name(name: str) -> str:
    """'Open time', 'openTime', ' "open_time" ' -> 'open_time'."""
    s = name.strip().strip("\"'").strip()
    s = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", s)
    return re.sub(r"[\s\-.]+", "_", s).lower()


def _is_number(s: object) -> bool:
    try:
        float(s)  # type: ignore[arg-type]
        return True
    except (TypeError, ValueError):
        return False


@dataclass
class _Table:
    """A file split into columns of raw cells. Structurally broken rows are already in problems."""

    path: str
    header: list[str] | None  # normalised names; None for positional layouts
    columns: list[list[object]]
    lines: np.ndarray  # int64, the line (or JSON element) number of each row
    where: str  # "line" or "row"
    rows: int  # data rows seen, broken ones included
    problems: list[RowProblem] = field(default_factory=list)
    skipped: int = 0  # rows ignored on purpose (e.g. websocket messages of other streams)

    @property
    def n(self) -> int:
        return len(self.lines)

    def col(self, i: int) -> list[object]:
        return self.columns[i] if i < len(self.columns) else [None] * self.n

    def index(self, aliases: Sequence[str]) -> int | None:
        if self.header is None:
            return None
        for a in aliases:
            if a in self.header:
                return self.header.index(a)
        return None

    def describe(self) -> str:
        return ", ".join(self.header) if self.header else f"{len(self.columns)} unnamed columns"


def _split_csv(path: str, text: str) -> _Table:
    lines = text.rstrip().split("\n")
    numbers = range(1, len(lines) + 1)
    # blank and '#' comment lines are not data; filter (slower) only when there are any. Lines of
    # only spaces are caught by the width check and skipped in the per-row path.
    if "" in lines or "#" in text:
        kept = [
            (i, ln)
            for i, ln in zip(numbers, lines, strict=True)
            if ln.strip() and not ln.lstrip().startswith("#")
        ]
        numbers = [i for i, _ in kept]  # type: ignore[assignment]
        lines = [ln for _, ln in kept]
    if not lines:
        return _Table(path, None, [], np.zeros(0, np.int64), "line", 0)
    first = lines[0]
    delim = "," if "," in first else "\t" if "\t" in first else ";" if ";" in first else ","
    try:
        head_cells = next(csv.reader([first], delimiter=delim))
    except csv.Error as e:
        raise DataError(f"{path}:{numbers[0]}: unreadable first line ({e})") from None
    header: list[str] | None = None
    if not any(_is_number(c) for c in head_cells):
        header = [_norm_name(c) for c in head_cells]
        body, body_numbers = lines[1:], numbers[1:]
        ncols = len(header)
    else:
        body, body_numbers = lines, numbers
        # without a header the width is what most of the first rows have
        ncols = Counter(ln.count(delim) for ln in body[:200]).most_common(1)[0][0] + 1
    line_no = np.asarray(body_numbers, dtype=np.int64)
    if '"' not in text and list(map(str.count, body, repeat(delim))).count(ncols - 1) == len(body):
        # fast path: every row has the same width, no quoting -> one split for the whole file
        flat = delim.join(body).split(delim)
        cols: list[list[object]] = [flat[i::ncols] for i in range(ncols)]
        return _Table(path, header, cols, line_no, "line", len(body))
    problems: list[RowProblem] = []
    good_rows: list[list[str]] = []
    good_lines: list[int] = []
    for num, line in zip(line_no.tolist(), body, strict=True):
        try:
            row = next(
                csv.reader([line], delimiter=delim)
            )  # one line at a time: a stray quote spans no lines
        except (csv.Error, StopIteration) as e:
            problems.append(RowProblem(num, f"unreadable CSV line ({e or 'empty'})"))
            continue
        if not "".join(row).strip():
            continue  # a line of spaces
        if len(row) == ncols:
            good_rows.append(row)
            good_lines.append(num)
        else:
            problems.append(RowProblem(num, f"{len(row)} fields, expected {ncols}"))
    cols = [[r[i] for r in good_rows] for i in range(ncols)]
    rows = len(good_lines) + len(problems)
    return _Table(path, header, cols, np.asarray(good_lines, np.int64), "line", rows, problems)


def _json_table(path: str, items: Sequence[object], numbers: Sequence[int], where: str) -> _Table:
    """A JSON array (or JSON lines) of arrays (positional) or of objects (named fields)."""
    problems: list[RowProblem] = []
    if not items:
        return _Table(path, None, [], np.zeros(0, np.int64), where, 0)
    if all(isinstance(x, dict) for x in items):
        keys = list(items[0])  # type: ignore[arg-type]
        header = [_norm_name(k) for k in keys]
        cols = [[x.get(k) for x in items] for k in keys]  # type: ignore[union-attr]
        return _Table(path, header, cols, np.asarray(numbers, np.int64), where, len(items))
    ncols = Counter(len(x) for x in items if isinstance(x, list)).most_common(1)
    width = ncols[0][0] if ncols else 0
    good: list[list[object]] = []
    good_numbers: list[int] = []
    for num, x in zip(numbers, items, strict=True):
        if isinstance(x, list) and len(x) == width:
            good.append(x)
            good_numbers.append(num)
        else:
            got = f"{len(x)} fields" if isinstance(x, list) else type(x).__name__
            problems.append(RowProblem(num, f"{got}, expected an array of {width}", where))
    cols = [[r[i] for r in good] for i in range(width)]
    return _Table(path, None, cols, np.asarray(good_numbers, np.int64), where, len(items), problems)


def _json_loads(text: str) -> object:
    """json.loads; nesting too deep for the parser is a ValueError like any other bad JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _json_lines(path: str, text: str) -> tuple[list[object], list[int], list[RowProblem]]:
    items: list[object] = []
    numbers: list[int] = []
    problems: list[RowProblem] = []
    for num, ln in enumerate(text.split("\n"), start=1):
        s = ln.strip()
        if not s:
            continue
        try:
            items.append(_json_loads(s))
            numbers.append(num)
        except ValueError as e:
            problems.append(RowProblem(num, f"not valid JSON ({getattr(e, 'msg', e)})"))
    return items, numbers, problems


def _load_table(path: str, text: str) -> _Table:
    s = text.lstrip()
    if s[:1] in ("[", "{"):
        try:
            obj = _json_loads(s)
        except ValueError as e:
            items, numbers, problems = _json_lines(path, text)  # one JSON value per line
            if not items:
                raise DataError(f"{path}: not valid JSON ({e})") from e
            t = _json_table(path, items, numbers, "line")
            t.problems = problems + t.problems
            t.rows += len(problems)
            return t
        if isinstance(obj, dict):
            # {"data": [...]} and similar single-list wrappers
            lists = [v for v in obj.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise DataError(f"{path}: unknown JSON layout (an object without one list of rows)")
            obj = lists[0]
        if not isinstance(obj, list):
            raise DataError(f"{path}: unknown JSON layout (expected a list of rows)")
        return _json_table(path, obj, range(1, len(obj) + 1), "row")
    return _split_csv(path, text)


# --------------------------------------------------------------------------------------------
# Candles

_TIME = ("open_time", "timestamp", "time", "date", "datetime", "open_time_ms", "timestamp_ms", "ts", "t")
_CANDLE_ALIASES: dict[str, tuple[str, ...]] = {
    "time": _TIME,
    "open": ("open", "o", "open_price"),
    "high": ("high", "h", "high_price"),
    "low": ("low", "l", "low_price"),
    "close": ("close", "c", "close_price"),
    "volume": ("volume", "v", "vol", "base_volume", "volume_base"),
    "quote_volume": ("quote_volume", "quote_asset_volume", "quote_av", "qav", "volume_quote"),
    "close_time": ("close_time", "close_time_ms"),
    "taker_buy_volume": (
        "taker_buy_volume",
        "taker_buy_base",
        "taker_buy_base_volume",
        "taker_buy_base_asset_volume",
        "tb_base_av",
    ),
}
_REQUIRED = ("time", "open", "high", "low", "close", "volume")
# Binance kline arrays / headerless CSV: open_time, o, h, l, c, v, close_time, quote_volume,
# count, taker_buy_volume, taker_buy_quote_volume, ignore
_KLINE_POSITIONS = {"time": 0, "open": 1, "high": 2, "low": 3, "close": 4, "volume": 5}
_KLINE_EXTRA = {"quote_volume": 7, "taker_buy_volume": 9}


def _candle_columns(t: _Table) -> dict[str, int]:
    if t.header is None:
        width = len(t.columns)
        if width < 6:
            raise DataError(
                f"{t.path}: unknown candle layout ({width} unnamed columns); expected "
                "open_time,open,high,low,close,volume[,close_time,quote_volume,count,taker_buy_volume,...]"
            )
        m = dict(_KLINE_POSITIONS)
        if width >= 7:
            m["close_time"] = 6
        if width >= 11:
            m.update(_KLINE_EXTRA)
        return m
    m = {}
    for key, aliases in _CANDLE_ALIASES.items():
        i = t.index(aliases)
        if i is not None:
            m[key] = i
    missing = [k for k in _REQUIRED if k not in m]
    if missing:
        raise DataError(
            f"{t.path}: not a candle file: no {', '.join(missing)} column (columns: {t.describe()})"
        )
    return m


def read_candles_report(
    path: PathLike, *, interval_ms: int | None = None, max_bad_fraction: float = MAX_BAD_FRACTION
) -> tuple[Candles, ReadReport]:
    """Candles from a kline CSV (12 Binance columns, with or without header), a simple OHLCV CSV,
    or freqtrade/Binance JSON arrays; plus the report of rejected and dropped rows."""
    name, text = _read_text(path)
    if _kind_of(text) == "liquidations":
        raise DataError(f"{name}: this is a liquidation capture, not candles")
    return _candles_from_table(_load_table(name, text), interval_ms, max_bad_fraction)


def read_candles(path: PathLike, *, interval_ms: int | None = None) -> Candles:
    """Candles of a file (see read_candles_report); problems are emitted as one DataWarning."""
    candles, report = read_candles_report(path, interval_ms=interval_ms)
    report.emit()
    return candles


def _candles_from_table(
    t: _Table, interval_ms: int | None, max_bad_fraction: float
) -> tuple[Candles, ReadReport]:
    report = ReadReport(t.path, "candle", rows=t.rows, rejected=list(t.problems))
    m = _candle_columns(t)
    check = RowChecker(t.n)
    time, unit = parse_times(t.col(m["time"]), "time", check)
    if unit not in ("ms", "date-time"):
        report.notes.append(f"times read as epoch {unit}")
    px = {k: parse_floats(t.col(m[k]), k, check) for k in ("open", "high", "low", "close")}
    vol = parse_floats(t.col(m["volume"]), "volume", check)
    for k, a in px.items():
        check.flag(~(np.isfinite(a) & (a > 0)), lambda i, k=k, a=a: f"{k} {a[i]:g} is not a positive price")
    check.flag(~(np.isfinite(vol) & (vol >= 0)), lambda i: f"volume {vol[i]:g} is negative or not finite")
    o, h, lo, c = px["open"], px["high"], px["low"], px["close"]
    with np.errstate(invalid="ignore"):
        top, bottom = np.maximum(o, c), np.minimum(o, c)
        check.flag(h < top, lambda i: f"high {h[i]:g} is below max(open, close) {top[i]:g}")
        check.flag(lo > bottom, lambda i: f"low {lo[i]:g} is above min(open, close) {bottom[i]:g}")
    flag_implausible_prices(px, c, check)
    with np.errstate(invalid="ignore", over="ignore"):
        check.flag(
            h > top * WICK_SPAN,
            lambda i: f"high {h[i]:g} is implausible: {h[i] / top[i]:.3g}x the bar's body",
        )
        check.flag(
            lo < bottom / WICK_SPAN,
            lambda i: f"low {lo[i]:g} is implausible: 1/{bottom[i] / lo[i]:.3g} of the bar's body",
        )
    flag_implausible_sizes(vol, "volume", check)
    if "close_time" in m:
        # a close-time column says how long each bar lasts: rows of another timeframe are not bars of this one
        scratch = RowChecker(t.n)
        close, _ = parse_times(t.col(m["close_time"]), "close time", scratch)
        duration = np.round((close - time) / 1000.0) * 1000.0  # Binance closes at open + interval - 1 ms
        duration[scratch.bad] = np.nan
        flag_mixed_durations(duration, check)
    quote = parse_optional_floats(t.col(m["quote_volume"])) if "quote_volume" in m else None
    taker = parse_optional_floats(t.col(m["taker_buy_volume"])) if "taker_buy_volume" in m else None
    quote, taker = _plausible_volumes(quote, taker, vol, lo, h, report)
    report.rejected += check.to_problems(t.lines, t.where)
    report.rejected.sort(key=lambda p: p.line)

    ok = ~check.bad
    cols = {"open": o, "high": h, "low": lo, "close": c, "volume": vol}
    if quote is not None:
        cols["quote_volume"] = quote
    if taker is not None:
        cols["taker_buy_volume"] = taker
    time, lines = time[ok], t.lines[ok]
    cols = {k: v[ok] for k, v in cols.items()}
    order = sort_by_time(time, report)
    if order is not None:
        time, lines = time[order], lines[order]
        cols = {k: v[order] for k, v in cols.items()}
    keep = drop_duplicate_times(time, list(cols.values()), lines, report, t.where)
    time = time[keep]
    cols = {k: v[keep] for k, v in cols.items()}
    report.kept = len(time)
    report.raise_if_unusable(max_bad_fraction)

    step = infer_step(time)
    if step is not None and (why := mixed_intervals(time, lines[keep], step, t.where)):
        raise DataError(f"{t.path}: {why}")
    if interval_ms is None:
        if step is None:
            raise DataError(f"{t.path}: cannot infer the bar interval from a single bar; pass interval_ms")
        interval_ms = step
    elif step is not None and step < interval_ms:
        raise DataError(
            f"{t.path}: bars are {step // 1000}s apart but the interval asked for is {interval_ms // 1000}s "
            "(wrong timeframe?)"
        )
    count_gaps(time, interval_ms, report)
    return Candles(open_time=time, interval_ms=interval_ms, **cols), report


def _plausible_volumes(
    quote: np.ndarray | None,
    taker: np.ndarray | None,
    vol: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    report: ReadReport,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Optional volume cells that contradict their bar become unknown (NaN), with a note: a quote volume whose
    VWAP (quote / volume) lies outside the bar's range, a taker buy volume above the bar's volume."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if quote is not None:
            vwap = quote / vol
            bad = np.isfinite(quote) & (
                ((vol > 0) & ~((vwap >= low * 0.9) & (vwap <= high * 1.1))) | ((vol == 0) & (quote > 0))
            )
            if bad.any():
                quote = np.where(bad, np.nan, quote)
                report.notes.append(
                    f"{int(bad.sum()):,} quote volumes do not fit their bar's prices; ignored"
                )
        if taker is not None:
            bad = np.isfinite(taker) & (taker > vol * 1.001 + 1e-12)
            if bad.any():
                taker = np.where(bad, np.nan, taker)
                report.notes.append(
                    f"{int(bad.sum()):,} taker buy volumes exceed their bar's volume; ignored"
                )
    return quote, taker


# --------------------------------------------------------------------------------------------
# Open interest and taker volume (Binance metrics / openInterestHist / takerlongshortRatio)

_OI_TIME = ("timestamp", "timestamp_ms", "create_time", "time", "date", "datetime", "open_time", "ts", "t")
_OI_USD = ("sum_open_interest_value", "open_interest_value", "open_interest_usd", "oi_usd")


def _time_column(t: _Table, what: str) -> int:
    if t.header is None:
        raise DataError(f"{t.path}: {what} files need a header naming the columns")
    i = t.index(_OI_TIME)
    if i is None:
        raise DataError(f"{t.path}: no time column for {what} (columns: {t.describe()})")
    return i


def read_open_interest_report(
    path: PathLike, *, max_bad_fraction: float = MAX_BAD_FRACTION
) -> tuple[OpenInterest, ReadReport]:
    """USD open interest from a file with a time column and `sum_open_interest_value`."""
    name, text = _read_text(path)
    return _oi_from_table(_load_table(name, text), max_bad_fraction)


def read_open_interest(path: PathLike) -> OpenInterest:
    oi, report = read_open_interest_report(path)
    report.emit()
    return oi


def _oi_from_table(t: _Table, max_bad_fraction: float) -> tuple[OpenInterest, ReadReport]:
    ti = _time_column(t, "open interest")
    vi = t.index(_OI_USD)
    if vi is None:
        extra = (
            " (sum_open_interest is in base units, not USD)"
            if "sum_open_interest" in (t.header or [])
            else ""
        )
        raise DataError(
            f"{t.path}: no USD open-interest column sum_open_interest_value{extra} (columns: {t.describe()})"
        )
    report = ReadReport(t.path, "open-interest", rows=t.rows, rejected=list(t.problems))
    check = RowChecker(t.n)
    time, _ = parse_times(t.col(ti), t.header[ti] if t.header else "time", check)
    usd = parse_floats(t.col(vi), "open interest", check)
    check.flag(~(np.isfinite(usd) & (usd > 0)), lambda i: f"open interest {usd[i]:g} USD is not positive")
    flag_implausible_prices({"open interest": usd}, usd, check, what="open interest")
    report.rejected += check.to_problems(t.lines, t.where)
    report.rejected.sort(key=lambda p: p.line)
    ok = ~check.bad
    time, usd, lines = time[ok], usd[ok], t.lines[ok]
    order = sort_by_time(time, report)
    if order is not None:
        time, usd, lines = time[order], usd[order], lines[order]
    keep = drop_duplicate_times(time, [usd], lines, report, t.where)
    time, usd = time[keep], usd[keep]
    report.kept = len(time)
    report.raise_if_unusable(max_bad_fraction)
    step = infer_step(time)
    if step:
        count_gaps(time, step, report)
    return OpenInterest(time, usd), report


@dataclass(frozen=True, eq=False)
class TakerVolume:
    """Taker buy and sell volume per period, in the file's units (base for Binance metrics files;
    merge_taker_volume checks the units against the candles)."""

    time: np.ndarray  # int64 ms, the period's start (= the bar open time it belongs to)
    buy: np.ndarray
    sell: np.ndarray

    def __len__(self) -> int:
        return len(self.time)


_TAKER_BUY = ("taker_buy_vol", "taker_buy_volume", "buy_vol", "taker_buy")
_TAKER_SELL = ("taker_sell_vol", "taker_sell_volume", "sell_vol", "taker_sell")


def read_taker_volume_report(
    path: PathLike, *, max_bad_fraction: float = MAX_BAD_FRACTION
) -> tuple[TakerVolume, ReadReport]:
    """Taker buy/sell volume columns (`taker_buy_vol`/`taker_sell_vol`, or `buyVol`/`sellVol`).
    Rows where both cells are empty are skipped (counted in report.skipped), not rejected: the
    Binance metrics file only has taker volume from part-way through."""
    name, text = _read_text(path)
    t = _load_table(name, text)
    ti = _time_column(t, "taker volume")
    bi, si = t.index(_TAKER_BUY), t.index(_TAKER_SELL)
    if bi is None or si is None:
        raise DataError(f"{t.path}: no taker buy/sell volume columns (columns: {t.describe()})")
    buy_raw, sell_raw = t.col(bi), t.col(si)
    present = np.array([not (_empty(b) and _empty(s)) for b, s in zip(buy_raw, sell_raw, strict=True)], bool)
    idx = np.flatnonzero(present)
    report = ReadReport(t.path, "taker-volume", rows=int(present.sum()) + len(t.problems))
    report.rejected = list(t.problems)
    report.skipped = t.n - len(idx)
    check = RowChecker(len(idx))
    sub = [t.col(ti)[i] for i in idx]
    time, _ = parse_times(sub, "time", check)
    buy = parse_floats([buy_raw[i] for i in idx], "taker buy volume", check)
    sell = parse_floats([sell_raw[i] for i in idx], "taker sell volume", check)
    for name_, a in (("taker buy volume", buy), ("taker sell volume", sell)):
        check.flag(
            ~(np.isfinite(a) & (a >= 0)), lambda i, n=name_, a=a: f"{n} {a[i]:g} is negative or not finite"
        )
    lines = t.lines[idx]
    report.rejected += check.to_problems(lines, t.where)
    report.rejected.sort(key=lambda p: p.line)
    ok = ~check.bad
    time, buy, sell, lines = time[ok], buy[ok], sell[ok], lines[ok]
    order = sort_by_time(time, report)
    if order is not None:
        time, buy, sell, lines = time[order], buy[order], sell[order], lines[order]
    keep = drop_duplicate_times(time, [buy, sell], lines, report, t.where)
    time, buy, sell = time[keep], buy[keep], sell[keep]
    report.kept = len(time)
    report.raise_if_unusable(max_bad_fraction)
    return TakerVolume(time, buy, sell), report


def _empty(v: object) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def read_taker_volume(path: PathLike) -> TakerVolume:
    taker, report = read_taker_volume_report(path)
    report.emit()
    return taker


def merge_taker_volume(
    candles: Candles, taker: TakerVolume, *, units: Literal["auto", "base", "quote"] = "auto"
) -> Candles:
    """Candles with `taker_buy_volume` (base units) filled from `taker` at equal bar times.

    Bars without taker data keep their previous value or NaN (unknown -> taker_buy_share 0.5).
    units="auto" compares taker buy + sell with the bars' volume: a ratio near 1 means base units,
    near the price means quote (USD) units, which are divided by the bar's entry price. Anything
    else means the two files do not describe the same market and raises DataError.
    """
    pos = np.searchsorted(candles.open_time, taker.time)
    pos_c = np.minimum(pos, max(len(candles) - 1, 0))
    hit = (pos < len(candles)) & (candles.open_time[pos_c] == taker.time) if len(candles) else pos < 0
    bars = pos[hit]
    if not len(bars):
        warnings.warn("taker volume has no bar times in common with the candles; not merged", DataWarning, 2)
        return candles
    buy, sell = taker.buy[hit], taker.sell[hit]
    vol = candles.volume[bars]
    if units == "auto":
        units = _taker_units(buy + sell, vol, candles.entry_price()[bars])
    if units == "quote":
        buy = buy / candles.entry_price()[bars]
    out = (
        np.full(len(candles), np.nan) if candles.taker_buy_volume is None else candles.taker_buy_volume.copy()
    )
    out[bars] = buy
    return replace(candles, taker_buy_volume=out)


def _taker_units(total: np.ndarray, volume: np.ndarray, price: np.ndarray) -> Literal["base", "quote"]:
    ok = (volume > 0) & (total > 0)
    if not ok.any():
        return "base"  # only empty bars: nothing to convert
    ratio = float(np.median(total[ok] / volume[ok]))
    if 0.5 <= ratio <= 2.0:
        return "base"
    if 0.5 <= ratio / float(np.median(price[ok])) <= 2.0:
        return "quote"
    raise DataError(
        f"taker buy + sell volume is {ratio:.3g}x the candles' volume: not the same market, "
        "or not aligned to bar open times"
    )


# --------------------------------------------------------------------------------------------
# Liquidations (Binance !forceOrder@arr)

_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD")
_FO_FIELDS = (
    "symbol",
    "side",
    "order_type",
    "time_in_force",
    "original_quantity",
    "price",
    "average_price",
    "order_status",
    "last_filled_quantity",
    "filled_accumulated_quantity",
    "trade_time_ms",
    "usd_size",
)
# websocket payload keys in the same order
_FO_KEYS = ("s", "S", "o", "f", "q", "p", "ap", "X", "l", "z", "T")


def to_ccxt_symbol(symbol: str, *, default_quote: str = "USDT") -> str:
    """Exchange symbol to ccxt linear-perpetual form: 'BTCUSDT' / 'BTC' -> 'BTC/USDT:USDT',
    'BTCUSDC' -> 'BTC/USDC:USDC', 'BTCUSDT_250328' -> 'BTC/USDT:USDT-250328'. A bare base
    ('BTC', as in recorders that strip 'USDT') gets `default_quote`."""
    s = symbol.strip().upper()
    if not s:
        raise DataError("empty symbol")
    if "/" in s:
        pair, _, settle = s.partition(":")
        base, _, quote = pair.partition("/")
        return f"{base}/{quote}:{settle or quote}"
    s, _, expiry = s.partition("_")
    suffix = f"-{expiry}" if expiry else ""
    for q in _QUOTES:
        if s.endswith(q) and len(s) > len(q):
            return f"{s[: -len(q)]}/{q}:{q}{suffix}"
    return f"{s}/{default_quote}:{default_quote}{suffix}"


def _forceorder_table(path: str, text: str) -> _Table:
    s = text.lstrip()
    if s.startswith("{") or s.startswith("["):
        try:
            obj = _json_loads(s)
            items: list[object] = obj if isinstance(obj, list) else [obj]
            numbers: list[int] = list(range(1, len(items) + 1))
            problems: list[RowProblem] = []
            where = "row"
        except ValueError:
            items, numbers, problems = _json_lines(path, text)
            where = "line"
        rows: list[list[object]] = []
        good: list[int] = []
        skipped = 0
        for num, msg in zip(numbers, items, strict=True):
            for o in _forceorder_payloads(msg):
                if o is None:
                    skipped += 1  # subscription replies and other streams
                elif not isinstance(o, dict) or any(k not in o for k in _FO_KEYS):
                    problems.append(RowProblem(num, "forceOrder message without the order fields", where))
                else:
                    rows.append([o[k] for k in _FO_KEYS])
                    good.append(num)
        cols = [[r[i] for r in rows] for i in range(len(_FO_KEYS))]
        t = _Table(
            path, list(_FO_FIELDS[:11]), cols, np.asarray(good, np.int64), where, len(rows) + len(problems)
        )
        t.problems = problems
        t.skipped = skipped
        return t
    t = _split_csv(path, text)
    if t.header is None:
        if len(t.columns) not in (11, 12):
            raise DataError(
                f"{path}: unknown liquidation layout ({len(t.columns)} columns); expected the forceOrder "
                "recorder CSV (symbol,side,order_type,...,trade_time_ms,usd_size) or websocket JSON lines"
            )
        t.header = list(_FO_FIELDS[: len(t.columns)])
    return t


def _forceorder_payloads(msg: object) -> list[object]:
    """The order dicts of one websocket message; None for messages that are not forceOrder."""
    if isinstance(msg, dict) and "data" in msg and "stream" in msg:
        msg = msg["data"]  # combined-stream wrapper {"stream": "!forceOrder@arr", "data": {...}}
    if isinstance(msg, list):
        return [p for m in msg for p in _forceorder_payloads(m)]
    if isinstance(msg, dict) and msg.get("e") == "forceOrder":
        return [msg.get("o")]
    return [None]


def read_liquidations_report(
    path: PathLike,
    *,
    exchange: str = "binanceusdm",
    symbol: str | None = None,
    max_bad_fraction: float = MAX_BAD_FRACTION,
) -> tuple[Liquidations, ReadReport]:
    """Liquidation events from a Binance forceOrder capture: the headerless recorder CSV
    (symbol,side,order_type,time_in_force,original_quantity,price,average_price,order_status,
    last_filled_quantity,filled_accumulated_quantity,trade_time_ms,usd_size) or websocket messages,
    one JSON per line, bare or in the {"stream": ..., "data": ...} wrapper.

    - side SELL (the exchange sells a long's position) -> LONG, BUY -> SHORT.
    - price = average fill price `ap`. The order's limit price `p` lies beyond the market (for
      BTCUSDT in the bundled capture 25-45 bp, median 37 bp, past the fill; more for small coins),
      so it is not where the trade happened.
    - usd = filled accumulated quantity `z` x `ap` (the recorder's usd_size is p x q and in some
      copies 1e-6 too small, so it is ignored).
    - rows equal in every field but usd_size are one event (two recorders appended to one file).
    - symbol filter accepts 'BTC/USDT:USDT', 'BTCUSDT' or 'BTC'; output symbols are ccxt form.
    """
    name, text = _read_text(path)
    t = _forceorder_table(name, text)
    report = ReadReport(name, "liquidation", rows=t.rows, rejected=list(t.problems))
    report.skipped = t.skipped
    col = {k: t.col(i) for i, k in enumerate(t.header or [])}
    if "trade_time" in col:
        col.setdefault("trade_time_ms", col["trade_time"])
    missing = [k for k in _FO_FIELDS[:11] if k not in col]
    if missing:
        raise DataError(
            f"{name}: not a forceOrder capture: no {', '.join(missing)} column (columns: {t.describe()})"
        )
    check = RowChecker(t.n)
    time, _ = parse_times(col["trade_time_ms"], "trade time", check)
    avg = parse_floats(col["average_price"], "average price", check)
    filled = parse_floats(col["filled_accumulated_quantity"], "filled quantity", check)
    raw_side = [str(s).strip().upper() for s in col["side"]]
    side = np.array([LONG if s == "SELL" else SHORT if s == "BUY" else 0 for s in raw_side], np.int8)
    raw_sym = [str(s).strip().upper() if s is not None else "" for s in col["symbol"]]
    check.flag(np.array([not s for s in raw_sym], bool), lambda i: "empty symbol")
    check.flag(side == 0, lambda i: f"side {raw_side[i]!r} is not BUY or SELL")
    check.flag(~(np.isfinite(avg) & (avg > 0)), lambda i: f"average price {avg[i]:g} is not a positive price")
    check.flag(
        ~(np.isfinite(filled) & (filled >= 0)), lambda i: f"filled quantity {filled[i]:g} is not valid"
    )
    # plausibility per symbol: a capture holds coins whose prices differ by orders of magnitude
    sym_arr = np.asarray(raw_sym, dtype=object)
    for sym in set(raw_sym):
        rows = sym_arr == sym
        flag_implausible_prices({"average price": avg}, avg, check, rows=rows)
        flag_implausible_sizes(filled, "filled quantity", check, rows=rows)
    report.rejected += check.to_problems(t.lines, t.where)
    report.rejected.sort(key=lambda p: p.line)

    # an order that filled nothing is not a liquidation that happened; not an error either
    unfilled = ~check.bad & (filled == 0)
    report.skipped += int(unfilled.sum())
    ok = ~check.bad & ~unfilled
    # one event per distinct order content (every field but usd_size)
    others = [parse_optional_floats(col[k]) for k in ("original_quantity", "price", "last_filled_quantity")]
    texts = [[str(v).strip() for v in col[k]] for k in ("order_type", "time_in_force", "order_status")]
    seen: dict[tuple[object, ...], int] = {}
    for i in np.flatnonzero(ok):
        key = (
            raw_sym[i], int(side[i]), int(time[i]), float(avg[i]), float(filled[i]),
            *(float(a[i]) if np.isfinite(a[i]) else -1.0 for a in others),
            *(x[i] for x in texts),
        )  # fmt: skip
        first = seen.setdefault(key, int(i))
        if first != i:
            ok[i] = False
            report.duplicates += 1
            report.dropped.append(
                RowProblem(
                    int(t.lines[i]),
                    f"duplicate of line {t.lines[first]} (usd_size ignored), dropped",
                    t.where,
                )
            )
    report.kept = int(ok.sum())
    report.raise_if_unusable(max_bad_fraction)  # before the symbol filter: judges the whole file

    idx = np.flatnonzero(ok)
    ccxt = {s: to_ccxt_symbol(s) for s in {raw_sym[i] for i in idx}}
    symbols = np.array([ccxt[raw_sym[i]] for i in idx], dtype=str)
    if symbol is not None:
        want = to_ccxt_symbol(symbol)
        sel = symbols == want
        if not sel.any() and len(idx):
            warnings.warn(
                f"{name}: no liquidations for {want} among {len(idx)} events of {len(set(symbols.tolist()))} symbols",
                DataWarning,
                2,
            )
        idx, symbols = idx[sel], symbols[sel]
    liq = Liquidations(
        time=time[idx],
        exchange=np.full(len(idx), exchange),
        symbol=symbols,
        side=side[idx],
        price=avg[idx],
        quantity=filled[idx],
        usd=filled[idx] * avg[idx],
    ).sorted()
    report.kept = len(liq)
    return liq, report


def read_liquidations(
    path: PathLike, *, exchange: str = "binanceusdm", symbol: str | None = None
) -> Liquidations:
    liq, report = read_liquidations_report(path, exchange=exchange, symbol=symbol)
    report.emit()
    return liq


# --------------------------------------------------------------------------------------------
# Sniffing

Kind = Literal["candles", "open_interest", "liquidations"]


def _kind_of(text: str) -> Kind:
    head = text.lstrip()[:4000]
    if '"forceOrder"' in head:
        return "liquidations"
    first = head.split("\n", 1)[0]
    names = {_norm_name(c) for c in first.split(",")}
    if names & set(_OI_USD) and not names & {"volume", "v", "vol"}:
        return "open_interest"
    cells = first.split(",")
    if len(cells) in (11, 12) and cells[1].strip().upper() in ("BUY", "SELL"):
        return "liquidations"
    return "candles"


def detect_kind(path: PathLike) -> Kind:
    """What a file holds, from its content: 'candles', 'open_interest' or 'liquidations'."""
    return _kind_of(_read_text(path)[1])


def read_any(path: PathLike) -> Candles | OpenInterest | Liquidations:
    """Read a file of any supported kind (see detect_kind); problems emitted as a DataWarning."""
    name, text = _read_text(path)
    kind = _kind_of(text)
    report: ReadReport
    data: Candles | OpenInterest | Liquidations
    if kind == "liquidations":
        data, report = read_liquidations_report(path)
    elif kind == "open_interest":
        data, report = _oi_from_table(_load_table(name, text), MAX_BAD_FRACTION)
    else:
        data, report = _candles_from_table(_load_table(name, text), None, MAX_BAD_FRACTION)
    report.emit()
    return data

"""Row-level parsing and validation shared by the file readers.

Every reader collects what it rejected or dropped in a `ReadReport` (file, line, reason), so the
app can show it; the plain `read_*` functions also emit a one-line `DataWarning` summary. A file
that is mostly garbage raises `DataError` instead of yielding a silently empty or holey chart.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from liqdesk.core.timespan import span_text
from liqdesk.errors import DataError

log = logging.getLogger(__name__)

# Plausible epoch range for market data; anything outside is a unit or parse error.
MIN_TIME_MS = 1_230_768_000_000  # 2009-01-01
MAX_TIME_MS = 4_102_444_800_000  # 2100-01-01

# More bad rows than this (share of data rows) means the layout or the file is wrong, not a few rows.
MAX_BAD_FRACTION = 0.2

# Plausibility, judged against the file's own median: a price more than PRICE_SPAN times above or below it, a
# wick more than WICK_SPAN times beyond its bar's body, or a size more than SIZE_SPAN times the median size is a
# bad row (a unit slip or a corrupt cell would stretch the price axis over orders of magnitude and leave every
# heatmap cell empty). Real markets stay far inside: BTC moved about 30x in five years, its deepest flash
# crash wick was under 8x.
PRICE_SPAN = 1000.0
WICK_SPAN = 10.0
SIZE_SPAN = 1e6

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class DataWarning(UserWarning):
    """Rows rejected or dropped while reading a data file (the data was still usable)."""


@dataclass(frozen=True)
class RowProblem:
    """One rejected or dropped row: `line` is the physical line in a text file (1-based, header
    counted), or the element index (1-based) in a JSON array when `where == "row"`."""

    line: int
    reason: str
    where: str = "line"

    def format(self, path: str) -> str:
        if self.where == "line":
            return f"{path}:{self.line}: {self.reason}"
        return f"{path} {self.where} {self.line}: {self.reason}"


@dataclass
class ReadReport:
    """What a reader did with a file: rows seen and kept, rows rejected (bad values) and rows
    dropped (duplicates), plus file-level notes (gaps, re-sorting, unit conversions)."""

    path: str
    kind: str
    rows: int = 0  # data rows seen, malformed ones included; header and blank lines excluded
    kept: int = 0
    rejected: list[RowProblem] = field(default_factory=list)
    dropped: list[RowProblem] = field(default_factory=list)
    duplicates: int = 0  # exact copies dropped
    conflicts: int = 0  # same key, different values: the later line was kept
    skipped: int = 0  # rows without the data asked for (e.g. empty taker cells); not errors
    gaps: int = 0  # missing bars/steps inside the span
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.rejected and not self.dropped

    def problems(self) -> list[RowProblem]:
        return sorted(self.rejected + self.dropped, key=lambda p: p.line)

    def messages(self) -> list[str]:
        """Every rejected or dropped row as 'file:line: reason', in file order."""
        return [p.format(self.path) for p in self.problems()]

    def _counts(self, num: str = "") -> list[str]:
        """How many rows were rejected, dropped as duplicates and replaced, in words (``num``: the format of a
        number, e.g. "," for thousands separators); empty when none were."""
        out = []
        if self.rejected:
            out.append(f"{len(self.rejected):{num}} of {self.rows:{num}} rows rejected")
        if self.duplicates:
            out.append(f"{self.duplicates:{num}} duplicate rows dropped")
        if self.conflicts:
            out.append(f"{self.conflicts:{num}} rows replaced by a later line with the same time")
        return out

    def summary(self, limit: int = 5) -> str:
        parts = self._counts()
        if not parts:
            parts.append(f"{self.kept} rows read")
        text = f"{self.path}: " + ", ".join(parts)
        msgs = self.messages()
        if msgs:
            shown = "; ".join(f"{p.where} {p.line}: {p.reason}" for p in self.problems()[:limit])
            more = f" (+{len(msgs) - limit} more)" if len(msgs) > limit else ""
            text += f"; {shown}{more}"
        if self.notes:
            text += "; " + "; ".join(self.notes)
        return text

    def lines(self, limit: int = 5) -> list[tuple[str, str]]:
        """For a user, one line each: ("warning", "file:line: reason") for the first ``limit`` rejected or
        dropped rows, one ("warning", …) line counting them all, and ("note", …) for the file-level notes."""
        out = [("warning", m) for m in self.messages()[:limit]]
        problems = self.problems()
        if problems:
            counts = self._counts(",")
            hidden = len(problems) - limit
            tail = f" ({hidden:,} not shown)" if hidden > 0 else ""
            out.append(("warning", f"{self.path}: {', '.join(counts)}{tail}; {self.kept:,} kept"))
        out += [("note", f"{self.path}: {n}") for n in self.notes]
        return out

    def emit(self, stacklevel: int = 3) -> None:
        """Warn once (DataWarning) if rows were rejected or dropped; log the notes."""
        if not self.clean:
            warnings.warn(self.summary(), DataWarning, stacklevel=stacklevel)
        elif self.notes:
            log.info("%s", self.summary())

    def raise_if_unusable(self, max_bad_fraction: float = MAX_BAD_FRACTION) -> None:
        first = "; ".join(p.format(self.path) for p in self.rejected[:5])
        if self.kept == 0:
            why = f"first problems: {first}" if first else "the file has no data rows"
            raise DataError(f"{self.path}: no usable {self.kind} rows; {why}")
        if self.rows and len(self.rejected) > max_bad_fraction * self.rows:
            raise DataError(
                f"{self.path}: {len(self.rejected)} of {self.rows} rows are unusable "
                f"(more than {max_bad_fraction:.0%}; wrong file or layout?); first problems: {first}"
            )


class RowChecker:
    """Marks bad rows of a table and keeps the first reason found for each."""

    def __init__(self, n: int) -> None:
        self.bad = np.zeros(n, dtype=bool)
        self.reasons: dict[int, str] = {}

    def flag(self, mask: np.ndarray, reason: Callable[[int], str]) -> None:
        new = mask & ~self.bad
        for i in np.flatnonzero(new):
            self.reasons[int(i)] = reason(int(i))
        self.bad |= mask

    def flag_one(self, i: int, reason: str) -> None:
        if not self.bad[i]:
            self.bad[i] = True
            self.reasons[i] = reason

    def to_problems(self, lines: np.ndarray, where: str) -> list[RowProblem]:
        return [RowProblem(int(lines[i]), r, where) for i, r in sorted(self.reasons.items())]


def _cell(v: object) -> str:
    s = repr(v) if isinstance(v, str) else str(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _to_floats(values: Sequence[object], on_bad: Callable[[int, object], None] | None = None) -> np.ndarray:
    """Numbers of one column, NaN where a cell does not parse (``on_bad(index, cell)`` is told of each)."""
    try:
        # numpy parses str cells itself: one C loop instead of float() per cell
        return np.array(values, dtype=np.float64)
    except (ValueError, TypeError):
        pass
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        try:
            out[i] = float(v)  # type: ignore[arg-type]
        except (ValueError, TypeError):
            out[i] = np.nan
            if on_bad is not None:
                on_bad(i, v)
    return out


def parse_floats(values: Sequence[object], column: str, check: RowChecker) -> np.ndarray:
    """Numbers of one column; unparsable cells are flagged and become NaN."""
    return _to_floats(values, lambda i, v: check.flag_one(i, f"{column} is not a number: {_cell(v)}"))


def parse_optional_floats(values: Sequence[object]) -> np.ndarray:
    """An optional column: anything unparsable, negative or empty is unknown (NaN), not an error."""
    out = _to_floats(values)
    out[~np.isfinite(out) | (out < 0)] = np.nan
    return out


def _scale_epoch(v: np.ndarray) -> tuple[np.ndarray, str]:
    """Epoch numbers in s, ms, µs or ns to ms. The unit is decided once per file from the median
    magnitude (1e8..1e11 is seconds 1973..5138, 1e11..1e14 milliseconds, ...)."""
    finite = v[np.isfinite(v)] if v.dtype.kind == "f" else v
    med = float(np.median(np.abs(finite))) if len(finite) else 0.0
    if med >= 1e17:
        unit, scale = "ns", 1e-6
    elif med >= 1e14:
        unit, scale = "µs", 1e-3
    elif med >= 1e11:
        unit, scale = "ms", 1.0
    else:
        unit, scale = "s", 1e3
    if v.dtype.kind == "i":
        if unit == "ms":
            return v.astype(np.int64), unit
        if unit == "s":
            return v.astype(np.int64) * 1000, unit
        return v.astype(np.int64) // int(round(1 / scale)), unit
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.round(v * scale)
    bad = ~np.isfinite(out) | (np.abs(out) > 9e15)
    out[bad] = -1  # flagged as out of range by the caller
    return out.astype(np.int64), unit


def _iso_ms(s: str) -> int:
    dt = datetime.fromisoformat(s.strip())
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)  # exchange files are UTC
    return (dt - _EPOCH) // _MS


def parse_times(values: Sequence[object], column: str, check: RowChecker) -> tuple[np.ndarray, str]:
    """A time column to int64 epoch ms: epoch s/ms/µs/ns numbers or ISO date-time strings
    ('2025-05-11 00:00:00', '...T...Z'). Returns (times, unit found); bad cells are flagged."""
    n = len(values)
    times: np.ndarray
    try:
        times, unit = _scale_epoch(np.array(values, dtype=np.int64))
    except (ValueError, TypeError, OverflowError):
        try:
            times, unit = _scale_epoch(np.array(values, dtype=np.float64))
        except (ValueError, TypeError):
            times, unit = _parse_mixed_times(values, column, check)
    out_of_range = (times < MIN_TIME_MS) | (times > MAX_TIME_MS)
    if n and out_of_range.any():
        check.flag(out_of_range, lambda i: f"{column} {_cell(values[i])} is not a time between 2009 and 2100")
    return times, unit


def _parse_mixed_times(values: Sequence[object], column: str, check: RowChecker) -> tuple[np.ndarray, str]:
    n = len(values)
    nums = np.full(n, np.nan)
    is_num = np.zeros(n, dtype=bool)
    for i, v in enumerate(values):
        try:
            nums[i] = float(v)  # type: ignore[arg-type]
            is_num[i] = True
        except (ValueError, TypeError):
            pass
    if is_num.sum() * 2 > n:
        # an epoch column with a few broken cells
        times, unit = _scale_epoch(nums[is_num])
        out = np.zeros(n, dtype=np.int64)
        out[is_num] = times
        check.flag(~is_num, lambda i: f"{column} is not a time: {_cell(values[i])}")
        return out, unit
    strs = [v.strip() if isinstance(v, str) else "" for v in values]
    try:
        # numpy parses 'YYYY-MM-DD HH:MM:SS[.fff]' in C; time-zone suffixes warn -> per-cell path
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            dt = np.array(strs, dtype="datetime64[ms]")
        out = dt.astype(np.int64)
        nat = np.isnat(dt)
        out[nat] = 0
        check.flag(nat, lambda i: f"{column} is not a time: {_cell(values[i])}")
        return out, "date-time"
    except (ValueError, TypeError, Warning):
        pass
    out = np.zeros(n, dtype=np.int64)
    for i, s in enumerate(strs):
        try:
            out[i] = _iso_ms(s)
        except (ValueError, OverflowError):
            check.flag_one(i, f"{column} is not a time: {_cell(values[i])}")
    return out, "date-time"


def drop_duplicate_times(
    time: np.ndarray, columns: Sequence[np.ndarray], lines: np.ndarray, report: ReadReport, where: str
) -> np.ndarray:
    """Rows already sorted by (time, file order). Returns the mask of rows to keep.

    Exact copies are dropped (the first copy is kept). For a time that appears with different
    values the *later line* wins: recorders and downloaders append, so a later line is the newer
    snapshot (an earlier one can be a bar captured while it was still open)."""
    n = len(time)
    keep = np.ones(n, dtype=bool)
    if n < 2 or not (time[1:] == time[:-1]).any():
        return keep
    last = np.searchsorted(time, time, side="right") - 1  # last row of each equal-time run
    same = np.ones(n, dtype=bool)  # row equals the last row of its run in every column
    for c in columns:
        k = c[last]
        eq = c == k
        if c.dtype.kind == "f":
            eq |= np.isnan(c) & np.isnan(k)
        same &= eq
    in_run = np.flatnonzero(last != np.arange(n))
    runs = np.unique(last[in_run])
    first = np.searchsorted(time, time[runs], side="left")
    for start, end in zip(first.tolist(), runs.tolist(), strict=True):
        idx = np.arange(start, end + 1)
        kept = int(idx[same[idx]][0])  # first copy of the winning (latest) values
        for i in idx:
            if i == kept:
                continue
            keep[i] = False
            if same[i]:
                report.duplicates += 1
                msg = f"exact duplicate of line {lines[kept]}, dropped"
            else:
                report.conflicts += 1
                msg = f"same time as line {lines[end]} with different values; the later line {lines[end]} was kept"
            report.dropped.append(RowProblem(int(lines[i]), msg, where))
    return keep


def sort_by_time(time: np.ndarray, report: ReadReport) -> np.ndarray | None:
    """Index that sorts rows by time keeping file order among equal times, or None if sorted."""
    if len(time) < 2 or bool(np.all(time[1:] >= time[:-1])):
        return None
    report.notes.append("rows were not in time order; sorted")
    return np.argsort(time, kind="stable")


def flag_implausible_prices(
    prices: dict[str, np.ndarray],
    reference: np.ndarray,
    check: RowChecker,
    *,
    what: str = "price",
    rows: np.ndarray | None = None,
) -> None:
    """Flag values outside [median / PRICE_SPAN, median × PRICE_SPAN] of ``reference`` over the rows still good
    (only among ``rows``, a mask, when given: one symbol of a multi-symbol file)."""
    scope = np.ones(len(reference), bool) if rows is None else rows
    good = scope & ~check.bad & np.isfinite(reference) & (reference > 0)
    if not good.any():
        return
    med = float(np.median(reference[good]))
    lo, hi = med / PRICE_SPAN, med * PRICE_SPAN
    for name, a in prices.items():
        with np.errstate(invalid="ignore"):
            out = scope & ((a > hi) | (a < lo))
        check.flag(out, _implausible_text(name, a, what, med))


def _implausible_text(name: str, a: np.ndarray, what: str, med: float) -> Callable[[int], str]:
    return lambda i: f"{name} {a[i]:g} is implausible: the file's median {what} is {med:g}"


def flag_implausible_sizes(
    size: np.ndarray, name: str, check: RowChecker, *, rows: np.ndarray | None = None
) -> None:
    """Flag sizes above SIZE_SPAN × the median positive size of the rows still good (among ``rows``)."""
    scope = np.ones(len(size), bool) if rows is None else rows
    good = scope & ~check.bad & np.isfinite(size) & (size > 0)
    if not good.any():
        return
    med = float(np.median(size[good]))
    with np.errstate(invalid="ignore"):
        out = scope & (size > med * SIZE_SPAN)
    check.flag(out, lambda i: f"{name} {size[i]:g} is implausible: the file's median {name} is {med:g}")


def flag_mixed_durations(duration: np.ndarray, check: RowChecker) -> int | None:
    """Rows whose bar lasts another time than most bars of the file (from a close-time column): a file that
    mixes timeframes. Returns the usual duration (ms)."""
    good = ~check.bad & (duration > 0)
    if not good.any():
        return None
    vals, counts = np.unique(duration[good], return_counts=True)
    usual = int(vals[np.argmax(counts)])
    off = np.abs(duration - usual) > max(1, usual // 1000)
    check.flag(
        off & ~check.bad,
        lambda i: f"bar lasts {span_text(int(duration[i]))}, the file's bars {span_text(usual)}",
    )
    return usual


def mixed_intervals(time: np.ndarray, lines: np.ndarray, step: int, where: str) -> str | None:
    """Why sorted unique times look like several timeframes in one file (long runs at another regular step:
    a 1m file with a 5m part), or None. Single gaps, however long, are not runs."""
    if len(time) < 3:
        return None
    d = np.diff(time)
    change = np.flatnonzero(d[1:] != d[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(d)]])
    runs = [(int(a), int(b)) for a, b in zip(starts, ends, strict=True) if b - a >= 20 and int(d[a]) != step]
    if not runs:
        return None
    parts = [f"{where}s {lines[a]}–{lines[b]} are {span_text(int(d[a]))} apart" for a, b in runs[:3]]
    more = f" and {len(runs) - 3} more runs" if len(runs) > 3 else ""
    return (
        f"bars at mixed intervals: most are {span_text(step)} apart, but {'; '.join(parts)}{more}; one file must hold "
        "one timeframe (split it, or resample it first)"
    )


def count_gaps(time: np.ndarray, step_ms: int, report: ReadReport) -> None:
    """Missing steps inside the span (sorted unique times); a note, not an error."""
    if len(time) < 2:
        return
    d = np.diff(time)
    missing = int(np.sum(d[d > step_ms] // step_ms - 1))
    off_grid = int(np.count_nonzero(d % step_ms))
    report.gaps = missing
    if missing:
        report.notes.append(f"{missing} missing {step_ms // 1000}s steps inside the span")
    if off_grid:
        report.notes.append(f"{off_grid} time steps are not multiples of {step_ms} ms")


def infer_step(time: np.ndarray) -> int | None:
    """Most common positive step of sorted unique times (None with fewer than two times)."""
    if len(time) < 2:
        return None
    d = np.diff(time)
    d = d[d > 0]
    if not len(d):
        return None
    vals, counts = np.unique(d, return_counts=True)
    return int(vals[np.argmax(counts)])

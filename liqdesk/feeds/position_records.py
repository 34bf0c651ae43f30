"""Recorded ``clearinghouseState`` answers as JSON lines: ``{"user": ADDRESS, "time": MS, "response": ANSWER}``.

``liqdesk sample-positions --record FILE`` writes them (``ResponseRecorder``: one line per answer, flushed as it
goes, so a stop at any moment loses at most the line being written); ``liqdesk actual`` and ``liqdesk calibrate
--positions`` read them back (``read_position_records``).

Reading is defensive: a line that is not JSON, nested too deeply, longer than 16 MiB, without the three fields, with
a user that is not an address, a time that is not epoch milliseconds, or an answer that cannot be read (see
``parse_clearinghouse_state``) is reported by its line number and skipped; a file with more bad lines than
good ones' fifth (``MAX_BAD_FRACTION``) is refused. Two lines for the same user and time: the first is kept.
gzip-compressed files are read as they are.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from liqdesk.core.actual_map import PositionSamples
from liqdesk.errors import DataError
from liqdesk.feeds.addresses import is_address
from liqdesk.feeds.validate import MAX_BAD_FRACTION, ReadReport, RowProblem
from liqdesk.feeds.venues.base import as_time_ms
from liqdesk.feeds.venues.hyperliquid import AccountState, parse_clearinghouse_state

MAX_LINE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class RecordedPositions:
    """Every sample in a file (all coins' positions), with what was skipped."""

    samples: PositionSamples
    report: ReadReport
    coins: frozenset[str]


def _lines(fh: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) per line; None for a line over MAX_LINE_BYTES (the rest of it is skipped)."""
    num = 0
    while True:
        chunk = fh.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            return
        num += 1
        if len(chunk) > MAX_LINE_BYTES and not chunk.endswith(b"\n"):
            while chunk and not chunk.endswith(b"\n"):
                chunk = fh.readline(MAX_LINE_BYTES + 1)
            yield num, None
            continue
        yield num, chunk


def _record(line: bytes) -> tuple[str, int, AccountState]:
    try:
        obj = json.loads(line)
    except RecursionError:
        raise ValueError("nested too deeply to be a clearinghouseState record") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({getattr(exc, 'msg', exc)})") from None
    if not isinstance(obj, dict) or not {"user", "time", "response"} <= obj.keys():
        raise ValueError('expected an object {"user": ADDRESS, "time": MS, "response": {...}}')
    user = obj["user"]
    if not is_address(user):
        raise ValueError(f"user is not an address (0x and 40 hex digits): {str(user)[:60]!r}")
    t = as_time_ms(obj["time"], "time")
    return user.lower(), t, parse_clearinghouse_state(obj["response"], user)


def read_position_records(
    path: str | Path, *, max_bad_fraction: float = MAX_BAD_FRACTION
) -> RecordedPositions:
    """Read a JSON-lines file of recorded answers. DataError if it cannot be used at all."""
    p = Path(path)
    name = str(p)
    if not p.exists():
        raise DataError(f"{name}: file not found")
    if p.is_dir():
        raise DataError(f"{name}: is a folder, not a positions file")
    report = ReadReport(name, "positions")
    s_acc: list[str] = []
    s_time: list[int] = []
    rows: list[tuple[Any, ...]] = []
    seen: set[tuple[str, int]] = set()
    coins: set[str] = set()
    try:
        with p.open("rb") as raw:
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            fh: IO[bytes] = gzip.GzipFile(fileobj=raw) if gz else raw  # type: ignore[assignment]
            for num, line in _lines(fh):
                if line is not None and not line.strip():
                    continue
                report.rows += 1
                if line is None:
                    report.rejected.append(RowProblem(num, "line longer than 16 MiB"))
                    continue
                try:
                    user, t, state = _record(line)
                except ValueError as exc:
                    report.rejected.append(RowProblem(num, str(exc)))
                    continue
                if (user, t) in seen:
                    report.duplicates += 1
                    report.dropped.append(RowProblem(num, "a second answer for the same user and time"))
                    continue
                seen.add((user, t))
                report.kept += 1
                s_acc.append(user)
                s_time.append(t)
                for q in state.positions:
                    coins.add(q.coin)
                    liq = np.nan if q.liquidation_px is None else q.liquidation_px
                    rows.append((user, q.coin, t, q.size, q.entry_px, q.leverage, q.margin_type == "cross", liq,
                                 q.margin_used, q.position_value))  # fmt: skip
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{name}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    if report.rows == 0:
        raise DataError(f"{name}: empty file, no recorded answers")
    bad = len(report.rejected)
    if report.kept == 0 or bad > max_bad_fraction * report.rows:
        first = report.messages()[0] if report.rejected else ""
        raise DataError(
            f"{name}: {bad} of {report.rows} lines cannot be used (expected one JSON object a line: "
            f'{{"user": ADDRESS, "time": MS, "response": <clearinghouseState answer>}}); first: {first}'
        )
    cols: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [() for _ in range(10)]
    samples = PositionSamples(
        np.asarray(s_acc, str), np.asarray(s_time, np.int64), np.asarray(cols[0], str), np.asarray(cols[1], str),
        np.asarray(cols[2], np.int64), np.asarray(cols[3], np.float64), np.asarray(cols[4], np.float64),
        np.asarray(cols[5], np.float64), np.asarray(cols[6], bool), np.asarray(cols[7], np.float64),
        np.asarray(cols[8], np.float64), np.asarray(cols[9], np.float64),
    )  # fmt: skip
    return RecordedPositions(samples, report, frozenset(coins))


class ResponseRecorder:
    """Appends answers to a JSON-lines file, one flushed line each (``close`` also syncs it to disk)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lines = 0
        try:
            if self.path.is_dir():
                raise DataError(f"--record {self.path}: is a folder")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh: IO[str] = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise DataError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def __call__(self, record: dict[str, Any]) -> None:
        try:
            self._fh.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
            self._fh.flush()
        except OSError as exc:
            raise DataError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self.lines += 1

    def close(self) -> None:
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
        except OSError:
            pass
        self._fh.close()

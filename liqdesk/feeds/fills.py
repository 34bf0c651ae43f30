"""Liquidation fills without a trustworthy side (an archive of Hyperliquid liquidation fills), and the
inference of their side from the price path.

The file is CSV with a header `time_ms,coin,price,size_usd` (gzip ok): one row per fill, several fills
per liquidated position (they share a timestamp). Its source's side column was the same on every row,
so the side is inferred from the price path around each liquidation (`infer_sides`):

* a liquidation is a forced market order: a long's is a sell that fills *below* where price has just
  been, while price falls; a short's a buy *above* it, while price rises;
* reference = the median close of the `window` (30) one-minute bars before the fill's minute; the
  fill is a long's when its price lies more than `threshold` (0.10 %) below the reference and the
  path fell over the window (the fill minute's close below the close `window` minutes earlier), a
  short's in the mirror case, and ambiguous otherwise. 0.10 % is well above the few basis points
  between this venue's price and the candles' (another venue's) and well below a cascade's move;
* fills with the same timestamp are pieces of one liquidation and get one side, decided from their
  USD-weighted mean price.

Ambiguous fills are not guessed: they are left out of the Liquidations returned and counted in the
report (`SideCounts`) and its notes, so nothing disappears unsaid.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from liqdesk.core.series import LONG, SHORT, Candles, Liquidations
from liqdesk.errors import DataError
from liqdesk.feeds.validate import (
    MAX_BAD_FRACTION,
    ReadReport,
    RowChecker,
    RowProblem,
    parse_floats,
    parse_times,
)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
I8 = NDArray[np.int8]

HYPERLIQUID = "hyperliquid"
SIDE_WINDOW_MS = 30 * 60_000
SIDE_THRESHOLD = 0.001
_COLUMNS = ("time_ms", "coin", "price", "size_usd")


@dataclass(frozen=True)
class SideCounts:
    """How many fills the price path assigned to each side, and how many it could not."""

    long: int
    short: int
    ambiguous: int
    usd_ambiguous: float
    no_path: int  # ambiguous for want of a path: no full window of candles before the fill

    def summary(self) -> str:
        return (
            f"side inferred from the price path: {self.long} long, {self.short} short, {self.ambiguous} ambiguous "
            f"fills (${self.usd_ambiguous:,.0f}) left out"
            + (f", {self.no_path} of them for want of candles before them" if self.no_path else "")
        )


def infer_sides(
    time_ms: I64,
    price: F64,
    usd: F64,
    candles: Candles,
    *,
    window_ms: int = SIDE_WINDOW_MS,
    threshold: float = SIDE_THRESHOLD,
) -> I8:
    """LONG, SHORT or 0 (ambiguous) for each fill, from the candles around it (see the module doc)."""
    time_ms = np.asarray(time_ms, np.int64)
    price = np.asarray(price, np.float64)
    usd = np.asarray(usd, np.float64)
    side = np.zeros(len(time_ms), np.int8)
    if len(time_ms) == 0 or len(candles) == 0:
        return side
    groups, inv = np.unique(time_ms, return_inverse=True)
    w = np.where(usd > 0, usd, 0.0)
    wsum = np.bincount(inv, weights=w)
    psum = np.bincount(inv, weights=w * price)
    pmean = np.bincount(inv, weights=price) / np.bincount(inv)
    with np.errstate(invalid="ignore", divide="ignore"):
        gprice = np.where(wsum > 0, psum / wsum, pmean)
    ot = np.asarray(candles.open_time, np.int64)
    close = np.asarray(candles.close, np.float64)
    n_bars = max(1, window_ms // candles.interval_ms)
    bar = np.searchsorted(ot, groups, "right") - 1
    inside = (bar >= n_bars) & (groups < ot[-1] + candles.interval_ms)
    gside = np.zeros(len(groups), np.int8)
    for g in np.flatnonzero(inside).tolist():
        b = int(bar[g])
        ref = float(np.median(close[b - n_bars : b]))
        move = float(close[b] - close[b - n_bars])
        d = (float(gprice[g]) - ref) / ref
        if d < -threshold and move < 0:
            gside[g] = LONG
        elif d > threshold and move > 0:
            gside[g] = SHORT
    side[:] = gside[inv]
    return side


def _read_rows(path: str | os.PathLike[str]) -> tuple[str, list[list[str]]]:
    p = Path(path)
    name = str(p)
    if not p.is_file():
        raise DataError(f"{name}: file not found" if not p.exists() else f"{name}: is not a file")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise DataError(f"{name}: cannot read ({e.strerror or e})") from e
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{name}: unreadable gzip data ({e})") from e
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{name}: not a text data file (byte {e.start} is not UTF-8)") from e
    rows = [r for r in csv.reader(io.StringIO(text))]
    if not rows or not any(rows):
        raise DataError(f"{name}: empty file, no data rows")
    return name, rows


def read_fills_report(
    path: str | os.PathLike[str],
    candles: Candles,
    *,
    exchange: str = HYPERLIQUID,
    max_bad_fraction: float = MAX_BAD_FRACTION,
) -> tuple[Liquidations, ReadReport, SideCounts]:
    """Liquidation fills (`time_ms,coin,price,size_usd`) with their side inferred from `candles`.

    Symbols are the venue's USDC-settled perpetual in ccxt form (coin BTC → BTC/USDC:USDC). Fills
    whose side stays ambiguous are left out and counted (SideCounts, and a note in the report)."""
    name, rows = _read_rows(path)
    header = [c.strip().lower() for c in rows[0]]
    missing = [c for c in _COLUMNS if c not in header]
    if missing:
        raise DataError(
            f"{name}: not a liquidation fills file: no {', '.join(missing)} column "
            f"(columns: {', '.join(header)}; expected {','.join(_COLUMNS)})"
        )
    idx = {c: header.index(c) for c in _COLUMNS}
    body = [(i + 2, r) for i, r in enumerate(rows[1:]) if any(cell.strip() for cell in r)]
    report = ReadReport(name, "liquidation fill", rows=len(body))
    short_rows = [(ln, r) for ln, r in body if len(r) < len(header)]
    report.rejected += [RowProblem(ln, f"{len(r)} fields, expected {len(header)}") for ln, r in short_rows]
    body = [(ln, r) for ln, r in body if len(r) >= len(header)]
    lines = np.array([ln for ln, _ in body], np.int64)
    col = {c: [r[i] for _, r in body] for c, i in idx.items()}
    check = RowChecker(len(body))
    time, _ = parse_times(col["time_ms"], "time", check)
    price = parse_floats(col["price"], "price", check)
    usd = parse_floats(col["size_usd"], "size_usd", check)
    coin = [c.strip().upper() for c in col["coin"]]
    check.flag(np.array([not c for c in coin], bool), lambda i: "empty coin")
    check.flag(~(np.isfinite(price) & (price > 0)), lambda i: f"price {price[i]:g} is not a positive price")
    check.flag(~(np.isfinite(usd) & (usd >= 0)), lambda i: f"size_usd {usd[i]:g} is not a valid size")
    report.rejected += check.to_problems(lines, "line")
    report.rejected.sort(key=lambda p: p.line)
    ok = np.flatnonzero(~check.bad)
    report.kept = len(ok)
    report.raise_if_unusable(max_bad_fraction)
    t, p, u = time[ok], price[ok], usd[ok]
    side = infer_sides(t, p, u, candles)
    amb = side == 0
    covered = np.zeros(len(t), bool)
    if len(candles):
        covered = (t >= int(candles.open_time[0]) + SIDE_WINDOW_MS) & (t < int(candles.close_time[-1]))
    counts = SideCounts(
        long=int(np.count_nonzero(side == LONG)),
        short=int(np.count_nonzero(side == SHORT)),
        ambiguous=int(amb.sum()),
        usd_ambiguous=float(u[amb].sum()),
        no_path=int(np.count_nonzero(amb & ~covered)),
    )
    report.skipped += counts.ambiguous
    report.notes.append(counts.summary())
    keep = ~amb
    symbols = np.array([f"{coin[i]}/USDC:USDC" for i in ok[keep].tolist()], dtype=str)
    liq = Liquidations(
        time=t[keep], exchange=np.full(int(keep.sum()), exchange), symbol=symbols, side=side[keep],
        price=p[keep], quantity=u[keep] / p[keep], usd=u[keep],
    ).sorted()  # fmt: skip
    report.kept = len(liq)
    return liq, report, counts

"""Account addresses for the position sampler: checked, imported from a file, discovered from public trades.

An address is ``0x`` and 40 hexadecimal digits, kept lower-case. ``read_address_file`` reads one address a line
(blank lines and ``#`` comments skipped) and reports every line it could not use with its number.
``AddressBook`` collects the addresses seen in the public trades stream (both counterparties of every trade) with
first and last seen times, the number of trades and their notional, in memory, until the sampler writes them to
its store (``drain``): a busy market's trades are not written one by one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from liqdesk.errors import DataError
from liqdesk.feeds.validate import ReadReport, RowProblem
from liqdesk.feeds.venues.hyperliquid import TradeRecord

ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
MAX_FILE_BYTES = 64 * 1024 * 1024  # 64 MiB: about 1.5 million addresses


def is_address(text: object) -> bool:
    return isinstance(text, str) and ADDRESS_RE.match(text) is not None


def normalise_address(text: str) -> str:
    """The address in lower case; ValueError if ``text`` is not 0x + 40 hex digits."""
    s = text.strip()
    if not ADDRESS_RE.match(s):
        raise ValueError(f"not an address (0x and 40 hex digits): {s[:60]!r}")
    return s.lower()


def read_address_file(path: str | Path) -> tuple[list[str], ReadReport]:
    """Addresses in ``path`` (one a line, duplicates kept once, order kept) and what was rejected.

    DataError if the file cannot be read or holds no address at all."""
    p = Path(path)
    name = str(p)
    try:
        if p.is_dir():
            raise DataError(f"{name}: is a folder, not an address list")
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DataError(f"{name}: {size:,} bytes is too large for an address list (at most 64 MiB)")
        raw = p.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{name}: file not found") from None
    except OSError as exc:
        raise DataError(f"{name}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: not a text file (byte {exc.start} is not UTF-8)") from None
    report = ReadReport(name, "addresses")
    seen: dict[str, None] = {}
    for num, line in enumerate(text.splitlines(), start=1):
        s = line.split("#", 1)[0].strip()
        if not s:
            continue
        report.rows += 1
        try:
            a = normalise_address(s)
        except ValueError as exc:
            report.rejected.append(RowProblem(num, str(exc)))
            continue
        if a in seen:
            report.duplicates += 1
            continue
        seen[a] = None
        report.kept += 1
    if not seen:
        detail = f"; first problem: {report.messages()[0]}" if report.rejected else ""
        raise DataError(f"{name}: no address in the file (expected 0x and 40 hex digits a line){detail}")
    return list(seen), report


@dataclass
class Activity:
    """What the trades stream showed of one address since the last ``drain``."""

    first_seen: int
    last_seen: int
    trades: int = 0
    notional: float = 0.0


@dataclass
class AddressBook:
    """Addresses seen in public trades, waiting to be stored. ``observe`` is cheap (one dict update per side)."""

    pending: dict[str, Activity] = field(default_factory=dict)
    trades_seen: int = 0
    malformed: int = 0  # trades whose addresses were not addresses

    def observe(self, trade: TradeRecord) -> None:
        self.trades_seen += 1
        notional = trade.price * trade.size
        for who in (trade.buyer, trade.seller):
            if not is_address(who):
                self.malformed += 1
                continue
            a = who.lower()
            act = self.pending.get(a)
            if act is None:
                self.pending[a] = Activity(trade.time, trade.time, 1, notional)
            else:
                act.first_seen = min(act.first_seen, trade.time)
                act.last_seen = max(act.last_seen, trade.time)
                act.trades += 1
                act.notional += notional

    def observe_all(self, trades: Iterable[TradeRecord]) -> None:
        for t in trades:
            self.observe(t)

    def drain(self) -> dict[str, Activity]:
        """What was seen since the last drain (and forget it)."""
        out, self.pending = self.pending, {}
        return out

"""`liqdesk store`: look at a store, and copy a tape from one store to another (SQLite → PostgreSQL for a desk that
grows, or back)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from liqdesk.app.options import STORE_HELP
from liqdesk.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "store",
        help="show a store, or copy candles, open interest, liquidations, coverage and positions between stores",
        description=(
            "Stores: the local SQLite cache (the default), another SQLite file (sqlite:///path) or a PostgreSQL "
            "database (postgresql://user@host/db; the password from ~/.pgpass or PGPASSWORD, never from "
            "liqdesk's files)."
        ),
    )
    actions = p.add_subparsers(dest="store_action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="what a store holds (rows per table)")
    info.add_argument("--store", metavar="URL", default=None, help=STORE_HELP)
    info.set_defaults(func=run_info)
    copy = actions.add_parser(
        "copy",
        help="copy every row from one store into another (rows already there are kept; run it again safely)",
        description=(
            "Copy the liquidation tape (first), candles, open interest, the record of fetched ranges (merged) and "
            "the sampled Hyperliquid positions from --from into --to. Rows the target holds already are left as "
            "they are, so the copy can be run again (or resumed after an interruption) and says how many rows "
            "were new. The source is only read."
        ),
    )
    copy.add_argument("--from", dest="source", required=True, metavar="URL", help="the store to read")
    copy.add_argument("--to", dest="target", required=True, metavar="URL", help="the store to write")
    copy.add_argument("--batch", type=int, default=20_000, metavar="N", help="rows per transaction")
    copy.add_argument("--quiet", action="store_true", help="only the final counts")
    copy.set_defaults(func=run_copy)


def run_info(args: argparse.Namespace) -> int:
    from liqdesk.feeds.store import MARKET_TABLES, open_store

    with open_store(args.store, read_only=True) as store:
        print(f"{store.location}" + ("" if store.exists else " (nothing stored yet)"))
        for table in MARKET_TABLES:
            print(f"  {table:<24} {store.count(table):>12,}")
        if store.damaged:
            print(f"liqdesk: warning: {store.damaged}", file=sys.stderr)
    return 0


def run_copy(args: argparse.Namespace) -> int:
    from liqdesk.feeds.store import parse_store_url

    if not 1 <= args.batch <= 1_000_000:
        raise ConfigError(f"--batch {args.batch}: give a whole number from 1 to 1,000,000")
    src, dst = parse_store_url(args.source), parse_store_url(args.target)
    if src.safe == dst.safe:
        raise ConfigError(f"--from and --to are the same store ({src.location})")
    counts = copy_store(args.source, args.target, batch=args.batch, say=None if args.quiet else _say)
    for table, (read, new) in counts.items():
        print(f"{table:<24} {read:>12,} read {new:>12,} new")
    print(f"copied {src.location} → {dst.location}")
    return 0


def _say(text: str) -> None:
    print(f"liqdesk store: {text}", file=sys.stderr, flush=True)


def copy_store(
    source: str, target: str, *, batch: int = 20_000, say: Callable[[str], None] | None = None
) -> dict[str, tuple[int, int]]:
    """Copy every table of ``source`` into ``target``; {table: (rows read, rows new in the target)}. ``say``
    hears the progress."""
    from liqdesk.feeds.positions_store import POSITION_TABLES, has_positions
    from liqdesk.feeds.store import MARKET_TABLES, open_positions, open_store, parse_store_url

    report = say
    counts: dict[str, tuple[int, int]] = {}
    with open_store(source, read_only=True) as src, open_store(target) as dst:
        if src.damaged:
            print(f"liqdesk: warning: {src.damaged}", file=sys.stderr)
        for table in MARKET_TABLES:
            read = new = 0
            started = time.monotonic()
            for rows in src.table_rows(table, batch):
                new += dst.insert_rows(table, rows)
                read += len(rows)
                if report is not None:
                    report(f"{table}: {read:,} read, {new:,} new ({time.monotonic() - started:.0f} s)")
            counts[table] = (read, new)
    src_url = parse_store_url(source)
    if src_url.kind == "sqlite" and (src_url.path is None or not src_url.path.exists()):
        return counts
    # positions: only when the source has them (opening the tables creates them, so look first)
    if not has_positions(src_url):
        return counts
    with open_positions(source) as psrc, open_positions(target) as pdst:
        for table in POSITION_TABLES:
            read = new = 0
            for rows in psrc.table_rows(table, batch):
                new += pdst.insert_rows(table, rows)
                read += len(rows)
            counts[table] = (read, new)
            if report is not None:
                report(f"{table}: {read:,} read, {new:,} new")
    return counts

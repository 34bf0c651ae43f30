"""`liqdesk liquidations`: print the real liquidations recorded in the local cache."""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

from liqdesk.app.options import add_market_arguments, add_store_option
from liqdesk.feeds.exchange_config import parse_options_json
from liqdesk.feeds.timeparse import format_time, parse_time


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "liquidations",
        help="print the recorded real liquidations (from the local cache or --store)",
        description=(
            "Print the real liquidations recorded in the store (the local cache, or --store) by `liqdesk record` "
            "or the app. "
            "side: long = a long position was liquidated. price: the fill (average) price; order_price: the "
            "liquidation order's limit (Binance) or bankruptcy (OKX) price. Binance streams at most one "
            "liquidation per symbol per second, so its tape is a sample. Several venues (a comma list): their "
            "tapes merged by time, each row naming its venue; --symbol is the coin, traded on each venue in its "
            "settle currency (or VENUE=SYMBOL items)."
        ),
    )
    add_market_arguments(p, several=True)
    add_store_option(p)
    p.add_argument(
        "--since", metavar="ISO", help="only from this time (ISO 8601; UTC unless an offset is given)"
    )
    p.add_argument("--until", metavar="ISO", help="only before this time")
    p.add_argument("--csv", action="store_true", help="CSV on stdout instead of a table")
    p.add_argument(
        "--ccxt-options", metavar="JSON", help="accepted for symmetry with other commands (checked, unused)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from liqdesk.feeds.market_list import load_market_lists
    from liqdesk.feeds.store import open_store
    from liqdesk.feeds.venue_set import parse_exchanges, tape_kind, venue_symbols

    exchanges = parse_exchanges(args.exchange)
    symbols = (
        {exchanges[0]: args.symbol}
        if len(exchanges) == 1
        else venue_symbols(args.symbol, exchanges, load_market_lists(exchanges).lists)
    )
    parse_options_json(args.ccxt_options)  # unused here, but a broken option is still an error
    since = parse_time(args.since, what="--since") if args.since else None
    until = parse_time(args.until, what="--until") if args.until else None
    # read-only: printing the tape never moves, repairs or rewrites the database, and waits out a writer's lock
    with open_store(args.store, read_only=True) as cache:
        rows = []
        for ex in exchanges:
            rows += cache.liquidation_rows(ex, symbols[ex], since, until)
        rows.sort(key=lambda r: r[2])  # by time (stable: each venue's own order kept)
        path = cache.location
        if cache.damaged:
            print(f"liqdesk: warning: {cache.damaged}", file=sys.stderr)
    if len(exchanges) > 1:
        return _print_venues(args, exchanges, symbols, rows, str(path), tape_kind)
    out = sys.stdout
    if args.csv:
        return _write_csv(out, rows)
    if not rows:
        print(f"no liquidations recorded for {args.exchange} {args.symbol}"
              + (f" since {format_time(since)}" if since is not None else "") + f" (store: {path}); "
              "run `liqdesk record` to record them", file=sys.stderr)  # fmt: skip
        return 0
    print(f"{'time (UTC)':<24} {'side':<5} {'price':>14} {'quantity':>14} {'usd':>14}", file=out)
    long_usd = short_usd = 0.0
    for _ex, _sym, t, side, price, qty, usd, _op, _rs in rows:
        print(f"{format_time(t):<24} {'long' if side > 0 else 'short':<5} {price:>14,.6g} {qty:>14,.6g} "
              f"{usd:>14,.0f}", file=out)  # fmt: skip
        if side > 0:
            long_usd += usd
        else:
            short_usd += usd
    print(f"{len(rows)} liquidations: longs ${long_usd:,.0f}, shorts ${short_usd:,.0f} ({args.exchange} "
          f"{args.symbol}; exchange data recorded in {path})", file=out)  # fmt: skip
    return 0


def _write_csv(out: Any, rows: list) -> int:
    """The tape as CSV, one row per liquidation with its venue (the columns the README lists)."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["time", "time_ms", "exchange", "symbol", "side", "price", "quantity", "usd", "order_price",
                "raw_side"])  # fmt: skip
    for ex, sym, t, side, price, qty, usd, order_price, raw_side in rows:
        w.writerow([format_time(t), t, ex, sym, "long" if side > 0 else "short", repr(price), repr(qty),
                    f"{usd:.2f}", "" if order_price is None else repr(order_price), raw_side or ""])  # fmt: skip
    return 0


def _print_venues(
    args: argparse.Namespace, exchanges: list[str], symbols: dict[str, str], rows: list, path: str, kind: Any
) -> int:
    """Several venues' tapes by time: the CSV columns name each row's venue; the table says per venue what its
    tape is (every liquidation, a sample, or none published)."""
    out = sys.stdout
    if args.csv:
        return _write_csv(out, rows)
    if rows:
        print(
            f"{'time (UTC)':<24} {'venue':<12} {'side':<5} {'price':>14} {'quantity':>14} {'usd':>14}",
            file=out,
        )
        for ex, _sym, t, side, price, qty, usd, _op, _rs in rows:
            print(f"{format_time(t):<24} {ex:<12} {'long' if side > 0 else 'short':<5} {price:>14,.6g} "
                  f"{qty:>14,.6g} {usd:>14,.0f}", file=out)  # fmt: skip
    what = {
        "complete": "every liquidation",
        "sample": "a sample (throttled stream)",
        "none": "none published",
    }
    for ex in exchanges:
        mine = [r for r in rows if r[0] == ex]
        long_usd = sum(r[6] for r in mine if r[3] > 0)
        short_usd = sum(r[6] for r in mine if r[3] <= 0)
        print(f"{ex} {symbols[ex]}: {len(mine)} liquidations, longs ${long_usd:,.0f}, shorts ${short_usd:,.0f} "
              f"(tape: {what.get(kind(ex), kind(ex))})", file=out)  # fmt: skip
    print(
        f"exchange data recorded in {path}" + ("" if rows else "; run `liqdesk record` to record them"),
        file=out,
    )
    return 0

"""`liqdesk record`: keep candles, open interest and real liquidations of many markets flowing into the store,
headless (the local cache, or a shared PostgreSQL store with ``--store``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liqdesk.app.options import add_store_option
from liqdesk.core.series import timeframe_ms
from liqdesk.errors import ConfigError
from liqdesk.feeds.exchange_config import ccxt_options_for
from liqdesk.feeds.timeparse import format_time, parse_duration

if TYPE_CHECKING:
    from liqdesk.feeds.live import LiveFeed
    from liqdesk.feeds.venues.base import LiquidationRecord

# A bare coin (--symbols BTC,ETH) means each venue's usual linear perpetual of it.
SETTLE = {"hyperliquid": "USDC"}
DEFAULT_SETTLE = "USDT"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "record",
        help="record live candles, open interest and liquidations of many markets into the store",
        description=(
            "Run headless and keep candles, open interest and every real liquidation the exchanges stream flowing "
            "into the store: the local cache, or --store postgresql://… for a desk (exchanges keep no liquidation "
            "history: this is how it accumulates). Every exchange × symbol is one market; each reconnects forever. "
            "Several recorders may write to one PostgreSQL store (two machines for redundancy): every row is "
            "stored once. Ctrl-C, SIGTERM or the end of --duration stops cleanly."
        ),
    )
    p.add_argument(
        "--exchange",
        required=True,
        metavar="ID[,ID…]",
        help="exchanges, comma-separated: binanceusdm, bybit, okx, hyperliquid",
    )
    p.add_argument(
        "--symbols",
        "--symbol",
        dest="symbols",
        required=True,
        metavar="SYM[,SYM…]",
        help="symbols, comma-separated, in ccxt form (BTC/USDT:USDT) or as coins (BTC: each venue's USDT "
        "perpetual, USDC on hyperliquid); each exchange records each symbol it lists",
    )
    p.add_argument("--timeframe", default="1m", metavar="TF", help="candle interval (default 1m)")
    p.add_argument(
        "--duration",
        metavar="SPAN",
        help="stop after this long (e.g. 90m, 12h, 7d) or 'forever' (the default)",
    )
    p.add_argument(
        "--ccxt-options",
        metavar="JSON",
        help='ccxt constructor options, JSON: {"options": …} for every exchange, or {"exchanges": {ID: {…}}}',
    )
    add_store_option(p)
    p.add_argument(
        "--quiet", action="store_true", help="no periodic progress lines, only warnings and errors"
    )
    p.set_defaults(func=run)


def split_list(text: str, what: str) -> list[str]:
    items = [x.strip() for x in str(text).split(",")]
    items = [x for x in items if x]
    if not items:
        raise ConfigError(f"{what}: give at least one")
    return list(dict.fromkeys(items))  # order kept, repeats dropped


def market_symbol(exchange: str, symbol: str) -> str:
    """A coin (BTC) as the exchange's linear perpetual in ccxt form; a ccxt symbol as it is."""
    if "/" in symbol:
        return symbol
    settle = SETTLE.get(exchange, DEFAULT_SETTLE)
    return f"{symbol.upper()}/{settle}:{settle}"


def run(args: argparse.Namespace) -> int:
    from liqdesk.feeds.store import parse_store_url
    from liqdesk.feeds.venues import venue_class

    exchanges = split_list(args.exchange, "--exchange")
    for ex in exchanges:
        venue_class(ex)  # unsupported exchange → ConfigError before anything starts
    symbols = split_list(args.symbols, "--symbols")
    try:
        timeframe_ms(args.timeframe)
    except ValueError as exc:
        raise ConfigError(f"--timeframe: {exc}") from None
    forever = args.duration is None or args.duration.strip().lower() == "forever"
    duration = None if forever else parse_duration(args.duration, what="--duration")
    options = {ex: ccxt_options_for(ex, args.ccxt_options) for ex in exchanges}
    if args.store:
        parse_store_url(args.store)  # a bad URL is one line before anything starts
    markets = {ex: [market_symbol(ex, s) for s in symbols] for ex in exchanges}
    asyncio.run(
        record_markets(markets, args.timeframe, options, duration, store=args.store, quiet=args.quiet)
    )
    return 0


def _say(text: str) -> None:
    print(f"liqdesk record: {text}", file=sys.stderr, flush=True)


async def record_markets(
    markets: dict[str, list[str]],
    timeframe: str,
    ccxt_options: dict[str, dict[str, Any]],
    duration_ms: int | None,
    *,
    store: str | None = None,
    quiet: bool = False,
    report_every_s: float = 60.0,
) -> None:
    """Record every exchange's symbols (one LiveFeed per exchange, one store for all) until the duration passes
    or a stop signal."""
    from liqdesk.feeds.live import FeedEvent, LiquidationEvent, LiveFeed, StatusEvent
    from liqdesk.feeds.store import open_store

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    several = sum(len(s) for s in markets.values()) > 1

    def on_event(e: FeedEvent) -> None:
        if isinstance(e, StatusEvent):
            if e.level != "info" or not quiet:
                where = f"{e.exchange} {e.symbol} " if several and e.symbol else ""
                _say(f"{e.level}: {where}{e.stream or 'feed'}: {e.text}")
        elif isinstance(e, LiquidationEvent) and not quiet:
            r = e.record
            side = "long" if r.side > 0 else "short"
            market = f" {r.exchange} {r.symbol}" if several else ""
            _say(
                f"liquidation {format_time(r.time)} {side} {r.quantity:g} @ {r.price:g} (${r.usd:,.0f}){market}"
            )

    # A store that cannot be written right now (full disk, another program's lock, a server away) does not stop
    # the recording: liquidations are kept in memory and stored as soon as it takes them (the feeds retry and
    # say so).
    with open_store(store, fallback_read_only=True) as cache:
        what = ", ".join(f"{ex} {' '.join(syms)}" for ex, syms in markets.items())
        _say(f"{what} {timeframe} → {cache.location}"
             + (f" for {duration_ms / 60000:g} min" if duration_ms else " (Ctrl-C stops)"))  # fmt: skip
        if cache.salvage is not None:
            _say(f"warning: the cache was damaged and has been salvaged: {cache.salvage.summary()}; the damaged "
                 f"file is kept as {cache.salvage.damaged}")  # fmt: skip
        if cache.write_error is not None:
            _say(f"error: {cache.write_error}; recording into memory and retrying")
        feeds = [
            LiveFeed(ex, syms, timeframe, ccxt_options=ccxt_options.get(ex), cache=cache, on_event=on_event)
            for ex, syms in markets.items()
        ]
        started = time.monotonic()
        try:
            for feed in feeds:
                await feed.start()
            deadline = None if duration_ms is None else started + duration_ms / 1000
            while not stop.is_set():
                timeout = (
                    report_every_s if deadline is None else min(report_every_s, deadline - time.monotonic())
                )
                if timeout <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout)
                if not quiet:
                    _say(_summary(feeds, time.monotonic() - started))
        finally:
            for feed in feeds:
                await feed.close()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
        _say(f"stopped; {_summary(feeds, time.monotonic() - started)}")
        unstored = [r for feed in feeds for r in feed.unstored_liquidations]
        if unstored:
            keep_unstored(unstored, folder=cache.unstored_dir)


async def record(
    exchange_id: str,
    symbol: str,
    timeframe: str,
    ccxt_options: dict[str, Any],
    duration_ms: int | None,
    *,
    quiet: bool = False,
    report_every_s: float = 60.0,
    store: str | None = None,
) -> None:
    """One market (the form before several markets could be recorded at once)."""
    await record_markets({exchange_id: [symbol]}, timeframe, {exchange_id: ccxt_options}, duration_ms,
                         store=store, quiet=quiet, report_every_s=report_every_s)  # fmt: skip


def keep_unstored(
    records: list[LiquidationRecord], cache_path: Path | None = None, *, folder: Path | None = None
) -> None:
    """The liquidations the store never took: written as CSV (the `liquidations --csv` columns) beside the cache
    file ``cache_path`` or into ``folder``, or, where even that fails, printed to stdout. The tape is never
    dropped."""
    from liqdesk.feeds.atomic import write_bytes_atomic

    lines = ["time_ms,exchange,symbol,side,price,quantity,usd,order_price,raw_side"]
    for r in records:
        side = "long" if r.side > 0 else "short"
        order = "" if r.order_price is None else repr(r.order_price)
        lines.append(f"{r.time},{r.exchange},{r.symbol},{side},{r.price!r},{r.quantity!r},{r.usd:.2f},{order},"
                     f"{r.raw_side or ''}")  # fmt: skip
    text = "\n".join(lines) + "\n"
    name = f"unstored-liquidations-{time.strftime('%Y%m%d-%H%M%S')}.csv"
    target = (folder / name) if folder is not None else Path(cache_path or ".").with_name(name)
    try:
        write_bytes_atomic(target, text.encode())
        where = f"written to {target}"
    except OSError as exc:
        sys.stdout.write(text)
        sys.stdout.flush()
        where = f"printed on stdout ({target} could not be written: {exc.strerror or exc})"
    _say(f"error: {len(records)} liquidation(s) could not be stored in the cache; {where}")


def _summary(feeds: list[LiveFeed], elapsed: float) -> str:
    def total(counter: str) -> int:
        return sum(f.total(counter) for f in feeds)

    markets = sum(len(f.symbols) for f in feeds)
    return (
        f"{elapsed / 60:.1f} min, {markets} market{'s' if markets != 1 else ''}: {total('backfilled')} bars/points "
        f"fetched, {total('stored')} rows stored, {total('messages')} updates, {total('reconnects')} reconnects, "
        f"{total('malformed')} malformed and {total('duplicates')} duplicate messages skipped"
    )

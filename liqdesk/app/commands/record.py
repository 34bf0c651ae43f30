"""`liqdesk record`: keep candles, open interest and real liquidations flowing into the local cache, headless."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path

from liqdesk.app.options import add_market_arguments
from liqdesk.core.series import timeframe_ms
from liqdesk.errors import ConfigError
from liqdesk.feeds.exchange_config import ccxt_options_for
from liqdesk.feeds.timeparse import format_time, parse_duration


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "record",
        help="record live candles, open interest and liquidations into the local cache",
        description=(
            "Run headless and keep candles, open interest and every real liquidation the exchange streams "
            "flowing into the local cache (exchanges keep no liquidation history: this is how it accumulates). "
            "Reconnects forever; Ctrl-C or the end of --duration stops cleanly."
        ),
    )
    add_market_arguments(p)
    p.add_argument("--timeframe", default="1m", metavar="TF", help="candle interval (default 1m)")
    p.add_argument(
        "--duration", metavar="SPAN", help="stop after this long (e.g. 90m, 12h, 7d); default: forever"
    )
    p.add_argument(
        "--ccxt-options", metavar="JSON", help="ccxt constructor options (urls, proxies, options), JSON"
    )
    p.add_argument(
        "--quiet", action="store_true", help="no periodic progress lines, only warnings and errors"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from liqdesk.feeds.venues import venue_class

    venue_class(args.exchange)  # unsupported exchange → ConfigError before anything starts
    try:
        timeframe_ms(args.timeframe)
    except ValueError as exc:
        raise ConfigError(f"--timeframe: {exc}") from None
    duration = parse_duration(args.duration, what="--duration") if args.duration else None
    options = ccxt_options_for(args.exchange, args.ccxt_options)
    asyncio.run(record(args.exchange, args.symbol, args.timeframe, options, duration, quiet=args.quiet))
    return 0


async def record(
    exchange_id: str,
    symbol: str,
    timeframe: str,
    ccxt_options: dict,
    duration_ms: int | None,
    *,
    quiet: bool = False,
    report_every_s: float = 60.0,
) -> None:
    from liqdesk.feeds.cache import Cache
    from liqdesk.feeds.live import FeedEvent, LiquidationEvent, LiveFeed, StatusEvent

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)

    def on_event(e: FeedEvent) -> None:
        if isinstance(e, StatusEvent):
            if e.level != "info" or not quiet:
                print(
                    f"liqdesk record: {e.level}: {e.stream or 'feed'}: {e.text}", file=sys.stderr, flush=True
                )
        elif isinstance(e, LiquidationEvent) and not quiet:
            r = e.record
            side = "long" if r.side > 0 else "short"
            print(f"liqdesk record: liquidation {format_time(r.time)} {side} {r.quantity:g} @ {r.price:g} "
                  f"(${r.usd:,.0f})", file=sys.stderr, flush=True)  # fmt: skip

    # A cache that cannot be written right now (full disk, another program's lock) does not stop the recording:
    # liquidations are kept in memory and stored as soon as it takes them (the feed retries and says so).
    with Cache(fallback_read_only=True) as cache:
        print(f"liqdesk record: {exchange_id} {symbol} {timeframe} → {cache.path}"
              + (f" for {duration_ms / 60000:g} min" if duration_ms else " (Ctrl-C stops)"),
              file=sys.stderr, flush=True)  # fmt: skip
        if cache.salvage is not None:
            print(f"liqdesk record: warning: the cache was damaged and has been salvaged: {cache.salvage.summary()}; "
                  f"the damaged file is kept as {cache.salvage.damaged}", file=sys.stderr, flush=True)  # fmt: skip
        if cache.write_error is not None:
            print(f"liqdesk record: error: {cache.write_error}; recording into memory and retrying",
                  file=sys.stderr, flush=True)  # fmt: skip
        feed = LiveFeed(
            exchange_id, symbol, timeframe, ccxt_options=ccxt_options, cache=cache, on_event=on_event
        )
        started = time.monotonic()
        try:
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
                    print(
                        f"liqdesk record: {_summary(feed, time.monotonic() - started)}",
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            await feed.close()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
        print(
            f"liqdesk record: stopped; {_summary(feed, time.monotonic() - started)}",
            file=sys.stderr,
            flush=True,
        )
        if feed.unstored_liquidations:
            keep_unstored(feed.unstored_liquidations, cache.path)


def keep_unstored(records: list, cache_path: Path) -> None:  # type: ignore[type-arg]
    """The liquidations the cache never took: written beside it as CSV (the `liquidations --csv` columns), or,
    where even that fails, printed to stdout. The tape is never dropped."""
    from liqdesk.feeds.atomic import write_bytes_atomic

    lines = ["time_ms,exchange,symbol,side,price,quantity,usd,order_price,raw_side"]
    for r in records:
        side = "long" if r.side > 0 else "short"
        order = "" if r.order_price is None else repr(r.order_price)
        lines.append(f"{r.time},{r.exchange},{r.symbol},{side},{r.price!r},{r.quantity!r},{r.usd:.2f},{order},"
                     f"{r.raw_side or ''}")  # fmt: skip
    text = "\n".join(lines) + "\n"
    target = cache_path.with_name(f"unstored-liquidations-{time.strftime('%Y%m%d-%H%M%S')}.csv")
    try:
        write_bytes_atomic(target, text.encode())
        where = f"written to {target}"
    except OSError as exc:
        sys.stdout.write(text)
        sys.stdout.flush()
        where = f"printed on stdout ({target} could not be written: {exc.strerror or exc})"
    print(f"liqdesk record: error: {len(records)} liquidation(s) could not be stored in the cache; {where}",
          file=sys.stderr, flush=True)  # fmt: skip


def _summary(feed: object, elapsed: float) -> str:
    total = getattr(feed, "total")  # noqa: B009
    return (
        f"{elapsed / 60:.1f} min: {total('backfilled')} bars/points fetched, "
        f"{total('stored')} rows stored, {total('messages')} updates, {total('reconnects')} reconnects, "
        f"{total('malformed')} malformed and {total('duplicates')} duplicate messages skipped"
    )

"""`liqdesk sample-positions`: discover Hyperliquid accounts and sample their positions into the local database."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liqdesk.app.commands.actual import OBSERVED_PRESET, save_observed_preset
from liqdesk.app.options import add_store_option
from liqdesk.core.inferred_liquidations import PricePath
from liqdesk.core.series import timeframe_ms
from liqdesk.errors import ConfigError, DataError
from liqdesk.feeds.exchange_config import ccxt_options_for
from liqdesk.feeds.timeparse import parse_duration
from liqdesk.feeds.venues.hyperliquid import DEFAULT_SAMPLER_BUDGET, WEIGHT_LIMIT_PER_MINUTE, Hyperliquid

if TYPE_CHECKING:  # the live-data modules are imported when the command runs (a quick --help)
    from liqdesk.feeds.live import LiveFeed, LiveSettings
    from liqdesk.feeds.position_sampler import PositionSampler, SamplerSettings, SamplerStatus
    from liqdesk.feeds.positions_store import AccountKeys

PATH_SEED_MS = 24 * 3_600_000


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "sample-positions",
        help="sample Hyperliquid accounts' open positions (their real liquidation prices) into the local database",
        description=(
            "Collect account addresses from Hyperliquid's public trades stream (both counterparties of every "
            "trade) and from --addresses, and ask the venue for their open positions (clearinghouseState: size, "
            "entry, leverage, the venue's own liquidation price) within a request budget, large accounts and "
            "positions near price first. Answers go into the local database (accounts stored under a salted hash "
            "unless --account-keys address), with the venue's open interest for the coverage, and positions that "
            "vanish while price crosses their liquidation price become inferred liquidations. Everything stays on "
            "this machine. A status line every minute; Ctrl-C or the end of --duration stops cleanly, and the "
            f"leverage mix of the sampled positions is saved as the preset {OBSERVED_PRESET}."
        ),
    )
    p.add_argument("--exchange", default="hyperliquid", metavar="ID", help="hyperliquid (the only venue that "
                   "publishes other accounts' positions)")  # fmt: skip
    p.add_argument("--symbol", required=True, metavar="SYM", help="the market, e.g. BTC/USDC:USDC")
    p.add_argument(
        "--duration", metavar="SPAN", help="stop after this long (e.g. 1h, 12h); default: until Ctrl-C"
    )
    p.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_SAMPLER_BUDGET,
        metavar="WEIGHT",
        help=f"request weight a minute (the venue allows {WEIGHT_LIMIT_PER_MINUTE} per IP; an account costs 2, "
        f"an open-interest poll 20; default {DEFAULT_SAMPLER_BUDGET:g}, a third)",
    )
    p.add_argument("--addresses", metavar="FILE", help="also sample these accounts (one 0x address a line)")
    p.add_argument(
        "--record",
        metavar="FILE",
        help="append every answer as a JSON line (for `liqdesk actual`; holds addresses)",
    )
    p.add_argument(
        "--account-keys",
        choices=("hash", "address"),
        default="hash",
        help="store position snapshots under a salted hash of the address (default) or the address itself "
        "(for accounts first stored from now on)",
    )
    p.add_argument("--timeframe", default="1m", metavar="TF", help="candles for the price path (default 1m)")
    p.add_argument("--no-preset", action="store_true", help=f"do not update the preset {OBSERVED_PRESET}")
    p.add_argument(
        "--ccxt-options", metavar="JSON", help="ccxt constructor options (urls, proxies, options), JSON"
    )
    p.add_argument("--quiet", action="store_true", help="no periodic status lines, only warnings and errors")
    add_store_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from liqdesk.feeds.addresses import read_address_file

    if args.exchange != "hyperliquid":
        raise ConfigError(
            f"--exchange {args.exchange}: only hyperliquid publishes other accounts' positions with their "
            "liquidation prices"
        )
    if not (math.isfinite(args.budget) and 2 <= args.budget <= WEIGHT_LIMIT_PER_MINUTE):
        raise ConfigError(f"--budget must lie between 2 and {WEIGHT_LIMIT_PER_MINUTE} (weight a minute)")
    try:
        timeframe_ms(args.timeframe)
    except ValueError as exc:
        raise ConfigError(f"--timeframe: {exc}") from None
    duration = parse_duration(args.duration, what="--duration") if args.duration else None
    addresses: list[str] = []
    if args.addresses:
        addresses, report = read_address_file(args.addresses)
        if report.rejected:
            print(f"liqdesk sample-positions: {report.summary()}", file=sys.stderr)
    options = ccxt_options_for(args.exchange, args.ccxt_options)
    from liqdesk.feeds.position_sampler import SamplerSettings

    status = asyncio.run(
        sample_positions(
            args.symbol, options, duration, timeframe=args.timeframe,
            settings=SamplerSettings(budget=args.budget), addresses=addresses,
            record_path=Path(args.record) if args.record else None, account_keys=args.account_keys,
            quiet=args.quiet, write_preset=not args.no_preset, store_url=args.store,
        )
    )  # fmt: skip
    return 0 if status is not None else 1


def _say(text: str) -> None:
    print(f"liqdesk sample-positions: {text}", file=sys.stderr, flush=True)


async def sample_positions(
    symbol: str,
    ccxt_options: dict[str, Any],
    duration_ms: int | None,
    *,
    timeframe: str = "1m",
    settings: SamplerSettings | None = None,
    live_settings: LiveSettings | None = None,
    addresses: list[str] | None = None,
    record_path: Path | None = None,
    account_keys: AccountKeys = "hash",
    quiet: bool = False,
    write_preset: bool = True,
    clock: Callable[[], int] | None = None,
    db_path: Path | None = None,
    store_url: str | None = None,
    report_every_s: float = 60.0,
    say: Callable[[str], None] = _say,
) -> SamplerStatus | None:
    """Run discovery and sampling until ``duration_ms`` passes or a stop signal; returns the last status (None if
    the sampler stopped on an error, which was said)."""
    from liqdesk.feeds.live import FeedEvent, LiveFeed, LiveSettings, StatusEvent
    from liqdesk.feeds.position_records import ResponseRecorder
    from liqdesk.feeds.position_sampler import PositionSampler, SamplerSettings
    from liqdesk.feeds.positions_store import PositionsStore
    from liqdesk.feeds.store import MarketStore, open_positions, open_store
    from liqdesk.feeds.venues import create_venue

    settings = settings or SamplerSettings()
    live_settings = live_settings or LiveSettings()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    now = clock or (lambda: time.time_ns() // 1_000_000)
    recorder = ResponseRecorder(record_path) if record_path is not None else None
    venue = create_venue("hyperliquid", ccxt_options)
    assert isinstance(venue, Hyperliquid)
    venue.clock = now
    cache: MarketStore | None = None
    store: PositionsStore | None = None
    try:
        cache = open_store(db_path if db_path is not None else store_url)
        store = open_positions(db_path if db_path is not None else store_url, account_keys=account_keys)

        def on_status(text: str, level: str) -> None:
            if level != "info" or not quiet:
                say(text)

        sampler = PositionSampler(venue, store, symbol, settings=settings, clock=now, on_status=on_status,
                                  record=recorder)  # fmt: skip
        interval = timeframe_ms(timeframe)
        stored = cache.get_candles("hyperliquid", symbol, timeframe, now() - PATH_SEED_MS, now())
        if len(stored):
            sampler.seed_path(PricePath.from_bars(stored.open_time, interval, stored.low, stored.high))

        def on_event(e: FeedEvent) -> None:
            sampler.observe_event(e)
            if isinstance(e, StatusEvent) and (e.level != "info" or not quiet):
                say(f"{e.stream or 'feed'}: {e.text}")

        await venue.market(symbol)  # an unknown symbol is one line, before anything runs
        if addresses:
            new = sampler.import_addresses(addresses)
            say(f"imported {len(addresses):,} addresses ({new:,} new)")
        say(f"{symbol} → {store.location} (budget {settings.budget:g} weight a minute"
            + (f", for {duration_ms / 60000:g} min)" if duration_ms else ", Ctrl-C stops)"))  # fmt: skip
        feed = LiveFeed("hyperliquid", symbol, timeframe, streams=("candles", "trades"), on_event=on_event,
                        cache=cache, settings=live_settings, clock=now, venue=venue)  # fmt: skip
        last = await _sample_until(sampler, feed, stop, duration_ms, report_every_s, quiet, say)
        if write_preset:
            try:
                say(save_observed_preset(store.state_at(sampler.coin, 2**62)))
            except (ConfigError, DataError) as exc:
                say(f"warning: preset {OBSERVED_PRESET} not written: {exc}")
        if last is not None:
            say(f"stopped; {last.line()}")
        return last
    finally:
        with contextlib.suppress(Exception):
            await venue.close()
        if recorder is not None:
            recorder.close()
        if store is not None:
            store.close()
        if cache is not None:
            cache.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(sig)


async def _sample_until(
    sampler: PositionSampler,
    feed: LiveFeed,
    stop: asyncio.Event,
    duration_ms: int | None,
    report_every_s: float,
    quiet: bool,
    say: Callable[[str], None],
) -> SamplerStatus | None:
    """Run the feed and the sampler until the duration passes, a stop signal, or the sampler fails (said; None).
    Whatever was discovered is stored and pending answers are compared before it returns."""
    task: asyncio.Task[None] | None = None
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await feed.start()
        task = asyncio.ensure_future(sampler.run())
        deadline = None if duration_ms is None else time.monotonic() + duration_ms / 1000
        while not stop.is_set() and not task.done():
            timeout = report_every_s if deadline is None else min(report_every_s, deadline - time.monotonic())
            if timeout <= 0:
                break
            await asyncio.wait({task, stopping}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if not quiet and not task.done() and not stop.is_set():
                say(sampler.status().line())
        if task.done() and not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            say(f"error: the sampler stopped: {type(exc).__name__}: {exc}")
            return None
        return sampler.status()
    finally:
        stopping.cancel()
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await feed.close()
        sampler.flush()
        sampler.decide(final=True)

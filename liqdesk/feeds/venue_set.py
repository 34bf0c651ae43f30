"""Several venues of one coin at once (the aggregate): which venues, each one's symbol and ccxt options, what
each one's tape is, and their histories loaded side by side through the cache.

A list of exchanges is written with commas (``binanceusdm,bybit,okx,hyperliquid``). One symbol names the coin
for all of them: each venue trades it under its own settle currency (``symbol_on_venue``: Hyperliquid settles
in USDC, so ``BTC/USDT:USDT`` is ``BTC/USDC:USDC`` there), or the symbol is given per venue
(``binanceusdm=BTC/USDT:USDT,hyperliquid=BTC/USDC:USDC``). ccxt options may be keyed by exchange id
(``{"binanceusdm": {...}, "okx": {...}}``, see exchange_config).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from liqdesk.core.aggregate import TAPE_COMPLETE, TAPE_NONE, TAPE_SAMPLE
from liqdesk.errors import ConfigError
from liqdesk.feeds.exchange_config import ccxt_options_for
from liqdesk.feeds.history import Progress, load_history_async
from liqdesk.feeds.market_data import MarketData
from liqdesk.feeds.market_list import MarketList
from liqdesk.feeds.store import open_store
from liqdesk.feeds.venues import VENUES, venue_class

DEFAULT_SYMBOL = "BTC/USDT:USDT"


def parse_exchanges(text: str, option: str = "--exchange") -> list[str]:
    """``binanceusdm,bybit`` → the ids, checked and in the order given. ConfigError for an unknown id, a
    repeated one or an empty list."""
    ids = [x.strip() for x in str(text).split(",")]
    if not ids or any(not x for x in ids):
        raise ConfigError(f"{option} {text!r}: give exchange ids separated by commas, e.g. binanceusdm,bybit")
    for x in ids:
        venue_class(x)
    seen = [x for i, x in enumerate(ids) if x in ids[:i]]
    if seen:
        raise ConfigError(f"{option} {text!r}: {seen[0]} is given twice")
    return ids


def symbol_on_venue(symbol: str, exchange: str, market_list: MarketList | None = None) -> str:
    """The venue's symbol for the coin of ``symbol`` (ccxt form BASE/QUOTE:SETTLE). With the venue's cached
    market list: the symbol itself if listed, else the same base's perpetual in the venue's settle order. Without
    one: the symbol when the venue settles in its currency, else the venue's first settle currency."""
    base, sep, rest = symbol.partition("/")
    if not base or not sep:
        raise ConfigError(f"--symbol {symbol!r}: expected ccxt form, e.g. {DEFAULT_SYMBOL}")
    settle = rest.split(":")[-1]
    settles = venue_class(exchange).settles
    if market_list is not None and market_list.markets:
        listed = {m.symbol for m in market_list.markets if m.active}
        if symbol in listed:
            return symbol
        for s in settles:
            candidate = f"{base}/{s}:{s}"
            if candidate in listed:
                return candidate
        return symbol  # not listed: the venue's own error names it when the market is loaded
    if settle in settles:
        return symbol
    return f"{base}/{settles[0]}:{settles[0]}"


def venue_symbols(
    text: str | None, exchanges: Sequence[str], lists: dict[str, MarketList] | None = None
) -> dict[str, str]:
    """Each venue's symbol from ``--symbol``: one symbol for the coin (mapped per venue), and/or
    ``VENUE=SYMBOL`` items for venues that need another one."""
    plain: str | None = None
    given: dict[str, str] = {}
    for item in (x.strip() for x in (text or DEFAULT_SYMBOL).split(",")):
        if not item:
            continue
        name, eq, sym = item.partition("=")
        if eq:
            if name.strip() not in exchanges:
                raise ConfigError(f"--symbol {item!r}: {name.strip()} is not one of {', '.join(exchanges)}")
            given[name.strip()] = sym.strip()
        elif plain is None:
            plain = item
        else:
            raise ConfigError(f"--symbol {text!r}: give one symbol, or VENUE=SYMBOL items")
    coin = plain or next(iter(given.values()), DEFAULT_SYMBOL)
    return {ex: given.get(ex) or symbol_on_venue(coin, ex, (lists or {}).get(ex)) for ex in exchanges}


def venue_ccxt_options(exchange: str, cli_json: str | dict[str, Any] | None) -> dict[str, Any]:
    """The ccxt options of one venue: the config file, then ``--ccxt-options`` (one exchange's options, or
    options keyed by exchange id)."""
    return ccxt_options_for(exchange, cli_json, exchange_ids=VENUES)


def tape_kind(exchange: str) -> str:
    """What the venue's recorded liquidation tape is: every liquidation, a throttled sample, or none."""
    feed = venue_class(exchange).liquidation_feed
    if feed is None:
        return TAPE_NONE
    return TAPE_COMPLETE if feed.complete else TAPE_SAMPLE


async def load_histories_async(
    markets: Sequence[tuple[str, str]],
    timeframe: str,
    start_ms: int,
    end_ms: int,
    *,
    ccxt_options: Callable[[str], dict[str, Any]],
    progress: Progress | None = None,
    now_ms: int | None = None,
    store: str | None = None,
) -> list[MarketData]:
    """The history of each (exchange, symbol), loaded side by side through one store (``store``: its URL; None:
    the default, see ``liqdesk.feeds.store``): the store first, the exchange for what is missing; a venue that
    cannot be reached gives its stored bars and says so in its notes, as ``load_history`` does for one."""
    shown: dict[str, tuple[int, int]] = {}

    def each(ex: str) -> Progress | None:
        if progress is None:
            return None

        def report(done: int, total: int, text: str) -> None:
            shown[ex] = (done, total)
            d, t = sum(x for x, _ in shown.values()), sum(y for _, y in shown.values())
            progress(d, t, f"{ex}: {text}")

        return report

    # One store for every venue: its calls are synchronous, so the venues' tasks never use it at once.
    cache = open_store(store, repair=False, fallback_read_only=True)
    try:
        return list(
            await asyncio.gather(*(
                load_history_async(ex, sym, timeframe, start_ms, end_ms, ccxt_options=ccxt_options(ex),
                                   progress=each(ex), cache=cache, now_ms=now_ms)
                for ex, sym in markets
            ))
        )  # fmt: skip
    finally:
        cache.close()


def load_histories(
    markets: Sequence[tuple[str, str]],
    timeframe: str,
    start_ms: int,
    end_ms: int,
    *,
    ccxt_options: Callable[[str], dict[str, Any]],
    progress: Progress | None = None,
    now_ms: int | None = None,
    store: str | None = None,
) -> list[MarketData]:
    """Synchronous ``load_histories_async`` for the command line (runs its own event loop)."""
    return asyncio.run(
        load_histories_async(
            markets,
            timeframe,
            start_ms,
            end_ms,
            ccxt_options=ccxt_options,
            progress=progress,
            now_ms=now_ms,
            store=store,
        )
    )

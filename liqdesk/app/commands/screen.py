"""`liqdesk screen`: the magnet screener headless: one row per market, sortable, as a table or JSON.

Markets come from exchanges (`--exchange ID[,ID…] --symbols A,B,…`: every symbol on every exchange,
through the local cache like the other commands) or from bundled samples (`--sample NAME[,NAME…]`,
offline). Each market's engine is built on its history and kept in a core.market_watch.MarketWatch,
the same that keeps the window's screener warm; the rows come from there.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any

from liqdesk.core.market_watch import MarketWatch, WatchBudget
from liqdesk.core.params import ModelParams
from liqdesk.core.replay import cut_at
from liqdesk.core.screener import COLUMNS, DEFAULT_SORT, Cluster, ScreenRow, failed_row, rank
from liqdesk.core.series import Candles, Liquidations, OpenInterest, timeframe_ms
from liqdesk.errors import ConfigError, DataError, LiqdeskError
from liqdesk.feeds.timeparse import format_time

DEFAULT_RANGE = "3d"
MAX_MARKETS = 100


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "screen",
        help="the magnet screener: nearest and largest liquidation clusters of several markets",
        description="One row per market: last price, the nearest long cluster below and short cluster above "
        "(price, distance %%, notional, share of the market's visible liquidity, i.e. the long and short "
        "notional inside the map's price range), the largest cluster within ±5 %%, the model in use and the "
        "age of the data (stale when older than two bars). Clusters are model estimates, not exchange data. "
        "Markets: --exchange ID[,ID…] with --symbols, or --sample NAME[,NAME…] (default: every bundled sample).",
    )
    p.add_argument("--exchange", metavar="ID[,ID…]", help="ccxt exchange ids, e.g. binanceusdm,bybit")
    p.add_argument(
        "--symbols", metavar="A,B,…", help="symbols in ccxt form, e.g. BTC/USDT:USDT,ETH/USDT:USDT"
    )
    p.add_argument(
        "--sample", action="append", default=[], metavar="NAME[,NAME…]", help="bundled samples (repeatable)"
    )
    p.add_argument(
        "--timeframe", default="5m", metavar="TF", help="bar interval for exchange data (default 5m)"
    )
    p.add_argument(
        "--range",
        default=DEFAULT_RANGE,
        metavar="SPAN",
        help=f"the map's range: its price range spans these newest bars (default {DEFAULT_RANGE}); the engine "
        "gets as much history again before it (at least a day)",
    )
    p.add_argument(
        "--sort",
        default=DEFAULT_SORT,
        metavar="COLUMN[:asc|desc]",
        help=f"sort by a column (default {DEFAULT_SORT}, largest first): {', '.join(COLUMNS)}",
    )
    p.add_argument(
        "--at",
        metavar="ISO",
        help="the screen as it stood at this instant (default now): the bars closed by then; ages are counted "
        "from it",
    )
    p.add_argument(
        "--within", type=float, default=5.0, metavar="PCT", help="band of the largest cluster (default 5)"
    )
    p.add_argument(
        "--min-share",
        type=float,
        default=3.0,
        metavar="PCT",
        help="a nearest cluster holds at least this %% of the visible liquidity (default 3)",
    )
    p.add_argument("--preset", default=None, help="leverage preset: coinglass, all, high or a user preset")
    p.add_argument(
        "--ccxt-options", metavar="JSON", help="ccxt constructor options (urls, proxies, options), JSON"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class Market:
    name: str
    exchange: str
    symbol: str
    sample: str | None = None


def run(args: argparse.Namespace) -> int:
    from liqdesk.app.options import check_timeframe
    from liqdesk.feeds import presets as presets_mod
    from liqdesk.feeds.timeparse import now_ms, parse_duration, parse_time

    column, descending = _sort_option(args.sort)
    if args.exchange:
        check_timeframe(args.timeframe)
    if not 0 < args.within <= 50:
        raise ConfigError(f"--within {args.within:g}: give a percentage above 0 and at most 50")
    if not 0 <= args.min_share < 100:
        raise ConfigError(f"--min-share {args.min_share:g}: give a percentage from 0 to below 100")
    span = parse_duration(args.range, what="--range")
    params = presets_mod.params_for(args.preset or presets_mod.DEFAULT_PRESET)
    markets = _markets(args)
    budget = WatchBudget(
        view_ms=span, history_ms=_history_ms(span), within_pct=args.within, min_share=args.min_share / 100.0
    )
    now = parse_time(args.at, what="--at") if args.at else now_ms()
    watch: MarketWatch | None = None
    failed: list[ScreenRow] = []
    for m in markets:
        try:
            candles, oi, updated = _load(m, args, span, now)
        except LiqdeskError as exc:
            failed.append(failed_row(m.name, m.exchange, m.symbol, str(exc)))  # a row that says why
            continue
        watch = watch or MarketWatch(params, budget)
        watch.load(m.name, m.exchange, m.symbol, candles, oi, now_ms=now, updated_ms=updated)
    if watch is None:
        raise DataError("no market could be screened: " + "; ".join(f"{r.market}: {r.error}" for r in failed))
    rows = rank(watch.rows(now) + failed, column, descending)
    if args.json:
        print(json.dumps(_report(rows, watch, now, column, descending, params.preset), indent=2))
    else:
        print(_table(rows, watch, now))
    return 0


def _history_ms(span: int) -> int:
    """The view and as much history again before it (at least a day), as the other commands load."""
    return span + max(span, 86_400_000)


def _sort_option(text: str) -> tuple[str, bool | None]:
    column, _, direction = text.partition(":")
    column = column.strip().lower()
    if column not in COLUMNS:
        raise ConfigError(f"--sort {text}: unknown column {column!r}; one of {', '.join(COLUMNS)}")
    if direction not in ("", "asc", "desc"):
        raise ConfigError(f"--sort {text}: the direction is asc or desc, e.g. --sort long_dist:asc")
    return column, None if not direction else direction == "desc"


def _split(values: list[str] | str | None) -> list[str]:
    items = values if isinstance(values, list) else [values or ""]
    return [x.strip() for v in items for x in str(v).split(",") if x.strip()]


def _markets(args: argparse.Namespace) -> list[Market]:
    from liqdesk.feeds.sample import list_samples, sample_description

    samples = _split(args.sample)
    exchanges, symbols = _split(args.exchange), _split(args.symbols)
    if samples and (exchanges or symbols):
        raise ConfigError("give --exchange with --symbols, or --sample, not both")
    if symbols and not exchanges:
        raise ConfigError("--symbols needs --exchange ID[,ID…]")
    if exchanges and not symbols:
        raise ConfigError("--exchange needs --symbols A,B,… (the markets to screen on it)")
    if exchanges:
        out = [
            Market(f"{ex} {sym}", ex, sym)
            for ex in dict.fromkeys(exchanges)
            for sym in dict.fromkeys(symbols)
        ]
    else:
        for name in samples:
            sample_description(name)  # an unknown name: one clear error listing the samples
        out = [
            Market(f"sample {n}", "sample", "BTC/USDT:USDT", n)
            for n in dict.fromkeys(samples or list_samples())
        ]
    if len(out) > MAX_MARKETS:
        raise ConfigError(f"{len(out)} markets: screen at most {MAX_MARKETS} at once")
    return out


def _load(
    m: Market, args: argparse.Namespace, span: int, now: int
) -> tuple[Candles, OpenInterest | None, int]:
    """(candles, open interest, when the data is from) for one market: what was known at `now`."""
    candles, oi = _history(m, args, span, now)
    cut = cut_at(candles, oi, Liquidations.empty(), now, ModelParams().oi_max_gap_bars)
    if len(cut.candles) < 2:
        where = (
            f"on {m.exchange}"
            if m.sample is None
            else f"in the sample (from {format_time(int(candles.open_time[0]))})"
        )
        raise DataError(f"fewer than two bars closed by {format_time(now)} {where}")
    return cut.candles, cut.open_interest, int(cut.candles.close_time[-1])


def _history(m: Market, args: argparse.Namespace, span: int, now: int) -> tuple[Candles, OpenInterest | None]:
    if m.sample is not None:
        from liqdesk.feeds.sample import load_sample

        s = load_sample(m.sample)
        return s.candles, s.open_interest
    from liqdesk.feeds.exchange_config import ccxt_options_for
    from liqdesk.feeds.history import load_history

    tf_ms = timeframe_ms(args.timeframe)
    hist = load_history(
        m.exchange, m.symbol, args.timeframe, now - _history_ms(span) - tf_ms, now,
        ccxt_options=ccxt_options_for(m.exchange, args.ccxt_options),
    )  # fmt: skip
    if hist.offline and len(hist.candles) < 2:  # nothing to fall back on: why, in one line
        why = next(w for w in hist.notes if w.startswith("offline")).removeprefix("offline: ")
        raise DataError(f"cannot load history: {why.removesuffix('; showing cached data')}; nothing cached")
    for w in hist.notes:
        print(f"liqdesk: warning: {m.name}: {w}", file=sys.stderr)
    return hist.candles, hist.open_interest


# ------------------------------------------------------------------------------------------- output


def _cluster(c: Cluster | None) -> dict[str, Any] | None:
    if c is None:
        return None
    return {"side": c.side_name, "price": round(c.price, 6), "distance_pct": round(c.distance_pct, 3),
            "usd": round(c.usd, 0), "share": round(c.share, 4), "main_tier": c.tier}  # fmt: skip


def _report(
    rows: list[ScreenRow], watch: MarketWatch, now: int, column: str, desc: bool | None, preset: str
) -> dict[str, Any]:
    out = []
    for r in rows:
        item: dict[str, Any] = {"market": r.market, "exchange": r.exchange, "symbol": r.symbol}
        if r.error:
            item["error"] = r.error
        else:
            item.update(
                price=r.price, time=format_time(r.time_ms), nearest_long=_cluster(r.nearest_long),
                nearest_short=_cluster(r.nearest_short), largest=_cluster(r.largest), visible_usd=round(r.visible_usd, 0),
                model=r.model, age_s=round(r.age_ms(now) / 1000.0, 1), stale=watch.stale(r, now),
            )  # fmt: skip
        out.append(item)
    return {
        "generated": format_time(now),
        "sort": column + ("" if desc is None else (":desc" if desc else ":asc")),
        "preset": preset,
        "within_pct": watch.budget.within_pct,
        "min_share": watch.budget.min_share,
        "rows": out,
        "note": "clusters are estimates from a model of open interest, volume and leverage, not exchange data; "
        "share = of the market's liquidity inside the map's price range",
    }


def _usd(x: float) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"${x / div:.1f}{unit}"
    return f"${x:.0f}"


def _age(ms: int) -> str:
    s = ms / 1000.0
    for unit, div in (("mo", 30 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if s >= div:
            return f"{s / div:.0f}{unit}"
    return f"{s:.0f}s"


def _cell(c: Cluster | None, with_side: bool = False) -> str:
    if c is None:
        return "—"
    side = f"{c.side_name} " if with_side else ""
    return f"{side}{c.price:,.6g} {c.distance_pct:+.2f}% {_usd(c.usd)} {c.share:.0%}"


def _table(rows: list[ScreenRow], watch: MarketWatch, now: int) -> str:
    head = ["market", "price", "nearest long below", "nearest short above",
            f"largest within ±{watch.budget.within_pct:g} %", "model", "age"]  # fmt: skip
    body = []
    for r in rows:
        if r.error:
            body.append([r.market, "—", "—", "—", "—", "—", f"error: {r.error}"])
            continue
        age = _age(r.age_ms(now))
        body.append([
            r.market, f"{r.price:,.6g}", _cell(r.nearest_long), _cell(r.nearest_short), _cell(r.largest, True),
            r.model, f"STALE {age}" if watch.stale(r, now) else age,
        ])  # fmt: skip
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)).rstrip() for row in [head, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(
        "cells: price, distance, notional, share of the visible liquidity (estimates, not exchange data)"
    )
    return "\n".join(lines)

"""`liqdesk actual`: the actual liquidation map of sampled Hyperliquid accounts, from recorded answers."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from liqdesk.app.options import parse_prices
from liqdesk.core.actual_map import (
    ActualMap,
    PositionSamples,
    actual_map,
    liquidation_price_range,
    observed_leverage,
)
from liqdesk.core.grid import PriceBins
from liqdesk.errors import ConfigError, DataError
from liqdesk.feeds.atomic import write_text_atomic
from liqdesk.feeds.position_records import read_position_records
from liqdesk.feeds.timeparse import format_time, parse_duration, parse_time

DEFAULT_SYMBOL = "BTC/USDC:USDC"
OBSERVED_PRESET = "hyperliquid-observed"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "actual",
        help="the actual liquidation map of sampled Hyperliquid accounts (from recorded positions)",
        description=(
            "Bin the liquidation prices of recorded Hyperliquid positions: per price bin, the long and the short "
            "notional (|size| × liquidation price) of the sampled accounts whose liquidation price lies there. "
            'FILE holds one JSON object a line, {"user": ADDRESS, "time": MS, "response": <clearinghouseState '
            "answer as the venue sends it>}, as `liqdesk sample-positions --record` writes it. The map is the "
            "state at --at (default: the newest answer): each account's newest answer then. It covers the sampled "
            "accounts only, never all open interest; positions without a liquidation price (hedged cross "
            "accounts) are counted, not binned. Lines that cannot be used are reported and skipped."
        ),
    )
    p.add_argument("--positions", required=True, metavar="FILE", help="recorded answers, JSON lines (.gz ok)")
    p.add_argument(
        "--symbol",
        default=DEFAULT_SYMBOL,
        metavar="SYM",
        help=f"the market to map (default {DEFAULT_SYMBOL})",
    )
    p.add_argument(
        "--prices", metavar="LO:HI", help="price range of the bins (default: the liquidation prices)"
    )
    p.add_argument("--bins", type=int, default=200, metavar="N", help="price bins (default 200)")
    p.add_argument("--at", metavar="ISO", help="the instant mapped (default: the newest answer)")
    p.add_argument("--max-age", metavar="SPAN", help="leave out accounts last answered longer ago, e.g. 1h")
    p.add_argument(
        "--open-interest", type=float, metavar="USD", help="the venue's open interest then, for the coverage"
    )
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the map and its counts as JSON")
    out.add_argument("--out", metavar="FILE", help="write price,long_usd,short_usd (non-zero bins) to a .csv")
    p.add_argument(
        "--write-preset",
        action="store_true",
        help=f"save the leverage mix of the mapped positions (by position value) as the user preset {OBSERVED_PRESET}",
    )
    p.set_defaults(func=run)


def coin_of(symbol: str) -> str:
    coin = symbol.split("/")[0].strip()
    if not coin:
        raise ConfigError(f"--symbol {symbol!r}: expected ccxt form, e.g. {DEFAULT_SYMBOL}")
    return coin


def spot_of(state: PositionSamples) -> float:
    """The mark at the samples, from the positions themselves (position value / |size|), median."""
    size = np.abs(state.size)
    ok = size > 0
    return float(np.median(state.position_value[ok] / size[ok])) if ok.any() else math.nan


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.bins <= 20_000:
        raise ConfigError("--bins must be between 1 and 20000")
    if args.out and Path(args.out).suffix.lower() != ".csv":
        raise ConfigError(f"--out {args.out}: use a .csv file name")
    if args.open_interest is not None and not (math.isfinite(args.open_interest) and args.open_interest > 0):
        raise ConfigError("--open-interest must be a positive USD amount")
    coin = coin_of(args.symbol)
    prices = parse_prices(args.prices) if args.prices else None
    at = parse_time(args.at, what="--at") if args.at else None
    max_age = parse_duration(args.max_age, what="--max-age") if args.max_age else None
    rec = read_position_records(args.positions)
    for msg in rec.report.messages()[:5]:
        print(f"liqdesk actual: skipped {msg}", file=sys.stderr)
    skipped = len(rec.report.rejected) + len(rec.report.dropped)
    if skipped > 5:
        print(f"liqdesk actual: … {skipped - 5} more lines skipped", file=sys.stderr)
    state = rec.samples.for_coin(coin).latest(at, max_age)
    if state.n_samples == 0:
        raise DataError(f"{args.positions}: no answer at or before {args.at} (within --max-age)")
    if prices is None:
        spot = spot_of(state)
        if not math.isfinite(spot):
            held = ", ".join(sorted(rec.coins)[:10]) or "none"
            raise DataError(
                f"{args.positions}: no {coin} position to map (coins held: {held}); give --prices"
            )
        prices = liquidation_price_range(state, spot)
    amap = actual_map(state, PriceBins(prices[0], prices[1], args.bins), args.open_interest or math.nan)
    if args.write_preset:
        print(save_observed_preset(state), file=sys.stderr)
    if args.json:
        print(json.dumps(map_report(amap, coin, args.positions, rec.report.rows, skipped), indent=2))
        return 0
    if args.out:
        write_text_atomic(Path(args.out), map_csv(amap))
        print(f"wrote {args.out} ({int(np.count_nonzero((amap.long > 0) | (amap.short > 0)))} non-zero bins)",
              file=sys.stderr)  # fmt: skip
    print("\n".join(summary_lines(amap, coin, args.positions)))
    return 0


def map_csv(amap: ActualMap) -> str:
    """``price,long_usd,short_usd`` per bin with any notional (bin centre; values as Python writes floats, so
    they read back exactly)."""
    keep = np.flatnonzero((amap.long > 0) | (amap.short > 0))
    centres = amap.bins.centers
    lines = ["price,long_usd,short_usd"]
    lines += [
        f"{float(centres[i])!r},{float(amap.long[i])!r},{float(amap.short[i])!r}" for i in keep.tolist()
    ]
    return "\n".join(lines) + "\n"


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def map_report(amap: ActualMap, coin: str, source: str, lines: int, skipped: int) -> dict[str, Any]:
    keep = np.flatnonzero((amap.long > 0) | (amap.short > 0))
    return {
        "source": source,
        "coin": coin,
        "first_ms": amap.first_ms,
        "last_ms": amap.last_ms,
        "bins": {"lo": amap.bins.lo, "hi": amap.bins.hi, "n": amap.bins.n},
        "accounts": amap.n_accounts,
        "positions": amap.n_positions,
        "without_liquidation_price": amap.n_without_price,
        "without_liquidation_price_value_usd": amap.without_price_value_usd,
        "outside_range": amap.n_outside,
        "outside_range_usd": amap.outside_usd,
        "long_usd": float(amap.long.sum()),
        "short_usd": float(amap.short.sum()),
        "long_value_usd": amap.long_value_usd,
        "short_value_usd": amap.short_value_usd,
        "open_interest_usd": _finite(amap.open_interest_usd),
        "coverage": _finite(amap.coverage),
        "lines_read": lines,
        "lines_skipped": skipped,
        "rows": [
            {
                "price": float(amap.bins.centers[i]),
                "long_usd": float(amap.long[i]),
                "short_usd": float(amap.short[i]),
            }
            for i in keep.tolist()
        ],
        "note": "sampled accounts only: notional = |size| × liquidation price; coverage = sampled position value "
        "/ (2 × open interest)",
    }


def usd(x: float) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"${x / div:.2f}{unit}"
    return f"${x:,.0f}"


def summary_lines(amap: ActualMap, coin: str, source: str) -> list[str]:
    span = (
        "-"
        if amap.first_ms is None
        else f"{format_time(amap.first_ms)[:19]} → {format_time(amap.last_ms or 0)[:19]}"
    )
    if math.isfinite(amap.coverage):
        cov = (
            f"coverage {amap.coverage * 100:.2f} % of open interest {usd(amap.open_interest_usd)} "
            f"(longs {amap.long_coverage * 100:.2f} %, shorts {amap.short_coverage * 100:.2f} %)"
        )
    else:
        cov = "coverage unknown (give --open-interest USD)"
    lines = [
        f"actual liquidation map of {coin} from {source}: {amap.n_accounts} accounts sampled {span} UTC",
        f"positions {amap.n_positions}: long value {usd(amap.long_value_usd)}, short value "
        f"{usd(amap.short_value_usd)}; {cov}",
        f"binned {amap.bins.n} × {amap.bins.width:.6g} from {amap.bins.lo:.8g} to {amap.bins.hi:.8g}: long "
        f"{usd(float(amap.long.sum()))}, short {usd(float(amap.short.sum()))} at liquidation",
        f"positions without a liquidation price: {amap.n_without_price} ({usd(amap.without_price_value_usd)} "
        f"value); outside the range: {amap.n_outside} ({usd(amap.outside_usd)} at liquidation)",
    ]
    total = amap.long + amap.short
    top = np.argsort(-total, kind="stable")[:10]
    top = top[total[top] > 0]
    if len(top):
        lines.append("largest bins: price  long  short")
        for i in sorted(top.tolist(), key=lambda k: -amap.bins.centers[k]):
            lines.append(
                f"  {amap.bins.centers[i]:>14.8g}  {usd(float(amap.long[i])):>10}  {usd(float(amap.short[i])):>10}"
            )
    lines.append(
        "the map covers the sampled accounts only; addresses are public data and nothing was sent anywhere"
    )
    return lines


def save_observed_preset(state: PositionSamples) -> str:
    """Save the leverage mix of ``state``'s positions (by position value) as the user preset OBSERVED_PRESET;
    returns a line saying what was written. DataError when no position has a leverage above 1x."""
    from liqdesk.feeds.presets import save_user_preset

    lev, w, left_out = observed_leverage(state)
    if len(lev) == 0:
        raise DataError(f"no position with a leverage above 1x: preset {OBSERVED_PRESET} not written")
    path = save_user_preset(
        OBSERVED_PRESET, "Hyperliquid observed", {float(a): float(b) for a, b in zip(lev, w, strict=True)}
    )
    mix = ", ".join(f"{a:g}x {b * 100:.1f} %" for a, b in zip(lev, w, strict=True))
    note = f"; {left_out * 100:.1f} % of the value at 1x or less left out" if left_out > 0 else ""
    return f"preset {OBSERVED_PRESET} ({len(state)} positions, by value) written to {path}: {mix}{note}"

"""`liqdesk levels`: the liquidation map at one instant, as text or JSON."""

from __future__ import annotations

import argparse
import json

from liqdesk.app.modelrun import run_model
from liqdesk.app.options import add_data_options, check_count, load_inputs
from liqdesk.core.liqmap import Magnet, find_magnets, liquidation_map, notional_within
from liqdesk.core.series import LONG
from liqdesk.errors import DataError
from liqdesk.feeds.timeparse import format_time, parse_time

CUM_PCTS = (1.0, 2.0, 5.0)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "levels",
        help="the estimated liquidation map at an instant (top clusters, cumulative notional)",
        description="Price, the largest estimated liquidation clusters on each side with distance %, "
        "and cumulative long/short notional within ±1/2/5 % of price, at --at (default: the last bar).",
    )
    add_data_options(p, view=False)
    p.add_argument("--at", metavar="ISO", help="instant (default: the last bar)")
    p.add_argument(
        "--bins",
        type=int,
        default=400,
        metavar="N",
        help="price bins for clustering, 10 to 20000 (default 400)",
    )
    p.add_argument("--top", type=int, default=3, metavar="N", help="clusters per side, 1 to 100 (default 3)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run, start=None, range=None)


def run(args: argparse.Namespace) -> int:
    check_count(args.bins, "--bins", 10, 20_000)
    check_count(args.top, "--top", 1, 100)
    args.end = None
    if args.at:
        at = parse_time(args.at, what="--at")
        args.end = format_time(at + 1)
    inputs = load_inputs(args)
    run_ = run_model(inputs)
    eng = run_.engine
    bar = eng.n_bars - 1
    if args.at and not (eng.open_time[0] <= parse_time(args.at) < eng.open_time[-1] + eng.interval_ms):
        raise DataError(f"--at {args.at} is outside the data ({format_time(int(eng.open_time[0]))} → …)")
    lo = max(0, bar - 2016)
    bins = _bins_around(run_, lo, bar, args.bins)
    lmap = liquidation_map(eng, bins, bar)
    magnets = find_magnets(lmap, per_side=args.top)
    cum = {pct: notional_within(eng, bar, pct) for pct in CUM_PCTS}
    report = {
        "time": format_time(int(eng.open_time[bar])),
        "price": lmap.price_now,
        "symbol": inputs.symbol,
        "source": inputs.label,
        "model": eng.model_label(lo, bar + 1),
        "preset": inputs.params.preset,
        "alive_long_usd": lmap.total_long,
        "alive_short_usd": lmap.total_short,
        "clusters_below": [_magnet_dict(m) for m in magnets if m.side == LONG],
        "clusters_above": [_magnet_dict(m) for m in magnets if m.side != LONG],
        "cumulative": {
            f"{pct:g}%": {"long_below_usd": lo_, "short_above_usd": hi_} for pct, (lo_, hi_) in cum.items()
        },
        "note": "estimates from a model of open interest, volume and leverage, not exchange data",
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_table(report))
    return 0


def _bins_around(run_, lo: int, bar: int, n: int):  # type: ignore[no-untyped-def]
    from liqdesk.core.liqmap import auto_bins

    c = run_.inputs.candles.take(slice(lo, bar + 1))
    return auto_bins(c.low, c.high, n, margin=0.5)


def _magnet_dict(m: Magnet) -> dict:
    return {
        "price": round(m.price, 2),
        "low": round(m.low, 2),
        "high": round(m.high, 2),
        "distance_pct": round(m.distance_pct, 3),
        "usd": round(m.usd, 0),
        "main_tier": m.main_tier,
    }


def _usd(x: float) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"${x / div:,.2f}{unit}"
    return f"${x:,.0f}"


def _table(r: dict) -> str:
    lines = [
        f"{r['symbol']}  {r['time']}  price {r['price']:,.2f}",
        f"source: {r['source']}",
        f"model: {r['model']}, preset {r['preset']} (estimates, not exchange data)",
        f"alive: long {_usd(r['alive_long_usd'])} below, short {_usd(r['alive_short_usd'])} above",
        "",
        "clusters above (short liquidations):",
    ]
    for m in r["clusters_above"]:
        lines.append(
            f"  {m['price']:>12,.2f}  {m['distance_pct']:+7.2f}%  {_usd(m['usd']):>10}  mostly {m['main_tier']}"
        )
    lines.append("clusters below (long liquidations):")
    for m in r["clusters_below"]:
        lines.append(
            f"  {m['price']:>12,.2f}  {m['distance_pct']:+7.2f}%  {_usd(m['usd']):>10}  mostly {m['main_tier']}"
        )
    lines.append("cumulative within:")
    for k, v in r["cumulative"].items():
        lines.append(
            f"  ±{k:<4} long {_usd(v['long_below_usd']):>10}   short {_usd(v['short_above_usd']):>10}"
        )
    return "\n".join(lines)

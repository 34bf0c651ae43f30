"""`liqdesk levels`: the liquidation map at one instant, as text or JSON."""

from __future__ import annotations

import argparse
import json

from liqdesk.app.modelrun import run_model
from liqdesk.app.options import add_data_options, check_count, load_inputs
from liqdesk.app.venue_inputs import VenueSetRun, is_venue_set, load_venue_inputs, run_venues
from liqdesk.core.aggregate import AggregateMap, aggregate_coverage, aggregate_map, model_mix
from liqdesk.core.aggregate import notional_within as venue_notional_within
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
    if is_venue_set(args):
        return _run_venues(args)
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


def _run_venues(args: argparse.Namespace) -> int:
    """The summed map of several venues at --at: each venue at its last bar closed by then."""
    run_ = run_venues(load_venue_inputs(args))
    inputs = run_.inputs
    t = max(int(vm.engine.open_time[-1]) + vm.engine.interval_ms for vm in run_.venues if vm.engine.n_bars)
    if args.at and parse_time(args.at) >= t:
        raise DataError(f"--at {args.at} is outside the data (the last bar closes {format_time(t)})")
    bins = _venue_bins(run_, t, args.bins)
    amap = aggregate_map(run_.venues, bins, t)
    lmap = amap.total
    magnets = find_magnets(lmap, per_side=args.top)
    cum = {pct: venue_notional_within(run_.venues, t, pct, lmap.price_now) for pct in CUM_PCTS}
    span = t - 2016 * inputs.interval_ms
    report = {
        "time": format_time(int(lmap.time_ms) - inputs.interval_ms),
        "price": lmap.price_now,
        "symbol": inputs.symbol,
        "source": inputs.label,
        "model": model_mix(run_.venues, span, t),
        "preset": inputs.params.preset,
        "alive_long_usd": lmap.total_long,
        "alive_short_usd": lmap.total_short,
        "clusters_below": [_magnet_dict(m, amap) for m in magnets if m.side == LONG],
        "clusters_above": [_magnet_dict(m, amap) for m in magnets if m.side != LONG],
        "cumulative": {
            f"{pct:g}%": {
                "long_below_usd": sum(lo_ for lo_, _ in c.values()),
                "short_above_usd": sum(hi_ for _, hi_ in c.values()),
                "by_venue": {
                    v: {"long_below_usd": lo_, "short_above_usd": hi_} for v, (lo_, hi_) in c.items()
                },
            }
            for pct, c in cum.items()
        },
        "venues": _venue_rows(run_, amap),
        "coverage": aggregate_coverage(run_.venues, span, t).lines(),
        "note": "estimates from a model of open interest, volume and leverage, not exchange data; the sum of each "
        "venue's model (its own bars, open interest and liquidation formula), prices relative to the first venue's",
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_table(report))
    return 0


def _venue_bins(run_: VenueSetRun, t: int, n: int):  # type: ignore[no-untyped-def]
    """Bins over every venue's last 2016 bars before t, with the same wide margin as one venue's."""
    from liqdesk.core.liqmap import auto_bins

    lows, highs = [], []
    for vm in run_.venues:
        e = vm.engine
        bar = int(e.bars_closed_by([t])[0]) if e.n_bars else -1
        if bar < 0:
            continue
        lo = max(0, bar - 2016)
        lows.append(e.bar_column("low")[lo : bar + 1])
        highs.append(e.bar_column("high")[lo : bar + 1])
    import numpy as np

    return auto_bins(np.concatenate(lows), np.concatenate(highs), n, margin=0.5)


def _venue_rows(run_: VenueSetRun, amap: AggregateMap) -> list[dict]:
    rows = []
    for vm, m in zip(run_.venues, amap.maps, strict=True):
        e = vm.engine
        rows.append({
            "venue": vm.name, "symbol": vm.symbol, "source": vm.label,
            "time": None if m is None else format_time(int(m.time_ms)),
            "price": None if m is None else m.price_now,
            "alive_long_usd": 0.0 if m is None else m.total_long,
            "alive_short_usd": 0.0 if m is None else m.total_short,
            "model": e.model_label(max(0, m.bar - 2016), m.bar + 1) if m is not None else "no bars",
            "tape": vm.tape,
        })  # fmt: skip
    return rows


def _bins_around(run_, lo: int, bar: int, n: int):  # type: ignore[no-untyped-def]
    from liqdesk.core.liqmap import auto_bins

    c = run_.inputs.candles.take(slice(lo, bar + 1))
    return auto_bins(c.low, c.high, n, margin=0.5)


def _magnet_dict(m: Magnet, amap: AggregateMap | None = None) -> dict:
    d = {
        "price": round(m.price, 2),
        "low": round(m.low, 2),
        "high": round(m.high, 2),
        "distance_pct": round(m.distance_pct, 3),
        "usd": round(m.usd, 0),
        "main_tier": m.main_tier,
    }
    if amap is not None:
        d["by_venue"] = {v: round(u, 0) for v, u in amap.magnet_holders(m).items()}
    return d


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
            + _holders(m)
        )
    lines.append("clusters below (long liquidations):")
    for m in r["clusters_below"]:
        lines.append(
            f"  {m['price']:>12,.2f}  {m['distance_pct']:+7.2f}%  {_usd(m['usd']):>10}  mostly {m['main_tier']}"
            + _holders(m)
        )
    lines.append("cumulative within:")
    for k, v in r["cumulative"].items():
        lines.append(
            f"  ±{k:<4} long {_usd(v['long_below_usd']):>10}   short {_usd(v['short_above_usd']):>10}"
        )
    if "venues" in r:
        lines.append("venues:")
        for v in r["venues"]:
            price = "no bars" if v["price"] is None else f"{v['price']:,.2f}"
            lines.append(
                f"  {v['venue']:<12} {v['symbol']:<16} {price:>12}  long {_usd(v['alive_long_usd']):>10}  short "
                f"{_usd(v['alive_short_usd']):>10}  {v['model']}"
            )
        lines += [f"  {c}" for c in r.get("coverage", [])]
    return "\n".join(lines)


def _holders(m: dict) -> str:
    """Which venues hold a cluster: the largest shares first."""
    by = m.get("by_venue")
    total = sum(by.values()) if by else 0.0
    if not by or total <= 0:
        return ""
    parts = [f"{v} {u / total * 100:.0f} %" for v, u in sorted(by.items(), key=lambda x: -x[1]) if u > 0]
    return "  (" + ", ".join(parts) + ")"

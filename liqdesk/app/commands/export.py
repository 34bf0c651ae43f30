"""`liqdesk export`: the heatmap of a time range as NPZ or long-format CSV, for one venue or several summed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from liqdesk.app.modelrun import check_grid_budget
from liqdesk.app.options import add_data_options, check_count, input_files, parse_prices
from liqdesk.app.venue_inputs import VenueSetRun, run_and_render, venue_set, view_bins
from liqdesk.core.aggregate import AggregateGrid
from liqdesk.core.grid import PriceBins
from liqdesk.errors import ConfigError
from liqdesk.feeds.gridio import write_grid  # shared with the window's File → Export


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export the estimated liquidation heatmap (NPZ or CSV), of one venue or several summed",
        description=(
            "Export long and short USD notional of estimated liquidation levels alive per (time, price bin). "
            ".npz holds time_ms, price, long, short (T × P float32) and the model parameters; "
            ".csv is long format time_ms,price,long_usd,short_usd with zero cells omitted. With several venues "
            "(--exchange a,b,… or --venue files) the totals are the sum of the venues' models on one grid, and "
            "each venue's part is written beside them: venues, long_by_venue, short_by_venue (V × T × P) in "
            ".npz, columns long_usd_<venue>,short_usd_<venue> in .csv. Time columns are wall-clock spans of the "
            "bar interval, the same for every venue."
        ),
    )
    add_data_options(p)
    p.add_argument("--bins", type=int, default=400, metavar="N", help="price bins (default 400)")
    p.add_argument(
        "--prices",
        metavar="LO:HI",
        help="price range of the bins (default: the candles' range ±8 %%, which can leave out low-leverage tiers)",
    )
    p.add_argument(
        "--time-columns", type=int, metavar="N", help="resample time to N columns (default: one per bar)"
    )
    p.add_argument("--out", required=True, metavar="FILE", help="output file, .npz or .csv")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in (".npz", ".csv"):
        raise ConfigError(f"--out {out}: use a .npz or .csv file name")
    check_count(args.bins, "--bins", 1, 20_000)
    if args.time_columns is not None:
        check_count(args.time_columns, "--time-columns", 1, 10_000_000)
    prices = parse_prices(args.prices) if args.prices else None
    inputs = venue_set(args)
    slots = inputs.slot_count()
    columns = slots if args.time_columns is None else min(args.time_columns, slots)
    check_grid_budget(
        columns, args.bins, venues=len(inputs.venues)
    )  # before the model is built or the grid allocated
    bins = PriceBins(prices[0], prices[1], args.bins) if prices else view_bins(inputs, args.bins)
    run_, grid = run_and_render(inputs, bins, args.time_columns, by_venue=len(inputs.venues) > 1)
    written = write_grid(grid, out, export_meta(run_), inputs=input_files(args))
    note = f"; {written.note()}" if written.note() else ""
    venues = f" of {len(inputs.venues)} venues ({', '.join(inputs.names)})" if len(inputs.venues) > 1 else ""
    print(
        f"wrote {out} ({grid.long.shape[0]} columns × {grid.long.shape[1]} bins{venues}, {run_.model_label}; "
        f"source: {inputs.label}{note})",
        file=sys.stderr,
    )
    for line in outside_notes(run_, grid):
        print(f"note: {line}", file=sys.stderr)
    if len(inputs.venues) > 1:
        for line in run_.coverage().lines():
            print(f"coverage: {line}", file=sys.stderr)
    for n in inputs.notes:
        print(f"note: {n}", file=sys.stderr)
    return 0


def export_meta(run_: VenueSetRun) -> dict:
    """The export's parameters: source, model, coverage; with several venues each venue's own."""
    inputs = run_.inputs
    meta: dict = {
        "source": inputs.label,
        "symbol": inputs.symbol,
        "exchange": inputs.exchange,
        "model": run_.model_label,
        "params": inputs.params.describe(),
        "units": "USD notional of estimated liquidation levels alive at the end of each column",
        "time_columns": "wall-clock spans of the bar interval; time_ms = the open of each column's first bar slot",
    }
    if len(run_.venues) == 1:
        meta["coverage"] = run_.venues[0].engine.coverage()
    else:
        meta["venue_coverage"] = run_.coverage().to_dict()
        meta["venues"] = [
            {"name": vm.name, "symbol": vm.symbol, "source": vm.label, "tape": vm.tape,
             "brackets": vm.engine.params.brackets.describe()}
            for vm in run_.venues
        ]  # fmt: skip
    return meta


def outside_notes(run_: VenueSetRun, grid: AggregateGrid) -> list[str]:
    """A line when a large share of the notional alive at the last column lies outside the price range."""
    bars = grid.venue_bars[:, -1]
    alive = 0.0
    for vm, bar in zip(run_.venues, bars.tolist(), strict=True):
        if bar >= 0:
            alive += float(vm.engine.alive_at(bar)[1].sum())
    inside = float(grid.long[-1].sum() + grid.short[-1].sum())
    if alive <= 0 or inside >= alive * 0.99:
        return []
    return [
        f"{(1 - inside / alive) * 100:.1f} % of the notional alive at the last column lies outside "
        f"{grid.bins.lo:,.6g}–{grid.bins.hi:,.6g} (widen it with --prices LO:HI)"
    ]

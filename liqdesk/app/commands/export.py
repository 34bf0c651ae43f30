"""`liqdesk export`: the heatmap of a time range as NPZ or long-format CSV."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from liqdesk.app.modelrun import check_grid_budget, run_model
from liqdesk.app.options import add_data_options, check_count, input_files, load_inputs
from liqdesk.errors import ConfigError
from liqdesk.feeds.gridio import write_grid  # shared with the window's File → Export


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export the estimated liquidation heatmap (NPZ or CSV)",
        description=(
            "Export long and short USD notional of estimated liquidation levels alive per (time, price bin). "
            ".npz holds time_ms, price, long, short (T × P float32) and the model parameters; "
            ".csv is long format time_ms,price,long_usd,short_usd with zero cells omitted."
        ),
    )
    add_data_options(p)
    p.add_argument("--bins", type=int, default=400, metavar="N", help="price bins (default 400)")
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
    inputs = load_inputs(args)
    start_bar, end_bar = inputs.view_bars()
    columns = (
        end_bar - start_bar if args.time_columns is None else min(args.time_columns, end_bar - start_bar)
    )
    check_grid_budget(columns, args.bins)  # before the model is built or the grid allocated
    run_ = run_model(inputs)
    grid = run_.grid(args.bins, args.time_columns)
    meta = {
        "source": inputs.label,
        "symbol": inputs.symbol,
        "exchange": inputs.exchange,
        "model": run_.model_label,
        "coverage": run_.engine.coverage(),
        "params": inputs.params.describe(),
        "units": "USD notional of estimated liquidation levels alive at the end of each column",
    }
    written = write_grid(grid, out, meta, inputs=input_files(args))
    note = f"; {written.note()}" if written.note() else ""
    print(
        f"wrote {out} ({grid.long.shape[0]} columns × {grid.long.shape[1]} bins, {run_.model_label}; "
        f"source: {inputs.label}{note})",
        file=sys.stderr,
    )
    for note in inputs.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0

"""`liqdesk export`: the heatmap of a time range as NPZ or long-format CSV."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from liqdesk.app.modelrun import run_model
from liqdesk.app.options import add_data_options, load_inputs
from liqdesk.core.grid import HeatmapGrid
from liqdesk.errors import ConfigError, DataError


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
    if args.bins < 1 or args.bins > 20_000:
        raise ConfigError("--bins must be between 1 and 20000")
    if args.time_columns is not None and args.time_columns < 1:
        raise ConfigError("--time-columns must be at least 1")
    inputs = load_inputs(args)
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
    write_grid(grid, out, meta)
    print(
        f"wrote {out} ({grid.long.shape[0]} columns × {grid.long.shape[1]} bins, {run_.model_label}; "
        f"source: {inputs.label})",
        file=sys.stderr,
    )
    for note in inputs.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def write_grid(grid: HeatmapGrid, out: Path, meta: dict) -> None:
    """Write a grid as .npz or .csv (the File menu's export uses the same function)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() == ".npz":
            with out.open("wb") as fh:
                np.savez_compressed(
                    fh,
                    time_ms=grid.time_ms.astype(np.int64),
                    price=grid.price,
                    price_edges=grid.bins.edges,
                    long=grid.long,
                    short=grid.short,
                    params=np.array(json.dumps(meta, default=float)),
                )
        else:
            t_idx, p_idx = np.nonzero((grid.long > 0) | (grid.short > 0))
            rows = np.column_stack(
                [grid.time_ms[t_idx], grid.price[p_idx], grid.long[t_idx, p_idx], grid.short[t_idx, p_idx]]
            )
            with out.open("w", newline="") as fh:
                fh.write("time_ms,price,long_usd,short_usd\n")
                np.savetxt(fh, rows, fmt=["%d", "%.2f", "%.2f", "%.2f"], delimiter=",")
    except OSError as exc:
        raise DataError(f"cannot write {out}: {exc.strerror or exc}") from None

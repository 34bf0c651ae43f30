"""Writers for exported model data: the heatmap grid (`liqdesk export`, File → Export) and the
liquidation map at one instant (File → Export). Both in .npz or .csv, chosen by the suffix.

Heatmap: .npz holds time_ms (T), price (P bin centres), price_edges (P+1), long and short (T × P
float32 USD) and params (JSON text with source, model and parameters); .csv is long format
`time_ms,price,long_usd,short_usd`, one row per non-empty cell.

Liquidation map: .npz holds time_ms (scalar, the map's bar open time), price_now, price (P),
price_edges (P+1), tiers (K labels), long_by_tier and short_by_tier (K × P USD), long, short,
cum_long, cum_short (P) and params (JSON text); .csv has one row per price bin with any notional:
`price,long_usd,short_usd,cum_long_usd,cum_short_usd,long_<tier>…,short_<tier>…`, preceded by
`# key: value` comment lines (time_ms, price_now, source, model).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from liqdesk.core.grid import HeatmapGrid
from liqdesk.core.liqmap import LiquidationMap
from liqdesk.errors import ConfigError, DataError

SUFFIXES = (".npz", ".csv")


def check_suffix(out: Path) -> None:
    if out.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"{out}: use a .npz or .csv file name")


@contextlib.contextmanager
def _writing(out: Path) -> Iterator[str]:
    """Check the suffix and make the folder; yields the suffix, and an OS error while writing
    becomes a DataError naming the file."""
    check_suffix(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        yield out.suffix.lower()
    except OSError as exc:
        raise DataError(f"cannot write {out}: {exc.strerror or exc}") from None


def write_grid(grid: HeatmapGrid, out: Path, meta: dict) -> None:
    """Write a grid as .npz or .csv (the File menu's export uses the same function)."""
    with _writing(out) as suffix:
        if suffix == ".npz":
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


def write_map(lmap: LiquidationMap, out: Path, meta: dict[str, Any]) -> None:
    """Write one liquidation map as .npz or .csv (format in the module docstring)."""
    with _writing(out) as suffix:
        if suffix == ".npz":
            with out.open("wb") as fh:
                np.savez_compressed(
                    fh,
                    time_ms=np.int64(lmap.time_ms),
                    price_now=np.float64(lmap.price_now),
                    price=lmap.bins.centers,
                    price_edges=lmap.bins.edges,
                    tiers=np.array(lmap.tier_labels),
                    long_by_tier=lmap.long_by_tier,
                    short_by_tier=lmap.short_by_tier,
                    long=lmap.long,
                    short=lmap.short,
                    cum_long=lmap.cum_long,
                    cum_short=lmap.cum_short,
                    params=np.array(json.dumps(meta, default=float)),
                )
        else:
            keep = (lmap.long > 0) | (lmap.short > 0)
            cols = [lmap.bins.centers, lmap.long, lmap.short, lmap.cum_long, lmap.cum_short]
            cols += list(lmap.long_by_tier) + list(lmap.short_by_tier)
            rows = np.column_stack([c[keep] for c in cols])
            header = ["price", "long_usd", "short_usd", "cum_long_usd", "cum_short_usd"]
            header += [f"long_{t}" for t in lmap.tier_labels] + [f"short_{t}" for t in lmap.tier_labels]
            with out.open("w", newline="") as fh:
                fh.write(f"# time_ms: {lmap.time_ms}\n# price_now: {lmap.price_now}\n")
                for key in ("symbol", "exchange", "source", "model"):
                    if key in meta:
                        fh.write(f"# {key}: {str(meta[key]).replace(chr(10), ' ')}\n")
                fh.write(",".join(header) + "\n")
                np.savetxt(fh, rows, fmt="%.2f", delimiter=",")

"""Writers for exported model data: the heatmap grid (`liqdesk export`, File → Export) and the
liquidation map at one instant (File → Export). Both in .npz or .csv, chosen by the suffix.

Heatmap: .npz holds time_ms (T), price (P bin centres), price_edges (P+1), long and short (T × P
float32 USD) and params (JSON text with source, model and parameters); .csv is long format
`time_ms,price,long_usd,short_usd`, one row per non-empty cell. The heatmap of several venues (the aggregate)
adds each venue's part: in .npz `venues` (V names), `long_by_venue` and `short_by_venue` (V × T × P float32;
summed over venues they give long and short, to float32 rounding); in .csv two columns per venue after the
totals, `long_usd_<venue>,short_usd_<venue>`, on the same rows (cells where the total is zero omitted).

Liquidation map: .npz holds time_ms (scalar, the map's bar open time), price_now, price (P),
price_edges (P+1), tiers (K labels), long_by_tier and short_by_tier (K × P USD), long, short,
cum_long, cum_short (P) and params (JSON text); .csv has one row per price bin with any notional:
`price,long_usd,short_usd,cum_long_usd,cum_short_usd,long_<tier>…,short_<tier>…`, preceded by
`# key: value` comment lines (time_ms, price_now, source, model).

Both are written atomically (liqdesk.feeds.atomic): a failed or interrupted export leaves the previous file.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from liqdesk.core.aggregate import AggregateGrid
from liqdesk.core.grid import HeatmapGrid
from liqdesk.core.liqmap import LiquidationMap
from liqdesk.errors import ConfigError, DataError
from liqdesk.feeds.atomic import AtomicWrite, WriteResult

SUFFIXES = (".npz", ".csv")
# Bytes a heatmap cell costs while it is built and written: long and short as float32. Exports refuse a grid
# above the budget before computing it (see grid_bytes).
GRID_CELL_BYTES = 8
CSV_BLOCK_CELLS = 2_000_000  # the CSV is written in blocks of columns of about this many cells


def check_suffix(out: Path) -> None:
    if out.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"{out}: use a .npz or .csv file name")


def grid_bytes(columns: int, bins: int) -> int:
    """Memory a (columns × bins) heatmap needs in liqdesk's own arrays."""
    return int(columns) * int(bins) * GRID_CELL_BYTES


@contextlib.contextmanager
def _writing(out: Path, inputs: Iterable[Path | str | None]) -> Iterator[tuple[str, AtomicWrite]]:
    """Check the suffix, then write atomically (a temp file renamed into place when complete: a full disk or
    an interrupt never leaves a partial file, nor destroys the previous one); an OS error becomes a DataError
    naming the file."""
    check_suffix(out)
    try:
        with AtomicWrite(out, inputs=inputs) as w:
            yield out.suffix.lower(), w
    except OSError as exc:
        reason = exc.strerror or str(exc)
        kept = " (the previous file is unchanged)" if out.exists() else ""
        raise DataError(f"cannot write {out}: {reason}{kept}") from None


def write_grid(
    grid: HeatmapGrid | AggregateGrid, out: Path, meta: dict, *, inputs: Iterable[Path | str | None] = ()
) -> WriteResult:
    """Write a grid as .npz or .csv (the File menu's export uses the same function); an aggregate of several
    venues with its venues' parts (module notes). ``inputs``: files this run read, which the output must not
    replace."""
    parts = _venue_parts(grid)
    with _writing(out, inputs) as (suffix, w):
        if suffix == ".npz":
            arrays: dict[str, np.ndarray] = {
                "time_ms": grid.time_ms.astype(np.int64),
                "price": grid.price,
                "price_edges": grid.bins.edges,
                "long": grid.long,
                "short": grid.short,
                "params": np.array(json.dumps(meta, default=float)),
            }
            if parts is not None:
                arrays.update(venues=np.array(parts[0]), long_by_venue=parts[1], short_by_venue=parts[2])
            with w.open("wb") as fh:
                np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]
        else:
            with w.open("w", newline="") as fh:
                header = ["time_ms", "price", "long_usd", "short_usd"]
                if parts is not None:
                    header += [f"{side}_usd_{v}" for v in parts[0] for side in ("long", "short")]
                fh.write(",".join(header) + "\n")
                price = grid.price
                step = max(1, CSV_BLOCK_CELLS // max(grid.long.shape[1], 1))
                for t0 in range(0, grid.long.shape[0], step):
                    lo, sh = grid.long[t0 : t0 + step], grid.short[t0 : t0 + step]
                    t_idx, p_idx = np.nonzero((lo > 0) | (sh > 0))
                    cols = [grid.time_ms[t0 + t_idx], price[p_idx], lo[t_idx, p_idx], sh[t_idx, p_idx]]
                    if parts is not None:
                        for i in range(len(parts[0])):
                            cols += [parts[1][i, t0 + t_idx, p_idx], parts[2][i, t0 + t_idx, p_idx]]
                    rows = np.column_stack(cols)
                    np.savetxt(fh, rows, fmt=["%d"] + ["%.2f"] * (len(cols) - 1), delimiter=",")
    assert w.result is not None
    return w.result


def _venue_parts(grid: HeatmapGrid | AggregateGrid) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """(venues, long_by_venue, short_by_venue) of an aggregate of several venues, else None."""
    if not isinstance(grid, AggregateGrid) or len(grid.venues) < 2:
        return None
    if grid.long_by_venue is None or grid.short_by_venue is None:
        return None
    return list(grid.venues), grid.long_by_venue, grid.short_by_venue


def write_map(
    lmap: LiquidationMap, out: Path, meta: dict[str, Any], *, inputs: Iterable[Path | str | None] = ()
) -> WriteResult:
    """Write one liquidation map as .npz or .csv (format in the module docstring)."""
    with _writing(out, inputs) as (suffix, w):
        if suffix == ".npz":
            with w.open("wb") as fh:
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
            with w.open("w", newline="") as fh:
                fh.write(f"# time_ms: {lmap.time_ms}\n# price_now: {lmap.price_now}\n")
                for key in ("symbol", "exchange", "source", "model"):
                    if key in meta:
                        fh.write(f"# {key}: {str(meta[key]).replace(chr(10), ' ')}\n")
                fh.write(",".join(header) + "\n")
                np.savetxt(fh, rows, fmt="%.2f", delimiter=",")
    assert w.result is not None
    return w.result

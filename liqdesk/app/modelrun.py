"""Build the engine for a set of inputs and cut the view out of it (shared by the sub-commands)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from liqdesk.app.options import Inputs, choose_backend
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import HeatmapGrid, PriceBins, render_grid
from liqdesk.core.liqmap import auto_bins
from liqdesk.errors import ConfigError
from liqdesk.feeds.gridio import grid_bytes

# The most memory one request may ask for (a heatmap, or the maps of a calibration); larger ones are refused
# before anything is allocated, with the numbers and the option that makes them fit.
GRID_BUDGET_BYTES = 1 << 30
# calibration's peak per (snapshot, price cell): densities, cumulative rows and the scoring's temporaries
# (measured: 142 bytes a cell with `calibrate --every 5m --bins 1000` and `--bins 2000` on the 1m sample)
CALIBRATION_CELL_BYTES = 144


def check_grid_budget(columns: int, bins: int, budget: int = GRID_BUDGET_BYTES, venues: int = 1) -> None:
    """ConfigError (with the numbers and what to change) when a columns × bins heatmap exceeds the budget
    (with several venues: the totals and each venue's part)."""
    grids = 1 if venues <= 1 else venues + 1
    need = grid_bytes(columns, bins) * grids
    if need <= budget:
        return
    fits = max(1, budget // (grid_bytes(1, bins) * grids))
    raise ConfigError(
        f"the heatmap would be {columns:,} columns × {bins:,} bins"
        + (f" × {grids} grids (the total and {venues} venues' parts)" if grids > 1 else "")
        + f" = {_size(need)}, over the {_size(budget)} "
        f"memory budget; resample time with --time-columns (at most {fits:,} columns at {bins:,} bins, e.g. "
        f"--time-columns {min(fits, 2000)}), or use a shorter --range or fewer --bins"
    )


def check_calibration_budget(snapshots: int, bins: int, budget: int = GRID_BUDGET_BYTES) -> None:
    """The same budget for calibrate's snapshot maps (snapshots × cells)."""
    need = snapshots * bins * CALIBRATION_CELL_BYTES
    if need <= budget:
        return
    fits = max(1, budget // (bins * CALIBRATION_CELL_BYTES))
    raise ConfigError(
        f"calibration would hold {snapshots:,} snapshots × {bins:,} cells = {_size(need)}, over the "
        f"{_size(budget)} memory budget; space the snapshots with --every (at most {fits:,} snapshots), "
        "or use a shorter --range or fewer --bins"
    )


def _size(n: int) -> str:
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div:
            return f"{n / div:,.3g} {unit}"
    return f"{n} B"


@dataclass
class ModelRun:
    inputs: Inputs
    engine: LiquidationEngine
    start_bar: int
    end_bar: int

    @property
    def model_label(self) -> str:
        return self.engine.model_label(self.start_bar, self.end_bar)

    def view_bins(self, n: int) -> PriceBins:
        c = self.inputs.candles.take(slice(self.start_bar, self.end_bar))
        return auto_bins(c.low, c.high, n)

    def grid(self, bins: int, columns: int | None = None) -> HeatmapGrid:
        return render_grid(self.engine, self.view_bins(bins), self.start_bar, self.end_bar, columns)


def check_backend(inputs: Inputs) -> None:
    """--backend is checked by the headless commands too (a cupy that cannot run is a one-line
    error), but they need float USD grids and per-level numbers, which the CPU engine computes;
    the device pipeline returns display images (window and snapshot)."""
    check_backend_choice(inputs.backend, inputs.notes)


def check_backend_choice(requested: str, notes: list[str]) -> None:
    backend, _ = choose_backend(requested, os.environ)
    if backend.name != "numpy":
        notes.append(f"--backend {backend.name}: this command computes on the CPU engine (float output)")


def run_model(inputs: Inputs) -> ModelRun:
    check_backend(inputs)
    engine = LiquidationEngine.build(inputs.candles, inputs.open_interest, inputs.params)
    start, end = inputs.view_bars()
    return ModelRun(inputs, engine, start, end)

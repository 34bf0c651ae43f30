"""Build the engine for a set of inputs and cut the view out of it (shared by the sub-commands)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from liqdesk.app.options import Inputs, choose_backend
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import HeatmapGrid, PriceBins, render_grid
from liqdesk.core.liqmap import auto_bins


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
    backend, _ = choose_backend(inputs.backend, os.environ)
    if backend.name != "numpy":
        inputs.notes.append(
            f"--backend {backend.name}: this command computes on the CPU engine (float output)"
        )


def run_model(inputs: Inputs) -> ModelRun:
    check_backend(inputs)
    engine = LiquidationEngine.build(inputs.candles, inputs.open_interest, inputs.params)
    start, end = inputs.view_bars()
    return ModelRun(inputs, engine, start, end)

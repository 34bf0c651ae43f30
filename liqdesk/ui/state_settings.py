"""The state file's settings as a chart pane's view settings and model overrides (no Qt)."""

from __future__ import annotations

from typing import Any

from liqdesk.feeds.state import AppState
from liqdesk.ui import data as data_mod
from liqdesk.ui import theme
from liqdesk.ui.view_settings import ViewSettings

# Model fields of the state file that go to ModelParams over the preset's.
MODEL_FIELDS = ("taker_floor", "half_life_h", "churn", "volume_half_life_h", "entry_points")


def settings_from_state(state: AppState, spec: dict[str, Any]) -> ViewSettings:
    """A pane's ViewSettings from the state file (its market spec plus the shared model/colour/appearance)."""
    cmap = state.get("colors", "colormap")
    levels = state.get("colors", "levels")
    return ViewSettings(
        symbol=str(spec.get("symbol", "")),
        timeframe=str(spec.get("timeframe", "5m")),
        range_name=str(spec.get("range", data_mod.DEFAULT_RANGE)),
        preset=state.get("model", "preset"),
        colormap=cmap if cmap in theme.COLORMAPS else theme.DEFAULT_COLORMAP,
        transform=state.get("colors", "transform"),
        lock_levels=bool(state.get("colors", "levels_locked")),
        levels=(float(levels[0]), float(levels[1])) if levels else None,
        utc=bool(state.get("appearance", "utc")),
        show_actual_heat=bool(state.get("appearance", "actual_heat")),
        theme=state.get("appearance", "theme"),
        max_bins=int(state.get("model", "bins")),
        model_overrides=model_overrides(state),
    )


def model_overrides(state: AppState) -> dict[str, Any]:
    return {k: state.get("model", k) for k in MODEL_FIELDS}

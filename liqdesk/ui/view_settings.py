"""What a chart pane shows and how: the user's choices, kept in the state file."""

from __future__ import annotations

from dataclasses import dataclass, field

from liqdesk.ui import data as data_mod
from liqdesk.ui import theme

MAX_BINS = 1000
DEFAULT_PRESET = "coinglass"


@dataclass
class ViewSettings:
    symbol: str = ""
    timeframe: str = "5m"
    range_name: str = data_mod.DEFAULT_RANGE
    preset: str = DEFAULT_PRESET
    colormap: str = theme.DEFAULT_COLORMAP
    transform: str = "sqrt"
    lock_levels: bool = False
    levels: tuple[float, float] | None = None
    utc: bool = False
    auto_y: bool = True
    bin_px: float = 3.0  # screen pixels per price bin: Coinglass-like blocks, not 1-px lines
    show_sweeps: bool = True
    show_real: bool = True
    show_actual_heat: bool = False  # sampled positions (Hyperliquid) as the heatmap's newest columns
    theme: str = "dark"  # theme.THEMES
    max_bins: int = MAX_BINS  # price bins of the visible heatmap at most (settings: Model → bins)
    persist: bool = True  # price lines and trader prefs from/to the state file (off: snapshots, tests)
    # ModelParams fields over the preset's (settings dialog, state file): known before the first build, so the
    # engine is built once at start
    model_overrides: dict[str, object] = field(default_factory=dict)

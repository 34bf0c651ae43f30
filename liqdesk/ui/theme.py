"""Colours, colour maps and the dark stylesheet: one place for the look."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

BACKGROUND = "#0d1017"  # window and panels
CHART_BACKGROUND = "#150b24"  # heatmap area: the "empty" colour of the default map (dark purple)
PANEL_BACKGROUND = "#0f1219"
GRID = (255, 255, 255, 18)
AXIS = "#8a93a6"
TEXT = "#c9d1e0"
TEXT_DIM = "#7c8699"
ACCENT = "#f0b90b"

CANDLE_UP = "#26a69a"
CANDLE_DOWN = "#ef5350"
# Opaque colours only where an item covers much of the chart: translucent fills and grid lines
# cost ~15 ms a frame each in Qt's raster engine here (measured), opaque ones well under 1 ms.
VOLUME_UP = "#1d7a72"
VOLUME_DOWN = "#a8403e"

LONG_COLOR = "#ff5c6c"  # long liquidations (below price): red family
SHORT_COLOR = "#2ee6a6"  # short liquidations (above price): green family
PRICE_LINE = "#f0b90b"
CROSSHAIR = "#8c93a8"

# Estimated sweep bubbles vs real liquidation markers: different shape, fill and colour family.
SWEEP_LONG = (255, 120, 90)
SWEEP_SHORT = (80, 220, 255)
REAL_LONG = (255, 40, 140)
REAL_SHORT = (0, 255, 120)
# The real liquidations of each venue of an aggregated market (apart from the heatmap's colours and each other).
VENUE_COLORS = {"binanceusdm": "#f3ba2f", "bybit": "#e8e8e8", "okx": "#4d9bff", "hyperliquid": "#5ff0c8"}
VENUE_OTHER_COLORS = ["#c792ea", "#ff8a65", "#9ccc65", "#4dd0e1"]


def venue_color(name: str, index: int = 0) -> str:
    return VENUE_COLORS.get(name, VENUE_OTHER_COLORS[index % len(VENUE_OTHER_COLORS)])


# Stacked tier colours of the liquidation map, low → high leverage.
TIER_COLORS = ["#5b6cff", "#22b8cf", "#2fd27a", "#c7e23a", "#f7b731", "#fb8c3c", "#f5565b", "#d94fd6"]

# name → (label, stops). Position 0 of the LUT is reserved for "no level here" (transparent).
COLORMAPS: dict[str, tuple[str, list[tuple[float, str]]]] = {
    "liqdesk": (
        "Purple-teal-yellow",
        [
            (0.0, "#2b0f4c"),
            (0.25, "#4a1f86"),
            (0.5, "#1f7f96"),
            (0.72, "#22b59a"),
            (0.88, "#a6dc4c"),
            (1.0, "#ffe833"),
        ],
    ),
    "viridis": ("Viridis", []),
    "inferno": ("Inferno", []),
    "longshort": ("Long/short two-tone", []),
}
DEFAULT_COLORMAP = "liqdesk"


def colormap(name: str) -> pg.ColorMap:
    """A pyqtgraph ColorMap for the colour-bar display of `name`."""
    if name == "liqdesk":
        stops = COLORMAPS[name][1]
        return pg.ColorMap([p for p, _ in stops], [pg.mkColor(c) for _, c in stops])
    if name in ("viridis", "inferno"):
        return pg.colormap.get(name)
    if name == "longshort":
        # Shown on the colour bar as intensity only; the image uses the split LUT below.
        return pg.ColorMap([0.0, 1.0], [pg.mkColor("#2a2a38"), pg.mkColor("#f0f0f0")])
    raise ValueError(f"unknown colour map {name!r}")


def lut(name: str) -> np.ndarray:
    """256 × 4 uint8 lookup table; entry 0 transparent (empty cell).

    For the two-tone map, codes 1..127 are long intensity (red ramp) and 128..255 short (green),
    matching the worker's split quantisation.
    """
    table = np.zeros((256, 4), np.uint8)
    if name == "longshort":
        ramp = np.linspace(0.12, 1.0, 127)[:, None]
        lo = np.array([40, 12, 30])
        table[1:128, :3] = (lo + ramp * (np.array([255, 70, 90]) - lo)).astype(np.uint8)
        table[128:256, :3] = (
            lo + np.linspace(0.12, 1.0, 128)[:, None] * (np.array([60, 255, 160]) - lo)
        ).astype(np.uint8)
        table[1:, 3] = 255
        return table
    table[1:] = colormap(name).getLookupTable(nPts=255, alpha=True)
    table[1:, 3] = 255
    return table


def configure_pyqtgraph() -> None:
    # Row-major images match the worker's (price bins, time columns) arrays without a transpose.
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False, background=BACKGROUND, foreground=AXIS)


STYLESHEET = f"""
QMainWindow, QWidget {{ background: {BACKGROUND}; color: {TEXT}; font-size: 12px; }}
QToolBar {{ background: #121620; border: none; border-bottom: 1px solid #1f2533; spacing: 6px; padding: 3px 6px; }}
QToolBar QLabel {{ color: {TEXT_DIM}; padding-left: 4px; }}
QComboBox {{ background: #181d29; border: 1px solid #262d3d; border-radius: 3px; padding: 2px 8px; color: {TEXT}; }}
QComboBox:hover {{ border-color: #3a4358; }}
QComboBox QAbstractItemView {{ background: #181d29; color: {TEXT}; selection-background-color: #2b3550; }}
QCheckBox {{ color: {TEXT}; spacing: 4px; }}
QToolButton {{ color: {TEXT}; background: #181d29; border: 1px solid #262d3d; border-radius: 3px; padding: 2px 8px; }}
QToolButton:checked {{ background: #2b3550; border-color: {ACCENT}; }}
QStatusBar {{ background: #121620; color: {TEXT_DIM}; border-top: 1px solid #1f2533; }}
QStatusBar QLabel {{ color: {TEXT_DIM}; padding: 0 8px; }}
QLabel#notice {{ color: #101010; background: {ACCENT}; border-radius: 3px; padding: 1px 8px; font-weight: 600; }}
QLabel#readout {{ background: rgba(13, 16, 23, 215); border: 1px solid #2a3142; border-radius: 4px;
                  padding: 6px 8px; color: {TEXT}; font-family: "DejaVu Sans Mono", monospace; font-size: 11px; }}
"""


# -- dark and light themes (switchable live) ---------------------------------------------------------------------
# The heatmap's plot area keeps the colour map's own "empty" colour in both themes (the map is what a trader reads;
# its low end is dark), so candles and markers keep their contrast; panels, axes, toolbars, menus and the status
# bar follow the theme. Font sizes are in points (crisp and proportional on high-DPI screens); pens are cosmetic.
PALETTES: dict[str, dict[str, str]] = {
    "dark": {
        "window": BACKGROUND, "panel": PANEL_BACKGROUND, "bar": "#121620", "border": "#1f2533",
        "control": "#181d29", "control_border": "#262d3d", "hover": "#3a4358", "selection": "#2b3550",
        "text": TEXT, "text_dim": TEXT_DIM, "axis": AXIS, "chart": CHART_BACKGROUND, "map": PANEL_BACKGROUND,
        "readout": "rgba(13, 16, 23, 215)", "grid": "#ffffff12", "marker_pen": "#ffffff",
        "heading": ACCENT, "warning_text": "#ffcc66", "warning_bg": "#2a2412", "warning_border": "#4a3d18",
        "legend": "#0d1017c8", "legend_border": "#2a3142",  # legend: pyqtgraph #RRGGBBAA
    },
    "light": {
        "window": "#f4f5f8", "panel": "#ffffff", "bar": "#e9ecf2", "border": "#cdd2dc",
        "control": "#ffffff", "control_border": "#b9c0cc", "hover": "#8a93a6", "selection": "#cfe0ff",
        "text": "#1b2230", "text_dim": "#566074", "axis": "#3d4657", "chart": CHART_BACKGROUND, "map": "#fbfbfd",
        "readout": "rgba(255, 255, 255, 230)", "grid": "#0000001a", "marker_pen": "#ffffff",
        "heading": "#9a6700", "warning_text": "#7a5200", "warning_bg": "#fff4d6", "warning_border": "#e6c770",
        "legend": "#ffffffe6", "legend_border": "#b9c0cc",
    },
}  # fmt: skip
THEMES = tuple(PALETTES)
_current = "dark"


def current_theme() -> str:
    return _current


def set_theme(name: str) -> dict[str, str]:
    """Make `name` the current theme (pyqtgraph's defaults for new items follow) and return its palette."""
    global _current
    if name not in PALETTES:
        raise ValueError(f"unknown theme {name!r}; available: {', '.join(THEMES)}")
    _current = name
    p = PALETTES[name]
    # The text colours other modules read at draw time (theme.TEXT_DIM in chart titles and labels, …) follow.
    global TEXT, TEXT_DIM, AXIS
    TEXT, TEXT_DIM, AXIS = p["text"], p["text_dim"], p["axis"]
    pg.setConfigOptions(background=p["window"], foreground=p["axis"])
    return p


def palette(name: str | None = None) -> dict[str, str]:
    return PALETTES[name or _current]


def stylesheet(name: str | None = None) -> str:
    """The whole application stylesheet for a theme: panels, toolbars, menus, docks, dialogs, tabs."""
    p = PALETTES[name or _current]
    return f"""
QMainWindow, QWidget {{ background: {p["window"]}; color: {p["text"]}; font-size: 9pt; }}
QToolBar {{ background: {p["bar"]}; border: none; border-bottom: 1px solid {p["border"]}; spacing: 6px; padding: 3px 6px; }}
QToolBar QLabel {{ color: {p["text_dim"]}; padding-left: 4px; }}
QComboBox, QLineEdit, QSpinBox, QDoubleSpinBox, QPlainTextEdit {{ background: {p["control"]};
    border: 1px solid {p["control_border"]}; border-radius: 3px; padding: 2px 6px; color: {p["text"]}; }}
QComboBox:hover, QLineEdit:hover {{ border-color: {p["hover"]}; }}
QComboBox QAbstractItemView {{ background: {p["control"]}; color: {p["text"]}; selection-background-color: {p["selection"]}; }}
QCheckBox, QRadioButton {{ color: {p["text"]}; spacing: 4px; }}
QCheckBox::indicator {{ width: 11px; height: 11px; border: 1px solid {p["hover"]}; border-radius: 2px;
    background: {p["control"]}; }}
QCheckBox::indicator:checked {{ background: {ACCENT}; border-color: {ACCENT}; }}
QToolButton, QPushButton {{ color: {p["text"]}; background: {p["control"]}; border: 1px solid {p["control_border"]};
    border-radius: 3px; padding: 3px 10px; }}
QToolButton:hover, QPushButton:hover {{ border-color: {p["hover"]}; }}
QToolButton:checked {{ background: {p["selection"]}; border-color: {ACCENT}; }}
QPushButton:default {{ border-color: {ACCENT}; }}
QStatusBar {{ background: {p["bar"]}; color: {p["text_dim"]}; border-top: 1px solid {p["border"]}; }}
QStatusBar QLabel {{ color: {p["text_dim"]}; padding: 0 8px; }}
QLabel#notice {{ color: #101010; background: {ACCENT}; border-radius: 3px; padding: 1px 8px; font-weight: 600; }}
QLabel#settingsWarning {{ color: #101010; background: #ff9f43; border-radius: 3px; padding: 1px 8px; font-weight: 600; }}
QLabel#readout {{ background: {p["readout"]}; border: 1px solid {p["border"]}; border-radius: 4px;
    padding: 6px 8px; color: {p["text"]}; font-family: "DejaVu Sans Mono", monospace; font-size: 8pt; }}
QMenuBar {{ background: {p["bar"]}; color: {p["text"]}; border-bottom: 1px solid {p["border"]}; }}
QMenuBar::item:selected {{ background: {p["selection"]}; }}
QMenu {{ background: {p["control"]}; color: {p["text"]}; border: 1px solid {p["control_border"]}; }}
QMenu::item {{ padding: 4px 22px 4px 18px; }}
QMenu::item:selected {{ background: {p["selection"]}; }}
QMenu::item:disabled {{ color: {p["text_dim"]}; }}
QMenu::separator {{ height: 1px; background: {p["border"]}; margin: 3px 6px; }}
QDockWidget {{ color: {p["text"]}; }}
QDockWidget::title {{ background: {p["bar"]}; padding: 4px 6px; }}
QTableWidget, QTableView {{ background: {p["panel"]}; gridline-color: {p["border"]}; alternate-background-color: {p["bar"]}; }}
QHeaderView::section {{ background: {p["bar"]}; color: {p["text_dim"]}; border: none; padding: 3px 6px; }}
QTabWidget::pane {{ border: none; }}
QTabBar::tab {{ background: {p["bar"]}; color: {p["text_dim"]}; padding: 5px 14px; border: 1px solid {p["border"]};
    border-bottom: none; margin-right: 2px; border-top-left-radius: 4px; border-top-right-radius: 4px; }}
QTabBar::tab:selected {{ background: {p["window"]}; color: {p["text"]}; border-top: 2px solid {ACCENT}; }}
QTabBar::tab:hover {{ color: {p["text"]}; }}
QGroupBox {{ border: 1px solid {p["border"]}; border-radius: 4px; margin-top: 10px; padding-top: 6px; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; color: {p["text_dim"]}; }}
QTextBrowser {{ background: {p["panel"]}; border: 1px solid {p["border"]}; }}
"""

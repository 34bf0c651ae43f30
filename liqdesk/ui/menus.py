"""The chart pane's menus (File, Lines, Alerts, Model) and the toolbar's Lines button.

Every action is made with `add_action`, so its shortcut works while the menu bar is hidden (a pane inside
the workspace, whose own menu bar shows the current pane's menus).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6 import QtCore, QtGui, QtWidgets

from liqdesk.ui.actions import add_action
from liqdesk.ui.actual_positions import ActualPositionsLayer
from liqdesk.ui.alerts import AlertDock
from liqdesk.ui.capture import Capture
from liqdesk.ui.lines import KINDS, LinesController
from liqdesk.ui.model_check import ModelCheckDock


@dataclass
class PaneMenus:
    lines_menu: QtWidgets.QMenu
    line_actions: dict[str, QtGui.QAction]  # "Add stop line" and the others, by line kind
    hires_action: QtGui.QAction  # high-resolution screenshots
    actual_heat_action: QtGui.QAction | None = None  # sampled positions as the heatmap's newest columns


def build_menus(
    window: QtWidgets.QMainWindow,
    toolbar: QtWidgets.QToolBar,
    capture: Capture,
    lines: LinesController,
    alert_dock: AlertDock,
    model_check: ModelCheckDock,
    open_position_form: Callable[[], None],
    actual: ActualPositionsLayer | None = None,
) -> PaneMenus:
    bar = window.menuBar()
    file = bar.addMenu("File")
    add_action(window, file, "Save screenshot", capture.save_screenshot, "Ctrl+S",
               "Save the chart as PNG in the last folder used")  # fmt: skip
    add_action(window, file, "Save screenshot as…", capture.save_screenshot_as, "Ctrl+Shift+S")
    add_action(window, file, "Copy screenshot", capture.copy_screenshot, "Ctrl+Shift+C")
    hires = QtGui.QAction("High-resolution screenshots (2×)", window)
    hires.setCheckable(True)
    hires.setChecked(capture.scale >= 2)
    hires.toggled.connect(lambda on: capture.set_scale(2.0 if on else 1.0))
    file.addAction(hires)
    file.addSeparator()
    add_action(window, file, "Export visible heatmap…", capture.export_heatmap_dialog, "Ctrl+E",
               "The visible bars and prices as .npz or .csv (same format as liqdesk export)")  # fmt: skip
    add_action(window, file, "Export liquidation map…", capture.export_map_dialog, "Ctrl+Shift+E")
    file.addSeparator()
    add_action(window, file, "Quit", lambda: window.window().close(), "Ctrl+Q")  # the workspace, when in one

    menu = bar.addMenu("Lines")
    line_actions: dict[str, QtGui.QAction] = {}

    def add_line(kind: str) -> Callable[[], object]:
        return lambda: lines.add_line(kind)

    for kind, key in (("stop", "Alt+S"), ("target", "Alt+T"), ("entry", "Alt+E"), ("alert", "Alt+A")):
        line_actions[kind] = add_action(
            window, menu, f"Add {KINDS[kind].name.lower()} line", add_line(kind), key,
            "At the price under the mouse, else near the last price",
        )  # fmt: skip
    menu.addSeparator()
    add_action(window, menu, "Position…", open_position_form, "Alt+P",
               "Side, entry, leverage, size: your liquidation price and the stop's risk")  # fmt: skip
    add_action(window, menu, "Move stop beyond cluster", lambda: lines.move_beyond(), "Alt+B")
    add_action(window, menu, "Edit selected line price…", lambda: _edit_selected(lines), "F2")
    add_action(window, menu, "Delete selected line", lambda: lines.remove(), "Del")
    add_action(window, menu, "Remove all lines", lines.clear)

    alerts = bar.addMenu("Alerts")
    toggle = alert_dock.toggleViewAction()
    toggle.setText("Alert log and thresholds")
    toggle.setShortcut(QtGui.QKeySequence("Ctrl+L"))
    alerts.addAction(toggle)
    window.addAction(toggle)
    add_action(window, alerts, "Add alert line", lambda: lines.add_line("alert"))

    model = bar.addMenu("Model")
    tip = "Does the heatmap predict where real liquidations happen? Scores, reliability plot, presets side by side"
    model_check.open_action = add_action(
        window, model, "Model check…", lambda: _open_model_check(window, model_check), "Ctrl+M", tip
    )
    heat: QtGui.QAction | None = None
    if actual is not None:
        model.addSeparator()
        heat = QtGui.QAction("Actual positions as the newest heatmap columns (Hyperliquid)", window)
        heat.setCheckable(True)
        heat.setChecked(actual.chart.settings.show_actual_heat)
        heat.setToolTip("Paint the sampled accounts' real liquidation prices over the newest bars, on a scale of "
                        "their own (only sampled accounts: the map panel says which share of open interest)")  # fmt: skip
        heat.toggled.connect(actual.set_heat)
        model.addAction(heat)

    # Toolbar: one button with the Lines actions (room is short there).
    toolbar.addSeparator()
    button = QtWidgets.QToolButton()
    button.setText("Lines ▾")
    button.setToolTip("Add a stop, target, entry or alert line; position form")
    button.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
    button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
    button.setMenu(menu)
    toolbar.addWidget(button)
    return PaneMenus(menu, line_actions, hires, heat)


def _edit_selected(lines: LinesController) -> None:
    if lines.selected is not None:
        lines.edit(lines.selected)


def _open_model_check(window: QtWidgets.QMainWindow, dock: ModelCheckDock) -> None:
    dock.show()
    dock.raise_()
    # Wide enough for three preset columns with their intervals; the chart keeps the rest.
    window.resizeDocks([dock], [640], QtCore.Qt.Orientation.Horizontal)

"""Menu actions made one way: text, slot, optional shortcut and tip, shortcut live without the menu."""

from __future__ import annotations

from collections.abc import Callable

from PySide6 import QtGui, QtWidgets


def add_action(
    owner: QtWidgets.QWidget,
    menu: QtWidgets.QMenu,
    text: str,
    slot: Callable[[], object],
    shortcut: str | None = None,
    tip: str = "",
) -> QtGui.QAction:
    """An action in `menu` calling `slot()`; also added to `owner`, so its shortcut works while the
    menu bar is hidden too. The tip shows in the status bar and as the tooltip."""
    action = QtGui.QAction(text, owner)
    if shortcut:
        action.setShortcut(QtGui.QKeySequence(shortcut))
    if tip:
        action.setStatusTip(tip)
        action.setToolTip(tip)
    action.triggered.connect(lambda _checked=False: slot())
    menu.addAction(action)
    owner.addAction(action)
    return action

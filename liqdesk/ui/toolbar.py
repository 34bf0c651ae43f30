"""The chart pane's toolbar: market, timeframe, range, leverage preset, colour map, scale, and the view toggles.

Widgets only: each control calls the handler it was given with the chosen value, and `show(settings)` puts the
settings on the controls without calling any handler back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from PySide6 import QtCore, QtGui, QtWidgets

from liqdesk.ui import data as data_mod
from liqdesk.ui import theme
from liqdesk.ui.view_settings import ViewSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToolbarHandlers:
    symbol: Callable[[str], None]
    timeframe: Callable[[str], None]
    range_name: Callable[[str], None]
    preset: Callable[[str], None]
    colormap: Callable[[str], None]
    transform: Callable[[str], None]
    lock_levels: Callable[[bool], None]
    auto_y: Callable[[bool], None]
    utc: Callable[[bool], None]
    sweeps: Callable[[bool], None]
    real_liquidations: Callable[[bool], None]


class ChartToolbar(QtWidgets.QToolBar):
    def __init__(
        self, symbols: list[str], on: ToolbarHandlers, parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__("Chart", parent)
        self.setObjectName("chart_toolbar")  # saveState()/restoreState() need names
        self.setMovable(False)
        self.symbol_box = self._combo("", [(s, s) for s in symbols], on.symbol, "Market")
        self.timeframe_box = self._combo(
            "TF", [(t, t) for t in data_mod.TIMEFRAMES], on.timeframe, "Bar interval"
        )
        self.range_box = self._combo(
            "Range", [(r, r) for r in data_mod.RANGES], on.range_name, "Visible time range"
        )
        self.addSeparator()
        try:
            presets = data_mod.preset_names()
        except Exception as exc:  # a broken user preset file must not stop the window
            log.warning("presets: %s", exc)
            presets = [("coinglass", "Coinglass-like")]
        self.preset_box = self._combo("Lev", presets, on.preset, "Leverage preset (model tiers)")
        self.addSeparator()
        cmaps = [(k, v[0]) for k, v in theme.COLORMAPS.items()]
        self.colormap_box = self._combo("Map", cmaps, on.colormap, "Heatmap colour map")
        self.transform_box = self._combo(
            "Scale", [("sqrt", "sqrt"), ("log", "log"), ("linear", "linear")], on.transform, "Value transform"
        )
        self.lock_box = self._check(
            "Lock",
            "Keep the colour levels when the view changes (else relative to the visible data)",
            on.lock_levels,
        )
        self.addSeparator()
        self.auto_y_box = self._check(
            "Auto Y", "Fit the price axis to the visible candles (off: drag pans price too)", on.auto_y
        )
        self.utc_box = self._check("UTC", "Time axis in UTC (off: local time)", on.utc)
        self.sweeps_box = self._check("Sweeps", "Estimated sweep bubbles (model)", on.sweeps)
        self.real_box = self._check(
            "Real liqs", "Real liquidation events from the exchange", on.real_liquidations
        )

    def _combo(
        self, label: str, items: list[tuple[str, str]], handler: Callable[[str], None], tip: str
    ) -> QtWidgets.QComboBox:
        if label:
            self.addWidget(QtWidgets.QLabel(label))
        box = QtWidgets.QComboBox()
        box.setToolTip(tip)
        box.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        for value, text in items:
            box.addItem(text, value)
        box.activated.connect(lambda i: handler(box.itemData(i)))
        self.addWidget(box)
        return box

    def _check(self, text: str, tip: str, handler: Callable[[bool], None]) -> QtWidgets.QCheckBox:
        box = QtWidgets.QCheckBox(text)
        box.setToolTip(tip)
        box.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        box.toggled.connect(handler)
        self.addWidget(box)
        return box

    def show_settings(self, s: ViewSettings) -> None:
        """The controls as the settings say (no handler is called)."""
        for box, value in ((self.symbol_box, s.symbol), (self.timeframe_box, s.timeframe),
                           (self.range_box, s.range_name), (self.preset_box, s.preset),
                           (self.colormap_box, s.colormap), (self.transform_box, s.transform)):  # fmt: skip
            i = box.findData(value)
            if i >= 0:
                box.setCurrentIndex(i)
        for check, on in ((self.lock_box, s.lock_levels), (self.auto_y_box, s.auto_y), (self.utc_box, s.utc),
                          (self.sweeps_box, s.show_sweeps), (self.real_box, s.show_real)):  # fmt: skip
            self.set_checked(check, on)

    @staticmethod
    def set_checked(check: QtWidgets.QCheckBox, on: bool) -> None:
        check.blockSignals(True)
        check.setChecked(on)
        check.blockSignals(False)

    @staticmethod
    def enable_items(box: QtWidgets.QComboBox, enabled: dict[str, tuple[bool, str]]) -> None:
        """Grey out the items not available (the reason as the item's tooltip)."""
        model = box.model()
        assert isinstance(model, QtGui.QStandardItemModel)
        for i in range(box.count()):
            ok, why = enabled.get(box.itemData(i), (True, ""))
            item = model.item(i)
            item.setEnabled(ok)
            item.setToolTip(why)

    def enable_all(self, box: QtWidgets.QComboBox) -> None:
        self.enable_items(box, {})

    def set_presets(self, presets: list[tuple[str, str]]) -> None:
        box = self.preset_box
        box.blockSignals(True)
        box.clear()
        for value, text in presets:
            box.addItem(text, value)
        box.blockSignals(False)

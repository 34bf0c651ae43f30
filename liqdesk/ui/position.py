"""Quick position form: side, entry, leverage, size → the trader's own liquidation price on the
chart (same formula as the engine, `liqdesk.core.stops.position_risk`) and what each stop and
target costs or makes in money. A dock, never a modal dialog."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6 import QtCore, QtWidgets

from liqdesk.core.series import LONG, SHORT
from liqdesk.core.stops import position_risk
from liqdesk.ui import format as fmt
from liqdesk.ui.lines import Position, tick_decimals

if TYPE_CHECKING:
    from liqdesk.ui.lines import LinesController


class PositionDock(QtWidgets.QDockWidget):
    def __init__(self, lines: LinesController, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__("Position", parent)
        self.setObjectName("position_dock")
        self.lines = lines
        body = QtWidgets.QWidget()
        form = QtWidgets.QFormLayout(body)
        form.setContentsMargins(6, 6, 6, 6)
        self.side = QtWidgets.QComboBox()
        self.side.addItem("Long", LONG)
        self.side.addItem("Short", SHORT)
        self.entry = QtWidgets.QDoubleSpinBox()
        self.entry.setRange(0.0, 1e12)
        self.entry.setKeyboardTracking(False)
        use_last = QtWidgets.QPushButton("last")
        use_last.setToolTip("Entry at the last price")
        use_last.clicked.connect(self.use_last_price)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.entry, 1)
        row.addWidget(use_last)
        self.leverage = QtWidgets.QDoubleSpinBox()
        self.leverage.setRange(1.1, 200.0)
        self.leverage.setDecimals(1)
        self.leverage.setSuffix(" ×")
        self.leverage.setValue(10.0)
        self.size_usd = QtWidgets.QDoubleSpinBox()
        self.size_usd.setRange(1.0, 1e10)
        self.size_usd.setDecimals(0)
        self.size_usd.setPrefix("$ ")
        self.size_usd.setSingleStep(1000)
        self.size_usd.setValue(10_000.0)
        form.addRow("Side", self.side)
        form.addRow("Entry", row)
        form.addRow("Leverage", self.leverage)
        form.addRow("Size", self.size_usd)
        buttons = QtWidgets.QHBoxLayout()
        self.apply_button = QtWidgets.QPushButton("Draw")
        self.apply_button.setToolTip("Draw the entry and this position's liquidation price")
        self.apply_button.clicked.connect(self.apply)
        clear = QtWidgets.QPushButton("Remove")
        clear.clicked.connect(lambda: self.lines.set_position(None))
        buttons.addWidget(self.apply_button)
        buttons.addWidget(clear)
        form.addRow(buttons)
        self.summary = QtWidgets.QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(QtCore.Qt.TextFormat.RichText)
        form.addRow(self.summary)
        self.setWidget(body)
        self._filled: Position | None = None  # the position the fields last showed
        lines.changed.connect(self.refresh)
        self.refresh()

    def use_last_price(self) -> None:
        if self.lines.last_price is not None:
            self.entry.setValue(self.lines.last_price)

    def prefill(self, price: float | None = None) -> None:
        """Show the form with the current position, or an entry at `price` / the last price."""
        d = tick_decimals(self.lines.tick)
        self.entry.setDecimals(d)
        self.entry.setSingleStep(self.lines.tick)
        pos = self.lines.position
        if pos is not None:
            self._fill(pos)
        elif price is not None:
            self.entry.setValue(price)
        elif self.lines.last_price is not None:
            self.entry.setValue(self.lines.last_price)
        self.refresh()

    def _fill(self, pos: Position) -> None:
        d = tick_decimals(self.lines.tick)
        self.entry.setDecimals(d)
        self.entry.setSingleStep(self.lines.tick)
        self.side.setCurrentIndex(self.side.findData(pos.side))
        self.entry.setValue(pos.entry)
        self.leverage.setValue(pos.leverage)
        self.size_usd.setValue(pos.size_usd)
        self._filled = pos

    def position(self) -> Position:
        return Position(
            int(self.side.currentData()), self.entry.value(), self.leverage.value(), self.size_usd.value()
        )

    def apply(self) -> None:
        p = self.position()
        if p.entry <= 0:
            self.summary.setText("enter an entry price")
            return
        self.lines.set_position(p)

    def refresh(self) -> None:
        pos = self.lines.position
        if pos is None:
            self._filled = None
            self.summary.setText("<span style='color:#7c8699'>No position drawn.</span>")
            return
        if pos != self._filled:  # restored from the state file, or moved on the chart: the form says so too
            self._fill(pos)
        d = tick_decimals(self.lines.tick)
        risk = position_risk(pos.side, pos.entry, pos.leverage, pos.size_usd)
        move = (risk.liquidation - pos.entry) / pos.entry * 100
        rows = [
            f"<b>{'Long' if pos.side == LONG else 'Short'} {pos.leverage:g}× {fmt.usd(pos.size_usd)}</b> "
            f"from {fmt.price(pos.entry, d)}",
            f"Liquidation <b style='color:#ff9100'>{fmt.price(risk.liquidation, d)}</b> ({move:+.2f} %)",
        ]
        for item in self.lines.items:
            r = self.lines.risk_for(item)
            if r is None or r.stop_loss_usd is None:
                continue
            if r.stop_after_liquidation:
                word = "Stop" if item.kind == "stop" else "Target"
                rows.append(f"{word} {fmt.price(item.price(), d)}: <b style='color:#ffcc00'>liquidated first</b>"
                            + (" (never fires)" if item.kind == "stop" else ""))  # fmt: skip
                continue
            money = -r.stop_loss_usd
            word = "Stop" if item.kind == "stop" else "Target"
            color = "#ff6b81" if money < 0 else "#2ee6a6"
            rows.append(
                f"{word} {fmt.price(item.price(), d)}: <b style='color:{color}'>"
                f"{'−' if money < 0 else '+'}${abs(money):,.0f}</b>"
            )
        self.summary.setText("<br>".join(rows))

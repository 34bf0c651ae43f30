"""Alerts: price crossing a line, price near a large magnet, a large real liquidation.

The rules (and their hysteresis) are `liqdesk.core.alerts`; this module feeds them prices,
magnets and liquidations, and tells the user: a line in the alert log dock, a system tray
message where a tray exists (offscreen/headless: only the log), and an optional beep.
Thresholds live in the state file's "alerts" section and are edited in the dock.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import replace

from PySide6 import QtCore, QtGui, QtWidgets

from liqdesk.core.alerts import AlertEvent, LargeLiquidation, LineCrossing, MagnetProximity
from liqdesk.core.series import Liquidations
from liqdesk.feeds.lines_store import load_prefs, save_pref
from liqdesk.feeds.state import SCHEMA
from liqdesk.ui import format as fmt
from liqdesk.ui.context import ChartLayer
from liqdesk.ui.lines import LinesController

log = logging.getLogger(__name__)

MAX_LOG_ROWS = 500
KIND_TEXT = {"cross": "line", "magnet": "magnet", "liquidation": "liquidation"}


class AlertCenter(QtCore.QObject, ChartLayer):
    """Feeds the core rules and announces what they fire. A chart layer: it hears the live price and the
    real liquidations as they come."""

    fired = QtCore.Signal(object)  # AlertEvent

    def __init__(
        self, lines: LinesController, parent: QtCore.QObject | None = None, persist: bool = True
    ) -> None:
        super().__init__(parent)
        self.lines = lines
        self.persist = persist
        prefs = _prefs(persist)
        self.cross_band_pct = float(prefs["cross_band_pct"])
        self.sound = bool(prefs["sound"])
        self.magnet_rule = MagnetProximity(within_pct=float(prefs["magnet_within_pct"]),
                                           min_usd=float(prefs["magnet_min_usd"]))  # fmt: skip
        self.liquidation_rule = LargeLiquidation(min_usd=float(prefs["liquidation_min_usd"]))
        self.crossings: dict[int, LineCrossing] = {}  # id(line item) -> rule
        self.events: list[AlertEvent] = []
        # Rewords a magnet alert's message (the app adds the magnets' measured standing); None: as the rule says.
        self.magnet_wording: Callable[[str], str] | None = None
        self.tray: QtWidgets.QSystemTrayIcon | None = None
        self.tag = ""  # put before every message ("REPLAY" while a replay runs)
        lines.changed.connect(self.sync_lines)

    # ------------------------------------------------------------------ settings

    def set_threshold(self, key: str, value: float | bool) -> None:
        if key == "magnet_within_pct":
            self.magnet_rule.within_pct = float(value)
        elif key == "magnet_min_usd":
            self.magnet_rule.min_usd = float(value)
        elif key == "liquidation_min_usd":
            self.liquidation_rule.min_usd = float(value)
        elif key == "cross_band_pct":
            self.cross_band_pct = float(value)
            for rule in self.crossings.values():
                rule.band_pct = self.cross_band_pct
        elif key == "sound":
            self.sound = bool(value)
        else:
            raise KeyError(key)
        if self.persist:
            try:
                save_pref("alerts", key, value)
            except (OSError, ValueError) as exc:
                log.warning("alert setting %s not saved: %s", key, exc)

    # ------------------------------------------------------------------ inputs

    def sync_lines(self) -> None:
        """One crossing rule per line; a moved line's rule starts again at its new level."""
        live: dict[int, LineCrossing] = {}
        for item in self.lines.items:
            key = id(item)
            price = item.price()
            label = f"{item.style.name.lower()} line"
            rule = self.crossings.get(key)
            if rule is None:
                rule = LineCrossing(f"{item.kind}:{key}", price, band_pct=self.cross_band_pct, label=label)
                if self.lines.last_price is not None:
                    rule.update(self.lines.last_price, 0)  # learn the side: adding a line is not a crossing
            elif rule.level != price:
                rule.move(price)
                if self.lines.last_price is not None:
                    rule.update(self.lines.last_price, 0)
            live[key] = rule
        self.crossings = live

    def rebase(self, price: float) -> None:
        """Price jumped (a replay began, moved or ended): every line learns its side again from `price`, so the
        jump is not a crossing."""
        for rule in self.crossings.values():
            rule.move(rule.level)
            rule.update(price, 0)

    def on_price(self, price: float, time_ms: int) -> list[AlertEvent]:
        out = []
        for rule in self.crossings.values():
            event = rule.update(price, time_ms)
            if event is not None:
                out.append(event)
        magnets = self.magnet_rule.update(price, self.lines.magnets(), time_ms)
        if self.magnet_wording is not None:
            magnets = [replace(e, message=self.magnet_wording(e.message)) for e in magnets]
        out += magnets
        for e in out:
            self.announce(e)
        return out

    def price_ticked(self, price: float, time_ms: int) -> None:
        self.on_price(price, time_ms)

    def liquidations_added(self, liquidations: Liquidations) -> None:
        self.on_liquidations(liquidations)

    def on_liquidations(self, liq: Liquidations) -> list[AlertEvent]:
        out = []
        for t, side, price, usd in zip(liq.time, liq.side, liq.price, liq.usd, strict=True):
            event = self.liquidation_rule.update(int(t), int(side), float(price), float(usd))
            if event is not None:
                out.append(event)
                self.announce(event)
        return out

    # ------------------------------------------------------------------ output

    def announce(self, event: AlertEvent) -> None:
        if self.tag:
            event = dataclasses.replace(event, message=f"{self.tag} · {event.message}")
        self.events.append(event)
        del self.events[:-MAX_LOG_ROWS]
        log.info("alert: %s", event.message)
        tray = self._tray()
        if tray is not None:
            tray.showMessage(
                "liqdesk alert", event.message, QtWidgets.QSystemTrayIcon.MessageIcon.Information, 8000
            )
        if self.sound:
            QtWidgets.QApplication.beep()
        self.fired.emit(event)

    def _tray(self) -> QtWidgets.QSystemTrayIcon | None:
        if self.tray is None and QtWidgets.QSystemTrayIcon.isSystemTrayAvailable():
            icon = QtWidgets.QApplication.windowIcon()
            if icon.isNull():
                pix = QtGui.QPixmap(32, 32)
                pix.fill(QtGui.QColor("#f0b90b"))
                icon = QtGui.QIcon(pix)
            self.tray = QtWidgets.QSystemTrayIcon(icon, self)
            self.tray.setToolTip("liqdesk")
            self.tray.show()
        return self.tray


def _prefs(persist: bool) -> dict[str, float | bool]:
    """The alert thresholds (numbers) and the sound switch: the state file's, its defaults where missing."""
    defaults: dict[str, float | bool] = {k: v[0] for k, v in SCHEMA["alerts"].items()}
    saved: dict[str, object] = {}
    if persist:
        try:
            saved = load_prefs("alerts")
        except Exception as exc:
            log.warning("alert settings: %s", exc)
    return {k: v if isinstance(v := saved.get(k, d), float | int | bool) else d for k, d in defaults.items()}


class AlertDock(QtWidgets.QDockWidget):
    """The alert log with the thresholds above it."""

    def __init__(
        self, center: AlertCenter, utc: bool = False, parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__("Alerts", parent)
        self.setObjectName("alerts_dock")
        self.center = center
        self.utc = utc
        body = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(body)
        layout.setContentsMargins(6, 6, 6, 6)
        form = QtWidgets.QFormLayout()
        form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignLeft)

        def spin(
            value: float, lo: float, hi: float, decimals: int, suffix: str, key: str, scale: float = 1.0
        ) -> QtWidgets.QDoubleSpinBox:
            box = QtWidgets.QDoubleSpinBox()
            box.setRange(lo, hi)
            box.setDecimals(decimals)
            box.setSuffix(suffix)
            box.setValue(value / scale)
            box.setKeyboardTracking(False)
            box.valueChanged.connect(lambda v, k=key, s=scale: center.set_threshold(k, v * s))
            return box

        self.magnet_pct = spin(center.magnet_rule.within_pct, 0.01, 20, 2, " %", "magnet_within_pct")
        self.magnet_usd = spin(center.magnet_rule.min_usd, 0, 1e6, 1, " $M", "magnet_min_usd", 1e6)
        self.liq_usd = spin(center.liquidation_rule.min_usd, 0, 1e6, 2, " $M", "liquidation_min_usd", 1e6)
        self.band = spin(center.cross_band_pct, 0, 5, 3, " %", "cross_band_pct")
        form.addRow("Magnet within", self.magnet_pct)
        form.addRow("Magnet at least", self.magnet_usd)
        form.addRow("Liquidation at least", self.liq_usd)
        form.addRow("Line re-arm band", self.band)
        self.sound_box = QtWidgets.QCheckBox("Sound")
        self.sound_box.setChecked(center.sound)
        self.sound_box.toggled.connect(lambda on: center.set_threshold("sound", on))
        form.addRow("", self.sound_box)
        layout.addLayout(form)
        self.table = QtWidgets.QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["time", "kind", "alert"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)  # one line per alert; the full text is the tooltip
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        layout.addWidget(self.table, 1)
        clear = QtWidgets.QPushButton("Clear log")
        clear.clicked.connect(lambda: self.table.setRowCount(0))
        layout.addWidget(clear)
        self.setWidget(body)
        center.fired.connect(self.add_event)

    def add_event(self, event: AlertEvent) -> None:
        when = event.time_ms or int(time.time() * 1000)
        self.table.insertRow(0)
        for col, text in enumerate((fmt.timestamp(when, self.utc)[11:], KIND_TEXT.get(event.kind, event.kind),
                                    event.message)):  # fmt: skip
            cell = QtWidgets.QTableWidgetItem(text)
            cell.setToolTip(event.message)
            self.table.setItem(0, col, cell)
        if self.table.rowCount() > MAX_LOG_ROWS:
            self.table.setRowCount(MAX_LOG_ROWS)
        self.table.resizeColumnToContents(0)
        self.table.resizeColumnToContents(1)

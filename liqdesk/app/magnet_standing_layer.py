"""The magnets' measured standing on the chart: every magnet label says how often magnets of this market were
actually reached ("hit 3 of last 10", or "unscored"), and the magnet alert says when the model check rates magnets
≈ random (or worse) here.

A chart layer the app adds to each window: after the first frame of a new model (not before it: the measurement
takes about a second of the model worker, and the chart is drawn first) and again at most hourly as live bars are
added, it asks the engine for liqdesk.app.magnet_standing.measure_standing on the model worker and puts the words
of standing_text / magnet_alert where the magnets are shown. A record, not a promise: the tooltip-length summary
goes to the status bar when it changes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from liqdesk.app.magnet_standing import magnet_alert, measure_standing, standing_text
from liqdesk.core.magnet_standing import MagnetStanding
from liqdesk.core.series import Candles
from liqdesk.feeds.market_data import MarketData
from liqdesk.ui.context import ChartLayer
from liqdesk.ui.frames import Frame

if TYPE_CHECKING:
    from liqdesk.ui.window import MainWindow

REMEASURE_S = 3600.0  # live bars: measure again at most this often


class MagnetStandingLayer(ChartLayer):
    def __init__(self, window: MainWindow) -> None:
        self.chart = window.context
        self.alerts = window.alerts
        self.standing: MagnetStanding | None = None
        self.summary = ""
        self._due = False  # a new model: measure after its first frame
        self._measured_at = -float("inf")  # monotonic seconds
        self.alerts.magnet_wording = lambda text: magnet_alert(text, self.standing)

    def market_changed(self, market: MarketData | None) -> None:
        self.standing, self.summary = None, ""
        self.chart.set_magnet_note("")  # another market's record is not this one's

    def engine_built(self) -> None:
        self._due = True

    def frame_applied(self, frame: Frame) -> None:
        if self._due:
            self._measure()

    def bar_updated(self, candles: Candles, appended: bool) -> None:
        if appended and time.monotonic() - self._measured_at >= REMEASURE_S:
            self._due = True

    def _measure(self) -> None:
        if self.chart.query(measure_standing, self._show, supersede="magnet-standing"):
            self._due = False
            self._measured_at = time.monotonic()

    def _show(self, standing: MagnetStanding | None) -> None:
        self.standing = standing
        text = standing_text(standing)
        self.chart.set_magnet_note(text.label)
        if standing is not None and text.summary != self.summary:
            self.chart.flash(f"magnets: {text.summary}")
        self.summary = text.summary


def install(window: MainWindow) -> MagnetStandingLayer:
    layer = MagnetStandingLayer(window)
    window.context.add_layer(layer)
    return layer

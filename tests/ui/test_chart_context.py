"""The chart contract as a new tool sees it: a layer registered on the chart hears every change in order, adds
its text to the crosshair readout, draws on the map panel, and asks the engine through one query whose answer
comes back on the UI thread (and not at all once the data it was asked for is gone)."""

from __future__ import annotations

import threading

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.series import LONG, Candles, Liquidations
from liqdesk.feeds.market_data import MarketData
from liqdesk.ui.context import ChartContext, ChartLayer, ReadoutPoint
from liqdesk.ui.frames import Frame
from liqdesk.ui.session import wait_until_drawn
from liqdesk.ui.window import MainWindow


class Probe(ChartLayer):
    """A tool written against the contract only."""

    def __init__(self, chart: ChartContext) -> None:
        self.chart = chart
        self.heard: list[str] = []
        self.marker = pg.InfiniteLine(angle=0, movable=False)
        chart.map_plot.addItem(self.marker, ignoreBounds=True)

    def market_changed(self, market: MarketData | None) -> None:
        self.heard.append(f"market {market.symbol if market else None}")

    def bars_loaded(self, candles: Candles) -> None:
        self.heard.append(f"bars {len(candles)}")

    def bar_updated(self, candles: Candles, appended: bool) -> None:
        self.heard.append(f"bar {'appended' if appended else 'revised'} {len(candles)}")

    def engine_built(self) -> None:
        self.heard.append("engine")

    def frame_applied(self, frame: Frame) -> None:
        self.heard.append("frame")
        self.marker.setPos(frame.lmap.price_now)

    def price_ticked(self, price: float, time_ms: int) -> None:
        self.heard.append(f"price {price:g}")

    def liquidations_added(self, liquidations: Liquidations) -> None:
        self.heard.append(f"liquidations {len(liquidations)}")

    def readout_lines(self, point: ReadoutPoint) -> list[str]:
        return [f"probe at bar {point.bar}"]

    def chart_closing(self) -> None:
        self.heard.append("closing")


def test_a_layer_hears_every_change_in_order_and_adds_to_the_readout(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    w: MainWindow = win
    probe = Probe(w.context)
    w.context.add_layer(probe)
    n = len(w.candles)
    w.set_symbol(w.settings.symbol)  # the market again: market, its bars, the engine, a frame
    assert wait_until_drawn(w, 30.0)
    assert probe.heard[:4] == [f"market {w.market.symbol}", f"bars {n}", "engine", "frame"]
    assert probe.marker.value() == w.frame.lmap.price_now  # drew on the map panel
    c = w.candles
    t = int(c.open_time[-1]) + c.interval_ms
    row = Candles(open_time=[t], open=[c.close[-1]], high=[c.close[-1] + 5], low=[c.close[-1] - 5],
                  close=[c.close[-1] + 1], volume=[3.0], interval_ms=c.interval_ms)  # fmt: skip
    probe.heard.clear()
    w.apply_bar(row, is_closed=False)
    assert probe.heard[:2] == [f"bar appended {n + 1}", f"price {float(c.close[-1] + 1):g}"]
    liqs = Liquidations(np.array([t + 1000]), np.array(["binanceusdm"]), np.array([w.market.symbol]),
                        np.array([LONG], np.int8), np.array([float(c.close[-1])]), np.ones(1), np.array([5e4]))  # fmt: skip
    w.add_liquidations(liqs)
    assert "liquidations 1" in probe.heard
    w.chart.move_crosshair(float(n - 10), float(c.close[-10]))
    assert f"probe at bar {n - 10}" in w.chart.readout.text()
    w.close()
    assert probe.heard[-1] == "closing"


def test_a_query_answers_on_the_ui_thread_and_a_stale_answer_is_dropped(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    w: MainWindow = win
    answers: list[tuple[int, str]] = []
    ran_on: list[str] = []

    def bars(engine: LiquidationEngine) -> int:
        ran_on.append(threading.current_thread().name)
        return engine.n_bars

    assert w.context.query(bars, lambda n: answers.append((n, threading.current_thread().name)))
    qtbot.waitUntil(lambda: bool(answers), timeout=10_000)
    assert answers == [(len(w.candles), threading.main_thread().name)]
    assert ran_on == ["liqdesk-model-worker"]

    gate = threading.Event()
    w.worker.run_in_order(lambda: gate.wait(10))  # the worker is busy…
    assert w.context.query(bars, lambda n: answers.append((n, "stale")))
    w.set_preset("high")  # …and the data changes before the query runs
    gate.set()
    assert wait_until_drawn(w, 30.0)
    QtCore.QCoreApplication.processEvents()
    assert [a for a in answers if a[1] == "stale"] == []


def test_without_a_model_nothing_is_asked(qapp: QtWidgets.QApplication, config_dir) -> None:  # type: ignore[no-untyped-def]
    from liqdesk.ui.data import SampleSource

    w = MainWindow(SampleSource())
    try:
        # the engine is being built on the worker; its "built" reaches this thread only through the event loop
        assert not w.context.model_ready
        assert w.context.query(lambda e: e.n_bars, lambda n: None) is False
    finally:
        w.close()

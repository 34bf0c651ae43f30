"""Draggable price lines: stop-loss, take-profit, entry, alert and the position's liquidation price.

Each line is an InfiniteLine in price space, snapped to the market's tick, with a label (price,
distance from the last price, liquidation notional within a small band, stop advice) and a tag on
the price axis. The advice comes from `liqdesk.core.stops` on a liquidation map at the latest bar
with fixed-width bins (`advice_bins`), computed in the model worker's thread, so a label says the
same thing whatever the zoom or the bar the user scrolled to.

Mouse: drag moves (right-click during a drag cancels), click selects, double-click edits the price,
right-click opens the line's menu; a click on a warning moves the stop beyond the cluster.
Keys (via the window): Delete removes the selected line, Up/Down nudge it by one tick (Shift: 10).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.liqmap import LiquidationMap, Magnet, find_magnets, liquidation_map
from liqdesk.core.series import LONG, SHORT, Candles
from liqdesk.core.stops import (
    PositionRisk,
    StopAdvice,
    advice_bins,
    assess_stop,
    band_notional,
    position_risk,
    snap_to_tick,
)
from liqdesk.feeds.lines_store import PriceLine, load_lines, save_lines
from liqdesk.feeds.market_data import MarketData
from liqdesk.ui import format as fmt
from liqdesk.ui.context import ChartContext, ChartLayer
from liqdesk.ui.frames import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KindStyle:
    short: str  # label prefix
    name: str  # menu text
    color: str
    dash: QtCore.Qt.PenStyle = QtCore.Qt.PenStyle.SolidLine


# Distinct from the heatmap ramp (purple → teal → yellow), the yellow last-price line and each other.
KINDS: dict[str, KindStyle] = {
    "stop": KindStyle("SL", "Stop-loss", "#ff3d71"),
    "target": KindStyle("TP", "Take-profit", "#00e396"),
    "entry": KindStyle("ENTRY", "Entry", "#3d9bff"),
    "alert": KindStyle("ALERT", "Alert", "#e8e8f0", QtCore.Qt.PenStyle.DashDotLine),
    "liquidation": KindStyle("LIQ", "Liquidation", "#ff9100", QtCore.Qt.PenStyle.DashLine),
}
USER_KINDS = ("stop", "target", "entry", "alert")  # what the user adds; "liquidation" follows the position
LABEL_BACKGROUND = (10, 12, 18, 225)
LINE_WIDTH = 2.0
WARN_COLOR = "#ffcc00"
MAP_INTERVAL_S = 0.25  # live revisions: labels and magnet alerts from a map at most this old


@dataclass
class AdviceSettings:
    band_pct: float = 0.2  # the label's "liquidation notional within ±band"
    near_pct: float = 0.3
    buffer_pct: float = 0.1  # "move beyond cluster": this far past the far edge (% of price)


@dataclass(frozen=True)
class Position:
    side: int  # LONG / SHORT
    entry: float
    leverage: float
    size_usd: float

    def to_extra(self) -> dict[str, Any]:
        return {
            "side": "long" if self.side == LONG else "short",
            "leverage": self.leverage,
            "size_usd": self.size_usd,
        }

    @staticmethod
    def from_extra(entry: float, extra: dict[str, Any]) -> Position | None:
        name = extra.get("side")
        side = {"long": LONG, "short": SHORT}.get(name) if isinstance(name, str) else None
        lev, size = extra.get("leverage"), extra.get("size_usd")
        if side is None or not isinstance(lev, int | float) or not isinstance(size, int | float):
            return None
        if lev <= 1 or size <= 0:
            return None
        return Position(side, entry, float(lev), float(size))


@dataclass(frozen=True)
class LineReadout:
    """What a line's label says, as numbers (tests compare these with the core functions)."""

    kind: str
    price: float
    last_price: float | None
    distance: float | None
    distance_pct: float | None
    band_usd: float | None  # None until the advice map is there
    advice: StopAdvice | None
    risk: PositionRisk | None
    html: str


def tick_decimals(tick: float) -> int:
    if tick <= 0:
        return 2
    d = max(0, -math.floor(math.log10(tick) + 1e-9))
    return d + (0 if abs(round(tick * 10**d) - tick * 10**d) < 1e-9 else 1)


# ---------------------------------------------------------------------------------------- items


class LineLabel(pg.InfLineLabel):
    """The line's rich label; clicks go to the line (select, edit, move beyond the cluster)."""

    def __init__(self, line: PriceLineItem) -> None:
        super().__init__(
            line, text="", movable=False, position=0.01, anchors=[(0, 1), (0, 1)],
            fill=pg.mkBrush(*LABEL_BACKGROUND), border=pg.mkPen(line.style.color, width=1),
        )  # fmt: skip
        self._html = ""
        self.setZValue(2)

    def valueChanged(self) -> None:
        # the text comes from the controller; only follow the line here
        if self.isVisible():
            self.updatePosition()

    def set_html(self, html: str) -> None:
        if html != self._html:
            self._html = html
            self.setHtml(html)

    def place(self, position: float, anchor: tuple[float, float]) -> None:
        self.anchors = [anchor, anchor]
        self.orthoPos = position
        self.updatePosition()

    def mouseClickEvent(self, ev: Any) -> None:
        line = self.line
        assert isinstance(line, PriceLineItem)
        line.label_clicked(ev)


class AxisTag(pg.TextItem):
    """The line's price on the price axis, in the line's colour."""

    def __init__(self, line: PriceLineItem, axis: pg.AxisItem, vb: pg.ViewBox) -> None:
        super().__init__("", color="#0b0d12", anchor=(0, 0.5), fill=pg.mkBrush(line.style.color))
        self.line, self.axis, self.vb = line, axis, vb
        self.setParentItem(axis)
        self.setZValue(50)
        font = QtGui.QFont()
        font.setPointSizeF(8.0)
        font.setBold(True)
        self.setFont(font)
        line.sigPositionChanged.connect(self.follow)
        vb.sigYRangeChanged.connect(self.follow)
        vb.sigResized.connect(self.follow)

    def follow(self, *_: object) -> None:
        y = self.line.value()
        y0, y1 = self.vb.viewRange()[1]
        self.setText(fmt.price(y, self.line.decimals))
        inside = y0 <= y <= y1
        self.setVisible(inside and self.line.isVisible())
        if inside:
            scene = self.vb.mapViewToScene(QtCore.QPointF(0.0, y))
            p = self.axis.mapFromScene(scene)
            self.setPos(1.0, p.y())

    def detach(self) -> None:
        for sig in (self.line.sigPositionChanged, self.vb.sigYRangeChanged, self.vb.sigResized):
            with contextlib.suppress(RuntimeError, TypeError):
                sig.disconnect(self.follow)
        scene = self.scene()
        self.setParentItem(None)
        if scene is not None:
            scene.removeItem(self)


class PriceLineItem(pg.InfiniteLine):
    """A horizontal line in price space, snapped to the tick on every move (drag, nudge, edit)."""

    def __init__(self, controller: LinesController, line: PriceLine, tick: float) -> None:
        self.controller = controller
        self.model = line
        self.tick = tick
        self.style = KINDS[line.kind]
        self.decimals = tick_decimals(tick)
        self.selected = False
        movable = line.kind != "liquidation"
        pen = pg.mkPen(self.style.color, width=LINE_WIDTH, style=self.style.dash)
        super().__init__(pos=line.price, angle=0, movable=movable, pen=pen,
                         hoverPen=pg.mkPen(self.style.color, width=3, style=self.style.dash))  # fmt: skip
        self.setZValue(25)
        self.setCursor(QtCore.Qt.CursorShape.SizeVerCursor if movable else QtCore.Qt.CursorShape.ArrowCursor)
        self.text = LineLabel(self)

    @property
    def kind(self) -> str:
        return self.model.kind

    def price(self) -> float:
        return float(self.value())

    def setPos(self, pos: Any) -> None:  # noqa: N802 (Qt name)
        if isinstance(pos, QtCore.QPointF):
            y = pos.y()
        elif isinstance(pos, list | tuple) or hasattr(pos, "__len__"):
            y = pos[1]
        else:
            y = pos
        y = snap_to_tick(float(y), getattr(self, "tick", 0.0))
        if y <= 0:
            return
        super().setPos([0.0, y])

    def set_selected(self, on: bool) -> None:
        self.selected = on
        width = 3.0 if on else LINE_WIDTH
        self.setPen(pg.mkPen(self.style.color, width=width, style=self.style.dash))
        self.text.border = pg.mkPen(self.style.color, width=2 if on else 1)
        self.text.update()

    def mouseClickEvent(self, ev: Any) -> None:  # noqa: N802
        if self.moving:
            super().mouseClickEvent(ev)  # a right-click during a drag restores the start position
            return
        self.label_clicked(ev, on_label=False)

    def label_clicked(self, ev: Any, on_label: bool = True) -> None:
        button = ev.button()
        if button == QtCore.Qt.MouseButton.LeftButton:
            ev.accept()
            if ev.double():
                self.controller.edit(self)
            elif on_label and self.controller.advice_target(self) is not None:
                self.controller.move_beyond(self)
            else:
                self.controller.select(self)
        elif button == QtCore.Qt.MouseButton.RightButton:
            ev.accept()
            self.controller.line_menu(self, ev.screenPos())

    def mouseDragEvent(self, ev: Any) -> None:  # noqa: N802
        if ev.isStart() and ev.button() == QtCore.Qt.MouseButton.LeftButton:
            self.controller.select(self)
        super().mouseDragEvent(ev)


# ---------------------------------------------------------------------------------------- controller


# Every lines controller of the process: a save by one reloads the others showing the same market (two tabs
# of one market each kept their own copy, and the last to save overwrote the other's lines).
_controllers: weakref.WeakSet[LinesController] = weakref.WeakSet()


class LinesController(QtCore.QObject, ChartLayer):
    """Owns the lines of the current market: add, move, remove, persist, labels and advice. A chart layer:
    the market's lines come with the market, labels follow the price, the advice map follows each frame."""

    changed = QtCore.Signal()  # lines added, removed or moved (alerts re-read them)
    advice_map_changed = QtCore.Signal(
        object
    )  # the LiquidationMap at the latest bar (alerts use its magnets)

    def __init__(self, chart: ChartContext, persist: bool = True) -> None:
        super().__init__(chart.widget)
        self.chart = chart
        self.persist = persist
        self.settings = AdviceSettings()
        self.plot = chart.price_plot
        self.vb = chart.price_vb
        self.axis = chart.price_axis
        self.items: list[PriceLineItem] = []
        self.tags: dict[int, AxisTag] = {}
        self.mirrors: dict[int, pg.InfiniteLine] = {}  # the same lines across the liquidation-map panel
        self.map_plot = chart.map_plot
        self.selected: PriceLineItem | None = None
        self.liq_item: PriceLineItem | None = None
        self.position: Position | None = None
        self.exchange = ""
        self.symbol = ""
        self.tick = 0.01
        self.last_price: float | None = None
        self.last_time_ms: int | None = None
        self.lmap: LiquidationMap | None = None
        self._map_key: tuple[Any, ...] | None = None
        self._dialogs: list[QtWidgets.QWidget] = []
        self._menu: QtWidgets.QMenu | None = None
        self._map_asked = 0.0  # monotonic time of the last map asked for
        self._magnets: tuple[LiquidationMap | None, list[Magnet]] = (None, [])
        # lines and position before a sandbox began (a replay: changes not written), None outside one
        self.sandbox: tuple[list[PriceLine], Position | None] | None = None
        self._map_timer = QtCore.QTimer(self)
        self._map_timer.setSingleShot(True)
        self._map_timer.timeout.connect(lambda: self.request_map())
        self._save_timer = QtCore.QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(400)  # nudges and drags: one write after the last change
        self._save_timer.timeout.connect(self.save)
        self._layout_timer = QtCore.QTimer(self)
        self._layout_timer.setSingleShot(True)
        self._layout_timer.setInterval(0)
        self._layout_timer.timeout.connect(self.layout_labels)
        self.vb.sigYRangeChanged.connect(self._schedule_layout)
        self.vb.sigXRangeChanged.connect(self._schedule_layout)
        self.vb.sigResized.connect(self._schedule_layout)
        chart.overlays_changed.connect(self._schedule_layout)
        _controllers.add(self)

    # ------------------------------------------------------------------ chart layer

    def market_changed(self, market: MarketData | None) -> None:
        if market is None:  # nothing to draw lines on
            self.set_market("", self.chart.symbol, self.tick, None)
            return
        last = float(market.candles.close[-1]) if len(market.candles) else None
        self.set_market(market.exchange, market.symbol, self.chart.tick, last)

    def bars_loaded(self, candles: Candles) -> None:
        if len(candles):
            self.set_last_price(float(candles.close[-1]), int(candles.close_time[-1]))

    def price_ticked(self, price: float, time_ms: int) -> None:
        self.set_last_price(price, time_ms)

    def frame_applied(self, frame: Frame) -> None:
        self.request_map(live=True)

    def chart_closing(self) -> None:
        if self._save_timer.isActive():  # a nudge not written yet
            self._save_timer.stop()
            self.save()

    # ------------------------------------------------------------------ market

    def set_market(self, exchange: str, symbol: str, tick: float, last_price: float | None) -> None:
        """A new market: its lines come back from the state file (in price space)."""
        if self._save_timer.isActive():
            self._save_timer.stop()
            self.save()
        self._clear_items()
        self.exchange, self.symbol, self.tick = exchange, symbol, tick
        self.last_price = last_price
        self.lmap, self._map_key = None, None
        self.position = None
        stored: list[PriceLine] = []
        if self.persist:
            try:
                stored = load_lines(exchange, symbol)
            except Exception as exc:  # a broken state file must not stop the window
                log.warning("price lines: %s", exc)
                self.chart.flash(f"price lines not loaded: {exc}")
        for line in stored:
            if line.kind == "liquidation":
                continue  # follows the position: recomputed, not stored
            self._add_item(PriceLine(line.kind, line.price, line.label, dict(line.extra)))
            if line.kind == "entry" and self.position is None:
                self.position = Position.from_extra(line.price, line.extra)
        self._sync_position_line()
        self._after_change(save=False)

    def set_tick(self, tick: float) -> None:
        """A live source knows the exact tick (ccxt market precision): re-snap every line to it."""
        if tick <= 0 or tick == self.tick:
            return
        self.tick = tick
        for item in self.items:
            item.tick, item.decimals = tick, tick_decimals(tick)
            item.setPos(item.price())
        self._after_change()

    def set_last_price(self, price: float, time_ms: int | None = None) -> None:
        if not (math.isfinite(price) and price > 0):
            return
        self.last_price = float(price)
        self.last_time_ms = time_ms
        self.refresh_labels()

    # ------------------------------------------------------------------ lines

    def lines(self) -> list[PriceLine]:
        return [self._model(item) for item in self.items if item is not self.liq_item]

    def _model(self, item: PriceLineItem) -> PriceLine:
        item.model.price = item.price()
        return item.model

    def default_price(self, kind: str) -> float | None:
        """Where a line added without a price goes: the hovered price, else near the last price."""
        hovered = self.chart.cursor_price()
        if hovered is not None:
            return hovered
        last = self.last_price
        if last is None:
            return None
        short = self.position is not None and self.position.side == SHORT
        offset = {"stop": -1.0, "target": 2.0, "entry": 0.0, "alert": 0.5}[kind]
        return last * (1 + (-offset if short else offset) / 100)

    def add_line(self, kind: str, price: float | None = None, label: str = "") -> PriceLineItem | None:
        if kind not in USER_KINDS:
            raise ValueError(f"unknown line kind {kind!r}")
        if self.chart.market is None:
            self.chart.flash(f"no {self.symbol or 'market'} data here: lines need a chart to be drawn on")
            return None
        price = self.default_price(kind) if price is None else price
        if price is None or not math.isfinite(price) or price <= 0:
            self.chart.flash("no price yet: wait for the data")
            return None
        item = self._add_item(PriceLine(kind, snap_to_tick(price, self.tick), label))
        self.select(item)
        self._after_change()
        return item

    def _add_item(self, line: PriceLine) -> PriceLineItem:
        item = PriceLineItem(self, line, self.tick)
        self.plot.addItem(item, ignoreBounds=True)
        item.sigDragged.connect(self._on_dragged)
        item.sigPositionChangeFinished.connect(self._on_move_finished)
        self.items.append(item)
        tag = AxisTag(item, self.axis, self.vb)
        self.tags[id(item)] = tag
        tag.follow()
        mirror = pg.InfiniteLine(pos=item.price(), angle=0, movable=False,
                                 pen=pg.mkPen(item.style.color, width=1.2, style=item.style.dash))  # fmt: skip
        mirror.setZValue(35)
        self.map_plot.addItem(mirror, ignoreBounds=True)
        item.sigPositionChanged.connect(lambda it, m=mirror: m.setPos(it.price()))
        self.mirrors[id(item)] = mirror
        return item

    def remove(self, item: PriceLineItem | None = None) -> None:
        item = item or self.selected
        if item is None or item not in self.items or item is self.liq_item:
            return
        if item.kind == "entry" and self.position is not None and item.model.extra:
            self.position = None
        self._remove_item(item)
        self._sync_position_line()
        self._after_change()

    def _remove_item(self, item: PriceLineItem) -> None:
        if self.selected is item:
            self.selected = None
        self.items.remove(item)
        tag = self.tags.pop(id(item), None)
        if tag is not None:
            tag.detach()
        mirror = self.mirrors.pop(id(item), None)
        if mirror is not None:
            self.map_plot.removeItem(mirror)
        self.plot.removeItem(item)

    def clear(self) -> None:
        for item in list(self.items):
            self._remove_item(item)
        self.liq_item, self.position = None, None
        self._after_change()

    def _clear_items(self) -> None:
        for item in list(self.items):
            self._remove_item(item)
        self.liq_item = None

    def select(self, item: PriceLineItem | None) -> None:
        if self.selected is not None and self.selected is not item and self.selected in self.items:
            self.selected.set_selected(False)
        self.selected = item
        if item is not None:
            item.set_selected(True)

    def nudge(self, ticks: int, item: PriceLineItem | None = None) -> None:
        item = item or self.selected
        if item is None or not item.movable:
            return
        item.setPos(item.price() + ticks * self.tick)
        self._after_change(save_later=True)

    def set_price(self, item: PriceLineItem, price: float) -> None:
        if price > 0 and math.isfinite(price):
            item.setPos(price)
            self._after_change()

    def _on_dragged(self, item: PriceLineItem) -> None:
        if item.kind == "entry" and self.position is not None:
            self._sync_position_line()
        self.refresh_labels()

    def _on_move_finished(self, item: PriceLineItem) -> None:
        self._after_change()

    def _after_change(self, save: bool = True, save_later: bool = False) -> None:
        if self.position is not None:
            self._sync_position_line()
        self.request_map()
        self.refresh_labels()
        self.changed.emit()
        if save_later:
            self._save_timer.start()
        elif save:
            self.save()

    def begin_sandbox(self) -> None:
        """From now on changes to the lines are not written (a replay's rehearsal): `end_sandbox` keeps them
        or puts back the lines as they were."""
        if self.sandbox is None:
            if self._save_timer.isActive():
                self._save_timer.stop()
                self.save()
            self.sandbox = (self.lines(), self.position)

    def sandbox_changed(self) -> bool:
        """The lines differ from those before the sandbox began."""
        if self.sandbox is None:
            return False
        key = [(x.kind, x.price, x.label) for x in self.lines()]
        return key != [(x.kind, x.price, x.label) for x in self.sandbox[0]]

    def end_sandbox(self, keep: bool) -> None:
        """Keep the lines drawn and moved in the sandbox (written now), or put back the ones from before."""
        if self.sandbox is None:
            return
        before, position = self.sandbox
        self.sandbox = None
        if keep:
            self.save()
            return
        self._clear_items()
        self.position = position
        for line in before:
            self._add_item(PriceLine(line.kind, line.price, line.label, dict(line.extra)))
        self._sync_position_line()
        self._after_change(save=False)

    def save(self) -> None:
        if not self.persist or not self.exchange or self.sandbox is not None:
            return
        try:
            save_lines(self.exchange, self.symbol, self.lines())
        except OSError as exc:
            self.chart.flash(f"cannot save price lines: {exc.strerror or exc}")
            return
        for other in list(_controllers):
            if (
                other is not self
                and other.persist
                and (other.exchange, other.symbol) == (self.exchange, self.symbol)
            ):
                with contextlib.suppress(RuntimeError):  # a closed tab's controller, being deleted
                    other.reload()

    def reload(self) -> None:
        """The market's lines as stored (another tab of the same market saved them); not in a sandbox."""
        if self.sandbox is not None:
            return
        self.set_market(self.exchange, self.symbol, self.tick, self.last_price)

    # ------------------------------------------------------------------ position

    def entry_item(self) -> PriceLineItem | None:
        return next((i for i in self.items if i.kind == "entry" and i.model.extra), None)

    def set_position(self, position: Position | None) -> None:
        """Draw the trader's entry and liquidation price (None: remove them)."""
        entry = self.entry_item()
        if position is None:
            self.position = None
            if entry is not None:
                self._remove_item(entry)
            self._sync_position_line()
            self._after_change()
            return
        if entry is None:  # an existing plain entry line becomes the position's, else a new one
            entry = next((i for i in self.items if i.kind == "entry"), None)
        if entry is None:
            entry = self._add_item(PriceLine("entry", position.entry))
        entry.setPos(position.entry)
        self.position = Position(position.side, entry.price(), position.leverage, position.size_usd)
        entry.model.extra = self.position.to_extra()
        self._after_change()

    def _sync_position_line(self) -> None:
        entry = self.entry_item()
        pos = self.position
        if pos is not None and entry is not None:
            pos = self.position = Position(pos.side, entry.price(), pos.leverage, pos.size_usd)
        if pos is None or entry is None:
            if self.liq_item is not None:
                self._remove_item(self.liq_item)
                self.liq_item = None
            return
        risk = position_risk(pos.side, pos.entry, pos.leverage, pos.size_usd)
        if self.liq_item is None:
            self.liq_item = self._add_item(PriceLine("liquidation", risk.liquidation))
        self.liq_item.setPos(risk.liquidation)

    def risk_for(self, item: PriceLineItem) -> PositionRisk | None:
        pos = self.position
        if pos is None or item.kind not in ("stop", "target"):
            return None
        try:
            return position_risk(pos.side, pos.entry, pos.leverage, pos.size_usd, stop=item.price())
        except ValueError:
            return None

    # ------------------------------------------------------------------ advice

    def request_map(self, live: bool = False) -> None:
        """Ask the engine for the liquidation map at the latest bar (fixed-width bins). ``live``: a revision of
        the live bar asks for it (many a second): at most one map every MAP_INTERVAL_S then, the newest."""
        c = self.chart
        if not c.model_ready or c.candles is None or not len(c.candles):
            return
        now = float(c.candles.close[-1])
        bins = advice_bins(now, [i.price() for i in self.items])
        key = (c.data_generation, len(c.candles), now, bins)
        if key == self._map_key:
            return
        if live and self._map_key is not None and self._map_key[:2] == key[:2]:
            wait_ms = int((self._map_asked + MAP_INTERVAL_S - time.monotonic()) * 1000)
            if wait_ms > 0:
                if not self._map_timer.isActive():
                    self._map_timer.start(wait_ms)
                return
        self._map_timer.stop()
        self._map_asked = time.monotonic()

        def newest_map(engine: LiquidationEngine) -> LiquidationMap:
            return liquidation_map(engine, bins, engine.n_bars - 1)

        # A newer request drops the one still queued: the labels get the newest map, never a backlog.
        c.query(newest_map, lambda lmap: self._on_map(key, lmap), supersede="advice-map")

    def _on_map(self, key: tuple[Any, ...], lmap: LiquidationMap) -> None:
        self._map_key, self.lmap = key, lmap
        self.refresh_labels()
        self.advice_map_changed.emit(lmap)

    def advice_for(self, item: PriceLineItem) -> StopAdvice | None:
        if self.lmap is None or item.kind != "stop":
            return None
        s = self.settings
        return assess_stop(self.lmap, item.price(), band_pct=s.band_pct, near_pct=s.near_pct,
                           buffer_pct=s.buffer_pct, tick=self.tick)  # fmt: skip

    def advice_target(self, item: PriceLineItem) -> float | None:
        adv = self.advice_for(item)
        return adv.beyond if adv is not None and adv.warns else None

    def move_beyond(self, item: PriceLineItem | None = None) -> bool:
        """Put a stop just past the far edge of the cluster it sits in (or in front of)."""
        item = item or self.selected or next((i for i in self.items if i.kind == "stop"), None)
        if item is None:
            self.chart.flash("no stop line")
            return False
        target = self.advice_target(item)
        if target is None:
            self.chart.flash("the stop is clear of clusters")
            return False
        item.setPos(target)
        self.select(item)
        self._after_change()
        self.chart.flash(f"stop moved beyond the cluster to {fmt.price(item.price(), item.decimals)}")
        return True

    def magnets(self) -> list[Magnet]:
        """The advice map's magnets (every price update asks: found once per map)."""
        if self.lmap is None:
            return []
        if self._magnets[0] is not self.lmap:
            self._magnets = (self.lmap, find_magnets(self.lmap, per_side=3))
        return self._magnets[1]

    # ------------------------------------------------------------------ labels

    def readout(self, item: PriceLineItem) -> LineReadout:
        price = item.price()
        last = self.last_price
        d = item.decimals
        dist = dist_pct = None
        style = item.style
        head = f"<b style='color:{style.color}'>{style.short}</b> <b>{fmt.price(price, d)}</b>"
        if item.kind == "liquidation" and self.position is not None:
            pos = self.position
            head = (
                f"<b style='color:{style.color}'>LIQ</b> <b>{fmt.price(price, d)}</b> "
                f"<span style='color:#9aa3b5'>({'long' if pos.side == LONG else 'short'} "
                f"{pos.leverage:g}× {fmt.usd(pos.size_usd)})</span>"
            )
        parts = [head]
        if last is not None:
            dist = price - last
            dist_pct = dist / last * 100
            parts.append(f"{dist_pct:+.2f}% ({dist:+,.{d}f})")
        band = None
        if self.lmap is not None:
            band = band_notional(self.lmap, price, self.settings.band_pct)
            parts.append(f"liq ±{self.settings.band_pct:g}%: <b>{fmt.usd(band)}</b>")
        risk = self.risk_for(item)
        if risk is not None and risk.stop_after_liquidation:
            # past the position's own liquidation price: no P&L here, the position is gone before
            parts.append(f"<b style='color:{WARN_COLOR}'>liquidated first</b>")
        elif risk is not None and risk.stop_loss_usd is not None:
            money = -risk.stop_loss_usd
            color = "#ff6b81" if money < 0 else "#2ee6a6"
            word = "risk" if money < 0 else "reward"
            parts.append(f"{word} <b style='color:{color}'>{'−' if money < 0 else '+'}${abs(money):,.0f}</b>")
        rows = [" · ".join(parts)]
        advice = self.advice_for(item)
        if advice is not None and advice.warns and advice.beyond is not None:
            rows.append(
                f"<span style='color:{WARN_COLOR}'>⚠ {advice.message()}</span>"
                f" · <u style='color:#ffffff'>click: move beyond → {fmt.price(advice.beyond, d)}</u>"
            )
        if risk is not None and risk.stop_after_liquidation:
            what = "it would never fire" if item.kind == "stop" else "the position is liquidated before it"
            rows.append(
                f"<span style='color:{WARN_COLOR}'>⚠ past the liquidation price "
                f"{fmt.price(risk.liquidation, d)}: {what}</span>"
            )
        html = f"<div style='font-size:8pt; color:#dfe4ee; white-space:nowrap'>{'<br>'.join(rows)}</div>"
        return LineReadout(item.kind, price, last, dist, dist_pct, band, advice, risk, html)

    def refresh_labels(self) -> None:
        for item in self.items:
            item.text.set_html(self.readout(item).html)
        self._schedule_layout()

    def _schedule_layout(self, *_: object) -> None:
        if not self._layout_timer.isActive():
            self._layout_timer.start()

    def layout_labels(self) -> None:
        """Place labels so they overlap neither each other, the legend nor the crosshair readout:
        above the line at the left, else below it, else further right."""
        if not self.items:
            return
        vb_rect = self.vb.sceneBoundingRect()
        width = max(vb_rect.width(), 1.0)
        (_, _), (y0, y1) = self.vb.viewRange()
        obstacles = self.chart.overlay_rects()  # the legend and the crosshair box
        candidates = [
            (0.01, (0, 1)),
            (0.01, (0, 0)),
            (0.36, (0, 1)),
            (0.36, (0, 0)),
            (0.62, (0, 1)),
            (0.62, (0, 0)),
        ]
        # the selected line's label first, then top to bottom
        order = sorted(self.items, key=lambda i: (i is not self.selected, -i.price()))
        for item in order:
            label = item.text
            y = item.price()
            # A line off screen keeps no label: it would hang into the plot from the edge, cut in half.
            label.setVisible(y0 <= y <= y1 and item.isVisible())
            if not label.isVisible():
                continue
            size = label.boundingRect().size()
            w, h = size.width(), size.height()
            line_y = self.vb.mapViewToScene(QtCore.QPointF(0.0, y)).y()
            whole: list[tuple[float, tuple[int, int], QtCore.QRectF]] = []  # inside the plot, clear or not
            chosen = None
            for pos, anchor in candidates:
                left = vb_rect.left() + pos * width
                top = line_y - h if anchor[1] == 1 else line_y
                rect = QtCore.QRectF(left, top, w, h)
                if (
                    rect.top() < vb_rect.top()
                    or rect.bottom() > vb_rect.bottom()
                    or rect.right() > vb_rect.right()
                ):
                    continue
                whole.append((pos, anchor, rect))
                if not any(rect.intersects(o) for o in obstacles):
                    chosen = (pos, anchor, rect)
                    break
            if chosen is None and whole:
                chosen = whole[0]  # over another label or the readout, but whole, never cut at the edge
            if chosen is None:  # taller or wider than the room: on the side of the line with more of it
                room_above = line_y - vb_rect.top()
                chosen = (0.01, (0, 1) if room_above > vb_rect.bottom() - line_y else (0, 0), QtCore.QRectF())
            obstacles.append(chosen[2])
            label.place(chosen[0], chosen[1])

    # ------------------------------------------------------------------ editing and menus

    def edit(self, item: PriceLineItem) -> QtWidgets.QInputDialog:
        """A small non-modal editor for the exact price (open(), never exec(): qasync)."""
        dlg = QtWidgets.QInputDialog(self.chart.widget)
        dlg.setWindowTitle(f"{item.style.name} price")
        dlg.setLabelText(f"{item.style.name} price (tick {fmt.price(self.tick, item.decimals)}):")
        dlg.setInputMode(QtWidgets.QInputDialog.InputMode.DoubleInput)
        dlg.setDoubleDecimals(item.decimals)
        dlg.setDoubleRange(0.0, 1e12)
        dlg.setDoubleStep(self.tick)
        dlg.setDoubleValue(item.price())
        dlg.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.doubleValueSelected.connect(lambda v, it=item: self._edited(it, v))
        dlg.finished.connect(lambda _r, d=dlg: self._forget(d))
        self._dialogs.append(dlg)
        dlg.open()
        return dlg

    def _edited(self, item: PriceLineItem, value: float) -> None:
        if item in self.items:
            self.set_price(item, value)

    def _forget(self, widget: QtWidgets.QWidget) -> None:
        if widget in self._dialogs:
            self._dialogs.remove(widget)

    def line_menu(self, item: PriceLineItem, screen_pos: QtCore.QPointF) -> QtWidgets.QMenu:
        menu = QtWidgets.QMenu(self.chart.widget)
        menu.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addAction("Edit price…", lambda: self.edit(item))
        target = self.advice_target(item)
        if target is not None:
            menu.addAction(
                f"Move beyond cluster → {fmt.price(target, item.decimals)}", lambda: self.move_beyond(item)
            )
        if item is not self.liq_item:
            menu.addSeparator()
            menu.addAction(f"Delete {item.style.name.lower()} line", lambda: self.remove(item))
        self._menu = menu
        menu.popup(QtCore.QPoint(int(screen_pos.x()), int(screen_pos.y())))
        return menu

    def chart_menu(
        self,
        price: float,
        screen_pos: QtCore.QPoint,
        extra: list[tuple[str, Callable[[], None]]] | None = None,
    ) -> QtWidgets.QMenu:
        """Right-click on the chart: add a line at the clicked price."""
        menu = QtWidgets.QMenu(self.chart.widget)
        menu.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        p = snap_to_tick(price, self.tick)
        text = fmt.price(p, tick_decimals(self.tick))

        def add(kind: str) -> Callable[[], object]:
            return lambda: self.add_line(kind, p)

        for kind, words in (("stop", "Stop here"), ("target", "Target here"), ("entry", "Entry here"),
                            ("alert", "Alert here")):  # fmt: skip
            menu.addAction(f"{words}  ({text})", add(kind))
        for title, fn in extra or []:
            menu.addSeparator()
            menu.addAction(title, fn)
        self._menu = menu
        menu.popup(screen_pos)
        return menu

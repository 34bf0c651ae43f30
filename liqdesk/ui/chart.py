"""The chart: candles over the heatmap, volume pane, liquidation-map side panel, crosshair.

Every graphics item is created once in __init__ and later updated in place (setData, setImage,
setPos); nothing here computes model numbers: frames arrive from the worker ready to draw.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from liqdesk.core.liqmap import Magnet
from liqdesk.core.series import LONG, Candles
from liqdesk.ui import format as fmt
from liqdesk.ui import theme
from liqdesk.ui.axes import PriceAxisItem, TimeAxisItem, UsdAxisItem, VolumeAxisItem
from liqdesk.ui.bars import CandlestickItem, VolumeItem
from liqdesk.ui.frames import Bubbles, Frame, colour

MAX_TIERS = 8
MAX_MAGNETS = 6
AXIS_WIDTH = 74
Y_PAD = 0.10  # auto-fit margin above and below the candles: levels sit beyond the extremes


class EagerViewBox(pg.ViewBox):
    """A ViewBox that moves its items as soon as its range changes.

    pyqtgraph defers the child transform to the start of the next paint (prepareForPaint); moving
    items inside a paint marks the scene dirty again, so every pan or zoom was painted twice (the
    second time with nothing new). Applying it here lets the one queued scene update cover it.
    """

    def updateViewRange(self, forceX: bool = False, forceY: bool = False) -> None:
        super().updateViewRange(forceX, forceY)
        if self._matrixNeedsUpdate and self.width() > 0 and self.height() > 0:
            self.updateMatrix()

    def keyPressEvent(self, ev: QtGui.QKeyEvent) -> None:
        ev.ignore()  # pyqtgraph's zoom history took -, +, = and Backspace: the window's keys do the chart's


class HeatmapItem(pg.ImageItem):
    """The heatmap image, with pyqtgraph's ImageItem API (setImage, setRect, setLookupTable, .image,
    .lut), painted from a 32-bit ARGB copy made once per image.

    pyqtgraph hands Qt a uint8 image with a colour table (Indexed8), which Qt converts to 32 bits in
    full, margins included, on every paint (~4 ms at 2,250 × 1,250); a 32-bit image is scaled and
    clipped straight onto the screen, pixel for pixel the same picture (Format_ARGB32, not the
    premultiplied or RGB32 formats, whose scaling rounds differently). The worker colours frames
    itself (`set_coloured`); an image set any other way, or a colour map changed since, is coloured
    here once.
    """

    def __init__(self) -> None:
        super().__init__(axisOrder="row-major")
        self._argb: np.ndarray | None = None  # the QImage's pixels (kept alive with it)
        self._coloured: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # image, lut, argb

    def set_coloured(self, image: np.ndarray, argb: np.ndarray | None, lut: np.ndarray | None) -> None:
        """Show `image`; `argb` is it already coloured with `lut` (None: colour it here)."""
        self._coloured = None if argb is None or lut is None else (image, lut, argb)
        self.setImage(image, autoLevels=False, levels=(0, 255))

    def render(self) -> None:
        image, lut = self.image, self.lut
        if image is None or image.ndim != 2 or image.dtype != np.uint8 or not isinstance(lut, np.ndarray):
            self._argb = None
            super().render()
            return
        c = self._coloured
        if (
            c is not None
            and _same_buffer(c[0], image)
            and c[1].shape == lut.shape
            and np.array_equal(c[1], lut)
        ):
            argb = c[2]
        else:
            argb = colour(image, lut)  # a new colour map, or an image not from the worker
        self._coloured = None
        h, w = image.shape
        self._argb = argb
        self.qimage = QtGui.QImage(argb.data, w, h, w * 4, QtGui.QImage.Format.Format_ARGB32)
        self._renderRequired = False
        self._unrenderable = False

    def paint(self, painter: QtGui.QPainter, *args: object) -> None:
        if self.image is None:
            return
        if self._renderRequired:
            self.render()
            if self._unrenderable:
                return
        if self._argb is None:
            super().paint(painter, *args)
            return
        h, w = self.image.shape[:2]
        # The whole image: Qt clips to the screen, and a source sub-rectangle would round differently.
        painter.drawImage(QtCore.QRectF(0, 0, w, h), self.qimage)


def _same_buffer(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]


class ChartViewBox(EagerViewBox):
    """Wheel zooms time around the cursor (y follows the candles), drag pans, double-click resets."""

    reset_requested = QtCore.Signal()

    def mouseClickEvent(self, ev: object) -> None:
        if ev.double() and ev.button() == QtCore.Qt.MouseButton.LeftButton:  # type: ignore[attr-defined]
            ev.accept()  # type: ignore[attr-defined]
            self.reset_requested.emit()
            return
        super().mouseClickEvent(ev)


class ChartWidget(pg.GraphicsLayoutWidget):
    view_changed = QtCore.Signal()  # x or y range changed (already debounced)
    cursor_moved = QtCore.Signal(float, float)  # bar index, price
    cursor_left = QtCore.Signal()
    levels_changed = QtCore.Signal(float, float)  # user dragged the colour levels
    reset_requested = QtCore.Signal()
    readout_toggled = QtCore.Signal()  # the crosshair box appeared or went (labels move out of its way)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground(theme.BACKGROUND)
        # pyqtgraph caches the view background in a pixmap the size of the view (~10 MB at 2,200 ×
        # 1,175) to save a flat colour fill: no faster, so not kept.
        self.setCacheMode(QtWidgets.QGraphicsView.CacheModeFlag.CacheNone)
        self.ci.layout.setContentsMargins(4, 4, 4, 4)
        self.ci.layout.setSpacing(0)
        self.auto_y = True
        self._n_bars = 0
        self._transform = "sqrt"
        self._frame: Frame | None = None
        self._magnets: list[Magnet] = []  # the frame's magnets, as laid out beside the map
        self._magnet_prices: list[float] = []
        self._flush_window: QtWidgets.QWidget | None = None
        self._map_title = ""
        self._magnet_note = ""  # words every magnet label carries after its numbers (their measured standing)
        self._map_note = (
            ""  # rich text under the cumulative totals (a layer's legend for what it draws on the map)
        )
        self._flushing = False

        # ---- price plot: heatmap image, candles, markers, price line, crosshair
        self.time_axis = TimeAxisItem()
        self.price_vb = ChartViewBox()
        self.price_plot = pg.PlotItem(
            viewBox=self.price_vb, axisItems={"right": PriceAxisItem(), "bottom": TimeAxisItem()}
        )
        p = self.price_plot
        p.hideAxis("left")
        p.showAxis("right")
        p.getAxis("bottom").setStyle(showValues=False)
        p.getAxis("bottom").setHeight(4)
        p.getAxis("right").setWidth(AXIS_WIDTH)
        p.setMenuEnabled(False)
        p.hideButtons()
        self.price_vb.setBackgroundColor(theme.CHART_BACKGROUND)
        self.price_vb.setMouseEnabled(x=True, y=False)
        self.price_vb.reset_requested.connect(self.reset_requested)

        self.heatmap = HeatmapItem()
        self.heatmap.setZValue(-10)
        self.heatmap.setAutoDownsample(False)
        p.addItem(self.heatmap)

        self.candles = CandlestickItem()
        self.candles.setZValue(10)
        p.addItem(self.candles)

        self.sweeps = pg.ScatterPlotItem(pxMode=True, symbol="o", hoverable=False)
        self._sweep_pens = (pg.mkPen(theme.SWEEP_LONG, width=1.3), pg.mkPen(theme.SWEEP_SHORT, width=1.3))
        self._no_brush = pg.mkBrush(None)
        self.sweeps.setZValue(15)
        p.addItem(self.sweeps)
        self.real_liqs = pg.ScatterPlotItem(pxMode=True, symbol="d", hoverable=False)
        self.real_liqs.setZValue(16)
        p.addItem(self.real_liqs)

        price_pen = pg.mkPen(theme.PRICE_LINE, width=1, style=QtCore.Qt.PenStyle.DashLine)
        self.price_line = pg.InfiniteLine(
            angle=0,
            movable=False,
            pen=price_pen,
            label="{value:,.1f}",
            labelOpts={
                "position": 1.0,
                "color": "#101010",
                "fill": theme.PRICE_LINE,
                "anchors": [(1, 0.5), (1, 0.5)],
            },
        )
        self.price_line.setZValue(20)
        p.addItem(self.price_line, ignoreBounds=True)

        cross_pen = pg.mkPen(theme.CROSSHAIR, width=1, style=QtCore.Qt.PenStyle.DotLine)
        self.cross_v = pg.InfiniteLine(angle=90, movable=False, pen=cross_pen)
        self.cross_h = pg.InfiniteLine(angle=0, movable=False, pen=cross_pen)
        for line in (self.cross_v, self.cross_h):
            line.setZValue(30)
            line.hide()
            p.addItem(line, ignoreBounds=True)

        pal = theme.palette()
        self.legend = pg.LegendItem(offset=(8, -8), labelTextColor=pal["text"], labelTextSize="8pt",
                                    brush=pg.mkBrush(pal["legend"]), pen=pg.mkPen(pal["legend_border"]))  # fmt: skip
        self.legend.setParentItem(self.price_vb)
        self._legend_samples = self._make_legend()
        self._venue_samples: list[pg.ScatterPlotItem] = []  # per venue, for an aggregated market

        # ---- volume pane (shares the time axis)
        self.volume_vb = ChartViewBox()
        self.volume_plot = pg.PlotItem(
            viewBox=self.volume_vb, axisItems={"bottom": self.time_axis, "right": VolumeAxisItem()}
        )
        v = self.volume_plot
        v.hideAxis("left")
        v.showAxis("right")
        v.getAxis("right").setWidth(AXIS_WIDTH)
        v.setMenuEnabled(False)
        v.hideButtons()
        v.setXLink(p)
        self.volume_vb.setMouseEnabled(x=True, y=False)
        self.volume_vb.reset_requested.connect(self.reset_requested)
        self.volume = VolumeItem()
        v.addItem(self.volume)
        self.cross_v_volume = pg.InfiniteLine(angle=90, movable=False, pen=cross_pen)
        self.cross_v_volume.hide()
        v.addItem(self.cross_v_volume, ignoreBounds=True)

        # ---- liquidation-map panel (shares the price axis)
        self.map_vb = EagerViewBox()
        self.map_plot = pg.PlotItem(viewBox=self.map_vb, axisItems={"bottom": UsdAxisItem()})
        m = self.map_plot
        m.hideAxis("left")
        m.getAxis("bottom").setStyle(tickTextOffset=2)
        m.setMenuEnabled(False)
        m.hideButtons()
        # Price axis shared with the chart, aligned pixel for pixel (pyqtgraph's setYLink misaligns
        # views of different heights when y is not inverted, so the map follows by hand).
        for vb in (self.price_vb, self.map_vb):
            vb.sigResized.connect(self._on_resized)
        # The volume bars' bucket size depends on the pane's pixel width: refit when it changes
        # (a fit made before the first layout used huge buckets and left the bars flat).
        self.volume_vb.sigResized.connect(self._refit_volume)
        self.map_vb.setMouseEnabled(x=False, y=False)
        self.map_vb.setBackgroundColor(theme.PANEL_BACKGROUND)
        m.setTitle("Liquidation map", color=theme.TEXT_DIM, size="8pt")
        self.tier_bars = []
        for k in range(MAX_TIERS):
            bar = pg.BarGraphItem(x0=[0], y=[0], width=[0], height=[0], brush=theme.TIER_COLORS[k], pen=None)
            bar.setOpts(pen=pg.mkPen(None))
            m.addItem(bar)
            self.tier_bars.append(bar)
        self.cum_long = pg.PlotDataItem(pen=pg.mkPen(theme.LONG_COLOR, width=1.5))
        self.cum_short = pg.PlotDataItem(pen=pg.mkPen(theme.SHORT_COLOR, width=1.5))
        m.addItem(self.cum_long)
        m.addItem(self.cum_short)
        self.cum_label = pg.LabelItem("", color=theme.TEXT_DIM, size="7pt")
        self.map_price_line = pg.InfiniteLine(angle=0, movable=False, pen=price_pen)
        m.addItem(self.map_price_line, ignoreBounds=True)
        self.map_cross_h = pg.InfiniteLine(angle=0, movable=False, pen=cross_pen)
        self.map_cross_h.hide()
        m.addItem(self.map_cross_h, ignoreBounds=True)
        self.magnet_labels = []
        for _ in range(MAX_MAGNETS):
            label = pg.TextItem("", anchor=(1, 0.5), fill=pg.mkBrush(13, 16, 23, 200))
            label.textItem.document().setDocumentMargin(1.0)  # a box as tall as the text: ~16 px, not 22
            label.setZValue(40)
            label.hide()
            m.addItem(label, ignoreBounds=True)
            self.magnet_labels.append(label)
        self.tier_legend = pg.LabelItem("", color=theme.TEXT_DIM, size="7pt")
        self._tier_labels: list[str] = []

        # ---- colour bar (levels) under the map
        self.colorbar = pg.ColorBarItem(
            values=(0.0, 1.0), colorMap=theme.colormap(theme.DEFAULT_COLORMAP), orientation="horizontal",
            interactive=True, width=10, rounding=1e-6, colorMapMenu=False,
        )  # fmt: skip
        self.colorbar.axis.tickStrings = self._colorbar_ticks  # USD labels for transformed levels
        self.colorbar.sigLevelsChanged.connect(self._on_colorbar)
        self._colorbar_label = pg.LabelItem("heat scale (drag handles)", color=theme.TEXT_DIM, size="7pt")

        # ---- layout
        self.addItem(self.price_plot, row=0, col=0)
        self.addItem(self.map_plot, row=0, col=1)
        self.addItem(self.volume_plot, row=1, col=0)
        side = self.ci.addLayout(row=1, col=1)
        side.addItem(self.cum_label, row=0, col=0)
        side.addItem(self.tier_legend, row=1, col=0)
        side.addItem(self._colorbar_label, row=2, col=0)
        side.addItem(self.colorbar, row=3, col=0)
        self.ci.layout.setRowStretchFactor(0, 5)
        self.ci.layout.setRowStretchFactor(1, 1)
        self.ci.layout.setColumnStretchFactor(0, 1)
        self.ci.layout.setColumnStretchFactor(1, 0)
        self.ci.layout.setHorizontalSpacing(2)
        self._set_side_width()
        for plot in (self.price_plot, self.volume_plot, self.map_plot):
            for name in ("left", "right", "top", "bottom"):
                axis = plot.getAxis(name)
                if not axis.label.isVisible():
                    # pyqtgraph's default re-sets the label's HTML and re-lays out the axis on every
                    # range change (hidden axes too) to pick an SI prefix for a label never shown.
                    axis.enableAutoSIPrefix(False)

        # ---- readout overlay
        self.readout = QtWidgets.QLabel(self)
        self.readout.setObjectName("readout")
        self.readout.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.readout.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.readout.hide()
        self.empty_notice = QtWidgets.QLabel(self)
        self.empty_notice.setObjectName("notice")
        self.empty_notice.hide()
        # Back to the newest bar (End does the same): shown while the newest bar is out of view.
        self.live_button = QtWidgets.QToolButton(self)
        self.live_button.setObjectName("liveButton")
        self.live_button.setText("Go live ⇥")
        self.live_button.setToolTip("Back to the newest bar and follow it (End)")
        self.live_button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.live_button.clicked.connect(self.jump_to_end)
        self.live_button.hide()

        # ---- signals
        self._debounce = QtCore.QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(40)
        self._debounce.timeout.connect(self.view_changed)
        self.price_vb.sigXRangeChanged.connect(self._on_x_range)
        self.price_vb.sigYRangeChanged.connect(self._on_y_range)
        # A resized plot (shown, a dock opened) may need a sharper frame: the window checks on view changes.
        self.price_vb.sigResized.connect(lambda *_: self._announce_view_change())
        self._mouse_proxy = pg.SignalProxy(self.scene().sigMouseMoved, rateLimit=60, slot=self._on_mouse)
        self._pointer_inside = False
        self._pointer_at: QtCore.QPointF | None = None  # scene position of the pointer over the chart
        self.set_colormap(theme.DEFAULT_COLORMAP)

    # ------------------------------------------------------------------ painting

    def keyPressEvent(self, ev: QtGui.QKeyEvent) -> None:
        # Every key goes on to the window (its keyPressEvent and shortcuts): the scene had pyqtgraph's view
        # box zoom on -, + and Backspace, and the scroll area behind the view took the arrow keys.
        ev.ignore()

    def showEvent(self, ev: QtGui.QShowEvent) -> None:
        super().showEvent(ev)
        window = self.window()
        if window is not self._flush_window:
            if self._flush_window is not None:
                self._flush_window.removeEventFilter(self)
            window.installEventFilter(self)
            self._flush_window = window

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:
        # The window is about to paint (its event loop turn, or a synchronous repaint/grab): let the
        # scene hand over its queued item updates first, so they join this paint instead of
        # causing a second one of the same picture right after it.
        if ev.type() == QtCore.QEvent.Type.UpdateRequest and not self._flushing and obj is self._flush_window:
            self._flushing = True
            try:
                QtCore.QCoreApplication.sendPostedEvents(self.scene(), QtCore.QEvent.Type.MetaCall)
            finally:
                self._flushing = False
        return False

    # ------------------------------------------------------------------ layout helpers

    def _set_side_width(self) -> None:
        w = int(np.clip(self.width() * 0.2, 190, 330))
        self.ci.layout.setColumnFixedWidth(1, w)

    def resizeEvent(self, ev: QtGui.QResizeEvent) -> None:
        super().resizeEvent(ev)
        if not hasattr(self, "readout"):  # called by the base class before __init__ is done
            return
        self._set_side_width()
        self._place_overlays()

    def _place_overlays(self) -> None:
        rect = self.price_vb.sceneBoundingRect()
        top_left = self.mapFromScene(rect.topLeft())
        self.readout.move(top_left.x() + 8, top_left.y() + 8)
        if self.live_button.isVisible():
            self.live_button.adjustSize()
            bottom_right = self.mapFromScene(rect.bottomRight())
            self.live_button.move(bottom_right.x() - self.live_button.width() - 8,
                                  bottom_right.y() - self.live_button.height() - 8)  # fmt: skip
        if self.empty_notice.isVisible():
            self.empty_notice.adjustSize()
            c = self.mapFromScene(rect.center())
            self.empty_notice.move(
                c.x() - self.empty_notice.width() // 2, c.y() - self.empty_notice.height() // 2
            )

    def _on_resized(self, *_: object) -> None:
        # The map's pixels per price changed: its labels keep their distance apart and inside its edges.
        self._realign_map()
        self._layout_magnets()

    def _realign_map(self, *_: object) -> None:
        _, (y0, y1) = self.price_vb.viewRange()
        main, side = self.price_vb.sceneBoundingRect(), self.map_vb.sceneBoundingRect()
        if main.height() <= 0 or side.height() <= 0:
            return
        per_px = (y1 - y0) / main.height()  # scene y grows downward, price upward
        top = y1 - (side.top() - main.top()) * per_px
        bottom = y1 - (side.bottom() - main.top()) * per_px
        self.map_vb.setYRange(bottom, top, padding=0)

    def _make_legend(self) -> list[pg.PlotDataItem]:
        def sample(symbol: str, pen: object, brush: object, size: int) -> pg.PlotDataItem:
            return pg.PlotDataItem(
                [0], [0], pen=None, symbol=symbol, symbolPen=pen, symbolBrush=brush, symbolSize=size
            )

        items = [
            (sample("o", pg.mkPen(theme.SWEEP_LONG, width=1.5), None, 10), "estimated sweep: longs (model)"),
            (
                sample("o", pg.mkPen(theme.SWEEP_SHORT, width=1.5), None, 10),
                "estimated sweep: shorts (model)",
            ),
            (
                sample("d", pg.mkPen("w", width=0.8), pg.mkBrush(theme.REAL_LONG), 9),
                "real liquidation: long (exchange)",
            ),
            (
                sample("d", pg.mkPen("w", width=0.8), pg.mkBrush(theme.REAL_SHORT), 9),
                "real liquidation: short (exchange)",
            ),
        ]
        for item, name in items:
            self.legend.addItem(item, name)
        return [i for i, _ in items]

    def apply_theme(self, p: dict[str, str]) -> None:
        """A theme's palette (theme.palette()) on the panels, axes and labels; the heatmap keeps its colours."""
        self.setBackground(p["window"])
        self.price_vb.setBackgroundColor(p["chart"])
        self.map_vb.setBackgroundColor(p["map"])
        axis_pen = pg.mkPen(p["axis"], width=1, cosmetic=True)
        for plot in (self.price_plot, self.volume_plot, self.map_plot):
            for side in ("left", "right", "bottom", "top"):
                ax = plot.getAxis(side)
                ax.setPen(axis_pen)
                ax.setTextPen(p["axis"])
        self.colorbar.axis.setPen(axis_pen)
        self.colorbar.axis.setTextPen(p["axis"])
        for label in (self.map_plot.titleLabel, self.cum_label, self.tier_legend, self._colorbar_label):
            label.opts["color"] = p["text_dim"]
            label.setText(label.text)
        self.set_legend_theme(p)
        if self._frame is not None:
            self.apply_frame(self._frame)  # labels drawn with the theme's colours

    def set_legend_theme(self, p: dict[str, str]) -> None:
        """The legend box and its text in the theme's colours (pyqtgraph's setLabelTextColor only applies
        to labels drawn later: each label is drawn again here)."""
        self.legend.setBrush(pg.mkBrush(p["legend"]))
        self.legend.setPen(pg.mkPen(p["legend_border"]))
        self.legend.setLabelTextColor(p["text"])
        for _, label in self.legend.items:
            label.setText(label.text)

    def set_venue_legend(self, entries: list[tuple[str, str]]) -> None:
        """The real liquidations' legend per venue of an aggregated market: (name, colour) each, long
        liquidations as ▼ and short ones as ▲ in the venue's colour."""
        for item in [*self._legend_samples[2:], *self._venue_samples]:
            self.legend.removeItem(item)
        self._venue_samples = []
        for name, color in entries:
            item = pg.ScatterPlotItem(
                symbol="t", size=9, pen=pg.mkPen("k", width=0.6), brush=pg.mkBrush(color)
            )
            self.legend.addItem(item, f"real liquidations: {name} (▼ long ▲ short)")
            self._venue_samples.append(item)

    def set_real_legend(self, has_real: bool) -> None:
        for item in [*self._legend_samples[2:], *self._venue_samples]:
            self.legend.removeItem(item)
        self._venue_samples = []
        names = ("real liquidation: long (exchange)", "real liquidation: short (exchange)")
        if not has_real:
            names = ("real liquidations: none in this data", "")
        for item, name in zip(self._legend_samples[2:], names, strict=True):
            if name:
                self.legend.addItem(item, name)

    # ------------------------------------------------------------------ data

    def set_candles(self, candles: Candles) -> None:
        self._n_bars = len(candles)
        self.candles.set_bars(candles.open, candles.high, candles.low, candles.close, candles.volume)
        self.volume.set_bars(candles.open, candles.high, candles.low, candles.close, candles.volume)
        self.time_axis.set_times(candles.open_time, candles.interval_ms)
        self.price_plot.getAxis("bottom").set_times(candles.open_time, candles.interval_ms)
        self._set_x_limits()
        if len(candles):
            self.price_line.setPos(float(candles.close[-1]))
            self.map_price_line.setPos(float(candles.close[-1]))
        self._update_live_button()

    def _set_x_limits(self) -> None:
        # Grown with every appended bar: limits set once at load would cap panning and End at the bars
        # loaded then, and a live chart would run off its own edge.
        n = self._n_bars
        for vb in (self.price_vb, self.volume_vb):
            vb.setLimits(xMin=-0.5 - 20, xMax=n + max(20, n * 0.05), minXRange=10)

    def bar_count(self) -> int:
        """Bars drawn (live bars included as they come)."""
        return self._n_bars

    def shown_frame(self) -> Frame | None:
        """The frame whose heatmap and map are drawn (None before the first, or after clear_data)."""
        return self._frame

    def newest_in_view(self) -> bool:
        """The newest bar is on screen: a live chart follows new bars only then."""
        if not self._n_bars:
            return False
        x0, x1 = self.visible_bars()
        return x0 - 0.5 <= self._n_bars - 1 <= x1

    def update_last_bar(self, candles_row: Candles, append: bool) -> None:
        """A live bar moved (or a new one came). While the newest bar is in view the chart scrolls with it
        (one bar per new bar, as TradingView does) and the price axis re-fits; once the user has panned
        back in time the view stays where it is."""
        r = candles_row
        following = self.newest_in_view()
        self.candles.update_last(r.open[0], r.high[0], r.low[0], r.close[0], r.volume[0], append=append)
        self.volume.update_last(r.open[0], r.high[0], r.low[0], r.close[0], r.volume[0], append=append)
        if append:
            self._n_bars += 1
            self._set_x_limits()
        self.price_line.setPos(float(r.close[0]))
        self.map_price_line.setPos(float(r.close[0]))
        if following:
            x0, x1 = self.visible_bars()
            if append:
                self.price_vb.setXRange(x0 + 1.0, x1 + 1.0, padding=0)  # fits y in _on_x_range
            elif self.auto_y:
                self.fit_y()
        self._update_live_button()

    def set_times(self, open_time: np.ndarray, interval_ms: int) -> None:
        self.time_axis.set_times(open_time, interval_ms)
        self.price_plot.getAxis("bottom").set_times(open_time, interval_ms)

    # ------------------------------------------------------------------ view

    def show_bars(self, start_bar: float, end_bar: float) -> None:
        # Room right of the last bar for the price tag.
        right = max(3.0, (end_bar - start_bar) * 0.04)
        self.price_vb.setXRange(start_bar - 0.5, end_bar + right, padding=0)
        self.fit_y()

    def visible_bars(self) -> tuple[float, float]:
        (x0, x1), _ = self.price_vb.viewRange()
        return x0, x1

    def visible_prices(self) -> tuple[float, float]:
        _, (y0, y1) = self.price_vb.viewRange()
        return y0, y1

    def plot_size_px(self) -> tuple[float, float]:
        r = self.price_vb.sceneBoundingRect()
        return max(r.width(), 1.0), max(r.height(), 1.0)

    def fit_y(self) -> None:
        x0, x1 = self.visible_bars()
        yr = self.candles.y_range(x0, x1)
        if yr is not None:
            lo, hi = yr
            pad = (hi - lo) * Y_PAD + hi * 1e-4
            self.price_vb.setYRange(lo - pad, hi + pad, padding=0)
        self._refit_volume()

    def set_auto_y(self, on: bool) -> None:
        self.auto_y = on
        self.price_vb.setMouseEnabled(x=True, y=not on)
        if on:
            self.fit_y()

    def pan(self, fraction: float) -> None:
        x0, x1 = self.visible_bars()
        d = (x1 - x0) * fraction
        self.price_vb.setXRange(x0 + d, x1 + d, padding=0)

    def zoom(self, factor: float, center: float | None = None) -> None:
        """factor < 1 zooms in; about `center` (bar index), the right edge when None."""
        x0, x1 = self.visible_bars()
        c = x1 if center is None else center
        self.price_vb.setXRange(c - (c - x0) * factor, c + (x1 - c) * factor, padding=0)

    def jump_to_end(self) -> None:
        """The live edge: the newest bar at the right, the zoom kept (End, the "Live" button)."""
        x0, x1 = self.visible_bars()
        width = x1 - x0
        end = self._n_bars - 1 + max(3.0, width * 0.04)  # room for the price tag, as show_bars leaves
        self.price_vb.setXRange(end - width, end, padding=0)

    def _on_x_range(self, *_: object) -> None:
        if self.auto_y:
            self.fit_y()
        else:
            self._refit_volume()
        self._update_live_button()
        self._follow_pointer()
        self._announce_view_change()

    def _update_live_button(self) -> None:
        show = self._n_bars > 0 and not self.newest_in_view()
        if show != self.live_button.isVisible():
            self.live_button.setVisible(show)
            if show:
                self._place_overlays()

    def _refit_volume(self, *_: object) -> None:
        if len(self.volume):
            x0, x1 = self.visible_bars()
            self.volume_vb.setYRange(0, max(self.volume.max_in(x0, x1), 1e-9) * 1.08, padding=0)

    def _on_y_range(self, *_: object) -> None:
        self._realign_map()
        self._layout_magnets()
        self._follow_pointer()
        self._announce_view_change()

    def _announce_view_change(self) -> None:
        # A throttle, not a debounce: during a long drag the heatmap still follows every 40 ms.
        if not self._debounce.isActive():
            self._debounce.start()

    # ------------------------------------------------------------------ frames from the worker

    def set_colormap(self, name: str) -> None:
        self.colormap = name
        self.heatmap.setLookupTable(theme.lut(name))
        self.colorbar.setColorMap(theme.colormap(name))

    def set_transform(self, kind: str) -> None:
        self._transform = kind
        self.colorbar.axis.picture = None
        self.colorbar.axis.update()

    def apply_frame(self, frame: Frame) -> None:
        if self._frame is None:
            self._frame = frame
            self._show_scales(True)
        self._frame = frame
        self._set_image(frame.image)
        self.heatmap.setRect(*frame.rect)
        self.show_levels(frame.levels)
        self._apply_map(frame)
        self._apply_bubbles(frame.bubbles)

    def _set_image(self, image: np.ndarray) -> None:
        c = self._frame.coloured if self._frame is not None else None
        if c is not None and c[0] is image:
            self.heatmap.set_coloured(image, c[2], c[1])
        else:
            self.heatmap.set_coloured(image, None, None)

    def apply_image(self, image: np.ndarray, levels: tuple[float, float]) -> None:
        self._set_image(image)
        if self._frame is not None:
            self.heatmap.setRect(*self._frame.rect)
        self.show_levels(levels)

    def show_levels(self, levels: tuple[float, float]) -> None:
        lo, hi = levels
        self.colorbar.blockSignals(True)
        span = max(hi - lo, 1e-12)
        self.colorbar.rounding = span / 1000.0
        self.colorbar.setLevels((lo, hi))
        self.colorbar.blockSignals(False)

    def _on_colorbar(self, bar: pg.ColorBarItem) -> None:
        lo, hi = bar.levels()
        self.levels_changed.emit(float(lo), float(hi))

    def _colorbar_ticks(self, values: list[float], scale: float, spacing: float) -> list[str]:
        if self._frame is None:  # no levels yet: no "$0 $0 $0 $1" while the model builds
            return ["" for _ in values]
        return [fmt.usd(_inverse_transform(v, self._transform)) for v in values]

    def _show_scales(self, on: bool) -> None:
        self.map_plot.getAxis("bottom").set_blank(not on)
        self.colorbar.axis.picture = None
        self.colorbar.axis.update()

    def clear_data(self) -> None:
        """Nothing to show (a market without data): no candles, heatmap, map, magnets or markers."""
        empty = np.zeros(0)
        self.set_candles(
            Candles(np.zeros(0, np.int64), empty, empty, empty, empty, empty, interval_ms=60_000)
        )
        self._frame = None
        self.heatmap.clear()
        for bar in self.tier_bars:
            bar.hide()
        self.cum_long.setData([], [])
        self.cum_short.setData([], [])
        self._magnets = []
        self._layout_magnets()
        _set_text(self.cum_label, "")
        self.sweeps.setData([], [])
        self.real_liqs.setData([], [])
        self._map_title = ""
        self.map_plot.setTitle("Liquidation map", color=theme.TEXT_DIM, size="8pt")
        self._show_scales(False)

    def _apply_map(self, frame: Frame) -> None:
        lmap = frame.lmap
        centers = lmap.bins.centers
        height = lmap.bins.width * 0.92
        combined = lmap.long_by_tier + lmap.short_by_tier  # (K, P): longs sit below price, shorts above
        k = combined.shape[0]
        left = np.zeros(lmap.bins.n)
        for i, bar in enumerate(self.tier_bars):
            if i < k:
                w = combined[i]
                nz = w > 0
                bar.setOpts(x0=left[nz], y=centers[nz], width=w[nz], height=height)
                bar.show()
                left = left + w
            else:
                bar.hide()
        # x range: the largest bin in the visible price range
        y0, y1 = self.visible_prices()
        vis = (centers >= y0) & (centers <= y1)
        peak = float(left[vis].max()) if vis.any() and left[vis].max() > 0 else float(left.max() or 1.0)
        self.map_vb.setXRange(0, peak * 1.15, padding=0)
        # cumulative curves, scaled to the panel width; their totals are written on them
        cum_l, cum_s = lmap.cum_long, lmap.cum_short
        top = max(float(cum_l.max()), float(cum_s.max()), 1.0)
        scale = peak * 1.1 / top
        below, above = cum_l > 0, cum_s > 0
        self.cum_long.setData(cum_l[below] * scale, centers[below])
        self.cum_short.setData(cum_s[above] * scale, centers[above])
        self._map_x_max = peak * 1.15
        self.map_price_line.setPos(lmap.price_now)
        # Same one-line title every time: its height must not change (the y link is pixel-aligned).
        title = (
            f"Liquidation map · {fmt.timestamp(lmap.time_ms, self.time_axis.utc)[5:]}"
            f" · L {fmt.usd(lmap.total_long)} · S {fmt.usd(lmap.total_short)}"
        )
        if title != self._map_title:
            self._map_title = title
            self.map_plot.setTitle(title, color=theme.TEXT_DIM, size="8pt")
        self._set_tier_legend(lmap.tier_labels)
        self._magnets = frame.magnets
        self._layout_magnets()

    def _set_tier_legend(self, labels: list[str]) -> None:
        if self._tier_labels == labels:
            return
        self._tier_labels = list(labels)
        parts = [
            f"<span style='color:{theme.TIER_COLORS[i]}'>■</span> {label}"
            for i, label in enumerate(labels[:MAX_TIERS])
        ]
        self.tier_legend.setText("&nbsp;&nbsp;".join(parts))

    def _layout_cumulative_labels(self) -> None:
        """The cumulative notional each curve reaches at the visible edge, under the map."""
        frame = self._frame
        if frame is None:
            return
        lmap = frame.lmap
        centers = lmap.bins.centers
        y0, y1 = self.visible_prices()
        vis = (centers >= y0) & (centers <= y1)
        parts = []
        for cum, name, pick, color in ((lmap.cum_short, "shorts", -1, theme.SHORT_COLOR),
                                       (lmap.cum_long, "longs", 0, theme.LONG_COLOR)):  # fmt: skip
            idx = np.flatnonzero(vis & (cum > 0))
            if len(idx):
                i = int(idx[pick])
                parts.append(
                    f"<span style='color:{color}'>Σ {name} to {fmt.price(centers[i], 0)}: {fmt.usd(cum[i])}</span>"
                )
        if self._map_note:
            parts.append(self._map_note)
        _set_text(self.cum_label, "<br>".join(parts))

    def _layout_magnets(self) -> None:
        self._layout_cumulative_labels()
        magnets = getattr(self, "_magnets", [])
        if not magnets:
            for label in self.magnet_labels:
                label.hide()
            return
        # Keep labels a label's height apart (their filled boxes must not cover each other's text):
        # nudge outward from the price, per side.
        _, (y0, y1) = self.map_vb.viewRange()
        h = self.map_vb.height() or 400.0
        label_px = max(15.0, self.magnet_labels[0].textItem.boundingRect().height())
        min_gap = (y1 - y0) / h * label_px
        order = sorted(magnets[:MAX_MAGNETS], key=lambda mg: mg.price)
        lo_edge, hi_edge = y0 + min_gap * 0.9, y1 - min_gap * 0.9  # clear of the axis ticks
        ys = np.clip([mg.price for mg in order], lo_edge, hi_edge)
        for i in range(1, len(ys)):  # push up from the bottom …
            ys[i] = max(ys[i], ys[i - 1] + min_gap)
        for i in range(len(ys) - 1, -1, -1):  # … and back down from the top edge
            cap = hi_edge if i == len(ys) - 1 else ys[i + 1] - min_gap
            ys[i] = min(ys[i], cap)
        pos = {id(mg): float(y) for mg, y in zip(order, ys, strict=True)}
        for label, mg in zip(self.magnet_labels, magnets[:MAX_MAGNETS], strict=False):
            color = theme.LONG_COLOR if mg.side == LONG else theme.SHORT_COLOR
            arrow = "▼" if mg.side == LONG else "▲"
            note = f"  · {self._magnet_note}" if self._magnet_note else ""
            _set_text(
                label,
                f"{arrow} {fmt.price(mg.price)}  {mg.distance_pct:+.2f}%  {fmt.usd(mg.usd)}{note}",
                color,
            )
            label.setPos(getattr(self, "_map_x_max", 1.0) * 0.98, pos[id(mg)])
            label.show()
        for label in self.magnet_labels[len(magnets) :]:
            label.hide()

    def set_map_note(self, html: str) -> None:
        if html != self._map_note:
            self._map_note = html
            self._layout_cumulative_labels()

    def set_magnet_note(self, note: str) -> None:
        if note != self._magnet_note:
            self._magnet_note = note
            self._layout_magnets()

    def _apply_bubbles(self, b: Bubbles) -> None:
        if not len(b):
            self.sweeps.setData([], [])
            return
        # Diameters in half pixels: the scatter item renders each distinct (size, pen) symbol once and
        # reuses it; continuous sizes (relative to the frame's largest) re-rendered all 60 per frame.
        size = np.round((5.0 + 24.0 * np.sqrt(b.usd / b.usd.max())) * 2.0) / 2.0
        pens = np.where(b.side == LONG, self._sweep_pens[0], self._sweep_pens[1])
        self.sweeps.setData(x=b.x, y=b.price, size=size, pen=pens, brush=self._no_brush, symbol="o",
                            data=b.usd)  # fmt: skip

    def set_real_liquidations(
        self, x: np.ndarray, price: np.ndarray, usd: np.ndarray, side: np.ndarray
    ) -> None:
        if not len(x):
            self.real_liqs.setData([], [])
            return
        size = 6.0 + 12.0 * np.sqrt(usd / max(float(usd.max()), 1.0))
        brushes = [pg.mkBrush(theme.REAL_LONG if s == LONG else theme.REAL_SHORT) for s in side]
        self.real_liqs.setData(
            x=x, y=price, size=size, brush=brushes, pen=pg.mkPen("w", width=0.8), symbol="d"
        )

    # ------------------------------------------------------------------ crosshair

    def _on_mouse(self, args: tuple[QtCore.QPointF]) -> None:
        if not self._pointer_inside:
            return  # a move queued by the rate limiter, after the pointer left
        self._pointer_at = QtCore.QPointF(args[0])
        self._crosshair_at(self._pointer_at)

    def mouseMoveEvent(self, ev: QtGui.QMouseEvent) -> None:
        self._pointer_inside = True
        super().mouseMoveEvent(ev)

    def leaveEvent(self, ev: QtCore.QEvent) -> None:
        # The pointer left the chart: no crosshair, no readout, no hovered price (Alt+S/T/E/A then use the
        # last price, and a screenshot shows no stale readout).
        self._pointer_inside = False
        self._pointer_at = None
        self.hide_crosshair()
        super().leaveEvent(ev)

    def _follow_pointer(self) -> None:
        """The view moved under a still pointer (wheel zoom, keys, a live bar): the crosshair and the readout
        follow what is under it now."""
        if self._pointer_at is not None and self._pointer_inside:
            self._crosshair_at(self._pointer_at)

    def _crosshair_at(self, pos: QtCore.QPointF) -> None:
        for vb in (self.price_vb, self.volume_vb, self.map_vb):
            if vb.sceneBoundingRect().contains(pos):
                pt = vb.mapSceneToView(pos)
                if vb is self.map_vb:
                    self.move_crosshair(None, pt.y())
                elif vb is self.volume_vb:
                    self.move_crosshair(pt.x(), None)
                else:
                    self.move_crosshair(pt.x(), pt.y())
                return
        self.hide_crosshair()

    def move_crosshair(self, x: float | None, y: float | None) -> None:
        """Show the crosshair at bar index x and price y (either may be None) and announce it."""
        for line, value in (
            (self.cross_v, x),
            (self.cross_v_volume, x),
            (self.cross_h, y),
            (self.map_cross_h, y),
        ):
            if value is None:
                line.hide()
            else:
                line.setPos(value)
                line.show()
        if x is None:
            x = self.visible_bars()[1] - 3
        self.cursor_moved.emit(float(np.round(x)), float("nan") if y is None else float(y))

    def hide_crosshair(self) -> None:
        for line in (self.cross_v, self.cross_v_volume, self.cross_h, self.map_cross_h):
            line.hide()
        if self.readout.isVisible():
            self.readout.hide()
            self.readout_toggled.emit()
        self.cursor_left.emit()

    def set_readout(self, html: str) -> None:
        self.readout.setText(html)
        self.readout.adjustSize()
        self._place_overlays()
        if not self.readout.isVisible():
            self.readout.show()
            self.readout_toggled.emit()
        self.readout.raise_()

    def show_notice(self, text: str | None) -> None:
        if text:
            self.empty_notice.setText(text)
            self.empty_notice.show()
            self._place_overlays()
        else:
            self.empty_notice.hide()


def _set_text(item: pg.TextItem | pg.LabelItem, text: str, color: str | None = None) -> None:
    """setText only when the text changes: labels are re-laid out on every y change, and Qt lays
    out the text again on every setText/setHtml (~0.1 ms each)."""
    if getattr(item, "_liqdesk_text", None) == (text, color):
        return
    item._liqdesk_text = (text, color)
    if color is None:
        item.setText(text)
    else:
        item.setText(text, color=color)


def _inverse_transform(v: float, kind: str) -> float:
    """USD notional for a transformed value: the inverse of liqdesk.core.display.transform."""
    if kind == "sqrt":
        return max(v, 0.0) ** 2
    if kind == "log":
        return float(np.expm1(min(max(v, 0.0), 700.0)) * 1_000.0)
    return v

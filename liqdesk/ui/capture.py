"""Screenshots of the chart area and File → Export of the visible heatmap and liquidation map.

Screenshots use `QWidget.grab()` on the chart (overlays and labels included, full device
resolution); the 2× option renders the widget onto a pixmap with twice the device pixel ratio.
A watermark line (symbol, timeframe, time, source, model) is drawn onto the image so a shared
picture explains itself. Errors (unwritable folder, bad name) open a non-modal message box;
nothing here blocks the event loop (no exec(): qasync) and no exception escapes to Qt.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import PriceBins, render_grid
from liqdesk.errors import ConfigError, DataError
from liqdesk.feeds.atomic import write_bytes_atomic
from liqdesk.feeds.gridio import check_suffix, write_grid, write_map
from liqdesk.feeds.lines_store import load_prefs, save_pref
from liqdesk.feeds.markets import plain_symbol
from liqdesk.ui.context import ChartContext

log = logging.getLogger(__name__)

MAX_EXPORT_COLUMNS = 20_000


def default_name(symbol: str, timeframe: str, when: datetime | None = None) -> str:
    when = when or datetime.now(tz=UTC)
    return f"liqdesk_{plain_symbol(symbol)}_{timeframe}_{when.strftime('%Y%m%d-%H%M%SZ')}.png"


def default_folder() -> Path:
    for candidate in (Path.home() / "Pictures", Path.home()):
        if candidate.is_dir():
            return candidate
    return Path.cwd()


def data_time_ms(chart: ChartContext) -> int | None:
    """When the picture is of: the liquidation map's bar (the last bar in view), else the newest bar; never
    the time the screenshot is taken (historical data is not today's)."""
    if chart.frame is not None:
        return int(chart.frame.lmap.time_ms)
    c = chart.candles
    return int(c.open_time[-1]) if c is not None and len(c) else None


def watermark_lines(chart: ChartContext) -> list[str]:
    """What the image is: market, timeframe, the data's time (UTC), data source, model."""
    m = chart.market
    symbol = f"{plain_symbol(m.symbol)} · {m.exchange}" if m else chart.settings.symbol or "?"
    t = data_time_ms(chart)
    when = (
        datetime.fromtimestamp(t / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        if t is not None
        else "no data"
    )
    model = chart.model_text()
    return [
        f"{symbol} · {chart.settings.timeframe} · {when}",
        m.label if m else "",
        " · ".join(p for p in (model, "liqdesk") if p),
    ]


def draw_watermark(image: QtGui.QImage, lines: list[str], area: QtCore.QRectF | None = None) -> QtGui.QImage:
    """Small right-aligned lines at the bottom of `area` (logical pixels; default the whole image),
    on a dark backing so they read on any background. Scales with the image's pixel ratio."""
    dpr = image.devicePixelRatio() or 1.0
    full = QtCore.QRectF(0, 0, image.width() / dpr, image.height() / dpr)
    area = full if area is None else area.intersected(full)
    painter = QtGui.QPainter(image)
    try:
        painter.setRenderHint(QtGui.QPainter.RenderHint.TextAntialiasing, True)
        font = QtGui.QFont()
        font.setPixelSize(10)
        painter.setFont(font)
        metrics = QtGui.QFontMetrics(font)
        width = int(area.width() - 12)
        texts = [metrics.elidedText(t, QtCore.Qt.TextElideMode.ElideRight, width) for t in lines if t]
        line_h = metrics.height()
        box_w = max((metrics.horizontalAdvance(t) for t in texts), default=0) + 10
        box_h = line_h * len(texts) + 6
        box = QtCore.QRectF(area.right() - box_w - 3, area.bottom() - box_h - 3, box_w, box_h)
        painter.fillRect(box, QtGui.QColor(8, 10, 14, 225))
        painter.setPen(QtGui.QColor("#9aa3b5"))
        for k, t in enumerate(texts):
            row = QtCore.QRectF(box.left() + 5, box.top() + 3 + k * line_h, box_w - 10, line_h)
            painter.drawText(
                row, int(QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter), t
            )
    finally:
        painter.end()
    return image


def watermark_area(chart: ChartContext) -> QtCore.QRectF:
    """The side column under the liquidation map (colour bar below it): free space in every layout."""
    view = chart.chart_widget
    assert isinstance(view, QtWidgets.QGraphicsView)
    left = view.mapFromScene(chart.map_plot.sceneBoundingRect().topLeft()).x()
    return QtCore.QRectF(float(left), 0.0, float(view.width() - left), float(view.height()))


def chart_image(chart: ChartContext, scale: float = 1.0, watermark: bool = True) -> QtGui.QImage:
    """The chart area as an image at device resolution × scale (2.0: twice the pixels)."""
    widget = chart.chart_widget
    assert isinstance(widget, QtWidgets.QGraphicsView)
    chart.refresh_readout()
    if scale == 1.0:
        image = widget.grab().toImage()
    else:
        dpr = widget.devicePixelRatioF() * scale
        size = widget.size()
        pixmap = QtGui.QPixmap(int(round(size.width() * dpr)), int(round(size.height() * dpr)))
        pixmap.setDevicePixelRatio(dpr)
        pixmap.fill(QtGui.QColor(widget.backgroundBrush().color()))
        # QWidget.render (children and overlays included); QGraphicsView shadows it with its own
        QtWidgets.QWidget.render(widget, pixmap)
        image = pixmap.toImage()
    image = image.convertToFormat(QtGui.QImage.Format.Format_ARGB32)
    if watermark:
        image.setDevicePixelRatio(widget.devicePixelRatioF() * scale)
        draw_watermark(image, watermark_lines(chart), watermark_area(chart))
    return image


class Capture(QtCore.QObject):
    """The File menu's screenshot and export actions for one window."""

    saved = QtCore.Signal(str)  # a screenshot or export was written to this path
    failed = QtCore.Signal(str)  # the error the user was shown

    def __init__(self, chart: ChartContext, persist: bool = True) -> None:
        super().__init__(chart.widget)
        self.chart = chart
        self.persist = persist
        prefs = self._prefs()
        self.folder = Path(prefs.get("folder") or default_folder())
        self.scale = float(prefs.get("scale") or 1)
        self.error_box: QtWidgets.QMessageBox | None = None
        self._dialog: QtWidgets.QFileDialog | None = None

    def _prefs(self) -> dict[str, Any]:
        if not self.persist:
            return {}
        try:
            return load_prefs("capture")
        except Exception as exc:
            log.warning("capture settings: %s", exc)
            return {}

    def _remember(self, key: str, value: Any) -> None:
        if self.persist:
            try:
                save_pref("capture", key, value)
            except (OSError, ValueError) as exc:
                log.warning("capture setting %s not saved: %s", key, exc)

    def set_scale(self, scale: float) -> None:
        self.scale = 2.0 if scale >= 2 else 1.0
        self._remember("scale", int(self.scale))

    # ------------------------------------------------------------------ screenshots

    def default_path(self) -> Path:
        m = self.chart.market
        return self.folder / default_name(m.symbol if m else "chart", self.chart.settings.timeframe)

    def save_screenshot(self, path: str | Path | None = None, scale: float | None = None) -> Path | None:
        """Ctrl+S: the chart as PNG in the remembered folder. None (and an error box) on failure."""
        target = Path(path).expanduser() if path else self.default_path()
        try:
            if target.suffix.lower() != ".png":
                target = (
                    target.with_suffix(target.suffix + ".png")
                    if target.suffix
                    else target.with_suffix(".png")
                )
            if target.parent.exists() and not target.parent.is_dir():
                raise OSError(f"{target.parent} is not a folder")
            if not target.parent.is_dir():
                raise OSError(f"folder {target.parent} does not exist")
            image = chart_image(self.chart, scale or self.scale)
            png = QtCore.QByteArray()
            buf = QtCore.QBuffer(png)
            buf.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
            if not QtGui.QImageWriter(buf, QtCore.QByteArray(b"PNG")).write(image):
                raise OSError(f"{target}: the image could not be encoded")
            # a temp file renamed into place: a full disk never leaves a partial PNG or loses the previous one
            written = write_bytes_atomic(target, bytes(png.data()))
        except Exception as exc:  # any failure becomes a message, never an exception into Qt
            self.show_error("Screenshot not saved", str(exc))
            return None
        if target.parent != self.folder:
            self.folder = target.parent
            self._remember("folder", str(self.folder))
        note = f" ({written.note()})" if written.note() else ""
        self.chart.flash(f"screenshot saved: {target}{note}")
        self.saved.emit(str(target))
        return target

    def save_screenshot_as(self) -> QtWidgets.QFileDialog:
        """A non-modal save dialog; the chosen folder is remembered."""
        return self._file_dialog("Save screenshot", str(self.default_path()), "PNG image (*.png)",
                                 lambda p: self.save_screenshot(p))  # fmt: skip

    def copy_screenshot(self) -> QtGui.QImage | None:
        try:
            image = chart_image(self.chart, self.scale)
            QtWidgets.QApplication.clipboard().setImage(image)
        except Exception as exc:
            self.show_error("Screenshot not copied", str(exc))
            return None
        self.chart.flash("screenshot copied to the clipboard")
        return image

    # ------------------------------------------------------------------ data export

    def export_heatmap_dialog(self) -> QtWidgets.QFileDialog:
        name = self.default_path().with_suffix(".npz").name.replace("liqdesk_", "liqdesk_heatmap_")
        return self._file_dialog("Export visible heatmap", str(self.folder / name),
                                 "NumPy archive (*.npz);;CSV (*.csv)", self.export_heatmap)  # fmt: skip

    def export_map_dialog(self) -> QtWidgets.QFileDialog:
        name = self.default_path().with_suffix(".csv").name.replace("liqdesk_", "liqdesk_liqmap_")
        return self._file_dialog("Export liquidation map", str(self.folder / name),
                                 "CSV (*.csv);;NumPy archive (*.npz)", self.export_map)  # fmt: skip

    def _meta(self) -> dict[str, Any]:
        c = self.chart
        m = c.market
        meta: dict[str, Any] = {
            "source": m.label if m else "",
            "symbol": m.symbol if m else "",
            "exchange": m.exchange if m else "",
            "model": c.model_text(),
            "timeframe": c.settings.timeframe,
            "units": "USD notional of estimated liquidation levels alive at the end of each column",
        }
        with contextlib.suppress(Exception):  # a broken preset only loses this field
            meta["params"] = c.params().describe()
        return meta

    def export_heatmap(self, path: str | Path) -> bool:
        """The visible bars and prices, one column per bar, bins as on screen; written in the
        worker thread (the engine is only read there), the result comes back as a signal."""
        out = Path(path).expanduser()
        frame = self.chart.frame
        if frame is None or self.chart.candles is None or not self.chart.model_ready:
            self.show_error("Nothing to export", "the heatmap is not computed yet")
            return False
        try:
            check_suffix(out)
        except ConfigError as exc:
            self.show_error("Export failed", str(exc))
            return False
        vis0, vis1 = frame.request.visible_bars
        y0, y1 = frame.request.visible_prices
        full = frame.request.bins
        n_bins = max(int(round((y1 - y0) / full.width)), 1)
        bins = PriceBins(y0, y1, n_bins)
        meta = self._meta()
        columns = min(vis1 - vis0, MAX_EXPORT_COLUMNS)

        def write(engine: LiquidationEngine) -> str:
            """The file written from the engine as it is now ("" when done, else the error)."""
            try:
                grid = render_grid(engine, bins, vis0, min(vis1, engine.n_bars), columns)
                meta["coverage"] = engine.coverage()
                write_grid(grid, out, meta)
            except Exception as exc:  # said in an error box, not as a model error
                return str(exc) or type(exc).__name__
            return ""

        def gone(_exc: BaseException) -> None:  # the engine was rebuilt or lost before the export ran
            self._export_done(str(out), "the model changed before the export ran; export again")

        asked = self.chart.query(write, lambda error: self._export_done(str(out), error), on_error=gone)
        if not asked:
            self.show_error("Nothing to export", "the heatmap is not computed yet")
        return asked

    def export_map(self, path: str | Path) -> bool:
        """The liquidation map the side panel shows (last visible bar, bins as on screen)."""
        frame = self.chart.frame
        if frame is None:
            self.show_error("Nothing to export", "the liquidation map is not computed yet")
            return False
        out = Path(path).expanduser()
        try:
            write_map(frame.lmap, out, self._meta())
        except (ConfigError, DataError, OSError) as exc:
            self.show_error("Export failed", str(exc))
            return False
        self._export_done(str(out), "")
        return True

    def _export_done(self, path: str, error: str) -> None:
        if error:
            self.show_error("Export failed", error)
            return
        self.folder = Path(path).parent
        self._remember("folder", str(self.folder))
        self.chart.flash(f"exported {path}")
        self.saved.emit(path)

    # ------------------------------------------------------------------ dialogs

    def _file_dialog(
        self, title: str, start: str, filters: str, on_path: Callable[[str], object]
    ) -> QtWidgets.QFileDialog:
        dlg = QtWidgets.QFileDialog(self.chart.widget, title, start, filters)
        dlg.setAcceptMode(QtWidgets.QFileDialog.AcceptMode.AcceptSave)
        dlg.selectFile(Path(start).name)
        dlg.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        dlg.fileSelected.connect(on_path)
        self._dialog = dlg
        dlg.open()
        return dlg

    def show_error(self, title: str, text: str) -> QtWidgets.QMessageBox:
        log.warning("%s: %s", title, text)
        box = QtWidgets.QMessageBox(QtWidgets.QMessageBox.Icon.Warning, title, text,
                                    QtWidgets.QMessageBox.StandardButton.Ok, self.chart.widget)  # fmt: skip
        box.setAttribute(QtCore.Qt.WidgetAttribute.WA_DeleteOnClose)
        self.error_box = box
        box.open()
        self.chart.flash(f"{title}: {text}")
        self.failed.emit(text)
        return box


def image_is_blank(image: QtGui.QImage, step: int = 9) -> bool:
    """Fewer than a handful of distinct colours on a sampled grid (a blank or failed grab)."""
    colours = {
        image.pixel(x, y) for x in range(0, image.width(), step) for y in range(0, image.height(), step)
    }
    return len(colours) < 5


def image_array(image: QtGui.QImage) -> np.ndarray:
    """(H, W, 4) uint8 BGRA copy of an image (tests and pixel checks)."""
    img = image.convertToFormat(QtGui.QImage.Format.Format_ARGB32)
    ptr = img.constBits()
    arr = np.frombuffer(ptr, np.uint8, count=img.sizeInBytes()).reshape(img.height(), img.bytesPerLine())
    return arr[:, : img.width() * 4].reshape(img.height(), img.width(), 4).copy()


__all__ = [
    "Capture",
    "chart_image",
    "default_name",
    "draw_watermark",
    "image_array",
    "watermark_lines",
    "image_is_blank",
]

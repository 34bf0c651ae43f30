"""Gate for PySide6 / pyqtgraph upgrades: the items the chart depends on still build,
render offscreen and grab non-blank pixels."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets

from liqdesk.ui import theme


def test_plotwidget_image_line_colorbar_render_and_grab(qapp: QtWidgets.QApplication) -> None:
    pw = pg.PlotWidget()
    pw.resize(420, 300)
    img = pg.ImageItem(axisOrder="row-major")
    data = np.zeros((50, 80), np.uint8)
    data[10:40, 20:60] = np.arange(30, dtype=np.uint8)[:, None] * 8 + 1
    img.setImage(data, autoLevels=False, levels=(0, 255))
    img.setLookupTable(theme.lut("liqdesk"))
    img.setRect(0.0, 100.0, 80.0, 50.0)
    pw.addItem(img)
    line = pg.InfiniteLine(pos=125.0, angle=0, movable=True, label="{value:.0f}")
    pw.addItem(line)
    bar = pg.ColorBarItem(values=(0.0, 1.0), colorMap=theme.colormap("liqdesk"), interactive=True)
    pw.getPlotItem().layout.addItem(bar, 2, 5)
    pw.show()
    qapp.processEvents()
    shot = pw.grab().toImage()
    assert shot.width() >= 400 and shot.height() >= 280
    ptr = shot.constBits()
    pixels = np.frombuffer(ptr, np.uint8, shot.sizeInBytes()).reshape(shot.height(), shot.bytesPerLine())
    assert len(np.unique(pixels[:, : shot.width() * 4].reshape(-1, 4)[:, :3], axis=0)) > 20
    assert img.mapRectToParent(img.boundingRect()).getRect() == (0.0, 100.0, 80.0, 50.0)
    assert line.value() == 125.0
    pw.close()

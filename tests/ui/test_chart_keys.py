"""Chart keys work once the chart has focus (a click on it), not only when the window has: pyqtgraph's ViewBox
took -, +, = and Backspace for its own zoom history and the window never saw them."""

from __future__ import annotations

import pytest
from PySide6 import QtCore, QtWidgets

from tests.ui.conftest import isolated_window


def click_chart(w) -> None:  # type: ignore[no-untyped-def]
    """A click in the middle of the price plot, as the user gives the chart focus."""
    from PySide6.QtTest import QTest

    vb = w.chart.price_vb
    centre = w.chart.mapFromScene(vb.sceneBoundingRect().center())
    QTest.mouseClick(
        w.chart.viewport(), QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.KeyboardModifier(0), centre
    )
    QtWidgets.QApplication.processEvents()


def test_zoom_keys_and_backspace_work_while_the_chart_has_focus(qapp, tmp_path_factory, qtbot) -> None:  # type: ignore[no-untyped-def]
    with isolated_window(qapp, tmp_path_factory, range_name="24h") as w:
        click_chart(w)
        target = QtWidgets.QApplication.focusWidget() or w.chart
        assert target is w.chart or w.chart.isAncestorOf(target)
        x0, x1 = w.chart.visible_bars()
        qtbot.keyClick(target, QtCore.Qt.Key.Key_Minus)
        a0, a1 = w.chart.visible_bars()
        assert a1 - a0 == pytest.approx((x1 - x0) * 1.25)
        qtbot.keyClick(target, QtCore.Qt.Key.Key_Equal)
        b0, b1 = w.chart.visible_bars()
        assert b1 - b0 == pytest.approx((a1 - a0) * 0.8)
        qtbot.keyClick(target, QtCore.Qt.Key.Key_Plus)
        c0, c1 = w.chart.visible_bars()
        assert c1 - c0 == pytest.approx((b1 - b0) * 0.8)
        for key in (QtCore.Qt.Key.Key_Left, QtCore.Qt.Key.Key_Right):
            before = w.chart.visible_bars()
            qtbot.keyClick(target, key)
            assert w.chart.visible_bars() != pytest.approx(before)  # panned, not scrolled away by the view
        qtbot.keyClick(target, QtCore.Qt.Key.Key_End)
        assert w.chart.newest_in_view()
        line = w.lines.add_line("stop", float(w.candles.close[-1]) * 0.98)
        assert line is not None and w.lines.selected is line
        click_chart(w)  # the click on the chart keeps the line selected (it is not on the line)
        w.lines.select(line)
        price = line.price()
        qtbot.keyClick(QtWidgets.QApplication.focusWidget() or w.chart, QtCore.Qt.Key.Key_Up)
        assert line.price() == pytest.approx(price + w.lines.tick)
        qtbot.keyClick(QtWidgets.QApplication.focusWidget() or w.chart, QtCore.Qt.Key.Key_Backspace)
        assert line not in w.lines.items

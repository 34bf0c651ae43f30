"""The crosshair readout never goes stale: it follows a wheel zoom or a keyboard pan under a still pointer, goes
when the pointer leaves, and then lines added by key go near the last price and a screenshot shows no readout."""

from __future__ import annotations

import pytest
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest

from tests.ui.conftest import isolated_window


def pointer_to(w, fx: float, fy: float, qtbot) -> QtCore.QPoint:  # type: ignore[no-untyped-def]
    """Move the pointer to a point of the price plot (fractions of its width and height)."""
    r = w.chart.price_vb.sceneBoundingRect()
    pos = w.chart.mapFromScene(QtCore.QPointF(r.left() + r.width() * fx, r.top() + r.height() * fy))
    QTest.mouseMove(w.chart.viewport(), pos)
    qtbot.waitUntil(lambda: w.context.cursor is not None, timeout=5_000)
    return pos


def bar_under(w, pos: QtCore.QPoint) -> int:  # type: ignore[no-untyped-def]
    return round(w.chart.price_vb.mapSceneToView(w.chart.mapToScene(pos)).x())


def readout_is_current(w, pos: QtCore.QPoint) -> bool:  # type: ignore[no-untyped-def]
    v = w.readout.values
    return (v is not None and v.bar == bar_under(w, pos) and v.liquidity is not None
            and "computing" not in w.chart.readout.text())  # fmt: skip


def wheel(w, pos: QtCore.QPoint, steps: int) -> None:  # type: ignore[no-untyped-def]
    vp = w.chart.viewport()
    ev = QtGui.QWheelEvent(QtCore.QPointF(pos), QtCore.QPointF(vp.mapToGlobal(pos)), QtCore.QPoint(0, 0),
                           QtCore.QPoint(0, 120 * steps), QtCore.Qt.MouseButton.NoButton,
                           QtCore.Qt.KeyboardModifier.NoModifier, QtCore.Qt.ScrollPhase.NoScrollPhase, False)  # fmt: skip
    QtWidgets.QApplication.sendEvent(vp, ev)


def test_readout_follows_zoom_and_keyboard_pan_under_a_still_pointer(qapp, tmp_path_factory, qtbot) -> None:  # type: ignore[no-untyped-def]
    with isolated_window(qapp, tmp_path_factory, range_name="24h") as w:
        pos = pointer_to(w, 0.3, 0.5, qtbot)
        qtbot.waitUntil(lambda: readout_is_current(w, pos), timeout=10_000)
        before = w.readout.values.bar
        wheel(w, pos, 3)  # zoom in around the pointer
        qtbot.waitUntil(lambda: w.worker.wait_idle(0), timeout=10_000)
        qtbot.waitUntil(lambda: readout_is_current(w, pos), timeout=10_000)
        x0, x1 = w.chart.visible_bars()
        assert x1 - x0 < 280  # it did zoom
        w.setFocus()
        for _ in range(3):
            qtbot.keyClick(w, QtCore.Qt.Key.Key_Left)
        qtbot.waitUntil(lambda: readout_is_current(w, pos), timeout=10_000)
        assert w.readout.values.bar < before  # the bar now under the pointer, not the one hovered first


def test_pointer_leaving_clears_the_readout_then_keys_add_lines_near_the_last_price(  # type: ignore[no-untyped-def]
    qapp, tmp_path_factory, qtbot, tmp_path
) -> None:
    with isolated_window(qapp, tmp_path_factory, range_name="24h") as w:
        pointer_to(w, 0.5, 0.05, qtbot)  # high up the chart, far from the last price
        qtbot.waitUntil(lambda: w.chart.readout.isVisible(), timeout=5_000)
        hovered = w.context.cursor[1]
        QtWidgets.QApplication.sendEvent(w.chart, QtCore.QEvent(QtCore.QEvent.Type.Leave))
        QtWidgets.QApplication.sendEvent(w.chart.viewport(), QtCore.QEvent(QtCore.QEvent.Type.Leave))
        qtbot.wait(50)  # a rate-limited move still queued must not bring it back
        assert not w.chart.readout.isVisible() and not w.chart.cross_h.isVisible()
        assert w.context.cursor is None
        last = float(w.candles.close[-1])
        w.menus.line_actions["stop"].trigger()  # Alt+S
        stop = w.lines.selected
        assert stop is not None and stop.price() == pytest.approx(last * 0.99, abs=w.lines.tick)
        assert abs(stop.price() - hovered) > abs(stop.price() - last)
        path = w.capture.save_screenshot(tmp_path / "shot.png")
        assert path is not None and not w.chart.readout.isVisible()


def test_a_screenshot_refreshes_a_readout_left_behind(qapp, tmp_path_factory, qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with isolated_window(qapp, tmp_path_factory, range_name="24h") as w:
        w.chart.move_crosshair(float(len(w.candles) - 30), float(w.candles.close[-30]))
        qtbot.waitUntil(lambda: w.chart.readout.isVisible(), timeout=5_000)
        w.chart.hide_crosshair()  # the pointer went: Ctrl+S then must not show the readout
        w.chart.readout.show()  # left on screen by any path that missed the leave
        assert w.capture.save_screenshot(tmp_path / "s.png") is not None
        assert not w.chart.readout.isVisible()

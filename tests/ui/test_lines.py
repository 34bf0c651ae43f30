"""Price lines on the sample window: real mouse drags snap to the tick, a right-click cancels,
labels carry the engine's numbers, stop advice moves a stop past a crafted cluster, keys and
menus work, and lines come back from the state file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtTest import QTest

from liqdesk.app.cli import main
from liqdesk.core.liqmap import LiquidationMap, liquidation_map
from liqdesk.core.series import LONG
from liqdesk.core.stops import INSIDE, advice_bins, assess_stop, band_notional, position_risk
from liqdesk.ui import format as fmt
from liqdesk.ui.lines import KINDS, Position
from liqdesk.ui.session import wait_until_drawn

TICK = 0.1  # BTCUSDT


def _viewport_point(win, price: float, x_frac: float = 0.55) -> QtCore.QPoint:  # type: ignore[no-untyped-def]
    """Viewport pixel of `price` at x_frac of the price plot's width."""
    vb = win.chart.price_vb
    rect = vb.sceneBoundingRect()
    y = vb.mapViewToScene(QtCore.QPointF(0.0, price)).y()
    p = win.chart.mapFromScene(QtCore.QPointF(rect.left() + rect.width() * x_frac, y))
    return QtCore.QPoint(int(p.x()), int(round(p.y())))


def _mouse(widget: QtWidgets.QWidget, kind: QtCore.QEvent.Type, pos: QtCore.QPoint,
           button: QtCore.Qt.MouseButton, buttons: QtCore.Qt.MouseButton) -> None:  # fmt: skip
    """A mouse event with explicit held buttons (QTest.mouseMove carries none)."""
    local = QtCore.QPointF(pos)
    ev = QtGui.QMouseEvent(kind, local, QtCore.QPointF(widget.mapToGlobal(pos)), button, buttons,
                           QtCore.Qt.KeyboardModifier.NoModifier)  # fmt: skip
    QtWidgets.QApplication.sendEvent(widget, ev)


def _drag(win, start: QtCore.QPoint, steps: list[QtCore.QPoint], qtbot) -> QtWidgets.QWidget:  # type: ignore[no-untyped-def]
    vp = win.chart.viewport()
    left, none = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.MouseButton.NoButton
    _mouse(
        vp, QtCore.QEvent.Type.MouseMove, start, none, none
    )  # hover first: pyqtgraph picks drag items on hover
    _mouse(vp, QtCore.QEvent.Type.MouseButtonPress, start, left, left)
    for p in steps:
        _mouse(vp, QtCore.QEvent.Type.MouseMove, p, none, left)
        qtbot.wait(5)
    return vp


def _is_tick_multiple(price: float) -> bool:
    return abs(price / TICK - round(price / TICK)) < 1e-6


def test_drag_with_the_mouse_lands_on_a_tick(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    y0, y1 = win.chart.visible_prices()
    start_price = round(y0 + (y1 - y0) * 0.4, 1)
    item = win.lines.add_line("stop", start_price)
    qtbot.wait(20)
    a = _viewport_point(win, item.price())
    steps = [a + QtCore.QPoint(0, d) for d in (3, 8, 17, 29, 37)]
    vp = _drag(win, a, steps, qtbot)
    assert item.moving
    mid = item.price()
    assert mid < start_price and _is_tick_multiple(mid)  # snapped during the drag too
    _mouse(vp, QtCore.QEvent.Type.MouseButtonRelease, steps[-1], QtCore.Qt.MouseButton.LeftButton,
           QtCore.Qt.MouseButton.NoButton)  # fmt: skip
    assert not item.moving
    moved = item.price()
    per_px = (y1 - y0) / win.chart.price_vb.height()
    assert moved == pytest.approx(start_price - 37 * per_px, abs=2 * per_px)
    assert _is_tick_multiple(moved)
    assert win.lines.selected is item
    assert win.lines.lines()[0].price == moved  # the model follows (what is saved)


def test_right_click_during_drag_restores_the_start(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    y0, y1 = win.chart.visible_prices()
    start_price = round(y0 + (y1 - y0) * 0.6, 1)
    item = win.lines.add_line("target", start_price)
    qtbot.wait(20)
    a = _viewport_point(win, start_price)
    steps = [a + QtCore.QPoint(0, d) for d in (-4, -12, -25)]
    vp = _drag(win, a, steps, qtbot)
    assert item.price() > start_price
    left, right = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.MouseButton.RightButton
    _mouse(vp, QtCore.QEvent.Type.MouseButtonPress, steps[-1], right, left | right)
    _mouse(vp, QtCore.QEvent.Type.MouseButtonRelease, steps[-1], right, left)
    assert item.price() == start_price and not item.moving
    # further moves and the left release change nothing, and no chart menu opened
    _mouse(
        vp,
        QtCore.QEvent.Type.MouseMove,
        steps[-1] + QtCore.QPoint(0, -10),
        QtCore.Qt.MouseButton.NoButton,
        left,
    )
    _mouse(vp, QtCore.QEvent.Type.MouseButtonRelease, steps[-1], left, QtCore.Qt.MouseButton.NoButton)
    assert item.price() == start_price
    assert win.lines._menu is None or not win.lines._menu.isVisible()


def _wait_map(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: win.lines.lmap is not None and win.lines._map_key is not None
                    and win.worker.wait_idle(0), timeout=10_000)  # fmt: skip
    assert wait_until_drawn(win, 10.0)


def test_labels_show_the_engine_numbers(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    last = float(win.candles.close[-1])
    stop = win.lines.add_line("stop", round(last * 0.98, 1))
    target = win.lines.add_line("target", round(last * 1.025, 1))
    _wait_map(win, qtbot)
    engine = win.worker.engine
    ref = liquidation_map(engine, advice_bins(last, [stop.price(), target.price()]), engine.n_bars - 1)
    assert ref.price_now == last
    for item in (stop, target):
        r = win.lines.readout(item)
        assert r.last_price == last
        assert r.distance == pytest.approx(item.price() - last)
        assert r.distance_pct == pytest.approx((item.price() - last) / last * 100)
        assert r.band_usd == pytest.approx(band_notional(ref, item.price(), 0.2))
        assert f"{r.distance_pct:+.2f}%" in r.html and fmt.usd(r.band_usd) in r.html
        assert fmt.price(item.price(), 1) in r.html and KINDS[item.kind].short in r.html
        assert item.text._html == r.html  # what is drawn is what was computed
    expected = assess_stop(ref, stop.price(), band_pct=0.2, near_pct=0.3, buffer_pct=0.1, tick=TICK)
    got = win.lines.readout(stop).advice
    assert got is not None and got.verdict == expected.verdict and got.beyond == expected.beyond
    assert got.band_usd == pytest.approx(expected.band_usd)
    # the axis tag shows the price
    assert win.lines.tags[id(stop)].textItem.toPlainText() == fmt.price(stop.price(), 1)


def crafted_map(price_now: float, center: float) -> LiquidationMap:
    """A dense 25x long cluster ±0.15 % around `center` (below price) on a thin floor."""
    bins = advice_bins(price_now)
    c = bins.centers
    long_ = np.where(c < price_now, 2e5, 0.0)
    lo, hi = center * 0.9985, center * 1.0015
    long_[(c >= lo) & (c <= hi)] = 2e7
    short = np.where(c > price_now, 2e5, 0.0)
    return LiquidationMap(
        0, 0, price_now, bins, ["25x"], long_[None, :], short[None, :], long_.sum(), short.sum()
    )


def test_move_beyond_cluster_puts_the_stop_past_it(win, qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    last = float(win.candles.close[-1])
    y0, y1 = win.chart.visible_prices()
    center = y0 + (last - y0) * 0.55  # on screen, below the last price
    assert y0 < center < last * 0.997
    lmap = crafted_map(last, center)
    monkeypatch.setattr(win.lines, "request_map", lambda: None)  # keep the crafted map
    win.lines.lmap = lmap
    stop = win.lines.add_line("stop", center)
    adv = win.lines.readout(stop).advice
    assert adv is not None and adv.verdict == INSIDE and adv.position_side == LONG
    cluster_low = adv.cluster.low
    assert "inside 25x long cluster" in stop.text._html and "move beyond" in stop.text._html
    # a real click on the warning label moves the stop
    qtbot.wait(20)
    win.lines.layout_labels()
    rect = stop.text.sceneBoundingRect()
    p = win.chart.mapFromScene(rect.center())
    QTest.mouseClick(
        win.chart.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=QtCore.QPoint(int(p.x()), int(p.y()))
    )
    assert stop.price() == adv.beyond
    assert stop.price() < cluster_low and cluster_low - stop.price() == pytest.approx(last * 0.001, abs=TICK)
    assert _is_tick_multiple(stop.price())
    assert assess_stop(lmap, stop.price()).verdict == "clear"
    assert "⚠" not in stop.text._html
    assert not win.lines.move_beyond(stop)  # already clear: nothing to do


def test_keys_nudge_delete_and_double_click_edits(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    y0, y1 = win.chart.visible_prices()
    price = round((y0 + y1) / 2, 1)
    item = win.lines.add_line("entry", price)
    win.activateWindow()
    win.setFocus()
    qtbot.keyClick(win, QtCore.Qt.Key.Key_Up)
    assert item.price() == pytest.approx(price + TICK)
    qtbot.keyClick(win, QtCore.Qt.Key.Key_Down, QtCore.Qt.KeyboardModifier.ShiftModifier)
    assert item.price() == pytest.approx(price + TICK - 10 * TICK)
    # double-click opens a non-modal editor; accepting it sets the exact price (snapped)
    qtbot.wait(20)
    p = _viewport_point(win, item.price(), 0.8)
    vp = win.chart.viewport()
    left, none = QtCore.Qt.MouseButton.LeftButton, QtCore.Qt.MouseButton.NoButton
    # what a real double-click delivers (QTest.mouseDClick sends only the DblClick event)
    _mouse(vp, QtCore.QEvent.Type.MouseMove, p, none, none)
    for kind, buttons in ((QtCore.QEvent.Type.MouseButtonPress, left), (QtCore.QEvent.Type.MouseButtonRelease, none),
                          (QtCore.QEvent.Type.MouseButtonDblClick, left), (QtCore.QEvent.Type.MouseButtonRelease, none)):  # fmt: skip
        _mouse(vp, kind, p, left, buttons)
    qtbot.waitUntil(lambda: bool(win.lines._dialogs), timeout=2_000)
    dlg = win.lines._dialogs[-1]
    assert (
        dlg.isVisible()
        and not dlg.isModal()
        or dlg.windowModality() != QtCore.Qt.WindowModality.ApplicationModal
    )
    dlg.setDoubleValue(price + 12.34)
    dlg.accept()
    assert item.price() == pytest.approx(round(price + 12.3, 1))
    # Delete (the menu action's shortcut) removes the selected line
    win.lines.select(item)
    delete = next(a for a in win.menus.lines_menu.actions() if a.text() == "Delete selected line")
    delete.trigger()
    assert item not in win.lines.items and win.lines.selected is None


def test_right_click_menu_on_the_chart_adds_lines(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    y0, y1 = win.chart.visible_prices()
    price = y0 + (y1 - y0) * 0.3
    p = _viewport_point(win, price, 0.3)
    QTest.mouseClick(win.chart.viewport(), QtCore.Qt.MouseButton.RightButton, pos=p)
    qtbot.waitUntil(lambda: win.lines._menu is not None and win.lines._menu.isVisible(), timeout=2_000)
    menu = win.lines._menu
    texts = [a.text() for a in menu.actions() if a.text()]
    assert [t.split("  ")[0] for t in texts[:4]] == ["Stop here", "Target here", "Entry here", "Alert here"]
    menu.actions()[0].trigger()
    menu.close()
    assert len(win.lines.items) == 1 and win.lines.items[0].kind == "stop"
    per_px = (y1 - y0) / win.chart.price_vb.height()
    assert win.lines.items[0].price() == pytest.approx(price, abs=2 * per_px)


def test_position_form_draws_liquidation_and_money_risk(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    last = float(win.candles.close[-1])
    win.open_position_form()
    dock = win.position_dock
    assert dock.isVisible() and dock.entry.value() == pytest.approx(last)
    dock.leverage.setValue(20)
    dock.size_usd.setValue(25_000)
    dock.apply_button.click()
    risk = position_risk(LONG, last, 20, 25_000)
    assert win.lines.liq_item is not None and win.lines.liq_item.price() == pytest.approx(
        risk.liquidation, abs=TICK
    )
    stop = win.lines.add_line("stop", round(last * 0.99, 1))
    r = win.lines.readout(stop)
    expected = position_risk(LONG, last, 20, 25_000, stop=stop.price())
    assert r.risk is not None and r.risk.stop_loss_usd == pytest.approx(expected.stop_loss_usd)
    assert f"${abs(expected.stop_loss_usd):,.0f}" in r.html and "risk" in r.html
    assert f"${abs(expected.stop_loss_usd):,.0f}" in dock.summary.text()
    # moving the entry moves the liquidation line
    entry = win.lines.entry_item()
    win.lines.set_price(entry, last * 1.01)
    again = position_risk(LONG, entry.price(), 20, 25_000)
    assert win.lines.liq_item.price() == pytest.approx(again.liquidation, abs=TICK)
    # a stop past the liquidation price is flagged
    far = win.lines.add_line("stop", round(again.liquidation * 0.99, 1))
    assert "never fire" in win.lines.readout(far).html
    win.lines.set_position(None)
    assert win.lines.liq_item is None and win.lines.entry_item() is None
    dock.hide()


def test_lines_persist_per_market_and_come_back(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    win.lines.add_line("stop", 64_000.04)
    win.lines.add_line("alert", 66_500.0)
    win.lines.set_position(Position(LONG, 65_300.0, 10, 5_000))
    saved = [(x.kind, x.price) for x in win.lines.lines()]
    assert ("stop", 64_000.0) in saved
    ex, sym, tick = win.lines.exchange, win.lines.symbol, win.lines.tick
    win.lines.set_market("bybit", sym, tick, win.lines.last_price)  # another exchange: its own lines
    assert win.lines.items == []
    win.lines.set_market(ex, sym, tick, win.lines.last_price)  # as after a restart
    assert sorted((x.kind, x.price) for x in win.lines.lines()) == sorted(saved)
    assert win.lines.position == Position(LONG, 65_300.0, 10.0, 5_000.0)
    assert win.lines.liq_item is not None


def test_snapshot_draws_lines(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import liqdesk.ui.session as session

    seen: dict[str, float] = {}
    real_grab = session.grab_png

    def grab(window, path, width, height):  # type: ignore[no-untyped-def]
        for item in window.lines.items:  # where each line is, in window pixels
            scene = window.chart.price_vb.mapViewToScene(QtCore.QPointF(0.0, item.price()))
            seen[item.kind] = window.chart.mapTo(window, window.chart.mapFromScene(scene)).y()
        real_grab(window, path, width, height)

    monkeypatch.setattr(session, "grab_png", grab)
    out = tmp_path / "lines.png"
    assert main(["snapshot", "--out", str(out), "--size", "1200x700", "--range", "24h",
                 "--line", "stop:64800", "--line", "target:66500"]) == 0  # fmt: skip
    image = QtGui.QImage(str(out))
    assert (image.width(), image.height()) == (1200, 700)
    for kind in ("stop", "target"):
        color = QtGui.QColor(KINDS[kind].color).rgb() & 0xFFFFFF
        y = round(seen[kind])
        hits = sum(
            (image.pixel(x, yy) & 0xFFFFFF) == color for x in range(300, 900, 3) for yy in (y - 1, y, y + 1)
        )
        assert hits > 120, (kind, y, hits)  # the line runs across the plot at its price
    assert main(["snapshot", "--out", str(out), "--line", "laser:1"]) == 2


def test_labels_move_out_of_the_crosshair_readout(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    y0, y1 = win.chart.visible_prices()
    item = win.lines.add_line("target", round(y1 - (y1 - y0) * 0.06, 1))  # near the top, where the box is
    qtbot.wait(20)
    t = int(win.candles.open_time[len(win.candles) // 2])
    win.point_crosshair_at(t, (y0 + y1) / 2)
    qtbot.waitUntil(lambda: win.chart.readout.isVisible(), timeout=2000)
    qtbot.wait(30)
    box = win.chart.mapToScene(win.chart.readout.geometry()).boundingRect()
    assert not item.text.sceneBoundingRect().intersects(box)
    win.chart.hide_crosshair()
    qtbot.wait(30)
    assert item.text.sceneBoundingRect().left() < box.right()  # back at the left once the box is gone

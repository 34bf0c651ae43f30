"""The smaller things a trader saw on a live day: the legend follows the theme, a target past the position's own
liquidation price says "liquidated first", the position form is filled after a restart, line labels are never cut
at the plot edge, and the screenshot watermark carries the data's date."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from PySide6 import QtGui

from liqdesk.core.series import LONG
from liqdesk.core.stops import position_risk
from liqdesk.feeds.sample import load_sample
from liqdesk.ui import theme
from liqdesk.ui.capture import watermark_lines
from liqdesk.ui.data import SampleSource
from liqdesk.ui.lines import Position
from liqdesk.ui.session import wait_until_drawn
from liqdesk.ui.window import MainWindow, ViewSettings
from tests.ui.conftest import isolated_window


def legend_colours(w: MainWindow) -> set[str]:
    out = set()
    for _, label in w.chart.legend.items:
        html = label.item.toHtml()
        out.add(html.split("color:")[1].split(";")[0].strip().lower())
    return out


def test_the_legend_follows_the_theme_both_ways(qapp, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    with isolated_window(qapp, tmp_path_factory, range_name="24h") as w:
        try:
            dark = theme.palette("dark")
            assert legend_colours(w) == {QtGui.QColor(dark["text"]).name().lower()}
            w.apply_theme("light")
            light = theme.palette("light")
            assert legend_colours(w) == {QtGui.QColor(light["text"]).name().lower()}
            assert w.chart.legend.brush().color().getRgb() == QtGui.QColor(255, 255, 255, 230).getRgb()
            w.apply_theme("dark")
            assert legend_colours(w) == {QtGui.QColor(dark["text"]).name().lower()}
            assert w.chart.legend.brush().color().getRgb() == (13, 16, 23, 200)
        finally:
            theme.set_theme("dark")


def test_a_target_past_the_positions_liquidation_price_says_liquidated_first(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    last = float(win.candles.close[-1])
    win.lines.set_position(Position(LONG, last, 20, 25_000))
    lp = position_risk(LONG, last, 20, 25_000).liquidation
    try:
        target = win.lines.add_line("target", lp * 0.99)  # below a long's liquidation price
        html = win.lines.readout(target).html
        assert "liquidated first" in html and "reward" not in html and "risk <" not in html
        win.open_position_form()
        assert "liquidated first" in win.position_dock.summary.text()
        ok = win.lines.add_line("target", last * 1.02)
        assert "reward" in win.lines.readout(ok).html  # a target the position can reach: its P&L
    finally:
        win.lines.clear()
        win.position_dock.hide()


def test_the_position_form_is_filled_after_a_restart(qapp, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path))
    s = load_sample()
    (tmp_path / "state.json").write_text(json.dumps({"version": 1, "lines": {f"{s.exchange}|{s.symbol}": [
        {"kind": "entry", "price": 65_300.0, "side": "long", "leverage": 25, "size_usd": 7_500}]}}))  # fmt: skip
    w = MainWindow(SampleSource(), ViewSettings(range_name="24h"))
    try:
        w.show()
        assert wait_until_drawn(w, 30.0)
        dock = w.position_dock
        assert w.lines.position == Position(LONG, 65_300.0, 25.0, 7_500.0)
        assert "25× $7.5k" in dock.summary.text() or "25×" in dock.summary.text()
        assert (dock.side.currentData(), dock.entry.value(), dock.leverage.value(), dock.size_usd.value()) == (
            LONG, pytest.approx(65_300.0), pytest.approx(25.0), pytest.approx(7_500.0))  # fmt: skip
        assert dock.position() == w.lines.position  # "Draw" re-draws what is there, not a default
    finally:
        w.close()


def test_line_labels_are_never_cut_at_the_plot_edge(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    vb = win.chart.price_vb
    y0, y1 = win.chart.visible_prices()
    span = y1 - y0
    last = float(win.candles.close[-1])
    win.lines.set_position(Position(LONG, last, 10, 10_000))
    try:
        lines = [
            win.lines.add_line("target", y1 - span * 0.004),  # just under the top edge
            win.lines.add_line("stop", y0 + span * 0.004),  # just over the bottom edge
            win.lines.add_line("target", y1 + span * 0.01),  # just above the view: no label hanging in
            win.lines.add_line("alert", y0 + span * 0.5),
        ]
        win.lines.select(None)
        qtbot.wait(30)
        win.lines.layout_labels()
        area = vb.sceneBoundingRect().adjusted(-1, -1, 1, 1)
        for item in lines:
            label = item.text
            if not label.isVisible():
                assert not (y0 <= item.price() <= y1)
                continue
            assert area.contains(label.sceneBoundingRect()), (item.kind, label.sceneBoundingRect(), area)
        assert not lines[2].text.isVisible()
    finally:
        win.lines.clear()


def test_the_screenshot_watermark_carries_the_datas_date_not_todays(window) -> None:  # type: ignore[no-untyped-def]
    text = watermark_lines(window)[0]
    t = int(window.frame.lmap.time_ms)
    assert datetime.fromtimestamp(t / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC") in text
    assert datetime.now(tz=UTC).strftime("%Y-%m-%d") not in text  # the sample is from 2024


def test_no_placeholder_numbers_while_the_model_builds(qapp, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Before the first frame the map's USD axis (0–1) read "-$0 0 $0 $1" and the heat scale "$0 $0 $0 $1"."""
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path))
    w = MainWindow(SampleSource(), ViewSettings(range_name="24h"))
    try:
        w.show()
        axis = w.chart.map_plot.getAxis("bottom")
        assert w.frame is None  # the engine is still building (its result waits for this loop)
        assert axis.tickStrings([-0.2, 0.0, 0.2, 1.0], 1.0, 0.2) == ["", "", "", ""]
        assert w.chart.colorbar.axis.tickStrings([0.0, 0.25, 0.5, 1.0], 1.0, 0.25) == ["", "", "", ""]
        assert w.chart.empty_notice.isVisible() and "building" in w.chart.empty_notice.text()
        assert wait_until_drawn(w, 30.0)
        assert all(axis.tickStrings([1e6, 2e6], 1.0, 1e6))
        assert all(w.chart.colorbar.axis.tickStrings([100.0, 200.0], 1.0, 100.0))
        assert not w.chart.empty_notice.isVisible()
    finally:
        w.close()

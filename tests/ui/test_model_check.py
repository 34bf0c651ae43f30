"""The Model check panel: scores computed off the UI thread, the same numbers as the core's
`calibrate`, the reliability curve, presets side by side, "use this preset", and data without
real liquidations said plainly."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from liqdesk.core.calibration import HOUR_MS, CalibrationConfig, calibrate
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.series import Liquidations
from liqdesk.feeds.market_data import MarketData
from liqdesk.feeds.presets import params_for
from liqdesk.feeds.sample import load_sample
from liqdesk.ui.data import FixedSource
from liqdesk.ui.model_check import ModelCheckDock, pct_text, pp_text
from liqdesk.ui.session import wait_until_drawn
from tests.ui.conftest import dispose, make_window

SAMPLE = "btcusdt-1m-2025-01"  # the bundled sample with 31 real BTC liquidations


@pytest.fixture
def win(qapp: QtWidgets.QApplication, config_dir) -> Iterator[object]:  # type: ignore[no-untyped-def]
    from liqdesk.ui.window import MainWindow, ViewSettings

    s = load_sample(SAMPLE)
    assert s.liquidations is not None and len(s.liquidations) > 0
    market = MarketData(s.candles, s.open_interest, s.liquidations, s.symbol, s.exchange, s.label)
    w = MainWindow(FixedSource(market), ViewSettings(persist=False, range_name="24h"))
    w.resize(1600, 900)
    w.show()
    assert wait_until_drawn(w, 30.0)
    yield w
    dispose(w)


def _expected(win, preset: str | None = None, horizon_h: int = 24):  # type: ignore[no-untyped-def]
    params = win.params() if preset is None else params_for(preset)
    engine = LiquidationEngine.build(win.candles, win.market.open_interest, params)
    return calibrate(engine, win.market.liquidations, CalibrationConfig(horizon_ms=horizon_h * HOUR_MS))


def _run(dock: ModelCheckDock, qtbot) -> object:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(dock.computed, timeout=20_000) as sig:
        assert dock.run()
    return sig.args[0]


def test_menu_action_opens_the_dock_and_scores_in_the_background(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    dock: ModelCheckDock = win.model_check
    action = dock.open_action
    assert action is not None and action.text() == "Model check…"
    assert action.shortcut().toString() == "Ctrl+M"
    menus = {a.text(): a.menu() for a in win.menuBar().actions()}
    assert action in menus["Model"].actions()
    assert {"Lines", "Alerts"} <= set(menus)  # the existing menus stay
    assert dock.isHidden()

    ticks: list[float] = []
    timer = QtCore.QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(5)
    t0 = time.perf_counter()
    with qtbot.waitSignal(dock.computed, timeout=20_000) as sig:
        action.trigger()  # opening with nothing computed yet starts a run
        assert time.perf_counter() - t0 < 0.5  # the UI thread did not compute it
        assert dock.running and "computing" in dock.progress.format()
    timer.stop()
    outcome = sig.args[0]
    assert dock.isVisible() and not dock.running and dock.status_row.isHidden()
    assert outcome.thread_id != threading.get_ident()
    assert len(ticks) >= 3  # the event loop kept turning while it ran


def test_numbers_match_calibrate(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    dock: ModelCheckDock = win.model_check
    dock.set_compare(False)
    dock.set_horizon("24h")
    outcome = _run(dock, qtbot)
    preset = win.params().preset
    assert dock.column_presets() == [preset]
    expected = _expected(win)
    got = outcome.results[preset]
    total = expected.rows["total"]
    assert got.rows["total"].n_events == total.n_events == 31
    top10 = total.top_share(0.10)
    assert got.rows["total"].top_share(0.10).share.value == pytest.approx(top10.share.value)
    assert dock.cell_text("top10_share", preset) == pct_text(top10.share)
    assert dock.cell_text("top10_lift", preset) == f"{top10.lift.value:.2f}×"
    assert dock.cell_text("ll_spot", preset).startswith(f"{total.lift['spot_laplace_fit'].value:+.3f}")
    assert dock.cell_text("ll_spot_best", preset).startswith(f"{total.lift['spot_laplace_best'].value:+.3f}")
    assert dock.cell_text("ll_range", preset).startswith(f"{total.lift['range'].value:+.3f}")
    # the new figures: given the path, and precision at N zones with its Wilson interval
    path = expected.all.path["total"]
    assert dock.cell_text("path_rho", preset).startswith(f"{path.rho_usd.value:+.2f}")
    assert dock.cell_text("path_top", preset) == pct_text(path.share_usd)
    p5 = expected.all.precision["total"][0]
    assert dock.cell_text("precision5", preset) == pct_text(p5.precision) and p5.precision.has_ci
    assert dock.cell_text("precision5_chance", preset) == f"{p5.chance * 100:.1f} %"
    assert dock.cell_text("magnet_diff", preset) == pp_text(expected.magnet.difference)
    assert dock.cell_text("magnet_hit", preset) == pct_text(expected.magnet.hit)
    # 31 events in one cascade: no interval, and the CLI's verdict, said in plain words
    assert "[no CI]" in dock.cell_text("top10_share", preset)
    assert dock.cell_text("verdict_liq", preset) == "too few events"
    assert "too few events to conclude" in dock.verdict_label.text()
    assert "31 real liquidations in the tape" in dock.data_label.text()
    assert dock.warning_label.isHidden()

    # the reliability plot: one curve, the pooled share of USD against the share of cells (in %)
    curve = expected.reliability["total"]
    x, y = dock.curves[preset].getData()
    assert np.allclose(x, curve.cell_share * 100) and np.allclose(y, curve.usd_share * 100)
    assert y[-1] == pytest.approx(100.0) and np.all(np.diff(y) >= -1e-9)
    assert dock.chance_curve.getData()[1].tolist() == [0, 100]

    # the side rows: same result, another density shown (no recomputation)
    dock.density_box.setCurrentIndex(dock.density_box.findData("long"))
    assert dock.cell_text("top10_share", preset) == pct_text(expected.rows["long"].top_share(0.10).share)
    assert dock.cell_text("path_rho", preset).startswith(f"{expected.all.path['long'].rho_usd.value:+.2f}")
    assert np.allclose(dock.curves[preset].getData()[1], expected.reliability["long"].usd_share * 100)
    dock.density_box.setCurrentIndex(dock.density_box.findData("matched"))
    assert dock.cell_text("path_rho", preset) == "total, long or short only"
    dock.density_box.setCurrentIndex(dock.density_box.findData("total"))

    # 4h horizon: the config the panel scores with follows the selector
    dock.set_horizon("4h")
    outcome = _run(dock, qtbot)
    assert outcome.request.config.horizon_ms == 4 * HOUR_MS
    exp4 = _expected(win, horizon_h=4)
    assert dock.cell_text("magnet_hit", preset) == pct_text(exp4.magnet.hit)


def test_compare_presets_side_by_side_and_use_one(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    dock: ModelCheckDock = win.model_check
    dock.set_compare(True, ["coinglass", "all", "high"])
    outcome = _run(dock, qtbot)
    assert dock.column_presets() == ["coinglass", "all", "high"]
    assert dock.table.columnCount() == 4
    heads = [dock.table.horizontalHeaderItem(j).text() for j in range(1, 4)]
    assert heads[0].startswith("coinglass") and "in use" in heads[0] and heads[1:] == ["all", "high"]
    assert set(dock.curves) == {"coinglass", "all", "high"}
    # each column is that preset's own calibration
    exp_all = _expected(win, "all")
    assert dock.cell_text("top10_share", "all") == pct_text(exp_all.rows["total"].top_share(0.10).share)
    assert np.allclose(dock.curves["all"].getData()[1], exp_all.reliability["total"].usd_share * 100)
    # 31 events: the panel refuses to rank them
    assert "Too few events to rank the presets" in dock.verdict_label.text()
    assert outcome.results["all"].rows["total"].enough is False

    # use one: the chart switches preset (toolbar too) and the panel marks it in use
    dock.use_box.setCurrentIndex(dock.use_box.findData("high"))
    assert dock.use_button.isEnabled()
    dock.use_button.click()
    assert win.settings.preset == "high" and win.params().preset == "high"
    assert win.toolbar.preset_box.currentData() == "high"
    assert wait_until_drawn(win, 30.0)
    assert "in use" in dock.table.horizontalHeaderItem(3).text()
    assert "in use" not in dock.table.horizontalHeaderItem(1).text()
    assert not dock.use_button.isEnabled()
    assert dock.stale_label.isHidden()  # the same data: the comparison still holds


def test_results_marked_stale_when_the_chart_data_changes(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    dock: ModelCheckDock = win.model_check
    _run(dock, qtbot)
    assert dock.stale_label.isHidden()
    win.add_liquidations(Liquidations.empty())  # nothing new: still fresh
    win.set_timeframe("15m")
    assert wait_until_drawn(win, 30.0)
    assert not dock.stale_label.isHidden() and "Run again" in dock.stale_label.text()
    win.set_timeframe("5m")
    assert wait_until_drawn(win, 30.0)
    assert dock.stale_label.isHidden()


def test_data_without_liquidations_says_so(qapp, qtbot, tmp_path_factory) -> None:  # type: ignore[no-untyped-def]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIQDESK_CONFIG_DIR", str(tmp_path_factory.mktemp("cfg")))
        w = make_window(qapp, persist=False)  # the default bundled 5m sample: no real liquidations
    try:
        assert len(w.market.liquidations) == 0
        dock: ModelCheckDock = w.model_check
        with qtbot.waitSignal(dock.computed, timeout=20_000):
            dock.open_action.trigger()
        text = dock.warning_label.text()
        assert not dock.warning_label.isHidden()
        assert "no real liquidations" in text and "magnet test still runs" in text
        preset = w.params().preset
        assert dock.cell_text("top10_share", preset) == "n/a"
        assert dock.cell_text("events", preset).startswith("0 · 0")
        r = dock.outcome.results[preset]
        assert r.magnet.n_snapshots > 0  # from candles alone
        assert dock.cell_text("magnet_hit", preset) == pct_text(r.magnet.hit) != "n/a"
        assert dock.curves == {} and "no real liquidations" in dock.plot_note.textItem.toPlainText()
    finally:
        w.close()

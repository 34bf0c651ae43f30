"""The chart window on the bundled sample: what is drawn matches the engine's numbers."""

from __future__ import annotations

import gc
import time
import weakref
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from liqdesk.core.grid import render_grid
from liqdesk.core.liqmap import liquidation_map
from liqdesk.core.series import Candles
from liqdesk.feeds.sample import load_sample
from liqdesk.ui import format as fmt
from liqdesk.ui import theme
from liqdesk.ui.frames import quantise, quantise_values
from liqdesk.ui.session import wait_until_drawn
from tests.ui.conftest import make_window


def _drawn(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    assert wait_until_drawn(window, 30.0)


def test_opens_on_the_sample_and_says_so(window) -> None:  # type: ignore[no-untyped-def]
    sample = load_sample()
    assert len(window.candles) == len(sample.candles)
    assert window.status.notice.isVisible() and "OFFLINE" in window.status.notice.text()
    assert "sample" in window.status.source_label.text().lower()
    assert "model" in window.status.model_label.text()
    assert window.worker.engine.n_bars == len(sample.candles)
    # the view ends at the latest bar and spans the default range (3 days of 5m bars)
    x0, x1 = window.chart.visible_bars()
    assert x1 >= len(sample.candles) - 1
    assert 800 <= x1 - x0 <= 1000


def test_image_rect_matches_data_extent(window) -> None:  # type: ignore[no-untyped-def]
    f = window.frame
    req = f.request
    item = window.chart.heatmap
    x, y, w, h = item.mapRectToParent(item.boundingRect()).getRect()
    assert (x, w) == pytest.approx((req.start_bar - 0.5, req.end_bar - req.start_bar))
    assert (y, h) == pytest.approx((req.bins.lo, req.bins.hi - req.bins.lo))
    assert f.image.dtype == np.uint8 and f.image.flags.c_contiguous
    assert f.image.shape == (req.bins.n, req.columns)
    # the pixels are the engine's grid, quantised with the levels shown on the colour bar
    grid = render_grid(window.worker.engine, req.bins, req.start_bar, req.end_bar, req.columns)
    expected = quantise(np.sqrt(grid.long.T), np.sqrt(grid.short.T), f.levels, two_tone=False)
    assert np.array_equal(f.image, expected)
    assert window.chart.colorbar.levels() == pytest.approx(f.levels)
    # the rendered range covers what is on screen
    x0, x1 = window.chart.visible_bars()
    y0, y1 = window.chart.visible_prices()
    assert req.start_bar <= max(x0, 0) + 0.5 and req.end_bar >= min(x1, len(window.candles) - 1)
    assert req.bins.lo <= y0 and req.bins.hi >= y1


def test_crosshair_readout_shows_engine_numbers(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    engine = window.worker.engine
    bins = window.frame.request.bins
    bar = window.frame.request.visible_bars[0] + 200
    lmap = liquidation_map(engine, bins, bar)
    b = int(np.argmax(lmap.long))  # the strongest long bin at that bar
    price = float(bins.centers[b])
    window.chart.move_crosshair(float(bar), price)
    qtbot.waitUntil(lambda: window.readout.values is not None and window.readout.values.liquidity is not None,
                    timeout=10_000)  # fmt: skip
    v = window.readout.values
    at = v.liquidity
    c = window.candles
    assert v.bar == bar and v.close == c.close[bar] and v.volume == c.volume[bar]
    assert at.long_usd == pytest.approx(lmap.long[b])
    assert at.short_usd == pytest.approx(lmap.short[b])
    assert at.long_tiers == pytest.approx(dict(zip(lmap.tier_labels, lmap.long_by_tier[:, b], strict=True)))
    expected_cum = lmap.cum_long[b] if price < lmap.price_now else lmap.cum_short[b]
    assert at.cumulative_usd == pytest.approx(expected_cum)
    text = window.chart.readout.text()
    assert fmt.price(c.close[bar]) in text and fmt.usd(lmap.long[b]) in text
    assert window.chart.readout.isVisible()


def test_controls_change_what_is_drawn(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    window.set_transform("log")
    qtbot.waitUntil(lambda: window.frame.request.transform == "log", timeout=10_000)
    _drawn(window, qtbot)
    f = window.frame
    req = f.request
    grid = render_grid(window.worker.engine, req.bins, req.start_bar, req.end_bar, req.columns)
    # the log transform of the engine's grid (in $1k units), quantised with the levels on the colour bar
    log_long, log_short = (
        np.log1p(np.maximum(g.T, 0) / 1_000.0).astype(np.float32) for g in (grid.long, grid.short)
    )
    assert np.array_equal(f.image, quantise(log_long, log_short, f.levels, two_tone=False))
    assert window.chart.colorbar.levels() == pytest.approx(f.levels)

    window.set_colormap("viridis")
    assert np.array_equal(window.chart.heatmap.lut, theme.lut("viridis"))
    window.set_colormap("longshort")  # two-tone: longs 1..127, shorts 128..255
    qtbot.waitUntil(lambda: int(window.chart.heatmap.image.max()) >= 128, timeout=10_000)

    old_engine = window.worker.engine
    window.set_preset("high")
    qtbot.waitUntil(lambda: window.frame is not None and window.frame.lmap.tier_labels == ["25x", "50x", "100x"],
                    timeout=15_000)  # fmt: skip
    assert window.worker.engine is not old_engine

    n5 = len(window.candles)
    window.set_timeframe("1h")
    _drawn(window, qtbot)
    assert window.candles.interval_ms == 3_600_000 and len(window.candles) == pytest.approx(n5 / 12, abs=2)
    assert "resampled" in window.status.message_label.text()

    window.set_timeframe("1m")  # finer than the sample: refused, said so, nothing changes
    assert "not available" in window.status.message_label.text() and window.candles.interval_ms == 3_600_000

    window.set_range("24h")
    _drawn(window, qtbot)
    x0, x1 = window.chart.visible_bars()
    assert 20 <= x1 - x0 <= 30


def test_two_tone_switch_brings_a_frame_of_its_mode(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    """A frame keeps only its own mode's values: the switch computes a new frame, and the image is
    never shown under a map of the other mode meanwhile."""
    before = window.frame
    assert not before.request.two_tone and before.values.min() >= 0
    window.set_colormap("longshort")
    # until the two-tone frame arrives, the single-tone image keeps its single-tone map
    assert window.chart.colormap == "liqdesk" and np.array_equal(window.chart.heatmap.image, before.image)
    qtbot.waitUntil(lambda: window.frame.request.two_tone, timeout=10_000)
    f = window.frame
    assert window.chart.colormap == "longshort"
    assert np.array_equal(window.chart.heatmap.lut, theme.lut("longshort"))
    req = f.request
    grid = render_grid(window.worker.engine, req.bins, req.start_bar, req.end_bar, req.columns)
    tl, ts = np.sqrt(grid.long.T).astype(np.float32), np.sqrt(grid.short.T).astype(np.float32)
    assert np.array_equal(f.image, quantise(tl, ts, f.levels, two_tone=True))
    assert (f.values < 0).any() and (f.values > 0).any()  # shorts kept signed, longs positive
    # new levels re-colour the two-tone frame from its kept values
    lo, hi = f.levels
    window.chart.levels_changed.emit(lo, (lo + hi) / 2)
    qtbot.waitUntil(lambda: window.frame.levels == (lo, (lo + hi) / 2), timeout=10_000)
    want = quantise(tl, ts, (lo, (lo + hi) / 2), two_tone=True)
    qtbot.waitUntil(lambda: np.array_equal(window.chart.heatmap.image, want), timeout=10_000)
    window.set_colormap("liqdesk")
    qtbot.waitUntil(lambda: not window.frame.request.two_tone, timeout=10_000)
    assert window.chart.colormap == "liqdesk" and int(window.chart.heatmap.image.max()) <= 255


def test_levels_drag_requantises_and_locks(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    f = window.frame
    lo, hi = f.levels
    window.chart.levels_changed.emit(lo, lo + (hi - lo) / 4)  # as a drag of the colour bar does
    qtbot.waitUntil(lambda: window.frame.levels == (lo, lo + (hi - lo) / 4), timeout=10_000)
    assert window.settings.lock_levels and window.toolbar.lock_box.isChecked()
    expected = quantise_values(f.values, (lo, lo + (hi - lo) / 4), two_tone=False)
    qtbot.waitUntil(lambda: np.array_equal(window.chart.heatmap.image, expected), timeout=10_000)
    # locked levels survive a pan
    window.chart.pan(-0.8)
    _drawn(window, qtbot)
    assert window.frame.levels == (lo, lo + (hi - lo) / 4)
    window.toolbar.lock_box.setChecked(False)
    window.chart.jump_to_end()
    _drawn(window, qtbot)
    assert window.frame.levels != (lo, lo + (hi - lo) / 4)


def test_levels_dragged_while_a_frame_is_computed_still_apply(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    f = window.frame
    lo, hi = f.levels
    want = (lo, lo + (hi - lo) / 3)
    window.request_frame(force=True)  # a frame with the old levels is on its way…
    window.chart.levels_changed.emit(*want)  # …when the colour bar is dragged
    qtbot.waitUntil(lambda: window.frame is not f and window.frame.levels == want, timeout=10_000)
    assert window.worker.wait_idle(10_000)
    qtbot.wait(50)
    g = window.frame
    assert g.levels == want and window.frame is g
    assert np.array_equal(window.chart.heatmap.image, quantise_values(g.values, want, two_tone=False))


def test_only_the_newest_frame_keeps_its_values(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    """A superseded frame is never re-coloured or patched: the worker drops its values when it
    computes the next one, and keeps no frame alive by itself."""
    old = window.frame
    assert old.values is not None
    generation = old.request.generation
    window.request_frame(force=True)
    qtbot.waitUntil(lambda: window.frame.request.generation > generation, timeout=10_000)
    assert old.values is None and window.frame.values is not None
    assert window.worker._last_frame is window.frame
    ref = weakref.ref(old)
    del old
    gc.collect()
    assert ref() is None  # nothing else holds the superseded frame


def test_worker_keeps_the_event_loop_spinning(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    ticks: list[float] = []
    timer = QtCore.QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    gen = window.frames.scheduler.data_generation
    window.set_preset("all")  # engine rebuild + new frame, all in the worker
    qtbot.waitUntil(lambda: window.frames.scheduler.data_generation == gen + 1 and window.frame is not None
                    and len(window.frame.lmap.tier_labels) == 8, timeout=15_000)  # fmt: skip
    timer.stop()
    assert len(ticks) >= 5
    gaps = np.diff(ticks)
    assert gaps.max() < 0.25, f"UI thread blocked for {gaps.max() * 1000:.0f} ms"


def test_stale_frames_are_dropped(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    current = window.frame
    old = current.__class__(**{**current.__dict__})
    old.request = current.request.__class__(
        **{**current.request.__dict__, "generation": current.request.generation - 1}
    )
    window.frames._on_frame(window.frames.scheduler.data_generation, old)
    assert window.frame is current
    window.frames._on_frame(window.frames.scheduler.data_generation - 1, current)  # another data set's frame
    assert window.frame is current


def test_keyboard_navigation(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    window.chart.jump_to_end()
    x0, x1 = window.chart.visible_bars()
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Left)
    a0, a1 = window.chart.visible_bars()
    assert a0 < x0 and a1 - a0 == pytest.approx(x1 - x0)
    qtbot.keyClick(window, QtCore.Qt.Key.Key_Plus)
    b0, b1 = window.chart.visible_bars()
    assert b1 - b0 < a1 - a0
    qtbot.keyClick(window, QtCore.Qt.Key.Key_End)
    c0, c1 = window.chart.visible_bars()
    # the zoom is kept, the newest bar at the right with room for the price tag
    assert c1 - c0 == pytest.approx(b1 - b0)
    assert len(window.candles) - 1 + 3 <= c1 <= len(window.candles) - 1 + max(3, (c1 - c0) * 0.04) + 1e-6


def test_live_bar_updates_candle_engine_and_newest_column(qapp: QtWidgets.QApplication, qtbot) -> None:  # type: ignore[no-untyped-def]
    w = make_window(qapp, range_name="12h")
    try:
        c = w.candles
        n = len(c)
        frame = w.frame
        assert frame.request.end_bar == n
        t = int(c.open_time[-1]) + c.interval_ms
        last = float(c.close[-1])

        def row(close: float, high: float, low: float) -> Candles:
            return Candles(open_time=[t], open=[last], high=[high], low=[low], close=[close], volume=[12.0],
                           interval_ms=c.interval_ms)  # fmt: skip

        w.apply_bar(row(last * 1.001, last * 1.002, last * 0.999), is_closed=False, oi_close=None)
        assert len(w.candles) == n + 1 and len(w.chart.candles) == n + 1  # the candle moves at once
        qtbot.waitUntil(lambda: w.frame.request.end_bar == n + 1, timeout=10_000)
        w.apply_bar(
            row(last * 0.99, last * 1.002, last * 0.985), is_closed=True, oi_close=None
        )  # revise: a drop
        qtbot.waitUntil(lambda: w.worker.engine.close[-1] == pytest.approx(last * 0.99), timeout=10_000)
        _drawn(w, qtbot)
        f = w.frame
        req = f.request
        grid = render_grid(w.worker.engine, req.bins, req.start_bar, req.end_bar, req.columns)
        # the newest column equals a full recompute
        want = np.sqrt(grid.long[-1]) + np.sqrt(grid.short[-1])  # the sqrt map keeps long + short
        assert np.allclose(f.values[:, -1], want, rtol=1e-5, atol=1e-2)
        assert f.lmap.price_now == pytest.approx(last * 0.99)
        assert w.chart.price_line.value() == pytest.approx(last * 0.99)
    finally:
        w.close()


def test_real_liquidations_are_drawn_apart_from_estimates(qapp: QtWidgets.QApplication, qtbot) -> None:  # type: ignore[no-untyped-def]
    from liqdesk.ui.data import SampleSource

    w = make_window(qapp, symbol=SampleSource.display_name("btcusdt-1m-2025-01"), timeframe="1m")
    try:
        sample = load_sample("btcusdt-1m-2025-01")
        assert w.chart.real_liqs.data.size == len(sample.liquidations)
        assert "real liquidation: long (exchange)" in [lab.text for _, lab in w.chart.legend.items]
        assert w.chart.real_liqs.opts["symbol"] != w.chart.sweeps.opts["symbol"]
        assert "volume model" in w.status.model_label.text()
    finally:
        w.close()


def test_time_axis_local_and_utc(window, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Labels are the bars' times in UTC or in the local zone: with the zone at UTC+05:30 (no summer time)
    every local label is the UTC one moved by 5 h 30 min, on ticks at round times of the zone shown."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        axis = window.chart.time_axis
        n = len(window.candles)

        def labels(utc: bool) -> list[tuple[datetime, str]]:
            window.set_utc(utc)
            ticks = axis.tickValues(n - 288.0, n - 1.0, 800.0)[0][1]  # the last day of 5m bars: hourly ticks
            assert len(ticks) >= 4
            return [(datetime.fromtimestamp(axis._time_exact(v) / 1000, tz=UTC), s)
                    for v, s in zip(ticks, axis.tickStrings(ticks, 1.0, 1.0), strict=True)]  # fmt: skip

        for when, text in labels(True):
            assert text in (when.strftime("%H:%M"), when.strftime("%d %b")), (when, text)
            assert when.minute == 0  # round UTC hours
        assert "UTC" in window.status.update_label.text()
        kolkata = timezone(timedelta(hours=5, minutes=30))
        for when, text in labels(False):
            local = when.astimezone(kolkata)
            assert text in (local.strftime("%H:%M"), local.strftime("%d %b")), (local, text)
            assert local.minute == 0 and when.minute == 30  # round local hours, half past in UTC
        assert "UTC" not in window.status.update_label.text() and "IST" in window.status.update_label.text()
    finally:
        monkeypatch.undo()
        time.tzset()


def test_magnet_labels_never_cover_each_other(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    """Labels keep their boxes apart and inside the map, also when the view crowds them at an edge."""
    chart = window.chart

    def check() -> None:
        shown = [lab.sceneBoundingRect() for lab in chart.magnet_labels if lab.isVisible()]
        assert len(shown) >= 2
        area = chart.map_vb.sceneBoundingRect()
        for i, a in enumerate(shown):
            assert area.top() - 0.5 <= a.top() and a.bottom() <= area.bottom() + 0.5
            for b in shown[i + 1 :]:
                overlap = a.intersected(b)
                assert overlap.isEmpty() or overlap.height() <= 0.5, (a, b)

    check()
    price = window.frame.lmap.price_now
    chart.set_auto_y(False)
    chart.price_vb.setYRange(price * 0.995, price * 1.005, padding=0)  # every magnet beyond the edges
    qtbot.wait(20)
    check()

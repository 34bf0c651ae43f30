"""Screenshots (device pixel size, not blank, 2×, clipboard, watermark, errors) and File → Export
of the visible heatmap and liquidation map in the formats of `liqdesk export`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from liqdesk.core.grid import render_grid
from liqdesk.ui.capture import default_name, image_array, image_is_blank
from tests.ui.conftest import isolated_window


@pytest.fixture
def win(qapp: QtWidgets.QApplication, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    with isolated_window(qapp, tmp_path_factory, range_name="24h") as w:
        w.lines.add_line("stop", round(float(w.candles.close[-1]) * 0.995, 1))
        yield w


def _device_size(win) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    dpr = win.chart.devicePixelRatioF()
    return round(win.chart.width() * dpr), round(win.chart.height() * dpr)


def test_default_name() -> None:
    when = datetime(2025, 3, 1, 12, 30, 5, tzinfo=UTC)
    assert default_name("BTC/USDT:USDT", "5m", when) == "liqdesk_BTCUSDT_5m_20250301-123005Z.png"


def test_ctrl_s_saves_the_chart_at_device_size_in_the_remembered_folder(win, tmp_path, qtbot) -> None:  # type: ignore[no-untyped-def]
    win.capture.folder = tmp_path
    action = next(a for a in win.menuBar().actions()[0].menu().actions() if a.text() == "Save screenshot")
    assert action.shortcut().toString() == "Ctrl+S"
    with qtbot.waitSignal(win.capture.saved, timeout=5_000) as sig:
        action.trigger()
    path = Path(sig.args[0])
    assert path.parent == tmp_path and path.name.startswith("liqdesk_BTCUSDT_5m_") and path.suffix == ".png"
    image = QtGui.QImage(str(path))
    assert (image.width(), image.height()) == _device_size(win)
    assert not image_is_blank(image)
    px = image_array(image)
    assert len(np.unique(px[::7, ::7].reshape(-1, 4), axis=0)) > 100  # heatmap, candles, labels
    # the watermark strip sits at the bottom right: light text on a dark backing
    corner = px[-30:, -200:, :3].astype(int)
    assert corner.max() > 120 and (corner.sum(axis=2) < 60).mean() > 0.3
    # another folder chosen through "save as" becomes the remembered one
    other = tmp_path / "other"
    other.mkdir()
    assert win.capture.save_screenshot(other / "mine.png") == other / "mine.png"
    assert win.capture.folder == other


def test_two_x_export_doubles_the_pixels_and_copy_goes_to_the_clipboard(win, tmp_path) -> None:  # type: ignore[no-untyped-def]
    w, h = _device_size(win)
    path = win.capture.save_screenshot(tmp_path / "big.png", scale=2.0)
    big = QtGui.QImage(str(path))
    assert (big.width(), big.height()) == (2 * w, 2 * h)
    assert not image_is_blank(big)
    win.menus.hires_action.setChecked(True)
    assert win.capture.scale == 2.0
    win.menus.hires_action.setChecked(False)
    copied = win.capture.copy_screenshot()
    clip = QtWidgets.QApplication.clipboard().image()
    assert copied is not None and (clip.width(), clip.height()) == (w, h)


@pytest.mark.parametrize("where", ["missing/x.png", "afile/x.png"])
def test_bad_screenshot_paths_give_an_error_box_not_an_exception(win, tmp_path, qtbot, where) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "afile").write_text("not a folder")
    assert win.capture.save_screenshot(tmp_path / where) is None
    box = win.capture.error_box
    # opened with open(): shown, the call returned at once, and it blocks no other window
    assert box is not None and box.isVisible()
    assert box.windowModality() != QtCore.Qt.WindowModality.ApplicationModal
    assert "Screenshot not saved" in box.windowTitle()
    assert ("does not exist" if where.startswith("missing") else "not a folder") in box.text()
    box.close()


def test_export_visible_heatmap_npz_and_csv(win, tmp_path, qtbot) -> None:  # type: ignore[no-untyped-def]
    req = win.frame.request
    vis0, vis1 = req.visible_bars
    with qtbot.waitSignal(win.capture.saved, timeout=15_000):
        assert win.capture.export_heatmap(tmp_path / "heat.npz")
    z = np.load(tmp_path / "heat.npz")
    assert set(z.files) == {"time_ms", "price", "price_edges", "long", "short", "params"}
    assert z["long"].shape == (vis1 - vis0, len(z["price"]))
    assert z["price_edges"][0] == pytest.approx(req.visible_prices[0])
    assert z["price_edges"][-1] == pytest.approx(req.visible_prices[1])
    meta = json.loads(str(z["params"]))
    assert meta["symbol"] == "BTC/USDT:USDT" and "model" in meta and "coverage" in meta
    from liqdesk.core.grid import PriceBins

    bins = PriceBins(float(z["price_edges"][0]), float(z["price_edges"][-1]), len(z["price"]))
    ref = render_grid(win.worker.engine, bins, vis0, vis1, vis1 - vis0)
    assert np.allclose(z["long"], ref.long) and np.array_equal(z["time_ms"], ref.time_ms)
    with qtbot.waitSignal(win.capture.saved, timeout=15_000):
        win.capture.export_heatmap(tmp_path / "heat.csv")
    head = (tmp_path / "heat.csv").read_text().splitlines()[:2]
    assert head[0] == "time_ms,price,long_usd,short_usd" and len(head[1].split(",")) == 4


def test_export_liquidation_map(win, tmp_path) -> None:  # type: ignore[no-untyped-def]
    lmap = win.frame.lmap
    assert win.capture.export_map(tmp_path / "map.csv")
    text = (tmp_path / "map.csv").read_text().splitlines()
    assert text[0] == f"# time_ms: {lmap.time_ms}"
    header = next(line for line in text if not line.startswith("#")).split(",")
    assert header[:5] == ["price", "long_usd", "short_usd", "cum_long_usd", "cum_short_usd"]
    assert header[5:] == [f"long_{t}" for t in lmap.tier_labels] + [f"short_{t}" for t in lmap.tier_labels]
    assert win.capture.export_map(tmp_path / "map.npz")
    z = np.load(tmp_path / "map.npz")
    assert np.allclose(z["long_by_tier"], lmap.long_by_tier) and float(z["price_now"]) == lmap.price_now
    assert list(z["tiers"]) == lmap.tier_labels


@pytest.mark.parametrize("name", ["nope/sub/x.npz", "x.txt"])
def test_bad_export_paths_give_an_error(win, tmp_path, qtbot, name) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "nope").write_text("a file, not a folder")
    errors: list[str] = []
    win.capture.failed.connect(errors.append)
    try:
        win.capture.export_heatmap(tmp_path / name)
        qtbot.waitUntil(lambda: bool(errors), timeout=15_000)
        assert win.capture.error_box.isVisible() and "Export failed" in win.capture.error_box.windowTitle()
        win.capture.error_box.close()
        errors.clear()
        assert not win.capture.export_map(tmp_path / name)
        assert errors
    finally:
        win.capture.failed.disconnect(errors.append)
        if win.capture.error_box is not None:
            win.capture.error_box.close()

"""Offline tabs are honest: a tab for a market with no data here shows an empty chart that says so (never the
BTC sample under another label), lines are only ever saved under the market they were drawn on, and two tabs of
one market do not overwrite each other's lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PySide6 import QtWidgets

from liqdesk.app import desktop
from liqdesk.app.live_source import LiveConfig
from liqdesk.feeds.sample import load_sample
from liqdesk.ui.data import SampleSource
from liqdesk.ui.session import wait_until_drawn
from liqdesk.ui.window import MainWindow, ViewSettings
from liqdesk.ui.workspace import Workspace


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "config"


def saved_lines(config: Path) -> dict[str, Any]:
    path = config / "state.json"
    return json.loads(path.read_text())["lines"] if path.exists() else {}


def test_ctrl_t_offline_opens_eth_as_an_empty_chart_that_says_so(
    qapp: QtWidgets.QApplication, config: Path
) -> None:
    base = LiveConfig(offline=True)
    ws = Workspace(lambda spec, settings: desktop._make_pane(base, spec, settings, None))
    ws.show()
    btc = ws.current
    assert wait_until_drawn(btc, 30.0)
    sample = load_sample()
    stop = btc.lines.add_line("stop", float(btc.candles.close[-1]) * 0.98)
    assert stop is not None
    pane = ws.new_tab()  # Ctrl+T: the first watched symbol not open yet
    assert pane is not None
    eth = pane.window
    pane.controller.start()
    qapp.processEvents()
    assert eth.settings.symbol == "ETH/USDT:USDT"
    assert ws.tabs.tabText(ws.tabs.indexOf(eth)).startswith("ETH/USDT")
    assert eth.market is None and eth.candles is None  # no BTC bars under the ETH label
    assert len(eth.chart.candles) == 0 and eth.chart.heatmap.image is None
    assert eth.chart.empty_notice.isVisible() and "no ETH/USDT:USDT data" in eth.chart.empty_notice.text()
    assert (
        "ETH/USDT:USDT" in eth.status.notice.text() and "bundled sample data" not in eth.status.notice.text()
    )
    assert eth.lines.items == []  # not BTC's lines
    assert eth.lines.add_line("target", 3000.0) is None  # nothing to draw a line on
    key = f"{sample.exchange}|{sample.symbol}"
    assert [x["price"] for x in saved_lines(config)[key]] == [stop.price()]
    assert not [k for k in saved_lines(config) if "ETH" in k]
    btc.lines.add_line("target", float(btc.candles.close[-1]) * 1.02)  # BTC's own tab still saves BTC's
    assert len(saved_lines(config)[key]) == 2
    ws.close()


def test_two_tabs_of_one_market_keep_each_others_lines(qapp: QtWidgets.QApplication, config: Path) -> None:
    windows = []
    try:
        for tf in ("5m", "1h"):
            w = MainWindow(SampleSource(), ViewSettings(timeframe=tf))
            windows.append(w)
            w.show()
            assert wait_until_drawn(w, 30.0)
        a, b = windows
        last = float(a.candles.close[-1])
        a.lines.add_line("stop", last * 0.97)
        b.lines.add_line("target", last * 1.03)  # saved by b: a's stop must survive it
        a.lines.add_line("alert", last * 1.01)  # and a's next save must keep b's target
        key = f"{a.market.exchange}|{a.market.symbol}"
        assert sorted(x["kind"] for x in saved_lines(config)[key]) == ["alert", "stop", "target"]
        assert sorted(i.kind for i in b.lines.items) == ["alert", "stop", "target"]
    finally:
        for w in windows:
            w.close()

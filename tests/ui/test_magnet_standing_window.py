"""The magnets' measured standing in the window: every magnet label carries the record measured on the chart's own
bars (the same as measuring the engine directly), the magnet alert says when the model check rates magnets ≈ random,
and another market's record never shows under this one; the app's tabs get the layer, a Hyperliquid tab also gets
the position sampler beside its feed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from PySide6 import QtWidgets

from liqdesk.app import desktop, magnet_standing_layer
from liqdesk.app.live_positions import LivePositions
from liqdesk.app.live_source import LiveConfig
from liqdesk.app.magnet_standing import measure_standing, standing_text
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.intervals import Estimate
from liqdesk.core.liqmap import Magnet
from liqdesk.core.magnet_standing import CHECK_RANDOM, MagnetCheck, MagnetOutcome, MagnetStanding
from liqdesk.core.series import LONG, SHORT
from liqdesk.ui.session import wait_until_drawn
from liqdesk.ui.window import ViewSettings


def visible_labels(w: Any) -> list[str]:
    return [label.textItem.toPlainText() for label in w.chart.magnet_labels if label.isVisible()]


def test_magnet_labels_and_the_alert_carry_the_measured_standing(qapp: QtWidgets.QApplication, win: Any,
                                                                 qtbot: Any) -> None:  # fmt: skip
    layer = magnet_standing_layer.install(win)
    assert all(" · " not in t for t in visible_labels(win))  # nothing claimed before it is measured
    win.rebuild_model()
    assert wait_until_drawn(win, 30.0)
    qtbot.waitUntil(lambda: layer.standing is not None, timeout=30_000)
    # the same record as measuring an engine of the chart's bars directly
    engine = LiquidationEngine.build(win.candles, win.market.open_interest, win.params())
    expected = measure_standing(engine)
    assert layer.standing.label == expected.label and layer.standing.check.verdict == expected.check.verdict
    assert expected.label.startswith(("hit ", "unscored"))
    labels = visible_labels(win)
    assert labels and all(t.endswith(f"· {expected.label}") for t in labels)
    assert standing_text(expected).summary in win.status.message_label.text()

    # a market where the model check rates magnets ≈ random: the magnet alert says so
    random = MagnetStanding(
        (MagnetOutcome(0, LONG, 64_000.0, -1.0, 5e7, 1), MagnetOutcome(1, SHORT, 66_000.0, 1.0, 5e7, None)),
        24 * 3_600_000, MagnetCheck(CHECK_RANDOM, Estimate(0.01, -0.05, 0.07), 300, 14),
    )  # fmt: skip
    layer._show(random)
    assert all(t.endswith("· hit 1 of last 2") for t in visible_labels(win))
    big = Magnet(LONG, 64_000.0, 63_950.0, 64_050.0, 120e6, -2.0, "25x")
    win.lines.magnets = lambda: [big]
    win.alerts.set_threshold("magnet_within_pct", 0.5)
    win.alerts.set_threshold("magnet_min_usd", 50e6)
    win.set_last_price(66_000.0, 1)
    win.set_last_price(64_150.0, 2)
    (event,) = win.alerts.events
    assert event.kind == "magnet" and "long cluster 64,000" in event.message
    assert event.message.endswith("model check: magnets ≈ random on this market (+1.0 pp vs a random side)")

    # another market: its record is not this one's (measured again for it)
    win.load_symbol(win.settings.symbol)
    assert layer.standing is None and all(" · " not in t for t in visible_labels(win))


def test_the_app_gives_every_tab_the_standing_and_a_hyperliquid_tab_the_sampler(
    qapp: QtWidgets.QApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    cases = (("hyperliquid", "BTC/USDC:USDC"), ("binanceusdm", "BTC/USDT:USDT"),
             ("binanceusdm,hyperliquid", "BTC"), ("binanceusdm,bybit", "BTC"))  # fmt: skip
    for exchange, symbol in cases:
        base = LiveConfig(exchange=exchange, symbol=symbol, timeframe="5m", ccxt_options={})
        w, c = desktop._make_pane(base, {}, ViewSettings(persist=False), None)
        try:
            assert any(isinstance(x, magnet_standing_layer.MagnetStandingLayer) for x in w.context.layers)
            samplers = [x for x in c.listeners if isinstance(x, LivePositions)]
            assert c.config.exchange == exchange  # an aggregate stays one (its controller has listeners too)
            assert len(samplers) == ("hyperliquid" in exchange)
            if samplers:
                assert samplers[0].hub is w.positions and w.positions.history == samplers[0].read_history
                assert samplers[0].streams == ("trades",)
        finally:
            asyncio.run(c.close())
            w.close()

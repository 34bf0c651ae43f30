"""Alerts in the window: a line crossing fires once (hysteresis), magnets and large real
liquidations above their thresholds, the log dock shows each alert."""

from __future__ import annotations

from liqdesk.core.liqmap import Magnet
from liqdesk.core.series import LONG, SHORT, Liquidations


def test_line_crossing_fires_once_while_price_chatters(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    win.alerts.set_threshold("cross_band_pct", 0.05)  # re-arm beyond ±0.05 % (±33 at 66,000)
    win.set_last_price(65_900.0, 1)
    win.lines.add_line("alert", 66_000.0)
    fired = []
    win.alerts.fired.connect(fired.append)
    with qtbot.waitSignal(win.alerts.fired, timeout=1_000):
        win.set_last_price(66_010.0, 2)  # crosses up
    for i, p in enumerate(
        [65_995.0, 66_004.0, 65_990.0, 66_012.0, 65_999.9, 66_020.0]
    ):  # chatter inside the band
        win.set_last_price(p, 3 + i)
    assert len(fired) == 1 and fired[0].kind == "cross" and "66,000.00 up" in fired[0].message
    assert win.alert_dock.table.rowCount() == 1 and "alert line" in win.alert_dock.table.item(0, 2).text()
    assert "66,000" in win.status.message_label.text()  # also said in the status bar
    win.set_last_price(65_900.0, 20)  # clearly away: re-armed, and this is a crossing down
    assert len(fired) == 2 and "down" in fired[1].message
    # adding a line on the other side of price is not a crossing
    win.lines.add_line("stop", 65_000.0)
    win.set_last_price(65_890.0, 21)
    assert len(fired) == 2
    win.alerts.fired.disconnect(fired.append)


def test_magnet_and_large_liquidation_alerts(win, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    big = Magnet(LONG, 64_000.0, 63_950.0, 64_050.0, 120e6, -2.0, "25x")
    small = Magnet(SHORT, 64_300.0, 64_250.0, 64_350.0, 5e6, 0.5, "10x")
    monkeypatch.setattr(win.lines, "magnets", lambda: [big, small])
    win.alerts.set_threshold("magnet_within_pct", 0.5)
    win.alerts.set_threshold("magnet_min_usd", 50e6)
    win.set_last_price(66_000.0, 1)
    assert win.alerts.events == []
    win.set_last_price(64_200.0, 2)  # 0.31 % from the big one; the small one is under the threshold
    win.set_last_price(64_150.0, 3)
    kinds = [e.kind for e in win.alerts.events]
    assert kinds == ["magnet"] and "long cluster 64,000" in win.alerts.events[0].message

    win.alerts.set_threshold("liquidation_min_usd", 1e6)
    liq = Liquidations(time=[10, 11], exchange=["binanceusdm"] * 2, symbol=["BTC/USDT:USDT"] * 2, side=[LONG, SHORT],
                       price=[64_100.0, 64_120.0], quantity=[40.0, 1.0], usd=[2_564_000.0, 64_120.0])  # fmt: skip
    win.add_liquidations(liq)
    win.add_liquidations(liq)  # the same events again: no repeat
    kinds = [e.kind for e in win.alerts.events]
    assert kinds == ["magnet", "liquidation"] and "$2,564,000" in win.alerts.events[-1].message
    assert win.alert_dock.table.rowCount() == 2


def test_thresholds_are_remembered_and_sound_is_optional(win, qapp) -> None:  # type: ignore[no-untyped-def]
    from liqdesk.feeds.lines_store import load_prefs

    win.alert_dock.magnet_pct.setValue(1.25)
    win.alert_dock.magnet_usd.setValue(1e5)  # $100B in the box's $M: no real magnet qualifies here
    win.alert_dock.sound_box.setChecked(True)
    prefs = load_prefs("alerts")
    assert prefs["magnet_within_pct"] == 1.25 and prefs["sound"] is True
    assert win.alerts.magnet_rule.within_pct == 1.25
    beeps = []
    import liqdesk.ui.alerts as alerts_mod

    orig = alerts_mod.QtWidgets.QApplication.beep
    alerts_mod.QtWidgets.QApplication.beep = staticmethod(lambda: beeps.append(1))  # type: ignore[method-assign]
    try:
        win.lines.add_line("alert", 66_000.0)
        win.set_last_price(65_000.0, 1)
        win.lines.changed.emit()
        win.set_last_price(67_000.0, 2)
    finally:
        alerts_mod.QtWidgets.QApplication.beep = orig  # type: ignore[method-assign]
        win.alert_dock.sound_box.setChecked(False)
    assert beeps == [1] and [e.kind for e in win.alerts.events] == ["cross"]
    assert load_prefs("alerts")["magnet_min_usd"] == 1e11

"""Price lines and trader prefs in the state file; tick sizes per market."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liqdesk.feeds.lines_store import PriceLine, load_lines, load_prefs, save_lines, save_pref
from liqdesk.feeds.markets import plain_symbol, tick_from_market, tick_size
from liqdesk.feeds.state import state_path


@pytest.fixture(autouse=True)
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


def test_lines_round_trip_per_exchange_and_symbol() -> None:
    lines = [
        PriceLine("stop", 64000.1),
        PriceLine("target", 67000.0, "tp1"),
        PriceLine("entry", 65300.0, extra={"side": "long", "leverage": 20, "size_usd": 5000.0}),
    ]
    save_lines("binanceusdm", "BTC/USDT:USDT", lines)
    save_lines("bybit", "BTC/USDT:USDT", [PriceLine("alert", 70000.0)])
    assert load_lines("binanceusdm", "BTC/USDT:USDT") == lines
    assert load_lines("bybit", "BTC/USDT:USDT") == [PriceLine("alert", 70000.0)]
    assert load_lines("binanceusdm", "ETH/USDT:USDT") == []


def test_corrupt_file_is_moved_aside_and_bad_entries_skipped(
    config: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config.mkdir(parents=True)
    state_path().write_text("{ not json")
    assert load_lines("binanceusdm", "BTC/USDT:USDT") == []
    assert not state_path().exists() and list(config.glob("state.json.corrupt-*"))
    assert "unreadable" in caplog.text
    state_path().write_text(json.dumps({"version": 1, "lines": {"binanceusdm|BTC/USDT:USDT": [
        {"kind": "stop", "price": 61000}, {"kind": "stop", "price": -5}, {"kind": "laser", "price": 1},
        {"kind": "target", "price": "high"},
    ]}}))  # fmt: skip
    assert load_lines("binanceusdm", "BTC/USDT:USDT") == [PriceLine("stop", 61000.0)]


def test_unwritable_config_raises_oserror(config: Path) -> None:
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("a file where the folder should be")
    with pytest.raises(OSError):
        save_lines("binanceusdm", "BTC/USDT:USDT", [PriceLine("stop", 1.0)])


def test_prefs() -> None:
    assert load_prefs("alerts")["magnet_within_pct"] == 0.5
    save_pref("capture", "folder", "/tmp/shots")
    save_pref("alerts", "sound", True)
    assert load_prefs("capture")["folder"] == "/tmp/shots" and load_prefs("alerts")["sound"] is True
    with pytest.raises(KeyError):
        save_pref("alerts", "nope", 1)


def test_tick_sizes() -> None:
    assert plain_symbol("BTC/USDT:USDT") == plain_symbol("BTC-USDT-SWAP") == "BTCUSDT"
    assert tick_size("binanceusdm", "BTC/USDT:USDT") == 0.1
    assert tick_size("file", "FOO", price=1234.5) == 0.01
    assert tick_size("file", "FOO", price=0.0123) == pytest.approx(1e-7)
    assert tick_from_market({"precision": {"price": 0.1}}) == 0.1
    assert tick_from_market({"precision": {"price": 2}}, precision_mode=2) == pytest.approx(0.01)
    assert tick_from_market({"precision": {}}) is None

"""The versioned state file: round trip, corrupt / partial / future-version files, atomic writes."""

import json

import pytest

from liqdesk.feeds.state import STATE_VERSION, defaults, load_state, save_state, state_path


@pytest.fixture(autouse=True)
def config(tmp_path, monkeypatch):
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "cfg"))
    return tmp_path / "cfg"


def test_missing_file_gives_defaults():
    s = load_state()
    assert s.data == defaults() and s.warnings == []


def test_round_trip(config):
    s = load_state()
    s.set("market", "symbol", "ETH/USDT:USDT")
    s.set("colors", "levels", [1.5, 9.0])
    s.set("window", "splitter", [1200, 400])
    s.data["panes"] = [{"exchange": "bybit", "symbol": "BTC/USDT:USDT", "timeframe": "1h", "range": "7d"}] * 2
    s.set_lines("binanceusdm", "BTC/USDT:USDT", [{"kind": "stop", "price": 61000.5, "label": "my stop"}])
    save_state(s)
    again = load_state()
    assert again.data == s.data and again.warnings == []
    assert again.lines_for("binanceusdm", "BTC/USDT:USDT")[0]["price"] == 61000.5
    assert json.loads(state_path().read_text())["version"] == STATE_VERSION
    assert not list(config.glob(".state-*"))  # no temp file left behind


def test_bad_fields_fall_back_with_a_warning_and_good_ones_stay(config):
    config.mkdir()
    state_path().write_text(json.dumps({
        "version": 1,
        "market": {"symbol": "SOL/USDT:USDT", "timeframe": "7m", "bogus": 1},
        "model": {"taker_floor": 0.9, "bins": 800},
        "colors": "not an object",
        "lines": {"binanceusdm|BTC/USDT:USDT": [{"kind": "stop", "price": 60000}, {"kind": "stop", "price": -1}]},
    }))  # fmt: skip
    s = load_state()
    assert s.get("market", "symbol") == "SOL/USDT:USDT"
    assert s.get("market", "timeframe") == "5m"
    assert s.get("model", "taker_floor") == 0.2 and s.get("model", "bins") == 800
    assert s.get("colors", "transform") == "sqrt"
    assert s.lines_for("binanceusdm", "BTC/USDT:USDT") == [{"kind": "stop", "price": 60000}]
    text = "\n".join(s.warnings)
    for needle in ("market.timeframe", "market.bogus", "model.taker_floor", "'colors'", "bad price line"):
        assert needle in text


def test_corrupt_file_is_kept_aside_and_defaults_used(config):
    config.mkdir()
    state_path().write_text('{"version": 1, "market": {')
    s = load_state()
    assert s.data == defaults()
    assert "unreadable" in s.warnings[0]
    aside = list(config.glob("state.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text().startswith('{"version": 1')
    save_state(s)
    assert load_state().warnings == []


def test_future_version_is_read_tolerantly_and_backed_up_before_overwrite(config):
    config.mkdir()
    future = {"version": STATE_VERSION + 1, "market": {"symbol": "ETH/USDT:USDT"}, "newthing": {"x": 1}}
    state_path().write_text(json.dumps(future))
    s = load_state()
    assert s.get("market", "symbol") == "ETH/USDT:USDT"
    assert any("newer liqdesk" in w for w in s.warnings)
    save_state(s)
    backup = config / f"state.v{STATE_VERSION + 1}.json"
    assert json.loads(backup.read_text()) == future
    assert json.loads(state_path().read_text())["version"] == STATE_VERSION


def test_set_rejects_bad_values():
    s = load_state()
    with pytest.raises(ValueError):
        s.set("appearance", "theme", "neon")
    with pytest.raises(ValueError):
        s.set_lines("x", "y", [{"kind": "stop", "price": 0}])

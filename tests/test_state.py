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


HOSTILE = [1e308, -1e308, float("nan"), float("inf"), float("-inf"), -5, 0, "abc", "", None, [], {}, True,
           10**400, "x\x00y", "y" * 10_000, [1, [2, [3]]], 2.5]  # fmt: skip


def _every_value_checks(s) -> None:  # type: ignore[no-untyped-def]
    from liqdesk.feeds.state import SCHEMA, TOP_LEVEL, clean_line

    for section, fields in SCHEMA.items():
        for key, (_, check) in fields.items():
            assert check(s.data[section][key]), (section, key, s.data[section][key])
    for key, (_, check) in TOP_LEVEL.items():
        assert check(s.data[key]), key
    for lines in s.data["lines"].values():
        assert all(clean_line(x) == x for x in lines)


@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v)[:12])
def test_no_value_in_any_field_gets_past_the_one_validation(config, value):
    """Every field of every section, the tabs and the lines set to the same hostile value: nothing raises and
    whatever the app reads afterwards passed its check (JSON itself writes NaN, Infinity and 1e999 = inf)."""
    from liqdesk.feeds.state import SCHEMA

    config.mkdir()
    raw = {"version": 1, **{sec: {k: value for k in fields} for sec, fields in SCHEMA.items()}}
    raw["panes"] = [{"exchange": value, "symbol": value, "timeframe": value, "range": value}, value]
    raw["lines"] = {"binanceusdm|BTC/USDT:USDT": [
        {"kind": "stop", "price": value}, {"kind": value, "price": 60000.0},
        {"kind": "entry", "price": 60000.0, "side": "long", "leverage": value, "size_usd": 1000},
        {"kind": "target", "price": 65000.0, "label": value, "extra": value},
    ]}  # fmt: skip
    state_path().write_text(json.dumps(raw, allow_nan=True))
    s = load_state()
    _every_value_checks(s)
    lines = s.lines_for("binanceusdm", "BTC/USDT:USDT")
    entry = next(x for x in lines if x["kind"] == "entry")
    if not (isinstance(value, int | float) and not isinstance(value, bool) and 1 < value <= 1000):
        assert "leverage" not in entry and "side" not in entry  # a bad position leaves a plain entry line
    assert 1 <= len(s.data["panes"]) <= 2 and all(p["timeframe"] == "5m" for p in s.data["panes"])  # repaired
    save_state(s)
    assert load_state().data == s.data  # what was cleaned writes back and reads back the same


def test_price_lines_beyond_any_market_price_are_dropped(config):
    config.mkdir()
    text = ('{"version": 1, "lines": {"binanceusdm|BTC/USDT:USDT": [{"kind": "stop", "price": 1e308}, '
            '{"kind": "stop", "price": NaN}, {"kind": "stop", "price": Infinity}, {"kind": "stop", "price": 1e999}, '
            '{"kind": "stop", "price": -5}, {"kind": "stop", "price": "abc"}, {"kind": "stop", "price": 61000.5}]}}')  # fmt: skip
    state_path().write_text(text)
    s = load_state()
    assert s.lines_for("binanceusdm", "BTC/USDT:USDT") == [{"kind": "stop", "price": 61000.5}]
    assert "6 bad price line(s)" in "\n".join(s.warnings)
    with pytest.raises(ValueError):
        s.set_lines("binanceusdm", "BTC/USDT:USDT", [{"kind": "stop", "price": 1e308}])


def test_deeply_nested_or_huge_files_are_unreadable_not_fatal(config):
    config.mkdir()
    state_path().write_text("[" * 100_000 + "]" * 100_000)
    assert "unreadable" in load_state().warnings[0]
    state_path().write_text('{"version": 1, "pad": "' + "x" * (17 << 20) + '"}')
    assert "unreadable" in load_state().warnings[0]


def test_each_warning_is_logged_once_though_the_file_is_read_again(config, caplog):
    """Every save (lines, alert and capture settings, the layout) reads the file again: its warnings were
    printed again each time."""
    import logging

    config.mkdir()
    state_path().write_text(json.dumps({"version": 1, "market": {"timeframe": "7m"}}))
    with caplog.at_level(logging.WARNING, logger="liqdesk.feeds.state"):
        for _ in range(4):
            assert any("market.timeframe" in w for w in load_state().warnings)
    assert [r.getMessage() for r in caplog.records].count(load_state().warnings[0]) == 1

"""`liqdesk screen`: rows from bundled samples (offline) and from the loopback fake Binance through the
cache, the same numbers as the core computes, sortable, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from liqdesk.app.cli import main
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.liqmap import liquidation_map
from liqdesk.core.market_watch import MarketWatch, WatchBudget
from liqdesk.core.screener import screen_row
from liqdesk.feeds.presets import params_for
from liqdesk.feeds.sample import load_sample
from liqdesk.feeds.timeparse import parse_time
from tests.test_live_cli import ServerThread

DAY = 86_400_000


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


def screen_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    assert main(["screen", *args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def test_samples_screen_offline_with_the_core_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    at = "2025-10-10T21:00Z"
    r = screen_json(capsys, "--sample", "btcusdt-5m-2025-10-10", "--sample", "btcusdt-1h-2025", "--at", at)
    by = {row["market"]: row for row in r["rows"]}
    assert set(by) == {"sample btcusdt-5m-2025-10-10", "sample btcusdt-1h-2025"}
    day = by["sample btcusdt-5m-2025-10-10"]
    # the same row straight from the core: the 6 days before --at, the map over the last 3 days' range
    c = load_sample("btcusdt-5m-2025-10-10").candles
    t = parse_time(at)
    n = int(np.searchsorted(c.close_time, t, "right"))
    engine = LiquidationEngine.build(c.take(slice(n - 6 * 288, n)), params=params_for("coinglass"))
    watch = MarketWatch(params_for("coinglass"))
    watch.load("m", "sample", "BTC/USDT:USDT", c.take(slice(0, n)), None, now_ms=t)
    expect = screen_row(liquidation_map(engine, watch.bins("m")), market="m", exchange="", symbol="",
                        model="volume model", updated_ms=t)  # fmt: skip
    assert expect.nearest_long is not None and expect.nearest_short is not None and expect.largest is not None
    assert day["price"] == expect.price == float(c.close[n - 1])
    assert day["time"] == "2025-10-10T20:55:00.000Z"  # the last bar closed by --at
    for key, cl in (("nearest_long", expect.nearest_long), ("nearest_short", expect.nearest_short),
                    ("largest", expect.largest)):  # fmt: skip
        assert day[key]["price"] == pytest.approx(cl.price, abs=1e-5)
        assert day[key]["usd"] == pytest.approx(cl.usd, abs=1)
        assert day[key]["share"] == pytest.approx(cl.share, abs=1e-4)
    assert day["nearest_long"]["distance_pct"] < 0 < day["nearest_short"]["distance_pct"]
    assert (
        abs(day["largest"]["distance_pct"]) <= 5.0 and day["largest"]["share"] >= day["nearest_long"]["share"]
    )
    assert day["model"] == "volume model" and day["age_s"] == 0 and day["stale"] is False
    # the 1h sample ended in August: its row is there, and stale with its age
    assert (
        by["sample btcusdt-1h-2025"]["stale"] is True and by["sample btcusdt-1h-2025"]["age_s"] > 50 * 86400
    )


def test_rows_sort_by_the_column_asked_and_the_table_says_stale(capsys: pytest.CaptureFixture[str]) -> None:
    r = screen_json(
        capsys, "--sample", "btcusdt-5m,btcusdt-1h-2025,btcusdt-5m-2025-10-10", "--sort", "long_dist"
    )
    dists = [abs(row["nearest_long"]["distance_pct"]) for row in r["rows"]]
    assert dists == sorted(dists) and len(dists) == 3
    r = screen_json(
        capsys, "--sample", "btcusdt-5m,btcusdt-1h-2025,btcusdt-5m-2025-10-10", "--sort", "largest_usd:asc"
    )
    usd = [row["largest"]["usd"] for row in r["rows"]]
    assert usd == sorted(usd) and r["sort"] == "largest_usd:asc"
    assert main(["screen", "--sample", "btcusdt-1h-2025,btcusdt-5m", "--sort", "price"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["market", "price"] and "STALE" in out[2]
    assert out[2].startswith("sample btcusdt-1h-2025")  # highest price first
    assert "estimates, not exchange data" in out[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sample", "nope"], "unknown sample 'nope'"),
        (["--sort", "nope"], "--sort nope: unknown column 'nope'"),
        (["--sort", "price:up"], "the direction is asc or desc"),
        (["--exchange", "binanceusdm"], "--exchange needs --symbols"),
        (["--symbols", "BTC/USDT:USDT"], "--symbols needs --exchange"),
        (["--sample", "btcusdt-5m", "--exchange", "okx", "--symbols", "X"], "not both"),
        (["--within", "0"], "--within 0"),
        (["--exchange", "binanceusdm", "--symbols", "BTC/USDT:USDT", "--timeframe", "7m"], "--timeframe 7m"),
        (
            ["--sample", "btcusdt-5m", "--at", "2020-01-01"],
            "no market could be screened: sample btcusdt-5m: ",
        ),
    ],
)
def test_user_errors_are_one_line(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    assert main(["screen", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("liqdesk: error:") and message in err and "\n" not in err


def test_exchange_markets_through_the_fake_binance_and_the_cache(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """BTC is served; ETH is listed but has no klines ("Invalid symbol"): its row says so, the others stand."""
    with ServerThread() as st:
        opts = json.dumps(st.server.ccxt_options())
        args = ["--exchange", "binanceusdm", "--symbols", "BTC/USDT:USDT,ETH/USDT:USDT", "--timeframe", "1h",
                "--ccxt-options", opts, "--at", "2025-06-01T00:00Z"]  # fmt: skip
        r = screen_json(capsys, *args)
        klines = st.server.requests["/fapi/v1/klines"]
        rows = {row["market"]: row for row in r["rows"]}
        btc, eth = rows["binanceusdm BTC/USDT:USDT"], rows["binanceusdm ETH/USDT:USDT"]
        assert btc["time"] == "2025-05-31T23:00:00.000Z" and btc["price"] > 0
        assert btc["nearest_long"]["price"] < btc["price"] < btc["nearest_short"]["price"]
        assert btc["model"] == "volume model"  # the fake serves no open interest for that window
        assert "Invalid symbol" in eth["error"] and "price" not in eth
        assert r["rows"][-1] is eth  # no values: last whatever the sort
        # a second run reads the cache: the same row without fetching the history again
        again = {row["market"]: row for row in screen_json(capsys, *args)["rows"]}
        assert again["binanceusdm BTC/USDT:USDT"]["nearest_long"] == btc["nearest_long"]
        assert st.server.requests["/fapi/v1/klines"] <= klines + 2


def test_budget_defaults_are_stated() -> None:
    b = WatchBudget()
    assert (b.view_ms, b.history_ms, b.row_every_ms, b.rebuild_every_ms) == (
        3 * DAY,
        6 * DAY,
        1_000,
        3_600_000,
    )
    assert b.stale_after(300_000) == 600_000 and b.stale_after(60_000) == 120_000

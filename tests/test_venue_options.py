"""Options for several venues: comma lists, each venue's symbol, ccxt options keyed by exchange id, --venue files,
--prices; bad ones are one line on stderr and exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liqdesk.app.cli import main
from liqdesk.app.options import parse_prices
from liqdesk.app.venue_inputs import parse_venue_files
from liqdesk.errors import ConfigError
from liqdesk.feeds.exchange_config import ccxt_options_for
from liqdesk.feeds.market_list import MarketInfo, MarketList
from liqdesk.feeds.venue_set import (
    parse_exchanges,
    symbol_on_venue,
    tape_kind,
    venue_ccxt_options,
    venue_symbols,
)


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


def test_exchange_lists() -> None:
    assert parse_exchanges("binanceusdm, bybit,okx,hyperliquid") == [
        "binanceusdm",
        "bybit",
        "okx",
        "hyperliquid",
    ]
    with pytest.raises(ConfigError, match="unsupported exchange 'kraken'"):
        parse_exchanges("binanceusdm,kraken")
    with pytest.raises(ConfigError, match="bybit is given twice"):
        parse_exchanges("bybit,okx,bybit")
    with pytest.raises(ConfigError, match="separated by commas"):
        parse_exchanges("bybit,,okx")


def test_each_venue_trades_the_coin_in_its_settle_currency() -> None:
    assert symbol_on_venue("BTC/USDT:USDT", "hyperliquid") == "BTC/USDC:USDC"
    assert symbol_on_venue("BTC/USDT:USDT", "bybit") == "BTC/USDT:USDT"
    assert symbol_on_venue("ETH/USDC:USDC", "okx") == "ETH/USDC:USDC"
    listed = MarketList("okx", 0, (MarketInfo("okx", "SOL/USDC:USDC", "SOL-USDC-SWAP", "SOL", "USDC", "USDC", 1.0,
                                              0.01, 50.0, True),))  # fmt: skip
    assert (
        symbol_on_venue("SOL/USDT:USDT", "okx", listed) == "SOL/USDC:USDC"
    )  # the cached list says what exists
    got = venue_symbols("BTC/USDT:USDT,okx=BTC/USDC:USDC", ["binanceusdm", "okx", "hyperliquid"])
    assert got == {"binanceusdm": "BTC/USDT:USDT", "okx": "BTC/USDC:USDC", "hyperliquid": "BTC/USDC:USDC"}
    with pytest.raises(ConfigError, match="kraken is not one of"):
        venue_symbols("kraken=BTC/USD:USD", ["okx"])
    assert [tape_kind(v) for v in ("binanceusdm", "bybit", "okx", "hyperliquid")] == [
        "sample", "complete", "sample", "none"]  # fmt: skip


def test_ccxt_options_keyed_by_exchange_id_and_the_one_exchange_form() -> None:
    keyed = json.dumps({"bybit": {"timeout": 1}, "okx": {"timeout": 2}, "*": {"rateLimit": 7}})
    assert venue_ccxt_options("bybit", keyed) == {"rateLimit": 7, "timeout": 1}
    assert venue_ccxt_options("okx", keyed) == {"rateLimit": 7, "timeout": 2}
    assert venue_ccxt_options("hyperliquid", keyed) == {"rateLimit": 7}
    one = json.dumps({"timeout": 3, "options": {"x": 1}})
    assert venue_ccxt_options("bybit", one) == {"timeout": 3, "options": {"x": 1}}  # one exchange: as before
    assert ccxt_options_for("bybit", json.dumps({"exchanges": {"bybit": {"timeout": 4}}})) == {"timeout": 4}


def test_venue_files_and_prices_parse() -> None:
    assert parse_venue_files(["bybit=a.csv", "okx=b.csv,oi.csv"]) == [
        ("bybit", "a.csv", None),
        ("okx", "b.csv", "oi.csv"),
    ]
    assert parse_prices("60000:80000") == (60000.0, 80000.0)
    assert parse_prices("60,000:80_000") == (60000.0, 80000.0)
    for bad in ("80000:60000", "0:1", "a:b", "1:2:3", "nan:5"):
        with pytest.raises(ConfigError, match="--prices"):
            parse_prices(bad)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "--venue", "bybit", "--out", "x.npz"], "expected NAME=CANDLES"),
        (["export", "--venue", "bybit=a.csv,b.csv,c.csv", "--out", "x.npz"], "expected NAME=CANDLES"),
        (
            ["export", "--venue", "bybit=a.csv", "--venue", "bybit=b.csv", "--out", "x.npz"],
            "bybit: given twice",
        ),
        (["export", "--venue", "bybit=/nonexistent/a.csv", "--out", "x.npz"], "/nonexistent/a.csv"),
        (["export", "--venue", "bybit=a.csv", "--exchange", "okx", "--out", "x.npz"], "not both"),
        (
            ["export", "--venue", "bybit=a.csv", "--venue-liquidations", "okx=l.csv", "--out", "x.npz"],
            "no --venue okx",
        ),
        (["export", "--exchange", "bybit,kraken", "--out", "x.npz"], "unsupported exchange 'kraken'"),
        (["export", "--exchange", "bybit,okx", "--ccxt-options", "{bad", "--out", "x.npz"], "not valid JSON"),
        (["export", "--prices", "9:1", "--out", "x.npz"], "need 0 < LO < HI"),
        (["liquidations", "--exchange", "bybit,bybit", "--symbol", "BTC/USDT:USDT"], "bybit is given twice"),
        (["calibrate", "--exchange", "bybit,okx", "--positions", "p.jsonl"], "give one --exchange"),
    ],
)
def test_bad_venue_options_are_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err

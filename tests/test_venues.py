"""Per-venue liquidation side normalisation, from messages in each venue's real wire format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liqdesk.core.series import LONG, SHORT
from liqdesk.errors import ConfigError
from liqdesk.feeds.exchange_config import ccxt_options_for, deep_merge
from liqdesk.feeds.timeparse import format_time, parse_duration, parse_time
from liqdesk.feeds.venues import VENUES, BinanceUsdm, Bybit, Hyperliquid, Okx, Venue, venue_class
from tests._live_helpers import force_order_event, force_orders

# Binance forceOrder: S is the liquidation ORDER's side (SELL closes a long)
BINANCE_EVENT = {
    "e": "forceOrder", "E": 1568014460893,
    "o": {"s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "0.014", "p": "9910", "ap": "9910",
          "X": "FILLED", "l": "0.014", "z": "0.014", "T": 1568014460893},
}  # fmt: skip
# Bybit allLiquidation: S is the POSITION side (Buy = a long was liquidated)
BYBIT_MESSAGE = {
    "topic": "allLiquidation.ROSEUSDT", "type": "snapshot", "ts": 1739502303204,
    "data": [{"T": 1739502302929, "s": "ROSEUSDT", "S": "Sell", "v": "20000", "p": "0.04499"},
             {"T": 1739502302931, "s": "ROSEUSDT", "S": "Buy", "v": "1500", "p": "0.04510"}],
}  # fmt: skip
BYBIT_LEGACY = {
    "topic": "liquidation.GALAUSDT", "type": "snapshot", "ts": 1673251091822,
    "data": {"price": "0.03803", "side": "Buy", "size": "1637", "symbol": "GALAUSDT", "updatedTime": 1673251091822},
}  # fmt: skip
# OKX liquidation-orders: posSide is the liquidated position, sz in contracts
OKX_MESSAGE = {
    "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
    "data": [{
        "details": [
            {"bkLoss": "0", "bkPx": "0.007831", "ccy": "", "posSide": "short", "side": "buy", "sz": "13",
             "ts": "1692266434010"},
            {"bkLoss": "0", "bkPx": "0.007790", "ccy": "", "posSide": "long", "side": "sell", "sz": "2",
             "ts": "1692266434020"},
        ],
        "instFamily": "IOST-USDT", "instId": "IOST-USDT-SWAP", "instType": "SWAP", "uly": "IOST-USDT",
    }],
}  # fmt: skip


def test_binance_order_side_sell_is_long() -> None:
    v = BinanceUsdm(None)
    # ccxt hands the order object as `info`; a whole event works too
    for raw in (BINANCE_EVENT["o"], BINANCE_EVENT):
        (r,) = v.normalise_raw(json.loads(json.dumps(raw)), "BTC/USDT:USDT", {"contractSize": 1})
        assert r.side == LONG and r.raw_side == "SELL"
        assert r.price == 9910.0 and r.quantity == 0.014 and r.usd == pytest.approx(138.74)
        assert r.time == 1568014460893
    buy = json.loads(json.dumps(BINANCE_EVENT))
    buy["o"]["S"] = "BUY"
    assert v.normalise_raw(buy, "BTC/USDT:USDT", {})[0].side == SHORT


def test_binance_real_capture_uses_average_fill_and_total_filled() -> None:
    v = BinanceUsdm(None)
    rows = [r for r in force_orders() if r["symbol"] == "BTC"]
    assert len(rows) == 31
    for row in rows:
        (r,) = v.normalise_raw(force_order_event(row)["o"], "BTC/USDT:USDT", {})
        assert r.side == (LONG if row["side"] == "SELL" else SHORT)
        assert r.price == float(row["average_price"]) and r.order_price == float(row["price"])
        assert r.quantity == float(row["filled_accumulated_quantity"])  # not the last fill `l`
    partial = next(row for row in rows if row["last_filled_quantity"] != row["filled_accumulated_quantity"])
    assert v.normalise_raw(force_order_event(partial)["o"], "BTC/USDT:USDT", {})[0].quantity == float(
        partial["filled_accumulated_quantity"]
    )


def test_bybit_position_side_buy_is_long() -> None:
    v = Bybit(None)
    sell, buy = (v.normalise_raw(d, "ROSE/USDT:USDT", {"contractSize": 1})[0] for d in BYBIT_MESSAGE["data"])
    assert sell.side == SHORT and buy.side == LONG
    assert sell.quantity == 20000 and sell.price == 0.04499 and sell.usd == pytest.approx(899.8)
    assert sell.time == 1739502302929
    (legacy,) = v.normalise_raw(BYBIT_LEGACY["data"], "GALA/USDT:USDT", {})
    assert legacy.side == LONG and legacy.quantity == 1637 and legacy.time == 1673251091822


def test_okx_pos_side_and_contract_value() -> None:
    v = Okx(None)
    recs = v.normalise_raw(OKX_MESSAGE["data"][0], "IOST/USDT:USDT", {"contractSize": 1000})
    assert [r.side for r in recs] == [SHORT, LONG]  # every detail, not only the first (ccxt keeps one)
    assert recs[0].quantity == 13_000 and recs[0].price == 0.007831
    assert recs[0].usd == pytest.approx(13_000 * 0.007831)
    assert recs[1].time == 1692266434020
    net = {"details": [{"bkPx": "30000", "posSide": "net", "side": "sell", "sz": "5", "ts": "1692266434010"}]}
    assert v.normalise_raw(net, "BTC/USDT:USDT", {"contractSize": 0.01})[0].side == LONG
    assert v.normalise_raw(net, "BTC/USDT:USDT", {"contractSize": 0.01})[0].quantity == pytest.approx(0.05)


@pytest.mark.parametrize(
    ("venue", "raw"),
    [
        (BinanceUsdm, {"s": "BTCUSDT", "S": "SELL", "p": "abc", "q": "x", "T": 1568014460893}),
        (BinanceUsdm, {"s": "BTCUSDT", "S": "MAYBE", "p": "1", "ap": "1", "z": "1", "T": 1568014460893}),
        (BinanceUsdm, {"s": "BTCUSDT", "S": "SELL", "p": "1", "ap": "1", "z": "1", "T": "soon"}),
        (BinanceUsdm, {"s": "BTCUSDT", "S": "SELL", "p": "-1", "ap": "nan", "z": "1", "T": 1568014460893}),
        (Bybit, {"T": 1739502302929, "s": "ROSEUSDT", "S": "Long", "v": "1", "p": "1"}),
        (Bybit, {"T": 1739502302929, "s": "ROSEUSDT", "S": "Buy", "v": "0", "p": "1"}),
        (Okx, {"details": []}),
        (
            Okx,
            {
                "details": [
                    {"bkPx": "1", "posSide": "sideways", "side": "hold", "sz": "1", "ts": "1692266434010"}
                ]
            },
        ),
    ],
)
def test_malformed_liquidations_raise_value_error(venue: type, raw: dict) -> None:
    with pytest.raises(ValueError):
        venue(None).normalise_raw(raw, "X/USDT:USDT", {})


def test_unknown_exchange_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unsupported exchange 'kraken'"):
        venue_class("kraken")


def test_ccxt_options_file_and_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path))
    assert ccxt_options_for("binanceusdm") == {}
    (tmp_path / "config.json").write_text(json.dumps({"exchanges": {
        "*": {"timeout": 7000},
        "binanceusdm": {"urls": {"api": {"fapiPublic": "http://a/fapi/v1"}}, "options": {"x": 1, "y": 2}},
    }}))  # fmt: skip
    got = ccxt_options_for("binanceusdm", '{"options": {"y": 3}, "aiohttp_proxy": "http://proxy:8080"}')
    assert got == {"timeout": 7000, "urls": {"api": {"fapiPublic": "http://a/fapi/v1"}},
                   "options": {"x": 1, "y": 3}, "aiohttp_proxy": "http://proxy:8080"}  # fmt: skip
    assert ccxt_options_for("bybit") == {"timeout": 7000}
    with pytest.raises(ConfigError, match="--ccxt-options is not valid JSON"):
        ccxt_options_for("binanceusdm", "{options: 1}")
    with pytest.raises(ConfigError, match="must be a JSON object"):
        ccxt_options_for("binanceusdm", "[1, 2]")
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(ConfigError, match=r"config file .*config.json is not valid JSON"):
        ccxt_options_for("binanceusdm")
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": 5}}) == {"a": {"b": 5, "c": 2}}


def test_time_and_duration_parsing() -> None:
    assert parse_time("2025-01-27") == 1737936000000
    assert parse_time("2025-01-27T16:50Z") == 1737996600000
    assert parse_time("2025-01-27T18:50+02:00") == 1737996600000
    assert parse_time("2025-01-27T16:50") == 1737996600000  # naive = UTC
    assert parse_time("1737996600000") == 1737996600000
    assert parse_time("1737996600") == 1737996600000
    assert format_time(1737996600123) == "2025-01-27T16:50:00.123Z"
    for text, ms in [("90m", 5_400_000), ("1h", 3_600_000), ("12h", 43_200_000), ("24h", 86_400_000),
                     ("3d", 259_200_000), ("7d", 604_800_000), ("30d", 2_592_000_000), ("90d", 7_776_000_000),
                     ("180d", 15_552_000_000), ("1y", 31_536_000_000)]:  # fmt: skip
        assert parse_duration(text) == ms
    for bad in ("", "3", "d", "3x", "-1d", "0h"):
        with pytest.raises(ConfigError):
            parse_duration(bad)
    with pytest.raises(ConfigError, match="bad time 'yesterday'"):
        parse_time("yesterday")


def test_each_venue_says_what_its_data_gives() -> None:
    assert set(VENUES) == {"binanceusdm", "bybit", "okx", "hyperliquid"}
    # liquidation tapes: Bybit's allLiquidation carries every liquidation, Binance and OKX send samples,
    # Hyperliquid publishes none
    feeds = {k: v.liquidation_feed for k, v in VENUES.items()}
    assert feeds["bybit"] is not None and feeds["bybit"].complete
    assert feeds["binanceusdm"] is not None and not feeds["binanceusdm"].complete
    assert feeds["okx"] is not None and not feeds["okx"].complete
    assert feeds["hyperliquid"] is None
    assert [k for k, v in VENUES.items() if v.taker_volume] == ["binanceusdm", "okx"]
    assert [k for k, v in VENUES.items() if not v.has_oi_history] == ["hyperliquid"]
    assert all(v.data_notes for v in VENUES.values())


@pytest.mark.parametrize(
    ("venue", "timeframe", "period"),
    [
        (BinanceUsdm, "1m", "5m"), (BinanceUsdm, "2h", "2h"), (Bybit, "2h", "1h"), (Bybit, "4h", "4h"),
        (Bybit, "1d", "1d"), (Okx, "15m", "5m"), (Okx, "4h", "1h"), (Okx, "1d", "1d"), (Hyperliquid, "1h", "1h"),
    ],
)  # fmt: skip
def test_open_interest_period_is_one_the_venue_offers(
    venue: type[Venue], timeframe: str, period: str
) -> None:
    assert venue.oi_period(timeframe) == period


def test_history_depths() -> None:
    assert Okx.oi_history_depth_ms("5m") == 1440 * 300_000  # the latest 1,440 entries of a period
    assert Okx.oi_history_depth_ms("1h") == 1440 * 3_600_000
    assert (
        BinanceUsdm.oi_history_depth_ms("5m") == 30 * 86_400_000 and Bybit.oi_history_depth_ms("1h") is None
    )
    assert Hyperliquid.candle_depth_ms("1m") == 5000 * 60_000 and Bybit.candle_depth_ms("1m") is None


def test_hyperliquid_has_no_liquidation_messages() -> None:
    with pytest.raises(ValueError, match="no liquidation stream"):
        Hyperliquid(None).normalise_raw({"p": "1"}, "BTC/USDC:USDC", {})


def test_bybit_bankruptcy_price_is_the_order_price() -> None:
    raw = {"T": 1739502302929, "s": "ROSEUSDT", "S": "Sell", "v": "20000", "p": "0.04499"}
    (r,) = Bybit(None).normalise_raw(raw, "ROSE/USDT:USDT", {"contractSize": 1})
    assert r.order_price == r.price == 0.04499

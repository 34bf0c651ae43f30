"""Symbol search offline from the venues' cached market lists: "sol" finds SOL/USDT:USDT on each venue and the
coin aggregated; recent markets come first; picking one opens it in a new tab."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6 import QtWidgets

from liqdesk.feeds.market_list import MarketInfo, MarketList, load_market_lists, save_market_list
from liqdesk.ui.symbol_search import SymbolSearch, choices


def info(ex: str, base: str, settle: str = "USDT") -> MarketInfo:
    return MarketInfo(
        ex, f"{base}/{settle}:{settle}", f"{base}{settle}", base, settle, settle, 1.0, 0.01, 50.0, True
    )


@pytest.fixture
def cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    for ex, settle in (("binanceusdm", "USDT"), ("bybit", "USDT"), ("hyperliquid", "USDC")):
        markets = tuple(info(ex, b, settle) for b in ("BTC", "SOL", "SOLV", "ETH"))
        save_market_list(MarketList(ex, 1_700_000_000_000, markets))
    return tmp_path


def test_sol_lists_the_coin_aggregated_then_each_venue_recent_first(cached: Path) -> None:
    lists = load_market_lists()  # from disk: no network
    got = choices("sol", lists)
    assert got[0].exchange == "binanceusdm,bybit,hyperliquid" and got[0].symbol == "SOL/USDT:USDT"
    assert "3 venues aggregated" in got[0].text
    singles = [(c.exchange, c.symbol) for c in got[1:4]]
    assert singles == [
        ("binanceusdm", "SOL/USDT:USDT"),
        ("bybit", "SOL/USDT:USDT"),
        ("hyperliquid", "SOL/USDC:USDC"),
    ]
    assert any(
        c.symbol == "SOLV/USDT:USDT" for c in got[4:]
    )  # a longer base that starts with the query, after
    recent = choices("sol", lists, recent=[("bybit", "SOL/USDT:USDT")])
    assert (recent[1].exchange, recent[1].symbol) == ("bybit", "SOL/USDT:USDT") and "recent" in recent[1].text
    # an empty query lists the recent and watched markets
    assert [c.symbol for c in choices("", lists, watched=[("bybit", "ETH/USDT:USDT")])][-1] == "ETH/USDT:USDT"


def test_the_dialog_opens_the_pick(qapp: QtWidgets.QApplication, cached: Path) -> None:
    opened: list[tuple[str, str]] = []
    d = SymbolSearch(None, load_market_lists(), lambda ex, sym: opened.append((ex, sym)))
    d.query.setText("sol")
    assert d.results.count() >= 4
    d.results.setCurrentRow(2)
    d.choose()
    assert opened == [("bybit", "SOL/USDT:USDT")]

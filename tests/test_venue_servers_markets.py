"""Symbol search data: each venue's markets loaded by the real ccxt client from the fakes, stored on disk
atomically, read back offline and searched (no Qt)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from liqdesk.errors import DataError
from liqdesk.feeds import market_list as ml_mod
from liqdesk.feeds.market_list import (
    MarketList,
    load_market_list,
    load_market_lists,
    market_list_path,
    refresh_market_lists,
    save_market_list,
    search_markets,
)
from tests.fake_exchange import FakeBinance
from tests.fake_exchange.bybit import FakeBybit
from tests.fake_exchange.hyperliquid import FakeHyperliquid
from tests.fake_exchange.okx import FakeOkx

VENUE_IDS = ("binanceusdm", "bybit", "okx", "hyperliquid")
NOW = 1_754_000_000_000


def _refresh(folder: Path) -> ml_mod.MarketLists:
    async def main() -> ml_mod.MarketLists:
        async with FakeBinance() as b, FakeBybit() as y, FakeOkx() as o, FakeHyperliquid() as h:
            options = {"binanceusdm": b.ccxt_options(), "bybit": y.ccxt_options(), "okx": o.ccxt_options(),
                       "hyperliquid": h.ccxt_options()}  # fmt: skip
            return await refresh_market_lists(VENUE_IDS, options, folder=folder, now_ms=NOW)

    return asyncio.run(main())


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("markets")
    got = _refresh(folder)
    assert not got.problems, got.problems
    return folder


def test_markets_from_every_venue_are_stored_for_offline_use(cached: Path) -> None:
    assert sorted(p.name for p in cached.iterdir()) == [
        f"{v}.json" for v in sorted(VENUE_IDS)
    ]  # no temp files
    lists = load_market_lists(VENUE_IDS, cached)  # no server is running now
    assert not lists.problems and set(lists.lists) == set(VENUE_IDS)
    okx = {m.symbol: m for m in lists.lists["okx"].markets}
    assert okx["BTC/USDT:USDT"].id == "BTC-USDT-SWAP" and okx["BTC/USDT:USDT"].contract_size == 0.01
    assert "SOL/USD:SOL" not in okx  # inverse contracts are not listed
    assert not okx["LUNA/USDT:USDT"].active
    bybit = {m.symbol: m for m in lists.lists["bybit"].markets}
    assert bybit["BTC/USDC:USDC"].id == "BTCPERP" and bybit["BTC/USDT:USDT"].tick == 0.1
    assert bybit["BTC/USDT:USDT"].max_leverage == 100
    hl = {m.symbol: m for m in lists.lists["hyperliquid"].markets}
    assert hl["BTC/USDC:USDC"].base == "BTC" and not hl["MATIC/USDC:USDC"].active
    assert {m.symbol for m in lists.lists["binanceusdm"].markets} == {"BTC/USDT:USDT", "ETH/USDT:USDT"}
    assert lists.lists["okx"].fetched_at == NOW and lists.lists["okx"].is_stale(NOW + 2 * ml_mod.DAY_MS)


def test_search_sol_ranks_exact_base_then_recent_and_watched(cached: Path) -> None:
    lists = load_market_lists(VENUE_IDS, cached)
    hits = search_markets("sol", lists)
    keys = [h.market.key for h in hits]
    # exact base first (USDT before USDC, venues in order), then bases starting with "SOL"
    assert keys[:4] == [("bybit", "SOL/USDT:USDT"), ("okx", "SOL/USDT:USDT"), ("bybit", "SOL/USDC:USDC"),
                        ("hyperliquid", "SOL/USDC:USDC")]  # fmt: skip
    assert keys[4:] == [("bybit", "SOLV/USDT:USDT")] and [h.match for h in hits] == ["exact"] * 4 + ["prefix"]
    # recent first (most recent first), then watched, inside the exact matches; SOLV stays behind them
    hits = search_markets("SOL", lists, recent=[("hyperliquid", "SOL/USDC:USDC"), ("bybit", "SOLV/USDT:USDT")],
                          watched=[("okx", "SOL/USDT:USDT")])  # fmt: skip
    assert [h.market.key for h in hits][:3] == [("hyperliquid", "SOL/USDC:USDC"), ("okx", "SOL/USDT:USDT"),
                                                ("bybit", "SOL/USDT:USDT")]  # fmt: skip
    assert hits[-1].market.symbol == "SOLV/USDT:USDT" and hits[-1].recent
    # pairs, venue ids and symbols work too; an empty query lists the recent and watched markets
    assert {h.market.exchange for h in search_markets("SOL/USDT", lists) if h.match == "exact"} == {
        "bybit",
        "okx",
    }
    assert search_markets("btcperp", lists)[0].market.key == ("bybit", "BTC/USDC:USDC")
    assert [h.market.key for h in search_markets("pepe", lists)][:1] == [("okx", "PEPE/USDT:USDT")]
    assert [h.match for h in search_markets(" ", lists, recent=[("okx", "ETH/USDT:USDT")],
                                            watched=[("bybit", "BTC/USDT:USDT")])] == ["recent", "watched"]  # fmt: skip
    assert search_markets("luna", lists) == [] and search_markets("luna", lists, include_inactive=True)
    assert len(search_markets("t", lists, limit=3)) == 3


def test_a_damaged_list_is_reported_and_the_others_still_load(cached: Path, tmp_path: Path) -> None:
    for v in VENUE_IDS:
        (tmp_path / f"{v}.json").write_bytes((cached / f"{v}.json").read_bytes())
    (tmp_path / "okx.json").write_text('{"format": 1, "exchange": "okx", "fetched_at": 1, "markets": [{"sym')
    (tmp_path / "bybit.json").write_text(json.dumps({"format": 1, "exchange": "bybit", "fetched_at": 1,
                                                     "markets": [{"symbol": "X"}]}))  # fmt: skip
    lists = load_market_lists(VENUE_IDS, tmp_path)
    assert set(lists.lists) == {"binanceusdm", "hyperliquid"}
    assert len(lists.problems) == 2 and all("cannot be used" in p for p in lists.problems)
    assert any(str(tmp_path / "okx.json") in p for p in lists.problems)
    with pytest.raises(DataError, match="okx.json cannot be used"):
        load_market_list("okx", tmp_path)
    assert load_market_list("okx", tmp_path / "nowhere") is None


def test_an_unreachable_venue_keeps_its_cached_list(cached: Path, tmp_path: Path) -> None:
    (tmp_path / "okx.json").write_bytes((cached / "okx.json").read_bytes())
    dead = {"okx": {"urls": {"api": {"rest": "http://127.0.0.1:9"}}, "timeout": 2000}}

    got = asyncio.run(refresh_market_lists(["okx"], dead, folder=tmp_path, now_ms=NOW + 1))
    assert got.lists["okx"].fetched_at == NOW and len(got.problems) == 1
    assert (
        got.problems[0].startswith("okx: markets not refreshed") and "using the list from" in got.problems[0]
    )
    assert (tmp_path / "okx.json").read_bytes() == (cached / "okx.json").read_bytes()


def test_a_failed_write_leaves_the_old_file(
    cached: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = load_market_list("bybit", cached)
    assert old is not None
    save_market_list(old, tmp_path)
    before = market_list_path("bybit", tmp_path).read_bytes()

    def broken(*a: object, **k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("liqdesk.feeds.atomic._fsync_file", broken)  # the disk fails mid-write
    with pytest.raises(OSError):
        save_market_list(MarketList("bybit", NOW + 5, old.markets[:1]), tmp_path)
    assert market_list_path("bybit", tmp_path).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["bybit.json"]

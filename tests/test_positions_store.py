"""Reading clearinghouseState answers, address lists, recorded answers (hostile input included), the position
tables beside the cache, and the observed preset."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from liqdesk.core.inferred_liquidations import InferredLiquidations
from liqdesk.core.series import Liquidations
from liqdesk.errors import ConfigError, DataError
from liqdesk.feeds.addresses import AddressBook, read_address_file
from liqdesk.feeds.cache import Cache
from liqdesk.feeds.position_records import ResponseRecorder, read_position_records
from liqdesk.feeds.positions_store import PositionsStore
from liqdesk.feeds.presets import load_presets, save_user_preset
from liqdesk.feeds.venues.hyperliquid import (
    MarketContext,
    TradeRecord,
    parse_asset_contexts,
    parse_clearinghouse_state,
)
from tests.fake_exchange.hyperliquid import FakeHyperliquid, HlPosition

ALICE = "0x" + "a1" * 20
BOB = "0x" + "B2" * 20
T0 = 1_750_000_000_000


def answer(*positions: HlPosition, at: int = T0) -> dict[str, Any]:
    """An answer exactly as the fake (and the venue) sends it."""
    fake = FakeHyperliquid(accounts={ALICE: list(positions)})
    fake.now_ms = at
    return fake.clearinghouse_state(ALICE)


# -- the venue's answers -------------------------------------------------------------------------------------------
def test_clearinghouse_answers_are_read_whole_with_null_liquidation_prices() -> None:
    raw = answer(HlPosition("BTC", 0.5, 70_000.0, 20, liquidation_px=66_520.5),
                 HlPosition("ETH", -2.0, 3_600.0, 10, "isolated", liquidation_px=None))  # fmt: skip
    s = parse_clearinghouse_state(raw, ALICE.upper())
    assert s.user == ALICE and s.time == T0
    btc, eth = s.positions
    assert (btc.coin, btc.size, btc.entry_px, btc.leverage, btc.margin_type, btc.liquidation_px) == (
        "BTC", 0.5, 70_000.0, 20.0, "cross", 66_520.5)  # fmt: skip
    assert btc.position_value > 0 and btc.margin_used == pytest.approx(btc.position_value / 20)
    assert eth.size == -2.0 and eth.margin_type == "isolated" and eth.liquidation_px is None


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("assetPositions"), "no assetPositions"),
        (lambda r: r.update(assetPositions={"a": 1}), "no assetPositions"),
        (lambda r: r["assetPositions"].append("x"), "no position object"),
        (lambda r: r["assetPositions"][0]["position"].update(szi="lots"), "szi is not a number"),
        (lambda r: r["assetPositions"][0]["position"].update(szi="nan"), "szi is not finite"),
        (lambda r: r["assetPositions"][0]["position"].update(entryPx=-1), "entryPx must be > 0"),
        (lambda r: r["assetPositions"][0]["position"].update(leverage={"type": "x"}), "leverage is not"),
        (
            lambda r: r["assetPositions"][0]["position"].update(liquidationPx=[1]),
            "liquidationPx is not a number",
        ),
        (
            lambda r: r["assetPositions"][0]["position"].update(positionValue=True),
            "positionValue is not a number",
        ),
        (lambda r: r["assetPositions"][0]["position"].pop("marginUsed"), "marginUsed is not a number"),
        (lambda r: r.update(time="soon"), "time is not an integer"),
        (lambda r: r["assetPositions"].append(r["assetPositions"][0]), "lists a coin twice"),
    ],
)
def test_an_answer_with_any_unreadable_part_is_refused_with_what_and_where(mutate: Any, message: str) -> None:
    raw = answer(HlPosition("BTC", 0.5, 70_000.0, 20, liquidation_px=66_520.5))
    mutate(raw)
    with pytest.raises(ValueError, match=message):
        parse_clearinghouse_state(raw, ALICE)


def test_zero_size_and_non_positive_liquidation_prices() -> None:
    raw = answer(HlPosition("BTC", 0.5, 70_000.0, 20, liquidation_px=66_520.5),
                 HlPosition("ETH", 1.0, 3_000.0, 1, liquidation_px=1.0))  # fmt: skip
    raw["assetPositions"][0]["position"]["szi"] = "0.0"
    raw["assetPositions"][1]["position"]["liquidationPx"] = "-12.5"
    (eth,) = parse_clearinghouse_state(raw, ALICE).positions
    assert eth.coin == "ETH" and eth.liquidation_px is None  # price can never get there: no price


def test_asset_contexts_give_open_interest_and_mark_per_coin() -> None:
    fake = FakeHyperliquid()
    ctx = parse_asset_contexts(fake._meta_and_ctxs({}))
    assert ctx["BTC"].open_interest_usd == pytest.approx(fake.open_interest_usd())
    assert ctx["ETH"] == MarketContext(1000.0, 3520.4)
    with pytest.raises(ValueError, match="not \\[meta, contexts\\]"):
        parse_asset_contexts({"universe": []})


# -- addresses -------------------------------------------------------------------------------------------------
def test_address_files_keep_good_lines_and_report_bad_ones(tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text(f"# my list\n{ALICE}\n\n{BOB}  # bob\n0x1234\n{ALICE.upper().replace('0X', '0x')}\nhello\n")
    got, report = read_address_file(f)
    assert got == [ALICE, BOB.lower()] and report.duplicates == 1
    assert [p.line for p in report.rejected] == [5, 7] and "0x and 40 hex digits" in report.rejected[0].reason
    (tmp_path / "none.txt").write_text("nothing here\n")
    with pytest.raises(DataError, match="no address in the file"):
        read_address_file(tmp_path / "none.txt")
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="not a text file"):
        read_address_file(tmp_path / "bin")
    with pytest.raises(DataError, match="file not found"):
        read_address_file(tmp_path / "missing.txt")


def test_the_address_book_counts_both_sides_of_every_trade() -> None:
    book = AddressBook()
    t = TradeRecord("hyperliquid", "BTC/USDC:USDC", T0, 70_000.0, 0.5, 1, "1", ALICE, BOB.lower())
    book.observe(t)
    book.observe(
        TradeRecord("hyperliquid", "BTC/USDC:USDC", T0 + 5, 70_010.0, 1.0, -1, "2", BOB.lower(), "bad")
    )
    seen = book.drain()
    assert seen[ALICE].trades == 1 and seen[ALICE].notional == 35_000.0
    b = seen[BOB.lower()]
    assert (b.first_seen, b.last_seen, b.trades, b.notional) == (T0, T0 + 5, 2, 35_000.0 + 70_010.0)
    assert book.malformed == 1 and book.drain() == {}


# -- the store ---------------------------------------------------------------------------------------------------
def test_samples_are_idempotent_and_the_state_at_an_instant_comes_back(tmp_path: Path) -> None:
    db = tmp_path / "liqdesk.sqlite3"
    with PositionsStore(db) as st:
        a = parse_clearinghouse_state(answer(HlPosition("BTC", 0.5, 70_000.0, 20, liquidation_px=66_520.5),
                                             HlPosition("ETH", -1.0, 3_000.0, 5, liquidation_px=None)), ALICE)  # fmt: skip
        assert st.put_sample(ALICE, a, T0, ["BTC"]) is True
        assert st.put_sample(ALICE, a, T0, ["BTC"]) is False  # written twice, stored once
        empty = parse_clearinghouse_state(answer(), ALICE)
        st.put_sample(ALICE, empty, T0 + 60_000, ["BTC"])
        assert st.count("position_samples") == 2 and st.count("positions") == 1  # ETH not kept
        key = st.account_key(ALICE)
        assert key.startswith("h") and ALICE not in key and len(key) == 21
        before = st.state_at("BTC", T0 + 1)
        assert before.account.tolist() == [key] and before.liquidation_px.tolist() == [66_520.5]
        after = st.state_at("BTC", T0 + 60_000)
        assert after.n_samples == 1 and len(after) == 0  # the newest answer listed nothing
        assert st.samples("BTC").n_samples == 2
        st.put_markets(T0, {"BTC": MarketContext(100.0, 70_000.0)})
        assert st.market_at("BTC", T0 + 5) == (T0, MarketContext(100.0, 70_000.0))
        assert st.market_at("BTC", T0 - 5) is None
    # the cache opens the same file and keeps working beside the position tables, and the reverse
    with Cache(db) as c:
        assert c.moved_aside is None and c.count("candles") == 0
    with PositionsStore(db, account_keys="address") as st:
        assert st.account_key(ALICE) == key  # fixed when the account was first stored
        assert st.account_key(BOB) == BOB.lower()  # a new one: the address, as chosen now
        assert st.count("positions") == 1


def test_accounts_merge_what_was_seen(tmp_path: Path) -> None:
    from liqdesk.feeds.addresses import Activity

    with PositionsStore(tmp_path / "db") as st:
        assert st.add_accounts({ALICE: Activity(T0 + 10, T0 + 20, 2, 100.0)}) == 1
        assert st.add_accounts({ALICE: Activity(T0, T0 + 5, 1, 50.0)}, imported=True) == 0
        (row,) = st.accounts()
        assert (row.first_seen, row.last_seen, row.trades, row.notional, row.imported) == (T0, T0 + 20, 3, 150.0,
                                                                                          True)  # fmt: skip
        st.put_sample(ALICE, parse_clearinghouse_state(answer(), ALICE), T0 + 99, ["BTC"])
        assert st.accounts()[0].last_sampled == T0 + 99 and st.count_sampled_since(T0 + 99) == 1


def test_inferred_liquidations_are_stored_once_and_come_back_marked(tmp_path: Path) -> None:
    ev = Liquidations(np.array([T0]), np.array(["hyperliquid"]), np.array(["BTC/USDC:USDC"]), np.array([1]),
                      np.array([66_000.0]), np.array([0.5]), np.array([33_000.0]), inferred=np.array([True]))  # fmt: skip
    found = InferredLiquidations(
        ev, np.array(["hkey"]), np.array([T0 - 5], np.int64), np.array([T0 + 5], np.int64)
    )
    with PositionsStore(tmp_path / "db") as st:
        assert st.put_inferred(found) == 1 and st.put_inferred(found) == 0
        back = st.inferred("BTC/USDC:USDC")
        assert (
            back.inferred.tolist() == [True] and back.usd.tolist() == [33_000.0] and back.side.tolist() == [1]
        )
        assert len(st.inferred("BTC/USDC:USDC", T0 + 1)) == 0


def test_a_foreign_or_newer_database_is_not_written_into(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.sqlite3"
    with sqlite3.connect(foreign) as c:
        c.execute("CREATE TABLE mine (x)")
    c.close()
    with PositionsStore(foreign) as st:  # moved aside by the cache's rule, a fresh database made
        assert st.count("positions") == 0
    assert list(tmp_path.glob("foreign.sqlite3.corrupt-*"))
    newer = tmp_path / "newer.sqlite3"
    with PositionsStore(newer):
        pass
    with sqlite3.connect(newer) as c:
        c.execute("UPDATE position_meta SET value = '99' WHERE key = 'schema_version'")
    c.close()
    with pytest.raises(DataError, match="newer liqdesk"):
        PositionsStore(newer)


def test_liquidations_keep_the_inferred_flag_through_take_and_concat() -> None:
    rec = Liquidations(np.array([1, 2]), np.array(["x", "x"]), np.array(["y", "y"]), np.array([1, -1]),
                       np.array([1.0, 2.0]), np.array([1.0, 1.0]), np.array([1.0, 2.0]))  # fmt: skip
    assert rec.inferred.tolist() == [False, False]
    both = rec.concat(rec.take(np.array([True, False])).__class__(
        np.array([3]), np.array(["x"]), np.array(["y"]), np.array([1]), np.array([3.0]), np.array([1.0]),
        np.array([3.0]), inferred=np.array([True])))  # fmt: skip
    assert both.inferred.tolist() == [False, False, True] and both.sorted().take(
        slice(2, 3)
    ).inferred.tolist() == [True]
    assert len(Liquidations.empty().inferred) == 0


# -- recorded answers ------------------------------------------------------------------------------------------------
def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def rec(user: str, t: int, *positions: HlPosition) -> str:
    return json.dumps({"user": user, "time": t, "response": answer(*positions, at=t)})


def test_recorded_answers_read_back_with_hostile_lines_reported(tmp_path: Path) -> None:
    good = [
        rec(ALICE, T0 + i, HlPosition("BTC", 0.5, 70_000.0, 20, liquidation_px=66_520.5)) for i in range(30)
    ]
    bad = [
        "{not json",
        "[" * 100_000 + "]" * 100_000,  # nested: RecursionError inside json
        json.dumps({"user": ALICE, "time": T0}),  # no response
        json.dumps({"user": "alice", "time": T0, "response": {"assetPositions": []}}),
        json.dumps({"user": BOB, "time": 12, "response": {"assetPositions": []}}),
        json.dumps(
            {"user": BOB, "time": T0, "response": {"assetPositions": [{"position": {"coin": "BTC"}}]}}
        ),
        good[0],  # the same user and time again
    ]
    f = write_lines(tmp_path / "p.jsonl", good + bad)
    r = read_position_records(f)
    assert r.samples.n_samples == 30 and r.report.kept == 30 and r.coins == {"BTC"}
    reasons = [p.reason for p in r.report.rejected]
    assert [p.line for p in r.report.rejected] == [31, 32, 33, 34, 35, 36]
    assert "not valid JSON" in reasons[0] and "nested too deeply" in reasons[1]
    assert "expected an object" in reasons[2] and "not an address" in reasons[3]
    assert "epoch milliseconds" in reasons[4] and "szi is not a number" in reasons[5]
    assert r.report.duplicates == 1 and r.report.dropped[0].line == 37
    # gzip, read as it is
    gz = tmp_path / "p.jsonl.gz"
    gz.write_bytes(gzip.compress(f.read_bytes()))
    assert read_position_records(gz).samples.n_samples == 30


def test_unusable_position_files_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_position_records(tmp_path / "none.jsonl")
    with pytest.raises(DataError, match="empty file"):
        read_position_records(write_lines(tmp_path / "e.jsonl", [""]))
    with pytest.raises(DataError, match="3 of 4 lines cannot be used"):
        read_position_records(write_lines(tmp_path / "g.jsonl", ["a", "b", "c", rec(ALICE, T0)]))
    huge = tmp_path / "huge.jsonl"
    with huge.open("wb") as fh:
        fh.write(b'{"user": "' + b"x" * (17 * 1024 * 1024) + b'"}\n')
        for i in range(9):
            fh.write(rec(ALICE, T0 + i).encode() + b"\n")
    r = read_position_records(huge)
    assert r.report.rejected[0].reason == "line longer than 16 MiB" and r.samples.n_samples == 9
    with pytest.raises(DataError, match="unreadable|cannot read"):
        (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b\x08garbage")
        read_position_records(tmp_path / "bad.gz")


def test_the_recorder_appends_one_line_per_answer(tmp_path: Path) -> None:
    r = ResponseRecorder(tmp_path / "sub" / "rec.jsonl")
    raw = answer(HlPosition("BTC", 0.5, 70_000.0, 20, liquidation_px=None))
    r({"user": ALICE, "time": T0, "response": raw})
    r({"user": BOB.lower(), "time": T0 + 1, "response": answer()})
    r.close()
    lines = (tmp_path / "sub" / "rec.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["response"] == raw
    assert read_position_records(tmp_path / "sub" / "rec.jsonl").samples.n_samples == 2


# -- the observed preset ---------------------------------------------------------------------------------------------
def test_the_observed_preset_joins_the_users_presets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path))
    (tmp_path / "presets.json").write_text(json.dumps({"mine": {"label": "Mine", "tiers": {"3": 1}}}))
    path = save_user_preset("hyperliquid-observed", "Hyperliquid observed", {20.0: 3.0, 5.0: 1.0})
    presets = load_presets()
    assert "mine" in presets and presets["hyperliquid-observed"].tiers.weight.tolist() == [0.25, 0.75]
    assert json.loads(path.read_text())["hyperliquid-observed"]["tiers"] == {"5": 0.25, "20": 0.75}
    (tmp_path / "presets.json").write_text("{broken")
    with pytest.raises(ConfigError, match="not valid JSON"):
        save_user_preset("hyperliquid-observed", "x", {20.0: 1.0})
    assert (tmp_path / "presets.json").read_text() == "{broken"  # left alone

"""`liqdesk actual` reproduces crafted maps exactly (from a hand-written file and from the sampler's recording),
reports hostile input, and `liqdesk sample-positions` runs discovery and sampling into the store against the
fake Hyperliquid."""

from __future__ import annotations

import asyncio
import copy
import csv
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from liqdesk.app.cli import main as cli_main
from liqdesk.app.commands.sample_positions import sample_positions
from liqdesk.feeds.positions_store import PositionsStore
from liqdesk.feeds.presets import load_presets
from tests._positions_helpers import A1, A3, A6, CRAFTED, EXPECTED_ROWS, addr
from tests.fake_exchange.hyperliquid import FakeHyperliquid, HlTrade
from tests.test_position_sampler import FAST, FAST_LIVE

T0 = 1_750_000_000_000
SYMBOL = "BTC/USDC:USDC"


def crafted_file(path: Path, extra: list[str] = ()) -> Path:  # type: ignore[assignment]
    fake = FakeHyperliquid(accounts=copy.deepcopy(CRAFTED))
    lines = []
    for i, user in enumerate(CRAFTED):
        fake.now_ms = T0 + i
        lines.append(json.dumps({"user": user, "time": T0 + i, "response": fake.clearinghouse_state(user)}))
    path.write_text("\n".join([*lines, *extra]) + "\n")
    return path


def read_map(path: Path) -> dict[float, tuple[float, float]]:
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    assert rows and list(rows[0]) == ["price", "long_usd", "short_usd"]
    return {float(r["price"]): (float(r["long_usd"]), float(r["short_usd"])) for r in rows}


def test_actual_reproduces_the_crafted_map_exactly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = crafted_file(tmp_path / "positions.jsonl")
    out = tmp_path / "map.csv"
    rc = cli_main(
        ["actual", "--positions", str(f), "--prices", "60000:80000", "--bins", "200", "--out", str(out)]
    )
    text = capsys.readouterr()
    assert rc == 0, text.err
    assert read_map(out) == EXPECTED_ROWS  # exact, zero rows omitted
    assert "9 accounts" in text.out and "positions without a liquidation price: 1 " in text.out
    assert "coverage unknown" in text.out and "outside the range: 1" in text.out
    # JSON: the same rows, the counts, and the coverage when open interest is given
    rc = cli_main(["actual", "--positions", str(f), "--prices", "60000:80000", "--json", "--open-interest",
                   "1000000"])  # fmt: skip
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and {r["price"]: (r["long_usd"], r["short_usd"]) for r in d["rows"]} == EXPECTED_ROWS
    assert d["positions"] == 8 and d["without_liquidation_price"] == 1 and d["accounts"] == 9
    assert d["coverage"] == pytest.approx((d["long_value_usd"] + d["short_value_usd"]) / 2_000_000)


def test_actual_maps_the_state_at_an_instant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    later = json.dumps({"user": A1, "time": T0 + 100, "response": {"assetPositions": [], "time": T0 + 100}})
    f = crafted_file(tmp_path / "p.jsonl", [later])
    out = tmp_path / "m.csv"
    assert cli_main(["actual", "--positions", str(f), "--prices", "60000:80000", "--out", str(out)]) == 0
    now = read_map(out)
    assert now[66_550.0] == (1.0 * 66_580.0, 0.0)  # A1 closed its long: only A5's is left in that bin
    assert cli_main(["actual", "--positions", str(f), "--prices", "60000:80000", "--out", str(out),
                     "--at", str(T0 + 50)]) == 0  # fmt: skip
    assert read_map(out) == EXPECTED_ROWS
    capsys.readouterr()


def test_actual_reports_hostile_lines_and_refuses_garbage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = crafted_file(tmp_path / "p.jsonl", ['{"user": 1}', "[[[[[[", "x" * 1000])
    # 3 bad of 12: more than a fifth, refused with one line
    rc = cli_main(["actual", "--positions", str(f), "--prices", "60000:80000"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "3 of 12 lines cannot be used" in err
    many = [
        json.dumps({"user": addr(0x10 + i), "time": T0, "response": {"assetPositions": []}})
        for i in range(30)
    ]
    f = crafted_file(tmp_path / "q.jsonl", [*many, '{"user": 1}', json.dumps({"user": A6, "time": T0 + 5,
                     "response": {"assetPositions": [{"position": {"coin": "BTC", "szi": "1"}}]}})])  # fmt: skip
    out = tmp_path / "m.csv"
    rc = cli_main(["actual", "--positions", str(f), "--prices", "60000:80000", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0 and "skipped" in err and ":40:" in err and ":41:" in err and "leverage is not" in err
    assert read_map(out) == EXPECTED_ROWS  # the partial result: the good lines, reported
    for bad_args, message in [
        (["--prices", "80000:60000"], "need 0 < LO < HI"),
        (["--prices", "abc"], "expected LO:HI"),
        (["--bins", "0"], "--bins must be"),
        (["--out", str(tmp_path / "m.txt")], "use a .csv"),
        (["--symbol", "DOGE/USDC:USDC"], "no DOGE position"),
    ]:
        assert cli_main(["actual", "--positions", str(f), *bad_args]) == 2
        assert message in capsys.readouterr().err
    assert cli_main(["actual", "--positions", str(tmp_path / "none.jsonl")]) == 2
    assert "file not found" in capsys.readouterr().err


def test_actual_writes_the_observed_preset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    f = crafted_file(tmp_path / "p.jsonl")
    assert cli_main(["actual", "--positions", str(f), "--write-preset"]) == 0
    assert "preset hyperliquid-observed" in capsys.readouterr().err
    tiers = load_presets()["hyperliquid-observed"].tiers
    # by position value (|size| × mark, one mark for all): 20x 0.5, 10x 2.0, 5x 1.25, 25x 0.75, 40x 1.0, 3x 3.0,
    # 2x 0.1, 8x 0.2 of 8.8 coins in all
    expect = {2.0: 0.1, 3.0: 3.0, 5.0: 1.25, 8.0: 0.2, 10.0: 2.0, 20.0: 0.5, 25.0: 0.75, 40.0: 1.0}
    assert tiers.leverage.tolist() == sorted(expect)
    assert tiers.weight.tolist() == pytest.approx([expect[k] / 8.8 for k in sorted(expect)], abs=1e-6)


# -- sample-positions ------------------------------------------------------------------------------------------
def test_sample_positions_discovers_samples_records_and_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    record = tmp_path / "rec.jsonl"
    lines: list[str] = []

    async def main() -> None:
        async with FakeHyperliquid(accounts=copy.deepcopy(CRAFTED), ping_interval=0.05) as s:
            run = asyncio.ensure_future(sample_positions(
                SYMBOL, s.ccxt_options(), 4_000, timeframe="1h", settings=FAST, live_settings=FAST_LIVE,
                addresses=[a for a in CRAFTED if a != A3], record_path=record, clock=lambda: s.now_ms,
                db_path=tmp_path / "liqdesk.sqlite3", report_every_s=1.0, say=lines.append,
            ))  # fmt: skip
            await s.wait_subscribed("trades:BTC")
            await s.push_trades([HlTrade(s.now_ms, 70_000.0, 0.5, "B", A3, A1)])  # A3 comes from the stream
            status = await run
            assert status is not None and status.accounts_known == 9 and status.sampled_last_hour == 9
            assert status.coverage == pytest.approx(8.8 / (2 * s.open_interest_coins()), rel=1e-6)

    asyncio.run(main())
    assert any(line.startswith("imported 8 addresses (8 new)") for line in lines)
    assert any("accounts known" in line and "budget used" in line for line in lines)  # the status line
    assert lines[-1].startswith("stopped; accounts known 9")
    assert any("preset hyperliquid-observed" in line for line in lines)
    with PositionsStore(tmp_path / "liqdesk.sqlite3") as st:
        assert st.count("position_samples") >= 9 and st.count("position_markets") >= 1
        assert {r.address for r in st.accounts()} == set(CRAFTED)
    # the recording replays into the same map
    out = tmp_path / "m.csv"
    assert cli_main(["actual", "--positions", str(record), "--prices", "60000:80000", "--out", str(out)]) == 0
    assert read_map(out) == EXPECTED_ROWS
    capsys.readouterr()


class _Threaded:
    def __init__(self, fake: FakeHyperliquid) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = fake
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> FakeHyperliquid:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def test_sample_positions_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    addresses = tmp_path / "addresses.txt"
    addresses.write_text("\n".join([*CRAFTED, "0xnot-an-address"]) + "\n")
    for bad, message in [
        (["--exchange", "binanceusdm"], "only hyperliquid publishes"),
        (["--budget", "5000"], "--budget must lie between"),
        (["--duration", "soon"], "bad --duration"),
        (["--timeframe", "7m"], "--timeframe"),
        (["--addresses", str(tmp_path / "none.txt")], "file not found"),
    ]:
        assert cli_main(["sample-positions", "--symbol", SYMBOL, *bad]) == 2
        assert message in capsys.readouterr().err
    with _Threaded(FakeHyperliquid(accounts=copy.deepcopy(CRAFTED), wall_clock=True)) as s:
        opts = json.dumps(s.ccxt_options())
        assert cli_main(["sample-positions", "--symbol", "NOPE/USDC:USDC", "--ccxt-options", opts]) == 2
        assert "hyperliquid has no market 'NOPE/USDC:USDC'" in capsys.readouterr().err
        rc = cli_main(["sample-positions", "--symbol", SYMBOL, "--duration", "3s", "--timeframe", "1h",
                       "--addresses", str(addresses), "--ccxt-options", json.dumps(s.ccxt_options()),
                       "--account-keys", "address"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "line 10: not an address" in err and "imported 9 addresses (9 new)" in err
    assert "stopped; accounts known 9, sampled in the last hour 9" in err
    with PositionsStore(tmp_path / "data" / "liqdesk.sqlite3") as st:
        assert st.count("position_samples") == 9
        assert set(st.samples("BTC").sample_account.tolist()) == set(CRAFTED)  # stored under the addresses


# -- calibrate: estimate vs actual -------------------------------------------------------------------------------
def test_calibrate_scores_the_estimate_against_sampled_positions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from liqdesk.core.calibration_config import CalibrationConfig
    from liqdesk.core.density_snapshots import density_snapshots
    from liqdesk.core.engine import LiquidationEngine
    from liqdesk.feeds.presets import params_for
    from liqdesk.feeds.sample import load_sample
    from liqdesk.feeds.timeparse import parse_time
    from tests.fake_exchange.hyperliquid import HlPosition

    sample = load_sample("btcusdt-1m-2025-05")
    engine = LiquidationEngine.build(sample.candles, sample.open_interest, params_for("coinglass"))
    instants = [parse_time(t) for t in ("2025-05-26T00:00Z", "2025-05-26T06:00Z", "2025-05-26T12:00Z")]
    snaps = density_snapshots(engine, np.array(instants, np.int64), CalibrationConfig())
    # at each instant, accounts whose liquidation prices sit at the centre of the estimate's densest cell
    lines = []
    for s, t in enumerate(instants):
        dens = snaps.long[s] + snaps.short[s]
        top = int(np.argmax(dens))
        centre = float(snaps.centers[s, top])
        side = 1.0 if centre < snaps.spot[s] else -1.0
        for k in range(4):
            user = addr(0x40 + 4 * s + k)
            fake = FakeHyperliquid(accounts={user: [HlPosition("BTC", side * (k + 1), centre, 20,
                                                               liquidation_px=centre)]})  # fmt: skip
            fake.now_ms = t - 60_000
            lines.append(
                json.dumps({"user": user, "time": t - 60_000, "response": fake.clearinghouse_state(user)})
            )
    f = tmp_path / "p.jsonl"
    f.write_text("\n".join(lines) + "\n")
    args = [
        "calibrate",
        "--sample",
        "btcusdt-1m-2025-05",
        "--horizon",
        "4h",
        "--boot",
        "50",
        "--positions",
        str(f),
    ]
    assert cli_main([*args, "--compare", "coinglass,all", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["estimate_vs_actual"]
    assert set(d) == {"coinglass", "all"}
    c = d["coinglass"]
    assert c["n_snapshots"] == 3 and [r["time_ms"] for r in c["snapshots"]] == instants
    assert c["top_share"]["0.1"]["value"] == pytest.approx(1.0)  # all of it in the estimate's densest cells
    assert d["all"]["n_snapshots"] == 3 and d["all"]["w1_pct"]["value"] != c["w1_pct"]["value"]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert (
        "Estimate vs actual (sampled Hyperliquid positions)" in out and "positions are Hyperliquid's" in out
    )
    assert "12 answers of 12 accounts" in out

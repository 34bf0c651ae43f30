"""`liqdesk record` and `liqdesk liquidations` end to end against the fake Binance (run in its own thread)."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from liqdesk.app.cli import main
from tests._live_helpers import ServerThread, force_order_event, force_orders


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    yield tmp_path


def test_record_then_print_liquidations(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [r for r in force_orders() if r["symbol"] == "BTC"][:10]
    with ServerThread() as st:
        s = st.server
        # the endpoint comes from the config file, a command-line option is merged on top
        (env / "config").mkdir()
        (env / "config" / "config.json").write_text(
            json.dumps({"exchanges": {"binanceusdm": s.ccxt_options()}})
        )

        def push() -> None:
            deadline = time.monotonic() + 5
            while s.subscribers("btcusdt@forceOrder") == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            for r in rows:
                st.call(s.push_liquidation(force_order_event(r)))
            st.call(s.advance(2))

        pusher = threading.Thread(target=push)
        pusher.start()
        rc = main(["record", "--exchange", "binanceusdm", "--symbol", "BTC/USDT:USDT", "--timeframe", "1h",
                   "--duration", "2s", "--ccxt-options", '{"options": {"liqdeskTest": true}}'])  # fmt: skip
        pusher.join()
    assert rc == 0
    err = capsys.readouterr().err
    assert "liquidation 2025-01-27T" in err and "stopped;" in err

    assert main(["liquidations", "--exchange", "binanceusdm", "--symbol", "BTC/USDT:USDT", "--csv"]) == 0
    out = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(out) == len(rows)
    assert sorted(int(r["time_ms"]) for r in out) == sorted(int(r["trade_time_ms"]) for r in rows)
    assert all(r["side"] == ("long" if x["side"] == "SELL" else "short")
               for r, x in zip(sorted(out, key=lambda r: int(r["time_ms"])),
                               sorted(rows, key=lambda r: int(r["trade_time_ms"])), strict=True))  # fmt: skip

    since = out[5]["time"]
    assert (
        main(["liquidations", "--exchange", "binanceusdm", "--symbol", "BTC/USDT:USDT", "--since", since])
        == 0
    )
    table = capsys.readouterr().out
    assert "liquidations: longs $" in table and table.count("\n") == 1 + 5 + 1


def test_user_errors_are_one_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["record", "--exchange", "kraken", "--symbol", "BTC/USDT:USDT"]) == 2
    assert "unsupported exchange 'kraken'" in capsys.readouterr().err
    assert main(["record", "--exchange", "binanceusdm", "--symbol", "X", "--duration", "soon"]) == 2
    assert "bad --duration 'soon'" in capsys.readouterr().err
    assert main(["record", "--exchange", "binanceusdm", "--symbol", "X", "--ccxt-options", "{nope"]) == 2
    assert "--ccxt-options is not valid JSON" in capsys.readouterr().err
    assert (
        main(["liquidations", "--exchange", "binanceusdm", "--symbol", "BTC/USDT:USDT", "--since", "x"]) == 2
    )
    assert "bad --since 'x'" in capsys.readouterr().err
    assert main(["liquidations", "--exchange", "binanceusdm", "--symbol", "BTC/USDT:USDT"]) == 0
    assert "no liquidations recorded" in capsys.readouterr().err

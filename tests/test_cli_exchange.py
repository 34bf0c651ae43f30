"""`liqdesk export` / `levels` on exchange data: the real ccxt client against the loopback fake
Binance, through the local cache (a second run fetches nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from liqdesk.app.cli import main
from tests.test_live_cli import ServerThread


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


def test_export_and_levels_from_the_exchange_through_the_cache(env: Path, capsys) -> None:
    with ServerThread() as st:
        opts = json.dumps(st.server.ccxt_options())
        common = ["--exchange", "binanceusdm", "--symbol", "BTC/USDT:USDT", "--timeframe", "1h",
                  "--ccxt-options", opts]  # fmt: skip
        out = env / "h.npz"
        rc = main(["export", *common, "--end", "2025-06-01T00:00Z", "--range", "3d", "--bins", "100",
                   "--out", str(out)])  # fmt: skip
        err = capsys.readouterr().err
        assert rc == 0, err
        z = np.load(out)
        assert z["long"].shape == (72, 100)
        assert z["time_ms"][-1] == 1748736000000 - 3_600_000  # last hour before --end
        assert z["long"].sum() > 0
        meta = json.loads(str(z["params"]))
        assert meta["exchange"] == "binanceusdm"
        requests_after_first = (
            st.server.request_count("/fapi/v1/klines") if hasattr(st.server, "request_count") else None
        )

        rc = main(["levels", *common, "--at", "2025-05-31T23:00Z", "--json"])
        assert rc == 0
        r = json.loads(capsys.readouterr().out)
        assert r["symbol"] == "BTC/USDT:USDT" and r["clusters_below"]
        if requests_after_first is not None:
            assert st.server.request_count("/fapi/v1/klines") == requests_after_first  # served from the cache

"""The window on a shared PostgreSQL store: it reads and writes there, says so in the status bar, and Settings →
Data saves the store's URL without its password."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6 import QtWidgets

from liqdesk.app import desktop
from liqdesk.app.cli import build_parser
from liqdesk.app.live_source import LiveConfig
from liqdesk.feeds.store import open_store
from tests._live_helpers import FAST, SYMBOL, ServerThread, force_order_event, force_orders
from tests._postgres import PgCluster
from tests.ui.test_live_app import drawn, make, run_qasync, until


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("LIQDESK_STORE", raising=False)
    return tmp_path


def test_the_window_reads_and_writes_the_shared_store_and_shows_it(
    qapp: QtWidgets.QApplication, env: Path, pg_url: str
) -> None:
    args = build_parser().parse_args(["--store", pg_url, "--timeframe", "1h"])
    assert desktop.config_from_args(args).cache_path == pg_url
    with ServerThread() as st:
        s = st.server
        config = LiveConfig(timeframe="1h", ccxt_options=s.ccxt_options(), cache_path=pg_url,
                            feed=replace(FAST, candle_stale_s=5.0, liquidation_stale_s=5.0))  # fmt: skip
        c, w = make(config, lambda: s.now_ms)
        assert c.store_text.startswith("store: postgresql liqdesk@")
        row = next(r for r in force_orders() if r["symbol"] == "BTC")

        async def scenario() -> None:
            c.start()
            await until(lambda: c.mode == "live", what="live")
            await drawn(w)
            assert w.status.source_label.text().startswith("LIVE · Binance")
            assert w.status.source_label.text().endswith(c.store_text)  # the status bar names the store
            await st.call_async(s.wait_subscribed("btcusdt@forceOrder"))
            await st.call_async(s.push_liquidation(force_order_event(row, trade_time=s.now_ms - 1_000)))
            with open_store(pg_url, read_only=True) as reader:  # another desktop sees it at once
                await until(lambda: reader.count("liquidations") == 1, what="the liquidation in the store")
            await c.close()

        assert run_qasync(scenario()) == []
        w.close()
    with open_store(pg_url, read_only=True) as store:  # what the window backfilled and received is there
        assert store.count("liquidations") == 1
        stored = store.get_candles("binanceusdm", SYMBOL, "1h")
        assert stored.open_time.tolist() == w.candles.open_time.tolist()  # every closed bar the window drew


def test_settings_saves_the_store_url_without_its_password(qapp: QtWidgets.QApplication, env: Path) -> None:
    from liqdesk.ui.data import SampleSource
    from liqdesk.ui.session import wait_until_drawn
    from liqdesk.ui.window import MainWindow
    from liqdesk.ui.workspace import Workspace

    ws = Workspace(lambda spec, settings: (MainWindow(SampleSource(), settings), None))
    ws.show()
    assert wait_until_drawn(ws.current, 30.0)
    d = ws.open_settings()
    d.store_url.setText("postgresql://desk:hunter2@db-host/liqdesk")
    assert d.set_store()
    assert "password was not saved" in d.message.text() and "hunter2" not in d.message.text()
    saved = json.loads((env / "config" / "config.json").read_text())
    assert saved["store"] == "postgresql://desk@db-host/liqdesk" and "hunter2" not in json.dumps(saved)
    assert d.store_url.text() == "postgresql://desk@db-host/liqdesk"
    d.store_url.setText("mysql://nope")
    assert not d.set_store() and "store not saved" in d.message.text()
    d.close()
    ws.close()


def test_the_window_waits_for_a_database_that_is_away_and_goes_live_when_it_is_back(
    qapp: QtWidgets.QApplication, env: Path, pg_url: str, pg_cluster: PgCluster
) -> None:
    with ServerThread() as st:
        s = st.server
        pg_cluster.pg_ctl("stop", "-m", "fast")
        try:
            config = LiveConfig(timeframe="1h", ccxt_options=s.ccxt_options(), cache_path=pg_url, retry_base_s=0.2,
                                retry_cap_s=0.5, feed=replace(FAST, candle_stale_s=5.0, liquidation_stale_s=5.0))  # fmt: skip
            c, w = make(config, lambda: s.now_ms)
        except BaseException:
            pg_cluster.pg_ctl("start")
            raise

        async def scenario() -> None:
            try:
                c.start()
                await until(lambda: c.mode == "offline", what="offline")
                assert "cannot be reached" in c.errors[-1] and w.status.notice.text().startswith("OFFLINE")
            finally:
                pg_cluster.pg_ctl("start")
            await until(lambda: c.mode == "live", timeout=30, what="live once the database is back")
            await c.close()

        assert run_qasync(scenario()) == []
        w.close()

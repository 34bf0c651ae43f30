"""The live window while the cache refuses writes (a real lock held by another process): the chart loads and keeps
drawing, says so, and the liquidations it received are stored once the lock is gone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from PySide6 import QtWidgets

from liqdesk.app.live_source import LiveConfig
from liqdesk.feeds import cache as cache_mod
from liqdesk.feeds.cache import Cache
from tests._live_helpers import ServerThread, force_order_event, force_orders
from tests.test_live_failures import Lock
from tests.ui.test_live_app import KLINES, SETTINGS, drawn, make, run_qasync, until


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setattr(cache_mod, "BUSY_TIMEOUT_S", 0.05)
    return tmp_path


def test_the_window_keeps_drawing_while_the_cache_is_locked(qapp: QtWidgets.QApplication, env: Path) -> None:
    db = env / "data" / "liqdesk.sqlite3"
    db.parent.mkdir()
    Cache(db).close()
    lock = Lock(db)
    try:
        with ServerThread() as st:
            s = st.server
            c, w = make(
                LiveConfig(timeframe="1h", ccxt_options=s.ccxt_options(), feed=SETTINGS), lambda: s.now_ms
            )

            async def scenario() -> None:
                c.start()
                await until(lambda: c.mode == "live", what="live")
                await drawn(w)
                served = s.served_klines(int(w.candles.open_time[0]), s.now_ms)
                assert w.candles.open_time.tolist() == [r[0] for r in served]  # fetched, drawn, not stored
                assert any("not stored in the cache" in n for n in w.market.notes)  # type: ignore[union-attr]

                await st.call_async(s.wait_subscribed(KLINES))
                live_i = s.closed_count()
                await st.call_async(s.push_kline(live_i, final=False, fraction=0.3))
                await until(
                    lambda: int(w.candles.open_time[-1]) == int(s.klines.open_time[live_i]), what="live bar"
                )
                row = next(r for r in force_orders() if r["symbol"] == "BTC")
                await st.call_async(s.wait_subscribed("btcusdt@forceOrder"))
                await st.call_async(s.push_liquidation(force_order_event(row, trade_time=s.now_ms - 1_000)))
                await until(lambda: len(w.market.liquidations) == 1, what="the marker")  # type: ignore[union-attr]
                await until(
                    lambda: w.status.notice.text().startswith("CACHE"), what="a notice about the cache"
                )
                assert "keeps drawing" in w.status.notice.text()
                assert c.feed is not None and len(c.feed.unstored_liquidations) == 1

                lock.release()
                await until(lambda: c.feed is not None and not c.feed.unstored_liquidations, timeout=15,
                            what="stored after the lock")  # fmt: skip
                with Cache(db, read_only=True) as ro:
                    assert ro.count("liquidations") == 1
                await asyncio.sleep(0)

            async def guarded() -> None:
                try:
                    await scenario()
                finally:
                    await c.close()

            errors = run_qasync(guarded())
            w.close()
    finally:
        lock.release()
    assert errors == []

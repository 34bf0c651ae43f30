"""`liqdesk record` for several markets into a PostgreSQL store, and the live feed riding out a database that goes
away (the tape kept in memory, stored when it is back). Fake exchanges in their own threads, real ccxt."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import threading
import time
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest

from liqdesk.app.cli import main
from liqdesk.feeds.live import LiveFeed, StatusEvent
from liqdesk.feeds.store import open_store
from tests._live_helpers import FAST, SYMBOL, ServerThread, force_order_event, force_orders
from tests._postgres import PgCluster
from tests.fake_exchange import FakeBinance
from tests.fake_exchange.bybit import FakeBybit
from tests.fake_exchange.venue_data import RecordedLiquidation


class VenueThread:
    """Any fake venue on its own loop in a thread (like a remote server)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> VenueThread:
        self.thread.start()
        self.call(self.server.start())
        return self

    def call(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(20)  # type: ignore[arg-type]

    def __exit__(self, *exc: object) -> None:
        self.call(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("LIQDESK_STORE", raising=False)
    yield tmp_path


def _wait(cond: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_record_many_markets_into_postgres(
    env: Path, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [r for r in force_orders() if r["symbol"] == "BTC"][:6]
    with (
        VenueThread(FakeBinance(ping_interval=0.2, coins=["ETH"])) as bt,
        VenueThread(FakeBybit(ping_interval=0.2, coins=["ETH"])) as yt,
    ):
        b, y = bt.server, yt.server
        options = json.dumps({"exchanges": {"binanceusdm": b.ccxt_options(), "bybit": y.ccxt_options()}})
        pushed: list[tuple[str, str, int]] = []

        def push() -> None:
            for topic, srv in (("btcusdt@forceOrder", b), ("ethusdt@forceOrder", b),
                               ("allLiquidation.BTCUSDT", y), ("allLiquidation.ETHUSDT", y),
                               ("btcusdt@kline_1h", b), ("kline.60.ETHUSDT", y)):  # fmt: skip
                _wait(lambda t=topic, s=srv: s.subscribers(t) > 0)
            t0 = b.now_ms - 10_000
            for i, r in enumerate(rows):
                t = t0 + i * 1000
                for coin in ("BTC", "ETH"):
                    bt.call(b.push_liquidation(force_order_event({**r, "symbol": coin}, trade_time=t)))
                    pushed.append(("binanceusdm", f"{coin}/USDT:USDT", t))
                # the same second on Bybit, same size and price: another venue's event, another row
                ev = RecordedLiquidation(t, r["side"] == "SELL", r["filled_accumulated_quantity"], r["average_price"],
                                         r["average_price"])  # fmt: skip
                yt.call(y.push_liquidations([ev, ev], "BTCUSDT"))  # and a duplicate in the same push
                pushed.append(("bybit", "BTC/USDT:USDT", t))
            bt.call(b.advance_all(2))
            yt.call(y.advance_all(2))

        pusher = threading.Thread(target=push)
        pusher.start()
        rc = main(["record", "--exchange", "binanceusdm,bybit", "--symbols", "BTC,ETH", "--timeframe", "1h",
                   "--duration", "3s", "--store", pg_url, "--ccxt-options", options])  # fmt: skip
        pusher.join()
        err = capsys.readouterr().err
        assert rc == 0, err
        assert "→ postgresql liqdesk@" in err and "4 markets" in err and "Traceback" not in err
        with open_store(pg_url, read_only=True) as s:
            tape = s.liquidation_rows()
            assert sorted((r[0], r[1], r[2]) for r in tape) == sorted(pushed)  # none lost, none twice
            for ex, srv, sym in (("binanceusdm", b, "BTCUSDT"), ("binanceusdm", b, "ETHUSDT"),
                                 ("bybit", y, "BTCUSDT"), ("bybit", y, "ETHUSDT")):  # fmt: skip
                coin = sym.removesuffix("USDT")
                stored = s.get_candles(ex, f"{coin}/USDT:USDT", "1h")
                assert len(stored) >= 2, (ex, sym)
                last_closed = srv.closed_count() - 1
                assert int(stored.open_time[-1]) == int((b.klines.open_time if srv is b else y.bars.open_time)[
                    last_closed])  # fmt: skip
                if srv is b:
                    served = {
                        r[0]: float(r[4]) for r in b.served_klines(int(stored.open_time[0]), b.now_ms, sym)
                    }
                    assert {int(t): c for t, c in zip(stored.open_time, stored.close, strict=True)} == served
    # every desktop reads the same tape
    assert (
        main(["liquidations", "--exchange", "bybit", "--symbol", "BTC/USDT:USDT", "--csv", "--store", pg_url])
        == 0
    )
    out = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(out) == len(rows)


def test_the_tape_waits_in_memory_while_postgres_is_away(pg_url: str, pg_cluster: PgCluster) -> None:
    rows = [r for r in force_orders() if r["symbol"] == "BTC"][:8]
    statuses: list[StatusEvent] = []

    async def scenario() -> None:
        with ServerThread() as st:
            s = st.server
            with open_store(pg_url) as store:
                feed = LiveFeed("binanceusdm", SYMBOL, "1h", ccxt_options=s.ccxt_options(), cache=store,
                                settings=FAST, clock=lambda: s.now_ms,
                                on_event=lambda e: statuses.append(e) if isinstance(e, StatusEvent) else None)  # fmt: skip
                await feed.start()
                try:
                    await st.call_async(s.wait_subscribed("btcusdt@forceOrder"))
                    for r in rows[:3]:
                        await st.call_async(s.push_liquidation(force_order_event(r)))
                    await _until(lambda: store.count("liquidations") == 3)
                    pg_cluster.pg_ctl("stop", "-m", "fast")
                    try:
                        for r in rows[3:]:
                            await st.call_async(s.push_liquidation(force_order_event(r)))
                        await _until(lambda: len(feed.unstored_liquidations) == 5)
                        assert any("kept in memory" in e.text for e in statuses)
                    finally:
                        pg_cluster.pg_ctl("start")
                    await _until(lambda: not feed.unstored_liquidations, timeout=30)
                    assert any("stored the 5 liquidation(s) kept in memory" in e.text for e in statuses)
                finally:
                    await feed.close()
                assert store.count("liquidations") == 8

    asyncio.run(scenario())


async def _until(cond: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if cond():
                return
        except Exception:  # the store may be away while we look
            pass
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)

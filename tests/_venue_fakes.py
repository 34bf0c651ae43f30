"""The four fake venues at once on one clock (not collected: no test_ prefix).

Binance, Bybit and OKX serve the same 2025 hourly bars; Hyperliquid serves a year of hourly bars that covers them.
``FourFakes`` lines them up: with ``wall_clock`` every venue's live bar is the real current hour (for the command
line, which reads the system clock); without it Hyperliquid's live bar is the others' (for tests that drive a
virtual clock). ``ThreadedFakes`` runs them on their own loop in a thread, like remote servers, for synchronous
command-line runs."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np

from tests.fake_exchange import FakeBinance
from tests.fake_exchange import data as fdata
from tests.fake_exchange.bybit import FakeBybit
from tests.fake_exchange.hyperliquid import FakeHyperliquid
from tests.fake_exchange.okx import FakeOkx

VENUES = ("binanceusdm", "bybit", "okx", "hyperliquid")
SYMBOLS = {"binanceusdm": "BTC/USDT:USDT", "bybit": "BTC/USDT:USDT", "okx": "BTC/USDT:USDT",
           "hyperliquid": "BTC/USDC:USDC"}  # fmt: skip
H = 3_600_000


def _binance(wall_clock: bool, ping_interval: float | None) -> FakeBinance:
    if not wall_clock:
        return FakeBinance(ping_interval=ping_interval)
    k = fdata.klines_1h()
    live = len(k.open_time) - 48
    real = time.time_ns() // 1_000_000
    shift = real - real % H - int(k.open_time[live])
    table = fdata.KlineTable(k.open_time + shift, k.rows, k.interval_ms)
    return FakeBinance(
        klines=table, oi_shift_ms=fdata.open_interest_shift_ms() + shift, ping_interval=ping_interval
    )


class FourFakes:
    """The four fake venues, started and stopped together; ``ccxt_options`` keyed by exchange id."""

    def __init__(self, *, wall_clock: bool = False, ping_interval: float | None = None) -> None:
        self.binance = _binance(wall_clock, ping_interval)
        self.bybit = FakeBybit(wall_clock=wall_clock, ping_interval=ping_interval)
        self.okx = FakeOkx(wall_clock=wall_clock, ping_interval=ping_interval)
        if wall_clock:
            self.hyperliquid = FakeHyperliquid(wall_clock=True, ping_interval=ping_interval)
        else:
            hl = FakeHyperliquid()  # its bars, to find the others' live bar among them
            live = int(
                np.searchsorted(
                    hl.bars.open_time, self.binance.klines.open_time[len(self.binance.klines.open_time) - 48]
                )
            )
            self.hyperliquid = FakeHyperliquid(live_index=live, ping_interval=ping_interval)
        assert self.hyperliquid.now_ms == self.binance.now_ms == self.bybit.now_ms == self.okx.now_ms

    @property
    def servers(self) -> dict[str, Any]:
        return {
            "binanceusdm": self.binance,
            "bybit": self.bybit,
            "okx": self.okx,
            "hyperliquid": self.hyperliquid,
        }

    @property
    def now_ms(self) -> int:
        return int(self.binance.now_ms)

    def ccxt_options(self) -> dict[str, dict[str, Any]]:
        return {name: s.ccxt_options() for name, s in self.servers.items()}

    async def start(self) -> FourFakes:
        for s in self.servers.values():
            await s.start()
        return self

    async def close(self) -> None:
        for s in self.servers.values():
            await s.close()

    async def __aenter__(self) -> FourFakes:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def advance(self, bars: int = 1, *, revisions: int = 1) -> None:
        for _ in range(bars):
            for s in self.servers.values():
                await s.advance(1, revisions=revisions)


class ThreadedFakes:
    """FourFakes on their own event loop in a thread."""

    def __init__(self, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.kwargs = kwargs
        self.fakes: FourFakes | None = None

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(20)

    def __enter__(self) -> FourFakes:
        self.thread.start()

        async def make() -> FourFakes:
            return await FourFakes(**self.kwargs).start()

        self.fakes = self.call(make())
        return self.fakes

    def __exit__(self, *exc: object) -> None:
        if self.fakes is not None:
            self.call(self.fakes.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

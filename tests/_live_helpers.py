"""Shared helpers for the live-data tests (not collected: no test_ prefix)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from liqdesk.feeds.history import RetryPolicy
from liqdesk.feeds.live import LiveSettings

try:
    from tests.fake_exchange import FakeBinance
    from tests.fake_exchange.data import force_order_event, force_orders
except ImportError:  # tests/ itself on sys.path
    from fake_exchange import FakeBinance  # type: ignore[no-redef]
    from fake_exchange.data import force_order_event, force_orders  # type: ignore[no-redef]

FAST_REST = RetryPolicy(attempts=4, base_s=0.01, cap_s=0.05, rate_limit_base_s=0.02)
FAST = LiveSettings(
    backoff_base_s=0.02, backoff_cap_s=0.1, rate_limit_base_s=0.05, candle_stale_s=0.4, candle_silent_s=60.0,
    liquidation_stale_s=0.4, oi_poll_s=0.2, history_bars=200, rest=FAST_REST, close_timeout_s=2.0,
)  # fmt: skip
SYMBOL = "BTC/USDT:USDT"


class ServerThread:
    """The fake Binance on its own loop in a thread, like a remote server (the caller's loop stays free)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = FakeBinance(ping_interval=0.2)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        self.call(self.server.start())
        return self

    def call(self, coro: Awaitable[Any]) -> Any:
        """Run a coroutine on the server's loop and wait for it (from a plain thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)  # type: ignore[arg-type]

    async def call_async(self, coro: Awaitable[Any]) -> Any:
        """Run a coroutine on the server's loop and await it (from another event loop)."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))  # type: ignore[arg-type]

    def __exit__(self, *exc: object) -> None:
        self.call(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


async def until(cond: Callable[[], bool], timeout: float = 8.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


__all__ = [
    "FAST",
    "FAST_REST",
    "SYMBOL",
    "FakeBinance",
    "ServerThread",
    "force_order_event",
    "force_orders",
    "until",
]

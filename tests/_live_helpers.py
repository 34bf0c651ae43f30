"""Shared helpers for the live-data tests (not collected: no test_ prefix)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

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


async def until(cond: Callable[[], bool], timeout: float = 8.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


__all__ = ["FAST", "FAST_REST", "SYMBOL", "FakeBinance", "force_order_event", "force_orders", "until"]

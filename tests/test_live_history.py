"""History backfill against the fake Binance (real ccxt client, real wire formats)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from liqdesk.errors import DataError
from liqdesk.feeds.cache import Cache
from liqdesk.feeds.history import load_history_async
from tests._live_helpers import FAST_REST, SYMBOL, FakeBinance

H = 3_600_000


def _load(server: FakeBinance, cache: Cache, start: int, end: int, **kw: object):  # type: ignore[no-untyped-def]
    return load_history_async(
        "binanceusdm", SYMBOL, "1h", start, end, ccxt_options=server.ccxt_options(), cache=cache,
        now_ms=server.now_ms, policy=FAST_REST, **kw,
    )  # fmt: skip


def test_backfill_over_paging_boundaries_equals_served_series(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance() as s:
            t = s.klines.open_time
            start, end = int(t[3]) + 123, s.now_ms + 10 * H  # unaligned start, end past "now"
            progress: list[tuple[int, int, str]] = []
            with Cache(tmp_path / "c.db") as db:
                h = await _load(s, db, start, end, progress=lambda *a: progress.append(a))
            served = s.served_klines(int(t[3]), end)
            assert len(served) == s.closed_count() - 3 > 1500  # more than one 1,500-bar page
            assert s.requests["/fapi/v1/klines"] == 2
            assert all(int(q["limit"]) <= 1500 for p, q in s.request_log if p == "/fapi/v1/klines")
            c = h.candles
            assert c.open_time.tolist() == [r[0] for r in served]  # no gap, no duplicate, no live bar
            for col, i in (("open", 1), ("high", 2), ("low", 3), ("close", 4), ("volume", 5), ("quote_volume", 7),
                           ("taker_buy_volume", 9)):  # fmt: skip
                np.testing.assert_array_equal(getattr(c, col), [float(r[i]) for r in served], err_msg=col)
            assert c.mark_high is not None and np.isfinite(c.mark_low).all()
            # open interest: the last 30 days the venue keeps, paged at <= 500
            oi = h.open_interest
            assert oi is not None
            want = s.served_oi(int(oi.time[0]), s.now_ms - s.now_ms % H)  # up to the current bar
            want = [(tt, u) for tt, u in want if tt % H == 0]
            assert list(zip(oi.time.tolist(), oi.usd.tolist(), strict=True)) == want
            assert all(
                int(q["limit"]) <= 500 for p, q in s.request_log if p == "/futures/data/openInterestHist"
            )
            assert progress[-1][0] == progress[-1][1] and "cache" in h.label

    asyncio.run(main())


def test_restart_uses_cache_without_refetching(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance() as s:
            start = int(s.klines.open_time[100])
            with Cache(tmp_path / "c.db") as db:
                first = await _load(s, db, start, s.now_ms, with_open_interest=False)
            before = sum(n for p, n in s.requests.items() if p.startswith("/fapi/v1/klines"))
            with Cache(tmp_path / "c.db") as db:  # "restart": a new cache object on the same file
                again = await _load(s, db, start, s.now_ms, with_open_interest=False)
            assert sum(n for p, n in s.requests.items() if p.startswith("/fapi/v1/klines")) == before
            assert again.fetched_bars == 0 and len(again.candles) == len(first.candles)
            np.testing.assert_array_equal(again.candles.close, first.candles.close)
            # three more bars close: only those are fetched, in one small request
            await s.advance(3)
            with Cache(tmp_path / "c.db") as db:
                third = await _load(s, db, start, s.now_ms, with_open_interest=False, with_mark=False)
            assert third.fetched_bars == 3 and len(third.candles) == len(first.candles) + 3
            path, q = [x for x in s.request_log if x[0] == "/fapi/v1/klines"][-1]
            assert int(q["limit"]) <= 4

    asyncio.run(main())


def test_rate_limit_backs_off_and_recovers(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance() as s:
            s.fail_next("/fapi/v1/klines", 429, count=2)
            s.fail_next("/fapi/v1/markPriceKlines", 418, count=1)
            msgs: list[str] = []
            with Cache(tmp_path / "c.db") as db:
                h = await _load(s, db, int(s.klines.open_time[-300]), s.now_ms,
                                progress=lambda d, t, m: msgs.append(m))  # fmt: skip
            assert len(h.candles) == len(s.served_klines(int(s.klines.open_time[-300]), s.now_ms))
            assert sum("rate limited" in m for m in msgs) == 3
            assert not h.notes

    asyncio.run(main())


def test_offline_returns_cache_with_warning(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance() as s:
            opts, now, start = s.ccxt_options(), s.now_ms, int(s.klines.open_time[-100])
            with Cache(tmp_path / "c.db") as db:
                first = await _load(s, db, start, now - 20 * H, with_open_interest=False)
            assert len(first.candles) == 33
        # the server is gone now
        with Cache(tmp_path / "c.db") as db:
            h = await load_history_async("binanceusdm", SYMBOL, "1h", start, now, ccxt_options=opts, cache=db,
                                         now_ms=now, policy=FAST_REST)  # fmt: skip
            assert h.offline and h.candles.open_time.tolist() == first.candles.open_time.tolist()
            assert "offline" in h.label
            with pytest.raises(DataError, match="cannot load history from binanceusdm"):
                await load_history_async("binanceusdm", SYMBOL, "1h", start, now, ccxt_options=opts, cache=db,
                                         now_ms=now, policy=FAST_REST, offline_ok=False)  # fmt: skip

    asyncio.run(main())


def test_unknown_symbol_is_a_data_error(tmp_path: Path) -> None:
    async def main() -> None:
        async with FakeBinance() as s:
            with Cache(tmp_path / "c.db") as db, pytest.raises(DataError, match="no market 'DOGE/USDT:USDT'"):
                await load_history_async("binanceusdm", "DOGE/USDT:USDT", "1h", s.now_ms - 10 * H, s.now_ms,
                                         ccxt_options=s.ccxt_options(), cache=db, now_ms=s.now_ms)  # fmt: skip

    asyncio.run(main())

"""Benchmark: message-to-callback latency and memory growth of LiveFeed under a steady message rate.

The fake Binance runs in its own thread (its own event loop, like a remote server) and pushes real forceOrder
events (the bundled capture, replayed with fresh times) plus kline revisions; LiveFeed runs the real ccxt client
in the main loop and writes everything to a temporary cache. Latency = perf_counter at the callback − at the
server's send. Not collected by pytest.

    .venv/bin/python tests/benchmarks/live.py [--seconds 60] [--rate 100]

Targets: p99 ≤ 50 ms, memory growth ≤ 20 MB over the run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from liqdesk.feeds.cache import Cache  # noqa: E402
from liqdesk.feeds.live import CandleUpdate, FeedEvent, LiquidationEvent, LiveFeed, LiveSettings  # noqa: E402
from tests.fake_exchange import FakeBinance  # noqa: E402
from tests.fake_exchange.data import force_order_event, force_orders  # noqa: E402

SYMBOL = "BTC/USDT:USDT"


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux: peak RSS instead
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=100.0, help="messages per second (liquidations + klines)")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds before the memory baseline")
    args = ap.parse_args()

    server_loop = asyncio.new_event_loop()
    thread = threading.Thread(target=server_loop.run_forever, daemon=True)
    thread.start()
    server = FakeBinance(ping_interval=5.0)
    asyncio.run_coroutine_threadsafe(server.start(), server_loop).result(10)
    sent: dict[int, float] = {}  # liquidation trade time → perf_counter at send
    latencies: list[float] = []
    counts = {"liq": 0, "candle": 0}
    tmp = tempfile.TemporaryDirectory()

    rows = [r for r in force_orders() if r["symbol"] == "BTC"] or force_orders()

    async def pusher(stop: asyncio.Event) -> None:
        await server.wait_subscribed("btcusdt@forceOrder", timeout=10)
        await server.wait_subscribed("btcusdt@kline_1h", timeout=10)
        period = 1.0 / args.rate
        t_next = time.perf_counter()
        n = 0
        base_t = 1_800_000_000_000
        live_i = server.closed_count()
        while not stop.is_set():
            if n % 10 == 9:  # one message in ten: a kline revision of the live bar
                await server.push_kline(live_i, final=False, fraction=min(0.99, 0.01 + (n % 10_000) / 10_000))
            else:
                row = rows[n % len(rows)]
                t = base_t + n
                ev = force_order_event(row, trade_time=t)
                sent[t] = time.perf_counter()
                await server.push_liquidation(ev)
            n += 1
            t_next += period
            delay = t_next - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)

    def on_event(e: FeedEvent) -> None:
        now = time.perf_counter()
        if isinstance(e, LiquidationEvent):
            t0 = sent.pop(e.record.time, None)
            if t0 is not None:
                latencies.append(now - t0)
                counts["liq"] += 1
        elif isinstance(e, CandleUpdate):
            counts["candle"] += 1

    async def run() -> tuple[float, float, float]:
        settings = LiveSettings(candle_stale_s=10, liquidation_stale_s=30, oi_poll_s=30, history_bars=200)
        with Cache(Path(tmp.name) / "bench.sqlite3") as db:
            feed = LiveFeed("binanceusdm", SYMBOL, "1h", ccxt_options=server.ccxt_options(), cache=db,
                            settings=settings, clock=lambda: server.now_ms, on_event=on_event,
                            streams=("candles", "liquidations"))  # fmt: skip
            await feed.start()
            stop = asyncio.Event()
            push = asyncio.run_coroutine_threadsafe(pusher(stop), server_loop)
            await asyncio.sleep(args.warmup)
            latencies.clear()
            counts.update(liq=0, candle=0)
            base = rss_mb()
            peak = base
            t_end = time.perf_counter() + args.seconds
            while time.perf_counter() < t_end:
                await asyncio.sleep(0.5)
                peak = max(peak, rss_mb())
            server_loop.call_soon_threadsafe(stop.set)
            push.result(10)
            await asyncio.sleep(0.3)
            end = rss_mb()
            print(f"malformed {feed.total('malformed')}, duplicates {feed.total('duplicates')}, "
                  f"stored {db.count('liquidations')} liquidations")  # fmt: skip
            await feed.close()
        return base, peak, end

    try:
        base, peak, end = asyncio.run(run())
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), server_loop).result(10)
        server_loop.call_soon_threadsafe(server_loop.stop)
        thread.join(5)
        tmp.cleanup()

    if not latencies:
        print("no liquidation reached the callback")
        return 1
    lat = sorted(x * 1000 for x in latencies)
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    growth = end - base
    print(f"rate {args.rate:g} msg/s for {args.seconds:g} s: {counts['liq']} liquidations measured, "
          f"{counts['candle']} candle updates")  # fmt: skip
    print(f"latency message→callback: median {p50:.2f} ms, p99 {p99:.2f} ms, max {lat[-1]:.2f} ms "
          f"(target p99 ≤ 50 ms: {'ok' if p99 <= 50 else 'MISSED'})")  # fmt: skip
    print(f"memory: RSS {base:.1f} MB → {end:.1f} MB (peak {peak:.1f}), growth {growth:+.1f} MB "
          f"(target ≤ 20 MB: {'ok' if growth <= 20 else 'MISSED'})")  # fmt: skip
    return 0 if p99 <= 50 and growth <= 20 else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: message-to-screen latency and memory growth of the live window under a steady message rate.

The fake Binance runs in its own thread (its own event loop, like a remote server) and pushes real forceOrder
events (the bundled capture, replayed with fresh times inside the live bar) and, one message in ten, a kline
revision of the live bar. The window runs on qasync's loop with LiveController and the real ccxt client, offscreen.

Latency is measured from the server's send (perf_counter, same process) to:
* liquidation: its marker is on the chart's ScatterPlotItem (``LiveController.on_liquidations_shown``, called
  after the points were added or the window redrew its markers);
* kline: the worker's patched frame for that revision (or a newer one: the controller keeps only the newest
  revision per loop turn) has been set on the heatmap ImageItem (``ChartWidget.apply_frame`` returned), after
  ``apply_bar`` moved the candle.
Memory: RSS after the warm-up vs. at the end. Not collected by pytest.

    .venv/bin/python tests/benchmarks/live_screen.py [--seconds 60] [--rate 100]

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
from collections import deque
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import qasync  # noqa: E402
from PySide6 import QtWidgets  # noqa: E402

from liqdesk.app.live_source import LiveConfig, LiveController  # noqa: E402
from liqdesk.feeds.live import LiveSettings  # noqa: E402
from liqdesk.ui.theme import configure_pyqtgraph  # noqa: E402
from liqdesk.ui.window import MainWindow, ViewSettings  # noqa: E402
from tests.benchmarks.live import rss_mb  # noqa: E402
from tests.fake_exchange import FakeBinance  # noqa: E402
from tests.fake_exchange.data import force_order_event, force_orders  # noqa: E402

KLINES = "btcusdt@kline_1h"
LIQS = "btcusdt@forceOrder"


def percentile(sorted_ms: list[float], q: float) -> float:
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=100.0, help="messages per second (liquidations + klines)")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds before the memory baseline")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory()
    os.environ["LIQDESK_DATA_DIR"] = str(Path(tmp.name) / "data")
    os.environ["LIQDESK_CONFIG_DIR"] = str(Path(tmp.name) / "config")
    configure_pyqtgraph()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["liqdesk-bench"])

    server_loop = asyncio.new_event_loop()
    thread = threading.Thread(target=server_loop.run_forever, daemon=True)
    thread.start()
    server = FakeBinance(ping_interval=5.0)
    asyncio.run_coroutine_threadsafe(server.start(), server_loop).result(10)

    rows = [r for r in force_orders() if r["symbol"] == "BTC"] or force_orders()
    liq_sent: dict[int, float] = {}  # trade time → perf_counter at send
    kline_sent: dict[str, tuple[int, float]] = {}  # volume as sent → (seq, perf_counter at send)
    kline_times: dict[int, float] = {}  # seq → send time, until shown
    liq_lat: list[float] = []
    kline_lat: list[float] = []
    applied: deque[int] = deque()  # kline seq per apply_bar, in worker order
    counts = {"liq": 0, "kline": 0, "frames": 0, "applies": 0}

    settings = LiveSettings(candle_stale_s=10, liquidation_stale_s=30, oi_poll_s=30, history_bars=200)
    config = LiveConfig(timeframe="1h", ccxt_options=server.ccxt_options(), feed=settings)
    controller = LiveController(config, clock=lambda: server.now_ms)
    window = MainWindow(controller.source, ViewSettings(**controller.initial_settings()))  # type: ignore[arg-type]
    window.resize(1600, 900)
    controller.attach(window)
    window.show()

    # -- instrumentation: the controller's marker callback; window hooks wrapped on the instance --------------
    apply_bar, apply_frame = window.apply_bar, window.chart.apply_frame

    def liquidations_shown(records):  # type: ignore[no-untyped-def]
        now = time.perf_counter()
        for r in records:
            t0 = liq_sent.pop(r.time, None)
            if t0 is not None:
                liq_lat.append(now - t0)

    def apply_bar_timed(row, closed, oi=None):  # type: ignore[no-untyped-def]
        apply_bar(row, closed, oi)
        seq = kline_sent.get(f"{float(row.volume[0]):.3f}", (-1, 0.0))[0]
        applied.append(seq)
        counts["applies"] += 1

    def apply_frame_timed(frame):  # type: ignore[no-untyped-def]
        apply_frame(frame)
        counts["frames"] += 1
        if not applied:
            return  # a frame for a view change, not a live bar
        seq = applied.popleft()
        now = time.perf_counter()
        for s in [s for s in kline_times if s <= seq]:
            kline_lat.append(now - kline_times.pop(s))

    controller.on_liquidations_shown = liquidations_shown
    window.apply_bar = apply_bar_timed  # type: ignore[method-assign]
    window.chart.apply_frame = apply_frame_timed  # type: ignore[method-assign]

    async def pusher(stop: asyncio.Event) -> None:
        period = 1.0 / args.rate
        t_next = time.perf_counter()
        n = 0
        live_i = server.closed_count()
        bar_open = int(server.klines.open_time[live_i])
        while not stop.is_set():
            if n % 10 == 9:  # one message in ten: a kline revision of the live bar (volume grows: not stale)
                fraction = min(0.99, 0.01 + (n // 10) / 100_000)
                row = server._kline_row(live_i, final=False, fraction=fraction)
                seq = n
                t0 = time.perf_counter()
                kline_sent[row[5]] = (seq, t0)
                kline_times[seq] = t0
                await server.push_kline(live_i, final=False, fraction=fraction)
                counts["kline"] += 1
            else:
                t = bar_open + 1_000 + n  # unique, inside the live bar: every marker is drawn
                ev = force_order_event(rows[n % len(rows)], trade_time=t)
                liq_sent[t] = time.perf_counter()
                await server.push_liquidation(ev)
                counts["liq"] += 1
            n += 1
            t_next += period
            delay = t_next - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)

    async def run() -> tuple[float, float, float]:
        controller.start()
        while controller.mode != "live" or window.frame is None or not window.worker.wait_idle(0):
            await asyncio.sleep(0.05)
        fut = asyncio.run_coroutine_threadsafe(server.wait_subscribed(KLINES, 10), server_loop)
        await asyncio.wrap_future(fut)
        fut = asyncio.run_coroutine_threadsafe(server.wait_subscribed(LIQS, 10), server_loop)
        await asyncio.wrap_future(fut)
        stop = asyncio.Event()
        push = asyncio.run_coroutine_threadsafe(pusher(stop), server_loop)
        await asyncio.sleep(args.warmup)
        liq_lat.clear()
        kline_lat.clear()
        counts.update(liq=0, kline=0, frames=0, applies=0)
        base = peak = rss_mb()
        t_end = time.perf_counter() + args.seconds
        while time.perf_counter() < t_end:
            await asyncio.sleep(0.5)
            peak = max(peak, rss_mb())
        server_loop.call_soon_threadsafe(stop.set)
        await asyncio.wrap_future(push)
        await asyncio.sleep(0.5)
        end = rss_mb()
        n_liqs = len(window.market.liquidations) if window.market is not None else 0
        print(f"window: {len(window.candles)} bars, {n_liqs} liquidation markers; feed malformed "
              f"{controller.feed.total('malformed') if controller.feed else '?'}")  # fmt: skip
        await controller.close()
        return base, peak, end

    try:
        with asyncio.Runner(loop_factory=qasync.QEventLoop) as runner:
            base, peak, end = runner.run(run())
    finally:
        window.close()
        asyncio.run_coroutine_threadsafe(server.close(), server_loop).result(10)
        server_loop.call_soon_threadsafe(server_loop.stop)
        thread.join(5)
        tmp.cleanup()
        del app

    if not liq_lat or not kline_lat:
        print("nothing reached the screen")
        return 1
    ok = True
    print(f"rate {args.rate:g} msg/s for {args.seconds:g} s: sent {counts['liq']} liquidations, "
          f"{counts['kline']} kline revisions; {counts['applies']} apply_bar calls, {counts['frames']} frames set")  # fmt: skip
    for name, lat in (("liquidation → marker", liq_lat), ("kline → candle + heatmap column", kline_lat)):
        ms = sorted(x * 1000 for x in lat)
        p99 = percentile(ms, 0.99)
        ok &= p99 <= 50
        print(f"{name}: n={len(ms)} median {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms, max {ms[-1]:.2f} ms "
              f"(target p99 ≤ 50 ms: {'ok' if p99 <= 50 else 'MISSED'})")  # fmt: skip
    growth = end - base
    ok &= growth <= 20
    print(f"memory: RSS {base:.1f} MB → {end:.1f} MB (peak {peak:.1f}), growth {growth:+.1f} MB "
          f"(target ≤ 20 MB: {'ok' if growth <= 20 else 'MISSED'})")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

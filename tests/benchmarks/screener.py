"""Screener budget benchmark (not part of the test run): python tests/benchmarks/screener.py [--seconds 20]

20 markets × 3 days of 5-minute bars kept live in a core.market_watch.MarketWatch with its default
budget (rows at most once a second, trimmed rebuilds at most hourly), in the same process as a chart
engine drawing frames:

- the markets: NOT 20 real markets. All 20 are the bundled 2025-10-10 sample (Binance BTCUSDT 5 m,
  volume model), market k with prices × 1.37^k (k = 0..19, from BTC's price down to a few dollars and up)
  and volume ÷ the same factor, so every market holds comparable notional at its own price scale;
  history 2025-10-07 → 10-10 00:00 (864 bars), then the live bars after it;
- live: every --every-ms each market gets one update (three revisions of a bar, then its close, like
  a kline stream), rows are asked for once a second (what a screener dock would do);
- printed: build time for all 20, the cost of one update (engine patch) and of one row, the share of
  one core the screener takes, the engines' memory and the process's memory growth;
- the chart beside it: frames of the default sample (57,000 5-minute bars, a 3-day view at 1,600 × 900)
  computed back to back in the main thread, alone and then while the screener runs in another thread:
  the chart's frame targets (≤ 16 ms median, ≤ 33 ms p95 for a pan/zoom frame) must hold.

Medians; the machine is shared: compare figures within one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from liqdesk.core.engine import LiquidationEngine  # noqa: E402
from liqdesk.core.grid import PriceBins  # noqa: E402
from liqdesk.core.market_watch import MarketWatch, WatchBudget  # noqa: E402
from liqdesk.core.series import Candles  # noqa: E402
from liqdesk.feeds.presets import params_for  # noqa: E402
from liqdesk.feeds.sample import load_sample  # noqa: E402
from liqdesk.feeds.timeparse import parse_time  # noqa: E402
from liqdesk.ui import frames  # noqa: E402
from tests.benchmarks.live import rss_mb  # noqa: E402

MARKETS = 20
SCALE = 1.37


def scaled(c: Candles, k: int) -> Candles:
    f = SCALE ** (k - 10)
    return Candles(c.open_time, c.open * f, c.high * f, c.low * f, c.close * f, c.volume / f, c.interval_ms)


def revision(row: Candles, share: float) -> Candles:
    """The bar so far: its open, the path to its close so far, a share of the volume."""
    o, cl = float(row.open[0]), float(row.close[0])
    close = o + (cl - o) * share
    hi = max(o, close) + (float(row.high[0]) - max(o, cl)) * share
    lo = min(o, close) - (min(o, cl) - float(row.low[0])) * share
    a = np.array
    return Candles(row.open_time, a([o]), a([hi]), a([lo]), a([close]), row.volume * share, row.interval_ms)


def chart_frames(engine: LiquidationEngine, count: int) -> list[float]:
    n = engine.n_bars
    view = 3 * 288
    c0 = n - view
    lows, highs = engine.bar_column("low")[c0:], engine.bar_column("high")[c0:]
    lo, hi = float(lows.min()), float(highs.max())
    out = []
    for i in range(count):
        shift = (i % 20) * 10  # a pan: each frame a little further back
        req = frames.FrameRequest(
            generation=i, start_bar=c0 - shift - 260, end_bar=n - shift, columns=1_200,
            bins=PriceBins(lo * 0.97, hi * 1.03, 350), visible_bars=(c0 - shift, n - shift),
            visible_prices=(lo, hi), map_bar=n - shift - 1,
        )  # fmt: skip
        t0 = time.perf_counter()
        frames.compute_frame(engine, req)
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="live seconds")
    ap.add_argument("--every-ms", type=float, default=250.0, help="one update per market this often")
    ap.add_argument("--frames", type=int, default=60, help="chart frames timed, alone and with the screener")
    args = ap.parse_args()
    params = params_for("coinglass")

    rss0 = rss_mb()
    chart = LiquidationEngine.build(load_sample().candles, params=params)
    chart_frames(chart, 10)  # warm: first frames page in the scratch arrays
    alone = chart_frames(chart, args.frames)
    rss_chart = rss_mb()

    day = load_sample("btcusdt-5m-2025-10-10").candles
    start = int(np.searchsorted(day.open_time, parse_time("2025-10-07T00:00Z")))
    live_from = int(np.searchsorted(day.open_time, parse_time("2025-10-10T00:00Z")))
    markets = [scaled(day, k) for k in range(MARKETS)]
    watch = MarketWatch(params, WatchBudget())
    t0 = time.perf_counter()
    for k, c in enumerate(markets):
        watch.load(f"m{k}", "sample", f"M{k}", c.take(slice(start, live_from)), None, now_ms=0)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    watch.rows(now_ms=0)
    first_rows = time.perf_counter() - t0
    rss_loaded = rss_mb()
    print(
        f"screener: {MARKETS} markets × {live_from - start} bars (3 days of 5 m; the 2025-10-10 sample scaled, see the "
        f"docstring): built in {build * 1000:.0f} ms ({build / MARKETS * 1000:.1f} ms a market), first rows "
        f"{first_rows * 1000:.0f} ms; engines {watch.engine_bytes() / 2**20:.1f} MB"
    )

    update_s: list[float] = []
    rows_s: list[float] = []
    stop = threading.Event()
    busy = [0.0]

    def live() -> None:
        j, step, now = live_from, 0, 0
        tick = args.every_ms / 1000.0
        due = time.perf_counter()
        last_rows = due
        while not stop.is_set() and j < len(day):
            share = (step + 1) / 4
            for k, c in enumerate(markets):
                row = c.take(slice(j, j + 1))
                t = time.perf_counter()
                watch.on_bar(f"m{k}", row if step == 3 else revision(row, share), None, now_ms=now)
                update_s.append(time.perf_counter() - t)
                busy[0] += update_s[-1]
            step = (step + 1) % 4
            j += step == 0
            now += int(args.every_ms)
            if time.perf_counter() - last_rows >= 1.0:
                t = time.perf_counter()
                watch.rows(now_ms=now)
                rows_s.append(time.perf_counter() - t)
                busy[0] += rows_s[-1]
                last_rows = time.perf_counter()
            due += tick
            time.sleep(max(0.0, due - time.perf_counter()))

    worker = threading.Thread(target=live, daemon=True)
    begin = time.perf_counter()
    worker.start()
    beside: list[float] = []
    peak = rss_mb()
    while time.perf_counter() - begin < args.seconds:
        beside += chart_frames(chart, 5)
        peak = max(peak, rss_mb())
        time.sleep(0.05)
    stop.set()
    worker.join()
    elapsed = time.perf_counter() - begin
    rows_each = statistics.median(rows_s) / MARKETS if rows_s else float("nan")
    print(
        f"live {elapsed:.0f} s, an update per market every {args.every_ms:g} ms ({len(update_s):,} updates): update "
        f"median {statistics.median(update_s) * 1000:.2f} ms, p99 {np.percentile(update_s, 99) * 1000:.2f} ms; rows once "
        f"a second: {statistics.median(rows_s) * 1000:.0f} ms for {MARKETS} ({rows_each * 1000:.1f} ms a row); screener "
        f"busy {busy[0] / elapsed:.0%} of one core; {watch.rebuilds} trimmed rebuilds"
    )
    print(
        f"memory: chart engine and frames +{rss_chart - rss0:.0f} MB, screener loaded +{rss_loaded - rss_chart:.0f} MB "
        f"(engines {watch.engine_bytes() / 2**20:.1f} MB), peak while live {peak:.0f} MB RSS (+{peak - rss_loaded:.0f} MB)"
    )

    def fmt(x: list[float]) -> str:
        return f"median {statistics.median(x) * 1000:.1f} ms, p95 {np.percentile(x, 95) * 1000:.1f} ms"

    print(f"chart frames (3-day view, 1,200 × 350): alone {fmt(alone)}; with the screener live {fmt(beside)} "
          f"(targets ≤ 16 / ≤ 33 ms)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Chart rendering benchmark (not part of the test run): python tests/benchmarks/render.py

Prints:
- reading the default bundled sample (the readers users' files go through), fresh process, median;
- the window: from process start to the first painted frame with heatmap and liquidation map, `liqdesk
  --offline` on the bundled sample in a fresh process (the window the user opens, tabs and state file
  included), cold (an empty numba cache: the first run after installation, kernels compiled) and warm
  (the kernels cached), median of --repeat runs each;
- time to first painted chart from process start: `liqdesk snapshot` on the bundled sample, as a
  fresh process (import, load, engine build, worker frame, paint, PNG), median of --repeat runs;
- frame time while panning and zooming with 100,000 candles loaded and a 2,000 × 1,000 heatmap
  visible, one column and one price bin per screen pixel (synchronous repaint of the chart after each view change; the worker recomputes frames
  in the background meanwhile), median and p95;
- peak memory (max RSS) of the process that ran the pan/zoom test (it holds no frame itself).
Targets on this machine: default sample read ≤ 0.5 s, window to complete chart ≤ 2 s warm and ≤ 4 s cold, snapshot ≤ 2 s, frame ≤ 16 ms
median / ≤ 33 ms p95, memory ≤ 400 MB.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def first_chart_seconds(repeat: int) -> list[float]:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "liqdesk", "snapshot", "--out", f"{tmp}/s.png", "--size", "1600x900"],
                check=True, capture_output=True, cwd=ROOT, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
            )  # fmt: skip
            times.append(time.perf_counter() - t0)
    return times


def sample_load_seconds(repeat: int) -> list[float]:
    """Reading the default sample's files (the readers users' files go through too), in a fresh process each."""
    code = ("import time; from liqdesk.feeds import sample; t = time.perf_counter(); sample.load_sample(); "
            "print(time.perf_counter() - t)")  # fmt: skip
    runs = [subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
            for _ in range(repeat)]  # fmt: skip
    return [float(r.stdout.split()[-1]) for r in runs]


# The window's first frame, timed inside a fresh `liqdesk --offline` process from the moment the parent started
# it (argv[1], epoch seconds): the app itself, with a coroutine beside it that waits for the first frame.
FIRST_WINDOW = """
import asyncio, sys, time
t0 = float(sys.argv[1])
from liqdesk.app import desktop
from liqdesk.app.cli import build_parser

async def first_frame(w, c):
    while w.frame is None or w.chart.heatmap.image is None or w.chart._frame is None:
        await asyncio.sleep(0.002)
    w.window().repaint()  # painted: heatmap, candles, map and magnets on screen
    print(f"first-frame {time.time() - t0:.3f}", flush=True)
    w.window().close()

desktop.run(build_parser().parse_args(["--offline"]), after_start=first_frame)
"""


def first_window_seconds(repeat: int, cold: bool) -> list[float]:
    """Process start → first painted frame of the window; cold: each run with an empty numba cache."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        warm_cache = f"{tmp}/numba-warm"
        for i in range(repeat + (0 if cold else 1)):
            cache = f"{tmp}/numba-cold-{i}" if cold else warm_cache
            env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
                   "NUMBA_CACHE_DIR": cache, "LIQDESK_CONFIG_DIR": f"{tmp}/config-{i}",
                   "LIQDESK_DATA_DIR": f"{tmp}/data-{i}"}  # fmt: skip
            t0 = time.time()
            out = subprocess.run([sys.executable, "-c", FIRST_WINDOW, repr(t0)], check=True, capture_output=True,
                                 text=True, cwd=ROOT, env=env)  # fmt: skip
            line = next(x for x in out.stdout.splitlines() if x.startswith("first-frame"))
            if cold or i:  # warm: the first run only fills the cache
                times.append(float(line.split()[1]))
    return times


def synthetic_market(n: int):  # type: ignore[no-untyped-def]
    from liqdesk.core.series import Candles, Liquidations, OpenInterest
    from liqdesk.feeds.market_data import MarketData

    rng = np.random.default_rng(7)
    step = 300_000
    t = 1_600_000_000_000 - 1_600_000_000_000 % step + np.arange(n) * step
    close = 30_000 * np.exp(np.cumsum(rng.normal(0, 0.0015, n)))
    open_ = np.r_[close[0], close[:-1]]
    wick = close * np.abs(rng.normal(0, 0.001, n))
    high, low = np.maximum(open_, close) + wick, np.minimum(open_, close) - wick
    vol = rng.gamma(2.0, 50.0, n)
    candles = Candles(t, open_, high, low, close, vol, step, quote_volume=vol * close,
                      taker_buy_volume=vol * rng.uniform(0.4, 0.6, n))  # fmt: skip
    oi = OpenInterest(t + step, 5e9 * np.exp(np.cumsum(rng.normal(0, 0.002, n))))
    return MarketData(candles, oi, Liquidations.empty(), "SYN/USDT:USDT", "synthetic", "synthetic 100k bars")


def pan_zoom_frames(n_bars: int, steps: int) -> dict[str, float]:
    from PySide6 import QtWidgets

    from liqdesk.ui.data import FixedSource
    from liqdesk.ui.session import wait_until_drawn
    from liqdesk.ui.theme import configure_pyqtgraph
    from liqdesk.ui.window import MainWindow, ViewSettings

    configure_pyqtgraph()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["bench"])
    market = synthetic_market(n_bars)
    t0 = time.perf_counter()
    # bin_px=1: one price bin per screen pixel, so ~1,000 bins are on screen
    window = MainWindow(FixedSource(market), ViewSettings(range_name="90d", bin_px=1.0))
    window.resize(2500, 1300)  # a 1440p-class screen: the heatmap pane shows ~2,000 × 1,000 cells
    window.show()
    assert wait_until_drawn(window, 120), "no first frame"
    build_s = time.perf_counter() - t0
    # Only the request is kept: holding a frame here would keep its arrays (~35 MB) alive all run.
    first = window.frame.request
    vis = first.visible_bars
    cols_visible = first.columns * (vis[1] - vis[0]) / (first.end_bar - first.start_bar)
    bins_visible = (
        first.bins.n * np.subtract(*window.chart.visible_prices()[::-1]) / (first.bins.hi - first.bins.lo)
    )
    chart = window.chart
    times = []
    paint_ms, with_frame, compute_ms = [], [], []  # breakdown only: not part of the measured step
    for i in range(steps):
        t = time.perf_counter()
        shown = window.frame.request.generation
        k = i % 40
        if k < 20:
            chart.pan(0.02 if (i // 40) % 2 == 0 else -0.02)
        elif k < 30:
            chart.zoom(0.97)
        else:
            chart.zoom(1 / 0.97)
        t_paint = time.perf_counter()
        chart.repaint()  # synchronous paint of what the user sees
        paint_ms.append((time.perf_counter() - t_paint) * 1000.0)
        app.processEvents()
        times.append((time.perf_counter() - t) * 1000.0)
        with_frame.append(window.frame.request.generation != shown)
        if window.frame.request.generation != shown:
            compute_ms.append(window.frame.compute_ms)
    frames_received = window.frame.request.generation - first.generation
    window.close()
    step_ms = np.array(times)
    new_frame = np.array(with_frame)
    times.sort()
    return {
        "paint_median": statistics.median(paint_ms),
        "steps_with_frame": int(new_frame.sum()),
        "median_with_frame": float(np.median(step_ms[new_frame])) if new_frame.any() else float("nan"),
        "median_without_frame": float(np.median(step_ms[~new_frame])) if (~new_frame).any() else float("nan"),
        "compute_ms": statistics.median(compute_ms) if compute_ms else float("nan"),
        "median": statistics.median(times),
        "p95": times[int(0.95 * (len(times) - 1))],
        "max": times[-1],
        "build_s": build_s,
        "cols": cols_visible,
        "bins": bins_visible,
        "frames": frames_received,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bars", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument(
        "--only-first", action="store_true", help="only the window's and the snapshot's first chart"
    )
    args = ap.parse_args()
    sample = sample_load_seconds(args.repeat)
    print(f"default sample read from its bundled files (btcusdt-5m, fresh process): median "
          f"{statistics.median(sample):.2f} s (runs: {', '.join(f'{t:.2f}' for t in sample)})  target ≤ 0.5 s")  # fmt: skip
    for cold in (True, False):
        w = first_window_seconds(args.repeat, cold)
        print(f"window (liqdesk --offline) to first frame with heatmap and map, {'cold' if cold else 'warm'} "
              f"({'empty numba cache: kernels compiled' if cold else 'kernels cached'}): median "
              f"{statistics.median(w):.2f} s (runs: {', '.join(f'{t:.2f}' for t in w)})  "
              f"target ≤ {4 if cold else 2} s")  # fmt: skip
    first = first_chart_seconds(args.repeat)
    print(f"first painted chart (liqdesk snapshot, sample, fresh process): median {statistics.median(first):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in first)})  target ≤ 2 s")  # fmt: skip
    if args.only_first:
        return 0
    r = pan_zoom_frames(args.bars, args.steps)
    print(f"{args.bars:,} candles: window open to first frame {r['build_s']:.2f} s; heatmap on screen "
          f"≈ {r['cols']:.0f} columns × {r['bins']:.0f} bins")  # fmt: skip
    print(f"pan/zoom frame time over {args.steps} steps: median {r['median']:.1f} ms, p95 {r['p95']:.1f} ms, "
          f"max {r['max']:.1f} ms  (targets ≤ 16 / ≤ 33 ms); worker frames applied meanwhile: {r['frames']}")  # fmt: skip
    print(f"  breakdown: repaint alone median {r['paint_median']:.1f} ms; steps that applied a new worker frame "
          f"({r['steps_with_frame']}) median {r['median_with_frame']:.1f} ms, other steps {r['median_without_frame']:.1f} ms; "
          f"worker frame compute median {r['compute_ms']:.0f} ms")  # fmt: skip
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"peak memory (max RSS of this process): {peak_mb:.0f} MB  target ≤ 400 MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

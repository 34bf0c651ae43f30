"""Engine benchmark (not part of the test run): python tests/benchmarks/engine.py [--repeat 7]

Full build of 30 days of real 1-minute BTCUSDT bars with the 8-tier "all" preset rendered to a
2,000 × 1,000 grid, a one-bar live update, peak memory, and a straightforward per-bar loop as the
reference. Targets (2-core machine): build ≤ 100 ms, update ≤ 1 ms, memory ≤ 300 MB, ≥ 10× the loop.
Times are medians of --repeat runs (the machine is shared: compare ratios within one run).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from liqdesk.core.engine import LiquidationEngine  # noqa: E402
from liqdesk.core.grid import render_grid  # noqa: E402
from liqdesk.core.leverage import liquidation_factors  # noqa: E402
from liqdesk.core.liqmap import auto_bins  # noqa: E402
from liqdesk.core.openings import compute_openings, open_interest_at_close  # noqa: E402
from liqdesk.core.series import OpenInterest  # noqa: E402
from liqdesk.feeds.presets import params_for  # noqa: E402
from liqdesk.feeds.sample import load_sample  # noqa: E402

BARS = 30 * 24 * 60


def reference_loop(candles, oi_close, params, bins, columns):  # type: ignore[no-untyped-def]
    """The obvious design: walk bars, keep alive levels in arrays, paint each column as it ends."""
    n = len(candles)
    long_f, short_f = liquidation_factors(params.tiers.leverage, params.brackets, params.position_usd)
    ep = candles.entry_price()
    d_oi = np.diff(np.concatenate([[np.nan], oi_close]))
    ops = compute_openings(candles, d_oi, params, starts_series=True)
    w = params.tiers.weight
    price = np.zeros(0)
    usd = np.zeros(0)
    side = np.zeros(0, np.int8)
    col_end = (np.arange(1, columns + 1) * n) // columns - 1
    grid = np.zeros((2, columns, bins.n), np.float32)
    col = 0
    for j in range(n):
        swept = np.where(side > 0, price >= candles.low[j], price <= candles.high[j])
        swept_usd = usd[swept].sum()
        price, usd, side = price[~swept], usd[~swept], side[~swept]
        alive = usd.sum()
        if np.isfinite(d_oi[j]) and d_oi[j] < 0 and alive > 0:
            closed = max(0.0, -d_oi[j] - swept_usd)
            usd = usd * max(params.min_survival, 1 - closed / alive)
        if ops.decay_rate[j] > 0:
            usd = usd * np.exp(-ops.decay_rate[j])
        new_p = np.concatenate([ep[j] * long_f, ep[j] * short_f])
        new_u = np.concatenate([ops.long_usd[j] * w, ops.short_usd[j] * w])
        keep = new_u > 0
        price = np.concatenate([price, new_p[keep]])
        usd = np.concatenate([usd, new_u[keep]])
        side = np.concatenate([side, np.repeat(np.array([1, -1], np.int8), len(w))[keep]])
        while col < columns and col_end[col] == j:
            b = bins.index(price)
            ok = b >= 0
            for s_i, s in enumerate((1, -1)):
                m = ok & (side == s)
                grid[s_i, col] = np.bincount(b[m], weights=usd[m], minlength=bins.n)
            col += 1
    return grid


def median_ms(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    times, out = [], None
    for _ in range(repeat):
        out = None  # the app holds one result at a time
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument(
        "--case", choices=["volume", "oi"], help="run one case (each case runs in its own process"
    )
    args = ap.parse_args()
    if args.case is None:  # max RSS only grows: give each case a fresh process so its peak is its own
        import subprocess

        for case in ("volume", "oi"):
            subprocess.run(
                [sys.executable, __file__, "--repeat", str(args.repeat), "--case", case], check=True
            )
        return
    sample = load_sample("btcusdt-1m-2025-01")
    candles = sample.candles.take(slice(0, BARS))
    params = params_for("all")
    bins = auto_bins(candles.low, candles.high, 1000)
    # The 1-minute sample has no open interest (volume model); also run with a synthetic OI walk so
    # the pro-rata closes are exercised (labelled as synthetic).
    rng = np.random.default_rng(0)
    synth = OpenInterest(candles.close_time, 8e9 + np.cumsum(rng.normal(0, 4e6, len(candles))))
    if args.case == "volume":
        print(f"data: {sample.label}, first {len(candles):,} bars, preset 'all' ({len(params.tiers)} tiers)")  # noqa: E501

    LiquidationEngine.build(candles.take(slice(0, 500)), None, params)  # JIT warm-up (cached on disk)
    render_grid(LiquidationEngine.build(candles.take(slice(0, 500)), None, params), bins, columns=10)
    results = []
    cases = {
        "volume": ("volume model (real bars)", None),
        "oi": ("OI model (real bars, synthetic OI)", synth),
    }
    for name, oi in (cases[args.case],):

        def full(oi=oi):  # type: ignore[no-untyped-def]
            eng = LiquidationEngine.build(candles, oi, params)
            return eng, render_grid(eng, bins, columns=2000)

        build_ms, (eng, grid) = median_ms(full, args.repeat)
        eng_only, _ = median_ms(lambda oi=oi: LiquidationEngine.build(candles, oi, params), args.repeat)
        grid_only, _ = median_ms(lambda eng=eng: render_grid(eng, bins, columns=2000), args.repeat)
        # one-bar live update: revise the last bar (rollback + re-add), then append a new one
        last = candles.take(slice(len(candles) - 1, len(candles)))
        upd = []
        for _ in range(200):
            t = time.perf_counter()
            eng.revise_last_bar(last, None)
            upd.append((time.perf_counter() - t) * 1000)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        results.append((name, eng, grid, build_ms, eng_only, grid_only, upd, peak_mb))
        del eng, grid
    for name, eng, grid, build_ms, eng_only, grid_only, upd, peak_mb in results:
        oi = None if name.startswith("volume") else synth
        oc = open_interest_at_close(candles, oi, params.oi_max_gap_bars)
        ref_ms, ref_grid = median_ms(lambda oc=oc: reference_loop(candles, oc, params, bins, 2000), 1)
        err = float(np.abs(ref_grid[0] - grid.long).max() / max(grid.long.max(), 1))
        print(f"\n[{name}] levels {eng.n_levels:,}, grid {grid.long.shape[0]}×{grid.long.shape[1]}")
        print(
            f"  full build + 2000×1000 grid  median {build_ms:7.1f} ms  (engine {eng_only:.1f} ms, grid {grid_only:.1f} ms)"
        )
        print(
            f"  one-bar update (revise last) median {statistics.median(upd):7.3f} ms  p95 {np.percentile(upd, 95):.3f} ms"
        )
        print(f"  reference per-bar loop              {ref_ms:7.1f} ms  → speed-up {ref_ms / build_ms:5.1f}×")
        print(f"  max |grid − reference| / max cell   {err:.2e}")
        print(f"  peak memory (max RSS of the process after this build) {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()

"""Engine benchmark (not part of the test run): python tests/benchmarks/engine.py [--repeat 7]

Full build of 30 days of real 1-minute BTCUSDT bars with the 8-tier "all" preset rendered to a
2,000 × 1,000 grid, a one-bar live update, peak memory, and the plain per-bar loop a competent
engineer would write first as the reference (a dense price grid: each bar sweeps the bins its
low / high crossed, closes the rest pro rata, decays, deposits its openings by tier).
Targets (2-core machine): build ≤ 100 ms, update ≤ 1 ms, memory ≤ 300 MB, ≥ 10× the loop.
Times are medians of --repeat runs (the loop: of 3); the machine is shared: compare ratios within one run.

The loop keeps notional per price bin, so it knows a level's bin, not its price: it treats every
level as sitting at its bin's centre, and the one bin that holds a bar's low (high) is swept
whole or not at all, where the engine sweeps exactly the levels at or beyond the low (high).
That is the only difference between the two grids; the pro-rata closes then spread it a little
(a different swept notional gives a different close factor). It shrinks with the bin width: the
benchmark also runs the loop on 8× finer bins, summed back, and checks both differences.
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
from liqdesk.core.grid import PriceBins, render_grid  # noqa: E402
from liqdesk.core.leverage import liquidation_factors  # noqa: E402
from liqdesk.core.liqmap import auto_bins  # noqa: E402
from liqdesk.core.openings import compute_openings, open_interest_at_close  # noqa: E402
from liqdesk.core.params import ModelParams  # noqa: E402
from liqdesk.core.series import Candles, OpenInterest  # noqa: E402
from liqdesk.feeds.presets import params_for  # noqa: E402
from liqdesk.feeds.sample import load_sample  # noqa: E402

BARS = 30 * 24 * 60
FINE = 8  # the convergence check's bin refinement
# Σ|reference − engine| / Σ engine over all cells, at the chart's bins and at FINE× finer ones
TOLERANCE, FINE_TOLERANCE = 5e-3, 5e-4


def reference_loop(
    candles: Candles, oi_close: np.ndarray, params: ModelParams, bins: PriceBins, columns: int
) -> np.ndarray:
    """(2, columns, P) float32: long and short notional per bin at the end of each column."""
    n, p = len(candles), bins.n
    long_f, short_f = liquidation_factors(params.tiers.leverage, params.brackets, params.position_usd)
    d_oi = np.diff(np.concatenate([[np.nan], oi_close]))
    ops = compute_openings(candles, d_oi, params, starts_series=True)
    w = params.tiers.weight
    entry, low, high = candles.entry_price(), candles.sweep_low(), candles.sweep_high()
    # cells 1..p are the bins; cell 0 holds what lies below the range, cell p + 1 what lies above
    longs, shorts = np.zeros(p + 2), np.zeros(p + 2)
    centres = np.r_[-np.inf, bins.centers, np.inf]

    def cell(price: np.ndarray) -> np.ndarray:
        return np.clip(np.floor((price - bins.lo) / bins.width).astype(np.int64), -1, p) + 1

    col_end = (np.arange(1, columns + 1) * n) // columns - 1
    out = np.zeros((2, columns, p), np.float32)
    col = 0
    for j in range(n):
        # sweep: longs at or above the bar's low, shorts at or below its high
        lo_cut = int(np.searchsorted(centres, low[j], "left"))
        hi_cut = int(np.searchsorted(centres, high[j], "right"))
        swept = longs[lo_cut:].sum() + shorts[:hi_cut].sum()
        longs[lo_cut:] = 0.0
        shorts[:hi_cut] = 0.0
        # pro-rata close of the open-interest drop the sweeps do not explain (NaN: no open interest)
        alive = longs.sum() + shorts.sum()
        if d_oi[j] < 0 and alive > 0 and -d_oi[j] - swept > 0:
            keep = max(params.min_survival, 1.0 - (-d_oi[j] - swept) / alive)
            longs *= keep
            shorts *= keep
        if ops.decay_rate[j] > 0:
            longs *= np.exp(-ops.decay_rate[j])
            shorts *= np.exp(-ops.decay_rate[j])
        # the bar's openings, by tier, at their liquidation prices
        np.add.at(longs, cell(entry[j] * long_f), ops.long_usd[j] * w)
        np.add.at(shorts, cell(entry[j] * short_f), ops.short_usd[j] * w)
        while col < columns and col_end[col] == j:
            out[0, col] = longs[1 : p + 1]
            out[1, col] = shorts[1 : p + 1]
            col += 1
    return out


def difference(ref: np.ndarray, long_: np.ndarray, short: np.ndarray) -> tuple[float, float]:
    """(Σ|ref − engine| / Σ engine, max |ref − engine| / max engine cell), both sides together."""
    eng = np.stack([long_, short]).astype(np.float64)
    d = np.abs(ref.astype(np.float64) - eng)
    return float(d.sum() / eng.sum()), float(d.max() / eng.max())


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
    failed = False
    for name, eng, grid, build_ms, eng_only, grid_only, upd, peak_mb in results:
        oi = None if name.startswith("volume") else synth
        oc = open_interest_at_close(candles, oi, params.oi_max_gap_bars)
        ref_ms, ref_grid = median_ms(lambda oc=oc: reference_loop(candles, oc, params, bins, 2000), 3)
        share, peak = difference(ref_grid, grid.long, grid.short)
        fine = PriceBins(bins.lo, bins.hi, bins.n * FINE)
        fine_grid = reference_loop(candles, oc, params, fine, 2000).reshape(2, 2000, bins.n, FINE).sum(axis=3)
        fine_share, fine_peak = difference(fine_grid, grid.long, grid.short)
        ok = share <= TOLERANCE and fine_share <= FINE_TOLERANCE
        failed |= not ok
        print(f"\n[{name}] levels {eng.n_levels:,}, grid {grid.long.shape[0]}×{grid.long.shape[1]}")
        print(
            f"  full build + 2000×1000 grid  median {build_ms:7.1f} ms  (engine {eng_only:.1f} ms, grid {grid_only:.1f} ms)"
        )
        print(
            f"  one-bar update (revise last) median {statistics.median(upd):7.3f} ms  p95 {np.percentile(upd, 95):.3f} ms"
        )
        print(f"  plain per-bar loop (dense grid)     {ref_ms:7.1f} ms  → speed-up {ref_ms / build_ms:5.1f}×")
        print(
            f"  loop vs engine: Σ|Δ| / Σ {share:.2%} (max cell {peak:.1%} of the largest); "
            f"with {FINE}× finer loop bins {fine_share:.3%} (max cell {fine_peak:.1%}) "
            f"[{'ok' if ok else 'FAIL'}: ≤ {TOLERANCE:.1%} / ≤ {FINE_TOLERANCE:.2%}]"
        )
        print(f"  peak memory (max RSS of the process after this build) {peak_mb:.0f} MB")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()

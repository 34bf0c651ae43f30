"""GPU check of the engine's device path. Run through gpu_check.sh on a machine with an NVIDIA GPU;
prints everything it measures and exits 1 if an equality check fails.

1. environment: Python, NumPy, numba, CuPy, the device;
2. equality: the engine on CuPy against the engine on NumPy (levels, sweep bars, log factor, the
   heatmap view and the liquidation map) on the real bundled sample and on synthetic year-long
   5-minute data (volume model only, the last 30 days with open interest, a whole year with open
   interest); each CUDA kernel against its reference (sweep search → sweeps.sweep_bars, linear
   scan → the serial loop, lifecycle → lifecycle.run_lifecycle, painter → the numba painter);
   one-bar updates and the patched newest column;
3. timings, CPU engine (NumPy + numba) and GPU engine side by side: full build of 105,120 bars ×
   8 tiers plus a 2,000 × 2,000 uint8 view (+ liquidation map), and one-bar updates. GPU times:
   synchronised wall clock and CUDA events, medians of --repeat runs; the first call (NVRTC
   compile, memory pool growth) is reported separately.

    python tests/benchmarks/gpu_check.py [--repeat 15] [--cpu-repeat 3]
    python tests/benchmarks/gpu_check.py --emulate   # no GPU: CUDA kernels run on the CPU (tests/core/cuda_emulator), tiny sizes
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from liqdesk.core.backend import Backend, numpy_backend, select_backend  # noqa: E402
from liqdesk.core.cuda_kernels import CudaKernels  # noqa: E402
from liqdesk.core.engine import LiquidationEngine  # noqa: E402
from liqdesk.core.grid import PriceBins, column_bars  # noqa: E402
from liqdesk.core.heatmap import patch_newest_column, render_view  # noqa: E402
from liqdesk.core.kernels import CpuKernels  # noqa: E402
from liqdesk.core.liqmap import auto_bins, liquidation_map  # noqa: E402
from liqdesk.core.openings import open_interest_at_close  # noqa: E402
from liqdesk.core.params import ModelParams  # noqa: E402
from liqdesk.core.series import Candles, OpenInterest  # noqa: E402
from liqdesk.core.sweeps import sweep_bars  # noqa: E402
from liqdesk.feeds.presets import params_for  # noqa: E402
from liqdesk.feeds.sample import load_sample  # noqa: E402
from tests.core.helpers import random_market  # noqa: E402

RESULTS: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    RESULTS.append((name, bool(ok), detail))
    print(f"  [{'ok' if ok else 'FAIL'}] {name}{': ' + detail if detail else ''}", flush=True)


def image_diff(a: np.ndarray, b: np.ndarray) -> tuple[bool, str]:
    """Same empty cells; codes equal except rare ±1 where sums in another order cross a rounding edge."""
    if a.shape != b.shape:
        return False, f"shapes {a.shape} vs {b.shape}"
    zero = int(np.count_nonzero((a == 0) != (b == 0)))
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    n = int(np.count_nonzero(d))
    ok = zero == 0 and int(d.max(initial=0)) <= 1 and n <= max(2, a.size // 2000)
    return ok, f"{n} of {a.size:,} codes differ (max {int(d.max(initial=0))}), empty-cell mismatches {zero}"


def rel(a: Any, b: Any) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    same_nan = np.isnan(a) & np.isnan(b)
    d = np.where(same_nan, 0.0, np.abs(a - b))
    return float(d.max(initial=0.0) / max(float(np.nanmax(np.abs(b), initial=0.0)), 1e-300))


# ============================================================================ data


def year_market(n: int) -> dict[str, tuple[Candles, OpenInterest | None]]:
    cd, oi = random_market(n, 7)
    assert oi is not None
    last30 = min(8640, n // 4)
    return {
        "volume model (no OI)": (cd, None),
        f"OI for the last {last30:,} bars": (cd, OpenInterest(oi.time[-last30:], oi.usd[-last30:])),
        "OI for every bar": (cd, oi),
    }


# ============================================================================ equality


def compare_engines(
    name: str, gpu: Backend, cd: Candles, oi: OpenInterest | None, params: ModelParams, bins: PriceBins,
    columns: int,
) -> None:  # fmt: skip
    print(
        f"\n[{name}] {len(cd):,} bars, preset {params.preset} ({len(params.tiers)} tiers), {bins.n} × {columns}"
    )
    host = gpu.asnumpy
    ec = LiquidationEngine.build(cd, oi, params)
    eg = LiquidationEngine.build(cd, oi, params, backend=gpu)
    lc, lg = ec.levels(), {k: host(v) for k, v in eg.levels().items()}
    check("level count", ec.n_levels == eg.n_levels, f"{ec.n_levels:,} vs {eg.n_levels:,}")
    for k in ("created", "tier", "side", "sweep"):
        check(f"levels.{k} identical", np.array_equal(lc[k], lg[k]))
    check(
        "levels.price", rel(lg["price"], lc["price"]) <= 1e-15, f"max rel {rel(lg['price'], lc['price']):.1e}"
    )
    check(
        "levels.deposit",
        rel(lg["deposit"], lc["deposit"]) <= 1e-14,
        f"max rel {rel(lg['deposit'], lc['deposit']):.1e}",
    )
    f_c, f_g = ec.log_factor, host(eg.log_factor)
    step = float(np.abs(np.diff(f_c) - np.diff(f_g)).max(initial=0))
    info = eg.lifecycle_info
    check(
        "log factor (lifecycle)", step <= 1e-9,
        f"rounds {info.rounds}, max |Δ step| {step:.1e}, max |ΔL| {float(np.abs(f_c - f_g).max(initial=0)):.1e}, "
        f"fallback {info.fallback}",
    )  # fmt: skip
    vc = render_view(ec, bins, 0, len(cd), columns)
    vg = render_view(eg, bins, 0, len(cd), columns)
    ok, detail = image_diff(vg.image, vc.image)
    check("uint8 image GPU vs CPU", ok, detail)
    check("colour levels", np.allclose(vg.levels, vc.levels, rtol=1e-6), f"{vg.levels} vs {vc.levels}")
    check(
        "frame values",
        rel(host(vg.values), vc.values) <= 1e-5,
        f"max rel {rel(host(vg.values), vc.values):.1e}",
    )
    mc, mg = liquidation_map(ec, bins), liquidation_map(eg, bins)
    lm = max(rel(mg.long_by_tier, mc.long_by_tier), rel(mg.short_by_tier, mc.short_by_tier))
    check(
        "liquidation map at the last bar",
        lm <= 1e-9,
        f"max rel {lm:.1e}, totals {mg.total_long:.6g} / {mc.total_long:.6g}",
    )


def compare_kernels(
    gpu: Backend, cd: Candles, oi: OpenInterest | None, params: ModelParams, bins: PriceBins, columns: int
) -> None:
    print(f"\n[kernels vs their references] {len(cd):,} bars")
    cp, ck, cpu = gpu.xp, CudaKernels(gpu.xp), CpuKernels()
    host = gpu.asnumpy
    eng = LiquidationEngine.build(cd, oi, params)
    lv = eng.levels()
    sl, sh = cd.sweep_low(), cd.sweep_high()
    a = host(ck.sweep_bars(*(cp.asarray(x) for x in (sl, sh, lv["created"], lv["price"], lv["side"]))))
    b = sweep_bars(sl, sh, lv["created"], lv["price"], lv["side"])
    check(
        "sweep_search (binary lifting) vs sweeps.sweep_bars",
        np.array_equal(a, b),
        f"{int(np.count_nonzero(a != b))} differ",
    )
    rng = np.random.default_rng(1)
    g, h = rng.uniform(0.9, 1.0, len(cd)), rng.normal(0, 1, len(cd))
    ref, x = np.empty(len(cd)), 0.5
    for j in range(len(cd)):
        x = g[j] * x + h[j]
        ref[j] = x
    a = host(ck.linrec(cp.asarray(g), cp.asarray(h), cp.asarray([0.5])))
    check("linrec chunked scan vs the serial loop", rel(a, ref) <= 1e-12, f"max rel {rel(a, ref):.1e}")
    dt = np.bincount(lv["created"], weights=lv["deposit"], minlength=eng.n_bars)
    args = (lv["created"], lv["deposit"], lv["side"], lv["sweep"], eng._oi_delta.a, eng._decay.a, dt)
    want = cpu.lifecycle(*args, params.min_survival)
    got = ck.lifecycle(*(cp.asarray(v) for v in args), params.min_survival)
    step = float(np.abs(np.diff(host(got.log_factor)) - np.diff(want.log_factor)).max(initial=0))
    check(
        "lifecycle fixed point vs lifecycle.run_lifecycle",
        step <= 1e-9,
        f"rounds {got.rounds}, max |Δ step| {step:.1e}",
    )
    _, last = column_bars(0, len(cd), columns)
    lvd = {k: cp.asarray(v) for k, v in lv.items()}
    for tr in ("sqrt", "linear"):
        tg, _ = ck.paint(lvd, cp.asarray(eng.log_factor), cp.asarray(last), bins.lo, bins.width, bins.n, tr)
        tn, _ = cpu.paint(lv, eng.log_factor, last, bins.lo, bins.width, bins.n, tr)
        tg = host(tg)
        zero = int(np.count_nonzero((tg == 0) != (tn == 0)))
        check(f"paint ({tr}) vs the numba painter", rel(tg, tn) <= 1e-5 and zero <= tn.size // 100000,
              f"max rel {rel(tg, tn):.1e}, empty-cell mismatches {zero}")  # fmt: skip


def compare_updates(
    gpu: Backend, cd: Candles, oi: OpenInterest | None, params: ModelParams, bins: PriceBins, steps: int
) -> None:
    print(f"\n[one-bar updates] {steps} live bars, each appended then revised")
    n0 = len(cd) - steps
    oc = open_interest_at_close(cd, oi, params.oi_max_gap_bars)
    engines = [
        LiquidationEngine.build(cd.take(slice(0, n0)), params=params, oi_close=oc[:n0], backend=be)
        for be in (numpy_backend(), gpu)
    ]
    views: list[Any] = [render_view(e, bins, n0 - 500, n0, None) for e in engines]
    for j in range(n0, len(cd)):
        bar = cd.take(slice(j, j + 1))
        live = replace(bar, high=(bar.open + bar.high) / 2, low=(bar.open + bar.low) / 2, close=bar.open)
        for i, e in enumerate(engines):
            e.append_bar(live, oc[j] * 0.999)
            views[i] = patch_newest_column(e, views[i])
            e.revise_last_bar(bar, oc[j])
            views[i] = patch_newest_column(e, views[i])
    ok, detail = image_diff(views[1].image, views[0].image)
    check("patched image GPU vs CPU", ok, detail)
    cpu, dev = engines
    check(
        "sweep bars after updates", np.array_equal(cpu.levels()["sweep"], gpu.asnumpy(dev.levels()["sweep"]))
    )
    d = float(np.abs(np.diff(cpu.log_factor) - np.diff(gpu.asnumpy(dev.log_factor))).max())
    check("log factor after updates", d <= 1e-9, f"max |Δ step| {d:.1e}")
    lm = rel(liquidation_map(dev, bins).long_by_tier, liquidation_map(cpu, bins).long_by_tier)
    check("liquidation map after updates", lm <= 1e-9, f"max rel {lm:.1e}")


# ============================================================================ timing


def time_it(be: Backend, fn: Callable[[], Any], repeat: int, warmup: int = 1) -> dict[str, float]:
    """Wall clock with the device synchronised before and after; CUDA events on the GPU."""
    out: dict[str, float] = {}
    be.synchronize()
    t = time.perf_counter()
    fn()
    be.synchronize()
    out["first"] = (time.perf_counter() - t) * 1000
    for _ in range(max(0, warmup - 1)):
        fn()
    walls, events = [], []
    for _ in range(repeat):
        be.synchronize()
        if be.is_gpu:
            start, end = be.xp.cuda.Event(), be.xp.cuda.Event()
            t = time.perf_counter()
            start.record()
            fn()
            end.record()
            end.synchronize()
            walls.append((time.perf_counter() - t) * 1000)
            events.append(be.xp.cuda.get_elapsed_time(start, end))
        else:
            t = time.perf_counter()
            fn()
            walls.append((time.perf_counter() - t) * 1000)
    out["wall"] = statistics.median(walls) if walls else float("nan")
    out["min"] = min(walls) if walls else float("nan")
    out["event"] = statistics.median(events) if events else float("nan")
    return out


def bench_build(
    gpu: Backend, data: dict[str, tuple[Candles, OpenInterest | None]], params: ModelParams, nbins: int,
    columns: int, repeat: int, cpu_repeat: int,
) -> list[tuple[str, float, float, float]]:  # fmt: skip
    rows = []
    for name, (cd, oi) in data.items():
        bins = auto_bins(cd.low, cd.high, nbins)
        print(
            f"\n[full build + view: {name}] {len(cd):,} bars, {len(params.tiers)} tiers → {nbins} × {columns}",
            flush=True,
        )
        out = {}
        for be, rep in ((numpy_backend(), cpu_repeat), (gpu, repeat)):

            def build(
                be: Backend = be, cd: Candles = cd, oi: OpenInterest | None = oi, bins: PriceBins = bins
            ) -> None:
                e = LiquidationEngine.build(cd, oi, params, backend=be)
                render_view(e, bins, 0, len(cd), columns)
                liquidation_map(e, bins)

            out[be.name] = t = time_it(be, build, rep, warmup=2)
            e = LiquidationEngine.build(cd, oi, params, backend=be)
            ev = f", CUDA events {t['event']:.2f} ms" if be.is_gpu else ""
            print(f"  {be.name:5s}: median {t['wall']:.2f} ms (min {t['min']:.2f}{ev}); first call {t['first']:.1f} ms; "
                  f"levels {e.n_levels:,}, lifecycle rounds {e.lifecycle_info.rounds}", flush=True)  # fmt: skip
        rows.append((name, out["numpy"]["wall"], out["cupy"]["wall"], out["cupy"]["event"]))
    return rows


def bench_updates(
    gpu: Backend, cd: Candles, oi: OpenInterest | None, params: ModelParams, nbins: int, columns: int,
    repeat: int, cpu_repeat: int,
) -> list[tuple[str, float, float]]:  # fmt: skip
    oc = open_interest_at_close(cd, oi, params.oi_max_gap_bars)
    bins = auto_bins(cd.low, cd.high, nbins)
    n = len(cd)
    print(
        f"\n[one-bar update] {n:,} bars, view {nbins} × {columns}; the live bar revised + its column + the map"
    )
    rows = []
    for be, rep in ((numpy_backend(), cpu_repeat * 5), (gpu, repeat * 5)):
        e = LiquidationEngine.build(cd, params=params, oi_close=oc, backend=be)
        bar = cd.take(slice(n - 1, n))
        variants = [replace(bar, close=bar.close * (1 + 1e-4 * k)) for k in range(4)]
        state: dict[str, Any] = {"i": 0, "v": render_view(e, bins, 0, n, columns)}

        def revise(
            e: LiquidationEngine = e, variants: list[Candles] = variants, state: dict[str, Any] = state
        ) -> None:
            state["i"] += 1
            e.revise_last_bar(variants[state["i"] % 4], oc[-1])
            state["v"] = patch_newest_column(e, state["v"])
            liquidation_map(e, bins)

        r = time_it(be, revise, rep, warmup=3)
        n0 = n - rep - 10
        e2 = LiquidationEngine.build(cd.take(slice(0, n0)), params=params, oi_close=oc[:n0], backend=be)
        grow: dict[str, Any] = {"v": render_view(e2, bins, n0 - columns, n0, None), "j": n0}

        def append(e2: LiquidationEngine = e2, grow: dict[str, Any] = grow) -> None:
            j = grow["j"]
            e2.append_bar(cd.take(slice(j, j + 1)), oc[j])
            grow["v"] = patch_newest_column(e2, grow["v"])
            liquidation_map(e2, bins)
            grow["j"] = j + 1

        a = time_it(be, append, rep, warmup=3)
        ev = f" (CUDA events {r['event']:.3f})" if be.is_gpu else ""
        print(
            f"  {be.name:5s}: revise + column + map median {r['wall']:.3f} ms{ev}; append + new column + map {a['wall']:.3f} ms",
            flush=True,
        )
        rows.append((be.name, r["wall"], a["wall"]))
    return rows


# ============================================================================ main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15, help="timed repeats on the GPU (median)")
    ap.add_argument("--cpu-repeat", type=int, default=3, help="timed repeats of the CPU engine")
    ap.add_argument("--bars", type=int, default=105_120)
    ap.add_argument("--bins", type=int, default=2000)
    ap.add_argument("--columns", type=int, default=2000)
    ap.add_argument(
        "--emulate", action="store_true", help="no GPU: emulate the CUDA kernels on the CPU (tiny sizes)"
    )
    ap.add_argument("--skip-timing", action="store_true")
    args = ap.parse_args()
    t_start = time.perf_counter()
    if args.emulate:
        from tests.core import cuda_emulator

        gpu = select_backend("cupy", importer=lambda name: cuda_emulator.fake_cupy())
        args.bars, args.bins, args.columns = min(args.bars, 3000), min(args.bins, 60), min(args.columns, 50)
        args.repeat, args.cpu_repeat = min(args.repeat, 2), min(args.cpu_repeat, 1)
        print("EMULATED: the CUDA kernels run one thread at a time on the CPU (tests/core/cuda_emulator.py);")
        print("checks exercise the CuPy code path and the kernels' logic, timings are NOT GPU timings\n")
    else:
        gpu = select_backend("cupy")  # ConfigError (with the reason) when CuPy cannot run here

    import numba

    print("== environment")
    print(
        f"  Python {platform.python_version()} ({sys.executable}), NumPy {np.__version__}, numba {numba.__version__}"
    )
    print(f"  {gpu.describe()}")
    params = params_for("all")
    t = time.perf_counter()
    warm_cd, warm_oi = random_market(500, 1)
    LiquidationEngine.build(warm_cd, warm_oi, params, backend=gpu)
    print(
        f"  first device build (500 bars), NVRTC compile included: {(time.perf_counter() - t) * 1000:.0f} ms"
    )

    print(
        "\n== equality: the engine on CuPy against the engine on NumPy, and each kernel against its reference"
    )
    s = load_sample()
    cs, os_ = s.candles, s.open_interest
    if args.emulate:
        cs = cs.take(slice(len(cs) - args.bars, len(cs)))
    compare_engines(
        f"real sample: {s.label}", gpu, cs, os_, params, auto_bins(cs.low, cs.high, args.bins), args.columns
    )
    data = year_market(args.bars)
    for name, (cd, oi) in data.items():
        compare_engines(
            f"synthetic year, {name}",
            gpu,
            cd,
            oi,
            params,
            auto_bins(cd.low, cd.high, args.bins),
            args.columns,
        )
    cd, oi = data["OI for every bar"]
    compare_kernels(gpu, cd, oi, params, auto_bins(cd.low, cd.high, args.bins), args.columns)
    compare_updates(gpu, cd, oi, params, auto_bins(cd.low, cd.high, args.bins), 20)

    if not args.skip_timing:
        print("\n== timings (medians; CPU = the engine on NumPy with its numba kernels)")
        rows = bench_build(gpu, data, params, args.bins, args.columns, args.repeat, args.cpu_repeat)
        upd = bench_updates(
            gpu, *data[list(data)[1]], params, args.bins, args.columns, args.repeat, args.cpu_repeat
        )
        print(
            f"\n== summary: full build, {args.bars:,} bars × {len(params.tiers)} tiers → {args.bins} × {args.columns} uint8 + liquidation map"
        )
        print(f"  {'data':32s} {'CPU':>10s} {'GPU':>9s} {'events':>9s} {'speed-up':>9s}")
        for name, cpu_ms, gpu_ms, ev_ms in rows:
            print(f"  {name:32s} {cpu_ms:8.1f}ms {gpu_ms:7.2f}ms {ev_ms:7.2f}ms {cpu_ms / gpu_ms:8.1f}×")
            print(f"    target ≤ 5 ms on the GPU: {'met' if gpu_ms <= 5 else 'MISSED'}")
        for name, rev, app in upd:
            print(f"  one-bar update, {name:5s}: revise {rev:.3f} ms, append {app:.3f} ms")
    bad = [r for r in RESULTS if not r[1]]
    print(
        f"\n== {len(RESULTS) - len(bad)} of {len(RESULTS)} equality checks passed; {time.perf_counter() - t_start:.0f} s in all"
    )
    for name, _, detail in bad:
        print(f"  FAILED: {name}: {detail}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""GPU check for the device pipeline (issue 6). Run through gpu_check.sh on a machine with an
NVIDIA GPU; prints everything it measures and exits 1 if an equality check fails.

1. environment: Python, NumPy, numba, CuPy, the device;
2. equality: each CUDA kernel against its NumPy/numba twin, and the whole pipeline on CuPy against
   the NumPy backend (and the NumPy backend against the engine path) on the real bundled sample and
   on synthetic year-long 5-minute data: volume model only, the last 30 days with open interest,
   a whole year with open interest;
3. timings, NumPy and CuPy side by side, the numba engine path beside them: full rebuild of
   105,120 bars × 8 tiers into a 2,000 × 2,000 uint8 image (+ liquidation map), and one-bar
   updates. GPU times: synchronised wall clock and CUDA events, medians of --repeat runs; the
   first call (NVRTC compile, memory pool growth) and the warm-up are reported separately.

    python tests/benchmarks/gpu_check.py [--repeat 15] [--np-repeat 3]
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

from liqdesk.core import display  # noqa: E402
from liqdesk.core.backend import Backend, numpy_backend, select_backend  # noqa: E402
from liqdesk.core.device_build import (  # noqa: E402
    DeviceModel,
    compact_levels,
    dense_levels_xp,
    host_bar_rows,
    upload_bars,
)
from liqdesk.core.device_kernels import CupyKernels, NumpyKernels  # noqa: E402
from liqdesk.core.engine import LiquidationEngine  # noqa: E402
from liqdesk.core.grid import column_bars, render_grid  # noqa: E402
from liqdesk.core.liqmap import auto_bins  # noqa: E402
from liqdesk.core.openings import open_interest_at_close  # noqa: E402
from liqdesk.core.series import Candles, OpenInterest  # noqa: E402
from liqdesk.feeds.presets import params_for  # noqa: E402
from liqdesk.feeds.sample import load_sample  # noqa: E402
from tests.core.helpers import random_market  # noqa: E402

RESULTS: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    RESULTS.append((name, bool(ok), detail))
    print(f"  [{'ok' if ok else 'FAIL'}] {name}{': ' + detail if detail else ''}", flush=True)


def host(be: Backend, a: Any) -> np.ndarray:
    return be.asnumpy(a)


def image_diff(a: np.ndarray, b: np.ndarray) -> tuple[bool, str]:
    """Same empty cells; codes equal except rare ±1 where sums in another order cross a rounding edge."""
    if a.shape != b.shape:
        return False, f"shapes {a.shape} vs {b.shape}"
    zero = int(np.count_nonzero((a == 0) != (b == 0)))
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    n = int(np.count_nonzero(d))
    ok = zero == 0 and int(d.max(initial=0)) <= 1 and n <= max(2, a.size // 2000)
    return ok, f"{n} of {a.size:,} codes differ (max {int(d.max(initial=0))}), empty-cell mismatches {zero}"


def rel(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    same_nan = np.isnan(a) & np.isnan(b)
    d = np.where(same_nan, 0.0, np.abs(a - b))
    return float(d.max(initial=0.0) / max(float(np.nanmax(np.abs(b), initial=0.0)), 1e-300))


# ============================================================================ data


def year_market(n: int) -> dict[str, tuple[Candles, OpenInterest | None]]:
    cd, oi = random_market(n, 7)
    last30 = min(8640, n // 4)
    return {
        "volume model (no OI)": (cd, None),
        f"OI for the last {last30:,} bars": (cd, OpenInterest(oi.time[-last30:], oi.usd[-last30:])),
        "OI for every bar": (cd, oi),
    }


# ============================================================================ equality


def compare_models(
    name: str, gpu: Backend, cd: Candles, oi: OpenInterest | None, params, bins, columns
) -> None:
    print(
        f"\n[{name}] {len(cd):,} bars, preset {params.preset} ({len(params.tiers)} tiers), {bins.n} × {columns}"
    )
    cpu = numpy_backend()
    mn = DeviceModel.build(cd, oi, params, backend=cpu)
    mg = DeviceModel.build(cd, oi, params, backend=gpu)
    ln, lg = mn.levels(), {k: host(gpu, v) for k, v in mg.levels().items()}
    check("level count", mn.n_levels == mg.n_levels, f"{mn.n_levels:,} vs {mg.n_levels:,}")
    for k in ("created", "tier", "side", "sweep"):
        check(f"levels.{k} identical", np.array_equal(ln[k], lg[k]))
    check(
        "levels.price identical",
        np.array_equal(ln["price"], lg["price"]),
        f"max rel {rel(lg['price'], ln['price']):.1e}",
    )
    check(
        "levels.deposit",
        rel(lg["deposit"], ln["deposit"]) <= 1e-14,
        f"max rel {rel(lg['deposit'], ln['deposit']):.1e}",
    )
    lc_n, lc_g = mn.log_factor, host(gpu, mg.log_factor)
    step = float(np.abs(np.diff(lc_n) - np.diff(lc_g)).max(initial=0))
    check(
        "log factor (lifecycle)", step <= 1e-9,
        f"rounds NumPy {mn.lifecycle.rounds} / CuPy {mg.lifecycle.rounds}, max |Δ step| {step:.1e}, "
        f"max |ΔL| {float(np.abs(lc_n - lc_g).max(initial=0)):.1e}, fallback {mg.lifecycle.fallback}",
    )  # fmt: skip
    fn = mn.frame(bins, 0, None, columns)
    fg = mg.frame(bins, 0, None, columns)
    ok, detail = image_diff(fg.image, fn.image)
    check("uint8 image CuPy vs NumPy", ok, detail)
    check("colour levels", np.allclose(fg.levels, fn.levels, rtol=1e-6), f"{fg.levels} vs {fn.levels}")
    check(
        "transformed grid",
        rel(host(gpu, fg.tlong), fn.tlong) <= 1e-5,
        f"max rel {rel(host(gpu, fg.tlong), fn.tlong):.1e}",
    )
    lm = max(
        rel(fg.lmap.long_by_tier, fn.lmap.long_by_tier), rel(fg.lmap.short_by_tier, fn.lmap.short_by_tier)
    )
    check(
        "liquidation map at the last bar",
        lm <= 1e-9,
        f"max rel {lm:.1e}, totals {fg.lmap.total_long:.6g} / {fn.lmap.total_long:.6g}",
    )
    fx = mg.frame(bins, 0, None, columns, painter="xp")
    ok, detail = image_diff(fx.image, fg.image)
    check("CuPy whole-array painter (grid.paint_levels_xp) vs CUDA painter", ok, detail)
    eng = LiquidationEngine.build(cd, oi, params)
    g = render_grid(eng, bins, 0, None, columns)
    tl = display.transform(g.long.T).astype(np.float32)
    ts = display.transform(g.short.T).astype(np.float32)
    ref = display.quantise(tl + ts, display.default_levels(np.maximum(tl, ts)))
    ok, detail = image_diff(fn.image, ref)
    check("NumPy backend vs engine path (build + render_grid + quantise)", ok, detail)


def compare_kernels(gpu: Backend, cd: Candles, oi: OpenInterest | None, params, bins, columns) -> None:
    print(f"\n[kernels vs twins] {len(cd):,} bars")
    cp, ck, nk = gpu.xp, CupyKernels(gpu.xp), NumpyKernels()
    oc = open_interest_at_close(cd, oi, params.oi_max_gap_bars)
    rows = host_bar_rows(cd, oc)
    got = ck.bar_levels(cp.asarray(rows), params, cd.interval_ms, float("nan"), True)
    want = dense_levels_xp(rows, params, cd.interval_ms, np)
    for k in ("oi_delta", "decay", "price", "dep", "deposit_total"):
        a, b = host(gpu, got[k]), want[k]
        check(
            f"bar_levels.{k}",
            np.array_equal(a, b, equal_nan=True) or rel(a, b) <= 1e-14,
            f"max rel {rel(a, b):.1e}",
        )
    lv = compact_levels(want, params, 0, np)
    sl, sh = cd.sweep_low(), cd.sweep_high()
    a = host(
        gpu,
        ck.sweep_bars(
            cp.asarray(sl),
            cp.asarray(sh),
            cp.asarray(lv["created"]),
            cp.asarray(lv["price"]),
            cp.asarray(lv["side"]),
        ),
    )
    b = nk.sweep_bars(sl, sh, lv["created"], lv["price"], lv["side"])
    check(
        "sweep_search (binary lifting) vs monotonic-stack sweep search",
        np.array_equal(a, b),
        f"{int(np.count_nonzero(a != b))} differ",
    )
    rng = np.random.default_rng(1)
    g, h = rng.uniform(0.9, 1.0, len(cd)), rng.normal(0, 1, len(cd))
    a, b = host(gpu, ck.linrec(cp.asarray(g), cp.asarray(h), cp.asarray([0.5]))), nk.linrec(g, h, 0.5)
    check("linrec chunked scan", np.array_equal(a, b) or rel(a, b) <= 1e-15, f"max rel {rel(a, b):.1e}")
    m = DeviceModel.build(cd, oi, params)
    _, last = column_bars(0, len(cd), columns)
    lvd = {k: cp.asarray(v) for k, v in m.levels().items()}
    for tr in ("sqrt", "linear"):
        tg, _ = ck.paint(lvd, cp.asarray(m.log_factor), cp.asarray(last), bins.lo, bins.width, bins.n, tr)
        tn, _ = nk.paint(m.levels(), m.log_factor, last, bins.lo, bins.width, bins.n, tr)
        tg = host(gpu, tg)
        zero = int(np.count_nonzero((tg == 0) != (tn == 0)))
        check(
            f"paint ({tr}) vs numba twin",
            rel(tg, tn) <= 1e-5 and zero <= tn.size // 100000,
            f"max rel {rel(tg, tn):.1e}, empty-cell mismatches {zero}",
        )


def compare_updates(gpu: Backend, cd: Candles, oi: OpenInterest | None, params, bins, steps: int) -> None:
    print(f"\n[one-bar updates] {steps} live bars, each appended then revised")
    n0 = len(cd) - steps
    oc = open_interest_at_close(cd, oi, params.oi_max_gap_bars)
    models = [
        DeviceModel.build(cd.take(slice(0, n0)), params=params, oi_close=oc[:n0], backend=be)
        for be in (numpy_backend(), gpu)
    ]
    frames = [m.frame(bins, n0 - 500, None, None) for m in models]
    for j in range(n0, len(cd)):
        bar = cd.take(slice(j, j + 1))
        live = replace(bar, high=(bar.open + bar.high) / 2, low=(bar.open + bar.low) / 2, close=bar.open)
        for i, m in enumerate(models):
            m.append_bar(live, oc[j] * 0.999)
            frames[i] = m.patch_frame(frames[i])
            m.revise_last_bar(bar, oc[j])
            frames[i] = m.patch_frame(frames[i])
    ok, detail = image_diff(frames[1].image, frames[0].image)
    check("patched image CuPy vs NumPy", ok, detail)
    sw = [host(be, m.levels()["sweep"]) for be, m in zip((numpy_backend(), gpu), models, strict=True)]
    check("sweep bars after updates", np.array_equal(sw[0], sw[1]))
    d = float(np.abs(np.diff(models[0].log_factor) - np.diff(host(gpu, models[1].log_factor))).max())
    check("log factor after updates", d <= 1e-9, f"max |Δ step| {d:.1e}")
    lm = rel(frames[1].lmap.long_by_tier, frames[0].lmap.long_by_tier)
    check("liquidation map after updates", lm <= 1e-9, f"max rel {lm:.1e}")


# ============================================================================ timing


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


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
    out["wall"] = _median(walls)
    out["min"] = min(walls) if walls else float("nan")
    out["event"] = _median(events)
    return out


def _rebuild_case(
    be: Backend, cd: Candles, oi: OpenInterest | None, params, bins, columns: int, rep: int
) -> tuple:
    bars = upload_bars(cd, oi, params, backend=be)

    def resident() -> None:
        DeviceModel.from_bars(bars, params).frame(bins, 0, None, columns)

    def end_to_end() -> None:
        DeviceModel.from_bars(upload_bars(cd, oi, params, backend=be), params).frame(bins, 0, None, columns)

    r = time_it(be, resident, rep, warmup=2)
    e = time_it(be, end_to_end, max(1, rep // 2), warmup=1)
    m = DeviceModel.from_bars(bars, params, profile=True)
    m.frame(bins, 0, None, columns, profile=True)
    phases = ", ".join(f"{k} {v:.2f}" for k, v in m.phases.items())
    ev = f", CUDA events {r['event']:.2f} ms" if be.is_gpu else ""
    print(
        f"  {be.name:5s}: rebuild from resident bars median {r['wall']:.2f} ms (min {r['min']:.2f}{ev}); "
        f"first call {r['first']:.1f} ms; with host prep + upload {e['wall']:.2f} ms\n"
        f"         levels {m.n_levels:,}, lifecycle rounds {m.lifecycle.rounds}; phases (ms, synchronised): {phases}",
        flush=True,
    )
    return r, e


def _engine_case(
    cd: Candles, oi: OpenInterest | None, params, bins, columns: int, rep: int
) -> dict[str, float]:
    def engine_path() -> None:
        e = LiquidationEngine.build(cd, oi, params)
        g = render_grid(e, bins, 0, None, columns)
        tl = display.transform(g.long.T).astype(np.float32)
        ts = display.transform(g.short.T).astype(np.float32)
        display.quantise(tl + ts, display.default_levels(np.maximum(tl, ts)))

    return time_it(numpy_backend(), engine_path, rep)


def bench_rebuild(
    gpu: Backend, data: dict, params, nbins: int, columns: int, repeat: int, np_repeat: int
) -> list[tuple]:
    rows = []
    for name, (cd, oi) in data.items():
        bins = auto_bins(cd.low, cd.high, nbins)
        print(
            f"\n[full rebuild: {name}] {len(cd):,} bars, {len(params.tiers)} tiers → {nbins} × {columns}",
            flush=True,
        )
        r_np, _ = _rebuild_case(numpy_backend(), cd, oi, params, bins, columns, np_repeat)
        r_gpu, e_gpu = _rebuild_case(gpu, cd, oi, params, bins, columns, repeat)
        t = _engine_case(cd, oi, params, bins, columns, np_repeat)
        print(
            f"  numba engine path (build + render_grid + transform + levels + quantise): median {t['wall']:.1f} ms"
        )
        rows.append((name, r_np["wall"], r_gpu["wall"], r_gpu["event"], e_gpu["wall"], t["wall"]))
    return rows


def _update_case(
    be: Backend, cd: Candles, oc: np.ndarray, params, bins, columns: int, rep: int
) -> tuple[dict, dict]:
    n = len(cd)
    m = DeviceModel.build(cd, params=params, oi_close=oc, backend=be)
    bar = cd.take(slice(n - 1, n))
    variants = [replace(bar, close=bar.close * (1 + 1e-4 * k)) for k in range(4)]
    state: dict[str, Any] = {"i": 0, "f": m.frame(bins, 0, None, columns)}

    def revise() -> None:
        state["i"] += 1
        m.revise_last_bar(variants[state["i"] % 4], oc[-1])
        state["f"] = m.patch_frame(state["f"])

    r = time_it(be, revise, rep, warmup=3)
    # appending: a view with one bar per column grows by a column
    n0 = n - rep - 10
    m2 = DeviceModel.build(cd.take(slice(0, n0)), params=params, oi_close=oc[:n0], backend=be)
    grow: dict[str, Any] = {"f": m2.frame(bins, n0 - columns, None, None), "j": n0}

    def append() -> None:
        j = grow["j"]
        m2.append_bar(cd.take(slice(j, j + 1)), oc[j])
        grow["f"] = m2.patch_frame(grow["f"])
        grow["j"] = j + 1

    a = time_it(be, append, rep, warmup=3)
    ev = f" (CUDA events {r['event']:.3f})" if be.is_gpu else ""
    print(
        f"  {be.name:5s}: revise + column + map median {r['wall']:.3f} ms{ev}; append + new column + map {a['wall']:.3f} ms",
        flush=True,
    )
    return r, a


def bench_updates(
    gpu: Backend,
    cd: Candles,
    oi: OpenInterest | None,
    params,
    nbins: int,
    columns: int,
    repeat: int,
    np_repeat: int,
) -> list[tuple]:
    oc = open_interest_at_close(cd, oi, params.oi_max_gap_bars)
    bins = auto_bins(cd.low, cd.high, nbins)
    n = len(cd)
    print(
        f"\n[one-bar update] {n:,} bars, view {nbins} × {columns}; revise the live bar + repaint its column + liquidation map"
    )
    rows = []
    for be, rep in ((numpy_backend(), np_repeat * 5), (gpu, repeat * 5)):
        r, a = _update_case(be, cd, oc, params, bins, columns, rep)
        rows.append((be.name, r["wall"], a["wall"]))
    eng = LiquidationEngine.build(cd, params=params, oi_close=oc)
    bar = cd.take(slice(n - 1, n))

    def engine_revise() -> None:
        eng.revise_last_bar(bar, oc[-1])
        g = render_grid(eng, bins, n - 1, None, 1)
        display.quantise(display.transform(g.long.T) + display.transform(g.short.T), (1.0, 100.0))

    t = time_it(numpy_backend(), engine_revise, np_repeat * 5)
    print(f"  numba engine: revise_last_bar + render the column + quantise: median {t['wall']:.3f} ms")
    rows.append(("engine", t["wall"], float("nan")))
    return rows


# ============================================================================ main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=15, help="timed repeats on the GPU (median)")
    ap.add_argument("--np-repeat", type=int, default=3, help="timed repeats of the NumPy backend")
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
        args.repeat, args.np_repeat = min(args.repeat, 2), min(args.np_repeat, 1)
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
    ck = CupyKernels(gpu.xp)
    t = time.perf_counter()
    ck.compile_all()
    print(
        f"  CUDA kernels compiled/loaded in {(time.perf_counter() - t) * 1000:.0f} ms (NVRTC, cached on disk by CuPy)"
    )

    print("\n== equality: CuPy against NumPy")
    s = load_sample()
    cs, os_ = s.candles, s.open_interest
    if args.emulate:
        cs = cs.take(slice(len(cs) - args.bars, len(cs)))
    compare_models(
        f"real sample: {s.label}", gpu, cs, os_, params, auto_bins(cs.low, cs.high, args.bins), args.columns
    )
    data = year_market(args.bars)
    for name, (cd, oi) in data.items():
        compare_models(
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
        print("\n== timings (medians; NumPy = this project's NumPy backend, the CUDA kernels' twins)")
        rows = bench_rebuild(gpu, data, params, args.bins, args.columns, args.repeat, args.np_repeat)
        upd = bench_updates(
            gpu, *data[list(data)[1]], params, args.bins, args.columns, args.repeat, args.np_repeat
        )
        print(
            f"\n== summary: full rebuild, {args.bars:,} bars × {len(params.tiers)} tiers → {args.bins} × {args.columns} uint8 + liquidation map"
        )
        print(
            f"  {'data':32s} {'NumPy':>10s} {'CuPy':>9s} {'events':>9s} {'speed-up':>9s} {'CuPy+upload':>12s} {'numba engine':>13s}"
        )
        for name, np_ms, gpu_ms, ev_ms, e2e_ms, eng_ms in rows:
            print(
                f"  {name:32s} {np_ms:8.1f}ms {gpu_ms:7.2f}ms {ev_ms:7.2f}ms {np_ms / gpu_ms:8.0f}× {e2e_ms:10.2f}ms {eng_ms:11.1f}ms"
            )
            print(
                f"    target ≤ 5 ms: {'met' if gpu_ms <= 5 else 'MISSED'}; target ≥ 50× NumPy: "
                f"{'met' if np_ms / gpu_ms >= 50 else 'MISSED'}"
            )
        for name, rev, app in upd:
            print(f"  one-bar update, {name:6s}: revise {rev:.3f} ms, append {app:.3f} ms")
    bad = [r for r in RESULTS if not r[1]]
    print(
        f"\n== {len(RESULTS) - len(bad)} of {len(RESULTS)} equality checks passed; {time.perf_counter() - t_start:.0f} s in all"
    )
    for name, _, detail in bad:
        print(f"  FAILED: {name}: {detail}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Aggregate benchmark (not part of the test run): python tests/benchmarks/aggregate.py [--repeat 7]

Four venues × 30 days of 1-minute bars × the 8-tier "all" preset → one 2,000 × 1,000 grid, against each venue
alone on the same grid; the live update of the aggregate per venue bar; memory of the four engines and of one
aggregated frame. Targets (2-core machine): aggregate build ≤ 2.5× the single-venue time, live update ≤ 2 ms per
venue bar, the window's total with 4 venues ≤ 500 MB.

Data: the bundled 30 days of real Binance BTCUSDT 1-minute bars. No other venue's 1-minute history is bundled,
so the other venues' bars are SYNTHETIC derivatives of Binance's: the same bars at a basis (Bybit +3 bp, OKX
−2 bp, Hyperliquid +1 bp), with other volumes (60 %, 40 %, 20 %), and what each venue's data really lacks left
out (Bybit: no taker volume; Hyperliquid: no open interest, so the volume model, the most levels). Open interest
for Binance, Bybit and OKX is a SYNTHETIC random walk (the sample has none). Each venue uses its own bracket
table and margin rule. The single-venue figure is each venue alone (build + grid), and the ratio is quoted
against their mean (the aggregate builds all four) and against the slowest one (Hyperliquid's volume model).
Rounds are interleaved (every venue alone, then the aggregates) and each ratio is the median of the rounds'
ratios; the machine is shared. The process runs under the app's allocator policy (app/allocator.py), as
`liqdesk` does; `--default-allocator` leaves glibc's moving thresholds, for comparison.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from liqdesk.app import allocator  # noqa: E402
from liqdesk.core.aggregate import (  # noqa: E402
    AggregateModel,
    VenueInput,
    build_and_render,
    build_venues,
    render_aggregate_grid,
    time_columns,
)
from liqdesk.core.engine import LiquidationEngine  # noqa: E402
from liqdesk.core.grid import render_grid  # noqa: E402
from liqdesk.core.liqmap import auto_bins  # noqa: E402
from liqdesk.core.series import Candles, OpenInterest  # noqa: E402
from liqdesk.feeds.presets import params_for  # noqa: E402
from liqdesk.feeds.sample import load_sample  # noqa: E402

BARS = 30 * 24 * 60
COLUMNS, BINS = 2000, 1000
# venue, basis, volume share, open interest, taker volume
VENUES = (("binanceusdm", 1.0, 1.0, True, True), ("bybit", 1.0003, 0.6, True, False),
          ("okx", 0.9998, 0.4, True, True), ("hyperliquid", 1.0001, 0.2, False, False))  # fmt: skip


def inputs() -> list[VenueInput]:
    s = load_sample("btcusdt-1m-2025-01")
    c = s.candles.take(slice(0, BARS))
    rng = np.random.default_rng(0)
    out = []
    for name, basis, share, with_oi, with_taker in VENUES:
        moved = Candles(
            c.open_time, c.open * basis, c.high * basis, c.low * basis, c.close * basis, c.volume * share,
            c.interval_ms, quote_volume=None if c.quote_volume is None else c.quote_volume * basis * share,
            taker_buy_volume=None if not with_taker or c.taker_buy_volume is None else c.taker_buy_volume * share,
        )  # fmt: skip
        oi = (
            OpenInterest(c.close_time, share * (8e9 + np.cumsum(rng.normal(0, 4e6, len(c)))))
            if with_oi
            else None
        )
        out.append(VenueInput(name, "BTC", moved, oi, params_for("all", venue=name)))
    return out


CPU_MS: dict[int, float] = {}  # id of a timed function → median CPU time of this process (all threads), ms


def median_ms(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """Median wall time of `repeat` runs (and, in CPU_MS, their median CPU time: what the work costs whoever
    else runs on the machine)."""
    times, cpu, out = [], [], None
    for _ in range(repeat):
        out = None  # one result alive at a time, as the app holds it
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    CPU_MS[id(fn)] = statistics.median(cpu)
    return statistics.median(times), out


def speed(repeat: int) -> None:
    vin = inputs()
    c = vin[0].candles
    bins = auto_bins(c.low, c.high, BINS)
    cols = time_columns(int(c.open_time[0]), int(c.close_time[-1]), c.interval_ms, COLUMNS)
    warm = [VenueInput(v.name, v.symbol, v.candles.take(slice(0, 500)), None, v.params) for v in vin]
    render_aggregate_grid(
        build_venues(warm), bins, time_columns(int(c.open_time[0]), int(c.open_time[499]), c.interval_ms, 10)
    )  # fmt: skip  JIT warm-up
    print(f"data: {len(c):,} real 1 m bars × 4 venues (3 synthetic derivatives, synthetic OI), preset 'all' "
          f"(8 tiers) → {COLUMNS:,} × {BINS:,}; {os.cpu_count()} CPU cores; load {os.getloadavg()[0]:.1f}")  # fmt: skip
    workers = os.cpu_count() or 1

    def one(v: VenueInput):  # type: ignore[no-untyped-def]
        def run():  # type: ignore[no-untyped-def]
            e = LiquidationEngine.build(v.candles, v.open_interest, v.params)
            return render_grid(e, bins, columns=COLUMNS)

        return run

    def agg(w: int, by_venue: bool):  # type: ignore[no-untyped-def]
        def run():  # type: ignore[no-untyped-def]
            # as `liqdesk export` does it: build and paint shared by the threads
            return build_and_render(vin, bins, cols, by_venue=by_venue, workers=w)[1]

        return run

    # Interleaved: each round times every venue alone and then the aggregates, so that a machine that gets
    # busier or quieter during the run moves both sides of a ratio alike; each ratio is also taken within its
    # round and the median of those quoted.
    cases = {v.name: one(v) for v in vin} | {"two": agg(workers, False), "seq": agg(1, False),
                                              "parts": agg(workers, True)}  # fmt: skip
    wall: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(repeat + 1):  # the first round warms up, and is not counted
        for key, fn in cases.items():
            w_ms, _ = median_ms(fn, 1)
            if r == 0:
                continue
            wall[key].append(w_ms)
            cpu[key].append(CPU_MS[id(fn)])
    names = [v.name for v in vin]
    mean_by_round = [statistics.mean(wall[n][r] for n in names) for r in range(repeat)]
    slowest_by_round = [max(wall[n][r] for n in names) for r in range(repeat)]

    def ratio(key: str, by_round: list[float]) -> float:
        return statistics.median(x / m for x, m in zip(wall[key], by_round, strict=True))

    single = {n: statistics.median(wall[n]) for n in names}
    single_cpu = {n: statistics.median(cpu[n]) for n in names}
    mean_single = statistics.mean(single.values())
    mean_single_cpu = statistics.mean(single_cpu.values())
    one_buffer, sequential, parts = (statistics.median(wall[k]) for k in ("two", "seq", "parts"))
    sequential_cpu = statistics.median(cpu["seq"])
    two_cpu = statistics.median(cpu["two"])
    grid = cases["two"]()
    engines = build_venues(vin, workers=1)
    paint_only, _ = median_ms(lambda: render_aggregate_grid(engines, bins, cols, by_venue=False), repeat)
    paint_two, _ = median_ms(
        lambda: render_aggregate_grid(engines, bins, cols, by_venue=False, workers=workers), repeat
    )
    paint_apart, _ = median_ms(
        lambda: [render_grid(vm.engine, bins, columns=COLUMNS) for vm in engines], repeat
    )
    paint_single, _ = median_ms(lambda: render_grid(engines[0].engine, bins, columns=COLUMNS), repeat)
    levels = sum(vm.engine.n_levels for vm in engines)
    print("\nsingle venue, build + 2000 × 1000 grid (median wall time; CPU time):")
    for name, ms in single.items():
        print(f"  {name:<12} {ms:7.1f} ms  (CPU {single_cpu[name]:.1f} ms)")
    print(f"  mean         {mean_single:7.1f} ms  (CPU {mean_single_cpu:.1f} ms)")
    print(f"\naggregate of 4 venues ({levels:,} levels), build + one 2000 × 1000 grid (median):")
    print(f"  {workers} threads, painted into one buffer   {one_buffer:7.1f} ms  = {ratio('two', mean_by_round):.2f}× the "
          f"mean single venue, {ratio('two', slowest_by_round):.2f}× the slowest  [target ≤ 2.5×]; CPU {two_cpu:.1f} ms "
          f"= {two_cpu / mean_single_cpu:.2f}× the mean single venue's")  # fmt: skip
    print(f"  1 thread, painted into one buffer    {sequential:7.1f} ms  = {ratio('seq', mean_by_round):.2f}× / "
          f"{ratio('seq', slowest_by_round):.2f}×; CPU {sequential_cpu:.1f} ms = "
          f"{sequential_cpu / mean_single_cpu:.2f}× the mean single venue's CPU")  # fmt: skip
    print(f"  {workers} threads, with each venue's part     {parts:7.1f} ms  = {ratio('parts', mean_by_round):.2f}× / "
          f"{ratio('parts', slowest_by_round):.2f}×  (the export's breakdown)")  # fmt: skip
    print(f"  (ratios: the median of each round's ratio; times: medians of {repeat} rounds)")
    print(
        f"  painting alone: 4 venues into one buffer {paint_only:.1f} ms (both sides side by side: "
        f"{paint_two:.1f} ms); each venue into its own grid {paint_apart:.1f} ms; one venue {paint_single:.1f} ms"
    )
    assert grid is not None

    # live: one venue's bar (its live bar revised) → its engine, its newest column, the sum
    model = AggregateModel(engines, bins)
    upd: dict[str, list[float]] = {v.name: [] for v in engines}
    for k in range(400):
        vm = engines[k % len(engines)]
        c_k = vin[k % len(engines)].candles
        last = c_k.take(slice(len(c_k) - 1, len(c_k)))
        t = time.perf_counter()
        model.apply_bar(vm.name, last)
        upd[vm.name].append((time.perf_counter() - t) * 1000)
    allv = [x for xs in upd.values() for x in xs]
    print("\nlive update of the aggregate per venue bar (engine revise + its newest column + the sum):")
    for name, xs in upd.items():
        print(f"  {name:<12} median {statistics.median(xs):6.3f} ms  p95 {np.percentile(xs, 95):6.3f} ms")
    print(f"  all          median {statistics.median(allv):6.3f} ms  p95 {np.percentile(allv, 95):6.3f} ms  "
          f"[target ≤ 2 ms]")  # fmt: skip
    t = time.perf_counter()
    model.map()
    print(
        f"  the summed liquidation map (4 venues' maps at their newest bar): {(time.perf_counter() - t) * 1000:.2f} ms"
    )


def memory() -> None:
    """In its own process: what four engines and one aggregated frame hold. The engines' big arrays live in
    mappings of their own (core.hostmem), which tracemalloc does not see: they are counted by the engines'
    nbytes() and by the process's resident memory (now, not the maximum)."""
    import tracemalloc

    def resident_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)

    vin = inputs()
    c = vin[0].candles
    bins = auto_bins(c.low, c.high, BINS)
    cols = time_columns(int(c.open_time[0]), int(c.close_time[-1]), c.interval_ms, COLUMNS)
    LiquidationEngine.build(c.take(slice(0, 500)), None, vin[0].params)  # JIT loaded
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    before = resident_mb()
    tracemalloc.start()
    engines = build_venues(vin, workers=1)
    _, peak_build = tracemalloc.get_traced_memory()
    held = sum(vm.engine.nbytes() for vm in engines)
    with_engines = resident_mb()
    tracemalloc.reset_peak()
    from liqdesk.core.aggregate import render_aggregate_view

    traced_before_frame = tracemalloc.get_traced_memory()[0]
    view = render_aggregate_view(engines, bins, cols)
    after_frame, peak_frame = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    with_frame = resident_mb()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mb = 1 / (1 << 20)
    print("\nmemory (resident now; the engines' arrays; NumPy allocations traced; max RSS of this process):")
    print(f"  4 engines kept: +{with_engines - before:.0f} MB resident; their arrays {held * mb:.0f} MB "
          f"(traced NumPy peak while building {peak_build * mb:.0f} MB, the mapped arrays aside)")  # fmt: skip
    print(f"  one aggregated frame (values + uint8 image, 2000 × 1000): +{with_frame - with_engines:.0f} MB resident, "
          f"{(after_frame - traced_before_frame) * mb:.0f} MB traced kept, {(peak_frame - traced_before_frame) * mb:.0f} "
          f"MB traced at its peak")  # fmt: skip
    print(f"  process max RSS: {base:.0f} MB with the data and compiled kernels loaded, {rss:.0f} MB after "
          f"(the window's total: the next case)")  # fmt: skip
    assert view.image.shape == (BINS, COLUMNS)


def window(default_allocator: bool) -> None:
    """The window with the four venues: `liqdesk snapshot` (offscreen) on the four venues' files, 30 days of
    1-minute bars, preset 'all', range 30d; its max RSS against one venue's."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        specs = []
        for v in inputs():
            c = v.candles
            path = Path(d) / f"{v.name}.csv"
            cols = [c.open_time.tolist(), c.open.tolist(), c.high.tolist(), c.low.tolist(), c.close.tolist(),
                    c.volume.tolist()]  # fmt: skip
            lines = [",".join(repr(x) for x in row) for row in zip(*cols, strict=True)]
            path.write_text("open_time,open,high,low,close,volume\n" + "\n".join(lines) + "\n")
            spec = f"{v.name}={path}"
            if v.open_interest is not None:
                oi = Path(d) / f"{v.name}-oi.csv"
                pts = zip(v.open_interest.time.tolist(), v.open_interest.usd.tolist(), strict=True)
                oi.write_text("timestamp,sum_open_interest_value\n" + "".join(f"{t},{u!r}\n" for t, u in pts))
                spec += f",{oi}"
            specs.append(spec)
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LIQDESK_CONFIG_DIR": d, "LIQDESK_DATA_DIR": d}
        if default_allocator:
            env["LIQDESK_DEFAULT_ALLOCATOR"] = "1"
        measure = (
            "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024 if r.returncode == 0 else -1)"
        )
        print(
            "\nthe window (liqdesk snapshot, offscreen), 30 days × 1 m × 8 tiers, range 30d: max RSS of 2 runs"
        )
        for label, venues in (("one venue (binanceusdm)", specs[:1]), ("four venues (the aggregate)", specs)):
            rss = []
            for _ in range(2):
                cmd = [sys.executable, "-m", "liqdesk", "snapshot", *[x for s in venues for x in ("--venue", s)],
                       "--preset", "all", "--range", "30d", "--out", str(Path(d) / "shot.png")]  # fmt: skip
                out = subprocess.run(
                    [sys.executable, "-c", measure, *cmd], env=env, capture_output=True, text=True
                )
                rss.append(int(out.stdout.strip() or -1))
            print(f"  {label:<28} {min(rss)}–{max(rss)} MB  [target with 4 venues ≤ 500 MB]")


def window_live(repeat: int) -> None:
    """The aggregated window's live path as its model worker runs it: a venue's bar into the VenueSetEngine
    (that venue's engine appends or revises, the sum is refreshed), then the shown frame's newest column
    patched (ui.worker.patch_frame), on a view of the last 3 days at 1,600 × 900 px; and the same path for
    the chart venue alone (one LiquidationEngine), in the same run."""
    from liqdesk.core.aggregate_engine import VenueSetEngine
    from liqdesk.ui.frame_policy import FrameStyle, ViewGeometry, frame_request
    from liqdesk.ui.frames import compute_frame
    from liqdesk.ui.worker import patch_frame

    vin = inputs()
    held = 400  # the last bars of each venue arrive live
    nb = min(len(v.candles) for v in vin)
    head = [VenueInput(v.name, v.symbol, v.candles.take(slice(0, nb - held)), v.open_interest, v.params,
                       v.liquidations, v.label, v.tape) for v in vin]  # fmt: skip

    def run(engine, venues):  # type: ignore[no-untyped-def]
        n = engine.n_bars
        c = vin[0].candles.take(slice(nb - 3 * 1440 - held, nb))
        view = ViewGeometry(
            (n - 3 * 1440, n + 20), (float(c.low.min()), float(c.high.max())), (1600.0, 900.0), n
        )  # the right edge past the newest bar: the map follows it, as in a live window
        req = frame_request(view, FrameStyle(), 1)
        assert req is not None
        frame = compute_frame(engine, req)
        per: dict[str, list[float]] = {v.name: [] for v in venues}
        for k in range(held):
            for v in venues:
                row = v.candles.take(slice(nb - held + k, nb - held + k + 1))
                oi = None
                if v.open_interest is not None:
                    i = int(np.searchsorted(v.open_interest.time, int(row.open_time[0]), "right")) - 1
                    oi = float(v.open_interest.usd[max(i, 0)])
                t0 = time.perf_counter()
                if isinstance(engine, LiquidationEngine) or v.name == engine.chart_venue:
                    engine.append_bar(row, oi)
                else:
                    engine.apply_venue_bar(v.name, row, oi)
                patched = patch_frame(engine, engine, frame)
                per[v.name].append((time.perf_counter() - t0) * 1000)
                if patched is not None:
                    frame = patched
        return per

    per = run(VenueSetEngine(build_venues(head, workers=1), vin[0].name), vin)
    alone = run(build_venues(head[:1])[0].engine, vin[:1])
    print(f"\nthe aggregated window's live path (VenueSetEngine bar + patch of the shown frame with its map, 3 days "
          f"in view, {held} bars per venue):")  # fmt: skip
    every = [x for xs in per.values() for x in xs]
    for name, xs in [*per.items(), ("all", every), (f"{vin[0].name} alone", alone[vin[0].name])]:
        print(f"  {name:<18} median {statistics.median(xs):6.3f} ms  p95 {np.percentile(xs, 95):6.3f} ms"
              + ("  [target ≤ 2 ms]" if name == "all" else ""))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--case", choices=["speed", "memory", "window", "window-live"])
    ap.add_argument("--default-allocator", action="store_true", help="without the app's allocator policy")
    args = ap.parse_args()
    policy = not args.default_allocator and allocator.set_policy()
    if args.case is None:  # each case in its own process: max RSS only grows
        for case in ("speed", "memory", "window", "window-live"):
            extra = ["--default-allocator"] if args.default_allocator else []
            subprocess.run(
                [sys.executable, __file__, "--repeat", str(args.repeat), "--case", case, *extra], check=True
            )
        return
    print(f"allocator: {'the app policy (app/allocator.py)' if policy else 'glibc defaults / environment'}")
    cases = {"speed": lambda: speed(args.repeat), "memory": memory, "window": lambda: window(args.default_allocator),
             "window-live": lambda: window_live(args.repeat)}  # fmt: skip
    cases[args.case]()


if __name__ == "__main__":
    main()

"""Bar replay benchmark (not part of the test run): python tests/benchmarks/replay.py [--steps 600]

One year of real 5-minute BTCUSDT bars (105,120 bars, the bundled 2023-11 → 2024-10 candles, volume
model, the default "coinglass" preset) replayed from the middle of the year:

- forward: a step is what the window's worker does for one replayed bar: `append_bar` on the
  session's engine, then the patch of the shown frame (the newest heatmap column, the map and
  magnets at the new bar, the sweep bubbles and model label: `ui.worker.patch_frame`) and its
  colouring. A following view also needs a fresh frame now and then (the window asks for one once
  the frame's left margin has grown by half a view): its cost is measured and spread over the
  steps it lasts. Target: 100 steps per second, i.e. ≤ 10 ms a step, all of it included. Then it
  plays for --play-s seconds at --speed bars per second on a timer, as the window will
  (core.replay.PlayClock), and counts the bars that could not be stepped in time.
- back: one step back with `truncate` (what the session does), against a rebuild on the bars up
  to there, and against a checkpoint every 100 bars (restore the copy, append the bars since).
- jumps: back a day / a week / to the first month, forward a day by appends and by a rebuild, and
  forward a month (rebuild): APPEND_VS_REBUILD in core/replay.py is where the two cross.

The view: 3 days on screen (864 bars) plus the window's render margins, one column per bar, about
300 price bins (a 1,400 × 700-pixel plot at 3 px a bin). Medians; the machine is shared: compare
the figures within one run.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from liqdesk.core.engine import LiquidationEngine  # noqa: E402
from liqdesk.core.grid import PriceBins  # noqa: E402
from liqdesk.core.replay import APPEND_VS_REBUILD, PlayClock, ReplaySession  # noqa: E402
from liqdesk.feeds.files import read_candles  # noqa: E402
from liqdesk.feeds.presets import params_for  # noqa: E402
from liqdesk.feeds.resources import resource_path  # noqa: E402
from liqdesk.feeds.sample import CANDLES_5M  # noqa: E402
from liqdesk.ui import frames, theme  # noqa: E402
from liqdesk.ui.worker import patch_frame  # noqa: E402

YEAR_BARS = 365 * 288
VIEW_BARS = 3 * 288
RENDER_MARGIN, RENDER_MARGIN_Y = 0.3, 0.15  # ui/window.py
BINS = 300
CHECKPOINT_EVERY = 100


def ms(seconds: float) -> float:
    return seconds * 1000.0


def frame_request(session: ReplaySession, generation: int) -> frames.FrameRequest:
    """What the window asks for when its view ends at the replay's newest bar."""
    n = session.bars
    c = session.candles
    x0 = n - VIEW_BARS
    start = max(int(x0 - VIEW_BARS * RENDER_MARGIN), 0)
    lo, hi = float(c.low[x0:n].min()), float(c.high[x0:n].max())
    span = hi - lo
    bins = PriceBins(lo - span * RENDER_MARGIN_Y, hi + span * RENDER_MARGIN_Y, BINS)
    return frames.FrameRequest(
        generation=generation, start_bar=start, end_bar=n, columns=n - start, bins=bins,
        visible_bars=(x0, n), visible_prices=(lo, hi), map_bar=n - 1,
    )  # fmt: skip


def checkpoint(eng: LiquidationEngine) -> LiquidationEngine:
    """A full copy of the engine's state (its array module, kernels and parameters shared)."""
    shared = (eng.xp, eng.kernels, eng.backend, eng.params, eng.lifecycle_info)
    return copy.deepcopy(eng, {id(x): x for x in shared})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="forward steps timed")
    ap.add_argument("--backs", type=int, default=30, help="steps back timed")
    ap.add_argument("--speed", type=float, default=100.0, help="bars per second played")
    ap.add_argument("--play-s", type=float, default=6.0, help="seconds played at --speed")
    args = ap.parse_args()

    candles = read_candles(resource_path("sample", CANDLES_5M)).take(slice(0, YEAR_BARS))
    params = params_for("coinglass")
    lut = theme.lut("liqdesk")
    print(
        f"history: {len(candles):,} bars of 5 m ({candles.timeframe}), preset {params.preset}, volume model"
    )

    LiquidationEngine.build(candles.take(slice(0, 2000)), params=params)  # compile the kernels first
    session = ReplaySession(candles, None, None, params)
    mid = YEAR_BARS // 2
    t0 = time.perf_counter()
    session.seek(mid)
    t_start = time.perf_counter() - t0
    eng = session.engine
    assert eng is not None
    print(f"start at bar {mid:,}: build {ms(t_start):.0f} ms, {eng.n_levels:,} levels")

    # ---------------------------------------------------------------- forward
    t0 = time.perf_counter()
    frame = frames.compute_frame(eng, frame_request(session, 1))
    frame.coloured = (frame.image, lut, frames.colour(frame.image, lut))
    t_frame = time.perf_counter() - t0
    engine_s, patch_s, frame_s = [], [], [t_frame]
    lasts = int(VIEW_BARS * 0.5)  # steps a frame lasts while the view follows (ui/window.py: lean)
    since = 0
    for k in range(args.steps):
        t0 = time.perf_counter()
        session.step()
        t1 = time.perf_counter()
        patched = patch_frame(eng, eng, frame)
        assert patched is not None
        patched.coloured = (patched.image, lut, frames.colour(patched.image, lut))
        frame.values = None
        frame = patched
        t2 = time.perf_counter()
        engine_s.append(t1 - t0)
        patch_s.append(t2 - t1)
        since += 1
        if since >= lasts:
            t0 = time.perf_counter()
            frame = frames.compute_frame(eng, frame_request(session, k + 2))
            frame.coloured = (frame.image, lut, frames.colour(frame.image, lut))
            frame_s.append(time.perf_counter() - t0)
            since = 0
    e, p, f = (statistics.median(x) for x in (engine_s, patch_s, frame_s))
    step = e + p + f / lasts
    p95 = float(np.percentile(np.add(engine_s, patch_s), 95))
    print(
        f"forward: engine {ms(e):.2f} ms + frame patch {ms(p):.2f} ms + fresh frame {ms(f):.0f} ms / {lasts} steps "
        f"= {ms(step):.2f} ms a step → {1 / step:,.0f} steps/s (target ≥ 100); step + patch p95 {ms(p95):.2f} ms"
    )

    # ---------------------------------------------------------------- playing at --speed bars/s
    clock = PlayClock(speed=args.speed)
    begin = time.perf_counter()
    clock.start(begin)
    busy, stepped, frame_gen = 0.0, 0, 10**6
    longest: list[float] = []
    while (now := time.perf_counter()) < begin + args.play_s:
        for _ in range(clock.due(now)):
            t0 = time.perf_counter()
            session.step()
            patched = patch_frame(eng, eng, frame)
            if patched is None or session.bars - patched.request.start_bar > VIEW_BARS * (
                1.5 + RENDER_MARGIN
            ):
                frame_gen += 1
                patched = frames.compute_frame(eng, frame_request(session, frame_gen))
            patched.coloured = (patched.image, lut, frames.colour(patched.image, lut))
            frame.values = None
            frame = patched
            busy += time.perf_counter() - t0
            longest.append(time.perf_counter() - t0)
            stepped += 1
        time.sleep(max(0.0, clock.interval_ms() / 1000 - (time.perf_counter() - now)))
    elapsed = time.perf_counter() - begin
    due = int(elapsed * args.speed)
    print(
        f"played at {args.speed:g} bars/s for {elapsed:.1f} s (a {clock.interval_ms()} ms timer): {stepped} of {due} "
        f"bars stepped and patched, {clock.played - stepped} skipped after a stall (more than {clock.max_burst} bars "
        f"behind), {due - clock.played} not yet due at the end; longest step {max(longest) * 1000:.0f} ms; worker "
        f"busy {busy / elapsed:.0%} of the time"
    )

    # ---------------------------------------------------------------- back
    back_s, rebuild_s, restore_s = [], [], []
    saved = checkpoint(eng)  # as at the last multiple of CHECKPOINT_EVERY, on average half a period back
    cp_bytes = sum(g.a.nbytes for g in saved._lv.values()) + sum(g.a.nbytes for g in saved._bars.values())
    for _ in range(args.backs):
        n = session.bars
        t0 = time.perf_counter()
        session.step_back()
        back_s.append(time.perf_counter() - t0)
        if len(rebuild_s) < 5:
            t0 = time.perf_counter()
            LiquidationEngine.build(candles.take(slice(0, n - 1)), params=params)
            rebuild_s.append(time.perf_counter() - t0)
        if len(restore_s) < 5:
            t0 = time.perf_counter()
            restored = checkpoint(saved)
            restore_s.append(time.perf_counter() - t0)
            del restored
    b, rb, rs = (statistics.median(x) for x in (back_s, rebuild_s, restore_s))

    # ---------------------------------------------------------------- jumps
    here = session.bars
    day, week, month = 288, 7 * 288, 30 * 288

    def jump(to: int, *, appends: bool | None = None, repeat: int = 3) -> float:
        """Median time of a jump from `here` to bar `to` (appends: force appending or rebuilding)."""
        out = []
        for _ in range(repeat):
            session.seek(here)
            if appends is not None:
                session.append_vs_rebuild = 10**9 if appends else 0
            t0 = time.perf_counter()
            session.seek(to)
            out.append(time.perf_counter() - t0)
            session.append_vs_rebuild = APPEND_VS_REBUILD
        return statistics.median(out)

    results = {
        "back a day": jump(here - day),
        "back a week": jump(here - week),
        "back to the first month": jump(month),
        "forward a day, appended": jump(here + day, appends=True),
        "forward a day, rebuilt": jump(here + day, appends=False),
        "forward a month": jump(here + month),
        "to the end of the year": jump(YEAR_BARS),
    }
    print(
        "jumps (from the middle of the year): " + "; ".join(f"{k} {ms(v):.0f} ms" for k, v in results.items())
    )
    per_append = results["forward a day, appended"] / day
    via_checkpoint = rs + per_append * CHECKPOINT_EVERY / 2
    print(
        f"step back: truncate {ms(b):.1f} ms; rebuild {ms(rb):.0f} ms; checkpoint every {CHECKPOINT_EVERY} bars "
        f"{ms(via_checkpoint):.0f} ms (restore a copy {ms(rs):.0f} ms + {CHECKPOINT_EVERY // 2} appends), "
        f"{cp_bytes / 2**20:.0f} MB a checkpoint"
    )
    print(
        f"forward jumps: a rebuild of {here + day:,} bars costs {results['forward a day, rebuilt'] / per_append:,.0f} "
        f"appends, i.e. one append ≈ a rebuild of {per_append / results['forward a day, rebuilt'] * (here + day):,.0f} "
        f"bars (APPEND_VS_REBUILD = {APPEND_VS_REBUILD})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

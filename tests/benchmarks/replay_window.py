"""Replay in the real window (not part of the test run):
python tests/benchmarks/replay_window.py [--sample btcusdt-5m-2025-10-10] [--start "2025-10-10 12:00"]
    [--speed 100] [--play-s 4] [--at "2025-10-10 21:30"] [--shot replay.png] [--screener]

The app's own window (the workspace and its tab, built by the app's pane factory on `--sample`, as
`liqdesk --sample NAME` opens it) on the display it finds (an X display, else offscreen). From --start it plays
at --speed bars per second for --play-s seconds and prints:

- bars played against the bars due (speed × time): does stepping keep up;
- the UI thread's time per step (the candle, the layers, the bar's real liquidations, its prices to the alerts)
  and the worker's time per step (the session's append and the patched frame: engine, heatmap column, map,
  magnets, bubbles, colouring), medians and p95;
- frames put on screen per second and the age of the frame on screen against the replay's instant when
  playing stops (bars behind).

Then it jumps to --at (a seek), waits for the frame and, with --shot, saves the workspace as a PNG; with
--screener the screener dock is open in the shot. The machine is shared: compare figures within one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", default="btcusdt-5m-2025-10-10")
    ap.add_argument("--start", default="2025-10-10 12:00")
    ap.add_argument("--speed", type=float, default=100.0)
    ap.add_argument("--play-s", type=float, default=4.0)
    ap.add_argument("--at", default="2025-10-10 21:30")
    ap.add_argument("--shot", type=Path)
    ap.add_argument("--screener", action="store_true")
    ap.add_argument("--size", default="1600x1000")
    ap.add_argument("--range", default="3d", help="the view's range (the toolbar's Range)")
    args = ap.parse_args()
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from PySide6 import QtWidgets

    from liqdesk.app import desktop
    from liqdesk.app.live_source import LiveConfig
    from liqdesk.ui.session import wait_until_drawn
    from liqdesk.ui.theme import configure_pyqtgraph
    from liqdesk.ui.workspace import Workspace

    configure_pyqtgraph()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["liqdesk"])
    config = LiveConfig(offline=True, sample=args.sample)
    ws = Workspace(lambda spec, settings: desktop._make_pane(config, spec, settings, None), persist=False)
    width, height = (int(x) for x in args.size.split("x"))
    ws.resize(width, height)
    ws.show()
    w = ws.current
    assert wait_until_drawn(w, 60.0), "the first frame did not arrive"
    w.set_range(args.range)
    w.toolbar.show_settings(w.settings)
    if args.screener:
        ws.screener.toggle_action.trigger()
        ws.resizeDocks([ws.screener], [300], __import__("PySide6").QtCore.Qt.Orientation.Vertical)

    worker_ms: list[float] = []
    frames_shown: list[float] = []
    w.frame_applied.connect(lambda _f: frames_shown.append(time.perf_counter()))
    real_step = w.worker.step_engine

    def timed_step(generation, move, bars=1):  # type: ignore[no-untyped-def]
        def timed():  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            engine = move()
            worker_ms.append((time.perf_counter() - t0) * 1000.0)
            return engine

        return real_step(generation, timed, bars)

    w.worker.step_engine = timed_step  # the session's append on the worker (the patch is timed below)

    assert w.replay.start_at_text(args.start)
    assert wait_until_drawn(w, 30.0)
    # the whole worker job (append + patched frame + colouring): its time is the gap the worker is busy
    busy: list[float] = []
    real_submit = w.worker.executor.submit

    def submit(fn, *, supersede=None):  # type: ignore[no-untyped-def]
        def timed():  # type: ignore[no-untyped-def]
            t0 = time.perf_counter()
            try:
                return fn()
            finally:
                busy.append((time.perf_counter() - t0) * 1000.0)

        return real_submit(timed, supersede=supersede)

    w.worker.executor.submit = submit
    w.replay.set_speed(args.speed)
    bars0 = w.replay.bars
    w.replay.step_times_ms.clear()
    frames_shown.clear()
    t0 = time.perf_counter()
    w.replay.play()
    while time.perf_counter() - t0 < args.play_s and w.replay.playing:
        app.processEvents()
        time.sleep(0.0005)
    elapsed = time.perf_counter() - t0
    w.replay.pause()
    played = w.replay.bars - bars0
    behind = w.replay.bars - (w.frame.request.end_bar if w.frame is not None else 0)
    wait_until_drawn(w, 30.0)
    ui = w.replay.step_times_ms

    def q(xs: list[float], p: float) -> float:
        return sorted(xs)[min(int(p * len(xs)), len(xs) - 1)] if xs else float("nan")

    print(
        f"display: {os.environ.get('DISPLAY') or 'offscreen'}; sample {args.sample}; {len(w.replay.history)} bars"
    )
    print(f"played {played} bars in {elapsed:.2f} s at {args.speed:g} bars/s (due {int(elapsed * args.speed)}); "
          f"frame on screen {behind} bar(s) behind the replay when it stopped")  # fmt: skip
    print(
        f"UI thread per step: median {statistics.median(ui):.2f} ms, p95 {q(ui, 0.95):.2f} ms ({len(ui)} steps)"
    )
    print(
        f"worker per step (session append): median {statistics.median(worker_ms):.2f} ms, p95 {q(worker_ms, 0.95):.2f} ms"
    )
    jobs = busy
    print(f"worker jobs while playing (steps: append + patch + colour; full frames as the view scrolls): median {statistics.median(jobs):.2f} ms, "
          f"p95 {q(jobs, 0.95):.2f} ms; worker busy {sum(busy) / 1000.0 / elapsed:.0%} of the time")  # fmt: skip
    print(f"frames on screen while playing: {len(frames_shown) / elapsed:.0f} per second")

    assert w.replay.start_at_text(args.at)
    assert wait_until_drawn(w, 30.0)
    w.replay.step()  # one bar through the play path, the patched frame on screen
    assert wait_until_drawn(w, 30.0)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    print(f"at {w.replay.state_text()}")
    if args.shot:
        image = ws.grab().toImage()
        image.save(str(args.shot))
        print(f"saved {args.shot}")
    ws.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

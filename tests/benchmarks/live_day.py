"""A live trading day, replayed at high speed through the real app: the proof that the chart follows the market.

The project's fake Binance USDⓈ-M (tests/fake_exchange, real wire formats, the real ccxt client pointed at it)
serves a recorded week of 5-minute BTCUSDT bars with open interest (2024-05-10 → 05-16, tests/data/README.md) and
replays its last ``--bars`` bars (default 300: 25 hours) at ``--rate`` bars per second, each bar as partial
revisions moving from its open towards the recorded bar, then its final kline. No liquidations were recorded
that week, so the liquidation tape is SYNTHESISED on the recorded prices (tests/fake_exchange/data.py:
``synthetic_force_orders``) and pushed on the forceOrder stream as the replay clock passes each event.

The window is the real one (``liqdesk --exchange binanceusdm --symbol BTC/USDT:USDT --timeframe 5m
--ccxt-options …``, through ``liqdesk.app.desktop.run``): on the offscreen platform, or on the X display in
``DISPLAY`` when there is one. While the day replays the harness pans back in time (the Left key, to the chart)
``--pans`` times, checks that the view stays put while bars arrive, and presses End, then checks that the chart
follows again. At the end it saves a screenshot of the window and prints the alert approaches and one line:

    live day: BARS bars, errors E, follow ok|LOST, alerts A, frame p95 X ms, patch p99 Y ms, memory +M MB

E: model, frame and feed errors shown to the user (model errors in the status bar, live-data errors, status
events of level error, errors logged by the app). follow: at the end the newest bar and the last price are in
view and the liquidation map's time is the newest bar's (and after every End the chart followed again).
A: alerts fired (magnet, line, liquidation); each magnet alert is matched to an approach (price coming within the
alert distance of one cluster after being beyond the re-arm distance; clusters tracked by side and a centre that
moves less than their width, from what the alert rule was given) and more than one per approach is a repeat.
frame: UI-thread time per chart repaint (the repaint plus the live-bar and frame work that led to it).
patch: from a live bar reaching the window to the repaint showing its heatmap column and map.
M: resident memory growth from the first replayed bar to the end.

    .venv/bin/python tests/benchmarks/live_day.py [--bars 300 --rate 5 --revisions 3 --pans 3 --shot day.png]

Targets: E = 0, follow ok, at most one alert per approach, frame p95 ≤ 33 ms, patch p99 ≤ 50 ms, M ≤ 20.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

KLINES = "btcusdt@kline_5m"
LIQS = "btcusdt@forceOrder"


@dataclass
class Approach:
    side: int
    price: float
    width: float
    start_ms: int
    closest_pct: float
    alerts: list[str] = field(default_factory=list)


@dataclass
class DayReport:
    bars: int = 0
    errors: list[str] = field(default_factory=list)
    follow_ok: bool = False
    follow_notes: list[str] = field(default_factory=list)
    alerts: list[Any] = field(default_factory=list)  # AlertEvent
    alert_data_ms: list[int] = field(default_factory=list)  # the replay time of each alert (newest bar open)
    approaches: list[Approach] = field(default_factory=list)
    repeated: list[str] = field(
        default_factory=list
    )  # alerts beyond the first of an approach, or unexplained
    frame_ms: list[float] = field(default_factory=list)
    patch_ms: list[float] = field(default_factory=list)
    memory_mb: float = 0.0
    screenshot: Path | None = None
    wall_s: float = 0.0

    @staticmethod
    def pct(values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        s = sorted(values)
        return s[min(len(s) - 1, int(q * len(s)))]

    def line(self) -> str:
        return (f"live day: {self.bars} bars, errors {len(self.errors)}, follow {'ok' if self.follow_ok else 'LOST'}, "
                f"alerts {len(self.alerts)}, frame p95 {self.pct(self.frame_ms, 0.95):.1f} ms, "
                f"patch p99 {self.pct(self.patch_ms, 0.99):.1f} ms, memory {self.memory_mb:+.1f} MB")  # fmt: skip

    def targets_met(self) -> bool:
        return (not self.errors and self.follow_ok and not self.repeated
                and self.pct(self.frame_ms, 0.95) <= 33 and self.pct(self.patch_ms, 0.99) <= 50
                and self.memory_mb <= 20)  # fmt: skip


class _Errors(logging.Handler):
    """Errors the app logs (loop exception handler, worker failures, feed errors)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.name}: {record.getMessage()[:300]}"
        if record.exc_info:
            text += "\n" + "".join(__import__("traceback").format_exception(*record.exc_info))[-6000:]
        self.messages.append(text)


class _Probe:
    """Timing and alert hooks on one window (instance attributes the app calls through, and extra slots)."""

    def __init__(self, w: Any) -> None:
        from PySide6 import QtCore

        from liqdesk.ui.chart import ChartWidget

        self.w = w
        self.active = False
        self.frame_ms: list[float] = []
        self.patch_ms: list[float] = []
        self.ui_s = 0.0  # live UI work since the last repaint
        # Each live bar sent to the worker: (its number, when the window got it, the chart following then),
        # until a frame that includes it is on the chart; then its time until that frame is painted.
        self.bars_sent: deque[tuple[int, float, bool]] = deque()
        self.patched: list[float] = []
        self.submitted = 0  # bar jobs submitted (UI thread)
        self.started = 0  # bar jobs started (worker thread)
        self.frame_bars: dict[int, int] = {}  # id(frame) → bar jobs started when the worker made it
        self.to_paint_ms: list[float] = []  # from a patched frame set on the chart to the end of its paint
        self._t_applied = 0.0
        self._t_bar = 0.0
        self.record: list[tuple[int, float, list[Any], list[tuple[str, str, float]]]] = []
        self.data_time: dict[int, int] = {}  # id(alert) → open time of the newest bar when it fired

        apply_bar, apply_frame, on_price = w.apply_bar, w.chart.apply_frame, w.alerts.on_price

        worker_apply_bar = w.worker.apply_bar

        def timed_apply_bar(*a: Any, **k: Any) -> None:
            t = self._t_bar = time.perf_counter()
            apply_bar(*a, **k)
            self.ui_s += time.perf_counter() - t

        def counted_worker_apply_bar(*a: Any, **k: Any) -> None:
            self.submitted += 1
            if self.active:
                self.bars_sent.append((self.submitted, self._t_bar, w.chart.newest_in_view()))
            w.worker.run_in_order(self._job_started)
            worker_apply_bar(*a, **k)

        def timed_apply_frame(frame: Any) -> None:
            t = time.perf_counter()
            apply_frame(frame)
            self.ui_s += time.perf_counter() - t
            shown = self.frame_bars.pop(id(frame), 0)
            while self.bars_sent and self.bars_sent[0][0] <= shown:
                _, t_bar, following = self.bars_sent.popleft()
                if following:  # a bar the chart is meant to show at once
                    self.patched.append(t_bar)
                    self._t_applied = time.perf_counter()

        def recorded_on_price(price: float, time_ms: int) -> list[Any]:
            magnets = w.lines.magnets()
            out = on_price(price, time_ms)
            fired = []
            data_ms = int(w.candles.open_time[-1]) if w.candles is not None and len(w.candles) else time_ms
            for e in out:
                c = next((c for c in w.alerts.magnet_rule.clusters if c.key == e.key), None)
                fired.append((e.key, e.kind, c.price if c is not None else float("nan")))
                self.data_time[id(e)] = data_ms
            if self.active:
                self.record.append((data_ms, price, magnets, fired))  # the replay's time, not the wall clock
            return out

        w.apply_bar = timed_apply_bar
        w.worker.apply_bar = counted_worker_apply_bar
        w.chart.apply_frame = timed_apply_frame
        w.alerts.on_price = recorded_on_price
        # in the worker thread, as the worker sends a frame: which bars it includes
        w.worker.frame_ready.connect(self._frame_made, QtCore.Qt.ConnectionType.DirectConnection)
        original_paint = ChartWidget.paintEvent
        probe = self

        def timed_paint(chart: Any, ev: Any) -> None:
            t = time.perf_counter()
            original_paint(chart, ev)
            if chart is probe.w.chart:
                probe._painted(t, time.perf_counter())

        ChartWidget.paintEvent = timed_paint  # type: ignore[method-assign]
        self._restore = lambda: setattr(ChartWidget, "paintEvent", original_paint)

    def _job_started(self) -> None:
        self.started += 1

    def _frame_made(self, _generation: int, frame: Any) -> None:
        self.frame_bars[id(frame)] = self.started

    def _painted(self, t0: float, t1: float) -> None:
        if not self.active:
            self.ui_s = 0.0
            return
        self.frame_ms.append((t1 - t0 + self.ui_s) * 1000.0)
        self.ui_s = 0.0
        for t in self.patched:
            self.patch_ms.append((t1 - t) * 1000.0)
        if self.patched:
            self.to_paint_ms.append((t1 - self._t_applied) * 1000.0)
        self.patched.clear()

    def close(self) -> None:
        self._restore()


def find_approaches(
    record: list[tuple[int, float, list[Any], list[tuple[str, str, float]]]],
    within_pct: float,
    min_usd: float,
    rearm_factor: float,
) -> tuple[list[Approach], list[str]]:
    """Approaches from what the alert rule was given (price, magnets), and the magnet alerts that repeat one."""
    tracks: list[dict[str, Any]] = []  # side, price, width, near (bool), approach
    approaches: list[Approach] = []
    repeated: list[str] = []
    for t, price, magnets, fired in record:
        seen: set[int] = set()
        for m in magnets:
            if m.usd < min_usd:
                continue
            width = max(m.high - m.low, m.price * 1e-4)
            match = min(
                (tr for tr in tracks if tr["side"] == m.side and id(tr) not in seen
                 and abs(tr["price"] - m.price) < max(tr["width"], width)),
                key=lambda tr: abs(tr["price"] - m.price), default=None,
            )  # fmt: skip
            if match is None:
                match = {"side": m.side, "near": False, "approach": None}
                tracks.append(match)
            match.update(price=m.price, width=width)
            seen.add(id(match))
            dist = abs(m.price - price) / price * 100
            if dist <= within_pct and not match["near"]:
                match["near"] = True
                match["approach"] = Approach(m.side, m.price, width, t, dist)
                approaches.append(match["approach"])
            elif dist > within_pct * rearm_factor:
                match["near"] = False
            if match["approach"] is not None and match["near"]:
                match["approach"].closest_pct = min(match["approach"].closest_pct, dist)
        far = within_pct * rearm_factor
        tracks = [tr for tr in tracks if id(tr) in seen or abs(tr["price"] - price) / price * 100 <= far]
        for key, kind, cluster_price in fired:
            if kind != "magnet":
                continue
            near = [tr for tr in tracks if tr["approach"] is not None and tr["near"]
                    and abs(tr["price"] - cluster_price) < tr["width"]]  # fmt: skip
            if not near:
                repeated.append(f"{key}: no approach of a cluster at {cluster_price:,.0f}")
                continue
            a = min(near, key=lambda tr: abs(tr["price"] - cluster_price))["approach"]
            a.alerts.append(key)
            if len(a.alerts) > 1:
                repeated.append(
                    f"{key}: approach of {a.price:,.0f} at {_utc(a.start_ms)} alerted {len(a.alerts)}×"
                )
    return approaches, repeated


def _serve(conn: Any, now: Any, live_index: int, bars: int) -> None:
    """The fake exchange in its own process (a remote server's work must not share the app's GIL): commands
    and progress over ``conn``, its clock in the shared ``now``."""
    sys.path.insert(0, str(ROOT))
    from tests.fake_exchange import FakeBinance
    from tests.fake_exchange.data import klines_5m, synthetic_force_orders

    async def main() -> None:
        k = klines_5m()
        server = FakeBinance(
            ping_interval=1.0, klines=k, oi_shift_ms=0, revision_path=True, live_index=live_index
        )
        await server.start()
        tape = synthetic_force_orders(k, live_index - 1, live_index + bars)

        async def clock() -> None:
            while True:
                now.value = server.now_ms
                await asyncio.sleep(0.002)

        ticker = asyncio.ensure_future(clock())
        conn.send(("ready", server.ccxt_options(), len(tape)))
        loop = asyncio.get_running_loop()
        replay: asyncio.Future[int] | None = None
        try:
            while True:
                if replay is not None and replay.done():
                    conn.send(("done", replay.result()))
                    replay = None
                if not await loop.run_in_executor(None, conn.poll, 0.02):
                    continue
                cmd, *rest = conn.recv()
                if cmd == "subscribed":
                    await server.wait_subscribed(rest[0], rest[1])
                    conn.send(("subscribed", rest[0]))
                elif cmd == "replay":
                    n, rate, revisions = rest
                    replay = asyncio.ensure_future(server.replay(n, rate, revisions=revisions, tape=tape,
                                                                 on_bar=lambda i: conn.send(("bar", i))))  # fmt: skip
                elif cmd == "close":
                    break
        finally:
            ticker.cancel()
            if replay is not None:
                replay.cancel()
            await server.close()

    asyncio.run(main())


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def run_day(
    bars: int = 300,
    bars_per_s: float = 5.0,
    *,
    revisions: int = 3,
    pans: int = 3,
    hold_bars: int = 12,
    screenshot: Path | None = None,
    say: Callable[[str], None] = print,
) -> DayReport:
    """Replay ``bars`` bars through the real app and measure; see the module docstring."""
    import multiprocessing

    from PySide6 import QtCore
    from PySide6.QtTest import QTest

    from liqdesk.app import desktop
    from liqdesk.app.cli import build_parser
    from liqdesk.feeds.history import RetryPolicy
    from liqdesk.feeds.live import LiveSettings
    from tests.benchmarks.live import rss_mb
    from tests.fake_exchange.data import klines_5m

    report = DayReport()
    k = klines_5m()
    bars = min(bars, len(k.open_time) - 700)  # history first: the model needs a warm-up
    live_index = len(k.open_time) - bars

    tmp = tempfile.TemporaryDirectory(prefix="liqdesk-day-")
    saved_env = {v: os.environ.get(v) for v in ("LIQDESK_CONFIG_DIR", "LIQDESK_DATA_DIR")}
    os.environ["LIQDESK_CONFIG_DIR"] = str(Path(tmp.name) / "config")
    os.environ["LIQDESK_DATA_DIR"] = str(Path(tmp.name) / "data")
    errors = _Errors()
    logging.getLogger("liqdesk").addHandler(errors)

    ctx = multiprocessing.get_context("spawn")
    conn, child_conn = ctx.Pipe()
    server_now = ctx.Value("q", 0, lock=False)
    server = ctx.Process(target=_serve, args=(child_conn, server_now, live_index, bars), name="fake-binance",
                         daemon=True)  # fmt: skip
    server.start()
    if not conn.poll(60):
        raise RuntimeError("the fake exchange did not start")
    _, ccxt_options, n_tape = conn.recv()
    args = build_parser().parse_args(
        ["--exchange", "binanceusdm", "--symbol", "BTC/USDT:USDT", "--timeframe", "5m",
         "--ccxt-options", json.dumps(ccxt_options)]
    )  # fmt: skip
    # Time runs ~1,500× faster than real: the open-interest poll and the watchdogs scaled to it.
    feed = LiveSettings(oi_poll_s=0.25, candle_stale_s=5.0, candle_silent_s=15.0, liquidation_stale_s=10.0,
                        backoff_base_s=0.1, backoff_cap_s=1.0, rate_limit_base_s=0.2,
                        rest=RetryPolicy(attempts=4, base_s=0.05, cap_s=0.5, rate_limit_base_s=0.1))  # fmt: skip
    config = replace(desktop.config_from_args(args), feed=feed)
    state: dict[str, Any] = {}

    def newest_in_view(w: Any) -> bool:
        n = len(w.candles)
        x0, x1 = w.chart.visible_bars()
        y0, y1 = w.chart.visible_prices()
        return x0 <= n - 1 <= x1 and y0 <= float(w.candles.close[-1]) <= y1

    async def until(cond: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            await asyncio.sleep(0.01)

    async def eventually(cond: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def drive(w: Any, c: Any) -> None:
        t_start = time.perf_counter()
        try:
            await until(
                lambda: c.mode == "live" and w.frame is not None and w.context.model_ready, 120, "live"
            )
            await until(lambda: w.worker.wait_idle(0), 60, "first frame")
            for stream in (KLINES, LIQS):
                conn.send(("subscribed", stream, 20))
                await until(lambda: conn.poll(), 25, f"{stream} subscribed")
                conn.recv()
            probe = _Probe(w)
            state["probe"] = probe
            say(f"live: {len(w.candles):,} bars of history ({w.status.source_label.text()}); replaying {bars} bars "
                f"({bars * 5 / 60:.1f} h) at {bars_per_s:g} bars/s, {n_tape:,} synthetic liquidations")  # fmt: skip
            first_bar = len(w.candles)
            probe.active = True
            state["rss0"] = rss_mb()
            conn.send(("replay", bars, bars_per_s, revisions))
            marks = [first_bar + bars * (i + 1) // (pans + 1) for i in range(pans)]
            next_report = first_bar + bars // 10
            done: list[int] = []
            while not done:
                while conn.poll():
                    msg = conn.recv()
                    if msg[0] == "done":
                        done.append(msg[1])
                n = len(w.candles)
                if n >= next_report:
                    say(f"  {n - first_bar:4d} bars · alerts {len(w.alerts.events)} · errors "
                        f"{len(w.errors_shown) + len(c.errors)} · frames {len(probe.frame_ms)} · "
                        f"RSS {rss_mb():.0f} MB")  # fmt: skip
                    next_report += bars // 10
                if marks and n >= marks[0] and n < first_bar + bars - hold_bars - 4:
                    marks.pop(0)
                    await pan_away_and_back(w, n)
                await asyncio.sleep(0.02)
            report.bars = done[0]
            last_t = int(k.open_time[live_index + report.bars - 1])
            await until(lambda: int(w.candles.open_time[-1]) >= last_t, 30, "the last bar")
            await until(lambda: w.worker.wait_idle(0), 30, "worker idle")
            await asyncio.sleep(0.3)
            await until(lambda: w.worker.wait_idle(0), 30, "worker idle")
            await asyncio.sleep(0.05)
            probe.active = False
            end_ok = newest_in_view(w)
            map_ok = w.frame is not None and int(w.frame.lmap.time_ms) == int(w.candles.open_time[-1])
            if not end_ok:
                report.follow_notes.append("at the end the newest bar or the last price is out of view")
            if not map_ok:
                report.follow_notes.append("at the end the map's time is not the newest bar's")
            report.follow_ok = end_ok and map_ok and not report.follow_notes
            report.memory_mb = rss_mb() - state["rss0"]
            report.errors = list(w.errors_shown) + list(c.errors)
            report.errors += [s for s in c.status_log if s.startswith("error:")]
            report.alerts = list(w.alerts.events)
            rule = w.alerts.magnet_rule
            state["rule"] = (rule.within_pct, rule.min_usd, rule.rearm_factor)
            state["candles"] = (len(w.candles), float(w.candles.close[-1]), int(w.candles.open_time[-1]))
            if screenshot is not None:
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                w.window().grab().save(str(screenshot))
                report.screenshot = screenshot
        finally:
            report.wall_s = time.perf_counter() - t_start
            w.window().close()

    async def pan_away_and_back(w: Any, n: int) -> None:
        w.chart.setFocus()
        for _ in range(6):
            QTest.keyClick(w.chart, QtCore.Qt.Key.Key_Left)
        await asyncio.sleep(0.1)
        view = w.chart.visible_bars()
        away = not newest_in_view(w)
        await until(lambda: len(w.candles) >= n + hold_bars, 60, "bars while panned away")
        kept = w.chart.visible_bars() == view
        button = w.chart.live_button.isVisible()
        QTest.keyClick(w.chart, QtCore.Qt.Key.Key_End)
        await asyncio.sleep(0.05)
        back = newest_in_view(w)
        m = len(w.candles)
        await until(lambda: len(w.candles) >= m + 3, 60, "bars after End")
        # Following: the newest bar in view and the frame on screen (heatmap column and map) at it, once the UI
        # thread has taken in what the worker sent (how soon is the patch latency, measured apart).
        follows = await eventually(
            lambda: newest_in_view(w) and w.frame is not None and w.frame.lmap.bar == len(w.candles) - 1, 5.0
        )
        say(f"  pan at bar {n}: away {away}, view kept {kept}, Go-live button {button}; End → live edge {back}, "
            f"following {follows}")  # fmt: skip
        if not (away and kept and button and back and follows):
            report.follow_notes.append(f"pan at bar {n}: away {away} kept {kept} button {button} back {back} "
                                       f"follows {follows}")  # fmt: skip

    try:
        desktop.run(args, clock=lambda: int(server_now.value), config=config, after_start=drive)
    finally:
        probe = state.get("probe")
        if probe is not None:
            probe.close()
            report.frame_ms, report.patch_ms = probe.frame_ms, probe.patch_ms
            report.alert_data_ms = [probe.data_time.get(id(e), e.time_ms) for e in report.alerts]
            if "rule" in state:
                report.approaches, report.repeated = find_approaches(probe.record, *state["rule"])
        logging.getLogger("liqdesk").removeHandler(errors)
        report.errors += [e for e in errors.messages if e not in report.errors]
        conn.send(("close",))
        server.join(10)
        if server.is_alive():
            server.terminate()
        for v, value in saved_env.items():
            if value is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = value
        tmp.cleanup()
    large = [e for e in report.alerts if e.kind == "liquidation"]
    if len({e.key for e in large}) != len(large):
        report.repeated.append("a large liquidation alerted twice")
    if "candles" in state:
        n, close, t = state["candles"]
        say(f"end: {n:,} bars, last close {close:,.1f} at {_utc(t)}; wall {report.wall_s:.0f} s")
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=300, help="bars to replay (5 minutes each; 288 = 24 h)")
    ap.add_argument("--rate", type=float, default=5.0, help="bars per second")
    ap.add_argument("--revisions", type=int, default=3, help="partial revisions pushed per bar")
    ap.add_argument("--pans", type=int, default=3, help="pans back in time, each followed by End")
    ap.add_argument("--shot", type=Path, default=Path(tempfile.gettempdir()) / "liqdesk_live_day.png",
                    help="screenshot of the window at the end of the day")  # fmt: skip
    args = ap.parse_args()
    from PySide6 import QtWidgets

    from liqdesk.ui.theme import configure_pyqtgraph

    configure_pyqtgraph()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["liqdesk-live-day"])
    r = run_day(args.bars, args.rate, revisions=args.revisions, pans=args.pans, screenshot=args.shot)
    del app
    magnets = [e for e in r.alerts if e.kind == "magnet"]
    print(f"alerts: {len(magnets)} magnet, {sum(e.kind == 'liquidation' for e in r.alerts)} large liquidation, "
          f"{sum(e.kind == 'cross' for e in r.alerts)} line")  # fmt: skip
    print(f"approaches of a magnet (price within the alert distance of one cluster): {len(r.approaches)}")
    for i, a in enumerate(r.approaches, 1):
        side = "long" if a.side == 1 else "short"
        print(f"  {i:2d}. {side} cluster {a.price:,.0f} (width {a.width:,.0f}) from {_utc(a.start_ms)}, closest "
              f"{a.closest_pct:.2f} %, alerts {len(a.alerts)}")  # fmt: skip
    for e, t in zip(r.alerts, r.alert_data_ms, strict=True):
        print(f"  alert at {_utc(t)} (replay time): {e.message}")
    for line in r.repeated:
        print(f"REPEATED: {line}")
    for line in r.errors:
        print(f"ERROR: {line}")
    for line in r.follow_notes:
        print(f"FOLLOW: {line}")
    if r.screenshot is not None:
        print(f"screenshot: {r.screenshot}")
    print(f"frames {len(r.frame_ms)} (median {r.pct(r.frame_ms, 0.5):.1f} ms), patches {len(r.patch_ms)} "
          f"(median {r.pct(r.patch_ms, 0.5):.1f} ms); targets: errors 0, follow ok, ≤ 1 alert per approach, "
          f"frame p95 ≤ 33 ms, patch p99 ≤ 50 ms, memory ≤ +20 MB")  # fmt: skip
    print(r.line())
    return 0 if r.targets_met() else 1


if __name__ == "__main__":
    raise SystemExit(main())

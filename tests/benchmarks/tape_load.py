"""Load test: 4 venues × 20 symbols streamed at high speed into PostgreSQL by two concurrent `liqdesk record`
processes, with faults; then one recorder is killed with SIGKILL and the other carries on. Not collected by pytest.

The fake exchanges (tests/fake_exchange: FakeBinance, FakeBybit, FakeOkx, FakeHyperliquid, each with ``coins=`` the
20 coins of ``venue_data.LOAD_COINS``; only BTC has real bars, every other coin is served with BTC's recorded bars,
prices scaled by a fixed factor per coin) run in this process, on the real clock's current hour (``wall_clock``),
and each second close ``--bars-per-second`` bars on every market (the final bar and a revision of the next one on
the kline streams) and push ``--liquidations-per-bar`` liquidations per market on the three venues that have a
liquidation stream (Hyperliquid publishes none). Two recorders (separate processes: `python -m liqdesk record
--exchange binanceusdm,bybit,okx,hyperliquid --symbols <20> --timeframe 1h --store postgresql://…`) write to one
database: a throwaway cluster (tests/_postgres.py), or ``--store URL``.

Faults: HTTP 500 and 429 answers on the candle endpoints; every websocket of one venue dropped (liquidation pushes of
that venue pause while it reconnects, as an exchange's stream is simply missed while disconnected; bars keep
closing and must come back by REST); duplicates (a liquidation pushed twice, a closed bar pushed again, a stale
revision). At ``--kill-at`` of the run one recorder is killed with SIGKILL and the other carries on alone.

At the end what the fakes served is compared with what the store holds: liquidations (every event pushed while a
recorder listened, by venue, symbol and the event's own time: lost, duplicated, unexpected) and candles (every bar
closed from the first stored one to the last closed one, with its close price: lost, wrong, unexpected; the
primary key makes a duplicate row impossible, so "duplicated" counts bars stored twice under different keys). Printed:
rows per second the store took while streaming, events per second served, each recorder's memory (RSS at the start
of streaming, peak, end), the kill and what came after it.

    .venv/bin/python tests/benchmarks/tape_load.py [--seconds 180] [--bars-per-second 1] [--liquidations-per-bar 3]
        [--coins 20] [--kill-at 0.6] [--store postgresql://…]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from liqdesk.feeds.store import open_store  # noqa: E402
from tests._postgres import PgCluster  # noqa: E402
from tests.fake_exchange import FakeBinance  # noqa: E402
from tests.fake_exchange.bybit import FakeBybit  # noqa: E402
from tests.fake_exchange.data import force_order_event  # noqa: E402
from tests.fake_exchange.hyperliquid import FakeHyperliquid  # noqa: E402
from tests.fake_exchange.okx import FakeOkx  # noqa: E402
from tests.fake_exchange.venue_data import (  # noqa: E402
    LOAD_COINS,
    RecordedLiquidation,
    bar_values,
    binance_klines_2025,
    binance_year_1h,
    coin_scale,
)

VENUES = ("binanceusdm", "bybit", "okx", "hyperliquid")
KLINE_PATHS = {"binanceusdm": ["/fapi/v1/klines"], "bybit": ["/v5/market/kline"],
               "okx": ["/api/v5/market/candles", "/api/v5/market/history-candles"],
               "hyperliquid": ["candleSnapshot"]}  # fmt: skip


T0 = time.monotonic()  # the diagnosis dates everything in seconds since the harness started


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} {time.monotonic() - T0:+7.1f}] {text}", flush=True)


def rel(t: float | None) -> str:
    return "never" if t is None else f"+{t - T0:.1f} s"


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB; (0, 0) when it is gone."""
    try:
        fields = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
    except OSError:
        return 0.0, 0.0
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Recorder:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    rss: list[float] = field(default_factory=list)
    peak: float = 0.0
    at_stream_start: float = 0.0
    cpu_start: float = 0.0
    cpu_last: float = 0.0
    cpu_until: float = 0.0  # monotonic time of cpu_last
    lines: list[tuple[float, str]] = field(default_factory=list)  # its stderr, with the time each line came
    stopped_at: float | None = None  # when it was killed or told to stop

    def alive_at(self, t: float) -> bool:
        return self.stopped_at is None or t < self.stopped_at


def pump_stderr(proc: subprocess.Popen[bytes], path: Path, lines: list[tuple[float, str]]) -> None:
    """Copy a recorder's stderr into ``path`` and ``lines``, each line dated on arrival (a thread)."""
    assert proc.stderr is not None
    with path.open("w") as out:
        for raw in proc.stderr:
            t = time.monotonic()
            text = raw.decode(errors="replace").rstrip("\n")
            lines.append((t, text))
            out.write(f"{t - T0:+9.3f} {text}\n")
            out.flush()


class Load:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.coins = list(LOAD_COINS[: args.coins])
        # enough bars in the future of the real current hour for the run (and 500 of history before it)
        n_2025, n_year = len(binance_klines_2025()), len(binance_year_1h())
        future = int(args.seconds * args.bars_per_second) + 60
        if future > n_2025 - 600:
            raise SystemExit(
                f"at most {(n_2025 - 660) / args.bars_per_second:.0f} s at {args.bars_per_second:g} bar/s"
            )
        self.fakes: dict[str, Any] = {
            "binanceusdm": FakeBinance(
                ping_interval=5.0, coins=self.coins, wall_clock=True, live_index=n_2025 - future
            ),  # fmt: skip
            "bybit": FakeBybit(
                ping_interval=5.0, coins=self.coins, wall_clock=True, live_index=n_2025 - future
            ),
            "okx": FakeOkx(ping_interval=5.0, coins=self.coins, wall_clock=True, live_index=n_2025 - future),
            "hyperliquid": FakeHyperliquid(
                ping_interval=5.0,
                coins=self.coins,
                wall_clock=True,
                live_index=n_year - future,
                weight_limit=10**9,
            ),  # fmt: skip
        }
        self.served: dict[tuple[str, str], set[int]] = defaultdict(set)  # (exchange, symbol) → event times
        self.pushed_twice = 0
        self.bars_closed = 0
        self.paused: set[str] = set()  # venues whose liquidation pushes wait for a reconnect
        self.baseline: dict[str, dict[str, int]] = {}
        self.seq = 0
        self.faults: list[str] = []
        # what the diagnosis of a missing row reads: when each bar closed and how many recorders were subscribed
        # to its market then, every fault with its time, every candle request the fakes answered
        self.closed_at: dict[str, dict[int, float]] = defaultdict(dict)  # venue → bar index → monotonic time
        self.subs_at_close: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)  # (venue, coin) → i → n
        self.fault_log: list[tuple[float, str, str]] = []  # (time, venue, what)
        self.drops: list[tuple[str, float, float | None]] = []  # (venue, cut, every topic back)
        self.requests: list[tuple[float, str, dict[str, Any], int]] = []  # (time, venue, query, HTTP status)
        self.pushed_at: dict[tuple[str, str, int], tuple[float, int]] = {}  # liquidation → (time, recorders)
        for venue, f in self.fakes.items():
            self._log_candle_requests(venue, f)

    def _log_candle_requests(self, venue: str, f: Any) -> None:
        """Wrap the fake's request gate so that every candle request is logged with its answer's status."""
        paths = set(KLINE_PATHS[venue])
        inner = f.gate

        async def gate(key: str, params: dict[str, Any]) -> Any:
            r = await inner(key, params)
            if key in paths:
                self.requests.append((time.monotonic(), venue, dict(params), 200 if r is None else r.status))
            return r

        f.gate = gate

    # -- markets -----------------------------------------------------------------------------------------------
    def market_id(self, venue: str, coin: str) -> str:
        return {"binanceusdm": f"{coin}USDT", "bybit": f"{coin}USDT", "okx": f"{coin}-USDT-SWAP",
                "hyperliquid": coin}[venue]  # fmt: skip

    def symbol(self, venue: str, coin: str) -> str:
        return f"{coin}/USDC:USDC" if venue == "hyperliquid" else f"{coin}/USDT:USDT"

    def topics(self, venue: str) -> list[str]:
        c = self.coins
        if venue == "binanceusdm":
            return [f"{x.lower()}usdt@kline_1h" for x in c] + [f"{x.lower()}usdt@forceOrder" for x in c]
        if venue == "bybit":
            return [f"kline.60.{x}USDT" for x in c] + [f"allLiquidation.{x}USDT" for x in c]
        if venue == "okx":
            return [f"candle1H:{x}-USDT-SWAP" for x in c] + ["liquidation-orders:SWAP"]
        return [f"candle:{x}:1h" for x in c]

    def kline_topic(self, venue: str, coin: str) -> str:
        return {"binanceusdm": f"{coin.lower()}usdt@kline_1h", "bybit": f"kline.60.{coin}USDT",
                "okx": f"candle1H:{coin}-USDT-SWAP", "hyperliquid": f"candle:{coin}:1h"}[venue]  # fmt: skip

    def liquidation_topic(self, venue: str, coin: str) -> str:
        return {"binanceusdm": f"{coin.lower()}usdt@forceOrder", "bybit": f"allLiquidation.{coin}USDT",
                "okx": "liquidation-orders:SWAP"}[venue]  # fmt: skip

    def subscribers(self, venue: str) -> dict[str, int]:
        f = self.fakes[venue]
        return {t: f.subscribers(t) for t in self.topics(venue)}

    async def wait_subscribed(
        self, venue: str, minimum: dict[str, int] | None = None, timeout: float = 90.0
    ) -> bool:
        """Until every topic of the venue has ``minimum`` subscribers (default: its baseline, read as it is now:
        it drops when a recorder is killed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.subscribers(venue)
            want = minimum if minimum is not None else self.baseline[venue]
            if all(now[t] >= n for t, n in want.items()):
                return True
            await asyncio.sleep(0.1)
        return False

    # -- pushing -------------------------------------------------------------------------------------------------
    def bars_of(self, venue: str) -> Any:
        f = self.fakes[venue]
        return f.klines.open_time if venue == "binanceusdm" else f.bars.open_time

    async def close_bar(self, *, count: bool = True) -> None:
        for venue, f in self.fakes.items():
            i = f.closed_count()  # the live bar, closed now
            await f.advance_all(1, revisions=1)
            self.closed_at[venue][i] = time.monotonic()
            for coin in self.coins:
                self.subs_at_close[(venue, coin)][i] = f.subscribers(self.kline_topic(venue, coin))
        if count:
            self.bars_closed += 1

    async def push_liquidations(self, rng: random.Random) -> None:
        k = self.args.liquidations_per_bar
        for venue in ("binanceusdm", "bybit", "okx"):
            if venue in self.paused:
                continue
            f = self.fakes[venue]
            t_open = int(self.bars_of(venue)[f.closed_count() - 1])  # the bar just closed
            for ci, coin in enumerate(self.coins):
                price = 60_000.0 * coin_scale(coin) * rng.uniform(0.97, 1.03)
                events = []
                for j in range(k):
                    self.seq += 1
                    t = t_open + 1000 * (j + 1) + ci  # distinct per market and bar
                    qty = round(rng.uniform(0.01, 2.0), 2)
                    long = rng.random() < 0.5
                    events.append((t, long, qty, round(price * rng.uniform(0.999, 1.001), 4)))
                symbol = self.symbol(venue, coin)
                if venue == "binanceusdm":
                    for t, long, qty, px in events:
                        ev = force_order_event({"symbol": coin, "side": "SELL" if long else "BUY", "order_type": "LIMIT",
                                                "time_in_force": "IOC", "original_quantity": f"{qty}",
                                                "price": f"{px * (0.9965 if long else 1.0035):.4f}",
                                                "average_price": f"{px}", "order_status": "FILLED",
                                                "last_filled_quantity": f"{qty}", "filled_accumulated_quantity": f"{qty}",
                                                "trade_time_ms": str(t)}, trade_time=t)  # fmt: skip
                        if n := await f.push_liquidation(ev):
                            self.served[(venue, symbol)].add(t)
                            self.pushed_at[(venue, symbol, t)] = (time.monotonic(), n)
                        if rng.random() < 0.05:  # the same event again
                            await f.push_liquidation(ev)
                            self.pushed_twice += 1
                else:
                    recs = [
                        RecordedLiquidation(t, long, f"{qty}", f"{px}", f"{px}")
                        for t, long, qty, px in events
                    ]
                    if rng.random() < 0.05:
                        recs.append(recs[0])  # a duplicate inside one push
                        self.pushed_twice += 1
                    if venue == "bybit":
                        n = await f.push_liquidations(recs, self.market_id(venue, coin))
                    else:
                        n = await f.push_liquidations(recs, inst_id=self.market_id(venue, coin))
                    if n:
                        self.served[(venue, symbol)].update(t for t, *_ in events)
                        for t, *_ in events:
                            self.pushed_at[(venue, symbol, t)] = (time.monotonic(), n)

    async def push_duplicate_bars(self, rng: random.Random) -> None:
        """A closed bar pushed again, and a stale revision of the live bar, on one venue."""
        venue = rng.choice(VENUES)
        f = self.fakes[venue]
        i = f.closed_count()
        if i + 1 >= len(self.bars_of(venue)):
            return
        coin = rng.choice(self.coins)
        if venue == "binanceusdm":
            await f.push_kline(i - 1, final=True, symbol=self.market_id(venue, coin))
            await f.push_kline(i, final=False, fraction=0.1, symbol=self.market_id(venue, coin))
        else:
            await f.push_bar(i - 1, final=True, market=self.market_id(venue, coin))
            await f.push_bar(i, final=False, fraction=0.1, market=self.market_id(venue, coin))

    def http_faults(self, rng: random.Random) -> None:
        venue = rng.choice(VENUES)
        path = rng.choice(KLINE_PATHS[venue])
        status = rng.choice([500, 429, 503])
        self.fakes[venue].fail_next(path, status, count=2)
        self.faults.append(f"HTTP {status} ×2 on {venue} {path}")
        self.fault_log.append((time.monotonic(), venue, f"HTTP {status} ×2 queued on {path}"))

    async def drop(self, venue: str) -> None:
        """Cut every websocket of a venue; its liquidations pause until both recorders are back."""
        self.paused.add(venue)
        await asyncio.sleep(0.5)  # what was pushed is read before the cut
        cut = time.monotonic()
        n = await self.fakes[venue].drop_websockets()
        self.faults.append(f"dropped {n} websockets of {venue}")
        self.fault_log.append((cut, venue, f"dropped {n} websockets"))
        ok = await self.wait_subscribed(venue)
        self.drops.append((venue, cut, time.monotonic() if ok else None))
        if not ok:
            log(f"warning: {venue} did not resubscribe everything within 90 s: {self.subscribers(venue)}")
        await asyncio.sleep(0.5)
        self.paused.discard(venue)


def expected_close(load: Load, venue: str, coin: str, i: int) -> float:
    f = load.fakes[venue]
    if venue == "binanceusdm":
        return float(f._kline_row(i, final=True, symbol=load.market_id(venue, coin))[4])
    return float(bar_values(f.coin_bars[load.market_id(venue, coin)], i, final=True).close)


HOUR_MS = 3_600_000
WAIT = re.compile(r"(?:reconnecting in|restarting in|retrying in|backing off) ([0-9.]+) s")


def request_window(venue: str, q: dict[str, Any]) -> tuple[str, int, int] | None:
    """(market id, first open time, last open time) a candle request asked for, both included."""
    try:
        if venue == "binanceusdm":
            return str(q.get("symbol")), int(q.get("startTime", 0)), int(q.get("endTime", 2**62))
        if venue == "bybit":
            return str(q.get("symbol")), int(q.get("start", 0)), int(q.get("end", 2**62))
        if venue == "okx":
            lo = int(q["before"]) + 1 if q.get("before") else 0
            hi = int(q["after"]) - 1 if q.get("after") else 2**62
            return str(q.get("instId")), lo, hi
        req = q.get("req") or {}
        return str(req.get("coin")), int(req.get("startTime", 0)), int(req.get("endTime", 2**62))
    except (TypeError, ValueError, KeyError):
        return None


def utc(t_ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(t_ms / 1000))


def context(
    load: Load, recorders: list[Recorder], venue: str, symbol: str, when: float | None
) -> dict[str, Any]:
    """What was going on around ``when`` on ``venue``: recorders alive, faults and drops, and what the
    recorders said about this market (or about nothing market-specific)."""
    at = T0 if when is None else when
    lo, hi = at - 20, at + 60
    said = [
        f"{r.name} {rel(ts)} {text[:240]}"
        for r in recorders
        for ts, text in r.lines
        if lo <= ts <= hi and (f"{venue} {symbol} " in text or ("/USD" not in text and venue in text))
    ]
    return {
        "alive_then": [r.name for r in recorders if when is not None and r.alive_at(when)],
        "faults_near": [
            f"{rel(ts)} {what}" for ts, v, what in load.fault_log if v == venue and lo <= ts <= hi
        ],
        "drops_near": [
            f"cut {rel(cut)}, every topic back {rel(back)}"
            for v, cut, back in load.drops
            if v == venue and cut <= hi and (back is None or back >= lo)
        ],
        "recorders_said": said[:40],
    }


def compare(load: Load, url: str, recorders: list[Recorder]) -> tuple[dict[str, int], list[dict[str, Any]]]:
    """What the fakes served against what the store holds, and a diagnosis of every row missing."""
    out = dict.fromkeys(("liq_served", "liq_stored", "liq_lost", "liq_dup", "liq_extra", "bars_expected",
                         "bars_stored", "bars_lost", "bars_wrong", "bars_extra", "bars_dup", "oi", "bars_unreachable",
                         "bars_lost_reachable"), 0)  # fmt: skip
    missing: list[dict[str, Any]] = []
    with open_store(url, read_only=True) as s:
        rows = s.liquidation_rows()
        out["liq_stored"] = len(rows)
        by_market: dict[tuple[str, str], list[int]] = defaultdict(list)
        for r in rows:
            by_market[(r[0], r[1])].append(int(r[2]))
        for key in set(by_market) | set(load.served):
            stored = by_market.get(key, [])
            served = load.served.get(key, set())
            out["liq_served"] += len(served)
            out["liq_lost"] += len(served - set(stored))
            out["liq_dup"] += len(stored) - len(set(stored))
            out["liq_extra"] += len(set(stored) - served)
            for t in sorted(served - set(stored)):
                when, reached = load.pushed_at.get((key[0], key[1], t), (None, 0))
                missing.append({"kind": "liquidation", "venue": key[0], "symbol": key[1], "time": t,
                                "time_utc": utc(t), "pushed": rel(when), "recorders_reached": reached,
                                **context(load, recorders, key[0], key[1], when)})  # fmt: skip
        for venue in VENUES:
            f = load.fakes[venue]
            times = load.bars_of(venue)
            last_closed = f.closed_count() - 1
            for coin in load.coins:
                symbol = load.symbol(venue, coin)
                c = s.get_candles(venue, symbol, "1h")
                if not len(c):
                    out["bars_lost"] += 1
                    missing.append({"kind": "candle series", "venue": venue, "symbol": symbol, "stored": 0})
                    continue
                first = int(times.searchsorted(int(c.open_time[0])))
                expected = {int(times[i]): i for i in range(first, last_closed + 1)}
                # A recorder knows a bar is closed once the next bar's first revision reaches it (it then takes every
                # closed bar after its last one by REST): the bars up to the last close whose push reached a
                # subscriber, and the history before streaming (the first backfill's). A reconnect's own catch-up
                # goes only to the real clock's bar, which the fakes' clock has left far behind.
                reached = [i for i, n in load.subs_at_close[(venue, coin)].items() if n >= 1]
                reach_end = (
                    max(reached) if reached else min(load.closed_at[venue], default=last_closed + 1) - 1
                )
                reachable = {t for t, i in expected.items() if i <= reach_end}
                out["bars_unreachable"] += len(expected) - len(reachable)
                got = {int(t): float(x) for t, x in zip(c.open_time, c.close, strict=True)}
                out["bars_expected"] += len(expected)
                out["bars_stored"] += len(c)
                out["bars_dup"] += len(c) - len(got)
                lost = sorted(set(expected) - set(got))
                out["bars_lost"] += len(lost)
                out["bars_lost_reachable"] += len(set(lost) & reachable)
                covered = s.covered("candles", venue, symbol, "1h") if lost else []
                for t in lost:
                    i = expected[t]
                    when = load.closed_at[venue].get(i)
                    market = load.market_id(venue, coin)
                    asked = [
                        f"{rel(ts)} HTTP {status}"
                        for ts, v, q, status in load.requests
                        if v == venue
                        and (w := request_window(v, q)) is not None
                        and w[0] == market
                        and w[1] <= t <= w[2]
                    ]
                    missing.append({
                        "kind": "candle", "venue": venue, "symbol": symbol, "open_time": t, "open_time_utc": utc(t),
                        "bar": i - last_closed, "closed": rel(when), "reachable": t in reachable,
                        "kline_subscribers_then": load.subs_at_close[(venue, coin)].get(i),
                        "neighbours_stored": [t - HOUR_MS in got, t + HOUR_MS in got],
                        "coverage_claims_it": any(a <= t < b for a, b in covered),
                        "coverage_near": [f"{utc(a)} .. {utc(b)}" for a, b in covered
                                          if b >= t - 5 * HOUR_MS and a <= t + 5 * HOUR_MS],
                        "requests_for_it": asked[:20],
                        **context(load, recorders, venue, symbol, when),
                    })  # fmt: skip
                out["bars_extra"] += len(set(got) - set(expected))
                out["bars_wrong"] += sum(
                    1
                    for t, i in expected.items()
                    if t in got and got[t] != expected_close(load, venue, coin, i)
                )
        out["oi"] = s.count("open_interest")
    return out, missing


def counts(url: str) -> tuple[int, int, int]:
    with open_store(url, read_only=True) as s:
        return s.count("candles"), s.count("liquidations"), s.count("open_interest")


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(7)
    cluster: PgCluster | None = None
    tmp = Path(tempfile.mkdtemp(prefix="liqdesk-load-"))
    if args.store:
        url = args.store
    else:
        cluster = PgCluster()
        t = time.perf_counter()
        cluster.start()
        url = cluster.database("load")
        log(f"PostgreSQL throwaway cluster up in {time.perf_counter() - t:.1f} s ({cluster.summary()})")
    load = Load(args)
    for f in load.fakes.values():
        await f.start()
    options = json.dumps({"exchanges": {v: f.ccxt_options() for v, f in load.fakes.items()}})
    recorders: list[Recorder] = []
    try:
        for name in ("A", "B"):
            env = {**os.environ, "LIQDESK_DATA_DIR": str(tmp / name / "data"),
                   "LIQDESK_CONFIG_DIR": str(tmp / name / "config"), "PYTHONPATH": str(ROOT)}  # fmt: skip
            log_path = tmp / f"recorder-{name}.log"
            cmd = [sys.executable, "-m", "liqdesk", "record", "--exchange", ",".join(VENUES), "--symbols",
                   ",".join(load.coins), "--timeframe", "1h", "--store", url, "--ccxt-options", options, "--quiet"]  # fmt: skip
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
            rec = Recorder(name, proc, log_path)
            threading.Thread(target=pump_stderr, args=(proc, log_path, rec.lines), daemon=True).start()
            recorders.append(rec)
        log(f"2 recorders started (pids {recorders[0].proc.pid}, {recorders[1].proc.pid}); "
            f"{len(VENUES)} venues × {len(load.coins)} symbols = {len(VENUES) * len(load.coins)} markets")  # fmt: skip
        # every stream of both recorders subscribed, and the first history stored
        t0 = time.monotonic()
        for venue in VENUES:
            want = {t: 2 for t in load.topics(venue)}
            if not await load.wait_subscribed(venue, want, timeout=180):
                log(f"warning: {venue} subscriptions after 180 s: {load.subscribers(venue)}")
        for venue in VENUES:
            load.baseline[venue] = load.subscribers(venue)
        log(f"subscribed in {time.monotonic() - t0:.0f} s")
        await asyncio.sleep(args.settle)
        c0 = counts(url)
        for r in recorders:
            r.at_stream_start = rss_mb(r.proc.pid)[0]
            r.cpu_start = r.cpu_last = cpu_s(r.proc.pid)
        log(
            f"history stored before streaming: {c0[0]:,} candles, {c0[1]:,} liquidations, {c0[2]:,} open interest"
        )

        # -- streaming -------------------------------------------------------------------------------------------
        started = time.monotonic()
        log("streaming starts")
        duration = args.seconds
        kill_at = started + duration * args.kill_at
        killed: Recorder | None = None
        next_fault = started + 10
        next_drop = started + 25
        drop_order = list(VENUES)
        drops: list[asyncio.Task[None]] = []
        pace = 1.0 / args.bars_per_second
        due = time.monotonic()
        last_sample = 0.0
        lag_max = 0.0
        after_kill_counts: tuple[int, int, int] | None = None
        while time.monotonic() - started < duration:
            due += pace
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            lag_max = max(lag_max, time.monotonic() - due)
            await load.close_bar()
            await load.push_liquidations(rng)
            if rng.random() < 0.2:
                await load.push_duplicate_bars(rng)
            now = time.monotonic()
            if now >= next_fault:
                load.http_faults(rng)
                next_fault = now + rng.uniform(5, 15)
            if now >= next_drop and not any(not d.done() for d in drops):
                venue = drop_order.pop(0)
                drop_order.append(venue)
                drops.append(asyncio.ensure_future(load.drop(venue)))
                next_drop = now + rng.uniform(25, 40)
            if killed is None and now >= kill_at:
                killed = recorders[0]
                killed.stopped_at = time.monotonic()
                killed.proc.send_signal(signal.SIGKILL)
                killed.proc.wait()
                after_kill_counts = counts(url)
                log(f"recorder {killed.name} killed with SIGKILL after {now - started:.0f} s "
                    f"(store then: {after_kill_counts[0]:,} candles, {after_kill_counts[1]:,} liquidations)")  # fmt: skip
                for venue in VENUES:  # one recorder's subscriptions from now on
                    load.baseline[venue] = dict.fromkeys(load.baseline[venue], 1)
            if now - last_sample >= 2:
                last_sample = now
                for r in recorders:
                    if r.proc.poll() is None:
                        cur, peak = rss_mb(r.proc.pid)
                        r.rss.append(cur)
                        r.peak = max(r.peak, peak)
                        r.cpu_last, r.cpu_until = cpu_s(r.proc.pid), now
        elapsed = time.monotonic() - started
        survivor = recorders[1]
        if args.end in ("abrupt", "burst"):
            if (
                args.end == "burst"
            ):  # every candle request fails for a while: each recorder's catch-up gives up
                for venue, f in load.fakes.items():
                    for path in KLINE_PATHS[venue]:
                        f.fail_next(path, 503, count=4 * len(load.coins))
                    load.fault_log.append((time.monotonic(), venue, "HTTP 503 burst on every candle request"))
            # the last bar closes at once, with whatever fault or reconnect is in flight
            await load.close_bar(count=False)
            log("one more bar closed everywhere, at once (faults and reconnects as they are)")
        for d in drops:
            with contextlib.suppress(Exception):
                await d
        c1 = counts(url)
        log(f"streaming done: {load.bars_closed} bars closed per market in {elapsed:.0f} s "
            f"(pacing lag max {lag_max:.2f} s)")  # fmt: skip
        if args.end == "clean":
            # the survivor catches up, then stops cleanly: the faults end, every stream is back, and one more bar
            # closes everywhere (a closed bar is stored when the next one opens: the fakes' clock runs ahead of the
            # real one, so a reconnect's own catch-up, which goes to the real clock's bar, reaches none of it)
            for f in load.fakes.values():
                f._faults.clear()
            log("faults cleared")
            await asyncio.sleep(args.settle)
            for venue in VENUES:
                await load.wait_subscribed(venue, timeout=60)
            await load.close_bar(count=False)
            log("one more bar closed everywhere")
        await asyncio.sleep(args.settle)
        survivor.stopped_at = time.monotonic()
        log("SIGTERM to the survivor")
        survivor.proc.send_signal(signal.SIGTERM)
        try:
            rc = survivor.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            survivor.proc.kill()
            rc = -9
        result, missing = compare(load, url, recorders)
    finally:
        for r in recorders:
            if r.proc.poll() is None:
                r.proc.kill()
        for f in load.fakes.values():
            await f.close()
        if cluster is not None:
            cluster.stop()

    # -- report ------------------------------------------------------------------------------------------------
    rows = (c1[0] - c0[0]) + (c1[1] - c0[1]) + (c1[2] - c0[2])
    served = sum(len(v) for v in load.served.values())
    markets = len(VENUES) * len(load.coins)
    print()
    print(f"tape load: {len(VENUES)} venues × {len(load.coins)} symbols = {markets} markets, {elapsed:.0f} s of "
          f"streaming at {args.bars_per_second:g} bar/s per market, {args.liquidations_per_bar} liquidations per bar "
          f"on {3 * len(load.coins)} markets; 2 recorders → PostgreSQL")  # fmt: skip
    print(f"  served by the fakes: {load.bars_closed * markets:,} bars closed ({load.bars_closed * markets / elapsed:.0f}/s), "
          f"{served:,} liquidations ({served / elapsed:.0f}/s), {load.pushed_twice} pushed twice; faults: "
          f"{sum(1 for x in load.faults if x.startswith('HTTP'))} HTTP error bursts, "
          f"{sum(1 for x in load.faults if x.startswith('dropped'))} venue-wide websocket drops")  # fmt: skip
    print(f"  store took {rows:,} new rows while streaming: {rows / elapsed:.0f} rows/s sustained "
          f"(candles +{c1[0] - c0[0]:,}, liquidations +{c1[1] - c0[1]:,}, open interest +{c1[2] - c0[2]:,}); "
          f"each recorder writes every row it receives, the store keeps one")  # fmt: skip
    print(f"  liquidations: {result['liq_served']:,} served, {result['liq_stored']:,} stored; lost {result['liq_lost']}, "
          f"duplicated {result['liq_dup']}, unexpected {result['liq_extra']}")  # fmt: skip
    print(f"  candles: {result['bars_expected']:,} closed bars expected from the first stored one, "
          f"{result['bars_stored']:,} stored; lost {result['bars_lost']}, duplicated {result['bars_dup']}, "
          f"wrong {result['bars_wrong']}, unexpected {result['bars_extra']}; open interest rows {result['oi']:,}")  # fmt: skip
    print(f"  candles a recorder could know were closed (a later bar's push reached one): "
          f"{result['bars_expected'] - result['bars_unreachable']:,}; lost of those {result['bars_lost_reachable']}; "
          f"closed after the last push that reached a recorder: {result['bars_unreachable']}")  # fmt: skip
    for r in recorders:
        end = r.rss[-1] if r.rss else 0.0
        busy = (r.cpu_last - r.cpu_start) / max(1e-9, r.cpu_until - started) if r.cpu_until else 0.0
        print(f"  recorder {r.name}: RSS {r.at_stream_start:.0f} MB at the start of streaming, peak {r.peak:.0f} MB, "
              f"{'at its kill' if r is killed else 'at the end'} {end:.0f} MB; CPU {busy:.0%} of one core while "
              "streaming")  # fmt: skip
    if killed is not None and after_kill_counts is not None:
        print(f"  kill -9: recorder {killed.name} killed at {args.kill_at:.0%} of the run; recorder {survivor.name} "
              f"carried on: the store grew from {after_kill_counts[0]:,} to {c1[0]:,} candles and from "
              f"{after_kill_counts[1]:,} to {c1[1]:,} liquidations after the kill; survivor exit status {rc}")  # fmt: skip
    if survivor.lines:
        print(f"  survivor's last line: {survivor.lines[-1][1][:300]}")
    for r in recorders:
        warnings = sum(1 for _, text in r.lines if ": warning: " in text or ": error: " in text)
        waits = [
            float(m.group(1)) for _, text in r.lines if (m := WAIT.search(text)) and "liqdesk record:" in text
        ]
        print(f"  recorder {r.name} said {len(r.lines)} lines, {warnings} warnings or errors; "
              f"{len(waits)} reconnect waits, longest {max(waits, default=0):.1f} s, "
              f"{sum(1 for w in waits if w > 5)} over 5 s")  # fmt: skip
    report_missing(missing, tmp / "missing.json")
    print(f"  logs: {tmp}")
    ok = (result["liq_lost"] == result["liq_dup"] == result["liq_extra"] == 0
          and result["bars_lost_reachable"] == result["bars_dup"] == result["bars_wrong"] == result["bars_extra"] == 0
          and rc == 0)  # fmt: skip
    print("  RESULT: " + ("complete: 0 lost, 0 duplicated" if ok else "NOT COMPLETE (see above)"))
    return 0 if ok else 1


def report_missing(missing: list[dict[str, Any]], path: Path) -> None:
    """Every row missing from the store, with what was going on then (all of it in ``path``)."""
    path.write_text(json.dumps(missing, indent=1))
    if not missing:
        return
    print(f"  missing rows ({len(missing)}; all in {path}):")
    for m in missing[:12]:
        head = {k: v for k, v in m.items() if k not in ("recorders_said", "requests_for_it")}
        print(f"    {json.dumps(head)}")
        for line in m.get("requests_for_it", [])[:8]:
            print(f"      request: {line}")
        for line in m.get("recorders_said", [])[:12]:
            print(f"      said: {line}")


def main() -> int:
    import logging

    # a client that hangs up during the websocket handshake is the fakes' aiohttp noise, not liqdesk's
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0, help="streaming time (default 180)")
    ap.add_argument("--bars-per-second", type=float, default=1.0, help="bars closed per market per second")
    ap.add_argument(
        "--liquidations-per-bar", type=int, default=3, help="per market with a liquidation stream"
    )
    ap.add_argument("--coins", type=int, default=20, help=f"symbols per venue (at most {len(LOAD_COINS)})")
    ap.add_argument("--kill-at", type=float, default=0.6, help="share of the run when recorder A is killed")
    ap.add_argument("--settle", type=float, default=10.0, help="seconds to let the recorders catch up")
    ap.add_argument(
        "--end",
        choices=("clean", "abrupt", "burst"),
        default="clean",
        help="clean (default): faults end and every stream is back before the last bar closes; abrupt: the last "
        "bar closes at once, with faults queued and reconnects in flight; burst: as abrupt, after a burst of HTTP 503 on "
        "every candle request",
    )
    ap.add_argument(
        "--store", metavar="URL", help="an existing PostgreSQL database (default: a throwaway one)"
    )
    args = ap.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())

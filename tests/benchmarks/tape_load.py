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
import signal
import subprocess
import sys
import tempfile
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


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


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

    async def close_bar(self) -> None:
        for f in self.fakes.values():
            await f.advance_all(1, revisions=1)
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
                        if await f.push_liquidation(ev):
                            self.served[(venue, symbol)].add(t)
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

    async def drop(self, venue: str) -> None:
        """Cut every websocket of a venue; its liquidations pause until both recorders are back."""
        self.paused.add(venue)
        await asyncio.sleep(0.5)  # what was pushed is read before the cut
        n = await self.fakes[venue].drop_websockets()
        self.faults.append(f"dropped {n} websockets of {venue}")
        ok = await self.wait_subscribed(venue)
        if not ok:
            log(f"warning: {venue} did not resubscribe everything within 90 s: {self.subscribers(venue)}")
        await asyncio.sleep(0.5)
        self.paused.discard(venue)


def expected_close(load: Load, venue: str, coin: str, i: int) -> float:
    f = load.fakes[venue]
    if venue == "binanceusdm":
        return float(f._kline_row(i, final=True, symbol=load.market_id(venue, coin))[4])
    return float(bar_values(f.coin_bars[load.market_id(venue, coin)], i, final=True).close)


def compare(load: Load, url: str) -> dict[str, int]:
    out = dict.fromkeys(("liq_served", "liq_stored", "liq_lost", "liq_dup", "liq_extra", "bars_expected",
                         "bars_stored", "bars_lost", "bars_wrong", "bars_extra", "bars_dup", "oi"), 0)  # fmt: skip
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
        for venue in VENUES:
            f = load.fakes[venue]
            times = load.bars_of(venue)
            last_closed = f.closed_count() - 1
            for coin in load.coins:
                c = s.get_candles(venue, load.symbol(venue, coin), "1h")
                if not len(c):
                    out["bars_lost"] += 1
                    continue
                first = int(times.searchsorted(int(c.open_time[0])))
                expected = {int(times[i]): i for i in range(first, last_closed + 1)}
                got = {int(t): float(x) for t, x in zip(c.open_time, c.close, strict=True)}
                out["bars_expected"] += len(expected)
                out["bars_stored"] += len(c)
                out["bars_dup"] += len(c) - len(got)
                lost = sorted(set(expected) - set(got))
                out["bars_lost"] += len(lost)
                for t in lost[:3]:
                    log(
                        f"lost bar: {venue} {coin} open {t} (bar {expected[t] - last_closed} from the last closed)"
                    )
                out["bars_extra"] += len(set(got) - set(expected))
                out["bars_wrong"] += sum(
                    1
                    for t, i in expected.items()
                    if t in got and got[t] != expected_close(load, venue, coin, i)
                )
        out["oi"] = s.count("open_interest")
    return out


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
            proc = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=log_path.open("wb"), env=env, cwd=ROOT
            )
            recorders.append(Recorder(name, proc, log_path))
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
        for d in drops:
            with contextlib.suppress(Exception):
                await d
        elapsed = time.monotonic() - started
        c1 = counts(url)
        log(f"streaming done: {load.bars_closed} bars closed per market in {elapsed:.0f} s "
            f"(pacing lag max {lag_max:.2f} s)")  # fmt: skip
        # the survivor catches up, then stops cleanly: the faults end, and one more bar closes everywhere (a
        # closed bar is stored when the next one opens: the exchange's clock here runs ahead of the real one)
        survivor = recorders[1]
        for f in load.fakes.values():
            f._faults.clear()
        await asyncio.sleep(args.settle)
        for venue in VENUES:
            await load.wait_subscribed(venue, timeout=60)
        for f in load.fakes.values():
            await f.advance_all(1, revisions=1)
        await asyncio.sleep(args.settle)
        survivor.proc.send_signal(signal.SIGTERM)
        try:
            rc = survivor.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            survivor.proc.kill()
            rc = -9
        result = compare(load, url)
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
    tail = (
        survivor.log_path.read_text(errors="replace").strip().splitlines()[-1:]
        if survivor.log_path.exists()
        else []
    )
    if tail:
        print(f"  survivor's last line: {tail[0][:300]}")
    print(f"  logs: {tmp}")
    ok = (result["liq_lost"] == result["liq_dup"] == result["liq_extra"] == 0
          and result["bars_lost"] == result["bars_dup"] == result["bars_wrong"] == result["bars_extra"] == 0 and rc == 0)  # fmt: skip
    print("  RESULT: " + ("complete: 0 lost, 0 duplicated" if ok else "NOT COMPLETE (see above)"))
    return 0 if ok else 1


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
        "--store", metavar="URL", help="an existing PostgreSQL database (default: a throwaway one)"
    )
    args = ap.parse_args()
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())

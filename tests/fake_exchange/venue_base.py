"""What the fake Bybit, OKX and Hyperliquid servers share: an aiohttp server on loopback, a virtual clock over
real 1h bars, request logging, injectable faults and a websocket hub.

Each venue module adds its own routes, wire formats and error bodies. Faults work like the fake Binance's:
``fail_next(key, status)`` answers the next requests for ``key`` (a REST path, or a Hyperliquid info type) with
that HTTP status and the venue's own error body, ``delay_next`` makes them slow, ``drop_websockets`` cuts every
connection without a close frame, ``silence_websockets`` leaves them open but mute, ``send_raw`` pushes any text
(malformed or truncated frames) to a topic's subscribers.

The clock: bars with ``open_time + interval <= now_ms`` are closed, the bar containing ``now_ms`` is live (served
as a partial revision: its open price as high/low/close and a share of its volume); ``advance()`` closes it,
pushes the final bar and revisions of the next one. ``wall_clock=True`` moves every served series by whole bars
so that the live bar is the real current hour (data values untouched).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from .venue_data import Bars, BarValues, bar_values


@dataclass
class Fault:
    status: int
    body: str
    content_type: str = "application/json"
    headers: dict[str, str] | None = None


@dataclass
class WsConn:
    ws: web.WebSocketResponse
    path: str
    topics: set[str] = field(default_factory=set)
    silent: bool = False  # a black hole: stays open, sends nothing (not even pings)


class FakeVenue:
    """Subclasses implement ``add_routes``, ``error_fault``, ``on_ws_text`` and ``push_bar``."""

    name = "venue"
    ws_paths: tuple[str, ...] = ()

    def __init__(
        self,
        bars: Bars,
        *,
        live_index: int | None = None,
        ping_interval: float | None = None,
        wall_clock: bool = False,
    ) -> None:
        self.interval_ms = bars.interval_ms
        # by default the last 48 bars are "future": advance() pushes them live
        self.live_index = len(bars) - 48 if live_index is None else live_index
        # wall_clock: every series moves by whole bars so that the live bar is the real current one (for clients
        # that read the system clock, such as the command line); the clock itself still moves by advance()
        self.time_shift_ms = 0
        if wall_clock:
            real = time.time_ns() // 1_000_000
            self.time_shift_ms = real - real % self.interval_ms - int(bars.open_time[self.live_index])
            bars = replace(bars, open_time=bars.open_time + self.time_shift_ms)
        self.bars = bars
        self.now_ms = int(bars.open_time[self.live_index]) + self.interval_ms // 2
        self.ping_interval = ping_interval
        self.requests: Counter[str] = Counter()
        self.request_log: list[tuple[str, dict[str, Any]]] = []
        self.sent: Counter[str] = Counter()  # websocket messages pushed, per topic
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._delays: dict[str, deque[float]] = defaultdict(deque)
        self.conns: list[WsConn] = []
        self._runner: web.AppRunner | None = None
        self._ping_task: asyncio.Task[None] | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------------------------
    async def start(self) -> FakeVenue:
        app = web.Application()
        self.add_routes(app)
        for p in self.ws_paths:
            app.router.add_get(p, self._ws)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr,attr-defined]
        if self.ping_interval:
            self._ping_task = asyncio.ensure_future(self._ping_loop())
        return self

    async def close(self) -> None:
        if self._ping_task:
            self._ping_task.cancel()
            await asyncio.gather(self._ping_task, return_exceptions=True)
        for c in list(self.conns):
            await c.ws.close()
        if self._runner:
            await self._runner.cleanup()

    async def __aenter__(self) -> Any:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def ccxt_options(self) -> dict[str, Any]:
        """ccxt constructor options pointing the venue's ccxt exchange at this server."""
        raise NotImplementedError

    # -- the clock and the bars ------------------------------------------------------------------------------
    def closed_count(self) -> int:
        """Bars closed at ``now_ms`` (the index of the live bar)."""
        return int(np.searchsorted(self.bars.open_time, self.now_ms - self.interval_ms, "right"))

    def available_count(self) -> int:
        """Closed bars plus the live one."""
        n = self.closed_count()
        return n + (1 if n < len(self.bars) else 0)

    def bar(self, i: int, *, fraction: float = 0.5) -> BarValues:
        """Bar ``i`` as served now: final if closed, a partial revision if live."""
        return bar_values(self.bars, i, final=i < self.closed_count(), fraction=fraction)

    def index_range(self, start: int | None, end: int | None) -> tuple[int, int]:
        """Indices of the available bars with start <= open_time <= end (either bound optional)."""
        t = self.bars.open_time
        lo = 0 if start is None else int(np.searchsorted(t, start, "left"))
        hi = (
            self.available_count()
            if end is None
            else min(self.available_count(), int(np.searchsorted(t, end, "right")))
        )
        return lo, max(lo, hi)

    def served_closed(self, start: int, end: int) -> list[BarValues]:
        """Closed bars with start <= open_time < end (what a client should end up with)."""
        lo = int(np.searchsorted(self.bars.open_time, start, "left"))
        hi = min(self.closed_count(), int(np.searchsorted(self.bars.open_time, end, "left")))
        return [bar_values(self.bars, i, final=True) for i in range(lo, hi)]

    async def advance(self, bars: int = 1, *, revisions: int = 1) -> None:
        """Close the live bar (pushed final), move the clock into the next bar and push ``revisions`` partial
        revisions of it. Repeated ``bars`` times."""
        for _ in range(bars):
            i = self.closed_count()
            if i >= len(self.bars):
                return
            self.now_ms = int(self.bars.open_time[i]) + self.interval_ms
            await self.push_bar(i, final=True)
            if i + 1 < len(self.bars):
                self.now_ms = int(self.bars.open_time[i + 1]) + self.interval_ms // 2
                for r in range(revisions):
                    await self.push_bar(i + 1, final=False, fraction=(r + 1) / (revisions + 1))

    async def push_bar(
        self, index: int, *, final: bool, fraction: float = 0.5, market: str | None = None
    ) -> int:
        """Push bar ``index`` of ``market`` (a venue id such as BTCUSDT; default the main market)."""
        raise NotImplementedError

    def market_ids(self) -> list[str]:
        """The venue ids of every market served with bars (the main one first)."""
        return [next(iter(self.coin_bars))] if getattr(self, "coin_bars", None) else []

    async def advance_all(self, bars: int = 1, *, revisions: int = 1) -> None:
        """``advance`` for every market served with bars (``coins=`` in the venue's constructor)."""
        for _ in range(bars):
            i = self.closed_count()
            if i >= len(self.bars):
                return
            self.now_ms = int(self.bars.open_time[i]) + self.interval_ms
            for m in self.market_ids():
                await self.push_bar(i, final=True, market=m)
            if i + 1 < len(self.bars):
                self.now_ms = int(self.bars.open_time[i + 1]) + self.interval_ms // 2
                for r in range(revisions):
                    for m in self.market_ids():
                        await self.push_bar(i + 1, final=False, fraction=(r + 1) / (revisions + 1), market=m)

    # -- faults -------------------------------------------------------------------------------------------------
    def error_fault(self, status: int) -> Fault:
        """The venue's answer for an HTTP error status."""
        raise NotImplementedError

    def fail_next(self, key: str, status: int = 429, count: int = 1, *, body: str | None = None) -> None:
        """The next ``count`` requests for ``key`` answer ``status`` with the venue's error body (or ``body``)."""
        for _ in range(count):
            f = self.error_fault(status)
            if body is not None:
                f = Fault(status, body, f.content_type, f.headers)
            self._faults[key].append(f)

    def delay_next(self, key: str, seconds: float, count: int = 1) -> None:
        for _ in range(count):
            self._delays[key].append(seconds)

    async def gate(self, key: str, params: dict[str, Any]) -> web.Response | None:
        """Log a request; apply a pending delay and fault for ``key``."""
        self.requests[key] += 1
        self.request_log.append((key, params))
        if self._delays[key]:
            await asyncio.sleep(self._delays[key].popleft())
        if self._faults[key]:
            f = self._faults[key].popleft()
            return web.Response(text=f.body, status=f.status, content_type=f.content_type, headers=f.headers)
        return None

    def requests_for(self, key: str) -> list[dict[str, Any]]:
        return [q for k, q in self.request_log if k == key]

    # -- websockets ---------------------------------------------------------------------------------------------
    async def on_ws_text(self, conn: WsConn, text: str) -> None:
        raise NotImplementedError

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        self.requests["ws:" + request.path] += 1
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        conn = WsConn(ws, request.path)
        self.conns.append(conn)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.PING and not conn.silent:
                    await ws.pong(msg.data)
                if msg.type != WSMsgType.TEXT or conn.silent:
                    continue
                await self.on_ws_text(conn, msg.data)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if conn in self.conns:
                self.conns.remove(conn)
        return ws

    async def send(self, conn: WsConn, text: str) -> None:
        if not conn.ws.closed and not conn.silent:
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await conn.ws.send_str(text)

    async def broadcast(self, topic: str, text: str) -> int:
        n = 0
        for c in list(self.conns):
            if topic in c.topics and not c.ws.closed and not c.silent:
                try:
                    await c.ws.send_str(text)
                    n += 1
                except (ConnectionResetError, RuntimeError):
                    pass
        self.sent[topic] += n
        return n

    async def send_raw(self, topic: str, text: str) -> int:
        """Send any text frame (malformed or truncated JSON) to the subscribers of ``topic``."""
        return await self.broadcast(topic, text)

    def subscribers(self, topic: str) -> int:
        return sum(1 for c in self.conns if topic in c.topics and not c.ws.closed and not c.silent)

    async def wait_subscribed(self, topic: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.subscribers(topic) == 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody subscribed to {topic} within {timeout}s")
            await asyncio.sleep(0.01)

    async def drop_websockets(self) -> int:
        """Abruptly drop every websocket connection (no close frame). Returns how many were dropped."""
        n = 0
        for c in list(self.conns):
            transport = c.ws._req.transport if c.ws._req is not None else None  # noqa: SLF001
            if transport is not None:
                transport.abort()
                n += 1
        self.conns.clear()
        return n

    def silence_websockets(self) -> int:
        """Every current connection goes silent (open, no data, pings or pongs); new connections work."""
        for c in self.conns:
            c.silent = True
        return len(self.conns)

    async def _ping_loop(self) -> None:
        # protocol-level pings keep quiet streams visibly alive for the client's staleness watchdog
        assert self.ping_interval
        while True:
            await asyncio.sleep(self.ping_interval)
            for c in list(self.conns):
                if not c.ws.closed and not c.silent:
                    with contextlib.suppress(ConnectionResetError, RuntimeError):
                        await c.ws.ping()

"""What every fake exchange server shares: an aiohttp server on loopback, request logging with injectable faults
and delays, and a websocket hub (topics, broadcasts, abrupt drops, mute connections, protocol pings).

A server adds its routes (``add_routes``; each handler calls ``gate`` first), its websocket paths (``ws_paths``)
and what it answers to a client's text frame (``on_ws_text``, which puts the connection's topics in ``topics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import WSMsgType, web


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


class LoopbackServer:
    """Start with ``await server.start()`` (or ``async with``); stop with ``await server.close()``."""

    ws_paths: tuple[str, ...] = ()

    def __init__(self, *, ping_interval: float | None = None) -> None:
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
    async def start(self) -> Self:
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

    async def __aenter__(self) -> Self:
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

    # -- requests, faults and delays --------------------------------------------------------------------------
    def add_faults(self, key: str, fault: Fault, count: int = 1) -> None:
        """The next ``count`` requests for ``key`` are answered with ``fault``."""
        for _ in range(count):
            self._faults[key].append(fault)

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
        """Every current connection goes silent (open, no data, pings or pongs: the failure mode of a hung
        connection); new connections work."""
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

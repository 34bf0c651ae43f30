"""ccxt's fire-and-forget pong after a disconnect is recognised; real failures are not."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import ClientWebSocketResponse
from aiohttp.client_exceptions import ClientConnectionResetError

from liqdesk.feeds.loop_errors import is_orphaned_heartbeat


class _ClosingWriter:
    async def send_frame(self, *args: Any, **kwargs: Any) -> None:
        raise ClientConnectionResetError("Cannot write to closing transport")


def _failed(coro: Any) -> dict[str, Any]:
    """The context asyncio hands its exception handler for a failed task nobody awaited."""

    async def run() -> dict[str, Any]:
        task = asyncio.ensure_future(coro)
        await asyncio.wait([task])
        return {
            "message": "Task exception was never retrieved",
            "exception": task.exception(),
            "future": task,
        }

    return asyncio.run(run())


def _closing_socket() -> ClientWebSocketResponse:
    ws = object.__new__(ClientWebSocketResponse)  # only the writer is reached by ping/pong
    ws._writer = _ClosingWriter()  # type: ignore[assignment]
    return ws


def test_an_orphaned_pong_or_ping_on_a_closing_socket_is_noise() -> None:
    assert is_orphaned_heartbeat(_failed(_closing_socket().pong(b"x")))
    assert is_orphaned_heartbeat(_failed(_closing_socket().ping(b"x")))


def test_other_failures_still_count() -> None:
    async def reset() -> None:
        raise ConnectionResetError("peer reset")

    async def bad_pong_value() -> None:
        raise ValueError("not a connection problem")

    assert not is_orphaned_heartbeat(_failed(reset()))
    assert not is_orphaned_heartbeat(_failed(bad_pong_value()))
    assert not is_orphaned_heartbeat({"message": "something", "exception": ConnectionResetError()})
    assert not is_orphaned_heartbeat({"message": "no exception at all"})

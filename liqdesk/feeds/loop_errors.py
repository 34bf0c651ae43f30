"""Which errors reaching the event loop's exception handler are a library's known noise, not a failure.

ccxt answers a websocket PING with a fire-and-forget ``ensure_future(connection.pong(...))``. When the server
drops the connection right after its ping, that task fails with aiohttp's "Cannot write to closing transport"
and nobody retrieves it, so asyncio reports "Task exception was never retrieved". The disconnect itself is seen
and handled by the stream's reconnect loop; the orphaned pong has nothing left to do.
"""

from __future__ import annotations

from typing import Any

# aiohttp's websocket heartbeat coroutines, whose orphaned failure after a disconnect is expected
_HEARTBEAT = ("ClientWebSocketResponse.ping", "ClientWebSocketResponse.pong")


def is_orphaned_heartbeat(context: dict[str, Any]) -> bool:
    """True for a failed, unretrieved websocket ping/pong task whose connection was already closing."""
    exc = context.get("exception")
    task = context.get("future") or context.get("task")
    if not isinstance(exc, ConnectionError) or task is None:
        return False
    get_coro = getattr(task, "get_coro", None)
    code = getattr(get_coro() if callable(get_coro) else None, "cr_code", None)
    return str(getattr(code, "co_qualname", "")).endswith(_HEARTBEAT)

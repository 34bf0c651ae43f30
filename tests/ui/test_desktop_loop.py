"""The app's event loop: a task still running when the window closes is cancelled cleanly, never run after the
loop has stopped (qasync processes Qt events "one last time" after its loop stops, with no running loop set: a
pending task step there died with "RuntimeError: no running event loop", as ccxt's request throttler did)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from PySide6 import QtWidgets

from liqdesk.app import desktop
from liqdesk.app.cli import build_parser
from liqdesk.feeds.loop_errors import is_orphaned_heartbeat


@pytest.mark.parametrize("how", ["close", "quit"])
def test_tasks_alive_at_close_are_cancelled_not_broken(
    qapp: QtWidgets.QApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    seen: dict[str, Any] = {}

    async def busy() -> None:  # like a library's background loop: always a step pending
        try:
            while True:
                asyncio.get_running_loop()
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            seen["cancelled"] = True
            raise

    async def drive(w: Any, c: Any) -> None:
        seen["task"] = asyncio.ensure_future(busy())
        await asyncio.sleep(0.05)
        if how == "close":
            w.window().close()
        else:
            QtWidgets.QApplication.quit()

    with caplog.at_level(logging.ERROR):
        assert desktop.run(build_parser().parse_args(["--offline"]), after_start=drive) == 0
        import gc

        gc.collect()
    assert seen.get("cancelled") is True
    task = seen["task"]
    assert task.cancelled()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_pong_failing_on_a_closing_websocket_is_not_shown_as_an_error() -> None:
    """ccxt answers pings from tasks nobody awaits; one that fails because the connection is closing is logged,
    not flashed as a background error. Any other unretrieved task error still is."""
    import asyncio

    import aiohttp

    from liqdesk.app import desktop

    class ClientWebSocketResponse:  # the name and method aiohttp's task carries
        async def pong(self, fail: BaseException) -> None:
            raise fail

    class Elsewhere:
        async def pong(self, fail: BaseException) -> None:
            raise fail

    flashed: list[str] = []

    class Window:
        def flash(self, text: str) -> None:
            flashed.append(text)

    async def contexts() -> list[dict[str, object]]:
        closing = aiohttp.ClientConnectionResetError("Cannot write to closing transport")
        tasks = [asyncio.ensure_future(ClientWebSocketResponse().pong(closing)),
                 asyncio.ensure_future(Elsewhere().pong(closing)),
                 asyncio.ensure_future(ClientWebSocketResponse().pong(ValueError("bad frame")))]  # fmt: skip
        await asyncio.wait(tasks)
        return [{"message": "Task exception was never retrieved", "exception": t.exception(), "future": t}
                for t in tasks]  # fmt: skip

    handler = desktop._exception_handler(Window())
    loop = asyncio.new_event_loop()
    try:
        found = loop.run_until_complete(contexts())
        assert [is_orphaned_heartbeat(c) for c in found] == [True, False, False]
        for c in found:
            handler(loop, c)
    finally:
        loop.close()
    assert len(flashed) == 2 and all(f.startswith("background error") for f in flashed)

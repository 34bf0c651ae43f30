"""Results of background jobs, handed to callbacks on the GUI thread.

A `ResultInbox` belongs to a Qt object (a window, a dock, a dialog) and is deleted with it: a result that
arrives after its owner is gone is dropped by Qt, never delivered to a deleted receiver. A job's future
completes on the executor's thread; the inbox posts the callback to its own (the GUI) thread through a queued
signal, or calls it at once when the future completed on the GUI thread already (an executor in
`force_sync()` mode: tests then see the result before `submit` returns).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from PySide6 import QtCore

log = logging.getLogger(__name__)

T = TypeVar("T")


class ResultInbox(QtCore.QObject):
    _posted = QtCore.Signal(object)  # a callable to run on the GUI thread

    def __init__(self, owner: QtCore.QObject) -> None:
        super().__init__(owner)
        self._posted.connect(self._run)

    def post(self, fn: Callable[[], object]) -> None:
        """Run `fn` on the GUI thread: now if called there, else at the GUI loop's next turn."""
        try:
            self._posted.emit(fn)
        except RuntimeError:  # the owner (and this inbox) is already deleted: nobody to tell
            log.debug("result dropped: its receiver is gone")

    def deliver(
        self,
        future: Future[T],
        on_result: Callable[[T], object],
        on_error: Callable[[BaseException], object] | None = None,
    ) -> None:
        """Call `on_result(value)` (or `on_error(exception)`) on the GUI thread once `future` is done; nothing
        when it was cancelled (superseded by a newer request)."""

        def done(f: Future[T]) -> None:
            if f.cancelled():
                return
            exc = f.exception()
            if exc is None:
                self.post(lambda: on_result(f.result()))
            elif on_error is not None:
                self.post(lambda: on_error(exc))

        future.add_done_callback(done)

    def _run(self, fn: Callable[[], object]) -> None:
        fn()

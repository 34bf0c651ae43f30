"""Results of background jobs, handed to callbacks on the GUI thread.

A `ResultInbox` belongs to a Qt object (a window, a dock, a dialog). A job's future completes on its
executor's thread; the inbox posts the callback through one process-wide mailbox that lives on the GUI thread
and is never deleted, so a background thread never emits on an object that the GUI thread may be deleting.
The callback runs on the GUI thread only while the inbox's owner still exists (checked there, where owners
are deleted: no race); a result for a closed window is dropped. A future completed on the GUI thread already
(an executor in `force_sync()` mode) has its callback called at once.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from PySide6 import QtCore

T = TypeVar("T")


class _Mailbox(QtCore.QObject):
    """Runs posted callables on the GUI thread (a queued signal from other threads, a call from this one)."""

    posted = QtCore.Signal(object)

    def __init__(self, app: QtCore.QCoreApplication) -> None:
        super().__init__(app)
        self.posted.connect(self._run)

    def _run(self, fn: Callable[[], object]) -> None:
        fn()


_mailbox: _Mailbox | None = None


def _the_mailbox() -> _Mailbox:
    global _mailbox
    if _mailbox is None:
        app = QtCore.QCoreApplication.instance()
        if app is None or QtCore.QThread.currentThread() != app.thread():
            raise RuntimeError("a ResultInbox is made on the GUI thread, after the QApplication")
        _mailbox = _Mailbox(app)
    return _mailbox


class ResultInbox:
    def __init__(self, owner: QtCore.QObject) -> None:
        self._mailbox = _the_mailbox()
        self.open = True  # False once the owner is deleted: nothing is delivered any more
        owner.destroyed.connect(self._owner_gone)

    def _owner_gone(self, *_: object) -> None:
        self.open = False

    def post(self, fn: Callable[[], object]) -> None:
        """Run `fn` on the GUI thread while the owner exists: now if called there, else at the GUI loop's next
        turn."""
        self._mailbox.posted.emit(lambda: fn() if self.open else None)

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

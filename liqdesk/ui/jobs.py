"""Background work off the UI thread: one long-lived thread per executor, jobs one at a time, in order (no Qt).

`SerialExecutor.submit(fn)` returns a `concurrent.futures.Future`. Jobs run in submission order on the
executor's own thread, so jobs that mutate something (an engine build, a live bar) and jobs that read it never
overlap and need no lock. A job submitted with `supersede=KIND` cancels the job of that kind still waiting in
the queue (its future is cancelled) and runs after everything submitted before it: while the user drags the
colour bar or pans, only the newest request is computed, and a request made for the data as it is after a
queued live bar never runs before that bar.

`force_sync()` runs every job submitted meanwhile at once, in the caller's thread (tests: no waiting, no
threads, results in order). The thread is a plain Python thread kept for the executor's life (it ends after
`IDLE_S` without work and comes back with the next job): thread-local scratch of the core (the painter's
workspace, 8 bytes a level) is allocated once, not per job as with a pool that gives each job a new thread state.

The UI gets results back on its own thread through `liqdesk.ui.results.ResultInbox`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
IDLE_S = 30.0


@dataclass
class _Job:
    fn: Callable[[], Any]
    future: Future[Any]
    kind: str | None


class SerialExecutor:
    """Runs submitted callables one at a time, in order, on one daemon thread (see the module's text)."""

    def __init__(self, name: str, *, idle_s: float = IDLE_S) -> None:
        self.name = name
        self._idle_s = idle_s
        self._queue: collections.deque[_Job] = collections.deque()
        self._waiting: dict[str, _Job] = {}  # per kind, the job of that kind still in the queue
        self._cv = threading.Condition()
        self._busy = 0  # jobs queued or running
        self._thread: threading.Thread | None = None
        self._sync = 0  # force_sync() depth

    @property
    def synchronous(self) -> bool:
        return self._sync > 0

    def submit(self, fn: Callable[[], T], *, supersede: str | None = None) -> Future[T]:
        """Queue `fn` after every job submitted before it; with `supersede`, cancel the queued job of that
        kind. The future holds fn's result or exception (cancelled if superseded or dropped)."""
        future: Future[T] = Future()
        job = _Job(fn, future, supersede)
        if self._sync:
            self._run(job)
            return future
        with self._cv:
            if supersede is not None:
                older = self._waiting.pop(supersede, None)
                if older is not None:
                    older.future.cancel()  # stays in the queue, skipped when its turn comes
                self._waiting[supersede] = job
            self._queue.append(job)
            self._busy += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self._thread.start()
            self._cv.notify_all()
        return future

    def cancel_pending(self) -> int:
        """Cancel the jobs not started yet; the number cancelled."""
        with self._cv:
            jobs = list(self._queue)
            self._queue.clear()
            self._waiting.clear()
            self._busy -= len(jobs)
            self._cv.notify_all()
        return sum(job.future.cancel() for job in jobs)

    def wait_idle(self, timeout_s: float | None = 30.0) -> bool:
        """Wait until nothing is queued or running; False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: self._busy == 0, timeout=timeout_s)

    def shutdown(self, timeout_s: float = 5.0) -> bool:
        """Cancel what has not started and wait for the running job (a bounded wait)."""
        self.cancel_pending()
        return self.wait_idle(timeout_s)

    @contextlib.contextmanager
    def force_sync(self) -> Iterator[None]:
        """Run the jobs submitted inside the block at once, in the caller's thread (after any queued before)."""
        self.wait_idle(None)
        self._sync += 1
        try:
            yield
        finally:
            self._sync -= 1

    # ------------------------------------------------------------------ the thread

    def _loop(self) -> None:
        while True:
            with self._cv:
                if not self._queue and not self._cv.wait_for(lambda: bool(self._queue), timeout=self._idle_s):
                    self._thread = None  # idle: the thread ends; the next submit starts a new one
                    return
                job = self._queue.popleft()
                if job.kind is not None and self._waiting.get(job.kind) is job:
                    del self._waiting[job.kind]
            try:
                self._run(job)
            finally:
                del job  # drop the job and what it holds before waiting for the next
                with self._cv:
                    self._busy -= 1
                    self._cv.notify_all()

    @staticmethod
    def _run(job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return  # superseded or cancelled before its turn
        try:
            result = job.fn()
        except BaseException as exc:  # to the future: whoever waits on it decides what to say
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)

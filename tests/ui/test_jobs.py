"""The background executor (liqdesk.ui.jobs) and the model worker on it, without waiting on a Qt event loop:
jobs in order on one thread, a newer request of a kind cancels the queued one but never runs before a job
submitted ahead of it, errors land in the future, and force_sync() runs everything at once in the caller."""

from __future__ import annotations

import threading

import pytest
from PySide6 import QtWidgets

from liqdesk.core.grid import PriceBins
from liqdesk.core.series import Candles
from liqdesk.feeds.presets import params_for
from liqdesk.feeds.sample import load_sample
from liqdesk.ui import frames
from liqdesk.ui.jobs import SerialExecutor
from liqdesk.ui.worker import EngineChanged, ModelWorker


def held(executor: SerialExecutor) -> threading.Event:
    """Keep the executor's thread busy until the returned event is set (jobs submitted meanwhile queue)."""
    gate = threading.Event()
    executor.submit(lambda: gate.wait(10))
    return gate


def test_jobs_run_in_order_on_one_thread_of_their_own() -> None:
    ex = SerialExecutor("test-serial")
    seen: list[tuple[int, str]] = []
    gate = held(ex)
    futures = [
        ex.submit(lambda i=i: seen.append((i, threading.current_thread().name)) or i) for i in range(5)
    ]
    gate.set()
    assert [f.result(10) for f in futures] == [0, 1, 2, 3, 4]
    assert [i for i, _ in seen] == [0, 1, 2, 3, 4]
    assert {name for _, name in seen} == {"test-serial"}
    assert ex.wait_idle(1)


def test_a_newer_request_cancels_the_queued_one_but_never_overtakes_an_earlier_job() -> None:
    ex = SerialExecutor("test-supersede")
    ran: list[str] = []
    gate = held(ex)
    first = ex.submit(lambda: ran.append("frame for n bars"), supersede="frame")
    bar = ex.submit(lambda: ran.append("live bar"))
    second = ex.submit(lambda: ran.append("frame for n + 1 bars"), supersede="frame")
    cursor = ex.submit(lambda: ran.append("cursor"), supersede="cursor")
    gate.set()
    assert ex.wait_idle(10)
    assert first.cancelled() and not second.cancelled() and not cursor.cancelled() and bar.done()
    assert ran == ["live bar", "frame for n + 1 bars", "cursor"]


def test_errors_go_to_the_future_and_the_thread_keeps_working() -> None:
    ex = SerialExecutor("test-errors")

    def boom() -> None:
        raise ValueError("bad job")

    failed = ex.submit(boom)
    ok = ex.submit(lambda: 42)
    assert isinstance(failed.exception(10), ValueError) and ok.result(10) == 42


def test_force_sync_runs_each_job_at_once_in_the_caller() -> None:
    ex = SerialExecutor("test-sync")
    with ex.force_sync():
        assert ex.synchronous
        f = ex.submit(lambda: threading.current_thread().name)
        assert f.done() and f.result() == threading.current_thread().name
        g = ex.submit(lambda: 1, supersede="frame")
        assert g.result() == 1 and not g.cancelled()  # nothing waits, so nothing is superseded
    assert not ex.synchronous


def test_shutdown_cancels_what_has_not_started_and_waits_for_the_running_job() -> None:
    ex = SerialExecutor("test-shutdown")
    started, release = threading.Event(), threading.Event()
    running = ex.submit(lambda: (started.set(), release.wait(10)))
    queued = [ex.submit(lambda: None) for _ in range(3)]
    assert started.wait(10)
    threading.Timer(0.05, release.set).start()
    assert ex.shutdown(10)
    assert running.done() and not running.cancelled() and all(f.cancelled() for f in queued)


def test_an_idle_thread_ends_and_the_next_job_starts_another() -> None:
    ex = SerialExecutor("test-idle", idle_s=0.05)
    assert ex.submit(lambda: 1).result(10) == 1
    first = ex._thread
    assert first is not None
    first.join(5)
    assert not first.is_alive()
    assert ex.submit(lambda: 2).result(10) == 2


def _small(n: int = 300) -> tuple[Candles, object]:
    s = load_sample()
    c = s.candles.take(slice(-n, None))
    oi = s.open_interest
    assert oi is not None
    keep = (oi.time >= c.open_time[0]) & (oi.time <= c.close_time[-1])
    return c, type(oi)(oi.time[keep], oi.usd[keep])


def _request(n: int, generation: int, bins: PriceBins) -> frames.FrameRequest:
    return frames.FrameRequest(generation=generation, start_bar=0, end_bar=n, columns=n, bins=bins,
                               visible_bars=(0, n), visible_prices=(bins.lo, bins.hi), map_bar=n - 1)  # fmt: skip


def test_the_model_worker_in_sync_mode_builds_draws_patches_and_answers_queries(
    qapp: QtWidgets.QApplication,
) -> None:
    c, oi = _small()
    worker = ModelWorker()
    built: list[int] = []
    shown: list[frames.Frame] = []
    applied: list[int] = []
    worker.engine_built.connect(lambda g, _e: built.append(g))
    worker.frame_ready.connect(lambda _g, f: shown.append(f))
    worker.bar_applied.connect(lambda _g, n: applied.append(n))
    bins = PriceBins(float(c.low.min()) * 0.9, float(c.high.max()) * 1.1, 80)
    with worker.force_sync():
        worker.build(7, c, oi, params_for("coinglass"))  # type: ignore[arg-type]
        assert built == [7] and worker.engine is not None and worker.engine.n_bars == len(c)
        worker.request_frame(7, _request(len(c), 1, bins))
        assert len(shown) == 1 and shown[0].request.end_bar == len(c)
        t = int(c.open_time[-1]) + c.interval_ms
        row = Candles(open_time=[t], open=[c.close[-1]], high=[c.close[-1] * 1.001], low=[c.close[-1] * 0.999],
                      close=[c.close[-1]], volume=[5.0], interval_ms=c.interval_ms)  # fmt: skip
        worker.apply_bar(7, row, None, revise=False)
        assert applied == [len(c) + 1]
        assert len(shown) == 2 and shown[-1].request.end_bar == len(c) + 1  # the newest column patched in
        answer = worker.query(lambda engine: engine.n_bars, 7)
        assert answer.result() == len(c) + 1
        stale = worker.query(lambda engine: engine.n_bars, 6)  # made for data no longer there
        assert isinstance(stale.exception(), EngineChanged)
    assert int(shown[-1].columns.last_bar[-1]) == len(c)  # the patched frame's newest column is the new bar


def test_a_worker_error_is_reported_once_per_message_and_a_stale_query_not_at_all(
    qapp: QtWidgets.QApplication,
) -> None:
    worker = ModelWorker()
    failed: list[str] = []
    worker.failed.connect(failed.append)
    with worker.force_sync():
        worker.run_in_order(lambda: (_ for _ in ()).throw(IndexError("index 1816 is out of bounds")))
        worker.query(lambda engine: engine.n_bars, 1)  # no engine yet: EngineChanged, not a user-facing error
    assert failed == ["IndexError: index 1816 is out of bounds"]


@pytest.mark.parametrize("kind", ["frame", "requantise"])
def test_worker_requests_of_one_kind_supersede_each_other(qapp: QtWidgets.QApplication, kind: str) -> None:
    c, oi = _small(200)
    worker = ModelWorker()
    shown: list[frames.Frame] = []
    worker.frame_ready.connect(lambda _g, f: shown.append(f))
    bins = PriceBins(float(c.low.min()) * 0.9, float(c.high.max()) * 1.1, 50)
    with worker.force_sync():
        worker.build(1, c, oi, params_for("coinglass"))  # type: ignore[arg-type]
        worker.request_frame(1, _request(len(c), 1, bins))
    gate = held(worker.executor)
    if kind == "frame":
        a = worker.request_frame(1, _request(len(c), 2, bins))
        b = worker.request_frame(1, _request(len(c), 3, bins))
    else:
        a = worker.request_requantise(1, 1, (0.0, 1.0), "liqdesk")
        b = worker.request_requantise(1, 1, (0.0, 2.0), "liqdesk")
    gate.set()
    assert worker.wait_idle(10_000)
    assert a.cancelled() and b.done() and not b.cancelled()
    worker.shutdown()


def test_results_reach_the_gui_thread_and_never_a_deleted_owner(qapp: QtWidgets.QApplication, qtbot) -> None:  # type: ignore[no-untyped-def]
    from PySide6 import QtCore

    from liqdesk.ui.results import ResultInbox

    ex = SerialExecutor("test-inbox")
    owner = QtCore.QObject()
    inbox = ResultInbox(owner)
    got: list[tuple[int, str]] = []
    inbox.deliver(ex.submit(lambda: 7), lambda v: got.append((v, threading.current_thread().name)))
    qtbot.waitUntil(lambda: bool(got), timeout=5_000)
    assert got == [
        (7, threading.main_thread().name)
    ]  # computed on the executor, handed over on the GUI thread

    gate = held(ex)
    late = ex.submit(lambda: 8)
    inbox.deliver(late, lambda v: got.append((v, "after the owner was deleted")))
    owner.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    assert not inbox.open
    gate.set()
    assert late.result(10) == 8 and ex.wait_idle(5)
    qtbot.wait(50)
    assert got == [(7, threading.main_thread().name)]  # the result for the deleted owner was dropped

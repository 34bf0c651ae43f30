"""Qt objects are destroyed on the GUI thread, never by a garbage collection that another thread set off.

A removed price line and its label refer to each other, so only the cyclic collector frees them, and CPython
runs it in whichever thread crosses the allocation threshold. When that was the model worker, the line's Qt
destructor ran there while the GUI thread painted, and the test suite died now and then with a segmentation
fault in a paint (the crash this guards against; liqdesk.ui.gui_gc)."""

from __future__ import annotations

import gc
import threading

from PySide6 import QtCore

from liqdesk.ui import gui_gc


def test_a_line_dropped_in_a_reference_cycle_is_destroyed_on_the_gui_thread(win, qtbot) -> None:  # type: ignore[no-untyped-def]
    destroyed_in: list[str] = []
    automatic = gc.isenabled()
    gc.disable()  # no collection while the garbage is made: it is in the youngest generation
    item = win.lines.add_line("stop", float(win.candles.close[-1]) * 0.99)
    for obj in (item, item.text.textItem):
        obj.destroyed.connect(lambda *_: destroyed_in.append(threading.current_thread().name),
                              QtCore.Qt.ConnectionType.DirectConnection)  # fmt: skip
    win.lines.remove(item)
    del item, obj
    if automatic:
        gc.enable()  # the collection policy in force, whatever it is

    kept: list[object] = []

    def busy() -> None:  # allocates as the model worker does (frames, requests, results)
        for _ in range(200):
            kept.append([{} for _ in range(20)])

    worker = threading.Thread(target=busy, name="busy-worker")
    worker.start()
    worker.join()
    assert destroyed_in == []  # nothing was destroyed off the GUI thread
    assert gui_gc.is_installed()
    qtbot.waitUntil(lambda: len(destroyed_in) == 2, timeout=5_000)  # the GUI thread's collector freed them
    assert destroyed_in == [threading.main_thread().name] * 2


def test_the_gui_collector_collects_what_is_due() -> None:
    gui_gc.collect_on_gui_thread()
    assert not gc.isenabled()

    class Node:
        def __init__(self) -> None:
            self.me = self

    gc.collect()
    threshold = gc.get_threshold()[0]
    for _ in range(threshold + 1):
        Node()
    assert gc.get_count()[0] > threshold
    assert gui_gc._collector is not None and gui_gc._collector.collect_due() >= threshold
    assert gc.get_count()[0] < threshold

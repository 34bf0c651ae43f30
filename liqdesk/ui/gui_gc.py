"""Python's cyclic garbage collector runs on the GUI thread only.

PySide destroys a Qt object when its Python wrapper is freed. A wrapper caught in a reference cycle (a
pyqtgraph line and its label refer to each other; so do many items and their helpers) is freed by the
cyclic collector, and CPython runs that collector in whichever thread crosses the allocation threshold:
often the model worker or another background thread, since they allocate a lot. The Qt destructor then
runs there while the GUI thread paints the same scene, and the process dies later in an unrelated paint
(a segmentation fault in the GUI thread, seen intermittently in the UI test suite). Qt objects must be
destroyed in the thread they live in, so automatic collection is switched off and a timer on the GUI
thread collects instead, with CPython's own generation thresholds.

`collect_on_gui_thread()` is called by every top-level window (idempotent), so the app, `liqdesk
snapshot`, the benchmarks and the tests all run this way.
"""

from __future__ import annotations

import gc

from PySide6 import QtCore

# Checked this often (a check is nearly free): garbage cannot pile up between checks into a long pause.
INTERVAL_MS = 50


class _GuiCollector(QtCore.QObject):
    def __init__(self, app: QtCore.QCoreApplication) -> None:
        super().__init__(app)
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self.collect_due)
        self._timer.start()

    def collect_due(self) -> int:
        """Collect the oldest generation whose count passed its threshold (as CPython's automatic
        collection would have); the number of objects freed."""
        counts, limits = gc.get_count(), gc.get_threshold()
        due = -1
        for generation in range(3):
            if limits[generation] and counts[generation] > limits[generation]:
                due = generation
            else:
                break
        return gc.collect(due) if due >= 0 else 0


_collector: _GuiCollector | None = None


def collect_on_gui_thread() -> None:
    """Switch automatic collection off and collect on a GUI-thread timer instead (once per process;
    call it from the GUI thread after the QApplication exists)."""
    global _collector
    app = QtCore.QCoreApplication.instance()
    if app is None:
        raise RuntimeError("collect_on_gui_thread() needs the QApplication")
    if QtCore.QThread.currentThread() != app.thread():
        raise RuntimeError("collect_on_gui_thread() must be called from the GUI thread")
    if _collector is not None:
        gc.disable()  # someone switched it on again meanwhile
        return
    gc.disable()
    # What exists now (modules, classes, the libraries' tables) lives as long as the process: kept out of every
    # later scan, so a full collection looks at what the app made since (~60 ms less a full pass here).
    gc.freeze()
    _collector = _GuiCollector(app)


def is_installed() -> bool:
    return _collector is not None and not gc.isenabled()

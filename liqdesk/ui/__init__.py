"""The Qt layer: chart window, chart items, background worker.

pyqtgraph picks PyQt6 before PySide6 when both are installed, and two Qt builds in one process
crash (desktop.md), so every ui module imports PySide6 through this package first.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import PySide6  # noqa: E402  (must precede the first pyqtgraph import)


def _guard_none_refcount() -> None:
    """Work around PySide6 6.12.0 on Python < 3.12: every call of a wrapped method that returns
    void (QPainter.setPen, QLabel.setText, …) drops one reference to None without taking one, and
    bool results do the same to True / False. On 3.12+ these objects are immortal and nothing
    happens; on 3.11 the count reaches zero after some thousands of paints and the interpreter
    aborts ("none_dealloc: deallocating None", "bool_dealloc"), measured here. Giving them a huge
    count does what 3.12 does. Remove once PySide6 is fixed or pinned.
    """
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    if not PySide6.__version__.startswith("6.12."):
        return
    import ctypes

    for singleton in (None, True, False):
        refcount = ctypes.c_ssize_t.from_address(id(singleton))  # ob_refcnt: PyObject's first field
        refcount.value += 1 << 40


_guard_none_refcount()

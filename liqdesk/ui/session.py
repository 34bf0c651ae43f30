"""Helpers to drive a window without a user: wait for the worker, grab a PNG (snapshot, tests)."""

from __future__ import annotations

import time

from PySide6 import QtCore, QtGui, QtWidgets

from liqdesk.ui.window import MainWindow


def wait_until_drawn(window: MainWindow, timeout_s: float = 30.0) -> bool:
    """Spin the event loop until the frame on screen covers the view and the worker is idle."""
    app = QtWidgets.QApplication.instance()
    assert app is not None
    deadline = time.monotonic() + timeout_s
    settled_since: float | None = None
    while time.monotonic() < deadline:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 20)
        done = window.frame is not None and window.frame_covers_view() and window.worker.wait_idle(0)
        if done:
            # A few quiet turns of the loop: debounced view changes may still request a frame.
            settled_since = settled_since or time.monotonic()
            if time.monotonic() - settled_since > 0.12:
                return True
        else:
            settled_since = None
        time.sleep(0.005)
    return False


def grab_png(window: MainWindow, path: str, width: int, height: int) -> None:
    """Save what the window shows, at exactly width × height pixels."""
    pixmap = window.grab()
    image = pixmap.toImage()
    if image.width() != width or image.height() != height:
        image = image.scaled(width, height, QtCore.Qt.AspectRatioMode.IgnoreAspectRatio,
                             QtCore.Qt.TransformationMode.SmoothTransformation)  # fmt: skip
    image = image.convertToFormat(QtGui.QImage.Format.Format_RGB32)
    if not QtGui.QImageWriter(path, QtCore.QByteArray(b"PNG")).write(image):
        raise OSError(f"cannot write {path}")

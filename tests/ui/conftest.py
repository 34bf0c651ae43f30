"""Qt runs offscreen for every UI test. Each test gets its own windows and its own config folder: nothing a
test changes (lines, settings, the view) is seen by the next one, and every window a test leaves open is
closed and deleted after it, on the GUI thread."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import contextlib  # noqa: E402
import gc  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402

from liqdesk.ui.theme import configure_pyqtgraph  # noqa: E402

configure_pyqtgraph()


@pytest.fixture(scope="session")
def qapp_args() -> list[str]:
    return ["liqdesk-tests"]


def dispose(widget: QtWidgets.QWidget) -> None:
    """Close a window and delete it now, on this (the GUI) thread: its worker stops, and nothing of it stays
    alive to receive events or signals in a later test."""
    with contextlib.suppress(RuntimeError):  # already deleted
        widget.close()
        widget.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)


@pytest.fixture(autouse=True)
def no_window_outlives_its_test(qapp: QtWidgets.QApplication) -> Iterator[None]:
    yield
    for widget in QtWidgets.QApplication.topLevelWidgets():
        if isinstance(widget, QtWidgets.QMainWindow) and widget.parent() is None:  # charts, workspaces
            dispose(widget)
    gc.collect()  # the test's garbage goes now, on this thread, not during the next test
    gc.freeze()  # what survived is kept out of later scans: the next collection looks at new objects only


def make_window(qapp: QtWidgets.QApplication, **settings: object):  # type: ignore[no-untyped-def]
    from liqdesk.ui.data import SampleSource
    from liqdesk.ui.session import wait_until_drawn
    from liqdesk.ui.window import MainWindow, ViewSettings

    window = MainWindow(SampleSource(), ViewSettings(**settings))  # type: ignore[arg-type]
    window.resize(1280, 760)
    window.show()
    assert wait_until_drawn(window, 30.0), "the first frame did not arrive"
    return window


@contextlib.contextmanager
def isolated_window(
    qapp: QtWidgets.QApplication, tmp_path_factory: pytest.TempPathFactory, **settings: object
) -> Iterator[object]:
    """A drawn sample window with its own empty config folder (state file, lines), deleted on exit."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIQDESK_CONFIG_DIR", str(tmp_path_factory.mktemp("cfg")))
        w = make_window(qapp, **settings)
        try:
            yield w
        finally:
            dispose(w)


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty config folder of the test's own (state file, price lines, presets)."""
    path = tmp_path / "config"
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(path))
    return path


@pytest.fixture
def window(qapp: QtWidgets.QApplication, config_dir: Path) -> Iterator[object]:
    """A drawn window on the default sample (3 days in view), the test's own."""
    w = make_window(qapp)
    yield w
    dispose(w)


@pytest.fixture
def win(qapp: QtWidgets.QApplication, config_dir: Path) -> Iterator[object]:
    """A drawn window on the default sample with 24 hours in view, the test's own."""
    w = make_window(qapp, range_name="24h")
    yield w
    dispose(w)

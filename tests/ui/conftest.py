"""Qt runs offscreen for every UI test; one sample window is shared per module (building it is the slow part)."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import contextlib  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from PySide6 import QtWidgets  # noqa: E402

from liqdesk.ui.theme import configure_pyqtgraph  # noqa: E402

configure_pyqtgraph()


@pytest.fixture(scope="session")
def qapp_args() -> list[str]:
    return ["liqdesk-tests"]


def make_window(qapp: QtWidgets.QApplication, **settings: object):  # type: ignore[no-untyped-def]
    from liqdesk.ui.data import SampleSource
    from liqdesk.ui.session import wait_until_drawn
    from liqdesk.ui.window import MainWindow, ViewSettings

    window = MainWindow(SampleSource(), ViewSettings(**settings))  # type: ignore[arg-type]
    window.resize(1280, 760)
    window.show()
    assert wait_until_drawn(window, 30.0), "the first frame did not arrive"
    return window


@pytest.fixture(scope="module")
def window(qapp: QtWidgets.QApplication) -> Iterator[object]:
    w = make_window(qapp)
    yield w
    w.close()


@contextlib.contextmanager
def isolated_window(
    qapp: QtWidgets.QApplication, tmp_path_factory: pytest.TempPathFactory, **settings: object
) -> Iterator[object]:
    """A drawn sample window with its own empty config folder (state file, lines), closed on exit."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LIQDESK_CONFIG_DIR", str(tmp_path_factory.mktemp("cfg")))
        w = make_window(qapp, **settings)
        yield w
        w.close()


@pytest.fixture(scope="module")
def win(qapp: QtWidgets.QApplication, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A 24h sample window with its own config folder, one per module."""
    with isolated_window(qapp, tmp_path_factory, range_name="24h") as w:
        yield w

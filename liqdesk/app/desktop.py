"""`liqdesk` with no sub-command: the chart window on qasync's event loop.

The asyncio loop is Qt's (qasync), so the live-data step can run its feed tasks here and call
MainWindow.apply_bar / add_liquidations from them. Until then the window shows the bundled sample
and says so.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

log = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    import qasync
    from PySide6 import QtWidgets

    from liqdesk.ui.data import SampleSource
    from liqdesk.ui.theme import configure_pyqtgraph
    from liqdesk.ui.window import MainWindow

    configure_pyqtgraph()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("liqdesk")
    window = MainWindow(SampleSource())
    window.set_status_source(window.source_label.text() + " · no live connection (offline)")

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def on_error(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
            # A silently dead task is the usual failure: log it and say so in the window.
            message = str(context.get("exception") or context.get("message"))
            log.error("background task failed: %s", message)
            window.flash(f"background task failed: {message}")

        loop.set_exception_handler(on_error)
        closed = asyncio.Event()
        app.aboutToQuit.connect(closed.set)
        window.show()
        await closed.wait()

    try:
        asyncio.run(main(), loop_factory=qasync.QEventLoop)
    except asyncio.CancelledError:
        pass
    finally:
        window.worker.shutdown()
    return 0

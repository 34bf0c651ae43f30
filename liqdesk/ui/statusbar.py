"""The chart pane's status bar: the not-live notice, the data source, messages, the model label (or the model
error), the time of the last update and the compute backend."""

from __future__ import annotations

from PySide6 import QtWidgets

from liqdesk.core.backend import Backend
from liqdesk.ui import format as fmt
from liqdesk.ui.worker import backend_note, backend_status

ERROR_STYLE = "color: #ef5350;"


class ChartStatusBar:
    """The labels of a pane's QStatusBar and what may be said in them."""

    def __init__(self, bar: QtWidgets.QStatusBar, backend: Backend) -> None:
        bar.setSizeGripEnabled(False)
        self.source_label = QtWidgets.QLabel("")
        self.model_label = QtWidgets.QLabel("")
        self.update_label = QtWidgets.QLabel("")
        self.message_label = QtWidgets.QLabel("")
        # Offline / not-live notice: first thing in the status bar, where it is always visible.
        self.notice = QtWidgets.QLabel("")
        self.notice.setObjectName("notice")
        self.notice.hide()
        bar.addWidget(self.notice)
        bar.addWidget(self.source_label, 1)
        bar.addWidget(self.message_label)
        bar.addPermanentWidget(self.model_label)
        bar.addPermanentWidget(self.update_label)
        # The compute backend of this process, with the fallback reason in its tooltip.
        text, tip = backend_status(backend)
        note = backend_note()
        self.backend_label = QtWidgets.QLabel(text)
        self.backend_label.setObjectName("backend")
        self.backend_label.setToolTip(f"{note}\n{tip}" if note else tip)
        if note:
            self.backend_label.setStyleSheet(ERROR_STYLE)
        bar.addPermanentWidget(self.backend_label)
        self._last_update_ms: int | None = None
        self._utc = False

    def flash(self, text: str) -> None:
        self.message_label.setText(text)

    def show_notice(self, text: str | None) -> None:
        self.notice.setText(text or "")
        self.notice.setVisible(bool(text))

    def set_source(self, text: str) -> None:
        self.source_label.setText(text)

    def set_last_update(self, ms: int | None) -> None:
        self._last_update_ms = ms
        self.update_label.setText("" if ms is None else "last update " + fmt.timestamp(ms, self._utc))

    def set_utc(self, utc: bool) -> None:
        self._utc = utc
        self.set_last_update(self._last_update_ms)  # in the zone now chosen

    def set_model(self, text: str) -> None:
        self.model_label.setText(text)

    def show_model_error(self, message: str, retry: str) -> None:
        self.flash(f"model error: {message[:160]} · {retry}")
        self.model_label.setText("model error")
        self.model_label.setToolTip(f"{message}\n{retry}")
        self.model_label.setStyleSheet(ERROR_STYLE)

    def clear_model_error(self) -> None:
        self.model_label.setStyleSheet("")
        self.model_label.setToolTip("")

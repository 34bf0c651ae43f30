"""Screenshots go through the atomic writer: a write that fails keeps the previous picture, and a replaced one
is said so."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from PySide6 import QtGui

from liqdesk.feeds import atomic


def test_a_failed_screenshot_keeps_the_previous_file(
    win, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "chart.png"
    target.write_bytes(b"previous picture")

    def full(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(atomic.os, "replace", full)
        assert win.capture.save_screenshot(target) is None
    box = win.capture.error_box
    assert box is not None and "No space left on device" in box.text()
    box.close()
    assert target.read_bytes() == b"previous picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chart.png"]  # no partial file left

    assert win.capture.save_screenshot(target) == target
    assert "replaced the previous file" in win.status.message_label.text()
    assert not QtGui.QImage(str(target)).isNull()
    assert os.stat(target).st_size > 1000

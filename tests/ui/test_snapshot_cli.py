"""`liqdesk snapshot`: a PNG of the requested size, clean one-line errors otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6 import QtGui

from liqdesk.app.cli import main

ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "liqdesk", "snapshot", *args], capture_output=True, text=True,
                          env=ENV, timeout=120)  # fmt: skip


def test_writes_png_of_requested_size(tmp_path: Path) -> None:
    out = tmp_path / "chart.png"
    r = _run("--out", str(out), "--size", "900x560", "--range", "24h")
    assert r.returncode == 0, r.stderr
    image = QtGui.QImage(str(out))
    assert (image.width(), image.height()) == (900, 560)
    # not blank: the heatmap and candles give many distinct colours
    colours = {image.pixel(x, y) for x in range(0, 900, 7) for y in range(0, 560, 7)}
    assert len(colours) > 100


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "big"], "--size"),
        (["--size", "10x10"], "--size"),
        (["--out", "/dev/null/x.png"], "is not a folder"),
        (["--out", "chart.jpg"], ".png"),
        (["--preset", "nope"], "unknown preset"),
        (["--candles", "/nonexistent/candles.csv"], "candles.csv"),
    ],
)
def test_user_errors_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                         message: str) -> None:  # fmt: skip
    argv = ["snapshot", "--out", str(tmp_path / "x.png"), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("liqdesk: error:") and message in err and "\n" not in err


def test_a_missing_folder_is_created_and_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "new" / "chart.png"
    assert main(["snapshot", "--out", str(out), "--size", "640x400", "--range", "24h"]) == 0
    assert f"created folder {tmp_path / 'new'}" in capsys.readouterr().out
    assert QtGui.QImage(str(out)).width() == 640
    assert main(["snapshot", "--out", str(out), "--size", "640x400", "--range", "24h"]) == 0
    assert "replaced the previous file" in capsys.readouterr().out

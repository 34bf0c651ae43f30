"""Nothing in state.json can stop the window: every value read from it went through the state's one validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6 import QtWidgets

from liqdesk.feeds.sample import load_sample
from liqdesk.feeds.state import SCHEMA
from liqdesk.ui import theme
from liqdesk.ui.data import SampleSource
from liqdesk.ui.session import wait_until_drawn
from liqdesk.ui.window import MainWindow, ViewSettings
from liqdesk.ui.workspace import Workspace


def factory(spec: dict[str, Any], settings: ViewSettings) -> tuple[MainWindow, None]:
    return MainWindow(SampleSource(), settings), None


@pytest.mark.parametrize("bad", ["1e308", "NaN", "Infinity", "-1e999", "-5", '"abc"', "null", "[[[]]]"])
def test_the_window_opens_whatever_numbers_state_json_holds(  # type: ignore[no-untyped-def]
    qapp: QtWidgets.QApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path))
    sample = load_sample()
    key = f"{sample.exchange}|{sample.symbol}"
    sections = ", ".join(
        f'"{sec}": {{' + ", ".join(f'"{k}": {bad}' for k in fields) + "}" for sec, fields in SCHEMA.items()
    )
    lines = (f'{{"kind": "stop", "price": {bad}}}, {{"kind": "target", "price": 61000.5}}, '
             f'{{"kind": "entry", "price": 60000, "side": "long", "leverage": {bad}, "size_usd": {bad}}}')  # fmt: skip
    (tmp_path / "state.json").write_text(
        f'{{"version": 1, {sections}, "panes": [{{"exchange": {bad}, "symbol": "{sample.symbol}", '
        f'"timeframe": "5m", "range": {bad}}}], "lines": {{"{key}": [{lines}]}}}}'
    )
    try:
        ws = Workspace(factory)
        ws.show()
        w = ws.current
        assert wait_until_drawn(w, 30.0)
        prices = sorted(i.price() for i in w.lines.items)
        assert prices == [60000.0, 61000.5]  # the hostile stop dropped, the good lines kept
        assert w.lines.position is None  # a position with a hostile leverage or size is not drawn
        assert ws.warning_label.isVisible() or bad == "null"
        ws.save()
        ws.close()
    finally:
        theme.set_theme("dark")

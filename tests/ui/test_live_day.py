"""A few hours of the live-day replay (tests/benchmarks/live_day.py) through the real app, at high speed: no error
shown, the chart follows the live edge (also after panning back and End), no alert repeated within one approach."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6 import QtWidgets

from tests.benchmarks.live_day import run_day


def test_a_few_replayed_hours_follow_the_market_without_errors_or_repeated_alerts(
    qapp: QtWidgets.QApplication, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines: list[str] = []
    report = run_day(
        36, 12.0, revisions=2, pans=1, hold_bars=6, screenshot=tmp_path / "day.png", say=lines.append
    )
    assert report.bars == 36, lines
    assert report.errors == [], report.errors
    assert report.follow_ok, (report.follow_notes, lines)
    assert report.repeated == [], report.repeated
    assert any("pan at bar" in line and "following True" in line for line in lines), lines
    assert report.screenshot is not None and report.screenshot.stat().st_size > 50_000

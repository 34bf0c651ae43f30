"""One way to write a duration and an instant in messages and reports."""

from __future__ import annotations

import pytest

from liqdesk.core.timespan import span_text, utc_text

H = 3_600_000


@pytest.mark.parametrize(
    "ms, text",
    [
        (4 * H, "4h"),
        (24 * H, "24h"),  # whole hours below two days read better than 1d
        (48 * H, "2d"),
        (7 * 24 * H, "7d"),
        (5 * 60_000, "5m"),
        (90 * 60_000, "90m"),
        (1_500, "1.5s"),
        (90_000, "90s"),
        (int(2.3 * 24 * H), "2.3d"),  # the span of loaded data: not a whole number of any unit
        (int(10.5 * H) + 7, "10.5h"),
        (250, "250 ms"),
        (2667 * 60_000, "44.5h"),  # 1.85 days of 1-minute bars: not "2667m"
        (4000 * 60_000, "2.8d"),
        (36 * H + 30 * 60_000, "36.5h"),
        (3 * 24 * H + 5 * 60_000, "3.0d"),
    ],
)
def test_span_text(ms: int, text: str) -> None:
    assert span_text(ms) == text


def test_utc_text() -> None:
    t = 1_737_996_738_119  # 2025-01-27T16:52:18.119Z
    assert utc_text(t) == "2025-01-27 16:52"
    assert utc_text(t, minutes=False) == "2025-01-27"
    assert utc_text(None) == "-"

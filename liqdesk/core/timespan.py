"""Durations and instants as people read them in messages and reports: one way everywhere."""

from __future__ import annotations

import datetime as _dt

_HOUR_MS = 3_600_000
_UNITS = (("d", 86_400_000), ("h", _HOUR_MS), ("m", 60_000), ("s", 1_000))


def span_text(ms: int) -> str:
    """A duration in its largest whole unit: ``24h`` (whole hours below two days read better than ``1d``),
    ``3d``, ``15m``, ``90s``; a duration that is no whole number of any unit in its largest unit with one
    decimal (``2.3d``, ``1.5h``); below a second in ms."""
    ms = int(ms)
    if ms % _HOUR_MS == 0 and 0 < ms < 48 * _HOUR_MS:
        return f"{ms // _HOUR_MS}h"
    for unit, div in _UNITS:
        if ms >= div and ms % div == 0:
            return f"{ms // div}{unit}"
    for unit, div in _UNITS:
        if ms >= div:
            return f"{ms / div:.1f}{unit}"
    return f"{ms} ms"


def utc_text(ms: int | None, *, minutes: bool = True) -> str:
    """An instant in UTC: ``2025-01-27 16:52`` (or the day alone, ``2025-01-27``); ``-`` for none."""
    if ms is None:
        return "-"
    t = _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M" if minutes else "%Y-%m-%d")

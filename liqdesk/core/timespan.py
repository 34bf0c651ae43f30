"""Durations and instants as people read them in messages and reports: one way everywhere."""

from __future__ import annotations

import datetime as _dt

_HOUR_MS = 3_600_000
_UNITS = (("d", 86_400_000), ("h", _HOUR_MS), ("m", 60_000), ("s", 1_000))


def span_text(ms: int) -> str:
    """A duration as people say it: ``24h`` (whole hours below two days read better than ``1d``), ``3d``,
    ``15m``, ``90s``; a whole number of the next smaller unit below 120 (``90m``, ``36h``); otherwise its
    largest unit with one decimal (``2.3d`` for 2.3 days of loaded data, never ``3312m``); below a second in ms."""
    ms = int(ms)
    if ms % _HOUR_MS == 0 and 0 < ms < 48 * _HOUR_MS:
        return f"{ms // _HOUR_MS}h"
    for i, (unit, div) in enumerate(_UNITS):
        if ms < div or (unit == "d" and ms < 48 * _HOUR_MS):  # below two days: hours
            continue
        if ms % div == 0:
            return f"{ms // div}{unit}"
        if i + 1 < len(_UNITS):
            small, sdiv = _UNITS[i + 1]
            if ms % sdiv == 0 and ms // sdiv < 120:
                return f"{ms // sdiv}{small}"
        return f"{ms / div:.1f}{unit}"
    return f"{ms} ms"


def utc_text(ms: int | None, *, minutes: bool = True) -> str:
    """An instant in UTC: ``2025-01-27 16:52`` (or the day alone, ``2025-01-27``); ``-`` for none."""
    if ms is None:
        return "-"
    t = _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M" if minutes else "%Y-%m-%d")

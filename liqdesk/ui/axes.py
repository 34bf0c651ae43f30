"""Axes: time labels for a bar-index x axis (local time or UTC) and a price axis.

x is the bar index, never epoch ms (Qt's float transforms lose precision at x near 1.7e12), so the
time axis maps index → open time itself and puts ticks on round times (hours, days, months).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyqtgraph as pg

from liqdesk.ui import format as fmt

_MIN = 60_000
_HOUR = 60 * _MIN
_DAY = 24 * _HOUR
# Candidate tick spacings, finest first.
_STEPS_MS = [
    _MIN, 5 * _MIN, 15 * _MIN, 30 * _MIN, _HOUR, 2 * _HOUR, 4 * _HOUR, 6 * _HOUR, 12 * _HOUR,
    _DAY, 2 * _DAY, 7 * _DAY, 14 * _DAY, 30 * _DAY, 91 * _DAY, 365 * _DAY,
]  # fmt: skip


class TimeAxisItem(pg.AxisItem):
    """Bottom axis for bar-index x: ticks at round local (or UTC) times."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(orientation="bottom", **kwargs)
        # No SI prefix for bar indices; with it on, every range change re-sets the (unshown) label's
        # HTML and re-lays out the axis.
        self.enableAutoSIPrefix(False)
        self._open_time = np.zeros(0, np.int64)
        self._interval_ms = _MIN
        self.utc = False
        self._step_ms = _HOUR

    def set_times(self, open_time: np.ndarray, interval_ms: int) -> None:
        self._open_time = open_time
        self._interval_ms = interval_ms
        self.picture = None
        self.update()

    def set_utc(self, utc: bool) -> None:
        self.utc = utc
        self.picture = None
        self.update()

    def time_at(self, x: float) -> int:
        """Epoch ms at bar-index x (extrapolated past either end of the data)."""
        t = self._open_time
        if len(t) == 0:
            return 0
        i = int(np.floor(x + 0.5))
        if i < 0:
            return int(t[0] + i * self._interval_ms)
        if i >= len(t):
            return int(t[-1] + (i - len(t) + 1) * self._interval_ms)
        return int(t[i])

    def _offset_ms(self, ms: int) -> int:
        if self.utc:
            return 0
        off = fmt.local_datetime(ms, False).utcoffset()
        return int(off.total_seconds() * 1000) if off else 0

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[tuple[float, list[float]]]:
        t = self._open_time
        if len(t) == 0 or maxVal <= minVal:
            return []
        t0, t1 = self.time_at(minVal), self.time_at(maxVal)
        span = max(t1 - t0, self._interval_ms)
        # ~1 label per 110 px
        target = span / max(size / 110.0, 1.0)
        step = next((s for s in _STEPS_MS if s >= target), _STEPS_MS[-1])
        step = max(step, self._interval_ms)
        self._step_ms = step
        off = self._offset_ms((t0 + t1) // 2)
        if step >= 30 * _DAY:
            every = 12 if step >= 365 * _DAY else (3 if step >= 91 * _DAY else 1)
            times = np.asarray(self._month_starts(t0, t1, every), np.int64)
        else:
            first = ((t0 + off) // step + 1) * step - off
            times = np.arange(first, t1 + 1, step, dtype=np.int64)
        if len(times) == 0:
            return []
        x = self._index_of(np.asarray(times, np.int64))
        x = x[(x >= minVal) & (x <= maxVal)]
        return [(float(step), sorted(set(x.tolist())))]

    def _month_starts(self, t0: int, t1: int, every: int) -> list[int]:
        start = fmt.local_datetime(t0, self.utc)
        y, m = start.year, start.month
        out: list[int] = []
        tz = UTC if self.utc else start.tzinfo
        while True:
            m += 1
            if m > 12:
                y, m = y + 1, 1
            if (m - 1) % every:
                continue
            ms = int(datetime(y, m, 1, tzinfo=tz).timestamp() * 1000)
            if ms > t1:
                return out
            out.append(ms)

    def _index_of(self, times: np.ndarray) -> np.ndarray:
        """Fractional bar index of each time (bar i spans [i − 0.5, i + 0.5))."""
        t = self._open_time
        i = np.searchsorted(t, times, "right") - 1
        i = np.clip(i, 0, len(t) - 1)
        return i + (times - t[i]) / self._interval_ms - 0.5

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        out = []
        step = self._step_ms
        for v in values:
            dt = fmt.local_datetime(self._time_exact(v), self.utc)
            if step >= 30 * _DAY:
                out.append(dt.strftime("%b %Y") if dt.month == 1 or step >= 365 * _DAY else dt.strftime("%b"))
            elif step >= _DAY or (dt.hour == 0 and dt.minute == 0):
                out.append(dt.strftime("%d %b"))
            else:
                out.append(dt.strftime("%H:%M"))
        return out

    def _time_exact(self, x: float) -> int:
        t = self._open_time
        if len(t) == 0:
            return 0
        i = int(np.clip(np.floor(x + 0.5), 0, len(t) - 1))
        return int(t[i] + round((x + 0.5 - i) * self._interval_ms))


class PriceAxisItem(pg.AxisItem):
    """Right price axis with thousands separators and no SI prefix (BTC reads 104,250 not 104.25k)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(orientation="right", **kwargs)
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        decimals = max(0, -int(np.floor(np.log10(spacing)))) if spacing > 0 else 0
        return [f"{v:,.{min(decimals, 8)}f}" for v in values]


class UsdAxisItem(pg.AxisItem):
    """Axis for USD notional (liquidation-map x). Blank until there are numbers to scale it (before the
    first frame its default 0–1 range read "-$0 0 $0 $1")."""

    def __init__(self, orientation: str = "bottom", **kwargs: object) -> None:
        super().__init__(orientation=orientation, **kwargs)
        self.enableAutoSIPrefix(False)
        self.blank = True

    def set_blank(self, blank: bool) -> None:
        if blank != self.blank:
            self.blank = blank
            self.picture = None
            self.update()

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        if self.blank:
            return ["" for _ in values]
        return [fmt.usd(v) if v else "0" for v in values]


class VolumeAxisItem(pg.AxisItem):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(orientation="right", **kwargs)
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        return [fmt.volume(v) for v in values]

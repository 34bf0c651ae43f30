"""Parse user-supplied times and durations: ISO 8601 instants (`Z`, offsets, UTC by default), epoch
milliseconds, and durations such as ``90m``, ``12h``, ``3d``, ``1w``, ``1y``.

All results are epoch milliseconds / milliseconds (int). Errors are ``ConfigError`` naming the bad value.
"""

from __future__ import annotations

import datetime as _dt
import re
import time

from liqdesk.errors import ConfigError

_UNIT_MS = {
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 7 * 86_400_000,
    "y": 365 * 86_400_000,
}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdwy])\s*$", re.IGNORECASE)
MAX_DURATION_MS = 100 * _UNIT_MS["y"]  # longer than any market data; beyond it arithmetic on times overflows
MIN_TIME_MS = 0  # 1970-01-01
MAX_TIME_MS = 4_102_444_800_000  # 2100-01-01


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def parse_duration(text: str, *, what: str = "duration") -> int:
    """``"3d"`` → 259_200_000. Units: s, m (minutes), h, d, w, y (365 d). Raises ConfigError."""
    m = _DURATION_RE.match(str(text))
    if not m:
        raise ConfigError(f"bad {what} {text!r}: expected a number and a unit, like 90m, 12h, 3d, 1y")
    value = float(m.group(1)) * _UNIT_MS[m.group(2).lower()]
    if value < 1:
        raise ConfigError(f"bad {what} {text!r}: must be greater than zero")
    if value > MAX_DURATION_MS:
        raise ConfigError(f"bad {what} {text!r}: longer than 100 years")
    return int(value)


def parse_time(text: str, *, what: str = "time") -> int:
    """An instant as epoch ms: ISO 8601 (``2025-01-27``, ``2025-01-27T16:50``, ``…Z``, ``…+02:00``; naive
    times are UTC) or an integer of epoch milliseconds (≥ 10^11) / seconds. Raises ConfigError."""
    s = str(text).strip()
    if not s:
        raise ConfigError(f"bad {what}: empty")
    if re.fullmatch(r"\d{9,13}", s):
        n = int(s)
        return _in_range(n if n >= 10**11 else n * 1000, text, what)
    iso = s[:-1] + "+00:00" if s[-1] in "zZ" else s
    try:
        parsed = _dt.datetime.fromisoformat(iso)
    except ValueError:
        raise ConfigError(
            f"bad {what} {text!r}: expected ISO 8601 like 2025-01-27, 2025-01-27T16:50Z or 2025-01-27T18:50+02:00"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.UTC)
    return _in_range(int(parsed.timestamp() * 1000), text, what)


def _in_range(ms: int, text: str, what: str) -> int:
    if not MIN_TIME_MS <= ms < MAX_TIME_MS:
        raise ConfigError(f"bad {what} {text!r}: expected a time between 1970 and 2100")
    return ms


def format_time(ms: int) -> str:
    """Epoch ms → ``2025-01-27T16:52:18.119Z`` (times no calendar can show: ``epoch ms N``)."""
    try:
        t = _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.UTC)
    except (ValueError, OverflowError, OSError):
        return f"epoch ms {ms}"
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"

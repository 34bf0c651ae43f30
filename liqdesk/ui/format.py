"""Number and time formatting shared by axes, labels and the readout (no Qt)."""

from __future__ import annotations

import math
from datetime import UTC, datetime


def usd(value: float) -> str:
    """Compact USD: $1.23B, $45.6M, $789K, $12."""
    v = abs(value)
    sign = "-" if value < 0 else ""
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if v >= div:
            x = v / div
            return f"{sign}${x:.3g}{suffix}" if x < 100 else f"{sign}${x:.0f}{suffix}"
    return f"{sign}${v:.0f}"


def price_decimals(price: float) -> int:
    """Decimals that show a price like an exchange would (BTC 1, small coins more)."""
    if not math.isfinite(price) or price <= 0:
        return 2
    if price >= 1000:
        return 1
    return min(8, max(2, 3 - int(math.floor(math.log10(price)))))


def price(value: float, decimals: int | None = None) -> str:
    d = price_decimals(value) if decimals is None else decimals
    return f"{value:,.{d}f}"


def volume(value: float) -> str:
    v = abs(value)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if v >= div:
            return f"{value / div:.3g}{suffix}"
    return f"{value:.4g}"


def local_datetime(ms: int, utc: bool) -> datetime:
    dt = datetime.fromtimestamp(ms / 1000.0, tz=UTC)
    return dt if utc else dt.astimezone()


def timestamp(ms: int, utc: bool) -> str:
    dt = local_datetime(ms, utc)
    zone = "UTC" if utc else dt.strftime("%Z") or dt.strftime("%z")
    return dt.strftime("%Y-%m-%d %H:%M ") + zone

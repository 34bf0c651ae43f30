"""From USD notional to display pixels: value transform, colour levels and uint8 quantisation.

Done before the image reaches Qt (on the GPU when one is used): pyqtgraph draws a pre-quantised
uint8 image with a 256-entry lookup table far faster than float data (desktop.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

TRANSFORMS = ("sqrt", "log", "linear")
DEFAULT_LOW_PCT = 15.0  # of non-zero cells (docs/model.md)
DEFAULT_HIGH_PCT = 99.5


def transform(values: Any, kind: str = "sqrt", xp: Any = np, *, inplace: bool = False) -> Any:
    """Monotonic value transform applied before colouring; zero stays zero.

    Works in place on one new array, or with `inplace` on `values` itself (a float array): no
    temporaries of the input's size."""
    v = xp.asarray(values)
    if not inplace:
        v = v.copy() if v.dtype.kind == "f" else v.astype(xp.float64)
    elif v.dtype.kind != "f":
        raise TypeError("an in-place transform needs a float array")
    xp.maximum(v, 0, out=v)
    if kind == "sqrt":
        return xp.sqrt(v, out=v)
    if kind == "log":
        v /= 1_000.0  # log of notional in $1k units; 0 → 0
        return xp.log1p(v, out=v)
    if kind == "linear":
        return v
    raise ValueError(f"unknown transform {kind!r}; expected one of {', '.join(TRANSFORMS)}")


def default_levels(
    tvalues: Any, low_pct: float = DEFAULT_LOW_PCT, high_pct: float = DEFAULT_HIGH_PCT, xp: Any = np
) -> tuple[float, float]:
    """Colour range from percentiles of the non-zero (transformed) cells."""
    nz = tvalues[tvalues > 0]
    if nz.size == 0:
        return 0.0, 1.0
    lo, hi = (float(x) for x in xp.percentile(nz, xp.asarray([low_pct, high_pct])))
    if hi <= lo:
        hi = lo + max(abs(lo) * 1e-6, 1e-12)
    return lo, hi


def quantise(tvalues: Any, levels: tuple[float, float], xp: Any = np) -> Any:
    """Map transformed values to uint8: 0 = empty cell, 1..255 = low..high level (clipped)."""
    lo, hi = levels
    # 1 + (v − lo) / (hi − lo) · 254, rounded and clipped, in place on one temporary
    s = xp.asarray(tvalues - lo)
    s /= hi - lo
    s *= 254.0
    s += 1.0
    q = xp.clip(xp.rint(s, out=s), 1, 255, out=s).astype(xp.uint8)
    return xp.where(tvalues > 0, q, xp.uint8(0))

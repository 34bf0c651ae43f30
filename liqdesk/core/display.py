"""From USD notional to display codes: value transform, colour levels and uint8 quantisation.

Done before the image reaches Qt (on the GPU when one is used): pyqtgraph draws a pre-quantised
uint8 image with a 256-entry lookup table far faster than float data. Every function takes the
array module it works on (NumPy or CuPy).

A frame keeps one grid of "frame values" (`frame_values`): the two sides' transformed values
summed, or for the two-tone map the larger side, signed (+long, −short). The codes are 0 for an
empty cell and 1..255 for low..high, or with two tones 1..127 for longs and 128..255 for shorts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TRANSFORMS = ("sqrt", "log", "linear")
TRANSFORM_CODES = {"linear": 0, "sqrt": 1, "log": 2}  # as the device painter knows them
DEFAULT_LOW_PCT = 15.0  # of non-zero cells
DEFAULT_HIGH_PCT = 99.5
# Elementwise work in blocks of this many cells: temporaries of 8–16 MB instead of the grid size,
# same numbers. Much smaller blocks slow frames down in the app: each block hands the GIL back and
# forth with the busy UI thread (256 k cells: ~2× the frame latency while panning).
BLOCK_CELLS = 1 << 21


def check_transform(kind: str) -> None:
    if kind not in TRANSFORMS:
        raise ValueError(f"unknown transform {kind!r}; expected one of {', '.join(TRANSFORMS)}")


def transform(values: Any, kind: str = "sqrt", xp: Any = np, *, inplace: bool = False) -> Any:
    """Monotonic value transform applied before colouring; zero stays zero.

    Works in place on one new array, or with `inplace` on `values` itself (a float array): no
    temporaries of the input's size."""
    check_transform(kind)
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
    return v


def default_levels(
    tvalues: Any,
    low_pct: float = DEFAULT_LOW_PCT,
    high_pct: float = DEFAULT_HIGH_PCT,
    xp: Any = np,
    *,
    positive: bool = False,
) -> tuple[float, float]:
    """Colour range from percentiles of the non-zero (transformed) cells. positive=True: `tvalues`
    holds only those cells already and may be reordered (no copy of them is made)."""
    nz = tvalues if positive else tvalues[tvalues > 0]
    if nz.size == 0:
        return 0.0, 1.0
    # partitioned in place on NumPy (no copy of the cells); CuPy before v13 takes no overwrite_input
    kw = {"overwrite_input": True} if xp is np else {}
    lo, hi = (float(x) for x in xp.percentile(nz, (low_pct, high_pct), **kw))
    if hi <= lo:
        hi = lo + max(abs(lo) * 1e-6, 1e-12)
    return lo, hi


def frame_values(tlong: Any, tshort: Any, two_tone: bool, xp: Any = np, out: Any = None) -> Any:
    """The one grid a frame keeps, from the two sides' transformed values (both ≥ 0): their sum,
    or for the two-tone map +tlong where longs win (tlong ≥ tshort), −tshort where shorts do, 0
    where both are empty. Half the memory of keeping both sides, and the same image for any
    levels. Written into `out` (which may be `tlong`) a block of rows at a time."""
    out = xp.empty(tlong.shape, xp.result_type(tlong, tshort)) if out is None else out
    step = row_step(tlong)
    for r0 in range(0, tlong.shape[0], step):
        rows = slice(r0, r0 + step)
        tl, ts = tlong[rows], tshort[rows]
        out[rows] = xp.where(tl >= ts, tl, -ts) if two_tone else tl + ts
    return out


def quantise_values(values: Any, levels: tuple[float, float], two_tone: bool, xp: Any = np) -> Any:
    """uint8 codes of frame values, a block of rows at a time (elementwise: the same codes as in
    one go, without several float temporaries the size of the grid)."""
    if values.ndim != 2:
        return _quantise(values, levels, two_tone, xp)
    out = xp.empty(values.shape, xp.uint8)
    step = row_step(values)
    for r0 in range(0, values.shape[0], step):
        out[r0 : r0 + step] = _quantise(values[r0 : r0 + step], levels, two_tone, xp)
    return out


def quantise(tvalues: Any, levels: tuple[float, float], xp: Any = np) -> Any:
    """One ramp: 0 = empty cell, 1..255 = low..high level (clipped)."""
    lo, hi = levels
    # 1 + (v − lo) / (hi − lo) · 254, rounded and clipped, in place on one temporary
    s = xp.asarray(tvalues - lo)
    s /= hi - lo
    s *= 254.0
    s += 1.0
    q = xp.clip(xp.rint(s, out=s), 1, 255, out=s).astype(xp.uint8)
    return xp.where(tvalues > 0, q, xp.uint8(0))


def quantise_two_tone(values: Any, levels: tuple[float, float], xp: Any = np) -> Any:
    """Signed frame values: longs (> 0) 1..127, shorts (< 0) 128..255, 0 empty."""
    lo, hi = levels
    span = hi - lo

    def ramp(v: Any, n: int) -> Any:
        return xp.clip(xp.rint((v - lo) / span * (n - 1)), 0, n - 1).astype(xp.uint8)

    long_code = 1 + ramp(values, 127)
    short_code = 128 + ramp(-values, 128)
    return xp.where(values > 0, long_code, xp.where(values < 0, short_code, xp.uint8(0))).astype(xp.uint8)


def _quantise(values: Any, levels: tuple[float, float], two_tone: bool, xp: Any) -> Any:
    codes = quantise_two_tone(values, levels, xp) if two_tone else quantise(values, levels, xp)
    return xp.ascontiguousarray(codes)


def row_step(a: Any) -> int:
    """Rows per block of elementwise work on `a` (about BLOCK_CELLS cells)."""
    return max(1, BLOCK_CELLS // max(int(a.shape[-1]), 1))

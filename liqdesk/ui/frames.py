"""What the background worker computes for one picture of the chart (NumPy, or the device pipeline; no Qt).

A frame is the heatmap over a range of bars and prices (quantised to uint8 with the levels the
user chose or percentile defaults from the visible cells), the liquidation map at the last visible
bar with its magnets, and the sweep bubbles in the range. The UI thread only hands arrays to items.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liqdesk.core import display
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import PriceBins, column_bars, paint_side, release_scratch
from liqdesk.core.liqmap import LiquidationMap, Magnet, find_magnets, liquidation_map
from liqdesk.core.series import LONG, SHORT

TWO_TONE = "longshort"


@dataclass(frozen=True)
class FrameRequest:
    generation: int
    start_bar: int  # rendered bars [start_bar, end_bar): the visible range plus a margin
    end_bar: int
    columns: int
    bins: PriceBins
    visible_bars: tuple[int, int]  # what is on screen: automatic levels come from these cells
    visible_prices: tuple[float, float]
    map_bar: int  # the liquidation map's instant (the last visible bar)
    transform: str = "sqrt"
    levels: tuple[float, float] | None = None  # None: percentile defaults from the visible cells
    colormap: str = "liqdesk"
    max_bubbles: int = 60

    @property
    def two_tone(self) -> bool:
        return self.colormap == TWO_TONE


@dataclass(frozen=True)
class Bubbles:
    """Estimated sweeps aggregated per (bar, side): where modelled levels were liquidated."""

    x: np.ndarray  # bar index
    price: np.ndarray  # notional-weighted price of the swept levels
    usd: np.ndarray
    side: np.ndarray  # LONG / SHORT (which positions were liquidated)

    @staticmethod
    def empty() -> Bubbles:
        z = np.zeros(0)
        return Bubbles(z, z, z, np.zeros(0, np.int8))

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class Columns:
    """Which bars each heatmap column covers (the raw USD grid itself is not kept: memory)."""

    time_ms: np.ndarray
    first_bar: np.ndarray
    last_bar: np.ndarray  # the column shows the state at the end of this bar

    def __len__(self) -> int:
        return len(self.last_bar)


@dataclass
class Frame:
    request: FrameRequest
    columns: Columns
    # (P, T) float32, row-major like the image: what the image quantises (see `frame_values`),
    # kept so that new levels re-colour the frame without engine work. None for a device frame,
    # and dropped by the worker once it computes a newer frame (only the newest is re-coloured).
    values: np.ndarray | None
    image: np.ndarray  # (P, T) uint8
    levels: tuple[float, float]
    lmap: LiquidationMap
    magnets: list[Magnet]
    bubbles: Bubbles
    model_label: str
    compute_ms: float = 0.0
    notes: list[str] = field(default_factory=list)
    # (image, lut, pixels): `image` coloured with `lut` as ARGB32 words by the worker, so
    # the UI thread only wraps it in a QImage. Set as one tuple: a requantise replaces it whole.
    coloured: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    # The device pipeline's frame (core.device_build.DeviceFrame) when the backend is CuPy: its
    # transformed grids are DEVICE arrays, used only by the worker thread (re-quantise, live patch),
    # never by the UI. None: a NumPy frame from compute_frame.
    device: Any = None
    backend: str = "numpy"  # which pipeline rendered the heatmap: "numpy" or "cupy"

    @property
    def rect(self) -> tuple[float, float, float, float]:
        """Image placement in chart coordinates: x in bar index (bar i spans i ± 0.5), y in price."""
        r = self.request
        b = r.bins
        return (r.start_bar - 0.5, b.lo, float(r.end_bar - r.start_bar), b.hi - b.lo)


def compute_frame(engine: LiquidationEngine, req: FrameRequest) -> Frame:
    t0 = time.perf_counter()
    first, last = column_bars(req.start_bar, req.end_bar, req.columns)
    # Each side painted straight into the image's (P, T) layout and transformed in place: two
    # float32 grids (15 MB each at 3,200 × 1,300), the only grid-sized arrays made. The painter's
    # scratch (~12 bytes a cell of a column block) is freed after each frame: frames are ~0.2 s
    # apart at most and the page faults cost ~10 ms, while keeping it costs ~12 MB for the
    # window's whole life.
    tlong = display.transform(
        paint_side(engine, req.bins, last, LONG, transposed=True), req.transform, inplace=True
    )
    tshort = paint_side(engine, req.bins, last, SHORT, transposed=True)
    release_scratch()
    display.transform(tshort, req.transform, inplace=True)
    columns = Columns(engine.open_time[first], first, last)
    levels = req.levels or auto_levels(columns, tlong, tshort, req)
    values = frame_values(tlong, tshort, req.two_tone, out=tlong)
    del tshort
    lmap = liquidation_map(engine, req.bins, req.map_bar)
    frame = Frame(
        request=req,
        columns=columns,
        values=values,
        image=quantise_values(values, levels, req.two_tone),
        levels=levels,
        lmap=lmap,
        magnets=find_magnets(lmap, per_side=3),
        bubbles=sweep_bubbles(engine, req.start_bar, req.end_bar, req.max_bubbles),
        model_label=engine.model_label(req.visible_bars[0], req.visible_bars[1]),
    )
    frame.compute_ms = (time.perf_counter() - t0) * 1000.0
    return frame


def compute_frame_device(engine: LiquidationEngine, device: Any, req: FrameRequest) -> Frame:
    """The frame with its heatmap from the device pipeline (core.device_build.DeviceModel, CuPy).

    On the device: grid, value transform, levels (same rule as `auto_levels`: percentiles of the
    cells on screen), uint8 quantisation and the liquidation map at `req.map_bar`.
    What crosses to the host: the (P, T) uint8 image, the two levels, the (K, P) liquidation-map
    vectors and their totals. The transformed float32 grids stay on the device (frame.device.tlong
    / .tshort are CuPy arrays) for re-quantisation and live patches; the UI never reads them.
    The CPU engine (built beside the DeviceModel from the same data) gives the sweep bubbles and
    the model label, and keeps serving the crosshair readout, lines and export.
    """
    t0 = time.perf_counter()
    _, last = column_bars(req.start_bar, req.end_bar, req.columns)
    levels = req.levels or visible_levels(last, req, device.xp)
    f = device.frame(
        req.bins, req.start_bar, req.end_bar, req.columns, transform=req.transform, levels=levels,
        two_tone=req.two_tone, map_bar=req.map_bar,
    )  # fmt: skip
    frame = Frame(
        request=req,
        columns=Columns(f.time_ms, f.first_bar, f.last_bar),
        values=None,
        image=f.image,
        levels=f.levels,
        lmap=f.lmap,
        magnets=find_magnets(f.lmap, per_side=3),
        bubbles=sweep_bubbles(engine, req.start_bar, req.end_bar, req.max_bubbles),
        model_label=engine.model_label(req.visible_bars[0], req.visible_bars[1]),
        device=f,
        backend="cupy" if device.backend.is_gpu else "numpy",
    )
    frame.compute_ms = (time.perf_counter() - t0) * 1000.0
    return frame


def visible_levels(last_bar: np.ndarray, req: FrameRequest, xp: Any) -> Any:
    """`auto_levels` for the device: a function of the device grids (tlong, tshort) -> levels,
    from the cells on screen (all cells when none there is positive); two floats come back."""
    c0 = int(np.searchsorted(last_bar, req.visible_bars[0], "left"))
    c1 = int(np.searchsorted(last_bar, req.visible_bars[1], "left")) + 1
    p0, p1 = (int(np.clip(i, 0, req.bins.n)) for i in _bin_span(req.bins, *req.visible_prices))

    def levels(tl: Any, ts: Any) -> tuple[float, float]:
        m = xp.maximum(tl[p0:p1, c0:c1], ts[p0:p1, c0:c1])
        if not bool((m > 0).any()):
            m = xp.maximum(tl, ts)
        return display.default_levels(m, xp=xp)

    return levels


# Elementwise work in blocks of this many cells: temporaries of 8–16 MB instead of the grid size,
# same numbers. Much smaller blocks slow frames down in the app: each block hands the GIL back and
# forth with the busy UI thread (256 k cells: ~2× the frame latency while panning).
BLOCK_CELLS = 1 << 21


def auto_levels(
    columns: Columns, tlong: np.ndarray, tshort: np.ndarray, req: FrameRequest
) -> tuple[float, float]:
    """Percentile levels over the cells on screen (colour is relative to the visible data)."""
    c0 = int(np.searchsorted(columns.last_bar, req.visible_bars[0], "left"))
    c1 = int(np.searchsorted(columns.last_bar, req.visible_bars[1], "left")) + 1
    p0, p1 = (int(np.clip(i, 0, req.bins.n)) for i in _bin_span(req.bins, *req.visible_prices))
    nz = _positive_max(tlong[p0:p1, c0:c1], tshort[p0:p1, c0:c1])
    if not nz.size:
        nz = _positive_max(tlong, tshort)
    if not nz.size:
        return display.default_levels(nz)
    # display.default_levels on the non-zero cells, without its copies of them (~20 MB at full
    # screen): the same percentiles, partitioned in place.
    lo, hi = (float(x) for x in np.percentile(
        nz, [display.DEFAULT_LOW_PCT, display.DEFAULT_HIGH_PCT], overwrite_input=True))  # fmt: skip
    if hi <= lo:
        hi = lo + max(abs(lo) * 1e-6, 1e-12)
    return lo, hi


def _positive_max(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The positive cells of max(a, b) (both ≥ 0), a block of rows at a time, counted first so
    that they are gathered straight into one array (no list of parts joined into a second copy).
    Smaller blocks than elsewhere: this runs while both sides' grids are alive, at a frame's peak."""
    step = max(1, _row_step(a) // 8)
    blocks = [slice(r0, r0 + step) for r0 in range(0, a.shape[0], step)]
    counts = [int(np.count_nonzero((a[r] > 0) | (b[r] > 0))) for r in blocks]
    out = np.empty(sum(counts), np.result_type(a, b))
    i = 0
    for r, n in zip(blocks, counts, strict=True):
        m = np.maximum(a[r], b[r])
        out[i : i + n] = m[m > 0]
        i += n
    return out


def _bin_span(bins: PriceBins, lo: float, hi: float) -> tuple[int, int]:
    return int(np.floor((lo - bins.lo) / bins.width)), int(np.ceil((hi - bins.lo) / bins.width))


def frame_values(
    tlong: np.ndarray, tshort: np.ndarray, two_tone: bool, out: np.ndarray | None = None
) -> np.ndarray:
    """The one grid a frame keeps, from the two sides' transformed values (both ≥ 0): their sum,
    or for the two-tone map the larger side, signed: +tlong where longs win (tlong ≥ tshort),
    −tshort where shorts do, 0 where both are empty. Half the memory of keeping both sides, and
    the same image for any levels; switching to or from two-tone needs a new frame. Written into
    `out` (which may be `tlong`) a block of rows at a time."""
    out = np.empty(tlong.shape, np.result_type(tlong, tshort)) if out is None else out
    step = _row_step(tlong)
    for r0 in range(0, tlong.shape[0], step):
        rows = slice(r0, r0 + step)
        tl, ts = tlong[rows], tshort[rows]
        out[rows] = np.where(tl >= ts, tl, -ts) if two_tone else tl + ts
    return out


def quantise_values(values: np.ndarray, levels: tuple[float, float], two_tone: bool) -> np.ndarray:
    """uint8 codes for the 256-entry LUT from `frame_values`: 0 empty; one ramp 1..255, or long
    1..127 / short 128..255. Computed a block of rows at a time (elementwise, so the same codes as
    in one go, without several float temporaries the size of the grid)."""
    if values.ndim != 2:
        return _quantise(values, levels, two_tone)
    out = np.empty(values.shape, np.uint8)
    step = _row_step(values)
    for r0 in range(0, values.shape[0], step):
        out[r0 : r0 + step] = _quantise(values[r0 : r0 + step], levels, two_tone)
    return out


def quantise(
    tlong: np.ndarray, tshort: np.ndarray, levels: tuple[float, float], two_tone: bool
) -> np.ndarray:
    """`quantise_values` straight from the two sides' transformed values."""
    return quantise_values(frame_values(tlong, tshort, two_tone), levels, two_tone)


def _row_step(a: np.ndarray) -> int:
    return max(1, BLOCK_CELLS // max(a.shape[-1], 1))


def _quantise(values: np.ndarray, levels: tuple[float, float], two_tone: bool) -> np.ndarray:
    if not two_tone:
        return np.ascontiguousarray(display.quantise(values, levels))
    lo, hi = levels
    span = hi - lo

    def ramp(v: np.ndarray, n: int) -> np.ndarray:
        return np.clip(np.rint((v - lo) / span * (n - 1)), 0, n - 1).astype(np.uint8)

    long_code = 1 + ramp(values, 127)
    short_code = 128 + ramp(-values, 128)
    out = np.where(values > 0, long_code, np.where(values < 0, short_code, np.uint8(0)))
    return np.ascontiguousarray(out.astype(np.uint8))


def colour(image: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """uint8 codes → 32-bit pixels in QImage.Format_ARGB32's layout (0xAARRGGBB words)."""
    return argb_table(lut)[image]


def argb_table(lut: np.ndarray) -> np.ndarray:
    """A 256 × 3 or 256 × 4 uint8 lookup table as 256 ARGB32 words (alpha 255 when not given)."""
    rgba = np.zeros((256, 4), np.uint32)
    lut = np.asarray(lut)[:256]
    rgba[: len(lut), : lut.shape[1]] = lut
    if lut.shape[1] == 3:
        rgba[: len(lut), 3] = 255
    r, g, b, a = rgba.T
    return ((a << 24) | (r << 16) | (g << 8) | b).astype(np.uint32)


def requantise(frame: Frame, levels: tuple[float, float], colormap: str) -> np.ndarray:
    """New image for new levels, or a colour map of the same mode, from the frame's kept values
    (no engine work)."""
    if frame.values is None:
        raise ValueError("a device frame is re-quantised on the device")
    if (colormap == TWO_TONE) != frame.request.two_tone:
        raise ValueError("switching to or from the two-tone map needs a new frame")
    return quantise_values(frame.values, levels, frame.request.two_tone)


def sweep_bubbles(engine: LiquidationEngine, start_bar: int, end_bar: int, limit: int) -> Bubbles:
    """The `limit` largest (bar, side) sweeps in the range."""
    ev = engine.sweeps(start_bar, end_bar)
    if not len(ev):
        return Bubbles.empty()
    key = ev.bar.astype(np.int64) * 2 + (ev.side == SHORT)
    uniq, inv = np.unique(key, return_inverse=True)
    usd = np.bincount(inv, weights=ev.usd)
    price = np.bincount(inv, weights=ev.usd * ev.price) / np.where(usd > 0, usd, 1.0)
    keep = np.argsort(usd)[::-1][:limit]
    keep = keep[usd[keep] > 0]
    return Bubbles(
        x=(uniq[keep] // 2).astype(np.float64),
        price=price[keep],
        usd=usd[keep],
        side=np.where(uniq[keep] % 2 == 1, SHORT, LONG).astype(np.int8),
    )


@dataclass(frozen=True)
class CursorInfo:
    """The liquidation map at the hovered bar, for the crosshair readout."""

    generation: int
    bar: int
    lmap: LiquidationMap


def cursor_values(lmap: LiquidationMap, price: float) -> dict[str, object]:
    """Numbers the readout shows at `price` on the map's bar (also what the tests compare)."""
    b = int(lmap.bins.index(np.array([price]))[0])
    if b < 0:
        return {"inside": False}
    long_tiers = lmap.long_by_tier[:, b]
    short_tiers = lmap.short_by_tier[:, b]
    above = price >= lmap.price_now
    cum = float(lmap.cum_short[b]) if above else float(lmap.cum_long[b])
    return {
        "inside": True,
        "bin": b,
        "bin_low": float(lmap.bins.edges[b]),
        "bin_high": float(lmap.bins.edges[b + 1]),
        "long_usd": float(long_tiers.sum()),
        "short_usd": float(short_tiers.sum()),
        "long_tiers": dict(zip(lmap.tier_labels, map(float, long_tiers), strict=True)),
        "short_tiers": dict(zip(lmap.tier_labels, map(float, short_tiers), strict=True)),
        "cumulative_side": SHORT if above else LONG,
        "cumulative_usd": cum,
        "price_now": lmap.price_now,
        "distance_pct": (price - lmap.price_now) / lmap.price_now * 100.0,
    }

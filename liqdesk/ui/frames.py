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

from liqdesk.core.display import frame_values, quantise_values
from liqdesk.core.engine import LiquidationEngine, SweepTotals
from liqdesk.core.grid import PriceBins
from liqdesk.core.heatmap import render_view
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
    # (P, T) float32, row-major like the image: what the image quantises (display.frame_values),
    # kept so that new levels re-colour the frame without engine work. On the array module of the
    # engine that painted it (a CuPy array when `backend` is "cupy": only the worker thread uses it),
    # and dropped by the worker once it computes a newer frame (only the newest is re-coloured).
    values: Any
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
    backend: str = "numpy"  # the backend of the engine that painted the heatmap: "numpy" or "cupy"
    # what the bars of [request.start_bar, sweeps_to) swept per (bar, side), as the engine's `state_mark` left
    # them: the bubbles are picked from it, and a live bar recomputes only its tail (`live_sweeps`)
    sweeps: SweepTotals | None = None
    sweeps_to: int = 0
    state_mark: tuple[int, ...] = ()

    @property
    def rect(self) -> tuple[float, float, float, float]:
        """Image placement in chart coordinates: x in bar index (bar i spans i ± 0.5), y in price."""
        r = self.request
        b = r.bins
        return (r.start_bar - 0.5, b.lo, float(r.end_bar - r.start_bar), b.hi - b.lo)


def compute_frame(
    engine: LiquidationEngine, req: FrameRequest, heat: LiquidationEngine | None = None
) -> Frame:
    """The frame for a request. `heat`: the engine that paints the heatmap and the liquidation map
    (the device engine when the backend is CuPy; default `engine`); `engine`, the CPU engine, gives
    the sweep bubbles and the model label."""
    t0 = time.perf_counter()
    heat = engine if heat is None else heat
    view = render_view(
        heat, req.bins, req.start_bar, req.end_bar, req.columns, transform=req.transform, levels=req.levels,
        two_tone=req.two_tone, visible_bars=req.visible_bars, visible_prices=req.visible_prices,
    )  # fmt: skip
    lmap = liquidation_map(heat, req.bins, req.map_bar)
    mark = engine.state_mark()
    sweeps = engine.sweep_totals(req.start_bar, req.end_bar)
    frame = Frame(
        request=req,
        columns=Columns(view.time_ms, view.first_bar, view.last_bar),
        values=view.values,
        image=view.image,
        levels=view.levels,
        lmap=lmap,
        magnets=find_magnets(lmap, per_side=3),
        bubbles=top_bubbles(sweeps, req.max_bubbles),
        model_label=engine.model_label(req.visible_bars[0], req.visible_bars[1]),
        backend=heat.backend.name,
        sweeps=sweeps,
        sweeps_to=req.end_bar,
        state_mark=mark,
    )
    frame.compute_ms = (time.perf_counter() - t0) * 1000.0
    return frame


def quantise(
    tlong: np.ndarray, tshort: np.ndarray, levels: tuple[float, float], two_tone: bool
) -> np.ndarray:
    """uint8 codes straight from the two sides' transformed values."""
    codes: np.ndarray = quantise_values(frame_values(tlong, tshort, two_tone), levels, two_tone)
    return codes


def colour(image: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """uint8 codes → 32-bit pixels in QImage.Format_ARGB32's layout (0xAARRGGBB words)."""
    pixels: np.ndarray = argb_table(lut)[image]
    return pixels


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
    """New image for new levels, or a colour map of the same mode, from a NumPy frame's kept values
    (no engine work)."""
    if frame.values is None:
        raise ValueError("the frame's values were dropped (a newer frame superseded it)")
    if (colormap == TWO_TONE) != frame.request.two_tone:
        raise ValueError("switching to or from the two-tone map needs a new frame")
    codes: np.ndarray = quantise_values(frame.values, levels, frame.request.two_tone)
    return codes


def top_bubbles(t: SweepTotals, limit: int) -> Bubbles:
    """The `limit` largest rows of a sweep table, largest first (equal ones in (bar, side) order)."""
    if not len(t) or limit <= 0:
        return Bubbles.empty()
    key = t.bar * 2 + (t.side == SHORT)
    top = np.argpartition(-t.usd, limit - 1)[:limit] if len(t) > limit else np.arange(len(t))
    keep = top[np.lexsort((key[top], -t.usd[top]))]
    return Bubbles(x=t.bar[keep].astype(np.float64), price=t.price[keep], usd=t.usd[keep], side=t.side[keep])


def live_sweeps(engine: LiquidationEngine, frame: Frame, end_bar: int) -> SweepTotals:
    """The sweep table of [frame's start bar, end_bar) after live bars: the frame's rows before the first bar
    the engine changed since (`changed_from`), the rest recomputed; the same table as a fresh frame's."""
    start = frame.request.start_bar
    if frame.sweeps is None:
        return engine.sweep_totals(start, end_bar)
    tail = max(start, min(engine.changed_from(frame.state_mark), frame.sweeps_to))
    return frame.sweeps.before(tail).then(engine.sweep_totals(tail, end_bar))


@dataclass(frozen=True)
class CursorValues:
    """The liquidation map's numbers at one price of its bar: what the readout shows (and tests compare)."""

    bin: int
    bin_low: float
    bin_high: float
    long_usd: float  # long notional alive in the price's bin
    short_usd: float
    long_tiers: dict[str, float]  # the same per leverage tier
    short_tiers: dict[str, float]
    cumulative_side: int  # SHORT above the current price, LONG below: whose liquidations price meets first
    cumulative_usd: float  # that side's notional between the current price and this one
    price_now: float
    distance_pct: float  # from the current price to this one


def cursor_values(lmap: LiquidationMap, price: float) -> CursorValues | None:
    """The map's numbers at `price` (None outside its bins)."""
    b = int(lmap.bins.index(np.array([price]))[0])
    if b < 0:
        return None
    long_tiers = lmap.long_by_tier[:, b]
    short_tiers = lmap.short_by_tier[:, b]
    above = price >= lmap.price_now
    return CursorValues(
        bin=b,
        bin_low=float(lmap.bins.edges[b]),
        bin_high=float(lmap.bins.edges[b + 1]),
        long_usd=float(long_tiers.sum()),
        short_usd=float(short_tiers.sum()),
        long_tiers=dict(zip(lmap.tier_labels, map(float, long_tiers), strict=True)),
        short_tiers=dict(zip(lmap.tier_labels, map(float, short_tiers), strict=True)),
        cumulative_side=SHORT if above else LONG,
        cumulative_usd=float(lmap.cum_short[b]) if above else float(lmap.cum_long[b]),
        price_now=lmap.price_now,
        distance_pct=(price - lmap.price_now) / lmap.price_now * 100.0,
    )

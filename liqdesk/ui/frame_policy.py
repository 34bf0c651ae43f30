"""When the chart needs a new frame and which frames it shows (no Qt: pure geometry and bookkeeping).

A frame covers the visible bars and prices plus a margin, at about screen resolution (`frame_request`). The
view keeps the frame it has while that still covers it sharply (`frame_covers_view`). `FrameScheduler` holds
the state between the window, the worker and the chart: the data generation (results for older data are
dropped), the frame generation (an older request never replaces a newer frame), live bars on their way
through the worker (the patched frame they bring makes a full frame pointless meanwhile), a lost engine (the
next bar rebuilds it) and the model error on screen (shown once; the next bar, or a view change offline,
retries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from liqdesk.core.grid import PriceBins
from liqdesk.ui.frames import Frame, FrameRequest

# Render this fraction of the view beyond each side, so a pan shows no edge before the next frame;
# more costs memory and paint time (the whole image is drawn every frame).
RENDER_MARGIN = 0.3
RENDER_MARGIN_Y = 0.15  # y re-fits to the candles while panning, so its margin matters less
MAX_COLUMNS = 3200


@dataclass(frozen=True)
class ViewGeometry:
    """What the price plot shows now."""

    bars: tuple[float, float]  # visible x range, in bar index (bar i spans i ± 0.5)
    prices: tuple[float, float]  # visible price range
    size_px: tuple[float, float]  # the plot's width and height in pixels
    n_bars: int  # bars loaded


@dataclass(frozen=True)
class FrameStyle:
    """How the heatmap is drawn (the user's choices)."""

    transform: str = "sqrt"
    levels: tuple[float, float] | None = None  # locked colour levels; None: from the visible cells
    colormap: str = "liqdesk"
    bin_px: float = 3.0  # screen pixels per price bin
    max_bins: int = 1000  # price bins of the visible heatmap at most


def _clip(x: float, lo: float, hi: float) -> float:
    return min(max(x, lo), hi)


def frame_request(view: ViewGeometry, style: FrameStyle, generation: int) -> FrameRequest | None:
    """The frame for the view: its bars and prices plus a margin, at about screen resolution. None when
    there is nothing to draw (no bars, a degenerate price range)."""
    n = view.n_bars
    x0, x1 = view.bars
    y0, y1 = view.prices
    if not n or not (math.isfinite(y0) and math.isfinite(y1)) or y1 <= y0 or y0 <= 0:
        return None
    w_px, h_px = view.size_px
    width = x1 - x0
    start = int(_clip(math.floor(x0 - width * RENDER_MARGIN), 0, n - 1))
    end = int(_clip(math.ceil(x1 + width * RENDER_MARGIN) + 1, start + 1, n))
    columns = int(min(end - start, MAX_COLUMNS, max(w_px * (end - start) / max(width, 1.0), 1)))
    span_y = y1 - y0
    lo, hi = max(y0 - span_y * RENDER_MARGIN_Y, y0 * 0.2), y1 + span_y * RENDER_MARGIN_Y
    bins_n = int(
        _clip(h_px / style.bin_px * (hi - lo) / span_y, 16, style.max_bins * (1 + 2 * RENDER_MARGIN_Y))
    )
    vis0 = int(_clip(math.floor(x0 + 0.5), 0, n - 1))
    vis1 = int(_clip(math.ceil(x1 - 0.5), vis0 + 1, n))
    return FrameRequest(
        generation=generation,
        start_bar=start,
        end_bar=end,
        columns=max(columns, 1),
        bins=PriceBins(lo, hi, bins_n),
        visible_bars=(vis0, vis1),
        visible_prices=(y0, y1),
        map_bar=vis1 - 1,
        transform=style.transform,
        levels=style.levels,
        colormap=style.colormap,
    )


def frame_covers_view(frame: Frame, view: ViewGeometry, bin_px: float) -> bool:
    """The frame still shows the view well: it covers the visible bars and prices, its columns and bins
    are near screen resolution, its map is at the last visible bar, and (after following the live edge for
    long) its margin has not grown nor its newest column taken in several bars."""
    r = frame.request
    n = view.n_bars
    if not n:
        return False
    x0, x1 = view.bars
    y0, y1 = view.prices
    w_px, h_px = view.size_px
    covered_x = r.start_bar <= max(x0, 0) + 0.5 and r.end_bar >= min(x1, n - 1) - 0.5
    covered_y = r.bins.lo <= y0 and r.bins.hi >= y1
    # Re-render when zoom changed enough that columns or bins are off screen resolution.
    cols_per_px = r.columns / max(r.end_bar - r.start_bar, 1) * (x1 - x0) / w_px
    bins_per_px = r.bins.n / (r.bins.hi - r.bins.lo) * (y1 - y0) / h_px * bin_px
    sharp = 0.5 < cols_per_px < 2.0 or r.columns == r.end_bar - r.start_bar
    last_visible = int(_clip(math.ceil(x1 - 0.5), 1, n)) - 1
    # A frame that followed the live edge for long: its left margin has grown (memory), or its newest
    # column has taken in several new bars while the image spreads columns evenly (misaligned).
    lean = r.start_bar == 0 or r.start_bar >= x0 - (x1 - x0) * (RENDER_MARGIN + 0.5)
    cols = frame.columns
    per = int(cols.last_bar[0] - cols.first_bar[0]) + 1 if len(cols) else 1
    even = not len(cols) or int(cols.last_bar[-1] - cols.first_bar[-1]) + 1 <= per + max(1, per // 2)
    return (covered_x and covered_y and sharp and lean and even and 0.6 < bins_per_px < 1.7
            and r.map_bar == last_visible)  # fmt: skip


@dataclass
class FrameScheduler:
    """The bookkeeping of the frame pipeline (see the module's text). The window calls it; it calls nothing."""

    data_generation: int = 0
    frame_generation: int = 0
    model_ready: bool = False  # the engine of data_generation is built and not lost
    frame: Frame | None = None  # the frame on screen
    bars_in_flight: int = 0  # live bars sent to the worker, not yet applied to its engine
    engine_lost: bool = False  # a live bar broke the worker's engine: the next bar rebuilds it
    model_error: str = ""  # the model/frame error on screen ("" when the last frame came through)
    errors_shown: list[str] = field(default_factory=list)  # each model error the user was shown, once
    closed: bool = False

    def new_data(self) -> int:
        """Another data set (a market, timeframe, preset or rebuild): everything before it is stale."""
        self.data_generation += 1
        self.model_ready = False
        self.engine_lost = False
        self.bars_in_flight = 0
        self.frame = None
        return self.data_generation

    def engine_built(self, generation: int) -> bool:
        """The worker built an engine; True when it is the one for the data shown (ask for a frame)."""
        if generation != self.data_generation or self.closed:
            return False
        self.model_ready = True
        return True

    def lost(self, generation: int) -> None:
        if generation != self.data_generation:
            return
        self.model_ready = False
        self.engine_lost = True
        self.bars_in_flight = 0

    def close(self) -> None:
        """The window closed: results still queued to it ask for nothing more."""
        self.closed = True
        self.model_ready = False

    def patch_pending(self, n_bars: int) -> bool:
        """A live bar is on its way through the worker and the frame shown reaches the live edge: the patched
        frame will bring the new column and map (a full frame now would be thrown away)."""
        f = self.frame
        return self.bars_in_flight > 0 and f is not None and f.request.end_bar >= n_bars - 1

    def covers(self, view: ViewGeometry, bin_px: float) -> bool:
        return self.frame is not None and frame_covers_view(self.frame, view, bin_px)

    def request(self, view: ViewGeometry, style: FrameStyle, force: bool = False) -> FrameRequest | None:
        """The frame to ask the worker for now, or None: no engine yet, closed, or (unless forced) the frame
        shown still covers the view or a live bar's patch is coming."""
        if not self.model_ready or self.closed:
            return None
        if not force and (self.covers(view, style.bin_px) or self.patch_pending(view.n_bars)):
            return None
        req = frame_request(view, style, self.frame_generation + 1)
        if req is not None:
            self.frame_generation += 1
        return req

    def accept(self, generation: int, frame: Frame) -> bool:
        """A frame from the worker: True when it is to be shown (not another data set's, not older than the
        one shown). Showing it clears a model error (recovered)."""
        if generation != self.data_generation:
            return False
        if self.frame is not None and frame.request.generation < self.frame.request.generation:
            return False
        self.frame = frame
        self.model_error = ""
        return True

    def bar_sent(self) -> bool:
        """A live bar goes to the worker; True when the engine was lost and must be rebuilt instead."""
        if self.engine_lost:
            return True
        self.bars_in_flight += 1
        return False

    def bar_applied(self, generation: int) -> bool:
        """The worker applied a live bar; True when none is left on its way (then check the view: the patched
        frame, sent before, is in)."""
        if generation != self.data_generation:
            return False
        self.bars_in_flight = max(self.bars_in_flight - 1, 0)
        return not self.bars_in_flight

    def failed(self, message: str) -> bool:
        """The worker failed; True when this error is new to the user (show it)."""
        if message == self.model_error:
            return False
        self.model_error = message
        self.errors_shown.append(message)
        return True

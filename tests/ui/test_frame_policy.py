"""The frame policy without Qt: which frame a view needs, when the frame shown still covers it, and the
scheduler's bookkeeping (stale results dropped, a live bar's patch awaited instead of a full frame, an
error shown once and retried, a lost engine rebuilt)."""

from __future__ import annotations

import numpy as np
import pytest

from liqdesk.core.grid import PriceBins
from liqdesk.core.liqmap import LiquidationMap
from liqdesk.ui.frame_policy import (
    MAX_COLUMNS,
    RENDER_MARGIN,
    FrameScheduler,
    FrameStyle,
    ViewGeometry,
    frame_covers_view,
    frame_request,
)
from liqdesk.ui.frames import Bubbles, Columns, Frame, FrameRequest

VIEW = ViewGeometry(bars=(700.0, 1000.0), prices=(60_000.0, 62_000.0), size_px=(1200.0, 600.0), n_bars=1000)
STYLE = FrameStyle(bin_px=3.0, max_bins=1000)


def frame_for(req: FrameRequest, per_column: int = 1) -> Frame:
    """A frame as the worker makes it for `req` (its columns cover the request's bars evenly)."""
    first = np.arange(req.start_bar, req.end_bar, per_column)
    last = np.minimum(first + per_column - 1, req.end_bar - 1)
    lmap = LiquidationMap.__new__(LiquidationMap)  # the policy never reads the map
    return Frame(request=req, columns=Columns(first * 300_000, first, last), values=None,
                 image=np.zeros((req.bins.n, len(first)), np.uint8), levels=(0.0, 1.0), lmap=lmap, magnets=[],
                 bubbles=Bubbles.empty(), model_label="OI model")  # fmt: skip


def test_a_request_covers_the_view_plus_a_margin_at_screen_resolution() -> None:
    req = frame_request(VIEW, STYLE, generation=5)
    assert req is not None and req.generation == 5
    width = 300.0
    assert req.start_bar == int(np.floor(700 - width * RENDER_MARGIN))
    assert req.end_bar == 1000  # the margin stops at the newest bar
    assert req.columns == req.end_bar - req.start_bar  # fewer bars than pixels: one column per bar
    assert req.visible_bars == (700, 1000) and req.map_bar == 999  # the map at the last visible bar
    assert req.bins.lo < 60_000 and req.bins.hi > 62_000
    assert req.bins.n == pytest.approx(600 / 3.0 * (req.bins.hi - req.bins.lo) / 2_000, abs=1)
    assert req.levels is None and req.transform == "sqrt"


def test_a_wide_view_gets_about_one_column_per_pixel_and_locked_levels() -> None:
    wide = ViewGeometry(
        bars=(0.0, 50_000.0), prices=(20_000.0, 70_000.0), size_px=(1000.0, 500.0), n_bars=60_000
    )
    req = frame_request(wide, FrameStyle(levels=(1.0, 9.0), colormap="viridis"), 1)
    assert req is not None
    assert req.columns == pytest.approx(1000 * (req.end_bar - req.start_bar) / 50_000, abs=1)
    assert req.columns <= MAX_COLUMNS and req.levels == (1.0, 9.0) and req.colormap == "viridis"


@pytest.mark.parametrize(
    "view",
    [
        ViewGeometry((0.0, 10.0), (60_000.0, 61_000.0), (100.0, 100.0), 0),  # no bars
        ViewGeometry((0.0, 10.0), (61_000.0, 60_000.0), (100.0, 100.0), 20),  # an upside-down range
        ViewGeometry((0.0, 10.0), (float("nan"), 1.0), (100.0, 100.0), 20),
        ViewGeometry((0.0, 10.0), (-5.0, 10.0), (100.0, 100.0), 20),  # not a price
    ],
)
def test_nothing_to_draw_asks_for_nothing(view: ViewGeometry) -> None:
    assert frame_request(view, STYLE, 1) is None


def test_a_frame_covers_its_own_view_and_small_pans_but_not_a_pan_past_its_margin_or_a_zoom() -> None:
    req = frame_request(VIEW, STYLE, 1)
    assert req is not None
    frame = frame_for(req)
    assert frame_covers_view(frame, VIEW, STYLE.bin_px)
    # the map must stay at the last visible bar: panning back by a bar asks for a new frame
    back = ViewGeometry((690.0, 990.0), VIEW.prices, VIEW.size_px, VIEW.n_bars)
    assert not frame_covers_view(frame, back, STYLE.bin_px)
    past = ViewGeometry((500.0, 1000.0), VIEW.prices, VIEW.size_px, VIEW.n_bars)
    assert not frame_covers_view(frame, past, STYLE.bin_px)  # left of what it rendered
    taller = ViewGeometry(VIEW.bars, (59_000.0, 63_000.0), VIEW.size_px, VIEW.n_bars)
    assert not frame_covers_view(frame, taller, STYLE.bin_px)  # prices beyond its bins
    zoomed = ViewGeometry(VIEW.bars, (60_500.0, 61_500.0), VIEW.size_px, VIEW.n_bars)
    assert not frame_covers_view(frame, zoomed, STYLE.bin_px)  # bins now twice as tall as wanted


def test_a_frame_that_followed_the_live_edge_for_long_is_replaced() -> None:
    req = frame_request(VIEW, STYLE, 1)
    assert req is not None
    # 200 bars later, still showing the newest: its left margin has grown far beyond the view's
    n = VIEW.n_bars + 200
    grown = FrameRequest(**{**req.__dict__, "end_bar": n, "columns": n - req.start_bar, "map_bar": n - 1})
    follow = ViewGeometry((900.0, 1200.0), VIEW.prices, VIEW.size_px, n)
    assert not frame_covers_view(frame_for(grown), follow, STYLE.bin_px)
    # columns spread evenly while the newest one took in several bars: misaligned, replaced
    lumpy = frame_for(req)
    cols = lumpy.columns
    uneven = Columns(cols.time_ms, cols.first_bar, np.r_[cols.last_bar[:-1], cols.last_bar[-1] + 5])
    lumpy = Frame(**{**lumpy.__dict__, "columns": uneven})
    assert not frame_covers_view(lumpy, VIEW, STYLE.bin_px)


def test_the_scheduler_asks_once_the_engine_is_built_and_drops_stale_frames() -> None:
    s = FrameScheduler()
    g = s.new_data()
    assert s.request(VIEW, STYLE) is None  # no engine yet
    assert not s.engine_built(g - 1)  # an older build
    assert s.engine_built(g)
    first = s.request(VIEW, STYLE, force=True)
    assert first is not None and first.generation == 1
    assert s.accept(g, frame_for(first))
    assert s.request(VIEW, STYLE) is None  # the frame shown covers the view
    again = s.request(VIEW, STYLE, force=True)
    assert again is not None and again.generation == 2
    assert s.accept(g, frame_for(again))
    assert not s.accept(g, frame_for(first))  # an older request never replaces a newer frame
    assert not s.accept(g - 1, frame_for(FrameRequest(**{**again.__dict__, "generation": 9})))  # other data
    assert s.frame is not None and s.frame.request.generation == 2


def test_a_live_bar_on_its_way_holds_back_a_full_frame_until_it_is_applied() -> None:
    s = FrameScheduler()
    g = s.new_data()
    s.engine_built(g)
    req = s.request(VIEW, STYLE, force=True)
    assert req is not None and s.accept(g, frame_for(req))
    assert not s.bar_sent()  # the engine is there: the bar goes to the worker
    grown = ViewGeometry((701.0, 1001.0), VIEW.prices, VIEW.size_px, VIEW.n_bars + 1)
    assert s.patch_pending(grown.n_bars) and s.request(grown, STYLE) is None  # the patched frame is coming
    assert s.request(grown, STYLE, force=True) is not None  # a forced one still goes
    assert not s.bar_applied(g - 1)  # another data set's bar
    assert s.bar_applied(g) and not s.patch_pending(grown.n_bars)  # applied: look at the view again


def test_an_error_is_shown_once_and_cleared_by_the_next_frame() -> None:
    s = FrameScheduler()
    g = s.new_data()
    s.engine_built(g)
    assert s.failed("IndexError: index 1816 is out of bounds")
    assert not s.failed("IndexError: index 1816 is out of bounds")  # the same error again: not shown again
    assert s.errors_shown == ["IndexError: index 1816 is out of bounds"]
    req = s.request(VIEW, STYLE, force=True)
    assert req is not None and s.accept(g, frame_for(req))
    assert s.model_error == ""  # recovered
    assert s.failed("IndexError: index 1816 is out of bounds")  # a new failure after recovering is said again
    assert len(s.errors_shown) == 2


def test_a_lost_engine_makes_the_next_bar_rebuild_and_a_closed_window_asks_nothing() -> None:
    s = FrameScheduler()
    g = s.new_data()
    s.engine_built(g)
    s.bar_sent()
    s.lost(g)
    assert not s.model_ready and s.bars_in_flight == 0
    assert s.bar_sent()  # rebuild instead of sending
    g2 = s.new_data()
    assert not s.engine_lost and s.frame is None and g2 == g + 1
    s.engine_built(g2)
    s.close()
    assert s.request(VIEW, STYLE, force=True) is None and not s.engine_built(g2)


def test_bins_follow_the_bin_size_and_stay_within_the_settings_cap() -> None:
    coarse = frame_request(VIEW, FrameStyle(bin_px=6.0, max_bins=1000), 1)
    fine = frame_request(VIEW, FrameStyle(bin_px=1.0, max_bins=100), 1)
    assert coarse is not None and fine is not None
    assert coarse.bins.n == pytest.approx(frame_request(VIEW, STYLE, 1).bins.n / 2, abs=1)  # type: ignore[union-attr]
    assert fine.bins.n == int(100 * 1.3)  # capped (the margin's share included)
    assert isinstance(fine.bins, PriceBins)

"""A live chart's frame patched bar by bar (ui.worker.patch_frame, as the model worker runs it) equals a frame
computed afresh on engines built from the same bars: heatmap values and image, bubbles, map and magnets. On one
engine, and on a venue set whose venues send their bars in changing order, revise them, and lag behind the
chart (a late bar lands in an older column and an older bubble)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from liqdesk.core.aggregate import VenueModel
from liqdesk.core.aggregate_engine import VenueSetEngine
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import PriceBins
from liqdesk.core.openings import open_interest_at_close
from liqdesk.core.series import Candles
from liqdesk.feeds.presets import params_for
from liqdesk.feeds.sample import load_sample
from liqdesk.ui.frames import Frame, FrameRequest, compute_frame
from liqdesk.ui.worker import patch_frame

N0, N1, SHOWN = 1000, 1060, 200
VENUES = (("binanceusdm", 1.0), ("bybit", 1.0003), ("okx", 0.9998))


@pytest.fixture(scope="module")
def market() -> tuple[Candles, np.ndarray]:
    s = load_sample("btcusdt-5m")
    c = s.candles.take(slice(-N1, None))
    return c, open_interest_at_close(c, s.open_interest, params_for("all").oi_max_gap_bars)


def _moved(c: Candles, scale: float) -> Candles:
    return Candles(c.open_time, c.open * scale, c.high * scale, c.low * scale, c.close * scale, c.volume,
                   c.interval_ms, quote_volume=None if c.quote_volume is None else c.quote_volume * scale,
                   taker_buy_volume=c.taker_buy_volume)  # fmt: skip


def _early(row: Candles) -> Candles:
    """The bar as a live update sends it before it closes."""
    mid = (row.open + row.close) / 2
    return Candles(row.open_time, row.open, np.maximum(row.open, mid), np.minimum(row.open, mid), mid,
                   row.volume * 0.4, row.interval_ms)  # fmt: skip


def _request(n: int, c: Candles) -> FrameRequest:
    shown = c.take(slice(n - SHOWN, n))
    lo, hi = float(shown.low.min()) * 0.97, float(shown.high.max()) * 1.03
    return FrameRequest(generation=1, start_bar=n - SHOWN, end_bar=n, columns=SHOWN, bins=PriceBins(lo, hi, 160),
                        visible_bars=(n - SHOWN, n), visible_prices=(lo, hi), map_bar=n - 1, max_bubbles=25)  # fmt: skip


def assert_same_frame(got: Frame, want: Frame) -> None:
    for k in ("time_ms", "first_bar", "last_bar"):
        np.testing.assert_array_equal(getattr(got.columns, k), getattr(want.columns, k), err_msg=k)
    assert got.request.end_bar == want.request.end_bar and got.request.map_bar == want.request.map_bar
    scale = float(np.abs(want.values).max())
    np.testing.assert_allclose(got.values, want.values, rtol=1e-5, atol=1e-6 * scale)
    # same empty cells; codes equal but where float sums in another order land a rounding boundary apart
    np.testing.assert_array_equal(got.image == 0, want.image == 0)
    diff = np.abs(got.image.astype(np.int16) - want.image.astype(np.int16))
    assert diff.max() <= 1 and np.count_nonzero(diff) <= max(2, got.image.size // 2000)
    gb, wb = got.bubbles, want.bubbles
    assert len(gb) == len(wb) > 0
    np.testing.assert_array_equal(gb.x, wb.x)
    np.testing.assert_array_equal(gb.side, wb.side)
    np.testing.assert_allclose(gb.usd, wb.usd, rtol=1e-9)
    np.testing.assert_allclose(gb.price, wb.price, rtol=1e-9)
    gm, wm = got.lmap, want.lmap
    assert gm.bar == wm.bar and gm.price_now == wm.price_now
    mscale = float(max(wm.long_by_tier.max(), wm.short_by_tier.max()))
    np.testing.assert_allclose(gm.long_by_tier, wm.long_by_tier, rtol=1e-9, atol=1e-9 * mscale)
    np.testing.assert_allclose(gm.short_by_tier, wm.short_by_tier, rtol=1e-9, atol=1e-9 * mscale)
    assert gm.total_long == pytest.approx(wm.total_long, rel=1e-9)
    assert [(m.side, m.low, m.high) for m in got.magnets] == [(m.side, m.low, m.high) for m in want.magnets]


def _fresh(engine: LiquidationEngine | VenueSetEngine, frame: Frame) -> Frame:
    return compute_frame(engine, dataclasses.replace(frame.request, levels=frame.levels))


def test_one_engine_patched_bar_by_bar_equals_a_fresh_frame(market) -> None:  # type: ignore[no-untyped-def]
    c, oc = market
    params = params_for("all")
    engine = LiquidationEngine.build(c.take(slice(0, N0)), params=params, oi_close=oc[:N0])
    frame = compute_frame(engine, _request(N0, c))
    for j in range(N0, N1):
        row = c.take(slice(j, j + 1))
        engine.append_bar(_early(row), oc[j] * 0.999)
        frame = patch_frame(engine, engine, frame) or frame
        engine.revise_last_bar(row, oc[j])
        frame = patch_frame(engine, engine, frame) or frame
        if j % 15 == 0 or j == N1 - 1:
            built = LiquidationEngine.build(c.take(slice(0, j + 1)), params=params, oi_close=oc[: j + 1])
            assert_same_frame(frame, _fresh(built, frame))


def _venue_set(c: Candles, oc: np.ndarray, upto: dict[str, int]) -> VenueSetEngine:
    models = []
    for name, scale in VENUES:
        n = upto[name]
        oi = oc[:n] if name == "binanceusdm" else np.full(n, np.nan)
        engine = LiquidationEngine.build(_moved(c.take(slice(0, n)), scale), params=params_for("all", venue=name),
                                         oi_close=oi)  # fmt: skip
        models.append(VenueModel(name, "BTC", engine))
    return VenueSetEngine(models, "binanceusdm")


@pytest.mark.parametrize("lag", [0, 2])
def test_venue_set_patched_bar_by_bar_equals_a_fresh_frame(market, lag: int) -> None:  # type: ignore[no-untyped-def]
    """Venues send their bars in turn in changing orders, some first as a live update then closed; with `lag`,
    okx sends each bar `lag` chart bars late, so its bar lands in a column and a bubble already drawn."""
    c, oc = market
    upto = {name: N0 for name, _ in VENUES}
    engine = _venue_set(c, oc, upto)
    frame = compute_frame(engine, _request(N0, c))
    orders = (
        ("binanceusdm", "bybit", "okx"),
        ("okx", "binanceusdm", "bybit"),
        ("bybit", "okx", "binanceusdm"),
    )
    scale = dict(VENUES)
    late: list[int] = []
    for j in range(N0, N1):
        for name in orders[j % 3]:
            if name == "okx" and lag:
                late.append(j)
                if len(late) <= lag:
                    continue
                k = late.pop(0)
            else:
                k = j
            row = _moved(c.take(slice(k, k + 1)), scale[name])
            oi = float(oc[k]) if name == "binanceusdm" and not np.isnan(oc[k]) else None
            if (j + len(name)) % 4 == 0:  # a live update of the bar first
                _apply(engine, name, _early(row), oi)
                frame = patch_frame(engine, engine, frame) or frame
            _apply(engine, name, row, oi)
            upto[name] = k + 1
            frame = patch_frame(engine, engine, frame) or frame
        if j % 10 == 0 or j == N1 - 1:
            assert_same_frame(frame, _fresh(_venue_set(c, oc, upto), frame))
    assert upto["okx"] == N1 - lag


def _apply(engine: VenueSetEngine, name: str, row: Candles, oi: float | None) -> None:
    if name == engine.chart_venue:
        e = engine.ref
        if e.n_bars and int(e.open_time[-1]) == int(row.open_time[0]):
            engine.revise_last_bar(row, oi)
        else:
            engine.append_bar(row, oi)
    else:
        assert engine.apply_venue_bar(name, row, oi)

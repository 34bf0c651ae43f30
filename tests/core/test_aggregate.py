"""The aggregate in core: wall-clock time columns, the sum on one grid painted into one buffer, per-venue parts,
the summed map, the engine facade, coverage and the live model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqdesk.core.aggregate import (
    AggregateModel,
    VenueInput,
    VenueModel,
    aggregate_coverage,
    aggregate_map,
    aggregate_snapshots,
    bar_phase,
    build_and_render,
    build_venues,
    render_aggregate_grid,
    render_aggregate_view,
    time_columns,
)
from liqdesk.core.aggregate_engine import AggregateEngine
from liqdesk.core.calibration_config import CalibrationConfig
from liqdesk.core.density_snapshots import density_snapshots, snapshot_times
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import PriceBins, render_grid
from liqdesk.core.heatmap import column_at, render_view
from liqdesk.core.liqmap import auto_bins, liquidation_map
from liqdesk.core.params import ModelParams
from liqdesk.core.series import Candles, OpenInterest
from liqdesk.feeds.presets import params_for
from liqdesk.feeds.sample import load_sample

M5 = 300_000


@pytest.fixture(scope="module")
def sample() -> tuple[Candles, OpenInterest]:
    s = load_sample("btcusdt-5m")
    assert s.open_interest is not None
    return s.candles.take(slice(-1200, None)), s.open_interest


def _moved(c: Candles, scale: float) -> Candles:
    """Another venue's bars: the same trades at a basis of `scale`."""
    return Candles(c.open_time, c.open * scale, c.high * scale, c.low * scale, c.close * scale, c.volume,
                   c.interval_ms, quote_volume=None if c.quote_volume is None else c.quote_volume * scale,
                   taker_buy_volume=c.taker_buy_volume)  # fmt: skip


def _venue(name: str, c: Candles, oi: OpenInterest | None, scale: float = 1.0) -> VenueModel:
    params = params_for("all", venue=name if name in ("binanceusdm", "bybit", "okx", "hyperliquid") else None)
    return VenueModel(name, "BTC", LiquidationEngine.build(_moved(c, scale), oi, params))


def test_one_contiguous_venue_gives_one_column_per_bar_as_render_grid(sample) -> None:  # type: ignore[no-untyped-def]
    c, oi = sample
    vm = _venue("binanceusdm", c, oi)
    bins = auto_bins(c.low, c.high, 150)
    for columns in (None, 37):
        cols = time_columns(int(c.open_time[100]), int(c.close_time[-1]), M5, columns, bar_phase([vm.engine]))
        g = render_aggregate_grid([vm], bins, cols)
        want = render_grid(vm.engine, bins, 100, len(c), columns)
        np.testing.assert_array_equal(g.time_ms, want.time_ms)
        np.testing.assert_array_equal(g.venue_bars[0], want.last_bar)
        np.testing.assert_array_equal(g.long, want.long)
        np.testing.assert_array_equal(g.short, want.short)


def test_time_columns_are_wall_clock_slots_on_the_bar_phase() -> None:
    cols = time_columns(1_000_000 + 7, 1_000_000 + 10 * M5, M5, None, phase_ms=1_000_000 % M5)
    assert cols.start_ms[0] == 1_000_000 + M5  # the first slot on the phase at or after the start
    assert len(cols) == 9 and np.all(np.diff(cols.start_ms) == M5)
    np.testing.assert_array_equal(cols.end_ms, cols.start_ms + M5)
    grouped = time_columns(0, 10 * M5, M5, 3)
    assert grouped.start_ms.tolist() == [0, 3 * M5, 6 * M5] and grouped.end_ms.tolist() == [
        3 * M5,
        6 * M5,
        10 * M5,
    ]
    with pytest.raises(ValueError, match="no bar slot"):
        time_columns(0, 0, M5)


def test_venues_line_up_on_wall_clock_time(sample) -> None:  # type: ignore[no-untyped-def]
    """A venue starting later contributes nothing before its first bar; one with a gap, and one that ended, show
    the state of their last bar until the next one."""
    c, oi = sample
    late = _venue("bybit", c.take(slice(300, None)), None, 1.0005)
    gappy = _venue("okx", c.take(np.r_[0:500, 540:1200]), None, 0.9995)
    ended = _venue("hyperliquid", c.take(slice(0, 900)), None)
    cols = time_columns(int(c.open_time[0]), int(c.close_time[-1]), M5)
    bars = {vm.name: cols.venue_bars(vm.engine) for vm in (late, gappy, ended)}
    assert np.all(bars["bybit"][:300] == -1) and bars["bybit"][300] == 0
    assert np.all(bars["okx"][499:540] == 499) and bars["okx"][540] == 500  # the gap holds its last bar
    assert np.all(bars["hyperliquid"][899:] == 899)  # after its last bar: its last state
    bins = auto_bins(c.low, c.high, 120)
    g = render_aggregate_grid([late, gappy, ended], bins, cols)
    assert g.long_by_venue is not None and g.short_by_venue is not None
    assert not g.long_by_venue[0, :300].any() and g.long_by_venue[0, 300:].any()
    np.testing.assert_array_equal(g.long_by_venue[1, 520], g.long_by_venue[1, 499])
    np.testing.assert_array_equal(g.long_by_venue[2, -1], g.long_by_venue[2, 899])
    np.testing.assert_array_equal(g.long, g.long_by_venue.sum(axis=0, dtype=np.float32))
    cov = aggregate_coverage([late, gappy, ended], int(c.open_time[0]), int(c.close_time[-1]))
    okx = cov.venues[1]
    assert okx.missing == ((int(c.open_time[500]), int(c.open_time[540])),)
    assert cov.venues[0].missing[0] == (int(c.open_time[0]), int(c.open_time[300]))
    assert cov.venues[2].missing == ((int(c.close_time[899]), int(c.close_time[-1])),)
    assert "no bars" in cov.lines()[1] and "volume model" in cov.lines()[1]


@st.composite
def _venue_sets(
    draw: st.DrawFn,
) -> tuple[list[tuple[int, int, float, bool]], tuple[int, int], int | None, int]:
    n = draw(st.integers(1, 4))
    venues = []
    for _ in range(n):
        a = draw(st.integers(0, 400))
        b = draw(st.integers(a + 20, 800))
        venues.append((a, b, draw(st.floats(0.998, 1.002)), draw(st.booleans())))
    s = draw(st.integers(0, 700))
    e = draw(st.integers(s + 5, 820))
    columns = draw(st.one_of(st.none(), st.integers(1, 120)))
    return venues, (s, e), columns, draw(st.integers(20, 200))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_venue_sets())
def test_the_aggregate_is_the_sum_of_its_venues_on_any_grid(sample, case) -> None:  # type: ignore[no-untyped-def]
    """Property: painted into one buffer or per venue, the aggregate's grid is the sum of each venue alone on the
    same bins and columns (float32 rounding aside), whatever the venues' spans, prices and open interest."""
    c, oi = sample
    specs, (s, e), columns, nbins = case
    venues = [_venue(f"v{i}", c.take(slice(a, b)), oi if use_oi else None, k)
              for i, (a, b, k, use_oi) in enumerate(specs)]  # fmt: skip
    cols = time_columns(
        int(c.open_time[s]), int(c.open_time[e]), M5, columns, bar_phase([v.engine for v in venues])
    )
    bins = PriceBins(float(c.low.min()) * 0.9, float(c.high.max()) * 1.1, nbins)
    one_buffer = render_aggregate_grid(venues, bins, cols, by_venue=False)
    two_threads = render_aggregate_grid(venues, bins, cols, by_venue=False, workers=2)
    np.testing.assert_array_equal(two_threads.long, one_buffer.long)  # each side in its own thread: same sums
    np.testing.assert_array_equal(two_threads.short, one_buffer.short)
    parts = render_aggregate_grid(venues, bins, cols)
    alone = [render_aggregate_grid([v], bins, cols) for v in venues]
    for side in ("long", "short"):
        total = sum(getattr(a, side).astype(np.float64) for a in alone)
        scale = max(1.0, float(np.abs(total).max()))
        np.testing.assert_allclose(getattr(one_buffer, side), total, rtol=1e-5, atol=1e-5 * scale)
        np.testing.assert_allclose(getattr(parts, side), total, rtol=1e-5, atol=1e-5 * scale)
        by = getattr(parts, f"{side}_by_venue")
        for i, a in enumerate(alone):
            np.testing.assert_array_equal(by[i], getattr(a, side))


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_building_and_painting_at_once_gives_the_grid_of_building_then_painting(sample, workers) -> None:  # type: ignore[no-untyped-def]
    """`build_and_render` (the threads share the builds and the paintings, each painting as soon as it can) gives
    the engines and the grid that `build_venues` then `render_aggregate_grid` give: each venue's part exactly,
    the totals within float32 rounding when the venues are added in another order."""
    c, oi = sample
    specs = [("binanceusdm", 0, 700, 1.0, oi), ("bybit", 100, 820, 1.0003, oi), ("okx", 50, 600, 0.9998, None),
             ("hyperliquid", 300, 820, 1.0001, None)]  # fmt: skip
    inputs = [
        VenueInput(n, "BTC", _moved(c.take(slice(a, b)), k), o, params_for("all", venue=n))  # fmt: skip
        for n, a, b, k, o in specs
    ]
    bins = PriceBins(float(c.low.min()) * 0.9, float(c.high.max()) * 1.1, 90)
    cols = time_columns(int(c.open_time[0]), int(c.close_time[-1]), M5, 64)
    want_models = build_venues(inputs)
    for by_venue in (True, False):
        want = render_aggregate_grid(want_models, bins, cols, by_venue=by_venue)
        models, got = build_and_render(inputs, bins, cols, by_venue=by_venue, workers=workers)
        assert [m.name for m in models] == [m.name for m in want_models] == list(got.venues)
        assert [m.engine.n_levels for m in models] == [m.engine.n_levels for m in want_models]
        np.testing.assert_array_equal(got.venue_bars, want.venue_bars)
        for side in ("long", "short"):
            total = getattr(want, side)
            np.testing.assert_allclose(getattr(got, side), total, rtol=1e-6, atol=1e-6 * float(total.max()))
            if by_venue:
                np.testing.assert_array_equal(
                    getattr(got, f"{side}_by_venue"), getattr(want, f"{side}_by_venue")
                )


@pytest.mark.parametrize("workers", [2, 3])
def test_a_venue_that_fails_to_build_fails_the_aggregate_without_hanging(
    sample, workers, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A build's error reaches the caller; the threads waiting to paint that venue stop instead of waiting."""
    import threading

    from liqdesk.core import aggregate

    c, oi = sample
    inputs = [
        VenueInput(n, "BTC", c, oi, params_for("all", venue=n)) for n in ("binanceusdm", "bybit", "okx")
    ]
    real = aggregate._build_one

    def build(v: VenueInput) -> VenueModel:
        if v.name == "bybit":
            raise ValueError("bybit: no bars")
        return real(v)

    monkeypatch.setattr(aggregate, "_build_one", build)
    bins = PriceBins(float(c.low.min()) * 0.9, float(c.high.max()) * 1.1, 50)
    cols = time_columns(int(c.open_time[0]), int(c.close_time[-1]), M5, 32)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            build_and_render(inputs, bins, cols, by_venue=False, workers=workers)
        except ValueError as exc:
            errors.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    assert not t.is_alive(), "build_and_render hung after a failed build"
    assert [str(e) for e in errors] == ["bybit: no bars"]


def test_summed_map_and_engine_facade_read_the_venues(sample) -> None:  # type: ignore[no-untyped-def]
    c, oi = sample
    venues = [_venue("binanceusdm", c, oi), _venue("hyperliquid", c.take(slice(200, 1100)), None, 1.001)]
    bins = auto_bins(c.low, c.high, 200)
    agg = AggregateEngine(venues)
    bar = len(c) - 1
    m = liquidation_map(agg, bins, bar)
    a = aggregate_map(venues, bins, int(c.close_time[bar]))
    np.testing.assert_allclose(m.long_by_tier, a.total.long_by_tier)
    np.testing.assert_allclose(a.total.long, a.long_by_venue.sum(axis=0))
    hl = liquidation_map(venues[1].engine, bins, venues[1].engine.n_bars - 1)  # it ended: its last state
    np.testing.assert_allclose(a.long_by_venue[1], hl.long)
    holders = a.holders(1, bins.lo, bins.hi)
    assert holders["binanceusdm"] + holders["hyperliquid"] == pytest.approx(float(a.total.long.sum()))
    # the heatmap through the engine facade is the sum painted into one buffer
    view = render_view(agg, bins, 0, len(c), 300, transform="linear", levels=(0.0, 1.0))
    own = [render_grid(v.engine, bins) for v in venues]
    cols = time_columns(
        int(c.open_time[0]), int(c.close_time[-1]), M5, 300, bar_phase([v.engine for v in venues])
    )
    grid = render_aggregate_grid(venues, bins, cols)
    np.testing.assert_allclose(view.values, (grid.long + grid.short).T, rtol=1e-6)
    assert own[0].long.shape[0] == len(c)
    # sweeps of both venues, on the reference venue's bars
    ev = agg.sweep_totals(0, len(c))  # summed per bar and side, notional-weighted
    own = [v.engine.sweeps() for v in venues]
    assert float(ev.usd.sum()) == pytest.approx(sum(float(o.usd.sum()) for o in own), rel=1e-9)
    assert float((ev.usd * ev.price).sum()) == pytest.approx(
        sum(float((o.usd * o.price).sum()) for o in own), rel=1e-9
    )
    pairs = {
        (b + first, s)
        for o, first in zip(own, (0, 200), strict=True)
        for b, s in zip(o.bar, o.side, strict=True)
    }
    assert len(ev) == len(pairs)  # hyperliquid's bar b is the reference's bar b + 200
    assert "2 venues" in agg.model_label() and "volume model: hyperliquid" in agg.model_label()
    agg_view = render_aggregate_view(venues, bins, cols)
    assert agg_view.image.shape == (200, 300) and agg_view.image.max() > 0


def test_live_model_updates_one_venue_and_the_sum(sample) -> None:  # type: ignore[no-untyped-def]
    c, oi = sample
    full = [_venue("binanceusdm", c, oi), _venue("bybit", c, None, 1.0003)]
    part = [
        _venue("binanceusdm", c.take(slice(0, 1100)), oi),
        _venue("bybit", c.take(slice(0, 1100)), None, 1.0003),
    ]
    bins = auto_bins(c.low, c.high, 150)
    model = AggregateModel(part, bins)
    for j in range(1100, 1200):
        row = c.take(slice(j, j + 1))
        oi_close = float(full[0].engine._oi_close.a[j])  # what the full build saw at this bar's close
        oi_j = None if np.isnan(oi_close) else oi_close
        if j % 3 == 0:  # a live revision first (another bar at the same open time), then the final bar
            early = Candles(
                row.open_time, row.open, row.open, row.open, row.open, row.volume * 0.3, row.interval_ms
            )
            assert model.apply_bar("binanceusdm", early, oi_j) is not None
        u = model.apply_bar("binanceusdm", row, oi_j)
        assert u is not None and u.venue == "binanceusdm" and u.appended == (j % 3 != 0)
        model.apply_bar("bybit", _moved(row, 1.0003))
        if j % 25 == 0:  # the incremental column is the definition, bar after bar
            _assert_newest(model, bins)
    assert model.apply_bar("bybit", c.take(slice(5, 6))) is None  # older than its last bar: ignored
    long_, short = model.newest_column()
    want = [column_at(v.engine, bins, v.engine.n_bars - 1) for v in full]  # the engines built on every bar
    scale = float(max(long_.max(), short.max()))
    np.testing.assert_allclose(long_, want[0][0] + want[1][0], rtol=1e-9, atol=1e-9 * scale)
    np.testing.assert_allclose(short, want[0][1] + want[1][1], rtol=1e-9, atol=1e-9 * scale)
    amap = model.map()  # the summed map from the kept columns: the venues' maps
    for i, v in enumerate(full):
        m = liquidation_map(v.engine, bins)
        np.testing.assert_allclose(amap.maps[i].long_by_tier, m.long_by_tier, rtol=1e-9, atol=1e-9 * scale)
        assert amap.maps[i].total_short == pytest.approx(m.total_short, rel=1e-9)
    np.testing.assert_allclose(amap.total.short, amap.short_by_venue.sum(axis=0))


def _assert_newest(model: AggregateModel, bins: PriceBins) -> None:
    got = model.newest()
    for i, vm in enumerate(model.venues):
        want_l, want_s = column_at(vm.engine, bins, vm.engine.n_bars - 1)
        scale = max(1.0, float(want_l.max()), float(want_s.max()))
        np.testing.assert_allclose(got.long_by_venue[i], want_l, rtol=1e-9, atol=1e-9 * scale)
        np.testing.assert_allclose(got.short_by_venue[i], want_s, rtol=1e-9, atol=1e-9 * scale)
        np.testing.assert_array_equal(
            got.long_by_venue[i] == 0, np.asarray(want_l) == 0
        )  # empty cells exactly 0


def test_aggregate_snapshots_add_every_venue_on_the_reference_grid(sample) -> None:  # type: ignore[no-untyped-def]
    c, oi = sample
    venues = [_venue("binanceusdm", c, oi), _venue("bybit", c, None, 1.0004)]
    cfg = CalibrationConfig(horizon_ms=4 * 3_600_000, lookback_ms=12 * 3_600_000, n_bins=80)
    times = snapshot_times(c.open_time, M5, cfg)
    own = density_snapshots(venues[0].engine, times, cfg)
    agg = aggregate_snapshots(venues, 0, times, cfg)
    np.testing.assert_array_equal(agg.lo, own.lo)
    np.testing.assert_array_equal(agg.spot, own.spot)
    extra = agg.long - own.long
    assert (extra >= -1e-6).all() and extra.sum() > 0
    alone = aggregate_snapshots([venues[0]], 0, times, cfg)
    np.testing.assert_array_equal(alone.long, own.long)


def test_default_params_are_binances() -> None:
    assert ModelParams().brackets.basis == "mark"


def test_engines_on_a_gpu_paint_the_same_aggregate(sample) -> None:  # type: ignore[no-untyped-def]
    """The device path (CuPy with the CUDA kernels emulated on the CPU): each venue painted on the device and
    added there gives the CPU's one-buffer aggregate."""
    from liqdesk.core.aggregate import paint_aggregate
    from liqdesk.core.backend import select_backend
    from tests.core import cuda_emulator

    if not cuda_emulator.compiler_available():
        pytest.skip("needs g++ for the CUDA emulator")
    gpu = select_backend("cupy", importer=lambda name: cuda_emulator.fake_cupy())
    c, oi = sample
    cpu = [_venue("binanceusdm", c, oi), _venue("okx", c.take(slice(300, None)), None, 1.0004)]
    dev = [VenueModel(v.name, v.symbol, LiquidationEngine.build(_moved(c, 1.0) if v.name == "binanceusdm"
                                                                else _moved(c.take(slice(300, None)), 1.0004),
                                                                oi if v.name == "binanceusdm" else None,
                                                                v.engine.params, backend=gpu))
           for v in cpu]  # fmt: skip
    bins = auto_bins(c.low, c.high, 90)
    cols = time_columns(int(c.open_time[0]), int(c.close_time[-1]), M5, 150)
    want = paint_aggregate(cpu, bins, cols, "sqrt")
    got = paint_aggregate(dev, bins, cols, "sqrt")
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(gpu.asnumpy(g), w, rtol=1e-4, atol=1e-3)

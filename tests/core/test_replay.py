"""Bar replay: the engine at a past instant equals a build on what was known then, and nothing after
that instant changes it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import PriceBins
from liqdesk.core.heatmap import patch_newest_column, render_view
from liqdesk.core.liqmap import auto_bins, find_magnets, liquidation_map
from liqdesk.core.openings import open_interest_at_close
from liqdesk.core.params import ModelParams
from liqdesk.core.replay import (
    PlayClock,
    ReplaySession,
    bars_closed_by,
    cut_at,
    open_interest_known_at_close,
)
from liqdesk.core.series import LONG, SHORT, Candles, Liquidations, OpenInterest
from tests.core.helpers import BAR, random_market

PARAMS = ModelParams(preset="x")


def assert_same_engine(a: LiquidationEngine, b: LiquidationEngine) -> None:
    assert a.n_bars == b.n_bars
    for k, v in b.levels().items():
        np.testing.assert_array_equal(a.levels()[k], v, err_msg=k)
    np.testing.assert_array_equal(a.log_factor, b.log_factor)
    np.testing.assert_array_equal(a.stats, b.stats)
    np.testing.assert_array_equal(a.deposits, b.deposits)
    np.testing.assert_array_equal(a.model, b.model)
    for k in (0, 1):  # the alive lists a live bar sweeps
        np.testing.assert_array_equal(np.sort(a._alive_idx[k]), np.sort(b._alive_idx[k]))
    assert a._alive_total == pytest.approx(b._alive_total, rel=1e-12, abs=1e-6)


def liquidations(times: np.ndarray, price: float = 100_000.0) -> Liquidations:
    n = len(times)
    return Liquidations(
        np.asarray(times, np.int64), np.full(n, "binanceusdm"), np.full(n, "BTC/USDT:USDT"),
        np.where(np.arange(n) % 2 == 0, LONG, SHORT), np.full(n, price), np.ones(n), np.full(n, price),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------- truncate


@pytest.mark.parametrize("with_oi", [True, False])
def test_truncate_equals_a_build_on_the_first_bars_and_appending_back_equals_the_full_build(with_oi):
    c, oi = random_market(900, 11, oi=with_oi)
    oc = open_interest_at_close(c, oi, PARAMS.oi_max_gap_bars)
    full = LiquidationEngine.build(c, oi_close=oc, params=PARAMS)
    eng = LiquidationEngine.build(c, oi_close=oc, params=PARAMS)
    for n in (700, 699, 400, 2):
        eng.truncate(n)
        assert_same_engine(eng, LiquidationEngine.build(c.take(slice(0, n)), oi_close=oc[:n], params=PARAMS))
    for j in range(2, len(c)):
        eng.append_bar(c.take(slice(j, j + 1)), oc[j] if np.isfinite(oc[j]) else None)
    assert_same_engine(eng, full)


def test_truncate_then_revise_the_last_bar_equals_a_build():
    c, oi = random_market(300, 4)
    oc = open_interest_at_close(c, oi, PARAMS.oi_max_gap_bars)
    eng = LiquidationEngine.build(c, oi_close=oc, params=PARAMS)
    eng.truncate(200)
    moved = c.take(slice(199, 200))
    eng.revise_last_bar(moved, oc[199])  # a revision right after a rewind recomputes that bar alone
    assert_same_engine(eng, LiquidationEngine.build(c.take(slice(0, 200)), oi_close=oc[:200], params=PARAMS))


def test_truncate_refuses_an_empty_or_longer_engine():
    c, oi = random_market(20, 1)
    eng = LiquidationEngine.build(c, oi, PARAMS)
    for n in (0, 21):
        with pytest.raises(ValueError, match="truncate needs"):
            eng.truncate(n)


# ---------------------------------------------------------------------------------------- inputs at t


def test_open_interest_known_at_close_equals_the_model_where_every_close_has_a_snapshot():
    c, oi = random_market(300, 2)  # snapshots exactly at the closes
    known = open_interest_known_at_close(c, oi, PARAMS.oi_max_gap_bars)
    assert known is not None
    np.testing.assert_array_equal(known.time, c.close_time)
    np.testing.assert_array_equal(known.usd, open_interest_at_close(c, oi, PARAMS.oi_max_gap_bars))
    # and reading the known series back through the model gives the same per-bar values
    np.testing.assert_array_equal(open_interest_at_close(c, known, PARAMS.oi_max_gap_bars), known.usd)


def test_open_interest_between_snapshots_is_the_last_one_known_never_the_next():
    minute = 60_000
    c, _ = random_market(30, 3, oi=False)
    c = Candles(
        np.arange(30) * minute, c.open, c.high, c.low, c.close, c.volume, minute, quote_volume=c.quote_volume
    )
    snap_t = np.arange(0, 31 * minute, 5 * minute)  # every 5 minutes: closes fall between them
    snap_v = 1e9 + np.arange(len(snap_t)) * 1e6
    known = open_interest_known_at_close(c, OpenInterest(snap_t, snap_v), PARAMS.oi_max_gap_bars)
    assert known is not None
    # bar 0 closes at 1 min: only the snapshot at 0 is known then
    assert known.usd[0] == snap_v[0]
    # the interpolating model would read the 5-minute snapshot at that close: from the future
    assert open_interest_at_close(c, OpenInterest(snap_t, snap_v), 3.0)[0] != snap_v[0]
    # changing every later snapshot changes nothing known at earlier closes
    later = snap_v.copy()
    later[snap_t > c.close_time[11]] *= 3
    known2 = open_interest_known_at_close(c, OpenInterest(snap_t, later), PARAMS.oi_max_gap_bars)
    assert known2 is not None
    np.testing.assert_array_equal(known2.usd[:12], known.usd[:12])


def test_an_old_snapshot_is_not_held_forever():
    c, _ = random_market(40, 3, oi=False)
    oi = OpenInterest(np.array([BAR, 2 * BAR]), np.array([1e9, 1.1e9]))
    known = open_interest_known_at_close(c, oi, 3.0)
    assert known is not None
    assert np.isfinite(known.usd[:4]).all()  # within 3 bars of the last snapshot
    assert np.isnan(known.usd[5:]).all()


def test_cut_at_keeps_the_closed_bars_the_known_open_interest_and_earlier_liquidations():
    c, oi = random_market(50, 5)
    liq = liquidations(c.open_time[[3, 10, 20, 20]] + np.array([1, 0, BAR // 2, BAR - 1]))
    t = int(c.open_time[20]) + BAR // 2  # halfway through bar 20
    cut = cut_at(c, oi, liq, t, PARAMS.oi_max_gap_bars)
    assert len(cut.candles) == bars_closed_by(c, t) == 20  # bar 20 is still open at t
    assert cut.open_interest is not None and len(cut.open_interest) == 20
    assert list(cut.liquidations.time) == list(liq.time[:2])  # 20 + BAR/2 is not before t
    on_close = cut_at(c, oi, liq, int(c.close_time[20]), PARAMS.oi_max_gap_bars)
    assert len(on_close.candles) == 21 and len(on_close.liquidations) == 4


# ---------------------------------------------------------------------------------------- the session


def build_at(c: Candles, oi: OpenInterest | None, liq: Liquidations, t: int) -> LiquidationEngine:
    """What the window (or `liqdesk snapshot --at`) builds from the inputs cut at t."""
    cut = cut_at(c, oi, liq, t, PARAMS.oi_max_gap_bars)
    return LiquidationEngine.build(cut.candles, cut.open_interest, PARAMS)


def test_stepping_back_and_forth_always_equals_a_build_on_the_data_cut_there():
    c, oi = random_market(600, 8)
    liq = liquidations(c.open_time[::7] + 1000)
    s = ReplaySession(c, oi, liq, PARAMS, append_vs_rebuild=2)
    moves = [("start", 300), ("step", 1), ("step", 1), ("back", 1), ("back", 5), ("step", 3),
             ("seek", 150), ("seek", 180), ("seek", 500), ("back", 499), ("step", 1), ("seek", 600)]  # fmt: skip
    for kind, k in moves:
        if kind == "start":
            pos = s.start(int(c.close_time[k - 1]))
        elif kind == "step":
            pos = s.step(k)
        elif kind == "back":
            pos = s.step_back(k)
        else:
            pos = s.seek(k)
        assert s.engine is not None
        assert_same_engine(s.engine, build_at(c, oi, liq, pos.time_ms))
        assert len(s.candles) == pos.bars and s.candles.close_time[-1] == pos.time_ms
        assert (s.liquidations.time < pos.time_ms).all()
        assert len(s.liquidations) == int(np.count_nonzero(liq.time < pos.time_ms))
    assert pos.at_end and pos.bars == len(c)
    assert s.rebuilds == 3  # the start, and the two long forward jumps (180 → 500 and 2 → 600)


def test_the_chart_at_t_is_the_same_whatever_happens_after_t():
    """The causality property on what the window draws: heatmap view (levels from the visible
    cells), map, magnets, sweeps and liquidations at t do not move when every input after t changes."""
    c, oi = random_market(500, 21)
    liq = liquidations(c.open_time[::5] + 7)
    t_bars = 320
    t = int(c.close_time[t_bars - 1])
    rng = np.random.default_rng(3)
    future = slice(t_bars, None)
    c2 = Candles(
        c.open_time, c.open.copy(), c.high.copy(), c.low.copy(), c.close.copy(), c.volume.copy(), c.interval_ms,
        quote_volume=c.quote_volume, taker_buy_volume=c.taker_buy_volume,
    )  # fmt: skip
    for a in (c2.high, c2.low, c2.close, c2.volume):
        a[future] *= rng.uniform(0.7, 1.3, len(a[future]))
    c2.high[future] = np.maximum(c2.high[future], c2.close[future]) * 1.05
    c2.low[future] = np.minimum(c2.low[future], c2.close[future]) * 0.95
    assert oi is not None
    oi2 = OpenInterest(oi.time, np.where(oi.time > t, oi.usd * 1.7, oi.usd))
    liq2 = liq.concat(liquidations(np.array([t, t + 1, t + BAR]), price=50_000.0))

    def chart(cc: Candles, o: OpenInterest, lq: Liquidations) -> dict[str, object]:
        s = ReplaySession(cc, o, lq, PARAMS)
        s.start(t)
        eng = s.engine
        assert eng is not None
        n = eng.n_bars
        bins = auto_bins(s.candles.low[n - 200 :], s.candles.high[n - 200 :], 300)
        view = render_view(
            eng, bins, n - 200, n, 150, visible_bars=(n - 180, n), visible_prices=(bins.lo, bins.hi)
        )
        lmap = liquidation_map(eng, bins)
        ev = eng.sweeps(n - 200, n)
        return {"image": view.image, "values": np.asarray(view.values), "levels": np.array(view.levels),
                "bins": np.array([bins.lo, bins.hi]), "long": lmap.long_by_tier, "short": lmap.short_by_tier,
                "magnets": np.array([(m.price, m.usd) for m in find_magnets(lmap)]),
                "sweeps": np.c_[ev.bar, ev.price, ev.usd], "liq": s.liquidations.time}  # fmt: skip

    a, b = chart(c, oi, liq), chart(c2, oi2, liq2)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), moves=st.lists(st.integers(-60, 60), min_size=1, max_size=12))
def test_random_moves_equal_a_build(seed, moves):
    c, oi = random_market(300, seed, oi=seed % 2 == 0)
    s = ReplaySession(c, oi, None, PARAMS, append_vs_rebuild=3)
    s.start(int(c.close_time[150]))
    for m in moves:
        pos = s.step(m) if m >= 0 else s.step_back(-m)
    assert s.engine is not None
    assert_same_engine(s.engine, build_at(c, oi, Liquidations.empty(), pos.time_ms))


def test_a_step_patches_the_newest_heatmap_column_like_a_fresh_view():
    c, oi = random_market(400, 9)
    s = ReplaySession(c, oi, None, PARAMS)
    s.start(int(c.close_time[299]))
    eng = s.engine
    assert eng is not None
    bins = PriceBins(float(c.low.min()) * 0.9, float(c.high.max()) * 1.1, 200)
    view = render_view(eng, bins, 200, 300, None, levels=(0.0, 500.0))
    s.step()
    patched = patch_newest_column(eng, view)
    assert patched is not None
    fresh = render_view(eng, bins, 200, 301, None, levels=(0.0, 500.0))
    np.testing.assert_array_equal(patched.image, fresh.image)


def test_extend_adds_newer_bars_only():
    c, oi = random_market(200, 6)
    first = c.take(slice(0, 150))
    s = ReplaySession(first, oi, None, PARAMS)
    s.start(int(first.close_time[-1]))
    assert s.position().at_end
    s.extend(c.take(slice(100, 200)), oi)  # overlapping: only bars 150.. are new
    assert len(s.history) == 200
    pos = s.step(50)
    assert pos.at_end
    assert s.engine is not None
    full = ReplaySession(c, oi, None, PARAMS)
    full.start(int(c.close_time[-1]))
    assert full.engine is not None
    assert_same_engine(s.engine, full.engine)


def test_a_replay_needs_two_bars():
    c, _ = random_market(1, 1, oi=False)
    with pytest.raises(ValueError, match="two bars"):
        ReplaySession(c, None, None, PARAMS)


# ---------------------------------------------------------------------------------------- playing


def test_play_clock_gives_the_bars_due_and_drops_a_backlog():
    clock = PlayClock(speed=100)
    clock.start(10.0)
    assert clock.due(10.005) == 0
    assert clock.due(10.0105) == 1
    assert clock.due(10.05) == 4
    assert clock.due(11.0) == clock.max_burst  # a stalled second: at most a burst, not 95 bars at once
    assert clock.due(11.01) == 1
    assert clock.interval_ms() == 16
    assert PlayClock(speed=2).interval_ms() == 500
    with pytest.raises(ValueError):
        PlayClock(speed=0)


def test_a_device_engine_rewinds_and_replays_like_the_cpu_engine():
    """The device path (CuPy code, CUDA kernels emulated on the CPU): its statistics are not kept, so the
    rewind takes the alive notional from the levels; stepping on from there matches the CPU engine."""
    from liqdesk.core.backend import select_backend
    from tests.core import cuda_emulator
    from tests.core.test_device_build import assert_same_state

    if not cuda_emulator.compiler_available():
        pytest.skip("needs g++ for the CUDA emulator")
    gpu = select_backend("cupy", importer=lambda name: cuda_emulator.fake_cupy())
    c, oi = random_market(400, 12)
    dev = ReplaySession(c, oi, None, PARAMS, backend=gpu)
    cpu = ReplaySession(c, oi, None, PARAMS)
    for s in (dev, cpu):
        s.start(int(c.close_time[299]))
        s.step_back(40)
        s.step(5)
    assert dev.engine is not None and cpu.engine is not None
    assert dev.engine._alive_total == pytest.approx(cpu.engine._alive_total, rel=1e-9)
    assert_same_state(cpu.engine, dev.engine)

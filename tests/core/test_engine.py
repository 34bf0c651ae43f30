"""Hand-computed engine expectations: openings, sweeps, closes, conservation, incremental updates."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.leverage import Tiers, liquidation_price
from liqdesk.core.openings import MODEL_OI, MODEL_VOLUME, open_interest_at_close
from liqdesk.core.params import ModelParams
from liqdesk.core.series import LONG, SHORT, OpenInterest
from liqdesk.core.sweeps import NEVER, sweep_bars
from tests.core.helpers import BAR, candles, oi_at_closes, random_market

ONE_TIER = ModelParams(tiers=Tiers(np.array([10.0]), np.array([1.0])), preset="test")
LP_LONG = float(liquidation_price(100.0, 10, +1))
LP_SHORT = float(liquidation_price(100.0, 10, -1))


def _alive(eng, bar):
    idx, usd = eng.alive_at(bar)
    lv = eng.levels()
    return {(int(lv["side"][i]), round(float(lv["price"][i]), 6)): u for i, u in zip(idx, usd, strict=True)}


def test_levels_open_at_vwap_with_bracket_formula_and_sweep_inclusively_from_next_bar():
    c = candles([
        (100, 100, 100, 100),
        (100, 100, 80, 100),  # opens the levels; its own low (80) cannot sweep them
        (100, 100, LP_LONG, 100),  # low == long level: swept (inclusive)
        (100, LP_SHORT - 0.01, 99, 100),  # just short of the short level
    ])  # fmt: skip
    eng = LiquidationEngine.build(c, oi_at_closes([1000, 1100, 1100, 1100]), ONE_TIER)
    lv = eng.levels()
    assert eng.n_levels == 2
    assert sorted(lv["price"]) == pytest.approx([LP_LONG, LP_SHORT])
    assert lv["deposit"] == pytest.approx([100.0, 100.0])  # 2·ΔOI·r' with r' = 0.5
    sweep = dict(zip(lv["side"].tolist(), lv["sweep"].tolist(), strict=True))
    assert sweep[LONG] == 2
    assert sweep[SHORT] == NEVER
    ev = eng.sweeps()
    assert len(ev) == 1 and ev.side[0] == LONG and ev.bar[0] == 2 and ev.usd[0] == pytest.approx(100.0)
    assert set(_alive(eng, 1)) == {(LONG, round(LP_LONG, 6)), (SHORT, round(LP_SHORT, 6))}
    assert set(_alive(eng, 2)) == {(SHORT, round(LP_SHORT, 6))}


def test_taker_share_splits_openings_with_floor():
    c = candles([(100, 100, 100, 100)] * 2, taker=0.8)
    eng = LiquidationEngine.build(c, oi_at_closes([1000, 1100]), ONE_TIER.with_(taker_floor=0.2))
    r = 0.2 + 0.6 * 0.8
    np.testing.assert_allclose(eng.deposits[1], [2 * 100 * r, 2 * 100 * (1 - r)])
    assert eng.model[1] == MODEL_OI


def test_unexplained_oi_drops_close_levels_pro_rata():
    c = candles([
        (100, 100, 100, 100),
        (100, 100, 100, 100),  # OI +100: 100 long + 100 short
        (100, 100, 100, 100),  # OI −50, nothing swept: close 50 of 200 → ×0.75
        (100, 100, LP_LONG, 100),  # long (75) swept, OI −100: close 25 of the 75 left → ×2/3
    ])  # fmt: skip
    eng = LiquidationEngine.build(c, oi_at_closes([1000, 1100, 1050, 950]), ONE_TIER)
    a2 = _alive(eng, 2)
    assert sorted(a2.values()) == pytest.approx([75.0, 75.0])
    ev = eng.sweeps()
    assert ev.usd == pytest.approx([75.0])
    a3 = _alive(eng, 3)
    assert list(a3.values()) == pytest.approx([50.0])
    b = eng.budget()
    assert (b.deposited, b.alive, b.swept, b.closed) == pytest.approx((200.0, 50.0, 75.0, 75.0))
    assert b.imbalance == pytest.approx(0.0, abs=1e-9)


def test_volume_model_where_open_interest_is_missing():
    c = candles([(100, 100, 100, 100)] * 4)
    eng = LiquidationEngine.build(c, None, ONE_TIER.with_(churn=0.1))
    assert list(eng.model[1:]) == [MODEL_VOLUME] * 3
    # churn × quote volume (10 × 100) = 100 per bar, split 50/50 → 2·100·0.5 each side
    np.testing.assert_allclose(eng.deposits[1:], [[100.0, 100.0]] * 3)
    assert eng.model_label() == "volume model"
    # the volume model cannot see closes, so levels decay with its half-life
    hl = ONE_TIER.volume_half_life_h
    expected = 100.0 * 0.5 ** ((2 * BAR / 3_600_000) / hl)
    idx, usd = eng.alive_at(3)
    first = eng.levels()["created"][idx] == 1
    np.testing.assert_allclose(usd[first], expected, rtol=1e-12)


def test_partial_open_interest_is_labelled():
    c = candles([(100, 100, 100, 100)] * 6)
    oi = OpenInterest(np.array([4, 5, 6]) * BAR, np.array([1000.0, 1100, 1200]))
    eng = LiquidationEngine.build(c, oi, ONE_TIER.with_(oi_max_gap_bars=1.5))
    assert list(eng.model) == [0, MODEL_VOLUME, MODEL_VOLUME, MODEL_VOLUME, MODEL_OI, MODEL_OI]
    assert "volume model" in eng.model_label() and "OI model" in eng.model_label()
    runs = eng.coverage()
    assert [r[2] for r in runs] == ["volume model", "OI model"]


def test_open_interest_is_interpolated_to_bar_closes_and_gaps_stay_unknown():
    c = candles([(100, 100, 100, 100)] * 6)
    oi = OpenInterest(np.array([1, 3, 4, 5, 9]) * BAR, np.array([1000.0, 1200.0, 1300.0, 1400.0, 1700.0]))
    v = open_interest_at_close(c, oi, max_gap_bars=2.0)
    np.testing.assert_allclose(v[:5], [1000, 1100, 1200, 1300, 1400])  # 2-bar gap: interpolated
    assert np.isnan(v[5])  # 4 bars between snapshots > 2 × the usual 1.5-bar spacing


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conservation_on_random_markets(seed):
    c, oi = random_market(1500, seed)
    for params in (ModelParams(), ModelParams(half_life_h=6.0), ModelParams(entry_points=3)):
        eng = LiquidationEngine.build(c, oi, params)
        b = eng.budget()
        assert b.imbalance == pytest.approx(0.0, abs=1e-6 * b.deposited)
        assert b.swept > 0 and b.closed > 0 and b.alive > 0


def test_sweep_search_finds_the_first_bar_that_reaches_each_level():
    """The compiled search (a monotonic stack) against the definition, level by level."""
    c, _ = random_market(3000, 5)
    rng = np.random.default_rng(1)
    m = 4000
    created = np.sort(rng.integers(0, len(c), m))
    price = c.close[created] * rng.uniform(0.95, 1.05, m)
    side = rng.choice(np.array([LONG, SHORT], np.int8), m)
    got = sweep_bars(c.low, c.high, created, price, side)
    for i in range(0, m, 7):
        later = slice(created[i] + 1, len(c))
        reach = c.low[later] <= price[i] if side[i] == LONG else c.high[later] >= price[i]
        hits = np.nonzero(reach)[0]
        assert got[i] == (created[i] + 1 + hits[0] if len(hits) else NEVER), i
    with pytest.raises(ValueError, match="creation order"):
        sweep_bars(c.low, c.high, created[::-1].copy(), price, side)


def _replay(c, oc, split, revise_every=3):
    """Build on the first `split` bars, then stream the rest, revising some bars live first."""
    eng = LiquidationEngine.build(
        c.take(slice(0, split)), oi_close=oc[:split], params=ModelParams(preset="x")
    )
    for i in range(split, len(c)):
        if i % revise_every == 0:  # a live bar that moved before it closed
            half = c.take(slice(i, i + 1))
            eng.append_bar(half, oc[i] * 0.999 if np.isfinite(oc[i]) else None)
            eng.revise_last_bar(half, oc[i] + 1e6 if np.isfinite(oc[i]) else None)
            eng.revise_last_bar(c.take(slice(i, i + 1)), oc[i])
        else:
            eng.append_bar(c.take(slice(i, i + 1)), oc[i])
    return eng


@pytest.mark.parametrize("with_oi", [True, False])
def test_incremental_updates_equal_a_full_rebuild(with_oi):
    c, oi = random_market(1200, 3, oi=with_oi)
    params = ModelParams(preset="x")
    oc = open_interest_at_close(c, oi, params.oi_max_gap_bars)
    full = LiquidationEngine.build(c, oi_close=oc, params=params)
    inc = _replay(c, oc, 900)
    for k, v in full.levels().items():
        np.testing.assert_array_equal(inc.levels()[k], v, err_msg=k)
    np.testing.assert_array_equal(inc.log_factor, full.log_factor)
    np.testing.assert_array_equal(inc.stats, full.stats)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(5, 400),
    floor=st.floats(0, 0.45),
    hl=st.sampled_from([None, 1.0, 24.0]),
)
def test_no_level_survives_a_price_that_reached_it(seed, n, floor, hl):
    c, oi = random_market(n, seed)
    eng = LiquidationEngine.build(c, oi, ModelParams(taker_floor=floor, half_life_h=hl))
    lv = eng.levels()
    lows, highs = eng.sweep_low, eng.sweep_high
    for p, cr, sw, side in zip(lv["price"], lv["created"], lv["sweep"], lv["side"], strict=True):
        end = n if sw == NEVER else sw
        between = slice(cr + 1, end)
        if side == LONG:
            assert np.all(lows[between] > p)  # alive: above every low since creation
            if sw != NEVER:
                assert lows[sw] <= p
        else:
            assert np.all(highs[between] < p)
            if sw != NEVER:
                assert highs[sw] >= p
    assert eng.budget().imbalance == pytest.approx(0.0, abs=1e-6 * max(1.0, eng.budget().deposited))


def test_sweep_bars_never_for_levels_out_of_reach():
    c = candles([(100, 101, 99, 100)] * 5)
    created = np.array([0, 0, 3])
    price = np.array([50.0, 150.0, 99.0])
    side = np.array([LONG, SHORT, LONG])
    out = sweep_bars(c.low, c.high, created, price, side)
    assert list(out) == [NEVER, NEVER, 4]


def test_the_painter_equals_the_column_definition():
    """Each painted column equals heatmap.column_at (the notional alive at its last bar, per bin)."""
    from liqdesk.core.grid import PriceBins, render_grid
    from liqdesk.core.heatmap import column_at

    c, oi = random_market(1500, 9)
    eng = LiquidationEngine.build(c, oi, ModelParams(half_life_h=12.0))
    bins = PriceBins(float(c.low.min()) * 0.9, float(c.high.max()) * 1.1, 300)
    for start, end, cols in ((0, 1500, None), (200, 1400, 333), (1000, 1500, 7)):
        g = render_grid(eng, bins, start, end, cols)
        for k in range(0, len(g.last_bar), max(1, len(g.last_bar) // 40)):
            want_l, want_s = column_at(eng, bins, int(g.last_bar[k]))
            np.testing.assert_allclose(g.long[k], want_l, rtol=2e-6, atol=1e-3)
            np.testing.assert_allclose(g.short[k], want_s, rtol=2e-6, atol=1e-3)
            assert ((g.long[k] > 0) == (want_l > 0)).all() and ((g.short[k] > 0) == (want_s > 0)).all()


def test_the_painter_on_levels_worked_out_by_hand():
    """Columns of two bars each; a level shows from the column whose end is at or after its creation to the
    one before the column whose end is at or after its sweep, scaled by the log factor since its creation;
    `out` adds into what is there."""
    from liqdesk.core.paint import paint_side

    lv = {  # long levels in creation order, and one short one (not painted on the long side)
        "created": np.array([0, 0, 2, 4, 8, 9]),
        "sweep": np.array([NEVER, NEVER, 5, 5, NEVER, NEVER]),
        "price": np.array([100.5, 101.5, 101.5, 100.5, 250.0, 102.5]),
        "deposit": np.array([1.0, 7.0, 2.0, 4.0, 8.0, 3.0]),
        "side": np.array([LONG, SHORT, LONG, LONG, LONG, LONG], np.int8),
    }
    lf = -0.1 * np.arange(10.0)  # decay: a level holds deposit × exp(L[t] − L[c]) at the end of bar t
    last = np.array([1, 3, 5, 7, 9])
    got = paint_side(lv, lf, last, 100.0, 1.0, 3, LONG)
    want = np.zeros((5, 3))
    want[:, 0] = np.exp(lf[last] - lf[0])  # created at bar 0, never swept
    want[1, 1] = 2.0 * np.exp(lf[3] - lf[2])  # created at bar 2 (column 1), swept at bar 5 (column 2)
    want[4, 2] = 3.0  # created at bar 9, the last column's end
    # bar 4's level is created and swept inside column 2: never shown; bar 8's is outside the bins
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert (got[want == 0] == 0).all()
    into = np.full((5, 3), 1.0, np.float32)
    assert paint_side(lv, lf, last, 100.0, 1.0, 3, LONG, out=into) is into
    np.testing.assert_allclose(into, want + 1.0, rtol=1e-6)
    short = paint_side(lv, lf, last, 100.0, 1.0, 3, SHORT, transposed=True)  # (P, T): an image's layout
    np.testing.assert_allclose(short[1], 7.0 * np.exp(lf[last] - lf[0]), rtol=1e-6)
    assert short.shape == (3, 5) and not short[[0, 2]].any()


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 60),
    points=st.integers(1, 4),
    tiers=st.integers(1, 8),
    first_bar=st.integers(0, 5_000),
)
def test_compiled_level_creation_is_bit_identical_to_the_array_form(seed, n, points, tiers, first_bar):
    """The CPU build's compiled `create_levels_compiled` against `create_levels` (the device's and a live bar's):
    every column and the per-bar totals, bit for bit, with zero, negative, tiny and NaN openings dropped alike."""
    from liqdesk.core.levels import create_levels, create_levels_compiled

    rng = np.random.default_rng(seed)
    entry = rng.uniform(10, 1e5, (n, points))
    weight = rng.dirichlet(np.ones(points), n) if n else np.zeros((0, points))
    usd = rng.choice([0.0, -1.0, 1e-300, np.nan, 1.0], (n, 2)) * rng.uniform(0, 1e7, (n, 2))
    usd[rng.random((n, 2)) < 0.5] = rng.uniform(0, 1e7)
    factors = rng.uniform(0.5, 1.5, (2, tiers))
    tier_w = rng.dirichlet(np.ones(tiers))
    want = create_levels(entry, weight, usd[:, 0], usd[:, 1], factors, tier_w, first_bar, np)
    got = create_levels_compiled(entry, weight, usd[:, 0], usd[:, 1], factors, tier_w, first_bar)
    for name, col in want.columns().items():
        assert got.columns()[name].dtype == col.dtype, name
        np.testing.assert_array_equal(got.columns()[name], col, err_msg=name)
    np.testing.assert_array_equal(got.deposit_total, want.deposit_total)

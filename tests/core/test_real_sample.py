"""The engine on the bundled real data: non-empty, internally consistent, honest about its model."""

import numpy as np
import pytest

from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import PriceBins, render_grid
from liqdesk.core.liqmap import auto_bins, find_magnets, liquidation_map
from liqdesk.core.series import LONG, SHORT
from liqdesk.core.sweeps import NEVER
from liqdesk.feeds.presets import params_for
from liqdesk.feeds.sample import load_sample


@pytest.fixture(scope="module")
def week():
    s = load_sample()
    c = s.candles
    start = int(np.searchsorted(c.open_time, int(s.open_interest.time[0]) - 3 * 86_400_000))
    candles = c.take(slice(start, len(c)))  # the OI week plus three days of volume-model history
    return candles, LiquidationEngine.build(candles, s.open_interest, params_for("all"))


def test_map_at_the_last_bar_is_not_empty_and_sides_sit_where_they_should(week):
    candles, eng = week
    bins = auto_bins(candles.low, candles.high, 400, margin=0.5)
    m = liquidation_map(eng, bins)
    assert m.total_long > 1e8 and m.total_short > 1e8  # hundreds of $M on BTCUSDT
    assert (m.long[m.price > m.price_now + bins.width] == 0).all()
    assert (m.short[m.price < m.price_now - bins.width] == 0).all()
    mags = find_magnets(m)
    assert any(g.side == LONG and g.distance_pct < 0 for g in mags)
    assert any(g.side == SHORT and g.distance_pct > 0 for g in mags)


def test_every_alive_level_is_beyond_every_extreme_since_its_creation(week):
    candles, eng = week
    lv = eng.levels()
    alive = lv["sweep"] == NEVER
    # running min of lows from the end: min over (created, end]
    suffix_min = np.minimum.accumulate(eng.sweep_low[::-1])[::-1]
    suffix_max = np.maximum.accumulate(eng.sweep_high[::-1])[::-1]
    after = np.minimum(lv["created"] + 1, eng.n_bars - 1)
    has_after = lv["created"] + 1 < eng.n_bars
    longs = alive & (lv["side"] == LONG) & has_after
    shorts = alive & (lv["side"] == SHORT) & has_after
    assert longs.sum() > 1000 and shorts.sum() > 1000
    assert (lv["price"][longs] < suffix_min[after[longs]]).all()
    assert (lv["price"][shorts] > suffix_max[after[shorts]]).all()


def test_oi_week_uses_the_oi_model_and_the_history_before_it_says_volume(week):
    _, eng = week
    runs = eng.coverage()
    assert [r[2] for r in runs] == ["volume model", "OI model"]
    assert "volume model" in eng.model_label() and "OI model" in eng.model_label(eng.n_bars - 100)


def test_budget_balances_on_real_data(week):
    _, eng = week
    b = eng.budget()
    assert b.closed > 0 and b.swept > 0 and b.decayed > 0
    assert abs(b.imbalance) < 1e-6 * b.deposited


def test_resampled_columns_are_the_state_at_each_column_end(week):
    candles, eng = week
    bins = PriceBins(float(candles.low.min()) * 0.8, float(candles.high.max()) * 1.2, 200)
    full = render_grid(eng, bins, 100, 900)
    coarse = render_grid(eng, bins, 100, 900, columns=37)
    rows = coarse.last_bar - 100
    np.testing.assert_allclose(coarse.long, full.long[rows], rtol=1e-5, atol=1.0)
    np.testing.assert_allclose(coarse.short, full.short[rows], rtol=1e-5, atol=1.0)
    assert coarse.time_ms[0] == eng.open_time[100]
    # and each column's total equals the liquidation map at that bar inside the binned range
    k = 20
    m = liquidation_map(eng, bins, int(coarse.last_bar[k]))
    assert coarse.long[k].sum() == pytest.approx(m.long.sum(), rel=1e-5)
    assert coarse.short[k].sum() == pytest.approx(m.short.sum(), rel=1e-5)

"""The model variants the experiments try keep the engine's invariants: every deposited dollar is alive,
swept, closed or decayed (aged out); one-bar updates give the numbers of a full build; and churn, in the
volume model, only scales the map (so no density score can see it)."""

from __future__ import annotations

import numpy as np
import pytest

from liqdesk.core.calibration import CalibrationConfig, calibrate
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.leverage import Tiers
from liqdesk.core.openings import open_interest_at_close
from liqdesk.core.params import ModelParams
from liqdesk.core.series import LONG
from tests.core.helpers import BAR, random_market
from tests.test_calibration import liqs_of

HIGH = Tiers(np.array([25.0, 50.0, 100.0]), np.full(3, 1 / 3))
VARIANTS = {
    "short lifetime": ModelParams(volume_half_life_h=1.0, half_life_h=1.0),
    "entry points 9": ModelParams(entry_points=9),
    "preset high": ModelParams(tiers=HIGH, preset="high"),
    "taker floor 0": ModelParams(taker_floor=0.0),
    "all of them": ModelParams(
        volume_half_life_h=1.0, entry_points=9, tiers=HIGH, preset="high", taker_floor=0.0
    ),
}


@pytest.mark.parametrize("name", list(VARIANTS))
@pytest.mark.parametrize("with_oi", [True, False])
def test_every_dollar_is_accounted_for(name, with_oi):
    c, oi = random_market(1500, 7, oi=with_oi)
    b = LiquidationEngine.build(c, oi, VARIANTS[name]).budget()
    assert b.imbalance == pytest.approx(0.0, abs=1e-6 * b.deposited)
    assert b.swept > 0 and b.alive > 0
    if not with_oi or VARIANTS[name].half_life_h:
        assert b.decayed > 0  # levels aged out


@pytest.mark.parametrize("name", list(VARIANTS))
def test_one_bar_updates_equal_a_full_build(name):
    params = VARIANTS[name]
    c, oi = random_market(700, 11)
    oc = open_interest_at_close(c, oi, params.oi_max_gap_bars)
    oc[300:340] = np.nan  # a gap: volume model there
    full = LiquidationEngine.build(c, oi_close=oc, params=params)
    inc = LiquidationEngine.build(c.take(slice(0, 500)), oi_close=oc[:500], params=params)
    for i in range(500, len(c)):
        row = c.take(slice(i, i + 1))
        inc.append_bar(row, None if np.isnan(oc[i]) else oc[i] * 1.001)
        inc.revise_last_bar(row, None if np.isnan(oc[i]) else oc[i])
    for k, v in full.levels().items():
        np.testing.assert_array_equal(inc.levels()[k], v, err_msg=k)
    np.testing.assert_array_equal(inc.log_factor, full.log_factor)
    np.testing.assert_array_equal(inc.stats, full.stats)


def test_churn_only_scales_the_volume_model_so_no_density_score_sees_it():
    c, _ = random_market(24 * 12 * 2, 5, oi=False)
    a = LiquidationEngine.build(c, None, ModelParams(churn=0.06))
    b = LiquidationEngine.build(c, None, ModelParams(churn=0.12))
    _, usd_a = a.alive_at(len(c) - 1)
    _, usd_b = b.alive_at(len(c) - 1)
    np.testing.assert_allclose(usd_b, 2.0 * usd_a, rtol=1e-12)
    t = np.arange(3, 40) * 3_600_000 + 5 * 60_000
    bar = np.searchsorted(c.open_time, t - BAR)
    ev = liqs_of(t, np.full(len(t), LONG), c.close[bar] * 0.99)
    cfg = CalibrationConfig(horizon_ms=3_600_000, n_boot=200)
    ra, rb = calibrate(a, ev, cfg), calibrate(b, ev, cfg)
    assert ra.rows["total"].loglik["model"] == rb.rows["total"].loglik["model"]
    assert ra.magnet.difference == rb.magnet.difference

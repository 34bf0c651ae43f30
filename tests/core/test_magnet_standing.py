"""The measured standing of magnets: which magnets were shown, whether price reached them within the
horizon, "hit k of last n" / "unscored", the model check, and the words the window shows."""

from __future__ import annotations

import numpy as np
import pytest

from liqdesk.app.magnet_standing import standing_text
from liqdesk.core.calibration import CalibrationConfig, magnet_test
from liqdesk.core.density_snapshots import density_snapshots, snapshot_times
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.leverage import Tiers
from liqdesk.core.magnet_standing import (
    CHECK_RANDOM,
    UNSCORED,
    MagnetOutcome,
    StandingConfig,
    magnet_check,
    magnet_outcomes,
    magnet_standing,
)
from liqdesk.core.params import ModelParams
from liqdesk.core.series import LONG, SHORT
from liqdesk.feeds.sample import load_sample
from tests.core.helpers import BAR, candles

HOUR = 3_600_000
ONE_TIER = ModelParams(tiers=Tiers(np.array([25.0]), np.array([1.0])))
LONG_25X = 0.96 / 0.996  # 25x long liquidation price / entry (bracket 1)
SHORT_25X = 1.04 / 1.004


def drop_market(drop_bar: int, n: int = 72) -> LiquidationEngine:
    """Flat at 100 until drop_bar, then 96 (the low 95.9 reaches the 25x long level 96.39)."""
    rows = [(100.0, 100.05, 99.95, 100.0)] * drop_bar
    rows += [(100.0, 100.0, 95.9, 96.0)] + [(96.0, 96.05, 95.95, 96.0)] * (n - drop_bar - 1)
    return LiquidationEngine.build(candles(rows), None, ONE_TIER)


CFG = StandingConfig(horizon_ms=2 * HOUR, every_ms=HOUR, per_side=1)


def _at(outcomes: list[MagnetOutcome], side: int, price: float) -> list[MagnetOutcome]:
    return [o for o in outcomes if o.side == side and abs(o.price - price) < 0.05]


def test_a_cluster_reached_within_the_horizon_of_its_first_showing_is_a_hit_and_counts_once():
    out = magnet_outcomes(drop_market(30), CFG)
    (long_mag,) = _at(out, LONG, 100 * LONG_25X)  # shown at 1 h, 2 h: one magnet
    assert long_mag.shown_ms == HOUR and long_mag.hit_ms == 30 * BAR  # the drop, 1.5 h after it was shown
    (short_mag,) = _at(out, SHORT, 100 * SHORT_25X)
    assert short_mag.shown_ms == HOUR and short_mag.hit_ms is None  # never reached: a miss
    s = magnet_standing(drop_market(30), CFG)
    assert s.label == f"hit {s.hits} of last {s.n}" and s.hits >= 1 and s.n >= 2


def test_the_horizon_counts_from_the_first_showing():
    # the same cluster, reached 2 h 20 min after it was first shown: not within a 2 h horizon
    out = magnet_outcomes(drop_market(40), CFG)
    (long_mag,) = _at(out, LONG, 100 * LONG_25X)
    assert long_mag.shown_ms == HOUR and long_mag.hit_ms is None
    wider = magnet_outcomes(drop_market(40), StandingConfig(horizon_ms=3 * HOUR, every_ms=HOUR, per_side=1))
    (long_mag,) = _at(wider, LONG, 100 * LONG_25X)
    assert long_mag.hit_ms == 40 * BAR


def test_magnets_whose_horizon_runs_past_the_data_unreached_are_left_out():
    # data ends 1.5 h after the 1 h instant: the short cluster is unresolved, the long one was hit
    out = magnet_outcomes(drop_market(14, n=30), CFG)
    assert _at(out, LONG, 100 * LONG_25X)[0].hit_ms == 14 * BAR
    assert not _at(out, SHORT, 100 * SHORT_25X)
    assert all(o.hit_ms is not None or o.shown_ms + CFG.horizon_ms <= 30 * BAR for o in out)


def test_the_last_n_are_the_latest_resolved_oldest_first():
    s = magnet_standing(
        drop_market(30), StandingConfig(horizon_ms=2 * HOUR, every_ms=HOUR, per_side=1, last_n=2)
    )
    everything = sorted(magnet_outcomes(drop_market(30), CFG), key=lambda o: o.shown_ms)
    assert s.n == 2 and list(s.outcomes) == everything[-2:]


def test_too_little_data_is_unscored():
    eng = LiquidationEngine.build(candles([(100.0, 100.05, 99.95, 100.0)] * 10), None, ONE_TIER)
    s = magnet_standing(eng, CFG)
    assert s.label == UNSCORED and not s.scored and s.check.verdict == UNSCORED
    assert standing_text(s).label == UNSCORED and standing_text(None).label == UNSCORED


def test_the_model_check_is_the_calibrations_magnet_test_on_the_latest_candles():
    d = load_sample("btcusdt-1h-2025")
    eng = LiquidationEngine.build(d.candles, None, ModelParams())
    cfg = StandingConfig(horizon_ms=4 * HOUR)
    check = magnet_check(eng, cfg, n_boot=500)
    cal = CalibrationConfig(horizon_ms=4 * HOUR, n_boot=500)
    end = int(eng.open_time[-1]) + eng.interval_ms
    times = snapshot_times(eng.open_time, eng.interval_ms, cal, end - cfg.check_span_ms)
    times = times[times + cal.horizon_ms <= end]
    ref = magnet_test(density_snapshots(eng, times, cal), eng.sweep_high, eng.sweep_low, cal)
    assert check.difference == ref.difference and check.n_blocks == ref.n_blocks >= 5
    # two weeks of 2025-08 hourly bars: the interval holds 0
    assert check.verdict == CHECK_RANDOM and check.difference.low < 0 < check.difference.high


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        StandingConfig(last_n=0)
    with pytest.raises(ValueError):
        StandingConfig(horizon_ms=0)

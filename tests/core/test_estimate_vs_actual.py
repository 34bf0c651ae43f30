"""Estimate against actual: each score on maps whose answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from liqdesk.core.actual_map import PositionSamples
from liqdesk.core.calibration_config import CalibrationConfig
from liqdesk.core.density_snapshots import density_snapshots, snapshot_times
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.estimate_vs_actual import (
    ComparisonConfig,
    compare_maps,
    compare_snapshots,
    jensen_shannon,
    summarise,
    top_share,
    wasserstein_pct,
)
from liqdesk.core.grid import PriceBins
from liqdesk.core.params import ModelParams
from liqdesk.core.series import Candles

BINS = PriceBins(90.0, 110.0, 20)  # width 1, spot 100: one bin = 1 %


def one_hot(i: int, n: int = 20, v: float = 1.0) -> np.ndarray:
    a = np.zeros(n)
    a[i] = v
    return a


def test_distances_on_known_maps() -> None:
    a = one_hot(5, v=3.0)
    assert wasserstein_pct(a, a * 7, BINS, 100.0) == 0.0 and jensen_shannon(a, a) == 0.0
    # all mass moved 4 bins of 1 USD at spot 100: 4 %
    assert wasserstein_pct(one_hot(5), one_hot(9), BINS, 100.0) == pytest.approx(4.0)
    assert jensen_shannon(one_hot(5), one_hot(9)) == 1.0  # disjoint, however near
    half = (one_hot(5) + one_hot(9)) / 2
    assert wasserstein_pct(half, one_hot(5), BINS, 100.0) == pytest.approx(2.0)
    assert math.isnan(wasserstein_pct(np.zeros(20), a, BINS, 100.0)) and math.isnan(
        jensen_shannon(a, np.zeros(20))
    )


def test_top_share_is_chance_for_a_flat_estimate_and_exact_for_a_sharp_one() -> None:
    actual = np.arange(20, dtype=float)
    assert top_share(np.ones(20), actual, 0.10) == pytest.approx(0.10)  # ties: chance exactly
    est = one_hot(19, v=5.0) + one_hot(18, v=4.0)  # the top 10 % of 20 cells = cells 19 and 18
    assert top_share(est, actual, 0.10) == pytest.approx((19 + 18) / actual.sum())
    # the top 25 % = 5 cells: 19, 18, then 3 of the 18 tied empty cells, in expectation
    assert top_share(est, actual, 0.25) == pytest.approx(
        (19 + 18 + 3 / 18 * (actual[:18].sum())) / actual.sum()
    )


def test_compare_maps_finds_the_clusters_that_coincide() -> None:
    act_long, act_short = one_hot(3, v=10.0), one_hot(15, v=8.0)
    est_long, est_short = one_hot(3, v=1.0), one_hot(18, v=1.0)  # the short cluster is 3 % off
    c = compare_maps(est_long, est_short, act_long, act_short, BINS, 100.0, 0,
                     ComparisonConfig(clusters=3, cluster_tol_pct=1.0))  # fmt: skip
    assert (c.clusters, c.clusters_found) == (2, 1)
    assert c.w1_long_pct == 0.0 and c.w1_short_pct == pytest.approx(3.0)
    assert c.top_share[0.1] == pytest.approx(10 / 18)  # the estimate's top 2 cells hold the long cluster only


def test_summary_means_and_pooled_cluster_hits() -> None:
    rows = [
        compare_maps(one_hot(3), one_hot(15), one_hot(3), one_hot(15), BINS, 100.0, t * 3_600_000)
        for t in range(5)
    ] + [compare_maps(one_hot(3), one_hot(15), one_hot(5), one_hot(12), BINS, 100.0, 5 * 3_600_000)]
    s = summarise(rows, ComparisonConfig(n_boot=200))
    assert s.n_snapshots == 6 and s.w1_pct.value == pytest.approx((0 * 5 + 2.5) / 6)
    assert s.cluster_hit.value == pytest.approx(10 / 12)
    assert s.top_share[0.1].value == pytest.approx(5 / 6)


def test_compare_snapshots_scores_the_engine_map_against_positions_at_each_instant() -> None:
    rng = np.random.default_rng(3)
    n, interval = 48, 3_600_000
    t = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * interval
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    candles = Candles(t, close, close * 1.003, close * 0.997, close, np.full(n, 1000.0), interval)
    engine = LiquidationEngine.build(candles, None, ModelParams())
    cfg = CalibrationConfig(every_ms=6 * interval, warmup_ms=6 * interval, n_bins=40)
    times = snapshot_times(engine.open_time, interval, cfg)
    snaps = density_snapshots(engine, times, cfg)
    # one account, sampled at the third instant only, long with liquidation at that snapshot's spot − 2 %
    s3 = int(times[2])
    spot = float(snaps.spot[2])
    pos = PositionSamples(
        np.array(["a"]), np.array([s3 - 1], np.int64), np.array(["a"]), np.array(["BTC"]),
        np.array([s3 - 1], np.int64), np.array([1.0]), np.array([spot]), np.array([10.0]), np.array([True]),
        np.array([spot * 0.98]), np.array([spot / 10]), np.array([spot]),
    )  # fmt: skip
    rows = compare_snapshots(snaps, pos, max_age_ms=6 * interval)
    assert [r.time_ms for r in rows] == [s3]  # before: nothing sampled; after: the sample is too old
    r = rows[0]
    bins = PriceBins(float(snaps.lo[2]), float(snaps.hi[2]), 40)
    direct = compare_maps(snaps.long[2], snaps.short[2], one_hot(int(bins.index(np.array([spot * 0.98]))[0]), 40,
                                                                  spot * 0.98), np.zeros(40), bins, spot, s3)  # fmt: skip
    assert r.to_dict() == direct.to_dict() and r.actual_usd == pytest.approx(spot * 0.98)

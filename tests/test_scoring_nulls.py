"""Nulls that cannot flatter: each null wins where its guess is the truth, the out-of-sample scale fit
never sees the events it is scored on, the in-sample optimum is the strongest of its family, and the
count view guards against one wrong size."""

from __future__ import annotations

import numpy as np
import pytest

from liqdesk.core.calibration import NULLS, score_pairs, score_snapshots
from liqdesk.core.null_models import OutOfSampleFit, grid_loglik, range_bounds, scale_grid
from liqdesk.core.series import LONG, SHORT
from tests.test_calibration import SPOT, H, clustered, config, flat_candles, liqs_of, snaps_of


def _sides(n: int) -> np.ndarray:
    return np.where(np.arange(n) % 2 == 0, LONG, SHORT).astype(np.int8)


def test_events_exactly_at_spot_make_the_fitted_spot_laplace_win():
    rng = np.random.default_rng(11)
    s_n, p_n = 120, 200
    long, short, _, _ = clustered(s_n, p_n, rng)  # the map's clusters lie away from spot
    snaps = snaps_of(long, short, mean_price=SPOT * 1.02)
    n = 2_000
    time = rng.integers(0, s_n, n) * H + rng.integers(0, H, n)
    r = score_snapshots(
        snaps, liqs_of(time, _sides(n), np.full(n, SPOT)), *flat_candles(s_n), config(n_bins=p_n)
    )
    total = r.rows["total"]
    ll = total.loglik
    # The spot Laplace's fitted and best scales beat every other null and the map, with intervals.
    for winner in ("spot_laplace_fit", "spot_laplace_best"):
        assert total.lift[winner].high < 0, winner
        for other in ("uniform", "range", "mean_laplace_fit", "mean_laplace_best"):
            assert ll[winner].value > ll[other].value + 0.3, (winner, other)
    # Fitted: the scale shrinks to the tightest the grid allows (all events sit in spot's cell window)...
    assert r.all.nulls.oos_mult["count"]["spot_laplace"] == pytest.approx(scale_grid(config())[0])
    assert r.all.nulls.best_mult["total"]["count"]["spot_laplace"] == pytest.approx(scale_grid(config())[0])
    # ...and the fixed ATR/3 rule, blind to that, is a far weaker null.
    assert ll["spot_laplace_fit"].value > ll["spot_laplace"].value + 0.5
    assert "loses to" in total.verdict and "Laplace at spot (fitted)" in total.verdict


def test_events_spread_over_the_recent_range_make_the_range_null_win():
    rng = np.random.default_rng(12)
    s_n, p_n = 120, 200
    day = (SPOT * 0.99, SPOT * 1.01)
    long, short, _, _ = clustered(s_n, p_n, rng)
    snaps = snaps_of(long, short, day=day)
    lo, hi = range_bounds(snaps, config())
    assert lo[0] == pytest.approx(SPOT * 0.985) and hi[0] == pytest.approx(SPOT * 1.015)  # widened by 25 %
    n = 3_000
    price = rng.uniform(lo[0], hi[0], n)  # the range null's guess is the truth
    time = rng.integers(0, s_n, n) * H + rng.integers(0, H, n)
    r = score_snapshots(snaps, liqs_of(time, _sides(n), price), *flat_candles(s_n), config(n_bins=p_n))
    total = r.rows["total"]
    ll = total.loglik
    assert ll["range"].low > 0.75  # log(200 cells · 0.99 ÷ 90 cells of the widened range) ≈ 0.79
    for other in (
        "uniform",
        "spot_laplace_fit",
        "spot_laplace_best",
        "mean_laplace_fit",
        "mean_laplace_best",
    ):
        assert ll["range"].value > ll[other].value + 0.05, other
    assert total.lift["range"].high < 0  # the noisy map loses to the range guess


def test_the_map_beats_every_null_when_events_sit_at_its_clusters():
    rng = np.random.default_rng(13)
    s_n, p_n = 120, 200
    long, short, lc, sc = clustered(s_n, p_n, rng)
    snaps = snaps_of(long, short)
    s_idx = np.repeat(np.arange(s_n), 6)
    side = np.tile([LONG, LONG, LONG, SHORT, SHORT, SHORT], s_n).astype(np.int8)
    cell = np.where(side == LONG, lc[s_idx], sc[s_idx])
    price = snaps.centers[s_idx, cell]
    time = s_idx * H + rng.integers(0, H, len(s_idx))
    r = score_snapshots(snaps, liqs_of(time, side, price), *flat_candles(s_n, SPOT * 1.05, SPOT * 0.95),
                        config(n_bins=p_n))  # fmt: skip
    total = r.rows["total"]
    for null in NULLS:
        assert total.lift[null].low > 0.5, null
        assert total.by_usd.lift[null].low > 0.5, null
    # Given the path (price swept the whole range), USD still follows the map's density.
    path = r.all.path["total"]
    assert path.rho_usd.low > 0.05 and path.share_usd.low > 0.9
    # Its strongest zones are hit far more often than random zones on the path.
    p5 = r.all.precision["total"][0]
    assert p5.n == 5 and p5.precision.value > 0.3 and p5.precision.low > p5.chance


def _fit_inputs(snap_t: np.ndarray, ev_t: np.ndarray, ev_price: np.ndarray):
    s_n, p_n = len(snap_t), 200
    zeros = np.zeros((s_n, p_n))
    snaps = snaps_of(zeros, zeros.copy())
    assert np.array_equal(snaps.time_ms, snap_t)
    cfg = config(n_bins=p_n, fit_horizons=3, fit_min_events=5)
    liqs = liqs_of(ev_t, _sides(len(ev_t)), ev_price)
    pairs = score_pairs(snaps, liqs, cfg)
    fit = OutOfSampleFit(snaps.time_ms, liqs.time, pairs.time, cfg)
    weights = {"count": np.ones(len(pairs))}
    for j, ll in grid_loglik(snaps, "spot_laplace", pairs.snap, pairs.cell, cfg):
        fit.add(j, ll, weights)
    return fit, cfg


def test_the_out_of_sample_fit_never_sees_events_at_or_after_the_snapshot():
    rng = np.random.default_rng(14)
    snap_t = np.arange(12, dtype=np.int64) * H
    # Before 6 h: events hug spot (a tight scale fits). From 6 h on they lie 2–4 % away, 300 of them
    # exactly at 6 h: the 6 h snapshot's first test events, which a fit window ending at t (not
    # before it) would take in and widen its scale with.
    early_t = rng.integers(0, 6 * H, 300)
    late_t = np.r_[np.full(300, 6 * H), rng.integers(6 * H, 12 * H, 300)]
    near = SPOT + rng.laplace(0, 60, 300)
    far = SPOT + rng.choice([-1, 1], 600) * rng.uniform(2_000, 4_000, 600)
    fit, cfg = _fit_inputs(snap_t, np.r_[early_t, late_t], np.r_[near, far])
    k = fit.multipliers("count")
    # Snapshots at 1..6 h know only the early events: a tight scale.
    assert np.all(k[1:7] < 0.1), k
    assert k[0] == pytest.approx(cfg.laplace_atr_mult)  # no history yet: the fixed rule
    assert fit.n_events[6] == np.count_nonzero(early_t >= 3 * H) and fit.n_events[0] == 0
    # From 7 h on the window holds the far events and the scale widens.
    assert np.all(k[7:] > 0.3), k
    # Moving every event at or after a snapshot changes nothing in its fit.
    moved = np.r_[near, far + 50_000.0]
    fit2, _ = _fit_inputs(snap_t, np.r_[early_t, late_t], moved)
    np.testing.assert_array_equal(fit2.multipliers("count")[:7], k[:7])
    assert not np.array_equal(fit2.multipliers("count")[7:], k[7:])


def test_the_fit_window_is_the_previous_horizons_only():
    snap_t = np.arange(12, dtype=np.int64) * H
    ev_t = np.r_[np.full(20, 1 * H + 5), np.full(20, 9 * H + 5)]
    fit, cfg = _fit_inputs(snap_t, ev_t, np.full(40, SPOT))
    assert cfg.fit_horizons * cfg.horizon_ms == 3 * H
    # Events at 1 h are in the windows [t − 3 h, t) of the 2, 3 and 4 h snapshots only.
    assert fit.n_events.tolist() == [0, 0, 20, 20, 20, 0, 0, 0, 0, 0, 20, 20]
    # Buckets span the fit windows only (from 3 h before the first snapshot to the last one), not the epoch.
    assert fit.n_buckets == 3 + 11


def test_the_in_sample_best_null_is_at_least_as_strong_as_the_fixed_and_fitted_ones():
    rng = np.random.default_rng(15)
    s_n, p_n = 100, 200
    long, short, _, _ = clustered(s_n, p_n, rng)
    snaps = snaps_of(long, short, mean_price=SPOT * 1.01)
    n = 1_500
    price = SPOT + rng.laplace(0, 700, n)
    time = rng.integers(0, s_n, n) * H + rng.integers(0, H, n)
    r = score_snapshots(snaps, liqs_of(time, _sides(n), price), *flat_candles(s_n), config(n_bins=p_n))
    for row in ("total", "long", "short"):
        for view in (r.rows[row].by_count, r.rows[row].by_usd):
            for c in ("spot_laplace", "mean_laplace"):
                best = view.loglik[f"{c}_best"].value
                # The fixed k is on the grid: the best is never weaker. The fitted k changes from snapshot
                # to snapshot, so it could beat one k for all; on a stationary tape it does not by much.
                assert best >= view.loglik[c].value - 1e-12
                assert best >= view.loglik[f"{c}_fit"].value - 0.02
                # Refitted in every resample: its interval is not a fixed scale's.
                assert view.loglik[f"{c}_best"].has_ci


def test_the_count_view_guards_against_one_wrong_size():
    rng = np.random.default_rng(16)
    s_n, p_n = 120, 200
    long, short, lc, _ = clustered(s_n, p_n, rng)
    snaps = snaps_of(long, short, half_range=0.5)
    n = 1_200
    s_idx = rng.integers(0, s_n, n)
    price = rng.uniform(SPOT * 0.6, SPOT * 1.4, n)
    usd = np.full(n, 1_000.0)
    # One event with a size a million times too large, at a cluster of every snapshot's map.
    s_idx[0] = 7
    price[0] = snaps.centers[7, lc[7]]
    usd[0] = 1e12
    time = s_idx * H + 5
    r = score_snapshots(snaps, liqs_of(time, np.full(n, LONG, np.int8), price, usd), *flat_candles(s_n),
                        config(n_bins=p_n))  # fmt: skip
    total = r.rows["total"]
    assert total.top_share(0.10, "usd").share.value > 0.99  # the USD view believes the wrong size
    assert abs(total.top_share(0.10, "count").share.value - 0.10) < 0.04  # the count view does not

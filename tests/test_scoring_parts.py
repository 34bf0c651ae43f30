"""The parts of the scoring with known answers: the path-conditional test on a synthetic path, zones
and precision at N, Wilson bounds, ranks with ties, and venues scored side by side."""

from __future__ import annotations

import math

import numpy as np
import pytest

from liqdesk.core.calibration import (
    ALL_VENUES,
    CalibrationConfig,
    prepare,
    score_liquidations,
    score_snapshots,
)
from liqdesk.core.calibration_config import HOUR_MS
from liqdesk.core.intervals import wilson
from liqdesk.core.path_conditional import path_ranges, score_path
from liqdesk.core.ranks import average_ranks, spearman
from liqdesk.core.series import LONG, SHORT, Liquidations
from liqdesk.core.zone_precision import covered_share, peak_cells, precision_at_n, zones
from tests.test_calibration import SPOT, H, clustered, config, flat_candles, liqs_of, snaps_of

# ------------------------------------------------------------------------------------ path-conditional


def path_case(tolerance: float = 0.0):
    """3 snapshots, 100 cells of $100 over 95k–105k; price traverses 99k–101k (cells 40–59) in each
    horizon; the density rises with the cell inside the path and is largest far outside it."""
    s_n, p_n = 3, 100
    dens = np.zeros((s_n, p_n))
    dens[:, 40:60] = np.arange(1.0, 21.0)  # densest traversed cells: 55..59
    dens[:, 10] = 1_000.0  # the map's biggest cluster, never reached
    snaps = snaps_of(dens, np.zeros((s_n, p_n)))
    high, low = flat_candles(s_n, high=101_000.0, low=99_000.0)
    cfg = config(n_bins=p_n, tolerance_pct=tolerance)
    return snaps, dens, high, low, cfg


def naive_spearman(x: list[float], y: list[float]) -> float:
    def ranks(v: list[float]) -> list[float]:
        return [sum(1.0 for u in v if u < a) + (sum(1.0 for u in v if u == a) + 1.0) / 2.0 for a in v]

    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    return cov / math.sqrt(sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry))


def test_path_ranges_are_the_cells_the_horizon_traversed():
    snaps, _, high, low, cfg = path_case()
    r = path_ranges(snaps, high, low, cfg)
    assert r.first.tolist() == [40, 40, 40] and r.last.tolist() == [59, 59, 59]
    assert r.low.tolist() == [99_000.0] * 3 and r.high.tolist() == [101_000.0] * 3
    wide = path_ranges(snaps, high, low, config(n_bins=100, tolerance_pct=0.35))
    assert wide.first.tolist() == [36] * 3 and wide.last.tolist() == [63] * 3  # ±0.35 % of the path
    # No bar after the last snapshot's: its path is unknown.
    short = path_ranges(snaps, high[: 2 * 60 + 1], low[: 2 * 60 + 1], cfg)
    assert short.known.tolist() == [True, True, False]


def test_the_path_conditional_test_on_a_synthetic_path():
    snaps, dens, high, low, cfg = path_case()
    ranges = path_ranges(snaps, high, low, cfg)
    # Per snapshot: $1,000 in each of the 5 densest traversed cells, $1,000 in the thinnest one (40), $5,000
    # at 103k (off the path), and for snapshot 2 an extra $4,000 in cell 41.
    snap, cell, usd = [], [], []
    for s in range(3):
        for c in (55, 56, 57, 58, 59, 40, 80):
            snap.append(s)
            cell.append(c)
            usd.append(5_000.0 if c == 80 else 1_000.0)
    snap.append(2)
    cell.append(41)
    usd.append(4_000.0)
    p = score_path("total", snaps, dens, ranges, np.array(snap), np.array(cell), np.array(usd), cfg)
    assert p.n_off_path == 3 and p.n_pairs == 19 and p.n_snapshots == 3 and p.mean_cells == 20
    d = list(range(1, 21))
    y01 = [1_000.0] + [0.0] * 14 + [1_000.0] * 5
    y2 = [1_000.0, 4_000.0] + [0.0] * 13 + [1_000.0] * 5
    rho = (2 * naive_spearman(d, y01) + naive_spearman(d, y2)) / 3
    assert p.rho_usd.value == pytest.approx(rho, abs=1e-12)
    c2 = [1.0, 1.0] + [0.0] * 13 + [1.0] * 5
    assert p.rho_count.value == pytest.approx(
        (2 * naive_spearman(d, [v / 1000 for v in y01]) + naive_spearman(d, c2)) / 3
    )
    # Top quarter of the 20 traversed cells = the 5 densest: 15 k of 22 k USD, 15 of 19 events.
    assert p.share_usd.value == pytest.approx(15_000 / 22_000)
    assert p.share_count.value == pytest.approx(15 / 19)
    assert p.curve.usd_share[25] == pytest.approx(15_000 / 22_000) and p.curve.usd_share[-1] == pytest.approx(
        1
    )
    # All cells, not just the path: the map's biggest cluster (never reached) takes the top spot; on the
    # path the ranking is the one above.
    assert np.argmax(dens[0]) == 10


def test_a_map_flat_over_the_path_ranks_nothing():
    snaps, dens, high, low, cfg = path_case()
    flat = dens.copy()
    flat[:, 40:60] = 3.0
    ranges = path_ranges(snaps, high, low, cfg)
    snap = np.array([0, 0, 1, 2])
    cell = np.array([45, 50, 59, 40])
    p = score_path("total", snaps, flat, ranges, snap, cell, np.full(4, 100.0), cfg)
    assert p.rho_usd.value == 0.0 and p.share_usd.value == pytest.approx(0.25)  # ties: exactly chance


def test_the_path_test_in_the_full_scoring_sees_the_map_follow_the_path():
    rng = np.random.default_rng(21)
    s_n, p_n = 80, 200
    long, short, lc, sc = clustered(s_n, p_n, rng)
    snaps = snaps_of(long, short)
    s_idx = np.repeat(np.arange(s_n), 2)
    side = np.tile([LONG, SHORT], s_n).astype(np.int8)
    price = snaps.centers[s_idx, np.where(side == LONG, lc[s_idx], sc[s_idx])]
    r = score_snapshots(snaps, liqs_of(s_idx * H + 9, side, price), *flat_candles(s_n, SPOT * 1.06, SPOT * 0.94),
                        config(n_bins=p_n))  # fmt: skip
    for row in ("total", "long", "short"):
        p = r.all.path[row]
        assert p.n_snapshots == s_n and p.n_off_path == 0 and p.share_usd.low > 0.9 and p.rho_usd.low > 0


# ---------------------------------------------------------------------------------- zones, precision


def test_zones_are_separate_peaks_not_neighbouring_cells():
    d = np.zeros(60)
    d[10:13] = 5.0  # a flat top: one peak, at its middle (cell 11)
    d[14] = 4.0  # a second, lower peak 3 cells away: the same cluster
    d[40] = 3.0
    d[50] = 6.0
    pos, val = peak_cells(d)
    assert pos.tolist() == [50.0, 11.0, 14.0, 40.0] and val.tolist() == [6.0, 5.0, 4.0, 3.0]
    c = zones(d, 0.0, 1.0, zone_width=5.0, n=10)  # cell i's centre is i + 0.5
    assert c.tolist() == [50.5, 11.5, 40.5]
    assert zones(d, 0.0, 1.0, zone_width=5.0, n=2).tolist() == [50.5, 11.5]
    assert zones(np.zeros(10), 0.0, 1.0, 2.0, 3).tolist() == []


def test_random_zone_chance_is_the_covered_share_of_the_path():
    assert covered_share(np.array([100.0, 100.5]), 1.0, 0.0, 200.0) == pytest.approx(2.5 / 200)
    assert covered_share(np.array([0.2, 150.0]), 1.0, 0.0, 200.0) == pytest.approx((1.2 + 2.0) / 200)
    assert covered_share(np.array([500.0]), 1.0, 0.0, 200.0) == 0.0
    assert covered_share(np.array([]), 1.0, 0.0, 200.0) == 0.0
    rng = np.random.default_rng(3)  # against a simulation of random zones
    ev = rng.uniform(0, 200, 7)
    centres = rng.uniform(0, 200, 200_000)
    sim = np.mean(np.min(np.abs(centres[:, None] - ev[None, :]), axis=1) <= 4.0)
    assert covered_share(ev, 4.0, 0.0, 200.0) == pytest.approx(sim, abs=0.005)


def test_precision_at_n_counts_hits_reached_zones_and_chance():
    s_n, p_n = 2, 100  # cells of $100 over 95k–105k; no tolerance: a zone is one cell
    dens = np.zeros((s_n, p_n))
    dens[:, [20, 50, 52, 80]] = [[9.0, 8.0, 7.0, 6.0]]
    snaps = snaps_of(dens, np.zeros((s_n, p_n)))
    cfg = config(n_bins=p_n, tolerance_pct=0.0, precision_n=(3,))
    centres = snaps.centers[0]
    # Snapshot 0: events in zone 50, in cell 80 (not a top-3 zone) and in cell 59 (no zone); snapshot 1:
    # one event in cell 30, no zone.
    snap = np.array([0, 0, 0, 1])
    price = np.array([centres[50] + 10, centres[80], centres[59], centres[30]])
    path_low, path_high = np.array([99_000.0, 96_000.0]), np.array([101_000.0, 96_500.0])
    p = precision_at_n("total", snaps, dens, path_low, path_high, snap, price, 3, cfg)
    assert (p.n_snapshots, p.n_zones, p.hits) == (2, 6, 1)  # zones 20, 50, 52 per snapshot; one hit
    assert p.precision.value == pytest.approx(1 / 6) and p.overlap == 1.0
    assert (p.n_reached, p.hits_reached) == (2, 1)  # 50 and 52 lie on snapshot 0's path, none on 1's
    assert p.zone_width_pct == pytest.approx(100 / SPOT * 100)
    # Chance: a random $100 zone on snapshot 0's path [99k, 101k] holds an event when its centre lies
    # within $50 of 100,060 or of 100,950 (the one at 103,050 is off the path): 200 of 2,000; snapshot 1's
    # event is off its path.
    assert p.chance == pytest.approx((3 * 200 / 2_000 + 3 * 0.0) / 6)
    iv = wilson(1, 6)
    assert (p.precision.low, p.precision.high) == pytest.approx((iv.low, iv.high))


def test_wilson_bounds_match_known_values():
    for hits, n, lo, hi in [(0, 10, 0.0, 0.2775), (1, 10, 0.0179, 0.4042), (5, 10, 0.2366, 0.7634),
                            (10, 10, 0.7225, 1.0), (81, 263, 0.2553, 0.3662)]:  # fmt: skip
        e = wilson(hits, n)
        assert e.value == pytest.approx(hits / n)
        assert (e.low, e.high) == pytest.approx((lo, hi), abs=5e-5), (hits, n)
    assert wilson(5, 10, ci=0.99).low < wilson(5, 10).low
    assert math.isnan(wilson(0, 0).value)


def test_ranks_and_spearman_with_ties():
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert spearman(x, x**3) == pytest.approx(1.0) and spearman(x, -x) == pytest.approx(-1.0)
    assert spearman(x, np.full(5, 2.0)) == 0.0 and spearman(x[:1], x[:1]) == 0.0
    y = np.array([0.0, 0.0, 1.0, 0.0, 2.0])
    assert spearman(x, y) == pytest.approx(naive_spearman(x.tolist(), y.tolist()))


# --------------------------------------------------------------------------------------------- venues


def test_venues_are_scored_side_by_side_and_pooled():
    rng = np.random.default_rng(22)
    s_n, p_n = 60, 200
    long, short, lc, sc = clustered(s_n, p_n, rng)
    snaps = snaps_of(long, short)
    n = 300
    s_idx = rng.integers(0, s_n, n)
    side = np.where(rng.uniform(size=n) < 0.5, LONG, SHORT).astype(np.int8)
    at_cluster = rng.uniform(size=n) < 0.5
    price = np.where(at_cluster, snaps.centers[s_idx, np.where(side == LONG, lc[s_idx], sc[s_idx])],
                     rng.uniform(96_000, 104_000, n))  # fmt: skip
    venue = np.where(np.arange(n) < 200, "binanceusdm", "hyperliquid")
    liqs = Liquidations(
        s_idx * H + 3, venue, np.full(n, "BTC/USDT:USDT"), side, price, np.ones(n), np.full(n, 1e4)
    )
    cfg = config(n_bins=p_n, n_boot=200)
    high, low = flat_candles(s_n)
    r = score_snapshots(snaps, liqs, high, low, cfg)
    assert list(r.venues) == [ALL_VENUES, "binanceusdm", "hyperliquid"]
    assert r.all.venue == "binanceusdm+hyperliquid" and r.venues["hyperliquid"].venue == "hyperliquid"
    assert r.rows["total"].n_events == 300
    assert (
        r.venues["binanceusdm"].rows["total"].n_events == 200 and r.venues["hyperliquid"].n_tape_events == 100
    )
    # score(density source, events) per venue gives the same numbers as the side-by-side result.
    prepared = prepare(snaps, high, low, cfg)
    alone = score_liquidations(prepared, liqs.take(venue == "hyperliquid"), cfg)
    assert alone.rows["total"].loglik["model"] == r.venues["hyperliquid"].rows["total"].loglik["model"]
    assert alone.path["total"].rho_usd == r.venues["hyperliquid"].path["total"].rho_usd
    # One venue only: no duplicate entry.
    one = score_snapshots(snaps, liqs.take(venue == "binanceusdm"), high, low, cfg)
    assert list(one.venues) == [ALL_VENUES] and one.all.venue == "binanceusdm"
    d = r.to_dict()
    assert (
        set(d["venues"]) == {ALL_VENUES, "binanceusdm", "hyperliquid"}
        and d["rows"]["total"]["n_events"] == 300
    )


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="precision at N"):
        CalibrationConfig(precision_n=(0,))
    with pytest.raises(ValueError, match="scale grid"):
        CalibrationConfig(scale_grid_lo=2.0, scale_grid_hi=1.0)
    with pytest.raises(ValueError, match="range null"):
        CalibrationConfig(range_null_widen=-0.1)
    assert CalibrationConfig().horizon_ms == 24 * HOUR_MS

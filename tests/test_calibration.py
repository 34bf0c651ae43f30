"""Calibration scores: crafted maps with known answers, the nulls as defined, verdicts, and the CLI
on the bundled real liquidation capture."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqdesk.app.cli import main
from liqdesk.core.calibration import (
    NULLS,
    CalibrationConfig,
    Snapshots,
    calibrate,
    compare_presets,
    density_snapshots,
    laplace_cells,
    laplace_scale,
    magnet_test,
    pair_events,
    reliability_curve,
    score_pairs,
    score_snapshots,
    snapshot_times,
)
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import PriceBins
from liqdesk.core.liqmap import liquidation_map
from liqdesk.core.params import ModelParams
from liqdesk.core.series import LONG, SHORT, Candles, Liquidations

H = 3_600_000
M = 60_000
SPOT = 100_000.0


def snaps_of(long: np.ndarray, short: np.ndarray, *, half_range: float = 0.05, mean_price: float = SPOT,
             b: float = 1_000.0, day: tuple[float, float] = (SPOT * 0.99, SPOT * 1.01)) -> Snapshots:  # fmt: skip
    """Hourly snapshots at spot 100k over 1m bars, range spot ± half_range, Laplace scale b (horizon 1h),
    last day's range `day`."""
    s_n = len(long)
    atr = b * 3.0 / math.sqrt(60)  # laplace_scale: b = ATR · √(1h / 1m) / 3
    return Snapshots(
        time_ms=np.arange(s_n, dtype=np.int64) * H, bar=np.arange(s_n, dtype=np.int64) * 60,
        spot=np.full(s_n, SPOT), lo=np.full(s_n, SPOT * (1 - half_range)), hi=np.full(s_n, SPOT * (1 + half_range)),
        long=long, short=short, atr=np.full(s_n, atr), mean_price=np.full(s_n, mean_price),
        day_lo=np.full(s_n, day[0]), day_hi=np.full(s_n, day[1]), interval_ms=M,
    )  # fmt: skip


def liqs_of(
    time: np.ndarray, side: np.ndarray, price: np.ndarray, usd: np.ndarray | None = None
) -> Liquidations:
    n = len(time)
    usd = np.full(n, 10_000.0) if usd is None else usd
    return Liquidations(
        np.asarray(time, np.int64), np.full(n, "x"), np.full(n, "BTC"), side, price, usd / price, usd
    )


def config(**kw) -> CalibrationConfig:
    base = {"horizon_ms": H, "every_ms": H, "n_boot": 500}
    return CalibrationConfig(**{**base, **kw})


def flat_candles(
    s_n: int, high: float = SPOT * 1.001, low: float = SPOT * 0.999
) -> tuple[np.ndarray, np.ndarray]:
    n = s_n * 60 + 61
    return np.full(n, high), np.full(n, low)


def clustered(
    s_n: int, p_n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One long cluster below spot and one short cluster above per snapshot (cells), plus faint noise."""
    long, short = rng.uniform(0, 1, (s_n, p_n)), rng.uniform(0, 1, (s_n, p_n))
    mid = p_n // 2
    lc = rng.integers(5, mid - 5, s_n)
    sc = rng.integers(mid + 5, p_n - 5, s_n)
    long[np.arange(s_n), lc] += 5_000.0
    short[np.arange(s_n), sc] += 5_000.0
    return long, short, lc, sc


# ------------------------------------------------------------------------------------------ crafted


def test_events_at_the_clusters_score_near_the_maximum():
    rng = np.random.default_rng(1)
    s_n, p_n = 150, 200
    long, short, lc, sc = clustered(s_n, p_n, rng)
    snaps = snaps_of(long, short, half_range=0.5)  # wide cells: the ±0.35 % tolerance stays within one
    per = 2
    s_idx = np.repeat(np.arange(s_n), 2 * per)
    side = np.tile([LONG] * per + [SHORT] * per, s_n).astype(np.int8)
    cell = np.where(side == LONG, lc[s_idx], sc[s_idx])
    price = snaps.centers[s_idx, cell]
    time = s_idx * H + rng.integers(0, H, len(s_idx))
    cfg = config(n_bins=p_n)
    r = score_snapshots(
        snaps, liqs_of(time, side, price, rng.uniform(1e3, 1e5, len(time))), *flat_candles(s_n), cfg
    )
    for name in ("total", "matched", "long", "short"):
        row = r.rows[name]
        assert row.enough, row.verdict
        assert row.top_share(0.10).share.value > 0.99
        assert row.top_share(0.10).lift.low > 9.0
        for null in NULLS:
            assert row.lift[null].value > 2.0 and row.lift[null].low > 0, (name, null)
        assert (
            "beats uniform, recent range, Laplace at spot (fitted), Laplace at lookback mean (fitted), "
            "Laplace at spot (best in sample), Laplace at lookback mean (best in sample)" in row.verdict
        )
        assert "more liquidated USD than chance" in row.verdict
    assert r.rows["total"].n_events == 4 * s_n and r.rows["long"].n_events == 2 * s_n
    curve = r.reliability["total"]
    assert curve.usd_share[10] > 0.99  # the densest 10 % of cells already hold everything
    assert curve.usd_share[0] == 0.0 and curve.usd_share[-1] == pytest.approx(1.0)


def test_uniform_events_give_a_lift_of_one_within_the_interval():
    rng = np.random.default_rng(2)
    s_n, p_n = 200, 200
    long, short, _, _ = clustered(s_n, p_n, rng)
    snaps = snaps_of(long, short)
    n = 4_000
    s_idx = rng.integers(0, s_n, n)
    price = rng.uniform(snaps.lo[0], snaps.hi[0], n)
    side = rng.choice(np.array([LONG, SHORT], np.int8), n)
    time = s_idx * H + rng.integers(0, H, n)
    cfg = config(n_bins=p_n)
    r = score_snapshots(snaps, liqs_of(time, side, price, rng.uniform(1e3, 2e4, n)), *flat_candles(s_n), cfg)
    total = r.rows["total"]
    assert total.enough
    for q in (0.10, 0.25):
        t = total.top_share(q)
        assert t.lift.low < 1.0 < t.lift.high, t
        assert abs(t.share.value - q) < 0.03
    assert "not distinguishable from chance" in total.verdict
    # The model is not the truth here: it cannot beat the uniform (it is the truth) on likelihood.
    assert total.lift["uniform"].high < 0.05
    assert np.max(np.abs(r.reliability["total"].usd_share - r.reliability["total"].cell_share)) < 0.05


def test_an_empty_map_scores_exactly_chance():
    s_n, p_n = 40, 100
    zeros = np.zeros((s_n, p_n))
    snaps = snaps_of(zeros, zeros.copy())
    rng = np.random.default_rng(3)
    n = 300
    time = rng.integers(0, s_n, n) * H + 5
    price = rng.uniform(96_000, 104_000, n)
    r = score_snapshots(
        snaps, liqs_of(time, np.full(n, LONG, np.int8), price), *flat_candles(s_n), config(n_bins=p_n)
    )
    total = r.rows["total"]
    assert total.top_share(0.10).share.value == pytest.approx(0.10)
    assert total.top_share(0.25).lift.value == pytest.approx(1.0)
    assert total.loglik["model"].value == pytest.approx(0.0, abs=1e-12)
    assert total.loglik["uniform"].value == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("centre", ["spot", "mean"])
def test_each_laplace_null_wins_on_events_drawn_from_it(centre):
    rng = np.random.default_rng(4)
    s_n, p_n, b = 120, 200, 1_000.0
    long, short, _, _ = clustered(s_n, p_n, rng)
    mean_price = SPOT * 1.02
    snaps = snaps_of(long, short, mean_price=mean_price, b=b)
    cfg = config(n_bins=p_n)
    assert laplace_scale(snaps, cfg) == pytest.approx(np.full(s_n, b))
    n = 3_000
    mu = SPOT if centre == "spot" else mean_price
    price = mu + rng.laplace(0.0, b, n)
    time = rng.integers(0, s_n, n) * H + 7
    r = score_snapshots(snaps, liqs_of(time, np.full(n, SHORT, np.int8), price), *flat_candles(s_n), cfg)
    ll = r.rows["total"].loglik
    winner, loser = ("spot_laplace", "mean_laplace") if centre == "spot" else ("mean_laplace", "spot_laplace")
    assert ll[winner].low > ll["uniform"].value + 0.3  # the uniform null is 0 by construction
    assert ll[winner].value > ll[loser].value + 0.3
    assert r.rows["total"].lift[winner].high < 0  # the noisy map loses to the true distribution


def test_laplace_cells_are_a_truncated_distribution():
    edges = np.linspace(90_000, 110_000, 201)[None, :]
    p = laplace_cells(edges, np.array([100_000.0]), np.array([1_000.0]))
    assert p.sum() == pytest.approx(1.0)
    assert np.argmax(p[0]) in (99, 100)
    far = laplace_cells(edges, np.array([100_000.0]), np.array([1.0]))  # mass beyond double range
    assert np.isfinite(far).all() and far.sum() == pytest.approx(1.0)


def test_tolerance_credits_a_price_reported_beyond_the_cluster():
    s_n, p_n = 60, 200  # cells of $50 over spot ± 5 %
    long = np.zeros((s_n, p_n))
    long[:, 60] = 1e6  # one spike, 2.0 % below spot
    snaps = snaps_of(long, np.zeros((s_n, p_n)))
    cluster = float(snaps.centers[0, 60])
    n = 4 * s_n
    time = np.repeat(np.arange(s_n), 4) * H + 1
    price = np.full(n, cluster * (1 - 0.003))  # reported 0.3 % beyond the trigger
    liqs = liqs_of(time, np.full(n, LONG, np.int8), price)
    hi, lo = flat_candles(s_n)
    with_tol = score_snapshots(snaps, liqs, hi, lo, config(n_bins=p_n, tolerance_pct=0.35)).rows["long"]
    without = score_snapshots(snaps, liqs, hi, lo, config(n_bins=p_n, tolerance_pct=0.0)).rows["long"]
    assert with_tol.top_share(0.10).share.value == pytest.approx(1.0)
    # Without tolerance the event's cell is empty: tied with 198 other empty cells, worth chance.
    assert without.top_share(0.10).share.value == pytest.approx(19 / 199)
    assert with_tol.lift["uniform"].value > 2.0 > without.lift["uniform"].value


def test_too_few_events_says_so_and_gives_no_interval_for_one_window():
    rng = np.random.default_rng(5)
    s_n, p_n = 50, 200
    long, short, lc, _ = clustered(s_n, p_n, rng)
    snaps = snaps_of(long, short, half_range=0.5)
    n = 20
    time = np.full(n, 3 * H + 10)
    price = np.full(n, snaps.centers[3, lc[3]])
    r = score_snapshots(
        snaps, liqs_of(time, np.full(n, LONG, np.int8), price), *flat_candles(s_n), config(n_bins=p_n)
    )
    for row in r.rows.values():
        assert not row.enough
    total = r.rows["total"]
    assert total.verdict.startswith("too few events to conclude: 20 events in 1 independent")
    assert total.top_share(0.10).share.value > 0.9  # scored, but not concluded on
    assert not total.top_share(0.10).share.has_ci
    assert r.rows["short"].n_events == 0 and math.isnan(r.rows["short"].top_share(0.10).share.value)
    json.dumps(r.to_dict(), allow_nan=False)  # NaN becomes null


def test_magnet_hits_count_against_the_same_distance_on_a_random_side():
    s_n, p_n = 80, 200
    short = np.zeros((s_n, p_n))
    short[:, 120] = 1e6  # centre 100 k + 1.025 %: within 2 %
    snaps = snaps_of(np.zeros((s_n, p_n)), short)
    high, low = flat_candles(s_n, high=SPOT * 1.015, low=SPOT * 0.999)
    cut = (s_n - 1) * 60 + 60  # one bar short of the last snapshot's horizon
    high, low = high[:cut], low[:cut]
    m = magnet_test(snaps, high, low, config(n_bins=p_n))
    assert m.n_snapshots + m.n_censored == s_n and m.n_censored == 1  # the last has no full horizon
    assert m.hit.value == 1.0 and m.random_side.value == 0.5 and m.opposite.value == 0.0
    assert m.difference.value == 0.5 and m.difference.low > 0
    assert m.mean_distance_pct == pytest.approx(1.025)
    assert m.enough and "more often" in m.verdict
    # Out of reach (--within 0.5 %): no cluster, nothing concluded.
    far = magnet_test(snaps, high, low, config(n_bins=p_n, magnet_within_pct=0.5))
    assert far.n_snapshots == 0 and far.n_no_cluster == s_n - 1 and not far.enough
    assert "too few snapshots" in far.verdict


def test_pairs_are_events_in_the_half_open_horizon():
    times = np.array([0, H, 2 * H], np.int64)
    ev = np.array([5 * H, -1, 0, H - 1, H, 3 * H - 1, 3 * H], np.int64)
    snap, idx = pair_events(times, ev, H)
    got = sorted(zip(snap.tolist(), ev[idx].tolist(), strict=True))
    assert got == [(0, 0), (0, H - 1), (1, H), (2, 3 * H - 1)]


# ------------------------------------------------------------------------------------- on the engine


def market(n: int, seed: int) -> Candles:
    rng = np.random.default_rng(seed)
    c = SPOT * np.exp(np.cumsum(rng.normal(0, 0.0015, n)))
    o = np.r_[c[0], c[:-1]]
    hi = np.maximum(o, c) * (1 + np.abs(rng.normal(0, 0.0007, n)))
    lo = np.minimum(o, c) * (1 - np.abs(rng.normal(0, 0.0007, n)))
    v = rng.uniform(100, 200, n)
    return Candles(np.arange(n, dtype=np.int64) * 5 * M, o, hi, lo, c, v, 5 * M, quote_volume=v * c)


def test_snapshots_match_the_liquidation_map_and_see_no_future():
    full = market(900, 6)
    engine = LiquidationEngine.build(full.take(slice(0, 600)), None, ModelParams())
    cfg = CalibrationConfig(every_ms=4 * H, lookback_ms=6 * H, warmup_ms=2 * H, n_bins=120)
    times = snapshot_times(engine.open_time, engine.interval_ms, cfg)
    assert times[0] == 4 * H and np.all(np.diff(times) == 4 * H) and times[-1] <= 600 * 5 * M
    snaps = density_snapshots(engine, times, cfg)
    s = 3
    assert engine.open_time[snaps.bar[s]] + engine.interval_ms == times[s]  # the bar that closed at t
    lmap = liquidation_map(engine, PriceBins(float(snaps.lo[s]), float(snaps.hi[s]), 120), int(snaps.bar[s]))
    np.testing.assert_allclose(snaps.long[s], lmap.long, rtol=1e-9)
    np.testing.assert_allclose(snaps.short[s], lmap.short, rtol=1e-9)
    assert snaps.lo[s] <= snaps.spot[s] * 0.95 and snaps.hi[s] >= snaps.spot[s] * 1.05
    # Building on more bars changes nothing at earlier snapshots.
    longer = LiquidationEngine.build(full, None, ModelParams())
    again = density_snapshots(longer, times, cfg)
    np.testing.assert_allclose(again.long, snaps.long, rtol=1e-9)


def test_the_model_scores_well_when_it_is_the_truth():
    """Events drawn from the map's own (smoothed) density: lift above 1, beats every null."""
    candles = market(2_000, 7)
    engine = LiquidationEngine.build(candles, None, ModelParams())
    cfg = CalibrationConfig(horizon_ms=H, every_ms=H, warmup_ms=12 * H, n_boot=500)
    times = snapshot_times(engine.open_time, engine.interval_ms, cfg)
    snaps = density_snapshots(engine, times, cfg)
    from liqdesk.core.calibration import distributions

    p = distributions(snaps, cfg)["total"]
    rng = np.random.default_rng(8)
    rows = []
    for s in range(len(snaps)):
        cells = rng.choice(snaps.n_bins, 6, p=p[s])
        price = snaps.lo[s] + (cells + rng.uniform(0, 1, 6)) * snaps.width[s]
        rows.append((np.full(6, times[s] + 60_000), price))
    t = np.concatenate([r[0] for r in rows])
    price = np.concatenate([r[1] for r in rows])
    liqs = liqs_of(t, np.where(np.arange(len(t)) % 2 == 0, LONG, SHORT).astype(np.int8), price)
    r = score_snapshots(snaps, liqs, engine.sweep_high, engine.sweep_low, cfg)
    total = r.rows["total"]
    assert total.enough
    assert total.top_share(0.10).lift.low > 1.5
    for null in NULLS:
        assert total.lift[null].low > 0, null
    pairs = score_pairs(snaps, liqs, cfg)
    assert reliability_curve(pairs, "total").usd_share[25] == pytest.approx(total.top_share(0.25).share.value)


def test_compare_presets_scores_the_same_snapshots():
    from liqdesk.feeds.presets import params_for

    candles = market(800, 9)
    liqs = liqs_of(np.array([30 * H + 1]), np.array([LONG], np.int8), np.array([float(candles.close[360])]))
    cfg = CalibrationConfig(horizon_ms=4 * H, every_ms=2 * H, n_boot=100)
    res = compare_presets(candles, None, liqs, {n: params_for(n) for n in ("coinglass", "high")}, cfg)
    assert list(res) == ["coinglass", "high"]
    assert res["coinglass"].n_snapshots == res["high"].n_snapshots > 20
    assert res["coinglass"].rows["total"].n_pairs == res["high"].rows["total"].n_pairs == 2
    single = calibrate(LiquidationEngine.build(candles, None, params_for("high")), liqs, cfg)
    assert single.rows["total"].loglik["model"] == res["high"].rows["total"].loglik["model"]


# ---------------------------------------------------------------------------------------------- CLI


def run(capsys, *argv):
    code = main(["calibrate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_on_the_real_capture_gives_finite_numbers_and_says_too_few(capsys):
    code, out, err = run(capsys, "--json")
    assert code == 0, err
    rep = json.loads(out)
    assert "2025-01-27" in rep["source"] and rep["tape_events"] == 31
    r = rep["results"]["coinglass"]
    total = r["rows"]["total"]
    assert total["n_events"] == 31 and total["n_pairs"] >= 31 and total["n_outside"] == 0
    assert total["enough"] is False and total["verdict"].startswith("too few events to conclude")
    for view in ("by_usd", "by_count"):
        for t in total[view]["top"]:
            assert 0.0 <= t["share"]["value"] <= 1.0
        for v in total[view]["loglik"].values():
            assert math.isfinite(v["value"]) and abs(v["value"]) < 10
        assert set(total[view]["lift"]) == set(NULLS)
    m = r["magnet"]
    assert m["n_snapshots"] > 500 and 0 < m["hit"]["value"] < 1 and m["hit"]["low"] <= m["hit"]["value"]
    assert r["n_snapshots"] > 700 and len(r["reliability"]["total"]["usd_share"]) == 101
    code, out, err = run(capsys)
    assert code == 0, err
    assert "too few events to conclude" in out and "Magnet test" in out and "Laplace at spot (fitted)" in out
    assert "Path-conditional" in out and "Precision at N zones" in out


def test_cli_compare_and_a_view(capsys):
    code, out, err = run(capsys, "--compare", "coinglass,all,high", "--range", "2d", "--end", "2025-01-29",
                         "--horizon", "4h", "--boot", "200", "--json")  # fmt: skip
    assert code == 0, err
    rep = json.loads(out)
    assert rep["presets"] == ["coinglass", "all", "high"]
    for r in rep["results"].values():
        assert r["config"]["horizon_ms"] == 4 * H
        assert r["rows"]["total"]["n_events"] == 31
    code, out, _ = run(
        capsys, "--compare", "coinglass,high", "--range", "2d", "--end", "2025-01-29", "--boot", "50"
    )
    assert code == 0 and "Presets side by side" in out and "too few events to rank" in out


def test_cli_errors_are_one_line(capsys):
    code, _, err = run(capsys, "--compare", "coinglass,nope")
    assert code == 2 and "unknown preset 'nope'" in err and err.count("\n") == 1
    code, _, err = run(capsys, "--horizon", "soon")
    assert code == 2 and "--horizon" in err


def test_cli_on_exchange_data_scores_the_recorded_tape(tmp_path, monkeypatch, capsys):
    """--exchange: candles from the (fake) venue through the cache, liquidations from the cache's tape."""
    from liqdesk.feeds.cache import Cache
    from liqdesk.feeds.timeparse import parse_time
    from liqdesk.feeds.venues.base import LiquidationRecord
    from tests.test_live_cli import ServerThread

    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    sym = "BTC/USDT:USDT"
    t0 = parse_time("2025-05-29T06:30Z")
    with Cache() as cache:  # a recorded tape: 12 events in the last days of the fake's klines
        cache.put_liquidations([
            LiquidationRecord("binanceusdm", sym, t0 + i * 3 * 3_600_000, LONG if i % 3 else SHORT,
                              105_000.0 + 150 * i, 0.1, 10_500.0 + 15 * i)
            for i in range(12)
        ])  # fmt: skip
    with ServerThread() as st:
        code = main(["calibrate", "--exchange", "binanceusdm", "--symbol", sym, "--timeframe", "1h",
                     "--ccxt-options", json.dumps(st.server.ccxt_options()), "--end", "2025-06-01T00:00Z",
                     "--range", "5d", "--horizon", "12h", "--boot", "100", "--json"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    r = json.loads(out)["results"]["coinglass"]
    assert r["n_snapshots"] == 5 * 24 and r["n_tape_events"] == 12
    total = r["rows"]["total"]
    assert total["n_events"] + total["n_outside"] > 0 and total["enough"] is False
    assert "too few events" in total["verdict"]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), zeros=st.floats(0.0, 0.99), tol=st.sampled_from([0.0, 0.35, 1.0]))
def test_one_event_per_cell_scores_exactly_the_cell_share_whatever_the_map(seed, zeros, tol):
    """Ties (empty cells, plateaus from the tolerance window) get fractional credit, so the chance
    baseline is exact for any map: every cell hit once with equal USD gives share = q."""
    rng = np.random.default_rng(seed)
    s_n, p_n = 3, 100
    dens = rng.integers(0, 4, (s_n, p_n)).astype(float) * (rng.uniform(0, 1, (s_n, p_n)) > zeros)
    snaps = snaps_of(dens, np.zeros((s_n, p_n)))
    s_idx = np.repeat(np.arange(s_n), p_n)
    price = snaps.centers[s_idx, np.tile(np.arange(p_n), s_n)]
    liqs = liqs_of(s_idx * H + 1, np.full(len(s_idx), LONG, np.int8), price)
    r = score_snapshots(snaps, liqs, *flat_candles(s_n), config(n_bins=p_n, tolerance_pct=tol, n_boot=10))
    for q in (0.10, 0.25):
        assert r.rows["total"].top_share(q).share.value == pytest.approx(q, abs=1e-9)
        assert r.rows["long"].top_share(q).share.value == pytest.approx(q, abs=1e-9)
    np.testing.assert_allclose(r.reliability["total"].usd_share, r.reliability["total"].cell_share, atol=1e-9)


def test_cli_on_the_hyperliquid_sample_scores_its_venue_and_writes_a_report(capsys, tmp_path):
    out_file = tmp_path / "sub" / "calibration.html"
    code, out, err = run(capsys, "--sample", "btcusdt-1m-2025-05", "--horizon", "4h", "--boot", "200",
                         "--report", str(out_file), "--json")  # fmt: skip
    assert code == 0, err
    rep = json.loads(out)
    r = rep["results"]["coinglass"]
    assert rep["tape_events"] == 464 and list(r["venues"]) == ["all"]
    assert r["venues"]["all"]["venue"] == "hyperliquid"
    total = r["rows"]["total"]
    assert total["n_events"] == 464 and total["n_blocks"] == 5
    for key in ("spot_laplace_fit", "spot_laplace_best", "range"):
        e = total["by_count"]["lift"][key]
        assert e["low"] <= e["value"] <= e["high"] or e["low"] is None
    path = r["path"]["total"]
    assert path["n_snapshots"] > 10 and -1 <= path["rho_usd"]["value"] <= 1
    prec = r["precision"]["total"]
    assert [p["n"] for p in prec] == [5, 10] and all(
        0 <= p["precision"]["low"] <= p["precision"]["high"] for p in prec
    )
    page = out_file.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 2 and "Path-conditional" in page
    assert (
        "Precision at N zones" in page
        and "Laplace at spot (best in sample)" in page
        and "hyperliquid" in page
    )
    # Self-contained: no script, stylesheet or image fetched from anywhere.
    assert "<script" not in page and "src=" not in page and "href=" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_cli_report_needs_an_html_name(capsys, tmp_path):
    code, _, err = run(capsys, "--report", str(tmp_path / "out.png"))
    assert code == 2 and "--report" in err and ".html" in err and err.count("\n") == 1


def test_cli_report_that_cannot_be_written_is_one_line_and_leaves_nothing_half_written(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run(capsys, "--boot", "10", "--report", str(blocker / "out.html"))
    assert code == 2 and "cannot write" in err and err.count("\n") == 1
    target = tmp_path / "report.html"
    target.write_text("old report")
    code, _, err = run(capsys, "--boot", "10", "--report", str(target))
    assert code == 0, err
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
    fresh = tmp_path / "fresh.html"
    code, _, err = run(capsys, "--boot", "10", "--report", str(fresh))
    assert code == 0, err
    if os.name == "posix":  # a page for sharing, not a private temp file
        assert fresh.stat().st_mode & 0o777 == 0o644

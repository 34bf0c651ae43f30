"""The device pipeline (NumPy backend here) against the engine path, the kernel twins against each
other, and the CuPy code path with its CUDA kernels emulated on the CPU (tests/core/cuda_emulator)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from liqdesk.core import display
from liqdesk.core.backend import Backend, select_backend
from liqdesk.core.device_build import (
    DeviceModel,
    compact_levels,
    dense_levels_xp,
    host_bar_rows,
    lifecycle_xp,
    quantise_two_tone_xp,
    rebuild_frame,
)
from liqdesk.core.device_kernels import CupyKernels, NumpyKernels
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import column_bars, render_grid
from liqdesk.core.liqmap import auto_bins, liquidation_map
from liqdesk.core.openings import open_interest_at_close
from liqdesk.core.series import OpenInterest
from liqdesk.feeds.presets import params_for
from liqdesk.feeds.sample import load_sample
from tests.core import cuda_emulator
from tests.core.helpers import random_market

ALL = params_for("all")
VARIANTS = {
    "all, OI": (ALL, True, True),
    "coinglass, 3 entry points, 5 h half-life": (params_for("coinglass").with_(entry_points=3, half_life_h=5.0), True, True),
    "volume model, no taker": (ALL, False, False),
    "high, 15 entry points": (params_for("high").with_(entry_points=15), True, True),
}  # fmt: skip

emulated = pytest.mark.skipif(
    not cuda_emulator.compiler_available(), reason="needs g++ for the CUDA emulator"
)


def engine_frame(eng, bins, start=0, end=None, columns=None, transform="sqrt", levels=None):
    """What the chart shows via the engine path (ui.frames.compute_frame, single colour ramp)."""
    g = render_grid(eng, bins, start, end, columns)
    tl = np.ascontiguousarray(display.transform(g.long.T, transform), np.float32)
    ts = np.ascontiguousarray(display.transform(g.short.T, transform), np.float32)
    lv = levels or display.default_levels(np.maximum(tl, ts))
    return display.quantise(tl + ts, lv), lv, tl, ts


def assert_images_match(got: np.ndarray, want: np.ndarray) -> None:
    """Same empty cells; codes equal except where float sums in another order land a rounding
    boundary apart (±1, rare)."""
    assert got.shape == want.shape and got.dtype == want.dtype == np.uint8
    np.testing.assert_array_equal(got == 0, want == 0)
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert diff.max() <= 1 and np.count_nonzero(diff) <= max(2, got.size // 2000), np.count_nonzero(diff)


def assert_same_state(eng: LiquidationEngine, m: DeviceModel, xp_to_np=np.asarray) -> None:
    lv_e, lv_d = eng.levels(), {k: xp_to_np(v) for k, v in m.levels().items()}
    assert eng.n_levels == m.n_levels
    for k in ("created", "tier", "side", "sweep"):
        np.testing.assert_array_equal(lv_e[k], lv_d[k], err_msg=k)
    np.testing.assert_allclose(lv_d["price"], lv_e["price"], rtol=1e-15, atol=0)
    np.testing.assert_allclose(lv_d["deposit"], lv_e["deposit"], rtol=1e-14, atol=0)
    # the log factor itself may differ by a constant after a total wipe-out; its steps may not
    lc = xp_to_np(m.log_factor)
    np.testing.assert_allclose(np.diff(lc), np.diff(eng.log_factor), rtol=0, atol=1e-9)


def assert_same_frame(eng, m, bins, start=0, end=None, columns=None, transform="sqrt", xp_to_np=np.asarray):
    f = m.frame(bins, start, end, columns, transform=transform)
    img, lv, tl, _ = engine_frame(eng, bins, start, end, columns, transform)
    assert f.image.dtype == np.uint8 and f.image.flags.c_contiguous
    assert f.image.shape == (bins.n, len(column_bars(start, end or eng.n_bars, columns)[0]))
    np.testing.assert_allclose(f.levels, lv, rtol=1e-6)
    np.testing.assert_allclose(xp_to_np(f.tlong), tl, rtol=1e-5, atol=1e-6 * max(float(tl.max()), 1.0))
    assert_images_match(f.image, img)
    lm = liquidation_map(eng, bins, f.lmap.bar)
    top = max(float(lm.long_by_tier.max()), float(lm.short_by_tier.max()), 1.0)
    np.testing.assert_allclose(f.lmap.long_by_tier, lm.long_by_tier, rtol=1e-9, atol=1e-9 * top)
    np.testing.assert_allclose(f.lmap.short_by_tier, lm.short_by_tier, rtol=1e-9, atol=1e-9 * top)
    assert f.lmap.total_long == pytest.approx(lm.total_long, rel=1e-9)
    assert f.lmap.total_short == pytest.approx(lm.total_short, rel=1e-9)
    assert (f.lmap.price_now, f.lmap.time_ms, f.lmap.tier_labels) == (
        lm.price_now,
        lm.time_ms,
        lm.tier_labels,
    )
    return f


# ============================================================================ NumPy backend = engine


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("seed", [0, 1])
def test_numpy_pipeline_equals_the_engine_on_random_markets(variant, seed):
    params, with_oi, taker = VARIANTS[variant]
    cd, oi = random_market(1500, seed, oi=with_oi, taker=taker)
    eng = LiquidationEngine.build(cd, oi, params)
    m = DeviceModel.build(cd, oi, params)
    assert_same_state(eng, m)
    bins = auto_bins(cd.low, cd.high, 150)
    assert_same_frame(eng, m, bins, 0, None, 120)
    assert_same_frame(eng, m, bins, 1200, 1400, None, transform="log")
    if not with_oi:
        assert m.lifecycle.rounds == 0 and m.lifecycle.first_bar == -1


def test_numpy_pipeline_equals_the_engine_on_the_real_sample():
    s = load_sample()
    eng = LiquidationEngine.build(s.candles, s.open_interest, ALL)
    m = DeviceModel.build(s.candles, s.open_interest, ALL, backend=select_backend("numpy"))
    assert_same_state(eng, m)
    assert m.lifecycle.first_bar > 0 and 0 < m.lifecycle.rounds < 60 and not m.lifecycle.fallback
    bins = auto_bins(s.candles.low[-3000:], s.candles.high[-3000:], 300)
    assert_same_frame(eng, m, bins, 0, None, 400)
    assert_same_frame(eng, m, bins, eng.n_bars - 2016, None, 250, transform="linear")


def test_explicit_levels_two_tone_and_requantise():
    cd, oi = random_market(800, 3)
    eng = LiquidationEngine.build(cd, oi, ALL)
    m = DeviceModel.build(cd, oi, ALL)
    bins = auto_bins(cd.low, cd.high, 90)
    f = m.frame(bins, 100, None, 70, levels=(10.0, 900.0))
    img, _, tl, ts = engine_frame(eng, bins, 100, None, 70, levels=(10.0, 900.0))
    assert_images_match(f.image, img)
    assert not f.auto_levels and f.levels == (10.0, 900.0)
    g = m.requantise(f, (50.0, 500.0), two_tone=True)
    frames = pytest.importorskip("liqdesk.ui.frames")  # the app's own two-tone quantiser
    assert_images_match(g.image, frames.quantise(tl, ts, (50.0, 500.0), True))
    np.testing.assert_array_equal(quantise_two_tone_xp(f.tlong, f.tshort, (50.0, 500.0), np), g.image)
    assert g.two_tone and g.levels == (50.0, 500.0)


def test_rebuild_frame_and_bad_arguments():
    cd, oi = random_market(400, 4)
    bins = auto_bins(cd.low, cd.high, 40)
    f = rebuild_frame(cd, oi, ALL, bins, columns=30)
    assert f.image.shape == (40, 30) and f.end_bar == 400 and f.lmap.bar == 399
    m = DeviceModel.build(cd, oi, ALL)
    with pytest.raises(ValueError, match="unknown transform"):
        m.frame(bins, transform="cube")
    with pytest.raises(ValueError, match="unknown painter"):
        m.frame(bins, painter="opengl")


def test_the_whole_array_painter_gives_the_same_frame():
    cd, oi = random_market(700, 5)
    m = DeviceModel.build(cd, oi, ALL)
    bins = auto_bins(cd.low, cd.high, 80)
    a = m.frame(bins, 0, None, 60)
    b = m.frame(bins, 0, None, 60, painter="xp")
    np.testing.assert_allclose(a.tlong, b.tlong, rtol=1e-5, atol=1e-6 * float(a.tlong.max()))
    assert_images_match(a.image, b.image)


# ============================================================================ the lifecycle


def test_lifecycle_fixed_point_matches_the_serial_recurrence_and_the_fallback():
    cd, oi = random_market(1200, 6)
    eng = LiquidationEngine.build(cd, oi, ALL)
    lv = eng.levels()
    rows = host_bar_rows(cd, open_interest_at_close(cd, oi, ALL.oi_max_gap_bars))
    dense = dense_levels_xp(rows, ALL, cd.interval_ms, np)
    args = (
        lv["created"],
        lv["deposit"],
        lv["sweep"],
        dense["oi_delta"],
        dense["decay"],
        dense["deposit_total"],
    )
    lc, info = lifecycle_xp(NumpyKernels(), *args, ALL.min_survival)
    assert info.rounds > 2 and not info.fallback and info.change <= 1e-12 * max(1.0, abs(lc).max())
    np.testing.assert_allclose(np.diff(lc), np.diff(eng.log_factor), atol=1e-10)
    # not settled within max_rounds: finished serially on the host, exactly the engine's kernel
    lc2, info2 = lifecycle_xp(NumpyKernels(), *args, ALL.min_survival, max_rounds=2, side=lv["side"])
    assert info2.fallback
    np.testing.assert_array_equal(lc2, eng.log_factor)


def test_open_interest_only_at_the_end_iterates_only_there():
    cd, oi = random_market(3000, 7)
    tail = OpenInterest(oi.time[-500:], oi.usd[-500:])
    m = DeviceModel.build(cd, tail, ALL)
    eng = LiquidationEngine.build(cd, tail, ALL)
    assert m.lifecycle.first_bar >= 2500
    assert_same_state(eng, m)


# ============================================================================ kernel twins (CPU)


@pytest.mark.parametrize("n", [1, 31, 32, 33, 1000, 4097])
def test_linrec_twin_is_the_serial_recurrence(n):
    rng = np.random.default_rng(n)
    g, h = rng.uniform(0.5, 1.0, n), rng.normal(0, 1, n)
    x, ref = 2.5, np.empty(n)
    for j in range(n):
        x = g[j] * x + h[j]
        ref[j] = x
    for chunk in (None, 1, 7, n):
        np.testing.assert_allclose(NumpyKernels().linrec(g, h, 2.5, chunk), ref, rtol=1e-12)


def test_binary_lifting_twin_equals_the_engines_sweep_search():
    cd, _ = random_market(2000, 8)
    m = DeviceModel.build(cd, None, ALL)
    lv = m.levels()
    k = NumpyKernels()
    a = k.sweep_bars(cd.sweep_low(), cd.sweep_high(), lv["created"], lv["price"], lv["side"])
    b = k.sweep_bars_lifting(cd.sweep_low(), cd.sweep_high(), lv["created"], lv["price"], lv["side"])
    np.testing.assert_array_equal(a, b)


# ============================================================================ one-bar updates


@pytest.mark.parametrize("columns", [None, 40])
def test_one_bar_updates_match_the_engine(columns):
    cd, oi = random_market(700, 9)
    oc = open_interest_at_close(cd, oi, ALL.oi_max_gap_bars)
    n0 = 600
    eng = LiquidationEngine.build(cd.take(slice(0, n0)), params=ALL, oi_close=oc[:n0])
    m = DeviceModel.build(cd.take(slice(0, n0)), params=ALL, oi_close=oc[:n0])
    bins = auto_bins(cd.low, cd.high, 60)
    f = m.frame(bins, n0 - 100, None, columns)
    for j in range(n0, 640):
        bar = cd.take(slice(j, j + 1))
        live = replace(bar, high=(bar.open + bar.high) / 2, low=(bar.open + bar.low) / 2, close=bar.open)
        for b, o in ((live, oc[j] * 0.999), (bar, oc[j])):
            if b is live:
                eng.append_bar(b, o)
                m.append_bar(b, o)
            else:
                eng.revise_last_bar(b, o)
                m.revise_last_bar(b, o)
            f = m.patch_frame(f)
    assert_same_state(eng, m)
    assert f.end_bar == 640
    img, _, _, _ = engine_frame(eng, bins, n0 - 100, None, columns, levels=f.levels)
    if columns is None:
        assert_images_match(f.image, img)
    else:  # the patched last column spans the bars added since; earlier columns are as built
        assert f.image.shape[1] == columns
        np.testing.assert_array_equal(
            f.image[:, -1], engine_frame(eng, bins, int(f.first_bar[-1]), None, 1, levels=f.levels)[0][:, 0]
        )
    lm = liquidation_map(eng, bins)
    np.testing.assert_allclose(f.lmap.long_by_tier, lm.long_by_tier, rtol=1e-9, atol=1e-3)
    assert m.patch_frame(m.frame(bins, 0, 100, 10)) is None  # a view in the past does not change


def test_append_rejects_wrong_bars():
    cd, oi = random_market(50, 10)
    m = DeviceModel.build(cd.take(slice(0, 40)), oi, ALL)
    with pytest.raises(ValueError, match="exactly one bar"):
        m.append_bar(cd.take(slice(40, 42)))
    with pytest.raises(ValueError, match="newer"):
        m.append_bar(cd.take(slice(39, 40)))
    with pytest.raises(ValueError, match="same open time"):
        m.revise_last_bar(cd.take(slice(40, 41)))


# ============================================================================ CUDA kernels, emulated


@pytest.fixture(scope="module")
def fake_gpu() -> Backend:
    if not cuda_emulator.compiler_available():
        pytest.skip("needs g++ for the CUDA emulator")
    return select_backend("cupy", importer=lambda name: cuda_emulator.fake_cupy())


@emulated
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_cuda_bar_levels_equal_the_twin(fake_gpu, variant):
    params, with_oi, taker = VARIANTS[variant]
    cd, oi = random_market(300, 11, oi=with_oi, taker=taker)
    oc = open_interest_at_close(cd, oi, params.oi_max_gap_bars)
    oc[100:110] = np.nan  # a gap: the volume model inside
    rows = host_bar_rows(cd, oc)
    ck = CupyKernels(fake_gpu.xp)
    for prev, starts in ((np.nan, True), (float(oc[0]) * 0.99, False)):
        got = ck.bar_levels(rows, params, cd.interval_ms, prev, starts)
        want = dense_levels_xp(rows, params, cd.interval_ms, np, prev_oi=prev, starts_series=starts)
        for k in ("oi_delta", "decay", "price"):
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        np.testing.assert_allclose(got["dep"], want["dep"], rtol=1e-15, atol=0)  # S > 1: w sums in order
        np.testing.assert_allclose(got["deposit_total"], want["deposit_total"], rtol=1e-14, atol=0)
        a, b = compact_levels(got, params, 0, np), compact_levels(want, params, 0, np)
        np.testing.assert_array_equal(a["created"], b["created"])


@emulated
def test_cuda_sweep_search_and_linrec_equal_the_twins(fake_gpu):
    cd, _ = random_market(700, 12)
    m = DeviceModel.build(cd, None, ALL)
    lv = m.levels()
    ck, nk = CupyKernels(fake_gpu.xp), NumpyKernels()
    got = ck.sweep_bars(cd.sweep_low(), cd.sweep_high(), lv["created"], lv["price"], lv["side"])
    np.testing.assert_array_equal(
        got, nk.sweep_bars(cd.sweep_low(), cd.sweep_high(), lv["created"], lv["price"], lv["side"])
    )
    rng = np.random.default_rng(0)
    for n in (1, 40, 1001):
        g, h = rng.uniform(0.5, 1, n), rng.normal(0, 1, n)
        np.testing.assert_array_equal(ck.linrec(g, h, np.array([0.7])), nk.linrec(g, h, 0.7))


@emulated
@pytest.mark.parametrize("transform", ["sqrt", "log", "linear"])
def test_cuda_painter_equals_the_twin(fake_gpu, transform):
    cd, oi = random_market(500, 13)
    m = DeviceModel.build(cd, oi, ALL)
    bins = auto_bins(cd.low, cd.high, 70)
    _, last = column_bars(50, 500, 45)
    args = (m.levels(), m.log_factor, last, bins.lo, bins.width, bins.n, transform)
    tl, ts = CupyKernels(fake_gpu.xp).paint(*args)
    tl2, ts2 = NumpyKernels().paint(*args)
    np.testing.assert_array_equal(tl, tl2)
    np.testing.assert_array_equal(ts, ts2)
    assert tl.shape == (70, 45) and tl.dtype == np.float32


@emulated
@pytest.mark.parametrize("variant", ["all, OI", "coinglass, 3 entry points, 5 h half-life"])
def test_cupy_code_path_equals_the_numpy_pipeline(fake_gpu, variant):
    params, with_oi, taker = VARIANTS[variant]
    cd, oi = random_market(900, 14, oi=with_oi, taker=taker)
    g = DeviceModel.build(cd, oi, params, backend=fake_gpu)
    n = DeviceModel.build(cd, oi, params)
    for k, v in n.levels().items():
        np.testing.assert_allclose(g.levels()[k], v, rtol=1e-15, atol=0, err_msg=k)
    assert g.lifecycle.rounds == n.lifecycle.rounds
    np.testing.assert_allclose(g.log_factor, n.log_factor, rtol=1e-13, atol=1e-13)
    bins = auto_bins(cd.low, cd.high, 60)
    fg, fn = g.frame(bins, 0, None, 50), n.frame(bins, 0, None, 50)
    np.testing.assert_array_equal(fg.image, fn.image)
    assert fg.levels == pytest.approx(fn.levels, rel=1e-12)
    np.testing.assert_allclose(fg.lmap.long_by_tier, fn.lmap.long_by_tier, rtol=1e-12)
    # one-bar updates through the CuPy path
    eng = LiquidationEngine.build(cd, oi, params)
    nxt = random_market(901, 14, oi=with_oi, taker=taker)[0].take(slice(900, 901))
    nxt = replace(nxt, open_time=nxt.open_time)
    eng.append_bar(nxt, None)
    g.append_bar(nxt, None)
    eng.revise_last_bar(nxt, None)
    g.revise_last_bar(nxt, None)
    fg = g.patch_frame(fg)
    assert fg is not None and fg.end_bar == 901
    assert_same_state(eng, g)

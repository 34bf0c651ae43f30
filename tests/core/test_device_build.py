"""The engine on the device path: its CuPy code path with the CUDA kernels emulated on the CPU
(tests/core/cuda_emulator), against the CPU engine, and each CUDA kernel against its reference.

    sweep search    → sweeps.sweep_bars (itself tested against the definition in test_engine)
    lifecycle       → lifecycle.run_lifecycle (the serial recurrence)
    linear scan     → the recurrence written as a loop here
    painter         → heatmap.column_at (the notional alive at a column's last bar), and the CPU painter
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from liqdesk.core import display
from liqdesk.core.backend import Backend, select_backend
from liqdesk.core.cuda_kernels import CudaKernels
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import column_bars
from liqdesk.core.heatmap import column_at, patch_newest_column, quantise_image, render_view
from liqdesk.core.kernels import CpuKernels
from liqdesk.core.liqmap import auto_bins, liquidation_map
from liqdesk.core.openings import open_interest_at_close
from liqdesk.core.series import OpenInterest
from liqdesk.core.sweeps import sweep_bars
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


@pytest.fixture(scope="module")
def gpu() -> Backend:
    if not cuda_emulator.compiler_available():
        pytest.skip("needs g++ for the CUDA emulator")
    return select_backend("cupy", importer=lambda name: cuda_emulator.fake_cupy())


def assert_images_match(got: np.ndarray, want: np.ndarray) -> None:
    """Same empty cells; codes equal except where float sums in another order land a rounding
    boundary apart (±1, rare)."""
    assert got.shape == want.shape and got.dtype == want.dtype == np.uint8
    np.testing.assert_array_equal(got == 0, want == 0)
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    assert diff.max() <= 1 and np.count_nonzero(diff) <= max(2, got.size // 2000), np.count_nonzero(diff)


def assert_same_state(cpu: LiquidationEngine, dev: LiquidationEngine) -> None:
    host = dev.backend.asnumpy
    lv_c, lv_d = cpu.levels(), {k: host(v) for k, v in dev.levels().items()}
    assert cpu.n_levels == dev.n_levels and cpu.n_bars == dev.n_bars
    for k in ("created", "tier", "side", "sweep"):
        np.testing.assert_array_equal(lv_d[k], lv_c[k], err_msg=k)
    np.testing.assert_allclose(lv_d["price"], lv_c["price"], rtol=1e-15, atol=0)
    np.testing.assert_allclose(lv_d["deposit"], lv_c["deposit"], rtol=1e-14, atol=0)
    # the log factor itself may differ by a constant after a total wipe-out; its steps may not
    np.testing.assert_allclose(np.diff(host(dev.log_factor)), np.diff(cpu.log_factor), rtol=0, atol=1e-9)


def assert_same_view(cpu, dev, bins, start=0, end=None, columns=None, **kw):  # type: ignore[no-untyped-def]
    end = cpu.n_bars if end is None else end
    a = render_view(cpu, bins, start, end, columns, **kw)
    b = render_view(dev, bins, start, end, columns, **kw)
    assert b.image.dtype == np.uint8 and b.image.flags.c_contiguous
    assert b.image.shape == (bins.n, len(column_bars(start, end, columns)[0]))
    np.testing.assert_allclose(b.levels, a.levels, rtol=1e-6)
    top = max(float(a.values.max()), 1.0)
    np.testing.assert_allclose(dev.backend.asnumpy(b.values), a.values, rtol=1e-5, atol=1e-6 * top)
    assert_images_match(b.image, a.image)
    np.testing.assert_array_equal(b.last_bar, a.last_bar)
    lc, ld = liquidation_map(cpu, bins, end - 1), liquidation_map(dev, bins, end - 1)
    top = max(float(lc.long_by_tier.max()), float(lc.short_by_tier.max()), 1.0)
    np.testing.assert_allclose(ld.long_by_tier, lc.long_by_tier, rtol=1e-9, atol=1e-9 * top)
    np.testing.assert_allclose(ld.short_by_tier, lc.short_by_tier, rtol=1e-9, atol=1e-9 * top)
    assert ld.total_long == pytest.approx(lc.total_long, rel=1e-9)
    assert ld.total_short == pytest.approx(lc.total_short, rel=1e-9)
    assert (ld.price_now, ld.time_ms, ld.tier_labels) == (lc.price_now, lc.time_ms, lc.tier_labels)
    return a, b


# ============================================================================ the engine on the device


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_device_engine_equals_the_cpu_engine_on_random_markets(gpu, variant):
    params, with_oi, taker = VARIANTS[variant]
    cd, oi = random_market(1500, 0, oi=with_oi, taker=taker)
    cpu = LiquidationEngine.build(cd, oi, params)
    dev = LiquidationEngine.build(cd, oi, params, backend=gpu)
    assert dev.xp is gpu.xp and dev.kernels.name == "cupy"
    assert_same_state(cpu, dev)
    bins = auto_bins(cd.low, cd.high, 150)
    assert_same_view(cpu, dev, bins, 0, None, 120)
    assert_same_view(cpu, dev, bins, 1200, 1400, None, transform="log", two_tone=True)
    info = dev.lifecycle_info
    if with_oi:
        assert info.rounds > 2 and info.first_bar > 0 and not info.fallback
    else:
        assert info.rounds == 0 and info.first_bar == -1
    with pytest.raises(ValueError, match="CPU lifecycle"):
        dev.budget()  # the device solves the log factor, not the per-bar statistics


def test_device_engine_equals_the_cpu_engine_on_the_real_sample(gpu):
    s = load_sample()
    cd = s.candles
    cpu = LiquidationEngine.build(cd, s.open_interest, ALL)
    dev = LiquidationEngine.build(cd, s.open_interest, ALL, backend=gpu)
    assert_same_state(cpu, dev)
    assert 0 < dev.lifecycle_info.rounds < 60 and not dev.lifecycle_info.fallback
    bins = auto_bins(cd.low[-3000:], cd.high[-3000:], 200)
    assert_same_view(cpu, dev, bins, 0, None, 300)
    n = cpu.n_bars
    assert_same_view(
        cpu, dev, bins, n - 2016, None, 250, transform="linear", visible_bars=(n - 1000, n),
        visible_prices=(float(cd.low[-1000:].min()), float(cd.high[-1000:].max())),
    )  # fmt: skip


def test_explicit_levels_two_tone_and_new_levels(gpu):
    cd, oi = random_market(800, 3)
    cpu = LiquidationEngine.build(cd, oi, ALL)
    dev = LiquidationEngine.build(cd, oi, ALL, backend=gpu)
    bins = auto_bins(cd.low, cd.high, 90)
    a, b = assert_same_view(cpu, dev, bins, 100, None, 70, levels=(10.0, 900.0), two_tone=True)
    assert a.levels == b.levels == (10.0, 900.0)
    frames = pytest.importorskip("liqdesk.ui.frames")  # the app's own re-quantise of a NumPy frame
    got = quantise_image(b.values, (50.0, 500.0), True, gpu)
    want = quantise_image(a.values, (50.0, 500.0), True, cpu.backend)
    assert_images_match(got, want)
    tl, ts = cpu.kernels.paint(cpu.levels(), cpu.log_factor, a.last_bar, bins.lo, bins.width, bins.n, "sqrt")
    np.testing.assert_array_equal(want, frames.quantise(tl, ts, (50.0, 500.0), True))
    with pytest.raises(ValueError, match="unknown transform"):
        render_view(dev, bins, 0, 800, 10, transform="cube")


def test_open_interest_only_at_the_end_iterates_only_there(gpu):
    cd, oi = random_market(3000, 7)
    tail = OpenInterest(oi.time[-500:], oi.usd[-500:])
    dev = LiquidationEngine.build(cd, tail, ALL, backend=gpu)
    assert dev.lifecycle_info.first_bar >= 2500
    assert_same_state(LiquidationEngine.build(cd, tail, ALL), dev)


# ============================================================================ one-bar updates


@pytest.mark.parametrize("columns", [None, 40])
def test_one_bar_updates_and_the_patched_column(gpu, columns):
    cd, oi = random_market(700, 9)
    oc = open_interest_at_close(cd, oi, ALL.oi_max_gap_bars)
    n0 = 600
    engines = [
        LiquidationEngine.build(cd.take(slice(0, n0)), params=ALL, oi_close=oc[:n0], backend=be)
        for be in (None, gpu)
    ]
    bins = auto_bins(cd.low, cd.high, 60)
    views = [render_view(e, bins, n0 - 100, n0, columns) for e in engines]
    for j in range(n0, 640):
        bar = cd.take(slice(j, j + 1))
        live = replace(bar, high=(bar.open + bar.high) / 2, low=(bar.open + bar.low) / 2, close=bar.open)
        for i, e in enumerate(engines):
            e.append_bar(live, oc[j] * 0.999)
            views[i] = patch_newest_column(e, views[i])
            e.revise_last_bar(bar, oc[j])
            views[i] = patch_newest_column(e, views[i])
    cpu, dev = engines
    assert_same_state(cpu, dev)
    full = LiquidationEngine.build(cd.take(slice(0, 640)), params=ALL, oi_close=oc[:640])
    assert_same_state(full, dev)
    for v in views:
        assert v.end_bar == 640
        fresh = render_view(full, bins, n0 - 100, 640, columns, levels=v.levels)
        if columns is None:
            assert_images_match(v.image, fresh.image)
        else:  # the patched last column spans the bars added since; earlier columns are as built
            assert v.image.shape[1] == columns
            last = render_view(full, bins, int(v.first_bar[-1]), 640, 1, levels=v.levels)
            np.testing.assert_array_equal(v.image[:, -1], last.image[:, 0])
    assert_images_match(views[1].image, views[0].image)
    past = render_view(dev, bins, 0, 100, 10)
    assert patch_newest_column(dev, past) is None  # a view in the past does not change


def test_append_rejects_wrong_bars(gpu):
    cd, oi = random_market(50, 10)
    dev = LiquidationEngine.build(cd.take(slice(0, 40)), oi, ALL, backend=gpu)
    with pytest.raises(ValueError, match="exactly one bar"):
        dev.append_bar(cd.take(slice(40, 42)))
    with pytest.raises(ValueError, match="newer"):
        dev.append_bar(cd.take(slice(39, 40)))
    with pytest.raises(ValueError, match="same open time"):
        dev.revise_last_bar(cd.take(slice(40, 41)))


# ============================================================================ each kernel against its reference


def test_cuda_sweep_search_equals_the_cpu_search(gpu):
    cd, _ = random_market(2000, 12)
    lv = LiquidationEngine.build(cd, None, ALL).levels()
    args = (cd.sweep_low(), cd.sweep_high(), lv["created"], lv["price"], lv["side"])
    np.testing.assert_array_equal(CudaKernels(gpu.xp).sweep_bars(*args), sweep_bars(*args))


@pytest.mark.parametrize("n", [1, 31, 32, 33, 1000, 4097])
def test_cuda_linear_scan_is_the_serial_recurrence(gpu, n):
    rng = np.random.default_rng(n)
    g, h = rng.uniform(0.5, 1.0, n), rng.normal(0, 1, n)
    x, ref = 2.5, np.empty(n)
    for j in range(n):
        x = g[j] * x + h[j]
        ref[j] = x
    for chunk in (None, 1, 7, n):
        np.testing.assert_allclose(CudaKernels(gpu.xp).linrec(g, h, np.array([2.5]), chunk), ref, rtol=1e-12)


def test_cuda_lifecycle_is_the_serial_recurrence_and_falls_back_to_it(gpu):
    cd, oi = random_market(1200, 6)
    cpu = LiquidationEngine.build(cd, oi, ALL)
    lv = cpu.levels()
    args = (lv["created"], lv["deposit"], lv["side"], lv["sweep"], cpu._oi_delta.a, cpu._decay.a)
    deposit_total = np.bincount(lv["created"], weights=lv["deposit"], minlength=cpu.n_bars)
    ref = CpuKernels().lifecycle(*args, deposit_total, ALL.min_survival)
    np.testing.assert_array_equal(ref.log_factor, cpu.log_factor)
    got = CudaKernels(gpu.xp).lifecycle(*args, deposit_total, ALL.min_survival)
    assert got.rounds > 2 and not got.fallback and got.change <= 1e-12 * max(1.0, abs(got.log_factor).max())
    np.testing.assert_allclose(np.diff(got.log_factor), np.diff(ref.log_factor), atol=1e-10)
    assert got.alive == pytest.approx(ref.alive, rel=1e-9)
    assert np.isnan(got.stats).all()
    # not settled within max_rounds: finished on the host by the serial kernel itself
    slow = CudaKernels(gpu.xp).lifecycle(*args, deposit_total, ALL.min_survival, max_rounds=2)
    assert slow.fallback
    np.testing.assert_array_equal(slow.log_factor, ref.log_factor)
    np.testing.assert_array_equal(slow.stats, ref.stats)


@pytest.mark.parametrize("transform", ["sqrt", "log", "linear"])
def test_cuda_painter_equals_the_column_definition_and_the_cpu_painter(gpu, transform):
    cd, oi = random_market(500, 13)
    eng = LiquidationEngine.build(cd, oi, ALL)
    bins = auto_bins(cd.low, cd.high, 70)
    _, last = column_bars(50, 500, 45)
    args = (eng.levels(), eng.log_factor, last, bins.lo, bins.width, bins.n, transform)
    tl, ts = CudaKernels(gpu.xp).paint(*args)
    assert tl.shape == (70, 45) and tl.dtype == np.float32
    for k in range(len(last)):
        want_l, want_s = (
            display.transform(v.astype(np.float32), transform) for v in column_at(eng, bins, last[k])
        )
        np.testing.assert_allclose(tl[:, k], want_l, rtol=1e-5, atol=1e-6 * max(float(want_l.max()), 1.0))
        np.testing.assert_allclose(ts[:, k], want_s, rtol=1e-5, atol=1e-6 * max(float(want_s.max()), 1.0))
        assert ((tl[:, k] > 0) == (want_l > 0)).all() and ((ts[:, k] > 0) == (want_s > 0)).all()
    cl, cs = CpuKernels().paint(*args)
    np.testing.assert_allclose(tl, cl, rtol=1e-6, atol=0)
    np.testing.assert_allclose(ts, cs, rtol=1e-6, atol=0)

"""The model experiments' machinery: the fit / report split, the choice per family, paired differences,
the rule for a new default, and a crafted tape where one leverage mix must win out of sample."""

from __future__ import annotations

import math

import numpy as np
import pytest

from liqdesk.core.calibration import HOUR_MS, CalibrationConfig
from liqdesk.core.intervals import NAN, Estimate
from liqdesk.core.leverage import Tiers
from liqdesk.core.model_experiments import (
    BASELINE,
    FITTED,
    ExperimentResult,
    MagnetMetrics,
    ScoredPart,
    Tape,
    TapeMetrics,
    Variant,
    choose,
    combine,
    decide,
    paired_difference,
    run_experiments,
)
from liqdesk.core.params import ModelParams
from liqdesk.core.series import LONG
from tests.core.helpers import BAR, random_market
from tests.test_calibration import liqs_of

HIGH = Tiers(np.array([25.0, 50.0, 100.0]), np.full(3, 1 / 3))


def test_a_tape_is_cut_into_its_fit_and_report_parts_at_the_split():
    c, _ = random_market(50, oi=False)
    ev = liqs_of(np.array([10, 20, 30, 40]) * BAR, np.full(4, LONG), np.full(4, 1e5))
    t = Tape("t", c, None, ev, split_ms=25 * BAR)
    assert t.part("fit").time.tolist() == [10 * BAR, 20 * BAR]
    assert t.part("report").time.tolist() == [30 * BAR, 40 * BAR]
    held_out = Tape("t", c, None, ev)  # no split: all of it is held out
    assert len(held_out.part("fit")) == 0 and len(held_out.part("report")) == 4


def _variants() -> list[Variant]:
    base = ModelParams()
    return [
        Variant(BASELINE, BASELINE, base),
        Variant("ep 5", "entry", base.with_(entry_points=5)),
        Variant("hl 4", "lifetime", base.with_(volume_half_life_h=4.0)),
        Variant("hl 8", "lifetime", base.with_(volume_half_life_h=8.0)),
        Variant("high", "preset", base.with_(tiers=HIGH, preset="high")),
    ]


def test_each_family_takes_its_best_fit_variant_and_keeps_the_baseline_when_nothing_beats_it():
    fit = {BASELINE: 0.2, "ep 5": 0.1, "hl 4": 0.3, "hl 8": 0.35, "high": math.nan}
    assert choose(_variants(), fit) == {"entry": BASELINE, "lifetime": "hl 8", "preset": BASELINE}
    both = combine(ModelParams(), _variants(), {"lifetime": "hl 8", "preset": "high", "entry": BASELINE})
    assert both.volume_half_life_h == 8.0 and both.preset == "high" and both.entry_points == 1
    assert both.tiers.leverage.tolist() == [25.0, 50.0, 100.0]


def _scored(ll: list[float], blocks: list[int], key_shift: int = 0) -> ScoredPart:
    n = len(ll)
    key = np.stack([np.arange(n) + key_shift, np.arange(n)], axis=1)
    m = TapeMetrics(n, len(set(blocks)), NAN, NAN, NAN, math.nan, NAN, NAN, NAN, "", NAN)
    return ScoredPart(m, key, np.asarray(ll, np.float64), np.asarray(blocks, np.int64))


def test_the_paired_difference_is_the_mean_per_pair_difference_over_the_same_pairs():
    cfg = CalibrationConfig(n_boot=300)
    base = _scored([-1.0, 0.5, 2.0, -0.3, 0.0, 1.0], [0, 0, 1, 1, 2, 2])
    better = _scored([-0.7, 0.8, 2.3, 0.0, 0.3, 1.3], [0, 0, 1, 1, 2, 2])
    d = paired_difference(better, base, cfg)
    assert d.value == pytest.approx(0.3) and d.low == pytest.approx(0.3) and d.high == pytest.approx(0.3)
    mixed = _scored([0.0, 0.5, 2.0, -0.3, 0.0, 1.0], [0, 0, 1, 1, 2, 2])  # +1 in block 0 only
    e = paired_difference(mixed, base, cfg)
    assert e.value == pytest.approx(1 / 6) and e.low == pytest.approx(0.0) and e.high == pytest.approx(0.5)
    # pairs that do not line up (another snapshot grid) cannot be paired
    assert math.isnan(paired_difference(_scored([0.0] * 6, [0] * 6, key_shift=1), base, cfg).value)


def _metrics(paired: Estimate) -> TapeMetrics:
    return TapeMetrics(10, 3, NAN, NAN, NAN, math.nan, NAN, NAN, NAN, "", paired)


def _result(
    fit: dict[str, float], held: dict[str, list[Estimate]], magnets: dict[str, Estimate]
) -> ExperimentResult:
    variants = tuple(v for v in _variants() if v.name in fit)
    tapes: dict[str, dict[str, TapeMetrics]] = {}
    for name, deltas in held.items():
        for i, d in enumerate(deltas):
            tapes.setdefault(f"tape {i} · report", {})[name] = _metrics(d)
    mags = {"set": {name: MagnetMetrics(100, 50, NAN, NAN, d) for name, d in magnets.items()}}
    return ExperimentResult(variants, choose(variants, fit), fit, tapes, mags, CalibrationConfig())


def test_a_default_changes_only_when_every_condition_holds_at_every_horizon():
    zero = Estimate(0.0, 0.0, 0.0)
    ok = Estimate(0.01, -0.01, 0.03)
    fit = {BASELINE: 0.0, "hl 4": 0.2, "high": 0.1, "ep 5": 0.05}
    held = {BASELINE: [zero, zero], "hl 4": [Estimate(0.4, 0.2, 0.6), Estimate(-0.1, -0.3, 0.1)],
            "high": [ok, ok], "ep 5": [Estimate(0.2, 0.1, 0.3), Estimate(-0.05, -0.08, -0.01)]}  # fmt: skip
    mags = {BASELINE: ok, "hl 4": ok, "high": ok, "ep 5": ok}
    at_4h = _result(fit, held, mags)
    # at the second horizon the lifetime loses out of sample (an interval below 0)
    held_24 = {**held, "hl 4": [Estimate(-0.5, -0.9, -0.2), zero]}
    at_24h = _result(fit, held_24, mags)
    got = {d.family: d for d in decide([at_4h, at_24h], {"preset": "not covered"})}
    assert got["lifetime"].fit_ok and not got["lifetime"].held_out_ok and not got["lifetime"].adopt
    assert got["entry"].fit_ok and not got["entry"].held_out_ok  # one held-out interval below 0
    assert got["preset"].held_out_ok and got["preset"].magnets_ok and not got["preset"].adopt  # not covered
    adopted = {d.family: d.adopt for d in decide([at_4h], {})}
    assert adopted == {"entry": False, "lifetime": True, "preset": True}
    # a magnet test that turns worse than random (where the baseline's was not) blocks the change
    worse = _result(fit, held, {**mags, "high": Estimate(-0.03, -0.05, -0.01)})
    assert not {d.family: d for d in decide([worse], {})}["preset"].adopt


def test_a_crafted_tape_at_the_high_leverage_levels_picks_that_mix_and_it_wins_out_of_sample():
    """Liquidations at the 100x long level of each hour's price: the mix that gives 100x more weight
    in range (high: a third; coinglass: 0.20 of which 0.70 lies in range) must be chosen on the first half
    and explain the second half better (paired Δ > 0 with its interval)."""
    candles, _ = random_market(24 * 12 * 2, seed=3, oi=False)  # two days of 5 m bars, volume model
    base = ModelParams()
    t = np.arange(6, 47) * HOUR_MS + 10 * 60_000
    bar = np.searchsorted(candles.open_time, t - 20 * 60_000)
    price = candles.close[bar] * 0.99398  # the 100x long liquidation factor (bracket 1)
    ev = liqs_of(t, np.full(len(t), LONG), price)
    tape = Tape("crafted", candles, None, ev, split_ms=26 * HOUR_MS)
    vs = [Variant(BASELINE, BASELINE, base), Variant("high", "preset", base.with_(tiers=HIGH, preset="high"))]
    cfg = CalibrationConfig(horizon_ms=HOUR_MS, n_boot=300, warmup_ms=HOUR_MS)
    r = run_experiments(vs, [tape], [], cfg)
    assert r.chosen == {"preset": "high"}
    assert [v.name for v in r.variants] == [BASELINE, "high", FITTED]
    held = r.tapes["crafted · report"]
    assert held["high"].paired.above(0.0) and held[FITTED].paired.value == pytest.approx(
        held["high"].paired.value
    )
    assert held["high"].n_events == int(np.count_nonzero(t >= 26 * HOUR_MS))
    assert r.fit_loglik["high"] > r.fit_loglik[BASELINE]

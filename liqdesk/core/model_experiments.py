"""Model variants measured on held-out real liquidations: does a change of the model make it better?

Each variant is a ModelParams; every one is scored by the calibration (liqdesk.core.calibration) on the
same snapshots of the same bars against the same events, so variants differ only by their map:

* **Tapes** are real liquidations with the bars they are scored on. A tape is cut in time into a *fit*
  part and a *report* part (`Tape.split_ms`; None = all of it is held out). Parameters are chosen on
  the fit parts only; every figure quoted for a variant comes from the report parts.
* **Families** group the variants of one model choice (entry points, level lifetime, leverage
  preset, …) with the baseline. `choose` picks, in each family, the variant with the highest mean
  log-likelihood per event (the "total" map against all events, nats per event over uniform, each fit
  tape weighted equally); the baseline stays where nothing beats it. The fitted variant combines the
  choices.
* **Held-out figures** per variant and report tape: the top-10 % share of liquidated USD, the
  path-conditional Spearman ρ, precision at 5 zones (Wilson bounds), the log-likelihood against the
  out-of-sample fitted spot Laplace and against the best null (the null whose lift is smallest, with its
  own interval), and the paired difference against the baseline: the mean over (snapshot, event) pairs
  of the variant's log-likelihood minus the baseline's, block-bootstrapped over the same blocks (paired,
  so much tighter than comparing two separate intervals).
* **Magnets** (candles only, so long held-out spans): the magnet test's "cluster touched − same distance
  on a random side" per variant on candle sets, which need no tape.
* **A new default** (`decide`, over one result per horizon): the family's choice on the fit parts must
  beat the baseline on the fit parts at every horizon; on the held-out parts at every horizon no paired
  interval may lie below 0 and the mean paired Δ must be positive; the magnet test may not fall below
  0 where the baseline's does not; and the held-out data must be able to test the change at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from liqdesk.core.calibration import (
    VERDICT_NULLS,
    CalibrationConfig,
    magnet_test,
    score_pairs,
    score_snapshots,
)
from liqdesk.core.density_snapshots import Snapshots, density_snapshots, snapshot_times
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.intervals import NAN, Estimate, block_bootstrap, block_ids, block_sums
from liqdesk.core.leverage import Brackets, Tiers
from liqdesk.core.params import ModelParams
from liqdesk.core.series import Candles, Liquidations, OpenInterest

F64 = NDArray[np.float64]
BASELINE = "baseline"
FITTED = "fitted"


@dataclass(frozen=True, eq=False)
class Tape:
    """Real liquidations and the bars the map is built from."""

    name: str
    candles: Candles
    open_interest: OpenInterest | None
    events: Liquidations
    split_ms: int | None = None  # events before it are the fit part, from it the report part

    def part(self, which: str) -> Liquidations:
        ev = self.events
        before = ev.time < self.split_ms if self.split_ms is not None else np.zeros(len(ev), np.bool_)
        return ev.take(before if which == "fit" else ~before)


@dataclass(frozen=True, eq=False)
class CandleSet:
    """Bars without a tape, for the magnet test (held out: never used to choose)."""

    name: str
    candles: Candles
    open_interest: OpenInterest | None


@dataclass(frozen=True)
class Variant:
    name: str
    family: str  # the model choice it varies ("baseline" for the reference)
    params: ModelParams
    note: str = ""


@dataclass(frozen=True)
class TapeMetrics:
    """One variant on one part of one tape."""

    n_events: int
    n_blocks: int
    top10_usd: Estimate
    path_rho: Estimate
    precision5: Estimate
    precision5_chance: float
    loglik: Estimate  # nats per event over uniform (count-weighted, total map)
    lift_spot_fit: Estimate
    lift_best: Estimate
    best_null: str
    paired: Estimate  # mean Δ log-likelihood per event against the baseline, same pairs and blocks


@dataclass(frozen=True)
class MagnetMetrics:
    n_snapshots: int
    n_blocks: int
    hit: Estimate
    random_side: Estimate
    difference: Estimate


@dataclass(frozen=True, eq=False)
class ScoredPart:
    """One variant's metrics on one part, with its per-pair log-likelihoods for paired comparisons."""

    metrics: TapeMetrics
    pair_key: NDArray[np.int64]  # (pairs, 2) snapshot and event index, to check that pairs line up
    pair_ll: F64
    pair_block: NDArray[np.int64]


@dataclass(frozen=True)
class ExperimentResult:
    variants: tuple[Variant, ...]
    chosen: dict[str, str]  # family -> chosen variant name (on the fit parts)
    fit_loglik: dict[str, float]  # variant -> mean nats per event over the fit parts
    tapes: dict[str, dict[str, TapeMetrics]]  # "<tape> · <part>" -> variant -> metrics
    magnets: dict[str, dict[str, MagnetMetrics]]  # candle set name -> variant -> metrics
    config: CalibrationConfig


def combine(base: ModelParams, variants: Sequence[Variant], chosen: Mapping[str, str]) -> ModelParams:
    """The baseline with the field changes of each family's chosen variant."""
    by_name = {v.name: v for v in variants}
    changes: dict[str, Any] = {}
    for name in chosen.values():
        if name == BASELINE:
            continue
        v = by_name[name].params
        for f in fields(ModelParams):
            if _differs(getattr(v, f.name), getattr(base, f.name)):
                changes[f.name] = getattr(v, f.name)
    return base.with_(**changes)


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, Tiers) and isinstance(b, Tiers):
        return not (np.array_equal(a.leverage, b.leverage) and np.array_equal(a.weight, b.weight))
    if isinstance(a, Brackets) or isinstance(b, Brackets):
        return a is not b
    return bool(a != b)


def choose(variants: Sequence[Variant], fit_loglik: Mapping[str, float]) -> dict[str, str]:
    """Per family, the variant with the highest fit log-likelihood; the baseline where none beats it."""
    best: dict[str, tuple[float, str]] = {}
    base = fit_loglik.get(BASELINE, -math.inf)
    for v in variants:
        if v.family in (BASELINE, FITTED):
            continue
        ll = fit_loglik.get(v.name, math.nan)
        if not math.isfinite(ll):
            continue
        if ll > best.get(v.family, (base, BASELINE))[0]:
            best[v.family] = (ll, v.name)
    families = dict.fromkeys(v.family for v in variants if v.family not in (BASELINE, FITTED))
    return {f: best.get(f, (base, BASELINE))[1] for f in families}


def score_tape_part(
    engine: LiquidationEngine, snaps: Snapshots, events: Liquidations, config: CalibrationConfig
) -> ScoredPart:
    """The calibration of one variant's snapshots against one part's events, with the per-pair
    log-likelihoods kept for paired comparisons."""
    result = score_snapshots(snaps, events, engine.sweep_high, engine.sweep_low, config)
    pairs = score_pairs(snaps, events, config)
    block = block_ids(snaps.time_ms, config.block_length_ms)[pairs.snap]
    score = result.all
    row = score.rows["total"]
    lifts = {k: row.by_count.lift[k] for k in VERDICT_NULLS}
    finite = {k: e for k, e in lifts.items() if math.isfinite(e.value)}
    best_null = min(finite, key=lambda k: finite[k].value) if finite else ""
    prec = score.precision["total"][0]
    metrics = TapeMetrics(
        n_events=row.n_events, n_blocks=row.n_blocks, top10_usd=row.top_share(0.10, "usd").share,
        path_rho=score.path["total"].rho_usd, precision5=prec.precision, precision5_chance=prec.chance,
        loglik=row.by_count.loglik["model"], lift_spot_fit=row.by_count.lift["spot_laplace_fit"],
        lift_best=lifts[best_null] if best_null else NAN, best_null=best_null, paired=NAN,
    )  # fmt: skip
    key = np.stack([pairs.snap, pairs.event], axis=1)
    return ScoredPart(metrics, key, np.asarray(pairs.loglik["total"], np.float64), block)


def paired_difference(a: ScoredPart, b: ScoredPart, config: CalibrationConfig, salt: int = 0) -> Estimate:
    """Mean over the same (snapshot, event) pairs of a's log-likelihood minus b's, blocks resampled."""
    if len(a.pair_ll) == 0 or not np.array_equal(a.pair_key, b.pair_key):
        return NAN
    sums, _ = block_sums(a.pair_block, [np.ones(len(a.pair_ll)), a.pair_ll - b.pair_ll])

    def stat(s: F64) -> F64:
        with np.errstate(all="ignore"):
            return np.asarray(s[..., 1:2] / s[..., :1], np.float64)

    return block_bootstrap(sums, stat, n_boot=config.n_boot, ci=config.ci, seed=config.seed, salt=salt)[0]


def magnet_metrics(
    candles: Candles, oi: OpenInterest | None, params: ModelParams, config: CalibrationConfig
) -> MagnetMetrics:
    engine = LiquidationEngine.build(candles, oi, params)
    times = snapshot_times(engine.open_time, engine.interval_ms, config)
    snaps = density_snapshots(engine, times, config)
    m = magnet_test(snaps, engine.sweep_high, engine.sweep_low, config)
    return MagnetMetrics(m.n_snapshots, m.n_blocks, m.hit, m.random_side, m.difference)


def tape_snapshots(
    tape: Tape, params: ModelParams, config: CalibrationConfig
) -> tuple[LiquidationEngine, Snapshots]:
    engine = LiquidationEngine.build(tape.candles, tape.open_interest, params)
    ev = tape.events.time
    start = int(ev.min()) - config.horizon_ms if len(ev) else None
    end = int(ev.max()) + 1 if len(ev) else None
    times = snapshot_times(engine.open_time, engine.interval_ms, config, start, end)
    return engine, density_snapshots(engine, times, config)


def run_experiments(
    variants: Sequence[Variant],
    tapes: Sequence[Tape],
    candle_sets: Sequence[CandleSet],
    config: CalibrationConfig,
    progress: Callable[[str], None] | None = None,
) -> ExperimentResult:
    """Score every variant on the fit parts, choose per family, add the fitted variant, then score every
    variant (the fitted one included) on the report parts and the candle sets."""
    say = progress or (lambda _msg: None)
    variants = [v for v in variants if v.family != FITTED]
    if not variants or variants[0].name != BASELINE:
        raise ValueError("the first variant must be the baseline")
    scored: dict[tuple[str, str], dict[str, ScoredPart]] = {}

    def score(v: Variant) -> None:
        for tape in tapes:
            engine, snaps = tape_snapshots(tape, v.params, config)
            for part in ("fit", "report"):
                events = tape.part(part)
                if len(events) == 0:
                    continue
                s = score_tape_part(engine, snaps, events, config)
                scored.setdefault((tape.name, part), {})[v.name] = s
        say(f"scored {v.name}")

    for v in variants:
        score(v)

    def fit_mean(name: str) -> float:
        vals = [s[name].metrics.loglik.value for (_, part), s in scored.items() if part == "fit"]
        return float(np.mean(vals)) if vals else math.nan

    fit_ll = {v.name: fit_mean(v.name) for v in variants}
    chosen = choose(variants, fit_ll)
    fitted = Variant(FITTED, FITTED, combine(variants[0].params, variants, chosen), "each family's choice")
    score(fitted)
    all_variants = (*variants, fitted)
    fit_ll[FITTED] = fit_mean(FITTED)
    tables: dict[str, dict[str, TapeMetrics]] = {}
    for (name, part), by_variant in scored.items():
        base = by_variant[BASELINE]
        out = {}
        for salt, v in enumerate(all_variants):
            s = by_variant[v.name]
            d = paired_difference(s, base, config, salt) if v.name != BASELINE else Estimate(0.0, 0.0, 0.0)
            out[v.name] = replace(s.metrics, paired=d)
        tables[f"{name} · {part}"] = out
    magnets: dict[str, dict[str, MagnetMetrics]] = {}
    for cs in candle_sets:
        magnets[cs.name] = {
            v.name: magnet_metrics(cs.candles, cs.open_interest, v.params, config) for v in all_variants
        }
        say(f"magnets on {cs.name}")
    return ExperimentResult(tuple(all_variants), chosen, fit_ll, tables, magnets, config)


@dataclass(frozen=True)
class Decision:
    """Whether a family's fitted choice becomes the default, condition by condition."""

    family: str
    candidate: str  # the family's choice on the fit parts at the first horizon (BASELINE: nothing beat it)
    fit_ok: bool  # it beats the baseline on the fit parts at every horizon
    held_out_ok: bool  # at every horizon: no held-out interval of its paired Δ below 0, mean held-out Δ > 0
    magnets_ok: bool  # no held-out magnet interval below 0 where the baseline's is not
    covered: str  # "" when the held-out data cover what the change affects, else why not
    adopt: bool


def decide(results: Sequence[ExperimentResult], uncovered: Mapping[str, str]) -> list[Decision]:
    """The rule for changing a default, applied to each family (results: one per horizon, the first
    deciding the candidate). uncovered: family -> why the held-out data cannot test it (absent: covered)."""
    first = results[0]
    out = []
    for family, cand in first.chosen.items():
        if cand == BASELINE:
            out.append(Decision(family, cand, False, False, False, uncovered.get(family, ""), False))
            continue
        fit_ok = all(r.fit_loglik[cand] > r.fit_loglik[BASELINE] for r in results)
        held = True
        for r in results:
            deltas = [t[cand].paired for key, t in r.tapes.items() if key.endswith("· report")]
            held &= not any(d.below(0.0) for d in deltas)
            points = [d.value for d in deltas if math.isfinite(d.value)]
            held &= bool(points) and float(np.mean(points)) > 0.0
        mag = all(
            not (m[cand].difference.below(0.0) and not m[BASELINE].difference.below(0.0))
            for r in results
            for m in r.magnets.values()
        )
        why = uncovered.get(family, "")
        out.append(Decision(family, cand, fit_ok, held, mag, why, fit_ok and held and mag and not why))
    return out

"""The model experiments on the bundled real data: variants, the fit / report split, the rule for a
new default, and their tables (`liqdesk calibrate --experiments`, tests/benchmarks/model_experiments.py).

The split is fixed here, before any score was looked at:

* **Fit**: the Hyperliquid liquidation fills before 2025-05-25 23:00 UTC (the 15:21 dip and the first
  hour of the 22:00 rally: 347 of 464 fills), scored on the bundled Binance 1 m candles (4.8 hours of
  history before the first fill) and on the bundled Binance 1 h klines (two weeks of history, with
  taker-buy volume, so the taker floor matters there).
* **Report** (held out): the Hyperliquid fills from 23:00 on (117 fills, the rest of the rally), and
  every Binance liquidation of 2025-01-27 (31 events, another venue and another day), on the 1 m
  candles and on two weeks of 5 m candles before them.
* **Magnets** (candles only, held out, never used to choose): the magnet test on the 1 h klines
  2025-05 → 08 and the 5 m bars around 2025-10-10.

Everything is scored at two horizons, 4 h and 24 h, snapshots every hour. The rule for changing a
default (core.model_experiments.decide): the family's choice on the fit parts at 4 h must beat the
baseline on the fit parts at both horizons; on the held-out parts at both horizons no paired interval
may lie below 0 and the mean paired Δ must be positive; no held-out magnet interval may fall below 0
where the baseline's does not; and the held-out data must be able to test the change (UNCOVERED).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from liqdesk.app.calibration_tables import NO_CI, Table, num, pct, plain
from liqdesk.core.calibration import HOUR_MS, CalibrationConfig
from liqdesk.core.model_experiments import (
    BASELINE,
    CandleSet,
    Decision,
    ExperimentResult,
    Tape,
    Variant,
    decide,
    run_experiments,
)
from liqdesk.core.params import ModelParams
from liqdesk.core.timespan import span_text
from liqdesk.feeds.files import read_candles_report
from liqdesk.feeds.presets import load_presets, params_for
from liqdesk.feeds.resources import resource_path
from liqdesk.feeds.sample import load_sample

HYPERLIQUID_SPLIT_MS = 1_748_214_000_000  # 2025-05-25 23:00 UTC
CANDLES_5M_2025_01 = "binance_um_BTCUSDT_5m_2025-01-14_2025-01-27.csv.gz"
SPLIT_TEXT = (
    "fit on the Hyperliquid fills before 2025-05-25 23:00 UTC; report on the fills from 23:00 on and on all "
    "Binance liquidations of 2025-01-27 (held out: another venue, another day)"
)


HORIZONS_MS = (4 * HOUR_MS, 24 * HOUR_MS)
# What the held-out data cannot test, per family (the fourth condition of the rule; fixed with the split).
UNCOVERED = {
    "preset": "the presets differ most in the far tiers (10x and below, levels ≥ 9 % away) and no liquidation "
    "of either tape lies more than 6 % from the spot of a snapshot that scores it",
    "taker": "the taker share is known only on the 1 h klines; the app runs on 5 m bars by default, where the "
    "floor damps a noisier share",
    "churn": "in the volume model every opening scales with churn, so the map's shape (all these scores) cannot "
    "change",
}


def experiment_config(horizon_ms: int = 4 * HOUR_MS, n_boot: int = 1000, seed: int = 0) -> CalibrationConfig:
    return CalibrationConfig(horizon_ms=horizon_ms, n_boot=n_boot, seed=seed)


def variants(base: ModelParams | None = None) -> list[Variant]:
    """The baseline (the product's defaults) and one family per model choice tried."""
    base = base or params_for()
    out = [Variant(BASELINE, BASELINE, base, "the defaults")]
    for n in (3, 5, 9):
        out.append(
            Variant(f"entry points {n}", "entry", base.with_(entry_points=n), "spread over the bar's range")
        )
    for h in (0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 48.0, 168.0):
        out.append(
            Variant(
                f"lifetime {h:g} h",
                "lifetime",
                base.with_(volume_half_life_h=h),
                "half-life of a level by age",
            )
        )
    # the built-in presets, and any the user has (e.g. hyperliquid-observed, from sampled positions)
    for name, preset in load_presets().items():
        if name != base.preset:
            out.append(
                Variant(f"preset {name}", "preset", base.with_(tiers=preset.tiers, preset=name), preset.label)
            )
    for f in (0.0, 0.1, 0.35, 0.45):
        out.append(Variant(f"taker floor {f:g}", "taker", base.with_(taker_floor=f), "skew from taker share"))
    out.append(
        Variant("churn 0.12", "churn", base.with_(churn=0.12), "volume model's openings per traded USD")
    )
    return out


def bundled_tapes() -> list[Tape]:
    hl = load_sample("btcusdt-1m-2025-05")
    bn = load_sample("btcusdt-1m-2025-01")
    assert hl.liquidations is not None and bn.liquidations is not None
    klines = load_sample("btcusdt-1h-2025").candles
    bn5, _ = read_candles_report(str(resource_path("experiments", CANDLES_5M_2025_01)))
    return [
        Tape("Hyperliquid fills · Binance 1 m", hl.candles, None, hl.liquidations, HYPERLIQUID_SPLIT_MS),
        Tape("Hyperliquid fills · Binance 1 h, 2 weeks", klines, None, hl.liquidations, HYPERLIQUID_SPLIT_MS),
        Tape("Binance 2025-01-27 · 1 m", bn.candles, None, bn.liquidations),
        Tape("Binance 2025-01-27 · 5 m, 2 weeks", bn5, None, bn.liquidations),
    ]


def bundled_candle_sets() -> list[CandleSet]:
    return [
        CandleSet("1 h 2025-05 → 08", load_sample("btcusdt-1h-2025").candles, None),
        CandleSet("5 m 2025-09-26 → 10-12", load_sample("btcusdt-5m-2025-10-10").candles, None),
    ]


def run_bundled(
    horizons_ms: Sequence[int] = HORIZONS_MS,
    n_boot: int = 1000,
    seed: int = 0,
    magnets: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[ExperimentResult]:
    """Every variant at every horizon on the bundled data (the first horizon decides the candidates)."""
    tapes, sets, vs = bundled_tapes(), bundled_candle_sets() if magnets else [], variants()
    out = []
    for h in horizons_ms:
        say = (lambda m, h=h: progress(f"{span_text(h)}: {m}")) if progress else None
        out.append(run_experiments(vs, tapes, sets, experiment_config(h, n_boot, seed), say))
    return out


def decisions(results: Sequence[ExperimentResult]) -> list[Decision]:
    return decide(results, UNCOVERED)


# ------------------------------------------------------------------------------------------ tables


def summary_table(result: ExperimentResult) -> Table:
    """Every variant's paired Δ against the baseline on each part (fit parts first), and the magnet test."""
    keys = [k for k in result.tapes if k.endswith("· fit")] + [
        k for k in result.tapes if k.endswith("· report")
    ]
    rows = []
    for v in result.variants:
        cells = [_variant_label(v.name, result), plain(result.fit_loglik.get(v.name, math.nan), "+.3f")]
        cells += [num(result.tapes[k][v.name].paired, "+.3f") for k in keys]
        cells += [
            num(result.magnets[m][v.name].difference.scaled(100), "+.1f", " pp") for m in result.magnets
        ]
        rows.append(cells)
    header = ["variant", "fit nats/event"]
    header += [k.replace(" · fit", " · FIT").replace(" · report", " · HELD OUT") for k in keys]
    header += [f"magnet · {m} · HELD OUT" for m in result.magnets]
    return Table(
        f"Horizon {span_text(result.config.horizon_ms)}: Δ nats per event against the baseline (paired), and the "
        "magnet test (cluster touched − same distance on a random side)",
        header,
        rows,
    )


def tape_tables(result: ExperimentResult) -> list[Table]:
    """One table per held-out tape part: every variant's figures, with intervals."""
    out = []
    for key, by_variant in result.tapes.items():
        if not key.endswith("· report"):
            continue
        first = by_variant[BASELINE]
        rows = []
        for v in result.variants:
            m = by_variant[v.name]
            rows.append([
                _variant_label(v.name, result), pct(m.top10_usd), num(m.path_rho, "+.2f"),
                f"{pct(m.precision5)} ({m.precision5_chance * 100:.0f} %)", num(m.lift_spot_fit, "+.2f"),
                f"{num(m.lift_best, '+.2f')} {_short_null(m.best_null)}", num(m.paired, "+.3f"),
            ])  # fmt: skip
        out.append(
            Table(
                f"Horizon {span_text(result.config.horizon_ms)}, held out: {key.removesuffix(' · report')} "
                f"({first.n_events} events in {first.n_blocks} independent windows)",
                [
                    "variant",
                    "top 10 % · USD",
                    "path ρ · USD",
                    "precision at 5 (chance)",
                    "vs spot Laplace fitted",
                    "vs best null",
                    "Δ vs baseline (paired)",
                ],  # fmt: skip
                rows,
            )
        )
    return out


def magnet_tables(result: ExperimentResult) -> list[Table]:
    out = []
    for name, by_variant in result.magnets.items():
        first = by_variant[BASELINE]
        rows = [
            [
                _variant_label(v.name, result),
                pct(m.hit),
                pct(m.random_side),
                num(m.difference.scaled(100), "+.1f", " pp"),
            ]
            for v in result.variants
            for m in (by_variant[v.name],)
        ]
        out.append(
            Table(
                f"Horizon {span_text(result.config.horizon_ms)}, magnets held out: {name} ({first.n_snapshots} snapshots, "
                f"{first.n_blocks} independent windows)",
                ["variant", "cluster touched", "same distance, random side", "difference"],
                rows,
            )
        )
    return out


def decision_table(results: Sequence[ExperimentResult]) -> Table:
    rows = []
    for d in decisions(results):
        yes = {True: "yes", False: "no"}
        if d.candidate == BASELINE:
            rows.append(
                [
                    d.family,
                    "nothing beat the baseline on the fit parts",
                    "-",
                    "-",
                    "-",
                    d.covered or "yes",
                    "keep",
                ]
            )
            continue
        rows.append([
            d.family, d.candidate, yes[d.fit_ok], yes[d.held_out_ok], yes[d.magnets_ok], d.covered or "yes",
            "ADOPT" if d.adopt else "keep the default",
        ])  # fmt: skip
    horizons = " and ".join(span_text(r.config.horizon_ms) for r in results)
    return Table(
        f"Which changes become defaults (rule applied at {horizons})",
        ["family", "chosen on the fit parts", "beats baseline on fit at every horizon",
         "held out: no interval below 0, mean Δ > 0", "magnets not worse", "held-out data cover it", "decision"],
        rows,
        [
            "the candidate is the fit parts' choice at the first horizon; every condition must hold at every "
            "horizon; a change the held-out data cannot test is not made a default",
        ],
    )  # fmt: skip


def all_tables(results: Sequence[ExperimentResult]) -> list[Table]:
    out = [decision_table(results)]
    for r in results:
        out += [summary_table(r), *tape_tables(r), *magnet_tables(r)]
    return out


def notes(results: Sequence[ExperimentResult]) -> list[str]:
    out = [
        f"split: {SPLIT_TEXT}; a snapshot every {span_text(results[0].config.every_ms)}; variants marked * are their "
        "family's choice on the fit parts at that horizon; 'fitted' combines the choices",
    ]
    for r in results:
        chosen = ", ".join(f"{family}: {name}" for family, name in r.chosen.items())
        out.append(f"chosen at {span_text(r.config.horizon_ms)} (highest nats per event over uniform on the fit parts, each "
                   f"fit tape weighted equally): {chosen}")  # fmt: skip
    out += [
        "fit nats/event: mean log-likelihood per event over uniform on the fit parts (the figure that chooses)",
        "best null: the null the variant beats by least (sL = spot Laplace, mL = lookback-mean Laplace, fit = "
        "fitted out of sample, best = best in sample, range = recent range, unif = uniform)",
        "Δ vs baseline: mean over the same (snapshot, event) pairs of the variant's log-likelihood minus the "
        "baseline's, block bootstrap over the same windows (paired); > 0: the variant explains those liquidations "
        "better",
        "magnet: the largest cluster within 2 % touched within the horizon, minus the same distance on a random side",
        f"intervals: 95 % block bootstrap over independent windows of one horizon (Wilson for precision); {NO_CI}: "
        "fewer than two windows hold events (degenerate intervals such as [a, a] come from two or three windows)",
    ]
    return out


_SHORT = {"uniform": "unif", "range": "range", "spot_laplace_fit": "sL fit", "spot_laplace_best": "sL best",
          "mean_laplace_fit": "mL fit", "mean_laplace_best": "mL best"}  # fmt: skip


def _short_null(name: str) -> str:
    return f"({_SHORT.get(name, name)})" if name else ""


def _variant_label(name: str, result: ExperimentResult) -> str:
    chosen = set(result.chosen.values()) - {BASELINE}
    return f"{name} *" if name in chosen else name

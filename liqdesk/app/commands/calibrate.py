"""`liqdesk calibrate`: score the estimated heatmap against the real liquidations that followed it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from liqdesk.app.calibration_report import html_report
from liqdesk.app.calibration_tables import (
    INTERVALS,
    Table,
    actual_table,
    comparison_table,
    magnet_table,
    render_text,
    venue_tables,
    venue_title,
    verdicts,
)
from liqdesk.app.magnet_standing import measure_standing, standing_text
from liqdesk.app.model_experiments import all_tables, notes, run_bundled
from liqdesk.app.modelrun import check_backend, check_calibration_budget
from liqdesk.app.options import Inputs, add_data_options, load_inputs, model_params
from liqdesk.app.venue_inputs import VenueSetInputs, is_venue_set, load_venue_inputs, venue_params
from liqdesk.core.actual_map import PositionSamples
from liqdesk.core.aggregate import VenueModel, aggregate_snapshots, build_venues
from liqdesk.core.calibration import CalibrationConfig, CalibrationResult, score_snapshots
from liqdesk.core.density_snapshots import density_snapshots, snapshot_times
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.estimate_vs_actual import ComparisonConfig, ComparisonSummary, compare_snapshots, summarise
from liqdesk.core.magnet_standing import MagnetStanding
from liqdesk.core.params import ModelParams
from liqdesk.core.timespan import span_text, utc_text
from liqdesk.errors import ConfigError, DataError
from liqdesk.feeds.atomic import write_text_atomic
from liqdesk.feeds.timeparse import parse_duration

# The bundled sample that carries real liquidations (the other samples have none to score against).
DEFAULT_SAMPLE = "btcusdt-1m-2025-01"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "calibrate",
        help="does the heatmap predict where real liquidations happen? (scores with confidence intervals)",
        description=(
            "Snapshot the estimated liquidation map every --every and score it against the real liquidations "
            "of the next --horizon: share of liquidated USD and of events in the densest 10 % / 25 % of cells "
            "(chance: 10 % / 25 %); log-likelihood of their prices against nulls a trader could guess (uniform, "
            "the recent range, Laplaces at spot and at the lookback mean with fixed, out-of-sample fitted and "
            "best in-sample scales); a path-conditional test (among the cells price traversed, does liquidated "
            "USD follow the map?); precision at N zones with Wilson bounds; and whether price reached the largest "
            "cluster within --within % more often than the same distance on a random side. Pooled and per "
            "venue when the tape holds several. 95 % block-bootstrap intervals; says plainly when there are too "
            "few events. Default data: the bundled sample with real liquidations "
            f"({DEFAULT_SAMPLE}; btcusdt-1m-2025-05 has Hyperliquid's); with --exchange, the liquidations "
            "recorded in the local cache. Without --start/--range every snapshot of the loaded history is scored."
        ),
    )
    add_data_options(p)
    c = p.add_argument_group("calibration")
    c.add_argument(
        "--horizon", default="24h", metavar="SPAN", help="score events this long after a snapshot (24h)"
    )
    c.add_argument("--every", default="1h", metavar="SPAN", help="snapshot spacing (default 1h)")
    c.add_argument(
        "--lookback", default="24h", metavar="SPAN", help="range, ATR and mean-price window (default 24h)"
    )
    c.add_argument(
        "--warmup", default="1h", metavar="SPAN", help="history before the first snapshot (default 1h)"
    )
    c.add_argument(
        "--bins", type=int, default=200, metavar="N", help="price cells per snapshot (default 200)"
    )
    c.add_argument(
        "--tolerance",
        type=float,
        default=0.35,
        metavar="PCT",
        help="reported vs trigger price, %% (default 0.35: Binance's order price)",
    )
    c.add_argument(
        "--within", type=float, default=2.0, metavar="PCT", help="magnet test: clusters within this %% (2)"
    )
    c.add_argument(
        "--compare", metavar="P1,P2", help="score several presets side by side, e.g. coinglass,all,high"
    )
    c.add_argument("--boot", type=int, default=2000, metavar="N", help="bootstrap resamples (default 2000)")
    c.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    c.add_argument("--json", action="store_true", help="print JSON instead of tables")
    c.add_argument(
        "--report", metavar="FILE", help="also write the tables and plots as one self-contained HTML page"
    )
    c.add_argument(
        "--experiments",
        action="store_true",
        help="also run the model experiments on the bundled real data (every model variant tried, fitted on "
        "some periods and scored on held-out ones; a minute or two) and add their tables (and to --report)",
    )
    a = p.add_argument_group("estimate vs actual (sampled Hyperliquid positions)")
    src = a.add_mutually_exclusive_group()
    src.add_argument(
        "--positions",
        metavar="FILE",
        help="recorded clearinghouseState answers (JSON lines, as sample-positions --record writes them): score "
        "the estimated map against the actual one at each snapshot",
    )
    src.add_argument(
        "--sampled-positions",
        action="store_true",
        help="the same with the positions sample-positions stored in the local database",
    )
    a.add_argument(
        "--positions-max-age",
        metavar="SPAN",
        help="an account counts at a snapshot if answered this long before it at most (default: --every)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if is_venue_set(args):
        return _run_venues(args)
    if not (args.sample or args.candles or args.exchange):
        args.sample = DEFAULT_SAMPLE
    config = _config(args)
    params = _params(args)
    report = _report_path(args)
    inputs = load_inputs(args)
    check_backend(inputs)
    positions = _positions(args, inputs.symbol)
    max_age = (
        parse_duration(args.positions_max_age, what="--positions-max-age") if args.positions_max_age else None
    )
    # An explicit view picks the snapshots; otherwise all of the loaded history is scored.
    start = inputs.view_start_ms if (args.start or args.range) else None
    c = inputs.candles
    check_calibration_budget(
        len(snapshot_times(c.open_time, c.interval_ms, config, start, inputs.view_end_ms)), config.n_bins
    )
    results: dict[str, CalibrationResult] = {}
    actual: dict[str, ComparisonSummary] = {}
    engines: dict[str, LiquidationEngine] = {}
    for name, p in params.items():
        # the same scoring as compare_presets, with the snapshots kept for the positions
        engine = engines[name] = LiquidationEngine.build(inputs.candles, inputs.open_interest, p)
        times = snapshot_times(engine.open_time, engine.interval_ms, config, start, inputs.view_end_ms)
        snaps = density_snapshots(engine, times, config)
        results[name] = score_snapshots(
            snaps, inputs.liquidations, engine.sweep_high, engine.sweep_low, config
        )
        if positions is not None:
            rows = compare_snapshots(snaps, positions, max_age or config.every_ms)
            actual[name] = summarise(rows, ComparisonConfig(n_boot=config.n_boot, seed=config.seed))
    standing_preset = next(iter(engines))
    standing = measure_standing(engines[standing_preset], config.horizon_ms)
    first = next(iter(results.values()))
    if first.n_snapshots == 0:
        raise DataError(
            f"no snapshot to score: the data spans {utc_text(int(c.open_time[0]))} → {utc_text(int(c.close_time[-1]))} "
            f"({(int(c.close_time[-1]) - int(c.open_time[0])) / 86_400_000:.1f} days), and snapshots start after "
            f"--warmup {span_text(config.warmup_ms)}, every {span_text(config.every_ms)} within the view; shorten --warmup, "
            "widen the view or give more data"
        )
    experiments = _experiments(config) if args.experiments else None
    if report is not None:
        page = html_report(
            results, source=inputs.label, notes=inputs.notes, tape_events=len(inputs.liquidations),
            sections=[experiments] if experiments else (),
        )  # fmt: skip
        write_text_atomic(report, page)
    if args.json:
        out = _report(inputs, results)
        out["magnet_standing"] = _standing_dict(standing, standing_preset)
        if experiments is not None:
            out["experiments"] = {
                "tables": [t.__dict__ for t in experiments[1]],
                "notes": list(experiments[2]),
            }
        if positions is not None:
            out["estimate_vs_actual"] = {name: a.to_dict() for name, a in actual.items()}
        print(json.dumps(out, indent=2, allow_nan=False))
    else:
        print(_text(inputs, results))
        print(f"\nmagnet standing (preset {standing_preset}): {standing_text(standing).summary}")
        if experiments is not None:
            for t in experiments[1]:
                print("", *render_text(t, indent=""), sep="\n")
            print("", *(f"· {n}" for n in experiments[2]), sep="\n")
        if positions is not None:
            print("\n".join(_actual_text(inputs, positions, actual)))
        if report is not None:
            print(f"report written to {report}")
    return 0


@dataclass
class VenueScores:
    """One venue's tape scored on its own venue's map and on the aggregate, on the same snapshots and grid."""

    venue: str
    events: int
    own: CalibrationResult | None  # None: no snapshot or no tape
    aggregate: CalibrationResult | None


def _run_venues(args: argparse.Namespace) -> int:
    """Several venues: each venue's tape against its own map and against the sum of every venue's map."""
    if args.positions or args.sampled_positions:
        raise ConfigError("--positions / --sampled-positions score one venue's map: give one --exchange")
    config = _config(args)
    params = _params(args)
    report = _report_path(args)
    inputs = load_venue_inputs(args)
    start = inputs.view_start_ms if (args.start or args.range) else None
    times = {
        v.name: snapshot_times(v.candles.open_time, v.candles.interval_ms, config, start, inputs.view_end_ms)
        for v in inputs.venues
    }
    check_calibration_budget(max(len(t) for t in times.values()) * 2, config.n_bins)
    scores: dict[str, list[VenueScores]] = {}
    for name, p in params.items():
        per_venue = [replace(v, params=venue_params(p, v.name)) for v in inputs.venues]
        venues = build_venues(per_venue, workers=os.cpu_count() or 1)
        scores[name] = [_score_venue(venues, i, times[vm.name], config) for i, vm in enumerate(venues)]
    if report is not None:
        pages = {
            f"{name} · {vs.venue} {kind}": r
            for name, rows in scores.items() for vs in rows
            for kind, r in (("own map", vs.own), ("aggregate map", vs.aggregate)) if r is not None
        }  # fmt: skip
        if not pages:
            raise DataError(
                "no venue has recorded liquidations inside the scored horizons: nothing to report"
            )
        write_text_atomic(report, html_report(pages, source=inputs.label, notes=inputs.notes,
                                              tape_events=len(inputs.liquidations)))  # fmt: skip
    if args.json:
        out = {
            "source": inputs.label, "venues": inputs.names, "notes": inputs.notes,
            "tape_events": {v.name: len(v.liquidations) for v in inputs.venues}, "presets": list(scores),
            "results": {
                name: {vs.venue: {"events": vs.events, "own": None if vs.own is None else vs.own.to_dict(),
                                  "aggregate": None if vs.aggregate is None else vs.aggregate.to_dict()}
                       for vs in rows}
                for name, rows in scores.items()
            },
            "note": "each venue's real liquidations scored on its own venue's estimated map and on the sum of every "
            "venue's map, on the same snapshots, grid and nulls (the venue's own bars)",
        }  # fmt: skip
        print(json.dumps(out, indent=2, allow_nan=False))
    else:
        print(_venue_text(inputs, scores, config))
        if report is not None:
            print(f"report written to {report}")
    return 0


def _score_venue(venues: list[VenueModel], i: int, times: Any, config: CalibrationConfig) -> VenueScores:
    vm = venues[i]
    e = vm.engine
    tape = vm.liquidations
    if not len(tape) or not len(times):
        return VenueScores(vm.name, len(tape), None, None)
    own = score_snapshots(density_snapshots(e, times, config), tape, e.sweep_high, e.sweep_low, config)
    agg = score_snapshots(
        aggregate_snapshots(venues, i, times, config), tape, e.sweep_high, e.sweep_low, config
    )
    return VenueScores(vm.name, len(tape), own, agg)


def _venue_text(
    inputs: VenueSetInputs, scores: dict[str, list[VenueScores]], config: CalibrationConfig
) -> str:
    lines = [
        "liqdesk calibrate: does the estimated heatmap predict where real liquidations happen? (per venue: its own "
        "venue's map and the aggregate of every venue's)",
        f"source: {inputs.label}",
        *(f"note: {n}" for n in inputs.notes),
        f"horizon {span_text(config.horizon_ms)}, snapshots every {span_text(config.every_ms)}, lookback "
        f"{span_text(config.lookback_ms)}; {config.n_bins} cells on the scored venue's own range; price tolerance "
        f"±{config.tolerance_pct:g} %",
    ]
    for name, rows in scores.items():
        for vs in rows:
            if vs.own is None or vs.aggregate is None:
                why = "no recorded liquidations" if not vs.events else "no snapshot to score"
                lines += ["", f"preset {name} · {vs.venue}: {why}; not scored"]
                continue
            pair = {f"{vs.venue} map": vs.own, "aggregate map": vs.aggregate}
            lines += ["", f"preset {name} · events of {vs.venue}: {vs.own.all.rows['total'].n_events} in the scored "
                      f"horizons ({vs.events} in its tape)"]  # fmt: skip
            lines += render_text(comparison_table(pair, title=f"{vs.venue}'s tape: its own map vs the aggregate",
                                                  what="map"))  # fmt: skip
            for label, r in pair.items():
                lines += ["", f"  {label}"]
                for t in venue_tables(r.all, r):
                    lines += render_text(t, indent="    ")
                lines += ["    verdict", *(f"      {v}" for v in verdicts(r.all, r))]
    lines += ["", INTERVALS]
    return "\n".join(line.rstrip() for line in lines)


def _experiments(config: CalibrationConfig) -> tuple[str, list[Table], list[str]]:
    results = run_bundled(n_boot=config.n_boot, seed=config.seed)
    return "Model experiments on the bundled data (held out)", all_tables(results), notes(results)


def _standing_dict(s: MagnetStanding, preset: str) -> dict[str, Any]:
    return {
        "preset": preset,
        "label": s.label,
        "hits": s.hits,
        "magnets": s.n,
        "horizon_h": s.horizon_ms / 3_600_000,
        "check": s.check.verdict,
        "summary": standing_text(s).summary,
    }


def _positions(args: argparse.Namespace, symbol: str) -> PositionSamples | None:
    """The sampled positions of the symbol's coin (recorded file or the local database), or None."""
    coin = symbol.split("/")[0]
    if args.positions:
        from liqdesk.feeds.position_records import read_position_records

        rec = read_position_records(args.positions)
        for msg in rec.report.messages()[:5]:
            print(f"liqdesk calibrate: skipped {msg}", file=sys.stderr)
        return rec.samples.for_coin(coin)
    if args.sampled_positions:
        from liqdesk.feeds.store import open_positions

        with open_positions(getattr(args, "store", None)) as store:
            return store.samples(coin)
    return None


def _actual_text(
    inputs: Inputs, positions: PositionSamples, actual: dict[str, ComparisonSummary]
) -> list[str]:
    lines = ["", *render_text(actual_table(actual), indent="")]
    if inputs.exchange != "hyperliquid":
        lines.append(f"  · the estimate is built from {inputs.label}; the positions are Hyperliquid's")
    lines.append(
        f"  · {positions.n_samples} answers of {len(set(positions.sample_account.tolist()))} accounts, "
        f"{len(positions)} positions in the coin"
    )
    return [line.rstrip() for line in lines]


def _report_path(args: argparse.Namespace) -> Path | None:
    if not args.report:
        return None
    path = Path(args.report)
    if path.suffix.lower() not in (".html", ".htm"):
        raise ConfigError(f"--report {args.report}: use a .html file name")
    if path.is_dir():
        raise ConfigError(f"--report {args.report}: is a folder")
    return path


def _config(args: argparse.Namespace) -> CalibrationConfig:
    if args.bins < 10 or args.bins > 5000:
        raise ConfigError("--bins must be between 10 and 5000")
    if not 0 <= args.tolerance < 5:
        raise ConfigError("--tolerance must be a percentage in [0, 5)")
    if not 0 < args.within <= 50:
        raise ConfigError("--within must be a percentage in (0, 50]")
    if args.boot < 1:
        raise ConfigError("--boot must be positive")
    return CalibrationConfig(
        horizon_ms=parse_duration(args.horizon, what="--horizon"),
        every_ms=parse_duration(args.every, what="--every"),
        lookback_ms=parse_duration(args.lookback, what="--lookback"),
        warmup_ms=parse_duration(args.warmup, what="--warmup"),
        n_bins=args.bins,
        tolerance_pct=args.tolerance,
        magnet_within_pct=args.within,
        n_boot=args.boot,
        seed=args.seed,
    )


def _params(args: argparse.Namespace) -> dict[str, ModelParams]:
    names = [n.strip() for n in args.compare.split(",")] if args.compare else [args.preset]
    names = [n for n in names if n]
    if not names:
        raise ConfigError("--compare needs preset names, e.g. coinglass,all,high")
    # The model options (--half-life, …) apply to every preset compared.
    return {n: model_params(argparse.Namespace(**{**vars(args), "preset": n})) for n in dict.fromkeys(names)}


# ------------------------------------------------------------------------------------------ output


def _report(inputs: Inputs, results: dict[str, CalibrationResult]) -> dict[str, Any]:
    return {
        "source": inputs.label,
        "symbol": inputs.symbol,
        "exchange": inputs.exchange,
        "notes": inputs.notes,
        "tape_events": len(inputs.liquidations),
        "presets": list(results),
        "results": {name: r.to_dict() for name, r in results.items()},
        "note": "the heatmap is a model estimate; these scores test it against real liquidations",
    }


def _text(inputs: Inputs, results: dict[str, CalibrationResult]) -> str:
    first = next(iter(results.values()))
    cfg = first.config
    lines = [
        "liqdesk calibrate: does the estimated heatmap predict where real liquidations happen?",
        f"source: {inputs.label}",
        *(f"note: {n}" for n in inputs.notes),
        f"snapshots: {first.n_snapshots} every {span_text(cfg.every_ms)} from {utc_text(first.first_ms)} to "
        f"{utc_text(first.last_ms)} UTC; horizon {span_text(cfg.horizon_ms)}, lookback {span_text(cfg.lookback_ms)}",
        f"map: {cfg.n_bins} cells over the lookback range, at least spot ±{cfg.range_pct:g} %; price "
        f"tolerance ±{cfg.tolerance_pct:g} %; likelihood floor {cfg.floor * 100:g} % uniform",
        f"real liquidations: {len(inputs.liquidations)} in the tape, {first.n_tape_events} inside the scored "
        "horizons",
    ]
    for name, r in results.items():
        for key, score in r.venues.items():
            lines += ["", f"preset {name} · {venue_title(key, score)}"]
            for t in venue_tables(score, r):
                lines += render_text(t)
            lines += ["  verdict", *(f"    {v}" for v in verdicts(score, r))]
        lines += render_text(magnet_table(r))
        lines += [f"  note: {n}" for n in r.notes]
    if len(results) > 1:
        lines += ["", *render_text(comparison_table(results), indent="")]
    lines += ["", INTERVALS]
    return "\n".join(line.rstrip() for line in lines)

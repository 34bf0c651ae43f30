"""`liqdesk calibrate`: score the estimated heatmap against the real liquidations that followed it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from liqdesk.app.calibration_report import html_report
from liqdesk.app.calibration_tables import (
    INTERVALS,
    actual_table,
    comparison_table,
    magnet_table,
    render_text,
    venue_tables,
    venue_title,
    verdicts,
)
from liqdesk.app.modelrun import check_backend, check_calibration_budget
from liqdesk.app.options import Inputs, add_data_options, load_inputs, model_params
from liqdesk.core.actual_map import PositionSamples
from liqdesk.core.calibration import CalibrationConfig, CalibrationResult, score_snapshots
from liqdesk.core.density_snapshots import density_snapshots, snapshot_times
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.estimate_vs_actual import ComparisonConfig, ComparisonSummary, compare_snapshots, summarise
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
    for name, p in params.items():
        # the same scoring as compare_presets, with the snapshots kept for the positions
        engine = LiquidationEngine.build(inputs.candles, inputs.open_interest, p)
        times = snapshot_times(engine.open_time, engine.interval_ms, config, start, inputs.view_end_ms)
        snaps = density_snapshots(engine, times, config)
        results[name] = score_snapshots(
            snaps, inputs.liquidations, engine.sweep_high, engine.sweep_low, config
        )
        if positions is not None:
            rows = compare_snapshots(snaps, positions, max_age or config.every_ms)
            actual[name] = summarise(rows, ComparisonConfig(n_boot=config.n_boot, seed=config.seed))
    first = next(iter(results.values()))
    if first.n_snapshots == 0:
        raise DataError(
            f"no snapshot to score: the data spans {utc_text(int(c.open_time[0]))} → {utc_text(int(c.close_time[-1]))} "
            f"({(int(c.close_time[-1]) - int(c.open_time[0])) / 86_400_000:.1f} days), and snapshots start after "
            f"--warmup {span_text(config.warmup_ms)}, every {span_text(config.every_ms)} within the view; shorten --warmup, "
            "widen the view or give more data"
        )
    if report is not None:
        page = html_report(
            results, source=inputs.label, notes=inputs.notes, tape_events=len(inputs.liquidations)
        )
        write_text_atomic(report, page)
    if args.json:
        out = _report(inputs, results)
        if positions is not None:
            out["estimate_vs_actual"] = {name: a.to_dict() for name, a in actual.items()}
        print(json.dumps(out, indent=2, allow_nan=False))
    else:
        print(_text(inputs, results))
        if positions is not None:
            print("\n".join(_actual_text(inputs, positions, actual)))
        if report is not None:
            print(f"report written to {report}")
    return 0


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
        from liqdesk.feeds.positions_store import PositionsStore

        with PositionsStore() as store:
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

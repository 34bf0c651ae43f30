"""`liqdesk calibrate`: score the estimated heatmap against the real liquidations that followed it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from liqdesk.app.calibration_report import html_report
from liqdesk.app.calibration_tables import (
    INTERVALS,
    comparison_table,
    day,
    magnet_table,
    render_text,
    span,
    venue_tables,
    venue_title,
    verdicts,
)
from liqdesk.app.modelrun import check_backend, check_calibration_budget
from liqdesk.app.options import Inputs, add_data_options, load_inputs, model_params
from liqdesk.core.calibration import CalibrationConfig, CalibrationResult, compare_presets
from liqdesk.core.density_snapshots import snapshot_times
from liqdesk.core.params import ModelParams
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not (args.sample or args.candles or args.exchange):
        args.sample = DEFAULT_SAMPLE
    config = _config(args)
    params = _params(args)
    report = _report_path(args)
    inputs = load_inputs(args)
    check_backend(inputs)
    # An explicit view picks the snapshots; otherwise all of the loaded history is scored.
    start = inputs.view_start_ms if (args.start or args.range) else None
    c = inputs.candles
    check_calibration_budget(
        len(snapshot_times(c.open_time, c.interval_ms, config, start, inputs.view_end_ms)), config.n_bins
    )
    results = compare_presets(
        inputs.candles, inputs.open_interest, inputs.liquidations, params, config, start, inputs.view_end_ms
    )
    first = next(iter(results.values()))
    if first.n_snapshots == 0:
        raise DataError(
            f"no snapshot to score: the data spans {day(int(c.open_time[0]))} → {day(int(c.close_time[-1]))} "
            f"({(int(c.close_time[-1]) - int(c.open_time[0])) / 86_400_000:.1f} days), and snapshots start after "
            f"--warmup {span(config.warmup_ms)}, every {span(config.every_ms)} within the view; shorten --warmup, "
            "widen the view or give more data"
        )
    if report is not None:
        page = html_report(
            results, source=inputs.label, notes=inputs.notes, tape_events=len(inputs.liquidations)
        )
        write_text_atomic(report, page)
    if args.json:
        print(json.dumps(_report(inputs, results), indent=2, allow_nan=False))
    else:
        print(_text(inputs, results))
        if report is not None:
            print(f"report written to {report}")
    return 0


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
        f"snapshots: {first.n_snapshots} every {span(cfg.every_ms)} from {day(first.first_ms)} to "
        f"{day(first.last_ms)} UTC; horizon {span(cfg.horizon_ms)}, lookback {span(cfg.lookback_ms)}",
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

"""`liqdesk calibrate`: score the estimated heatmap against the real liquidations that followed it."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from liqdesk.app.modelrun import check_backend, check_calibration_budget
from liqdesk.app.options import Inputs, add_data_options, load_inputs, model_params
from liqdesk.core.calibration import (
    NULLS,
    ROWS,
    CalibrationConfig,
    CalibrationResult,
    Estimate,
    RowScore,
    compare_presets,
    snapshot_times,
)
from liqdesk.core.params import ModelParams
from liqdesk.errors import ConfigError, DataError
from liqdesk.feeds.timeparse import format_time, parse_duration

# The bundled sample that carries real liquidations (the other samples have none to score against).
DEFAULT_SAMPLE = "btcusdt-1m-2025-01"
_NULL_HEAD = {"uniform": "− uniform", "spot_laplace": "− Laplace@spot", "mean_laplace": "− Laplace@mean"}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "calibrate",
        help="does the heatmap predict where real liquidations happen? (scores with confidence intervals)",
        description=(
            "Snapshot the estimated liquidation map every --every and score it against the real liquidations "
            "of the next --horizon: share of liquidated USD in the densest 10 % / 25 % of cells (chance: "
            "10 % / 25 %), log-likelihood of their prices against three nulls (uniform, a Laplace at spot, "
            "a Laplace at the lookback mean), and whether price reached the largest cluster within --within "
            "% more often than the same distance on a random side. 95 % block-bootstrap intervals; says "
            "plainly when there are too few events. Default data: the bundled sample with real liquidations "
            f"({DEFAULT_SAMPLE}); with --exchange, the liquidations recorded in the local cache. "
            "Without --start/--range every snapshot of the loaded history is scored."
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not (args.sample or args.candles or args.exchange):
        args.sample = DEFAULT_SAMPLE
    config = _config(args)
    params = _params(args)
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
        c = inputs.candles
        raise DataError(
            f"no snapshot to score: the data spans {_day(int(c.open_time[0]))} → {_day(int(c.close_time[-1]))} "
            f"({(int(c.close_time[-1]) - int(c.open_time[0])) / 86_400_000:.1f} days), and snapshots start after --warmup "
            f"{_span(config.warmup_ms)}, every {_span(config.every_ms)} within the view; shorten --warmup, widen "
            "the view or give more data"
        )
    if args.json:
        print(json.dumps(_report(inputs, results), indent=2, allow_nan=False))
    else:
        print(_text(inputs, results))
    return 0


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


def _pct(e: Estimate, digits: int = 1) -> str:
    if not math.isfinite(e.value):
        return "n/a"
    ci = f" [{e.low * 100:.{digits}f}, {e.high * 100:.{digits}f}]" if e.has_ci else " [no CI]"
    return f"{e.value * 100:.{digits}f} %{ci}"


def _num(e: Estimate, fmt: str = "+.3f") -> str:
    if not math.isfinite(e.value):
        return "n/a"
    ci = f" [{e.low:{fmt}}, {e.high:{fmt}}]" if e.has_ci else " [no CI]"
    return f"{e.value:{fmt}}{ci}"


def _day(ms: int | None) -> str:
    return "-" if ms is None else format_time(ms)[:16].replace("T", " ")


def _text(inputs: Inputs, results: dict[str, CalibrationResult]) -> str:
    first = next(iter(results.values()))
    cfg = first.config
    lines = [
        "liqdesk calibrate: does the estimated heatmap predict where real liquidations happen?",
        f"source: {inputs.label}",
        *(f"note: {n}" for n in inputs.notes),
        f"snapshots: {first.n_snapshots} every {_span(cfg.every_ms)} from {_day(first.first_ms)} to "
        f"{_day(first.last_ms)} UTC; horizon {_span(cfg.horizon_ms)}, lookback {_span(cfg.lookback_ms)}",
        f"map: {cfg.n_bins} cells over the lookback range, at least spot ±{cfg.range_pct:g} %; price "
        f"tolerance ±{cfg.tolerance_pct:g} %; likelihood floor {cfg.floor * 100:g} % uniform",
        f"real liquidations: {len(inputs.liquidations)} in the tape, {first.n_tape_events} inside the scored "
        "horizons",
    ]
    for name, r in results.items():
        lines += ["", f"preset {name}", *_block(r)]
    if len(results) > 1:
        lines += ["", *_comparison(results)]
    lines += [
        "",
        "total = all liquidations against the long + short map (fair against the side-blind nulls);",
        "long/short/matched = each side against its own map (favoured: it knows longs liquidate below spot).",
        "windows = independent blocks of one horizon; CIs are 95 % block bootstrap over snapshots.",
    ]
    return "\n".join(line.rstrip() for line in lines)


def _block(r: CalibrationResult) -> list[str]:
    qs = r.config.top_shares
    head = "".join(f"  {'top ' + format(q * 100, 'g') + ' % cells':<24}{'lift':<20}" for q in qs)
    out = [
        "  share of liquidated USD in the densest cells (chance = share of cells)",
        f"    {'density':<9}{'events':>7}{'pairs':>7}{'windows':>8}{head}",
    ]
    for name in ROWS:
        row = r.rows[name]
        cells = "".join(f"  {_pct(t.share):<24}{_num(t.lift, '.2f'):<20}" for t in row.top)
        out.append(f"    {name:<9}{row.n_events:>7}{row.n_pairs:>7}{row.n_blocks:>8}{cells}")
    out += [
        "  log-likelihood of the liquidation prices, nats/event vs uniform; lift = model − null",
        f"    {'density':<9}{'model':>9}" + "".join(f"  {_NULL_HEAD[n]:<24}" for n in NULLS),
    ]
    for name in ROWS:
        row = r.rows[name]
        model = row.loglik["model"].value
        mtxt = f"{model:+.3f}" if math.isfinite(model) else "n/a"
        out.append(f"    {name:<9}{mtxt:>9}" + "".join(f"  {_num(row.lift[n]):<24}" for n in NULLS))
    m = r.magnet
    out += [
        f"  magnet test: largest cluster within {m.within_pct:g} % (mean {_f(m.mean_distance_pct)} % away) touched "
        f"within {_span(r.config.horizon_ms)}; {m.n_snapshots} snapshots in {m.n_blocks} windows "
        f"({m.n_no_cluster} without a cluster in reach, {m.n_censored} without a full horizon)",
        f"    cluster {_pct(m.hit)}   same distance, random side {_pct(m.random_side)}   "
        f"difference {_num(_scaled(m.difference, 100), '+.1f')} pp",
        "  verdict",
        f"    liquidations (total): {r.rows['total'].verdict}",
        f"    magnet: {m.verdict}",
        *(f"  note: {n}" for n in r.notes),
    ]
    return out


def _comparison(results: dict[str, CalibrationResult]) -> list[str]:
    q = results[next(iter(results))].config.top_shares[0]
    out = [
        "comparison (total density; intervals are per preset, not paired)",
        f"    {'preset':<12}{'events':>7}  {'top ' + format(q * 100, 'g') + ' % lift':<22}"
        f"{'LL − Laplace@spot':<24}{'magnet difference, pp':<24}",
    ]
    for name, r in results.items():
        row: RowScore = r.rows["total"]
        out.append(
            f"    {name:<12}{row.n_events:>7}  {_num(row.top[0].lift, '.2f'):<22}"
            f"{_num(row.lift['spot_laplace']):<24}{_num(_scaled(r.magnet.difference, 100), '+.1f'):<24}"
        )
    if not all(r.enough for r in results.values()):
        out.append("    too few events to rank the presets on liquidations")
    return out


def _scaled(e: Estimate, k: float) -> Estimate:
    return Estimate(e.value * k, e.low * k, e.high * k)


def _f(x: float) -> str:
    return f"{x:.2f}" if math.isfinite(x) else "n/a"


def _span(ms: int) -> str:
    if ms % 3_600_000 == 0 and ms < 48 * 3_600_000:  # "24h" reads better than "1d"
        return f"{ms // 3_600_000}h"
    for unit, div in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        if ms % div == 0:
            return f"{ms // div}{unit}"
    return f"{ms / 1000:g}s"

"""Several venues' data for one command (the aggregate), and the model built on them.

From exchanges (`--exchange binanceusdm,bybit,okx,hyperliquid`: each venue's history through the cache, side
by side) or from files (`--venue NAME=CANDLES[,OPEN_INTEREST]`, repeatable; `--venue-liquidations NAME=FILE`).
Each venue gets its own parameters: the preset and model options of the command, with the venue's bracket table
and margin rule. One venue's data (`--exchange ID`, `--candles`, a sample) is a set of one, so every command
computes its grids, maps and scores the same way for one venue or several.

The time axis (`VenueSetInputs.time_columns`): slots of the bar interval on the venues' bar phase, from the view
start to its end. The view ends at `--end` or the last bar close among the venues; it starts at `--start`, or
`--range` before the end but not before the first bar of any venue (so a default view never opens on empty
columns). An explicit `--start`/`--end` is taken as given, so that the same options give the same columns for
any set of venues (the sum property: an aggregate's export is the sum of its venues' exports). See
core.aggregate for how each venue's bars fill the columns.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from liqdesk.app.modelrun import check_backend_choice
from liqdesk.app.options import (
    DEFAULT_VIEW,
    Inputs,
    check_timeframe,
    load_inputs,
    model_params,
    print_report,
)
from liqdesk.core.aggregate import (
    TAPE_FILE,
    AggregateCoverage,
    AggregateGrid,
    TimeColumns,
    VenueInput,
    VenueModel,
    aggregate_coverage,
    build_and_render,
    build_venues,
    model_mix,
    time_columns,
)
from liqdesk.core.grid import PriceBins
from liqdesk.core.liqmap import auto_bins
from liqdesk.core.params import ModelParams
from liqdesk.core.series import Candles, Liquidations, OpenInterest
from liqdesk.errors import ConfigError, DataError
from liqdesk.feeds.presets import VENUE_BRACKETS, venue_brackets
from liqdesk.feeds.timeparse import format_time, parse_duration, parse_time
from liqdesk.feeds.validate import MIN_TIME_MS


@dataclass
class VenueSetInputs:
    """Each venue's inputs and the common view."""

    venues: list[VenueInput]
    label: str  # where the data came from, one line
    view_start_ms: int
    view_end_ms: int  # exclusive
    params: ModelParams  # the preset and options shared by the venues (each has its own brackets)
    exchange: str  # the venues' ids joined by commas (one id for one venue)
    symbol: str  # the first venue's symbol
    notes: list[str] = field(default_factory=list)
    backend: str = "auto"

    @property
    def names(self) -> list[str]:
        return [v.name for v in self.venues]

    @property
    def interval_ms(self) -> int:
        return self.venues[0].candles.interval_ms

    @property
    def liquidations(self) -> Liquidations:
        """Every venue's tape, by time (the exchange column names the venue)."""
        out = Liquidations.empty()
        for v in self.venues:
            if len(v.liquidations):
                out = out.concat(v.liquidations)
        return out.sorted()

    def time_columns(self, columns: int | None = None) -> TimeColumns:
        phase = bar_phase_of(self.venues)
        return time_columns(self.view_start_ms, self.view_end_ms, self.interval_ms, columns, phase)

    def slot_count(self) -> int:
        return len(self.time_columns(None))

    def view_candles(self) -> list[Candles]:
        return [v.candles.between(self.view_start_ms, self.view_end_ms) for v in self.venues]


def bar_phase_of(venues: list[VenueInput]) -> int:
    firsts = [(int(v.candles.open_time[0]), v.candles.interval_ms) for v in venues if len(v.candles)]
    if not firsts:
        return 0
    t, interval = min(firsts)
    return t % interval


# ------------------------------------------------------------------------------------------ arguments


def is_venue_set(args: argparse.Namespace) -> bool:
    """Whether the command works on several venues (a comma list or --venue files)."""
    return bool(getattr(args, "venue", None)) or "," in str(getattr(args, "exchange", None) or "")


def parse_venue_files(specs: list[str]) -> list[tuple[str, str, str | None]]:
    """``NAME=CANDLES[,OPEN_INTEREST]`` items → (name, candles, open interest or None)."""
    out: list[tuple[str, str, str | None]] = []
    for spec in specs:
        name, eq, files = spec.partition("=")
        name = name.strip()
        parts = [p for p in files.split(",")] if eq else []
        if not name or not parts or not parts[0].strip() or len(parts) > 2:
            raise ConfigError(
                f"--venue {spec!r}: expected NAME=CANDLES[,OPEN_INTEREST], e.g. bybit=bybit-1h.csv"
            )
        if name in (n for n, _, _ in out):
            raise ConfigError(f"--venue {name}: given twice")
        oi = parts[1].strip() if len(parts) == 2 and parts[1].strip() else None
        out.append((name, parts[0].strip(), oi))
    return out


def parse_venue_liquidations(specs: list[str], names: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for spec in specs:
        name, eq, path = spec.partition("=")
        name = name.strip()
        if not eq or not name or not path.strip():
            raise ConfigError(f"--venue-liquidations {spec!r}: expected NAME=FILE")
        if name not in names:
            raise ConfigError(
                f"--venue-liquidations {name}: no --venue {name}=… (venues: {', '.join(names)})"
            )
        if name in out:
            raise ConfigError(f"--venue-liquidations {name}: given twice")
        out[name] = path.strip()
    return out


def venue_input_files(args: argparse.Namespace) -> list[str]:
    """The data files the venues read (an output must never replace one of them)."""
    files: list[str] = []
    for _, candles, oi in parse_venue_files(getattr(args, "venue", None) or []):
        files += [candles] + ([oi] if oi else [])
    for spec in getattr(args, "venue_liquidations", None) or []:
        files.append(spec.partition("=")[2].strip())
    return [f for f in files if f]


def venue_params(params: ModelParams, name: str) -> ModelParams:
    """The command's parameters with the venue's brackets (Binance's for a name without its own table)."""
    return params.with_(brackets=venue_brackets(name))


# ------------------------------------------------------------------------------------------ loading


def load_venue_inputs(args: argparse.Namespace) -> VenueSetInputs:
    """The venues of a command: a comma list of exchanges, or --venue files."""
    from liqdesk.core.backend import resolve_request

    params = model_params(args)
    if getattr(args, "timeframe", None):
        check_timeframe(args.timeframe)
    if getattr(args, "candles", None) or getattr(args, "sample", None):
        raise ConfigError("give --venue files or --exchange, not --candles/--sample with them")
    if getattr(args, "venue", None):
        if getattr(args, "exchange", None):
            raise ConfigError("give --venue files or --exchange, not both")
        venues, notes = _from_files(args, params)
    else:
        if getattr(args, "venue_liquidations", None):
            raise ConfigError(
                "--venue-liquidations goes with --venue files (exchange tapes come from the cache)"
            )
        venues, notes = _from_exchanges(args, params)
    backend, _ = resolve_request(getattr(args, "backend", None), os.environ)
    return finish(venues, args, params, notes, backend)


def venue_set(args: argparse.Namespace) -> VenueSetInputs:
    """The command's venues: several (a comma list, --venue files) or the one of load_inputs."""
    return load_venue_inputs(args) if is_venue_set(args) else from_inputs(load_inputs(args), args)


def from_inputs(inputs: Inputs, args: argparse.Namespace) -> VenueSetInputs:
    """One venue's inputs (a file, a sample, one exchange) as a set of one, with the view `finish` gives a set."""
    name = inputs.exchange
    from_exchange = bool(getattr(args, "exchange", None))
    v = VenueInput(name, inputs.symbol, inputs.candles, inputs.open_interest, inputs.params, inputs.liquidations,
                   inputs.label, tape_of(name, from_exchange=from_exchange))  # fmt: skip
    c = inputs.candles
    start, end = inputs.view_start_ms, inputs.view_end_ms
    if len(c) and not getattr(args, "start", None):
        start = max(start, int(c.open_time[0]))
    if len(c) and not getattr(args, "end", None):
        end = min(end, int(c.close_time[-1]))
    return VenueSetInputs([v], inputs.label, start, end, inputs.params, name, inputs.symbol, list(inputs.notes),
                          inputs.backend)  # fmt: skip


def tape_of(name: str, *, from_exchange: bool) -> str:
    if not from_exchange or name not in VENUE_BRACKETS:
        return TAPE_FILE
    from liqdesk.feeds.venue_set import tape_kind

    return tape_kind(name)


def finish(
    venues: list[VenueInput], args: argparse.Namespace, params: ModelParams, notes: list[str], backend: str
) -> VenueSetInputs:
    """The common view over the venues; each venue's bars cut at its end (levels opened before the view
    still count; nothing after it is used)."""
    with_bars = [v for v in venues if len(v.candles)]
    if not with_bars:
        raise DataError("no venue has candles (" + ", ".join(v.name for v in venues) + ")")
    intervals = {v.candles.interval_ms for v in with_bars}
    if len(intervals) > 1:
        got = ", ".join(f"{v.name} {v.candles.interval_ms // 60_000} min" for v in with_bars)
        raise DataError(f"the venues' bars have different intervals ({got}); resample them to one")
    first = min(int(v.candles.open_time[0]) for v in with_bars)
    last_close = max(int(v.candles.close_time[-1]) for v in with_bars)
    explicit_start = bool(getattr(args, "start", None))
    end = parse_time(args.end, what="--end") if getattr(args, "end", None) else last_close
    if explicit_start:
        if getattr(args, "range", None):
            raise ConfigError("give --start or --range, not both")
        start = parse_time(args.start, what="--start")
    else:
        start = max(end - parse_duration(getattr(args, "range", None) or DEFAULT_VIEW, what="--range"), first)
    if start >= end:
        raise ConfigError(f"empty time range: --start {_iso(start)} is not before --end {_iso(end)}")
    if not getattr(args, "end", None):
        end = min(end, last_close)
    venues = [
        VenueInput(v.name, v.symbol, v.candles.between(None, end), v.open_interest, v.params, v.liquidations,
                   v.label, v.tape)
        for v in venues
    ]  # fmt: skip
    inside = [v for v in venues if len(v.candles.between(start, end))]
    if not inside or start >= end:
        raise DataError(
            f"no candles between {_iso(start)} and {_iso(max(end, start))} in any venue (data spans "
            f"{_iso(first)} → {_iso(last_close)})"
        )
    for v in venues:
        if not len(v.candles.between(start, end)):
            notes.append(f"{v.name}: no candles in the view")
        elif v.open_interest is None:
            notes.append(f"{v.name}: no open-interest data: openings estimated from volume (volume model)")
    label = " + ".join(v.label or v.name for v in venues)
    return VenueSetInputs(venues, label, start, end, params, ",".join(v.name for v in venues), venues[0].symbol,
                          notes, backend)  # fmt: skip


def _from_files(args: argparse.Namespace, params: ModelParams) -> tuple[list[VenueInput], list[str]]:
    from liqdesk.feeds import files

    specs = parse_venue_files(args.venue)
    tapes = parse_venue_liquidations(
        getattr(args, "venue_liquidations", None) or [], [n for n, _, _ in specs]
    )
    notes: list[str] = []
    venues = []
    symbol = getattr(args, "symbol", None) or "BTC/USDT:USDT"
    for name, candles_path, oi_path in specs:
        if name not in VENUE_BRACKETS:
            notes.append(f"{name}: no bracket table of its own; Binance's brackets and margin rule are used")
        candles, report = files.read_candles_report(candles_path)
        print_report(report)
        oi: OpenInterest | None = None
        if oi_path:
            oi, report = files.read_open_interest_report(oi_path)
            print_report(report)
        liqs = Liquidations.empty()
        if name in tapes:
            liqs, report = files.read_liquidations_report(tapes[name], exchange=name, symbol=symbol)
            print_report(report)
            liqs = _named(liqs, name)
        label = f"{name}: file {candles_path}" + (f" + {oi_path}" if oi_path else "")
        venues.append(
            VenueInput(name, symbol, candles, oi, venue_params(params, name), liqs, label, TAPE_FILE)
        )
    return venues, notes


def _named(liqs: Liquidations, name: str) -> Liquidations:
    """The tape with its exchange column set to the venue's name (scores are per venue name)."""
    from dataclasses import replace

    return replace(liqs, exchange=np.full(len(liqs), name))


def _from_exchanges(args: argparse.Namespace, params: ModelParams) -> tuple[list[VenueInput], list[str]]:
    from liqdesk.app.options import _now_ms, _progress_bar
    from liqdesk.feeds.market_list import load_market_lists
    from liqdesk.feeds.venue_set import (
        load_histories,
        parse_exchanges,
        tape_kind,
        venue_ccxt_options,
        venue_symbols,
    )

    exchanges = parse_exchanges(args.exchange)
    lists = load_market_lists(exchanges).lists  # cached only: no network to name the symbols
    symbols = venue_symbols(getattr(args, "symbol", None), exchanges, lists)
    tf = getattr(args, "timeframe", None) or "5m"
    check_timeframe(tf)
    cli = getattr(args, "ccxt_options", None)
    for ex in exchanges:
        venue_ccxt_options(ex, cli)  # a broken option is an error before anything is fetched
    end = parse_time(args.end, what="--end") if getattr(args, "end", None) else _now_ms()
    if getattr(args, "start", None):
        span = end - parse_time(args.start, what="--start")
        if span <= 0:
            raise ConfigError(f"empty time range: --start {args.start} is not before --end {_iso(end)}")
    else:
        span = parse_duration(getattr(args, "range", None) or DEFAULT_VIEW, what="--range")
    fetch_start = max(end - span - max(span, 86_400_000), MIN_TIME_MS)
    if fetch_start >= end:
        raise DataError(f"--end {_iso(end)} is before any market data (2009)")
    hists = load_histories(
        [(ex, symbols[ex]) for ex in exchanges], tf, fetch_start, end,
        ccxt_options=lambda ex: venue_ccxt_options(ex, cli), progress=_progress_bar(),
        store=getattr(args, "store", None),
    )  # fmt: skip
    notes: list[str] = []
    venues = []
    for ex, h in zip(exchanges, hists, strict=True):
        for w in h.notes:
            print(f"liqdesk: warning: {ex}: {w}", file=sys.stderr)
        if len(h.candles) < 2:
            notes.append(f"{ex}: no candles for {symbols[ex]} {tf} (not cached, and the exchange gave none)")
        venues.append(VenueInput(ex, symbols[ex], h.candles, h.open_interest, venue_params(params, ex),
                                 h.liquidations, h.label, tape_kind(ex)))  # fmt: skip
    return venues, notes


def _iso(ms: int) -> str:
    return format_time(ms)[:16] + "Z"


# ------------------------------------------------------------------------------------------ the model


@dataclass
class VenueSetRun:
    """The venues' engines over all history up to the end of the view."""

    inputs: VenueSetInputs
    venues: list[VenueModel]

    @property
    def model_label(self) -> str:
        if len(self.venues) == 1:
            e = self.venues[0].engine
            t = e.open_time
            a, b = (
                int(np.searchsorted(t, self.inputs.view_start_ms)),
                int(np.searchsorted(t, self.inputs.view_end_ms)),
            )
            return e.model_label(a, b)
        return model_mix(self.venues, self.inputs.view_start_ms, self.inputs.view_end_ms)

    def coverage(self) -> AggregateCoverage:
        return aggregate_coverage(self.venues, self.inputs.view_start_ms, self.inputs.view_end_ms)

    def view_bins(self, n: int, margin: float = 0.08) -> PriceBins:
        return view_bins(self.inputs, n, margin)


def view_bins(inputs: VenueSetInputs, n: int, margin: float = 0.08) -> PriceBins:
    """Bins over every venue's candles in the view plus a margin (auto_bins)."""
    lows, highs = [], []
    for c in inputs.view_candles():
        if len(c):
            lows.append(c.low)
            highs.append(c.high)
    return auto_bins(np.concatenate(lows), np.concatenate(highs), n, margin)


def run_and_render(
    inputs: VenueSetInputs, bins: PriceBins, columns: int | None = None, *, by_venue: bool = True
) -> tuple[VenueSetRun, AggregateGrid]:
    """The venues' engines and their grid in one pass (core.aggregate.build_and_render: each thread builds its
    venues and paints them at once, one thread per CPU core)."""
    check_backend_choice(inputs.backend, inputs.notes)
    venues, grid = build_and_render(inputs.venues, bins, inputs.time_columns(columns), by_venue=by_venue,
                                    workers=os.cpu_count() or 1)  # fmt: skip
    return VenueSetRun(inputs, venues), grid


def run_venues(inputs: VenueSetInputs) -> VenueSetRun:
    """The venues' engines, built side by side (one thread per CPU core)."""
    check_backend_choice(inputs.backend, inputs.notes)
    return VenueSetRun(inputs, build_venues(inputs.venues, workers=os.cpu_count() or 1))


__all__ = [
    "VenueSetInputs",
    "VenueSetRun",
    "from_inputs",
    "run_and_render",
    "view_bins",
    "is_venue_set",
    "load_venue_inputs",
    "venue_set",
    "run_venues",
]

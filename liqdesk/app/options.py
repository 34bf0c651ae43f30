"""Data options shared by the sub-commands, and turning them into model inputs.

The engine is always built over all history up to the end of the view (levels opened before the
view still matter); the view only selects what is exported or drawn.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from liqdesk.core.backend import BACKENDS, ENV_VAR, Backend, numpy_backend, resolve_request, select_backend
from liqdesk.core.params import ModelParams
from liqdesk.core.series import Candles, Liquidations, OpenInterest, timeframe_ms
from liqdesk.errors import ConfigError, DataError
from liqdesk.feeds import presets as presets_mod
from liqdesk.feeds.market_data import MarketData
from liqdesk.feeds.timeparse import parse_duration, parse_time
from liqdesk.feeds.validate import MIN_TIME_MS, ReadReport

DEFAULT_VIEW = "7d"


@dataclass
class Inputs:
    """What a command works on: a market's data (all its history up to the end of the view), the model's
    parameters and the view."""

    market: MarketData
    params: ModelParams
    view_start_ms: int
    view_end_ms: int  # exclusive
    notes: list[str] = field(default_factory=list)  # what this run says about its inputs (printed)
    backend: str = "auto"  # --backend, else LIQDESK_BACKEND, else auto (core.backend.select_backend)

    # The market's parts, as the commands read them.
    @property
    def candles(self) -> Candles:
        return self.market.candles

    @property
    def open_interest(self) -> OpenInterest | None:
        return self.market.open_interest

    @property
    def liquidations(self) -> Liquidations:
        return self.market.liquidations

    @property
    def label(self) -> str:
        """Where the data came from, for every output."""
        return self.market.label

    @property
    def symbol(self) -> str:
        return self.market.symbol

    @property
    def exchange(self) -> str:
        return self.market.exchange

    def view_bars(self) -> tuple[int, int]:
        t = self.candles.open_time
        return int(np.searchsorted(t, self.view_start_ms, "left")), int(
            np.searchsorted(t, self.view_end_ms, "left")
        )


def add_market_arguments(p: argparse.ArgumentParser, *, several: bool = False) -> None:
    """The required --exchange and --symbol of the commands that work on live markets (`several`: a comma
    list of exchanges is accepted)."""
    p.add_argument(
        "--exchange",
        required=True,
        metavar="ID[,ID…]" if several else "ID",
        help="ccxt exchange id: binanceusdm, bybit, okx, hyperliquid"
        + (" (several: a comma list, e.g. binanceusdm,bybit,okx,hyperliquid)" if several else ""),
    )
    p.add_argument("--symbol", required=True, metavar="SYM", help="symbol in ccxt form, e.g. BTC/USDT:USDT")


STORE_HELP = (
    "where candles, open interest and the liquidation tape are kept: sqlite:///path or postgresql://user@host/db "
    "(password from ~/.pgpass or PGPASSWORD; default: $LIQDESK_STORE, else the local SQLite cache)"
)


def add_store_option(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--store URL``: the store every command that uses the cache reads and writes (liqdesk.feeds.store)."""
    p.add_argument("--store", metavar="URL", default=None, help=STORE_HELP)


def add_data_options(parser: argparse.ArgumentParser, *, view: bool = True) -> None:
    g = parser.add_argument_group("data (default: the bundled real BTCUSDT sample)")
    g.add_argument(
        "--candles", metavar="FILE", help="candles file (Binance kline CSV, freqtrade JSON; .gz ok)"
    )
    g.add_argument(
        "--open-interest", metavar="FILE", help="open-interest file (Binance metrics/openInterestHist)"
    )
    g.add_argument(
        "--liquidations", metavar="FILE", help="real liquidations (forceOrder capture or JSON lines)"
    )
    g.add_argument("--sample", metavar="NAME", help="a bundled sample by name (see README)")
    g.add_argument(
        "--exchange",
        metavar="ID[,ID…]",
        help="use exchange data through the local cache (e.g. binanceusdm); a comma list sums the venues' "
        "models (binanceusdm,bybit,okx,hyperliquid)",
    )
    g.add_argument(
        "--symbol",
        metavar="SYM",
        default=None,
        help="symbol in ccxt form, e.g. BTC/USDT:USDT (with several venues: the coin, traded on each venue "
        "in its settle currency, or VENUE=SYMBOL items)",
    )
    g.add_argument(
        "--venue",
        action="append",
        default=[],
        metavar="NAME=CANDLES[,OPEN_INTEREST]",
        help="one venue's files (repeat for several; NAME is the venue's id, which picks its brackets)",
    )
    g.add_argument(
        "--venue-liquidations",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="a --venue's real liquidations (forceOrder capture or JSON lines)",
    )
    g.add_argument(
        "--timeframe", metavar="TF", default=None, help="bar interval for exchange data (1m, 5m, 15m, 1h, 4h)"
    )
    g.add_argument(
        "--ccxt-options",
        metavar="JSON",
        help="ccxt constructor options (urls, proxies, options), JSON; with several exchanges keyed by id, "
        'e.g. {"bybit": {...}, "okx": {...}}',
    )
    add_store_option(g)
    if view:
        v = parser.add_argument_group("view")
        v.add_argument(
            "--start", metavar="ISO", help="first time shown, ISO 8601 (UTC unless an offset is given)"
        )
        v.add_argument(
            "--end", metavar="ISO", help="end of the view (exclusive; default: after the last bar)"
        )
        v.add_argument(
            "--range",
            metavar="SPAN",
            help=f"view length before --end, e.g. 12h, 3d, 30d (default {DEFAULT_VIEW})",
        )
    m = parser.add_argument_group("model")
    m.add_argument(
        "--preset",
        default=presets_mod.DEFAULT_PRESET,
        help="leverage preset: coinglass, all, high or a user preset",
    )
    m.add_argument("--half-life", type=float, metavar="HOURS", help="decay alive levels with this half-life")
    m.add_argument(
        "--taker-floor", type=float, metavar="F", help="taker-share floor f in [0, 0.5) (default 0.2)"
    )
    m.add_argument(
        "--entry-points", type=int, metavar="N", help="spread entries over [low, high] at N points"
    )
    m.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="array backend for the heatmap: auto (CuPy if a CUDA GPU works, else NumPy), numpy, "
        "cupy (default: $LIQDESK_BACKEND or auto)",
    )


def input_files(args: argparse.Namespace) -> list[str]:
    """The data files this run reads (an output must never replace one of them)."""
    names = ("candles", "open_interest", "liquidations")
    files = [str(getattr(args, n)) for n in names if getattr(args, n, None)]
    for spec in getattr(args, "venue", None) or []:
        files += [f.strip() for f in spec.partition("=")[2].split(",") if f.strip()]
    files += [spec.partition("=")[2].strip() for spec in getattr(args, "venue_liquidations", None) or []]
    return files


def parse_prices(text: str, option: str = "--prices") -> tuple[float, float]:
    """``LO:HI`` → (lo, hi) with 0 < lo < hi. ConfigError otherwise."""
    parts = str(text).split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        lo, hi = (
            float(parts[0].replace(",", "").replace("_", "")),
            float(parts[1].replace(",", "").replace("_", "")),
        )
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected LO:HI, e.g. 60000:80000") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
        raise ConfigError(f"{option} {text!r}: need 0 < LO < HI")
    return lo, hi


def model_params(args: argparse.Namespace) -> ModelParams:
    overrides = {}
    half_life = getattr(args, "half_life", None)
    if half_life is not None:
        if not (math.isfinite(half_life) and 0 < half_life <= 100 * 365 * 24):
            raise ConfigError(
                f"--half-life {half_life:g}: give a number of hours above 0 (at most 100 years)"
            )
        overrides["half_life_h"] = half_life
    floor = getattr(args, "taker_floor", None)
    if floor is not None:
        if not (math.isfinite(floor) and 0 <= floor < 0.5):
            raise ConfigError(f"--taker-floor {floor:g}: give a number in [0, 0.5)")
        overrides["taker_floor"] = floor
    if getattr(args, "entry_points", None) is not None:
        overrides["entry_points"] = args.entry_points
    return presets_mod.params_for(args.preset, **overrides)


def check_count(value: int, option: str, lo: int, hi: int) -> int:
    """A whole-number option within [lo, hi], else one clear ConfigError."""
    if not lo <= value <= hi:
        raise ConfigError(f"{option} {value}: give a whole number from {lo:,} to {hi:,}")
    return value


def check_timeframe(timeframe: str, option: str = "--timeframe") -> int:
    try:
        return timeframe_ms(timeframe)
    except ValueError as exc:
        raise ConfigError(f"{option} {timeframe}: {exc}") from None


def load_inputs(args: argparse.Namespace) -> Inputs:
    params = model_params(args)
    if getattr(args, "timeframe", None):
        check_timeframe(args.timeframe)
    notes_before: list[str] = []
    if getattr(args, "ccxt_options", None) is not None and not getattr(args, "exchange", None):
        from liqdesk.feeds.exchange_config import parse_options_json

        parse_options_json(args.ccxt_options)  # broken JSON is an error even where it would not be used
        notes_before.append("--ccxt-options is ignored without --exchange")
    if getattr(args, "exchange", None):
        market = _from_exchange(args)
        params = params.with_(brackets=presets_mod.venue_brackets(market.exchange))  # the venue's formula
    elif getattr(args, "candles", None):
        market = _from_files(args)
    else:
        market = _from_sample(args)
    candles = market.candles
    if len(candles) < 2:
        raise DataError(f"{market.label}: fewer than two candles")
    start, end = view_window(args, candles)
    upto = candles.between(None, end)
    if len(upto) == 0 or int(np.searchsorted(upto.open_time, start, "left")) >= len(upto):
        raise DataError(
            f"no candles between {_iso(start)} and {_iso(end)} in {market.label} "
            f"(data spans {_iso(int(candles.open_time[0]))} → {_iso(int(candles.close_time[-1]))})"
        )
    notes = notes_before
    if market.open_interest is None:
        notes.append("no open-interest data: openings estimated from volume (volume model)")
    backend, _ = resolve_request(getattr(args, "backend", None), os.environ)
    return Inputs(replace(market, candles=upto), params, start, end, notes, backend=backend)


def choose_backend(
    requested: str | None,
    environ: Mapping[str, str] | None = None,
    saved: str | None = None,
    **select: object,
) -> tuple[Backend, str]:
    """The process's compute backend and a note for the user ("" when none).

    Precedence: `requested` (--backend), then LIQDESK_BACKEND, then `saved` (the app's Settings →
    Model → Compute backend), then auto. `cupy` that cannot run raises ConfigError when it came from
    the command line or the environment (one line on stderr, exit 2); when it came from the saved
    setting the app still opens, on NumPy, with the note saying why. `auto` falls back to NumPy
    with the reason kept in Backend.reason. `select` goes to select_backend (tests: importer=).
    """
    name, source = resolve_request(requested, environ)
    if source == "default" and saved in BACKENDS:
        name, source = str(saved), "settings"
    try:
        be = select_backend(name, **select)  # type: ignore[arg-type]
    except ConfigError as exc:
        if source != "settings":
            where = f"LIQDESK_BACKEND={name}" if source == ENV_VAR else f"--backend {name}"
            raise ConfigError(f"{where}: {exc}") from None
        note = f"Settings → Model asks for cupy; using NumPy: {exc}"
        return numpy_backend(name, source, reason=str(exc)), note
    return replace(be, source=source), ""


def view_window(args: argparse.Namespace, candles: Candles) -> tuple[int, int]:
    end = parse_time(args.end, what="--end") if getattr(args, "end", None) else int(candles.close_time[-1])
    if getattr(args, "start", None):
        start = parse_time(args.start, what="--start")
        if getattr(args, "range", None):
            raise ConfigError("give --start or --range, not both")
    else:
        start = end - parse_duration(getattr(args, "range", None) or DEFAULT_VIEW, what="--range")
    if start >= end:
        raise ConfigError(f"empty time range: --start {_iso(start)} is not before --end {_iso(end)}")
    return start, end


def _iso(ms: int) -> str:
    from liqdesk.feeds.timeparse import format_time

    return format_time(ms)[:16] + "Z"


def _from_sample(args: argparse.Namespace) -> MarketData:
    from liqdesk.feeds.sample import load_sample

    name = getattr(args, "sample", None)
    s = load_sample(name) if name else load_sample()
    if getattr(args, "open_interest", None) or getattr(args, "liquidations", None):
        raise ConfigError("--open-interest / --liquidations need --candles (the sample brings its own)")
    return s


def _from_files(args: argparse.Namespace) -> MarketData:
    from liqdesk.feeds import files

    candles, report = files.read_candles_report(args.candles)
    print_report(report)
    oi = None
    if args.open_interest:
        oi, report = files.read_open_interest_report(args.open_interest)
        print_report(report)
    symbol = args.symbol or "BTC/USDT:USDT"
    liqs = Liquidations.empty()
    if args.liquidations:
        liqs, report = files.read_liquidations_report(args.liquidations, symbol=symbol)
        print_report(report)
    label = f"file {args.candles}" + (f" + {args.open_interest}" if oi is not None else "")
    return MarketData(candles, oi, liqs, symbol, "file", label, offline=True, source_kind="file")


def print_report(report: ReadReport, limit: int = 5) -> None:
    """What a reader rejected, dropped or noticed: one readable line each on stderr (file:line: reason), the
    rest counted in one line."""
    for level, line in report.lines(limit):
        print(f"liqdesk: {level}: {line}", file=sys.stderr)


def _from_exchange(args: argparse.Namespace) -> MarketData:
    from liqdesk.feeds.history import load_history
    from liqdesk.feeds.venue_set import venue_ccxt_options

    if getattr(args, "candles", None):
        raise ConfigError("give --exchange or --candles, not both")
    symbol = args.symbol or "BTC/USDT:USDT"
    tf = args.timeframe or "5m"
    check_timeframe(tf)
    end = parse_time(args.end, what="--end") if getattr(args, "end", None) else _now_ms()
    if getattr(args, "start", None):
        start = parse_time(args.start, what="--start")
        span = end - start
        if span <= 0:
            raise ConfigError(f"empty time range: --start {_iso(start)} is not before --end {_iso(end)}")
    else:
        span = parse_duration(getattr(args, "range", None) or DEFAULT_VIEW, what="--range")
    # Levels opened before the view still matter: fetch as much history again as a warm-up
    # (at least a day), through the cache; there is no market data before 2009.
    fetch_span = span + max(span, 86_400_000)
    fetch_start = max(end - fetch_span, MIN_TIME_MS)
    if fetch_start >= end:
        raise DataError(f"--end {_iso(end)} is before any market data (2009)")
    options = venue_ccxt_options(args.exchange, getattr(args, "ccxt_options", None))
    hist = load_history(
        args.exchange, symbol, tf, fetch_start, end, ccxt_options=options, progress=_progress_bar(),
        store=getattr(args, "store", None),
    )  # fmt: skip
    if hist.offline and len(hist.candles) < 2:
        # nothing to fall back on: one line that says why (the exchange's error), not two
        why = next(w for w in hist.notes if w.startswith("offline")).removeprefix("offline: ")
        why = why.removesuffix("; showing cached data")
        raise DataError(f"cannot load history from {args.exchange}: {why}; nothing cached for {symbol} {tf}")
    for w in hist.notes:
        print(f"liqdesk: warning: {w}", file=sys.stderr)
    return hist


def _now_ms() -> int:
    from liqdesk.feeds.timeparse import now_ms

    return now_ms()


def _progress_bar():  # type: ignore[no-untyped-def]
    """A one-line progress bar on stderr (only when stderr is a terminal)."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int, text: str) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        end = "\n" if total and done >= total else ""
        print(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {text[:40]:<40}",
            end=end,
            file=sys.stderr,
        )

    return show

"""`liqdesk snapshot`: render the chart window offscreen to a PNG."""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liqdesk.errors import ConfigError, DataError
from liqdesk.feeds.atomic import WriteResult

if TYPE_CHECKING:
    from liqdesk.app.options import Inputs
    from liqdesk.core.aggregate_engine import AggregateEngine
    from liqdesk.ui.window import MainWindow

MAX_SIDE = 8000


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from liqdesk.app.options import add_data_options

    p = subparsers.add_parser(
        "snapshot",
        help="render the chart window to a PNG (works without a display)",
        description="Render the chart window (candles over the estimated liquidation heatmap, volume, "
        "liquidation map) offscreen and save it as a PNG. Uses the bundled sample unless data files are given.",
    )
    p.add_argument("--out", required=True, metavar="FILE.png", help="where to write the PNG")
    p.add_argument(
        "--size", default="1600x900", metavar="WxH", help="image size in pixels (default 1600x900)"
    )
    p.add_argument("--colormap", default=None, help="liqdesk (default), viridis, inferno or longshort")
    p.add_argument("--transform", default=None, choices=["sqrt", "log", "linear"], help="value transform")
    p.add_argument("--utc", action="store_true", help="time axis in UTC (default: local time)")
    p.add_argument(
        "--crosshair", metavar="ISO,PRICE", help="show the crosshair readout at this time and price"
    )
    p.add_argument(
        "--line",
        action="append",
        default=[],
        metavar="KIND:PRICE",
        help="draw a price line (repeatable); KIND is stop, target, entry or alert, e.g. --line stop:64000",
    )
    p.add_argument(
        "--at",
        metavar="ISO",
        help="the chart as it stood at this instant (replay): only the bars closed by then, the open interest "
        "known at their closes and the real liquidations before it; the view ends there (--range before it, "
        "or from --start). Nothing after the instant is read into the picture",
    )
    add_data_options(p)
    p.set_defaults(func=run)


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text or "")
    if not m:
        raise ConfigError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1600x900")
    w, h = int(m.group(1)), int(m.group(2))
    if not (320 <= w <= MAX_SIDE and 240 <= h <= MAX_SIDE):
        raise ConfigError(f"--size {text}: width must be 320..{MAX_SIDE} and height 240..{MAX_SIDE} pixels")
    return w, h


def check_out_path(text: str, inputs: list[str] | None = None) -> Path:
    """The output PNG, checked before any work: a .png name, not a folder, not an input of the run, and a
    folder that exists or can be created (it is created when the picture is written)."""
    from liqdesk.feeds.atomic import same_file

    path = Path(text).expanduser()
    if path.suffix.lower() != ".png":
        raise ConfigError(f"--out {text}: the file name must end in .png")
    if path.is_dir():
        raise DataError(f"--out {text}: is a folder")
    for inp in inputs or []:
        if path.exists() and same_file(path, inp):
            raise ConfigError(f"--out {text} is also an input of this run; write the picture to another file")
    parent = path.parent if str(path.parent) else Path(".")
    existing = parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DataError(f"--out {text}: {existing} is not a folder")
    if not os.access(existing, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise DataError(f"--out {text}: not writable")
    return path


LINE_KINDS = ("stop", "target", "entry", "alert")


def parse_lines(specs: list[str]) -> list[tuple[str, float]]:
    out = []
    for spec in specs or []:
        kind, _, price = spec.partition(":")
        kind = kind.strip().lower()
        if kind not in LINE_KINDS:
            raise ConfigError(f"--line {spec!r}: KIND must be one of {', '.join(LINE_KINDS)}")
        try:
            value = float(price.replace(",", "").replace("_", ""))
        except ValueError:
            raise ConfigError(f"--line {spec!r}: expected KIND:PRICE, e.g. stop:64000") from None
        if not (value > 0 and value < float("inf")):
            raise ConfigError(f"--line {spec!r}: the price must be positive")
        out.append((kind, value))
    return out


def run(args: argparse.Namespace) -> int:
    width, height = parse_size(args.size)
    from liqdesk.app.options import input_files

    out = check_out_path(args.out, input_files(args))
    lines = parse_lines(getattr(args, "line", []))
    if (
        not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
        and sys.platform.startswith("linux")
    ):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

    from liqdesk.app.options import choose_backend, load_inputs
    from liqdesk.app.venue_inputs import is_venue_set
    from liqdesk.core.series import TIMEFRAME_MS, timeframe_name
    from liqdesk.ui.data import DEFAULT_RANGE

    # The compute backend first: a requested cupy that cannot run is a one-line error before any work.
    backend, _ = choose_backend(getattr(args, "backend", None), os.environ)

    if not args.start and not args.range:
        args.range = DEFAULT_RANGE  # the window's own default, so the toolbar tells the truth
    at = _replay_instant(args)
    aggregate = None
    if is_venue_set(args):
        if at is not None:
            raise ConfigError("--at is for one venue; the aggregate of several venues has no replay yet")
        inputs, aggregate = _venue_inputs(args)
    else:
        inputs = load_inputs(args)
        if at is not None:
            inputs = _as_of(inputs, at)
    timeframe = args.timeframe or timeframe_name(inputs.candles.interval_ms)
    if timeframe not in TIMEFRAME_MS:
        raise ConfigError(f"--timeframe {timeframe}: expected one of 1m, 5m, 15m, 1h, 4h")

    from PySide6 import QtWidgets

    from liqdesk.ui.data import RANGES, FixedSource
    from liqdesk.ui.session import wait_until_drawn
    from liqdesk.ui.theme import configure_pyqtgraph
    from liqdesk.ui.window import MainWindow, ViewSettings
    from liqdesk.ui.worker import set_backend

    set_backend(backend)

    # A picture of data loaded once: never live (an exchange's history is said "not live" like files are).
    market = replace(inputs.market, offline=True)
    ok, why = market.timeframe_status(timeframe)
    if not ok:
        raise DataError(why)
    configure_pyqtgraph()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["liqdesk"])
    # persist=False: a snapshot neither shows nor changes the user's saved lines
    settings = ViewSettings(
        timeframe=timeframe, preset=inputs.params.preset, utc=bool(args.utc), persist=False
    )
    if getattr(args, "range", None) in RANGES:
        settings.range_name = args.range  # the toolbar shows the range drawn
    if args.colormap:
        from liqdesk.ui.theme import COLORMAPS

        if args.colormap not in COLORMAPS:
            raise ConfigError(f"--colormap {args.colormap}: expected one of {', '.join(COLORMAPS)}")
        settings.colormap = args.colormap
    if args.transform:
        settings.transform = args.transform
    window = MainWindow(FixedSource(market), settings, params=inputs.params)
    try:
        window.resize(width, height)
        window.show()
        app.processEvents()
        window.show_time_range(inputs.view_start_ms, inputs.view_end_ms)
        if not wait_until_drawn(window, 60.0):
            raise DataError("the chart did not finish drawing within 60 s")
        if aggregate is not None:
            _show_aggregate(window, aggregate)
        _redraw_for_settled_layout(window)
        if lines:
            for kind, price in lines:
                window.lines.add_line(kind, price)
            window.lines.select(None)
            wait_until_drawn(window, 10.0)  # the advice map comes from the worker
            app.processEvents()
        if args.crosshair:
            _place_crosshair(window, args.crosshair)
            wait_until_drawn(window, 10.0)
        written = _save(window, out, width, height, input_files(args))
    finally:
        window.close()
    note = f"; {written.note()}" if written.note() else ""
    print(f"wrote {out} ({width}x{height}{note})")
    return 0


def _redraw_for_settled_layout(window: MainWindow) -> None:
    """The frame the final layout asks for. The first frames are sized while the window still lays itself
    out, and the window keeps a frame within its resolution tolerance: without this the same data could
    give pictures a bin apart, depending on timing."""
    from liqdesk.ui.frame_policy import frame_request
    from liqdesk.ui.session import wait_until_drawn

    for _ in range(5):
        shown = window.frame
        want = frame_request(window.frames.view(), window.frames.style(), 0)
        if want is None or (
            shown is not None and replace(want, generation=shown.request.generation) == shown.request
        ):
            return
        window.request_frame(force=True)
        if not wait_until_drawn(window, 60.0):
            raise DataError("the chart did not finish drawing within 60 s")


def _replay_instant(args: argparse.Namespace) -> int | None:
    """--at as epoch ms; the data is then loaded up to that instant (the view's end)."""
    if not getattr(args, "at", None):
        return None
    from liqdesk.feeds.timeparse import parse_time

    if args.end:
        raise ConfigError("give --at or --end, not both (--at ends the view at that instant)")
    at = parse_time(args.at, what="--at")
    args.end = args.at
    return at


def _as_of(inputs: Inputs, at: int) -> Inputs:
    """The inputs as they stood at `at` (core.replay.cut_at): everything the window is given ends there."""
    from liqdesk.core.replay import cut_at
    from liqdesk.feeds.timeparse import format_time

    cut = cut_at(inputs.candles, inputs.open_interest, inputs.liquidations, at, inputs.params.oi_max_gap_bars)
    if len(cut.candles) < 2:
        raise DataError(f"--at {format_time(at)}: fewer than two bars of {inputs.label} had closed by then")
    market = replace(
        inputs.market, candles=cut.candles, open_interest=cut.open_interest, liquidations=cut.liquidations
    )
    return replace(inputs, market=market)


def _venue_inputs(args: argparse.Namespace) -> tuple[Inputs, AggregateEngine]:
    """Several venues: the window's inputs are the first venue's (its candles are the chart's bars) and the
    aggregate of every venue's engine is what it draws (each venue at its last bar closed by each bar's end)."""
    from liqdesk.app.options import Inputs
    from liqdesk.app.venue_inputs import load_venue_inputs, run_venues
    from liqdesk.core.aggregate_engine import AggregateEngine
    from liqdesk.feeds.market_data import MarketData

    vs = load_venue_inputs(args)
    run_ = run_venues(vs)
    ref = next(i for i, v in enumerate(vs.venues) if len(v.candles.between(vs.view_start_ms, vs.view_end_ms)))
    v = vs.venues[ref]
    coin = v.symbol.split("/")[0]
    notes = [*vs.notes, *run_.coverage().lines()]
    if ref:
        notes.insert(0, f"chart candles: {v.name} (the first venue with bars in the view)")
    market = MarketData(v.candles, v.open_interest, vs.liquidations, f"{coin} · {len(vs.venues)} venues", vs.exchange,
                        vs.label, offline=True, source_kind="file")  # fmt: skip
    inputs = Inputs(market, vs.params, vs.view_start_ms, vs.view_end_ms, notes, vs.backend)
    return inputs, AggregateEngine(run_.venues, ref)


def _show_aggregate(window: Any, aggregate: AggregateEngine) -> None:
    """Draw the aggregate in the window through its worker: the engine the frames are computed from is replaced
    in the worker's order (after every job before it), then a frame is asked for."""
    from liqdesk.ui.session import wait_until_drawn

    worker = window.worker
    worker.run_in_order(lambda: setattr(worker, "engine", aggregate))
    window.request_frame(force=True)
    if not wait_until_drawn(window, 60.0):
        raise DataError("the aggregate did not finish drawing within 60 s")


def _save(window: object, out: Path, width: int, height: int, inputs: list[str]) -> WriteResult:
    """The PNG through a temp file renamed into place when complete (never a partial picture)."""
    from liqdesk.feeds.atomic import AtomicWrite
    from liqdesk.ui.session import grab_png

    try:
        with AtomicWrite(out, inputs=inputs) as w:
            grab_png(window, str(w.tmp), width, height)  # type: ignore[arg-type]
    except OSError as exc:
        kept = " (the previous file is unchanged)" if out.exists() else ""
        raise DataError(f"cannot write {out}: {exc.strerror or exc}{kept}") from None
    assert w.result is not None
    return w.result


def _place_crosshair(window: object, spec: str) -> None:
    from liqdesk.feeds.timeparse import parse_time

    try:
        when, price = spec.split(",")
        t, p = parse_time(when.strip(), what="--crosshair"), float(price)
    except ValueError:
        raise ConfigError(f"--crosshair {spec!r}: expected ISO-TIME,PRICE") from None
    window.point_crosshair_at(t, p)  # type: ignore[attr-defined]

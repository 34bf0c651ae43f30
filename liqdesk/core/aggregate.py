"""Several venues' models summed: one heatmap and one liquidation map for a coin across venues.

Each venue keeps its own engine on its own candles, open interest, taker flow and liquidation formula
(its brackets and margin rule in its ModelParams). The aggregate is their sum on a common grid: the same
price bins and the same time columns for every venue.

Time columns are wall-clock spans. Slots of one bar interval run from an origin on the venues' bar phase
(`time_columns`); a column groups consecutive slots and shows the state at its end instant, the end of
its last slot. Each venue contributes the state after its last bar that closed by that instant
(`LiquidationEngine.bars_closed_by`): nothing before its first bar, and across a gap or after its last bar
the state it had then (its levels are still alive as far as anyone knows; the coverage says which spans
have no bars). Venues whose bars open and close at different times line up this way; a single venue
whose bars are contiguous gets exactly one column per bar, as `grid.column_bars` gives it.

The grids are painted into one buffer: every venue's levels are added into the same float32 array
(`paint.paint_side(out=...)`), so the aggregate costs each venue's painting and no extra grids. Per-venue
parts are kept when asked for (the export's breakdown, which venue holds a cluster).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from liqdesk.core import display, hostmem
from liqdesk.core.calibration_config import CalibrationConfig
from liqdesk.core.density_snapshots import Snapshots, density_snapshots
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import PriceBins, column_bars
from liqdesk.core.heatmap import visible_levels
from liqdesk.core.liqmap import LiquidationMap, Magnet, liquidation_map
from liqdesk.core.openings import MODEL_OI, MODEL_VOLUME
from liqdesk.core.paint import paint_side, release_scratch
from liqdesk.core.params import ModelParams
from liqdesk.core.series import LONG, SHORT, Candles, Liquidations, OpenInterest

# What a venue's recorded liquidation tape is (the venues' facts come from feeds).
TAPE_COMPLETE = "complete"  # every liquidation (Bybit allLiquidation)
TAPE_SAMPLE = "sample"  # a throttled sample (Binance, OKX: at most one per symbol per second)
TAPE_NONE = "none"  # the venue publishes no liquidation stream (Hyperliquid)
TAPE_FILE = "file"  # read from a file: whatever it holds


@dataclass(frozen=True, eq=False)
class VenueModel:
    """One venue's part of an aggregate: its engine (built on its own bars) and its recorded tape."""

    name: str  # the venue's id (binanceusdm, bybit, okx, hyperliquid) or a name given to a file
    symbol: str
    engine: LiquidationEngine
    liquidations: Liquidations = field(default_factory=Liquidations.empty)
    label: str = ""  # where its data came from
    tape: str = TAPE_FILE


# ---------------------------------------------------------------------------------------------- time


@dataclass(frozen=True)
class TimeColumns:
    """Wall-clock time columns: column k spans [start_ms[k], end_ms[k]) and shows the state at end_ms[k]."""

    interval_ms: int
    start_ms: np.ndarray  # (T,) int64, the open of the column's first slot
    end_ms: np.ndarray  # (T,) int64, the close of its last slot

    def __len__(self) -> int:
        return len(self.start_ms)

    @property
    def time_ms(self) -> np.ndarray:
        """The columns' times as exports give them (the open of each column's first slot)."""
        return self.start_ms

    def venue_bars(self, engine: LiquidationEngine) -> np.ndarray:
        """(T,) the venue's bar shown in each column: its last bar closed by the column's end (−1: none)."""
        return engine.bars_closed_by(self.end_ms)


def time_columns(
    start_ms: int, end_ms: int, interval_ms: int, columns: int | None = None, phase_ms: int = 0
) -> TimeColumns:
    """Slots of `interval_ms` whose open lies in [start_ms, end_ms), the first one on the bar phase
    (open ≡ phase_ms mod interval_ms), grouped into at most `columns` columns of near-equal length
    (one column per slot by default). ValueError when no slot opens in the range."""
    if interval_ms <= 0:
        raise ValueError("the bar interval must be positive")
    first = start_ms + (phase_ms - start_ms) % interval_ms
    n = -(-(end_ms - first) // interval_ms) if end_ms > first else 0
    if n <= 0:
        raise ValueError("no bar slot opens in the time range")
    a, b = column_bars(0, n, columns)
    return TimeColumns(
        interval_ms,
        (first + a * interval_ms).astype(np.int64),
        (first + (b + 1) * interval_ms).astype(np.int64),
    )


def bar_phase(engines: Sequence[LiquidationEngine]) -> int:
    """The phase of the earliest venue's bars (open time mod interval): where the slots start."""
    firsts = [(int(e.open_time[0]), e.interval_ms) for e in engines if e.n_bars]
    if not firsts:
        return 0
    t, interval = min(firsts)
    return t % interval


# ---------------------------------------------------------------------------------------------- grids


@dataclass(frozen=True)
class AggregateGrid:
    """The summed heatmap (T × P float32 USD per side) and, when asked for, each venue's part."""

    columns: TimeColumns
    bins: PriceBins
    venues: tuple[str, ...]
    long: np.ndarray  # (T, P) float32
    short: np.ndarray
    venue_bars: np.ndarray  # (V, T) each venue's bar shown per column (−1: none yet)
    long_by_venue: np.ndarray | None = None  # (V, T, P) float32
    short_by_venue: np.ndarray | None = None

    @property
    def time_ms(self) -> np.ndarray:
        return self.columns.time_ms

    @property
    def price(self) -> np.ndarray:
        return self.bins.centers

    @property
    def total(self) -> np.ndarray:
        out: np.ndarray = self.long + self.short
        return out


def _paint_venue(
    engine: LiquidationEngine, bars: np.ndarray, bins: PriceBins, side: int, out: np.ndarray
) -> None:
    """Add one venue's side into `out` ((T, P), any strides) over the columns where it has a bar."""
    if engine.backend.is_gpu:
        raise ValueError("float USD grids come from CPU engines")
    c0 = int(np.searchsorted(bars, 0, "left"))  # bars is non-decreasing, −1 before the venue's first bar
    if c0 >= len(bars) or not engine.n_levels:
        return
    paint_side(engine.levels(), engine.log_factor, bars[c0:], bins.lo, bins.width, bins.n, side, out=out[c0:])


def render_aggregate_grid(
    venues: Sequence[VenueModel],
    bins: PriceBins,
    columns: TimeColumns,
    *,
    by_venue: bool = True,
    keep_scratch: bool = True,
    workers: int = 1,
) -> AggregateGrid:
    """USD grids of the venues' CPU engines on one grid. by_venue: each venue painted into its own slice
    of a (V, T, P) array and the totals summed from them in venue order (float32); otherwise every venue
    is painted into the same two (T, P) buffers (the window's need: no per-venue grids). With `workers` ≥ 2
    the long and the short side are painted side by side, in two threads (the painter releases the GIL)."""
    t, p, v = len(columns), bins.n, len(venues)
    bars = np.stack([columns.venue_bars(vm.engine) for vm in venues]) if v else np.zeros((0, t), np.int64)
    shape = (v, t, p) if by_venue else (t, p)
    out = [hostmem.zeros(shape, np.float32) for _ in (LONG, SHORT)]

    def paint(k: int) -> None:
        side = (LONG, SHORT)[k]
        for i, vm in enumerate(venues):
            _paint_venue(vm.engine, bars[i], bins, side, out[k][i] if by_venue else out[k])
        if not keep_scratch:
            release_scratch()

    if workers >= 2:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(paint, (0, 1)))  # the pool's threads (and their scratch) end here
    else:
        paint(0)
        paint(1)
    names = tuple(vm.name for vm in venues)
    if not by_venue:
        return AggregateGrid(columns, bins, names, out[0], out[1], bars)
    if v == 1:
        return AggregateGrid(columns, bins, names, out[0][0], out[1][0], bars, *out)
    totals = [part.sum(axis=0, dtype=np.float32) for part in out]
    return AggregateGrid(columns, bins, names, totals[0], totals[1], bars, *out)


def paint_aggregate(
    venues: Sequence[VenueModel], bins: PriceBins, columns: TimeColumns, transform: str
) -> tuple[Any, Any]:
    """Both sides' summed notional as (P, T) float32 grids (an image's layout), value-transformed: what
    `kernels.paint` gives for one engine. CPU engines paint into one buffer per side; engines on a GPU
    paint each venue on the device (untransformed) and the venues are added there."""
    display.check_transform(transform)
    engines = [vm.engine for vm in venues]
    if engines and all(e.backend.is_gpu for e in engines):
        xp = engines[0].xp
        sides: list[Any] = [None, None]
        for e in engines:
            bars = columns.venue_bars(e)
            c0 = int(np.searchsorted(bars, 0, "left"))
            if c0 >= len(bars) or not e.n_levels:
                continue
            tl, ts = e.kernels.paint(e.levels(), e.log_factor, xp.asarray(bars[c0:]), bins.lo, bins.width,
                                     bins.n, "linear")  # fmt: skip
            for k, part in enumerate((tl, ts)):
                if sides[k] is None:
                    sides[k] = xp.zeros((bins.n, len(columns)), xp.float32)
                sides[k][:, c0:] += part
        out = [s if s is not None else xp.zeros((bins.n, len(columns)), xp.float32) for s in sides]
        return (display.transform(out[0], transform, xp, inplace=True),
                display.transform(out[1], transform, xp, inplace=True))  # fmt: skip
    grids = []
    for side in (LONG, SHORT):
        image = np.zeros((bins.n, len(columns)), np.float32)
        for vm in venues:
            _paint_venue(vm.engine, columns.venue_bars(vm.engine), bins, side, image.T)
        grids.append(display.transform(image, transform, inplace=True))
    release_scratch()
    return grids[0], grids[1]


@dataclass(frozen=True)
class AggregateView:
    """The summed heatmap as the chart draws it (see heatmap.HeatmapView): uint8 codes on the host and
    the frame values kept for re-colouring."""

    columns: TimeColumns
    bins: PriceBins
    transform: str
    two_tone: bool
    levels: tuple[float, float]
    values: Any  # (P, T) float32 frame values
    image: np.ndarray  # (P, T) uint8


def render_aggregate_view(
    venues: Sequence[VenueModel],
    bins: PriceBins,
    columns: TimeColumns,
    *,
    transform: str = "sqrt",
    levels: tuple[float, float] | None = None,
    two_tone: bool = False,
) -> AggregateView:
    """The picture of the summed heatmap: painted into one buffer per side, transformed, levels from the
    percentiles of its cells (when not given), quantised."""
    tlong, tshort = paint_aggregate(venues, bins, columns, transform)
    engines = [vm.engine for vm in venues]
    xp = engines[0].xp if engines else np
    if levels is None:
        levels = visible_levels(tlong, tshort, np.arange(len(columns)), bins, None, None, xp)
    values = display.frame_values(tlong, tshort, two_tone, xp, out=tlong)
    del tshort
    codes = display.quantise_values(values, levels, two_tone, xp)
    image = engines[0].backend.download(codes) if engines else np.ascontiguousarray(codes)
    return AggregateView(
        columns, bins, transform, two_tone, (float(levels[0]), float(levels[1])), values, image
    )


# ---------------------------------------------------------------------------------------------- the map


@dataclass(frozen=True)
class AggregateMap:
    """The liquidation map at one instant: each venue's (at its last bar closed by then) and their sum.

    `total` is a LiquidationMap whose tiers are the preset's (each venue prices a tier by its own rule) and
    whose price is the reference venue's close (the first venue with a bar by then)."""

    time_ms: int
    venues: tuple[str, ...]
    maps: tuple[LiquidationMap | None, ...]  # None: the venue has no bar closed by time_ms
    total: LiquidationMap

    @property
    def long_by_venue(self) -> np.ndarray:
        """(V, P) long notional per bin of each venue."""
        return np.stack([m.long if m is not None else np.zeros(self.total.bins.n) for m in self.maps])

    @property
    def short_by_venue(self) -> np.ndarray:
        return np.stack([m.short if m is not None else np.zeros(self.total.bins.n) for m in self.maps])

    def holders(self, side: int, low: float, high: float) -> dict[str, float]:
        """Which venue holds the `side` notional between two prices (e.g. a magnet's edges): USD per venue."""
        centers = self.total.bins.centers
        inside = (centers >= low) & (centers < high)
        by = self.long_by_venue if side == LONG else self.short_by_venue
        return {name: float(by[i, inside].sum()) for i, name in enumerate(self.venues)}

    def magnet_holders(self, magnet: Magnet) -> dict[str, float]:
        return self.holders(magnet.side, magnet.low, magnet.high)


def aggregate_map(venues: Sequence[VenueModel], bins: PriceBins, time_ms: int | None = None) -> AggregateMap:
    """The map of every venue at `time_ms` (default: the latest bar close among the venues), summed.
    ValueError when no venue has a bar closed by then."""
    if not venues:
        raise ValueError("an aggregate needs at least one venue")
    if time_ms is None:
        time_ms = max(
            int(vm.engine.open_time[-1]) + vm.engine.interval_ms for vm in venues if vm.engine.n_bars
        )
    maps: list[LiquidationMap | None] = []
    for vm in venues:
        bar = int(vm.engine.bars_closed_by([time_ms])[0]) if vm.engine.n_bars else -1
        maps.append(liquidation_map(vm.engine, bins, bar) if bar >= 0 else None)
    return _sum_maps(tuple(vm.name for vm in venues), maps, bins, int(time_ms))


def _sum_maps(
    names: tuple[str, ...], maps: list[LiquidationMap | None], bins: PriceBins, time_ms: int
) -> AggregateMap:
    present = [m for m in maps if m is not None]
    if not present:
        raise ValueError("no venue has a bar closed by that time")
    ref = present[0]
    k = max(m.long_by_tier.shape[0] for m in present)
    long_t = np.zeros((k, bins.n))
    short_t = np.zeros((k, bins.n))
    for m in present:
        long_t[: m.long_by_tier.shape[0]] += m.long_by_tier
        short_t[: m.short_by_tier.shape[0]] += m.short_by_tier
    labels = max((m.tier_labels for m in present), key=len)
    total = LiquidationMap(
        bar=ref.bar, time_ms=int(time_ms), price_now=ref.price_now, bins=bins, tier_labels=list(labels),
        long_by_tier=long_t, short_by_tier=short_t, total_long=sum(m.total_long for m in present),
        total_short=sum(m.total_short for m in present),
    )  # fmt: skip
    return AggregateMap(int(time_ms), names, tuple(maps), total)


def notional_within(
    venues: Sequence[VenueModel], time_ms: int, pct: float, price: float
) -> dict[str, tuple[float, float]]:
    """Per venue, long notional within pct % below `price` and short notional within pct % above, at each
    venue's last bar closed by `time_ms` (one reference price for all venues)."""
    lo, hi = price * (1 - pct / 100.0), price * (1 + pct / 100.0)
    out = {}
    for vm in venues:
        e = vm.engine
        bar = int(e.bars_closed_by([time_ms])[0]) if e.n_bars else -1
        if bar < 0:
            out[vm.name] = (0.0, 0.0)
            continue
        idx, usd = e.alive_at(bar)
        lv = e.levels()
        p, side = lv["price"][idx], lv["side"][idx]
        out[vm.name] = (
            float(usd[(side == LONG) & (p >= lo)].sum()),
            float(usd[(side == SHORT) & (p <= hi)].sum()),
        )
    return out


# ---------------------------------------------------------------------------------------------- coverage


@dataclass(frozen=True)
class VenueCoverage:
    """What covers one venue's part of a time range: the model per span, the spans without bars, the tape."""

    venue: str
    start_ms: int
    end_ms: int
    runs: tuple[tuple[int, int, str], ...]  # (start, end, "OI model" | "volume model") inside the range
    missing: tuple[tuple[int, int], ...]  # spans of the range without bars
    tape: str  # TAPE_*
    tape_events: int

    @property
    def has_oi(self) -> bool:
        return any(name == "OI model" for _, _, name in self.runs)

    def model_text(self) -> str:
        if not self.runs:
            return "no bars"
        names = {name for _, _, name in self.runs}
        if names == {"OI model"}:
            return "OI model"
        if names == {"volume model"}:
            return "volume model (no open interest)"
        parts = [f"{name} {_day(a)}→{_day(b)}" for a, b, name in self.runs]
        return "; ".join(parts)

    def text(self) -> str:
        missing = ", ".join(f"{_day(a)}→{_day(b)}" for a, b in self.missing)
        tape = {
            TAPE_COMPLETE: f"tape: every liquidation ({self.tape_events})",
            TAPE_SAMPLE: f"tape: a sample ({self.tape_events})",
            TAPE_NONE: "no liquidation stream",
            TAPE_FILE: f"tape: {self.tape_events} from file" if self.tape_events else "no tape",
        }.get(self.tape, self.tape)
        return (
            f"{self.venue}: {self.model_text()}" + (f"; no bars {missing}" if missing else "") + f"; {tape}"
        )


@dataclass(frozen=True)
class AggregateCoverage:
    venues: tuple[VenueCoverage, ...]

    def lines(self) -> list[str]:
        return [v.text() for v in self.venues]

    def text(self) -> str:
        return " · ".join(self.lines())

    def to_dict(self) -> list[dict[str, Any]]:
        return [
            {"venue": v.venue, "model": v.model_text(), "runs": [list(r) for r in v.runs],
             "missing": [list(m) for m in v.missing], "tape": v.tape, "tape_events": v.tape_events}
            for v in self.venues
        ]  # fmt: skip


def venue_coverage(vm: VenueModel, start_ms: int, end_ms: int) -> VenueCoverage:
    """The coverage of one venue over [start_ms, end_ms)."""
    e = vm.engine
    runs: list[tuple[int, int, str]] = []
    for a, b, name in e.coverage():
        a, b = max(a, start_ms), min(b, end_ms)
        if a < b and name in ("OI model", "volume model"):
            runs.append((a, b, name))
    missing: list[tuple[int, int]] = []
    if e.n_bars:
        opens = e.open_time[(e.open_time + e.interval_ms > start_ms) & (e.open_time < end_ms)]
        at = start_ms
        for t in opens.tolist():
            if t > at:
                missing.append((at, min(t, end_ms)))
            at = max(at, t + e.interval_ms)
        if at < end_ms:
            missing.append((at, end_ms))
    else:
        missing.append((start_ms, end_ms))
    tape_n = len(vm.liquidations.between(start_ms, end_ms))
    return VenueCoverage(vm.name, start_ms, end_ms, tuple(runs), tuple(missing), vm.tape, tape_n)


def aggregate_coverage(venues: Sequence[VenueModel], start_ms: int, end_ms: int) -> AggregateCoverage:
    return AggregateCoverage(tuple(venue_coverage(vm, start_ms, end_ms) for vm in venues))


def model_mix(venues: Sequence[VenueModel], start_ms: int, end_ms: int) -> str:
    """One line: which venues' openings come from open interest, which from volume, over the range."""
    oi, vol = [], []
    for vm in venues:
        e = vm.engine
        m = e.model[(e.open_time >= start_ms) & (e.open_time < end_ms)]
        if np.any(m == MODEL_OI):
            oi.append(vm.name)
        if np.any(m == MODEL_VOLUME):
            vol.append(vm.name)
    parts = []
    if oi:
        parts.append("OI model: " + ", ".join(oi))
    if vol:
        parts.append("volume model: " + ", ".join(vol))
    return "; ".join(parts) or "no openings"


def _day(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000))


# ---------------------------------------------------------------------------------------------- live


@dataclass(frozen=True)
class AggregateUpdate:
    """What one venue bar changed: that venue's newest column, the summed newest column and the map."""

    venue: str
    appended: bool  # a new bar (False: the venue's live bar was revised)
    long_by_venue: np.ndarray  # (V, P) each venue's newest column
    short_by_venue: np.ndarray
    long: np.ndarray  # (P,) their sum
    short: np.ndarray


# Every this many bars appended to a venue, its newest columns are recomputed from the levels (the incremental
# update's sums carry rounding from bar to bar; this keeps it from accumulating).
EXACT_EVERY = 2048


@dataclass
class ColumnState:
    """One venue's alive notional at the end of one bar on some bins: USD and level counts per (side, tier, bin)
    (a count of zero makes a cell exactly zero), all alive notional per side, inside the bins or not, and how many
    incremental steps since it was last computed from the levels."""

    usd: np.ndarray  # (2, K, P) float64
    count: np.ndarray  # (2, K, P) int64
    total: np.ndarray  # (2,) float64
    steps: int = 0

    def copy(self) -> ColumnState:
        return ColumnState(self.usd.copy(), self.count.copy(), self.total.copy(), self.steps)

    @property
    def long(self) -> np.ndarray:
        """(P,) long USD per bin."""
        out: np.ndarray = self.usd[0].sum(axis=0)
        return out

    @property
    def short(self) -> np.ndarray:
        out: np.ndarray = self.usd[1].sum(axis=0)
        return out


def _empty_column(e: LiquidationEngine, bins: PriceBins) -> ColumnState:
    shape = (2, len(e.params.tiers), bins.n)
    return ColumnState(np.zeros(shape), np.zeros(shape, np.int64), np.zeros(2))


def _binned(e: LiquidationEngine, bins: PriceBins, idx: Any, usd: Any) -> ColumnState:
    """USD and counts per (side, tier, bin) of the levels `idx` worth `usd`, and the totals per side."""
    xp, lv = e.xp, e.levels()
    out = _empty_column(e, bins)
    if not len(idx):
        return out
    k, p = out.usd.shape[1], bins.n
    b = bins.index(lv["price"][idx], xp)
    side = lv["side"][idx]
    tier = lv["tier"][idx].astype(xp.int64)
    for s_i, s in enumerate((LONG, SHORT)):
        mine = side == s
        m = mine & (b >= 0)
        flat = tier[m] * p + b[m]
        out.usd[s_i] = e.backend.asnumpy(xp.bincount(flat, weights=usd[m], minlength=k * p)).reshape(k, p)
        out.count[s_i] = e.backend.asnumpy(xp.bincount(flat, minlength=k * p)).reshape(k, p)
        out.total[s_i] = float(usd[mine].sum())
    return out


def venue_column(e: LiquidationEngine, bins: PriceBins, bar: int) -> ColumnState:
    """The venue's column at the end of its bar `bar`, from the levels alive then (empty outside its bars)."""
    if bar < 0 or bar >= e.n_bars:
        return _empty_column(e, bins)
    idx, usd = e.alive_at(bar)
    return _binned(e, bins, idx, usd)


def next_column(e: LiquidationEngine, bins: PriceBins, prev: ColumnState) -> ColumnState:
    """The column at the end of the engine's last bar j from `prev`, the one at the end of bar j − 1.

    The closes and decay of a bar scale every alive level alike, so the column at the end of bar j is (the column
    at the end of bar j − 1 − the levels bar j swept) × the bar's factor + the levels bar j created
    (engine.lifecycle): it costs the bar's swept and new levels, not the venue's alive levels. Every
    `EXACT_EVERY` steps it is recomputed from the levels instead (the sums' rounding does not accumulate)."""
    xp, lv, lf = e.xp, e.levels(), e.log_factor
    j = e.n_bars - 1
    if j == 0 or prev.steps + 1 >= EXACT_EVERY:
        return venue_column(e, bins, j)
    swept, first_new = e.last_bar_levels()
    gone = _binned(e, bins, swept, lv["deposit"][swept] * xp.exp(lf[j - 1] - lf[lv["created"][swept]]))
    new_idx = xp.arange(first_new, e.n_levels)
    new = _binned(e, bins, new_idx, lv["deposit"][new_idx])
    factor = float(xp.exp(lf[j] - lf[j - 1]))
    out = ColumnState((prev.usd - gone.usd) * factor + new.usd, prev.count - gone.count + new.count,
                      (prev.total - gone.total) * factor + new.total, prev.steps + 1)  # fmt: skip
    out.usd[(out.count <= 0) | (out.usd < 0)] = 0.0
    out.total = np.maximum(out.total, 0.0)
    return out


class AggregateModel:
    """Venue engines kept up to date bar by bar, with the aggregate's newest column and map on fixed bins.

    `apply_bar` takes one venue's bar (a live revision or a new bar) and updates only that venue's engine and
    its newest column; the sum is re-added from the venues' columns. A venue's newest column is updated from the
    one before it, not recomputed from every level: the closes and decay of the bar scale every alive level alike,
    so the column at the end of bar j is (the column at the end of bar j − 1 − the levels bar j swept) × the bar's
    factor + the levels bar j created (engine.lifecycle). That costs the bar's swept and new levels, not the
    venue's alive levels. Qt-free: the caller runs it wherever its engines live (a worker thread in the window).
    """

    def __init__(self, venues: Sequence[VenueModel], bins: PriceBins) -> None:
        if not venues:
            raise ValueError("an aggregate needs at least one venue")
        names = [vm.name for vm in venues]
        if len(set(names)) != len(names):
            raise ValueError(f"venue names repeat: {', '.join(names)}")
        self.venues = list(venues)
        self._index = {n: i for i, n in enumerate(names)}
        self.set_bins(bins)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(vm.name for vm in self.venues)

    def venue(self, name: str) -> VenueModel:
        return self.venues[self._index[name]]

    def set_bins(self, bins: PriceBins) -> None:
        """New price bins: every venue's columns recomputed from its levels."""
        self.bins = bins
        self._prev: list[ColumnState] = []
        self._now: list[ColumnState] = []
        for vm in self.venues:
            e = vm.engine
            self._prev.append(venue_column(e, bins, e.n_bars - 2))
            self._now.append(venue_column(e, bins, e.n_bars - 1))

    # -- bars ----------------------------------------------------------------------------------------------------
    def apply_bar(self, venue: str, row: Candles, oi_close: float | None = None) -> AggregateUpdate | None:
        """One venue's bar: a revision of its last bar (same open time) or the next one. A bar older than
        the venue's last is ignored (None)."""
        i = self._index[venue]
        e = self.venues[i].engine
        t = int(row.open_time[0])
        last = int(e.open_time[-1]) if e.n_bars else None
        if last is not None and t < last:
            return None
        appended = last is None or t > last
        if appended:
            e.append_bar(row, oi_close)
            self._prev[i] = self._now[i]
        else:
            e.revise_last_bar(row, oi_close)
        self._now[i] = next_column(e, self.bins, self._prev[i])
        return self.newest(venue, appended)

    def newest(self, venue: str = "", appended: bool = False) -> AggregateUpdate:
        long_v = np.stack([c.usd[0].sum(axis=0) for c in self._now])
        short_v = np.stack([c.usd[1].sum(axis=0) for c in self._now])
        return AggregateUpdate(venue, appended, long_v, short_v, long_v.sum(axis=0), short_v.sum(axis=0))

    def newest_column(self) -> tuple[np.ndarray, np.ndarray]:
        """Long and short USD per bin of the aggregate at each venue's newest bar (the column a live bar
        changes), as `heatmap.column_at` sums them per venue."""
        u = self.newest()
        return u.long, u.short

    def map(self) -> AggregateMap:
        """The summed liquidation map at each venue's newest bar (from the kept columns: no level is read)."""
        maps: list[LiquidationMap | None] = []
        for vm, col in zip(self.venues, self._now, strict=True):
            e = vm.engine
            if not e.n_bars:
                maps.append(None)
                continue
            bar = e.n_bars - 1
            maps.append(LiquidationMap(
                bar=bar, time_ms=int(e.open_time[bar]), price_now=float(e.close[bar]), bins=self.bins,
                tier_labels=e.params.tiers.labels(), long_by_tier=col.usd[0].copy(), short_by_tier=col.usd[1].copy(),
                total_long=float(col.total[0]), total_short=float(col.total[1]),
            ))  # fmt: skip
        time_ms = max(
            int(vm.engine.open_time[-1]) + vm.engine.interval_ms for vm in self.venues if vm.engine.n_bars
        )
        return _sum_maps(self.names, maps, self.bins, time_ms)


# ---------------------------------------------------------------------------------------------- building


@dataclass(frozen=True, eq=False)
class VenueInput:
    """What one venue's engine is built from: its own bars, open interest and parameters (its brackets)."""

    name: str
    symbol: str
    candles: Candles
    open_interest: OpenInterest | None
    params: ModelParams
    liquidations: Liquidations = field(default_factory=Liquidations.empty)
    label: str = ""
    tape: str = TAPE_FILE


def _build_one(v: VenueInput) -> VenueModel:
    engine = LiquidationEngine.build(v.candles, v.open_interest, v.params)
    return VenueModel(v.name, v.symbol, engine, v.liquidations, v.label, v.tape)


def build_venues(inputs: Sequence[VenueInput], workers: int = 1) -> list[VenueModel]:
    """Each venue's engine, built on its own inputs; with `workers` > 1, that many threads build venues side by
    side (the compiled loops release the GIL; at most one thread per venue)."""
    workers = max(1, min(len(inputs), workers))
    if workers == 1 or len(inputs) < 2:
        return [_build_one(v) for v in inputs]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(_build_one, inputs))


def build_and_render(
    inputs: Sequence[VenueInput],
    bins: PriceBins,
    columns: TimeColumns,
    *,
    by_venue: bool = True,
    workers: int = 1,
) -> tuple[list[VenueModel], AggregateGrid]:
    """Each venue's engine built and painted at once onto one grid: `build_venues` then `render_aggregate_grid`,
    in one pass (by_venue: each venue into its slice of a (V, T, P) array, otherwise all into one (T, P) array
    per side). With `workers` ≥ 2, that many threads share the work as it becomes possible: each (venue, side)
    painting as soon as its venue is built and no other thread is painting into the same buffer, otherwise the
    next venue's build. So a venue's painting overlaps the other venues' builds, no thread waits for the slowest
    build while there is painting to do, and no buffer per thread has to be added up at the end."""
    v, t, p = len(inputs), len(columns), bins.n
    workers = max(1, min(v, workers))
    models: list[VenueModel | None] = [None] * v
    bars = np.full((v, t), -1, np.int64)
    out = [hostmem.zeros((v, t, p) if by_venue else (t, p), np.float32) for _ in (LONG, SHORT)]
    if workers == 1:
        for i in range(v):
            vm = models[i] = _build_one(inputs[i])
            bars[i] = columns.venue_bars(vm.engine)
            for k, side in enumerate((LONG, SHORT)):
                _paint_venue(vm.engine, bars[i], bins, side, out[k][i] if by_venue else out[k])
        release_scratch()
    else:
        _BuildAndPaint(inputs, columns, bins, models, bars, out, by_venue).run(workers)
    done = [m for m in models if m is not None]
    names = tuple(m.name for m in done)
    if not by_venue:
        return done, AggregateGrid(columns, bins, names, out[0], out[1], bars)
    if v == 1:
        return done, AggregateGrid(columns, bins, names, out[0][0], out[1][0], bars, *out)
    totals = [part.sum(axis=0, dtype=np.float32) for part in out]
    return done, AggregateGrid(columns, bins, names, totals[0], totals[1], bars, *out)


class _BuildAndPaint:
    """The tasks of `build_and_render` shared by a few threads: the venues' builds (the longest first), and the
    paintings of (venue, side) whose venue is built and whose buffer is free (one buffer per side, or per venue
    and side), a painting before a build whenever one can start."""

    def __init__(
        self,
        inputs: Sequence[VenueInput],
        columns: TimeColumns,
        bins: PriceBins,
        models: list[VenueModel | None],
        bars: np.ndarray,
        out: list[np.ndarray],
        by_venue: bool,
    ) -> None:
        self.inputs = inputs
        self.columns = columns
        self.bins = bins
        self.models = models  # filled in as the venues are built
        self.bars = bars
        self.out = out
        self.by_venue = by_venue
        self.lock = threading.Condition()
        # the longest builds first, so that the last one to finish is short (a venue without open interest runs
        # the volume model, which opens about twice the levels)
        self.builds = sorted(range(len(inputs)), key=lambda i: -len(inputs[i].candles) * (
            2 if inputs[i].open_interest is None else 1))  # fmt: skip
        self.built: set[int] = set()
        self.paints = [(i, k) for i in range(len(inputs)) for k in (0, 1)]  # still to paint
        self.busy: set[Any] = set()  # the buffers being painted into now
        self.failed = False

    def run(self, workers: int) -> None:
        # the pool's threads (and their painter scratch) end with it
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda _: self._work(), range(workers)))

    def _buffer(self, i: int, k: int) -> Any:
        return (i, k) if self.by_venue else k

    def _take(self) -> tuple[str, int, int] | None:
        """The next task, waiting while none can start; None when nothing is left (or a build failed)."""
        with self.lock:
            while True:
                if self.failed:
                    return None
                for i, k in self.paints:  # painting first: a venue just built is still in the caches
                    if i in self.built and self._buffer(i, k) not in self.busy:
                        self.paints.remove((i, k))
                        self.busy.add(self._buffer(i, k))
                        return "paint", i, k
                if self.builds:
                    return "build", self.builds.pop(0), 0
                if not self.paints:
                    return None
                self.lock.wait()

    def _work(self) -> None:
        while (task := self._take()) is not None:
            kind, i, k = task
            if kind == "build":
                try:
                    vm = self.models[i] = _build_one(self.inputs[i])
                    self.bars[i] = self.columns.venue_bars(vm.engine)
                except BaseException:
                    with self.lock:
                        self.failed = True  # the others stop; the pool raises this error
                        self.lock.notify_all()
                    raise
                with self.lock:
                    self.built.add(i)
                    self.lock.notify_all()
                continue
            painted = self.models[i]
            assert painted is not None
            target = self.out[k][i] if self.by_venue else self.out[k]
            try:
                _paint_venue(painted.engine, self.bars[i], self.bins, (LONG, SHORT)[k], target)
            finally:
                with self.lock:
                    self.busy.discard(self._buffer(i, k))
                    self.lock.notify_all()


# ---------------------------------------------------------------------------------------------- scoring


def aggregate_snapshots(
    venues: Sequence[VenueModel], reference: int, times_ms: np.ndarray, config: CalibrationConfig
) -> Snapshots:
    """The summed map at snapshot instants on the reference venue's grid: its snapshots (spot, range, ATR and
    cells from its own bars, as `density_snapshots` makes them) with every other venue's alive levels at its
    last bar closed by each instant added into the same cells. Scoring a venue's tape on its own snapshots and
    on these differs only in the density."""
    ref = venues[reference].engine
    snaps = density_snapshots(ref, times_ms, config)
    long_, short = snaps.long.copy(), snaps.short.copy()
    width = snaps.width
    for i, vm in enumerate(venues):
        e = vm.engine
        if i == reference or not e.n_bars:
            continue
        bars = e.bars_closed_by(snaps.time_ms)
        lv = e.levels()
        for s, b in enumerate(bars.tolist()):
            if b < 0:
                continue
            idx, usd = e.alive_at(b)
            cell = np.floor((lv["price"][idx] - snaps.lo[s]) / width[s]).astype(np.int64)
            inside = (cell >= 0) & (cell < snaps.n_bins)
            side = lv["side"][idx]
            for dens, want in ((long_, LONG), (short, SHORT)):
                m = inside & (side == want)
                dens[s] += np.bincount(cell[m], weights=usd[m], minlength=snaps.n_bins)
    return replace(snaps, long=long_, short=short)

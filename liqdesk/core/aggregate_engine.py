"""The aggregate read as one engine: several venues' engines presented on a reference venue's bars.

Code written against one LiquidationEngine (the heatmap view, the liquidation map, the sweep bubbles, the
newest column of a live chart) reads an `AggregateEngine` the same way: bar i is the reference venue's bar i,
and at the end of it every venue shows the state after its last bar closed by then (core.aggregate). Levels
are the venues' levels side by side (venue after venue), so an index from `alive_at` picks a level's price,
side and tier out of `levels()`; the heatmap is painted by `kernels.paint`, which adds every venue into one
buffer per side (aggregate.paint_aggregate) and ignores the level arrays it is handed, as they belong to
several engines. `venue_of` tells which venue holds a level (the breakdowns).

Read-only over the venues' engines as they are: after a venue's engine changes (a live bar), `refresh()`
before reading again. `VenueSetEngine` is the window's: every venue's engine kept live, the venues switched on
summed, on the bars of the venue whose candles the chart draws (`clock`, summed or not).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from liqdesk.core.aggregate import (
    AggregateMap,
    ColumnState,
    TimeColumns,
    VenueModel,
    aggregate_map,
    model_mix,
    next_column,
    paint_aggregate,
    venue_column,
)
from liqdesk.core.engine import LiquidationEngine, SweepTotals
from liqdesk.core.grid import PriceBins
from liqdesk.core.liqmap import LiquidationMap
from liqdesk.core.params import ModelParams
from liqdesk.core.series import Candles

# Columns kept per venue: its newest bars' (a late bar of another venue repaints the columns of a few bars back,
# and a revision of the newest bar is stepped from the one before it).
KEPT_COLUMNS = 8


class AggregateKernels:
    """The painter of an AggregateEngine: `paint` as the kernels of one engine give it."""

    def __init__(self, owner: AggregateEngine) -> None:
        self._owner = owner

    @property
    def xp(self) -> Any:
        return self._owner.xp

    @property
    def name(self) -> str:
        return "aggregate"

    def paint(
        self, levels: dict[str, Any], log_factor: Any, last: Any, lo: float, width: float, nbins: int,
        transform: str,
    ) -> tuple[Any, Any]:  # fmt: skip
        """Both sides' (P, T) grids at the end of the reference bars `last`, every venue added in."""

        o = self._owner
        bars = np.asarray(o.backend.asnumpy(last), np.int64)
        columns = TimeColumns(o.interval_ms, o.open_time[bars], o.open_time[bars] + o.interval_ms)
        return paint_aggregate(o.venues, PriceBins(lo, lo + width * nbins, nbins), columns, transform)


class AggregateEngine:
    """Several venues' engines read as one, on the bars of `venues[reference]`, or of `clock` when given (an
    engine whose bars set the time axis without its levels being summed: a venue switched off)."""

    def __init__(
        self, venues: Sequence[VenueModel], reference: int = 0, clock: LiquidationEngine | None = None
    ) -> None:
        if not venues:
            raise ValueError("an aggregate needs at least one venue")
        self.venues = list(venues)
        self.reference = reference
        self._clock = clock
        ref = self.ref
        if not ref.n_bars:
            raise ValueError(f"the reference venue {venues[reference].name} has no bars")
        self.params: ModelParams = ref.params
        self.interval_ms = ref.interval_ms
        self.backend = ref.backend
        self.xp: Any = ref.xp
        self.kernels = AggregateKernels(self)
        # each venue's columns by its bar, on `_column_bins` (a live column is stepped from the one before it)
        self._column_bins: PriceBins | None = None
        self._columns: dict[int, dict[int, ColumnState]] = {}
        self.refresh()

    def refresh(self) -> None:
        """Re-read the venues' engines (after one of them changed)."""
        self._columns.clear()
        self._read_levels()

    def _read_levels(self) -> None:
        self._offsets = np.cumsum([0] + [vm.engine.n_levels for vm in self.venues])
        self._levels = {k: _VenueColumn(self, k) for k in ("price", "side", "tier")}

    def _venue_changed(self, engine: LiquidationEngine, first_bar: int) -> None:
        """A venue's bars from `first_bar` on were added or revised: its columns there are stale."""
        kept = self._columns.get(id(engine))
        if kept:
            for bar in [b for b in kept if b >= first_bar]:
                del kept[bar]
        self._read_levels()

    # -- what one engine offers ---------------------------------------------------------------------------
    @property
    def ref(self) -> Any:
        return self._clock if self._clock is not None else self.venues[self.reference].engine

    @property
    def n_bars(self) -> int:
        return int(self.ref.n_bars)

    @property
    def n_levels(self) -> int:
        return int(self._offsets[-1])

    @property
    def open_time(self) -> np.ndarray:
        return self.ref.open_time  # type: ignore[no-any-return]

    @property
    def close(self) -> np.ndarray:
        return self.ref.close  # type: ignore[no-any-return]

    @property
    def sweep_low(self) -> np.ndarray:
        return self.ref.sweep_low  # type: ignore[no-any-return]

    @property
    def sweep_high(self) -> np.ndarray:
        return self.ref.sweep_high  # type: ignore[no-any-return]

    @property
    def log_factor(self) -> Any:
        """The reference venue's (the painter does not use it: each venue scales its own levels)."""
        return self.ref.log_factor

    def bar_column(self, name: str) -> np.ndarray:
        return self.ref.bar_column(name)  # type: ignore[no-any-return]

    def levels(self) -> dict[str, Any]:
        """Every venue's levels side by side, read by level index (as `alive_at` gives them): price, side and
        tier (creation and sweep bars are each venue's own, so they are not given). Nothing is copied: an index
        array picks from each venue's own arrays."""
        return self._levels

    def venue_of(self, idx: Any) -> np.ndarray:
        """The venue (index into `venues`) of each level index."""
        return np.searchsorted(self._offsets, np.asarray(idx), "right") - 1

    def venue_bars(self, bar: int) -> list[int]:
        """Each venue's bar at the end of reference bar `bar` (−1: none yet)."""
        end = int(self.open_time[bar]) + self.interval_ms
        return [int(vm.engine.bars_closed_by([end])[0]) if vm.engine.n_bars else -1 for vm in self.venues]

    def alive_at(self, bar: int) -> tuple[Any, Any]:
        """Levels alive at the end of reference bar `bar` in every venue, and their notional then."""
        xp = self.xp
        idx, usd = [], []
        for off, vm, b in zip(self._offsets[:-1], self.venues, self.venue_bars(bar), strict=True):
            if b < 0:
                continue
            i, u = vm.engine.alive_at(b)
            idx.append(i + int(off))
            usd.append(u)
        if not idx:
            return xp.zeros(0, np.int64), xp.zeros(0)
        return xp.concatenate(idx), xp.concatenate(usd)

    def column_at(self, bins: PriceBins, bar: int) -> tuple[Any, Any]:
        """(long, short) USD per price bin at the end of reference bar `bar`: each venue's column at its last bar
        closed by then, summed (heatmap.column_at for an aggregate). A venue's columns are kept for its last
        bars, and the column of its newest bar is stepped from the one before it (aggregate.next_column), so a
        live bar of one venue costs that bar's levels, not every venue's alive levels."""
        long_, short = np.zeros(bins.n), np.zeros(bins.n)
        for col in self._columns_at(bins, bar):
            long_ += col.long
            short += col.short
        return self.xp.asarray(long_), self.xp.asarray(short)

    def liquidation_map(self, bins: PriceBins, bar: int) -> LiquidationMap:
        """The map at the end of reference bar `bar` (liqmap.liquidation_map for an aggregate): the venues'
        columns of `column_at`, per tier, summed."""
        k = len(self.params.tiers)
        by_tier = np.zeros((2, k, bins.n))
        total = np.zeros(2)
        for col in self._columns_at(bins, bar):
            by_tier[:, : col.usd.shape[1]] += col.usd
            total += col.total
        return LiquidationMap(
            bar=bar, time_ms=int(self.open_time[bar]), price_now=float(self.close[bar]), bins=bins,
            tier_labels=self.params.tiers.labels(), long_by_tier=by_tier[0], short_by_tier=by_tier[1],
            total_long=float(total[0]), total_short=float(total[1]),
        )  # fmt: skip

    def _columns_at(self, bins: PriceBins, bar: int) -> list[ColumnState]:
        if bins != self._column_bins:
            self._columns.clear()
            self._column_bins = bins
        return [
            self._venue_column(vm.engine, bins, b)
            for vm, b in zip(self.venues, self.venue_bars(bar), strict=True)
            if b >= 0
        ]

    def _venue_column(self, e: LiquidationEngine, bins: PriceBins, bar: int) -> ColumnState:
        kept = self._columns.setdefault(id(e), {})
        col = kept.get(bar)
        if col is None:
            prev = kept.get(bar - 1)
            last = bar == e.n_bars - 1
            col = next_column(e, bins, prev) if last and prev is not None else venue_column(e, bins, bar)
            kept[bar] = col
            newest = max(kept)
            for old in [b for b in kept if b < newest - KEPT_COLUMNS]:
                del kept[old]
        return col

    def sweep_totals(self, start_bar: int = 0, end_bar: int | None = None) -> SweepTotals:
        """Every venue's sweeps in reference bars [start_bar, end_bar) per (bar, side): each venue bar's sums
        (LiquidationEngine.sweep_totals) placed at the reference bar whose end first reaches the venue bar's end."""
        end_bar = self.n_bars if end_bar is None else min(end_bar, self.n_bars)
        start_bar = max(0, start_bar)
        m = max(0, end_bar - start_bar)
        usd, usd_price = np.zeros(2 * m), np.zeros(2 * m)
        if m:
            t0 = int(self.open_time[start_bar])
            t1 = int(self.open_time[end_bar - 1]) + self.interval_ms
            for vm in self.venues:
                e = vm.engine
                if not e.n_bars:
                    continue
                # venue bars closing in (t0, t1]
                a = int(np.searchsorted(e.open_time, t0 - e.interval_ms, "right"))
                b = int(np.searchsorted(e.open_time, t1 - e.interval_ms, "right"))
                if b <= a:
                    continue
                ends = e.open_time[a:b] + e.interval_ms
                slot = np.searchsorted(self.open_time, ends - self.interval_ms, "left") - start_bar
                u, up = e.swept_by_bar(a, b)
                keep = (slot >= 0) & (slot < m)
                if not keep.all():
                    slot, u, up = slot[keep], u[keep], up[keep]
                key = (slot[:, None] * 2 + np.arange(2)).reshape(-1)  # long, short
                usd += np.bincount(key, weights=u.reshape(-1), minlength=2 * m)
                usd_price += np.bincount(key, weights=up.reshape(-1), minlength=2 * m)
        return SweepTotals.from_bars(start_bar, usd.reshape(-1, 2), usd_price.reshape(-1, 2))

    def state_mark(self) -> tuple[int, ...]:
        """Every summed venue's mark, then the clock's (LiquidationEngine.state_mark)."""
        engines = [vm.engine for vm in self.venues] + [self.ref]
        return tuple(x for e in engines for x in e.state_mark())

    def changed_from(self, mark: tuple[int, ...]) -> int:
        """The first reference bar whose state may have changed since `mark`: the slot of each venue's first
        changed bar (a late venue bar lands in an older slot), and the clock's (a new reference bar gathers the
        venue bars that closed by its end)."""
        engines = [vm.engine for vm in self.venues] + [self.ref]
        if len(mark) != 4 * len(engines):
            return 0
        first = int(self.ref.changed_from(mark[-4:]))
        for i, e in enumerate(engines[:-1]):
            j = int(e.changed_from(mark[4 * i : 4 * i + 4]))
            if j < e.n_bars:
                end = int(e.open_time[j]) + e.interval_ms
                first = min(first, int(np.searchsorted(self.open_time, end - self.interval_ms, "left")))
        return first

    def model_label(self, start_bar: int = 0, end_bar: int | None = None) -> str:
        end_bar = self.n_bars if end_bar is None else end_bar
        t0 = int(self.open_time[start_bar])
        t1 = int(self.open_time[max(start_bar, end_bar - 1)]) + self.interval_ms
        n = len(self.venues)
        return f"{n} venue{'' if n == 1 else 's'} · " + model_mix(self.venues, t0, t1)

    def coverage(self) -> list[tuple[int, int, str]]:
        return self.ref.coverage()  # type: ignore[no-any-return]


class VenueSetEngine(AggregateEngine):
    """Every venue's engine kept up to date, the venues switched on summed, on the chart venue's bars.

    The chart venue's live bars arrive as one engine's do (`append_bar`, `revise_last_bar`: the chart draws its
    candles); another venue's through `apply_venue_bar`. A venue switched off keeps taking its bars, so switching
    it on again needs no rebuild (`with_enabled` makes the new sum over the same engines)."""

    def __init__(
        self, models: Sequence[VenueModel], chart_venue: str, enabled: Sequence[str] | None = None
    ) -> None:
        names = [m.name for m in models]
        if chart_venue not in names:
            raise ValueError(f"the chart venue {chart_venue} is not one of {', '.join(names)}")
        self.models = list(models)
        self.chart_venue = chart_venue
        on = [m for m in self.models if enabled is None or m.name in enabled]
        if not on:
            raise ValueError("switch at least one venue on")
        chart = self.models[names.index(chart_venue)].engine
        super().__init__(on, clock=chart)

    @property
    def enabled(self) -> tuple[str, ...]:
        return tuple(vm.name for vm in self.venues)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(vm.name for vm in self.models)

    def with_enabled(self, enabled: Sequence[str]) -> VenueSetEngine:
        """The same engines, another set of venues summed."""
        return VenueSetEngine(self.models, self.chart_venue, enabled)

    def model_of(self, name: str) -> VenueModel:
        return next(m for m in self.models if m.name == name)

    # -- live bars --------------------------------------------------------------------------------------------
    def append_bar(self, row: Candles, oi_close: float | None = None) -> None:
        self.ref.append_bar(row, oi_close)
        self._venue_changed(self.ref, self.ref.n_bars - 1)

    def revise_last_bar(self, row: Candles, oi_close: float | None = None) -> None:
        self.ref.revise_last_bar(row, oi_close)
        self._venue_changed(self.ref, self.ref.n_bars - 1)

    def apply_venue_bar(self, name: str, row: Candles, oi_close: float | None = None) -> bool:
        """A bar of venue `name`: its next bar or a revision of its last one. False: older than its last bar
        (nothing changed)."""
        e = self.model_of(name).engine
        t = int(row.open_time[0])
        last = int(e.open_time[-1]) if e.n_bars else None
        if last is not None and t < last:
            return False
        if last is None or t > last:
            e.append_bar(row, oi_close)
        else:
            e.revise_last_bar(row, oi_close)
        self._venue_changed(e, e.n_bars - 1)
        return True

    # -- breakdowns --------------------------------------------------------------------------------------------
    def venue_map(self, bins: PriceBins, bar: int) -> AggregateMap:
        """Every venue's liquidation map at the end of chart bar `bar` (each at its last bar closed by then),
        switched on or not, and their sum: which venue holds a cluster."""
        return aggregate_map(self.models, bins, int(self.open_time[bar]) + self.interval_ms)


class _VenueColumn:
    """One level column of every venue, indexed by aggregate level index (venue after venue)."""

    def __init__(self, owner: AggregateEngine, name: str) -> None:
        self._owner = owner
        self._name = name

    def __len__(self) -> int:
        return self._owner.n_levels

    def __getitem__(self, idx: Any) -> Any:
        o = self._owner
        xp = o.xp
        host = np.atleast_1d(o.backend.asnumpy(xp.asarray(idx))).astype(np.int64)
        ordered = bool(np.all(host[1:] >= host[:-1]))  # alive_at gives them venue after venue, in order
        order = None if ordered else np.argsort(host, kind="stable")
        ranked = host if order is None else host[order]
        cuts = np.searchsorted(ranked, o._offsets)
        parts = [
            vm.engine.levels()[self._name][xp.asarray(ranked[cuts[v] : cuts[v + 1]] - int(o._offsets[v]))]
            for v, vm in enumerate(o.venues)
        ]
        picked = xp.concatenate(parts)
        if order is not None:
            out = xp.empty(len(host), picked.dtype)
            out[xp.asarray(order)] = picked
            picked = out
        return picked if np.ndim(idx) else picked[0]

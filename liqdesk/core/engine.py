"""The liquidation-level engine: levels created from openings, swept by price, closed pro rata.

State is a set of levels (price, deposit, creation bar, sweep bar, tier, side) plus one running
log factor per bar for closes and decay (lifecycle.py). Everything the app shows is derived from
that state: heatmap grids and images (grid.py, heatmap.py), the liquidation map and magnets
(liqmap.py), sweep events.

One engine runs on one array module (the backend): NumPy on the CPU, or CuPy on a GPU. Per-bar
state (a few numbers a bar) always lives on the host; per-level state and the log factor live on
the backend, where the full build creates and sweeps the levels. The model's steps are the same
array code on both (openings.py, levels.py, sweeps.reached, lifecycle.bar_step); only the hot
loops are compiled per device (kernels.py).

A full build is vectorised; `append_bar` and `revise_last_bar` update the state for one bar
without touching history and give the same numbers as a rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from liqdesk.core import lifecycle
from liqdesk.core.arrays import Growable, count_upto
from liqdesk.core.backend import Backend, numpy_backend
from liqdesk.core.kernels import kernels_for
from liqdesk.core.levels import create_levels
from liqdesk.core.leverage import liquidation_factors
from liqdesk.core.openings import (
    MODEL_OI,
    MODEL_VOLUME,
    compute_openings,
    describe_coverage,
    entry_points,
    open_interest_at_close,
)
from liqdesk.core.params import ModelParams
from liqdesk.core.series import LONG, SHORT, Candles, OpenInterest
from liqdesk.core.sweeps import NEVER, reached


@dataclass(frozen=True)
class SweepEvents:
    bar: np.ndarray  # index of the bar that swept the level
    time_ms: np.ndarray  # open time of that bar
    price: np.ndarray
    side: np.ndarray  # LONG / SHORT
    tier: np.ndarray
    usd: np.ndarray  # notional alive just before the sweep

    def __len__(self) -> int:
        return len(self.bar)


@dataclass(frozen=True)
class SweepTotals:
    """What bars swept, summed per (bar, side): one row per pair that swept notional, in (bar, side) order
    (long before short). A month of 1-minute bars sweeps millions of levels; what is drawn of them (the
    bubbles) is per bar and side."""

    bar: np.ndarray  # (R,) int64
    side: np.ndarray  # (R,) int8, LONG / SHORT
    usd: np.ndarray  # (R,) notional alive just before the sweep
    usd_price: np.ndarray  # (R,) the sum of notional × price of the swept levels

    def __len__(self) -> int:
        return len(self.bar)

    @property
    def price(self) -> np.ndarray:
        """The notional-weighted price of the levels swept."""
        out: np.ndarray = self.usd_price / np.where(self.usd > 0, self.usd, 1.0)
        return out

    def before(self, bar: int) -> SweepTotals:
        """The rows of bars before `bar`."""
        k = int(np.searchsorted(self.bar, bar, "left"))
        return SweepTotals(self.bar[:k], self.side[:k], self.usd[:k], self.usd_price[:k])

    def then(self, later: SweepTotals) -> SweepTotals:
        """These rows followed by those of later bars."""
        return SweepTotals(*(np.concatenate([a, b]) for a, b in zip(
            (self.bar, self.side, self.usd, self.usd_price),
            (later.bar, later.side, later.usd, later.usd_price), strict=True)))  # fmt: skip

    @staticmethod
    def from_bars(first_bar: int, usd: np.ndarray, usd_price: np.ndarray) -> SweepTotals:
        """From per-bar sums ((B, 2): long, short) of bars first_bar, first_bar + 1, ..."""
        flat = usd.reshape(-1)
        rows = np.nonzero(flat > 0)[0]
        return SweepTotals(
            bar=first_bar + rows // 2,
            side=np.where(rows % 2 == 1, SHORT, LONG).astype(np.int8),
            usd=flat[rows],
            usd_price=usd_price.reshape(-1)[rows],
        )


@dataclass(frozen=True)
class Budget:
    """Where the deposited notional went (conservation check)."""

    deposited: float
    alive: float
    swept: float
    closed: float
    decayed: float

    @property
    def imbalance(self) -> float:
        return self.deposited - (self.alive + self.swept + self.closed + self.decayed)


_BAR_FIELDS = ("open_time", "open", "high", "low", "close", "volume", "sweep_low", "sweep_high", "entry")
_LEVEL_FIELDS = {"price": np.float64, "deposit": np.float64, "created": np.int64, "sweep": np.int64,
                 "tier": np.int8, "side": np.int8}  # fmt: skip


class LiquidationEngine:
    """Estimated liquidation levels for one symbol at one bar interval."""

    def __init__(self, params: ModelParams, interval_ms: int, backend: Backend | None = None) -> None:
        self.params = params
        self.interval_ms = interval_ms
        self.backend = backend or numpy_backend()
        self.xp: Any = self.backend.xp
        self.kernels = kernels_for(self.backend)
        long_f, short_f = liquidation_factors(params.tiers.leverage, params.brackets, params.position_usd)
        self._factors = np.stack([long_f, short_f])  # (2, K) liquidation price / entry price
        xp = self.xp

        def host(dtype: Any, *shape: int) -> Growable:
            return Growable(np.zeros((0, *shape), dtype), np)

        # per bar, on the host
        self._bars = {k: host(np.int64 if k == "open_time" else np.float64) for k in _BAR_FIELDS}
        self._model = host(np.int8)
        self._oi_close = host(np.float64)
        self._oi_delta = host(np.float64)
        self._decay = host(np.float64)
        self._dep = host(np.float64, 2)
        self._stats = host(np.float64, lifecycle.N_STATS)
        # per level and the log factor, on the backend
        self._lv = {k: Growable(xp.zeros(0, dtype), xp) for k, dtype in _LEVEL_FIELDS.items()}
        self._log_factor = Growable(xp.zeros(0), xp)
        # Levels not yet swept, per side (0 long, 1 short), with their prices kept contiguous so
        # a live bar checks them with one comparison each.
        self._alive_idx = [xp.zeros(0, np.int64), xp.zeros(0, np.int64)]
        self._alive_price = [xp.zeros(0), xp.zeros(0)]
        self._last_swept: Any = None  # levels swept by the last bar, for rollback
        self._last_added = [0, 0]  # alive levels the last bar appended per side (the lists' tail)
        self._alive_total = 0.0
        self._alive_before_last: float | None = 0.0  # alive after the bar before the last (rollback)
        self.lifecycle_info = lifecycle.Lifecycle(None, np.zeros((0, lifecycle.N_STATS)), 0.0)
        # What each bar swept per side ((bars, 2): long, short), the notional and the notional × price, summed
        # on first use and kept up to date bar by bar; rows from `_swept_upto` on are stale (a new or revised bar).
        self._swept_usd = host(np.float64, 2)
        self._swept_usd_price = host(np.float64, 2)
        self._swept_upto = 0
        # which write (a build, a new or revised bar) last set each bar, and how many truncations: state_mark
        self._writes = 0
        self._written = host(np.int64)
        self._truncations = 0

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls,
        candles: Candles,
        open_interest: OpenInterest | None = None,
        params: ModelParams | None = None,
        *,
        oi_close: np.ndarray | None = None,
        backend: Backend | None = None,
    ) -> LiquidationEngine:
        """Full build over all bars. oi_close (per bar, NaN = unknown) overrides open_interest."""
        params = params or ModelParams()
        eng = cls(params, candles.interval_ms, backend)
        if oi_close is None:
            oi_close = open_interest_at_close(candles, open_interest, params.oi_max_gap_bars)
        eng._add_bars(candles, np.asarray(oi_close, np.float64), full=True)
        return eng

    def append_bar(self, row: Candles, oi_close: float | None = None) -> None:
        """Add the next bar (a one-row Candles) with open interest at its close (None: unknown)."""
        if len(row) != 1:
            raise ValueError("append_bar takes exactly one bar")
        if self.n_bars and int(row.open_time[0]) <= int(self._bars["open_time"].a[-1]):
            raise ValueError("append_bar needs a bar newer than the last one")
        self._add_bars(row, np.array([np.nan if oi_close is None else float(oi_close)]), full=False)

    def revise_last_bar(self, row: Candles, oi_close: float | None = None) -> None:
        """Replace the last bar (a live bar that moved, as a one-row Candles) and recompute only it."""
        if not self.n_bars:
            raise ValueError("no bar to revise")
        if int(row.open_time[0]) != int(self._bars["open_time"].a[-1]):
            raise ValueError("revise_last_bar needs the same open time as the last bar")
        self._rollback_last()
        self.append_bar(row, oi_close)

    def truncate(self, n_bars: int) -> None:
        """Rewind to the state after the first `n_bars` bars: the same numbers as a build on those
        bars (bar replay steps back with it).

        Levels are appended in creation order and a level's sweep bar is set once, by the bar that
        reaches it, so the earlier state is still in the arrays: drop the newer levels and bars,
        and revive the levels swept after the cut. One pass over the levels (a few ms for a year
        of 5-minute bars), where a rebuild redoes the whole history."""
        if not 1 <= n_bars <= self.n_bars:
            raise ValueError(f"truncate needs 1..{self.n_bars} bars, got {n_bars}")
        if n_bars == self.n_bars:
            return
        self._truncations += 1
        xp, j = self.xp, n_bars - 1
        lv = self._lv
        keep = count_upto(xp, lv["created"].a, j, "right")
        for g in lv.values():
            g.truncate(keep)
        sweep = lv["sweep"].a
        sweep[sweep > j] = NEVER
        for g in (*self._bars.values(), self._model, self._oi_close, self._oi_delta, self._decay, self._dep,
                  self._log_factor, self._stats, self._written):  # fmt: skip
            g.truncate(n_bars)
        self._swept_upto = min(self._swept_upto, n_bars)
        side, created = lv["side"].a, lv["created"].a
        for k, s in enumerate((LONG, SHORT)):
            alive = xp.nonzero((sweep == NEVER) & (side == s))[0]
            self._alive_idx[k] = alive
            self._alive_price[k] = lv["price"].a[alive]
            self._last_added[k] = int(xp.count_nonzero(created[alive] == j))
        self._alive_before_last = None
        self._last_swept = None
        alive_now = float(self._stats.a[j, lifecycle.STAT_ALIVE])
        # NaN: the statistics of a device build are not kept
        self._alive_total = alive_now if alive_now == alive_now else float(self.alive_at(j)[1].sum())

    def _rollback_last(self) -> None:
        xp, j = self.xp, self.n_bars - 1
        sweep = self._lv["sweep"]
        first_new = count_upto(xp, self._lv["created"].a, j, "left")
        revived = self._last_swept
        if revived is None:
            revived = xp.nonzero(sweep.a[:first_new] == j)[0]
        sweep.a[revived] = NEVER
        for g in self._lv.values():
            g.truncate(first_new)
        rev_side = self._lv["side"].a[revived]
        for k, s in enumerate((LONG, SHORT)):
            # the bar's own alive levels were appended last, so they are the tail of the alive lists
            keep = len(self._alive_idx[k]) - self._last_added[k]
            back = revived[rev_side == s]
            self._alive_idx[k] = xp.concatenate([self._alive_idx[k][:keep], back])
            self._alive_price[k] = xp.concatenate([self._alive_price[k][:keep], self._lv["price"].a[back]])
        for g in (*self._bars.values(), self._model, self._oi_close, self._oi_delta, self._decay, self._dep,
                  self._log_factor, self._stats, self._written):  # fmt: skip
            g.truncate(j)
        self._swept_upto = min(self._swept_upto, j)
        self._alive_total = self._alive_after_previous()
        self._alive_before_last = None
        self._last_swept = None

    def _alive_after_previous(self) -> float:
        """Alive notional after the bar before the last one removed (0 before the first bar)."""
        if self._alive_before_last is not None:
            return self._alive_before_last
        j = self.n_bars - 1
        if j < 0:
            return 0.0
        v = float(self._stats.a[j, lifecycle.STAT_ALIVE])
        return v if v == v else float(self.alive_at(j)[1].sum())  # NaN: not kept by a device build

    def _add_bars(self, candles: Candles, oi_close: np.ndarray, *, full: bool) -> None:
        j0 = self.n_bars
        n_new = len(candles)
        if n_new == 0:
            return
        if full and j0:
            raise ValueError("a full build starts from an empty engine")
        prev_oi = self._oi_close.a[-1] if j0 else np.nan
        oi_delta = np.diff(np.concatenate([[prev_oi], oi_close]))
        ops = compute_openings(candles, oi_delta, self.params, starts_series=j0 == 0)
        entry, entry_weight = entry_points(candles, self.params.entry_points)

        self._writes += 1
        self._written.extend(np.full(n_new, self._writes, np.int64))
        b = self._bars
        b["open_time"].extend(candles.open_time)
        for k in ("open", "high", "low", "close", "volume"):
            b[k].extend(getattr(candles, k))
        b["sweep_low"].extend(candles.sweep_low())
        b["sweep_high"].extend(candles.sweep_high())
        b["entry"].extend(candles.entry_price())
        self._model.extend(ops.model)
        self._oi_close.extend(oi_close)
        self._oi_delta.extend(oi_delta)
        self._decay.extend(ops.decay_rate)
        self._dep.extend(np.stack([ops.long_usd, ops.short_usd], axis=1))
        if full:
            self._build(entry, entry_weight, ops.long_usd, ops.short_usd)
        else:
            self._add_one_bar(entry, entry_weight, ops.long_usd, ops.short_usd)

    def _build(
        self, entry: np.ndarray, entry_weight: np.ndarray, long_usd: np.ndarray, short_usd: np.ndarray
    ) -> None:
        """All bars at once, on the backend: levels → sweep bars → lifecycle."""
        xp, n = self.xp, self.n_bars
        (entry, entry_weight, long_usd, short_usd, sweep_low, sweep_high, oi_delta, decay) = _upload(
            xp, entry, entry_weight, long_usd, short_usd, self.sweep_low, self.sweep_high, self._oi_delta.a,
            self._decay.a,
        )  # fmt: skip
        new = self.kernels.create_levels(
            entry, entry_weight, long_usd, short_usd, self._factors, self.params.tiers.weight, 0
        )
        sweep = self.kernels.sweep_bars(sweep_low, sweep_high, new.created, new.price, new.side)
        for name, v in new.columns().items():
            self._lv[name].extend(v, adopt=True)
        self._lv["sweep"].extend(sweep, adopt=True)
        for k, s in enumerate((LONG, SHORT)):
            alive = xp.nonzero((sweep == NEVER) & (new.side == s))[0]
            self._last_added[k] = int(xp.count_nonzero(new.created[alive] == n - 1))
            self._alive_idx[k] = alive
            self._alive_price[k] = new.price[alive]
        lc = self.kernels.lifecycle(
            new.created,
            new.deposit,
            new.side,
            sweep,
            oi_delta,
            decay,
            new.deposit_total,
            self.params.min_survival,
        )
        self._log_factor.extend(lc.log_factor, adopt=True)
        self._stats.extend(lc.stats, adopt=True)
        self._alive_total = lc.alive
        self._alive_before_last = None
        self._last_swept = None
        self.lifecycle_info = lc

    def _add_one_bar(
        self, entry: np.ndarray, entry_weight: np.ndarray, long_usd: np.ndarray, short_usd: np.ndarray
    ) -> None:
        """A live bar: its sweeps among the alive levels, its levels (a few dozen numbers, made on
        the host), its close step."""
        xp, j = self.xp, self.n_bars - 1
        new = create_levels(
            entry, entry_weight, long_usd, short_usd, self._factors, self.params.tiers.weight, j, np
        )
        swept = self._sweep_alive_by(j)
        n_old = self.n_levels
        m = len(new.price)
        for name, v in new.columns().items():
            self._lv[name].extend(xp.asarray(v))
        self._lv["sweep"].extend(xp.full(m, NEVER, np.int64))
        for k, s in enumerate((LONG, SHORT)):
            mine = np.nonzero(new.side == s)[0]
            self._last_added[k] = len(mine)
            self._alive_idx[k] = xp.concatenate([self._alive_idx[k], xp.asarray(n_old + mine)])
            self._alive_price[k] = xp.concatenate([self._alive_price[k], xp.asarray(new.price[mine])])
        self._last_swept = swept
        self._log_factor.extend(xp.zeros(1))
        self._stats.extend(np.zeros((1, lifecycle.N_STATS)))
        lv = self.levels()
        self._alive_before_last = self._alive_total
        self._alive_total = self.kernels.lifecycle_bar(
            j, self._log_factor.a, self._alive_total, self._oi_delta.a, self._decay.a, new.deposit_total, swept,
            lv["created"], lv["deposit"], lv["side"], self.params.min_survival, self._stats.a,
        )  # fmt: skip

    def _sweep_alive_by(self, j: int) -> Any:
        """Mark the alive levels that bar j reaches (sweep_bars for one bar); returns them."""
        xp = self.xp
        low, high = float(self.sweep_low[j]), float(self.sweep_high[j])
        swept = []
        for k, s in enumerate((LONG, SHORT)):
            hit = reached(self._alive_price[k], s, low, high)
            if bool(hit.any()):
                swept.append(self._alive_idx[k][hit])
                self._alive_idx[k] = self._alive_idx[k][~hit]
                self._alive_price[k] = self._alive_price[k][~hit]
        if not swept:
            return xp.zeros(0, np.int64)
        out = xp.sort(xp.concatenate(swept))  # level order, as the full build sums them
        self._lv["sweep"].a[out] = j
        return out

    # ------------------------------------------------------------------ state access

    @property
    def n_bars(self) -> int:
        return self._bars["open_time"].n

    @property
    def n_levels(self) -> int:
        return self._lv["price"].n

    @property
    def open_time(self) -> np.ndarray:
        return self._bars["open_time"].a  # type: ignore[no-any-return]

    def bar_column(self, name: str) -> np.ndarray:
        return self._bars[name].a  # type: ignore[no-any-return]

    @property
    def sweep_low(self) -> np.ndarray:
        return self._bars["sweep_low"].a  # type: ignore[no-any-return]

    @property
    def sweep_high(self) -> np.ndarray:
        return self._bars["sweep_high"].a  # type: ignore[no-any-return]

    @property
    def close(self) -> np.ndarray:
        return self._bars["close"].a  # type: ignore[no-any-return]

    @property
    def log_factor(self) -> Any:
        """Running log of the close/decay factor per bar, on the backend: a level created at the end
        of bar c holds deposit × exp(log_factor[t] − log_factor[c]) at the end of bar t."""
        return self._log_factor.a

    @property
    def model(self) -> np.ndarray:
        return self._model.a  # type: ignore[no-any-return]

    @property
    def deposits(self) -> np.ndarray:
        """(bars, 2) new long / short notional per bar."""
        return self._dep.a  # type: ignore[no-any-return]

    @property
    def stats(self) -> np.ndarray:
        """(bars, lifecycle.N_STATS) what each bar swept, closed and decayed, and what stayed alive
        (NaN for bars of a device build: the device solves the log factor only)."""
        return self._stats.a  # type: ignore[no-any-return]

    def levels(self) -> dict[str, Any]:
        """All levels ever created (views on the backend, in creation order)."""
        return {k: g.a for k, g in self._lv.items()}

    def bars_closed_by(self, times_ms: Any) -> np.ndarray:
        """Per instant, the index of the last bar whose close is at or before it (−1: none yet)."""
        close = self.open_time + self.interval_ms
        return np.searchsorted(close, np.asarray(times_ms, np.int64), "right").astype(np.int64) - 1

    def last_bar_levels(self) -> tuple[Any, int]:
        """What the last bar changed: the levels it swept (indices, level order) and the first level it created
        (its levels are those from there to the end)."""
        xp, j = self.xp, self.n_bars - 1
        if j < 0:
            return xp.zeros(0, np.int64), 0
        swept = self._last_swept
        if swept is None:  # after a full build or a rollback: the sweep bars say it
            swept = xp.nonzero(self._lv["sweep"].a == j)[0]
        return swept, count_upto(xp, self._lv["created"].a, j, "left")

    def bar_at(self, time_ms: int) -> int:
        """Index of the bar containing time_ms (clamped to the series)."""
        i = int(np.searchsorted(self.open_time, time_ms, "right")) - 1
        return int(np.clip(i, 0, self.n_bars - 1))

    def alive_at(self, bar: int) -> tuple[Any, Any]:
        """Indices of levels alive at the end of bar index `bar`, and their notional then."""
        xp, lv, lf = self.xp, self.levels(), self.log_factor
        created = lv["created"]
        last = count_upto(xp, created, bar, "right")  # levels are in creation order
        idx = xp.nonzero(lv["sweep"][:last] > bar)[0]
        usd = lv["deposit"][idx] * xp.exp(lf[bar] - lf[created[idx]])
        return idx, usd

    def sweeps(self, start_bar: int = 0, end_bar: int | None = None) -> SweepEvents:
        """Levels swept in bars [start_bar, end_bar), with their notional just before the sweep."""
        end_bar = self.n_bars if end_bar is None else end_bar
        sweep = self._lv["sweep"].a
        return self._sweep_events(self.xp.nonzero((sweep >= start_bar) & (sweep < end_bar))[0])

    def _sweep_events(self, idx: Any) -> SweepEvents:
        """The swept levels `idx` (level order) as events, on the host."""
        xp, lv, lf = self.xp, self.levels(), self.log_factor
        bar = lv["sweep"][idx]
        prev = xp.where(bar > 0, lf[xp.maximum(bar - 1, 0)], 0.0)
        usd = lv["deposit"][idx] * xp.exp(prev - lf[lv["created"][idx]])
        host = self.backend.asnumpy
        bar_h = host(bar)
        return SweepEvents(
            bar=bar_h,
            time_ms=self.open_time[bar_h],
            price=host(lv["price"][idx]),
            side=host(lv["side"][idx]),
            tier=host(lv["tier"][idx]),
            usd=host(usd),
        )

    def sweep_totals(self, start_bar: int = 0, end_bar: int | None = None) -> SweepTotals:
        """What bars [start_bar, end_bar) swept, per (bar, side): the sums of `sweeps` (in level order)."""
        start_bar = max(0, start_bar)
        return SweepTotals.from_bars(start_bar, *self.swept_by_bar(start_bar, end_bar))

    def state_mark(self) -> tuple[int, ...]:
        """A mark of the bars now: `changed_from(mark)` later says from which bar on the state at a bar's end
        (its alive levels, its sweeps) may differ from when the mark was taken, so that a live chart recomputes
        only that tail."""
        return (id(self), self.n_bars, self._writes, self._truncations)

    def changed_from(self, mark: tuple[int, ...]) -> int:
        """The first bar whose state may have changed since `mark`: the bars added since, and the last bar then
        when it was revised since; any bar after a truncation or for another engine's mark."""
        owner, n, writes, cuts = mark
        if owner != id(self) or cuts != self._truncations or n > self.n_bars:
            return 0
        if n and int(self._written.a[n - 1]) > writes:
            return n - 1
        return n

    def swept_by_bar(self, start_bar: int = 0, end_bar: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """((B, 2), (B, 2)): per bar of [start_bar, end_bar) and side (long, short), the notional swept and
        the notional × price (read-only views)."""
        end_bar = self.n_bars if end_bar is None else min(end_bar, self.n_bars)
        start_bar = max(0, min(start_bar, end_bar))
        if self._swept_upto < end_bar:
            self._sum_sweeps()
        usd, usd_price = self._swept_usd.a[start_bar:end_bar], self._swept_usd_price.a[start_bar:end_bar]
        usd.flags.writeable = usd_price.flags.writeable = False
        return usd, usd_price

    def _sum_sweeps(self) -> None:
        """The per-bar sweep sums of the bars from `_swept_upto` on: from the last bar's swept levels when only
        it is missing (a live bar), otherwise one pass over the levels."""
        xp, j0, n = self.xp, self._swept_upto, self.n_bars
        if j0 == n - 1 and self._last_swept is not None:
            idx = self._last_swept
        else:
            sweep = self._lv["sweep"].a
            idx = xp.nonzero((sweep >= j0) & (sweep < n))[0]
        ev = self._sweep_events(idx)
        key = (ev.bar - j0) * 2 + (ev.side == SHORT)
        usd = np.bincount(key, weights=ev.usd, minlength=2 * (n - j0)).reshape(-1, 2)
        usd_price = np.bincount(key, weights=ev.usd * ev.price, minlength=2 * (n - j0)).reshape(-1, 2)
        self._swept_usd.truncate(j0)
        self._swept_usd.extend(usd)
        self._swept_usd_price.truncate(j0)
        self._swept_usd_price.extend(usd_price)
        self._swept_upto = n

    def budget(self) -> Budget:
        st = self._stats.a
        if np.isnan(st).any():
            raise ValueError("the budget needs the per-bar statistics of the CPU lifecycle")
        alive = float(self.alive_at(self.n_bars - 1)[1].sum()) if self.n_bars else 0.0
        return Budget(
            deposited=float(self._lv["deposit"].a.sum()),
            alive=alive,
            swept=float(st[:, lifecycle.STAT_SWEPT_LONG].sum() + st[:, lifecycle.STAT_SWEPT_SHORT].sum()),
            closed=float(st[:, lifecycle.STAT_CLOSED].sum()),
            decayed=float(st[:, lifecycle.STAT_DECAYED].sum()),
        )

    def nbytes(self) -> int:
        """Memory the engine's arrays hold (their capacity, host and backend together)."""
        held = [*self._lv.values(), *self._bars.values(), self._model, self._oi_close, self._oi_delta,
                self._decay, self._dep, self._stats, self._log_factor, self._swept_usd,
                self._swept_usd_price, self._written]  # fmt: skip
        alive = [*self._alive_idx, *self._alive_price]
        return sum(int(g.capacity_nbytes) for g in held) + sum(int(a.nbytes) for a in alive)

    def coverage(self) -> list[tuple[int, int, str]]:
        """Which model produced the openings over which span of bars."""
        return describe_coverage(self.open_time, self.model, self.interval_ms)

    def model_label(self, start_bar: int = 0, end_bar: int | None = None) -> str:
        m = self.model[start_bar:end_bar]
        oi = int(np.count_nonzero(m == MODEL_OI))
        vol = int(np.count_nonzero(m == MODEL_VOLUME))
        if vol == 0:
            return "OI model"
        if oi == 0:
            return "volume model"
        return f"OI model ({_bars(oi)}) + volume model ({_bars(vol)} without open interest)"


def _upload(xp: Any, *host: np.ndarray) -> tuple[Any, ...]:
    """Host arrays on the backend: as they are for NumPy, in one transfer for CuPy."""
    if xp is np:
        return host
    flat = np.concatenate([np.ascontiguousarray(a, np.float64).reshape(-1) for a in host])
    dev = xp.asarray(flat)
    out, at = [], 0
    for a in host:
        out.append(dev[at : at + a.size].reshape(a.shape))
        at += a.size
    return tuple(out)


def _bars(n: int) -> str:
    return f"{n} bar" if n == 1 else f"{n} bars"

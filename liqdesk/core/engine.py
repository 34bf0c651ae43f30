"""The liquidation-level engine: levels created from openings, swept by price, closed pro rata.

State is a set of levels (price, deposit, creation bar, sweep bar, tier, side) plus one running
log-factor per bar for closes and decay (see lifecycle.py). Everything the app shows is derived
from that state: heatmap grids (grid.py), the liquidation map and magnets (liqmap.py), sweep events.

A full build is vectorised; `append_bar` and `revise_last_bar` update the state for one bar
without touching history and give the same numbers as a rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liqdesk.core import lifecycle
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
from liqdesk.core.sweeps import NEVER, sweep_bars


class _Growable:
    """A NumPy array with amortised O(1) appends along axis 0."""

    def __init__(self, data: np.ndarray) -> None:
        self._buf = np.array(data, copy=True)
        self.n = len(data)

    @property
    def a(self) -> np.ndarray:
        return self._buf[: self.n]

    def extend(self, rows: np.ndarray, *, adopt: bool = False) -> None:
        """Append rows; adopt=True lets an empty buffer take over `rows` (only for arrays the engine owns)."""
        if adopt and self.n == 0 and len(rows) > len(self._buf) and rows.flags.writeable:
            self._buf = np.ascontiguousarray(rows)  # a build adopts its arrays: no second copy
            self.n = len(rows)
            return
        need = self.n + len(rows)
        if need > len(self._buf):
            # headroom so the first live appends after a big build do not copy everything
            cap = max(need + need // 8, 2 * len(self._buf), 64)
            grown = np.empty((cap, *self._buf.shape[1:]), dtype=self._buf.dtype)
            grown[: self.n] = self._buf[: self.n]
            self._buf = grown
        self._buf[self.n : need] = rows
        self.n = need

    def truncate(self, n: int) -> None:
        self.n = min(self.n, n)


@dataclass(frozen=True)
class SweepEvents:
    bar: np.ndarray
    time_ms: np.ndarray  # open time of the bar that swept the level
    price: np.ndarray
    side: np.ndarray  # LONG / SHORT
    tier: np.ndarray
    usd: np.ndarray  # notional alive just before the sweep

    def __len__(self) -> int:
        return len(self.bar)


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


class LiquidationEngine:
    """Estimated liquidation levels for one symbol at one bar interval."""

    def __init__(self, params: ModelParams, interval_ms: int) -> None:
        self.params = params
        self.interval_ms = interval_ms
        self._long_f, self._short_f = liquidation_factors(
            params.tiers.leverage, params.brackets, params.position_usd
        )
        z = np.zeros(0)
        self._bars = {k: _Growable(np.zeros(0, np.int64) if k == "open_time" else z) for k in _BAR_FIELDS}
        self._model = _Growable(np.zeros(0, np.int8))
        self._oi_close = _Growable(z)
        self._oi_delta = _Growable(z)
        self._decay = _Growable(z)
        self._dep = _Growable(np.zeros((0, 2)))
        self._log_c = _Growable(z)
        self._stats = _Growable(np.zeros((0, lifecycle.N_STATS)))
        self._lv_price = _Growable(z)
        self._lv_dep = _Growable(z)
        self._lv_created = _Growable(np.zeros(0, np.int64))
        self._lv_sweep = _Growable(np.zeros(0, np.int64))
        self._lv_tier = _Growable(np.zeros(0, np.int8))
        self._lv_side = _Growable(np.zeros(0, np.int8))
        # Levels not yet swept, per side (0 long, 1 short), with their prices kept contiguous so
        # a live bar checks them with one comparison each.
        self._alive_idx = [np.zeros(0, np.int64), np.zeros(0, np.int64)]
        self._alive_price = [np.zeros(0), np.zeros(0)]
        self._last_swept: np.ndarray | None = None  # levels swept by the last bar, for rollback
        self._last_added = [0, 0]  # alive levels the last bar appended per side (the lists' tail)
        self._alive_total = 0.0

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls,
        candles: Candles,
        open_interest: OpenInterest | None = None,
        params: ModelParams | None = None,
        *,
        oi_close: np.ndarray | None = None,
    ) -> LiquidationEngine:
        """Full build over all bars. oi_close (per bar, NaN = unknown) overrides open_interest."""
        params = params or ModelParams()
        eng = cls(params, candles.interval_ms)
        if oi_close is None:
            oi_close = open_interest_at_close(candles, open_interest, params.oi_max_gap_bars)
        eng._add_bars(candles, np.asarray(oi_close, np.float64), full=True)
        return eng

    def append_bar(self, bar: Candles, oi_close: float | None = None) -> None:
        """Add the next bar (a one-row Candles) with open interest at its close (None: unknown)."""
        if len(bar) != 1:
            raise ValueError("append_bar takes exactly one bar")
        if self.n_bars and int(bar.open_time[0]) <= int(self._bars["open_time"].a[-1]):
            raise ValueError("append_bar needs a bar newer than the last one")
        self._add_bars(bar, np.array([np.nan if oi_close is None else float(oi_close)]), full=False)

    def revise_last_bar(self, bar: Candles, oi_close: float | None = None) -> None:
        """Replace the last bar (a live bar that moved) and recompute only that bar."""
        if not self.n_bars:
            raise ValueError("no bar to revise")
        if int(bar.open_time[0]) != int(self._bars["open_time"].a[-1]):
            raise ValueError("revise_last_bar needs the same open time as the last bar")
        self._rollback_last()
        self.append_bar(bar, oi_close)

    def _rollback_last(self) -> None:
        j = self.n_bars - 1
        first_new = int(np.searchsorted(self._lv_created.a, j, "left"))
        revived = self._last_swept
        if revived is None:
            revived = np.nonzero(self._lv_sweep.a[:first_new] == j)[0]
        self._lv_sweep.a[revived] = NEVER
        for g in (
            self._lv_price,
            self._lv_dep,
            self._lv_created,
            self._lv_sweep,
            self._lv_tier,
            self._lv_side,
        ):
            g.truncate(first_new)
        rev_side = self._lv_side.a[revived]
        for k, s in enumerate((LONG, SHORT)):
            # the bar's own alive levels were appended last, so they are the tail of the alive lists
            keep = len(self._alive_idx[k]) - self._last_added[k]
            back = revived[rev_side == s]
            self._alive_idx[k] = np.concatenate([self._alive_idx[k][:keep], back])
            self._alive_price[k] = np.concatenate([self._alive_price[k][:keep], self._lv_price.a[back]])
        for g in (*self._bars.values(), self._model, self._oi_close, self._oi_delta, self._decay, self._dep,
                  self._log_c, self._stats):  # fmt: skip
            g.truncate(j)
        self._alive_total = float(self._stats.a[-1, lifecycle.STAT_ALIVE]) if j else 0.0
        self._last_swept = None

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
        long_new, short_new, model, decay = ops.long_usd, ops.short_usd, ops.model, ops.decay_rate

        b = self._bars
        b["open_time"].extend(candles.open_time)
        for k in ("open", "high", "low", "close", "volume"):
            b[k].extend(getattr(candles, k))
        b["sweep_low"].extend(candles.sweep_low())
        b["sweep_high"].extend(candles.sweep_high())
        b["entry"].extend(candles.entry_price())
        self._model.extend(model)
        self._oi_close.extend(oi_close)
        self._oi_delta.extend(oi_delta)
        self._decay.extend(decay)
        self._dep.extend(np.stack([long_new, short_new], axis=1))
        self._log_c.extend(np.zeros(n_new))
        self._stats.extend(np.zeros((n_new, lifecycle.N_STATS)))

        price, dep, created, tier, side = self._new_levels(candles, long_new, short_new, j0)
        n_old_levels = self._lv_price.n
        swept_now = np.zeros(0, np.int64)
        if full:
            sweep = sweep_bars(self.sweep_low[j0:], self.sweep_high[j0:], created - j0, price, side)
            sweep = np.where(sweep == NEVER, NEVER, sweep + j0)
        else:
            sweep = np.full(len(price), NEVER, np.int64)
            swept_now = self._sweep_alive_by(j0)
        for g, v in ((self._lv_price, price), (self._lv_dep, dep), (self._lv_created, created),
                     (self._lv_sweep, sweep), (self._lv_tier, tier), (self._lv_side, side)):  # fmt: skip
            g.extend(v, adopt=True)
        for k, s in enumerate((LONG, SHORT)):
            new_alive = np.nonzero((sweep == NEVER) & (side == s))[0]
            self._last_added[k] = int(np.count_nonzero(created[new_alive] == j0 + n_new - 1))
            self._alive_idx[k] = np.concatenate([self._alive_idx[k], n_old_levels + new_alive])
            self._alive_price[k] = np.concatenate([self._alive_price[k], price[new_alive]])
        self._last_swept = swept_now if not full else None

        deposit_total = np.bincount(created - j0, weights=dep, minlength=n_new)
        if full:
            ptr, swept_levels = lifecycle.group_by_bar(self._lv_sweep.a, j0, j0 + n_new)
        else:  # one bar: the levels it swept, in level order like group_by_bar
            ptr, swept_levels = np.array([0, len(swept_now)], np.int64), swept_now
        self._alive_total = lifecycle.run_lifecycle(
            j0,
            j0 + n_new,
            self._log_c.a,
            self._alive_total,
            self._oi_delta.a,
            self._decay.a,
            deposit_total,
            ptr,
            swept_levels,
            self._lv_created.a,
            self._lv_dep.a,
            self._lv_side.a,
            self.params.min_survival,
            self._stats.a,
        )

    def _sweep_alive_by(self, j: int) -> np.ndarray:
        """Mark alive levels that bar j reaches (the incremental twin of sweep_bars); returns them."""
        swept = []
        for k, hit_of in ((0, lambda p: p >= self.sweep_low[j]), (1, lambda p: p <= self.sweep_high[j])):
            hit = hit_of(self._alive_price[k])
            if hit.any():
                swept.append(self._alive_idx[k][hit])
                self._alive_idx[k] = self._alive_idx[k][~hit]
                self._alive_price[k] = self._alive_price[k][~hit]
        if not swept:
            return np.zeros(0, np.int64)
        out = np.sort(np.concatenate(swept))  # level order, as the full build sums them
        self._lv_sweep.a[out] = j
        return out

    def _new_levels(
        self, candles: Candles, long_new: np.ndarray, short_new: np.ndarray, j0: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Levels of each new bar, ordered bar → side → tier → entry point; empty deposits dropped."""
        n = len(candles)
        k = len(self.params.tiers)
        ep, ew = entry_points(candles, self.params.entry_points)  # (n, S)
        s = ep.shape[1]
        factors = np.stack([self._long_f, self._short_f])  # (2, K)
        price = ep[:, None, None, :] * factors[None, :, :, None]  # (n, 2, K, S)
        side_dep = np.stack([long_new, short_new], axis=1)  # (n, 2)
        dep = (
            side_dep[:, :, None, None] * self.params.tiers.weight[None, None, :, None] * ew[:, None, None, :]
        )
        created = np.broadcast_to(np.arange(j0, j0 + n)[:, None, None, None], price.shape)
        tier = np.broadcast_to(np.arange(k, dtype=np.int8)[None, None, :, None], price.shape)
        side = np.broadcast_to(np.array([LONG, SHORT], np.int8)[None, :, None, None], price.shape)
        keep = (dep > 0).reshape(-1)
        del s
        return (
            price.reshape(-1)[keep],
            dep.reshape(-1)[keep],
            created.reshape(-1)[keep].astype(np.int64),
            tier.reshape(-1)[keep],
            side.reshape(-1)[keep],
        )

    # ------------------------------------------------------------------ state access

    @property
    def n_bars(self) -> int:
        return self._log_c.n

    @property
    def n_levels(self) -> int:
        return self._lv_price.n

    @property
    def open_time(self) -> np.ndarray:
        return self._bars["open_time"].a

    def bar_column(self, name: str) -> np.ndarray:
        return self._bars[name].a

    @property
    def sweep_low(self) -> np.ndarray:
        return self._bars["sweep_low"].a

    @property
    def sweep_high(self) -> np.ndarray:
        return self._bars["sweep_high"].a

    @property
    def close(self) -> np.ndarray:
        return self._bars["close"].a

    @property
    def log_factor(self) -> np.ndarray:
        """Running log of the close/decay factor per bar (alive notional ∝ exp(log_factor))."""
        return self._log_c.a

    @property
    def model(self) -> np.ndarray:
        return self._model.a

    @property
    def deposits(self) -> np.ndarray:
        """(bars, 2) new long / short notional per bar."""
        return self._dep.a

    @property
    def stats(self) -> np.ndarray:
        return self._stats.a

    def levels(self) -> dict[str, np.ndarray]:
        """All levels ever created (read-only views)."""
        return {
            "price": self._lv_price.a,
            "deposit": self._lv_dep.a,
            "created": self._lv_created.a,
            "sweep": self._lv_sweep.a,
            "tier": self._lv_tier.a,
            "side": self._lv_side.a,
        }

    def bar_at(self, time_ms: int) -> int:
        """Index of the bar containing time_ms (clamped to the series)."""
        i = int(np.searchsorted(self.open_time, time_ms, "right")) - 1
        return int(np.clip(i, 0, self.n_bars - 1))

    def alive_at(self, bar: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices of levels alive at the end of `bar`, and their notional then."""
        created, sweep = self._lv_created.a, self._lv_sweep.a
        last = int(np.searchsorted(created, bar, "right"))  # levels are in creation order
        idx = np.nonzero(sweep[:last] > bar)[0]
        lc = self._log_c.a
        usd = self._lv_dep.a[idx] * np.exp(lc[bar] - lc[created[idx]])
        return idx, usd

    def sweeps(self, start_bar: int = 0, end_bar: int | None = None) -> SweepEvents:
        """Levels swept in bars [start_bar, end_bar), with their notional just before the sweep."""
        end_bar = self.n_bars if end_bar is None else end_bar
        sweep = self._lv_sweep.a
        idx = np.nonzero((sweep >= start_bar) & (sweep < end_bar))[0]
        bar = sweep[idx]
        lc = self._log_c.a
        prev = np.where(bar > 0, lc[np.maximum(bar - 1, 0)], 0.0)
        usd = self._lv_dep.a[idx] * np.exp(prev - lc[self._lv_created.a[idx]])
        return SweepEvents(
            bar=bar,
            time_ms=self.open_time[bar],
            price=self._lv_price.a[idx],
            side=self._lv_side.a[idx],
            tier=self._lv_tier.a[idx],
            usd=usd,
        )

    def budget(self) -> Budget:
        st = self._stats.a
        _, alive = self.alive_at(self.n_bars - 1) if self.n_bars else (None, np.zeros(0))
        return Budget(
            deposited=float(self._lv_dep.a.sum()),
            alive=float(alive.sum()),
            swept=float(st[:, lifecycle.STAT_SWEPT_LONG].sum() + st[:, lifecycle.STAT_SWEPT_SHORT].sum()),
            closed=float(st[:, lifecycle.STAT_CLOSED].sum()),
            decayed=float(st[:, lifecycle.STAT_DECAYED].sum()),
        )

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


def _bars(n: int) -> str:
    return f"{n} bar" if n == 1 else f"{n} bars"

"""The whole heatmap rebuild on one array module (NumPy, or CuPy on an NVIDIA GPU).

Same model and same numbers as `LiquidationEngine.build` + `render_grid` + display.transform /
default_levels / quantise, but every step after the upload runs where the arrays live, and only
the uint8 display image (P price bins × T columns), the two colour levels and the liquidation-map
vectors at one bar come back to the host.

    host     per-bar inputs derived from Candles with the engine's own methods (VWAP entry, quote
             volume, taker share, mark-price sweep lows/highs) and open interest interpolated to bar
             closes: n × 9 float64, uploaded in one copy and kept on the device (`BarInputs`; a
             parameter change rebuilds from them without another upload). A one-bar update also
             computes its single bar's openings and candidate levels on the host (a few dozen
             numbers); per-level and per-cell work never runs there.
    device   openings + levels (`bar_levels`: bar × side × tier × entry point, empty deposits
             dropped, engine order) → sweep bars (sparse tables + binary lifting) → lifecycle
             (below) → grid, column scale and value transform (`paint_*`) → percentile levels →
             uint8 → liquidation map. device_kernels.py holds the kernels and their CPU twins.

The lifecycle on the device
---------------------------
The engine's close/decay recurrence (lifecycle.py) is serial: the close factor of bar j needs the
alive notional before j, which depends on every earlier factor, and the notional swept in bar j
is Σ deposit · exp(L[j−1] − L[created]) over the levels swept then. One GPU thread walking 105k
bars and 1.7M levels takes tens of milliseconds, and a thread walking only per-bar aggregates
still pays a division and a logarithm per bar on its dependency chain. So the device solves the
same equations as a fixed-point iteration over the bar range, each round of which is parallel:

    given L (log factors):  swept_j = Σ_{levels swept in j} deposit · exp(L[j−1] − L[created])
                                      (one thread per bar; levels sorted by sweep bar once)
                            alive_j = g_j · (alive_{j−1} − swept_j) + deposits_j,  g_j = e^(L_j − L_{j−1})
                                      (linear recurrence: chunked scan, serial carry over chunks)
                            q_j     = log(survive_j) − decay_j from alive_{j−1}, swept_j, ΔOI_j
                                      (the engine's close rule)
                            L'      = L_{t0−1} + cumsum(q)  (chunked scan)

The map is causal (L'[j] depends only on L[< j]), so iterating it reaches the engine's solution
after at most (bars + 1) rounds from any start; in practice max |ΔL| ≤ 1e-12·max(1, |L|) after
~15 rounds for a week of open interest, ~30 for a year of bars with its last 30 days of open
interest, ~60 for a whole year of open interest (6 kernel launches a round). Only bars from the
first one where a close can happen (open interest known and falling) take part: before it L is
the plain cumulative decay, and a volume-model series (no open interest) needs no round at all.
Sums run in a fixed order (no atomics), so the rounds are a deterministic map. The convergence
test of round r is read after round r + 1 is queued, so the GPU never waits for the host. If
`max_rounds` pass without settling (never seen), the recurrence is finished exactly on the host
by lifecycle.run_lifecycle and `LifecycleInfo.fallback` says so.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liqdesk.core import display, lifecycle
from liqdesk.core.backend import Backend, numpy_backend
from liqdesk.core.device_kernels import CupyKernels, LifecycleState, NumpyKernels, chunk_size, kernels_for
from liqdesk.core.grid import PriceBins, column_bars, paint_levels_xp
from liqdesk.core.leverage import liquidation_factors
from liqdesk.core.liqmap import LiquidationMap
from liqdesk.core.openings import MODEL_NONE, MODEL_OI, MODEL_VOLUME, open_interest_at_close
from liqdesk.core.params import ModelParams
from liqdesk.core.series import LONG, SHORT, Candles, OpenInterest
from liqdesk.core.sweeps import NEVER

_HOUR_MS = 3_600_000
_ROWS = ("low", "high", "close", "entry", "quote_usd", "taker_share", "sweep_low", "sweep_high", "oi_close")
_R = {k: i for i, k in enumerate(_ROWS)}
LIFECYCLE_TOL = 1e-12  # stop when max |ΔL| ≤ tol · max(1, max |L|) between two rounds


# ---------------------------------------------------------------------------------------------- inputs


def host_bar_rows(candles: Candles, oi_close: np.ndarray) -> np.ndarray:
    """(9, n) float64: the per-bar inputs, from the same Candles methods the engine uses."""
    return np.stack([
        candles.low, candles.high, candles.close, candles.entry_price(), candles.quote_volume_usd(),
        candles.taker_buy_share(), candles.sweep_low(), candles.sweep_high(),
        np.asarray(oi_close, np.float64),
    ])  # fmt: skip


@dataclass(frozen=True)
class BarInputs:
    """Per-bar model inputs resident on the device (rows of `_ROWS`), plus host times and closes."""

    backend: Backend
    data: Any  # (9, n) float64 on the device
    open_time: np.ndarray  # host int64
    close: np.ndarray  # host float64 (price at the liquidation map's bar)
    interval_ms: int

    @property
    def n(self) -> int:
        return len(self.open_time)

    def row(self, name: str) -> Any:
        return self.data[_R[name]]


def upload_bars(
    candles: Candles,
    open_interest: OpenInterest | None = None,
    params: ModelParams | None = None,
    *,
    oi_close: np.ndarray | None = None,
    backend: Backend | None = None,
) -> BarInputs:
    """Derive the per-bar inputs on the host and copy them to the device in one transfer."""
    be = backend or numpy_backend()
    params = params or ModelParams()
    if oi_close is None:
        oi_close = open_interest_at_close(candles, open_interest, params.oi_max_gap_bars)
    rows = host_bar_rows(candles, oi_close)
    data = be.xp.asarray(rows) if be.is_gpu else rows
    return BarInputs(be, data, np.array(candles.open_time), np.array(candles.close), candles.interval_ms)


# ---------------------------------------------------------------------------------------------- model steps


def openings_xp(
    quote_usd: Any,
    taker_share: Any,
    oi_close: Any,
    params: ModelParams,
    interval_ms: int,
    xp: Any,
    *,
    prev_oi: float = math.nan,
    starts_series: bool = True,
) -> tuple[Any, Any, Any, Any, Any]:
    """(long_usd, short_usd, oi_delta, decay_rate, model): openings.compute_openings on any xp."""
    n = int(quote_usd.shape[0])
    d = xp.empty(n)
    d[:1] = oi_close[:1] - prev_oi
    d[1:] = oi_close[1:] - oi_close[:-1]
    has_oi = xp.isfinite(d)
    volume_opened = params.churn * quote_usd
    opened = xp.where(has_oi, xp.maximum(xp.where(has_oi, d, 0.0), 0.0), volume_opened)
    opened = xp.where(xp.isfinite(opened), opened, 0.0)
    model = xp.where(has_oi, MODEL_OI, MODEL_VOLUME).astype(xp.int8)
    if n and starts_series:
        opened[0] = 0.0
        model[0] = MODEL_NONE
    f = params.taker_floor
    r = f + (1.0 - 2.0 * f) * taker_share
    bar_hours = interval_ms / _HOUR_MS
    decay = xp.zeros(n)
    if params.half_life_h is not None:
        decay[:] = np.log(2.0) * bar_hours / params.half_life_h
    decay = xp.where(model == MODEL_VOLUME, np.log(2.0) * bar_hours / params.volume_half_life_h, decay)
    return 2.0 * opened * r, 2.0 * opened * (1.0 - r), d, decay, model


def entry_points_xp(low: Any, high: Any, entry: Any, points: int, xp: Any) -> tuple[Any, Any]:
    """openings.entry_points on any xp: (n, points) prices and weights."""
    if points == 1:
        return entry[:, None], xp.ones((int(entry.shape[0]), 1))
    lo, hi, ep = low[:, None], high[:, None], entry[:, None]
    frac = xp.asarray((np.arange(points) + 0.5) / points)
    prices = lo + (hi - lo) * frac[None, :]
    half = xp.maximum(xp.maximum(ep - lo, hi - ep), 1e-12)
    w = xp.maximum(1.0 - xp.abs(prices - ep) / (half * (1.0 + 1.0 / points)), 0.0)
    w_sum = w.sum(axis=1, keepdims=True)
    w = xp.where(w_sum > 0, w / xp.where(w_sum > 0, w_sum, 1.0), 1.0 / points)
    return prices, w


def level_constants(
    params: ModelParams, interval_ms: int
) -> tuple[int, int, np.ndarray, np.ndarray, float | None, float]:
    """(K, S, liquidation factors (2, K), tier weights, half-life decay per bar or None, volume decay)."""
    long_f, short_f = liquidation_factors(params.tiers.leverage, params.brackets, params.position_usd)
    bar_hours = interval_ms / _HOUR_MS
    hl = None if params.half_life_h is None else float(np.log(2.0) * bar_hours / params.half_life_h)
    vol = float(np.log(2.0) * bar_hours / params.volume_half_life_h)
    factors = np.ascontiguousarray(np.stack([long_f, short_f]), np.float64)
    weight = np.ascontiguousarray(params.tiers.weight, np.float64)
    return len(params.tiers), params.entry_points, factors, weight, hl, vol


def dense_levels_xp(
    rows: Any,
    params: ModelParams,
    interval_ms: int,
    xp: Any,
    *,
    prev_oi: float = math.nan,
    starts_series: bool = True,
) -> dict[str, Any]:
    """Openings and every candidate level, dense (bar, side, tier, entry point) → (n, 2·K·S).

    The twin of the `bar_levels` kernel, written with the engine's own formulas
    (openings.compute_openings, openings.entry_points, engine._new_levels).
    """
    r = {k: rows[i] for k, i in _R.items()}
    long_new, short_new, d, decay, _ = openings_xp(
        r["quote_usd"], r["taker_share"], r["oi_close"], params, interval_ms, xp,
        prev_oi=prev_oi, starts_series=starts_series,
    )  # fmt: skip
    ep, ew = entry_points_xp(r["low"], r["high"], r["entry"], params.entry_points, xp)
    n, s = int(ep.shape[0]), int(ep.shape[1])
    _, _, factors, weight, _, _ = level_constants(params, interval_ms)
    price = ep[:, None, None, :] * xp.asarray(factors)[None, :, :, None]  # (n, 2, K, S)
    side_dep = xp.stack([long_new, short_new], axis=1)  # (n, 2)
    dep = side_dep[:, :, None, None] * xp.asarray(weight)[None, None, :, None] * ew[:, None, None, :]
    dep = dep.reshape(n, -1)
    # deposit total per bar summed left to right over the kept levels (the engine's bincount order)
    deposit_total = xp.cumsum(xp.where(dep > 0, dep, 0.0), axis=1)[:, -1] if n else xp.zeros(0)
    del s
    return {
        "oi_delta": d,
        "decay": decay,
        "price": price.reshape(n, -1),
        "dep": dep,
        "deposit_total": deposit_total,
    }


def compact_levels(dense: dict[str, Any], params: ModelParams, j0: int, xp: Any) -> dict[str, Any]:
    """Keep levels with a positive deposit, in engine order (bar → side → tier → entry point)."""
    k, s = len(params.tiers), params.entry_points
    dep = dense["dep"].reshape(-1)
    idx = xp.nonzero(dep > 0)[0]
    created = idx // (2 * k * s) + j0
    return {
        "price": dense["price"].reshape(-1)[idx],
        "deposit": dep[idx],
        "created": created.astype(xp.int64),
        "tier": ((idx // s) % k).astype(xp.int8),
        "side": xp.where((idx // (k * s)) % 2 == 0, LONG, SHORT).astype(xp.int8),
    }


@dataclass
class LifecycleInfo:
    rounds: int = 0  # fixed-point rounds run (0: no bar can close, L is the cumulative decay)
    first_bar: int = -1  # first bar where a close can happen (-1: none)
    change: float = 0.0  # max |ΔL| of the last round tested
    fallback: bool = False  # True: did not settle in max_rounds; finished by run_lifecycle on the host


def lifecycle_xp(
    kern: NumpyKernels | CupyKernels,
    created: Any,
    deposit: Any,
    sweep: Any,
    oi_delta: Any,
    decay: Any,
    deposit_total: Any,
    min_survival: float,
    *,
    tol: float = LIFECYCLE_TOL,
    max_rounds: int = 400,
    side: Any = None,
) -> tuple[Any, LifecycleInfo]:
    """The running log factor L per bar (engine.log_factor), by the causal fixed-point iteration."""
    xp = kern.xp
    n = int(oi_delta.shape[0])
    info = LifecycleInfo()
    if n == 0:
        return xp.zeros(0), info
    log_c = kern.linrec(xp.ones(n), -decay, 0.0)  # no closes: L = −cumsum(decay)
    closable = (oi_delta == oi_delta) & (oi_delta < 0.0)
    if not bool(closable.any()):
        return log_c, info
    t0 = int(xp.argmax(closable))  # ≥ 1: bar 0 never has an open-interest change
    info.first_bar = t0
    # alive notional at the end of bar t0 − 1, straight from the levels (L is exact before t0)
    upto = _count_upto(xp, created, t0 - 1, "right")
    c0 = created[:upto]
    alive0 = xp.where(sweep[:upto] > t0 - 1, deposit[:upto] * xp.exp(log_c[t0 - 1] - log_c[c0]), 0.0).sum()
    # levels swept in [t0, n), sorted by sweep bar (ties in level order) → CSR rows per bar
    sel = xp.nonzero((sweep >= t0) & (sweep < n))[0]
    sel = sel[xp.argsort(sweep[sel] * (int(sweep.shape[0]) + 1) + sel)]  # unique keys: order is total
    ptr = xp.ascontiguousarray(xp.searchsorted(sweep[sel], xp.arange(t0, n + 1), "left"), xp.int64)
    st = LifecycleState(
        t0=t0, ptr=ptr, c_sel=xp.ascontiguousarray(created[sel]), d_sel=xp.ascontiguousarray(deposit[sel]),
        log_c=log_c, q=xp.ascontiguousarray(-decay[t0:]), dep_span=deposit_total[t0:], d_span=oi_delta[t0:],
        lam=decay[t0:], alive0=alive0, base=log_c[t0 - 1 : t0].copy(), min_survival=min_survival,
        chunk=chunk_size(n - t0),
    )  # fmt: skip
    # The statistics of round r are read after round r + 1 is queued (the device never waits on
    # the host); stopping one round late only moves L closer to the fixed point.
    pending = None
    for r in range(1, max_rounds + 1):
        handle = kern.lifecycle_round(st)
        if pending is not None:
            change, scale = kern.read_stat(pending)
            info.rounds, info.change = r, change
            if change <= tol * max(1.0, scale):
                return st.log_c, info
        pending = handle
    info.fallback = True  # not settled (never seen): finish exactly with the engine's serial kernel
    return _lifecycle_on_host(
        xp, created, deposit, sweep, oi_delta, decay, deposit_total, min_survival, side
    ), info


def _count_upto(xp: Any, sorted_a: Any, v: int, side: str) -> int:
    """searchsorted for one value (CuPy wants an array, not a Python int, as the value)."""
    return int(xp.searchsorted(sorted_a, xp.asarray(v, dtype=sorted_a.dtype), side))


def _host(xp: Any, a: Any) -> np.ndarray:
    return np.ascontiguousarray(a if xp is np else xp.asnumpy(a))


def _lifecycle_on_host(
    xp: Any,
    created: Any,
    deposit: Any,
    sweep: Any,
    oi_delta: Any,
    decay: Any,
    deposit_total: Any,
    min_survival: float,
    side: Any,
) -> Any:
    n = int(oi_delta.shape[0])
    sw = _host(xp, sweep)
    ptr, levels = lifecycle.group_by_bar(sw, 0, n)
    log_c = np.zeros(n)
    stats = np.zeros((n, lifecycle.N_STATS))
    side_h = _host(xp, side) if side is not None else np.ones(len(sw), np.int8)
    lifecycle.run_lifecycle(
        0, n, log_c, 0.0, _host(xp, oi_delta), _host(xp, decay), _host(xp, deposit_total), ptr, levels,
        _host(xp, created), _host(xp, deposit), side_h, min_survival, stats,
    )  # fmt: skip
    return xp.asarray(log_c)


def quantise_two_tone_xp(tl: Any, ts: Any, levels: tuple[float, float], xp: Any) -> Any:
    """ui.frames.quantise(two_tone=True) on any xp: long 1..127, short 128..255, 0 empty."""
    lo, hi = levels
    span = hi - lo

    def ramp(v: Any, n: int) -> Any:
        return xp.clip(xp.rint((v - lo) / span * (n - 1)), 0, n - 1).astype(xp.uint8)

    long_code = 1 + ramp(tl, 127)
    short_code = 128 + ramp(ts, 128)
    out = xp.where(tl >= ts, long_code, short_code).astype(xp.uint8)
    return xp.where((tl <= 0) & (ts <= 0), xp.uint8(0), out)


# ---------------------------------------------------------------------------------------------- results


@dataclass
class DeviceFrame:
    """What the chart draws for one view: the uint8 image and the liquidation map, on the host.

    The transformed grids stay on the device (`tlong`, `tshort`, (P, T)) so that new levels or a
    new colour mode re-quantise there (`DeviceModel.requantise`).
    """

    image: np.ndarray  # (P, T) uint8, C-contiguous, row = price bin, column = time column
    levels: tuple[float, float]
    time_ms: np.ndarray  # (T,) open time of each column's first bar
    first_bar: np.ndarray
    last_bar: np.ndarray
    bins: PriceBins
    start_bar: int
    end_bar: int
    transform: str
    two_tone: bool
    lmap: LiquidationMap
    tlong: Any = field(repr=False, default=None)  # device (P, T) float32
    tshort: Any = field(repr=False, default=None)
    auto_levels: bool = True


def _bins_of(price: Any, bins: PriceBins, xp: Any) -> Any:
    i = xp.floor((price - bins.lo) / bins.width).astype(xp.int64)  # PriceBins.index
    return xp.where((i >= 0) & (i < bins.n), i, -1)


# ---------------------------------------------------------------------------------------------- model


class _Grow:
    """A 1-D array (NumPy or CuPy) with amortised appends."""

    def __init__(self, xp: Any, data: Any) -> None:
        self.xp = xp
        self.buf = data
        self.n = int(data.shape[0])

    @property
    def a(self) -> Any:
        return self.buf[: self.n]

    def extend(self, rows: Any) -> None:
        need = self.n + int(rows.shape[0])
        if need > int(self.buf.shape[0]):
            grown = self.xp.empty(max(need + need // 8, 64), dtype=self.buf.dtype)
            grown[: self.n] = self.buf[: self.n]
            self.buf = grown
        self.buf[self.n : need] = rows
        self.n = need

    def truncate(self, n: int) -> None:
        self.n = min(self.n, n)


class Phases:
    """Optional per-phase wall times (synchronising the device at each mark: use only to profile)."""

    def __init__(self, backend: Backend, enabled: bool) -> None:
        self.backend, self.enabled = backend, enabled
        self.times: dict[str, float] = {}
        self._t = time.perf_counter()

    def mark(self, name: str) -> None:
        if not self.enabled:
            return
        self.backend.synchronize()
        now = time.perf_counter()
        self.times[name] = self.times.get(name, 0.0) + (now - self._t) * 1000.0
        self._t = now


class DeviceModel:
    """Liquidation levels and log factors on the backend's device; frames come back as uint8."""

    def __init__(self, bars: BarInputs, params: ModelParams) -> None:
        self.bars = bars
        self.backend = bars.backend
        self.xp = bars.backend.xp
        self.params = params
        self.kern = kernels_for(self.xp)
        self.lifecycle: LifecycleInfo = LifecycleInfo()
        self.phases: dict[str, float] = {}

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
    ) -> DeviceModel:
        params = params or ModelParams()
        bars = upload_bars(candles, open_interest, params, oi_close=oi_close, backend=backend)
        return cls.from_bars(bars, params)

    @classmethod
    def from_bars(
        cls, bars: BarInputs, params: ModelParams | None = None, *, profile: bool = False
    ) -> DeviceModel:
        """Full rebuild from resident per-bar inputs (what a parameter change costs)."""
        m = cls(bars, params or ModelParams())
        m._build(profile)
        return m

    def _build(self, profile: bool) -> None:
        xp, kern, p, b = self.xp, self.kern, self.params, self.bars
        ph = Phases(self.backend, profile)
        dense = kern.bar_levels(b.data, p, b.interval_ms, math.nan, True)
        lv = compact_levels(dense, p, 0, xp)
        oi_delta, decay, deposit_total = dense["oi_delta"], dense["decay"], dense["deposit_total"]
        del dense
        ph.mark("openings+levels")
        sweep = kern.sweep_bars(
            b.row("sweep_low"), b.row("sweep_high"), lv["created"], lv["price"], lv["side"]
        )
        ph.mark("sweeps")
        log_c, self.lifecycle = lifecycle_xp(
            kern, lv["created"], lv["deposit"], sweep, oi_delta, decay, deposit_total, p.min_survival,
            side=lv["side"],
        )  # fmt: skip
        ph.mark("lifecycle")
        self._lv = {k: _Grow(xp, v) for k, v in lv.items()}
        self._lv["sweep"] = _Grow(xp, sweep)
        self._log_c = _Grow(xp, log_c)
        # Host state for one-bar updates (the bar's scalar close step runs there): times, closes and
        # the last open interest; the last bars' log factor and alive total are fetched on demand.
        self._open_time = _Grow(np, b.open_time.copy())
        self._close = _Grow(np, b.close.copy())
        self._oi_over: dict[int, float] = {}  # open interest of bars appended or revised live
        self._lc_tail: dict[int, float] = {}
        self._alive_tail: dict[int, float] = {}
        self._n = b.n
        self.phases = ph.times

    # ------------------------------------------------------------------ state

    @property
    def n_bars(self) -> int:
        return self._n

    @property
    def n_levels(self) -> int:
        return self._lv["price"].n

    @property
    def log_factor(self) -> Any:
        return self._log_c.a

    def levels(self) -> dict[str, Any]:
        """Device views, the engine's `levels()` layout."""
        return {k: g.a for k, g in self._lv.items()}

    def _tail(self, bar: int) -> tuple[float, float]:
        """(log factor, alive notional) after `bar`, cached on the host for the one-bar updates."""
        if bar not in self._lc_tail:
            self._lc_tail[bar] = float(self.backend.asnumpy(self._log_c.a[bar : bar + 1])[0])
            self._alive_tail[bar] = self._alive_at(bar)
        return self._lc_tail[bar], self._alive_tail[bar]

    def _alive_at(self, bar: int) -> float:
        xp = self.xp
        lv = self.levels()
        lc = self._log_c.a
        upto = _count_upto(xp, lv["created"], bar, "right")
        c = lv["created"][:upto]
        v = xp.where(lv["sweep"][:upto] > bar, lv["deposit"][:upto] * xp.exp(lc[bar] - lc[c]), 0.0)
        return float(v.sum())

    # ------------------------------------------------------------------ frames

    def frame(
        self,
        bins: PriceBins,
        start_bar: int = 0,
        end_bar: int | None = None,
        columns: int | None = None,
        *,
        transform: str = "sqrt",
        levels: tuple[float, float] | Callable[[Any, Any], tuple[float, float]] | None = None,
        two_tone: bool = False,
        map_bar: int | None = None,
        painter: str = "kernel",
        profile: bool = False,
    ) -> DeviceFrame:
        """Grid → transform → levels → uint8 on the device; image and liquidation map to the host.

        painter: "kernel" (the CUDA painter, or its numba twin grid._paint_levels on NumPy) or
        "xp" (grid.paint_levels_xp: whole-array code on either module; slower, kept for checks).
        levels: fixed (lo, hi); None: percentiles of every non-zero cell; or a function of the
        transformed device grids (tlong, tshort) -> (lo, hi) (the app: percentiles of the cells on
        screen only), called on the device arrays before quantisation.
        """
        xp = self.xp
        ph = Phases(self.backend, profile)
        end_bar = self.n_bars if end_bar is None else end_bar
        display.transform(xp.zeros(1), transform, xp)  # unknown transform: fail before any work
        first, last = column_bars(start_bar, end_bar, columns)
        last_d = xp.asarray(last)
        if painter == "kernel":
            tl, ts = self.kern.paint(
                self.levels(), self._log_c.a, last_d, bins.lo, bins.width, bins.n, transform
            )
        elif painter == "xp":
            long_, short_ = paint_levels_xp(self.levels(), self._log_c.a, last_d, bins, xp)
            tl = xp.ascontiguousarray(display.transform(long_.T, transform, xp), xp.float32)
            ts = xp.ascontiguousarray(display.transform(short_.T, transform, xp), xp.float32)
            del long_, short_
        else:
            raise ValueError(f"unknown painter {painter!r}")
        ph.mark("grid+transform")
        auto = levels is None or callable(levels)
        if callable(levels):
            levels = levels(tl, ts)
        elif levels is None:
            levels = display.default_levels(xp.maximum(tl, ts), xp=xp)
        ph.mark("levels")
        image = self._download(self._quantise(tl, ts, levels, two_tone))
        ph.mark("quantise+download")
        mb = end_bar - 1 if map_bar is None else map_bar
        lmap = self.liquidation_map(bins, mb)
        ph.mark("liqmap")
        self.phases = {**self.phases, **ph.times} if profile else self.phases
        return DeviceFrame(
            image=image, levels=(float(levels[0]), float(levels[1])), time_ms=self.bars_open_time()[first],
            first_bar=first, last_bar=last, bins=bins, start_bar=start_bar, end_bar=end_bar,
            transform=transform, two_tone=two_tone, lmap=lmap, tlong=tl, tshort=ts, auto_levels=auto,
        )  # fmt: skip

    def _download(self, a: Any) -> np.ndarray:
        """The image to the host; from the GPU into page-locked memory (about twice the copy rate
        of pageable memory; CuPy pools the buffers)."""
        if not self.backend.is_gpu:
            return np.ascontiguousarray(a)
        a = self.xp.ascontiguousarray(a)
        if a.size == 0:
            return np.zeros(a.shape, a.dtype)
        mem = self.xp.cuda.alloc_pinned_memory(a.nbytes)
        out = np.frombuffer(mem, a.dtype, a.size).reshape(a.shape)
        self.xp.asnumpy(a, out=out)
        return out

    def _quantise(self, tl: Any, ts: Any, levels: tuple[float, float], two_tone: bool) -> Any:
        xp = self.xp
        if two_tone:
            return quantise_two_tone_xp(tl, ts, levels, xp)
        return xp.ascontiguousarray(display.quantise(tl + ts, levels, xp))

    def requantise(
        self, frame: DeviceFrame, levels: tuple[float, float], two_tone: bool | None = None
    ) -> DeviceFrame:
        """New levels or colour mode: re-quantised on the device from the kept transformed grids."""
        tt = frame.two_tone if two_tone is None else two_tone
        image = self._download(self._quantise(frame.tlong, frame.tshort, levels, tt))
        return _replace(
            frame, image=image, levels=(float(levels[0]), float(levels[1])), two_tone=tt, auto_levels=False
        )

    def bars_open_time(self) -> np.ndarray:
        return self._open_time.a

    def liquidation_map(self, bins: PriceBins, bar: int | None = None) -> LiquidationMap:
        """liqmap.liquidation_map computed on the device; (K, P) vectors come back."""
        xp = self.xp
        bar = self.n_bars - 1 if bar is None else bar
        lv = self.levels()
        lc = self._log_c.a
        upto = _count_upto(xp, lv["created"], bar, "right")
        c = lv["created"][:upto]
        alive = lv["sweep"][:upto] > bar
        usd = xp.where(alive, lv["deposit"][:upto] * xp.exp(lc[bar] - lc[c]), 0.0)
        side, tier = lv["side"][:upto], lv["tier"][:upto].astype(xp.int64)
        b = _bins_of(lv["price"][:upto], bins, xp)
        k = len(self.params.tiers)
        maps, totals = [], []
        for s in (LONG, SHORT):
            on = alive & (side == s)
            inside = on & (b >= 0)
            flat = xp.where(inside, tier * bins.n + b, 0)
            maps.append(
                xp.bincount(flat, weights=xp.where(inside, usd, 0.0), minlength=k * bins.n).reshape(k, bins.n)
            )
            totals.append(xp.where(on, usd, 0.0).sum())
        host = self.backend.asnumpy(
            xp.concatenate([maps[0].reshape(-1), maps[1].reshape(-1), xp.stack(totals)])
        )
        kp = k * bins.n
        return LiquidationMap(
            bar=bar, time_ms=int(self._open_time.a[bar]), price_now=float(self._close.a[bar]), bins=bins,
            tier_labels=self.params.tiers.labels(), long_by_tier=host[:kp].reshape(k, bins.n),
            short_by_tier=host[kp : 2 * kp].reshape(k, bins.n), total_long=float(host[2 * kp]),
            total_short=float(host[2 * kp + 1]),
        )  # fmt: skip

    # ------------------------------------------------------------------ one-bar updates

    def append_bar(self, bar: Candles, oi_close: float | None = None) -> None:
        """The next bar: its openings and levels from the host (a few numbers), the sweep test and
        the swept sums over all levels on the device, the bar's close factor on the host."""
        if len(bar) != 1:
            raise ValueError("append_bar takes exactly one bar")
        if self._n and int(bar.open_time[0]) <= int(self._open_time.a[-1]):
            raise ValueError("append_bar needs a bar newer than the last one")
        xp, p, j = self.xp, self.params, self._n
        oi = np.array([np.nan if oi_close is None else float(oi_close)])
        prev_oi = self._oi_at(j - 1) if j else np.nan
        rows = host_bar_rows(bar, oi)
        dense = dense_levels_xp(rows, p, self.bars.interval_ms, np, prev_oi=prev_oi, starts_series=j == 0)
        new = compact_levels(dense, p, j, np)
        d, lam = float(dense["oi_delta"][0]), float(dense["decay"][0])

        lv = self.levels()
        lc = self._log_c.a
        prev, alive_prev = self._tail(j - 1) if j else (0.0, 0.0)
        sl, sh = float(rows[_R["sweep_low"]][0]), float(rows[_R["sweep_high"]][0])
        hit = (lv["sweep"] == NEVER) & xp.where(lv["side"] > 0, lv["price"] >= sl, lv["price"] <= sh)
        if self.n_levels:
            self._lv["sweep"].buf[: self.n_levels] = xp.where(hit, j, lv["sweep"])
            v = xp.where(hit, lv["deposit"] * xp.exp(prev - lc[lv["created"]]), 0.0)
            sums = xp.stack([xp.where(lv["side"] > 0, v, 0.0).sum(), xp.where(lv["side"] < 0, v, 0.0).sum()])
            swept_long, swept_short = (float(x) for x in self.backend.asnumpy(sums))
        else:
            swept_long = swept_short = 0.0

        # lifecycle.run_lifecycle for one bar, in Python floats
        alive = alive_prev
        swept = swept_long + swept_short
        alive = max(alive - swept, 0.0)
        survive = 1.0
        if d == d and d < 0.0 and alive > 0.0:
            want = -d - swept
            if want > 0.0:
                survive = max(p.min_survival, 1.0 - want / alive)
                alive -= alive * (1.0 - survive)
        if lam > 0.0:
            alive -= alive * (1.0 - math.exp(-lam))
        lc_j = prev + math.log(survive) - lam
        alive += float(dense["deposit_total"][0])

        for k, g in self._lv.items():
            if k == "sweep":
                g.extend(xp.full(int(new["price"].shape[0]), NEVER, xp.int64))
            else:
                g.extend(xp.asarray(new[k]))
        self._log_c.extend(xp.asarray([lc_j]))
        self._open_time.extend(np.asarray(bar.open_time[:1]))
        self._close.extend(np.asarray(bar.close[:1]))
        self._oi_over[j] = float(oi[0])
        self._lc_tail[j] = lc_j
        self._alive_tail[j] = alive
        self._n = j + 1
        for old in [k for k in self._lc_tail if k < j - 1]:
            del self._lc_tail[old], self._alive_tail[old]

    def revise_last_bar(self, bar: Candles, oi_close: float | None = None) -> None:
        """Replace the last bar (a live bar that moved): roll it back on the device, then append."""
        if not self._n:
            raise ValueError("no bar to revise")
        if int(bar.open_time[0]) != int(self._open_time.a[-1]):
            raise ValueError("revise_last_bar needs the same open time as the last bar")
        xp, j = self.xp, self._n - 1
        lv = self.levels()
        first_new = _count_upto(xp, lv["created"], j, "left")
        sw = self._lv["sweep"].buf
        sw[:first_new] = xp.where(sw[:first_new] == j, NEVER, sw[:first_new])
        for g in self._lv.values():
            g.truncate(first_new)
        self._log_c.truncate(j)
        self._open_time.truncate(j)
        self._close.truncate(j)
        self._oi_over.pop(j, None)
        self._lc_tail.pop(j, None)
        self._alive_tail.pop(j, None)
        self._n = j
        self.append_bar(bar, oi_close)

    def _oi_at(self, j: int) -> float:
        """Open interest at the close of bar j (NaN: unknown)."""
        if j in self._oi_over:
            return self._oi_over[j]
        return float(self.backend.asnumpy(self.bars.data[_R["oi_close"], j : j + 1])[0])

    def patch_frame(self, frame: DeviceFrame) -> DeviceFrame | None:
        """The frame with its newest column recomputed on the device (one column appended for a new
        bar when each column is one bar), like ui.worker.patch_newest_column. When the newest column
        is replaced, the frame's host image is updated in place and the frame returned."""
        xp, n = self.xp, self.n_bars
        if frame.end_bar < n - 1 or frame.end_bar > n:
            return None
        one_bar_per_column = bool(np.all(frame.first_bar == frame.last_bar))
        appending = n > frame.end_bar and one_bar_per_column
        keep = len(frame.last_bar) if appending else len(frame.last_bar) - 1
        first = n - 1 if appending else int(frame.first_bar[-1])
        bins = frame.bins
        lv = self.levels()
        lc = self._log_c.a
        bar = n - 1
        upto = _count_upto(xp, lv["created"], bar, "right")
        alive = lv["sweep"][:upto] > bar
        b = _bins_of(lv["price"][:upto], bins, xp)
        usd = lv["deposit"][:upto] * xp.exp(lc[bar] - lc[lv["created"][:upto]])
        cols = []
        for s in (LONG, SHORT):
            m = alive & (lv["side"][:upto] == s) & (b >= 0)
            cols.append(xp.bincount(xp.where(m, b, 0), weights=xp.where(m, usd, 0.0), minlength=bins.n))
        tl = display.transform(cols[0].astype(xp.float32), frame.transform, xp).astype(xp.float32)
        ts = display.transform(cols[1].astype(xp.float32), frame.transform, xp).astype(xp.float32)
        code = self.backend.asnumpy(self._quantise(tl[:, None], ts[:, None], frame.levels, frame.two_tone))
        follow_map = frame.lmap.bar >= frame.end_bar - 1
        lmap = self.liquidation_map(bins, n - 1) if follow_map else frame.lmap
        if not appending:
            frame.tlong[:, keep] = tl
            frame.tshort[:, keep] = ts
            frame.image[:, keep] = code[:, 0]
            last = frame.last_bar.copy()
            last[-1] = n - 1
            frame.last_bar = last
            frame.end_bar = n
            frame.lmap = lmap
            return frame
        return _replace(
            frame,
            image=np.ascontiguousarray(np.hstack([frame.image[:, :keep], code])),
            tlong=xp.ascontiguousarray(xp.hstack([frame.tlong[:, :keep], tl[:, None]])),
            tshort=xp.ascontiguousarray(xp.hstack([frame.tshort[:, :keep], ts[:, None]])),
            time_ms=np.r_[frame.time_ms[:keep], self._open_time.a[first]],
            first_bar=np.r_[frame.first_bar[:keep], first],
            last_bar=np.r_[frame.last_bar[:keep], n - 1],
            end_bar=n,
            lmap=lmap,
        )


def _replace(frame: DeviceFrame, **changes: Any) -> DeviceFrame:
    return dataclasses.replace(frame, **changes)


def rebuild_frame(
    candles: Candles,
    open_interest: OpenInterest | None,
    params: ModelParams | None,
    bins: PriceBins,
    *,
    start_bar: int = 0,
    end_bar: int | None = None,
    columns: int | None = None,
    transform: str = "sqrt",
    levels: tuple[float, float] | None = None,
    two_tone: bool = False,
    backend: Backend | None = None,
) -> DeviceFrame:
    """One call: upload, rebuild on the device, return the uint8 frame."""
    model = DeviceModel.build(candles, open_interest, params, backend=backend)
    return model.frame(
        bins, start_bar, end_bar, columns, transform=transform, levels=levels, two_tone=two_tone
    )

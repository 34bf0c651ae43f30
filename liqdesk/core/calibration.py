"""Does the heatmap tell the truth? The model's density scored against real liquidations.

Method (docs/model.md, "Is it any good?"):

* **Snapshots.** Every `every` (aligned to the clock) the engine's alive long and short notional is
  binned into `n_bins` equal cells over the *shown range*: the lookback's low/high, widened to at
  least spot ± `range_pct` %. A snapshot at time t shows the state at the end of the last bar that
  closed by t; it is scored against the real liquidations in [t, t + horizon). Nothing after t is used.
* **Tolerance.** A reported liquidation price is not the trigger price: Binance's forceOrder carries
  the order's limit price, ~0.35 % beyond the market (the bundled capture stores the average fill,
  closer to the market). Every density (model and nulls alike) is therefore averaged over
  ±`tolerance_pct` % around each price: the likelihood of an event is the density of its
  ±tolerance window, and cells are ranked by that smoothed density. Smoothing before ranking keeps
  the chance baseline exact (any ranking of cells catches q of uniformly placed events).
* **Top-q share.** Share of liquidated USD whose cell is among the q densest cells (q = 10 %, 25 %).
  Ties (e.g. many empty cells) get fractional credit, the expected value under random tie-breaking,
  so an empty or flat map scores exactly q. Lift = share / q.
* **Log-likelihood.** Mean over (snapshot, event) pairs of log(P · p_cell), i.e. nats per event
  relative to a uniform density over the range (the uniform null is 0 by construction). Every
  distribution is mixed with `floor` (1 %) of uniform so an event in an empty cell costs a finite
  log(floor) ≈ −4.6 nats instead of −inf; a map with no notional in range is the uniform.
  Nulls: uniform over the range; a Laplace centred on spot; a Laplace centred on the lookback mean
  close. Both Laplaces use scale b = ATR · √(horizon / bar) / 3: for a random walk the mean bar range
  is 1.6 σ√bar and the mean |displacement| at a random moment of the horizon is 0.53 σ√horizon,
  whose ratio is 1/3 (b is the Laplace's mean absolute deviation). Laplaces are truncated to the range.
  Events are counted, not USD-weighted, here: one whale should not decide a likelihood.
* **Sides.** "long"/"short" score long (short) liquidations against the long (short) density;
  "matched" pools both; "total" scores all events against long + short, what the heatmap shows.
  The nulls are side-blind, so the side rows favour the model (a long density already knows that
  longs liquidate below spot, worth up to log 2 nats and a doubled top-q share): "total" is the
  fair comparison with the nulls.
* **Magnet test** (candles only, so it has many samples without a tape): the densest ±tolerance
  window of long notional below / short notional above spot within `magnet_within_pct` %. Did price
  reach it within the horizon, against the same distance on a random side (the exact expectation:
  the mean of the up and down touches)? Snapshots without a full horizon of candles are left out.
* **Uncertainty.** Horizons overlap, so one event is scored by several snapshots and neighbouring
  snapshots are not independent: CIs come from a block bootstrap that resamples whole blocks of
  snapshots (block = the horizon), only among blocks holding events for the liquidation scores.
  With fewer than two such blocks no interval is given (NaN).
* **Too few events.** Below `min_events` distinct events or `min_blocks` independent blocks, the
  verdict says so and nothing is concluded: at 100 events the top-10 % share (binomial, p = 0.1) has
  a standard error of 0.03, just enough to tell a lift of 1.6 from 1; USD weighting and the
  clustering of liquidations in cascades make the effective sample smaller still.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.params import ModelParams
from liqdesk.core.series import LONG, SHORT, Candles, Liquidations, OpenInterest

HOUR_MS = 3_600_000
NULLS = ("uniform", "spot_laplace", "mean_laplace")
ROWS = ("total", "long", "short", "matched")
_ROW_DENSITY = {"total": "total", "long": "matched", "short": "matched", "matched": "matched"}


@dataclass(frozen=True)
class CalibrationConfig:
    horizon_ms: int = 24 * HOUR_MS  # events in [snapshot, snapshot + horizon) are scored
    every_ms: int = HOUR_MS  # snapshot spacing (aligned to multiples of it in epoch time)
    lookback_ms: int = 24 * HOUR_MS  # for the shown range, ATR and the lookback-mean null
    # Levels accumulate from the first bar; a young map is scored as it is (thin maps score worse).
    warmup_ms: int = HOUR_MS
    n_bins: int = 200
    range_pct: float = 5.0  # the range spans at least spot ± this
    tolerance_pct: float = 0.35  # reported vs trigger price (Binance's order price ~0.35 % away)
    floor: float = 0.01  # uniform mixture weight: no −inf log-likelihoods
    top_shares: tuple[float, ...] = (0.10, 0.25)
    magnet_within_pct: float = 2.0
    laplace_atr_mult: float = 1.0 / 3.0  # random-walk argument, see the module docstring
    n_boot: int = 2000
    ci: float = 0.95
    seed: int = 0
    min_events: int = 100  # distinct events, below which nothing is concluded
    min_blocks: int = 5  # independent blocks (of one horizon) holding events
    min_magnet_snapshots: int = 30
    block_ms: int | None = None  # bootstrap block length; None = the horizon

    def __post_init__(self) -> None:
        if self.horizon_ms <= 0 or self.every_ms <= 0 or self.lookback_ms <= 0 or self.warmup_ms < 0:
            raise ValueError("horizon, every and lookback must be positive, warm-up non-negative")
        if self.n_bins < 10:
            raise ValueError("need at least 10 price cells")
        if not 0 < self.floor < 1:
            raise ValueError("floor must lie in (0, 1)")
        if self.tolerance_pct < 0 or self.range_pct <= 0 or self.magnet_within_pct <= 0:
            raise ValueError("tolerance must be ≥ 0, range and magnet distance > 0")
        if not all(0 < q < 1 for q in self.top_shares):
            raise ValueError("top shares must lie in (0, 1)")
        if not 0 < self.ci < 1 or self.n_boot < 1:
            raise ValueError("ci must lie in (0, 1) and n_boot be positive")

    @property
    def block_length_ms(self) -> int:
        return self.block_ms or self.horizon_ms


# ---------------------------------------------------------------------------------------- snapshots


@dataclass(frozen=True, eq=False)
class Snapshots:
    """The model's density at snapshot instants, on a per-snapshot price grid."""

    time_ms: np.ndarray  # (S,) int64 snapshot instant
    bar: np.ndarray  # (S,) int64 bar whose end state is shown (closed by time_ms)
    spot: np.ndarray  # (S,) close of that bar
    lo: np.ndarray  # (S,) shown range
    hi: np.ndarray
    long: np.ndarray  # (S, P) USD of alive long levels per cell
    short: np.ndarray  # (S, P)
    atr: np.ndarray  # (S,) mean true range over the lookback (price units)
    mean_price: np.ndarray  # (S,) mean close over the lookback
    interval_ms: int  # bar interval

    def __len__(self) -> int:
        return len(self.time_ms)

    @property
    def n_bins(self) -> int:
        return int(self.long.shape[1])

    @property
    def width(self) -> np.ndarray:
        return (self.hi - self.lo) / self.n_bins

    @property
    def edges(self) -> np.ndarray:
        """(S, P + 1) cell edges."""
        return self.lo[:, None] + np.arange(self.n_bins + 1)[None, :] * self.width[:, None]

    @property
    def centers(self) -> np.ndarray:
        """(S, P) cell centres."""
        return self.lo[:, None] + (np.arange(self.n_bins)[None, :] + 0.5) * self.width[:, None]

    def cell(self, snap: np.ndarray, price: np.ndarray) -> np.ndarray:
        """Cell of each price in its snapshot's grid; −1 outside the range."""
        i = np.floor((price - self.lo[snap]) / self.width[snap]).astype(np.int64)
        return np.where((i >= 0) & (i < self.n_bins), i, -1)


def snapshot_times(
    open_time: np.ndarray,
    interval_ms: int,
    config: CalibrationConfig,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> np.ndarray:
    """Clock-aligned instants (multiples of every_ms) in [start, end) after the warm-up and before the last
    bar's close (nothing follows that in the data), each showing the last bar closed by then."""
    if len(open_time) == 0:
        return np.zeros(0, np.int64)
    first = int(open_time[0]) + config.warmup_ms
    last = int(open_time[-1]) + interval_ms
    lo = first if start_ms is None else max(first, int(start_ms))
    hi = last if end_ms is None else min(last, int(end_ms))
    every = config.every_ms
    t0 = -(-lo // every) * every  # first multiple ≥ lo
    if t0 >= hi:
        return np.zeros(0, np.int64)
    times = np.arange(t0, hi, every, dtype=np.int64)
    # Several instants inside one gap in the candles would show the same bar: keep the first.
    bars = np.searchsorted(np.asarray(open_time) + interval_ms, times, "right") - 1
    keep = np.r_[True, np.diff(bars) > 0] & (bars >= 0)
    return times[keep]


def density_snapshots(
    engine: LiquidationEngine, times_ms: np.ndarray, config: CalibrationConfig
) -> Snapshots:
    """Alive long/short notional per cell at each instant, with spot, ATR and lookback mean."""
    times_ms = np.asarray(times_ms, np.int64)
    close_time = engine.open_time + engine.interval_ms
    bars = np.searchsorted(close_time, times_ms, "right") - 1
    if np.any(bars < 0):
        raise ValueError("a snapshot instant lies before the first bar closes")
    high, low, close = engine.bar_column("high"), engine.bar_column("low"), engine.close
    prev = np.r_[close[0], close[:-1]]
    tr = np.maximum(high, prev) - np.minimum(low, prev)
    n_lb = max(1, config.lookback_ms // engine.interval_ms)
    ctr, cclose = np.r_[0.0, np.cumsum(tr)], np.r_[0.0, np.cumsum(close)]
    lv = engine.levels()
    s_n, p_n = len(bars), config.n_bins
    out = {k: np.zeros(s_n) for k in ("spot", "lo", "hi", "atr", "mean")}
    dens = np.zeros((2, s_n, p_n))
    r = config.range_pct / 100.0
    for s, b in enumerate(bars):
        a = max(0, int(b) - n_lb + 1)
        spot = float(close[b])
        lo = min(float(low[a : b + 1].min()), spot * (1 - r))
        hi = max(float(high[a : b + 1].max()), spot * (1 + r))
        out["spot"][s], out["lo"][s], out["hi"][s] = spot, lo, hi
        out["atr"][s] = (ctr[b + 1] - ctr[a]) / (b + 1 - a)
        out["mean"][s] = (cclose[b + 1] - cclose[a]) / (b + 1 - a)
        idx, usd = engine.alive_at(int(b))
        cell = np.floor((lv["price"][idx] - lo) / ((hi - lo) / p_n)).astype(np.int64)
        inside = (cell >= 0) & (cell < p_n)
        side = lv["side"][idx]
        for k, want in enumerate((LONG, SHORT)):
            m = inside & (side == want)
            dens[k, s] = np.bincount(cell[m], weights=usd[m], minlength=p_n)
    return Snapshots(
        time_ms=times_ms, bar=bars.astype(np.int64), spot=out["spot"], lo=out["lo"], hi=out["hi"],
        long=dens[0], short=dens[1], atr=out["atr"], mean_price=out["mean"], interval_ms=engine.interval_ms,
    )  # fmt: skip


# ------------------------------------------------------------------------------------ distributions


def _kernel_cells(snaps: Snapshots, tolerance_pct: float) -> np.ndarray:
    """Half-width of the ±tolerance window in cells, per snapshot."""
    return np.rint(tolerance_pct / 100.0 * snaps.spot / snaps.width).astype(np.int64)


def smooth(dens: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Mean of each row over cells [i − half, i + half] (in range only); half per row."""
    s_n, p_n = dens.shape
    c = np.zeros((s_n, p_n + 1))
    np.cumsum(dens, axis=1, out=c[:, 1:])  # non-decreasing for dens ≥ 0, so window sums stay ≥ 0
    i = np.arange(p_n)[None, :]
    left = np.clip(i - half[:, None], 0, p_n)
    right = np.clip(i + half[:, None] + 1, 0, p_n)
    sums = np.take_along_axis(c, right, 1) - np.take_along_axis(c, left, 1)
    return np.maximum(sums, 0.0) / (right - left)


def _normalise(dens: np.ndarray) -> np.ndarray:
    total = dens.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = dens / total
    return np.where(total > 0, p, 1.0 / dens.shape[1])  # an empty map is the uniform


def laplace_cells(edges: np.ndarray, centre: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(S, P) probability of each cell under a Laplace truncated to the range."""
    z = (edges - centre[:, None]) / scale[:, None]
    cdf = np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0.0)), 1.0 - 0.5 * np.exp(-np.maximum(z, 0.0)))
    mass = np.diff(cdf, axis=1)
    return _normalise(np.maximum(mass, 0.0))


def laplace_scale(snaps: Snapshots, config: CalibrationConfig) -> np.ndarray:
    """b = mult · ATR · √(horizon in bars); at least one cell (a flat market has ATR 0)."""
    b = config.laplace_atr_mult * snaps.atr * math.sqrt(config.horizon_ms / snaps.interval_ms)
    return np.maximum(np.where(np.isfinite(b), b, 0.0), snaps.width)


def distributions(snaps: Snapshots, config: CalibrationConfig) -> dict[str, np.ndarray]:
    """Smoothed, normalised (S, P) cell probabilities before the floor mixture: the model's long, short
    and total density and the three nulls."""
    half = _kernel_cells(snaps, config.tolerance_pct)
    b = laplace_scale(snaps, config)
    edges = snaps.edges
    raw = {
        "long": snaps.long,
        "short": snaps.short,
        "total": snaps.long + snaps.short,
        "uniform": np.ones_like(snaps.long),
        "spot_laplace": laplace_cells(edges, snaps.spot, b),
        "mean_laplace": laplace_cells(edges, snaps.mean_price, b),
    }
    return {k: _normalise(smooth(v, half)) for k, v in raw.items()}


# ------------------------------------------------------------------------------------ event pairs


@dataclass(frozen=True, eq=False)
class PairScores:
    """One row per (snapshot, real liquidation in its horizon and inside its range)."""

    snap: np.ndarray  # snapshot index
    event: np.ndarray  # index into the Liquidations given
    side: np.ndarray  # LONG / SHORT
    usd: np.ndarray
    # Rank interval of the event's cell among its snapshot's cells, as shares of cells: a = cells
    # strictly denser, b = cells at least as dense. The cell is in the top q with weight
    # clip((q − a) / (b − a), 0, 1) (ties broken at random, in expectation).
    rank_lo: dict[str, np.ndarray]  # "matched" (own side's density), "total"
    rank_hi: dict[str, np.ndarray]
    loglik: dict[str, np.ndarray]  # log(P · p): "matched", "total" and the nulls
    n_outside: dict[int, int]  # pairs dropped because the price was outside the range, per side
    n_bins: int

    def __len__(self) -> int:
        return len(self.snap)


def pair_events(
    time_ms: np.ndarray, events_time: np.ndarray, horizon_ms: int
) -> tuple[np.ndarray, np.ndarray]:
    """(snapshot index, event index) for every event in [time, time + horizon)."""
    order = np.argsort(events_time, kind="stable")
    t = np.asarray(events_time)[order]
    i0 = np.searchsorted(t, time_ms, "left")
    i1 = np.searchsorted(t, np.asarray(time_ms) + horizon_ms, "left")
    counts = i1 - i0
    snap = np.repeat(np.arange(len(time_ms)), counts)
    starts = np.repeat(i0 - np.r_[0, np.cumsum(counts)[:-1]], counts)
    pos = np.arange(int(counts.sum())) + starts
    return snap.astype(np.int64), order[pos].astype(np.int64)


def _rank(rows: np.ndarray, snap: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shares of cells strictly denser than v, and at least as dense, in each pair's snapshot."""
    p_n = rows.shape[1]
    lo, hi = np.zeros(len(v)), np.zeros(len(v))
    if len(v) == 0:
        return lo, hi
    order = np.argsort(snap, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(snap[order]) != 0, True])
    for a, z in zip(bounds[:-1], bounds[1:], strict=True):  # one snapshot at a time
        j = order[a:z]
        row = np.sort(rows[snap[j[0]]])
        lo[j] = p_n - np.searchsorted(row, v[j], "right")
        hi[j] = p_n - np.searchsorted(row, v[j], "left")
    return lo / p_n, hi / p_n


def score_pairs(snaps: Snapshots, events: Liquidations, config: CalibrationConfig) -> PairScores:
    """Every real liquidation scored against every snapshot whose horizon holds it."""
    dist = distributions(snaps, config)
    snap, ev = pair_events(snaps.time_ms, events.time, config.horizon_ms)
    side = events.side[ev]
    cell = snaps.cell(snap, events.price[ev])
    n_outside = {s: int(np.count_nonzero((cell < 0) & (side == s))) for s in (LONG, SHORT)}
    ok = cell >= 0
    snap, ev, side, cell = snap[ok], ev[ok], side[ok], cell[ok]
    is_long = side == LONG
    dens = {
        "matched": np.where(is_long, dist["long"][snap, cell], dist["short"][snap, cell]),
        "total": dist["total"][snap, cell],
    }
    rank_lo: dict[str, np.ndarray] = {"matched": np.zeros(len(snap))}
    rank_hi: dict[str, np.ndarray] = {"matched": np.zeros(len(snap))}
    for key, m in (("long", is_long), ("short", ~is_long)):
        rank_lo["matched"][m], rank_hi["matched"][m] = _rank(dist[key], snap[m], dens["matched"][m])
    rank_lo["total"], rank_hi["total"] = _rank(dist["total"], snap, dens["total"])
    p_n = snaps.n_bins

    def loglik(p: np.ndarray) -> np.ndarray:  # log(P · p) after the floor mixture
        return np.log(p_n * ((1.0 - config.floor) * p + config.floor / p_n))

    ll = {name: loglik(d) for name, d in dens.items()}
    for name in NULLS:
        ll[name] = loglik(dist[name][snap, cell])
    return PairScores(snap, ev, side.astype(np.int8), events.usd[ev], rank_lo, rank_hi, ll, n_outside, p_n)


def top_weight(rank_lo: np.ndarray, rank_hi: np.ndarray, q: float | np.ndarray) -> np.ndarray:
    """How much of each event's cell lies in the top-q share of cells (fractional for ties)."""
    span = np.maximum(rank_hi - rank_lo, 1e-12)
    return np.clip((np.asarray(q) - rank_lo) / span, 0.0, 1.0)


# ---------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a block-bootstrap confidence interval (NaN where none can be given)."""

    value: float
    low: float = math.nan
    high: float = math.nan

    @property
    def has_ci(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def above(self, x: float) -> bool:
        return self.has_ci and self.low > x

    def below(self, x: float) -> bool:
        return self.has_ci and self.high < x


@dataclass(frozen=True)
class TopShare:
    q: float  # share of cells (the chance baseline)
    share: Estimate  # share of liquidated USD in those cells
    lift: Estimate  # share / q


@dataclass(frozen=True)
class RowScore:
    """Scores of one density (total, long, short or side-matched) against the real liquidations."""

    name: str
    n_events: int  # distinct events scored
    n_pairs: int  # (snapshot, event) pairs: an event is scored by every snapshot whose horizon holds it
    usd: float  # liquidated USD of the distinct events
    n_snapshots: int  # snapshots with at least one event
    n_blocks: int  # independent bootstrap blocks with at least one event
    n_outside: int  # pairs whose price lay outside the shown range (not scored)
    top: tuple[TopShare, ...]
    loglik: dict[str, Estimate]  # mean nats/event vs uniform: "model" and each null
    lift: dict[str, Estimate]  # model − null, per null
    enough: bool
    verdict: str

    def top_share(self, q: float) -> TopShare:
        for t in self.top:
            if abs(t.q - q) < 1e-9:
                return t
        raise KeyError(q)


@dataclass(frozen=True)
class MagnetScore:
    within_pct: float
    n_snapshots: int  # snapshots scored (a cluster within reach and a full horizon of candles)
    n_no_cluster: int
    n_censored: int  # horizon runs past the data
    n_blocks: int
    mean_distance_pct: float
    hit: Estimate  # price touched the largest cluster
    random_side: Estimate  # same distance, random side (mean of up and down)
    opposite: Estimate  # same distance on the other side
    difference: Estimate  # hit − random_side
    enough: bool
    verdict: str


@dataclass(frozen=True)
class ReliabilityCurve:
    """Share of liquidated USD caught by the densest x share of cells (y = x by chance)."""

    name: str
    cell_share: np.ndarray
    usd_share: np.ndarray
    n_events: int
    usd: float


@dataclass(frozen=True)
class CalibrationResult:
    config: CalibrationConfig
    n_snapshots: int
    first_ms: int | None
    last_ms: int | None
    n_tape_events: int  # tape events inside the scored horizons (inside the range or not)
    rows: dict[str, RowScore]
    magnet: MagnetScore
    reliability: dict[str, ReliabilityCurve]  # per row (total, long, short, matched)
    notes: list[str] = field(default_factory=list)

    @property
    def enough(self) -> bool:
        return self.rows["total"].enough

    def to_dict(self) -> dict[str, Any]:
        """Plain values (NaN → None) for JSON."""
        d = asdict(self)
        d["reliability"] = {
            name: {"cell_share": c.cell_share.tolist(), "usd_share": c.usd_share.tolist(),
                   "n_events": c.n_events, "usd": c.usd}
            for name, c in self.reliability.items()
        }  # fmt: skip
        d["config"]["top_shares"] = list(self.config.top_shares)
        return _plain(d)


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# -------------------------------------------------------------------------------------- bootstrap


def _bootstrap(
    block_sums: np.ndarray, stat: Callable[[np.ndarray], np.ndarray], config: CalibrationConfig, salt: int
) -> list[Estimate]:
    """Point estimates and percentile CIs of stat(sums) with blocks resampled with replacement."""
    point = stat(block_sums.sum(axis=0))
    nb = len(block_sums)
    if nb < 2:
        return [Estimate(float(v)) for v in point]
    rng = np.random.default_rng([config.seed, salt])
    counts = rng.multinomial(nb, np.full(nb, 1.0 / nb), size=config.n_boot)
    boot = stat(counts @ block_sums)
    tail = (1.0 - config.ci) / 2.0 * 100.0
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": undefined in every resample
        lo = np.nanpercentile(boot, tail, axis=0)
        hi = np.nanpercentile(boot, 100.0 - tail, axis=0)
    return [Estimate(float(v), float(a), float(b)) for v, a, b in zip(point, lo, hi, strict=True)]


def _blocks(time_ms: np.ndarray, config: CalibrationConfig) -> np.ndarray:
    if len(time_ms) == 0:
        return np.zeros(0, np.int64)
    return (time_ms - time_ms[0]) // config.block_length_ms


# ------------------------------------------------------------------------------------- liquidations


def score_rows(snaps: Snapshots, pairs: PairScores, config: CalibrationConfig) -> dict[str, RowScore]:
    block_of_snap = _blocks(snaps.time_ms, config)
    out = {}
    for salt, name in enumerate(ROWS):
        dens = _ROW_DENSITY[name]
        m = np.ones(len(pairs), bool)
        if name == "long":
            m = pairs.side == LONG
        elif name == "short":
            m = pairs.side == SHORT
        outside = pairs.n_outside.get(LONG, 0) * (name != "short") + pairs.n_outside.get(SHORT, 0) * (
            name != "long"
        )
        out[name] = _score_row(name, pairs, m, dens, block_of_snap, outside, config, salt)
    return out


def _score_row(
    name: str,
    pairs: PairScores,
    m: np.ndarray,
    dens: str,
    block_of_snap: np.ndarray,
    n_outside: int,
    config: CalibrationConfig,
    salt: int,
) -> RowScore:
    qs = config.top_shares
    usd = pairs.usd[m]
    lo, hi = pairs.rank_lo[dens][m], pairs.rank_hi[dens][m]
    cols = [usd] + [usd * top_weight(lo, hi, q) for q in qs] + [np.ones(len(usd))]
    cols += [pairs.loglik[dens][m]] + [pairs.loglik[n][m] for n in NULLS]
    blocks = block_of_snap[pairs.snap[m]]
    ub, inv = np.unique(blocks, return_inverse=True)
    sums = np.stack([np.bincount(inv, weights=c, minlength=len(ub)) for c in cols], axis=1)
    nq = len(qs)

    def stat(s: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            shares = s[..., 1 : 1 + nq] / s[..., :1]
            n = s[..., 1 + nq : 2 + nq]
            ll = s[..., 2 + nq :] / n  # model, then each null
            lifts = ll[..., :1] - ll[..., 1:]
        return np.concatenate([shares, shares / np.asarray(qs), ll, lifts], axis=-1)

    if len(usd):
        est = _bootstrap(sums, stat, config, salt)
    else:
        est = [Estimate(math.nan) for _ in range(2 * nq + 1 + 2 * len(NULLS))]
    top = tuple(TopShare(q, est[i], est[nq + i]) for i, q in enumerate(qs))
    ll_names = ("model", *NULLS)
    loglik = {k: est[2 * nq + i] for i, k in enumerate(ll_names)}
    lift = {k: est[2 * nq + len(ll_names) + i] for i, k in enumerate(NULLS)}
    ev, first = np.unique(pairs.event[m], return_index=True)
    usd_distinct = float(usd[first].sum())
    n_events, n_blocks = len(ev), len(ub)
    enough = n_events >= config.min_events and n_blocks >= config.min_blocks
    verdict = _row_verdict(top, lift, n_events, n_blocks, enough, config)
    return RowScore(
        name=name, n_events=n_events, n_pairs=int(m.sum()), usd=usd_distinct,
        n_snapshots=len(np.unique(pairs.snap[m])), n_blocks=n_blocks, n_outside=int(n_outside),
        top=top, loglik=loglik, lift=lift, enough=enough, verdict=verdict,
    )  # fmt: skip


_NULL_LABEL = {
    "uniform": "uniform",
    "spot_laplace": "Laplace at spot",
    "mean_laplace": "Laplace at lookback mean",
}


def _row_verdict(
    top: tuple[TopShare, ...],
    lift: dict[str, Estimate],
    n_events: int,
    n_blocks: int,
    enough: bool,
    config: CalibrationConfig,
) -> str:
    if not enough:
        return (
            f"too few events to conclude: {n_events} events in {n_blocks} independent "
            f"{_span(config.block_length_ms)} windows (need ≥ {config.min_events} in ≥ {config.min_blocks})"
        )
    t = top[0]
    pct = f"top {t.q * 100:g} % cells"
    if t.lift.above(1.0):
        parts = [f"{pct} catch more liquidated USD than chance"]
    elif t.lift.below(1.0):
        parts = [f"{pct} catch less liquidated USD than chance"]
    else:
        parts = [f"{pct} not distinguishable from chance"]
    beats = [_NULL_LABEL[k] for k, e in lift.items() if e.above(0.0)]
    loses = [_NULL_LABEL[k] for k, e in lift.items() if e.below(0.0)]
    ties = [_NULL_LABEL[k] for k, e in lift.items() if not (e.above(0.0) or e.below(0.0))]
    if beats:
        parts.append("likelihood beats " + ", ".join(beats))
    if loses:
        parts.append("loses to " + ", ".join(loses))
    if ties:
        parts.append("no difference from " + ", ".join(ties))
    return "; ".join(parts)


def _span(ms: int) -> str:
    if ms % 3_600_000 == 0 and ms < 48 * 3_600_000:  # "24h" reads better than "1d"
        return f"{ms // 3_600_000}h"
    for unit, div in (("d", 86_400_000), ("h", HOUR_MS), ("m", 60_000)):
        if ms % div == 0:
            return f"{ms // div}{unit}"
    return f"{ms / HOUR_MS:g}h"


def reliability_curve(pairs: PairScores, row: str = "total", points: int = 101) -> ReliabilityCurve:
    """Share of liquidated USD in the densest x share of cells, for x on a grid from 0 to 1.

    Pools all (snapshot, event) pairs of the row; the chance line is y = x, a perfect map jumps to 1
    at the share of cells its events occupy."""
    dens = _ROW_DENSITY[row]
    m = (
        np.ones(len(pairs), bool)
        if row in ("total", "matched")
        else pairs.side == (LONG if row == "long" else SHORT)
    )
    usd, lo, hi = pairs.usd[m], pairs.rank_lo[dens][m], pairs.rank_hi[dens][m]
    x = np.linspace(0.0, 1.0, points)
    y = np.zeros(points)
    total = float(usd.sum())
    for a in range(0, len(usd), 8192):  # chunks: pairs × points can be large
        sl = slice(a, a + 8192)
        y += (usd[sl, None] * top_weight(lo[sl, None], hi[sl, None], x[None, :])).sum(axis=0)
    y = y / total if total > 0 else np.full(points, np.nan)
    return ReliabilityCurve(row, x, y, len(np.unique(pairs.event[m])), total)


# ------------------------------------------------------------------------------------------ magnets


def magnet_test(
    snaps: Snapshots, high: np.ndarray, low: np.ndarray, config: CalibrationConfig
) -> MagnetScore:
    """How often price reached the largest cluster within reach, against the same distance at random.

    high/low: the bar series the snapshots index into (sweep highs/lows: what liquidates levels)."""
    h_bars = max(1, -(-config.horizon_ms // snaps.interval_ms))
    half = _kernel_cells(snaps, config.tolerance_pct)
    long_s, short_s = smooth(snaps.long, half), smooth(snaps.short, half)
    centers = snaps.centers
    rows: list[tuple[int, float, float, float, float]] = []  # snapshot, distance, hit, random, opposite
    no_cluster = censored = 0
    n = len(high)
    reach = config.magnet_within_pct / 100.0
    for s in range(len(snaps)):
        b, spot = int(snaps.bar[s]), float(snaps.spot[s])
        if b + h_bars > n - 1:
            censored += 1
            continue
        c = centers[s]
        near = np.abs(c / spot - 1.0) <= reach
        cand = np.where(near & (c < spot), long_s[s], 0.0) + np.where(near & (c > spot), short_s[s], 0.0)
        j = int(np.argmax(cand))
        if cand[j] <= 0:
            no_cluster += 1
            continue
        # A smoothed spike is a flat run of windows and argmax takes the first, nearest to spot: aim
        # at the notional-weighted centre of the raw cells of that window instead.
        k = int(half[s])
        win = slice(max(0, j - k), j + k + 1)
        raw = np.where(c[win] < spot, snaps.long[s, win], snaps.short[s, win]) * near[win]
        target = float((c[win] * raw).sum() / raw.sum()) if raw.sum() > 0 else float(c[j])
        d = abs(target / spot - 1.0)
        fut_hi = float(high[b + 1 : b + 1 + h_bars].max())
        fut_lo = float(low[b + 1 : b + 1 + h_bars].min())
        up, down = float(fut_hi >= spot * (1 + d)), float(fut_lo <= spot * (1 - d))
        above = target > spot
        hit = float(fut_hi >= target) if above else float(fut_lo <= target)
        rows.append((s, d, hit, (up + down) / 2.0, down if above else up))
    if rows:
        arr = np.array(rows)
        snap = arr[:, 0].astype(np.int64)
        blocks = _blocks(snaps.time_ms, config)[snap]
        ub, inv = np.unique(blocks, return_inverse=True)
        cols = [np.ones(len(arr)), arr[:, 2], arr[:, 3], arr[:, 4]]
        sums = np.stack([np.bincount(inv, weights=col, minlength=len(ub)) for col in cols], axis=1)

        def stat(s: np.ndarray) -> np.ndarray:
            with np.errstate(all="ignore"):
                r = s[..., 1:] / s[..., :1]
            return np.concatenate([r, r[..., :1] - r[..., 1:2]], axis=-1)

        hit, rnd, opp, diff = _bootstrap(sums, stat, config, salt=99)
        dist = float(arr[:, 1].mean() * 100.0)
        n_blocks = len(ub)
    else:
        hit = rnd = opp = diff = Estimate(math.nan)
        dist, n_blocks = math.nan, 0
    n_s = len(rows)
    enough = n_s >= config.min_magnet_snapshots and n_blocks >= config.min_blocks
    if not enough:
        verdict = (
            f"too few snapshots to conclude: {n_s} in {n_blocks} independent windows "
            f"(need ≥ {config.min_magnet_snapshots} in ≥ {config.min_blocks})"
        )
    elif diff.above(0.0):
        verdict = "price reached the largest cluster more often than the same distance on a random side"
    elif diff.below(0.0):
        verdict = "price reached the largest cluster less often than the same distance on a random side"
    else:
        verdict = "the largest cluster attracted price no more than the same distance on a random side"
    return MagnetScore(
        within_pct=config.magnet_within_pct, n_snapshots=n_s, n_no_cluster=no_cluster, n_censored=censored,
        n_blocks=n_blocks, mean_distance_pct=dist, hit=hit, random_side=rnd, opposite=opp, difference=diff,
        enough=enough, verdict=verdict,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ drivers


def calibrate(
    engine: LiquidationEngine,
    liquidations: Liquidations | None,
    config: CalibrationConfig | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> CalibrationResult:
    """Score the engine's map at snapshots in [start, end] against the real liquidations given."""
    config = config or CalibrationConfig()
    times = snapshot_times(engine.open_time, engine.interval_ms, config, start_ms, end_ms)
    snaps = density_snapshots(engine, times, config)
    return score_snapshots(snaps, liquidations, engine.sweep_high, engine.sweep_low, config)


def score_snapshots(
    snaps: Snapshots,
    liquidations: Liquidations | None,
    high: np.ndarray,
    low: np.ndarray,
    config: CalibrationConfig | None = None,
) -> CalibrationResult:
    """All scores for given snapshots; high/low: the bar series snaps.bar indexes (magnet test)."""
    config = config or CalibrationConfig()
    liqs = liquidations if liquidations is not None else Liquidations.empty()
    pairs = score_pairs(snaps, liqs, config)
    times = snaps.time_ms
    notes = []
    in_window = 0
    if len(times) == 0:
        notes.append("no snapshot instants: the data is shorter than the warm-up or the window is empty")
    else:
        in_window = int(
            np.count_nonzero((liqs.time >= times[0]) & (liqs.time < times[-1] + config.horizon_ms))
        )
    return CalibrationResult(
        config=config,
        n_snapshots=len(times),
        first_ms=int(times[0]) if len(times) else None,
        last_ms=int(times[-1]) if len(times) else None,
        n_tape_events=in_window,
        rows=score_rows(snaps, pairs, config),
        magnet=magnet_test(snaps, high, low, config),
        reliability={row: reliability_curve(pairs, row) for row in ROWS},
        notes=notes,
    )


def compare_presets(
    candles: Candles,
    open_interest: OpenInterest | None,
    liquidations: Liquidations | None,
    params: Mapping[str, ModelParams],
    config: CalibrationConfig | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> dict[str, CalibrationResult]:
    """The same scoring for several parameter sets (e.g. presets) on the same data and snapshots.

    Each result has its own CIs; intervals of two presets overlapping does not make them equal,
    nor does a gap prove one better (the resamples are not paired)."""
    return {
        name: calibrate(
            LiquidationEngine.build(candles, open_interest, p), liquidations, config, start_ms, end_ms
        )
        for name, p in params.items()
    }

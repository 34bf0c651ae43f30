"""Does the heatmap tell the truth? The model's density scored against real liquidations.

Method (the README's "Does the heatmap tell the truth?"); the parts live in their own modules:

* **Snapshots** (density_snapshots). Every `every` (aligned to the clock) the engine's alive long and
  short notional is binned into `n_bins` cells over the shown range; a snapshot at t is scored
  against the real liquidations in [t, t + horizon). Nothing after t is used.
* **Tolerance.** A reported liquidation price is not the trigger price: Binance's forceOrder carries
  the order's limit price, ~0.35 % beyond the market (the bundled captures store fills, closer to the
  market). Every density (model and nulls alike) is averaged over ±`tolerance_pct` % around each
  price: an event's likelihood is the density of its ±tolerance window, and cells are ranked by that
  smoothed density. Smoothing before ranking keeps the chance baseline exact.
* **Events are scored per venue or pooled.** `score_liquidations(snaps, events, …)` scores one set of
  events (one venue's, or several venues' together) against one density source; `score_snapshots`
  does it for the aggregate and, when the tape holds several venues, for each venue, side by side.
* **Top-q share.** Share of liquidated USD (and, as a guard against wrong sizes, of events) whose
  cell is among the q densest cells (q = 10 %, 25 %). Ties get fractional credit (ranks), so an
  empty or flat map scores exactly q. Lift = share / q.
* **Log-likelihood.** Mean over (snapshot, event) pairs of log(P · p_cell), i.e. nats per event
  relative to a uniform density over the range (the uniform null is 0 by construction); also
  USD-weighted (nats per USD). Every distribution is mixed with `floor` (1 %) of uniform so an
  event in an empty cell costs a finite log(floor) ≈ −4.6 nats; a map with no notional in range is
  the uniform. Nulls (null_models): uniform; the recent range (last day's high–low, widened by a
  quarter of its width on each side); Laplaces at spot and at the lookback mean, each with a fixed
  scale (ATR rule), a scale fitted out of sample on the events before each snapshot, and the best
  scale in sample (the strongest null of the family, refitted in every bootstrap resample).
* **Path-conditional test** (path_conditional): among the cells price actually traversed during
  the horizon, does liquidated USD follow the map's density (Spearman ρ; share in the densest
  quarter of traversed cells, chance 25 %)? This separates the map from the price path.
* **Precision at N** (zone_precision): share of the N strongest separate zones hit by a liquidation
  within the horizon, with Wilson bounds, against random zones of the same width in the traversed
  range.
* **Sides.** "long"/"short" score long (short) liquidations against the long (short) density;
  "matched" pools both; "total" scores all events against long + short, what the heatmap shows.
  The nulls are side-blind, so the side rows favour the model (a long density already knows that
  longs liquidate below spot, worth up to log 2 nats and a doubled top-q share): "total" is the
  fair comparison with the nulls.
* **Magnet test** (candles only, so it has many samples without a tape): the densest ±tolerance
  window of long notional below / short notional above spot within `magnet_within_pct` %. Did price
  reach it within the horizon, against the same distance on a random side (the exact expectation:
  the mean of the up and down touches)? Snapshots without a full horizon of candles are left out.
* **Uncertainty** (intervals). Horizons overlap, so one event is scored by several snapshots and
  neighbouring snapshots are not independent: intervals come from a block bootstrap that resamples
  whole blocks of snapshots (block = the horizon), only among blocks holding events for the
  liquidation scores. With fewer than two such blocks no interval is given (NaN).
* **Too few events.** Below `min_events` distinct events or `min_blocks` independent blocks, the
  verdict says so and nothing is concluded; point estimates and whatever intervals exist are still
  shown. At 100 events the top-10 % share (binomial, p = 0.1) has a standard error of 0.03, just
  enough to tell a lift of 1.6 from 1; USD weighting and the clustering of liquidations in cascades
  make the effective sample smaller still.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from liqdesk.core.calibration_config import HOUR_MS, CalibrationConfig
from liqdesk.core.density_snapshots import Snapshots, density_snapshots, normalise, smooth, snapshot_times
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.intervals import NAN, Estimate, block_bootstrap, block_ids, block_sums
from liqdesk.core.null_models import (
    LAPLACE_CENTRES,
    OutOfSampleFit,
    fixed_nulls,
    floored_loglik,
    grid_loglik,
    laplace_cells,
    laplace_pair_loglik,
    laplace_scale,
    scale_grid,
)
from liqdesk.core.params import ModelParams
from liqdesk.core.path_conditional import PathRanges, PathScore, path_ranges, score_path
from liqdesk.core.ranks import rank_interval, top_weight
from liqdesk.core.series import LONG, SHORT, Candles, Liquidations, OpenInterest
from liqdesk.core.timespan import span_text
from liqdesk.core.zone_precision import PrecisionScore, precision_at_n

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

__all__ = [
    "ALL_VENUES",
    "HOUR_MS",
    "NULLS",
    "PATH_ROWS",
    "ROWS",
    "VERDICT_NULLS",
    "WEIGHTS",
    "CalibrationConfig",
    "CalibrationResult",
    "Estimate",
    "LiquidationScore",
    "MagnetScore",
    "PairScores",
    "PathScore",
    "PrecisionScore",
    "ReliabilityCurve",
    "RowScore",
    "Snapshots",
    "TopShare",
    "WeightedScores",
    "calibrate",
    "compare_presets",
    "density_snapshots",
    "distributions",
    "laplace_cells",
    "laplace_scale",
    "magnet_test",
    "null_label",
    "pair_events",
    "reliability_curve",
    "score_liquidations",
    "score_pairs",
    "score_snapshots",
    "snapshot_times",
    "top_weight",
    "venue_names",
]

# Every null's log-likelihood is reported; the fitted Laplaces are "_fit" (out of sample) and
# "_best" (in sample), the bare names keep the fixed-scale rule for comparison.
NULLS = (
    "uniform", "range",
    "spot_laplace_fit", "spot_laplace_best", "spot_laplace",
    "mean_laplace_fit", "mean_laplace_best", "mean_laplace",
)  # fmt: skip
# The nulls a verdict is drawn against (the fixed-scale ones prove little).
VERDICT_NULLS = (
    "uniform",
    "range",
    "spot_laplace_fit",
    "mean_laplace_fit",
    "spot_laplace_best",
    "mean_laplace_best",
)
ROWS = ("total", "long", "short", "matched")
PATH_ROWS = ("total", "long", "short")
WEIGHTS = ("usd", "count")
ALL_VENUES = "all"
_ROW_DENSITY = {"total": "total", "long": "matched", "short": "matched", "matched": "matched"}
_NULL_LABEL = {
    "uniform": "uniform",
    "range": "recent range",
    "spot_laplace": "Laplace at spot (fixed scale)",
    "spot_laplace_fit": "Laplace at spot (fitted)",
    "spot_laplace_best": "Laplace at spot (best in sample)",
    "mean_laplace": "Laplace at lookback mean (fixed scale)",
    "mean_laplace_fit": "Laplace at lookback mean (fitted)",
    "mean_laplace_best": "Laplace at lookback mean (best in sample)",
}


def null_label(name: str) -> str:
    return _NULL_LABEL[name]


def distributions(snaps: Snapshots, config: CalibrationConfig) -> dict[str, F64]:
    """Smoothed, normalised (S, P) cell probabilities before the floor mixture: the model's long, short
    and total density and the nulls that need no fitting."""
    half = snaps.kernel_cells(config.tolerance_pct)
    model = {"long": snaps.long, "short": snaps.short, "total": snaps.long + snaps.short}
    return {**{k: normalise(smooth(v, half)) for k, v in model.items()}, **fixed_nulls(snaps, config)}


# ------------------------------------------------------------------------------------ event pairs


@dataclass(frozen=True, eq=False)
class PairScores:
    """One row per (snapshot, real liquidation in its horizon and inside its range)."""

    snap: I64  # snapshot index
    event: I64  # index into the Liquidations given
    side: NDArray[np.int8]  # LONG / SHORT
    usd: F64
    time: I64  # the event's time
    price: F64
    cell: I64
    # Rank interval of the event's cell among its snapshot's cells, as shares of cells: a = cells
    # strictly denser, b = cells at least as dense (see liqdesk.core.ranks).
    rank_lo: dict[str, F64]  # "matched" (own side's density), "total"
    rank_hi: dict[str, F64]
    loglik: dict[str, F64]  # log(P · p): "matched", "total" and the fixed-scale nulls
    n_outside: dict[int, int]  # pairs dropped because the price was outside the range, per side
    n_bins: int

    def __len__(self) -> int:
        return len(self.snap)


def pair_events(time_ms: I64, events_time: I64, horizon_ms: int) -> tuple[I64, I64]:
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


def _rank(rows: F64, snap: I64, v: F64) -> tuple[F64, F64]:
    """Rank interval of v among its pair's snapshot's cells."""
    lo, hi = np.zeros(len(v)), np.zeros(len(v))
    if len(v) == 0:
        return lo, hi
    order = np.argsort(snap, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(snap[order]) != 0, True])
    for a, z in zip(bounds[:-1], bounds[1:], strict=True):  # one snapshot at a time
        j = order[a:z]
        lo[j], hi[j] = rank_interval(rows[snap[j[0]]], v[j])
    return lo, hi


def score_pairs(
    snaps: Snapshots, events: Liquidations, config: CalibrationConfig, dist: dict[str, F64] | None = None
) -> PairScores:
    """Every real liquidation scored against every snapshot whose horizon holds it."""
    dist = dist if dist is not None else distributions(snaps, config)
    snap, ev = pair_events(snaps.time_ms, events.time, config.horizon_ms)
    side = events.side[ev]
    price = np.asarray(events.price[ev], np.float64)
    cell = snaps.cell(snap, price)
    n_outside = {s: int(np.count_nonzero((cell < 0) & (side == s))) for s in (LONG, SHORT)}
    ok = cell >= 0
    snap, ev, side, cell, price = snap[ok], ev[ok], side[ok], cell[ok], price[ok]
    is_long = side == LONG
    dens = {
        "matched": np.where(is_long, dist["long"][snap, cell], dist["short"][snap, cell]),
        "total": dist["total"][snap, cell],
    }
    rank_lo: dict[str, F64] = {"matched": np.zeros(len(snap))}
    rank_hi: dict[str, F64] = {"matched": np.zeros(len(snap))}
    for key, m in (("long", is_long), ("short", ~is_long)):
        rank_lo["matched"][m], rank_hi["matched"][m] = _rank(dist[key], snap[m], dens["matched"][m])
    rank_lo["total"], rank_hi["total"] = _rank(dist["total"], snap, dens["total"])
    p_n = snaps.n_bins
    ll = {name: floored_loglik(d, p_n, config.floor) for name, d in dens.items()}
    for name in ("uniform", "range", *LAPLACE_CENTRES):
        ll[name] = floored_loglik(dist[name][snap, cell], p_n, config.floor)
    return PairScores(
        snap, ev, side.astype(np.int8), np.asarray(events.usd[ev], np.float64), np.asarray(events.time[ev]),
        price, cell, rank_lo, rank_hi, ll, n_outside, p_n,
    )  # fmt: skip


def _row_mask(pairs: PairScores, row: str) -> NDArray[np.bool_]:
    if row == "long":
        return np.asarray(pairs.side == LONG, np.bool_)
    if row == "short":
        return np.asarray(pairs.side == SHORT, np.bool_)
    return np.ones(len(pairs), np.bool_)


def _weights(pairs: PairScores) -> dict[str, F64]:
    return {"usd": pairs.usd, "count": np.ones(len(pairs))}


# ------------------------------------------------------------------------------- fitted nulls


@dataclass(frozen=True)
class NullFitSummary:
    """How the fitted nulls' scales came out (multipliers of ATR · √(horizon / bar))."""

    fixed_mult: float
    n_snapshots_fixed: int  # scored snapshots whose fit window held too few events (fixed rule used)
    n_snapshots: int  # scored snapshots (with events)
    oos_mult: dict[str, dict[str, float]]  # weighting -> null -> median multiplier over scored snapshots
    best_mult: dict[str, dict[str, dict[str, float]]]  # row -> weighting -> null -> in-sample optimum


@dataclass(frozen=True, eq=False)
class _NullFits:
    oos_loglik: dict[str, dict[str, F64]]  # weighting -> "<centre>_fit" -> per-pair log-likelihood
    grid_sums: dict[tuple[str, str, str], F64]  # (row, weighting, centre) -> (row blocks × grid) sums
    summary: NullFitSummary


def _fit_nulls(
    snaps: Snapshots, pairs: PairScores, events: Liquidations, block_of_pair: I64, config: CalibrationConfig
) -> _NullFits:
    weights = _weights(pairs)
    rows = {row: _row_mask(pairs, row) for row in ROWS}
    row_inv = {row: np.unique(block_of_pair[m], return_inverse=True) for row, m in rows.items()}
    grid = scale_grid(config)
    oos: dict[str, dict[str, F64]] = {w: {} for w in WEIGHTS}
    grid_sums: dict[tuple[str, str, str], F64] = {}
    oos_mult: dict[str, dict[str, float]] = {w: {} for w in WEIGHTS}
    scored = np.unique(pairs.snap)
    n_fixed = 0
    for centre in LAPLACE_CENTRES:
        fit = OutOfSampleFit(snaps.time_ms, events.time, pairs.time, config)
        for row, (ub, _) in row_inv.items():
            for w in WEIGHTS:
                grid_sums[(row, w, centre)] = np.zeros((len(ub), len(grid)))
        for j, ll in grid_loglik(snaps, centre, pairs.snap, pairs.cell, config):
            fit.add(j, ll, weights)
            for row, m in rows.items():
                _, inv = row_inv[row]
                for w in WEIGHTS:
                    col = np.bincount(inv, weights=ll[m] * weights[w][m], minlength=len(row_inv[row][0]))
                    grid_sums[(row, w, centre)][:, j] = col
        n_fixed = int(np.count_nonzero(fit.n_events[scored] < config.fit_min_events))
        for w in WEIGHTS:
            mult = fit.multipliers(w)
            oos[w][f"{centre}_fit"] = laplace_pair_loglik(snaps, centre, mult, pairs.snap, pairs.cell, config)
            oos_mult[w][centre] = float(np.median(mult[scored])) if len(scored) else math.nan
    best: dict[str, dict[str, dict[str, float]]] = {}
    for (row, w, centre), sums in grid_sums.items():
        total = sums.sum(axis=0)
        k = float(grid[int(np.argmax(total))]) if len(sums) else math.nan
        best.setdefault(row, {}).setdefault(w, {})[centre] = k
    summary = NullFitSummary(config.laplace_atr_mult, n_fixed, len(scored), oos_mult, best)
    return _NullFits(oos, grid_sums, summary)


# ---------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class TopShare:
    q: float  # share of cells (the chance baseline)
    share: Estimate  # share of liquidated USD (or events) in those cells
    lift: Estimate  # share / q


@dataclass(frozen=True)
class WeightedScores:
    """The top-q shares and log-likelihoods with each event weighted by its USD or counted once."""

    weight: str  # "usd" or "count"
    top: tuple[TopShare, ...]
    loglik: dict[str, Estimate]  # mean nats per event (count) or per USD (usd) vs uniform: "model", nulls
    lift: dict[str, Estimate]  # model − null, per null


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
    by_usd: WeightedScores
    by_count: WeightedScores
    enough: bool
    verdict: str

    @property
    def top(self) -> tuple[TopShare, ...]:
        """Top-q shares of liquidated USD (by_count.top has the shares of events)."""
        return self.by_usd.top

    @property
    def loglik(self) -> dict[str, Estimate]:
        """Nats per event, each event counted once (by_usd.loglik has the USD-weighted view)."""
        return self.by_count.loglik

    @property
    def lift(self) -> dict[str, Estimate]:
        return self.by_count.lift

    def top_share(self, q: float, weight: str = "usd") -> TopShare:
        for t in (self.by_usd if weight == "usd" else self.by_count).top:
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
    cell_share: F64
    usd_share: F64
    n_events: int
    usd: float


@dataclass(frozen=True)
class LiquidationScore:
    """One set of events (one venue's, or several venues' pooled) against one density source."""

    venue: str  # the venues of the events, "+"-joined ("" when there were none)
    n_tape_events: int  # events inside the scored horizons (inside the range or not)
    rows: dict[str, RowScore]
    reliability: dict[str, ReliabilityCurve]  # per row
    path: dict[str, PathScore]  # per row of PATH_ROWS
    precision: dict[str, tuple[PrecisionScore, ...]]  # per row of PATH_ROWS, one per N
    nulls: NullFitSummary

    @property
    def enough(self) -> bool:
        return self.rows["total"].enough


@dataclass(frozen=True)
class CalibrationResult:
    config: CalibrationConfig
    n_snapshots: int
    first_ms: int | None
    last_ms: int | None
    magnet: MagnetScore
    venues: dict[str, LiquidationScore]  # ALL_VENUES (every event) first, then each venue when several
    notes: list[str] = field(default_factory=list)

    @property
    def all(self) -> LiquidationScore:
        return self.venues[ALL_VENUES]

    @property
    def rows(self) -> dict[str, RowScore]:
        return self.all.rows

    @property
    def reliability(self) -> dict[str, ReliabilityCurve]:
        return self.all.reliability

    @property
    def n_tape_events(self) -> int:
        return self.all.n_tape_events

    @property
    def enough(self) -> bool:
        return self.all.enough

    def to_dict(self) -> dict[str, Any]:
        """Plain values (NaN → None) for JSON; the pooled events' scores also at the top level."""
        d = asdict(self)
        d["config"]["top_shares"] = list(self.config.top_shares)
        d["config"]["precision_n"] = list(self.config.precision_n)
        for key in ("rows", "reliability", "n_tape_events", "path", "precision", "nulls"):
            d[key] = d["venues"][ALL_VENUES][key]
        out = _plain(d)
        assert isinstance(out, dict)
        return out


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


# ------------------------------------------------------------------------------------- liquidations


def score_rows(
    snaps: Snapshots, pairs: PairScores, fits: _NullFits, block_of_pair: I64, config: CalibrationConfig
) -> dict[str, RowScore]:
    out = {}
    for salt, name in enumerate(ROWS):
        outside = pairs.n_outside.get(LONG, 0) * (name != "short") + pairs.n_outside.get(SHORT, 0) * (
            name != "long"
        )
        out[name] = _score_row(name, pairs, fits, block_of_pair, outside, config, salt)
    return out


def _score_row(
    name: str,
    pairs: PairScores,
    fits: _NullFits,
    block_of_pair: I64,
    n_outside: int,
    config: CalibrationConfig,
    salt: int,
) -> RowScore:
    qs = config.top_shares
    nq = len(qs)
    m = _row_mask(pairs, name)
    dens = _ROW_DENSITY[name]
    lo, hi = pairs.rank_lo[dens][m], pairs.rank_hi[dens][m]
    fixed = ("uniform", "range", *LAPLACE_CENTRES)
    fitted = [f"{c}_fit" for c in LAPLACE_CENTRES]
    cols: list[F64] = []
    for w, weight in _weights(pairs).items():
        wm = weight[m]
        cols += [wm, *(wm * top_weight(lo, hi, q) for q in qs), wm * pairs.loglik[dens][m]]
        cols += [wm * pairs.loglik[n][m] for n in fixed] + [wm * fits.oos_loglik[w][n][m] for n in fitted]
    sums, n_blocks = block_sums(block_of_pair[m], cols)
    grid = [fits.grid_sums[(name, w, c)] for w in WEIGHTS for c in LAPLACE_CENTRES]
    if len(sums):
        sums = np.concatenate([sums, *grid], axis=1)
    per_w = 2 + nq + len(fixed) + len(fitted)  # columns per weighting before the grids
    k_n = len(scale_grid(config))
    ll_names = ("model", *fixed, *fitted, *(f"{c}_best" for c in LAPLACE_CENTRES))

    def stat(s: F64) -> F64:
        parts = []
        with np.errstate(all="ignore"):
            for i in range(len(WEIGHTS)):
                b = s[..., i * per_w : (i + 1) * per_w]
                tot = b[..., :1]
                shares = b[..., 1 : 1 + nq] / tot
                ll = b[..., 1 + nq :] / tot
                g0 = len(WEIGHTS) * per_w + i * len(LAPLACE_CENTRES) * k_n
                best = [
                    np.max(s[..., g0 + c * k_n : g0 + (c + 1) * k_n], axis=-1, keepdims=True) / tot
                    for c in range(len(LAPLACE_CENTRES))
                ]
                ll = np.concatenate([ll, *best], axis=-1)
                parts += [shares, shares / np.asarray(qs), ll, ll[..., :1] - ll[..., 1:]]
        return np.asarray(np.concatenate(parts, axis=-1), np.float64)

    n_ll = len(ll_names)
    width = 2 * nq + n_ll + (n_ll - 1)
    if int(m.sum()):
        est = block_bootstrap(sums, stat, n_boot=config.n_boot, ci=config.ci, seed=config.seed, salt=salt)
    else:
        est = [NAN] * (len(WEIGHTS) * width)
    views = []
    for i, w in enumerate(WEIGHTS):
        e = est[i * width : (i + 1) * width]
        top = tuple(TopShare(q, e[k], e[nq + k]) for k, q in enumerate(qs))
        loglik = {k: e[2 * nq + j] for j, k in enumerate(ll_names)}
        lift = {k: e[2 * nq + n_ll + j] for j, k in enumerate(ll_names[1:])}
        views.append(WeightedScores(w, top, loglik, {k: lift[k] for k in NULLS}))
    by_usd, by_count = views
    ev, first = np.unique(pairs.event[m], return_index=True)
    usd_distinct = float(pairs.usd[m][first].sum())
    n_events = len(ev)
    enough = n_events >= config.min_events and n_blocks >= config.min_blocks
    verdict = _row_verdict(by_usd.top, by_count.lift, n_events, n_blocks, enough, config)
    return RowScore(
        name=name, n_events=n_events, n_pairs=int(m.sum()), usd=usd_distinct,
        n_snapshots=len(np.unique(pairs.snap[m])), n_blocks=n_blocks, n_outside=int(n_outside),
        by_usd=by_usd, by_count=by_count, enough=enough, verdict=verdict,
    )  # fmt: skip


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
            f"{span_text(config.block_length_ms)} windows (need ≥ {config.min_events} in ≥ {config.min_blocks})"
        )
    t = top[0]
    pct = f"top {t.q * 100:g} % cells"
    if t.lift.above(1.0):
        parts = [f"{pct} catch more liquidated USD than chance"]
    elif t.lift.below(1.0):
        parts = [f"{pct} catch less liquidated USD than chance"]
    else:
        parts = [f"{pct} not distinguishable from chance"]
    judged = {k: lift[k] for k in VERDICT_NULLS}
    beats = [_NULL_LABEL[k] for k, e in judged.items() if e.above(0.0)]
    loses = [_NULL_LABEL[k] for k, e in judged.items() if e.below(0.0)]
    ties = [_NULL_LABEL[k] for k, e in judged.items() if not (e.above(0.0) or e.below(0.0))]
    if beats:
        parts.append("likelihood beats " + ", ".join(beats))
    if loses:
        parts.append("loses to " + ", ".join(loses))
    if ties:
        parts.append("no difference from " + ", ".join(ties))
    return "; ".join(parts)


def reliability_curve(pairs: PairScores, row: str = "total", points: int = 101) -> ReliabilityCurve:
    """Share of liquidated USD in the densest x share of cells, for x on a grid from 0 to 1.

    Pools all (snapshot, event) pairs of the row; the chance line is y = x, a perfect map jumps to 1
    at the share of cells its events occupy."""
    dens = _ROW_DENSITY[row]
    m = _row_mask(pairs, row)
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


def magnet_test(snaps: Snapshots, high: F64, low: F64, config: CalibrationConfig) -> MagnetScore:
    """How often price reached the largest cluster within reach, against the same distance at random.

    high/low: the bar series the snapshots index into (sweep highs/lows: what liquidates levels)."""
    h_bars = max(1, -(-config.horizon_ms // snaps.interval_ms))
    half = snaps.kernel_cells(config.tolerance_pct)
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
        hit_s = float(fut_hi >= target) if above else float(fut_lo <= target)
        rows.append((s, d, hit_s, (up + down) / 2.0, down if above else up))
    hit = rnd = opp = diff = NAN
    dist, n_blocks = math.nan, 0
    if rows:
        arr = np.array(rows)
        blocks = block_ids(snaps.time_ms, config.block_length_ms)[arr[:, 0].astype(np.int64)]
        sums, n_blocks = block_sums(blocks, [np.ones(len(arr)), arr[:, 2], arr[:, 3], arr[:, 4]])

        def stat(s: F64) -> F64:
            with np.errstate(all="ignore"):
                r = s[..., 1:] / s[..., :1]
            return np.asarray(np.concatenate([r, r[..., :1] - r[..., 1:2]], axis=-1), np.float64)

        hit, rnd, opp, diff = block_bootstrap(
            sums, stat, n_boot=config.n_boot, ci=config.ci, seed=config.seed, salt=99
        )
        dist = float(arr[:, 1].mean() * 100.0)
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


@dataclass(frozen=True, eq=False)
class PreparedSnapshots:
    """What every set of events scored on the same snapshots shares: densities and price paths."""

    snaps: Snapshots
    dist: dict[str, F64]
    ranges: PathRanges


def prepare(snaps: Snapshots, high: F64, low: F64, config: CalibrationConfig) -> PreparedSnapshots:
    return PreparedSnapshots(snaps, distributions(snaps, config), path_ranges(snaps, high, low, config))


def venue_names(events: Liquidations) -> list[str]:
    """The venues in a tape, in order of first appearance."""
    return list(dict.fromkeys(str(v) for v in events.exchange.tolist()))


def score_liquidations(
    prepared: PreparedSnapshots, events: Liquidations, config: CalibrationConfig
) -> LiquidationScore:
    """All liquidation scores of one set of events (one venue's, or several pooled) against one density
    source. Call it per venue and for the pooled events to lay them side by side."""
    snaps = prepared.snaps
    pairs = score_pairs(snaps, events, config, prepared.dist)
    block_of_pair = block_ids(snaps.time_ms, config.block_length_ms)[pairs.snap]
    fits = _fit_nulls(snaps, pairs, events, block_of_pair, config)
    times = snaps.time_ms
    in_window = 0
    if len(times):
        in_window = int(
            np.count_nonzero((events.time >= times[0]) & (events.time < times[-1] + config.horizon_ms))
        )
    path: dict[str, PathScore] = {}
    precision: dict[str, tuple[PrecisionScore, ...]] = {}
    for salt, row in enumerate(PATH_ROWS):
        m = _row_mask(pairs, row)
        dens = prepared.dist[row]
        snap, cell = pairs.snap[m], pairs.cell[m]
        path[row] = score_path(row, snaps, dens, prepared.ranges, snap, cell, pairs.usd[m], config, salt)
        precision[row] = tuple(
            precision_at_n(
                row, snaps, dens, prepared.ranges.low, prepared.ranges.high, snap, pairs.price[m], n, config
            )
            for n in config.precision_n
        )
    return LiquidationScore(
        venue="+".join(venue_names(events)),
        n_tape_events=in_window,
        rows=score_rows(snaps, pairs, fits, block_of_pair, config),
        reliability={row: reliability_curve(pairs, row) for row in ROWS},
        path=path,
        precision=precision,
        nulls=fits.summary,
    )


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
    high: F64,
    low: F64,
    config: CalibrationConfig | None = None,
) -> CalibrationResult:
    """All scores for given snapshots: the pooled events, and each venue's when the tape holds several.
    high/low: the bar series snaps.bar indexes (magnet test, price paths)."""
    config = config or CalibrationConfig()
    liqs = liquidations if liquidations is not None else Liquidations.empty()
    prepared = prepare(snaps, np.asarray(high, np.float64), np.asarray(low, np.float64), config)
    notes = []
    if len(snaps) == 0:
        notes.append("no snapshot instants: the data is shorter than the warm-up or the window is empty")
    venues = {ALL_VENUES: score_liquidations(prepared, liqs, config)}
    names = venue_names(liqs)
    if len(names) > 1:
        for v in names:
            venues[v] = score_liquidations(prepared, liqs.take(liqs.exchange == v), config)
    times = snaps.time_ms
    return CalibrationResult(
        config=config,
        n_snapshots=len(times),
        first_ms=int(times[0]) if len(times) else None,
        last_ms=int(times[-1]) if len(times) else None,
        magnet=magnet_test(snaps, high, low, config),
        venues=venues,
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

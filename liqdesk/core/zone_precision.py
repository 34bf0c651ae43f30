"""Precision at N: of the map's N strongest zones, how many were hit by a real liquidation in time?

* **Zone.** A local maximum of the ±tolerance smoothed density (a flat top counts once, at its
  middle) and the cells of its ±tolerance window: the cells whose notional that peak's smoothed
  density averages, and the price window a reported liquidation can stand for. Zones are taken
  densest first; a peak closer than one zone width to a denser zone's centre belongs to that zone, so
  N zones are N separate clusters, never adjacent cells of one. With a tolerance of 0 a zone is one
  cell.
* **Hit.** A real liquidation (of the side scored) inside the zone during [t, t + horizon).
* **Precision at N** = hits / zones, pooled over the snapshots that have events in their horizon
  (where the tape recorded something) and a known price path. **Reached**: the zones price traded
  into; precision among those separates a wrong place from a place price never went.
* **Chance.** The same number of zones of the same width placed uniformly at random in the price
  range traversed during the horizon: the exact probability that such a zone holds an event is the
  length of the union of ±half-width windows around the events, within the traversed range, over
  that range's length. Placing them only where price went is generous to chance.
* **Interval.** Wilson's score interval. Snapshots whose horizons overlap score the same events and
  the same path, so the number of trials is divided by the overlap: scored snapshots per independent
  window of one horizon (an effective n, zones per window); zones of one snapshot share its path,
  so even that is optimistic when N is large.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from liqdesk.core.calibration_config import CalibrationConfig
from liqdesk.core.density_snapshots import Snapshots
from liqdesk.core.intervals import NAN, Estimate, block_ids, wilson

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


def peak_cells(dens: F64) -> tuple[F64, F64]:
    """Local maxima of one row: (position in cells, the middle of a flat top; density), densest first.
    Cells with zero density are never peaks."""
    d = np.asarray(dens, np.float64)
    if len(d) == 0:
        return np.zeros(0), np.zeros(0)
    starts = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
    ends = np.r_[starts[1:], len(d)] - 1
    v = d[starts]
    left = np.r_[-np.inf, v[:-1]]
    right = np.r_[v[1:], -np.inf]
    peak = (v > left) & (v > right) & (v > 0)
    pos = (starts[peak] + ends[peak]) / 2.0
    val = v[peak]
    order = np.argsort(-val, kind="stable")
    return np.asarray(pos[order], np.float64), np.asarray(val[order], np.float64)


def zones(dens: F64, lo: float, width: float, zone_width: float, n: int) -> F64:
    """Centres (prices) of the n densest separate zones of one smoothed density row."""
    pos, _ = peak_cells(dens)
    centres = lo + (pos + 0.5) * width
    kept: list[float] = []
    for c in centres.tolist():
        if all(abs(c - k) >= zone_width for k in kept):
            kept.append(c)
            if len(kept) == n:
                break
    return np.asarray(kept, np.float64)


def covered_share(prices: F64, half: float, lo: float, hi: float) -> float:
    """Share of [lo, hi] within `half` of some price: the chance that a zone of width 2·half centred
    uniformly in [lo, hi] holds one of the prices."""
    if hi <= lo:
        return 1.0 if np.any(np.abs(prices - lo) <= half) else 0.0
    a = np.sort(np.clip(prices - half, lo, hi))
    b = np.clip(np.sort(prices) + half, lo, hi)  # same order: windows share one width
    total, cur_a, cur_b = 0.0, -math.inf, -math.inf
    for x, y in zip(a.tolist(), b.tolist(), strict=True):
        if x > cur_b:
            total += max(0.0, cur_b - cur_a) if math.isfinite(cur_a) else 0.0
            cur_a, cur_b = x, y
        else:
            cur_b = max(cur_b, y)
    if math.isfinite(cur_a):
        total += cur_b - cur_a
    return total / (hi - lo)


@dataclass(frozen=True)
class PrecisionScore:
    name: str
    n: int  # N asked for
    n_snapshots: int  # snapshots scored (events in the horizon, known path)
    n_zones: int  # zones found (≤ N per snapshot: a map may have fewer separate peaks)
    hits: int
    n_reached: int  # zones price traded into during the horizon
    hits_reached: int
    overlap: float  # scored snapshots per independent window (the trials are divided by it)
    zone_width_pct: float
    precision: Estimate  # hits / zones, Wilson interval on zones / overlap trials
    precision_reached: Estimate  # hits / reached zones
    chance: float  # expected precision of random zones of the same width in the traversed range
    lift: float  # precision / chance

    @property
    def reached_share(self) -> float:
        return self.n_reached / self.n_zones if self.n_zones else math.nan


def precision_at_n(
    name: str,
    snaps: Snapshots,
    dens: F64,
    path_low: F64,
    path_high: F64,
    snap: I64,
    price: F64,
    n: int,
    config: CalibrationConfig,
) -> PrecisionScore:
    """Precision at n of smoothed density `dens` (S, P) against events at (snap, price); path_low/high:
    the traded range of each snapshot's horizon (NaN where unknown)."""
    has_events = np.zeros(len(snaps), bool)
    has_events[snap] = True
    scored = np.flatnonzero(has_events & np.isfinite(path_low))
    windows = len(np.unique(block_ids(snaps.time_ms, config.block_length_ms)[scored]))
    overlap = len(scored) / windows if windows else 1.0
    order = np.argsort(snap, kind="stable")
    starts = np.searchsorted(snap[order], np.arange(len(snaps) + 1), "left")
    n_zones = hits = n_reached = hits_reached = 0
    chance_sum = 0.0
    width_pct = []
    half_cells = snaps.kernel_cells(config.tolerance_pct)
    for s in scored.tolist():
        ev = price[order[starts[s] : starts[s + 1]]]
        w = float(snaps.width[s])
        half = (int(half_cells[s]) + 0.5) * w
        width_pct.append(2.0 * half / float(snaps.spot[s]) * 100.0)
        centres = zones(dens[s], float(snaps.lo[s]), w, 2.0 * half, n)
        inside = half * (1.0 + 1e-12)  # a price on the zone's edge is in it, whatever the rounding
        hit = np.array([np.any(np.abs(ev - c) <= inside) for c in centres.tolist()], bool)
        lo, hi = float(path_low[s]), float(path_high[s])
        reached = (centres + half >= lo) & (centres - half <= hi)
        n_zones += len(centres)
        hits += int(hit.sum())
        n_reached += int(reached.sum())
        hits_reached += int((hit & reached).sum())
        chance_sum += len(centres) * covered_share(ev, half, lo, hi)
    if n_zones == 0:
        prec = prec_r = NAN
        chance = math.nan
    else:
        prec = _wilson_eff(hits, n_zones, overlap, config.ci)
        prec_r = _wilson_eff(hits_reached, n_reached, overlap, config.ci) if n_reached else NAN
        chance = chance_sum / n_zones
    lift = prec.value / chance if n_zones and chance > 0 else math.nan
    return PrecisionScore(
        name=name, n=n, n_snapshots=len(scored), n_zones=n_zones, hits=hits, n_reached=n_reached,
        hits_reached=hits_reached, overlap=overlap,
        zone_width_pct=float(np.mean(width_pct)) if width_pct else math.nan,
        precision=prec, precision_reached=prec_r, chance=chance, lift=lift,
    )  # fmt: skip


def _wilson_eff(hits: int, n: int, overlap: float, ci: float) -> Estimate:
    """The hit rate with a Wilson interval on n / overlap effective trials."""
    p = hits / n
    iv = wilson(p * n / overlap, n / overlap, ci)
    return Estimate(p, iv.low, iv.high)

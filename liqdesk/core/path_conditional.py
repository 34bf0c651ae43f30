"""Path-conditional test: given where price went, did liquidations fall where the map was dense?

The map claims "there is a lot of liquidation here", not "price goes here". A liquidation can only
happen where price traded, so a map scored on all cells is also scored on the price path it never
claimed to know. This test takes the path as given: for each snapshot, only the cells price traversed
during [t, t + horizon) count (the range of the bars' lows and highs in the horizon, widened by the
±tolerance of reported prices), and among those it asks whether liquidated USD per cell follows the
map's (±tolerance smoothed) density:

* **rank correlation**: Spearman's ρ between density and liquidated USD (and event count) over the
  traversed cells, per snapshot, averaged over snapshots with events on the path (ρ = 0 when the map
  is flat over the path: it ranks nothing). Chance: 0.
* **top-quarter share**: share of the liquidated USD (and of the events) in the densest quarter of the
  traversed cells, ties credited fractionally, pooled over snapshots. Chance: 25 % exactly.

Intervals: block bootstrap over snapshots (blocks of one horizon holding events on the path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from liqdesk.core.calibration_config import CalibrationConfig
from liqdesk.core.density_snapshots import Snapshots
from liqdesk.core.intervals import NAN, Estimate, block_bootstrap, block_ids, block_sums
from liqdesk.core.ranks import rank_interval, spearman, top_weight

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class PathRanges:
    """Per snapshot, the cells price traversed during its horizon: [first, last]; last < first when
    no bar of the horizon is in the data."""

    first: I64
    last: I64
    low: F64  # the path's low and high (before the tolerance widening)
    high: F64

    @property
    def known(self) -> NDArray[np.bool_]:
        return np.asarray(self.last >= self.first, np.bool_)

    def contains(self, snap: I64, cell: I64) -> NDArray[np.bool_]:
        return np.asarray((cell >= self.first[snap]) & (cell <= self.last[snap]), np.bool_)


def horizon_bars(snaps: Snapshots, config: CalibrationConfig) -> int:
    return max(1, -(-config.horizon_ms // snaps.interval_ms))


def path_ranges(snaps: Snapshots, high: F64, low: F64, config: CalibrationConfig) -> PathRanges:
    """Traversed cells: bars bar + 1 … bar + horizon (those that exist), widened by ±tolerance."""
    h = horizon_bars(snaps, config)
    n = len(high)
    s_n = len(snaps)
    p_lo, p_hi = np.full(s_n, np.nan), np.full(s_n, np.nan)
    for s, b in enumerate(snaps.bar.tolist()):
        a, z = b + 1, min(n, b + 1 + h)
        if a < z:
            p_lo[s], p_hi[s] = float(np.min(low[a:z])), float(np.max(high[a:z]))
    tol = config.tolerance_pct / 100.0
    known = np.isfinite(p_lo)
    lo_w = np.where(known, p_lo * (1 - tol), snaps.hi)
    hi_w = np.where(known, p_hi * (1 + tol), snaps.lo)
    first = np.clip(np.floor((lo_w - snaps.lo) / snaps.width), 0, snaps.n_bins - 1).astype(np.int64)
    last = np.clip(np.ceil((hi_w - snaps.lo) / snaps.width) - 1, 0, snaps.n_bins - 1).astype(np.int64)
    last = np.where(known & (hi_w > snaps.lo) & (lo_w < snaps.hi), last, first - 1)
    return PathRanges(first, np.asarray(last, np.int64), p_lo, p_hi)


@dataclass(frozen=True)
class PathCurve:
    """Share of liquidated USD caught by the densest x share of the traversed cells (y = x by chance)."""

    cell_share: F64
    usd_share: F64


@dataclass(frozen=True)
class PathScore:
    name: str
    top: float  # share of traversed cells called "top" (the chance level of the shares)
    n_snapshots: int  # snapshots with events on their path
    n_blocks: int
    n_pairs: int  # (snapshot, event) pairs on the path
    n_off_path: int  # pairs in the range but outside the traversed cells (reported beyond the path)
    mean_cells: float  # traversed cells per scored snapshot
    rho_usd: Estimate  # Spearman ρ, density vs liquidated USD per traversed cell, mean over snapshots
    rho_count: Estimate  # the same against the number of events per cell
    share_usd: Estimate  # share of liquidated USD in the densest `top` of traversed cells
    share_count: Estimate  # share of events there
    curve: PathCurve


def score_path(
    name: str,
    snaps: Snapshots,
    dens: F64,
    ranges: PathRanges,
    snap: I64,
    cell: I64,
    usd: F64,
    config: CalibrationConfig,
    salt: int = 0,
    points: int = 101,
) -> PathScore:
    """Score density `dens` (S, P) against events at (snap, cell) with USD `usd` on the traversed cells."""
    on = ranges.contains(snap, cell)
    n_off = int(np.count_nonzero(~on))
    snap, cell, usd = snap[on], cell[on], usd[on]
    x = np.linspace(0.0, 1.0, points)
    curve_num = np.zeros(points)
    rows: list[tuple[int, float, float, float, float, float, float]] = []
    cells_seen: list[int] = []
    q = config.path_top
    order = np.argsort(snap, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(snap[order]) != 0, True]) if len(snap) else np.zeros(1, int)
    for a, z in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        j = order[a:z]
        s = int(snap[j[0]])
        c0, c1 = int(ranges.first[s]), int(ranges.last[s])
        d = dens[s, c0 : c1 + 1]
        local = cell[j] - c0
        m = len(d)
        y_usd = np.asarray(np.bincount(local, weights=usd[j], minlength=m), np.float64)
        y_cnt = np.bincount(local, minlength=m).astype(np.float64)
        lo, hi = rank_interval(d, d)
        w_top = top_weight(lo, hi, q)
        rows.append((
            s, spearman(d, y_usd), spearman(d, y_cnt), float((w_top * y_usd).sum()), float(y_usd.sum()),
            float((w_top * y_cnt).sum()), float(y_cnt.sum()),
        ))  # fmt: skip
        cells_seen.append(m)
        curve_num += (y_usd[:, None] * top_weight(lo[:, None], hi[:, None], x[None, :])).sum(axis=0)
    total_usd = float(usd.sum())
    curve = PathCurve(x, curve_num / total_usd if total_usd > 0 else np.full(points, np.nan))
    if not rows:
        return PathScore(name, q, 0, 0, 0, n_off, math.nan, NAN, NAN, NAN, NAN, curve)
    arr = np.array(rows)
    blocks = block_ids(snaps.time_ms, config.block_length_ms)[arr[:, 0].astype(np.int64)]
    cols = [np.ones(len(arr)), *(arr[:, k] for k in range(1, 7))]
    sums, n_blocks = block_sums(blocks, cols)

    def stat(t: F64) -> F64:
        with np.errstate(all="ignore"):
            n = t[..., 0:1]
            return np.concatenate(
                [t[..., 1:2] / n, t[..., 2:3] / n, t[..., 3:4] / t[..., 4:5], t[..., 5:6] / t[..., 6:7]],
                axis=-1,
            )

    rho_u, rho_c, sh_u, sh_c = block_bootstrap(
        sums, stat, n_boot=config.n_boot, ci=config.ci, seed=config.seed, salt=200 + salt
    )
    return PathScore(
        name=name, top=q, n_snapshots=len(rows), n_blocks=n_blocks, n_pairs=len(snap), n_off_path=n_off,
        mean_cells=float(np.mean(cells_seen)), rho_usd=rho_u, rho_count=rho_c, share_usd=sh_u,
        share_count=sh_c, curve=curve,
    )  # fmt: skip

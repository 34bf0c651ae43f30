"""How far the estimated liquidation map is from the actual one (sampled positions), snapshot by snapshot.

Both maps share one price grid per snapshot. Scores:

* **Top-q share**: the share of actual notional lying in the estimate's densest q of cells (q = 10 %, 25 %),
  ties credited fractionally (``ranks.top_weight``) so that chance is exactly q for any estimate.
* **Wasserstein-1 distance** (earth mover's) between the two maps, each scaled to sum to one, in % of spot:
  the mean distance actual notional would have to move to take the estimate's shape. It is the primary distance
  because it is in price units a trader reads ("the estimate is off by 1.8 % on average") and keeps measuring
  when the maps do not overlap (a level 0.5 % off scores better than one 5 % off). Per side too (long against
  long, short against short), since the two sides sit on opposite sides of price.
* **Jensen–Shannon divergence** (base 2, in [0, 1]) of the same two distributions: how much they overlap cell by
  cell, blind to how far apart non-overlapping mass is. Reported beside W1 because it says "same cells or not",
  which W1 does not separate from "near".
* **Top clusters**: the k largest clusters of each side of the actual map (``liqmap.find_magnets``); a cluster
  counts as found when the estimate has a cluster of the same side whose centre lies within ``cluster_tol_pct``
  % of it.

Summaries over snapshots are means with 95 % block-bootstrap intervals (blocks of a day: neighbouring
snapshots share most positions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from liqdesk.core.actual_map import PositionSamples, actual_map
from liqdesk.core.density_snapshots import Snapshots
from liqdesk.core.grid import PriceBins
from liqdesk.core.intervals import Estimate, block_bootstrap, block_ids, block_sums
from liqdesk.core.liqmap import LiquidationMap, find_magnets
from liqdesk.core.ranks import rank_interval, top_weight

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

TOP_SHARES = (0.10, 0.25)
DAY_MS = 86_400_000


@dataclass(frozen=True)
class ComparisonConfig:
    top_shares: tuple[float, ...] = TOP_SHARES
    clusters: int = 3  # top-k clusters per side
    cluster_tol_pct: float = 1.0
    block_ms: int = DAY_MS
    n_boot: int = 2000
    ci: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class MapComparison:
    """One snapshot. NaN where a score is undefined (an empty actual or estimated side)."""

    time_ms: int
    spot: float
    actual_usd: float
    estimate_usd: float
    top_share: dict[float, float]  # q → share of actual notional in the estimate's top q cells
    w1_pct: float  # total map
    w1_long_pct: float
    w1_short_pct: float
    js: float  # Jensen–Shannon divergence, base 2
    clusters: int  # actual clusters considered (≤ k per side)
    clusters_found: int

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "top_share"}
        d["top_share"] = {f"{q:g}": v for q, v in self.top_share.items()}
        return d


def top_share(estimate: F64, actual: F64, q: float) -> float:
    """Share of ``actual`` mass in the densest q share of ``estimate``'s cells (chance: q)."""
    a = np.asarray(actual, np.float64)
    total = float(a.sum())
    if total <= 0:
        return math.nan
    lo, hi = rank_interval(np.asarray(estimate, np.float64), np.asarray(estimate, np.float64))
    return float((a * top_weight(lo, hi, q)).sum() / total)


def wasserstein_pct(estimate: F64, actual: F64, bins: PriceBins, spot: float) -> float:
    """W1 between the two maps scaled to one, on the grid's cells, in % of ``spot``."""
    e, a = np.asarray(estimate, np.float64), np.asarray(actual, np.float64)
    se, sa = float(e.sum()), float(a.sum())
    if se <= 0 or sa <= 0:
        return math.nan
    gap = np.abs(np.cumsum(e / se) - np.cumsum(a / sa))[:-1]
    return float(gap.sum() * bins.width / spot * 100.0)


def jensen_shannon(estimate: F64, actual: F64) -> float:
    e, a = np.asarray(estimate, np.float64), np.asarray(actual, np.float64)
    se, sa = float(e.sum()), float(a.sum())
    if se <= 0 or sa <= 0:
        return math.nan
    p, r = e / se, a / sa
    m = (p + r) / 2.0

    def kl(x: F64) -> float:
        nz = x > 0
        return float((x[nz] * np.log2(x[nz] / m[nz])).sum())

    return min(1.0, max(0.0, 0.5 * kl(p) + 0.5 * kl(r)))


def _single_tier_map(long: F64, short: F64, bins: PriceBins, spot: float, time_ms: int) -> LiquidationMap:
    return LiquidationMap(
        bar=0, time_ms=time_ms, price_now=spot, bins=bins, tier_labels=["all"],
        long_by_tier=np.asarray(long, np.float64)[None, :], short_by_tier=np.asarray(short, np.float64)[None, :],
        total_long=float(np.sum(long)), total_short=float(np.sum(short)),
    )  # fmt: skip


def clusters_found(
    est_long: F64, est_short: F64, act_long: F64, act_short: F64, bins: PriceBins, spot: float,
    k: int, tol_pct: float,
) -> tuple[int, int]:  # fmt: skip
    """(actual clusters, those with an estimated cluster of the same side within tol_pct % of their centre)."""
    act = find_magnets(_single_tier_map(act_long, act_short, bins, spot, 0), per_side=k)
    est = find_magnets(_single_tier_map(est_long, est_short, bins, spot, 0), per_side=k)
    found = 0
    for m in act:
        if any(e.side == m.side and abs(e.price - m.price) <= tol_pct / 100.0 * m.price for e in est):
            found += 1
    return len(act), found


def compare_maps(
    est_long: F64,
    est_short: F64,
    act_long: F64,
    act_short: F64,
    bins: PriceBins,
    spot: float,
    time_ms: int,
    config: ComparisonConfig = ComparisonConfig(),
) -> MapComparison:
    """Score one snapshot: the estimate and the actual map on the same ``bins``."""
    est = np.asarray(est_long, np.float64) + np.asarray(est_short, np.float64)
    act = np.asarray(act_long, np.float64) + np.asarray(act_short, np.float64)
    n, found = clusters_found(est_long, est_short, act_long, act_short, bins, spot, config.clusters,
                              config.cluster_tol_pct)  # fmt: skip
    return MapComparison(
        time_ms=int(time_ms), spot=float(spot), actual_usd=float(act.sum()), estimate_usd=float(est.sum()),
        top_share={q: top_share(est, act, q) for q in config.top_shares},
        w1_pct=wasserstein_pct(est, act, bins, spot),
        w1_long_pct=wasserstein_pct(est_long, act_long, bins, spot),
        w1_short_pct=wasserstein_pct(est_short, act_short, bins, spot),
        js=jensen_shannon(est, act), clusters=n, clusters_found=found,
    )  # fmt: skip


@dataclass(frozen=True)
class ComparisonSummary:
    """Means over the scored snapshots (those with actual notional), with intervals."""

    n_snapshots: int
    n_blocks: int
    top_share: dict[float, Estimate]  # chance = q
    w1_pct: Estimate
    w1_long_pct: Estimate
    w1_short_pct: Estimate
    js: Estimate
    cluster_hit: Estimate  # found / considered, pooled
    snapshots: tuple[MapComparison, ...] = field(repr=False, default=())

    def to_dict(self) -> dict[str, Any]:
        def e(x: Estimate) -> dict[str, float | None]:
            return {k: (v if math.isfinite(v) else None) for k, v in x.__dict__.items()}

        return {
            "n_snapshots": self.n_snapshots, "n_blocks": self.n_blocks,
            "top_share": {f"{q:g}": e(v) for q, v in self.top_share.items()},
            "w1_pct": e(self.w1_pct), "w1_long_pct": e(self.w1_long_pct), "w1_short_pct": e(self.w1_short_pct),
            "js": e(self.js), "cluster_hit": e(self.cluster_hit),
            "snapshots": [
                {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in s.to_dict().items()}
                for s in self.snapshots
            ],
        }  # fmt: skip


def summarise(rows: list[MapComparison], config: ComparisonConfig = ComparisonConfig()) -> ComparisonSummary:
    """Means of each score over the snapshots where it is defined; cluster hits pooled (found / considered)."""
    scored = [r for r in rows if r.actual_usd > 0]
    times = np.array([r.time_ms for r in scored], np.int64)
    blocks = block_ids(times, config.block_ms)

    def mean_of(values: list[float], salt: int) -> Estimate:
        v = np.asarray(values, np.float64)
        ok = np.isfinite(v)
        if not ok.any():
            return Estimate(math.nan)
        sums, _ = block_sums(blocks[ok], [v[ok], np.ones(int(ok.sum()))])
        (est,) = block_bootstrap(
            sums, lambda s: s[..., :1] / s[..., 1:], n_boot=config.n_boot, ci=config.ci, seed=config.seed,
            salt=salt,
        )  # fmt: skip
        return est

    hits: Estimate
    considered = np.array([r.clusters for r in scored], np.float64)
    if considered.sum() > 0:
        found = np.array([r.clusters_found for r in scored], np.float64)
        sums, _ = block_sums(blocks, [found, considered])
        with np.errstate(invalid="ignore", divide="ignore"):
            (hits,) = block_bootstrap(
                sums, lambda s: s[..., :1] / s[..., 1:], n_boot=config.n_boot, ci=config.ci,
                seed=config.seed, salt=99,
            )  # fmt: skip
    else:
        hits = Estimate(math.nan)
    return ComparisonSummary(
        n_snapshots=len(scored),
        n_blocks=len(np.unique(blocks)),
        top_share={q: mean_of([r.top_share[q] for r in scored], i) for i, q in enumerate(config.top_shares)},
        w1_pct=mean_of([r.w1_pct for r in scored], 10),
        w1_long_pct=mean_of([r.w1_long_pct for r in scored], 11),
        w1_short_pct=mean_of([r.w1_short_pct for r in scored], 12),
        js=mean_of([r.js for r in scored], 13),
        cluster_hit=hits,
        snapshots=tuple(rows),
    )


def compare_snapshots(
    snaps: Snapshots,
    samples: PositionSamples,
    max_age_ms: int,
    config: ComparisonConfig = ComparisonConfig(),
) -> list[MapComparison]:
    """The estimate at each snapshot against the actual map of the same instant on the snapshot's grid: each
    account's newest sample at or before the instant and no older than ``max_age_ms`` (``samples`` holds one
    coin). Snapshots with no sample in reach are left out."""
    out = []
    for s in range(len(snaps)):
        t = int(snaps.time_ms[s])
        state = samples.latest(t, max_age_ms)
        if state.n_samples == 0:
            continue
        bins = PriceBins(float(snaps.lo[s]), float(snaps.hi[s]), snaps.n_bins)
        amap = actual_map(state, bins)
        out.append(
            compare_maps(
                snaps.long[s], snaps.short[s], amap.long, amap.short, bins, float(snaps.spot[s]), t, config
            )
        )
    return out

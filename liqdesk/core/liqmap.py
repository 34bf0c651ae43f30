"""The liquidation map at one instant: alive notional per price bin and leverage tier, the
cumulative curves from the current price outward, and the largest clusters ("magnets")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from liqdesk.core.grid import PriceBins
from liqdesk.core.series import LONG, SHORT

if TYPE_CHECKING:
    from liqdesk.core.engine import LiquidationEngine


@dataclass(frozen=True)
class Magnet:
    side: int  # LONG: long levels below price; SHORT: short levels above
    price: float  # notional-weighted centre
    low: float  # cluster edges
    high: float
    usd: float
    distance_pct: float  # (price − current) / current × 100
    main_tier: str  # leverage tier holding most of the cluster


@dataclass(frozen=True)
class LiquidationMap:
    bar: int
    time_ms: int
    price_now: float
    bins: PriceBins
    tier_labels: list[str]
    long_by_tier: np.ndarray  # (K, P) USD of long levels per bin (all sit below price)
    short_by_tier: np.ndarray  # (K, P)
    total_long: float  # all alive long notional, inside the price range or not
    total_short: float

    @property
    def price(self) -> np.ndarray:
        return self.bins.centers

    @property
    def long(self) -> np.ndarray:
        out: np.ndarray = self.long_by_tier.sum(axis=0)
        return out

    @property
    def short(self) -> np.ndarray:
        out: np.ndarray = self.short_by_tier.sum(axis=0)
        return out

    @property
    def cum_long(self) -> np.ndarray:
        """Long notional that a drop from the current price to each bin would liquidate (0 above price)."""
        below = self.bins.centers <= self.price_now
        acc = np.cumsum(np.where(below, self.long, 0.0)[::-1])[::-1]
        return np.where(below, acc, 0.0)

    @property
    def cum_short(self) -> np.ndarray:
        """Short notional that a rise from the current price to each bin would liquidate (0 below)."""
        above = self.bins.centers >= self.price_now
        return np.where(above, np.cumsum(np.where(above, self.short, 0.0)), 0.0)


def liquidation_map(engine: LiquidationEngine, bins: PriceBins, bar: int | None = None) -> LiquidationMap:
    """The map at the end of bar index `bar` (the last bar by default), computed where the engine's
    levels live; the (K, P) vectors and totals come back to the host. An engine that sums other
    engines (core.aggregate_engine) answers with its own `liquidation_map`: its venues' kept columns."""
    bar = engine.n_bars - 1 if bar is None else bar
    own = getattr(engine, "liquidation_map", None)
    if own is not None:
        return own(bins, bar)  # type: ignore[no-any-return]
    xp = engine.xp
    idx, usd = engine.alive_at(bar)
    lv = engine.levels()
    side, tier, b = lv["side"][idx], lv["tier"][idx], bins.index(lv["price"][idx], xp)
    k = len(engine.params.tiers)
    kp = k * bins.n
    maps = []
    for s in (LONG, SHORT):
        m = (side == s) & (b >= 0)
        flat = tier[m].astype(xp.int64) * bins.n + b[m]
        maps.append(xp.bincount(flat, weights=usd[m], minlength=kp))
    totals = xp.stack([usd[side == LONG].sum(), usd[side == SHORT].sum()])
    host = engine.backend.asnumpy(xp.concatenate([maps[0], maps[1], totals]))
    return LiquidationMap(
        bar=bar,
        time_ms=int(engine.open_time[bar]),
        price_now=float(engine.close[bar]),
        bins=bins,
        tier_labels=engine.params.tiers.labels(),
        long_by_tier=host[:kp].reshape(k, bins.n),
        short_by_tier=host[kp : 2 * kp].reshape(k, bins.n),
        total_long=float(host[2 * kp]),
        total_short=float(host[2 * kp + 1]),
    )


def notional_within(engine: LiquidationEngine, bar: int, pct: float) -> tuple[float, float]:
    """Long notional within pct % below the close of bar index `bar`, short notional within pct % above."""
    idx, usd = engine.alive_at(bar)
    lv = engine.levels()
    price, side = lv["price"][idx], lv["side"][idx]
    now = float(engine.close[bar])
    lo, hi = now * (1 - pct / 100.0), now * (1 + pct / 100.0)
    long_usd = usd[(side == LONG) & (price >= lo)].sum()
    short_usd = usd[(side == SHORT) & (price <= hi)].sum()
    return float(long_usd), float(short_usd)


def find_magnets(lmap: LiquidationMap, per_side: int = 3, edge_share: float = 0.25) -> list[Magnet]:
    """The largest clusters on each side, biggest first.

    A cluster grows from the strongest bin outward while neighbours hold at least `edge_share`
    of the peak bin; its bins are then taken out and the next peak is searched.
    """
    out: list[Magnet] = []
    centers = lmap.bins.centers
    for side, by_tier in ((LONG, lmap.long_by_tier), (SHORT, lmap.short_by_tier)):
        total = by_tier.sum(axis=0)
        # Only the correct side of price counts (levels there are the ones price can still reach).
        valid = centers <= lmap.price_now if side == LONG else centers >= lmap.price_now
        work = np.where(valid, total, 0.0)
        for _ in range(per_side):
            peak = int(np.argmax(work))
            if work[peak] <= 0:
                break
            lo = hi = peak
            floor = edge_share * work[peak]
            while lo > 0 and work[lo - 1] >= floor:
                lo -= 1
            while hi < len(work) - 1 and work[hi + 1] >= floor:
                hi += 1
            seg = slice(lo, hi + 1)
            usd = float(work[seg].sum())
            centre = float((centers[seg] * work[seg]).sum() / usd)
            tier_usd = by_tier[:, seg].sum(axis=1)
            out.append(
                Magnet(
                    side=side,
                    price=centre,
                    low=float(lmap.bins.edges[lo]),
                    high=float(lmap.bins.edges[hi + 1]),
                    usd=usd,
                    distance_pct=(centre - lmap.price_now) / lmap.price_now * 100.0,
                    main_tier=lmap.tier_labels[int(np.argmax(tier_usd))],
                )
            )
            work[seg] = 0.0
    return sorted(out, key=lambda m: (m.side != LONG, -m.usd))


def auto_bins(low: np.ndarray, high: np.ndarray, n: int, margin: float = 0.08) -> PriceBins:
    """Bins spanning the candles' range plus a margin (levels sit beyond the extremes)."""
    lo, hi = float(np.nanmin(low)), float(np.nanmax(high))
    pad = (hi - lo) * margin + hi * 0.002
    return PriceBins(max(lo - pad, hi * 1e-6), hi + pad, n)

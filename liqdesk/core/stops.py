"""Stop placement help: is a stop inside (or just in front of) a dense liquidation cluster?

A cascade through a cluster runs price through every order parked inside it, and price is drawn
toward big clusters: a stop inside one, or a little in front of it, tends to be taken. Just beyond
the cluster's far edge it tends to survive. A long position's stop sits below price among long
liquidation levels; a short position's stop above price among short levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from liqdesk.core.grid import PriceBins
from liqdesk.core.leverage import RETAIL_BRACKET, Brackets, liquidation_price
from liqdesk.core.liqmap import LiquidationMap, Magnet, find_magnets
from liqdesk.core.series import LONG, SHORT

INSIDE = "inside"
NEAR_SIDE = "near side"
CLEAR = "clear"


def snap_to_tick(price: float, tick: float) -> float:
    """Nearest multiple of the tick size, without binary noise (62000.1 stays 62000.1)."""
    if not (tick > 0 and math.isfinite(tick) and math.isfinite(price)):
        return price
    if not abs(price / tick) < 2**53:  # beyond the float grid of this tick (1e308 overflowed round())
        return price
    decimals = max(0, -math.floor(math.log10(tick)) + 2)
    return round(round(price / tick) * tick, decimals)


@dataclass(frozen=True)
class StopAdvice:
    verdict: str  # INSIDE, NEAR_SIDE or CLEAR
    position_side: int  # LONG position (stop below) or SHORT position (stop above)
    band_usd: float  # liquidation notional within ±band_pct of the stop
    band_pct: float
    cluster: Magnet | None  # the cluster the verdict is about
    beyond: float | None  # suggested stop just past the cluster's far edge (+ buffer)

    @property
    def warns(self) -> bool:
        return self.verdict != CLEAR

    def message(self) -> str:
        band = f"{_usd(self.band_usd)} within {self.band_pct:g} %"
        if self.cluster is None or self.verdict == CLEAR:
            return f"clear of clusters, {band}"
        side = "long" if self.cluster.side == LONG else "short"
        where = "inside" if self.verdict == INSIDE else "in front of"
        return f"{where} {self.cluster.main_tier} {side} cluster ({_usd(self.cluster.usd)}), {band}"


def assess_stop(
    lmap: LiquidationMap,
    stop: float,
    *,
    band_pct: float = 0.2,
    near_pct: float = 0.3,
    buffer_pct: float = 0.1,
    min_share: float = 0.1,
    dense_factor: float = 2.0,
    tick: float = 0.0,
) -> StopAdvice:
    """Judge a stop against the clusters on its side of price.

    A cluster counts when it holds at least `min_share` of the largest cluster on that side and its
    notional per bin is at least `dense_factor` × the median non-empty bin on that side (a wide,
    flat stretch of levels is not a cluster).
    NEAR_SIDE: the stop sits between price and a cluster, within `near_pct` % of its near edge.
    The suggestion is the far edge moved out by `buffer_pct` % of price, snapped to the tick.
    """
    now = lmap.price_now
    position_side = LONG if stop < now else SHORT  # a stop below price protects a long
    density = lmap.long if position_side == LONG else lmap.short
    lo, hi = stop * (1 - band_pct / 100), stop * (1 + band_pct / 100)
    c = lmap.bins.centers
    band_usd = float(density[(c >= lo) & (c <= hi)].sum())

    clusters = [m for m in find_magnets(lmap, per_side=12) if m.side == position_side]
    if clusters:
        biggest = max(m.usd for m in clusters)
        nonzero = density[density > 0]
        typical = float(np.median(nonzero)) if len(nonzero) else 0.0
        width = lmap.bins.width
        clusters = [
            m for m in clusters
            if m.usd >= min_share * biggest and m.usd / max(round((m.high - m.low) / width), 1) >= dense_factor * typical
        ]  # fmt: skip
    # nearest to the stop first
    clusters.sort(key=lambda m: abs(m.price - stop))
    buffer = now * buffer_pct / 100
    for m in clusters:
        near_edge, far_edge = (m.high, m.low) if position_side == LONG else (m.low, m.high)
        if m.low <= stop <= m.high:
            verdict = INSIDE
        elif _between(now, stop, near_edge) and abs(near_edge - stop) <= now * near_pct / 100:
            verdict = NEAR_SIDE
        else:
            continue
        beyond = far_edge - buffer if position_side == LONG else far_edge + buffer
        return StopAdvice(verdict, position_side, band_usd, band_pct, m, snap_to_tick(beyond, tick))
    return StopAdvice(CLEAR, position_side, band_usd, band_pct, None, None)


def band_notional(lmap: LiquidationMap, price: float, band_pct: float = 0.2) -> float:
    """Long + short liquidation notional in the bins whose centres lie within ±band_pct % of price."""
    lo, hi = price * (1 - band_pct / 100), price * (1 + band_pct / 100)
    c = lmap.bins.centers
    inside = (c >= lo) & (c <= hi)
    return float(lmap.long[inside].sum() + lmap.short[inside].sum())


def advice_bins(
    price_now: float,
    prices: list[float] | tuple[float, ...] = (),
    width_pct: float = 0.05,
    span_pct: float = 12.0,
) -> PriceBins:
    """Bins for judging lines: a fixed width relative to price (so advice does not change with the
    zoom), spanning ±span_pct % of price and every line given, bin edges on multiples of the width."""
    width = price_now * width_pct / 100
    lo = min([price_now * (1 - span_pct / 100), *prices]) - 4 * width
    hi = max([price_now * (1 + span_pct / 100), *prices]) + 4 * width
    lo = max(math.floor(lo / width) * width, width)
    n = min(int(math.ceil((hi - lo) / width)), 20_000)
    return PriceBins(lo, lo + n * width, n)


def _between(a: float, x: float, b: float) -> bool:
    return min(a, b) <= x <= max(a, b)


@dataclass(frozen=True)
class PositionRisk:
    side: int
    entry: float
    leverage: float
    size_usd: float
    liquidation: float  # from the same formula the engine uses
    stop: float | None
    stop_loss_usd: float | None  # what the stop costs if hit (fees and slippage excluded)
    stop_after_liquidation: bool  # the stop would never fire: liquidation comes first


def position_risk(
    side: int,
    entry: float,
    leverage: float,
    size_usd: float,
    stop: float | None = None,
    brackets: Brackets = RETAIL_BRACKET,
) -> PositionRisk:
    if entry <= 0 or leverage <= 1 or size_usd <= 0:
        raise ValueError("entry, leverage (> 1) and size must be positive")
    lp = float(liquidation_price(entry, leverage, side, brackets, size_usd))
    loss = None
    after = False
    if stop is not None:
        move = (entry - stop) / entry if side == LONG else (stop - entry) / entry
        loss = float(size_usd * move)
        after = bool(stop <= lp) if side == LONG else bool(stop >= lp)
    return PositionRisk(side, entry, leverage, size_usd, lp, stop, loss, after)


def _usd(x: float) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"${x / div:.1f}{unit}"
    return f"${x:.0f}"


__all__ = [
    "CLEAR", "INSIDE", "NEAR_SIDE", "PositionRisk", "StopAdvice", "advice_bins", "assess_stop", "band_notional",
    "position_risk", "snap_to_tick",
]  # fmt: skip

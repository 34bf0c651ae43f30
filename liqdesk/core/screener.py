"""The magnet screener: one row per watched market from its liquidation map, and their ranking.

A row says where the liquidation clusters sit relative to price: the nearest long cluster below
and short cluster above, and the largest cluster within ±`within_pct` %, each with its price,
distance, notional and share of the market's *visible* liquidity: the long and short notional
inside the map's price range (the same range the chart's map shows). Clusters are the map's
(liqmap.find_magnets: grown from a peak bin while neighbours hold a quarter of it); the nearest
ones must hold at least `min_share` of the visible liquidity, so that a speck beside price does not
count as a cluster. Rows sort by any column (`COLUMNS`), markets without a value last.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from liqdesk.core.liqmap import LiquidationMap, Magnet, find_magnets
from liqdesk.core.series import LONG, SHORT

WITHIN_PCT = 5.0
MIN_SHARE = 0.03  # of the visible liquidity, for the nearest clusters
CLUSTERS_PER_SIDE = 8  # peaks searched per side for the nearest cluster


@dataclass(frozen=True)
class Cluster:
    side: int  # LONG: long levels (below price); SHORT: short levels (above)
    price: float  # notional-weighted centre
    distance_pct: float  # (price − last price) / last price × 100
    usd: float
    share: float  # of the market's visible liquidity (0..1)
    tier: str  # leverage tier holding most of it

    @property
    def side_name(self) -> str:
        return "long" if self.side == LONG else "short"


@dataclass(frozen=True)
class ScreenRow:
    market: str  # what the row is called, e.g. "binanceusdm BTC/USDT:USDT"
    exchange: str
    symbol: str
    price: float  # last price (close of the newest bar)
    time_ms: int  # open time of the newest bar
    nearest_long: Cluster | None
    nearest_short: Cluster | None
    largest: Cluster | None  # largest cluster within ±within_pct %, either side
    visible_usd: float  # long + short notional inside the map's price range
    model: str  # "OI model", "volume model", or both with their spans
    updated_ms: int  # when this market's data last changed (for staleness)
    error: str = ""  # a market that could not be screened says why (no values then)

    def age_ms(self, now_ms: int) -> int:
        return max(now_ms - self.updated_ms, 0)


def clusters_of(lmap: LiquidationMap, per_side: int = CLUSTERS_PER_SIDE) -> list[Cluster]:
    """The map's clusters (the strongest `per_side` per side) with their share of the visible liquidity."""
    visible = visible_usd(lmap)
    return [_cluster(m, visible) for m in find_magnets(lmap, per_side=per_side)]


def visible_usd(lmap: LiquidationMap) -> float:
    return float(lmap.long_by_tier.sum() + lmap.short_by_tier.sum())


def nearest(clusters: Sequence[Cluster], side: int, min_share: float = MIN_SHARE) -> Cluster | None:
    """The cluster of `side` closest to price among those holding at least `min_share`."""
    mine = [c for c in clusters if c.side == side and c.share >= min_share]
    return min(mine, key=lambda c: abs(c.distance_pct), default=None)


def largest_within(lmap: LiquidationMap, within_pct: float = WITHIN_PCT) -> Cluster | None:
    """The largest cluster within ±within_pct % of price (its bins outside the band left out)."""
    centers = lmap.bins.centers
    band = np.abs(centers - lmap.price_now) <= lmap.price_now * within_pct / 100.0
    inside = dataclasses.replace(
        lmap,
        long_by_tier=np.where(band, lmap.long_by_tier, 0.0),
        short_by_tier=np.where(band, lmap.short_by_tier, 0.0),
    )
    visible = visible_usd(lmap)
    found = [_cluster(m, visible) for m in find_magnets(inside, per_side=1)]
    return max(found, key=lambda c: c.usd, default=None)


def screen_row(
    lmap: LiquidationMap,
    *,
    market: str,
    exchange: str,
    symbol: str,
    model: str,
    updated_ms: int,
    within_pct: float = WITHIN_PCT,
    min_share: float = MIN_SHARE,
) -> ScreenRow:
    """The row of one market from its map at the newest bar."""
    clusters = clusters_of(lmap)
    return ScreenRow(
        market=market,
        exchange=exchange,
        symbol=symbol,
        price=lmap.price_now,
        time_ms=lmap.time_ms,
        nearest_long=nearest(clusters, LONG, min_share),
        nearest_short=nearest(clusters, SHORT, min_share),
        largest=largest_within(lmap, within_pct),
        visible_usd=visible_usd(lmap),
        model=model,
        updated_ms=updated_ms,
    )


def failed_row(market: str, exchange: str, symbol: str, error: str, updated_ms: int = 0) -> ScreenRow:
    return ScreenRow(market, exchange, symbol, float("nan"), 0, None, None, None, 0.0, "", updated_ms, error)


def _cluster(m: Magnet, visible: float) -> Cluster:
    return Cluster(
        m.side, m.price, m.distance_pct, m.usd, m.usd / visible if visible > 0 else 0.0, m.main_tier
    )


# ------------------------------------------------------------------------------------------- ranking

SortKey = Callable[[ScreenRow], "float | str | None"]


def _part(attr: str, field: str, *, absolute: bool = False) -> SortKey:
    def key(r: ScreenRow) -> float | None:
        c: Cluster | None = getattr(r, attr)
        if c is None:
            return None
        v = float(getattr(c, field))
        return abs(v) if absolute else v

    return key


# name → (key, largest first by default, what it is)
COLUMNS: dict[str, tuple[SortKey, bool, str]] = {
    "market": (lambda r: r.market, False, "market name"),
    "price": (lambda r: None if r.error else r.price, True, "last price"),
    "long_price": (_part("nearest_long", "price"), True, "nearest long cluster below: price"),
    "long_dist": (_part("nearest_long", "distance_pct", absolute=True), False, "… its distance (nearest first)"),
    "long_usd": (_part("nearest_long", "usd"), True, "… its notional"),
    "long_share": (_part("nearest_long", "share"), True, "… its share of the visible liquidity"),
    "short_price": (_part("nearest_short", "price"), False, "nearest short cluster above: price"),
    "short_dist": (_part("nearest_short", "distance_pct", absolute=True), False, "… its distance"),
    "short_usd": (_part("nearest_short", "usd"), True, "… its notional"),
    "short_share": (_part("nearest_short", "share"), True, "… its share"),
    "largest_price": (_part("largest", "price"), True, "largest cluster within ±5 %: price"),
    "largest_dist": (_part("largest", "distance_pct", absolute=True), False, "… its distance"),
    "largest_usd": (_part("largest", "usd"), True, "… its notional"),
    "largest_share": (_part("largest", "share"), True, "… its share"),
    "visible_usd": (lambda r: None if r.error else r.visible_usd, True, "liquidity inside the map's range"),
    "model": (lambda r: r.model or None, False, "the model in use"),
    "age": (lambda r: None if r.error else -float(r.updated_ms), False, "time since the last update (freshest first)"),
}  # fmt: skip
DEFAULT_SORT = "largest_usd"


def rank(
    rows: Sequence[ScreenRow], column: str = DEFAULT_SORT, descending: bool | None = None
) -> list[ScreenRow]:
    """Rows sorted by `column` (its natural direction unless `descending` says), rows without a value
    last, ties by market name."""
    if column not in COLUMNS:
        raise ValueError(f"unknown column {column!r}; one of {', '.join(COLUMNS)}")
    key, natural_desc, _ = COLUMNS[column]
    desc = natural_desc if descending is None else descending
    have = [r for r in rows if key(r) is not None]
    missing = sorted((r for r in rows if key(r) is None), key=lambda r: r.market)
    have.sort(key=lambda r: r.market)  # stable: ties keep name order
    have.sort(key=lambda r: key(r), reverse=desc)  # type: ignore[arg-type,return-value]
    return have + missing

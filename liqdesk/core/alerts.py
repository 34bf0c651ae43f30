"""Alert rules with hysteresis: fire once when a condition starts, re-arm only when it has
clearly ended, so price chattering around a line does not repeat the alert."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from liqdesk.core.liqmap import Magnet
from liqdesk.core.series import LONG


@dataclass(frozen=True)
class AlertEvent:
    kind: str  # "cross", "magnet", "liquidation"
    key: str  # what it is about (line id, magnet bucket, event id)
    time_ms: int
    price: float
    message: str


@dataclass
class LineCrossing:
    """Fires when price crosses `level`; re-arms after price is back beyond level ± band."""

    key: str
    level: float
    band_pct: float = 0.05
    label: str = ""
    _side: int = 0  # +1 above, −1 below, 0 unknown
    _armed: bool = True

    def update(self, price: float, time_ms: int) -> AlertEvent | None:
        # _side is the side price was last *confirmed* on: a fired crossing, or a move beyond the
        # band. Chatter inside the band after an alert changes nothing; a move through the line
        # that ends beyond the band is a new crossing even before the rule re-armed.
        band = self.level * self.band_pct / 100
        side = 1 if price > self.level else -1 if price < self.level else 0
        far = abs(price - self.level) > band
        if not self._side:
            self._side = side  # first price: learn the side, no alert
            return None
        event = None
        if side and side != self._side and (self._armed or far):
            direction = "up" if side > 0 else "down"
            name = self.label or "line"
            event = AlertEvent(
                "cross", self.key, time_ms, price, f"price crossed {name} {self.level:,.2f} {direction}"
            )
            self._side = side
            self._armed = False
        if not self._armed and far:
            self._armed = True  # far enough away: the next crossing is news again
        return event

    def move(self, level: float) -> None:
        self.level = level
        self._side = 0
        self._armed = True


@dataclass
class TrackedCluster:
    """A magnet followed from map to map: same side, and its centre moved by less than its width."""

    key: str
    side: int
    price: float
    low: float
    high: float
    usd: float
    armed: bool = True  # the next approach alerts; cleared when it does, set again once price is far

    @property
    def width(self) -> float:
        return max(self.high - self.low, self.price * 1e-4)


@dataclass
class MagnetProximity:
    """Fires once per approach of one cluster: when price comes within `within_pct` % of a magnet of at
    least `min_usd`, and again only after price has been more than `rearm_factor` × that distance away.

    Clusters keep their identity across maps while their centre drifts by less than their width (the map
    is recomputed every bar and the centre moves a little each time); a cluster missing from one map (out
    of the top few, or just under `min_usd`) keeps its state until price is far from it."""

    within_pct: float = 0.5
    min_usd: float = 50e6
    rearm_factor: float = 1.5
    clusters: list[TrackedCluster] = field(default_factory=list)
    _next_id: int = 0

    def update(self, price: float, magnets: list[Magnet], time_ms: int) -> list[AlertEvent]:
        if not (price > 0 and math.isfinite(price)):
            return []
        big = [m for m in magnets if m.usd >= self.min_usd and m.price > 0 and math.isfinite(m.price)]
        out = []
        seen: set[int] = set()
        for m, c in self._match(big):
            seen.add(id(c))
            c.price, c.low, c.high, c.usd = m.price, m.low, m.high, m.usd
            dist = abs(m.price - price) / price * 100
            if dist <= self.within_pct and c.armed:
                c.armed = False
                side = "long" if m.side == LONG else "short"
                out.append(
                    AlertEvent("magnet", c.key, time_ms, price,
                               f"price within {dist:.2f} % of {side} cluster {m.price:,.0f} (${m.usd / 1e6:,.0f}M)")
                )  # fmt: skip
            elif dist > self.within_pct * self.rearm_factor:
                c.armed = True
        far = self.within_pct * self.rearm_factor
        self.clusters = [
            c for c in self.clusters if id(c) in seen or abs(c.price - price) / price * 100 <= far
        ]
        return out

    def _match(self, magnets: list[Magnet]) -> list[tuple[Magnet, TrackedCluster]]:
        """Each magnet with the tracked cluster it continues (closest pairs first), or a new one."""
        pairs = []
        for i, m in enumerate(magnets):
            for j, c in enumerate(self.clusters):
                gap = abs(m.price - c.price)
                if c.side == m.side and gap < max(c.width, m.high - m.low):
                    pairs.append((gap, i, j))
        taken_m: dict[int, TrackedCluster] = {}
        taken_c: set[int] = set()
        for _, i, j in sorted(pairs):
            if i not in taken_m and j not in taken_c:
                taken_m[i] = self.clusters[j]
                taken_c.add(j)
        out = []
        for i, m in enumerate(magnets):
            found = taken_m.get(i)
            if found is None:
                self._next_id += 1
                c = TrackedCluster(f"{'L' if m.side == LONG else 'S'}{self._next_id}", m.side, m.price, m.low,
                                   m.high, m.usd)  # fmt: skip
                self.clusters.append(c)
            else:
                c = found
            out.append((m, c))
        return out


@dataclass
class LargeLiquidation:
    """Fires for each real liquidation of at least `min_usd` (each event id once)."""

    min_usd: float = 1e6
    _seen: set[str] = field(default_factory=set)

    def update(self, time_ms: int, side: int, price: float, usd: float) -> AlertEvent | None:
        if usd < self.min_usd:
            return None
        key = f"{time_ms}:{side}:{price}:{usd:.2f}"
        if key in self._seen:
            return None
        self._seen.add(key)
        if len(self._seen) > 10_000:
            self._seen.clear()
        who = "long" if side == LONG else "short"
        return AlertEvent(
            "liquidation", key, time_ms, price, f"{who} liquidated: ${usd:,.0f} at {price:,.2f}"
        )

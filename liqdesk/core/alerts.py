"""Alert rules with hysteresis: fire once when a condition starts, re-arm only when it has
clearly ended, so price chattering around a line does not repeat the alert."""

from __future__ import annotations

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
class MagnetProximity:
    """Fires when price comes within `within_pct` % of a magnet of at least `min_usd`; the same
    magnet (bucketed by price) alerts again only after price has left `rearm_factor` × that distance."""

    within_pct: float = 0.5
    min_usd: float = 50e6
    rearm_factor: float = 1.5
    bucket_pct: float = 0.25
    _inside: set[str] = field(default_factory=set)

    def update(self, price: float, magnets: list[Magnet], time_ms: int) -> list[AlertEvent]:
        out = []
        seen = set()
        for m in magnets:
            if m.usd < self.min_usd:
                continue
            key = f"{'L' if m.side == LONG else 'S'}{round(m.price / (m.price * self.bucket_pct / 100))}"
            dist = abs(m.price - price) / price * 100
            seen.add(key)
            if dist <= self.within_pct and key not in self._inside:
                self._inside.add(key)
                side = "long" if m.side == LONG else "short"
                out.append(
                    AlertEvent("magnet", key, time_ms, price,
                               f"price within {dist:.2f} % of {side} cluster {m.price:,.0f} (${m.usd / 1e6:,.0f}M)")
                )  # fmt: skip
            elif dist > self.within_pct * self.rearm_factor:
                self._inside.discard(key)
        self._inside &= seen  # a magnet that disappeared (swept) re-arms
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

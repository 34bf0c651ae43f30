"""New liquidation levels: each bar's openings, per side, leverage tier and entry point.

A bar opening `long_usd` of longs at entry prices e_s (weights w_s) puts a long level at
e_s × long_factor[k] with deposit long_usd × tier_weight[k] × w_s for every tier k, and likewise
for shorts (leverage.liquidation_factors gives the factors). Levels are ordered bar → side (long,
short) → tier → entry point, and empty deposits are dropped: the engine's level order, which the
sweep search and the lifecycle rely on. Written against an array module: the full build runs it
where the engine's arrays live (NumPy or CuPy), a live bar on the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from liqdesk.core.series import LONG, SHORT


@dataclass(frozen=True)
class NewLevels:
    price: Any  # float64
    deposit: Any  # float64 USD notional at creation
    created: Any  # int64 bar index (alive from the end of this bar)
    tier: Any  # int8 index into the leverage tiers
    side: Any  # int8 LONG / SHORT
    deposit_total: Any  # float64 per bar: Σ deposit of its levels, summed in level order

    def columns(self) -> dict[str, Any]:
        return {"price": self.price, "deposit": self.deposit, "created": self.created, "tier": self.tier,
                "side": self.side}  # fmt: skip


def create_levels(
    entry: Any,
    entry_weight: Any,
    long_usd: Any,
    short_usd: Any,
    factors: np.ndarray,
    tier_weight: np.ndarray,
    first_bar: int,
    xp: Any,
) -> NewLevels:
    """Levels of bars first_bar, first_bar + 1, … from their entry points (bars × S prices and
    weights) and openings (per bar); factors: (2, K) liquidation price / entry, long then short."""
    n, s = int(entry.shape[0]), int(entry.shape[1])
    k = int(factors.shape[1])
    per_bar = 2 * k * s
    price = entry[:, None, None, :] * xp.asarray(factors)[None, :, :, None]  # (n, 2, K, S)
    side_usd = xp.stack([long_usd, short_usd], axis=1)  # (n, 2)
    tier_w = xp.asarray(tier_weight)[None, None, :, None]
    dep = (side_usd[:, :, None, None] * tier_w * entry_weight[:, None, None, :]).reshape(n, per_bar)
    # Σ per bar in level order, the order the lifecycle adds them in (deposits are never negative:
    # the zeros of dropped levels change no bit of it)
    deposit_total = dep[:, 0].copy()
    for c in range(1, per_bar):
        deposit_total += dep[:, c]
    keep = dep.reshape(-1) > 0
    return NewLevels(
        price=price.reshape(-1)[keep],
        deposit=dep.reshape(-1)[keep],
        created=xp.repeat(xp.arange(first_bar, first_bar + n, dtype=xp.int64), per_bar)[keep],
        tier=xp.tile(xp.repeat(xp.arange(k, dtype=xp.int8), s), 2 * n)[keep],
        side=xp.tile(xp.repeat(xp.asarray([LONG, SHORT], dtype=xp.int8), k * s), n)[keep],
        deposit_total=deposit_total,
    )

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
    price = entry[:, None, None, :] * xp.asarray(factors)[None, :, :, None]  # (n, 2, K, S)
    side_usd = xp.stack([long_usd, short_usd], axis=1)  # (n, 2)
    dep = (
        side_usd[:, :, None, None]
        * xp.asarray(tier_weight)[None, None, :, None]
        * entry_weight[:, None, None, :]
    )
    dep = dep.reshape(n, 2 * k * s)
    # Summed left to right: the order of the levels the lifecycle takes them in (deposits are
    # non-negative, so the zeros of dropped levels change no bit of it).
    deposit_total = (
        xp.ascontiguousarray(xp.cumsum(xp.where(dep > 0, dep, 0.0), axis=1)[:, -1]) if n else xp.zeros(0)
    )
    dep = dep.reshape(-1)
    idx = xp.nonzero(dep > 0)[0]
    return NewLevels(
        price=price.reshape(-1)[idx],
        deposit=dep[idx],
        created=(idx // (2 * k * s) + first_bar).astype(xp.int64),
        tier=((idx // s) % k).astype(xp.int8),
        side=xp.where((idx // (k * s)) % 2 == 0, LONG, SHORT).astype(xp.int8),
        deposit_total=deposit_total,
    )

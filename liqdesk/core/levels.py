"""New liquidation levels: each bar's openings, per side, leverage tier and entry point.

A bar opening `long_usd` of longs at entry prices e_s (weights w_s) puts a long level at
e_s × long_factor[k] with deposit long_usd × tier_weight[k] × w_s for every tier k, and likewise
for shorts (leverage.liquidation_factors gives the factors). Levels are ordered bar → side (long,
short) → tier → entry point, and empty deposits are dropped: the engine's level order, which the
sweep search and the lifecycle rely on. Written against an array module: a device build runs it
where the engine's arrays live (CuPy), a live bar on the host.

A CPU build runs the same rule compiled (`create_levels_compiled`): one pass counts the levels, a
second writes each one once. The array form makes about a dozen arrays the size of every candidate
level, and their page faults, not the arithmetic, are what a build waits on, most of all when several
engines build at once in one process (an aggregate). The tests hold the two bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from liqdesk.core import hostmem
from liqdesk.core.jit import compiled
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


def create_levels_compiled(
    entry: np.ndarray,
    entry_weight: np.ndarray,
    long_usd: np.ndarray,
    short_usd: np.ndarray,
    factors: np.ndarray,
    tier_weight: np.ndarray,
    first_bar: int,
) -> NewLevels:
    """create_levels on host arrays, compiled: the same numbers, bit for bit, with no temporaries."""
    f64 = [np.ascontiguousarray(a, np.float64) for a in (entry, entry_weight, long_usd, short_usd)]
    entry, entry_weight, long_usd, short_usd = f64
    factors = np.ascontiguousarray(factors, np.float64)
    tier_weight = np.ascontiguousarray(tier_weight, np.float64)
    deposit_total = np.empty(entry.shape[0])
    m = _count_levels(entry_weight, long_usd, short_usd, tier_weight, deposit_total)
    out = NewLevels(
        price=hostmem.empty(m), deposit=hostmem.empty(m), created=hostmem.empty(m, np.int64),
        tier=np.empty(m, np.int8), side=np.empty(m, np.int8), deposit_total=deposit_total,
    )  # fmt: skip
    _write_levels(
        entry, entry_weight, long_usd, short_usd, factors, tier_weight, first_bar, LONG, SHORT, out.price,
        out.deposit, out.created, out.tier, out.side,
    )  # fmt: skip
    return out


@compiled
def _count_levels(
    entry_weight: np.ndarray,
    long_usd: np.ndarray,
    short_usd: np.ndarray,
    tier_weight: np.ndarray,
    deposit_total: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """The number of levels kept (deposit > 0); deposit_total per bar, summed in level order from the first
    deposit on, as create_levels sums it."""
    n, s = entry_weight.shape
    kept = 0
    for i in range(n):
        total = 0.0
        first = True
        for sd in range(2):
            usd = long_usd[i] if sd == 0 else short_usd[i]
            for t in range(tier_weight.shape[0]):
                a = usd * tier_weight[t]
                for e in range(s):
                    d = a * entry_weight[i, e]
                    if first:
                        total = d
                        first = False
                    else:
                        total += d
                    if d > 0:
                        kept += 1
        deposit_total[i] = total
    return kept


@compiled
def _write_levels(
    entry: np.ndarray,
    entry_weight: np.ndarray,
    long_usd: np.ndarray,
    short_usd: np.ndarray,
    factors: np.ndarray,
    tier_weight: np.ndarray,
    first_bar: int,
    long_side: int,
    short_side: int,
    price: np.ndarray,
    deposit: np.ndarray,
    created: np.ndarray,
    tier: np.ndarray,
    side: np.ndarray,
) -> None:  # pragma: no cover - compiled
    n, s = entry_weight.shape
    m = 0
    for i in range(n):
        for sd in range(2):
            usd = long_usd[i] if sd == 0 else short_usd[i]
            for t in range(tier_weight.shape[0]):
                a = usd * tier_weight[t]  # (usd × tier weight) × entry weight: create_levels' order
                f = factors[sd, t]
                for e in range(s):
                    d = a * entry_weight[i, e]
                    if d > 0:
                        price[m] = entry[i, e] * f
                        deposit[m] = d
                        created[m] = first_bar + i
                        tier[m] = t
                        side[m] = long_side if sd == 0 else short_side
                        m += 1

"""Which accounts the position sampler asks for next, within a request budget.

The rule (intervals are settings; defaults in brackets):

* an account is **due** when it was never sampled, or when its interval has passed since its last sample:
  - ``near_s`` [60 s] if one of its positions has a liquidation price within ``near_pct`` [2 %] of the current
    mark (a liquidation there can happen any minute, and seeing it is what the inferred tape is made of);
  - ``open_s`` [5 min] if it holds a position in the coin;
  - ``active_s`` [30 min] if it holds none but traded within ``active_window_s`` [1 h];
  - ``dormant_s`` [6 h] otherwise;
* due accounts are asked in this order: near price first, then never sampled, then the rest; within each group
  the larger first (position value in the coin at the last sample, else the notional it traded), then the one
  sampled longest ago.

With a budget smaller than what is due, the order decides who waits: large positions near price are never
starved by a flood of newly discovered small accounts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Bool = NDArray[np.bool_]

NEVER = -1  # last_sampled of an account never sampled


@dataclass(frozen=True)
class SamplingRule:
    near_pct: float = 2.0
    near_s: float = 60.0
    open_s: float = 300.0
    active_s: float = 1800.0
    dormant_s: float = 21600.0
    active_window_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.near_pct <= 0 or min(self.near_s, self.open_s, self.active_s, self.dormant_s) <= 0:
            raise ValueError("sampling intervals and the near distance must be positive")


def intervals_ms(
    now_ms: int, last_seen: I64, position_usd: F64, near: Bool, rule: SamplingRule = SamplingRule()
) -> I64:
    """Each account's re-sampling interval in ms (see the module's rule)."""
    active = (now_ms - np.asarray(last_seen, np.int64)) <= rule.active_window_s * 1000
    s = np.where(
        near,
        rule.near_s,
        np.where(position_usd > 0, rule.open_s, np.where(active, rule.active_s, rule.dormant_s)),
    )
    return np.asarray(np.rint(s * 1000), np.int64)


def due_order(
    now_ms: int,
    last_sampled: I64,
    last_seen: I64,
    position_usd: F64,
    traded_usd: F64,
    near: Bool,
    rule: SamplingRule = SamplingRule(),
) -> I64:
    """Indices of the accounts due at ``now_ms``, most urgent first (``last_sampled`` = NEVER if never)."""
    last = np.asarray(last_sampled, np.int64)
    never = last == NEVER
    near = np.asarray(near, bool) & ~never
    due = never | (now_ms >= last + intervals_ms(now_ms, last_seen, position_usd, near, rule))
    group = np.where(near, 0, np.where(never, 1, 2))
    size = np.where(position_usd > 0, position_usd, traded_usd)
    idx = np.flatnonzero(due)
    order = np.lexsort((last[idx], -size[idx], group[idx]))
    return np.asarray(idx[order], np.int64)


def near_mask(liquidation_px: F64, mark: float, near_pct: float) -> Bool:
    """Per account: whether its liquidation price (NaN: none) lies within ``near_pct`` % of ``mark``."""
    liq = np.asarray(liquidation_px, np.float64)
    with np.errstate(invalid="ignore"):
        return np.asarray(np.isfinite(liq) & (np.abs(liq / mark - 1.0) * 100.0 <= near_pct), bool)

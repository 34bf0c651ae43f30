"""Leverage tiers, maintenance-margin brackets and the liquidation-price formula.

Binance USDⓈ-M, isolated margin, one-way mode:
    long:  LP = (EP·(1 − 1/L) − cum/Q) / (1 − MMR)
    short: LP = (EP·(1 + 1/L) + cum/Q) / (1 + MMR)
with Q = notional / EP, so cum/Q = EP·cum/notional and LP is EP times a factor that depends only on
(L, bracket, notional). The engine uses that factor: one multiply per level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from liqdesk.errors import ConfigError


@dataclass(frozen=True)
class Brackets:
    """Maintenance-margin brackets by position notional (USD), ascending."""

    notional_floor: np.ndarray
    notional_cap: np.ndarray
    max_leverage: np.ndarray
    mmr: np.ndarray

    def __post_init__(self) -> None:
        for name in ("notional_floor", "notional_cap", "max_leverage", "mmr"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        n = len(self.mmr)
        if n == 0:
            raise ConfigError("bracket table is empty")
        if any(len(getattr(self, k)) != n for k in ("notional_floor", "notional_cap", "max_leverage")):
            raise ConfigError("bracket table columns differ in length")
        if np.any(np.diff(self.notional_floor) <= 0) or self.notional_floor[0] != 0:
            raise ConfigError("bracket floors must start at 0 and increase")
        if np.any((self.mmr <= 0) | (self.mmr >= 1)):
            raise ConfigError("bracket MMR must lie in (0, 1)")

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> Brackets:
        try:
            return cls(
                notional_floor=np.array([float(r["notional_floor"]) for r in rows]),
                notional_cap=np.array([float(r["notional_cap"]) for r in rows]),
                max_leverage=np.array([float(r["max_leverage"]) for r in rows]),
                mmr=np.array([float(r["mmr"]) for r in rows]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad bracket row: {exc}") from None

    @property
    def cum(self) -> np.ndarray:
        """Maintenance amount per bracket: cum_n = cum_{n−1} + floor_n·(MMR_n − MMR_{n−1})."""
        steps = self.notional_floor[1:] * np.diff(self.mmr)
        return np.concatenate([[0.0], np.cumsum(steps)])

    def index_for(self, notional: float) -> int:
        return int(np.clip(np.searchsorted(self.notional_floor, notional, "right") - 1, 0, len(self.mmr) - 1))


# Bracket 1 of Binance BTCUSDT (retail size); the app loads the full table from resources/.
RETAIL_BRACKET = Brackets(
    notional_floor=np.array([0.0]),
    notional_cap=np.array([50_000.0]),
    max_leverage=np.array([125.0]),
    mmr=np.array([0.004]),
)


@dataclass(frozen=True)
class Tiers:
    """A leverage mix: which leverages traders use and what share of new notional each takes."""

    leverage: np.ndarray  # e.g. [10, 25, 50, 100]
    weight: np.ndarray  # shares, summing to 1

    def __post_init__(self) -> None:
        lev = np.asarray(self.leverage, dtype=np.float64)
        w = np.asarray(self.weight, dtype=np.float64)
        if lev.ndim != 1 or len(lev) == 0 or len(lev) != len(w):
            raise ConfigError("a leverage preset needs at least one tier and one weight per tier")
        if np.any(lev <= 1) or np.any(~np.isfinite(lev)):
            raise ConfigError("leverage must be greater than 1")
        if np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
            raise ConfigError("tier weights must be non-negative and not all zero")
        order = np.argsort(lev)
        object.__setattr__(self, "leverage", lev[order])
        object.__setattr__(self, "weight", w[order] / w.sum())

    @classmethod
    def from_mapping(cls, tiers: dict[Any, float]) -> Tiers:
        try:
            return cls(np.array([float(k) for k in tiers]), np.array([float(v) for v in tiers.values()]))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad leverage preset: {exc}") from None

    def __len__(self) -> int:
        return len(self.leverage)

    def labels(self) -> list[str]:
        return [f"{lev:g}x" for lev in self.leverage]


def liquidation_factors(
    leverage: np.ndarray, brackets: Brackets = RETAIL_BRACKET, position_usd: float = 10_000.0
) -> tuple[np.ndarray, np.ndarray]:
    """Liquidation price as a multiple of entry price, for longs and shorts, per leverage.

    The bracket comes from the position notional; a leverage above that bracket's cap is still
    priced with the bracket (the user asked for that tier), which only matters for > 125x.
    """
    lev = np.asarray(leverage, dtype=np.float64)
    b = brackets.index_for(position_usd)
    mmr = brackets.mmr[b]
    cum_over_notional = brackets.cum[b] / position_usd
    long_f = ((1.0 - 1.0 / lev) - cum_over_notional) / (1.0 - mmr)
    short_f = ((1.0 + 1.0 / lev) + cum_over_notional) / (1.0 + mmr)
    return long_f, short_f


def liquidation_price(
    entry: float | np.ndarray,
    leverage: float | np.ndarray,
    side: int,
    brackets: Brackets = RETAIL_BRACKET,
    position_usd: float = 10_000.0,
) -> np.ndarray:
    """Liquidation price of an isolated position (side +1 long, −1 short)."""
    long_f, short_f = liquidation_factors(np.atleast_1d(leverage), brackets, position_usd)
    f = long_f if side > 0 else short_f
    out: np.ndarray = np.asarray(entry, dtype=np.float64) * (f if np.ndim(leverage) else f[0])
    return out

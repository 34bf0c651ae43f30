"""Leverage tiers, maintenance-margin brackets and the liquidation-price formula of each venue.

Isolated margin, one-way mode. A position of notional N = Q·EP with leverage L puts up N/L of margin and
is liquidated when margin + P&L falls to the maintenance margin. Venues differ in what the maintenance
margin is measured on (`Brackets.basis`):

* "mark" (Binance USDⓈ-M, OKX, Hyperliquid): on the position's value at the liquidation price,
      long:  LP = (EP·(1 − 1/L) − cum/Q) / (1 − m)
      short: LP = (EP·(1 + 1/L) + cum/Q) / (1 + m)
  with m = MMR + close_fee. OKX counts the taker fee of closing the position in the requirement
  (close_fee = its taker rate); Binance and Hyperliquid do not (close_fee 0). Hyperliquid's own form,
  LP = EP − side·margin_available / Q / (1 − l·side) with l = 1 / (2 × max leverage) and
  margin_available = N/L − l·N, is this one with MMR = l (`hyperliquid_mmr`).
* "entry" (Bybit): on the position's value at entry,
      long:  LP = EP·(1 − 1/L + MMR) − cum/Q
      short: LP = EP·(1 + 1/L − MMR) + cum/Q
  (Bybit's "Entry Price − (Initial Margin − Maintenance Margin)/Position Size", cum = its mmDeduction).

cum is the maintenance amount that keeps the requirement continuous across brackets (Binance's "cum",
Bybit's "mmDeduction"). With Q = N / EP, cum/Q = EP·cum/N, so LP is EP times a factor that depends only on
(L, bracket, N): the engine uses that factor, one multiply per level. A leverage above the bracket's
maximum cannot be held on the venue: it is priced at that maximum (Hyperliquid caps BTC at 40x, so a
preset's 100x tier sits at 40x prices there). Cross margin has an account-level liquidation price that no
public data gives: the model treats the nominal tiers as the effective leverage on every venue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from liqdesk.errors import ConfigError

BASES = ("mark", "entry")


@dataclass(frozen=True)
class Brackets:
    """Maintenance-margin brackets by position notional (USD), ascending, and the venue's margin rule:
    what the maintenance margin is measured on (`basis`, see the module notes) and the closing fee rate
    counted in it (`close_fee`)."""

    notional_floor: np.ndarray
    notional_cap: np.ndarray
    max_leverage: np.ndarray
    mmr: np.ndarray
    basis: str = "mark"
    close_fee: float = 0.0

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
        if np.any(~np.isfinite(self.max_leverage) | (self.max_leverage <= 1)):
            raise ConfigError("bracket maximum leverage must be a number above 1")
        if self.basis not in BASES:
            raise ConfigError(f"margin basis {self.basis!r}: expected one of {', '.join(BASES)}")
        fee = float(self.close_fee)
        if not (np.isfinite(fee) and 0 <= fee < 0.01):
            raise ConfigError("close_fee must be a rate in [0, 0.01)")
        if np.any(self.mmr + fee >= 1):
            raise ConfigError("bracket MMR plus close fee must stay below 1")
        object.__setattr__(self, "close_fee", fee)

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]], basis: str = "mark", close_fee: float = 0.0) -> Brackets:
        """Rows of notional_floor, notional_cap, max_leverage and mmr; a row may give its MMR as
        "mmr": "hyperliquid" (1 / (2 × max leverage), the venue's rule)."""
        try:
            lev = np.array([float(r["max_leverage"]) for r in rows])
            mmr = np.array([
                hyperliquid_mmr(float(r["max_leverage"])) if r["mmr"] == "hyperliquid" else float(r["mmr"])
                for r in rows
            ])  # fmt: skip
            return cls(
                notional_floor=np.array([float(r["notional_floor"]) for r in rows]),
                notional_cap=np.array([float(r["notional_cap"]) for r in rows]),
                max_leverage=lev,
                mmr=mmr,
                basis=basis,
                close_fee=float(close_fee),
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

    def describe(self) -> dict[str, Any]:
        """Plain values, for export files."""
        return {
            "basis": self.basis,
            "close_fee": self.close_fee,
            "mmr": [float(x) for x in self.mmr],
            "floor": [float(x) for x in self.notional_floor],
            "max_leverage": [float(x) for x in self.max_leverage],
        }


def hyperliquid_mmr(max_leverage: float) -> float:
    """Hyperliquid's maintenance margin rate: half the initial margin at the asset's maximum leverage,
    l = 1 / (2 × max leverage)."""
    if not (np.isfinite(max_leverage) and max_leverage > 1):
        raise ValueError(f"maximum leverage {max_leverage!r} must be above 1")
    return 1.0 / (2.0 * max_leverage)


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
    """Liquidation price as a multiple of entry price, for longs and shorts, per leverage, by the
    venue's rule (module notes). The bracket comes from the position notional; a leverage above that
    bracket's maximum is priced at the maximum."""
    b = brackets.index_for(position_usd)
    lev = np.minimum(np.asarray(leverage, dtype=np.float64), brackets.max_leverage[b])
    mmr = float(brackets.mmr[b])
    cum_over_notional = float(brackets.cum[b]) / position_usd
    if brackets.basis == "entry":
        long_f = 1.0 - 1.0 / lev + mmr - cum_over_notional
        short_f = 1.0 + 1.0 / lev - mmr + cum_over_notional
    else:
        m = mmr + brackets.close_fee
        long_f = ((1.0 - 1.0 / lev) - cum_over_notional) / (1.0 - m)
        short_f = ((1.0 + 1.0 / lev) + cum_over_notional) / (1.0 + m)
    return np.asarray(long_f, np.float64), np.asarray(short_f, np.float64)


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

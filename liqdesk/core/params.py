"""The model's parameters in one place, with the defaults the docs describe."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from liqdesk.core.leverage import RETAIL_BRACKET, Brackets, Tiers
from liqdesk.errors import ConfigError

COINGLASS_TIERS = Tiers(np.array([10.0, 25.0, 50.0, 100.0]), np.array([0.30, 0.25, 0.25, 0.20]))


@dataclass(frozen=True)
class ModelParams:
    tiers: Tiers = COINGLASS_TIERS
    preset: str = "coinglass"
    brackets: Brackets = RETAIL_BRACKET
    # Typical position notional: picks the maintenance bracket (bracket 1 for retail size).
    position_usd: float = 10_000.0
    # Taker-share floor f: r' = f + (1 − 2f)·r damps the long/short skew from taker flow.
    taker_floor: float = 0.2
    # Volume model (no open interest): new notional = churn × traded notional, both sides.
    # 0.06: on the bundled week with open interest, Σ max(ΔOI, 0) / Σ traded notional = 0.059.
    churn: float = 0.06
    # Half-life of alive levels in hours; None = no decay. The volume model cannot see closes,
    # so it always decays, with its own half-life.
    half_life_h: float | None = None
    volume_half_life_h: float = 24.0
    # Spread each bar's entry over [low, high] with triangular weights (1 = all at VWAP).
    entry_points: int = 1
    # Snapshots further apart than this many times their usual spacing (or the bar interval, if
    # longer) are a gap: the bars inside use the volume model.
    oi_max_gap_bars: float = 3.0
    # Pro-rata factor floor: keeps the running log-product finite after a total wipe-out.
    min_survival: float = 1e-9

    def __post_init__(self) -> None:
        if not 0.0 <= self.taker_floor < 0.5:
            raise ConfigError("taker_floor must lie in [0, 0.5)")
        if self.churn < 0:
            raise ConfigError("churn must be non-negative")
        if self.half_life_h is not None and self.half_life_h <= 0:
            raise ConfigError("half_life_h must be positive (or None for no decay)")
        if self.volume_half_life_h <= 0:
            raise ConfigError("volume_half_life_h must be positive")
        if self.entry_points < 1 or self.entry_points > 15:
            raise ConfigError("entry_points must be between 1 and 15")
        if self.position_usd <= 0:
            raise ConfigError("position_usd must be positive")

    def with_(self, **changes: Any) -> ModelParams:
        return replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """Plain values, for export files and the status bar."""
        d = {k: v for k, v in asdict(self).items() if k not in ("tiers", "brackets")}
        d["leverage"] = [float(x) for x in self.tiers.leverage]
        d["weights"] = [float(x) for x in self.tiers.weight]
        d["bracket_mmr"] = [float(x) for x in self.brackets.mmr]
        d["bracket_floor"] = [float(x) for x in self.brackets.notional_floor]
        d["bracket_max_leverage"] = [float(x) for x in self.brackets.max_leverage]
        d["margin_basis"] = self.brackets.basis
        d["close_fee"] = self.brackets.close_fee
        return d


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    tiers: Tiers = field(compare=False)

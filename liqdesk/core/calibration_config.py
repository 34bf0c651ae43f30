"""Settings of the scoring of the map against real liquidations (see liqdesk.core.calibration)."""

from __future__ import annotations

from dataclasses import dataclass

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class CalibrationConfig:
    horizon_ms: int = 24 * HOUR_MS  # events in [snapshot, snapshot + horizon) are scored
    every_ms: int = HOUR_MS  # snapshot spacing (aligned to multiples of it in epoch time)
    lookback_ms: int = 24 * HOUR_MS  # for the shown range, ATR and the lookback-mean null
    # Levels accumulate from the first bar; a young map is scored as it is (thin maps score worse).
    warmup_ms: int = HOUR_MS
    n_bins: int = 200
    range_pct: float = 5.0  # the range spans at least spot ± this
    tolerance_pct: float = 0.35  # reported vs trigger price (Binance's order price ~0.35 % away)
    floor: float = 0.01  # uniform mixture weight: no −inf log-likelihoods
    top_shares: tuple[float, ...] = (0.10, 0.25)
    magnet_within_pct: float = 2.0
    laplace_atr_mult: float = 1.0 / 3.0  # the fixed-scale nulls' rule, see null_models
    # Recent-range null: uniform over the high–low range of this window before the snapshot, widened on
    # each side by this share of its width (fixed before looking at any score: a trader's "around here").
    range_null_ms: int = 24 * HOUR_MS
    range_null_widen: float = 0.25
    # Fitted-scale nulls: the scale multiplier is chosen by maximum likelihood on the events of the
    # previous fit_horizons horizons before each snapshot (out of sample); with fewer than
    # fit_min_events such events the fixed rule stands in (counted in the result).
    fit_horizons: int = 7
    fit_min_events: int = 10
    scale_grid_lo: float = 0.01  # multipliers of ATR · √(horizon / bar) tried, log-spaced
    scale_grid_hi: float = 10.0
    scale_grid_n: int = 61
    path_top: float = 0.25  # path-conditional test: share of traversed cells called "top"
    precision_n: tuple[int, ...] = (5, 10)  # precision at N zones
    n_boot: int = 2000
    ci: float = 0.95
    seed: int = 0
    min_events: int = 100  # distinct events, below which nothing is concluded
    min_blocks: int = 5  # independent blocks (of one horizon) holding events
    min_magnet_snapshots: int = 30
    block_ms: int | None = None  # bootstrap block length; None = the horizon

    def __post_init__(self) -> None:
        if self.horizon_ms <= 0 or self.every_ms <= 0 or self.lookback_ms <= 0 or self.warmup_ms < 0:
            raise ValueError("horizon, every and lookback must be positive, warm-up non-negative")
        if self.n_bins < 10:
            raise ValueError("need at least 10 price cells")
        if not 0 < self.floor < 1:
            raise ValueError("floor must lie in (0, 1)")
        if self.tolerance_pct < 0 or self.range_pct <= 0 or self.magnet_within_pct <= 0:
            raise ValueError("tolerance must be ≥ 0, range and magnet distance > 0")
        if not all(0 < q < 1 for q in self.top_shares) or not 0 < self.path_top < 1:
            raise ValueError("top shares must lie in (0, 1)")
        if not 0 < self.ci < 1 or self.n_boot < 1:
            raise ValueError("ci must lie in (0, 1) and n_boot be positive")
        if self.range_null_ms <= 0 or self.range_null_widen < 0:
            raise ValueError("the range null needs a positive window and a non-negative widening")
        if self.fit_horizons < 1 or self.fit_min_events < 1:
            raise ValueError("the scale fit needs at least one horizon and one event")
        if not 0 < self.scale_grid_lo < self.scale_grid_hi or self.scale_grid_n < 2:
            raise ValueError("the scale grid needs 0 < lo < hi and at least two points")
        if not self.precision_n or any(n < 1 for n in self.precision_n):
            raise ValueError("precision at N needs N ≥ 1")

    @property
    def block_length_ms(self) -> int:
        return self.block_ms or self.horizon_ms

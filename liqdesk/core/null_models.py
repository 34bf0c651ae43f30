"""The null densities the map is scored against, and how their scales are chosen.

A map that cannot beat a trader's naive guess says nothing, so every null is a guess a trader could
make at the snapshot instant, on the same price grid, smoothed by the same ±tolerance window:

* **uniform** over the shown range (the reference: 0 nats by construction);
* **recent range**: uniform over the high–low range of the last day, widened on each side by
  `range_null_widen` (25 %) of its width, fixed before any score was seen ("around here, a bit
  beyond"); truncated to the shown range;
* **Laplace at spot** and **Laplace at the lookback mean**, with scale b = k · ATR · √(horizon / bar)
  (the unit follows volatility; only the multiplier k is chosen):
  - *fixed*: k = 1/3, a random-walk argument (the mean bar range is 1.6 σ√bar and the mean
    |displacement| at a random moment of the horizon 0.53 σ√horizon, ratio 1/3). A scale chosen
    without looking at liquidations is easy to beat and proves little, so it is kept only to show
    what fitting changes;
  - *fitted* (out of sample): k maximises the likelihood of the events of the previous
    `fit_horizons` (7) horizons before each snapshot, on a log grid of multipliers; only events that
    happened before the snapshot count. Seven horizons are a week at the default 24 h horizon: many
    events on an active market, yet recent enough to follow a change of regime; a trader refitting
    weekly would do the same. With fewer than `fit_min_events` (10) such events a fit is noise and
    the fixed k stands in (the number of snapshots where it did is reported);
  - *best in sample*: the k that maximises the likelihood of the scored events themselves, the
    strongest null of the family (no forecaster could have chosen it). It is refitted inside every
    bootstrap resample, so its interval includes the selection.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from liqdesk.core.calibration_config import CalibrationConfig
from liqdesk.core.density_snapshots import Snapshots, normalise, smooth

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

# Fixed-scale nulls and the always-present references, by name; the fitted variants add "_fit" and
# "_best" to a Laplace's name.
FIXED_NULLS = ("uniform", "range", "spot_laplace", "mean_laplace")
LAPLACE_CENTRES = ("spot_laplace", "mean_laplace")


def laplace_cells(edges: F64, centre: F64, scale: F64) -> F64:
    """(S, P) probability of each cell under a Laplace truncated to the range."""
    z = (edges - centre[:, None]) / scale[:, None]
    cdf = np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0.0)), 1.0 - 0.5 * np.exp(-np.maximum(z, 0.0)))
    mass = np.diff(cdf, axis=1)
    return normalise(np.asarray(np.maximum(mass, 0.0), np.float64))


def interval_cells(edges: F64, lo: F64, hi: F64) -> F64:
    """(S, P) probability of each cell under a uniform on [lo, hi] truncated to the range."""
    left = np.maximum(edges[:, :-1], lo[:, None])
    right = np.minimum(edges[:, 1:], hi[:, None])
    return normalise(np.asarray(np.maximum(right - left, 0.0), np.float64))


def scale_unit(snaps: Snapshots, config: CalibrationConfig) -> F64:
    """ATR · √(horizon in bars): the Laplace scales are multiples of it."""
    u = snaps.atr * math.sqrt(config.horizon_ms / snaps.interval_ms)
    return np.asarray(np.where(np.isfinite(u), u, 0.0), np.float64)


def laplace_scale(snaps: Snapshots, config: CalibrationConfig, mult: float | F64 | None = None) -> F64:
    """b = mult · ATR · √(horizon in bars) (mult: the fixed rule's by default); at least one cell (a flat
    market has ATR 0)."""
    k = config.laplace_atr_mult if mult is None else mult
    return np.asarray(np.maximum(k * scale_unit(snaps, config), snaps.width), np.float64)


def centre_of(snaps: Snapshots, name: str) -> F64:
    if name == "spot_laplace":
        return snaps.spot
    if name == "mean_laplace":
        return snaps.mean_price
    raise KeyError(name)


def range_bounds(snaps: Snapshots, config: CalibrationConfig) -> tuple[F64, F64]:
    """The recent-range null's interval: last day's low/high widened on each side; at least one cell."""
    w = snaps.day_hi - snaps.day_lo
    pad = config.range_null_widen * w
    lo, hi = snaps.day_lo - pad, snaps.day_hi + pad
    short = (hi - lo) < snaps.width
    mid = (lo + hi) / 2.0
    lo = np.where(short, mid - snaps.width / 2.0, lo)
    hi = np.where(short, mid + snaps.width / 2.0, hi)
    return np.asarray(lo, np.float64), np.asarray(hi, np.float64)


def fixed_nulls(snaps: Snapshots, config: CalibrationConfig) -> dict[str, F64]:
    """Smoothed, normalised (S, P) cell probabilities of the nulls that need no fitting."""
    half = snaps.kernel_cells(config.tolerance_pct)
    edges = snaps.edges
    b = laplace_scale(snaps, config)
    lo, hi = range_bounds(snaps, config)
    raw = {
        "uniform": np.ones_like(snaps.long),
        "range": interval_cells(edges, lo, hi),
        "spot_laplace": laplace_cells(edges, snaps.spot, b),
        "mean_laplace": laplace_cells(edges, snaps.mean_price, b),
    }
    return {k: normalise(smooth(v, half)) for k, v in raw.items()}


def scale_grid(config: CalibrationConfig) -> F64:
    """Multipliers k tried by the fits: log-spaced, plus the fixed rule's (so the best in-sample null is
    at least as strong as the fixed one by construction)."""
    grid = np.geomspace(config.scale_grid_lo, config.scale_grid_hi, config.scale_grid_n)
    return np.asarray(np.unique(np.r_[grid, config.laplace_atr_mult]), np.float64)


def floored_loglik(p: F64, n_bins: int, floor: float) -> F64:
    """log(P · p) after mixing p with `floor` of uniform: nats relative to the uniform over the range."""
    return np.asarray(np.log(n_bins * ((1.0 - floor) * p + floor / n_bins)), np.float64)


def laplace_pair_loglik(
    snaps: Snapshots, name: str, mult: F64, snap: I64, cell: I64, config: CalibrationConfig
) -> F64:
    """Log-likelihood of each (snapshot, cell) pair under the Laplace `name` with multiplier mult[snap]."""
    if len(snap) == 0:
        return np.zeros(0)
    used, inv = np.unique(snap, return_inverse=True)
    scale = np.maximum(mult[used] * scale_unit(snaps, config)[used], snaps.width[used])
    half = snaps.kernel_cells(config.tolerance_pct)[used]
    p = normalise(smooth(laplace_cells(snaps.edges[used], centre_of(snaps, name)[used], scale), half))
    return floored_loglik(np.asarray(p[inv, cell], np.float64), snaps.n_bins, config.floor)


def grid_loglik(
    snaps: Snapshots, name: str, snap: I64, cell: I64, config: CalibrationConfig
) -> Iterator[tuple[int, F64]]:
    """(grid index, log-likelihood of every pair) for each multiplier of the scale grid, one at a time
    (the pairs × grid matrix of a long tape would not fit in memory)."""
    for j, k in enumerate(scale_grid(config).tolist()):
        yield j, laplace_pair_loglik(snaps, name, np.full(len(snaps), k), snap, cell, config)


def fit_buckets(config: CalibrationConfig) -> int:
    """Bucket length for the out-of-sample fits: every fit window [t − N·horizon, t) of a snapshot
    instant t (a multiple of every) is a whole number of buckets."""
    return math.gcd(config.every_ms, config.fit_horizons * config.horizon_ms)


class OutOfSampleFit:
    """Per snapshot: the grid multiplier with the highest weighted log-likelihood over the pairs whose
    event happened in [t − fit_horizons · horizon, t), and how many distinct events that window held.

    Only buckets that end by t are used, so no event at or after the snapshot instant is ever seen.
    Where the window holds fewer than fit_min_events events the fixed rule's multiplier stands in.
    Feed it every grid multiplier's pair log-likelihoods (`add`, as grid_loglik yields them), then
    read `multipliers(weighting)`."""

    def __init__(
        self, snap_time: I64, event_time: I64, pair_event_time: I64, config: CalibrationConfig
    ) -> None:
        self.config = config
        self.grid = scale_grid(config)
        g = fit_buckets(config)
        t = np.asarray(snap_time, np.int64)
        span = config.fit_horizons * config.horizon_ms
        first = -(-(t - span) // g)  # first bucket wholly inside the window
        last = t // g  # buckets before this one end by t
        ev = np.sort(np.asarray(event_time, np.int64))
        self.n_events = np.asarray(
            np.searchsorted(ev, last * g, "left") - np.searchsorted(ev, first * g, "left"), np.int64
        )
        pt = np.asarray(pair_event_time, np.int64) // g
        # Buckets count from the earliest one needed (epoch-based indices would make the arrays huge).
        both = np.r_[first, pt]
        b0 = int(both.min()) if len(both) else 0
        self._bucket = np.asarray(pt - b0, np.int64)
        self._nb = int(max((last - b0).max(initial=0), self._bucket.max(initial=-1) + 1))
        self._lo = np.clip(first - b0, 0, self._nb)
        self._hi = np.clip(last - b0, 0, self._nb)
        self._totals: dict[str, F64] = {}

    @property
    def n_buckets(self) -> int:
        """Buckets kept per grid multiplier: from the earliest fit window's start to the last snapshot or event."""
        return self._nb

    def add(self, j: int, ll: F64, weights: dict[str, F64]) -> None:
        """Pair log-likelihoods at grid multiplier j, summed per bucket under each weighting."""
        for name, w in weights.items():
            tot = self._totals.setdefault(name, np.zeros((len(self.grid), self._nb + 1)))
            tot[j, 1:] = np.cumsum(np.bincount(self._bucket, weights=ll * w, minlength=self._nb)[: self._nb])

    def multipliers(self, weighting: str) -> F64:
        fixed = np.full(len(self.n_events), self.config.laplace_atr_mult)
        tot = self._totals.get(weighting)
        if tot is None or len(fixed) == 0:
            return fixed
        window = tot[:, self._hi] - tot[:, self._lo]  # (K, S)
        best = self.grid[np.argmax(window, axis=0)]
        use = self.n_events >= self.config.fit_min_events
        return np.asarray(np.where(use, best, fixed), np.float64)

    @property
    def n_fallback(self) -> int:
        """Snapshots where the window held too few events and the fixed rule stood in."""
        return int(np.count_nonzero(self.n_events < self.config.fit_min_events))

"""Uncertainty of the scores: point estimates with intervals.

* **Block bootstrap.** Scores are sums over (snapshot, event) pairs or over snapshots whose horizons
  overlap, so neighbouring terms are not independent. Each score is a function of per-block column
  sums; whole blocks are resampled with replacement and the percentile interval of the function is
  reported. With fewer than two blocks no interval can be given (NaN).
* **Wilson interval.** For a hit rate out of n trials (precision at N): the score interval of a
  binomial proportion, which stays inside [0, 1] and is sensible for 0 or n hits, unlike p ± 1.96 SE.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval (NaN where none can be given)."""

    value: float
    low: float = math.nan
    high: float = math.nan

    @property
    def has_ci(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def above(self, x: float) -> bool:
        return self.has_ci and self.low > x

    def below(self, x: float) -> bool:
        return self.has_ci and self.high < x

    def scaled(self, k: float) -> Estimate:
        return Estimate(self.value * k, self.low * k, self.high * k)

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0 if self.has_ci else math.nan


NAN = Estimate(math.nan)


def block_ids(time_ms: I64, block_ms: int) -> I64:
    """Block of each instant: consecutive windows of block_ms from the first instant."""
    t = np.asarray(time_ms, np.int64)
    if len(t) == 0:
        return np.zeros(0, np.int64)
    return np.asarray((t - t[0]) // block_ms, np.int64)


def block_sums(blocks: I64, columns: list[F64]) -> tuple[F64, int]:
    """(blocks present × columns) sums of each column within each block present, and how many blocks."""
    ub, inv = np.unique(blocks, return_inverse=True)
    if not columns:
        return np.zeros((len(ub), 0)), len(ub)
    sums = np.stack([np.bincount(inv, weights=c, minlength=len(ub)) for c in columns], axis=1)
    return np.asarray(sums, np.float64), len(ub)


def block_bootstrap(
    sums: F64,
    stat: Callable[[F64], F64],
    *,
    n_boot: int,
    ci: float,
    seed: int,
    salt: int,
) -> list[Estimate]:
    """Point estimates and percentile intervals of stat(column totals) with blocks resampled.

    stat maps (..., columns) totals to (..., k) scores; each resample draws as many blocks as there
    are, with replacement. A score undefined in a resample (NaN) is left out of its percentiles."""
    point = np.asarray(stat(sums.sum(axis=0)), np.float64)
    nb = len(sums)
    if nb < 2:
        return [Estimate(float(v)) for v in point]
    rng = np.random.default_rng([seed, salt])
    counts = rng.multinomial(nb, np.full(nb, 1.0 / nb), size=n_boot).astype(np.float64)
    boot = np.asarray(stat(counts @ sums), np.float64)
    tail = (1.0 - ci) / 2.0 * 100.0
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": undefined in every resample
        lo = np.nanpercentile(boot, tail, axis=0)
        hi = np.nanpercentile(boot, 100.0 - tail, axis=0)
    return [Estimate(float(v), float(a), float(b)) for v, a, b in zip(point, lo, hi, strict=True)]


def wilson(hits: float, n: float, ci: float = 0.95) -> Estimate:
    """The hit rate hits / n with its Wilson score interval; NaN for n = 0.

    n may be fractional (an effective number of trials when trials are not independent)."""
    if n <= 0:
        return NAN
    z = NormalDist().inv_cdf(1.0 - (1.0 - ci) / 2.0)
    p = hits / n
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half))

"""The actual liquidation map: where the liquidation prices of sampled positions lie.

Hyperliquid publishes any account's open positions with the venue's own liquidation price. Sampling accounts gives
an *actual* map for the part of open interest they hold (never all of it). This module is the arithmetic:

* ``PositionSamples``: which accounts were sampled when (an answer with no position counts: it says the account
  held nothing then) and the positions each answer listed, columnar.
* ``PositionSamples.latest``: the state at one instant, each account's newest answer at or before it.
* ``actual_map``: per price bin, the long and the short notional whose liquidation price lies there, with
  notional = |size| × liquidation price (what is liquidated when price gets there). Positions without a
  liquidation price (hedged cross accounts, where the venue returns none) and those outside the bins are counted,
  never dropped silently.
* Coverage: every contract is one long and one short, and open interest counts it once. Sampled long value /
  open interest and sampled short value / open interest are each at most 1; ``coverage`` is their mean, the
  share of both sides of open interest that the sample holds (position value = |size| × mark, as the venue
  reports it, against open interest = coins × mark).
* ``observed_leverage``: the leverage settings of the sample, weighted by position value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import NDArray

from liqdesk.core.grid import PriceBins

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Str = NDArray[np.str_]
Bool = NDArray[np.bool_]

_SAMPLE_FIELDS = ("sample_account", "sample_time")


def _str(a: object) -> Str:
    return np.asarray(a, dtype=str).reshape(-1)


@dataclass(frozen=True, eq=False)
class PositionSamples:
    """Account samples and the positions they listed.

    A sample is one answer for one account at one time (``sample_account``, ``sample_time``). Each position row
    belongs to the sample with the same (``account``, ``time``). ``size`` is signed (> 0 long) in coins;
    ``liquidation_px`` is NaN where the venue gave none; ``position_value`` is |size| × mark at the sample."""

    sample_account: Str
    sample_time: I64
    account: Str
    coin: Str
    time: I64
    size: F64
    entry_px: F64
    leverage: F64
    cross: Bool  # cross margin (else isolated)
    liquidation_px: F64
    margin_used: F64
    position_value: F64

    def __post_init__(self) -> None:
        object.__setattr__(self, "sample_account", _str(self.sample_account))
        object.__setattr__(self, "sample_time", np.ascontiguousarray(self.sample_time, np.int64).reshape(-1))
        object.__setattr__(self, "account", _str(self.account))
        object.__setattr__(self, "coin", _str(self.coin))
        object.__setattr__(self, "time", np.ascontiguousarray(self.time, np.int64).reshape(-1))
        object.__setattr__(self, "cross", np.ascontiguousarray(self.cross, bool).reshape(-1))
        for name in ("size", "entry_px", "leverage", "liquidation_px", "margin_used", "position_value"):
            object.__setattr__(self, name, np.ascontiguousarray(getattr(self, name), np.float64).reshape(-1))
        if len(self.sample_account) != len(self.sample_time):
            raise ValueError("sample_account and sample_time differ in length")
        n = len(self.account)
        for f in fields(self):
            if f.name not in _SAMPLE_FIELDS and len(getattr(self, f.name)) != n:
                raise ValueError(
                    f"PositionSamples.{f.name} has {len(getattr(self, f.name))} rows, account has {n}"
                )

    @staticmethod
    def empty() -> PositionSamples:
        z = np.zeros(0)
        return PositionSamples(
            _str([]), np.zeros(0, np.int64), _str([]), _str([]), np.zeros(0, np.int64), z, z, z,
            np.zeros(0, bool), z, z, z,
        )  # fmt: skip

    @property
    def n_samples(self) -> int:
        return len(self.sample_time)

    def __len__(self) -> int:
        """Position rows."""
        return len(self.account)

    def take_positions(self, index: object) -> PositionSamples:
        """The same samples with a subset of the position rows (slice, mask or index array)."""
        cols = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in cols:
            if name not in _SAMPLE_FIELDS:
                cols[name] = cols[name][index]
        return PositionSamples(**cols)

    def for_coin(self, coin: str) -> PositionSamples:
        """Every sample, with only the positions in ``coin`` (an answer without one says: none held)."""
        return self.take_positions(self.coin == coin)

    def latest(self, at_ms: int | None = None, max_age_ms: int | None = None) -> PositionSamples:
        """Each account's newest sample at or before ``at_ms`` (default: the newest of all), and no older than
        ``max_age_ms`` before it; the positions of those samples only."""
        t = self.sample_time
        keep = np.ones(len(t), bool)
        if at_ms is not None:
            keep &= t <= at_ms
        if max_age_ms is not None:
            ref = at_ms if at_ms is not None else (int(t.max()) if len(t) else 0)
            keep &= t >= ref - max_age_ms
        idx = np.flatnonzero(keep)
        # newest first, then the first of each account
        order = idx[np.lexsort((-t[idx], self.sample_account[idx]))]
        acc = self.sample_account[order]
        first = np.r_[True, acc[1:] != acc[:-1]] if len(acc) else np.zeros(0, bool)
        chosen = order[first]
        s_acc, s_time = self.sample_account[chosen], self.sample_time[chosen]
        key = {(a, int(tm)) for a, tm in zip(s_acc.tolist(), s_time.tolist(), strict=True)}
        rows = np.fromiter(
            ((a, int(tm)) in key for a, tm in zip(self.account.tolist(), self.time.tolist(), strict=True)),
            bool,
            count=len(self.account),
        )
        cols = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in cols:
            if name not in _SAMPLE_FIELDS:
                cols[name] = cols[name][rows]
        cols["sample_account"], cols["sample_time"] = s_acc, s_time
        return PositionSamples(**cols)

    def concat(self, other: PositionSamples) -> PositionSamples:
        return PositionSamples(
            **{f.name: np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self)}
        )

    @property
    def notional_at_liquidation(self) -> F64:
        """|size| × liquidation price (NaN without one): the USD a liquidation there closes."""
        return np.asarray(np.abs(self.size) * self.liquidation_px, np.float64)


@dataclass(frozen=True, eq=False)
class ActualMap:
    """Long and short notional (|size| × liquidation price) of sampled positions per price bin, with what the
    bins do not show and the coverage of open interest."""

    bins: PriceBins
    long: F64  # (P,) USD
    short: F64  # (P,) USD
    first_ms: int | None  # oldest and newest sample used
    last_ms: int | None
    n_accounts: int  # accounts sampled (with or without a position)
    n_positions: int  # positions in the coin
    n_without_price: int  # positions the venue gave no liquidation price (hedged cross accounts)
    without_price_value_usd: float  # their position value
    n_outside: int  # positions whose liquidation price lies outside the bins
    outside_usd: float  # their notional at liquidation
    long_value_usd: float  # position value (|size| × mark) of the sampled longs, with or without a price
    short_value_usd: float
    open_interest_usd: float  # the venue's open interest in the coin (NaN: unknown)

    @property
    def price(self) -> F64:
        return np.asarray(self.bins.centers, np.float64)

    @property
    def long_coverage(self) -> float:
        """Sampled long value / open interest (NaN when open interest is unknown)."""
        return _ratio(self.long_value_usd, self.open_interest_usd)

    @property
    def short_coverage(self) -> float:
        return _ratio(self.short_value_usd, self.open_interest_usd)

    @property
    def coverage(self) -> float:
        """The share of both sides of open interest held by the sampled positions."""
        return _ratio(self.long_value_usd + self.short_value_usd, 2.0 * self.open_interest_usd)

    @property
    def total_usd(self) -> float:
        return float(self.long.sum() + self.short.sum())


def _ratio(a: float, b: float) -> float:
    return a / b if math.isfinite(b) and b > 0 else math.nan


def actual_map(samples: PositionSamples, bins: PriceBins, open_interest_usd: float = math.nan) -> ActualMap:
    """Bin the liquidation prices of the positions in ``samples`` (already the state at one instant and one
    coin: see ``latest`` and ``for_coin``). A bin holds [edge_i, edge_i+1)."""
    liq = samples.liquidation_px
    has_price = np.isfinite(liq) & (liq > 0)
    cell = np.where(has_price, bins.index(np.where(has_price, liq, bins.lo)), -1)
    inside = cell >= 0
    usd = np.where(has_price, samples.notional_at_liquidation, 0.0)
    long_ = samples.size > 0
    out = []
    for side in (long_, ~long_):
        m = inside & side
        out.append(np.bincount(cell[m], weights=usd[m], minlength=bins.n).astype(np.float64))
    outside = has_price & ~inside
    times = samples.sample_time
    return ActualMap(
        bins=bins,
        long=out[0],
        short=out[1],
        first_ms=int(times.min()) if len(times) else None,
        last_ms=int(times.max()) if len(times) else None,
        n_accounts=len(np.unique(samples.sample_account)),
        n_positions=len(samples),
        n_without_price=int(np.count_nonzero(~has_price)),
        without_price_value_usd=float(samples.position_value[~has_price].sum()),
        n_outside=int(np.count_nonzero(outside)),
        outside_usd=float(usd[outside].sum()),
        long_value_usd=float(samples.position_value[long_].sum()),
        short_value_usd=float(samples.position_value[~long_].sum()),
        open_interest_usd=float(open_interest_usd),
    )


def liquidation_price_range(
    samples: PositionSamples, spot: float, max_pct: float = 50.0
) -> tuple[float, float]:
    """A price range holding every liquidation price within ``max_pct`` % of ``spot`` (and spot itself), padded
    by half a percent of spot on each side: the default range of an actual map."""
    liq = samples.liquidation_px
    ok = np.isfinite(liq) & (liq > 0) & (np.abs(liq / spot - 1.0) * 100.0 <= max_pct)
    lo = min(float(liq[ok].min()), spot) if ok.any() else spot * 0.9
    hi = max(float(liq[ok].max()), spot) if ok.any() else spot * 1.1
    pad = spot * 0.005
    return max(lo - pad, spot * 1e-6), hi + pad


def observed_leverage(samples: PositionSamples, max_tiers: int = 10) -> tuple[F64, F64, float]:
    """(leverage, weight, share left out) of the positions' leverage settings, weighted by position value.

    Leverages of 1x or less (no tier of the model) are left out and their share reported. More than
    ``max_tiers`` distinct leverages: the largest ``max_tiers`` by value are kept and each other one's value goes
    to the nearest kept leverage (on a log scale). Weights sum to 1 (empty arrays when nothing is left)."""
    lev = np.round(samples.leverage, 6)
    value = samples.position_value
    ok = np.isfinite(lev) & (lev > 1) & np.isfinite(value) & (value > 0)
    total = float(value[np.isfinite(value) & (value > 0)].sum())
    left_out = 1.0 - float(value[ok].sum()) / total if total > 0 else 0.0
    if not ok.any():
        return np.zeros(0), np.zeros(0), left_out
    uniq, inv = np.unique(lev[ok], return_inverse=True)
    w = np.asarray(np.bincount(inv, weights=value[ok]), np.float64)
    if len(uniq) > max_tiers:
        keep = np.sort(np.argsort(-w, kind="stable")[:max_tiers])
        nearest = keep[np.argmin(np.abs(np.log(uniq)[:, None] - np.log(uniq[keep])[None, :]), axis=1)]
        w = np.asarray(np.bincount(nearest, weights=w, minlength=len(uniq))[keep], np.float64)
        uniq = uniq[keep]
    return np.asarray(uniq, np.float64), np.asarray(w / w.sum(), np.float64), left_out

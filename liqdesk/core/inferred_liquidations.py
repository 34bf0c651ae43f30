"""Liquidations inferred from two samples of one account: nobody reported them, the sample saw them happen.

A position held at the first sample (time t1, liquidation price L) that is gone at the second (t2), or smaller,
or on the other side, while price crossed L between the two, is taken as liquidated:

* the lost size is |size at t1| − |size at t2| when the side is unchanged (a partial liquidation, as the venue
  does to large positions), all of it when the position is gone or flipped;
* price crossed L when some element of the price path inside (t1, t2] reached it: a bar's low ≤ L·(1 + tol) for a
  long, a bar's high ≥ L·(1 − tol) for a short. Path elements are bars ([open, close)) or single marks (a point
  in time, low = high = the mark). A bar counts when it overlaps (t1, t2], so the bar holding t1 counts whole: a
  wick just before the first sample can pass as a crossing; finer bars make that window smaller. ``tol``
  allows for the venue triggering on its mark price while bars show trades (a few basis points apart);
* the event's time is the start of the first crossing element (not before t1 + 1 ms, not after t2), its price
  L, its USD lost size × L (as the actual map counts notional).

A position reduced or closed by its owner while price happened to cross its liquidation price reads the same: the
events are evidence, marked ``inferred`` so they are never counted as recorded ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from liqdesk.core.actual_map import PositionSamples
from liqdesk.core.series import LONG, SHORT, Liquidations

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

DEFAULT_TOLERANCE_PCT = 0.1


@dataclass(frozen=True, eq=False)
class PricePath:
    """Price over time as elements covering [start_ms, end_ms] (inclusive; end = start for a single mark)."""

    start_ms: I64
    end_ms: I64
    low: F64
    high: F64

    def __post_init__(self) -> None:
        for f in ("start_ms", "end_ms"):
            object.__setattr__(self, f, np.ascontiguousarray(getattr(self, f), np.int64).reshape(-1))
        for f in ("low", "high"):
            object.__setattr__(self, f, np.ascontiguousarray(getattr(self, f), np.float64).reshape(-1))
        n = len(self.start_ms)
        if not (len(self.end_ms) == len(self.low) == len(self.high) == n):
            raise ValueError("PricePath columns differ in length")

    @staticmethod
    def empty() -> PricePath:
        return PricePath(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))

    @staticmethod
    def from_bars(open_ms: I64, interval_ms: int, low: F64, high: F64) -> PricePath:
        start = np.asarray(open_ms, np.int64)
        return PricePath(start, start + interval_ms - 1, low, high)

    @staticmethod
    def from_marks(time_ms: I64, mark: F64) -> PricePath:
        t = np.asarray(time_ms, np.int64)
        return PricePath(t, t, mark, mark)

    def __len__(self) -> int:
        return len(self.start_ms)

    def concat(self, other: PricePath) -> PricePath:
        return PricePath(
            np.concatenate([self.start_ms, other.start_ms]), np.concatenate([self.end_ms, other.end_ms]),
            np.concatenate([self.low, other.low]), np.concatenate([self.high, other.high]),
        )  # fmt: skip

    def between(self, after_ms: int, upto_ms: int) -> PricePath:
        """Elements overlapping (after_ms, upto_ms], in time order."""
        m = (self.end_ms > after_ms) & (self.start_ms <= upto_ms)
        idx = np.flatnonzero(m)
        idx = idx[np.argsort(self.start_ms[idx], kind="stable")]
        return PricePath(self.start_ms[idx], self.end_ms[idx], self.low[idx], self.high[idx])


@dataclass(frozen=True, eq=False)
class InferredLiquidations:
    """Events (all marked inferred) with the account and the two sample times each comes from."""

    events: Liquidations
    account: NDArray[np.str_]
    seen_before_ms: I64
    seen_after_ms: I64

    def __len__(self) -> int:
        return len(self.events)


def empty_inferred() -> InferredLiquidations:
    return InferredLiquidations(
        Liquidations.empty(), np.zeros(0, str), np.zeros(0, np.int64), np.zeros(0, np.int64)
    )


def infer_liquidations(
    before: PositionSamples,
    after: PositionSamples,
    path: PricePath,
    *,
    exchange: str,
    symbol: str,
    tolerance_pct: float = DEFAULT_TOLERANCE_PCT,
) -> InferredLiquidations:
    """Compare one account's sample ``before`` with its next sample ``after`` (each one sample, one coin)."""
    if before.n_samples != 1 or after.n_samples != 1:
        raise ValueError("infer_liquidations compares one sample of one account with its next one")
    t1, t2 = int(before.sample_time[0]), int(after.sample_time[0])
    account = str(before.sample_account[0])
    if str(after.sample_account[0]) != account or t2 <= t1:
        raise ValueError("the second sample must be a later one of the same account")
    tol = tolerance_pct / 100.0
    now_size = {c: float(s) for c, s in zip(after.coin.tolist(), after.size.tolist(), strict=True)}
    seg = path.between(t1, t2)
    rows: list[tuple[int, int, float, float]] = []  # time, side, price, quantity
    for coin, size, liq in zip(
        before.coin.tolist(), before.size.tolist(), before.liquidation_px.tolist(), strict=True
    ):
        if not (np.isfinite(liq) and liq > 0) or size == 0:
            continue
        new = now_size.get(coin, 0.0)
        lost = abs(size) - abs(new) if np.sign(new) == np.sign(size) else abs(size)
        if lost <= 0:
            continue
        side = LONG if size > 0 else SHORT
        hit = seg.low <= liq * (1.0 + tol) if side == LONG else seg.high >= liq * (1.0 - tol)
        k = np.flatnonzero(hit)
        if len(k) == 0:
            continue
        when = min(max(int(seg.start_ms[k[0]]), t1 + 1), t2)
        rows.append((when, side, float(liq), float(lost)))
    n = len(rows)
    if n == 0:
        return empty_inferred()
    t, s, p, q = (np.array(c) for c in zip(*rows, strict=True))
    events = Liquidations(
        t, np.full(n, exchange), np.full(n, symbol), s, p, q, p * q, inferred=np.ones(n, bool)
    )
    return InferredLiquidations(
        events, np.full(n, account), np.full(n, t1, np.int64), np.full(n, t2, np.int64)
    )

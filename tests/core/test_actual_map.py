"""The actual map, its coverage, the state at an instant, inferred liquidations and the sampling rule: crafted
positions with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from liqdesk.core.actual_map import PositionSamples, actual_map, liquidation_price_range, observed_leverage
from liqdesk.core.grid import PriceBins
from liqdesk.core.inferred_liquidations import PricePath, infer_liquidations
from liqdesk.core.sampling_schedule import NEVER, SamplingRule, due_order, intervals_ms, near_mask
from liqdesk.core.series import LONG, SHORT

T0 = 1_750_000_000_000
MIN = 60_000


def samples(
    accounts: list[tuple[str, int]], rows: list[tuple[str, str, int, float, float | None, float]]
) -> PositionSamples:
    """rows: (account, coin, time, size, liquidation price or None, leverage); mark 70,000 for values."""
    n = len(rows)
    return PositionSamples(
        np.array([a for a, _ in accounts]), np.array([t for _, t in accounts], np.int64),
        np.array([r[0] for r in rows]), np.array([r[1] for r in rows]), np.array([r[2] for r in rows], np.int64),
        np.array([r[3] for r in rows]), np.full(n, 70_000.0), np.array([r[5] for r in rows]), np.ones(n, bool),
        np.array([np.nan if r[4] is None else r[4] for r in rows]), np.full(n, 1.0),
        np.array([abs(r[3]) * 70_000.0 for r in rows]),
    )  # fmt: skip


def test_the_map_bins_notional_at_liquidation_and_counts_what_it_cannot_bin() -> None:
    s = samples(
        [("a", T0), ("b", T0), ("c", T0), ("d", T0)],
        [("a", "BTC", T0, 0.5, 66_520.5, 20), ("b", "BTC", T0, -1.25, 78_410.75, 5),
         ("c", "BTC", T0, -3.0, None, 3), ("d", "BTC", T0, 0.1, 50_000.0, 2), ("d", "BTC", T0, 1.0, 66_580.0, 40)],
    )  # fmt: skip
    m = actual_map(s, PriceBins(60_000.0, 80_000.0, 200), open_interest_usd=1_000_000.0)
    assert m.long[65] == 0.5 * 66_520.5 + 66_580.0 and m.short[184] == 1.25 * 78_410.75
    assert np.count_nonzero(m.long) == 1 and np.count_nonzero(m.short) == 1
    assert (m.n_accounts, m.n_positions, m.n_without_price, m.n_outside) == (4, 5, 1, 1)
    assert m.without_price_value_usd == 3.0 * 70_000 and m.outside_usd == 0.1 * 50_000.0
    assert m.long_value_usd == 1.6 * 70_000 and m.short_value_usd == 4.25 * 70_000
    # every contract is a long and a short: both sides of the sample against twice the open interest
    assert m.coverage == pytest.approx((1.6 + 4.25) * 70_000 / 2_000_000)
    assert m.long_coverage == pytest.approx(1.6 * 70_000 / 1_000_000)
    assert math.isnan(actual_map(s, PriceBins(60_000.0, 80_000.0, 200)).coverage)  # open interest unknown


def test_the_state_at_an_instant_is_each_accounts_newest_answer_an_empty_one_included() -> None:
    s = samples(
        [("a", T0), ("a", T0 + MIN), ("b", T0), ("c", T0 + 2 * MIN)],
        [("a", "BTC", T0, 1.0, 60_000.0, 10), ("b", "BTC", T0, -1.0, 80_000.0, 10),
         ("c", "BTC", T0 + 2 * MIN, 2.0, 65_000.0, 5), ("c", "ETH", T0 + 2 * MIN, 2.0, 3_000.0, 5)],
    )  # fmt: skip
    now = s.latest()
    # a's newest answer listed nothing: its old long is gone, not carried over
    assert sorted(now.sample_account.tolist()) == ["a", "b", "c"] and "a" not in now.account.tolist()
    assert sorted(now.account.tolist()) == ["b", "c", "c"]
    assert s.latest(T0 + MIN // 2).account.tolist() == ["a", "b"]
    assert s.latest(T0 + 2 * MIN, max_age_ms=MIN).sample_account.tolist() == ["a", "c"]
    assert now.for_coin("BTC").coin.tolist() == ["BTC", "BTC"] and now.for_coin("BTC").n_samples == 3


def test_default_range_holds_the_liquidation_prices_near_spot() -> None:
    s = samples([("a", T0)], [("a", "BTC", T0, 1.0, 66_000.0, 10), ("a", "BTC", T0, -1.0, 75_000.0, 10),
                              ("a", "BTC", T0, 1.0, 10.0, 1)])  # fmt: skip
    lo, hi = liquidation_price_range(s, 70_000.0)
    assert lo == 66_000.0 - 350 and hi == 75_000.0 + 350  # 10.0 is more than 50 % away: left out


def test_observed_leverage_by_value_leaves_out_1x_and_merges_rare_tiers() -> None:
    s = samples([("a", T0)], [("a", "BTC", T0, 1.0, 1.0, 10), ("a", "BTC", T0, 3.0, 1.0, 20),
                              ("a", "BTC", T0, 1.0, 1.0, 1)])  # fmt: skip
    lev, w, left_out = observed_leverage(s)
    assert lev.tolist() == [10.0, 20.0] and w.tolist() == [0.25, 0.75] and left_out == pytest.approx(0.2)
    many = samples([("a", T0)], [("a", "BTC", T0, float(k), 1.0, float(k + 1)) for k in range(1, 13)])
    lev, w, _ = observed_leverage(many, max_tiers=10)
    # the two smallest (2x, 3x) go to the nearest kept leverage on a log scale (4x)
    assert lev.tolist() == [float(k) for k in range(4, 14)] and w[0] == pytest.approx((1 + 2 + 3) / 78)
    assert w.sum() == pytest.approx(1.0)


# -- inferred liquidations ---------------------------------------------------------------------------------------
def one(t: int, rows: list[tuple[str, float, float | None]], account: str = "a") -> PositionSamples:
    return samples([(account, t)], [(account, c, t, size, liq, 10) for c, size, liq in rows])


BARS = PricePath.from_bars(
    np.array([T0 - MIN, T0, T0 + MIN, T0 + 2 * MIN], np.int64), MIN,
    np.array([60_000.0, 69_000.0, 68_000.0, 69_500.0]), np.array([71_000.0, 70_500.0, 70_000.0, 72_000.0]),
)  # fmt: skip


def test_a_position_gone_while_price_crossed_its_liquidation_price_is_an_inferred_event() -> None:
    before = one(T0 + 10, [("BTC", 2.0, 68_200.0), ("BTC2", 1.0, 1.0)])
    after = one(T0 + 2 * MIN + 10, [])
    found = infer_liquidations(before.for_coin("BTC"), after, BARS, exchange="hyperliquid", symbol="BTC/USDC:USDC",
                               tolerance_pct=0.0)  # fmt: skip
    e = found.events
    assert len(e) == 1 and e.inferred.tolist() == [True] and e.side.tolist() == [LONG]
    # the first bar that reached 68,200 opened at T0 + 1 min; the event carries the liquidation price
    assert (e.time[0], e.price[0], e.quantity[0], e.usd[0]) == (T0 + MIN, 68_200.0, 2.0, 2.0 * 68_200.0)
    assert found.account.tolist() == ["a"] and found.seen_before_ms.tolist() == [T0 + 10]


def test_no_crossing_no_event_and_the_bar_that_closed_before_the_first_sample_does_not_count() -> None:
    # price never went below 68,000 after T0, though the bar closing at T0 reached 60,000
    before = one(T0, [("BTC", 1.0, 65_000.0)])
    after = one(T0 + 3 * MIN, [])
    assert len(infer_liquidations(before, after, BARS, exchange="x", symbol="y", tolerance_pct=0.0)) == 0
    # a short at 72,000: the last bar's high reached it
    short = infer_liquidations(one(T0, [("BTC", -1.5, 72_000.0)]), after, BARS, exchange="x", symbol="y",
                               tolerance_pct=0.0)  # fmt: skip
    assert short.events.side.tolist() == [SHORT] and short.events.time.tolist() == [T0 + 2 * MIN]
    # the tolerance: a long at 67,950 is 0.07 % below the low of 68,000
    near = infer_liquidations(one(T0, [("BTC", 1.0, 67_950.0)]), after, BARS, exchange="x", symbol="y",
                              tolerance_pct=0.1)  # fmt: skip
    assert len(near) == 1
    assert len(infer_liquidations(one(T0, [("BTC", 1.0, 67_950.0)]), after, BARS, exchange="x", symbol="y",
                                  tolerance_pct=0.05)) == 0  # fmt: skip


def test_partial_and_flipped_positions_and_marks_as_the_path() -> None:
    t2 = T0 + 3 * MIN
    partial = infer_liquidations(one(T0, [("BTC", 2.0, 68_500.0)]), one(t2, [("BTC", 0.5, 68_000.0)]), BARS,
                                 exchange="x", symbol="y", tolerance_pct=0.0)  # fmt: skip
    assert partial.events.quantity.tolist() == [1.5]
    grown = infer_liquidations(one(T0, [("BTC", 2.0, 68_500.0)]), one(t2, [("BTC", 3.0, 60_000.0)]), BARS,
                               exchange="x", symbol="y", tolerance_pct=0.0)  # fmt: skip
    assert len(grown) == 0
    flipped = infer_liquidations(one(T0, [("BTC", 2.0, 68_500.0)]), one(t2, [("BTC", -1.0, 80_000.0)]), BARS,
                                 exchange="x", symbol="y", tolerance_pct=0.0)  # fmt: skip
    assert flipped.events.quantity.tolist() == [2.0]
    marks = PricePath.from_marks(np.array([T0 + 30_000], np.int64), np.array([68_400.0]))
    by_mark = infer_liquidations(one(T0, [("BTC", 2.0, 68_500.0)]), one(t2, []), marks, exchange="x", symbol="y",
                                 tolerance_pct=0.0)  # fmt: skip
    assert by_mark.events.time.tolist() == [T0 + 30_000]
    no_price = infer_liquidations(one(T0, [("BTC", 2.0, None)]), one(t2, []), BARS, exchange="x", symbol="y")
    assert len(no_price) == 0
    with pytest.raises(ValueError):
        infer_liquidations(one(t2, []), one(T0, []), BARS, exchange="x", symbol="y")


# -- the sampling rule -------------------------------------------------------------------------------------------
def test_the_sampling_rule_orders_near_price_then_new_then_large_and_respects_intervals() -> None:
    now = T0 + 10 * 3_600_000
    rule = SamplingRule()
    last = np.array(
        [now - 61_000, NEVER, NEVER, now - 301_000, now - 200_000, now - 1_900_000, now - 1_900_000]
    )
    seen = np.array([now, now, now, now, now, now - 2 * 3_600_000, now])
    pos = np.array([1e3, 0.0, 0.0, 5e6, 9e9, 0.0, 0.0])
    traded = np.array([0.0, 10.0, 1e6, 0.0, 0.0, 0.0, 50.0])
    near = np.array([True, False, False, False, False, False, False])
    assert intervals_ms(now, seen, pos, near, rule).tolist() == [60_000, 1_800_000, 1_800_000, 300_000,
                                                                 300_000, 21_600_000, 1_800_000]  # fmt: skip
    # 4 (large open position) waits: 200 s < 5 min; 5 (dormant) waits 6 h; 6 (active, no position) is due
    assert due_order(now, last, seen, pos, traded, near, rule).tolist() == [0, 2, 1, 3, 6]
    assert near_mask(np.array([69_000.0, 60_000.0, np.nan]), 70_000.0, 2.0).tolist() == [True, False, False]

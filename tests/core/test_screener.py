"""The screener on crafted maps (known clusters → known rows and order) and the engines kept warm."""

from __future__ import annotations

import numpy as np
import pytest

from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import PriceBins
from liqdesk.core.liqmap import LiquidationMap, liquidation_map
from liqdesk.core.market_watch import MarketWatch, WatchBudget
from liqdesk.core.params import ModelParams
from liqdesk.core.screener import COLUMNS, failed_row, rank, screen_row
from liqdesk.core.series import LONG, SHORT
from tests.core.helpers import BAR, random_market

BINS = PriceBins(80.0, 120.0, 400)  # 0.1 wide: bin i spans 80 + i/10 .. 80 + (i+1)/10
TIERS = ["10x", "25x", "50x", "100x"]


def crafted(
    price: float, longs: dict[float, float], shorts: dict[float, float], tier: int = 1
) -> LiquidationMap:
    """A map with one-bin clusters: {bin centre price: USD}, all in one leverage tier."""
    long_by, short_by = np.zeros((4, BINS.n)), np.zeros((4, BINS.n))
    for book, out in ((longs, long_by), (shorts, short_by)):
        for p, usd in book.items():
            out[tier, int(BINS.index(np.array([p]))[0])] = usd
    return LiquidationMap(
        0, 0, price, BINS, TIERS, long_by, short_by, float(long_by.sum()), float(short_by.sum())
    )


def row(name: str, lmap: LiquidationMap, updated_ms: int = 0):  # type: ignore[no-untyped-def]
    return screen_row(lmap, market=name, exchange="x", symbol=name, model="OI model", updated_ms=updated_ms)


# a speck next to price (0.1 M, under 3 % of the map), a real cluster further away, bigger ones beyond 5 %
A = crafted(
    100.0,
    longs={99.55: 0.1e6, 97.05: 5e6, 90.05: 20e6},
    shorts={102.95: 8e6, 104.55: 30e6, 110.05: 50e6},
)
VISIBLE_A = 0.1e6 + 5e6 + 20e6 + 8e6 + 30e6 + 50e6


def test_a_row_from_a_crafted_map() -> None:
    r = row("A", A)
    assert r.price == 100.0 and r.visible_usd == pytest.approx(VISIBLE_A)
    lo, hi, big = r.nearest_long, r.nearest_short, r.largest
    assert lo is not None and hi is not None and big is not None
    # the nearest long is the 5 M cluster at 97.05: the speck at 99.55 holds 0.09 % of the map
    assert (lo.side, lo.price, lo.usd, lo.tier) == (LONG, pytest.approx(97.05), pytest.approx(5e6), "25x")
    assert lo.distance_pct == pytest.approx(-2.95) and lo.share == pytest.approx(5e6 / VISIBLE_A)
    assert (hi.side, hi.price, hi.usd) == (SHORT, pytest.approx(102.95), pytest.approx(8e6))
    assert hi.distance_pct == pytest.approx(2.95)
    # within ±5 %: the 30 M short at 104.55 (the 50 M at 110 and the 20 M at 90 are further away)
    assert (big.side, big.price, big.usd) == (SHORT, pytest.approx(104.55), pytest.approx(30e6))
    assert big.share == pytest.approx(30e6 / VISIBLE_A)


def test_a_cluster_spanning_bins_is_one_cluster_and_the_band_cuts_it() -> None:
    # three adjacent bins around 95.05 (within 5 %) and a wide one 94.85..95.25 would reach past 95: cut there
    m = crafted(100.0, longs={94.95: 4e6, 95.05: 6e6, 95.15: 4e6}, shorts={})
    r = row("B", m)
    assert r.nearest_long is not None and r.nearest_long.usd == pytest.approx(14e6)
    assert r.nearest_long.price == pytest.approx((94.95 * 4 + 95.05 * 6 + 95.15 * 4) / 14)
    assert r.largest is not None and r.largest.usd == pytest.approx(
        10e6
    )  # the bin at 94.95 lies outside ±5 %
    assert r.nearest_short is None


def test_an_empty_map_gives_no_clusters() -> None:
    r = row("E", crafted(100.0, {}, {}))
    assert (r.nearest_long, r.nearest_short, r.largest, r.visible_usd) == (None, None, None, 0.0)


def test_ranking_by_every_column_with_missing_values_last() -> None:
    rows = [
        row("A", A, updated_ms=3),
        row("C", crafted(100.0, {99.05: 40e6}, {100.55: 1e6, 101.05: 2e6}), updated_ms=1),
        row("D", crafted(100.0, {96.05: 2e6}, {}), updated_ms=2),
        failed_row("Z", "x", "Z", "no data"),
    ]
    names = lambda rs: [r.market for r in rs]  # noqa: E731
    assert names(rank(rows, "largest_usd")) == ["C", "A", "D", "Z"]
    assert names(rank(rows, "largest_usd", descending=False)) == ["D", "A", "C", "Z"]
    assert names(rank(rows, "long_dist")) == ["C", "A", "D", "Z"]  # 0.95 %, 2.95 %, 3.95 %
    assert names(rank(rows, "short_dist")) == [
        "C",
        "A",
        "D",
        "Z",
    ]  # 1.05 % (the 1 M at 0.55 % is 2 %), 2.95 %, none
    assert names(rank(rows, "short_usd")) == ["A", "C", "D", "Z"]
    assert names(rank(rows, "long_share")) == ["D", "C", "A", "Z"]  # 100 %, 93 %, 4.8 %
    assert names(rank(rows, "age")) == ["A", "D", "C", "Z"]  # freshest first
    assert names(rank(rows, "market")) == ["A", "C", "D", "Z"]
    for column in COLUMNS:
        assert sorted(names(rank(rows, column))) == ["A", "C", "D", "Z"]
    with pytest.raises(ValueError, match="unknown column 'nope'"):
        rank(rows, "nope")


# ------------------------------------------------------------------------------------------- kept warm

PARAMS = ModelParams(preset="x")


def test_kept_warm_rows_equal_a_fresh_build_and_rows_are_throttled() -> None:
    c, oi = random_market(700, 5)
    budget = WatchBudget(history_ms=600 * BAR, view_ms=300 * BAR, row_every_ms=1_000)
    w = MarketWatch(PARAMS, budget)
    w.load("m", "x", "M", c.take(slice(0, 500)), oi, now_ms=0)
    first = w.rows(now_ms=0)[0]
    assert w.rows_computed == 1
    for i, j in enumerate(range(500, 520)):
        w.on_bar("m", c.take(slice(j, j + 1)), float(oi.usd[j]), now_ms=10 + i)  # type: ignore[union-attr]
    assert w.rows(now_ms=100)[0] is not first and w.rows_computed == 1  # within a second: the row waits
    r = w.rows(now_ms=1_000)[0]
    assert w.rows_computed == 2 and r.updated_ms == 29
    fresh = LiquidationEngine.build(c.take(slice(0, 520)), oi, PARAMS)
    expect = screen_row(liquidation_map(fresh, w.bins("m")), market="m", exchange="x", symbol="M",
                        model=fresh.model_label(), updated_ms=29)  # fmt: skip
    assert r == expect
    w.rows(now_ms=5_000)
    assert w.rows_computed == 2  # nothing changed: no work


def test_a_revision_replaces_the_newest_bar() -> None:
    c, oi = random_market(300, 7)
    w = MarketWatch(PARAMS, WatchBudget(history_ms=400 * BAR))
    w.load("m", "x", "M", c.take(slice(0, 299)), oi, now_ms=0)
    moved = c.take(slice(298, 299))
    w.on_bar("m", moved, None, now_ms=1)  # same open time: a revision
    w.on_bar("m", c.take(slice(299, 300)), float(oi.usd[299]), now_ms=2)  # type: ignore[union-attr]
    assert len(w.markets["m"].candles) == 300
    w.on_bar("m", c.take(slice(100, 101)), None, now_ms=3)  # an old bar: ignored
    assert len(w.markets["m"].candles) == 300


def test_memory_stays_bounded_by_trimming_within_the_rebuild_budget() -> None:
    c, oi = random_market(2000, 9)
    assert oi is not None
    budget = WatchBudget(
        history_ms=500 * BAR, view_ms=200 * BAR, trim_slack_ms=100 * BAR, rebuild_every_ms=60_000
    )

    def run(ms_per_bar: int) -> MarketWatch:
        w = MarketWatch(PARAMS, budget)
        w.load("m", "x", "M", c.take(slice(0, 400)), oi, now_ms=0)
        for j in range(400, 2000):
            w.on_bar("m", c.take(slice(j, j + 1)), float(oi.usd[j]), now_ms=(j - 399) * ms_per_bar)
            assert len(w.markets["m"].candles) <= 500 + max(100, 60_000 // ms_per_bar)
        return w

    # a bar a second: trimmed back to 500 bars each time it holds 100 more (bars 599, 699, …, 1999)
    w = run(1_000)
    assert w.rebuilds == 15
    m = w.markets["m"]
    assert m.engine.n_bars == len(m.candles) and int(m.candles.open_time[-1]) == int(c.open_time[-1])
    # ten bars a second: at most one rebuild a minute (bars 999 and 1599)
    assert run(100).rebuilds == 2


def test_stale_rows_say_so() -> None:
    c, oi = random_market(200, 2)
    w = MarketWatch(PARAMS)
    w.load("m", "x", "M", c, oi, now_ms=10_000_000, updated_ms=int(c.close_time[-1]))
    r = w.rows(now_ms=int(c.close_time[-1]) + 60_000)[0]
    assert not w.stale(r, int(c.close_time[-1]) + 60_000)
    assert w.stale(r, int(c.close_time[-1]) + 2 * BAR + 1)  # two 5-minute bars without news
    assert r.age_ms(int(c.close_time[-1]) + 5_000) == 5_000

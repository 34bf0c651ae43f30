import numpy as np
import pytest

from liqdesk.core.alerts import LargeLiquidation, LineCrossing, MagnetProximity
from liqdesk.core.grid import PriceBins
from liqdesk.core.liqmap import LiquidationMap, Magnet
from liqdesk.core.series import LONG, SHORT
from liqdesk.core.stops import CLEAR, INSIDE, NEAR_SIDE, assess_stop, position_risk, snap_to_tick


def crafted_map(price_now=100_000.0):
    """Long cluster at 97,000–97,500 ($40M), small noise elsewhere; short cluster 103,000–103,400."""
    bins = PriceBins(90_000, 110_000, 200)  # $100 bins
    c = bins.centers
    long_ = np.where(c < price_now, 1e5, 0.0)
    long_[(c >= 97_000) & (c <= 97_500)] = 8e6
    short = np.where(c > price_now, 1e5, 0.0)
    short[(c >= 103_000) & (c <= 103_400)] = 6e6
    return LiquidationMap(
        0, 0, price_now, bins, ["25x"], long_[None, :], short[None, :], long_.sum(), short.sum()
    )


def test_snap_to_tick():
    assert snap_to_tick(62000.14, 0.1) == 62000.1
    assert snap_to_tick(62000.16, 0.1) == 62000.2
    assert snap_to_tick(1.23456, 0.0001) == 1.2346
    assert snap_to_tick(123.0, 0) == 123.0


def test_stop_inside_a_cluster_is_flagged_and_moved_beyond_it():
    m = crafted_map()
    adv = assess_stop(m, 97_250.0, buffer_pct=0.1, tick=0.1)
    assert adv.verdict == INSIDE and adv.position_side == LONG
    assert adv.cluster.low <= 97_000 and adv.cluster.high >= 97_500
    assert adv.beyond == pytest.approx(adv.cluster.low - 100.0)  # far edge − 0.1 % of 100k
    assert adv.beyond < 97_000
    assert "inside 25x long cluster" in adv.message()
    # the suggestion itself is clear of the cluster
    assert assess_stop(m, adv.beyond).verdict == CLEAR


def test_stop_just_in_front_of_a_cluster_warns_and_far_away_is_clear():
    m = crafted_map()
    assert assess_stop(m, 97_700.0, near_pct=0.3).verdict == NEAR_SIDE
    assert assess_stop(m, 99_000.0, near_pct=0.3).verdict == CLEAR
    short_adv = assess_stop(m, 103_200.0)
    assert short_adv.verdict == INSIDE and short_adv.position_side == SHORT
    assert short_adv.beyond > 103_400


def test_position_risk_uses_the_engine_formula():
    r = position_risk(LONG, 100_000.0, 50, 10_000.0, stop=99_000.0)
    assert r.liquidation == pytest.approx(100_000 * 0.98 / 0.996)
    assert r.stop_loss_usd == pytest.approx(100.0)
    assert not r.stop_after_liquidation
    assert position_risk(LONG, 100_000.0, 50, 10_000.0, stop=98_000.0).stop_after_liquidation


def test_line_crossing_fires_once_while_price_chatters():
    a = LineCrossing("stop", 100.0, band_pct=1.0)
    prices = [101, 100.5, 99.8, 100.2, 99.9, 100.3, 99.7, 100.4]  # chatter inside ±1
    events = [a.update(p, i) for i, p in enumerate(prices)]
    assert sum(e is not None for e in events) == 1
    assert a.update(98.5, 9) is None  # moved clearly away: re-armed, no crossing though
    assert a.update(101.5, 10) is not None  # a real crossing back up fires again


def test_magnet_proximity_with_hysteresis():
    mag = Magnet(LONG, 97_000.0, 96_900.0, 97_100.0, 80e6, -3.0, "25x")
    small = Magnet(SHORT, 100_500.0, 100_400.0, 100_600.0, 1e6, 0.5, "10x")
    p = MagnetProximity(within_pct=0.5, min_usd=50e6, rearm_factor=2.0)
    assert p.update(100_000, [mag, small], 0) == []
    assert len(p.update(97_400, [mag], 1)) == 1
    assert p.update(97_300, [mag], 2) == [] and p.update(97_600, [mag], 3) == []  # 0.62 %: not re-armed
    assert p.update(99_000, [mag], 4) == []  # 2 % away: re-armed
    assert len(p.update(97_300, [mag], 5)) == 1


def test_large_liquidation_alert_once_per_event():
    a = LargeLiquidation(min_usd=1e6)
    assert a.update(1, LONG, 100.0, 5e5) is None
    e = a.update(2, LONG, 100.0, 2e6)
    assert e is not None and "long liquidated" in e.message
    assert a.update(2, LONG, 100.0, 2e6) is None


def test_band_notional_and_advice_bins():
    from liqdesk.core.stops import advice_bins, band_notional

    m = crafted_map()
    # ±0.2 % of 97,250 = 97,055.5 … 97,444.5: the cluster bins centred at 97,150, 97,250 and 97,350
    assert band_notional(m, 97_250.0, 0.2) == pytest.approx(3 * 8e6)
    assert band_notional(m, 100_000.0, 0.2) > 0
    b = advice_bins(100_000.0, [60_000.0])
    assert b.width == pytest.approx(50.0) and b.lo <= 60_000 - 50 and b.hi >= 112_000
    assert b.lo / b.width == pytest.approx(round(b.lo / b.width))  # edges on multiples of the width


def test_line_crossing_after_chatter_a_decisive_move_back_fires():
    a = LineCrossing("alert", 100.0, band_pct=0.5)
    assert a.update(99.0, 0) is None  # learns the side
    assert a.update(100.1, 1).message.endswith("up")
    assert [a.update(p, 2) for p in (99.8, 100.3, 99.9, 100.2)] == [None] * 4  # chatter inside ±0.5
    down = a.update(99.0, 3)  # through the line and beyond the band: a real crossing
    assert down is not None and down.message.endswith("down")
    assert a.update(99.8, 4) is None and a.update(99.2, 5) is None


def _mag(side: int, centre: float, half_width: float, usd: float = 80e6, now: float = 100_000.0) -> Magnet:
    return Magnet(
        side, centre, centre - half_width, centre + half_width, usd, (centre - now) / now * 100, "25x"
    )


def test_magnet_alert_fires_once_while_price_sits_in_the_band_beside_another_cluster():
    """Two long clusters: one 0.3 % below price, one 2 % below. Keyed by round(price / (price · 0.25 %)),
    which is 400 for every price, they shared one key: the far one re-armed the near one on every map."""
    p = MagnetProximity(within_pct=0.5, min_usd=50e6, rearm_factor=1.5)
    fired = []
    for i in range(300):  # a map per bar, price chattering inside the band, centres moving a little
        price = 100_000 + 40 * ((i % 7) - 3)
        near = _mag(LONG, 99_700 + 5 * (i % 5), 120)
        far = _mag(LONG, 98_000 - 5 * (i % 3), 150)
        fired += p.update(price, [far, near] if i % 2 else [near, far], i)
    assert len(fired) == 1 and "99,7" in fired[0].message


def test_a_cluster_keeps_its_identity_while_it_drifts_less_than_its_width():
    p = MagnetProximity(within_pct=0.5, min_usd=50e6, rearm_factor=1.5)
    fired = []
    centre = 99_700.0
    for i in range(100):
        centre -= 30.0  # 3,000 in all, 30 a map: far less than its 200 width each time
        fired += p.update(centre + 300, [_mag(LONG, centre, 100)], i)  # price follows 0.3 % above it
    assert len(fired) == 1
    assert len(p.clusters) == 1


def test_each_approach_of_each_cluster_alerts_once_with_hysteresis():
    p = MagnetProximity(within_pct=0.5, min_usd=50e6, rearm_factor=1.5)
    a, b = _mag(LONG, 99_000, 100), _mag(LONG, 97_000, 100)
    fired = [e.key for e in p.update(99_400, [a, b], 0)]  # near a
    fired += [e.key for e in p.update(99_600, [a, b], 1)]  # 0.6 %: inside the re-arm band, nothing
    fired += [e.key for e in p.update(99_300, [a, b], 2)]  # back in: the same approach
    fired += [e.key for e in p.update(97_300, [b], 3)]  # a is swept and gone; price reaches b
    fired += [e.key for e in p.update(97_200, [b], 4)]
    fired += [e.key for e in p.update(99_000, [b], 5)]  # far from b: re-armed
    fired += [e.key for e in p.update(97_400, [b], 6)]  # a second approach of b
    assert len(fired) == 3 and fired[1] == fired[2] != fired[0]


def test_a_cluster_missing_from_one_map_while_price_is_near_does_not_alert_again():
    p = MagnetProximity(within_pct=0.5, min_usd=50e6, rearm_factor=1.5)
    near = _mag(SHORT, 100_300, 100)
    dim = _mag(SHORT, 100_300, 100, usd=45e6)  # just under the threshold for a map
    out = p.update(100_000, [near], 0) + p.update(100_010, [dim], 1) + p.update(100_020, [], 2)
    out += p.update(100_000, [near], 3)
    assert len(out) == 1


def test_snap_to_tick_never_raises_on_huge_or_odd_numbers():
    assert snap_to_tick(1e308, 0.1) == 1e308  # was OverflowError: every start crashed on such a line
    assert snap_to_tick(float("inf"), 0.1) == float("inf")
    assert snap_to_tick(62000.123, float("nan")) == 62000.123
    assert snap_to_tick(1e12, 0.1) == 1e12

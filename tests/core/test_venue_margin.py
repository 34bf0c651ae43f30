"""Each venue's liquidation price, against values computed by hand from the venues' own formulas."""

from __future__ import annotations

import numpy as np
import pytest

from liqdesk.core.leverage import Brackets, hyperliquid_mmr, liquidation_factors, liquidation_price
from liqdesk.errors import ConfigError
from liqdesk.feeds.presets import VENUE_BRACKETS, venue_brackets

EP = 100_000.0


def _hyperliquid_by_hand(entry: float, leverage: float, side: int, max_leverage: float) -> float:
    """Hyperliquid's documented form: entry − side × margin_available / size / (1 − l × side), l = 1/(2 × max
    leverage), margin_available = isolated margin − maintenance margin (both at the entry value here)."""
    size = 1.0
    notional = entry * size
    lev = min(leverage, max_leverage)
    l_ = 1.0 / (2.0 * max_leverage)
    margin_available = notional / lev - l_ * notional
    return entry - side * margin_available / size / (1.0 - l_ * side)


# leverage, long LP, short LP at EP 100,000 on BTC (max 40x, l = 1.25 %): worked out by hand
HYPERLIQUID = [
    (2, 50_632.91, 148_148.15),  # 100000 − 48750/0.9875, 100000 + 48750/1.0125
    (5, 81_012.66, 118_518.52),  # margin available 18,750
    (10, 91_139.24, 108_641.98),  # 8,750
    (20, 96_202.53, 103_703.70),  # 3,750
    (40, 98_734.18, 101_234.57),  # 1,250
    (100, 98_734.18, 101_234.57),  # above the asset's 40x: priced at 40x
]


@pytest.mark.parametrize(("lev", "long_lp", "short_lp"), HYPERLIQUID)
def test_hyperliquid_liquidation_price_at_several_leverages(
    lev: float, long_lp: float, short_lp: float
) -> None:
    b = venue_brackets("hyperliquid")
    assert float(liquidation_price(EP, lev, +1, b, 10_000)) == pytest.approx(long_lp, abs=0.01)
    assert float(liquidation_price(EP, lev, -1, b, 10_000)) == pytest.approx(short_lp, abs=0.01)
    assert long_lp == pytest.approx(_hyperliquid_by_hand(EP, lev, +1, 40), abs=0.01)
    assert short_lp == pytest.approx(_hyperliquid_by_hand(EP, lev, -1, 40), abs=0.01)


def test_hyperliquid_maintenance_margin_is_half_the_initial_margin_at_max_leverage() -> None:
    assert hyperliquid_mmr(40) == 0.0125 and hyperliquid_mmr(20) == 0.025 and hyperliquid_mmr(50) == 0.01
    b = venue_brackets("hyperliquid")
    np.testing.assert_allclose(b.mmr, [0.0125, 0.025])
    np.testing.assert_allclose(b.max_leverage, [40, 20])
    assert b.basis == "mark" and b.close_fee == 0.0
    # above 150 M the 20x tier: l = 2.5 %, and the deduction keeps the requirement continuous
    assert b.cum[1] == pytest.approx(150e6 * (0.025 - 0.0125))
    lp = float(liquidation_price(EP, 10, +1, b, 300e6))
    q = 300e6 / EP
    assert lp == pytest.approx((EP * (1 - 0.1) - b.cum[1] / q) / (1 - 0.025))


def test_bybit_measures_maintenance_on_the_entry_value() -> None:
    # Bybit's worked example: 1 BTC long at 20,000 USDT with 50x, MMR 0.5 %: LP = 20000 − (400 − 100) = 19,700
    b = Brackets([0.0], [2e6], [100.0], [0.005], basis="entry")
    assert float(liquidation_price(20_000.0, 50, +1, b, 20_000)) == pytest.approx(19_700.0)
    assert float(liquidation_price(20_000.0, 50, -1, b, 20_000)) == pytest.approx(20_300.0)
    shipped = venue_brackets("bybit")
    assert shipped.basis == "entry"
    np.testing.assert_allclose(shipped.mmr, [0.0033, 0.005])
    np.testing.assert_allclose(shipped.max_leverage, [150, 100])
    # tier 1 (a $10k position): EP·(1 − 1/L + 0.33 %)
    assert float(liquidation_price(EP, 100, +1, shipped, 10_000)) == pytest.approx(99_330.0)
    assert float(liquidation_price(EP, 100, -1, shipped, 10_000)) == pytest.approx(100_670.0)
    # tier 2 (a $1M position, 10 BTC): mmDeduction 300,000 × (0.5 % − 0.33 %) = 510, per coin 51
    assert shipped.cum[1] == pytest.approx(510.0)
    assert float(liquidation_price(EP, 20, +1, shipped, 1e6)) == pytest.approx(EP * (1 - 0.05 + 0.005) - 51.0)
    assert float(liquidation_price(EP, 20, -1, shipped, 1e6)) == pytest.approx(EP * (1 + 0.05 - 0.005) + 51.0)


def test_okx_counts_the_closing_fee_in_the_requirement() -> None:
    b = venue_brackets("okx")
    assert b.basis == "mark" and b.close_fee == 0.0005 and float(b.mmr[0]) == 0.004
    # margin + P&L = (MMR + taker fee) × value at the liquidation price: EP(1 − 1/L) / (1 − 0.45 %)
    assert float(liquidation_price(EP, 100, +1, b, 10_000)) == pytest.approx(99_000 / 0.9955)
    assert float(liquidation_price(EP, 100, -1, b, 10_000)) == pytest.approx(101_000 / 1.0045)
    assert float(liquidation_price(EP, 125, +1, b, 10_000)) == pytest.approx(
        99_000 / 0.9955
    )  # OKX caps at 100x


def test_binance_is_unchanged_and_each_venue_differs_at_high_leverage() -> None:
    b = venue_brackets("binanceusdm")
    assert float(liquidation_price(EP, 100, +1, b, 10_000)) == pytest.approx(EP * 0.99 / 0.996)
    longs = {
        v: float(liquidation_factors(np.array([50.0]), venue_brackets(v), 10_000)[0][0])
        for v in VENUE_BRACKETS
    }
    assert len(set(np.round(list(longs.values()), 6))) == 4


def test_bad_margin_rules_are_refused() -> None:
    with pytest.raises(ConfigError, match="basis"):
        Brackets([0.0], [1.0], [10.0], [0.01], basis="spot")
    with pytest.raises(ConfigError, match="close_fee"):
        Brackets([0.0], [1.0], [10.0], [0.01], close_fee=0.5)
    with pytest.raises(ConfigError, match="maximum leverage"):
        Brackets.from_rows(
            [{"notional_floor": 0, "notional_cap": 1, "max_leverage": 1, "mmr": "hyperliquid"}]
        )

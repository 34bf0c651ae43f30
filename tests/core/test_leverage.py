import numpy as np
import pytest

from liqdesk.core.leverage import RETAIL_BRACKET, Brackets, Tiers, liquidation_price
from liqdesk.errors import ConfigError

# Binance's formula with bracket 1 (MMR 0.40 %, cum 0) at EP = 100,000.
TABLE = [  # leverage, long %, short %
    (125, -0.40, 0.40),
    (100, -0.60, 0.60),
    (50, -1.61, 1.59),
    (25, -3.61, 3.59),
    (10, -9.64, 9.56),
    (5, -19.7, 19.5),
]


@pytest.mark.parametrize(("lev", "long_pct", "short_pct"), TABLE)
def test_liquidation_price_matches_the_formula_table(lev, long_pct, short_pct):
    ep = 100_000.0
    lp_long = float(liquidation_price(ep, lev, +1, RETAIL_BRACKET, 10_000))
    lp_short = float(liquidation_price(ep, lev, -1, RETAIL_BRACKET, 10_000))
    digits = 1 if abs(long_pct) > 10 else 2
    assert round((lp_long / ep - 1) * 100, digits) == long_pct
    assert round((lp_short / ep - 1) * 100, digits) == short_pct


def test_formula_is_not_the_naive_one():
    lp = float(liquidation_price(100_000.0, 100, +1))
    assert lp != pytest.approx(100_000 * (1 - 1 / 100))
    # (EP·(1 − 1/L) − cum/Q) / (1 − MMR) with cum = 0
    assert lp == pytest.approx(100_000 * 0.99 / 0.996)


def test_maintenance_amount_follows_brackets():
    b = Brackets(notional_floor=[0, 50_000, 250_000], notional_cap=[5e4, 2.5e5, 1e6], max_leverage=[125, 100, 50],
                 mmr=[0.004, 0.005, 0.01])  # fmt: skip
    np.testing.assert_allclose(b.cum, [0.0, 50.0, 1300.0])
    # Bracket 2 position of $100k at EP 100k: Q = 1 BTC, cum/Q = 50.
    lp = float(liquidation_price(100_000.0, 20, +1, b, 100_000))
    assert lp == pytest.approx((100_000 * (1 - 1 / 20) - 50) / (1 - 0.005))
    lp_s = float(liquidation_price(100_000.0, 20, -1, b, 100_000))
    assert lp_s == pytest.approx((100_000 * (1 + 1 / 20) + 50) / (1 + 0.005))


def test_tiers_normalise_and_reject_nonsense():
    t = Tiers.from_mapping({"25": 2, "10": 2})
    np.testing.assert_allclose(t.leverage, [10, 25])
    np.testing.assert_allclose(t.weight, [0.5, 0.5])
    with pytest.raises(ConfigError):
        Tiers.from_mapping({"1": 1.0})
    with pytest.raises(ConfigError):
        Tiers.from_mapping({"10": -1.0})

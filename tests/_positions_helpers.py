"""A crafted set of Hyperliquid accounts with known liquidation prices, and the map they must give (not collected).

The expected map is written out by hand: for bins of 100 USD from 60,000 to 80,000 each liquidation price falls
inside one bin (never on an edge) and notional = |size| × liquidation price."""

from __future__ import annotations

try:
    from tests.fake_exchange.hyperliquid import HlPosition
except ImportError:  # tests/ itself on sys.path
    from fake_exchange.hyperliquid import HlPosition  # type: ignore[no-redef]


def addr(n: int) -> str:
    return "0x" + f"{n:02x}" * 20


A1, A2, A3, A4, A5, A6, A7, A8, A9 = (addr(n) for n in range(0xA1, 0xAA))
PRICES = (60_000.0, 80_000.0)
BINS = 200

CRAFTED: dict[str, list[HlPosition]] = {
    A1: [HlPosition("BTC", 0.5, 70_000.0, 20, liquidation_px=66_520.5)],
    A2: [HlPosition("BTC", 2.0, 69_000.0, 10, "isolated", liquidation_px=62_150.25)],
    A3: [HlPosition("BTC", -1.25, 71_000.0, 5, liquidation_px=78_410.75)],
    A4: [HlPosition("BTC", -0.75, 70_500.0, 25, "isolated", liquidation_px=73_240.5)],
    A5: [HlPosition("BTC", 1.0, 70_000.0, 40, liquidation_px=66_580.0)],
    A6: [HlPosition("BTC", -3.0, 70_000.0, 3, liquidation_px=None)],  # hedged cross account: no price
    A7: [HlPosition("BTC", 0.1, 52_000.0, 2, liquidation_px=50_000.0)],  # outside the bins
    A8: [  # an account with many coins
        HlPosition("ETH", -2.0, 3_600.0, 10, "isolated", liquidation_px=3_905.25),
        HlPosition("SOL", 10.0, 170.0, 5, liquidation_px=150.5),
        HlPosition("BTC", 0.2, 70_000.0, 8, liquidation_px=61_234.5),
        HlPosition("HYPE", -40.0, 38.0, 3, liquidation_px=None),
        HlPosition("kPEPE", 100_000.0, 0.011, 10, liquidation_px=0.0101),
    ],
    A9: [],  # known, holds nothing
}

# bin centre → (long USD, short USD), written out by hand
EXPECTED_ROWS: dict[float, tuple[float, float]] = {
    61_250.0: (0.2 * 61_234.5, 0.0),  # A8
    62_150.0: (2.0 * 62_150.25, 0.0),  # A2
    66_550.0: (0.5 * 66_520.5 + 1.0 * 66_580.0, 0.0),  # A1 + A5 share a bin
    73_250.0: (0.0, 0.75 * 73_240.5),  # A4
    78_450.0: (0.0, 1.25 * 78_410.75),  # A3
}
BTC_SIZES = [0.5, 2.0, 1.25, 0.75, 1.0, 3.0, 0.1, 0.2]  # every BTC position's |size|, for the coverage
LONG_SIZES = [0.5, 2.0, 1.0, 0.1, 0.2]
SHORT_SIZES = [1.25, 0.75, 3.0]

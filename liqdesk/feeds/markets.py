"""Per-market facts the UI needs before (or without) a live connection: the price tick size.

A live source reads the tick from ccxt's market (`tick_from_market`) and overrides the table;
offline data (samples, files) uses the small table below, then a guess from the price's size.
"""

from __future__ import annotations

import math
from typing import Any

# Binance USDⓈ-M tick sizes of the common perpetuals (the bundled sample is BTCUSDT, tick 0.1).
DEFAULT_TICKS: dict[str, float] = {
    "BTCUSDT": 0.1,
    "ETHUSDT": 0.01,
    "SOLUSDT": 0.01,
    "BNBUSDT": 0.01,
    "XRPUSDT": 0.0001,
    "DOGEUSDT": 0.00001,
    "ADAUSDT": 0.0001,
    "LTCUSDT": 0.01,
    "LINKUSDT": 0.001,
    "AVAXUSDT": 0.001,
}
# Exchanges whose ticks differ from Binance's for the same symbol.
EXCHANGE_TICKS: dict[tuple[str, str], float] = {
    ("bybit", "BTCUSDT"): 0.1,
    ("okx", "BTCUSDT"): 0.1,
    ("bybit", "ETHUSDT"): 0.01,
    ("okx", "ETHUSDT"): 0.01,
}


def plain_symbol(symbol: str) -> str:
    """'BTC/USDT:USDT', 'BTC-USDT-SWAP', 'btcusdt' → 'BTCUSDT'."""
    s = symbol.upper().split(":")[0].replace("-SWAP", "")
    return "".join(ch for ch in s if ch.isalnum())


def tick_size(exchange: str, symbol: str, price: float | None = None) -> float:
    """The price tick: table first, else about 1/100,000 of the price rounded to a power of ten."""
    key = plain_symbol(symbol)
    tick = EXCHANGE_TICKS.get((exchange.lower().replace("usdm", ""), key)) or DEFAULT_TICKS.get(key)
    if tick:
        return tick
    if price and math.isfinite(price) and price > 0:
        return 10.0 ** math.floor(math.log10(price) - 5)
    return 0.01


def tick_from_market(market: dict[str, Any], precision_mode: int | None = None) -> float | None:
    """Tick size from a ccxt market dict. ccxt's TICK_SIZE mode (4) gives the tick itself,
    DECIMAL_PLACES (2) a count of decimals; without the mode it is read as a tick (what ccxt 4
    uses for Binance, Bybit and OKX)."""
    value = (market.get("precision") or {}).get("price")
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v) or v < 0:
        return None
    if precision_mode == 2:
        return 10.0 ** -int(v)
    return v if v > 0 else None

"""Exchange adapters, one module per venue behind ``Venue`` (see base.py)."""

from __future__ import annotations

from typing import Any

from liqdesk.errors import ConfigError
from liqdesk.feeds.venues.base import LiquidationFeed, LiquidationRecord, Venue
from liqdesk.feeds.venues.binanceusdm import BinanceUsdm
from liqdesk.feeds.venues.bybit import Bybit
from liqdesk.feeds.venues.hyperliquid import Hyperliquid, TradeRecord
from liqdesk.feeds.venues.okx import Okx

VENUES: dict[str, type[Venue]] = {v.id: v for v in (BinanceUsdm, Bybit, Okx, Hyperliquid)}


def venue_class(exchange_id: str) -> type[Venue]:
    try:
        return VENUES[exchange_id]
    except KeyError:
        raise ConfigError(f"unsupported exchange {exchange_id!r}; supported: {', '.join(VENUES)}") from None


def create_venue(exchange_id: str, ccxt_options: dict[str, Any] | None = None) -> Venue:
    """A venue with its own ccxt.pro exchange instance; ``await venue.close()`` when done."""
    return venue_class(exchange_id).create(ccxt_options)


__all__ = [
    "VENUES",
    "BinanceUsdm",
    "Bybit",
    "Hyperliquid",
    "LiquidationFeed",
    "LiquidationRecord",
    "Okx",
    "TradeRecord",
    "Venue",
    "create_venue",
    "venue_class",
]

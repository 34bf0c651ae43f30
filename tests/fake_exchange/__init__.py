"""A loopback fake Binance USDⓈ-M exchange for tests and benchmarks (see server.py)."""

from .server import FakeBinance

__all__ = ["FakeBinance"]

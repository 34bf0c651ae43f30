"""What the window shows: a market's data per symbol (liqdesk.feeds.market_data.MarketData), the timeframes
and ranges offered, presets.

No Qt here. A `DataSource` lists symbols and loads one: the bundled samples, fixed inputs (files or data given
on the command line), or a live controller's source (liqdesk.app.live_source).
"""

from __future__ import annotations

from typing import Protocol

from liqdesk.core.params import ModelParams
from liqdesk.feeds.market_data import MarketData

TIMEFRAMES = ["1m", "5m", "15m", "1h", "4h"]
RANGES = ["12h", "24h", "3d", "7d", "30d", "90d", "180d", "1y"]
RANGE_MS = {
    "12h": 12 * 3_600_000,
    "24h": 24 * 3_600_000,
    "3d": 3 * 86_400_000,
    "7d": 7 * 86_400_000,
    "30d": 30 * 86_400_000,
    "90d": 90 * 86_400_000,
    "180d": 180 * 86_400_000,
    "1y": 365 * 86_400_000,
}
DEFAULT_RANGE = "3d"


def ranges_available(market: MarketData) -> list[str]:
    """Ranges the data covers (plus the first one longer than the data: show it all)."""
    span = market.span_ms()
    out = [r for r in RANGES if RANGE_MS[r] <= span]
    longer = [r for r in RANGES if RANGE_MS[r] > span]
    return out + longer[:1]


class DataSource(Protocol):
    def symbols(self) -> list[str]: ...

    def load(self, symbol: str) -> MarketData: ...


class FixedSource:
    """One data set (files from the command line, or what a caller built)."""

    def __init__(self, data: MarketData) -> None:
        self._data = data

    def symbols(self) -> list[str]:
        return [self._data.symbol]

    def load(self, symbol: str) -> MarketData:
        return self._data


class SampleSource:
    """The bundled real-data samples; each is offered as 'SYMBOL · sample name'."""

    def __init__(self) -> None:
        from liqdesk.feeds.sample import list_samples

        self._names = list_samples()

    def symbols(self) -> list[str]:
        return [self.display_name(n) for n in self._names]

    @staticmethod
    def display_name(sample: str) -> str:
        return f"BTCUSDT · {sample}"

    def load(self, symbol: str) -> MarketData:
        from liqdesk.feeds.sample import load_sample

        name = next((n for n in self._names if self.display_name(n) == symbol or n == symbol), self._names[0])
        return load_sample(name)


def preset_names() -> list[tuple[str, str]]:
    """(name, label) of the leverage presets."""
    from liqdesk.feeds.presets import load_presets

    return [(name, p.label) for name, p in load_presets().items()]


def params_for(preset: str) -> ModelParams:
    from liqdesk.feeds.presets import params_for as feeds_params_for

    return feeds_params_for(preset)

"""What the window shows: market data per symbol, timeframes (native or resampled), presets.

No Qt here. A `DataSource` lists symbols and loads one; the bundled samples and fixed inputs
(files given on the command line) are the two sources today, live exchange data is the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from liqdesk.core.params import ModelParams
from liqdesk.core.resample import can_resample, resample_candles
from liqdesk.core.series import TIMEFRAME_MS, Candles, Liquidations, OpenInterest, timeframe_name

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


@dataclass
class MarketData:
    """One symbol's history as loaded (native interval), with where it came from."""

    candles: Candles
    open_interest: OpenInterest | None
    liquidations: Liquidations
    symbol: str
    exchange: str
    label: str  # one line: what the data is
    offline: bool = True  # True: not live (bundled sample or files)
    source_kind: str = "sample"  # sample / file / live
    notes: list[str] = field(default_factory=list)
    tick_size: float | None = None  # the exchange's price tick when known (lines snap to it)

    @property
    def native_timeframe(self) -> str:
        return timeframe_name(self.candles.interval_ms)

    def timeframe_status(self, timeframe: str) -> tuple[bool, str]:
        """(available, note): native, resampled from the native bars, or not available."""
        native = self.candles.interval_ms
        target = TIMEFRAME_MS[timeframe]
        if target == native:
            return True, ""
        if can_resample(native, target):
            return True, f"{timeframe} resampled from {self.native_timeframe} bars"
        return False, f"{timeframe} not available: this data has {self.native_timeframe} bars"

    def candles_for(self, timeframe: str) -> Candles:
        ok, why = self.timeframe_status(timeframe)
        if not ok:
            raise ValueError(why)
        target = TIMEFRAME_MS[timeframe]
        return self.candles if target == self.candles.interval_ms else resample_candles(self.candles, target)

    def span_ms(self) -> int:
        return int(self.candles.close_time[-1] - self.candles.open_time[0]) if len(self.candles) else 0

    def ranges_available(self) -> list[str]:
        """Ranges the data covers (plus the first one longer than the data: show it all)."""
        span = self.span_ms()
        out = [r for r in RANGES if RANGE_MS[r] <= span]
        longer = [r for r in RANGES if RANGE_MS[r] > span]
        return out + longer[:1]

    def with_liquidations(self, more: Liquidations) -> MarketData:
        self.liquidations = (
            self.liquidations.concat(more).sorted() if len(self.liquidations) else more.sorted()
        )
        return self


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
        s = load_sample(name)
        return MarketData(
            candles=s.candles,
            open_interest=s.open_interest,
            liquidations=s.liquidations if s.liquidations is not None else Liquidations.empty(),
            symbol=s.symbol,
            exchange=s.exchange,
            label=s.label,
            offline=True,
            source_kind="sample",
            notes=list(s.notes),
        )


def preset_names() -> list[tuple[str, str]]:
    """(name, label) of the leverage presets."""
    from liqdesk.feeds.presets import load_presets

    return [(name, p.label) for name, p in load_presets().items()]


def params_for(preset: str) -> ModelParams:
    from liqdesk.feeds.presets import params_for as feeds_params_for

    return feeds_params_for(preset)

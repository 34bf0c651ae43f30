"""A market's data as loaded, with where it came from: the one bundle every source hands on.

A bundled sample (liqdesk.feeds.sample), files on the command line, the cache, an exchange's history
(liqdesk.feeds.history) and a live stream all give a `MarketData`; the commands, the window and the model
take it as it is. Its arrays are never changed in place (a sample is shared by every caller): new real
liquidations replace the `liquidations` array (`with_liquidations`).
"""

from __future__ import annotations

from dataclasses import dataclass

from liqdesk.core.resample import can_resample, resample_candles
from liqdesk.core.series import TIMEFRAME_MS, Candles, Liquidations, OpenInterest, timeframe_name

SOURCE_KINDS = ("sample", "file", "cache", "exchange", "live")


@dataclass(eq=False)
class MarketData:
    """One market's history at its native interval, and a line that says what it is."""

    candles: Candles
    open_interest: OpenInterest | None
    liquidations: Liquidations  # the real liquidation tape (empty when none is known)
    symbol: str
    exchange: str
    label: str  # one line: what the data is (status bars, reports, watermarks)
    # Not fetched from the exchange just now: a sample, files, the cache, or an exchange that did not answer
    # (the `notes` say why). A live stream's data is not offline.
    offline: bool = True
    source_kind: str = "sample"  # SOURCE_KINDS
    notes: tuple[str, ...] = ()  # what the readers or the fetch noticed (dropped rows, gaps, no answer)
    tick_size: float | None = None  # the exchange's price tick when known (lines snap to it)
    fetched_bars: int = 0  # bars fetched from the exchange for this data (the others came from the cache)

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

    def with_liquidations(self, more: Liquidations) -> MarketData:
        """Add real liquidations (a new array, in time order); returns self."""
        self.liquidations = (
            self.liquidations.concat(more).sorted() if len(self.liquidations) else more.sorted()
        )
        return self
